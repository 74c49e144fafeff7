//! `takarir backup --to DIR` and `takarir restore --from DIR`: the database and object store
//! named by the service's configuration (see `docs/operations.md`).

use std::path::PathBuf;

use anyhow::Context;
use takarir_server::{ServerConfig, Storage};

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// Empty (or new) directory to write the backup into
    #[arg(long)]
    to: PathBuf,
    /// The service's TOML configuration (TAKARIR_* variables override it)
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// Directory written by `takarir backup`
    #[arg(long)]
    from: PathBuf,
    /// The service's TOML configuration (TAKARIR_* variables override it)
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Takes a consistent snapshot while the service may be running.
pub fn backup(args: BackupArgs) -> anyhow::Result<i32> {
    let config = ServerConfig::load(args.config.as_deref())?;
    runtime()?.block_on(async {
        let storage = Storage::open(&config).await?;
        let summary = takarir_store::backup::backup(
            &storage.db,
            &config.database_url(),
            &storage.blobs,
            &args.to,
        )
        .await
        .with_context(|| format!("backing up into {}", args.to.display()))?;
        storage.db.close().await;
        println!("{}", serde_json::to_string(&summary)?);
        Ok(0)
    })
}

/// Restores a backup (service stopped), then replays the erasure records kept outside it.
pub fn restore(args: RestoreArgs) -> anyhow::Result<i32> {
    let config = ServerConfig::load(args.config.as_deref())?;
    runtime()?.block_on(async {
        // Opened only for the object store and key ring; the database is replaced underneath.
        let storage = Storage::open(&config).await?;
        storage.db.close().await;
        let summary =
            takarir_store::backup::restore(&config.database_url(), &storage.blobs, &args.from)
                .await
                .with_context(|| format!("restoring from {}", args.from.display()))?;
        println!("{}", serde_json::to_string(&summary)?);
        Ok(0)
    })
}
