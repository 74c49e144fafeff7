//! `api_keys`: keys for the API (`Authorization: Bearer KEY`). A key is shown once, when it is
//! made; the table keeps its SHA-256, a short prefix to recognise it by, a name and its scopes
//! (space-separated words the server defines).

use time::OffsetDateTime;

use crate::sessions::fk_as_not_found;
use crate::users::{found, UserId};
use crate::{now, token_hash, Result};

id_type!(ApiKeyId);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    /// The key's first characters, to tell keys apart in a list.
    pub prefix: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

impl ApiKey {
    /// Whether the key carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.split_whitespace().any(|s| s == scope)
    }
}

const COLUMNS: &str = "id, user_id, name, prefix, scopes, created_at, last_used_at";

table!(
    /// The `api_keys` table, borrowed from [`crate::Db::api_keys`].
    ApiKeys
);

impl ApiKeys<'_> {
    /// Stores a key (its hash) for the user.
    pub async fn create(
        &self,
        user: UserId,
        name: &str,
        key: &str,
        scopes: &[&str],
    ) -> Result<ApiKey> {
        let prefix: String = key.chars().take(12).collect();
        let sql = format!(
            "INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        );
        fetch!(
            fetch_one,
            ApiKey,
            self.0,
            &sql,
            user,
            name,
            &prefix,
            token_hash(key),
            scopes.join(" "),
            now()
        )
        .map_err(fk_as_not_found)
    }

    /// The key a bearer token names, marking it used.
    pub async fn authenticate(&self, key: &str) -> Result<Option<ApiKey>> {
        let sql = format!(
            "UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2 RETURNING {COLUMNS}"
        );
        Ok(fetch!(
            fetch_optional,
            ApiKey,
            self.0,
            &sql,
            now(),
            token_hash(key)
        )?)
    }

    pub async fn list(&self, user: UserId) -> Result<Vec<ApiKey>> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id");
        Ok(fetch!(fetch_all, ApiKey, self.0, &sql, user)?)
    }

    /// Revokes (deletes) one of the user's keys.
    pub async fn delete(&self, user: UserId, id: ApiKeyId) -> Result<()> {
        let n = exec!(
            self.0,
            "DELETE FROM api_keys WHERE id = $1 AND user_id = $2",
            id,
            user
        )?;
        found(n)
    }

    /// Revokes every key of the user (a password reset); how many there were.
    pub async fn delete_all(&self, user: UserId) -> Result<u64> {
        Ok(exec!(
            self.0,
            "DELETE FROM api_keys WHERE user_id = $1",
            user
        )?)
    }
}
