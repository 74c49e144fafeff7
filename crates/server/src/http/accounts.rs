//! Account API: `/api/v1/auth/...` (sign-up, sign-in, sign-out, email verification, password
//! reset), `/api/v1/me...` (access, correction, erasure, preferences, history, usage, consent,
//! exports, API keys, policy acknowledgement), `/api/v1/admin/...` (aggregates, account
//! status, reason-required access to one user's data) and `GET /exports/{token}`.
//!
//! Each handler checks who may call it ([`CurrentUser`]: a change made with the session
//! cookie needs the `X-CSRF-Token` header, one made with an API key the key's scope; key
//! management, email change and erasure need a session), calls one use case of
//! [`crate::service`] and answers with its typed view.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use futures_util::TryStreamExt;
use serde::Deserialize;
use takarir_store::exports::{ExportId, READY};
use takarir_store::history::HistoryId;
use takarir_store::users::{User, UserId};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{ApiError, Problem};
use crate::http::extract::{
    session_cookie, session_cookie_cleared, ClientIp, Ctx, CurrentUser, SESSION_COOKIE,
};
use crate::http::openapi::{Binary, Credentials as CredentialProblems, Link, Missing, SignedIn};
use crate::i18n::cookie;
use crate::service::privacy::{self, admin, exports, policy, PreferencesPatch};
use crate::service::{accounts, accounts::auth};
use crate::state::AppState;
use crate::views::{
    AccessDocument, AdminStats, AdminUsers, ApiKeyList, CreatedExport, CreatedKey, Deleted,
    ExportList, ExportView, HistoryPage, Me, PreferencesView, SignedIn as SignedInView, UsageList,
    UserAnswer, UserView,
};

/// The account API routes (all under `/api/v1`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/verify", post(verify_email))
        .route("/api/v1/auth/password/forgot", post(forgot_password))
        .route("/api/v1/auth/password/reset", post(reset_password))
        .route("/api/v1/me", get(get_me).patch(update_me).delete(delete_me))
        .route(
            "/api/v1/me/preferences",
            get(get_preferences).patch(update_preferences),
        )
        .route(
            "/api/v1/me/history",
            get(list_history).delete(delete_history),
        )
        .route(
            "/api/v1/me/history/{id}",
            patch(correct_history).delete(delete_history_entry),
        )
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/usage", get(get_usage))
        .route("/api/v1/me/consents/training", post(set_training_consent))
        .route("/api/v1/me/exports", get(list_exports).post(create_export))
        .route("/api/v1/me/exports/{id}", delete(revoke_export))
        .route(
            "/api/v1/me/api-keys",
            get(list_api_keys).post(create_api_key),
        )
        .route("/api/v1/me/api-keys/{id}", delete(revoke_api_key))
        .route("/api/v1/me/policy/ack", post(acknowledge_policy))
        .route("/api/v1/export-schema.json", get(get_export_schema))
        .route("/api/v1/admin/stats", get(admin_stats))
        .route("/api/v1/admin/users", get(admin_users))
        .route("/api/v1/admin/users/{id}/access", post(admin_access))
}

/// The export download link (outside `/api/v1`: it is opened from an email or the account
/// page, never called cross-origin).
pub fn download_router() -> Router<AppState> {
    Router::new().route("/exports/{token}", get(download_export))
}

/// An answer that starts or ends a session: the body and its `Set-Cookie`.
fn with_cookie(status: StatusCode, body: impl IntoResponse, cookie: HeaderValue) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    res
}

/// Signs `user` in: a new session (the one the browser brought ends), its cookie and token.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    user: &User,
) -> Result<Response, ApiError> {
    let old = cookie(headers, SESSION_COOKIE);
    let (token, csrf_token) = auth::start_session(state, old.as_deref(), user).await?;
    let body = Json(SignedInView {
        user: UserView::from(user),
        csrf_token,
    });
    Ok(with_cookie(status, body, session_cookie(state, &token)))
}

