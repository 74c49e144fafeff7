//! `sessions`: signed-in browsers. The cookie carries a random token; the table keeps only its
//! SHA-256 ([`crate::token_hash`]), the session's CSRF token, and when it expires. Signing in
//! always creates a new row (never reuses the token a browser brought: no fixation), a reset
//! link or erasure removes every row of the user, and a password change from a session keeps
//! only that one.

use std::fmt;

use time::OffsetDateTime;

use crate::users::UserId;
use crate::{now, token_hash, Db, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// The token that forms of this session must carry.
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("csrf_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, user_id, csrf_token, created_at, expires_at";

/// The `sessions` table, borrowed from [`Db::sessions`].
pub struct Sessions<'a>(pub(crate) &'a Db);

impl Sessions<'_> {
    /// Stores a new session for `token` (the caller made it random and keeps it only in the
    /// cookie). [`Error::NotFound`] if the user does not exist.
    pub async fn create(
        &self,
        user: UserId,
        token: &str,
        csrf_token: &str,
        expires_at: OffsetDateTime,
    ) -> Result<Session> {
        let sql = format!(
            "INSERT INTO sessions (user_id, token_hash, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        on_db!(self.0, pool => sqlx::query_as::<_, Session>(&sql)
            .bind(user)
            .bind(token_hash(token))
            .bind(csrf_token)
            .bind(now())
            .bind(expires_at)
            .fetch_one(pool)
            .await)
        .map_err(fk_as_not_found)
    }

    /// The live session for a cookie token; `None` if unknown or expired (an expired row is
    /// deleted on the way).
    pub async fn get_by_token(&self, token: &str) -> Result<Option<Session>> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE token_hash = $1");
        let found = on_db!(self.0, pool => sqlx::query_as::<_, Session>(&sql)
            .bind(token_hash(token))
            .fetch_optional(pool)
            .await)?;
        match found {
            Some(s) if s.expires_at <= now() => {
                self.delete(s.id).await?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// Ends one session (sign-out). True if it existed.
    pub async fn delete(&self, id: SessionId) -> Result<bool> {
        let n = on_db!(self.0, pool => sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Ends the session a cookie token names, if any.
    pub async fn delete_by_token(&self, token: &str) -> Result<bool> {
        let n = on_db!(self.0, pool => sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Ends every session of the user (password change or reset); returns how many.
    pub async fn delete_all(&self, user: UserId) -> Result<u64> {
        Ok(
            on_db!(self.0, pool => sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?,
        )
    }

    /// Ends every session of the user but `keep` (a password change from that session);
    /// returns how many.
    pub async fn delete_others(&self, user: UserId, keep: SessionId) -> Result<u64> {
        Ok(
            on_db!(self.0, pool => sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user)
            .bind(keep)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?,
        )
    }

    /// The user's live sessions, oldest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<Session>> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY id");
        let all = on_db!(self.0, pool => sqlx::query_as::<_, Session>(&sql)
            .bind(user)
            .fetch_all(pool)
            .await)?;
        let now = now();
        Ok(all.into_iter().filter(|s| s.expires_at > now).collect())
    }
}

/// Maps a foreign-key violation (the user is gone) to [`Error::NotFound`].
pub(crate) fn fk_as_not_found(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::NotFound,
        _ => Error::Database(e),
    }
}
