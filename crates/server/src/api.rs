//! API v1: JSON in and out, problems as `application/problem+json`, described by an OpenAPI
//! document generated from this code.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::caption::{
    client_ip, read_submission, BatchItem, CaptionOut, CaptionedImage, Gps, ImageOut, MetadataOut,
    Style,
};
use crate::error::{ApiError, Problem};
use crate::middleware::{LangOverride, RequestCtx};
use crate::AppState;

/// The model that wrote the captions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelOut {
    /// Model name (directory name or `hf:` spec).
    pub name: String,
    /// Architecture, with `+int8` when quantized graphs are in use.
    pub version: String,
}

/// Captions of one image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaptionResponse {
    /// Best first; for `lang=both`, Indonesian then English.
    pub captions: Vec<CaptionOut>,
    /// The model.
    pub model: ModelOut,
    /// Image facts (upright size).
    pub image: ImageOut,
    /// EXIF summary; GPS only as `present`/`absent`.
    pub metadata: MetadataOut,
    /// Server time for the request, in milliseconds.
    pub processing_ms: f64,
    /// The request id.
    pub request_id: String,
}

/// Captions of several images (a multipart request with more than one `image` part). Each
/// image has either captions or its own problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One entry per image, in upload order.
    pub results: Vec<BatchItem>,
    /// The model.
    pub model: ModelOut,
    /// Server time for the request, in milliseconds.
    pub processing_ms: f64,
    /// The request id.
    pub request_id: String,
}

/// Caption options, as query parameters or multipart form fields.
#[derive(Debug, Clone, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CaptionParams {
    /// `id`, `en` or `both`; default: the model's default language (Indonesian first).
    /// Also the language of error messages (otherwise `Accept-Language`, then Indonesian).
    pub lang: Option<String>,
    /// `short` (≤12 words), `sentence` (default) or `detailed`.
    pub style: Option<String>,
    /// Distinct captions per image and language, 1–5 (default 1).
    pub alternatives: Option<u8>,
    /// Rewrite gendered person words (man, woman, pria, wanita, ...) to neutral ones.
    pub gender_neutral: Option<bool>,
}

/// A multipart caption request.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CaptionForm {
    /// One or more image files (JPEG, PNG, WebP, GIF, BMP, TIFF).
    #[schema(value_type = Vec<String>, format = Binary)]
    pub image: Vec<Vec<u8>>,
    /// As the query parameter.
    pub lang: Option<String>,
    /// As the query parameter.
    pub style: Option<Style>,
    /// As the query parameter.
    pub alternatives: Option<u8>,
    /// As the query parameter.
    pub gender_neutral: Option<bool>,
}

/// Service health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers (the model is loaded before it listens).
    pub status: &'static str,
    /// Loaded model name.
    pub model: String,
    /// Inference queue capacity.
    pub queue_capacity: usize,
    /// Places in use.
    pub queue_in_use: usize,
    /// Seconds since start.
    pub uptime_seconds: u64,
}

/// A loaded model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    /// Name.
    pub name: String,
    /// Architecture and quantisation.
    pub version: String,
    /// `model_type` from its configuration.
    pub model_type: String,
    /// Caption languages.
    pub languages: Vec<String>,
    /// Language used when a request names none.
    pub default_language: String,
    /// Whether int8 graphs are in use.
    pub quantized: bool,
    /// Load time in milliseconds.
    pub load_ms: f64,
}

/// The models list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Models {
    /// Loaded models (one for now).
    pub models: Vec<ModelEntry>,
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Takarir API",
        version = "1",
        description = "Self-hostable, privacy-first image captions in Indonesian and English. Images are processed in memory and never stored."
    ),
    paths(captions, health, models),
    components(schemas(
        CaptionResponse,
        BatchResponse,
        BatchItem,
        CaptionOut,
        ImageOut,
        MetadataOut,
        Gps,
        ModelOut,
        Problem,
        Health,
        Models,
        ModelEntry,
        CaptionForm,
        Style
    ))
)]
pub struct ApiDoc;

pub(crate) fn model_out(state: &AppState) -> ModelOut {
    let info = state.captioner().info();
    ModelOut {
        name: info.name.clone(),
        version: model_version(info),
    }
}

fn model_version(info: &takarir_engine::ModelInfo) -> String {
    info.version.clone()
}

