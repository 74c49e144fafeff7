//! The withdrawal log: deletions and withdrawals that a restore must not undo.
//!
//! A backup is a snapshot; restoring it would bring back whatever users deleted or withdrew
//! after it was taken: a history entry, a batch job, an export link and its ZIP, an API key,
//! their training consent and the training images it covered. So every such act first writes
//! a small record object under `withdrawal-log/` in the object store (like the erasure records
//! of [`crate::backup`], left out of every backup and never overwritten by a restore), and
//! [`replay`] applies again, after a restore, every record made since the backup began.
//!
//! Records name rows by their ids (which identify no one) and people only by the subject hash
//! of [`crate::users::User::subject_hash`]: without the user's own row (and its salt) the hash
//! cannot be tied to anyone. A row is deleted again only if it still belongs to the user the
//! record names, so an id reused after a restore never takes another user's data.
//!
//! Only records made since the backup began are replayed: what was withdrawn earlier is
//! already withdrawn in the backup, and a consent given again before the backup was taken
//! stands. A replayed consent withdrawal appends a withdrawal to the ledger and deletes the
//! training items; a restore never grants consent.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::api_keys::ApiKeyId;
use crate::consents::PURPOSE_TRAINING;
use crate::erasure::user_prefix;
use crate::exports::ExportId;
use crate::history::HistoryId;
use crate::users::UserId;
use crate::{Blobs, Db, Error, Result, Sensitivity};

/// Object prefix of the withdrawal records (outside every backup).
pub const WITHDRAWAL_PREFIX: &str = "withdrawal-log";

/// Records at most this much older than the backup's start are replayed too, for clocks of
/// several nodes that disagree a little.
pub const CLOCK_SLACK_MS: i64 = 60_000;

/// One deletion or withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Withdrawal {
    /// One history entry deleted.
    HistoryEntry { subject_hash: String, id: i64 },
    /// The user's whole history (up to the record's time) deleted.
    History { subject_hash: String },
    /// A batch job (anonymous or not) deleted; its id is random and names no one.
    Job { id: String },
    /// An export link revoked and its ZIP deleted.
    Export { subject_hash: String, id: i64 },
    /// An API key revoked.
    ApiKey { subject_hash: String, id: i64 },
    /// Training consent withdrawn: the training items (rows and images) deleted.
    TrainingConsent {
        subject_hash: String,
        policy_version: String,
    },
}

impl Withdrawal {
    fn kind(&self) -> &'static str {
        match self {
            Withdrawal::HistoryEntry { .. } => "history_entry",
            Withdrawal::History { .. } => "history",
            Withdrawal::Job { .. } => "job",
            Withdrawal::Export { .. } => "export",
            Withdrawal::ApiKey { .. } => "api_key",
            Withdrawal::TrainingConsent { .. } => "training_consent",
        }
    }

    fn subject_hash(&self) -> Option<&str> {
        match self {
            Withdrawal::HistoryEntry { subject_hash, .. }
            | Withdrawal::History { subject_hash }
            | Withdrawal::Export { subject_hash, .. }
            | Withdrawal::ApiKey { subject_hash, .. }
            | Withdrawal::TrainingConsent { subject_hash, .. } => Some(subject_hash),
            Withdrawal::Job { .. } => None,
        }
    }
}

