//! Typed views: every JSON body the account, admin and job routes answer with, and what the
//! templates show, built from the store's types in one place. Each is `Serialize + ToSchema`,
//! so the OpenAPI document and the export's JSON Schema ([`export_schema`]) are derived from
//! the same types that write the JSON.

use serde::Serialize;
use takarir_store::api_keys::ApiKey;
use takarir_store::audit::AuditEntry as StoredAudit;
use takarir_store::consents::Consent;
use takarir_store::exports::Export;
use takarir_store::history::HistoryEntry as StoredHistory;
use takarir_store::jobs::Job;
use takarir_store::preferences::StoredPreferences;
use takarir_store::sessions::Session;
use takarir_store::training::TrainingItem;
use takarir_store::users::{Role, User};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::options::{LangChoice, Style};
use crate::policy::PolicyVersion;
use crate::service::jobs::records::ItemRecord;

/// `schema_version` of the export's `data.json`.
pub const EXPORT_SCHEMA_VERSION: u32 = 1;

/// A point in time, written as RFC 3339 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub OffsetDateTime);

impl Time {
    /// A time in Unix milliseconds (the job tables' clock).
    pub fn from_ms(ms: i64) -> Time {
        Time(
            OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )
    }

    /// Now.
    pub fn now() -> Time {
        Time(OffsetDateTime::now_utc())
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.format(&Rfc3339).unwrap_or_default())
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl PartialSchema for Time {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl ToSchema for Time {}

/// A calendar day, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day(pub time::Date);

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl PartialSchema for Day {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
            .into()
    }
}

impl ToSchema for Day {}

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Everyone who signs up.
    User,
    /// Staff, made on the command line only.
    Admin,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleName::Admin,
            _ => RoleName::User,
        }
    }
}

/// What a consent-ledger entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConsentPurpose {
    /// Use of the user's images and captions to train the model.
    Training,
    /// Acknowledgement of a privacy-policy version.
    Policy,
}

/// An API key scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Caption requests and batch jobs recorded for the key's account.
    Captions,
    /// Reading the account's data.
    Read,
    /// Changing it.
    Write,
    /// The admin routes (admins only).
    Admin,
}

/// An export's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    /// Being made.
    Pending,
    /// Downloadable.
    Ready,
    /// Could not be made; nothing of it is kept.
    Failed,
}

/// The public view of an account (sign-in, sign-up, verification, correction).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// Account id.
    pub id: i64,
    /// Email address.
    pub email: String,
    /// Whether the current address is verified.
    pub email_verified: bool,
    /// Role.
    pub role: RoleName,
    /// When the account was made.
    pub created_at: Time,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.0,
            email: u.email.clone(),
            email_verified: u.email_verified_at.is_some(),
            role: u.role.into(),
            created_at: Time(u.created_at),
        }
    }
}

/// An account, in an answer that names only it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserAnswer {
    /// The account.
    pub user: UserView,
}

/// A new session: the account and the session's CSRF token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignedIn {
    /// The account.
    pub user: UserView,
    /// Send it as `X-CSRF-Token` with every change made with the session cookie.
    pub csrf_token: String,
}

/// The profile in the access document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Account id.
    pub id: i64,
    /// Email address.
    pub email: String,
    /// When the current address was verified.
    pub email_verified_at: Option<Time>,
    /// Role.
    pub role: RoleName,
    /// When the account was made.
    pub created_at: Time,
}

impl From<&User> for Profile {
    fn from(u: &User) -> Self {
        Profile {
            id: u.id.0,
            email: u.email.clone(),
            email_verified_at: u.email_verified_at.map(Time),
            role: u.role.into(),
            created_at: Time(u.created_at),
        }
    }
}

/// The user's preferences: caption defaults (unset: the service's) and the history and
/// training switches.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesView {
    /// Default caption language(s).
    pub lang: Option<LangChoice>,
    /// Default style.
    pub style: Option<Style>,
    /// Default number of alternatives.
    #[schema(minimum = 1, maximum = 5)]
    pub alternatives: Option<u8>,
    /// Caption history on.
    pub history_enabled: bool,
    /// Training consent given.
    pub training_consent: bool,
    /// Last change (never changed: absent).
    pub updated_at: Option<Time>,
}

