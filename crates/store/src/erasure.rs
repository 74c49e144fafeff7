//! Account erasure and the erasure log.
//!
//! [`Db::delete_user_everywhere`] deletes every row a user owns, in one transaction, and appends
//! one entry to `erasure_log`. The entry holds no personal data: only
//! `subject_hash = SHA-256("takarir-erasure-v1" || subject_salt || user id)`, where
//! `subject_salt` is 32 random bytes stored in the user's row and deleted with it. Without the
//! salt the hash cannot be linked to anyone (the id alone would be guessable; the salt is not),
//! yet a backup taken before the erasure still holds the salt, so a restore can recompute the
//! hash for each restored user and erase again everyone the log names.
//!
//! Every table with a `user_id` column must be listed in [`Db::delete_user_everywhere`]; the
//! tests check that no such table keeps a row of an erased user.

use time::OffsetDateTime;

pub use crate::users::subject_hash;
use crate::users::UserId;
use crate::{now, Db, Error, Result};

id_type!(ErasureId);

/// The object-store prefix under which every object of a user lives (training images,
/// exports): `users/ID` (whole segments: `users/1` does not cover `users/10`). Erasure deletes
/// the whole prefix.
pub fn user_prefix(user: UserId) -> String {
    format!("users/{}", user.0)
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ErasureEntry {
    pub id: ErasureId,
    pub subject_hash: String,
    pub erased_at: OffsetDateTime,
}

/// What [`Db::delete_user_everywhere`] removed, in counts only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureReport {
    pub entry: ErasureEntry,
    pub history: u64,
    pub consents: u64,
    pub preferences: u64,
    /// Rows of the account tables (sessions, email tokens, API keys, per-account usage,
    /// training items, exports, audit entries about the user, policy notices).
    pub account_rows: u64,
}

/// The account tables whose rows are the user's (`user_id`), deleted on erasure.
pub const ACCOUNT_TABLES: &[&str] = &[
    "sessions",
    "email_tokens",
    "api_keys",
    "user_usage_daily",
    "training_items",
    "exports",
    "audit_log",
    "policy_notices",
    // Batch jobs a signed-in user owns (their items go with them, ON DELETE CASCADE).
    "jobs",
];

const COLUMNS: &str = "id, subject_hash, erased_at";

/// The `erasure_log` table, borrowed from [`Db::erasure_log`]. Append-only; written only by
/// [`Db::delete_user_everywhere`].
pub struct ErasureLog<'a>(pub(crate) &'a Db);

impl ErasureLog<'_> {
    /// Entries after `after` in id order, `limit` at a time (0 means 1000).
    pub async fn list(&self, after: Option<ErasureId>, limit: u32) -> Result<Vec<ErasureEntry>> {
        let limit = i64::from(if limit == 0 { 1000 } else { limit });
        let sql = format!("SELECT {COLUMNS} FROM erasure_log WHERE id > $1 ORDER BY id LIMIT $2");
        Ok(fetch!(
            fetch_all,
            ErasureEntry,
            self.0,
            &sql,
            after.unwrap_or(ErasureId(0)),
            limit
        )?)
    }

    pub async fn get(&self, id: ErasureId) -> Result<Option<ErasureEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM erasure_log WHERE id = $1");
        Ok(fetch!(fetch_optional, ErasureEntry, self.0, &sql, id)?)
    }

    /// Whether the log names this subject hash.
    pub async fn contains(&self, subject_hash: &str) -> Result<bool> {
        let n: i64 = scalar!(
            fetch_one,
            _,
            self.0,
            "SELECT COUNT(*) FROM erasure_log WHERE subject_hash = $1",
            subject_hash
        )?;
        Ok(n > 0)
    }
}

impl Db {
    /// Erases an account: deletes every row the user owns and the user, and appends the
    /// erasure log entry, all in one transaction (all or nothing). [`Error::NotFound`] if there
    /// is no such user (e.g. already erased). Objects in the object store are the caller's to
    /// delete (`Blobs::delete_prefix` on the user's prefix, [`user_prefix`]).
    pub async fn delete_user_everywhere(&self, user: UserId) -> Result<ErasureReport> {
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            // Children first, so that the first statement already takes the write lock (SQLite)
            // and nothing is read before it; then the user row, whose salt names the erasure.
            let history = sqlx::query("DELETE FROM history WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let consents = sqlx::query("DELETE FROM consents WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let preferences = sqlx::query("DELETE FROM preferences WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let mut account_rows = 0;
            for table in ACCOUNT_TABLES {
                account_rows += sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                    .bind(user)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            // Entries this user wrote as an admin stay with their subjects, without the actor.
            sqlx::query("UPDATE audit_log SET actor_id = NULL WHERE actor_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            let salt: Option<Vec<u8>> =
                sqlx::query_scalar("DELETE FROM users WHERE id = $1 RETURNING subject_salt")
                    .bind(user)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(salt) = salt else {
                tx.rollback().await?;
                return Err(Error::NotFound);
            };
            let entry = sqlx::query_as::<_, ErasureEntry>(&format!(
                "INSERT INTO erasure_log (subject_hash, erased_at) VALUES ($1, $2) \
                 RETURNING {COLUMNS}"
            ))
            .bind(subject_hash(user, &salt))
            .bind(now())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(ErasureReport {
                entry,
                history,
                consents,
                preferences,
                account_rows,
            })
        })
    }
}
