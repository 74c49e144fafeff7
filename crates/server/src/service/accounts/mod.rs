//! Accounts: sign-up, sign-in (throttled), email verification, password reset and change,
//! email correction, API keys, and staff accounts. An admin is made only from the command line
//! (`takarir admin create`), never by sign-up: whoever can run commands on the server already
//! holds its data.

pub mod auth;
pub mod throttle;

use takarir_store::api_keys::ApiKeyId;
use takarir_store::email_tokens::TokenPurpose;
use takarir_store::sessions::SessionId;
use takarir_store::users::{NewUser, Role, User};
use time::OffsetDateTime;

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::options::OptionDefaults;
use crate::state::AppState;
use crate::storage::Storage;
use crate::views::{CreatedKey, Time};
use auth::{check_password, hash_password, random_token, verify_password, Auth, SCOPES};

/// Hours an email-verification link works.
pub const VERIFY_HOURS: i64 = 48;
/// Hours a password-reset link works.
pub const RESET_HOURS: i64 = 2;

/// Sends the verification link for the user's current address.
pub async fn send_verification(state: &AppState, user: &User, lang: Lang) -> Result<(), ApiError> {
    let h = VERIFY_HOURS;
    send_link(state, user, TokenPurpose::Verify, h, "/account/verify", |url| match lang {
        Lang::Id => (
            "Takarir: pastikan alamat email Anda",
            format!("Buka tautan ini untuk memastikan alamat email akun Takarir Anda (berlaku {h} jam):\n{url}\n\nAbaikan email ini jika Anda tidak mendaftar."),
        ),
        Lang::En => (
            "Takarir: verify your email address",
            format!("Open this link to verify the email address of your Takarir account (valid {h} hours):\n{url}\n\nIgnore this email if you did not sign up."),
        ),
    })
    .await
}

/// Sends a password-reset link, if the address has an account. The answer never says, not
/// even by its timing: the look-up and the mail happen in a background task that this does not
/// wait for (sending took ~47 ms for a known address and nothing for an unknown one).
pub async fn send_reset(state: &AppState, email: &str, lang: Lang) -> Result<(), ApiError> {
    let (state, email) = (state.clone(), email.to_owned());
    tokio::spawn(async move {
        if let Err(e) = send_reset_now(&state, &email, lang).await {
            tracing::warn!(code = e.code(), "password-reset mail not sent");
        }
    });
    Ok(())
}

async fn send_reset_now(state: &AppState, email: &str, lang: Lang) -> Result<(), ApiError> {
    let Some(user) = state.db().users().get_by_email(email).await? else {
        return Ok(());
    };
    let h = RESET_HOURS;
    send_link(state, &user, TokenPurpose::Reset, h, "/account/reset", |url| match lang {
        Lang::Id => (
            "Takarir: atur ulang kata sandi",
            format!("Buka tautan ini untuk membuat kata sandi baru (berlaku {h} jam):\n{url}\n\nAbaikan email ini jika Anda tidak memintanya."),
        ),
        Lang::En => (
            "Takarir: reset your password",
            format!("Open this link to choose a new password (valid {h} hours):\n{url}\n\nIgnore this email if you did not ask for it."),
        ),
    })
    .await
}

