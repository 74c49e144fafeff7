//! Batch captioning jobs: `POST /api/v1/jobs` (files or ZIP archives), progress, results as
//! JSONL, CSV or a ZIP of `.txt` sidecars, an optional HMAC-signed webhook, the workers that
//! caption items on every node, and the retention sweeper.
//!
//! Inputs go to the object store (encrypted: they are people's photos) under
//! `jobs/<id>/in/<index>` and are deleted as soon as their item has a result. Items are
//! claimed through database leases ([`takarir_store::jobs`]), so any number of nodes share
//! the queue and a dead node's items are taken over when its lease runs out.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use takarir_store::jobs::{ClaimedItem, Job, NewJob, SweepCounts};
use takarir_store::users::{User, UserId};
use takarir_store::Sensitivity;
use utoipa::ToSchema;

use crate::caption::{BatchItem, CaptionedImage, ImageResult, Options, Upload};
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::AppState;

/// A claim is retried this many times (the node died mid-item each time) before the item is
/// failed: an image that crashes nodes must not take the whole fleet down in turn.
const MAX_ATTEMPTS: i64 = 3;

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

fn status_of(job: &Job) -> JobStatus {
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

fn input_key(job: &str, idx: i64) -> String {
    format!("jobs/{job}/in/{idx:06}")
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(&mut b[..]);
    hex::encode(b)
}

/// What one item's stored result holds (the JSONL line).
fn result_json(idx: i64, name: &str, item: BatchItem) -> String {
    let mut v = serde_json::to_value(item).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("index".into(), json!(idx));
        m.insert("file".into(), json!(name));
        m.remove("filename");
    }
    v.to_string()
}

fn error_item(e: &ApiError, lang: Lang, job: &str) -> BatchItem {
    BatchItem {
        filename: None,
        captions: None,
        image: None,
        metadata: None,
        error: Some(e.problem(lang, job)),
    }
}

/// The job routes' OpenAPI document (merged into `/api/v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create, get, delete, results),
    components(schemas(JobCreated, JobStatus, JobForm)),
    tags((name = "jobs", description = "Batch captioning jobs shared by every node"))
)]
pub struct JobsDoc;

/// The multipart form of a new job.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handler reads the parts as they stream in
pub struct JobForm {
    /// Image files and/or ZIP archives of images (any part name; every part with a file name).
    #[schema(format = Binary)]
    image: Vec<String>,
    /// `id`, `en` or `both`.
    lang: Option<String>,
    /// `short`, `sentence` or `detailed`.
    style: Option<String>,
    /// 1..5.
    alternatives: Option<u32>,
    gender_neutral: Option<bool>,
    /// Absolute http(s) URL called once when the job is done, signed with `webhook_secret`.
    /// It must reach a public address unless the server sets `webhook_private_networks`.
    webhook_url: Option<String>,
}