/// An email address and a password.
#[derive(Deserialize, ToSchema)]
pub struct EmailPassword {
    email: String,
    password: String,
}

/// Makes an account (role `user`) and signs it in; sends the verification email.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "accounts",
    request_body = EmailPassword,
    responses(
        (status = 201, description = "Account made and signed in (session cookie)", body = SignedInView),
        (status = 403, description = "Sign-up is closed on this server (`signups_closed`)", body = Problem, content_type = "application/problem+json"),
        CredentialProblems
    )
)]
async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    ClientIp(client): ClientIp,
    Json(body): Json<EmailPassword>,
) -> Result<Response, ApiError> {
    // Closed sign-up is said first: no rate-limit token spent on a request that cannot succeed.
    accounts::check_signups_open(&state)?;
    // Each sign-up sends an email: limited per client like caption requests.
    state.rate_limit(client)?;
    let user = accounts::create_account(&state, &body.email, &body.password, ctx.lang()).await?;
    signed_in(&state, &headers, StatusCode::CREATED, &user).await
}

/// Signs in: a new session cookie (the one the browser brought ends).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "accounts",
    request_body = EmailPassword,
    responses(
        (status = 200, description = "Signed in (session cookie)", body = SignedInView),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts (Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientIp(client): ClientIp,
    Json(body): Json<EmailPassword>,
) -> Result<Response, ApiError> {
    let user = accounts::check_login(&state, &body.email, &body.password, client).await?;
    signed_in(&state, &headers, StatusCode::OK, &user).await
}

/// Ends the session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "accounts",
    responses((status = 204, description = "Signed out"), SignedIn)
)]
async fn logout(State(state): State<AppState>, who: CurrentUser) -> Result<Response, ApiError> {
    let session = who.auth.require_session()?;
    who.require_write("write")?;
    state.db().sessions().delete(session.id).await?;
    Ok(with_cookie(
        StatusCode::NO_CONTENT,
        (),
        session_cookie_cleared(&state),
    ))
}

/// A one-use token from an emailed link.
#[derive(Deserialize, ToSchema)]
pub struct TokenBody {
    token: String,
}

/// Verifies the address a link was sent to.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify",
    tag = "accounts",
    request_body = TokenBody,
    responses((status = 200, description = "Address verified", body = UserAnswer), Link)
)]
async fn verify_email(
    State(state): State<AppState>,
    Json(body): Json<TokenBody>,
) -> Result<Json<UserAnswer>, ApiError> {
    let user = accounts::verify_email(&state, &body.token).await?;
    Ok(Json(UserAnswer {
        user: UserView::from(&user),
    }))
}

/// An email address.
#[derive(Deserialize, ToSchema)]
pub struct EmailBody {
    email: String,
}

/// Emails a password-reset link, if the address has an account (the answer never says).
#[utoipa::path(
    post,
    path = "/api/v1/auth/password/forgot",
    tag = "accounts",
    request_body = EmailBody,
    responses(
        (status = 202, description = "A reset link is emailed if the address has an account"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json")
    )
)]
async fn forgot_password(
    State(state): State<AppState>,
    ctx: Ctx,
    ClientIp(client): ClientIp,
    Json(body): Json<EmailBody>,
) -> Result<StatusCode, ApiError> {
    // Each request may send an email: limited per client like caption requests.
    state.rate_limit(client)?;
    accounts::send_reset(&state, &body.email, ctx.lang()).await?;
    Ok(StatusCode::ACCEPTED)
}

/// A reset link's token and the new password.
#[derive(Deserialize, ToSchema)]
pub struct ResetBody {
    token: String,
    password: String,
}

