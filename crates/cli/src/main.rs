//! `takarir`: the command line. Thin glue: argument definitions here, the work in the library
//! crates. Exit codes: 0 success, 1 some inputs failed, 2 the command could not run at all.

mod commands;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "takarir",
    version,
    about = "Image captions in Bahasa Indonesia and English"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Caption images or folders of images.
    Caption(commands::caption::Args),
    /// Score a model's captions against reference captions (BLEU, ROUGE-L, CIDEr-D).
    Eval(commands::eval::Args),
    /// Time the engine (and a Python onnxruntime reference) on a model.
    Bench(commands::bench::Args),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TAKARIR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Caption(a) => commands::caption::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Bench(a) => commands::bench::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