/// Receives a job: every file part, and every entry of ZIP parts, becomes an item.
#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    tag = "jobs",
    request_body(content = JobForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Accepted; poll the status URL", body = JobCreated),
        (status = 400, description = "Bad option, bad or non-public webhook, no file, too many files", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Upload over job_max_bytes", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown API key", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "API key without the `captions` scope", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a multipart form", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited (see Retry-After)", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(State(state): State<AppState>, req: Request) -> Response {
    let lang = Lang::negotiate(req.uri(), req.headers());
    // A job costs one token of the client's caption rate limit, like one caption request.
    let ip = crate::caption::client_ip(&req, state.config().trust_forwarded_for);
    let headers = req.headers().clone();
    let caller = async {
        state.rate_limit(ip)?;
        // Who the job's captions count for, as for `POST /api/v1/captions`: a key with the
        // `captions` scope, or a session with its CSRF token; their preferences are defaults.
        crate::auth::api_caption_caller(&state, &headers).await
    };
    let (auth, prefs) = match caller.await {
        Ok(c) => c,
        Err(e) => {
            let cap = state.config().job_max_bytes.saturating_add(1 << 20);
            crate::caption::discard_unread(&state, req, cap).await;
            return e.into_response();
        }
    };
    let defaults = crate::rights::preference_pairs(&prefs);
    let user = auth.map(|a| a.user);
    match receive(&state, req, lang, user.as_ref(), defaults).await {
        Ok(created) => (StatusCode::ACCEPTED, Json(created)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The upload in progress: what is stored so far, to clean up if the request fails.
struct Receiving<'a> {
    state: &'a AppState,
    id: String,
    lang: Lang,
    next: i64,
    failed: i64,
    unpacked: u64,
}

impl Receiving<'_> {
    fn check_count(&self) -> Result<(), ApiError> {
        if self.next as usize >= self.state.config().job_max_files {
            return Err(ApiError::TooManyFiles {
                max: self.state.config().job_max_files,
            });
        }
        Ok(())
    }

    async fn fail(&mut self, name: &str, e: ApiError) -> Result<(), ApiError> {
        self.check_count()?;
        let idx = self.next;
        self.next += 1;
        self.failed += 1;
        let json = result_json(idx, name, error_item(&e, self.lang, &self.id));
        self.state
            .storage()
            .db
            .jobs()
            .add_failed(&self.id, idx, name, &json)
            .await
            .map_err(internal)
    }

    async fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ApiError> {
        self.check_count()?;
        if bytes.is_empty() {
            return self.fail(name, ApiError::EmptyImage).await;
        }
        if is_zip(bytes) {
            return self.fail(name, ApiError::NestedArchive).await;
        }
        let idx = self.next;
        self.next += 1;
        let s = self.state.storage();
        s.blobs
            .put(&input_key(&self.id, idx), bytes, Sensitivity::Personal)
            .await
            .map_err(internal)?;
        s.db.jobs()
            .add_pending(&self.id, idx, name)
            .await
            .map_err(internal)
    }

    /// Opens a ZIP part: safe entries become items; unsafe, nested or oversized ones become
    /// failed items with their reason. Entries are unpacked one at a time, each read through
    /// a limit, so a bomb costs at most the per-file limit.
    async fn add_zip(&mut self, archive: &[u8], archive_name: &str) -> Result<(), ApiError> {
        let per_file = self.state.config().max_upload_bytes;
        let total_limit = self.state.config().job_max_bytes;
        let mut zip = match zip::ZipArchive::new(Cursor::new(archive)) {
            Ok(z) => z,
            Err(_) => return self.fail(archive_name, ApiError::CorruptImage).await,
        };
        for i in 0..zip.len() {
            let limit = total_limit.saturating_sub(self.unpacked);
            let Some((name, outcome)) = read_entry(&mut zip, i, archive_name, per_file, limit)
            else {
                continue;
            };
            if let Ok(bytes) = &outcome {
                self.unpacked += bytes.len() as u64;
            }
            match outcome {
                Ok(bytes) => self.add(&name, &bytes).await?,
                Err(e) => self.fail(&name, e).await?,
            }
        }
        Ok(())
    }
}

/// Reads entry `i` (None for a directory): its display name and bytes, or why it is refused.
/// `remaining` is what the archive may still unpack to in total.
fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    i: usize,
    archive_name: &str,
    per_file: u64,
    remaining: u64,
) -> Option<(String, Result<Vec<u8>, ApiError>)> {
    let mut entry = match zip.by_index(i) {
        Ok(e) => e,
        Err(_) => return Some((format!("{archive_name}#{i}"), Err(ApiError::CorruptImage))),
    };
    if entry.is_dir() {
        return None;
    }
    let raw = entry.name().to_string();
    let name: String = raw.chars().take(300).collect();
    let outcome = if entry.enclosed_name().is_none() || raw.split(['/', '\\']).any(|c| c == "..") {
        Err(ApiError::UnsafeArchivePath)
    } else if raw.to_ascii_lowercase().ends_with(".zip") {
        Err(ApiError::NestedArchive)
    } else if entry.size() > per_file {
        Err(ApiError::PayloadTooLarge { limit: per_file })
    } else if entry.size() > remaining {
        Err(ApiError::PayloadTooLarge { limit: remaining })
    } else {
        // The header's size may lie: the limit holds for what actually comes out.
        let mut buf = Vec::new();
        match (&mut entry).take(per_file + 1).read_to_end(&mut buf) {
            Err(_) => Err(ApiError::CorruptImage),
            Ok(_) if buf.len() as u64 > per_file.min(remaining) => {
                Err(ApiError::PayloadTooLarge { limit: per_file })
            }
            Ok(_) => Ok(buf),
        }
    };
    Some((name, outcome))
}

fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "job storage failure");
    ApiError::Internal
}

