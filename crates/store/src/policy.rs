//! `policy_notices`: which significant privacy-policy versions each user has been emailed
//! about, so that each is emailed once. Acknowledgements themselves are consent-ledger entries
//! (purpose [`crate::consents::PURPOSE_POLICY`]).

use crate::sessions::fk_as_not_found;
use crate::users::UserId;
use crate::{now, Result};

table!(
    /// The `policy_notices` table, borrowed from [`crate::Db::policy_notices`].
    PolicyNotices
);

impl PolicyNotices<'_> {
    /// Claims the notice email for (`user`, `version`): true the first time only, so concurrent
    /// senders (several nodes) email once.
    pub async fn claim(&self, user: UserId, version: &str) -> Result<bool> {
        let n = exec!(
            self.0,
            "INSERT INTO policy_notices (user_id, policy_version, emailed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, policy_version) DO NOTHING",
            user,
            version,
            now()
        )
        .map_err(fk_as_not_found)?;
        Ok(n > 0)
    }

    /// The notices the user was emailed: version and when, oldest first.
    pub async fn list_sent(&self, user: UserId) -> Result<Vec<(String, time::OffsetDateTime)>> {
        Ok(fetch!(
            fetch_all,
            (String, time::OffsetDateTime),
            self.0,
            "SELECT policy_version, emailed_at FROM policy_notices WHERE user_id = $1 \
             ORDER BY emailed_at, policy_version",
            user
        )?)
    }

    /// The versions the user was emailed about.
    pub async fn list(&self, user: UserId) -> Result<Vec<String>> {
        Ok(scalar!(
            fetch_all,
            String,
            self.0,
            "SELECT policy_version FROM policy_notices WHERE user_id = $1 ORDER BY policy_version",
            user
        )?)
    }
}
