//! API v1 captions and service routes: JSON in and out, problems as
//! `application/problem+json`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{ApiError, Problem};
use crate::http::extract::{caption_caller, client_ip, discard_unread, read_submission, Ctx};
use crate::http::middleware::LangOverride;
use crate::http::openapi::{Binary, Upload};
use crate::models::ModelCard;
use crate::options::{Feature, LangChoice, Style};
use crate::service::accounts::auth::caption_auth;
use crate::service::accounts::caption_defaults;
use crate::service::captioning::{
    caption_and_record, BatchItem, CaptionOut, CaptionedImage, ImageOut, MetadataOut, ObjectOut,
    TagOut, TextOut,
};
use crate::state::AppState;

/// The model that wrote the captions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelOut {
    /// Model name (directory name or `hf:` spec).
    pub name: String,
    /// `model_version` from the model's configuration (or `unversioned`), with `+int8` when
    /// quantized graphs are in use.
    pub version: String,
}

/// Captions of one image (a request with one image).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaptionResponse {
    /// Best first; for `lang=both`, Indonesian then English.
    pub captions: Vec<CaptionOut>,
    /// Detected objects, when `features` includes `objects`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<ObjectOut>>,
    /// Tags, when `features` includes `tags`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagOut>>,
    /// The text in the image, when `features` includes `text`: lines (text, confidence,
    /// polygon in pixels of the upright image) and the whole text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextOut>,
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

/// The answer to `POST /api/v1/captions`: one image's captions, or (several images) one entry
/// per image.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CaptionAnswer {
    /// One image.
    One(CaptionResponse),
    /// Several images.
    Many(BatchResponse),
}

/// Caption options, as query parameters or multipart form fields.
#[derive(Debug, Clone, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the options are read with the body
pub struct CaptionParams {
    /// Caption language(s); default: the model's default language (Indonesian first). Also the
    /// language of error messages (otherwise the `lang` cookie, `Accept-Language`, then
    /// Indonesian).
    pub lang: Option<LangChoice>,
    /// `short` (at most 12 words), `sentence` (default) or `detailed`.
    pub style: Option<Style>,
    /// Distinct captions per image and language (default 1).
    #[param(minimum = 1, maximum = 5)]
    pub alternatives: Option<u8>,
    /// Rewrite gendered person words (man, woman, pria, wanita, ...) to neutral ones.
    pub gender_neutral: Option<bool>,
    /// Outputs, comma-separated: `caption` (default), `objects`, `tags`, `text` (the text in
    /// the photo; the best caption of each language then quotes prominent text).
    #[param(style = Form, explode = false)]
    pub features: Option<Vec<Feature>>,
}

/// A multipart caption request.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct CaptionForm {
    /// One or more image files (JPEG, PNG, WebP, GIF, BMP, TIFF).
    #[schema(value_type = Vec<Binary>)]
    pub image: Vec<Vec<u8>>,
    /// As the query parameter.
    pub lang: Option<LangChoice>,
    /// As the query parameter.
    pub style: Option<Style>,
    /// As the query parameter.
    #[schema(minimum = 1, maximum = 5)]
    pub alternatives: Option<u8>,
    /// As the query parameter.
    pub gender_neutral: Option<bool>,
    /// As the query parameter (comma-separated).
    pub features: Option<String>,
}

/// Service health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers (the model is loaded before it listens).
    pub status: String,
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
    /// `model_version` (or `unversioned`), `+int8` when quantized.
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
    /// Always true: the version in use (`takarir models promote` chooses it).
    pub active: bool,
    /// Its `card.json` (training exports, consented items per language, gate figures), if any.
    pub card: Option<ModelCard>,
}

/// The models list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Models {
    /// The loaded model: the version in use (one for now).
    pub models: Vec<ModelEntry>,
}

/// The caption and service routes' OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Takarir API",
        version = "1",
        description = "Self-hostable, privacy-first image captions in Indonesian and English. Images are processed in memory and never stored."
    ),
    paths(captions, health, models),
    components(schemas(Problem, CaptionForm, CaptionAnswer, Feature))
)]
pub struct ApiDoc;