/// Stores the upload as a job. `user`: whose history and counters its captions go to;
/// `defaults`: option pairs (their preferences) that the request's own pairs override.
async fn receive(
    state: &AppState,
    req: Request,
    lang: Lang,
    user: Option<&User>,
    mut pairs: Vec<(String, String)>,
) -> Result<JobCreated, ApiError> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ctype.starts_with("multipart/form-data") {
        return Err(if ctype.is_empty() {
            ApiError::NoImage
        } else {
            ApiError::UnsupportedMediaType
        });
    }
    let limit = state.config().job_max_bytes;
    pairs.extend(
        req.uri()
            .query()
            .map(crate::i18n::form_pairs)
            .unwrap_or_default(),
    );
    let id = random_hex(16);
    let db = &state.storage().db;
    let expires_ms =
        takarir_store::jobs::now_ms() + (state.config().job_result_days as i64).max(1) * 86_400_000;
    db.jobs()
        .create(&NewJob {
            id: &id,
            user_id: user.map(|u| u.id),
            options: "{}",
            webhook_url: None,
            webhook_secret: None,
            expires_ms,
        })
        .await
        .map_err(internal)?;
    let mut r = Receiving {
        state,
        id: id.clone(),
        lang,
        next: 0,
        failed: 0,
        unpacked: 0,
    };
    let received: Result<(), ApiError> = async {
        let too_large = |status: StatusCode| {
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::MalformedRequest
            }
        };
        let mut mp = Multipart::from_request(req, state)
            .await
            .map_err(|e| too_large(e.status()))?;
        let mut received = 0u64;
        while let Some(mut field) = mp.next_field().await.map_err(|e| too_large(e.status()))? {
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(|s| s.to_string());
            let Some(filename) = filename else {
                let text = field.text().await.map_err(|e| too_large(e.status()))?;
                if text.len() <= 2000 {
                    pairs.push((name, text));
                }
                continue;
            };
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| too_large(e.status()))? {
                received += chunk.len() as u64;
                if received > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                bytes.extend_from_slice(&chunk);
            }
            // A browser sends an empty part for a file input left empty.
            if bytes.is_empty() && filename.is_empty() {
                continue;
            }
            let display = filename.chars().take(300).collect::<String>();
            if is_zip(&bytes) {
                r.add_zip(&bytes, &display).await?;
            } else if bytes.len() as u64 > state.config().max_upload_bytes {
                let limit = state.config().max_upload_bytes;
                r.fail(&display, ApiError::PayloadTooLarge { limit })
                    .await?;
            } else {
                r.add(&display, &bytes).await?;
            }
        }
        Ok(())
    }
    .await;
    let pair_refs = || pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let checked = received.and_then(|()| {
        if r.next == 0 {
            return Err(ApiError::NoImage);
        }
        // Validate now, so a bad option is the request's error, not every item's.
        let opts = Options::from_pairs(pair_refs())?;
        let captioner = state.captioner();
        opts.languages(&captioner.info().languages, captioner.default_language())?;
        let webhook = pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "webhook_url")
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if let Some(url) = &webhook {
            let ok = url::Url::parse(url)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::InvalidWebhook);
            }
            // An address written in the URL is refused now; a host name is checked when it is
            // resolved, at delivery (it may resolve differently by then).
            if !state.config().webhook_private_networks && names_private_address(url) {
                return Err(ApiError::WebhookNotPublic);
            }
        }
        Ok(webhook)
    });
    let webhook = match checked {
        Ok(w) => w,
        Err(e) => {
            discard(state, &id).await;
            return Err(e);
        }
    };
    let mut stored: serde_json::Map<String, Value> = serde_json::Map::new();
    for (k, v) in &pairs {
        if matches!(
            k.as_str(),
            "lang" | "style" | "alternatives" | "gender_neutral"
        ) {
            stored.insert(k.clone(), json!(v));
        }
    }
    stored.insert("ui".into(), json!(lang.code()));
    let secret = webhook.as_ref().map(|_| random_hex(32));
    if let Some(url) = &webhook {
        set_webhook(state, &id, url, secret.as_deref().unwrap_or_default()).await?;
    }
    let finished = db
        .jobs()
        .seal(&id, r.next, &Value::Object(stored).to_string())
        .await
        .map_err(internal)?;
    if let Some(job) = finished {
        on_finished(state.clone(), job).await;
    }
    state.notify_jobs();
    Ok(JobCreated {
        status: if r.failed == r.next { "done" } else { "queued" }.into(),
        total: r.next,
        failed: r.failed,
        status_url: format!("/api/v1/jobs/{id}"),
        results_url: format!("/api/v1/jobs/{id}/results"),
        webhook_secret: secret,
        id,
    })
}

