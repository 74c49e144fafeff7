//! Sign-in throttling: failed sign-ins are counted per account and per client address over 15
//! minutes; past `login_failures_per_account` / `login_failures_per_client` a sign-in is
//! refused with 429 before the password is even checked.

use std::net::IpAddr;

use takarir_store::Db;

use crate::error::ApiError;

/// Failed sign-ins per account and per client, over a fixed window. The counters live in the
/// database (`login_failures`, keys hashed), so every node behind a load balancer sees the same
/// counts.
pub struct LoginThrottle {
    per_account: u32,
    per_client: u32,
    window_ms: i64,
}

impl LoginThrottle {
    /// Limits per 15 minutes; 0 turns a limit off.
    pub fn new(per_account: u32, per_client: u32) -> Self {
        LoginThrottle {
            per_account,
            per_client,
            window_ms: 15 * 60 * 1000,
        }
    }

    /// The window, in milliseconds (the sweeper deletes counters older than this).
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    fn account_key(account: &str) -> String {
        format!("a:{}", account.trim().to_lowercase())
    }

    fn client_key(client: IpAddr) -> String {
        format!("c:{client}")
    }

    /// Refuses (with seconds to wait) when the account or the client is over its limit.
    pub async fn check(&self, db: &Db, account: &str, client: IpAddr) -> Result<(), ApiError> {
        let now = takarir_store::jobs::now_ms();
        for (key, limit) in [
            (Self::account_key(account), self.per_account),
            (Self::client_key(client), self.per_client),
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
        for key in [Self::account_key(account), Self::client_key(client)] {
            db.login_failures().add(&key, now, self.window_ms).await?;
        }
        Ok(())
    }

    /// Forgets the account's failures (a successful sign-in, an erased account).
    pub async fn succeeded(&self, db: &Db, account: &str) -> Result<(), ApiError> {
        db.login_failures()
            .clear(&Self::account_key(account))
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
        let t = LoginThrottle::new(2, 3);
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
