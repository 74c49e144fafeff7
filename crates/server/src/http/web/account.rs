//! The account pages (`/account...`): sign-up, sign-in, email verification, password reset,
//! and, signed in, the access page, which shows everything held about the user (profile,
//! preferences, history, consents, usage, training items, keys, sessions, exports, batch jobs,
//! and staff access to their data) with a form for each right; and the admin page.
//! Server-rendered, Indonesian first, no JavaScript needed.
//!
//! Every form carries a CSRF token: the session's when signed in ([`Post`] checks it), else
//! the double-submit `takarir_csrf` cookie's (set by the page that shows the form). After a
//! change the page redirects (303) back to `/account`, with a `msg` naming what happened.

use std::collections::HashMap;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use takarir_store::api_keys::ApiKeyId;
use takarir_store::exports::ExportId;
use takarir_store::history::HistoryId;
use takarir_store::users::UserId;

use crate::error::ApiError;
use crate::http::extract::{
    cookie_defaults, cookie_header, credentials, session_cookie, session_cookie_cleared, ClientIp,
    Ctx, CSRF_COOKIE, PREFS_COOKIE, SESSION_COOKIE,
};
use crate::http::web::{account_strings, render, see_other, with_cookie, with_error};
use crate::i18n::{cookie, Lang};
use crate::options::OptionDefaults;
use crate::service::accounts::auth::{self, constant_time_eq, random_token, Auth};
use crate::service::accounts::{self as accounts};
use crate::service::privacy::{self, admin, exports, policy, PreferencesPatch};
use crate::state::AppState;

/// The account page routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(page))
        .route("/account/signup", get(signup_page).post(signup))
        .route("/account/login", get(login_page).post(login))
        .route("/account/logout", post(logout))
        .route("/account/verify", get(verify))
        .route("/account/forgot", get(forgot_page).post(forgot))
        .route("/account/reset", get(reset_page).post(reset))
        .route("/account/preferences", post(preferences))
        .route("/account/history/delete-all", post(history_delete_all))
        .route("/account/history/{id}/edit", post(history_edit))
        .route("/account/history/{id}/delete", post(history_delete))
        .route("/account/consent", post(consent))
        .route("/account/export", post(export))
        .route("/account/exports/{id}/revoke", post(export_revoke))
        .route("/account/keys", post(key_create))
        .route("/account/keys/{id}/revoke", post(key_revoke))
        .route("/account/email", post(email))
        .route("/account/password", post(password))
        .route("/account/delete", post(delete))
        .route("/account/policy/ack", post(policy_ack))
        .route("/admin", get(admin_page))
        .route("/admin/users/{id}/access", post(admin_access))
}

type Fields = HashMap<String, String>;

/// A form page in the account layout.
fn form_page(state: &AppState, lang: Lang, mode: &str, extra: minijinja::Value) -> Response {
    let a = account_strings(lang);
    render(
        state,
        "account_form.html",
        lang,
        "/account",
        context! { a => a, mode => mode, ..extra },
    )
}

/// A message page (`msg`: a key of the account strings).
fn message_page(state: &AppState, lang: Lang, msg: &str) -> Response {
    let text = account_strings(lang).get(msg).copied().unwrap_or_default();
    form_page(state, lang, "message", context! { msg => text })
}

/// An error page in the account layout, with the error's status.
fn error_page(state: &AppState, lang: Lang, e: ApiError) -> Response {
    let (title, detail) = e.messages(lang);
    let page = form_page(
        state,
        lang,
        "error",
        context! { error_title => title, error_detail => detail, error_code => e.code() },
    );
    with_error(page, &e)
}

/// A form posted before signing in: its fields, checked against the double-submit cookie.
struct SignedOutPost {
    state: AppState,
    headers: HeaderMap,
    lang: Lang,
    f: Fields,
}

