//! Who is asking: sessions (browser cookies), API keys (`Authorization: Bearer`), passwords,
//! CSRF tokens and sign-in throttling.
//!
//! - Passwords are hashed with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes) on a
//!   blocking thread. Minimums: at least 10 characters, not containing the email address (nor
//!   its local part when that is 4 characters or more).
//! - A session is a random 256-bit token in the `takarir_session` cookie (`HttpOnly`,
//!   `SameSite=Lax`, `Secure` when the service is reached over HTTPS, 30 days); the database
//!   keeps its SHA-256. Signing in always creates a new session and ends the one the browser
//!   brought, so a token planted before sign-in is worthless after it (no fixation).
//! - CSRF: every session has its own random token. Web forms carry it in a `csrf` field;
//!   API calls that change something and are authenticated by the cookie carry it in the
//!   `X-CSRF-Token` header. Forms used before signing in (sign-up, sign-in, reset) use a
//!   double-submit token instead: the `takarir_csrf` cookie and the same value in the form.
//!   API-key calls need no CSRF token (a browser never sends the key by itself), but each key
//!   carries scopes: `captions`, `read`, `write`, `admin`.
//! - Throttling: failed sign-ins are counted per account and per client address over 15
//!   minutes, in memory; past `login_failures_per_account` / `login_failures_per_client` a
//!   sign-in is refused with 429 before the password is even checked.

use std::net::IpAddr;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use rand::Rng;
use takarir_store::api_keys::ApiKey;
use takarir_store::sessions::Session;
use takarir_store::users::{Role, User};
use takarir_store::Db;

use crate::error::ApiError;
use crate::i18n::cookie;
use crate::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "takarir_session";
/// The double-submit CSRF cookie of signed-out forms.
pub const CSRF_COOKIE: &str = "takarir_csrf";
/// The header cookie-authenticated API mutations carry the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_DAYS: i64 = 30;
/// API key scopes.
pub const SCOPES: &[&str] = &["captions", "read", "write", "admin"];
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A fresh random token: 256 bits, URL-safe base64 without padding.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks the password minimums for an account with this email.
pub fn check_password(email: &str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::WeakPassword { rule: "too_short" });
    }
    let pw = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or("");
    if (!email.is_empty() && pw.contains(&email))
        || (local.chars().count() >= 4 && pw.contains(local))
    {
        return Err(ApiError::WeakPassword {
            rule: "contains_email",
        });
    }
    Ok(())
}

/// Hashes a password with argon2id (on a blocking thread).
pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        ApiError::Internal
    })
}

/// Checks a password against a stored hash (on a blocking thread). With `None` (no such
/// account) a dummy hash is checked, so the answer takes as long either way.
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = match hash {
        Some(h) => h.to_owned(),
        None => DUMMY
            .get_or_init(|| {
                Argon2::default()
                    .hash_password(b"dummy password", &SaltString::generate(&mut OsRng))
                    .map(|h| h.to_string())
                    .unwrap_or_default()
            })
            .clone(),
    };
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// How a request is authenticated.
#[derive(Clone, Debug)]
pub enum Via {
    /// The session cookie.
    Session(Session),
    /// An API key.
    ApiKey(ApiKey),
}

/// The signed-in user of a request.
#[derive(Clone, Debug)]
pub struct Auth {
    /// The account.
    pub user: User,
    /// By what.
    pub via: Via,
}

impl Auth {
    /// Refuses API keys without `scope` (sessions may do everything their user may).
    pub fn require_scope(&self, scope: &'static str) -> Result<(), ApiError> {
        match &self.via {
            Via::ApiKey(k) if !k.has_scope(scope) => Err(ApiError::Forbidden {
                missing: format!("scope:{scope}"),
            }),
            _ => Ok(()),
        }
    }

    /// The session, for what only a signed-in browser may do (keys, erasure, email change).
    pub fn require_session(&self) -> Result<&Session, ApiError> {
        match &self.via {
            Via::Session(s) => Ok(s),
            Via::ApiKey(_) => Err(ApiError::Forbidden {
                missing: "session".into(),
            }),
        }
    }

    /// For a change made through the API: the scope for a key, the CSRF header for a session.
    pub fn require_write(&self, headers: &HeaderMap, scope: &'static str) -> Result<(), ApiError> {
        self.require_scope(scope)?;
        if let Via::Session(s) = &self.via {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if !sent.is_some_and(|t| constant_time_eq(t, &s.csrf_token)) {
                return Err(ApiError::CsrfFailed);
            }
        }
        Ok(())
    }

