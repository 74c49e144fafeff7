//! The batch job routes: `POST /api/v1/jobs` streams the multipart upload into
//! [`crate::service::jobs::receive::Intake`]; progress, results and deletion answer from
//! [`crate::service::jobs`].

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use takarir_store::users::User;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::ApiError;
use crate::http::extract::{
    client_ip, content_type, cookie_defaults, credentials, discard_unread, paced_body, MaybeAuth,
};
use crate::http::openapi::{Binary, Missing, Upload};
use crate::i18n::{form_pairs, Lang};
use crate::options::{CaptionOptions, OptionDefaults};
use crate::service::accounts::auth::{authenticate, caption_auth};
use crate::service::accounts::caption_defaults;
use crate::service::jobs::receive::Intake;
use crate::service::jobs::{self, JobCreated, JobStatus, ResultsFormat};
use crate::state::AppState;

/// The job routes' OpenAPI document (merged into `/api/v1/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(create_job, get_job, delete_job, job_results),
    components(schemas(JobForm, ResultsFormat)),
    tags((name = "jobs", description = "Batch captioning jobs shared by every node"))
)]
pub struct JobsDoc;

/// The multipart form of a new job.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handler reads the parts as they stream in
pub struct JobForm {
    /// Image files and/or ZIP archives of images (any part name; every part with a file name).
    #[schema(value_type = Vec<Binary>)]
    image: Vec<Vec<u8>>,
    /// As for `POST /api/v1/captions` (the caller's preferences are the defaults).
    lang: Option<crate::options::LangChoice>,
    /// As for `POST /api/v1/captions`.
    style: Option<crate::options::Style>,
    /// As for `POST /api/v1/captions`.
    #[schema(minimum = 1, maximum = 5)]
    alternatives: Option<u8>,
    /// As for `POST /api/v1/captions`.
    gender_neutral: Option<bool>,
    /// As for `POST /api/v1/captions` (comma-separated).
    features: Option<String>,
    /// Absolute http(s) URL called once when the job is done, signed with `webhook_secret`.
    /// It must reach a public address unless the server sets `webhook_private_networks`.
    webhook_url: Option<String>,
}

/// The longest option field a job request may have (longer ones are ignored).
const MAX_FIELD_BYTES: usize = 2000;