impl SignedOutPost {
    fn field(&self, name: &str) -> &str {
        self.f.get(name).map(String::as_str).unwrap_or("")
    }

    fn check_csrf(&self) -> Result<(), ApiError> {
        match (cookie(&self.headers, CSRF_COOKIE), self.f.get("csrf")) {
            (Some(c), Some(sent)) if c.len() >= 32 && constant_time_eq(&c, sent) => Ok(()),
            _ => Err(ApiError::CsrfFailed),
        }
    }

    /// The answer of a sign-up or sign-in: a new session and the account page.
    async fn sign_in(&self, user: Result<takarir_store::users::User, ApiError>) -> Response {
        let r = async {
            let user = user?;
            let old = cookie(&self.headers, SESSION_COOKIE);
            auth::start_session(&self.state, old.as_deref(), &user).await
        }
        .await;
        match r {
            Ok((token, _)) => {
                with_cookie(see_other("/account"), session_cookie(&self.state, &token))
            }
            Err(e) => error_page(&self.state, self.lang, e),
        }
    }
}

impl FromRequest<AppState> for SignedOutPost {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let ctx = Ctx::of(&req);
        let headers = req.headers().clone();
        let Form(f) = Form::<Fields>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(SignedOutPost {
            state: state.clone(),
            headers,
            lang: ctx.lang(),
            f,
        })
    }
}

/// A signed-in form post: the session's user (the form's `csrf` field matched the
/// session's token; otherwise the post answers with the error page), and the fields.
struct Post {
    state: AppState,
    auth: Auth,
    lang: Lang,
    f: Fields,
}

impl Post {
    fn field(&self, name: &str) -> &str {
        self.f.get(name).map(String::as_str).unwrap_or("")
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.field(name), "on" | "true" | "1" | "yes")
    }

    fn user(&self) -> &takarir_store::users::User {
        &self.auth.user
    }

    /// Back to the account page at `to` when `r` went well, else the error page.
    fn then<T>(&self, r: Result<T, ApiError>, to: &str) -> Response {
        match r {
            Ok(_) => see_other(to),
            Err(e) => error_page(&self.state, self.lang, e),
        }
    }
}

impl FromRequest<AppState> for Post {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let p = SignedOutPost::from_request(req, state).await?;
        let lang = p.lang;
        Post::from_signed_out(p)
            .await
            .map_err(|e| error_page(state, lang, e))
    }
}

/// A signed-out form page with its double-submit token (the cookie's, or a new one to set).
fn signed_out_form(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    mode: &str,
    extra: minijinja::Value,
) -> Response {
    let (csrf, set): (String, Option<HeaderValue>) =
        match cookie(headers, CSRF_COOKIE).filter(|v| v.len() >= 32) {
            Some(v) => (v, None),
            None => {
                let t = random_token();
                let c = cookie_header(state, CSRF_COOKIE, &t, 86_400, "Strict");
                (t, Some(c))
            }
        };
    let res = form_page(state, lang, mode, context! { form_csrf => csrf, ..extra });
    match set {
        Some(c) => with_cookie(res, c),
        None => res,
    }
}

async fn signup_page(State(state): State<AppState>, headers: HeaderMap, ctx: Ctx) -> Response {
    // Closed sign-up: the page says so instead of offering a form that cannot succeed.
    if let Err(e) = accounts::check_signups_open(&state) {
        return error_page(&state, ctx.lang(), e);
    }
    signed_out_form(&state, &headers, ctx.lang(), "signup", context! {})
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Query(q): Query<Fields>,
) -> Response {
    let lang = ctx.lang();
    let msg = q
        .get("msg")
        .and_then(|m| account_strings(lang).get(m.as_str()).copied());
    signed_out_form(&state, &headers, lang, "login", context! { msg => msg })
}

async fn forgot_page(State(state): State<AppState>, headers: HeaderMap, ctx: Ctx) -> Response {
    signed_out_form(&state, &headers, ctx.lang(), "forgot", context! {})
}

