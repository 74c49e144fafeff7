//! Sign-in throttling, decided before a password is hashed (each check costs a 19 MiB argon2
//! hash, so it must not be possible to make many at once):
//! - per client address, attempts are counted atomically in the database *before* hashing
//!   ([`LoginThrottle::admit`]); past `login_failures_per_client` in 15 minutes: 429. A
//!   successful attempt is given back, so only failures stay counted.
//! - per account, failures only slow sign-ins down, never refuse them: past
//!   `login_failures_per_account`, each attempt waits 1 s, doubling with each further failure,
//!   at most [`MAX_ACCOUNT_DELAY_SECS`]. Anyone can make an account fail, so a hard per-account
//!   lock-out would let anyone lock its owner out from everywhere.

use std::net::IpAddr;
use std::time::Duration;

use takarir_store::Db;

use crate::error::ApiError;

/// The longest wait a sign-in to an account under attack gets.
pub const MAX_ACCOUNT_DELAY_SECS: u64 = 8;

/// Failed sign-ins per account and per client, over a fixed window. The counters live in the
/// database (`login_failures`, keys hashed), so every node behind a load balancer sees the same
/// counts.
///
/// Keys are salted with a secret of the deployment (`throttle_salt`, else
/// `data_dir/throttle.salt`) before they are hashed: client addresses and account names are
/// few enough to enumerate, so an unsalted hash in a copy of the database would give them away.
pub struct LoginThrottle {
    per_account: u32,
    per_client: u32,
    window_ms: i64,
    salt: String,
}

/// An admitted sign-in attempt: counted against its client until [`LoginThrottle::succeeded`]
/// gives it back, and the wait its account imposes.
pub struct Attempt {
    counted: bool,
    /// How long to wait before checking the password.
    pub delay: Duration,
}

impl LoginThrottle {
    /// Limits per 15 minutes; 0 turns a limit off. `salt` is the deployment's secret (hex).
    pub fn new(per_account: u32, per_client: u32, salt: String) -> Self {
        LoginThrottle {
            per_account,
            per_client,
            window_ms: 15 * 60 * 1000,
            salt,
        }
    }

    fn account_key(&self, account: &str) -> String {
        format!("{}:a:{}", self.salt, account.trim().to_lowercase())
    }

    fn client_key(&self, client: IpAddr) -> String {
        format!("{}:c:{client}", self.salt)
    }

    /// Admits an attempt before its password is checked: counts it against the client (429,
    /// with seconds to wait, past the client's limit) and says how long the account makes it
    /// wait.
    pub async fn admit(&self, db: &Db, account: &str, client: IpAddr) -> Result<Attempt, ApiError> {
        let now = takarir_store::jobs::now_ms();
        let lf = db.login_failures();
        let mut counted = false;
        if self.per_client > 0 {
            let key = self.client_key(client);
            let n = lf.take(&key, now, self.window_ms).await?;
            if n > i64::from(self.per_client) {
                // Refused before any hashing: it costs nothing, so it does not count.
                lf.give_back(&key).await?;
                let since = lf
                    .get(&key, now, self.window_ms)
                    .await?
                    .map_or(now, |(_, since)| since);
                let left_ms = (since + self.window_ms - now).max(0);
                return Err(ApiError::TooManyAttempts {
                    retry_after: ((left_ms + 999) / 1000).max(1) as u64,
                });
            }
            counted = true;
        }
        let mut delay = Duration::ZERO;
        if self.per_account > 0 {
            let failures = lf
                .get(&self.account_key(account), now, self.window_ms)
                .await?
                .map_or(0, |(n, _)| n);
            if failures >= i64::from(self.per_account) {
                let over = (failures - i64::from(self.per_account)).min(16) as u32;
                delay = Duration::from_secs((1u64 << over).min(MAX_ACCOUNT_DELAY_SECS));
            }
        }
        Ok(Attempt { counted, delay })
    }

    /// Counts a failure against the account (the client's attempt stays counted).
    pub async fn failed(&self, db: &Db, account: &str) -> Result<(), ApiError> {
        let now = takarir_store::jobs::now_ms();
        db.login_failures()
            .add(&self.account_key(account), now, self.window_ms)
            .await?;
        Ok(())
    }

    /// Deletes counters whose window has passed (every few seconds: nothing of a failed
    /// sign-in outlives its 15 minutes by more than that).
    pub async fn sweep(&self, db: &Db) -> takarir_store::Result<u64> {
        let now = takarir_store::jobs::now_ms();
        db.login_failures()
            .delete_expired(now - self.window_ms)
            .await
    }

    /// A successful sign-in: forgets the account's failures and gives the client its attempt
    /// back (also used for an erased account, with no attempt).
    pub async fn succeeded(
        &self,
        db: &Db,
        account: &str,
        attempt: Option<(&Attempt, IpAddr)>,
    ) -> Result<(), ApiError> {
        db.login_failures()
            .clear(&self.account_key(account))
            .await?;
        if let Some((a, client)) = attempt {
            if a.counted {
                db.login_failures()
                    .give_back(&self.client_key(client))
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttle_per_account_and_client() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let t = LoginThrottle::new(2, 3, "5a17".into());
        let ip = IpAddr::from([10, 0, 0, 1]);
        let other = IpAddr::from([10, 0, 0, 2]);
        let a = t.admit(&db, "a@x", ip).await.unwrap();
        assert_eq!(a.delay, Duration::ZERO);
        t.failed(&db, "a@x").await.unwrap();
        t.admit(&db, "A@x", ip).await.unwrap();
        t.failed(&db, "A@x").await.unwrap();
        // The account is over its limit: slowed down from any client, never refused.
        let slowed = t.admit(&db, "a@x", other).await.unwrap();
        assert_eq!(slowed.delay, Duration::from_secs(1));
        t.succeeded(&db, "a@x", Some((&slowed, other)))
            .await
            .unwrap();
        assert_eq!(
            t.admit(&db, "a@x", other).await.unwrap().delay,
            Duration::ZERO
        );
        // The client is over its limit (3 attempts counted): refused, any account.
        t.admit(&db, "b@x", ip).await.unwrap();
        assert!(matches!(
            t.admit(&db, "c@x", ip).await,
            Err(ApiError::TooManyAttempts { .. })
        ));
        // Another deployment's salt names other keys: the hashes say nothing without it.
        let elsewhere = LoginThrottle::new(2, 3, "0ther".into());
        assert!(elsewhere.admit(&db, "b@x", ip).await.is_ok());
        assert_eq!(
            elsewhere.admit(&db, "a@x", ip).await.unwrap().delay,
            Duration::ZERO
        );
        // Nothing readable is stored: neither the address nor the client.
        let Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        let keys: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM login_failures")
            .fetch_all(pool)
            .await
            .unwrap();
        assert!(!keys.is_empty());
        assert!(keys
            .iter()
            .all(|(k,)| k.len() == 64 && !k.contains('@') && !k.contains("10.0")));
        // Windows that have passed are swept.
        let gone = db
            .login_failures()
            .delete_expired(takarir_store::jobs::now_ms() + 1)
            .await
            .unwrap();
        assert_eq!(gone as usize, keys.len());
    }
}
