//! `consents`: the append-only consent ledger (user, purpose, granted or withdrawn, policy
//! version, time). Rows are never updated (a database trigger refuses it); they go only with the
//! whole account, in [`crate::Db::delete_user_everywhere`].

use std::fmt;

use time::OffsetDateTime;

use crate::users::UserId;
use crate::{now, Db, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct ConsentId(pub i64);

impl fmt::Display for ConsentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Purpose of the consent to use an uploaded image and its caption for training.
pub const PURPOSE_TRAINING: &str = "training";
/// Purpose recording that the user acknowledged a version of the privacy policy.
pub const PURPOSE_POLICY: &str = "policy";

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Consent {
    pub id: ConsentId,
    pub user_id: UserId,
    pub purpose: String,
    /// True when granted, false when withdrawn.
    pub granted: bool,
    pub policy_version: String,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "id, user_id, purpose, granted, policy_version, created_at";

/// The `consents` table, borrowed from [`Db::consents`].
pub struct Consents<'a>(pub(crate) &'a Db);

impl Consents<'_> {
    /// Appends a grant (`granted = true`) or a withdrawal (`false`) to the ledger.
    pub async fn record(
        &self,
        user: UserId,
        purpose: &str,
        granted: bool,
        policy_version: &str,
    ) -> Result<Consent> {
        if purpose.is_empty() || policy_version.is_empty() {
            return Err(Error::Invalid(
                "consent",
                "purpose and policy version are required".into(),
            ));
        }
        let sql = format!(
            "INSERT INTO consents (user_id, purpose, granted, policy_version, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        on_db!(self.0, pool => sqlx::query_as::<_, Consent>(&sql)
            .bind(user)
            .bind(purpose)
            .bind(granted)
            .bind(policy_version)
            .bind(now())
            .fetch_one(pool)
            .await)
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::NotFound,
            _ => Error::Database(e),
        })
    }

    /// One ledger entry, if it is this user's.
    pub async fn get(&self, user: UserId, id: ConsentId) -> Result<Option<Consent>> {
        let sql = format!("SELECT {COLUMNS} FROM consents WHERE id = $1 AND user_id = $2");
        Ok(on_db!(self.0, pool => sqlx::query_as::<_, Consent>(&sql)
            .bind(id)
            .bind(user)
            .fetch_optional(pool)
            .await)?)
    }

    /// The user's whole ledger, oldest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<Consent>> {
        let sql = format!("SELECT {COLUMNS} FROM consents WHERE user_id = $1 ORDER BY id");
        Ok(on_db!(self.0, pool => sqlx::query_as::<_, Consent>(&sql)
            .bind(user)
            .fetch_all(pool)
            .await)?)
    }

    /// The latest entry for a purpose: whether consent currently stands, and under which policy.
    pub async fn latest(&self, user: UserId, purpose: &str) -> Result<Option<Consent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM consents WHERE user_id = $1 AND purpose = $2 \
             ORDER BY id DESC LIMIT 1"
        );
        Ok(on_db!(self.0, pool => sqlx::query_as::<_, Consent>(&sql)
            .bind(user)
            .bind(purpose)
            .fetch_optional(pool)
            .await)?)
    }

    /// True when the latest entry for `purpose` is a grant.
    pub async fn is_granted(&self, user: UserId, purpose: &str) -> Result<bool> {
        Ok(self.latest(user, purpose).await?.is_some_and(|c| c.granted))
    }
}
