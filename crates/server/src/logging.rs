//! Log output: one line per event on standard error, as readable text or, for a log collector,
//! one JSON object per line (`log_format = json`). The events are the same either way, and so
//! is what they leave out (no image content, email or client address: see the crate notes).
//! `TAKARIR_LOG` (an `EnvFilter` directive such as `info` or `takarir_server=debug`) picks the
//! level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber: `format`, at the level `TAKARIR_LOG` names, else
/// `default_level`. Does nothing when one is already installed (a test harness, an embedder).
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_env("TAKARIR_LOG").unwrap_or_else(|_| default_level.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        // The request span (request id, method, route) is in every line of a request.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
