//! `audit_log`: each time staff opened one user's personal data, who did it, why and when. The
//! user (`user_id`) sees their entries on the access page; an entry goes with that user's
//! account, and an erased admin's entries keep everything but the admin (`actor_id` NULL).

use time::OffsetDateTime;

use crate::sessions::fk_as_not_found;
use crate::users::UserId;
use crate::{now, Error, Result};

id_type!(AuditId);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: AuditId,
    /// Whose data was opened.
    pub user_id: UserId,
    /// The admin who opened it (`None` once that admin's account is erased).
    pub actor_id: Option<UserId>,
    pub action: String,
    pub reason: String,
    /// What the entry refers to, when the action alone does not say (a training export's time).
    pub detail: Option<String>,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "id, user_id, actor_id, action, reason, detail, created_at";

table!(
    /// The `audit_log` table, borrowed from [`crate::Db::audit`].
    Audit
);

impl Audit<'_> {
    /// Records an access; the reason is required.
    pub async fn record(
        &self,
        subject: UserId,
        actor: UserId,
        action: &str,
        reason: &str,
    ) -> Result<AuditEntry> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Invalid("reason", "a reason is required".into()));
        }
        let sql = format!(
            "INSERT INTO audit_log (user_id, actor_id, action, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        fetch!(
            fetch_one,
            AuditEntry,
            self.0,
            &sql,
            subject,
            actor,
            action,
            reason,
            now()
        )
        .map_err(fk_as_not_found)
    }

    /// Records something the operator did with the user's data from the command line (no staff
    /// account: `actor_id` stays NULL), for example a training export; the reason is required.
    pub async fn record_operator(
        &self,
        subject: UserId,
        action: &str,
        reason: &str,
        detail: &str,
    ) -> Result<AuditEntry> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Invalid("reason", "a reason is required".into()));
        }
        let sql = format!(
            "INSERT INTO audit_log (user_id, actor_id, action, reason, detail, created_at) \
             VALUES ($1, NULL, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        fetch!(
            fetch_one,
            AuditEntry,
            self.0,
            &sql,
            subject,
            action,
            reason,
            detail,
            now()
        )
        .map_err(fk_as_not_found)
    }

    /// Entries about the user, oldest first.
    pub async fn list(&self, subject: UserId) -> Result<Vec<AuditEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE user_id = $1 ORDER BY id");
        Ok(fetch!(fetch_all, AuditEntry, self.0, &sql, subject)?)
    }
}
