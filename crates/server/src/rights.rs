//! What the policy promises, as functions the API and the web pages share: the access
//! document (everything held about a user, which is also the export's `data.json`), the
//! export ZIP and its link, preferences with the history and consent rules, withdrawal,
//! erasure, and what a caption request leaves behind for a signed-in user.
//!
//! Anonymous caption requests and batch items write only the aggregate counters
//! (`usage_daily`). A signed-in user's request (or batch job) also adds to their own counters;
//! to their history only while history is on (text, settings, time, image size and format:
//! never the image or its EXIF); and, only while training consent stands, the image's pixels
//! (re-encoded as PNG, so without EXIF; encrypted) and the final caption to the training store.

use async_zip::tokio::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use takarir_store::consents::PURPOSE_TRAINING;
use takarir_store::erasure::user_prefix;
use takarir_store::exports::{self, Export};
use takarir_store::history::{HistoryQuery, NewHistoryEntry};
use takarir_store::training::NewTrainingItem;
use takarir_store::users::User;
use takarir_store::Sensitivity;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_util::io::ReaderStream;

use crate::caption::{ImageResult, Options, Upload};
use crate::error::ApiError;
use crate::AppState;

/// The export's JSON schema (committed in `schemas/`, served at `/api/v1/export-schema.json`).
pub const EXPORT_SCHEMA: &str = include_str!("../schemas/export-v1.schema.json");
/// `schema_version` of `data.json`.
pub const EXPORT_SCHEMA_VERSION: u32 = 1;
/// Days an export link works.
pub const EXPORT_DAYS: i64 = 7;

/// RFC 3339 text of a time.
pub fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// RFC 3339 text of a time in Unix milliseconds (the job tables' clock).
fn ts_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map(ts)
        .unwrap_or_default()
}

fn ts_opt(t: Option<OffsetDateTime>) -> Value {
    t.map(|t| Value::String(ts(t))).unwrap_or(Value::Null)
}

