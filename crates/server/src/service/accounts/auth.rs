//! Who is asking: sessions, API keys, passwords, CSRF tokens. The HTTP layer reads the
//! credentials a request carries ([`Credentials`]); the rules are here.
//!
//! - Passwords are hashed with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes) on a
//!   blocking thread. Minimums: at least 10 characters, not containing the email address (nor
//!   its local part when that is 4 characters or more).
//! - A session is a random 256-bit token (the `takarir_session` cookie: `HttpOnly`,
//!   `SameSite=Lax`, `Secure` when the service is reached over HTTPS, 30 days); the database
//!   keeps its SHA-256. Signing in always creates a new session and ends the one the browser
//!   brought, so a token planted before sign-in is worthless after it (no fixation).
//! - CSRF: every session has its own random token. Web forms carry it in a `csrf` field;
//!   API calls that change something and are authenticated by the cookie carry it in the
//!   `X-CSRF-Token` header. Forms used before signing in (sign-up, sign-in, reset) use a
//!   double-submit token instead: the `takarir_csrf` cookie and the same value in the form.
//!   API-key calls need no CSRF token (a browser never sends the key by itself), but each key
//!   carries scopes: `captions`, `read`, `write`, `admin`.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::Rng;
use takarir_store::api_keys::ApiKey;
use takarir_store::sessions::Session;
use takarir_store::users::{Role, User};

use crate::error::ApiError;
use crate::state::AppState;

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
    if password.trim().chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::WeakPassword { rule: "too_short" });
    }
    if is_guessable(password) {
        return Err(ApiError::WeakPassword { rule: "common" });
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

/// Words that top every list of leaked passwords (English and Indonesian), checked once digits
/// and symbols around them are stripped: `password12`, `Rahasia2024!`.
const COMMON_WORDS: &[&str] = &[
    "password",
    "passw0rd",
    "qwerty",
    "letmein",
    "iloveyou",
    "welcome",
    "admin",
    "administrator",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "master",
    "login",
    "abc",
    "katasandi",
    "sandi",
    "rahasia",
    "indonesia",
    "takarir",
    "sayang",
    "bismillah",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
];

/// Keyboard and alphabet runs a password may be a stretch of (forwards or backwards).
const RUNS: &[&str] = &[
    "01234567890",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
];

/// A small built-in guessability check (no dictionary crate is vendored): refuses passwords
/// with fewer than 5 distinct characters (`aaaaaaaaaa`, ten spaces), stretches of a keyboard
/// or alphabet run (`1234567890`, `qwertyuiop`), and a common word with only digits or
/// symbols around it (`password12`).
fn is_guessable(password: &str) -> bool {
    let pw = password.to_lowercase();
    let mut distinct: Vec<char> = pw.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return true;
    }
    let reversed: String = pw.chars().rev().collect();
    if RUNS
        .iter()
        .any(|run| run.contains(pw.as_str()) || run.contains(reversed.as_str()))
    {
        return true;
    }
    let core = pw.trim_matches(|c: char| !c.is_alphabetic());
    if core.is_empty() {
        // Only digits and symbols: guessable unless long and varied (checked above).
        return pw.chars().all(|c| c.is_ascii_digit()) && distinct.len() < 8;
    }
    COMMON_WORDS.contains(&core)
        || RUNS
            .iter()
            .any(|run| core.chars().count() >= 4 && run.contains(core))
}

/// Hashes a password with argon2id (on a blocking thread).
pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    let _hashing = hashing_place().await;
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

/// A place among the argon2 computations running at once (each takes 19 MiB), so that a flood
/// of sign-ins waits instead of exhausting memory.
async fn hashing_place() -> Option<tokio::sync::SemaphorePermit<'static>> {
    static PLACES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
    PLACES.acquire().await.ok()
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
    let _hashing = hashing_place().await;
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

