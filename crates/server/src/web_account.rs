//! The account pages (`/account...`): sign-up, sign-in, email verification, password reset,
//! and, signed in, the access page, which shows everything held about the user (profile,
//! preferences, history, consents, usage, training items, keys, sessions, exports, batch jobs,
//! and staff access to their data) with a form for each right. Server-rendered, Indonesian
//! first, no JavaScript needed.
//!
//! Every form carries a CSRF token: the session's when signed in, else the double-submit
//! `takarir_csrf` cookie's (set by the page that shows the form). After a change the page
//! redirects (303) back to `/account`, with a `msg` naming what happened.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use takarir_store::api_keys::ApiKeyId;
use takarir_store::exports::ExportId;
use takarir_store::history::{HistoryId, HistoryQuery};

use crate::accounts;
use crate::auth::{self, Auth, CSRF_COOKIE};
use crate::error::ApiError;
use crate::i18n::{cookie, Lang};
use crate::middleware::RequestCtx;
use crate::rights::{self, PreferencesPatch};
use crate::web::render;
use crate::AppState;

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

/// Account interface strings: (key, Indonesian, English).
const STRINGS: &[(&str, &str, &str)] = &[
    ("account", "Akun", "Account"),
    ("signup", "Daftar", "Sign up"),
    ("login", "Masuk", "Sign in"),
    ("logout", "Keluar", "Sign out"),
    ("email", "Email", "Email"),
    ("password", "Kata sandi", "Password"),
    ("password_hint", "Paling sedikit 10 karakter, tidak memuat alamat email Anda.", "At least 10 characters, not containing your email address."),
    ("new_password", "Kata sandi baru", "New password"),
    ("forgot", "Lupa kata sandi?", "Forgot your password?"),
    ("send_reset", "Kirim tautan atur ulang", "Send reset link"),
    ("reset", "Atur ulang kata sandi", "Reset password"),
    ("optional", "Akun bersifat opsional: semua fitur takarir tetap bisa dipakai tanpa akun.", "Accounts are optional: every caption feature works without one."),
    ("no_account", "Belum punya akun?", "No account yet?"),
    ("have_account", "Sudah punya akun?", "Already have an account?"),
    ("verified", "terverifikasi", "verified"),
    ("unverified", "belum diverifikasi: periksa email Anda", "not verified yet: check your email"),
    ("profile", "Profil", "Profile"),
    ("change_email", "Ubah email", "Change email"),
    ("change_password", "Ganti kata sandi", "Change password"),
    ("current_password", "Kata sandi saat ini", "Current password"),
    ("password_changed", "Kata sandi diganti. Sesi Anda di perangkat lain telah diakhiri.", "Password changed. Your sessions on other devices have been signed out."),
    ("preferences", "Preferensi", "Preferences"),
    ("default", "Bawaan", "Default"),
    ("history_on", "Simpan riwayat takarir (teks dan pengaturan saja, tidak pernah gambarnya)", "Keep caption history (text and settings only, never the image)"),
    ("history_off_q", "Jika riwayat dimatikan, apa yang terjadi dengan entri yang ada?", "If history is turned off, what happens to the existing entries?"),
    ("history_keep", "Simpan", "Keep them"),
    ("history_delete", "Hapus", "Delete them"),
    ("training_on", "Izinkan gambar dan takarir saya dipakai untuk melatih model", "Allow my images and captions to be used to train the model"),
    ("save", "Simpan", "Save"),
    ("history", "Riwayat", "History"),
    ("search", "Cari", "Search"),
    ("original", "Asli", "Original"),
    ("correction", "Koreksi", "Correction"),
    ("delete", "Hapus", "Delete"),
    ("delete_all", "Hapus semua riwayat", "Delete all history"),
    ("history_empty", "Tidak ada entri.", "No entries."),
    ("consents", "Catatan persetujuan", "Consent record"),
    ("granted", "diberikan", "granted"),
    ("withdrawn", "ditarik", "withdrawn"),
    ("withdraw", "Tarik persetujuan pelatihan", "Withdraw training consent"),
    ("usage", "Penggunaan", "Usage"),
    ("training_items", "Data pelatihan", "Training items"),
    ("exports", "Ekspor data", "Data export"),
    ("export_create", "Buat ekspor (ZIP)", "Create an export (ZIP)"),
    ("export_ready", "Ekspor siap. Tautan ini berlaku 7 hari dan hanya ditampilkan sekali:", "Export ready. This link works for 7 days and is shown only once:"),
    ("export_pending", "Ekspor sedang disiapkan; muat ulang halaman ini untuk melihat statusnya. Tautan ini berfungsi setelah ekspor siap, selama 7 hari, dan hanya ditampilkan sekali:", "Your export is being prepared; reload this page to see its status. This link works once it is ready, for 7 days, and is shown only once:"),
    ("status_pending", "sedang disiapkan", "being prepared"),
    ("status_ready", "siap", "ready"),
    ("status_failed", "gagal dibuat; buat yang baru", "could not be made; make a new one"),
    ("expires", "berlaku hingga", "valid until"),
    ("revoke", "Cabut", "Revoke"),
    ("api_keys", "Kunci API", "API keys"),
    ("key_name", "Nama", "Name"),
    ("key_scopes", "Cakupan", "Scopes"),
    ("key_create", "Buat kunci", "Create key"),
    ("key_once", "Salin kunci ini sekarang; kunci tidak akan ditampilkan lagi:", "Copy this key now; it will not be shown again:"),
    ("jobs", "Tugas banyak foto", "Batch jobs"),
    ("job_done", "diberi takarir", "captioned"),
    ("job_failed", "gagal", "failed"),
    ("sessions", "Sesi aktif", "Active sessions"),
    ("last_used", "terakhir dipakai", "last used"),
    ("audit", "Akses staf ke data Anda", "Staff access to your data"),
    ("audit_none", "Belum pernah.", "Never."),
    ("reason", "Alasan", "Reason"),
    ("delete_account", "Hapus akun", "Delete account"),
    ("delete_warn", "Semua data Anda (riwayat, preferensi, persetujuan, data pelatihan, ekspor, tugas, kunci) dihapus untuk selamanya.", "All your data (history, preferences, consents, training items, exports, batch jobs, keys) is deleted for good."),
    ("confirm_password", "Masukkan kata sandi untuk memastikan", "Enter your password to confirm"),
    ("deleted", "Akun Anda telah dihapus.", "Your account has been deleted."),
    ("verified_ok", "Alamat email Anda terverifikasi.", "Your email address is verified."),
    ("reset_sent", "Jika alamat itu terdaftar, tautan atur ulang telah dikirim.", "If that address has an account, a reset link has been sent."),
    ("reset_ok", "Kata sandi diubah. Silakan masuk.", "Password changed. Please sign in."),
    ("saved", "Tersimpan.", "Saved."),
    ("policy_notice", "Kebijakan privasi baru, versi", "New privacy policy, version"),
    ("policy_ack", "Saya sudah membaca", "I have read it"),
    ("admin", "Admin", "Admin"),
    ("aggregates", "Angka gabungan", "Aggregates"),
    ("accounts", "Akun", "Accounts"),
    ("verified_accounts", "Akun terverifikasi", "Verified accounts"),
    ("admins", "Admin", "Admins"),
    ("usage_30", "Takarir 30 hari terakhir", "Captions, last 30 days"),
    ("account_status", "Status akun", "Account status"),
    ("access_rule", "Membuka data pribadi satu pengguna memerlukan alasan; setiap akses tercatat dan terlihat oleh pengguna itu.", "Opening one user's personal data requires a reason; each access is recorded and shown to that user."),
    ("role", "Peran", "Role"),
    ("created", "Dibuat", "Created"),
    ("open_data", "Buka data", "Open data"),
    ("yes", "ya", "yes"),
    ("no", "tidak", "no"),
    ("data_of", "Data pengguna", "Data of user"),
    ("audited", "Akses ini telah dicatat di log audit pengguna.", "This access has been recorded in the user's audit log."),
    ("prefs_anon", "Tanpa akun, preferensi ini disimpan di cookie peramban Anda.", "Without an account, these preferences are kept in a cookie in your browser."),
];