/// Receives a job: every file part, and every entry of ZIP parts, becomes an item. Signed in
/// (a key with `captions`, or a session with its CSRF header) the job is the user's: their
/// preferences are its defaults and its captions are recorded as theirs.
#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    operation_id = "createJob",
    tag = "jobs",
    request_body(content = JobForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Accepted; poll the status URL", body = JobCreated),
        Upload,
    )
)]
pub async fn create_job(State(state): State<AppState>, req: Request) -> Response {
    let lang = Lang::negotiate(req.uri(), req.headers());
    // A job costs one token of the client's caption rate limit, like one caption request.
    let ip = client_ip(&req, state.config().trust_forwarded_for);
    let creds = credentials(req.headers());
    let cookie = cookie_defaults(req.headers());
    let caller = async {
        state.rate_limit(ip)?;
        let auth = caption_auth(authenticate(&state, &creds).await?, creds.csrf.as_deref())?;
        let defaults = caption_defaults(&state, auth.as_ref(), cookie).await?;
        // A job upload takes one of the upload places (and of the client's), like a caption
        // request, so job uploads cannot pile up without bound.
        let permit = state.upload_permit(ip)?;
        Ok::<_, ApiError>((auth.map(|a| a.user), defaults, permit))
    };
    let (user, defaults, _permit) = match caller.await {
        Ok(c) => c,
        Err(e) => {
            if matches!(e, ApiError::Busy { .. }) {
                state.refund_rate_limit(ip);
            }
            let cap = state.config().job_max_bytes.saturating_add(1 << 20);
            discard_unread(&state, req, cap).await;
            return e.into_response();
        }
    };
    match receive(&state, req, lang, user.as_ref(), defaults).await {
        Ok(created) => (StatusCode::ACCEPTED, Json(created)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Streams the upload's file parts into a new job; then seals it with the options.
async fn receive(
    state: &AppState,
    req: Request,
    lang: Lang,
    user: Option<&User>,
    defaults: OptionDefaults,
) -> Result<JobCreated, ApiError> {
    let ctype = content_type(req.headers());
    if !ctype.starts_with("multipart/form-data") {
        return Err(if ctype.is_empty() {
            ApiError::NoImage
        } else {
            ApiError::UnsupportedMediaType
        });
    }
    let limit = state.config().job_max_bytes;
    let (req, too_slow) = paced_body(state, req);
    let mut pairs = req.uri().query().map(form_pairs).unwrap_or_default();
    let mut intake = Intake::begin(state, user, lang).await?;
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
            let Some(filename) = field.file_name().map(str::to_string) else {
                let text = field.text().await.map_err(|e| too_large(e.status()))?;
                if text.len() <= MAX_FIELD_BYTES {
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
            intake.add_file(&filename, &bytes).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = received {
        intake.abandon().await;
        return Err(if too_slow.tripped() {
            ApiError::UploadTimeout
        } else {
            e
        });
    }
    let options = CaptionOptions::under(&defaults)
        .with_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let webhook = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "webhook_url")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    intake.seal(options, webhook).await
}

/// A job's progress.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", operation_id = "getJob", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "Progress", body = JobStatus), Missing))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    MaybeAuth(auth, _): MaybeAuth,
) -> Result<Json<JobStatus>, ApiError> {
    let viewer = auth.map(|a| a.user.id);
    Ok(Json(jobs::status(&state, &id, viewer).await?))
}

/// Deletes the job, its inputs and results, now.
#[utoipa::path(
    delete,
    path = "/api/v1/jobs/{id}",
    operation_id = "deleteJob",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 204, description = "Deleted"), Missing)
)]
pub async fn delete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    MaybeAuth(auth, creds): MaybeAuth,
) -> Result<StatusCode, ApiError> {
    // A signed-in deletion is a change: a key's scope, or a session's CSRF header.
    let viewer = match &auth {
        Some(a) => {
            a.require_write(creds.csrf.as_deref(), "captions")?;
            Some(a.user.id)
        }
        None => None,
    };
    jobs::delete(&state, &id, viewer).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The results format.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// `jsonl` (default), `csv` or `zip`.
    #[param(value_type = Option<ResultsFormat>)]
    format: Option<String>,
}

/// The items finished so far, in upload order (all of them once the job is `done`).
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/results",
    operation_id = "getJobResults",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id"), ResultsQuery),
    responses(
        (status = 200, description = "JSONL (one ItemRecord per line), CSV (index,file,lang,rank,caption,score,error_code,error), or a ZIP of .txt sidecars", content(
            (String = "application/x-ndjson"), (String = "text/csv"), (Binary = "application/zip"))),
        (status = 400, description = "Unknown format", body = crate::error::Problem, content_type = "application/problem+json"),
        Missing,
    )
)]
pub async fn job_results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    MaybeAuth(auth, _): MaybeAuth,
    Query(q): Query<ResultsQuery>,
) -> Result<Response, ApiError> {
    let viewer = auth.map(|a| a.user.id);
    let format = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => ResultsFormat::Jsonl,
        "csv" => ResultsFormat::Csv,
        "zip" => ResultsFormat::Zip,
        other => {
            jobs::load(&state, &id, viewer).await?;
            return Err(ApiError::InvalidOption {
                name: "format".into(),
                value: other.chars().take(40).collect(),
                expected: "jsonl, csv, zip",
            });
        }
    };
    let file = jobs::results(&state, &id, viewer, format).await?;
    let disposition = format!("attachment; filename=\"{}\"", file.filename);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(|_| ApiError::Internal)?,
            ),
        ],
        Body::from(file.body),
    )
        .into_response())
}
