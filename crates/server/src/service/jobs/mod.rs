//! Batch captioning jobs: files or ZIP archives received as a job ([`receive`]), captioned by
//! workers on every node ([`worker`]), their results kept as records ([`records`]) and read as
//! JSONL, CSV or a ZIP of `.txt` sidecars, an optional HMAC-signed webhook when a job is done
//! ([`webhook`]).
//!
//! Inputs go to the object store (encrypted: they are people's photos) under
//! `jobs/<id>/in/<index>` and are deleted as soon as their item has a result. Items are
//! claimed through database leases ([`takarir_store::jobs`]), so any number of nodes share
//! the queue and a dead node's items are taken over when its lease runs out.

pub mod receive;
pub mod records;
pub mod webhook;
pub mod worker;

use serde::{Deserialize, Serialize};
use takarir_store::jobs::Job;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::i18n::Lang;
use crate::options::CaptionOptions;
use crate::state::AppState;
use records::ItemRecord;

/// The answer to a new job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobCreated {
    /// Job id: whoever has it can read and delete the job.
    pub id: String,
    /// `queued`, or `done` when no file could be queued.
    pub status: String,
    /// Files received.
    pub total: i64,
    /// Files already failed at upload (unsafe names, nested archives, ...).
    pub failed: i64,
    /// Progress URL.
    pub status_url: String,
    /// Results URL (`?format=jsonl|csv|zip`).
    pub results_url: String,
    /// The secret that signs the webhook (HMAC-SHA256), shown only here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// A job's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatus {
    pub id: String,
    /// `receiving`, `queued` or `done`.
    pub status: String,
    pub total: i64,
    /// Captioned.
    pub done: i64,
    /// Failed, each with its own error in the results.
    pub failed: i64,
    /// (done + failed) / total, 0..1.
    pub progress: f64,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    /// When results and the job are deleted (Unix milliseconds).
    pub expires_ms: i64,
    /// Webhook delivery: `delivered`, `failed: ...`, or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    pub results_url: String,
}

pub fn status_of(job: &Job) -> JobStatus {
    let finished = job.done + job.failed;
    JobStatus {
        id: job.id.clone(),
        status: job.status.clone(),
        total: job.total,
        done: job.done,
        failed: job.failed,
        progress: if job.total > 0 {
            (finished as f64 / job.total as f64).min(1.0)
        } else if job.status == "done" {
            1.0
        } else {
            0.0
        },
        created_ms: job.created_ms,
        finished_ms: job.finished_ms,
        expires_ms: job.expires_ms,
        webhook: job.webhook_status.clone(),
        results_url: format!("/api/v1/jobs/{}/results", job.id),
    }
}

/// What a job is captioned with, as stored in its row: the options (the submitter's
/// preferences under the request's own) and the interface language of its error messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Caption options.
    pub options: CaptionOptions,
    /// Interface language (`id`, `en`).
    pub ui: String,
}

impl JobOptions {
    /// Reads a job row's options: the typed form, or the option pairs that jobs stored before
    /// it (a job received by an older node).
    pub fn parse(stored: &str) -> Result<JobOptions, ApiError> {
        if let Ok(o) = serde_json::from_str::<JobOptions>(stored) {
            return Ok(o);
        }
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(stored).unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let pairs: Vec<(String, String)> = map.iter().map(|(k, v)| (k.clone(), text(v))).collect();
        let options = CaptionOptions::from_pairs(
            pairs
                .iter()
                .filter(|(k, _)| k != "ui")
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        let ui = map.get("ui").map(text).unwrap_or_default();
        Ok(JobOptions { options, ui })
    }

    /// The interface language.
    pub fn lang(&self) -> Lang {
        Lang::parse(&self.ui).unwrap_or_default()
    }
}

pub(crate) fn input_key(job: &str, idx: i64) -> String {
    format!("jobs/{job}/in/{idx:06}")
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(&mut b[..]);
    hex::encode(b)
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The job named `id` (404 for a malformed id or no such job).
///
/// A signed-in user's job is theirs alone: for anyone else (`viewer` another user or nobody)
/// it does not exist (404, so its id is not even confirmed). An anonymous job belongs to
/// whoever holds its unguessable id.
pub async fn load(
    state: &AppState,
    id: &str,
    viewer: Option<takarir_store::users::UserId>,
) -> Result<Job, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::NotFound);
    }
    let job = state
        .db()
        .jobs()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound)?;
    match job.user_id {
        Some(owner) if viewer.map(|v| v.0) != Some(owner) => Err(ApiError::NotFound),
        _ => Ok(job),
    }
}

