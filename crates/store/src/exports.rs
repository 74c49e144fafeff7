//! `exports`: a user's data export (a ZIP in the object store) and its download link. The link
//! carries a random token, stored as SHA-256; it works until `expires_at` (7 days, set by the
//! caller) or until the user revokes it, which deletes the row (the caller deletes the object).
//! A row is made `pending` when the export is asked for and becomes `ready` once its ZIP is
//! stored (or `failed`), so a large export never holds a request open.

use time::OffsetDateTime;

use crate::sessions::fk_as_not_found;
use crate::users::UserId;
use crate::{now, token_hash, Db, Result};

id_type!(ExportId);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Export {
    pub id: ExportId,
    pub user_id: UserId,
    pub object_path: String,
    pub size_bytes: i64,
    /// [`PENDING`], [`READY`] or [`FAILED`].
    pub status: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The ZIP is being made; its link answers "not yet".
pub const PENDING: &str = "pending";
/// The ZIP is stored and downloads until the link expires.
pub const READY: &str = "ready";
/// The ZIP could not be made; nothing is stored.
pub const FAILED: &str = "failed";

const COLUMNS: &str = "id, user_id, object_path, size_bytes, status, created_at, expires_at";

table!(
    /// The `exports` table, borrowed from [`Db::exports`].
    Exports
);

impl Exports<'_> {
    /// A pending export, before its ZIP is made.
    pub async fn create(
        &self,
        user: UserId,
        token: &str,
        object_path: &str,
        expires_at: OffsetDateTime,
    ) -> Result<Export> {
        let sql = format!(
            "INSERT INTO exports (user_id, token_hash, object_path, size_bytes, status, created_at, expires_at) \
             VALUES ($1, $2, $3, 0, '{PENDING}', $4, $5) RETURNING {COLUMNS}"
        );
        fetch!(
            fetch_one,
            Export,
            self.0,
            &sql,
            user,
            token_hash(token),
            object_path,
            now(),
            expires_at
        )
        .map_err(fk_as_not_found)
    }

    /// A pending export's ZIP is stored: it becomes ready. False when the row is gone (revoked,
    /// or the account erased, while the ZIP was made) or no longer pending: the caller deletes
    /// the object it just stored.
    pub async fn finish(&self, id: ExportId, size_bytes: u64) -> Result<bool> {
        let sql = format!(
            "UPDATE exports SET status = '{READY}', size_bytes = $2 WHERE id = $1 AND status = '{PENDING}'"
        );
        let done = exec!(self.0, &sql, id, size_bytes as i64)?;
        Ok(done == 1)
    }

    /// A pending export could not be made.
    pub async fn fail(&self, id: ExportId) -> Result<()> {
        let sql = format!(
            "UPDATE exports SET status = '{FAILED}' WHERE id = $1 AND status = '{PENDING}'"
        );
        exec!(self.0, &sql, id).map(|_| ())?;
        Ok(())
    }

    /// Exports still pending since `before` (their node stopped while making them) are marked
    /// failed; returns their object paths, for the caller to delete whatever was stored.
    pub async fn fail_stale(&self, before: OffsetDateTime) -> Result<Vec<String>> {
        let sql = match self.0 {
            Db::Sqlite(_) => format!(
                "UPDATE exports SET status = '{FAILED}' WHERE status = '{PENDING}' \
                 AND julianday(created_at) <= julianday($1) RETURNING object_path"
            ),
            Db::Postgres(_) => format!(
                "UPDATE exports SET status = '{FAILED}' WHERE status = '{PENDING}' \
                 AND created_at <= $1 RETURNING object_path"
            ),
        };
        Ok(scalar!(fetch_all, String, self.0, &sql, before)?)
    }

    /// The export a download token names, if it has not expired.
    pub async fn get_by_token(&self, token: &str) -> Result<Option<Export>> {
        let sql = format!("SELECT {COLUMNS} FROM exports WHERE token_hash = $1");
        let e = fetch!(fetch_optional, Export, self.0, &sql, token_hash(token))?;
        Ok(e.filter(|e| e.expires_at > now()))
    }

    pub async fn list(&self, user: UserId) -> Result<Vec<Export>> {
        let sql = format!("SELECT {COLUMNS} FROM exports WHERE user_id = $1 ORDER BY id");
        Ok(fetch!(fetch_all, Export, self.0, &sql, user)?)
    }

    /// Revokes one of the user's exports; returns its object path to delete.
    pub async fn delete(&self, user: UserId, id: ExportId) -> Result<Option<String>> {
        Ok(scalar!(
            fetch_optional,
            String,
            self.0,
            "DELETE FROM exports WHERE id = $1 AND user_id = $2 RETURNING object_path",
            id,
            user
        )?)
    }

    /// Expired exports of everyone (for the sweeper): deletes the rows, returns the object paths.
    pub async fn delete_expired(&self) -> Result<Vec<String>> {
        let sql = match self.0 {
            Db::Sqlite(_) => {
                "DELETE FROM exports WHERE julianday(expires_at) <= julianday($1) RETURNING object_path"
            }
            Db::Postgres(_) => "DELETE FROM exports WHERE expires_at <= $1 RETURNING object_path",
        };
        Ok(scalar!(fetch_all, String, self.0, sql, now())?)
    }
}