/// Sets a new password from a reset link; every session ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password/reset",
    tag = "accounts",
    request_body = ResetBody,
    responses((status = 204, description = "Password changed; every session ended"), Link, CredentialProblems)
)]
async fn reset_password(
    State(state): State<AppState>,
    Json(body): Json<ResetBody>,
) -> Result<StatusCode, ApiError> {
    accounts::reset_password(&state, &body.token, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything held about the user (schema: `/api/v1/export-schema.json`) and the policy
/// version awaiting acknowledgement.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    responses((status = 200, body = Me), SignedIn)
)]
async fn get_me(State(state): State<AppState>, who: CurrentUser) -> Result<Json<Me>, ApiError> {
    who.auth.require_scope("read")?;
    let document = privacy::access_document(&state, who.user()).await?;
    let policy_notice = policy::pending_for(&state, who.user().id).await?;
    Ok(Json(Me {
        document,
        policy_notice,
    }))
}

/// The current and the new password.
#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
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
        SignedIn,
        (status = 422, description = "The new password is too weak", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords", body = Problem, content_type = "application/problem+json")
    )
)]
async fn change_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    who: CurrentUser,
    Json(body): Json<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let session = who.auth.require_session()?.id;
    who.require_write("write")?;
    let (current, new) = (&body.current_password, &body.new_password);
    accounts::change_password(&state, who.user(), session, client, current, new).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A correction of the profile.
#[derive(Deserialize, ToSchema)]
pub struct MePatch {
    email: Option<String>,
}

/// Correction of the profile: a new email address, unverified until its link is opened.
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    tag = "accounts",
    request_body = MePatch,
    responses((status = 200, description = "The account as it is now", body = UserAnswer), SignedIn)
)]
async fn update_me(
    State(state): State<AppState>,
    ctx: Ctx,
    who: CurrentUser,
    Json(body): Json<MePatch>,
) -> Result<Json<UserAnswer>, ApiError> {
    who.auth.require_session()?;
    who.require_write("write")?;
    let user = match body.email {
        Some(email) => accounts::change_email(&state, who.user(), &email, ctx.lang()).await?,
        None => who.auth.user.clone(),
    };
    Ok(Json(UserAnswer {
        user: UserView::from(&user),
    }))
}

/// The password, given again.
#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    password: String,
}

/// Erasure, after re-entering the password.
#[utoipa::path(
    delete,
    path = "/api/v1/me",
    tag = "accounts",
    request_body = PasswordBody,
    responses((status = 204, description = "Account erased: every row and object"), SignedIn)
)]
async fn delete_me(
    State(state): State<AppState>,
    who: CurrentUser,
    Json(body): Json<PasswordBody>,
) -> Result<Response, ApiError> {
    who.auth.require_session()?;
    who.require_write("write")?;
    accounts::erase_with_password(&state, who.user(), &body.password).await?;
    Ok(with_cookie(
        StatusCode::NO_CONTENT,
        (),
        session_cookie_cleared(&state),
    ))
}

/// The user's preferences.
#[utoipa::path(
    get,
    path = "/api/v1/me/preferences",
    tag = "accounts",
    responses((status = 200, body = PreferencesView), SignedIn)
)]
async fn get_preferences(
    State(state): State<AppState>,
    who: CurrentUser,
) -> Result<Json<PreferencesView>, ApiError> {
    who.auth.require_scope("read")?;
    Ok(Json(privacy::preferences(&state, who.user()).await?))
}

/// Changes preferences; turning history off with entries needs `delete_history` (409).
#[utoipa::path(
    patch,
    path = "/api/v1/me/preferences",
    tag = "accounts",
    request_body = PreferencesPatch,
    responses(
        (status = 200, description = "Preferences after the change", body = PreferencesView),
        (status = 400, description = "An option out of range", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Turning history off with entries needs `delete_history`", body = Problem, content_type = "application/problem+json"),
        SignedIn
    )
)]
async fn update_preferences(
    State(state): State<AppState>,
    who: CurrentUser,
    Json(body): Json<PreferencesPatch>,
) -> Result<Json<PreferencesView>, ApiError> {
    who.require_write("write")?;
    privacy::update_preferences(&state, who.user(), body).await?;
    Ok(Json(privacy::preferences(&state, who.user()).await?))
}

