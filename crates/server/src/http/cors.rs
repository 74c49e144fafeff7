//! CORS for the API (`cors_allowed_origins`): lets a page on another origin (a CMS plugin, a browser
//! extension) call `/api/v1/...` with an API key. Only the API routes get it ([`super::router`]);
//! the web pages and their forms stay same-origin.
//!
//! Credentials are not allowed: a cross-origin call authenticates with `Authorization: Bearer`
//! and never rides on the session cookie, so an allowed origin cannot act as a signed-in
//! visitor. With no origin configured there is no layer at all and no CORS header is sent.

use axum::http::{header, HeaderName, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::ServerConfig;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for the API, or `None` when `cors_allowed_origins` is empty.
pub fn layer(config: &ServerConfig) -> Option<CorsLayer> {
    if config.cors_allowed_origins.is_empty() {
        return None;
    }
    let origins = if config.cors_allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Checked when the configuration was loaded (`http(s)://HOST[:PORT]`).
        AllowOrigin::list(
            config
                .cors_allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT_LANGUAGE,
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::CONTENT_LANGUAGE,
                header::LOCATION,
            ])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