async fn set_webhook(state: &AppState, id: &str, url: &str, secret: &str) -> Result<(), ApiError> {
    state
        .storage()
        .db
        .jobs()
        .set_webhook(id, url, secret)
        .await
        .map_err(internal)
}

/// Deletes a job that will not run, with whatever inputs it stored.
async fn discard(state: &AppState, id: &str) {
    let s = state.storage();
    if let Err(e) = s.blobs.delete_prefix(&format!("jobs/{id}/")).await {
        tracing::warn!(error = %e, "could not delete a discarded job's inputs");
    }
    if let Err(e) = s.db.jobs().delete(id).await {
        tracing::warn!(error = %e, "could not delete a discarded job");
    }
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn load(state: &AppState, id: &str) -> Result<Job, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::NotFound);
    }
    state
        .storage()
        .db
        .jobs()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound)
}

/// `GET /api/v1/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Progress", body = JobStatus),
        (status = 404, description = "No such job (or expired)", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match load(&state, &id).await {
        Ok(job) => Json(status_of(&job)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /api/v1/jobs/{id}`: the job, its inputs and results, now.
#[utoipa::path(
    delete,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such job", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match load(&state, &id).await {
        Ok(job) => {
            discard(&state, &job.id).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// `jsonl` (default), `csv` or `zip`.
    format: Option<String>,
}

/// `GET /api/v1/jobs/{id}/results?format=jsonl|csv|zip`: the items finished so far, in upload
/// order (all of them once the job is `done`).
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/results",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id"), ResultsQuery),
    responses(
        (status = 200, description = "JSONL (one object per file: index, file, captions or error), CSV, or a ZIP of .txt sidecars", content(
            (String = "application/x-ndjson"), (String = "text/csv"), (Vec<u8> = "application/zip"))),
        (status = 400, description = "Unknown format", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResultsQuery>,
) -> Response {
    let job = match load(&state, &id).await {
        Ok(j) => j,
        Err(e) => return e.into_response(),
    };
    let items = match state.storage().db.jobs().items(&job.id).await {
        Ok(i) => i,
        Err(e) => return internal(e).into_response(),
    };
    let rows: Vec<Value> = items
        .iter()
        .filter_map(|i| i.result.as_deref())
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect();
    let format = q.format.as_deref().unwrap_or("jsonl");
    let (ctype, ext, body): (&str, &str, Vec<u8>) = match format {
        "jsonl" => {
            let mut out = String::new();
            for r in &rows {
                out.push_str(&r.to_string());
                out.push('\n');
            }
            ("application/x-ndjson", "jsonl", out.into_bytes())
        }
        "csv" => ("text/csv; charset=utf-8", "csv", to_csv(&rows).into_bytes()),
        "zip" => match to_sidecar_zip(&rows) {
            Ok(z) => ("application/zip", "zip", z),
            Err(e) => return internal(e).into_response(),
        },
        other => {
            return ApiError::InvalidOption {
                name: "format".into(),
                value: other.chars().take(40).collect(),
                expected: "jsonl, csv, zip",
            }
            .into_response()
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, ctype.parse().unwrap());
    headers.insert(
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"takarir-{}.{ext}\"", job.id)
            .parse()
            .unwrap(),
    );
    (headers, Body::from(body)).into_response()
}

fn captions_of(row: &Value) -> Vec<(String, String)> {
    row.get("captions")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["lang"].as_str().unwrap_or_default().to_string(),
                        c["text"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn csv_field(s: &str) -> String {
    // Quote always; a leading formula character is defused for spreadsheet users.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn to_csv(rows: &[Value]) -> String {
    let mut out = String::from("index,file,lang,caption,error_code,error\n");
    for r in rows {
        let idx = r["index"].as_i64().unwrap_or(-1);
        let file = csv_field(r["file"].as_str().unwrap_or_default());
        if let Some(err) = r.get("error") {
            out.push_str(&format!(
                "{idx},{file},,,{},{}\n",
                csv_field(err["code"].as_str().unwrap_or_default()),
                csv_field(err["detail"].as_str().unwrap_or_default())
            ));
            continue;
        }
        for (lang, text) in captions_of(r) {
            out.push_str(&format!("{idx},{file},{lang},{},,\n", csv_field(&text)));
        }
    }
    out
}

/// One `<name>.txt` per captioned image (its captions, one per line); failures listed in
/// `errors.txt`. Names are flattened and made unique.
fn to_sidecar_zip(rows: &[Value]) -> zip::result::ZipResult<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut errors = String::new();
    for r in rows {
        let file = r["file"].as_str().unwrap_or("image");
        if let Some(err) = r.get("error") {
            errors.push_str(&format!(
                "{file}: {}\n",
                err["detail"].as_str().unwrap_or_default()
            ));
            continue;
        }
        let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
        let stem = base.rsplit_once('.').map(|(s, _)| s).unwrap_or(base);
        let stem: String = stem
            .chars()
            .map(|c| if c.is_control() || c == ':' { '_' } else { c })
            .collect();
        let stem = if stem.is_empty() {
            "image".into()
        } else {
            stem
        };
        let n = used.entry(stem.clone()).or_insert(0);
        *n += 1;
        let name = if *n == 1 {
            format!("{stem}.txt")
        } else {
            format!("{stem}-{n}.txt")
        };
        w.start_file(name, opts)?;
        for (_, text) in captions_of(r) {
            w.write_all(text.as_bytes())?;
            w.write_all(b"\n")?;
        }
    }
    if !errors.is_empty() {
        w.start_file("errors.txt", opts)?;
        w.write_all(errors.as_bytes())?;
    }
    Ok(w.finish()?.into_inner())
}

// ---------------------------------------------------------------------------------------
// Workers

/// Runs `config.job_workers` workers until the returned handles are aborted.
pub fn spawn_workers(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    (0..state.config().job_workers)
        .map(|_| tokio::spawn(worker(state.clone())))
        .collect()
}

async fn worker(state: AppState) {
    let lease_ms = state.config().job_lease_seconds as i64 * 1000;
    let mut idle = Duration::from_millis(50);
    loop {
        match state
            .storage()
            .db
            .jobs()
            .claim(state.node_id(), 1, lease_ms)
            .await
        {
            Ok(items) if !items.is_empty() => {
                idle = Duration::from_millis(50);
                for item in items {
                    process(&state, item).await;
                }
            }
            Ok(_) => {
                // Nothing to do: wait for a local submission or poll other nodes' work.
                let _ = tokio::time::timeout(idle, state.jobs_notified()).await;
                idle = (idle * 2).min(Duration::from_millis(1000));
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming job items failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Captions one claimed item and records its result.
async fn process(state: &AppState, item: ClaimedItem) {
    let s = state.storage();
    let job = match s.db.jobs().get(&item.job_id).await {
        Ok(Some(j)) => j,
        Ok(None) => return, // deleted meanwhile: its items went with it
        Err(e) => {
            tracing::warn!(error = %e, "reading a job failed");
            return;
        }
    };
    let stored: serde_json::Map<String, Value> =
        serde_json::from_str(&job.options).unwrap_or_default();
    let lang = stored
        .get("ui")
        .and_then(|v| v.as_str())
        .and_then(Lang::parse)
        .unwrap_or_default();
    let pairs: Vec<(String, String)> = stored
        .iter()
        .filter(|(k, _)| k.as_str() != "ui")
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let opts = Options::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let key = input_key(&job.id, item.idx);
    let mut input = None;
    let outcome: Result<CaptionedImage, ApiError> = if item.attempts > MAX_ATTEMPTS {
        Err(ApiError::Internal)
    } else {
        match s.blobs.get(&key).await {
            Ok(bytes) => match &opts {
                Ok(o) => {
                    input = Some(bytes.clone());
                    caption_one(state, bytes, o.clone()).await
                }
                Err(e) => Err(e.clone()),
            },
            Err(takarir_store::Error::ObjectStore(
                takarir_store::object_store::Error::NotFound { .. },
            )) => Err(ApiError::JobInputLost),
            Err(e) => {
                // Storage unavailable: leave the item leased; it is retried after the lease.
                tracing::warn!(error = %e, "reading a job input failed");
                return;
            }
        }
    };
    let ok = outcome.is_ok();
    state
        .metrics()
        .images
        .with_label_values(&[match &outcome {
            Ok(_) => "captioned",
            Err(e) => e.code(),
        }])
        .inc();
    let captioned = outcome.as_ref().ok().cloned();
    let item_out = match outcome {
        Ok(c) => BatchItem {
            filename: None,
            captions: Some(c.captions),
            image: Some(c.image),
            metadata: Some(c.metadata),
            error: None,
        },
        Err(e) => error_item(&e, lang, &job.id),
    };
    let json = result_json(item.idx, &item.name, item_out);
    match s
        .db
        .jobs()
        .complete(item.id, state.node_id(), ok, &json)
        .await
    {
        Ok(true) => {
            // Only the lease holder records, so a taken-over item never counts twice.
            if let (Some(c), Some(bytes), Ok(opts)) = (captioned, input, &opts) {
                record(state, &job, bytes, c, opts).await;
            }
            if let Err(e) = s.blobs.delete(&key).await {
                tracing::warn!(error = %e, "deleting a captioned input failed; the sweeper will");
            }
            match s.db.jobs().try_finish(&job.id).await {
                Ok(Some(done)) => on_finished(state.clone(), done).await,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "finishing a job failed"),
            }
        }
        Ok(false) => tracing::info!("job item taken over by another node; result dropped"),
        Err(e) => tracing::warn!(error = %e, "recording a job result failed"),
    }
}

/// What a captioned item leaves behind, as a caption request does: the aggregate counters
/// and, for a signed-in user's job, their counters, their history while it is on, and a
/// training item while consent stands (all read now, so a change made meanwhile applies).
async fn record(
    state: &AppState,
    job: &Job,
    bytes: bytes::Bytes,
    captioned: CaptionedImage,
    opts: &Options,
) {
    let user = match job.user_id {
        None => None,
        Some(id) => match state.storage().db.users().get(UserId(id)).await {
            Ok(Some(u)) => Some(u),
            // Erased meanwhile: nothing more of theirs is kept.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading a job's user failed");
                return;
            }
        },
    };
    let uploads = [Upload {
        filename: None,
        bytes,
    }];
    let results = [ImageResult {
        filename: None,
        outcome: Ok(captioned),
    }];
    crate::rights::record_captions(state, user.as_ref(), &uploads, &results, opts).await;
}

async fn caption_one(
    state: &AppState,
    bytes: bytes::Bytes,
    opts: Options,
) -> Result<CaptionedImage, ApiError> {
    let captioner = state.captioner().clone();
    let langs = opts.languages(&captioner.info().languages, captioner.default_language())?;
    let metrics = state.metrics().clone();
    tokio::task::spawn_blocking(move || {
        crate::caption::caption_in_languages(&captioner, &[&bytes[..]], &opts, &langs, &metrics)
            .pop()
            .unwrap_or(Err(ApiError::Internal))
    })
    .await
    .map_err(internal)?
}

/// A job just finished (on this node, exactly once): delete any input left, send the webhook.
async fn on_finished(state: AppState, job: Job) {
    let s = state.storage();
    if let Err(e) = s.blobs.delete_prefix(&format!("jobs/{}/in/", job.id)).await {
        tracing::warn!(error = %e, "deleting a finished job's inputs failed; the sweeper will");
    }
    if let (Some(url), Some(secret)) = (job.webhook_url.clone(), job.webhook_secret.clone()) {
        tokio::spawn(async move {
            let allow_private = state.config().webhook_private_networks;
            let outcome = send_webhook(&url, &secret, &job, allow_private).await;
            let status = match outcome {
                Ok(()) => "delivered".to_string(),
                Err(e) => format!("failed: {e}"),
            };
            if let Err(e) = state
                .storage()
                .db
                .jobs()
                .set_webhook_status(&job.id, &status)
                .await
            {
                tracing::warn!(error = %e, "recording webhook status failed");
            }
        });
    }
}

/// `X-Takarir-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the job's
/// secret, and `X-Takarir-Timestamp` (Unix seconds), so receivers can refuse replays.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!("sha256={}", hex::encode(tag))
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local (cloud metadata services live there), shared (CGNAT), unspecified,
/// broadcast, documentation or multicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local())
            }
        },
    }
}