/// What a request says about who sends it, as the HTTP layer read it.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// An API key (`Authorization: Bearer`).
    pub api_key: Option<String>,
    /// The session token (the session cookie).
    pub session: Option<String>,
    /// The CSRF token sent with the request (the `X-CSRF-Token` header, or a form's field).
    pub csrf: Option<String>,
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

    /// For a change: the scope for a key; for a session, the CSRF token the request sent.
    pub fn require_write(
        &self,
        sent_csrf: Option<&str>,
        scope: &'static str,
    ) -> Result<(), ApiError> {
        self.require_scope(scope)?;
        if let Via::Session(s) = &self.via {
            if !sent_csrf.is_some_and(|t| constant_time_eq(t, &s.csrf_token)) {
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

/// Authenticates a request: an API key if one is sent (an unknown one is 401, never anonymous),
/// else the session token (an unknown or expired one is simply anonymous).
pub async fn authenticate(state: &AppState, creds: &Credentials) -> Result<Option<Auth>, ApiError> {
    let db = state.db();
    if let Some(key) = &creds.api_key {
        let key = db.api_keys().authenticate(key).await?;
        let key = key.ok_or(ApiError::Unauthorized)?;
        let user = db.users().get(key.user_id).await?;
        let user = user.ok_or(ApiError::Unauthorized)?;
        return Ok(Some(Auth {
            user,
            via: Via::ApiKey(key),
        }));
    }
    let Some(token) = &creds.session else {
        return Ok(None);
    };
    let idle = state.config().session_idle();
    let Some(session) = db.sessions().get_by_token(token, idle).await? else {
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

/// The user a caption request is recorded for: a key with the `captions` scope (403
/// without it), or the session when the request carries its CSRF token; a session without the
/// token captions anonymously, so a forged cross-site upload cannot write to anyone's history.
pub fn caption_auth(auth: Option<Auth>, sent_csrf: Option<&str>) -> Result<Option<Auth>, ApiError> {
    let Some(a) = auth else { return Ok(None) };
    match &a.via {
        Via::ApiKey(_) => {
            a.require_scope("captions")?;
            Ok(Some(a))
        }
        Via::Session(s) => {
            if sent_csrf.is_some_and(|t| constant_time_eq(t, &s.csrf_token)) {
                Ok(Some(a))
            } else {
                Ok(None)
            }
        }
    }
}

/// A new session for `user`: ends the one named by `old` (the token the browser brought, if
/// any), stores a fresh token; returns the token and the session's CSRF token.
pub async fn start_session(
    state: &AppState,
    old: Option<&str>,
    user: &User,
) -> Result<(String, String), ApiError> {
    let sessions = state.db().sessions();
    if let Some(old) = old {
        sessions.delete_by_token(old).await?;
    }
    let token = random_token();
    let csrf = random_token();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(SESSION_DAYS);
    sessions.create(user.id, &token, &csrf, expires).await?;
    Ok((token, csrf))
}

/// Ends the session named by `token`, if any.
pub async fn end_session(state: &AppState, token: Option<&str>) -> Result<(), ApiError> {
    if let Some(token) = token {
        state.db().sessions().delete_by_token(token).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessable_passwords_are_refused() {
        for weak in [
            "1234567890",
            "          ",
            "password12",
            "Password2024!",
            "aaaaaaaaaaaa",
            "qwertyuiop",
            "0987654321",
            "abababababab",
            "rahasia12345",
        ] {
            assert!(check_password("ani@contoh.id", weak).is_err(), "{weak:?}");
        }
        for fine in [
            "kuda-lari-kencang-42",
            "sapi-terbang-tinggi-7",
            "7392018465",
            "correct horse battery",
        ] {
            assert!(check_password("ani@contoh.id", fine).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn password_minimums() {
        assert!(check_password("ani@example.id", "short").is_err());
        assert!(check_password("ani@example.id", "xxANI@example.idxx").is_err());
        assert!(check_password("budiman@example.id", "budiman-rahasia-1").is_err());
        assert!(check_password("ani@example.id", "kuda-lari-kencang").is_ok());
    }
}
