//! `takarir training export --to DIR --reason TEXT [--previous MANIFEST]` and
//! `takarir training withdrawn --since MANIFEST`: the consented training items for
//! `training/`, and which items of an earlier export are no longer consented. The use cases are
//! in `takarir_server::service::training`.

use std::path::PathBuf;

use takarir_server::service::training::{self, Manifest};
use takarir_server::{ServerConfig, Storage};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Write the items whose owners' training consent stands into a new directory, in the
    /// training pipeline's layout, with manifest.json; each owner's audit log records it
    Export {
        /// New or empty directory
        #[arg(long)]
        to: PathBuf,
        /// Why (recorded in the audit log of each user whose items are exported)
        #[arg(long)]
        reason: String,
        /// The manifest of the previous export: count and list its items no longer consented
        #[arg(long)]
        previous: Option<PathBuf>,
        /// The service's TOML configuration (TAKARIR_* variables override it)
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Print the pseudonyms of an export's items no longer consented, one a line (remove them
    /// from any copy of that export)
    Withdrawn {
        /// manifest.json of that export
        #[arg(long)]
        since: PathBuf,
        /// The service's TOML configuration (TAKARIR_* variables override it)
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match args.action {
            Action::Export {
                to,
                reason,
                previous,
                config,
            } => {
                let previous = previous.as_deref().map(Manifest::read).transpose()?;
                let config = ServerConfig::load(config.as_deref())?;
                let key = training::export_key(&config)?;
                let storage = Storage::open(&config).await?;
                let m = training::export(&storage, &key, &to, &reason, previous.as_ref()).await;
                storage.db.close().await;
                let m = m?;
                let withdrawn = m.withdrawn_since_previous.as_ref().map(|w| w.count);
                println!(
                    "{}",
                    serde_json::json!({
                        "to": to,
                        "items": m.items,
                        "per_language": m.per_language,
                        "withdrawn_since_previous": withdrawn,
                    })
                );
            }
            Action::Withdrawn { since, config } => {
                let previous = Manifest::read(&since)?;
                let config = ServerConfig::load(config.as_deref())?;
                let key = training::export_key(&config)?;
                let storage = Storage::open(&config).await?;
                let gone = training::withdrawn_since(&storage, &key, &previous).await;
                storage.db.close().await;
                for id in gone? {
                    println!("{id}");
                }
            }
        }
        Ok(0)
    })
}