impl PreferencesView {
    /// The view of stored preferences (`None`: never set).
    pub fn of(stored: Option<&StoredPreferences>) -> Self {
        let p = stored.map(|s| s.preferences.clone()).unwrap_or_default();
        let d = crate::options::OptionDefaults::from_preferences(&p);
        PreferencesView {
            lang: d.lang,
            style: d.style,
            alternatives: d.alternatives,
            history_enabled: p.history_enabled,
            training_consent: p.training_consent,
            updated_at: stored.map(|s| Time(s.updated_at)),
        }
    }
}

/// One caption in the user's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// Entry id.
    pub id: i64,
    /// The model's caption.
    pub caption: String,
    /// The user's correction.
    pub corrected_caption: Option<String>,
    /// Caption language.
    #[schema(min_length = 1)]
    pub lang: String,
    /// Style it was made with.
    #[schema(value_type = Style)]
    pub style: String,
    /// Image width in pixels.
    #[schema(minimum = 0)]
    pub width: i64,
    /// Image height in pixels.
    #[schema(minimum = 0)]
    pub height: i64,
    /// Image format.
    pub format: String,
    /// When it was made.
    pub created_at: Time,
}

impl From<&StoredHistory> for HistoryEntry {
    fn from(h: &StoredHistory) -> Self {
        HistoryEntry {
            id: h.id.0,
            caption: h.caption.clone(),
            corrected_caption: h.corrected_caption.clone(),
            lang: h.lang.clone(),
            style: h.style.clone(),
            width: i64::from(h.width),
            height: i64::from(h.height),
            format: h.format.clone(),
            created_at: Time(h.created_at),
        }
    }
}

/// A page of history, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryPage {
    /// Entries.
    pub history: Vec<HistoryEntry>,
}

/// A consent-ledger entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentView {
    /// Entry id.
    pub id: i64,
    /// What it is about.
    #[schema(value_type = ConsentPurpose)]
    pub purpose: String,
    /// Given (true) or withdrawn (false).
    pub granted: bool,
    /// Policy version in force then.
    pub policy_version: String,
    /// When.
    pub created_at: Time,
}

impl From<&Consent> for ConsentView {
    fn from(c: &Consent) -> Self {
        ConsentView {
            id: c.id.0,
            purpose: c.purpose.clone(),
            granted: c.granted,
            policy_version: c.policy_version.clone(),
            created_at: Time(c.created_at),
        }
    }
}

/// Captions made on one day in one language and style.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRow {
    /// Day (UTC).
    pub day: Day,
    /// Caption language.
    #[schema(min_length = 1)]
    pub lang: String,
    /// Style.
    #[schema(value_type = Style)]
    pub style: String,
    /// Captions.
    #[schema(minimum = 0)]
    pub count: i64,
}

impl UsageRow {
    fn new(day: time::Date, lang: &str, style: &str, count: i64) -> Self {
        UsageRow {
            day: Day(day),
            lang: lang.to_string(),
            style: style.to_string(),
            count,
        }
    }
}

impl From<&takarir_store::usage::UsageRow> for UsageRow {
    fn from(u: &takarir_store::usage::UsageRow) -> Self {
        UsageRow::new(u.day, &u.lang, &u.style, u.count)
    }
}

impl From<&takarir_store::user_usage::UserUsageRow> for UsageRow {
    fn from(u: &takarir_store::user_usage::UserUsageRow) -> Self {
        UsageRow::new(u.day, &u.lang, &u.style, u.count)
    }
}

/// The user's captions per day, language and style.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageList {
    /// Rows.
    pub usage: Vec<UsageRow>,
}

