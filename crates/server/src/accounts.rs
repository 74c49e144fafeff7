//! Account API: `/api/v1/auth/...` (sign-up, sign-in, sign-out, email verification, password
//! reset), `/api/v1/me...` (access, correction, erasure, preferences, history, usage, consent,
//! exports, API keys, policy acknowledgement), `/api/v1/admin/...` (aggregates, account
//! status, reason-required access to one user's data) and `GET /exports/{token}`.
//!
//! Authentication and CSRF rules are in [`crate::auth`]: a change made with the session cookie
//! needs the `X-CSRF-Token` header; a change made with an API key needs the key's scope
//! (`read` to read, `write` to change). Key management, email change and erasure need a
//! session (a key cannot make keys or delete the account).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use takarir_store::api_keys::ApiKeyId;
use takarir_store::email_tokens::TokenPurpose;
use takarir_store::exports::{self, ExportId};
use takarir_store::history::{HistoryId, HistoryQuery};
use takarir_store::sessions::SessionId;
use takarir_store::users::{NewUser, Role, User, UserId};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};

use crate::auth::{self, CurrentUser, SCOPES};
use crate::error::{ApiError, Problem};
use crate::i18n::Lang;
use crate::middleware::RequestCtx;
use crate::rights::{self, ts, PreferencesPatch};
use crate::AppState;

/// Hours an email-verification link works.
pub const VERIFY_HOURS: i64 = 48;
/// Hours a password-reset link works.
pub const RESET_HOURS: i64 = 2;

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/verify", post(verify))
        .route("/api/v1/auth/password/forgot", post(forgot))
        .route("/api/v1/auth/password/reset", post(reset))
        .route("/api/v1/me", get(me).patch(update_me).delete(delete_me))
        .route(
            "/api/v1/me/preferences",
            get(get_preferences).patch(patch_preferences),
        )
        .route(
            "/api/v1/me/history",
            get(list_history).delete(delete_all_history),
        )
        .route(
            "/api/v1/me/history/{id}",
            patch(correct_history).delete(delete_history),
        )
        .route("/api/v1/me/password", post(change_password_api))
        .route("/api/v1/me/usage", get(usage))
        .route("/api/v1/me/consents/training", post(training_consent))
        .route("/api/v1/me/exports", get(list_exports).post(create_export))
        .route("/api/v1/me/exports/{id}", delete(revoke_export))
        .route("/api/v1/me/api-keys", get(list_keys).post(create_key))
        .route("/api/v1/me/api-keys/{id}", delete(revoke_key))
        .route("/api/v1/me/policy/ack", post(ack_policy))
        .route("/api/v1/export-schema.json", get(export_schema))
        .route("/api/v1/admin/stats", get(admin_stats))
        .route("/api/v1/admin/users", get(admin_users))
        .route("/api/v1/admin/users/{id}/access", post(admin_access))
        .route("/exports/{token}", get(download_export))
}

fn lang_of(headers: &HeaderMap, ctx: Option<&RequestCtx>) -> Lang {
    ctx.map(|c| c.lang).unwrap_or_else(|| {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::i18n::accept_language)
            .unwrap_or_default()
    })
}

/// The public view of an account.
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id.0, "email": u.email, "email_verified": u.email_verified_at.is_some(),
        "role": u.role.as_str(), "created_at": ts(u.created_at),
    })
}

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

