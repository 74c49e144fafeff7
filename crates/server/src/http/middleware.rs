//! The outer middleware: request ids, the interface language, problem rendering, security
//! headers, access logging without personal data, and request metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use tracing::Instrument;

use crate::error::ApiError;
use crate::i18n::Lang;
use crate::state::AppState;

/// Per-request context, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// Random id, echoed as `X-Request-Id` and in problem documents and logs.
    pub id: String,
    /// Interface language.
    pub lang: Lang,
}

/// Content Security Policy: no inline script or style, nothing from other origins.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

fn new_request_id() -> String {
    let n: u128 = rand::rng().random();
    format!("{:032x}", n)
}

/// Wraps every request.
pub async fn outer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = new_request_id();
    let lang = Lang::negotiate(req.uri(), req.headers());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    req.extensions_mut().insert(RequestCtx {
        id: id.clone(),
        lang,
    });
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let mut res = next.run(req).instrument(span.clone()).await;

    // Errors are rendered here, where the language and the request id are known. A handler
    // may have chosen a language from the request body (`LangOverride`).
    if let Some(err) = res.extensions().get::<ApiError>().cloned() {
        let lang = res
            .extensions()
            .get::<LangOverride>()
            .map(|l| l.0)
            .unwrap_or(lang);
        res = err.render(lang, &id);
    } else if res.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED
        && res.headers().get(header::CONTENT_TYPE).is_none()
    {
        res = ApiError::MethodNotAllowed.render(lang, &id);
    }

    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(HeaderName::from_static("x-request-id"), v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Nothing is cached unless its handler says so (the static assets do): personal answers
    // (the access document, history, job results, exports, account pages) and errors about
    // them must never sit in a browser's or a proxy's cache.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if state.config().tls() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }

    let status = res.status().as_u16().to_string();
    let elapsed = started.elapsed();
    let m = state.metrics();
    m.requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    m.latency
        .with_label_values(&[route.as_str(), status.as_str()])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            ms = elapsed.as_secs_f64() * 1000.0,
            "request done"
        )
    });
    res
}

/// Set on a response by a handler that learned the interface language from the body.
#[derive(Debug, Clone, Copy)]
pub struct LangOverride(pub Lang);