/// An image and caption kept, with consent, to train the model.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingItemView {
    /// Item id.
    pub id: i64,
    /// The image's path in the export ZIP.
    #[schema(pattern = "^training/[0-9]+\\.[a-z0-9]+$")]
    pub file: String,
    /// The caption (the user's correction when there is one).
    pub caption: String,
    /// Caption language.
    #[schema(min_length = 1)]
    pub lang: String,
    /// Image format.
    pub format: String,
    /// When it was kept.
    pub created_at: Time,
}

impl From<&TrainingItem> for TrainingItemView {
    fn from(t: &TrainingItem) -> Self {
        TrainingItemView {
            id: t.id.0,
            file: training_file(t.id.0, &t.format),
            caption: t.caption.clone(),
            lang: t.lang.clone(),
            format: t.format.clone(),
            created_at: Time(t.created_at),
        }
    }
}

/// A training image's path in the export ZIP: `training/ID.FORMAT`.
pub fn training_file(id: i64, format: &str) -> String {
    let ext: String = format
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    format!(
        "training/{id}.{}",
        if ext.is_empty() { "bin" } else { &ext }
    )
}

/// An API key (never the key itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyView {
    /// Key id.
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// Scopes.
    #[schema(value_type = Vec<Scope>)]
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: Time,
    /// When it was last used.
    pub last_used_at: Option<Time>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        ApiKeyView {
            id: k.id.0,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.split_whitespace().map(String::from).collect(),
            created_at: Time(k.created_at),
            last_used_at: k.last_used_at.map(Time),
        }
    }
}

/// The user's API keys.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Keys.
    pub api_keys: Vec<ApiKeyView>,
}

/// A new API key: the key itself is in this answer only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    /// Key id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    /// Scopes.
    #[schema(value_type = Vec<Scope>)]
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: Time,
    /// The key (`Authorization: Bearer KEY`), shown once.
    pub key: String,
}

/// A sign-in session.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionView {
    /// Session id.
    pub id: i64,
    /// When it began.
    pub created_at: Time,
    /// When it ends at the latest.
    pub expires_at: Time,
    /// When it was last used.
    pub last_used_at: Time,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        SessionView {
            id: s.id.0,
            created_at: Time(s.created_at),
            expires_at: Time(s.expires_at),
            last_used_at: Time(s.last_seen()),
        }
    }
}

/// A data export.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportView {
    /// Export id.
    pub id: i64,
    /// State.
    #[schema(value_type = ExportStatus)]
    pub status: String,
    /// ZIP size in bytes (0 until ready).
    #[schema(minimum = 0)]
    pub size_bytes: i64,
    /// When it was asked for.
    pub created_at: Time,
    /// When its link stops working.
    pub expires_at: Time,
}

impl From<&Export> for ExportView {
    fn from(e: &Export) -> Self {
        ExportView {
            id: e.id.0,
            status: e.status.clone(),
            size_bytes: e.size_bytes,
            created_at: Time(e.created_at),
            expires_at: Time(e.expires_at),
        }
    }
}

/// The user's live exports.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportList {
    /// Exports.
    pub exports: Vec<ExportView>,
}

/// A new export and its link, shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedExport {
    /// The export.
    #[serde(flatten)]
    pub export: ExportView,
    /// The download link (7 days; 409 until the export is ready).
    pub url: String,
}

/// A batch job in the access document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSummary {
    /// Job id.
    pub id: String,
    /// `receiving`, `queued` or `done`.
    pub status: String,
    /// Files.
    #[schema(minimum = 0)]
    pub total: i64,
    /// Captioned.
    #[schema(minimum = 0)]
    pub done: i64,
    /// Failed.
    #[schema(minimum = 0)]
    pub failed: i64,
    /// When it was received.
    pub created_at: Time,
    /// When it finished.
    pub finished_at: Option<Time>,
    /// When it and its results are deleted.
    pub expires_at: Time,
    /// Each finished file's result, in upload order: its index, its base name (never the
    /// client's folders), captions and what else the job asked for (the EXIF summary only
    /// when asked for), or its problem.
    pub results: Vec<ItemRecord>,
}