async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Query(q): Query<Fields>,
) -> Response {
    let token = q.get("token").cloned().unwrap_or_default();
    let extra = context! { token => token };
    signed_out_form(&state, &headers, ctx.lang(), "reset", extra)
}

async fn signup(ClientIp(client): ClientIp, p: SignedOutPost) -> Response {
    let user = async {
        accounts::check_signups_open(&p.state)?;
        p.check_csrf()?;
        // It sends an email: limited per client like caption requests.
        p.state.rate_limit(client)?;
        let (email, password) = (p.field("email"), p.field("password"));
        accounts::create_account(&p.state, email, password, p.lang).await
    }
    .await;
    p.sign_in(user).await
}

async fn login(ClientIp(client): ClientIp, p: SignedOutPost) -> Response {
    let user = async {
        p.check_csrf()?;
        let (email, password) = (p.field("email"), p.field("password"));
        accounts::check_login(&p.state, email, password, client).await
    }
    .await;
    p.sign_in(user).await
}

async fn logout(p: Post) -> Response {
    let r = async {
        let session = p.auth.require_session()?;
        Ok::<_, ApiError>(p.state.db().sessions().delete(session.id).await?)
    }
    .await;
    match r {
        Ok(_) => with_cookie(see_other("/"), session_cookie_cleared(&p.state)),
        Err(e) => error_page(&p.state, p.lang, e),
    }
}

async fn verify(State(state): State<AppState>, ctx: Ctx, Query(q): Query<Fields>) -> Response {
    let token = q.get("token").cloned().unwrap_or_default();
    match accounts::verify_email(&state, &token).await {
        Ok(_) => message_page(&state, ctx.lang(), "verified_ok"),
        Err(e) => error_page(&state, ctx.lang(), e),
    }
}

async fn forgot(ClientIp(client): ClientIp, p: SignedOutPost) -> Response {
    let r = async {
        p.check_csrf()?;
        // It sends an email: limited per client like caption requests.
        p.state.rate_limit(client)?;
        accounts::send_reset(&p.state, p.field("email"), p.lang).await
    }
    .await;
    match r {
        Ok(()) => message_page(&p.state, p.lang, "reset_sent"),
        Err(e) => error_page(&p.state, p.lang, e),
    }
}

async fn reset(p: SignedOutPost) -> Response {
    let r = async {
        p.check_csrf()?;
        accounts::reset_password(&p.state, p.field("token"), p.field("password")).await
    }
    .await;
    match r {
        Ok(_) => see_other("/account/login?msg=reset_ok"),
        Err(e) => error_page(&p.state, p.lang, e),
    }
}

/// `GET /account`: the access page, or sign-in for signed-out visitors.
async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Query(q): Query<Fields>,
) -> Response {
    let lang = ctx.lang();
    let a = match auth::authenticate(&state, &credentials(&headers)).await {
        Ok(Some(a)) if a.csrf().is_some() => a,
        Ok(_) => {
            let anon_prefs = minijinja::Value::from_serialize(cookie_defaults(&headers));
            let extra = context! { anon_prefs => anon_prefs };
            return signed_out_form(&state, &headers, lang, "login", extra);
        }
        Err(e) => return error_page(&state, lang, e),
    };
    account_page(&state, &a, lang, &q, None, None).await
}

/// A just-made export's link (a secret shown once) and its status.
#[derive(serde::Serialize)]
struct NewExport {
    token: String,
    status: String,
}