fn strings(lang: Lang) -> std::collections::BTreeMap<&'static str, &'static str> {
    STRINGS
        .iter()
        .map(|&(k, id, en)| (k, lang.pick(id, en)))
        .collect()
}

fn lang_of(ctx: Option<&RequestCtx>) -> Lang {
    ctx.map(|c| c.lang).unwrap_or_default()
}

type Ctx = Option<axum::Extension<RequestCtx>>;
type Fields = Form<HashMap<String, String>>;

fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// An error page in the account layout, with the error's status.
fn error_page(state: &AppState, lang: Lang, e: ApiError) -> Response {
    let (title, detail) = e.messages(lang);
    let mut res = render(
        state,
        "account_form.html",
        lang,
        "/account",
        context! { a => strings(lang), mode => "error", error_title => title, error_detail => detail, error_code => e.code() },
    );
    *res.status_mut() = e.status();
    if let Some(s) = e.retry_after() {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

/// The double-submit token of a signed-out form: the cookie's, or a new one to set.
fn signed_out_csrf(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, CSRF_COOKIE).filter(|v| v.len() >= 32) {
        Some(v) => (v, None),
        None => {
            let t = auth::random_token();
            let c = auth::cookie_header(state, CSRF_COOKIE, &t, 86_400, "Strict");
            (t, Some(c))
        }
    }
}

fn check_signed_out_csrf(headers: &HeaderMap, f: &HashMap<String, String>) -> Result<(), ApiError> {
    match (cookie(headers, CSRF_COOKIE), f.get("csrf")) {
        (Some(c), Some(sent)) if c.len() >= 32 && auth::constant_time_eq(&c, sent) => Ok(()),
        _ => Err(ApiError::CsrfFailed),
    }
}

/// The signed-in user of a form post whose `csrf` field matches the session's token.
async fn form_user(
    state: &AppState,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Result<Auth, ApiError> {
    let a = auth::authenticate(state, headers)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let s = a.require_session()?;
    match f.get("csrf") {
        Some(sent) if auth::constant_time_eq(sent, &s.csrf_token) => Ok(a),
        _ => Err(ApiError::CsrfFailed),
    }
}

fn signed_out_form(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    mode: &str,
    extra: minijinja::Value,
) -> Response {
    let (csrf, set) = signed_out_csrf(state, headers);
    let mut res = render(
        state,
        "account_form.html",
        lang,
        "/account",
        context! { a => strings(lang), mode => mode, form_csrf => csrf, ..extra },
    );
    if let Some(c) = set {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

async fn signup_page(State(state): State<AppState>, headers: HeaderMap, ctx: Ctx) -> Response {
    signed_out_form(
        &state,
        &headers,
        lang_of(ctx.as_deref()),
        "signup",
        context! {},
    )
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let msg = q
        .get("msg")
        .and_then(|m| strings(lang).get(m.as_str()).copied());
    signed_out_form(&state, &headers, lang, "login", context! { msg => msg })
}

async fn forgot_page(State(state): State<AppState>, headers: HeaderMap, ctx: Ctx) -> Response {
    signed_out_form(
        &state,
        &headers,
        lang_of(ctx.as_deref()),
        "forgot",
        context! {},
    )
}

async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("token").cloned().unwrap_or_default();
    signed_out_form(
        &state,
        &headers,
        lang_of(ctx.as_deref()),
        "reset",
        context! { token => token },
    )
}

fn with_cookie(mut res: Response, cookie: HeaderValue) -> Response {
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    auth::ClientIp(client): auth::ClientIp,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let r = async {
        check_signed_out_csrf(&headers, &f)?;
        // It sends an email: limited per client like caption requests.
        state.rate_limit(client)?;
        let email = f.get("email").map(String::as_str).unwrap_or("");
        let password = f.get("password").map(String::as_str).unwrap_or("");
        let user = accounts::create_account(&state, email, password, lang).await?;
        auth::start_session(&state, &headers, &user).await
    }
    .await;
    match r {
        Ok((cookie, _)) => with_cookie(see_other("/account"), cookie),
        Err(e) => error_page(&state, lang, e),
    }
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    auth::ClientIp(client): auth::ClientIp,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let r = async {
        check_signed_out_csrf(&headers, &f)?;
        let email = f.get("email").map(String::as_str).unwrap_or("");
        let password = f.get("password").map(String::as_str).unwrap_or("");
        let user = accounts::check_login(&state, email, password, client).await?;
        auth::start_session(&state, &headers, &user).await
    }
    .await;
    match r {
        Ok((cookie, _)) => with_cookie(see_other("/account"), cookie),
        Err(e) => error_page(&state, lang, e),
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let r = async {
        form_user(&state, &headers, &f).await?;
        auth::end_session(&state, &headers).await
    }
    .await;
    match r {
        Ok(cookie) => with_cookie(see_other("/"), cookie),
        Err(e) => error_page(&state, lang, e),
    }
}

async fn verify(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let token = q.get("token").cloned().unwrap_or_default();
    match accounts::verify_email(&state, &token).await {
        Ok(_) => render(
            &state,
            "account_form.html",
            lang,
            "/account",
            context! { a => strings(lang), mode => "message", msg => strings(lang)["verified_ok"] },
        ),
        Err(e) => error_page(&state, lang, e),
    }
}

async fn forgot(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    auth::ClientIp(client): auth::ClientIp,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let r = async {
        check_signed_out_csrf(&headers, &f)?;
        // It sends an email: limited per client like caption requests.
        state.rate_limit(client)?;
        accounts::send_reset(
            &state,
            f.get("email").map(String::as_str).unwrap_or(""),
            lang,
        )
        .await
    }
    .await;
    match r {
        Ok(()) => render(
            &state,
            "account_form.html",
            lang,
            "/account",
            context! { a => strings(lang), mode => "message", msg => strings(lang)["reset_sent"] },
        ),
        Err(e) => error_page(&state, lang, e),
    }
}

async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let r = async {
        check_signed_out_csrf(&headers, &f)?;
        accounts::reset_password(
            &state,
            f.get("token").map(String::as_str).unwrap_or(""),
            f.get("password").map(String::as_str).unwrap_or(""),
        )
        .await
    }
    .await;
    match r {
        Ok(_) => see_other("/account/login?msg=reset_ok"),
        Err(e) => error_page(&state, lang, e),
    }
}

/// `GET /account`: the access page, or sign-in for signed-out visitors.
async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let a = match auth::authenticate(&state, &headers).await {
        Ok(Some(a)) if a.csrf().is_some() => a,
        Ok(_) => {
            let prefs = auth::cookie_preferences(&headers);
            return signed_out_form(
                &state,
                &headers,
                lang,
                "login",
                context! { anon_prefs => context! { lang => prefs.lang, style => prefs.style, alternatives => prefs.alternatives } },
            );
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
    q: &HashMap<String, String>,
    new_key: Option<String>,
    new_export: Option<NewExport>,
) -> Response {
    let r = async {
        let doc = rights::access_document(state, &a.user).await?;
        let search = q.get("q").cloned().unwrap_or_default();
        let history = state
            .storage()
            .db
            .history()
            .list(
                a.user.id,
                HistoryQuery {
                    before: None,
                    search: Some(search.as_str()).filter(|s| !s.is_empty()),
                    limit: 200,
                },
            )
            .await?;
        let history: Vec<serde_json::Value> = history
            .iter()
            .map(|h| serde_json::json!({"id": h.id.0, "caption": h.caption, "corrected_caption": h.corrected_caption, "lang": h.lang, "style": h.style, "width": h.width, "height": h.height, "format": h.format, "created_at": rights::ts(h.created_at)}))
            .collect();
        let notice = crate::policy::pending_for(state, a.user.id).await?;
        Ok::<_, ApiError>((doc, history, search, notice))
    }
    .await;
    match r {
        Ok((doc, history, search, notice)) => {
            let msg = q
                .get("msg")
                .and_then(|m| strings(lang).get(m.as_str()).copied());
            render(
                state,
                "account.html",
                lang,
                "/account",
                context! {
                    a => strings(lang), doc => doc, history => history, search => search,
                    csrf => a.csrf(), msg => msg, policy_notice => notice,
                    new_key => new_key, new_export => new_export,
                },
            )
        }
        Err(e) => error_page(state, lang, e),
    }
}

/// Runs a signed-in form action and redirects back to the account page.
async fn act<F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    f: &HashMap<String, String>,
    action: F,
) -> Response
where
    F: FnOnce(AppState, Auth) -> Fut,
    Fut: std::future::Future<Output = Result<String, ApiError>>,
{
    let r = async {
        let a = form_user(state, headers, f).await?;
        action(state.clone(), a).await
    }
    .await;
    match r {
        Ok(to) => see_other(&to),
        Err(e) => error_page(state, lang, e),
    }
}

fn flag(f: &HashMap<String, String>, name: &str) -> bool {
    matches!(
        f.get(name).map(String::as_str),
        Some("on" | "true" | "1" | "yes")
    )
}

async fn preferences(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let signed_in = matches!(auth::authenticate(&state, &headers).await, Ok(Some(_)));
    if !signed_in {
        // Signed out: only the caption defaults, kept in a cookie.
        if let Err(e) = check_signed_out_csrf(&headers, &f) {
            return error_page(&state, lang, e);
        }
        let p = takarir_store::preferences::Preferences {
            lang: f
                .get("lang")
                .filter(|l| matches!(l.as_str(), "id" | "en" | "both"))
                .cloned(),
            style: f
                .get("style")
                .filter(|s| matches!(s.as_str(), "short" | "sentence" | "detailed"))
                .cloned(),
            alternatives: f
                .get("alternatives")
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=5).contains(n)),
            ..Default::default()
        };
        let value = auth::preferences_cookie_value(&p);
        return with_cookie(
            see_other("/"),
            auth::cookie_header(&state, auth::PREFS_COOKIE, &value, 31_536_000, "Lax"),
        );
    }
    let fc = f.clone();
    act(&state, &headers, lang, &f, |state, a| async move {
        let patch = PreferencesPatch {
            lang: Some(fc.get("lang").cloned().unwrap_or_default()),
            style: Some(fc.get("style").cloned().unwrap_or_default()),
            alternatives: Some(
                fc.get("alternatives")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            ),
            history_enabled: Some(flag(&fc, "history_enabled")),
            delete_history: fc.get("history_existing").map(|v| v == "delete"),
            training_consent: Some(flag(&fc, "training_consent")),
        };
        rights::update_preferences(&state, &a.user, patch).await?;
        Ok("/account?msg=saved".into())
    })
    .await
}

async fn history_edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let text = f.get("corrected_caption").cloned();
    act(&state, &headers, lang, &f, |state, a| async move {
        accounts::correct(&state, &a.user, HistoryId(id), text.as_deref()).await?;
        Ok("/account?msg=saved#history".into())
    })
    .await
}