/// Which history entries.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Captions containing this text.
    search: Option<String>,
    /// Entries older than this id.
    before: Option<i64>,
    /// Most entries (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The user's history, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/me/history",
    tag = "accounts",
    params(HistoryParams),
    responses((status = 200, body = HistoryPage), SignedIn)
)]
async fn list_history(
    State(state): State<AppState>,
    who: CurrentUser,
    Query(q): Query<HistoryParams>,
) -> Result<Json<HistoryPage>, ApiError> {
    who.auth.require_scope("read")?;
    let limit = q.limit.unwrap_or(50).min(500);
    let before = q.before.map(HistoryId);
    let history =
        privacy::history_page(&state, who.user(), q.search.as_deref(), before, limit).await?;
    Ok(Json(HistoryPage { history }))
}

/// A correction of a history caption (empty or absent: none).
#[derive(Deserialize, ToSchema)]
pub struct Correction {
    corrected_caption: Option<String>,
}

/// Sets or clears the correction of a history caption, kept beside the original.
#[utoipa::path(
    patch,
    path = "/api/v1/me/history/{id}",
    tag = "accounts",
    request_body = Correction,
    responses((status = 204, description = "Correction kept beside the original"), SignedIn)
)]
async fn correct_history(
    State(state): State<AppState>,
    who: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Correction>,
) -> Result<StatusCode, ApiError> {
    who.require_write("write")?;
    let text = body.corrected_caption.as_deref();
    privacy::correct(&state, who.user(), HistoryId(id), text).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one history entry.
#[utoipa::path(
    delete,
    path = "/api/v1/me/history/{id}",
    tag = "accounts",
    responses((status = 204, description = "Entry deleted"), SignedIn)
)]
async fn delete_history_entry(
    State(state): State<AppState>,
    who: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    who.require_write("write")?;
    privacy::delete_history_entry(&state, who.user(), HistoryId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the whole history.
#[utoipa::path(
    delete,
    path = "/api/v1/me/history",
    tag = "accounts",
    responses((status = 200, body = Deleted), SignedIn)
)]
async fn delete_history(
    State(state): State<AppState>,
    who: CurrentUser,
) -> Result<Json<Deleted>, ApiError> {
    who.require_write("write")?;
    let deleted = privacy::delete_all_history(&state, who.user()).await?;
    Ok(Json(Deleted { deleted }))
}

/// The user's captions per day, language and style.
#[utoipa::path(
    get,
    path = "/api/v1/me/usage",
    tag = "accounts",
    responses((status = 200, body = UsageList), SignedIn)
)]
async fn get_usage(
    State(state): State<AppState>,
    who: CurrentUser,
) -> Result<Json<UsageList>, ApiError> {
    who.auth.require_scope("read")?;
    let usage = privacy::usage(&state, who.user()).await?;
    Ok(Json(UsageList { usage }))
}

/// Training consent given or withdrawn.
#[derive(Deserialize, ToSchema)]
pub struct ConsentBody {
    granted: bool,
}

/// Grants or withdraws training consent (withdrawal deletes the training items at once).
#[utoipa::path(
    post,
    path = "/api/v1/me/consents/training",
    tag = "accounts",
    request_body = ConsentBody,
    responses((status = 204, description = "Recorded"), SignedIn)
)]
async fn set_training_consent(
    State(state): State<AppState>,
    who: CurrentUser,
    Json(body): Json<ConsentBody>,
) -> Result<StatusCode, ApiError> {
    who.require_write("write")?;
    privacy::set_training_consent(&state, who.user(), body.granted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's live exports.
#[utoipa::path(
    get,
    path = "/api/v1/me/exports",
    tag = "accounts",
    responses((status = 200, body = ExportList), SignedIn)
)]
async fn list_exports(
    State(state): State<AppState>,
    who: CurrentUser,
) -> Result<Json<ExportList>, ApiError> {
    who.auth.require_scope("read")?;
    let exports = privacy::export_list(&state, who.user()).await?;
    Ok(Json(ExportList { exports }))
}

