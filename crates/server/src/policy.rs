//! Privacy-policy versions and notices. The versions live in the repository
//! (`policy/versions.toml`, compiled in; `policy_file` overrides it). A signed-in user whose
//! latest acknowledgement (a consent-ledger entry with purpose `policy`) is older than the
//! newest *significant* version sees a notice until they acknowledge it, and is emailed once
//! (`policy_notices` records the email, so restarts and several nodes send it once).

use serde::{Deserialize, Serialize};
use takarir_store::consents::PURPOSE_POLICY;
use takarir_store::users::{User, UserId};

use crate::error::ApiError;
use crate::AppState;

const BUILT_IN: &str = include_str!("../policy/versions.toml");

/// One version of the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// E.g. `1.0`.
    pub version: String,
    /// Date it takes effect (ISO 8601).
    pub date: String,
    /// Whether users must be told and asked to acknowledge it.
    pub significant: bool,
    /// What changed, in Indonesian.
    pub summary_id: String,
    /// What changed, in English.
    pub summary_en: String,
}

/// All versions, oldest first.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Policy {
    /// Oldest first.
    #[serde(rename = "version")]
    pub versions: Vec<PolicyVersion>,
}

impl Policy {
    /// The compiled-in versions.
    pub fn built_in() -> Policy {
        Policy::parse(BUILT_IN).expect("policy/versions.toml parses")
    }

    /// Parses a versions file.
    pub fn parse(text: &str) -> anyhow::Result<Policy> {
        let p: Policy = toml::from_str(text)?;
        anyhow::ensure!(!p.versions.is_empty(), "the policy file lists no version");
        Ok(p)
    }

    /// The version in force.
    pub fn current(&self) -> &PolicyVersion {
        self.versions.last().expect("at least one version")
    }

    /// The newest significant version after `acknowledged` (all of them for `None`), if any:
    /// what a user must be told about.
    pub fn pending(&self, acknowledged: Option<&str>) -> Option<&PolicyVersion> {
        let after = acknowledged
            .and_then(|a| self.versions.iter().position(|v| v.version == a))
            .map(|i| i + 1)
            .unwrap_or(0);
        self.versions[after..].iter().rev().find(|v| v.significant)
    }
}

/// The significant version the user has not acknowledged yet, if any.
pub async fn pending_for(
    state: &AppState,
    user: UserId,
) -> Result<Option<PolicyVersion>, ApiError> {
    let latest = state
        .storage()
        .db
        .consents()
        .latest(user, PURPOSE_POLICY)
        .await?;
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
        .storage()
        .db
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
    let db = &state.storage().db;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_matches_the_privacy_page() {
        let p = Policy::built_in();
        assert_eq!(p.current().version, crate::web::PRIVACY_VERSION);
        assert_eq!(p.current().date, crate::web::PRIVACY_DATE);
    }

    #[test]
    fn pending_is_the_newest_significant_after_the_acknowledged() {
        let p = Policy::parse(
            "[[version]]\nversion='1'\ndate='d'\nsignificant=true\nsummary_id=''\nsummary_en=''\n\
             [[version]]\nversion='1.1'\ndate='d'\nsignificant=false\nsummary_id=''\nsummary_en=''\n\
             [[version]]\nversion='2'\ndate='d'\nsignificant=true\nsummary_id=''\nsummary_en=''\n\
             [[version]]\nversion='2.1'\ndate='d'\nsignificant=false\nsummary_id=''\nsummary_en=''\n",
        )
        .unwrap();
        assert_eq!(p.pending(None).unwrap().version, "2");
        assert_eq!(p.pending(Some("1")).unwrap().version, "2");
        assert!(p.pending(Some("2")).is_none());
        assert!(p.pending(Some("2.1")).is_none());
    }
}
