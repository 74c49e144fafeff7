//! The data rights, as use cases the API and the web pages share: access (everything held
//! about a user, which is also the export's `data.json`), correction of history, preferences
//! with the history and consent rules, consent withdrawal, erasure, the privacy-policy
//! versions a user must acknowledge ([`policy`]), exports ([`exports`]) and staff access
//! ([`admin`]).

pub mod admin;
pub mod exports;
pub mod policy;

use serde::Deserialize;
use takarir_store::audit::AuditEntry;
use takarir_store::consents::PURPOSE_TRAINING;
use takarir_store::erasure::user_prefix;
use takarir_store::history::{HistoryId, HistoryQuery};
use takarir_store::users::User;
use takarir_store::withdrawals::Withdrawal;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::options::{parse_alternatives, BadValue, OptionDefaults};
use crate::service::jobs::records::ItemRecord;
use crate::state::AppState;
use crate::views::{
    AccessDocument, ApiKeyView, AuditView, ConsentView, EmailTokenView, ExportView, HistoryEntry,
    JobSummary, ModelInUse, PolicyNoticeView, PreferencesView, Profile, SessionView, Time,
    TrainingItemView, UsageRow, EXPORT_SCHEMA_VERSION,
};

/// Everything held about the user, as [`crate::views::export_schema`] describes it.
pub async fn access_document(state: &AppState, user: &User) -> Result<AccessDocument, ApiError> {
    let mut doc = account_overview(state, user).await?;
    doc.history = all_history(state, user).await?;
    Ok(doc)
}

/// The access document without the history (the account page shows a searchable page of it
/// instead).
pub async fn account_overview(state: &AppState, user: &User) -> Result<AccessDocument, ApiError> {
    let db = state.db();
    let id = user.id;
    fn all<T, V: for<'a> From<&'a T>>(rows: Vec<T>) -> Vec<V> {
        rows.iter().map(V::from).collect()
    }
    let audit = db.audit().list(id).await?;
    let model_in_use = model_in_use(state, &audit);
    Ok(AccessDocument {
        schema_version: EXPORT_SCHEMA_VERSION,
        exported_at: Time::now(),
        profile: Profile::from(user),
        preferences: preferences(state, user).await?,
        history: Vec::new(),
        consents: all::<_, ConsentView>(db.consents().list(id).await?),
        usage: usage(state, user).await?,
        training_items: all::<_, TrainingItemView>(db.training().list(id).await?),
        api_keys: api_keys(state, user).await?,
        sessions: all::<_, SessionView>(db.sessions().list(id).await?),
        exports: all::<_, ExportView>(db.exports().list(id).await?),
        jobs: jobs(state, user).await?,
        audit: audit_views(state, &audit).await?,
        email_tokens: all::<_, EmailTokenView>(db.email_tokens().list(id).await?),
        policy_notices: db
            .policy_notices()
            .list_sent(id)
            .await?
            .into_iter()
            .map(|(policy_version, at)| PolicyNoticeView {
                policy_version,
                emailed_at: Time(at),
            })
            .collect(),
        model_in_use,
    })
}

/// Staff and operator accesses to the user's data, each with the actor's id and current role.
async fn audit_views(state: &AppState, audit: &[AuditEntry]) -> Result<Vec<AuditView>, ApiError> {
    let db = state.db();
    let mut out = Vec::new();
    for entry in audit {
        let mut view = AuditView::from(entry);
        if let Some(actor) = entry.actor_id {
            view.actor_role = db
                .users()
                .get(actor)
                .await?
                .map(|u| u.role.as_str().to_string());
        }
        out.push(view);
    }
    Ok(out)
}

/// The user's batch jobs with their results.
async fn jobs(state: &AppState, user: &User) -> Result<Vec<JobSummary>, ApiError> {
    let db = state.db();
    let mut out = Vec::new();
    for job in db.jobs().list_for_user(user.id).await? {
        let mut summary = JobSummary::from(&job);
        for item in db.jobs().items(&job.id).await? {
            let Some(line) = item.result else { continue };
            match serde_json::from_str::<ItemRecord>(&line) {
                Ok(r) => summary.results.push(r),
                Err(e) => tracing::warn!(error = %e, "a stored job result does not parse"),
            }
        }
        out.push(summary);
    }
    Ok(out)
}