impl From<&Job> for JobSummary {
    fn from(j: &Job) -> Self {
        JobSummary {
            id: j.id.clone(),
            status: j.status.clone(),
            total: j.total,
            done: j.done,
            failed: j.failed,
            created_at: Time::from_ms(j.created_ms),
            finished_at: j.finished_ms.map(Time::from_ms),
            expires_at: Time::from_ms(j.expires_ms),
            results: Vec::new(),
        }
    }
}

/// A staff access to the user's data.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditView {
    /// Entry id.
    pub id: i64,
    /// The staff member's account id (null once that account is erased, and for the
    /// operator's `training_export`).
    pub actor_id: Option<i64>,
    /// The staff member's role now (`admin`; null once the account is erased, and for the
    /// operator).
    pub actor_role: Option<String>,
    /// What was done (`view_personal_data` by staff, `training_export` by the operator).
    pub action: String,
    /// The reason the staff member (or the operator) gave.
    pub reason: String,
    /// What it refers to, when the action alone does not say: for `training_export`, the
    /// export's time, which a model card names when that export trained it.
    pub detail: Option<String>,
    /// When.
    pub created_at: Time,
}

impl From<&StoredAudit> for AuditView {
    fn from(a: &StoredAudit) -> Self {
        AuditView {
            id: a.id.0,
            actor_id: a.actor_id.map(|u| u.0),
            actor_role: None,
            action: a.action.clone(),
            reason: a.reason.clone(),
            detail: a.detail.clone(),
            created_at: Time(a.created_at),
        }
    }
}

/// Everything held about a user: the answer of `GET /api/v1/me` and the export's `data.json`.
/// Versioned: a change that removes or retypes a field increases `schema_version`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessDocument {
    /// Version of this document's schema.
    #[schema(minimum = 1, maximum = 1)]
    pub schema_version: u32,
    /// When it was made.
    pub exported_at: Time,
    /// The account.
    pub profile: Profile,
    /// Preferences.
    pub preferences: PreferencesView,
    /// Caption history, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Consent ledger.
    pub consents: Vec<ConsentView>,
    /// Captions per day, language and style.
    pub usage: Vec<UsageRow>,
    /// Images and captions kept for training (the images are in the export ZIP).
    pub training_items: Vec<TrainingItemView>,
    /// API keys.
    pub api_keys: Vec<ApiKeyView>,
    /// Sign-in sessions.
    pub sessions: Vec<SessionView>,
    /// Data exports.
    pub exports: Vec<ExportView>,
    /// Batch jobs.
    pub jobs: Vec<JobSummary>,
    /// Staff accesses to the data, and training exports of it by the operator.
    pub audit: Vec<AuditView>,
    /// Unused email links (verification, password reset): the address each was sent to,
    /// never the link's token.
    pub email_tokens: Vec<EmailTokenView>,
    /// Policy-change notices emailed to the user.
    pub policy_notices: Vec<PolicyNoticeView>,
    /// The caption model in use, and whether this user's consented items trained it.
    pub model_in_use: ModelInUse,
}

/// An unused email link in the access document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailTokenView {
    /// `verify` or `reset`.
    pub purpose: String,
    /// The address it was sent to.
    pub email: String,
    /// When it was sent.
    pub created_at: Time,
    /// When it stops working.
    pub expires_at: Time,
}

impl From<&takarir_store::email_tokens::TokenInfo> for EmailTokenView {
    fn from(t: &takarir_store::email_tokens::TokenInfo) -> Self {
        EmailTokenView {
            purpose: t.purpose.clone(),
            email: t.email.clone(),
            created_at: Time(t.created_at),
            expires_at: Time(t.expires_at),
        }
    }
}

/// A policy-change notice emailed to the user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyNoticeView {
    /// The policy version announced.
    pub policy_version: String,
    /// When the email was sent.
    pub emailed_at: Time,
}

