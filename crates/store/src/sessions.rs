//! `sessions`: signed-in browsers. The cookie carries a random token; the table keeps only its
//! SHA-256 ([`crate::token_hash`]), the session's CSRF token, and when it expires. Signing in
//! always creates a new row (never reuses the token a browser brought: no fixation), a reset
//! link or erasure removes every row of the user, and a password change from a session keeps
//! only that one.

use std::fmt;

use time::{Duration, OffsetDateTime};

use crate::users::UserId;
use crate::{now, token_hash, Db, Error, Result};

id_type!(SessionId);

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// The token that forms of this session must carry.
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Last request seen with this session (kept to within a minute, to spare the writes).
    pub last_seen_at: Option<OffsetDateTime>,
}

impl Session {
    pub fn last_seen(&self) -> OffsetDateTime {
        self.last_seen_at.unwrap_or(self.created_at)
    }
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

const COLUMNS: &str = "id, user_id, csrf_token, created_at, expires_at, last_seen_at";

table!(
    /// The `sessions` table, borrowed from [`Db::sessions`].
    Sessions
);

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
            "INSERT INTO sessions (user_id, token_hash, csrf_token, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $4) RETURNING {COLUMNS}"
        );
        fetch!(
            fetch_one,
            Session,
            self.0,
            &sql,
            user,
            token_hash(token),
            csrf_token,
            now(),
            expires_at
        )
        .map_err(fk_as_not_found)
    }

    /// The live session for a cookie token; `None` if unknown, expired, or unused for longer
    /// than `idle` (such a row is deleted on the way). A live session's last use is recorded.
    pub async fn get_by_token(
        &self,
        token: &str,
        idle: Option<Duration>,
    ) -> Result<Option<Session>> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE token_hash = $1");
        let found = fetch!(fetch_optional, Session, self.0, &sql, token_hash(token))?;
        let Some(mut s) = found else {
            return Ok(None);
        };
        let now = now();
        if s.expires_at <= now || idle.is_some_and(|i| s.last_seen() + i <= now) {
            self.delete(s.id).await?;
            return Ok(None);
        }
        // Written at most once a minute (more often only for idle limits under 4 minutes).
        let step = idle.map_or(Duration::minutes(1), |i: Duration| {
            (i / 4_i32).min(Duration::minutes(1))
        });
        if now - s.last_seen() >= step {
            exec!(
                self.0,
                "UPDATE sessions SET last_seen_at = $1 WHERE id = $2",
                now,
                s.id
            )
            .map(|_| ())?;
            s.last_seen_at = Some(now);
        }
        Ok(Some(s))
    }

    /// Ends one session (sign-out). True if it existed.
    pub async fn delete(&self, id: SessionId) -> Result<bool> {
        let n = exec!(self.0, "DELETE FROM sessions WHERE id = $1", id)?;
        Ok(n > 0)
    }

    /// Ends the session a cookie token names, if any.
    pub async fn delete_by_token(&self, token: &str) -> Result<bool> {
        let n = exec!(
            self.0,
            "DELETE FROM sessions WHERE token_hash = $1",
            token_hash(token)
        )?;
        Ok(n > 0)
    }

    /// Ends every session of the user (password change or reset); returns how many.
    pub async fn delete_all(&self, user: UserId) -> Result<u64> {
        Ok(exec!(
            self.0,
            "DELETE FROM sessions WHERE user_id = $1",
            user
        )?)
    }

    /// Ends every session of the user but `keep` (a password change from that session);
    /// returns how many.
    pub async fn delete_others(&self, user: UserId, keep: SessionId) -> Result<u64> {
        Ok(exec!(
            self.0,
            "DELETE FROM sessions WHERE user_id = $1 AND id <> $2",
            user,
            keep
        )?)
    }

    /// Deletes every session past its expiry or, with `idle`, unused for that long (for the
    /// sweeper: such rows would otherwise stay until presented). Returns how many.
    pub async fn delete_stale(&self, idle: Option<Duration>) -> Result<u64> {
        let now = now();
        // Without an idle limit no session was last used before 1970.
        let unused_since = idle.map_or(OffsetDateTime::UNIX_EPOCH, |i| now - i);
        // Timestamps are text in SQLite: compare them as instants, not as strings.
        let sql = match self.0 {
            Db::Sqlite(_) => {
                "DELETE FROM sessions WHERE julianday(expires_at) <= julianday($1) \
                 OR julianday(COALESCE(last_seen_at, created_at)) <= julianday($2)"
            }
            Db::Postgres(_) => {
                "DELETE FROM sessions WHERE expires_at <= $1 \
                 OR COALESCE(last_seen_at, created_at) <= $2"
            }
        };
        Ok(exec!(self.0, sql, now, unused_since)?)
    }

    /// The user's live sessions, oldest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<Session>> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY id");
        let all = fetch!(fetch_all, Session, self.0, &sql, user)?;
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
