//! Privacy-policy acknowledgements and notices: a signed-in user whose latest acknowledgement
//! (a consent-ledger entry with purpose `policy`) is older than the newest *significant*
//! version sees a notice until they acknowledge it, and is emailed once (`policy_notices`
//! records the email, so restarts and several nodes send it once).

use takarir_store::consents::PURPOSE_POLICY;
use takarir_store::users::{User, UserId};

use crate::error::ApiError;
use crate::policy::PolicyVersion;
use crate::state::AppState;

/// The significant version the user has not acknowledged yet, if any.
pub async fn pending_for(
    state: &AppState,
    user: UserId,
) -> Result<Option<PolicyVersion>, ApiError> {
    let latest = state.db().consents().latest(user, PURPOSE_POLICY).await?;
    let acked = latest.filter(|c| c.granted).map(|c| c.policy_version);
    Ok(state.policy().pending(acked.as_deref()).cloned())
}

/// Records that the user acknowledged `version` (the current one if `None`).
pub async fn acknowledge(
    state: &AppState,
    user: &User,
    version: Option<&str>,
) -> Result<(), ApiError> {
    let current = state.policy().current().version.clone();
    let version = version.unwrap_or(&current);
    if !state.policy().versions.iter().any(|v| v.version == version) {
        return Err(ApiError::InvalidOption {
            name: "version".into(),
            value: version.chars().take(20).collect(),
            expected: "a policy version",
        });
    }
    state
        .db()
        .consents()
        .record(user.id, PURPOSE_POLICY, true, version)
        .await?;
    Ok(())
}

/// Emails every user with a pending significant version about it, once per version.
pub async fn notify_all(state: &AppState) -> Result<u64, ApiError> {
    if !state.mailer().enabled() {
        return Ok(0);
    }
    let db = state.db();
    let mut after = None;
    let mut sent = 0;
    loop {
        let users = db.users().list(after, 200).await?;
        let Some(last) = users.last() else { break };
        after = Some(last.id);
        for user in users {
            let Some(v) = pending_for(state, user.id).await? else {
                continue;
            };
            if !db.policy_notices().claim(user.id, &v.version).await? {
                continue;
            }
            let url = format!("{}/account", state.config().public_url());
            let body = format!(
                "Kebijakan privasi Takarir versi {v} (berlaku {d}) telah terbit.\n{si}\n\
                 Baca dan setujui di: {url}\n\n\
                 Takarir's privacy policy version {v} (effective {d}) is out.\n{se}\n\
                 Read and acknowledge it at: {url}\n",
                v = v.version,
                d = v.date,
                si = v.summary_id,
                se = v.summary_en,
            );
            state
                .mailer()
                .send_logged(
                    &user.email,
                    "Takarir: kebijakan privasi baru / new privacy policy",
                    body,
                )
                .await;
            sent += 1;
        }
    }
    Ok(sent)
}