async fn history_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    act(&state, &headers, lang, &f, |state, a| async move {
        state
            .storage()
            .db
            .history()
            .delete(a.user.id, HistoryId(id))
            .await?;
        Ok("/account?msg=saved#history".into())
    })
    .await
}

async fn history_delete_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    act(&state, &headers, lang, &f, |state, a| async move {
        state.storage().db.history().delete_all(a.user.id).await?;
        Ok("/account?msg=saved#history".into())
    })
    .await
}

async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let granted = flag(&f, "granted");
    act(&state, &headers, lang, &f, |state, a| async move {
        rights::set_training_consent(&state, &a.user, granted).await?;
        Ok("/account?msg=saved#consents".into())
    })
    .await
}

async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let r = async {
        let a = form_user(&state, &headers, &f).await?;
        let (export, token) = rights::create_export(&state, &a.user).await?;
        Ok::<_, ApiError>((
            a,
            NewExport {
                token,
                status: export.status,
            },
        ))
    }
    .await;
    match r {
        Ok((a, new)) => account_page(&state, &a, lang, &HashMap::new(), None, Some(new)).await,
        Err(e) => error_page(&state, lang, e),
    }
}

async fn export_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    act(&state, &headers, lang, &f, |state, a| async move {
        rights::revoke_export(&state, &a.user, ExportId(id)).await?;
        Ok("/account?msg=saved#exports".into())
    })
    .await
}

