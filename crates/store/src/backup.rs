//! Backup, restore, and the erasure log that outlives both.
//!
//! A backup directory holds `database.sqlite` (SQLite `VACUUM INTO`: a consistent snapshot
//! taken while the service runs) or `database.pgdump` (`pg_dump --format=custom`, one
//! transaction-consistent snapshot), every object of the object store copied as stored (still
//! encrypted) under `objects/` except batch inputs (photos waiting to be captioned are never
//! kept longer than that), and `manifest.json` listing the objects with their sizes and SHA-256.
//!
//! Erasures must survive a restore. Besides its `erasure_log` row, every erasure made with
//! [`erase_user`] writes a record object under `erasure-log/` in the object store, which
//! backups leave out and restores never overwrite: after a restore, [`replay_erasures`] reads
//! those records and erases again every restored user whose subject hash they name (see
//! [`crate::erasure`] for why the hash identifies no one without the user's own row).
//!
//! Lesser deletions and withdrawals (a history entry, a job, an export, an API key, training
//! consent) survive a restore the same way: their records under `withdrawal-log/` (see
//! [`crate::withdrawals`]) are left out of backups too, and a restore applies again every one
//! made since the backup began (`started_ms` in the manifest).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::blobs::{multipart_upload, UPLOAD_PARTS_IN_FLIGHT};
use crate::erasure::{user_prefix, ErasureReport};
use crate::users::UserId;
use crate::withdrawals::{CLOCK_SLACK_MS, WITHDRAWAL_PREFIX};
use crate::{Blobs, Db, Error, Result, Sensitivity};

/// Object prefix of the erasure records (outside every backup).
pub const ERASURE_PREFIX: &str = "erasure-log";

/// Erases an account everywhere: first the erasure record outside the backups (so a restore
/// erases it again even if what follows fails), then its rows (one transaction, logged), then
/// its objects. [`Error::NotFound`] if there is no such user.
///
/// The record goes first because the rows are the only place its subject hash can be computed
/// from: were the objects' deletion to fail after the rows were gone (an object-store outage),
/// a record written last would never be written, and restoring an older backup would bring
/// the account back. A record whose erasure then fails is harmless: the account is erased when
/// the erasure is retried, or at the next restore.
pub async fn erase_user(db: &Db, blobs: &Blobs, user: UserId) -> Result<ErasureReport> {
    let subject = db.users().get(user).await?.ok_or(Error::NotFound)?;
    let subject_hash = subject.subject_hash();
    let record = serde_json::json!({
        "subject_hash": subject_hash,
        "erased_at": crate::now().unix_timestamp(),
    });
    blobs
        .put(
            &format!("{ERASURE_PREFIX}/{subject_hash}.json"),
            record.to_string().as_bytes(),
            Sensitivity::Public,
        )
        .await?;
    // Inputs of the user's unfinished batch jobs live under the job, not the user's prefix.
    let jobs = db.jobs().list_for_user(user).await?;
    let report = db.delete_user_everywhere(user).await?;
    debug_assert_eq!(report.entry.subject_hash, subject_hash);
    blobs.delete_prefix(&user_prefix(user)).await?;
    for job in jobs {
        blobs.delete_prefix(&format!("jobs/{}/", job.id)).await?;
    }
    db.flush_erased().await?;
    Ok(report)
}

/// What a backup or restore did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub database_file: String,
    pub objects: u64,
    pub object_bytes: u64,
    /// Accounts erased again from the erasure records (restore only).
    pub erasures_replayed: u64,
    /// Deletions and withdrawals applied again from the withdrawal records (restore only).
    pub withdrawals_replayed: u64,
    pub seconds: f64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: u32,
    created_unix: i64,
    /// When the backup began (Unix ms): withdrawals from then on are replayed by a restore.
    /// Absent in older backups, which replay every withdrawal record.
    #[serde(default)]
    started_ms: Option<i64>,
    backend: String,
    database_file: String,
    objects: Vec<ManifestObject>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ManifestObject {
    path: String,
    size: u64,
    sha256: String,
}

