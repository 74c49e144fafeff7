//! Scores candidate captions against references and prints the scores as JSON.
//!
//! `cargo run -p takarir-eval --example score -- CANDIDATES.json REFERENCES(.json|.tsv) [SPLIT.txt]`

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [candidates, references, rest @ ..] = args.as_slice() else {
        return Err("usage: score CANDIDATES.json REFERENCES [SPLIT.txt]".into());
    };
    let candidates = takarir_eval::load_candidates(candidates)?;
    let references = takarir_eval::load_references(references, rest.first().map(PathBuf::as_path))?;
    let scores = takarir_eval::evaluate(&candidates, &references)?;
    println!("{}", serde_json::to_string_pretty(&scores)?);
    Ok(())
}