/// Everything held about the user, as the schema in [`EXPORT_SCHEMA`] describes.
pub async fn access_document(state: &AppState, user: &User) -> Result<Value, ApiError> {
    let db = &state.storage().db;
    let id = user.id;
    let prefs = db.preferences().get(id).await?;
    let (p, updated) = match prefs {
        Some(s) => (s.preferences, Some(s.updated_at)),
        None => (Default::default(), None),
    };
    let mut history = Vec::new();
    let mut before = None;
    loop {
        let page = db
            .history()
            .list(
                id,
                HistoryQuery {
                    before,
                    search: None,
                    limit: 500,
                },
            )
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        history.extend(page);
    }
    history.reverse();
    let history: Vec<Value> = history
        .iter()
        .map(|h| {
            json!({
                "id": h.id.0, "caption": h.caption, "corrected_caption": h.corrected_caption,
                "lang": h.lang, "style": h.style, "width": h.width, "height": h.height,
                "format": h.format, "created_at": ts(h.created_at),
            })
        })
        .collect();
    let consents: Vec<Value> = db
        .consents()
        .list(id)
        .await?
        .iter()
        .map(|c| {
            json!({
                "id": c.id.0, "purpose": c.purpose, "granted": c.granted,
                "policy_version": c.policy_version, "created_at": ts(c.created_at),
            })
        })
        .collect();
    let usage: Vec<Value> = db
        .user_usage()
        .list(id)
        .await?
        .iter()
        .map(|u| json!({"day": u.day.to_string(), "lang": u.lang, "style": u.style, "count": u.count}))
        .collect();
    let training: Vec<Value> = db
        .training()
        .list(id)
        .await?
        .iter()
        .map(|t| {
            json!({
                "id": t.id.0, "file": training_file(t.id.0, &t.format), "caption": t.caption,
                "lang": t.lang, "format": t.format, "created_at": ts(t.created_at),
            })
        })
        .collect();
    let keys: Vec<Value> = db
        .api_keys()
        .list(id)
        .await?
        .iter()
        .map(|k| {
            json!({
                "id": k.id.0, "name": k.name, "prefix": k.prefix,
                "scopes": k.scopes.split_whitespace().collect::<Vec<_>>(),
                "created_at": ts(k.created_at), "last_used_at": ts_opt(k.last_used_at),
            })
        })
        .collect();
    let sessions: Vec<Value> = db
        .sessions()
        .list(id)
        .await?
        .iter()
        .map(|s| {
            json!({
                "id": s.id.0, "created_at": ts(s.created_at), "expires_at": ts(s.expires_at),
                "last_used_at": ts(s.last_seen()),
            })
        })
        .collect();
    let exports: Vec<Value> = db
        .exports()
        .list(id)
        .await?
        .iter()
        .map(export_json)
        .collect();
    let jobs: Vec<Value> = db
        .jobs()
        .list_for_user(id)
        .await?
        .iter()
        .map(|j| {
            json!({
                "id": j.id, "status": j.status, "total": j.total, "done": j.done,
                "failed": j.failed, "created_at": ts_ms(j.created_ms),
                "finished_at": j.finished_ms.map(ts_ms), "expires_at": ts_ms(j.expires_ms),
            })
        })
        .collect();
    let audit: Vec<Value> = db
        .audit()
        .list(id)
        .await?
        .iter()
        .map(|a| json!({"id": a.id.0, "action": a.action, "reason": a.reason, "created_at": ts(a.created_at)}))
        .collect();
    Ok(json!({
        "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": ts(OffsetDateTime::now_utc()),
        "profile": {
            "id": id.0, "email": user.email, "email_verified_at": ts_opt(user.email_verified_at),
            "role": user.role.as_str(), "created_at": ts(user.created_at),
        },
        "preferences": {
            "lang": p.lang, "style": p.style, "alternatives": p.alternatives,
            "history_enabled": p.history_enabled, "training_consent": p.training_consent,
            "updated_at": ts_opt(updated),
        },
        "history": history,
        "consents": consents,
        "usage": usage,
        "training_items": training,
        "api_keys": keys,
        "sessions": sessions,
        "exports": exports,
        "jobs": jobs,
        "audit": audit,
    }))
}

/// An export's public fields.
pub fn export_json(e: &Export) -> Value {
    json!({"id": e.id.0, "status": e.status, "size_bytes": e.size_bytes, "created_at": ts(e.created_at), "expires_at": ts(e.expires_at)})
}

fn training_file(id: i64, format: &str) -> String {
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

/// Starts the user's export: a pending row and its link at once, the ZIP (`data.json` and the
/// training images) made in the background. Waits up to `export_wait_seconds` for the ZIP, so a
/// small export answers ready (or its error) in the same request; a larger one answers pending
/// and its link works once it is ready.
pub async fn create_export(state: &AppState, user: &User) -> Result<(Export, String), ApiError> {
    let st = state.storage();
    let path = format!(
        "{}/exports/{}.zip",
        user_prefix(user.id),
        crate::auth::random_token()
    );
    let token = crate::auth::random_token();
    let expires = OffsetDateTime::now_utc() + time::Duration::days(EXPORT_DAYS);
    let export = st
        .db
        .exports()
        .create(user.id, &token, &path, expires)
        .await?;
    let made = tokio::spawn(make_export(state.clone(), user.clone(), export.clone()));
    let wait = Duration::from_secs(state.config().export_wait_seconds);
    if wait.is_zero() {
        return Ok((export, token));
    }
    match tokio::time::timeout(wait, made).await {
        Err(_) => Ok((export, token)), // still being made
        Ok(Err(_)) => Err(ApiError::Internal),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Ok(Ok(size))) => Ok((
            Export {
                status: exports::READY.into(),
                size_bytes: size as i64,
                ..export
            },
            token,
        )),
    }
}