/// Sends a password-reset link, if the address has an account (the answer never says).
pub async fn send_reset(state: &AppState, email: &str, lang: Lang) -> Result<(), ApiError> {
    let Some(user) = state.storage().db.users().get_by_email(email).await? else {
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
    let token = auth::random_token();
    let expires = OffsetDateTime::now_utc() + time::Duration::hours(hours);
    state
        .storage()
        .db
        .email_tokens()
        .create(user.id, purpose, &token, &user.email, expires)
        .await?;
    let url = format!("{}{path}?token={token}", state.config().public_url());
    let (subject, body) = compose(&url);
    state.mailer().send_logged(&user.email, subject, body).await;
    Ok(())
}

/// Creates an account (role `user`), records the acknowledgement of the current policy, sends
/// the verification link.
pub async fn create_account(
    state: &AppState,
    email: &str,
    password: &str,
    lang: Lang,
) -> Result<User, ApiError> {
    let email = takarir_store::users::normalize_email(email).map_err(|_| ApiError::InvalidEmail)?;
    auth::check_password(&email, password)?;
    let hash = auth::hash_password(password).await?;
    let user = state
        .storage()
        .db
        .users()
        .create(NewUser {
            email: &email,
            password_hash: &hash,
            role: Role::User,
        })
        .await?;
    crate::policy::acknowledge(state, &user, None).await?;
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
    let db = &state.storage().db;
    throttle.check(db, email, client).await?;
    let user = db.users().get_by_email(email).await?;
    let ok = auth::verify_password(password, user.as_ref().map(|u| u.password_hash.as_str())).await;
    match user {
        Some(u) if ok => {
            throttle.succeeded(db, email).await?;
            Ok(u)
        }
        _ => {
            throttle.failed(db, email, client).await?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// Sets a new password from a reset link; ends every session of the user.
pub async fn reset_password(
    state: &AppState,
    token: &str,
    password: &str,
) -> Result<User, ApiError> {
    let db = &state.storage().db;
    let used = db
        .email_tokens()
        .consume(TokenPurpose::Reset, token)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    let user = db
        .users()
        .get(used.user_id)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    auth::check_password(&user.email, password)?;
    let hash = auth::hash_password(password).await?;
    db.users().set_password_hash(user.id, &hash).await?;
    db.sessions().delete_all(user.id).await?;
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
    auth::check_password(&user.email, new)?;
    let hash = auth::hash_password(new).await?;
    let db = &state.storage().db;
    db.users().set_password_hash(user.id, &hash).await?;
    db.sessions().delete_others(user.id, keep).await?;
    Ok(())
}

/// Marks the address a verification link was sent to as verified (if it is still the account's).
pub async fn verify_email(state: &AppState, token: &str) -> Result<User, ApiError> {
    let db = &state.storage().db;
    let used = db
        .email_tokens()
        .consume(TokenPurpose::Verify, token)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    let user = db
        .users()
        .get(used.user_id)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    if user.email != used.email {
        return Err(ApiError::InvalidToken);
    }
    db.users()
        .mark_email_verified(user.id, OffsetDateTime::now_utc())
        .await?;
    db.users().get(user.id).await?.ok_or(ApiError::InvalidToken)
}

#[derive(Deserialize, ToSchema)]
struct Credentials {
    email: String,
    password: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 201, description = "Account made and signed in (session cookie); `{user, csrf_token}`; verification email sent"),
        (status = 409, description = "Email taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Weak password or invalid email", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json")
    )
)]
async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Option<axum::Extension<RequestCtx>>,
    auth::ClientIp(client): auth::ClientIp,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    // Each sign-up sends an email: limited per client like caption requests.
    state.rate_limit(client)?;
    let lang = lang_of(&headers, ctx.as_deref());
    let user = create_account(&state, &body.email, &body.password, lang).await?;
    let (cookie, csrf) = auth::start_session(&state, &headers, &user).await?;
    let mut res = (
        StatusCode::CREATED,
        Json(json!({"user": user_json(&user), "csrf_token": csrf})),
    )
        .into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in: a new session cookie; `{user, csrf_token}`"),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts (Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth::ClientIp(client): auth::ClientIp,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    let user = check_login(&state, &body.email, &body.password, client).await?;
    let (cookie, csrf) = auth::start_session(&state, &headers, &user).await?;
    let mut res = Json(json!({"user": user_json(&user), "csrf_token": csrf})).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "accounts",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
) -> Result<Response, ApiError> {
    a.require_session()?;
    a.require_write(&headers, "write")?;
    let cookie = auth::end_session(&state, &headers).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

#[derive(Deserialize, ToSchema)]
struct TokenBody {
    token: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/verify",
    tag = "accounts",
    request_body = TokenBody,
    responses(
        (status = 200, description = "Address verified"),
        (status = 410, description = "Unknown, used or expired link", body = Problem, content_type = "application/problem+json")
    )
)]
async fn verify(
    State(state): State<AppState>,
    Json(body): Json<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    let user = verify_email(&state, &body.token).await?;
    Ok(Json(json!({"user": user_json(&user)})))
}

#[derive(Deserialize, ToSchema)]
struct EmailBody {
    email: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/password/forgot",
    tag = "accounts",
    request_body = EmailBody,
    responses(
        (status = 202, description = "A reset link is emailed if the address has an account")
    )
)]
async fn forgot(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Option<axum::Extension<RequestCtx>>,
    auth::ClientIp(client): auth::ClientIp,
    Json(body): Json<EmailBody>,
) -> Result<StatusCode, ApiError> {
    // Each request may send an email: limited per client like caption requests.
    state.rate_limit(client)?;
    send_reset(&state, &body.email, lang_of(&headers, ctx.as_deref())).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
struct ResetBody {
    token: String,
    password: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/password/reset",
    tag = "accounts",
    request_body = ResetBody,
    responses(
        (status = 204, description = "Password changed; every session ended"),
        (status = 410, description = "Unknown, used or expired link", body = Problem, content_type = "application/problem+json")
    )
)]
async fn reset(
    State(state): State<AppState>,
    Json(body): Json<ResetBody>,
) -> Result<StatusCode, ApiError> {
    reset_password(&state, &body.token, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    responses(
        (status = 200, description = "Everything held about the user (schema: /api/v1/export-schema.json) and `policy_notice`"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn me(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    a.require_scope("read")?;
    let mut doc = rights::access_document(&state, &a.user).await?;
    let pending = crate::policy::pending_for(&state, a.user.id).await?;
    doc["policy_notice"] = serde_json::to_value(pending).unwrap_or(Value::Null);
    Ok(Json(doc))
}

#[derive(Deserialize, ToSchema)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// A new password, given the current one; the user's other sessions end, API keys stay.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "accounts",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Password changed; every other session of the user has ended"),
        (status = 401, description = "Not signed in, or the current password is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing, or not a session (API keys cannot change the password)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password is too weak", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords", body = Problem, content_type = "application/problem+json")
    )
)]
async fn change_password_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth::ClientIp(client): auth::ClientIp,
    CurrentUser(a): CurrentUser,
    Json(body): Json<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let session = a.require_session()?;
    a.require_write(&headers, "write")?;
    change_password(
        &state,
        &a.user,
        session.id,
        client,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct MePatch {
    email: Option<String>,
}

/// Correction of the profile: a new email address, unverified until its link is opened.
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    tag = "accounts",
    request_body = MePatch,
    responses(
        (status = 200, description = "Email changed; unverified until its new link is opened"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn update_me(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Option<axum::Extension<RequestCtx>>,
    CurrentUser(a): CurrentUser,
    Json(body): Json<MePatch>,
) -> Result<Json<Value>, ApiError> {
    a.require_session()?;
    a.require_write(&headers, "write")?;
    let db = &state.storage().db;
    if let Some(email) = body.email {
        db.users().set_email(a.user.id, &email).await?;
        let user = db.users().get(a.user.id).await?.ok_or(ApiError::NotFound)?;
        send_verification(&state, &user, lang_of(&headers, ctx.as_deref())).await?;
    }
    let user = db.users().get(a.user.id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(json!({"user": user_json(&user)})))
}

#[derive(Deserialize, ToSchema)]
struct PasswordBody {
    password: String,
}

/// Erasure, after re-entering the password.
#[utoipa::path(
    delete,
    path = "/api/v1/me",
    tag = "accounts",
    request_body = PasswordBody,
    responses(
        (status = 204, description = "Account erased: every row and object"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn delete_me(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Json(body): Json<PasswordBody>,
) -> Result<Response, ApiError> {
    a.require_session()?;
    a.require_write(&headers, "write")?;
    if !auth::verify_password(&body.password, Some(&a.user.password_hash)).await {
        return Err(ApiError::InvalidCredentials);
    }
    rights::erase(&state, &a.user).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        auth::cookie_header(&state, auth::SESSION_COOKIE, "", 0, "Lax"),
    );
    Ok(res)
}

#[utoipa::path(
    get,
    path = "/api/v1/me/preferences",
    tag = "accounts",
    responses(
        (status = 200, description = "Preferences"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_preferences(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    a.require_scope("read")?;
    let doc = rights::access_document(&state, &a.user).await?;
    Ok(Json(doc["preferences"].clone()))
}

#[utoipa::path(
    patch,
    path = "/api/v1/me/preferences",
    tag = "accounts",
    request_body = PreferencesPatch,
    responses(
        (status = 200, description = "Preferences after the change"),
        (status = 409, description = "Turning history off with entries needs `delete_history`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn patch_preferences(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Json(body): Json<PreferencesPatch>,
) -> Result<Json<Value>, ApiError> {
    a.require_write(&headers, "write")?;
    rights::update_preferences(&state, &a.user, body).await?;
    let doc = rights::access_document(&state, &a.user).await?;
    Ok(Json(doc["preferences"].clone()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryParams {
    search: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/me/history",
    tag = "accounts",
    params(HistoryParams),
    responses(
        (status = 200, description = "`{history: [...]}`, newest first"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_history(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
    Query(q): Query<HistoryParams>,
) -> Result<Json<Value>, ApiError> {
    a.require_scope("read")?;
    let entries = state
        .storage()
        .db
        .history()
        .list(
            a.user.id,
            HistoryQuery {
                before: q.before.map(HistoryId),
                search: q.search.as_deref().filter(|s| !s.is_empty()),
                limit: q.limit.unwrap_or(50).min(500),
            },
        )
        .await?;
    let items: Vec<Value> = entries
        .iter()
        .map(|h| {
            json!({
                "id": h.id.0, "caption": h.caption, "corrected_caption": h.corrected_caption,
                "lang": h.lang, "style": h.style, "width": h.width, "height": h.height,
                "format": h.format, "created_at": ts(h.created_at),
            })
        })
        .collect();
    Ok(Json(json!({"history": items})))
}

#[derive(Deserialize, ToSchema)]
struct Correction {
    corrected_caption: Option<String>,
}

/// Sets or clears the user's correction of a history caption (the model's stays beside it);
/// a training item made from the same caption takes the correction.
pub async fn correct(
    state: &AppState,
    user: &User,
    id: HistoryId,
    corrected: Option<&str>,
) -> Result<(), ApiError> {
    let db = &state.storage().db;
    let corrected = corrected.map(str::trim).filter(|s| !s.is_empty());
    db.history().correct(user.id, id, corrected).await?;
    if let Some(h) = db.history().get(user.id, id).await? {
        db.training()
            .set_caption(user.id, id, h.final_caption())
            .await?;
    }
    Ok(())
}

#[utoipa::path(
    patch,
    path = "/api/v1/me/history/{id}",
    tag = "accounts",
    request_body = Correction,
    responses(
        (status = 204, description = "Correction kept beside the original"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn correct_history(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Correction>,
) -> Result<StatusCode, ApiError> {
    a.require_write(&headers, "write")?;
    correct(
        &state,
        &a.user,
        HistoryId(id),
        body.corrected_caption.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/v1/me/history/{id}",
    tag = "accounts",
    responses(
        (status = 204, description = "Entry deleted"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn delete_history(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    a.require_write(&headers, "write")?;
    state
        .storage()
        .db
        .history()
        .delete(a.user.id, HistoryId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/v1/me/history",
    tag = "accounts",
    responses(
        (status = 200, description = "`{deleted: N}`"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn delete_all_history(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    a.require_write(&headers, "write")?;
    let n = state.storage().db.history().delete_all(a.user.id).await?;
    Ok(Json(json!({"deleted": n})))
}

#[utoipa::path(
    get,
    path = "/api/v1/me/usage",
    tag = "accounts",
    responses(
        (status = 200, description = "Captions per day, language and style"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn usage(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    a.require_scope("read")?;
    let doc = rights::access_document(&state, &a.user).await?;
    Ok(Json(json!({"usage": doc["usage"]})))
}

#[derive(Deserialize, ToSchema)]
struct ConsentBody {
    granted: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/consents/training",
    tag = "accounts",
    request_body = ConsentBody,
    responses(
        (status = 204, description = "Recorded; on withdrawal the training items are deleted at once"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn training_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Json(body): Json<ConsentBody>,
) -> Result<StatusCode, ApiError> {
    a.require_write(&headers, "write")?;
    rights::set_training_consent(&state, &a.user, body.granted).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/me/exports",
    tag = "accounts",
    responses(
        (status = 200, description = "The live exports"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_exports(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    a.require_scope("read")?;
    let list = state.storage().db.exports().list(a.user.id).await?;
    Ok(Json(
        json!({"exports": list.iter().map(rights::export_json).collect::<Vec<_>>()}),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/me/exports",
    tag = "accounts",
    responses(
        (status = 201, description = "Export made (`status` ready); `url` downloads the ZIP for 7 days"),
        (status = 202, description = "Export being made (`status` pending, see GET /api/v1/me/exports); `url` answers 409 until it is ready, then downloads the ZIP for 7 days"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn create_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
) -> Result<Response, ApiError> {
    a.require_write(&headers, "read")?;
    let (export, token) = rights::create_export(&state, &a.user).await?;
    let mut v = rights::export_json(&export);
    v["url"] = Value::String(format!("{}/exports/{token}", state.config().public_url()));
    let status = if export.status == exports::READY {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(v)).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/me/exports/{id}",
    tag = "accounts",
    responses(
        (status = 204, description = "Link revoked and ZIP deleted"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn revoke_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    a.require_write(&headers, "write")?;
    rights::revoke_export(&state, &a.user, ExportId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/exports/{token}",
    tag = "accounts",
    responses(
        (status = 200, description = "The export ZIP", content_type = "application/zip"),
        (status = 409, description = "Still being made (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Expired, revoked, or could not be made", body = Problem, content_type = "application/problem+json")
    )
)]
async fn download_export(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let (size, zip) = rights::export_by_token(&state, &token).await?;
    // Streamed as it is decrypted. A chunk that fails authentication midway cuts the
    // download short (the length promised is not reached), and is logged.
    let body = Body::from_stream(zip.inspect_err(|e| {
        tracing::error!(error = %e, "an export failed authentication while downloading");
    }));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"takarir-export.zip\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_LENGTH, HeaderValue::from(size)),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/me/api-keys",
    tag = "accounts",
    responses(
        (status = 200, description = "Keys (never the keys themselves)"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_keys(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    a.require_session()?;
    let doc = rights::access_document(&state, &a.user).await?;
    Ok(Json(json!({"api_keys": doc["api_keys"]})))
}

#[derive(Deserialize, ToSchema)]
struct NewKey {
    name: String,
    scopes: Vec<String>,
}

/// Makes an API key; the key itself is in this answer only.
pub async fn make_key(
    state: &AppState,
    user: &User,
    name: &str,
    scopes: &[String],
) -> Result<(Value, String), ApiError> {
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
    let key = format!("tkr_{}", auth::random_token());
    let k = state
        .storage()
        .db
        .api_keys()
        .create(
            user.id,
            &name.chars().take(100).collect::<String>(),
            &key,
            &chosen,
        )
        .await?;
    Ok((
        json!({"id": k.id.0, "name": k.name, "prefix": k.prefix, "scopes": chosen, "created_at": ts(k.created_at)}),
        key,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/me/api-keys",
    tag = "accounts",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key, shown in this answer only"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Json(body): Json<NewKey>,
) -> Result<Response, ApiError> {
    a.require_session()?;
    a.require_write(&headers, "write")?;
    let (mut v, key) = make_key(&state, &a.user, &body.name, &body.scopes).await?;
    v["key"] = Value::String(key);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/me/api-keys/{id}",
    tag = "accounts",
    responses(
        (status = 204, description = "Key revoked"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    a.require_session()?;
    a.require_write(&headers, "write")?;
    state
        .storage()
        .db
        .api_keys()
        .delete(a.user.id, ApiKeyId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct AckBody {
    version: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/policy/ack",
    tag = "accounts",
    request_body = AckBody,
    responses(
        (status = 204, description = "Acknowledgement recorded"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn ack_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Json(body): Json<AckBody>,
) -> Result<StatusCode, ApiError> {
    a.require_write(&headers, "write")?;
    crate::policy::acknowledge(&state, &a.user, body.version.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/export-schema.json",
    tag = "accounts",
    responses(
        (status = 200, description = "JSON Schema of the export's data.json", content_type = "application/schema+json")
    )
)]
async fn export_schema() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/schema+json"),
        )],
        rights::EXPORT_SCHEMA,
    )
        .into_response()
}

/// Aggregates for operators: nothing that identifies a person.
#[utoipa::path(
    get,
    path = "/api/v1/admin/stats",
    tag = "accounts",
    responses(
        (status = 200, description = "Aggregates without personal data"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn admin_stats(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    a.require_admin()?;
    let db = &state.storage().db;
    let users = db.users().list(None, u32::MAX).await?;
    let today = OffsetDateTime::now_utc().date();
    let usage: Vec<Value> = db
        .usage()
        .list(today - time::Duration::days(30), today)
        .await?
        .iter()
        .map(|u| json!({"day": u.day.to_string(), "lang": u.lang, "style": u.style, "count": u.count}))
        .collect();
    Ok(Json(json!({
        "accounts": users.len(),
        "verified_accounts": users.iter().filter(|u| u.email_verified_at.is_some()).count(),
        "admins": users.iter().filter(|u| u.role == Role::Admin).count(),
        "usage_last_30_days": usage,
    })))
}

/// Account status without personal data: id, role, verified, created.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "accounts",
    responses(
        (status = 200, description = "Account status (no addresses)"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn admin_users(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    a.require_admin()?;
    let users = state.storage().db.users().list(None, 1000).await?;
    let list: Vec<Value> = users
        .iter()
        .map(|u| json!({"id": u.id.0, "role": u.role.as_str(), "email_verified": u.email_verified_at.is_some(), "created_at": ts(u.created_at)}))
        .collect();
    Ok(Json(json!({"users": list})))
}

#[derive(Deserialize, ToSchema)]
struct ReasonBody {
    reason: Option<String>,
}

/// One user's data, for a stated reason, recorded in the audit log the user sees.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/access",
    tag = "accounts",
    request_body = ReasonBody,
    responses(
        (status = 200, description = "The user's data; the access is in their audit log"),
        (status = 400, description = "No reason given", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in, or unknown key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF token missing (cookie), scope missing (key), or session needed", body = Problem, content_type = "application/problem+json")
    )
)]
async fn admin_access(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentUser(a): CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    a.require_admin()?;
    a.require_write(&headers, "admin")?;
    let reason = body.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(ApiError::ReasonRequired);
    }
    let db = &state.storage().db;
    let subject = db
        .users()
        .get(UserId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    db.audit()
        .record(subject.id, a.user.id, "view_personal_data", &reason)
        .await?;
    Ok(Json(rights::access_document(&state, &subject).await?))
}

/// The OpenAPI description of the account routes (merged into `/api/v1/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(
        register, login, logout, verify, forgot, reset, me, update_me, delete_me, change_password_api,
        get_preferences, patch_preferences, list_history, correct_history, delete_history,
        delete_all_history, usage, training_consent, list_exports, create_export, revoke_export,
        download_export, list_keys, create_key, revoke_key, ack_policy, export_schema,
        admin_stats, admin_users, admin_access
    ),
    components(schemas(
        Credentials, TokenBody, EmailBody, ResetBody, MePatch, PasswordBody, PasswordChange, PreferencesPatch,
        Correction, ConsentBody, NewKey, AckBody, ReasonBody
    )),
    tags((name = "accounts", description = "Optional accounts and the data rights: cookie sessions (changes need X-CSRF-Token) or Bearer API keys (scopes captions, read, write, admin)"))
)]
pub struct AccountsDoc;
