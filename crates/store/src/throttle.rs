//! `login_failures`: failed sign-in counters over a fixed window, per account and per client,
//! shared by every node. Keys are hashed before they reach the database.

use sha2::{Digest, Sha256};

use crate::{Db, Result};

/// The stored form of a throttle key.
fn key_hash(key: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"takarir-login-v1\0");
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

/// The table, borrowed from [`Db::login_failures`].
pub struct LoginFailures<'a>(pub(crate) &'a Db);

impl LoginFailures<'_> {
    /// Failures of `key` in the window still open at `now_ms`, and when that window started.
    pub async fn get(&self, key: &str, now_ms: i64, window_ms: i64) -> Result<Option<(i64, i64)>> {
        let row: Option<(i64, i64)> = on_db!(self.0, pool => sqlx::query_as(
            "SELECT count, window_start_ms FROM login_failures \
             WHERE key_hash = $1 AND window_start_ms > $2",
        )
        .bind(key_hash(key))
        .bind(now_ms - window_ms)
        .fetch_optional(pool)
        .await)?;
        Ok(row)
    }

    /// Counts one failure of `key`; a window that has passed starts again at `now_ms`.
    pub async fn add(&self, key: &str, now_ms: i64, window_ms: i64) -> Result<()> {
        exec!(
            self.0,
            "INSERT INTO login_failures (key_hash, count, window_start_ms) VALUES ($1, 1, $2) \
             ON CONFLICT (key_hash) DO UPDATE SET \
             count = CASE WHEN login_failures.window_start_ms <= $3 THEN 1 \
                          ELSE login_failures.count + 1 END, \
             window_start_ms = CASE WHEN login_failures.window_start_ms <= $3 THEN $2 \
                                    ELSE login_failures.window_start_ms END",
            key_hash(key),
            now_ms,
            now_ms - window_ms
        )
        .map(|_| ())?;
        Ok(())
    }

    /// Counts one attempt of `key` and answers the count it makes in the window (started again
    /// at `now_ms` if the last one has passed), in one statement: concurrent attempts each get
    /// their own count, so none can slip under a limit that the others are about to reach.
    pub async fn take(&self, key: &str, now_ms: i64, window_ms: i64) -> Result<i64> {
        let (count,): (i64,) = on_db!(self.0, pool => sqlx::query_as(
            "INSERT INTO login_failures (key_hash, count, window_start_ms) VALUES ($1, 1, $2) \
             ON CONFLICT (key_hash) DO UPDATE SET \
             count = CASE WHEN login_failures.window_start_ms <= $3 THEN 1 \
                          ELSE login_failures.count + 1 END, \
             window_start_ms = CASE WHEN login_failures.window_start_ms <= $3 THEN $2 \
                                    ELSE login_failures.window_start_ms END \
             RETURNING count",
        )
        .bind(key_hash(key))
        .bind(now_ms)
        .bind(now_ms - window_ms)
        .fetch_one(pool)
        .await)?;
        Ok(count)
    }

    /// Takes back one attempt [`LoginFailures::take`] counted (it was refused, or succeeded).
    pub async fn give_back(&self, key: &str) -> Result<()> {
        exec!(
            self.0,
            "UPDATE login_failures SET count = count - 1 WHERE key_hash = $1 AND count > 0",
            key_hash(key)
        )
        .map(|_| ())?;
        Ok(())
    }

    /// Forgets `key` (a successful sign-in, an erased account).
    pub async fn clear(&self, key: &str) -> Result<()> {
        exec!(
            self.0,
            "DELETE FROM login_failures WHERE key_hash = $1",
            key_hash(key)
        )
        .map(|_| ())?;
        Ok(())
    }

    /// Deletes counters whose window started before `before_ms`; returns how many.
    pub async fn delete_expired(&self, before_ms: i64) -> Result<u64> {
        Ok(exec!(
            self.0,
            "DELETE FROM login_failures WHERE window_start_ms <= $1",
            before_ms
        )?)
    }
}