/// The progress of the job named `id`, as `viewer` may see it ([`load`]).
pub async fn status(
    state: &AppState,
    id: &str,
    viewer: Option<takarir_store::users::UserId>,
) -> Result<JobStatus, ApiError> {
    Ok(status_of(&load(state, id, viewer).await?))
}

/// Deletes the job named `id`, its results and any input left, now.
pub async fn delete(
    state: &AppState,
    id: &str,
    viewer: Option<takarir_store::users::UserId>,
) -> Result<(), ApiError> {
    let job = load(state, id, viewer).await?;
    let w = takarir_store::withdrawals::Withdrawal::Job { id: job.id.clone() };
    crate::service::privacy::remember(state, w).await?;
    discard(state, &job.id).await;
    Ok(())
}

/// Deletes a job that will not run, with whatever inputs it stored.
pub(crate) async fn discard(state: &AppState, id: &str) {
    let s = state.storage();
    if let Err(e) = s.blobs.delete_prefix(&format!("jobs/{id}/")).await {
        tracing::warn!(error = %e, "could not delete a discarded job's inputs");
    }
    if let Err(e) = s.db.jobs().delete(id).await {
        tracing::warn!(error = %e, "could not delete a discarded job");
    }
}

/// The formats results can be read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultsFormat {
    /// One JSON object per line and file.
    #[default]
    Jsonl,
    /// One row per caption or failed file.
    Csv,
    /// One `.txt` per captioned image, failures in `errors.txt`.
    Zip,
}

/// A results file.
pub struct ResultsFile {
    /// Its media type.
    pub content_type: &'static str,
    /// A file name for it.
    pub filename: String,
    /// Its content.
    pub body: Vec<u8>,
}

/// The results finished so far of the job named `id`, in upload order (all of them once the
/// job is `done`).
pub async fn results(
    state: &AppState,
    id: &str,
    viewer: Option<takarir_store::users::UserId>,
    format: ResultsFormat,
) -> Result<ResultsFile, ApiError> {
    let job = load(state, id, viewer).await?;
    let items = state.db().jobs().items(&job.id).await.map_err(internal)?;
    let records: Vec<ItemRecord> = items
        .iter()
        .filter_map(|i| i.result.as_deref())
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect();
    let (content_type, ext, body) = match format {
        ResultsFormat::Jsonl => {
            let mut out = String::new();
            for r in &records {
                out.push_str(&r.to_line());
                out.push('\n');
            }
            ("application/x-ndjson", "jsonl", out.into_bytes())
        }
        ResultsFormat::Csv => (
            "text/csv; charset=utf-8",
            "csv",
            records::to_csv(&records).map_err(internal)?,
        ),
        ResultsFormat::Zip => (
            "application/zip",
            "zip",
            records::to_sidecar_zip(&records).map_err(internal)?,
        ),
    };
    Ok(ResultsFile {
        content_type,
        filename: format!("takarir-{}.{ext}", job.id),
        body,
    })
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "job storage failure");
    ApiError::Internal
}

/// The record of a file that failed, with its problem in `lang`.
pub(crate) fn failed_record(idx: i64, name: &str, e: &ApiError, lang: Lang, job: &str) -> String {
    let item = crate::service::captioning::BatchItem::of(None, Err(e.clone()), lang, job);
    ItemRecord::new(idx, name, item).to_line()
}