    /// Admins only (through a session, or a key with the `admin` scope).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.role != Role::Admin {
            return Err(ApiError::Forbidden {
                missing: "admin".into(),
            });
        }
        self.require_scope("admin")
    }

    /// The session's CSRF token, for forms.
    pub fn csrf(&self) -> Option<&str> {
        match &self.via {
            Via::Session(s) => Some(&s.csrf_token),
            Via::ApiKey(_) => None,
        }
    }
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The bearer token of an `Authorization` header, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Authenticates a request: an API key if one is sent (an unknown one is 401, never anonymous),
/// else the session cookie (an unknown or expired one is simply anonymous).
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Auth>, ApiError> {
    let db = &state.storage().db;
    if let Some(key) = bearer(headers) {
        let key = db
            .api_keys()
            .authenticate(key)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let user = db
            .users()
            .get(key.user_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        return Ok(Some(Auth {
            user,
            via: Via::ApiKey(key),
        }));
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let idle = state.config().session_idle();
    let Some(session) = db.sessions().get_by_token(&token, idle).await? else {
        return Ok(None);
    };
    let Some(user) = db.users().get(session.user_id).await? else {
        return Ok(None);
    };
    Ok(Some(Auth {
        user,
        via: Via::Session(session),
    }))
}

/// Extractor: the signed-in user, if any.
pub struct MaybeAuth(pub Option<Auth>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(MaybeAuth(authenticate(state, &parts.headers).await?))
    }
}

/// Extractor: the signed-in user; 401 without one.
pub struct CurrentUser(pub Auth);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(state, &parts.headers)
            .await?
            .map(CurrentUser)
            .ok_or(ApiError::Unauthorized)
    }
}

/// The user a caption request is recorded for: a key with the `captions` scope (403
/// without it), or the session when the request carries its CSRF token (in the header, or in
/// the form's `csrf` field); a session without the token captions anonymously, so a forged
/// cross-site upload cannot write to anyone's history.
pub fn caption_auth(
    auth: Option<Auth>,
    headers: &HeaderMap,
    form_csrf: Option<&str>,
) -> Result<Option<Auth>, ApiError> {
    let Some(a) = auth else { return Ok(None) };
    match &a.via {
        Via::ApiKey(_) => {
            a.require_scope("captions")?;
            Ok(Some(a))
        }
        Via::Session(s) => {
            let sent = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .or(form_csrf);
            if sent.is_some_and(|t| constant_time_eq(t, &s.csrf_token)) {
                Ok(Some(a))
            } else {
                Ok(None)
            }
        }
    }
}

/// The caller of a caption API request or batch job (the CSRF token in the header only; see
/// [`caption_auth`]) and the preferences that are its default options.
pub async fn api_caption_caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Option<Auth>, takarir_store::preferences::Preferences), ApiError> {
    let auth = caption_auth(authenticate(state, headers).await?, headers, None)?;
    let prefs = effective_preferences(state, auth.as_ref(), headers).await?;
    Ok((auth, prefs))
}

/// Preferences of a signed-out browser, kept in the `takarir_prefs` cookie as
/// `lang.id~style.short~alt.2` (only those three; history and training need an account).
pub const PREFS_COOKIE: &str = "takarir_prefs";

/// The preferences in a request's `takarir_prefs` cookie.
pub fn cookie_preferences(headers: &HeaderMap) -> takarir_store::preferences::Preferences {
    let mut p = takarir_store::preferences::Preferences::default();
    if let Some(v) = cookie(headers, PREFS_COOKIE) {
        for item in v.split('~') {
            match item.split_once('.') {
                Some(("lang", l)) if matches!(l, "id" | "en" | "both") => p.lang = Some(l.into()),
                Some(("style", s)) if matches!(s, "short" | "sentence" | "detailed") => {
                    p.style = Some(s.into())
                }
                Some(("alt", n)) => p.alternatives = n.parse().ok().filter(|n| (1..=5).contains(n)),
                _ => {}
            }
        }
    }
    p
}

/// The `takarir_prefs` cookie value for preferences.
pub fn preferences_cookie_value(p: &takarir_store::preferences::Preferences) -> String {
    let mut parts = Vec::new();
    if let Some(l) = &p.lang {
        parts.push(format!("lang.{l}"));
    }
    if let Some(s) = &p.style {
        parts.push(format!("style.{s}"));
    }
    if let Some(n) = p.alternatives {
        parts.push(format!("alt.{n}"));
    }
    parts.join("~")
}

/// The caption defaults of a request: the account's preferences, else the cookie's.
pub async fn effective_preferences(
    state: &AppState,
    auth: Option<&Auth>,
    headers: &HeaderMap,
) -> Result<takarir_store::preferences::Preferences, ApiError> {
    match auth {
        Some(a) => Ok(state
            .storage()
            .db
            .preferences()
            .get_or_default(a.user.id)
            .await?),
        None => Ok(cookie_preferences(headers)),
    }
}

/// A `Set-Cookie` value.
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

/// Starts a session for `user`: ends the one named by the request's cookie (if any), stores a
/// fresh token and returns the `Set-Cookie` value and the new session's CSRF token.
pub async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
) -> Result<(HeaderValue, String), ApiError> {
    let sessions = state.storage().db.sessions();
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        sessions.delete_by_token(&old).await?;
    }
    let token = random_token();
    let csrf = random_token();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(SESSION_DAYS);
    sessions.create(user.id, &token, &csrf, expires).await?;
    Ok((
        cookie_header(state, SESSION_COOKIE, &token, SESSION_DAYS * 86_400, "Lax"),
        csrf,
    ))
}