async fn key_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let name = f.get("name").cloned().unwrap_or_default();
    let scopes: Vec<String> = ["captions", "read", "write"]
        .iter()
        .filter(|s| flag(&f, &format!("scope_{s}")))
        .map(|s| s.to_string())
        .collect();
    let r = async {
        let a = form_user(&state, &headers, &f).await?;
        let (_, key) = accounts::make_key(&state, &a.user, &name, &scopes).await?;
        Ok::<_, ApiError>((a, key))
    }
    .await;
    match r {
        Ok((a, key)) => account_page(&state, &a, lang, &HashMap::new(), Some(key), None).await,
        Err(e) => error_page(&state, lang, e),
    }
}

async fn key_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    act(&state, &headers, lang, &f, |state, a| async move {
        state
            .storage()
            .db
            .api_keys()
            .delete(a.user.id, ApiKeyId(id))
            .await?;
        Ok("/account?msg=saved#keys".into())
    })
    .await
}

async fn email(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let new = f.get("email").cloned().unwrap_or_default();
    act(&state, &headers, lang, &f, |state, a| async move {
        let db = &state.storage().db;
        db.users().set_email(a.user.id, &new).await?;
        let user = db.users().get(a.user.id).await?.ok_or(ApiError::NotFound)?;
        accounts::send_verification(&state, &user, lang).await?;
        Ok("/account?msg=saved".into())
    })
    .await
}