/// The model in use and the user's training exports its card names.
fn model_in_use(state: &AppState, audit: &[AuditEntry]) -> ModelInUse {
    let trained_on: &[String] = state
        .model_card()
        .map(|c| c.training_exports.as_slice())
        .unwrap_or_default();
    let training_exports: Vec<String> = audit
        .iter()
        .filter(|a| a.action == crate::service::training::AUDIT_ACTION)
        .filter_map(|a| a.detail.clone())
        .filter(|d| trained_on.contains(d))
        .collect();
    ModelInUse {
        version: state.captioner().info().version.clone(),
        trained_with_your_items: !training_exports.is_empty(),
        training_exports,
    }
}

/// The user's whole history, oldest first, read 500 entries at a time.
async fn all_history(state: &AppState, user: &User) -> Result<Vec<HistoryEntry>, ApiError> {
    let mut history = Vec::new();
    let mut before = None;
    loop {
        let page = history_page(state, user, None, before, 500).await?;
        let Some(last) = page.last() else { break };
        before = Some(HistoryId(last.id));
        history.extend(page);
    }
    history.reverse();
    Ok(history)
}

/// A page of the user's history, newest first: entries before `before` whose caption matches
/// `search`, at most `limit`.
pub async fn history_page(
    state: &AppState,
    user: &User,
    search: Option<&str>,
    before: Option<HistoryId>,
    limit: u32,
) -> Result<Vec<HistoryEntry>, ApiError> {
    let entries = state
        .db()
        .history()
        .list(
            user.id,
            HistoryQuery {
                before,
                search: search.filter(|s| !s.is_empty()),
                limit,
            },
        )
        .await?;
    Ok(entries.iter().map(HistoryEntry::from).collect())
}

/// The user's preferences.
pub async fn preferences(state: &AppState, user: &User) -> Result<PreferencesView, ApiError> {
    let stored = state.db().preferences().get(user.id).await?;
    Ok(PreferencesView::of(stored.as_ref()))
}

/// The user's captions per day, language and style.
pub async fn usage(state: &AppState, user: &User) -> Result<Vec<UsageRow>, ApiError> {
    let rows = state.db().user_usage().list(user.id).await?;
    Ok(rows.iter().map(UsageRow::from).collect())
}

/// The user's API keys (never the keys themselves).
pub async fn api_keys(state: &AppState, user: &User) -> Result<Vec<ApiKeyView>, ApiError> {
    let keys = state.db().api_keys().list(user.id).await?;
    Ok(keys.iter().map(ApiKeyView::from).collect())
}

/// The user's live exports.
pub async fn export_list(state: &AppState, user: &User) -> Result<Vec<ExportView>, ApiError> {
    let list = state.db().exports().list(user.id).await?;
    Ok(list.iter().map(ExportView::from).collect())
}

/// Sets or clears the user's correction of a history caption (the model's stays beside it);
/// a training item made from the same caption takes the correction.
pub async fn correct(
    state: &AppState,
    user: &User,
    id: HistoryId,
    corrected: Option<&str>,
) -> Result<(), ApiError> {
    let db = state.db();
    let corrected = corrected.map(str::trim).filter(|s| !s.is_empty());
    db.history().correct(user.id, id, corrected).await?;
    if let Some(h) = db.history().get(user.id, id).await? {
        db.training()
            .set_caption(user.id, id, h.final_caption())
            .await?;
    }
    Ok(())
}

/// Records a deletion or withdrawal outside the backups, so that a restore does it again
/// (see [`takarir_store::withdrawals`]). Called before the act, as the erasure record is.
pub(crate) async fn remember(state: &AppState, what: Withdrawal) -> Result<(), ApiError> {
    takarir_store::withdrawals::record(&state.storage().blobs, what).await?;
    Ok(())
}

/// Deletes one history entry.
pub async fn delete_history_entry(
    state: &AppState,
    user: &User,
    id: HistoryId,
) -> Result<(), ApiError> {
    let history = state.db().history();
    if history.get(user.id, id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let subject_hash = user.subject_hash();
    remember(
        state,
        Withdrawal::HistoryEntry {
            subject_hash,
            id: id.0,
        },
    )
    .await?;
    history.delete(user.id, id).await?;
    Ok(())
}

/// Deletes the user's whole history; how many entries went.
pub async fn delete_all_history(state: &AppState, user: &User) -> Result<u64, ApiError> {
    let subject_hash = user.subject_hash();
    remember(state, Withdrawal::History { subject_hash }).await?;
    Ok(state.db().history().delete_all(user.id).await?)
}

/// A change of preferences; absent fields stay as they are. For `lang`, `style` and
/// `alternatives`, an empty string / 0 goes back to the service's default.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PreferencesPatch {
    /// `id`, `en`, `both`, or empty for the default.
    #[schema(value_type = Option<String>, pattern = "^(id|en|both|)$")]
    pub lang: Option<String>,
    /// `short`, `sentence`, `detailed`, or empty for the default.
    #[schema(value_type = Option<String>, pattern = "^(short|sentence|detailed|)$")]
    pub style: Option<String>,
    /// 1..=5, or 0 for the default.
    #[schema(minimum = 0, maximum = 5)]
    pub alternatives: Option<u32>,
    /// Caption history on or off.
    pub history_enabled: Option<bool>,
    /// When turning history off while entries exist: delete them (true) or keep them (false).
    pub delete_history: Option<bool>,
    /// Training consent; turning it off withdraws consent and deletes the training items.
    pub training_consent: Option<bool>,
}