/// A record as stored: the act and when (Unix milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub what: Withdrawal,
    pub at_ms: i64,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Writes the record of `what` (call it before doing the deletion, so that a failure half-way
/// is still replayed). Returns its object path.
pub async fn record(blobs: &Blobs, what: Withdrawal) -> Result<String> {
    let at_ms = now_ms();
    // Unique per act: the time, the kind, and a random part (two acts in one millisecond).
    let nonce: u64 = {
        use sha2::{Digest, Sha256};
        let seed = format!("{at_ms}{what:?}{:?}", std::time::Instant::now());
        let d = Sha256::digest(seed.as_bytes());
        u64::from_le_bytes(d[..8].try_into().unwrap_or_default())
    };
    let path = format!(
        "{WITHDRAWAL_PREFIX}/{at_ms:013}-{}-{nonce:016x}.json",
        what.kind()
    );
    let body = serde_json::to_vec(&Record { what, at_ms })
        .map_err(|e| Error::Invalid("withdrawal", e.to_string()))?;
    blobs.put(&path, &body, Sensitivity::Public).await?;
    Ok(path)
}

/// Every record, oldest first.
pub async fn list(blobs: &Blobs) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for path in blobs.list(WITHDRAWAL_PREFIX).await? {
        let bytes = blobs.get(&path).await?;
        let r: Record = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid("withdrawal", format!("{path}: {e}")))?;
        out.push(r);
    }
    out.sort_by_key(|r| r.at_ms);
    Ok(out)
}

/// Applies again every record made at or after `since_ms` (after a restore); returns how many
/// records were applied. Records of users no longer present (erased) are skipped.
pub async fn replay(db: &Db, blobs: &Blobs, since_ms: i64) -> Result<u64> {
    let records: Vec<Record> = list(blobs)
        .await?
        .into_iter()
        .filter(|r| r.at_ms >= since_ms)
        .collect();
    if records.is_empty() {
        return Ok(0);
    }
    let users = users_by_hash(db).await?;
    let mut applied = 0;
    for r in records {
        let user = r.what.subject_hash().and_then(|h| users.get(h)).copied();
        if r.what.subject_hash().is_some() && user.is_none() {
            continue;
        }
        apply(db, blobs, &r, user).await?;
        applied += 1;
    }
    Ok(applied)
}

/// Every user's subject hash.
async fn users_by_hash(db: &Db) -> Result<HashMap<String, UserId>> {
    let mut map = HashMap::new();
    let mut after = None;
    loop {
        let page = db.users().list(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in &page {
            map.insert(u.subject_hash(), u.id);
        }
    }
    Ok(map)
}

/// `NotFound` means already gone: nothing to do.
fn gone_is_fine(r: Result<()>) -> Result<()> {
    match r {
        Err(Error::NotFound) => Ok(()),
        other => other,
    }
}

async fn apply(db: &Db, blobs: &Blobs, r: &Record, user: Option<UserId>) -> Result<()> {
    let owner = || user.ok_or(Error::NotFound);
    match &r.what {
        Withdrawal::HistoryEntry { id, .. } => {
            gone_is_fine(db.history().delete(owner()?, HistoryId(*id)).await)?;
        }
        Withdrawal::History { .. } => {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(
                (i128::from(r.at_ms) + 1) * 1_000_000,
            )
            .map_err(|e| Error::Invalid("withdrawal", e.to_string()))?;
            db.history().delete_older_than(owner()?, at).await?;
        }
        Withdrawal::Job { id } => {
            db.jobs().delete(id).await?;
            blobs.delete_prefix(&format!("jobs/{id}/")).await?;
        }
        Withdrawal::Export { id, .. } => {
            if let Some(path) = db.exports().delete(owner()?, ExportId(*id)).await? {
                blobs.delete(&path).await?;
            }
        }
        Withdrawal::ApiKey { id, .. } => {
            gone_is_fine(db.api_keys().delete(owner()?, ApiKeyId(*id)).await)?;
        }
        Withdrawal::TrainingConsent { policy_version, .. } => {
            let user = owner()?;
            if db.consents().is_granted(user, PURPOSE_TRAINING).await? {
                db.consents()
                    .record(user, PURPOSE_TRAINING, false, policy_version)
                    .await?;
            }
            let prefs = db.preferences();
            let mut p = prefs.get_or_default(user).await?;
            if p.training_consent {
                p.training_consent = false;
                prefs.set(user, &p).await?;
            }
            for path in db.training().delete_all(user).await? {
                blobs.delete(&path).await?;
            }
            blobs
                .delete_prefix(&format!("{}/training", user_prefix(user)))
                .await?;
        }
    }
    Ok(())
}