async fn password(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    auth::ClientIp(client): auth::ClientIp,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let current = f.get("current_password").cloned().unwrap_or_default();
    let new = f.get("new_password").cloned().unwrap_or_default();
    act(&state, &headers, lang, &f, |state, a| async move {
        let keep = a.require_session()?.id;
        accounts::change_password(&state, &a.user, keep, client, &current, &new).await?;
        Ok("/account?msg=password_changed".into())
    })
    .await
}

async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let r = async {
        let a = form_user(&state, &headers, &f).await?;
        let pw = f.get("password").map(String::as_str).unwrap_or("");
        if !auth::verify_password(pw, Some(&a.user.password_hash)).await {
            return Err(ApiError::InvalidCredentials);
        }
        rights::erase(&state, &a.user).await
    }
    .await;
    match r {
        Ok(()) => {
            let res = render(
                &state,
                "account_form.html",
                lang,
                "/account",
                context! { a => strings(lang), mode => "message", msg => strings(lang)["deleted"] },
            );
            with_cookie(
                res,
                auth::cookie_header(&state, auth::SESSION_COOKIE, "", 0, "Lax"),
            )
        }
        Err(e) => error_page(&state, lang, e),
    }
}

async fn policy_ack(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let version = f.get("version").cloned();
    act(&state, &headers, lang, &f, |state, a| async move {
        crate::policy::acknowledge(&state, &a.user, version.as_deref()).await?;
        Ok("/account?msg=saved".into())
    })
    .await
}