/// The access page of a signed-in user. `new_key` / `new_export`: a secret to show once, in
/// this answer only (never in a URL, where browser history would keep it).
async fn account_page(
    state: &AppState,
    a: &Auth,
    lang: Lang,
    q: &Fields,
    new_key: Option<String>,
    new_export: Option<NewExport>,
) -> Response {
    let search = q.get("q").cloned().unwrap_or_default();
    let r = async {
        let doc = privacy::account_overview(state, &a.user).await?;
        let history = privacy::history_page(state, &a.user, Some(&search), None, 200).await?;
        let notice = policy::pending_for(state, a.user.id).await?;
        Ok::<_, ApiError>((doc, history, notice))
    }
    .await;
    match r {
        Ok((doc, history, notice)) => {
            let strings = account_strings(lang);
            let msg = q.get("msg").and_then(|m| strings.get(m.as_str()).copied());
            render(
                state,
                "account.html",
                lang,
                "/account",
                context! {
                    a => strings, doc => doc, history => history, search => search,
                    csrf => a.csrf(), msg => msg, policy_notice => notice,
                    new_key => new_key, new_export => new_export,
                },
            )
        }
        Err(e) => error_page(state, lang, e),
    }
}

async fn preferences(p: SignedOutPost) -> Response {
    if !matches!(
        auth::authenticate(&p.state, &credentials(&p.headers)).await,
        Ok(Some(_))
    ) {
        // Signed out: only the caption defaults, kept in a cookie.
        if let Err(e) = p.check_csrf() {
            return error_page(&p.state, p.lang, e);
        }
        let d = OptionDefaults::from_lenient(
            p.f.get("lang").map(String::as_str),
            p.f.get("style").map(String::as_str),
            p.f.get("alternatives").map(String::as_str),
        );
        let c = cookie_header(&p.state, PREFS_COOKIE, &d.cookie_value(), 31_536_000, "Lax");
        return with_cookie(see_other("/"), c);
    }
    let (state, lang) = (p.state.clone(), p.lang);
    let req_again = Post::from_signed_out(p).await;
    let p = match req_again {
        Ok(p) => p,
        Err(e) => return error_page(&state, lang, e),
    };
    let patch = PreferencesPatch {
        lang: Some(p.field("lang").to_string()),
        style: Some(p.field("style").to_string()),
        alternatives: Some(p.field("alternatives").parse().unwrap_or(0)),
        history_enabled: Some(p.flag("history_enabled")),
        delete_history: p.f.get("history_existing").map(|v| v == "delete"),
        training_consent: Some(p.flag("training_consent")),
    };
    let r = privacy::update_preferences(&p.state, p.user(), patch).await;
    p.then(r, "/account?msg=saved")
}

impl Post {
    /// The signed-in post of fields already read.
    async fn from_signed_out(p: SignedOutPost) -> Result<Post, ApiError> {
        let a = auth::authenticate(&p.state, &credentials(&p.headers))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let s = a.require_session()?;
        match p.f.get("csrf") {
            Some(sent) if constant_time_eq(sent, &s.csrf_token) => Ok(Post {
                state: p.state,
                auth: a,
                lang: p.lang,
                f: p.f,
            }),
            _ => Err(ApiError::CsrfFailed),
        }
    }
}

async fn history_edit(Path(id): Path<i64>, p: Post) -> Response {
    let text = p.f.get("corrected_caption").map(String::as_str);
    let r = privacy::correct(&p.state, p.user(), HistoryId(id), text).await;
    p.then(r, "/account?msg=saved#history")
}

async fn history_delete(Path(id): Path<i64>, p: Post) -> Response {
    let r = privacy::delete_history_entry(&p.state, p.user(), HistoryId(id)).await;
    p.then(r, "/account?msg=saved#history")
}

async fn history_delete_all(p: Post) -> Response {
    let r = privacy::delete_all_history(&p.state, p.user()).await;
    p.then(r, "/account?msg=saved#history")
}

async fn consent(p: Post) -> Response {
    let r = privacy::set_training_consent(&p.state, p.user(), p.flag("granted")).await;
    p.then(r, "/account?msg=saved#consents")
}