/// Makes an export of everything held about the user.
#[utoipa::path(
    post,
    path = "/api/v1/me/exports",
    tag = "accounts",
    responses(
        (status = 201, description = "Export made (`status` ready); `url` downloads the ZIP for 7 days", body = CreatedExport),
        (status = 202, description = "Export being made (`status` pending); `url` answers 409 until it is ready", body = CreatedExport),
        SignedIn
    )
)]
async fn create_export(
    State(state): State<AppState>,
    who: CurrentUser,
) -> Result<Response, ApiError> {
    who.require_write("read")?;
    let (export, token) = exports::create(&state, who.user()).await?;
    let status = if export.status == READY {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let body = CreatedExport {
        export: ExportView::from(&export),
        url: format!("{}/exports/{token}", state.config().public_url()),
    };
    Ok((status, Json(body)).into_response())
}

/// Revokes an export: its link stops working and the ZIP is deleted.
#[utoipa::path(
    delete,
    path = "/api/v1/me/exports/{id}",
    tag = "accounts",
    responses((status = 204, description = "Link revoked and ZIP deleted"), SignedIn, Missing)
)]
async fn revoke_export(
    State(state): State<AppState>,
    who: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    who.require_write("write")?;
    exports::revoke(&state, who.user(), ExportId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The export ZIP of a live link, streamed as it is decrypted.
#[utoipa::path(
    get,
    path = "/exports/{token}",
    tag = "accounts",
    responses(
        (status = 200, description = "The export ZIP", body = Binary, content_type = "application/zip"),
        (status = 409, description = "Still being made (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
        Link
    )
)]
async fn download_export(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let (size, zip) = exports::by_token(&state, &token).await?;
    // A chunk that fails authentication midway cuts the download short (the length promised
    // is not reached), and is logged.
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

/// The user's API keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/api/v1/me/api-keys",
    tag = "accounts",
    responses((status = 200, body = ApiKeyList), SignedIn)
)]
async fn list_api_keys(
    State(state): State<AppState>,
    who: CurrentUser,
) -> Result<Json<ApiKeyList>, ApiError> {
    who.auth.require_session()?;
    let api_keys = privacy::api_keys(&state, who.user()).await?;
    Ok(Json(ApiKeyList { api_keys }))
}

/// A new API key's name and scopes.
#[derive(Deserialize, ToSchema)]
pub struct NewKey {
    name: String,
    #[schema(value_type = Vec<crate::views::Scope>)]
    scopes: Vec<String>,
}

/// Makes an API key; the key is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/me/api-keys",
    tag = "accounts",
    request_body = NewKey,
    responses(
        (status = 201, body = CreatedKey),
        (status = 400, description = "Unknown or no scope", body = Problem, content_type = "application/problem+json"),
        SignedIn
    )
)]
async fn create_api_key(
    State(state): State<AppState>,
    who: CurrentUser,
    Json(body): Json<NewKey>,
) -> Result<Response, ApiError> {
    who.auth.require_session()?;
    who.require_write("write")?;
    let key = accounts::make_key(&state, who.user(), &body.name, &body.scopes).await?;
    Ok((StatusCode::CREATED, Json(key)).into_response())
}