/// The admin page: aggregates, account status, and (after a reasoned request) one user's data.
async fn admin_view(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    subject: Option<(i64, String)>,
    f: Option<&HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let a = match f {
        Some(f) => form_user(state, headers, f).await?,
        None => auth::authenticate(state, headers)
            .await?
            .ok_or(ApiError::Unauthorized)?,
    };
    a.require_session()?;
    a.require_admin()?;
    let db = &state.storage().db;
    let users = db.users().list(None, 1000).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let usage: Vec<serde_json::Value> = db
        .usage()
        .list(today - time::Duration::days(30), today)
        .await?
        .iter()
        .map(|u| serde_json::json!({"day": u.day.to_string(), "lang": u.lang, "style": u.style, "count": u.count}))
        .collect();
    let stats = serde_json::json!({
        "accounts": users.len(),
        "verified_accounts": users.iter().filter(|u| u.email_verified_at.is_some()).count(),
        "admins": users.iter().filter(|u| u.role == takarir_store::users::Role::Admin).count(),
        "usage_last_30_days": usage,
    });
    let list: Vec<serde_json::Value> = users
        .iter()
        .map(|u| serde_json::json!({"id": u.id.0, "role": u.role.as_str(), "email_verified": u.email_verified_at.is_some(), "created_at": rights::ts(u.created_at)}))
        .collect();
    let subject_doc = match subject {
        Some((id, reason)) => {
            if reason.trim().is_empty() {
                return Err(ApiError::ReasonRequired);
            }
            let user = db
                .users()
                .get(takarir_store::users::UserId(id))
                .await?
                .ok_or(ApiError::NotFound)?;
            db.audit()
                .record(user.id, a.user.id, "view_personal_data", &reason)
                .await?;
            Some(rights::access_document(state, &user).await?)
        }
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
            a => strings(lang), stats => stats, users => list, csrf => a.csrf(),
            subject => subject_doc, subject_json => subject_json,
        },
    ))
}

async fn admin_page(State(state): State<AppState>, headers: HeaderMap, ctx: Ctx) -> Response {
    let lang = lang_of(ctx.as_deref());
    admin_view(&state, &headers, lang, None, None)
        .await
        .unwrap_or_else(|e| error_page(&state, lang, e))
}

async fn admin_access(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(f): Fields,
) -> Response {
    let lang = lang_of(ctx.as_deref());
    let reason = f.get("reason").cloned().unwrap_or_default();
    admin_view(&state, &headers, lang, Some((id, reason)), Some(&f))
        .await
        .unwrap_or_else(|e| error_page(&state, lang, e))
}
