//! Privacy-policy versions. They live in the repository (`policy/versions.toml`, compiled
//! in; `policy_file` overrides it); the last one is the version the privacy page shows
//! ([`PRIVACY_VERSION`]). Acknowledgements and notices: [`crate::service::privacy::policy`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const BUILT_IN: &str = include_str!("../policy/versions.toml");

/// Version of the privacy policy shown at `/privacy` (the last of `policy/versions.toml`).
pub const PRIVACY_VERSION: &str = "2.2";
/// Date the privacy policy took effect (ISO 8601).
pub const PRIVACY_DATE: &str = "2026-12-03";

/// One version of the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_matches_the_privacy_page() {
        let p = Policy::built_in();
        assert_eq!(p.current().version, PRIVACY_VERSION);
        assert_eq!(p.current().date, PRIVACY_DATE);
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