/// Stores a one-use token for `purpose`, valid `hours`, and emails the user the link
/// `<public url><path>?token=...` with the subject and body that `compose` makes of it.
async fn send_link(
    state: &AppState,
    user: &User,
    purpose: TokenPurpose,
    hours: i64,
    path: &str,
    compose: impl FnOnce(&str) -> (&'static str, String),
) -> Result<(), ApiError> {
    let token = random_token();
    let expires = OffsetDateTime::now_utc() + time::Duration::hours(hours);
    state
        .db()
        .email_tokens()
        .create(user.id, purpose, &token, &user.email, expires)
        .await?;
    let url = format!("{}{path}?token={token}", state.config().public_url());
    let (subject, body) = compose(&url);
    state.mailer().send_logged(&user.email, subject, body).await;
    Ok(())
}

/// Refuses when this server takes no new accounts (`signups_allowed = false`). Staff accounts
/// are made on the command line ([`create_admin`]), which this does not limit.
pub fn check_signups_open(state: &AppState) -> Result<(), ApiError> {
    if state.config().signups_allowed {
        Ok(())
    } else {
        Err(ApiError::SignupsClosed)
    }
}

/// Creates an account (role `user`), records the acknowledgement of the current policy, sends
/// the verification link.
pub async fn create_account(
    state: &AppState,
    email: &str,
    password: &str,
    lang: Lang,
) -> Result<User, ApiError> {
    check_signups_open(state)?;
    let email = takarir_store::users::normalize_email(email).map_err(|_| ApiError::InvalidEmail)?;
    check_password(&email, password)?;
    let hash = hash_password(password).await?;
    let user = state
        .db()
        .users()
        .create(NewUser {
            email: &email,
            password_hash: &hash,
            role: Role::User,
        })
        .await?;
    crate::service::privacy::policy::acknowledge(state, &user, None).await?;
    send_verification(state, &user, lang).await?;
    Ok(user)
}

/// Checks email and password with throttling; the user on success.
pub async fn check_login(
    state: &AppState,
    email: &str,
    password: &str,
    client: std::net::IpAddr,
) -> Result<User, ApiError> {
    let throttle = state.login_throttle();
    let db = state.db();
    // Counted before hashing, so concurrent attempts cannot all be checked.
    let attempt = throttle.admit(db, email, client).await?;
    if !attempt.delay.is_zero() {
        tokio::time::sleep(attempt.delay).await;
    }
    let user = db.users().get_by_email(email).await?;
    let ok = verify_password(password, user.as_ref().map(|u| u.password_hash.as_str())).await;
    match user {
        Some(u) if ok => {
            throttle
                .succeeded(db, email, Some((&attempt, client)))
                .await?;
            Ok(u)
        }
        _ => {
            throttle.failed(db, email).await?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// The one use of an emailed link's token: the token's record and its account (410 for a
/// token that is unknown, used or expired, or whose account is gone).
async fn follow_link(
    state: &AppState,
    purpose: TokenPurpose,
    token: &str,
) -> Result<(takarir_store::email_tokens::UsedToken, User), ApiError> {
    let db = state.db();
    let used = db.email_tokens().consume(purpose, token).await?;
    let used = used.ok_or(ApiError::InvalidToken)?;
    let user = db.users().get(used.user_id).await?;
    Ok((used, user.ok_or(ApiError::InvalidToken)?))
}

/// Sets a new password from a reset link; ends every session of the user.
pub async fn reset_password(
    state: &AppState,
    token: &str,
    password: &str,
) -> Result<User, ApiError> {
    let db = state.db();
    let (_, user) = follow_link(state, TokenPurpose::Reset, token).await?;
    check_password(&user.email, password)?;
    let hash = hash_password(password).await?;
    db.users().set_password_hash(user.id, &hash).await?;
    db.sessions().delete_all(user.id).await?;
    // Whoever reset the password may be recovering a stolen account: keys made with the old
    // password must not keep working either.
    db.api_keys().delete_all(user.id).await?;
    Ok(user)
}

/// Sets a new password for a signed-in user who gives the current one (checked, and throttled,
/// as a sign-in is); ends the user's other sessions, keeps `keep` (the one asking).
pub async fn change_password(
    state: &AppState,
    user: &User,
    keep: SessionId,
    client: std::net::IpAddr,
    current: &str,
    new: &str,
) -> Result<(), ApiError> {
    check_login(state, &user.email, current, client).await?;
    check_password(&user.email, new)?;
    let hash = hash_password(new).await?;
    let db = state.db();
    db.users().set_password_hash(user.id, &hash).await?;
    db.sessions().delete_others(user.id, keep).await?;
    Ok(())
}

/// Marks the address a verification link was sent to as verified (if it is still the account's).
pub async fn verify_email(state: &AppState, token: &str) -> Result<User, ApiError> {
    let db = state.db();
    let (used, user) = follow_link(state, TokenPurpose::Verify, token).await?;
    if user.email != used.email {
        return Err(ApiError::InvalidToken);
    }
    db.users()
        .mark_email_verified(user.id, OffsetDateTime::now_utc())
        .await?;
    db.users().get(user.id).await?.ok_or(ApiError::InvalidToken)
}

/// Corrects the account's email address: the new one is unverified until the link sent to it
/// is opened. The account as it is now.
pub async fn change_email(
    state: &AppState,
    user: &User,
    email: &str,
    lang: Lang,
) -> Result<User, ApiError> {
    let db = state.db();
    let old = user.email.clone();
    db.users().set_email(user.id, email).await?;
    let user = db.users().get(user.id).await?.ok_or(ApiError::NotFound)?;
    // Links sent to the old address (a reset, a verification) stop working at once.
    db.email_tokens().delete_all(user.id).await?;
    if old != user.email {
        // The old address is told, without the new one, so a hijacked account is noticed.
        let contact = format!("{}/contact", state.config().public_url());
        let (subject, body) = match lang {
            Lang::Id => (
                "Takarir: alamat email akun Anda diubah",
                format!("Alamat email akun Takarir Anda baru saja diganti dengan alamat lain. Tautan yang dikirim ke alamat ini sebelumnya tidak berlaku lagi.\n\nJika bukan Anda yang menggantinya, hubungi operator: {contact}"),
            ),
            Lang::En => (
                "Takarir: your account's email address was changed",
                format!("The email address of your Takarir account was just changed to another address. Links sent to this address before no longer work.\n\nIf you did not change it, contact the operator: {contact}"),
            ),
        };
        state.mailer().send_logged(&old, subject, body).await;
    }
    send_verification(state, &user, lang).await?;
    Ok(user)
}

/// Erasure, after the password is given again.
pub async fn erase_with_password(
    state: &AppState,
    user: &User,
    password: &str,
) -> Result<(), ApiError> {
    if !verify_password(password, Some(&user.password_hash)).await {
        return Err(ApiError::InvalidCredentials);
    }
    crate::service::privacy::erase(state, user).await
}

/// Makes an API key; the key itself is in this answer only.
pub async fn make_key(
    state: &AppState,
    user: &User,
    name: &str,
    scopes: &[String],
) -> Result<CreatedKey, ApiError> {
    let mut chosen: Vec<&str> = Vec::new();
    for s in scopes {
        let Some(known) = SCOPES.iter().find(|k| **k == s.as_str()) else {
            return Err(ApiError::InvalidOption {
                name: "scopes".into(),
                value: s.chars().take(20).collect(),
                expected: "captions, read, write, admin",
            });
        };
        if *known == "admin" && user.role != Role::Admin {
            return Err(ApiError::Forbidden {
                missing: "admin".into(),
            });
        }
        if !chosen.contains(known) {
            chosen.push(known);
        }
    }
    if chosen.is_empty() {
        return Err(ApiError::InvalidOption {
            name: "scopes".into(),
            value: String::new(),
            expected: "at least one of captions, read, write, admin",
        });
    }
    let name = name.trim();
    let name = if name.is_empty() { "API" } else { name };
    let key = format!("tkr_{}", random_token());
    let k = state
        .db()
        .api_keys()
        .create(
            user.id,
            &name.chars().take(100).collect::<String>(),
            &key,
            &chosen,
        )
        .await?;
    Ok(CreatedKey {
        id: k.id.0,
        name: k.name,
        prefix: k.prefix,
        scopes: chosen.iter().map(|s| s.to_string()).collect(),
        created_at: Time(k.created_at),
        key,
    })
}

/// Revokes one of the user's API keys.
pub async fn revoke_key(state: &AppState, user: &User, id: ApiKeyId) -> Result<(), ApiError> {
    let keys = state.db().api_keys();
    if !keys.list(user.id).await?.iter().any(|k| k.id == id) {
        return Err(ApiError::NotFound);
    }
    let subject_hash = user.subject_hash();
    let w = takarir_store::withdrawals::Withdrawal::ApiKey {
        subject_hash,
        id: id.0,
    };
    crate::service::privacy::remember(state, w).await?;
    keys.delete(user.id, id).await?;
    Ok(())
}

/// The caption defaults of a request: a signed-in user's preferences, else those the browser
/// keeps in its cookie.
pub async fn caption_defaults(
    state: &AppState,
    auth: Option<&Auth>,
    cookie: OptionDefaults,
) -> Result<OptionDefaults, ApiError> {
    match auth {
        Some(a) => {
            let p = state.db().preferences().get_or_default(a.user.id).await?;
            Ok(OptionDefaults::from_preferences(&p))
        }
        None => Ok(cookie),
    }
}

/// What [`create_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    /// A new admin account, with this id.
    Created(i64),
    /// An existing account (id) became an admin; its password is unchanged.
    Promoted(i64),
    /// The account (id) was an admin already.
    AlreadyAdmin(i64),
}

/// Creates an admin account with `email` and `password` in the configured database, or makes
/// the existing account with that email an admin.
pub async fn create_admin(
    config: &ServerConfig,
    email: &str,
    password: &str,
) -> anyhow::Result<AdminOutcome> {
    let storage = Storage::open(config).await?;
    let users = storage.db.users();
    let outcome = match users.get_by_email(email).await? {
        Some(u) if u.role == Role::Admin => AdminOutcome::AlreadyAdmin(u.id.0),
        Some(u) => {
            users.set_role(u.id, Role::Admin).await?;
            AdminOutcome::Promoted(u.id.0)
        }
        None => {
            let email = takarir_store::users::normalize_email(email)
                .map_err(|_| anyhow::anyhow!("not a valid email address"))?;
            check_password(&email, password)
                .map_err(|e| anyhow::anyhow!("{}", e.messages(crate::i18n::Lang::En).1))?;
            let hash = hash_password(password)
                .await
                .map_err(|_| anyhow::anyhow!("hashing the password failed"))?;
            let u = users
                .create(NewUser {
                    email: &email,
                    password_hash: &hash,
                    role: Role::Admin,
                })
                .await?;
            AdminOutcome::Created(u.id.0)
        }
    };
    storage.db.close().await;
    Ok(outcome)
}
