//! The server's handle on its storage: the database and the object store, opened from the
//! configuration. Everything the server keeps beyond a request goes through here.

use std::path::Path;

use anyhow::Context;
use takarir_store::{Blobs, Db, KeyRing};

use crate::config::ServerConfig;

/// Database + object store, cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    pub db: Db,
    pub blobs: Blobs,
}

impl Storage {
    /// Opens (and on first run creates) the configured database and object store; runs the
    /// database migrations.
    /// Everything it creates is readable by the service's user only
    /// ([`takarir_store::owner_only_files`]), and the data directory is made so (0700).
    pub async fn open(config: &ServerConfig) -> anyhow::Result<Storage> {
        takarir_store::owner_only_files();
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // A directory made by an older version (0755), or by hand: tighten it. Where the
            // service may not (another owner), it keeps what it has.
            let private = std::fs::Permissions::from_mode(0o700);
            if let Err(e) = std::fs::set_permissions(&config.data_dir, private) {
                tracing::warn!(error = %e, "could not make the data directory private (0700)");
            }
        }
        let db = Db::connect(&config.database_url())
            .await
            .context("opening the database (database_url)")?;
        let keys = match &config.encryption_keys {
            Some(spec) => KeyRing::parse(spec).context("encryption_keys")?,
            None => KeyRing::parse(&local_key_file(&config.data_dir)?)
                .context("reading the generated encryption key file")?,
        };
        let blobs = Blobs::open(&config.object_store_url(), keys)
            .context("opening the object store (object_store_url)")?;
        Ok(Storage { db, blobs })
    }
}

/// The key ring of a single-node install: `data_dir/encryption.keys`, created with one fresh
/// key (readable by the owner only) the first time. Production sets `encryption_keys` instead,
/// so every node shares the keys and they live outside the data they protect.
fn local_key_file(data_dir: &Path) -> anyhow::Result<String> {
    key_file(data_dir, "encryption.keys", || {
        format!("k1:{}", KeyRing::generate_key_hex())
    })
}

/// The trimmed contents of `data_dir/name`, created with `make()` (readable by the owner only)
/// the first time; when another process creates it first, theirs.
pub fn key_file(
    data_dir: &Path,
    name: &str,
    make: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    let path = data_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => return Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let spec = make();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(spec.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(file = name, "generated a key in the data directory");
            Ok(spec)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}