/// Caption one or more images.
#[utoipa::path(
    post,
    path = "/api/v1/captions",
    params(CaptionParams),
    request_body(
        description = "multipart/form-data with `image` part(s) and option fields, or a raw image body with an `image/*` Content-Type",
        content(
            (CaptionForm = "multipart/form-data"),
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "application/octet-stream")
        )
    ),
    responses(
        (status = 200, description = "Captions (one image: CaptionResponse; several: BatchResponse)", body = CaptionResponse),
        (status = 400, description = "Bad option, no image, too many files, malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "File over the byte limit or image over the pixel limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a supported image", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Corrupt or empty image; language not supported by the model", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited (see Retry-After)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Inference queue full (see Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn captions(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = req
        .extensions()
        .get::<RequestCtx>()
        .map(|c| c.id.clone())
        .unwrap_or_default();
    let lang = req
        .extensions()
        .get::<RequestCtx>()
        .map(|c| c.lang)
        .unwrap_or_default();
    let mut hint = None;
    // Held until the body is read, so that a refusal before then can drain it.
    let mut unread = Some(req);
    let result = async {
        let req = unread.as_ref().expect("body not yet read");
        state.rate_limit(client_ip(req, state.config().trust_forwarded_for))?;
        let headers = req.headers().clone();
        let (auth, prefs) = crate::auth::api_caption_caller(&state, &headers).await?;
        let permit = state.queue_permit()?;
        let sub = read_submission(&state, unread.take().expect("body not yet read")).await?;
        hint = sub.lang_hint();
        let opts = sub.options_under(&prefs)?;
        let user = auth.as_ref().map(|a| &a.user);
        let results =
            crate::rights::caption_and_record(&state, permit, sub.uploads, &opts, user).await?;
        let ms = || started.elapsed().as_secs_f64() * 1000.0;
        if results.len() == 1 {
            let r = results.into_iter().next().expect("one result");
            let CaptionedImage {
                captions,
                image,
                metadata,
            } = r.outcome?;
            Ok::<Response, ApiError>(
                Json(CaptionResponse {
                    captions,
                    model: model_out(&state),
                    image,
                    metadata,
                    processing_ms: ms(),
                    request_id: request_id.clone(),
                })
                .into_response(),
            )
        } else {
            let l = hint.unwrap_or(lang);
            let results = results
                .into_iter()
                .map(|r| match r.outcome {
                    Ok(c) => BatchItem {
                        filename: r.filename,
                        captions: Some(c.captions),
                        image: Some(c.image),
                        metadata: Some(c.metadata),
                        error: None,
                    },
                    Err(e) => BatchItem {
                        filename: r.filename,
                        captions: None,
                        image: None,
                        metadata: None,
                        error: Some(e.problem(l, &request_id)),
                    },
                })
                .collect();
            Ok(Json(BatchResponse {
                results,
                model: model_out(&state),
                processing_ms: ms(),
                request_id: request_id.clone(),
            })
            .into_response())
        }
    }
    .await;
    if let Some(req) = unread {
        let cap = crate::body_limit(state.config().max_upload_bytes) as u64;
        crate::caption::discard_unread(&state, req, cap).await;
    }
    let mut res = match result {
        Ok(r) => r,
        Err(e) => {
            let mut r = e.into_response();
            if let Some(l) = hint {
                r.extensions_mut().insert(LangOverride(l));
            }
            r
        }
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Health check.
#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        model: state.captioner().info().name.clone(),
        queue_capacity: state.config().queue_capacity,
        queue_in_use: state.queue_in_use(),
        uptime_seconds: state.uptime().as_secs(),
    })
}

/// The loaded model.
#[utoipa::path(get, path = "/api/v1/models", responses((status = 200, body = Models)))]
pub async fn models(State(state): State<AppState>) -> Json<Models> {
    let c = state.captioner();
    let info = c.info();
    Json(Models {
        models: vec![ModelEntry {
            name: info.name.clone(),
            version: model_version(info),
            model_type: info.model_type.clone(),
            languages: info.languages.clone(),
            default_language: c.default_language().to_string(),
            quantized: info.quantized,
            load_ms: info.load_ms,
        }],
    })
}

/// The OpenAPI document of this API.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::accounts::AccountsDoc::openapi());
    doc.merge(crate::jobs::JobsDoc::openapi());
    Json(doc)
}

/// Prometheus metrics.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics().render(),
    )
}

/// Unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
