//! The HTTP adapters: routes, extractors, handlers, the OpenAPI document and the web pages.
//! Handlers read a request into typed values, call one use case of [`crate::service`], and
//! write its typed answer; errors become responses in one place ([`crate::error`], rendered
//! by [`middleware`]).

pub mod accounts;
pub mod api;
pub mod cors;
pub mod extract;
pub mod jobs;
pub mod middleware;
pub mod openapi;
pub mod web;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

/// Every route.
pub fn router(state: AppState) -> Router {
    let limit = state.config().body_limit() as usize;
    let job_limit = (state.config().job_max_bytes as usize).saturating_add(1 << 20);
    let v1 = Router::new()
        .route("/api/v1/captions", post(api::captions))
        .route(
            "/api/v1/jobs",
            post(jobs::create_job).layer(DefaultBodyLimit::max(job_limit)),
        )
        .route(
            "/api/v1/jobs/{id}",
            get(jobs::get_job).delete(jobs::delete_job),
        )
        .route("/api/v1/jobs/{id}/results", get(jobs::job_results))
        .route("/api/v1/health", get(api::health))
        .route("/api/v1/models", get(api::models))
        .route("/api/v1/openapi.json", get(openapi_json))
        .merge(accounts::router());
    // CORS on the API only (its preflights included: the layer wraps each route's
    // method-not-allowed fallback too, which is what answers OPTIONS).
    let v1 = match cors::layer(state.config()) {
        Some(cors) => v1.layer(cors),
        None => v1,
    };
    Router::new()
        .merge(v1)
        .route("/", get(web::pages::index).post(web::pages::submit))
        .route("/privacy", get(web::pages::privacy))
        .route("/contact", get(web::pages::contact))
        .route("/lang/{code}", get(web::pages::set_lang))
        .route("/static/app.js", get(web::pages::app_js))
        .route("/static/app.css", get(web::pages::app_css))
        .route("/metrics", get(api::metrics))
        .merge(accounts::download_router())
        .merge(web::account::router())
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::outer,
        ))
        .with_state(state)
}

/// The OpenAPI document of the whole API: the caption, job and account routes, with the
/// security schemes ([`openapi::Security`]).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = api::ApiDoc::openapi();
    doc.merge(ServiceDoc::openapi());
    doc.merge(jobs::JobsDoc::openapi());
    doc.merge(accounts::AccountsDoc::openapi());
    openapi::Security.modify(&mut doc);
    doc
}

#[derive(OpenApi)]
#[openapi(paths(openapi_json))]
struct ServiceDoc;

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "getOpenApi",
    tag = "service",
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}