/// The newest `pg_dump`/`pg_restore` on PATH or in Debian's /usr/lib/postgresql/*/bin.
fn pg_tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join(name).is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|p| p.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
        .map(|d| d.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(cmd: &mut std::process::Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| Error::Invalid("backup", format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Invalid(
            "backup",
            format!("{what} failed: {}", err.trim()),
        ));
    }
    Ok(())
}

/// Writes a backup of `db` and `blobs` into `dir` (created; must be empty or absent).
pub async fn backup(db: &Db, db_url: &str, blobs: &Blobs, dir: &Path) -> Result<Summary> {
    let started = Instant::now();
    let started_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(Error::Invalid(
            "backup",
            format!("{} is not empty", dir.display()),
        ));
    }
    std::fs::create_dir_all(dir.join("objects"))?;
    let database_file = match db {
        Db::Sqlite(pool) => {
            let file = dir.join("database.sqlite");
            let target = std::path::absolute(&file)?;
            sqlx::query("VACUUM INTO $1")
                .bind(target.to_string_lossy().into_owned())
                .execute(pool)
                .await?;
            "database.sqlite"
        }
        Db::Postgres(_) => {
            let file = dir.join("database.pgdump");
            run(
                std::process::Command::new(pg_tool("pg_dump"))
                    .arg("--format=custom")
                    .arg("--no-owner")
                    .arg("--file")
                    .arg(&file)
                    .arg("--dbname")
                    .arg(db_url),
                "pg_dump",
            )?;
            "database.pgdump"
        }
    };
    let mut manifest = Manifest {
        format: 1,
        created_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
        started_ms: Some(started_ms),
        backend: format!("{:?}", db.backend()).to_lowercase(),
        database_file: database_file.into(),
        objects: Vec::new(),
    };
    let mut summary = Summary {
        database_file: database_file.into(),
        ..Summary::default()
    };
    for path in blobs.list("").await? {
        // The erasure and withdrawal records live outside every backup; batch inputs are
        // photos kept only until captioned, so they never go into a backup either.
        if path.starts_with(&format!("{ERASURE_PREFIX}/"))
            || path.starts_with(&format!("{WITHDRAWAL_PREFIX}/"))
            || path.starts_with("jobs/")
        {
            continue;
        }
        // Objects are copied as stored: personal ones stay encrypted in the backup. They are
        // streamed to the file, so a large one (an export) is never held whole.
        let got = match blobs.object_store().get(&blobs.location(&path)?).await {
            Ok(r) => r,
            // Deleted since it was listed (a job input, say): not part of the snapshot.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let file = dir.join("objects").join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::File::create(&file)?;
        let mut pieces = got.into_stream();
        let (mut hash, mut size) = (Sha256::new(), 0u64);
        while let Some(piece) = pieces.next().await {
            let piece = piece?;
            hash.update(&piece);
            out.write_all(&piece)?;
            size += piece.len() as u64;
        }
        out.sync_all()?;
        summary.objects += 1;
        summary.object_bytes += size;
        manifest.objects.push(ManifestObject {
            size,
            sha256: hex::encode(hash.finalize()),
            path,
        });
    }
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Invalid("manifest", e.to_string()))?;
    std::fs::write(dir.join("manifest.json"), json)?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Restores the backup in `dir` into the database at `db_url` (whose current contents it
/// replaces) and the object store, then replays the erasure records and the withdrawal
/// records made since the backup began. Run it with the service
/// stopped.
pub async fn restore(db_url: &str, blobs: &Blobs, dir: &Path) -> Result<Summary> {
    let started = Instant::now();
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)
        .map_err(|e| Error::Invalid("manifest", e.to_string()))?;
    if manifest.format != 1 {
        return Err(Error::Invalid(
            "manifest",
            format!("unknown format {}", manifest.format),
        ));
    }
    // Check every object before changing anything.
    for o in &manifest.objects {
        let (size, sha256) = file_digest(&dir.join("objects").join(&o.path))?;
        if size != o.size || sha256 != o.sha256 {
            return Err(Error::Tampered(o.path.clone()));
        }
    }
    let src = dir.join(&manifest.database_file);
    let is_sqlite = db_url.starts_with("sqlite:");
    match (is_sqlite, manifest.database_file.as_str()) {
        (true, "database.sqlite") => {
            let options: sqlx::sqlite::SqliteConnectOptions = db_url.parse()?;
            let target = options.get_filename().to_owned();
            if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            // Copy beside, then rename over: the live file is replaced in one step.
            let tmp = target.with_extension("restoring");
            std::fs::copy(&src, &tmp)?;
            let mut wal = target.clone().into_os_string();
            wal.push("-wal");
            let _ = std::fs::remove_file(&wal);
            let mut shm = target.clone().into_os_string();
            shm.push("-shm");
            let _ = std::fs::remove_file(&shm);
            std::fs::rename(&tmp, &target)?;
        }
        (false, "database.pgdump") => run(
            std::process::Command::new(pg_tool("pg_restore"))
                .arg("--clean")
                .arg("--if-exists")
                .arg("--no-owner")
                .arg("--single-transaction")
                .arg("--dbname")
                .arg(db_url)
                .arg(&src),
            "pg_restore",
        )?,
        (_, file) => {
            return Err(Error::Invalid(
                "backup",
                format!("{file} cannot be restored into this database ({db_url:.10}...)"),
            ))
        }
    }
    let mut summary = Summary {
        database_file: manifest.database_file.clone(),
        ..Summary::default()
    };
    for o in &manifest.objects {
        put_file(blobs, &o.path, &dir.join("objects").join(&o.path), o.size).await?;
        summary.objects += 1;
        summary.object_bytes += o.size;
    }
    let db = Db::connect(db_url).await?; // also brings an older backup's schema up to date
    summary.erasures_replayed = replay_erasures(&db, blobs).await?;
    let since = manifest.started_ms.map_or(0, |ms| ms - CLOCK_SLACK_MS);
    summary.withdrawals_replayed = crate::withdrawals::replay(&db, blobs, since).await?;
    db.close().await;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Objects up to this size are restored in one request; larger ones are uploaded in parts,
/// a part at a time, so memory stays bounded whatever an object weighs.
const WHOLE_PUT_MAX: u64 = 8 << 20;
const PART: usize = 8 << 20;

/// A file's length and SHA-256 (hex), read a block at a time.
fn file_digest(file: &Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(file)?;
    let (mut hash, mut size, mut buf) = (Sha256::new(), 0u64, vec![0u8; 1 << 20]);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((size, hex::encode(hash.finalize())));
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
}

/// Stores a backed-up file as the object at `path`, as it is (it was copied as stored).
async fn put_file(blobs: &Blobs, path: &str, file: &Path, size: u64) -> Result<()> {
    let location = blobs.location(path)?;
    let store = blobs.object_store();
    if size <= WHOLE_PUT_MAX {
        store.put(&location, std::fs::read(file)?.into()).await?;
        return Ok(());
    }
    let mut f = std::fs::File::open(file)?;
    multipart_upload(store.as_ref(), &location, PART, async |upload| loop {
        let mut part = Vec::with_capacity(PART);
        (&mut f).take(PART as u64).read_to_end(&mut part)?;
        if part.is_empty() {
            return Ok(());
        }
        upload.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await?;
        upload.put(part.into());
    })
    .await
}

/// Erases again every user named by an erasure record (after a restore). Returns how many.
pub async fn replay_erasures(db: &Db, blobs: &Blobs) -> Result<u64> {
    let mut erased: std::collections::HashSet<String> = std::collections::HashSet::new();
    for path in blobs.list(ERASURE_PREFIX).await? {
        if let Some(name) = path
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".json"))
        {
            erased.insert(name.to_string());
        }
    }
    if erased.is_empty() {
        return Ok(0);
    }
    let mut replayed = 0;
    let mut after = None;
    loop {
        let page = db.users().list(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for user in &page {
            if erased.contains(&user.subject_hash()) {
                db.delete_user_everywhere(user.id).await?;
                blobs.delete_prefix(&user_prefix(user.id)).await?;
                replayed += 1;
            }
        }
    }
    Ok(replayed)
}
