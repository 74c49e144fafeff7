//! `email_tokens`: one-time links sent by email, to verify an address or reset a password.
//! Only the token's SHA-256 is stored; a token is consumed (deleted) when used, and is valid
//! only for the address it was sent to.

use time::OffsetDateTime;

use crate::sessions::fk_as_not_found;
use crate::users::UserId;
use crate::{now, token_hash, Result};

/// What an email link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves the user reads the address.
    Verify,
    /// Lets the user set a new password.
    Reset,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Verify => "verify",
            TokenPurpose::Reset => "reset",
        }
    }
}

/// A consumed token: whose it was and the address it was sent to.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UsedToken {
    pub user_id: UserId,
    pub email: String,
    pub expires_at: OffsetDateTime,
}

/// A live token as the user's access document shows it: never the token or its hash.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenInfo {
    /// `verify` or `reset`.
    pub purpose: String,
    /// The address the link was sent to (a previous address, after a change).
    pub email: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

table!(
    /// The `email_tokens` table, borrowed from [`crate::Db::email_tokens`].
    EmailTokens
);

impl EmailTokens<'_> {
    /// Stores a token sent to `email`. Earlier tokens of the same purpose stop working.
    pub async fn create(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        token: &str,
        email: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        on_db!(self.0, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2")
                .bind(user)
                .bind(purpose.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO email_tokens (user_id, purpose, token_hash, email, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(user)
            .bind(purpose.as_str())
            .bind(token_hash(token))
            .bind(email)
            .bind(now())
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(fk_as_not_found)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The user's unused tokens (purpose, address, times), oldest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<TokenInfo>> {
        Ok(fetch!(
            fetch_all,
            TokenInfo,
            self.0,
            "SELECT purpose, email, created_at, expires_at FROM email_tokens \
             WHERE user_id = $1 ORDER BY id",
            user
        )?)
    }

    /// Deletes every unused token of the user (an address change voids the links sent to the
    /// old address); returns how many.
    pub async fn delete_all(&self, user: UserId) -> Result<u64> {
        Ok(exec!(
            self.0,
            "DELETE FROM email_tokens WHERE user_id = $1",
            user
        )?)
    }

    /// Consumes a token: deletes it and returns it if it existed, had this purpose and has
    /// not expired.
    pub async fn consume(&self, purpose: TokenPurpose, token: &str) -> Result<Option<UsedToken>> {
        let used = fetch!(
            fetch_optional,
            UsedToken,
            self.0,
            "DELETE FROM email_tokens WHERE token_hash = $1 AND purpose = $2 \
             RETURNING user_id, email, expires_at",
            token_hash(token),
            purpose.as_str()
        )?;
        Ok(used.filter(|t| t.expires_at > now()))
    }
}
