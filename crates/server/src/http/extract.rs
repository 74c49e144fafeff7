//! What handlers read from a request: the request context, the client address, who is
//! asking ([`MaybeAuth`], [`CurrentUser`]), cookies, and caption uploads (multipart or a raw
//! image body, held in memory only).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};

use crate::error::ApiError;
use crate::http::middleware::RequestCtx;
use crate::i18n::{cookie, form_pairs, Lang};
use crate::options::{CaptionOptions, OptionDefaults};
use crate::service::accounts::auth::{authenticate, Auth, Credentials};
use crate::service::captioning::Upload;
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "takarir_session";
/// The double-submit CSRF cookie of signed-out forms.
pub const CSRF_COOKIE: &str = "takarir_csrf";
/// The header cookie-authenticated API mutations carry the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Caption defaults of a signed-out browser, as `lang.id~style.short~alt.2`.
pub const PREFS_COOKIE: &str = "takarir_prefs";

/// The request context the middleware set (id and interface language).
pub struct Ctx(pub RequestCtx);

impl Ctx {
    /// The context of a request whose body is still to be read.
    pub fn of(req: &Request) -> Ctx {
        Ctx(req
            .extensions()
            .get::<RequestCtx>()
            .cloned()
            .unwrap_or_else(|| RequestCtx {
                id: String::new(),
                lang: Lang::default(),
            }))
    }

    /// The interface language.
    pub fn lang(&self) -> Lang {
        self.0.lang
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx(parts
            .extensions
            .get::<RequestCtx>()
            .cloned()
            .unwrap_or_else(|| RequestCtx {
                id: String::new(),
                lang: Lang::negotiate(&parts.uri, &parts.headers),
            })))
    }
}

/// The credentials a request carries: `Authorization: Bearer`, the session cookie and the
/// `X-CSRF-Token` header.
pub fn credentials(headers: &HeaderMap) -> Credentials {
    let api_key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    Credentials {
        api_key,
        session: cookie(headers, SESSION_COOKIE),
        csrf: headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
    }
}

/// Extractor: the signed-in user, if any, and the credentials.
pub struct MaybeAuth(pub Option<Auth>, pub Credentials);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let creds = credentials(&parts.headers);
        Ok(MaybeAuth(authenticate(state, &creds).await?, creds))
    }
}

/// Extractor: the signed-in user; 401 without one.
pub struct CurrentUser {
    /// Who.
    pub auth: Auth,
    /// The CSRF token the request sent in its header.
    pub csrf: Option<String>,
}

impl CurrentUser {
    /// For a change: the key's `scope`, or the session's CSRF header.
    pub fn require_write(&self, scope: &'static str) -> Result<(), ApiError> {
        self.auth.require_write(self.csrf.as_deref(), scope)
    }

    /// The account.
    pub fn user(&self) -> &takarir_store::users::User {
        &self.auth.user
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let MaybeAuth(auth, creds) = MaybeAuth::from_request_parts(parts, state).await?;
        Ok(CurrentUser {
            auth: auth.ok_or(ApiError::Unauthorized)?,
            csrf: creds.csrf,
        })
    }
}

/// Extractor: the client's address (the connection's peer, or the proxy's
/// `X-Forwarded-For` entry when `trust_forwarded_for` is on).
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(ClientIp(client_ip_of(
            &parts.headers,
            peer,
            state.config().trust_forwarded_for,
        )))
    }
}

/// Who sends a caption request (its rate-limit token already taken): the signed-in user if
/// any, the credentials it carries, and the caption defaults of its browser's cookie.
pub struct CaptionCaller {
    /// The signed-in user, before the caption rule ([`crate::service::accounts::auth::caption_auth`]).
    pub signed_in: Option<Auth>,
    /// What the request carries.
    pub creds: Credentials,
    /// The `takarir_prefs` cookie's defaults.
    pub cookie: OptionDefaults,
}

/// Takes the rate-limit token of the client at `ip` and reads who sends a caption request.
pub async fn caption_caller(
    state: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<CaptionCaller, ApiError> {
    state.rate_limit(ip)?;
    let creds = credentials(headers);
    let cookie = cookie_defaults(headers);
    let signed_in = authenticate(state, &creds).await?;
    Ok(CaptionCaller {
        signed_in,
        creds,
        cookie,
    })
}

/// A `Set-Cookie` value (`HttpOnly`, `Secure` when the service is reached over HTTPS).
pub fn cookie_header(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_seconds: i64,
    same_site: &str,
) -> HeaderValue {
    let secure = if state.config().secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    use crate::service::accounts::auth::SESSION_DAYS;
    cookie_header(state, SESSION_COOKIE, token, SESSION_DAYS * 86_400, "Lax")
}

/// The `Set-Cookie` value that ends the session cookie.
pub fn session_cookie_cleared(state: &AppState) -> HeaderValue {
    cookie_header(state, SESSION_COOKIE, "", 0, "Lax")
}

/// A request's media type, lower case (empty without one).
pub fn content_type(headers: &HeaderMap) -> String {
    let v = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    v.unwrap_or("").to_ascii_lowercase()
}

/// The caption defaults a signed-out browser keeps in its `takarir_prefs` cookie.
pub fn cookie_defaults(headers: &HeaderMap) -> OptionDefaults {
    cookie(headers, PREFS_COOKIE)
        .map(|v| OptionDefaults::from_cookie_value(&v))
        .unwrap_or_default()
}

/// A request's uploads and option pairs.
#[derive(Debug, Default)]
pub struct Submission {
    /// Images in order.
    pub uploads: Vec<Upload>,
    /// Option pairs: query string first, then form fields.
    pub pairs: Vec<(String, String)>,
}

impl Submission {
    /// The options to caption with: the caller's defaults, then the request's own options,
    /// which win.
    pub fn options_under(&self, defaults: &OptionDefaults) -> Result<CaptionOptions, ApiError> {
        CaptionOptions::under(defaults).with_pairs(self.pairs())
    }

    /// The request's name/value pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The last value of field `name`, if any.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.pairs()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .last()
    }

    /// The interface language named by a `lang` form field or query value, if any.
    pub fn lang_hint(&self) -> Option<Lang> {
        self.field("lang").and_then(Lang::parse)
    }
}