/// The caption model version in use, as it concerns one user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelInUse {
    /// Its version.
    pub version: String,
    /// True when a training export that held this user's items (a `training_export` entry of
    /// `audit`) trained it. A model is not untrained when consent is withdrawn later: it is
    /// replaced by the next version, trained without those items.
    pub trained_with_your_items: bool,
    /// The exports (their times) of this user's items that trained it.
    pub training_exports: Vec<String>,
}

/// `GET /api/v1/me`: the access document and the policy version awaiting acknowledgement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    /// Everything held about the user.
    #[serde(flatten)]
    pub document: AccessDocument,
    /// A significant policy version the user has not acknowledged yet.
    pub policy_notice: Option<PolicyVersion>,
}

/// Aggregates for operators: nothing that identifies a person.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminStats {
    /// Accounts.
    pub accounts: u64,
    /// Accounts with a verified address.
    pub verified_accounts: u64,
    /// Admin accounts.
    pub admins: u64,
    /// Captions per day, language and style, over all accounts and anonymous use.
    pub usage_last_30_days: Vec<UsageRow>,
}

/// An account's status without its address.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminUser {
    /// Account id.
    pub id: i64,
    /// Role.
    pub role: RoleName,
    /// Whether the address is verified.
    pub email_verified: bool,
    /// When the account was made.
    pub created_at: Time,
}

impl From<&User> for AdminUser {
    fn from(u: &User) -> Self {
        AdminUser {
            id: u.id.0,
            role: u.role.into(),
            email_verified: u.email_verified_at.is_some(),
            created_at: Time(u.created_at),
        }
    }
}

/// Accounts, oldest first (at most 1000).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminUsers {
    /// Accounts.
    pub users: Vec<AdminUser>,
}

/// A count of deleted entries.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deleted {
    /// How many.
    pub deleted: u64,
}

/// The export's JSON Schema, derived from [`AccessDocument`]: the document's own schema at the
/// top, every schema it refers to under `$defs`.
pub fn export_schema() -> serde_json::Value {
    let mut defs = Vec::new();
    AccessDocument::schemas(&mut defs);
    let mut root = serde_json::to_value(AccessDocument::schema()).expect("schema serialises");
    let mut defs_json = serde_json::Map::new();
    for (name, schema) in defs {
        defs_json.insert(
            name,
            serde_json::to_value(schema).expect("schema serialises"),
        );
    }
    let obj = root.as_object_mut().expect("an object schema");
    let mut head = serde_json::Map::new();
    head.insert(
        "$schema".into(),
        "https://json-schema.org/draft/2020-12/schema".into(),
    );
    head.insert("$id".into(), "urn:takarir:export:1".into());
    head.insert(
        "title".into(),
        "Takarir data export, data.json, schema version 1".into(),
    );
    head.insert(
        "description".into(),
        "Everything Takarir holds about one account. The export ZIP holds exactly data.json and, \
         for each training item, the image at its `file` path (training/ID.FORMAT). Versioned: \
         a change that removes or retypes a field increases schema_version. Generated from the \
         server's AccessDocument type."
            .into(),
    );
    obj.remove("description");
    head.extend(std::mem::take(obj));
    head.insert("$defs".into(), serde_json::Value::Object(defs_json));
    let text = serde_json::Value::Object(head)
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    serde_json::from_str(&text).expect("still JSON")
}

#[cfg(test)]
mod tests {
    /// The committed `schemas/export-v1.schema.json` is the schema derived from
    /// [`super::AccessDocument`]; `TAKARIR_BLESS=1 cargo test -p takarir-server --lib` writes
    /// it anew after a deliberate change (which, if it removes or retypes a field, also
    /// increases `schema_version`).
    #[test]
    fn committed_export_schema_is_the_derived_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/export-v1.schema.json");
        let derived = serde_json::to_string_pretty(&super::export_schema()).unwrap() + "\n";
        if std::env::var("TAKARIR_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(path, &derived).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap();
        assert!(
            committed == derived,
            "{path} differs from the schema derived from AccessDocument; if the change is \
             deliberate, run TAKARIR_BLESS=1 cargo test -p takarir-server --lib"
        );
    }
}
