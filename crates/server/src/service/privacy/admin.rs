//! What staff may see: aggregates without personal data, account status without addresses,
//! and one user's data for a stated reason, recorded in the audit log that user sees.

use takarir_store::users::{Role, User, UserId};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::service::accounts::auth::Auth;
use crate::service::privacy::access_document;
use crate::state::AppState;
use crate::views::{AccessDocument, AdminStats, AdminUser, UsageRow};

/// Most accounts [`users`] lists.
pub const USER_LIST_LIMIT: u32 = 1000;

/// Aggregates over every account (read 500 at a time) and the last 30 days of captions.
pub async fn stats(state: &AppState, admin: &Auth) -> Result<AdminStats, ApiError> {
    admin.require_admin()?;
    let db = state.db();
    let (mut accounts, mut verified, mut admins) = (0, 0, 0);
    let mut after = None;
    loop {
        let page = db.users().list(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        accounts += page.len() as u64;
        verified += page
            .iter()
            .filter(|u| u.email_verified_at.is_some())
            .count() as u64;
        admins += page.iter().filter(|u| u.role == Role::Admin).count() as u64;
    }
    let today = OffsetDateTime::now_utc().date();
    let usage = db
        .usage()
        .list(today - time::Duration::days(30), today)
        .await?;
    Ok(AdminStats {
        accounts,
        verified_accounts: verified,
        admins,
        usage_last_30_days: usage.iter().map(UsageRow::from).collect(),
    })
}

/// Account status, oldest first, at most [`USER_LIST_LIMIT`].
pub async fn users(state: &AppState, admin: &Auth) -> Result<Vec<AdminUser>, ApiError> {
    admin.require_admin()?;
    let users = state.db().users().list(None, USER_LIST_LIMIT).await?;
    Ok(users.iter().map(AdminUser::from).collect())
}

/// One user's data, for a stated reason (400 without one), recorded in their audit log first.
pub async fn access(
    state: &AppState,
    admin: &User,
    subject: UserId,
    reason: &str,
) -> Result<AccessDocument, ApiError> {
    if reason.trim().is_empty() {
        return Err(ApiError::ReasonRequired);
    }
    let db = state.db();
    let subject = db.users().get(subject).await?.ok_or(ApiError::NotFound)?;
    db.audit()
        .record(subject.id, admin.id, "view_personal_data", reason)
        .await?;
    access_document(state, &subject).await
}