async fn export(p: Post) -> Response {
    match exports::create(&p.state, p.user()).await {
        Ok((export, token)) => {
            let new = NewExport {
                token,
                status: export.status,
            };
            let q = Fields::new();
            account_page(&p.state, &p.auth, p.lang, &q, None, Some(new)).await
        }
        Err(e) => error_page(&p.state, p.lang, e),
    }
}

async fn export_revoke(Path(id): Path<i64>, p: Post) -> Response {
    let r = exports::revoke(&p.state, p.user(), ExportId(id)).await;
    p.then(r, "/account?msg=saved#exports")
}

async fn key_create(p: Post) -> Response {
    let scopes: Vec<String> = ["captions", "read", "write"]
        .iter()
        .filter(|s| p.flag(&format!("scope_{s}")))
        .map(|s| s.to_string())
        .collect();
    match accounts::make_key(&p.state, p.user(), p.field("name"), &scopes).await {
        Ok(k) => account_page(&p.state, &p.auth, p.lang, &Fields::new(), Some(k.key), None).await,
        Err(e) => error_page(&p.state, p.lang, e),
    }
}

async fn key_revoke(Path(id): Path<i64>, p: Post) -> Response {
    let r = accounts::revoke_key(&p.state, p.user(), ApiKeyId(id)).await;
    p.then(r, "/account?msg=saved#keys")
}

async fn email(p: Post) -> Response {
    let r = accounts::change_email(&p.state, p.user(), p.field("email"), p.lang).await;
    p.then(r, "/account?msg=saved")
}

async fn password(ClientIp(client): ClientIp, p: Post) -> Response {
    let r = async {
        let keep = p.auth.require_session()?.id;
        let (current, new) = (p.field("current_password"), p.field("new_password"));
        accounts::change_password(&p.state, p.user(), keep, client, current, new).await
    }
    .await;
    p.then(r, "/account?msg=password_changed")
}

async fn delete(p: Post) -> Response {
    match accounts::erase_with_password(&p.state, p.user(), p.field("password")).await {
        Ok(()) => with_cookie(
            message_page(&p.state, p.lang, "deleted"),
            session_cookie_cleared(&p.state),
        ),
        Err(e) => error_page(&p.state, p.lang, e),
    }
}

async fn policy_ack(p: Post) -> Response {
    let version = p.f.get("version").map(String::as_str);
    let r = policy::acknowledge(&p.state, p.user(), version).await;
    p.then(r, "/account?msg=saved")
}

/// The admin page: aggregates, account status, and (after a reasoned request) one user's data.
async fn admin_view(
    state: &AppState,
    a: &Auth,
    lang: Lang,
    subject: Option<(i64, &str)>,
) -> Result<Response, ApiError> {
    a.require_session()?;
    a.require_admin()?;
    let stats = admin::stats(state, a).await?;
    let users = admin::users(state, a).await?;
    let subject_doc = match subject {
        Some((id, reason)) => Some(admin::access(state, &a.user, UserId(id), reason).await?),
        None => None,
    };
    let subject_json = subject_doc
        .as_ref()
        .and_then(|d| serde_json::to_string_pretty(d).ok());
    Ok(render(
        state,
        "admin.html",
        lang,
        "/admin",
        context! {
            a => account_strings(lang), stats => stats, users => users, csrf => a.csrf(),
            subject => subject_doc, subject_json => subject_json,
        },
    ))
}

async fn admin_page(State(state): State<AppState>, headers: HeaderMap, ctx: Ctx) -> Response {
    let lang = ctx.lang();
    let r = async {
        let a = auth::authenticate(&state, &credentials(&headers))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        admin_view(&state, &a, lang, None).await
    }
    .await;
    r.unwrap_or_else(|e| error_page(&state, lang, e))
}

async fn admin_access(Path(id): Path<i64>, p: Post) -> Response {
    let reason = p.field("reason");
    admin_view(&p.state, &p.auth, p.lang, Some((id, reason)))
        .await
        .unwrap_or_else(|e| error_page(&p.state, p.lang, e))
}