/// Revokes an API key.
#[utoipa::path(
    delete,
    path = "/api/v1/me/api-keys/{id}",
    tag = "accounts",
    responses((status = 204, description = "Key revoked"), SignedIn)
)]
async fn revoke_api_key(
    State(state): State<AppState>,
    who: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    who.auth.require_session()?;
    who.require_write("write")?;
    let id = takarir_store::api_keys::ApiKeyId(id);
    accounts::revoke_key(&state, who.user(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The policy version acknowledged (absent: the current one).
#[derive(Deserialize, ToSchema)]
pub struct AckBody {
    version: Option<String>,
}

/// Acknowledges a privacy-policy version.
#[utoipa::path(
    post,
    path = "/api/v1/me/policy/ack",
    tag = "accounts",
    request_body = AckBody,
    responses((status = 204, description = "Acknowledgement recorded"), SignedIn)
)]
async fn acknowledge_policy(
    State(state): State<AppState>,
    who: CurrentUser,
    Json(body): Json<AckBody>,
) -> Result<StatusCode, ApiError> {
    who.require_write("write")?;
    policy::acknowledge(&state, who.user(), body.version.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The export's JSON Schema (derived from the access document's type).
pub const EXPORT_SCHEMA: &str = include_str!("../../schemas/export-v1.schema.json");

/// The JSON Schema of the export's `data.json`.
#[utoipa::path(
    get,
    path = "/api/v1/export-schema.json",
    tag = "accounts",
    responses((status = 200, description = "JSON Schema 2020-12", body = Object, content_type = "application/schema+json"))
)]
async fn get_export_schema() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/schema+json"),
        )],
        EXPORT_SCHEMA,
    )
        .into_response()
}

/// Aggregates for operators: nothing that identifies a person.
#[utoipa::path(
    get,
    path = "/api/v1/admin/stats",
    tag = "admin",
    responses((status = 200, body = AdminStats), SignedIn)
)]
async fn admin_stats(
    State(state): State<AppState>,
    who: CurrentUser,
) -> Result<Json<AdminStats>, ApiError> {
    Ok(Json(admin::stats(&state, &who.auth).await?))
}

/// Account status without personal data: id, role, verified, created.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    responses((status = 200, body = AdminUsers), SignedIn)
)]
async fn admin_users(
    State(state): State<AppState>,
    who: CurrentUser,
) -> Result<Json<AdminUsers>, ApiError> {
    let users = admin::users(&state, &who.auth).await?;
    Ok(Json(AdminUsers { users }))
}

/// Why a staff member opens a user's data.
#[derive(Deserialize, ToSchema)]
pub struct ReasonBody {
    reason: Option<String>,
}

/// One user's data, for a stated reason, recorded in the audit log the user sees.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/access",
    tag = "admin",
    request_body = ReasonBody,
    responses(
        (status = 200, description = "The user's data; the access is in their audit log", body = AccessDocument),
        (status = 400, description = "No reason given", body = Problem, content_type = "application/problem+json"),
        SignedIn,
        Missing
    )
)]
async fn admin_access(
    State(state): State<AppState>,
    who: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<ReasonBody>,
) -> Result<Json<AccessDocument>, ApiError> {
    who.auth.require_admin()?;
    who.require_write("admin")?;
    let reason = body.reason.unwrap_or_default();
    Ok(Json(
        admin::access(&state, who.user(), UserId(id), &reason).await?,
    ))
}

/// The account routes' OpenAPI description (merged into `/api/v1/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(
        register, login, logout, verify_email, forgot_password, reset_password, get_me,
        update_me, delete_me, change_password, get_preferences, update_preferences,
        list_history, correct_history, delete_history_entry, delete_history, get_usage,
        set_training_consent, list_exports, create_export, revoke_export, download_export,
        list_api_keys, create_api_key, revoke_api_key, acknowledge_policy, get_export_schema,
        admin_stats, admin_users, admin_access
    ),
    tags(
        (name = "accounts", description = "Optional accounts and the data rights: cookie sessions (changes need X-CSRF-Token) or Bearer API keys (scopes captions, read, write, admin)"),
        (name = "admin", description = "Staff: aggregates, account status, audited access to one user's data")
    )
)]
pub struct AccountsDoc;
