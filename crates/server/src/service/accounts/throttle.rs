//! Sign-in throttling: failed sign-ins are counted per account and per client address over 15
//! minutes; past `login_failures_per_account` / `login_failures_per_client` a sign-in is
//! refused with 429 before the password is even checked.

use std::net::IpAddr;

use takarir_store::Db;

use crate::error::ApiError;

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

    /// Refuses (with seconds to wait) when the account or the client is over its limit.
    pub async fn check(&self, db: &Db, account: &str, client: IpAddr) -> Result<(), ApiError> {
        let now = takarir_store::jobs::now_ms();
        for (key, limit) in [
            (self.account_key(account), self.per_account),
            (self.client_key(client), self.per_client),
        ] {
            if limit == 0 {
                continue;
            }
            if let Some((n, since)) = db.login_failures().get(&key, now, self.window_ms).await? {
                if n >= i64::from(limit) {
                    let left_ms = (since + self.window_ms - now).max(0);
                    return Err(ApiError::TooManyAttempts {
                        retry_after: ((left_ms + 999) / 1000).max(1) as u64,
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts a failure against the account and the client.
    pub async fn failed(&self, db: &Db, account: &str, client: IpAddr) -> Result<(), ApiError> {
        let now = takarir_store::jobs::now_ms();
        for key in [self.account_key(account), self.client_key(client)] {
            db.login_failures().add(&key, now, self.window_ms).await?;
        }
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

    /// Forgets the account's failures (a successful sign-in, an erased account).
    pub async fn succeeded(&self, db: &Db, account: &str) -> Result<(), ApiError> {
        db.login_failures()
            .clear(&self.account_key(account))
            .await?;
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
        t.failed(&db, "a@x", ip).await.unwrap();
        assert!(t.check(&db, "a@x", ip).await.is_ok());
        t.failed(&db, "A@x", ip).await.unwrap();
        assert!(
            t.check(&db, "a@x", other).await.is_err(),
            "account limit, any client"
        );
        assert!(t.check(&db, "b@x", ip).await.is_ok());
        t.failed(&db, "b@x", ip).await.unwrap();
        assert!(
            t.check(&db, "c@x", ip).await.is_err(),
            "client limit, any account"
        );
        // Another deployment's salt names other keys: the hashes say nothing without it.
        let elsewhere = LoginThrottle::new(2, 3, "0ther".into());
        assert!(elsewhere.check(&db, "a@x", ip).await.is_ok());
        t.succeeded(&db, "a@x").await.unwrap();
        assert!(t.check(&db, "a@x", other).await.is_ok());
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