/// Applies a preferences change with its rules: turning history off with entries needs a
/// decision; a training-consent change is recorded in the ledger (withdrawal deletes the
/// training items at once).
pub async fn update_preferences(
    state: &AppState,
    user: &User,
    patch: PreferencesPatch,
) -> Result<(), ApiError> {
    let db = state.db();
    let mut p = db.preferences().get_or_default(user.id).await?;
    let mut defaults = OptionDefaults::from_preferences(&p);
    if let Some(l) = patch.lang.as_deref() {
        defaults.lang = match l {
            "" => None,
            _ => Some(l.parse().map_err(|e: BadValue| e.for_option("lang"))?),
        };
    }
    if let Some(s) = patch.style.as_deref() {
        defaults.style = match s {
            "" => None,
            _ => Some(s.parse().map_err(|e: BadValue| e.for_option("style"))?),
        };
    }
    if let Some(n) = patch.alternatives {
        defaults.alternatives = match n {
            0 => None,
            _ => {
                Some(parse_alternatives(&n.to_string()).map_err(|e| e.for_option("alternatives"))?)
            }
        };
    }
    defaults.store_into(&mut p);
    if let Some(on) = patch.history_enabled {
        if p.history_enabled && !on && db.history().count(user.id).await? > 0 {
            match patch.delete_history {
                None => return Err(ApiError::HistoryDecisionRequired),
                Some(true) => {
                    delete_all_history(state, user).await?;
                }
                Some(false) => {}
            }
        }
        p.history_enabled = on;
    }
    let consent_change = patch.training_consent.filter(|&c| c != p.training_consent);
    if let Some(c) = patch.training_consent {
        p.training_consent = c;
    }
    db.preferences().set(user.id, &p).await?;
    if let Some(granted) = consent_change {
        record_training_consent(state, user, granted).await?;
    }
    Ok(())
}

/// Grants or withdraws training consent: a ledger entry under the current policy version, the
/// preference mirror, and on withdrawal the deletion of every training item (rows and images).
pub async fn set_training_consent(state: &AppState, user: &User, on: bool) -> Result<(), ApiError> {
    let prefs = state.db().preferences();
    let mut p = prefs.get_or_default(user.id).await?;
    p.training_consent = on;
    prefs.set(user.id, &p).await?;
    record_training_consent(state, user, on).await
}

async fn record_training_consent(
    state: &AppState,
    user: &User,
    granted: bool,
) -> Result<(), ApiError> {
    let st = state.storage();
    let version = state.policy().current().version.clone();
    if !granted {
        let w = Withdrawal::TrainingConsent {
            subject_hash: user.subject_hash(),
            policy_version: version.clone(),
        };
        remember(state, w).await?;
    }
    st.db
        .consents()
        .record(user.id, PURPOSE_TRAINING, granted, &version)
        .await?;
    if !granted {
        for path in st.db.training().delete_all(user.id).await? {
            st.blobs.delete(&path).await?;
        }
        st.blobs
            .delete_prefix(&format!("{}/training", user_prefix(user.id)))
            .await?;
    }
    Ok(())
}

/// Erases the account: the erasure record kept outside the backups (first, so a restore
/// erases the account again whatever fails next), every row (one transaction, with the
/// erasure-log entry) and every object under the user's prefix (training images, exports);
/// see docs/operations.md.
pub async fn erase(state: &AppState, user: &User) -> Result<(), ApiError> {
    let st = state.storage();
    takarir_store::backup::erase_user(&st.db, &st.blobs, user.id).await?;
    state
        .login_throttle()
        .succeeded(&st.db, &user.email, None)
        .await?;
    Ok(())
}
