//! Runs the server until Ctrl-C: `cargo run -p takarir-server --example serve -- [server.toml]`.
//! Configuration as documented on `ServerConfig` (file, then `TAKARIR_*` variables).

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let file = std::env::args_os().nth(1).map(std::path::PathBuf::from);
    let config = takarir_server::ServerConfig::load(file.as_deref())?;
    tokio::runtime::Runtime::new()?.block_on(takarir_server::serve(config))
}