/// Whether a URL's host is an IP address written out (not a name) that is not public.
fn names_private_address(url: &str) -> bool {
    let ip = match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return false,
    };
    !is_public(ip)
}

/// Resolves webhook hosts to public addresses only, so a host name that points at the
/// server's own network (or is re-pointed there after the job was accepted) is not called.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(NotPublic) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a webhook was not sent: its host has no public address.
#[derive(Debug)]
struct NotPublic;

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a public address")
    }
}

impl std::error::Error for NotPublic {}

async fn send_webhook(
    url: &str,
    secret: &str,
    job: &Job,
    allow_private: bool,
) -> Result<(), String> {
    if !allow_private && names_private_address(url) {
        return Err(NotPublic.to_string());
    }
    let body = serde_json::to_vec(&json!({
        "event": "job.finished",
        "job": status_of(job),
    }))
    .map_err(|e| e.to_string())?;
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    if !allow_private {
        client = client.dns_resolver(Arc::new(PublicOnly));
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
        }
        let ts = takarir_store::jobs::now_ms() / 1000;
        let r = client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-Takarir-Timestamp", ts.to_string())
            .header("X-Takarir-Signature", sign(secret, ts, &body))
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(res) if res.status().is_success() => return Ok(()),
            Ok(res) => last = format!("HTTP {}", res.status().as_u16()),
            Err(e) => {
                last = if e.is_timeout() {
                    "timeout".into()
                } else if is_not_public(&e) {
                    // Resolving again will not make the address public.
                    return Err(NotPublic.to_string());
                } else {
                    "unreachable".into()
                }
            }
        }
    }
    Err(last)
}

