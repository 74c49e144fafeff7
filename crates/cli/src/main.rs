//! `takarir`: the command line. Thin glue: argument definitions here, the work in the library
//! crates. Exit codes: 0 success, 1 some inputs failed, 2 the command could not run at all.

mod commands;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Run the caption service: HTTP API, web page and metrics.
    Serve(commands::serve::Args),
    /// Back up the service's database and object store into a directory (while it runs).
    Backup(commands::backup::BackupArgs),
    /// Restore a backup (service stopped), then erase again every account erased since.
    Restore(commands::backup::RestoreArgs),
    /// Manage staff accounts of the service (admins are made here, never by sign-up).
    Admin(commands::admin::Args),
    /// List the caption model versions; promote one or roll back (the service loads it at start).
    Models(commands::models::Args),
    /// Export consented training items for `training/`; list those withdrawn since an export.
    Training(commands::training::Args),
    /// Print a shell completion script (e.g. `takarir completions bash > /etc/bash_completion.d/takarir`).
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff: `takarir man > takarir.1; man ./takarir.1`).
    Man,
}

fn main() {
    let cli = Cli::parse();
    // One-shot commands only warn. `serve` logs its requests (ids, routes, statuses, timings)
    // at `info`, in its `log_format`, once it has read its configuration.
    if !matches!(cli.command, Command::Serve(_)) {
        takarir_server::logging::init(takarir_server::LogFormat::Text, "warn");
    }
    let result = match cli.command {
        Command::Caption(a) => commands::caption::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Backup(a) => commands::backup::backup(a),
        Command::Restore(a) => commands::backup::restore(a),
        Command::Admin(a) => commands::admin::run(a),
        Command::Training(a) => commands::training::run(a),
        Command::Models(a) => commands::models::run(a),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "takarir",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| 0)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => std::process::exit(code),
        // `takarir caption DIR | head -1`: the reader has what it wanted.
        Err(e) if closed_pipe(&e) => std::process::exit(0),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Whether the error is a write to a pipe whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
