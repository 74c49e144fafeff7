//! `takarir serve`: the caption service (crates/server) with the CLI's model discovery.

use std::net::SocketAddr;
use std::path::PathBuf;

use takarir_server::ServerConfig;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// TOML configuration file (keys as documented on `ServerConfig`; TAKARIR_* variables override it)
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the file and TAKARIR_LISTEN)
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Model directory or hf:ORG/NAME (overrides the file and TAKARIR_MODEL)
    #[arg(long, short = 'm')]
    model: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut config = ServerConfig::load(args.config.as_deref())?;
    takarir_server::logging::init(config.log_format, "info");
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(m) = args.model {
        config.model = m;
    } else if !std::path::Path::new(&config.model)
        .join("config.json")
        .is_file()
        && config.model == ServerConfig::default().model
    {
        // The default relative path is not here: look next to the executable, as `caption` does.
        if let Some(found) = super::default_model() {
            config.model = found.to_string_lossy().into_owned();
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(takarir_server::serve(config))?;
    Ok(0)
}