fn model_out(state: &AppState) -> ModelOut {
    let info = state.captioner().info();
    ModelOut {
        name: info.name.clone(),
        version: info.version.clone(),
    }
}

/// Caption one or more images.
#[utoipa::path(
    post,
    path = "/api/v1/captions",
    operation_id = "createCaptions",
    tag = "captions",
    params(CaptionParams),
    request_body(
        description = "multipart/form-data with `image` part(s) and option fields, or a raw image body with an image Content-Type",
        content(
            (CaptionForm = "multipart/form-data"),
            (Binary = "image/jpeg"),
            (Binary = "image/png"),
            (Binary = "image/webp"),
            (Binary = "image/gif"),
            (Binary = "image/bmp"),
            (Binary = "image/tiff"),
            (Binary = "application/octet-stream")
        )
    ),
    responses(
        (status = 200, description = "Captions: one image's, or one entry per image", body = CaptionAnswer),
        Upload,
    )
)]
pub async fn captions(State(state): State<AppState>, ctx: Ctx, req: Request) -> Response {
    let started = Instant::now();
    let request_id = ctx.0.id.clone();
    let mut hint = None;
    let ip = client_ip(&req, state.config().trust_forwarded_for);
    // Held until the body is read, so that a refusal before then can drain it.
    let mut unread = Some(req);
    let result = async {
        let req = unread.as_ref().expect("body not yet read");
        let caller = caption_caller(&state, ip, req.headers()).await?;
        let auth = caption_auth(caller.signed_in, caller.creds.csrf.as_deref())?;
        let defaults = caption_defaults(&state, auth.as_ref(), caller.cookie).await?;
        let sub = read_submission(&state, unread.take().expect("body not yet read")).await?;
        hint = sub.lang_hint();
        let opts = sub.options_under(&defaults)?;
        let user = auth.as_ref().map(|a| &a.user);
        // Only now, with the upload read, does the request take an inference place: a slow
        // upload never holds one.
        let permit = state.queue_permit()?;
        let results = caption_and_record(&state, permit, sub.uploads, &opts, user).await?;
        let processing_ms = started.elapsed().as_secs_f64() * 1000.0;
        let answer = if results.len() == 1 {
            let r = results.into_iter().next().expect("one result");
            let CaptionedImage {
                captions,
                objects,
                tags,
                text,
                image,
                metadata,
            } = r.outcome?;
            CaptionAnswer::One(CaptionResponse {
                captions,
                objects,
                tags,
                text,
                model: model_out(&state),
                image,
                metadata,
                processing_ms,
                request_id: request_id.clone(),
            })
        } else {
            let lang = hint.unwrap_or(ctx.lang());
            CaptionAnswer::Many(BatchResponse {
                results: results
                    .into_iter()
                    .map(|r| BatchItem::of(r.filename, r.outcome, lang, &request_id))
                    .collect(),
                model: model_out(&state),
                processing_ms,
                request_id: request_id.clone(),
            })
        };
        Ok::<_, ApiError>(Json(answer).into_response())
    }
    .await;
    if let Some(req) = unread {
        discard_unread(&state, req, state.config().body_limit()).await;
    }
    if matches!(result, Err(ApiError::Busy { .. })) {
        state.refund_rate_limit(ip);
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
#[utoipa::path(get, path = "/api/v1/health", operation_id = "getHealth", tag = "service",
    responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        model: state.captioner().info().name.clone(),
        queue_capacity: state.config().queue_capacity,
        queue_in_use: state.queue_in_use(),
        uptime_seconds: state.uptime().as_secs(),
    })
}

/// The loaded model.
#[utoipa::path(
    get,
    path = "/api/v1/models",
    operation_id = "listModels",
    tag = "service",
    responses((status = 200, body = Models))
)]
pub async fn models(State(state): State<AppState>) -> Json<Models> {
    let c = state.captioner();
    let info = c.info();
    Json(Models {
        models: vec![ModelEntry {
            name: info.name.clone(),
            version: info.version.clone(),
            model_type: info.model_type.clone(),
            languages: info.languages.clone(),
            default_language: c.default_language().to_string(),
            quantized: info.quantized,
            load_ms: info.load_ms,
            active: true,
            card: state.model_card().cloned(),
        }],
    })
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