/// Whether a request failed because [`PublicOnly`] refused every address.
fn is_not_public(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.is::<NotPublic>() {
            return true;
        }
        source = s.source();
    }
    false
}

// ---------------------------------------------------------------------------------------
// Retention

/// Runs the sweeper every `sweep_interval_seconds` (first run shortly after start).
pub fn spawn_sweeper(state: &AppState) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let every = Duration::from_secs(state.config().sweep_interval_seconds);
        tokio::time::sleep(Duration::from_secs(5).min(every)).await;
        loop {
            match sweep(&state).await {
                Ok(c) => tracing::info!(
                    jobs = c.jobs_deleted,
                    objects = c.objects_deleted,
                    history = c.history_deleted,
                    temp_files = c.temp_files_deleted,
                    "retention sweep"
                ),
                Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// One retention sweep: expired jobs (rows and objects), inputs whose item is no longer
/// pending (a node died between recording a result and deleting the input), stray files in
/// `data_dir/tmp`, history past `history_retention_days`, stale sign-in counters and sessions.
/// Records the counts.
pub async fn sweep(state: &AppState) -> anyhow::Result<SweepCounts> {
    let s = state.storage();
    let mut c = SweepCounts::default();
    let now = takarir_store::jobs::now_ms();
    // A job still `receiving` after a day lost its upload to a crash.
    for id in s.db.jobs().expired(now, 86_400_000).await? {
        c.objects_deleted += s.blobs.delete_prefix(&format!("jobs/{id}/")).await? as i64;
        if s.db.jobs().delete(&id).await? {
            c.jobs_deleted += 1;
        }
    }
    for key in s.blobs.list("jobs/").await? {
        let mut parts = key.split('/');
        let (Some("jobs"), Some(job), Some("in"), Some(idx)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(idx) = idx.parse::<i64>() else {
            continue;
        };
        let keep = match s.db.jobs().get(job).await? {
            // An upload in progress stores inputs before their rows.
            Some(j) if j.status == "receiving" => true,
            Some(_) => s.db.jobs().is_pending(job, idx).await?,
            None => false,
        };
        if !keep {
            s.blobs.delete(&key).await?;
            c.objects_deleted += 1;
        }
    }
    let tmp = state.config().data_dir.join("tmp");
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600))
                .unwrap_or(false);
            if old && std::fs::remove_file(e.path()).is_ok() {
                c.temp_files_deleted += 1;
            }
        }
    }
    // Sign-in failure counters whose window has passed (hashed keys; not counted).
    let window = state.login_throttle().window_ms();
    s.db.login_failures().delete_expired(now - window).await?;
    // Sessions past their expiry or idle limit (not counted either).
    s.db.sessions()
        .delete_stale(state.config().session_idle())
        .await?;
    let days = state.config().history_retention_days;
    if days > 0 {
        let before = time::OffsetDateTime::now_utc() - time::Duration::days(days as i64);
        c.history_deleted = s.db.history().delete_all_older_than(before).await? as i64;
    }
    s.db.jobs().record_sweep(&c).await?;
    Ok(c)
}

/// Shared wake-up for local workers when this node receives a job.
#[derive(Default)]
pub struct JobSignal(tokio::sync::Notify);

impl JobSignal {
    pub fn notify(&self) {
        self.0.notify_waiters();
    }

    pub async fn notified(&self) {
        self.0.notified().await
    }
}

/// Keeps the signal type reachable from `AppState` without exposing `Notify`.
pub type SharedSignal = Arc<JobSignal>;

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