/// Ends the request's session, if any; returns the `Set-Cookie` value that clears the cookie.
pub async fn end_session(state: &AppState, headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        state
            .storage()
            .db
            .sessions()
            .delete_by_token(&token)
            .await?;
    }
    Ok(cookie_header(state, SESSION_COOKIE, "", 0, "Lax"))
}

/// Failed sign-ins per account and per client, over a fixed window. The counters live in the
/// database (`login_failures`, keys hashed), so every node behind a load balancer sees the same
/// counts.
pub struct LoginThrottle {
    per_account: u32,
    per_client: u32,
    window_ms: i64,
}

impl LoginThrottle {
    /// Limits per 15 minutes; 0 turns a limit off.
    pub fn new(per_account: u32, per_client: u32) -> Self {
        LoginThrottle {
            per_account,
            per_client,
            window_ms: 15 * 60 * 1000,
        }
    }

    /// The window, in milliseconds (the sweeper deletes counters older than this).
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    fn account_key(account: &str) -> String {
        format!("a:{}", account.trim().to_lowercase())
    }

    fn client_key(client: IpAddr) -> String {
        format!("c:{client}")
    }

    /// Refuses (with seconds to wait) when the account or the client is over its limit.
    pub async fn check(&self, db: &Db, account: &str, client: IpAddr) -> Result<(), ApiError> {
        let now = takarir_store::jobs::now_ms();
        for (key, limit) in [
            (Self::account_key(account), self.per_account),
            (Self::client_key(client), self.per_client),
        ] {
            if limit == 0 {
                continue;
            }
            if let Some((n, since)) = db.login_failures().get(&key, now, self.window_ms).await? {
                if n >= i64::from(limit) {
                    let left_ms = (since + self.window_ms - now).max(0);
                    return Err(ApiError::TooManyAttempts {
                        retry_after: ((left_ms + 999) / 1000).max(1) as u64,
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts a failure against the account and the client.
    pub async fn failed(&self, db: &Db, account: &str, client: IpAddr) -> Result<(), ApiError> {
        let now = takarir_store::jobs::now_ms();
        for key in [Self::account_key(account), Self::client_key(client)] {
            db.login_failures().add(&key, now, self.window_ms).await?;
        }
        Ok(())
    }

    /// Forgets the account's failures (a successful sign-in, an erased account).
    pub async fn succeeded(&self, db: &Db, account: &str) -> Result<(), ApiError> {
        db.login_failures()
            .clear(&Self::account_key(account))
            .await?;
        Ok(())
    }
}

/// Extractor: the client's address as [`crate::caption::client_ip_of`] reads it (the
/// connection's peer, or the proxy's `X-Forwarded-For` entry when `trust_forwarded_for` is on).
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        Ok(ClientIp(crate::caption::client_ip_of(
            &parts.headers,
            peer,
            state.config().trust_forwarded_for,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_minimums() {
        assert!(check_password("ani@example.id", "short").is_err());
        assert!(check_password("ani@example.id", "xxANI@example.idxx").is_err());
        assert!(check_password("budiman@example.id", "budiman-rahasia-1").is_err());
        assert!(check_password("ani@example.id", "kuda-lari-kencang").is_ok());
    }

    #[tokio::test]
    async fn throttle_per_account_and_client() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let t = LoginThrottle::new(2, 3);
        let ip = IpAddr::from([10, 0, 0, 1]);
        let other = IpAddr::from([10, 0, 0, 2]);
        t.failed(&db, "a@x", ip).await.unwrap();
        assert!(t.check(&db, "a@x", ip).await.is_ok());
        t.failed(&db, "A@x", ip).await.unwrap();
        assert!(
            t.check(&db, "a@x", other).await.is_err(),
            "account limit, any client"
        );
        assert!(t.check(&db, "b@x", ip).await.is_ok());
        t.failed(&db, "b@x", ip).await.unwrap();
        assert!(
            t.check(&db, "c@x", ip).await.is_err(),
            "client limit, any account"
        );
        t.succeeded(&db, "a@x").await.unwrap();
        assert!(t.check(&db, "a@x", other).await.is_ok());
        // Nothing readable is stored: neither the address nor the client.
        let Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        let keys: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM login_failures")
            .fetch_all(pool)
            .await
            .unwrap();
        assert!(!keys.is_empty());
        assert!(keys
            .iter()
            .all(|(k,)| k.len() == 64 && !k.contains('@') && !k.contains("10.0")));
        // Windows that have passed are swept.
        let gone = db
            .login_failures()
            .delete_expired(takarir_store::jobs::now_ms() + 1)
            .await
            .unwrap();
        assert_eq!(gone as usize, keys.len());
    }
}