/// The client address: the connection's peer, or, when `trust_forwarded_for` is on (the server
/// is behind a reverse proxy), the last address in `X-Forwarded-For` (the one the proxy added).
/// Used only as a rate-limit key in memory; never logged.
pub fn client_ip(req: &Request, trust_forwarded_for: bool) -> std::net::IpAddr {
    client_ip_of(
        req.headers(),
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0),
        trust_forwarded_for,
    )
}

/// [`client_ip`] from the headers and the peer address.
pub fn client_ip_of(
    headers: &axum::http::HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> std::net::IpAddr {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.map(|p| p.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
}

/// Reads images and options from a multipart form or a raw image body. Images stay in memory.
/// At most `max_concurrent_uploads` bodies are received at once, `max_uploads_per_client` of
/// them from one address (503 past that), each within `upload_timeout_seconds` and at
/// `min_upload_bytes_per_second` after the grace period (408).
pub async fn read_submission(state: &AppState, req: Request) -> Result<Submission, ApiError> {
    let ip = client_ip(&req, state.config().trust_forwarded_for);
    let _permit = match state.upload_permit(ip) {
        Ok(p) => p,
        Err(e) => {
            discard_unread(state, req, state.config().body_limit()).await;
            return Err(e);
        }
    };
    let (req, too_slow) = paced_body(state, req);
    let timeout = std::time::Duration::from_secs(state.config().upload_timeout_seconds);
    match tokio::time::timeout(timeout, read_body(state, req)).await {
        Err(_) => Err(ApiError::UploadTimeout),
        Ok(Err(_)) if too_slow.tripped() => Err(ApiError::UploadTimeout),
        Ok(r) => r,
    }
}

/// `req` with its body held to the configured minimum rate ([`crate::admission::paced`]).
pub fn paced_body(state: &AppState, req: Request) -> (Request, crate::admission::TooSlow) {
    let c = state.config();
    crate::admission::paced(
        req,
        c.min_upload_bytes_per_second,
        std::time::Duration::from_secs(c.upload_grace_seconds),
    )
}

/// Reads and throws away the body of a request refused before its body was read (429, 503),
/// so that a client still sending its upload gets the refusal instead of a broken pipe. Nothing
/// is kept; reading stops past `cap` bytes or after a few seconds, when the connection is
/// simply closed.
pub async fn discard_unread(state: &AppState, req: Request, cap: u64) {
    use futures_util::StreamExt;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap) {
        return;
    }
    let within = std::time::Duration::from_secs(state.config().upload_timeout_seconds.min(10));
    // A client that trickles is not waited for: the minimum rate applies after one second.
    let c = state.config();
    let grace = std::time::Duration::from_secs(c.upload_grace_seconds.min(1));
    let (req, _) = crate::admission::paced(req, c.min_upload_bytes_per_second, grace);
    let mut stream = req.into_body().into_data_stream();
    let _ = tokio::time::timeout(within, async {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len() as u64;
            if seen > cap {
                break;
            }
        }
    })
    .await;
}

async fn read_body(state: &AppState, req: Request) -> Result<Submission, ApiError> {
    let limit = state.config().max_upload_bytes;
    let mut sub = Submission {
        pairs: req.uri().query().map(form_pairs).unwrap_or_default(),
        ..Submission::default()
    };
    let ctype = content_type(req.headers());
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > state.config().body_limit() {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let too_large = |status: axum::http::StatusCode| {
        if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::MalformedRequest
        }
    };
    if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, state)
            .await
            .map_err(|e| too_large(e.status()))?;
        while let Some(field) = mp.next_field().await.map_err(|e| too_large(e.status()))? {
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(|s| s.to_string());
            if name == "image" || name == "images" || name == "image[]" {
                let bytes = field.bytes().await.map_err(|e| too_large(e.status()))?;
                // A browser sends an empty part for a file input left empty.
                if bytes.is_empty() && filename.as_deref().unwrap_or("").is_empty() {
                    continue;
                }
                if bytes.len() as u64 > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                if sub.uploads.len() >= state.config().max_files {
                    return Err(ApiError::TooManyFiles {
                        max: state.config().max_files,
                    });
                }
                sub.uploads.push(Upload { filename, bytes });
            } else if filename.is_none() {
                let text = field.text().await.map_err(|e| too_large(e.status()))?;
                if text.len() <= 200 {
                    sub.pairs.push((name, text));
                }
            }
        }
    } else if ctype.starts_with("image/") || ctype.starts_with("application/octet-stream") {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| too_large(e.status()))?;
        if bytes.len() as u64 > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        if !bytes.is_empty() {
            sub.uploads.push(Upload {
                filename: None,
                bytes,
            });
        }
    } else if ctype.is_empty() {
        return Err(ApiError::NoImage);
    } else {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(sub)
}
