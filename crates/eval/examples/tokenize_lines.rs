//! Tokenises stdin line by line with [`takarir_eval::tokenize`], printing space-joined tokens.
//!
//! Used to compare against coco-caption's Java PTBTokenizer on large caption files.

use std::io::{BufRead, Write};

fn main() -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        writeln!(out, "{}", takarir_eval::tokenize(&line?).join(" "))?;
    }
    Ok(())
}