/// Writes the export's ZIP into the object store and marks the row ready (or failed); returns
/// its size. The ZIP is never whole in memory: it is written into one end of a pipe and
/// streamed from the other into the store, encrypted.
async fn make_export(state: AppState, user: User, export: Export) -> Result<u64, ApiError> {
    let st = state.storage();
    let path = &export.object_path;
    let made = async {
        let doc = access_document(&state, &user).await?;
        let data_json = serde_json::to_vec_pretty(&doc).map_err(|_| ApiError::Internal)?;
        let items = st.db.training().list(user.id).await?;
        let (zip_end, upload_end) = tokio::io::duplex(64 * 1024);
        let write = async {
            // Stored, not deflated: the images are compressed already and data.json is small.
            let entry = |name: String| ZipEntryBuilder::new(name.into(), Compression::Stored);
            let mut zip = ZipFileWriter::with_tokio(zip_end);
            zip.write_entry_whole(entry("data.json".into()), &data_json)
                .await
                .map_err(zip_failed)?;
            for item in &items {
                let bytes = st.blobs.get(&item.object_path).await?;
                zip.write_entry_whole(entry(training_file(item.id.0, &item.format)), &bytes)
                    .await
                    .map_err(zip_failed)?;
            }
            // Closing writes the central directory; the pipe's end is then dropped, which ends
            // the upload's input.
            zip.close().await.map_err(zip_failed)?;
            Ok::<_, ApiError>(())
        };
        let upload = st.blobs.put_stream(
            path,
            ReaderStream::new(upload_end).map_err(takarir_store::Error::from),
            Sensitivity::Personal,
        );
        match tokio::join!(write, upload) {
            (Ok(()), Ok((_, size))) => Ok(size),
            (written, uploaded) => Err(match uploaded {
                Err(e) => e.into(),
                Ok(_) => written.err().unwrap_or(ApiError::Internal),
            }),
        }
    };
    match made.await {
        Ok(size) => {
            if st.db.exports().finish(export.id, size).await? {
                return Ok(size);
            }
            // Revoked, or the account erased, while the ZIP was made: it must not outlive them.
            st.blobs.delete(path).await?;
            Err(ApiError::NotFound)
        }
        Err(e) => {
            // A failed write ends the pipe early, so the upload may have stored a partial ZIP.
            if let Err(e) = st.blobs.delete(path).await {
                tracing::error!(error = %e, "deleting a failed export failed");
            }
            if let Err(e) = st.db.exports().fail(export.id).await {
                tracing::error!(error = %e, "marking an export failed failed");
            }
            Err(e)
        }
    }
}

fn zip_failed(e: async_zip::error::ZipError) -> ApiError {
    tracing::error!(error = %e, "writing an export ZIP failed");
    ApiError::Internal
}

/// The ZIP a download token names, if the link is live: its length and its content as it is
/// read and decrypted.
pub async fn export_by_token(
    state: &AppState,
    token: &str,
) -> Result<(u64, BoxStream<'static, takarir_store::Result<Bytes>>), ApiError> {
    let st = state.storage();
    let export = st
        .db
        .exports()
        .get_by_token(token)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    match export.status.as_str() {
        exports::PENDING => return Err(ApiError::ExportPending),
        exports::FAILED => return Err(ApiError::ExportFailed),
        _ => {}
    }
    let (_, content) = st.blobs.get_stream(&export.object_path).await?;
    Ok((export.size_bytes.max(0) as u64, content))
}

