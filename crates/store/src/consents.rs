//! `consents`: the append-only consent ledger (user, purpose, granted or withdrawn, policy
//! version, time). Rows are never updated (a database trigger refuses it); they go only with the
//! whole account, in [`crate::Db::delete_user_everywhere`].

use time::OffsetDateTime;

use crate::sessions::fk_as_not_found;
use crate::users::UserId;
use crate::{now, Error, Result};

id_type!(ConsentId);

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

table!(
    /// The `consents` table, borrowed from [`crate::Db::consents`].
    Consents
);

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
        fetch!(
            fetch_one,
            Consent,
            self.0,
            &sql,
            user,
            purpose,
            granted,
            policy_version,
            now()
        )
        .map_err(fk_as_not_found)
    }

    /// One ledger entry, if it is this user's.
    pub async fn get(&self, user: UserId, id: ConsentId) -> Result<Option<Consent>> {
        let sql = format!("SELECT {COLUMNS} FROM consents WHERE id = $1 AND user_id = $2");
        Ok(fetch!(fetch_optional, Consent, self.0, &sql, id, user)?)
    }

    /// The user's whole ledger, oldest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<Consent>> {
        let sql = format!("SELECT {COLUMNS} FROM consents WHERE user_id = $1 ORDER BY id");
        Ok(fetch!(fetch_all, Consent, self.0, &sql, user)?)
    }

    /// The latest entry for a purpose: whether consent currently stands, and under which policy.
    pub async fn latest(&self, user: UserId, purpose: &str) -> Result<Option<Consent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM consents WHERE user_id = $1 AND purpose = $2 \
             ORDER BY id DESC LIMIT 1"
        );
        Ok(fetch!(
            fetch_optional,
            Consent,
            self.0,
            &sql,
            user,
            purpose
        )?)
    }

    /// True when the latest entry for `purpose` is a grant.
    pub async fn is_granted(&self, user: UserId, purpose: &str) -> Result<bool> {
        Ok(self.latest(user, purpose).await?.is_some_and(|c| c.granted))
    }
}