/// Revokes one of the user's exports: the link stops working and the ZIP is deleted.
pub async fn revoke_export(
    state: &AppState,
    user: &User,
    id: takarir_store::exports::ExportId,
) -> Result<(), ApiError> {
    let st = state.storage();
    let path = st
        .db
        .exports()
        .delete(user.id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    st.blobs.delete(&path).await?;
    Ok(())
}

/// How long an export may stay pending before the sweeper takes its node to have stopped while
/// making it.
const EXPORT_STALE: time::Duration = time::Duration::hours(1);

/// Deletes exports past their 7 days, and fails those a stopped node left pending; either way
/// their ZIPs go.
pub async fn delete_expired_exports(state: &AppState) {
    let st = state.storage();
    let exports = st.db.exports();
    let swept = [
        (
            "stale",
            exports
                .fail_stale(OffsetDateTime::now_utc() - EXPORT_STALE)
                .await,
        ),
        ("expired", exports.delete_expired().await),
    ];
    for (which, paths) in swept {
        match paths {
            Ok(paths) => {
                for p in paths {
                    if let Err(e) = st.blobs.delete(&p).await {
                        tracing::error!(error = %e, which, "deleting an export's ZIP failed");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, which, "sweeping exports failed"),
        }
    }
}

/// A change of preferences; absent fields stay as they are. For `lang`, `style` and
/// `alternatives`, an empty string / 0 goes back to the service's default.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PreferencesPatch {
    /// `id`, `en`, `both`, or empty for the default.
    pub lang: Option<String>,
    /// `short`, `sentence`, `detailed`, or empty for the default.
    pub style: Option<String>,
    /// 1..=5, or 0 for the default.
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
    let db = &state.storage().db;
    let mut p = db.preferences().get_or_default(user.id).await?;
    let bad = |name: &str, value: &str, expected| ApiError::InvalidOption {
        name: name.into(),
        value: value.chars().take(40).collect(),
        expected,
    };
    if let Some(l) = patch.lang {
        p.lang = match l.as_str() {
            "" => None,
            "id" | "en" | "both" => Some(l),
            _ => return Err(bad("lang", &l, "id, en, both")),
        };
    }
    if let Some(s) = patch.style {
        p.style = match s.as_str() {
            "" => None,
            "short" | "sentence" | "detailed" => Some(s),
            _ => return Err(bad("style", &s, "short, sentence, detailed")),
        };
    }
    if let Some(n) = patch.alternatives {
        p.alternatives = match n {
            0 => None,
            1..=5 => Some(n),
            _ => return Err(bad("alternatives", &n.to_string(), "1..5")),
        };
    }
    if let Some(on) = patch.history_enabled {
        if p.history_enabled && !on && db.history().count(user.id).await? > 0 {
            match patch.delete_history {
                None => return Err(ApiError::HistoryDecisionRequired),
                Some(true) => {
                    db.history().delete_all(user.id).await?;
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
pub async fn set_training_consent(
    state: &AppState,
    user: &User,
    granted: bool,
) -> Result<(), ApiError> {
    let db = &state.storage().db;
    let mut p = db.preferences().get_or_default(user.id).await?;
    p.training_consent = granted;
    db.preferences().set(user.id, &p).await?;
    record_training_consent(state, user, granted).await
}

async fn record_training_consent(
    state: &AppState,
    user: &User,
    granted: bool,
) -> Result<(), ApiError> {
    let st = state.storage();
    let version = state.policy().current().version.clone();
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

/// Erases the account: every row (one transaction, with the erasure-log entry), every object
/// under the user's prefix (training images, exports), and the erasure record kept outside the
/// backups, so a restore erases the account again (docs/operations.md).
pub async fn erase(state: &AppState, user: &User) -> Result<(), ApiError> {
    let st = state.storage();
    takarir_store::backup::erase_user(&st.db, &st.blobs, user.id).await?;
    state
        .login_throttle()
        .succeeded(&st.db, &user.email)
        .await?;
    Ok(())
}

/// Default caption options from a user's preferences, as option pairs that the request's own
/// pairs override.
pub fn preference_pairs(p: &takarir_store::preferences::Preferences) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if let Some(l) = &p.lang {
        v.push(("lang".to_string(), l.clone()));
    }
    if let Some(s) = &p.style {
        v.push(("style".to_string(), s.clone()));
    }
    if let Some(n) = p.alternatives {
        v.push(("alternatives".to_string(), n.to_string()));
    }
    v
}

/// Captions `uploads` with `opts`, then records for `user` what the policy lets it record
/// ([`record_captions`]): what the caption endpoint and the web page both do.
pub async fn caption_and_record(
    state: &AppState,
    permit: crate::QueuePermit,
    uploads: Vec<Upload>,
    opts: &Options,
    user: Option<&User>,
) -> Result<Vec<ImageResult>, ApiError> {
    let kept = uploads.clone();
    let results = crate::caption::caption(state, permit, uploads, opts).await?;
    record_captions(state, user, &kept, &results, opts).await;
    Ok(results)
}

/// What a caption request leaves behind: the aggregate counters always; for a signed-in user,
/// their counters, their history while it is on, and training items while consent stands.
/// Failures are logged, never the caller's problem (the captions are already made).
pub async fn record_captions(
    state: &AppState,
    user: Option<&User>,
    uploads: &[Upload],
    results: &[ImageResult],
    opts: &Options,
) {
    if let Err(e) = try_record(state, user, uploads, results, opts).await {
        tracing::error!(error = ?e, "recording captions failed");
    }
}

async fn try_record(
    state: &AppState,
    user: Option<&User>,
    uploads: &[Upload],
    results: &[ImageResult],
    opts: &Options,
) -> Result<(), ApiError> {
    let st = state.storage();
    let db = &st.db;
    let today = OffsetDateTime::now_utc().date();
    let style = opts.style.as_str();
    let prefs = match user {
        Some(u) => Some(db.preferences().get_or_default(u.id).await?),
        None => None,
    };
    let training = match (user, &prefs) {
        (Some(u), Some(p)) if p.training_consent => {
            db.consents().is_granted(u.id, PURPOSE_TRAINING).await?
        }
        _ => false,
    };
    for (i, r) in results.iter().enumerate() {
        let Ok(c) = &r.outcome else { continue };
        // The best caption per language, in order.
        let mut best: Vec<(&str, &str)> = Vec::new();
        for cap in &c.captions {
            if !best.iter().any(|(l, _)| *l == cap.lang) {
                best.push((cap.lang.as_str(), cap.text.as_str()));
            }
        }
        let mut first_history = None;
        for (lang, text) in &best {
            db.usage().add(today, lang, style, 1).await?;
            let (Some(u), Some(p)) = (user, &prefs) else {
                continue;
            };
            db.user_usage().add(u.id, today, lang, style, 1).await?;
            if p.history_enabled {
                let h = db
                    .history()
                    .create(
                        u.id,
                        NewHistoryEntry {
                            caption: text,
                            lang,
                            style,
                            width: c.image.width,
                            height: c.image.height,
                            format: &c.image.format,
                        },
                    )
                    .await?;
                first_history.get_or_insert(h.id);
            }
        }
        if let (true, Some(u), Some((lang, text)), Some(upload)) =
            (training, user, best.first(), uploads.get(i))
        {
            let Some(png) = clean_copy(state, upload).await else {
                continue;
            };
            let path = format!(
                "{}/training/{}",
                user_prefix(u.id),
                crate::auth::random_token()
            );
            st.blobs.put(&path, &png, Sensitivity::Personal).await?;
            db.training()
                .create(
                    u.id,
                    NewTrainingItem {
                        object_path: &path,
                        history_id: first_history,
                        caption: text,
                        lang,
                        format: "png",
                    },
                )
                .await?;
        }
    }
    Ok(())
}

/// The training copy of an upload: its pixels, upright, as a PNG, so that no EXIF value
/// (GPS position, camera serial, ...) and nothing else of the original file is kept.
async fn clean_copy(state: &AppState, upload: &Upload) -> Option<Vec<u8>> {
    let bytes = upload.bytes.clone();
    let limits = takarir_engine::ImageLimits {
        max_bytes: state.config().max_upload_bytes,
        max_pixels: state.config().max_megapixels * 1_000_000,
    };
    tokio::task::spawn_blocking(move || {
        let decoded = takarir_engine::image::decode(&bytes, &limits).ok()?;
        let mut out = std::io::Cursor::new(Vec::new());
        decoded
            .rgb
            .write_to(&mut out, image::ImageFormat::Png)
            .ok()?;
        Some(out.into_inner())
    })
    .await
    .ok()
    .flatten()
}
