//! The web page: server-rendered, Indonesian by default, complete without JavaScript. The
//! templates, the stylesheet and the script are compiled into the binary.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment};
use serde::Serialize;

use crate::caption::{client_ip, read_submission, Gps, Options};
use crate::error::ApiError;
use crate::i18n::{query_param, Lang};
use crate::middleware::RequestCtx;
use crate::AppState;

/// Version and date of the privacy policy shown at `/privacy`.
pub const PRIVACY_VERSION: &str = "2.1";
/// Date the privacy policy took effect (ISO 8601).
pub const PRIVACY_DATE: &str = "2026-11-30";

const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");

/// The compiled-in templates.
pub fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, src) in [
        ("base.html", include_str!("../templates/base.html")),
        ("index.html", include_str!("../templates/index.html")),
        ("privacy.html", include_str!("../templates/privacy.html")),
        ("contact.html", include_str!("../templates/contact.html")),
        ("account.html", include_str!("../templates/account.html")),
        ("admin.html", include_str!("../templates/admin.html")),
        (
            "account_form.html",
            include_str!("../templates/account_form.html"),
        ),
    ] {
        env.add_template(name, src).expect("templates compile");
    }
    env
}

/// Interface strings: (key, Indonesian, English).
const STRINGS: &[(&str, &str, &str)] = &[
    ("tagline", "Takarir gambar otomatis, tanpa menyimpan foto Anda.", "Automatic image captions, without keeping your photos."),
    ("nav_home", "Beranda", "Home"),
    ("nav_privacy", "Privasi", "Privacy"),
    ("nav_contact", "Kontak", "Contact"),
    ("switch_label", "English", "Bahasa Indonesia"),
    ("switch_title", "Switch to English", "Ganti ke Bahasa Indonesia"),
    ("skip", "Langsung ke isi", "Skip to content"),
    ("heading", "Buat takarir untuk gambar", "Caption an image"),
    ("choose", "Pilih gambar (boleh lebih dari satu)", "Choose images (several allowed)"),
    ("drop_hint", "Atau seret gambar ke sini, atau tempel (Ctrl+V). JPEG, PNG, WebP, GIF, BMP, TIFF.", "Or drag images here, or paste them (Ctrl+V). JPEG, PNG, WebP, GIF, BMP, TIFF."),
    ("limit", "Batas", "Limit"),
    ("images_per_upload", "gambar per kiriman", "images per upload"),
    ("nav_label", "Navigasi utama", "Main navigation"),
    ("settings", "Pengaturan", "Settings"),
    ("caption_lang", "Bahasa takarir", "Caption language"),
    ("lang_id", "Bahasa Indonesia", "Indonesian"),
    ("lang_en", "Bahasa Inggris", "English"),
    ("lang_both", "Keduanya", "Both"),
    ("style", "Gaya", "Style"),
    ("style_short", "Singkat (maks. 12 kata)", "Short (at most 12 words)"),
    ("style_sentence", "Satu kalimat", "One sentence"),
    ("style_detailed", "Terperinci", "Detailed"),
    ("alternatives", "Jumlah alternatif (1–5)", "Alternatives (1–5)"),
    ("gender_neutral", "Gunakan kata netral gender (orang, anak)", "Use gender-neutral words (person, child)"),
    ("submit", "Buat takarir", "Create captions"),
    ("results", "Hasil", "Results"),
    ("caption", "Takarir", "Caption"),
    ("size", "Ukuran", "Size"),
    ("format", "Format", "Format"),
    ("camera", "Kamera", "Camera"),
    ("date_taken", "Tanggal diambil", "Date taken"),
    ("gps_present", "Berkas ini memuat lokasi GPS. Kami tidak membacanya atau menyimpannya, tetapi pertimbangkan untuk menghapusnya sebelum membagikan foto.", "This file contains a GPS location. We neither read nor keep it, but consider removing it before sharing the photo."),
    ("copy", "Salin", "Copy"),
    ("copied", "Tersalin", "Copied"),
    ("preview", "Pratinjau gambar yang diunggah", "Preview of the uploaded image"),
    ("uploading", "Mengunggah…", "Uploading…"),
    ("processing", "Memproses…", "Processing…"),
    ("error", "Gagal", "Failed"),
    ("no_store", "Gambar diproses di memori dan tidak disimpan (tugas banyak foto: terenkripsi, hanya sampai diberi takarir).", "Images are processed in memory and not stored (batch jobs: encrypted, only until captioned)."),
    ("model", "Model", "Model"),
    ("privacy_title", "Kebijakan Privasi", "Privacy Policy"),
    ("contact_title", "Kontak", "Contact"),
    ("version", "Versi", "Version"),
    ("effective", "berlaku sejak", "effective"),
    ("batch_heading", "Banyak foto sekaligus", "Many photos at once"),
    ("batch_hint", "Untuk folder atau arsip ZIP: diproses di latar belakang. Gambar dihapus segera setelah diberi takarir; hasilnya disimpan beberapa hari (lihat Kebijakan Privasi) atau sampai Anda menghapusnya.", "For folders or ZIP archives: processed in the background. Images are deleted as soon as they are captioned; results are kept for a few days (see the Privacy Policy) or until you delete them."),
    ("batch_choose", "Pilih gambar atau berkas ZIP", "Choose images or ZIP files"),
    ("batch_submit", "Kirim sebagai tugas", "Send as a job"),
    ("batch_sending", "Mengirim…", "Sending…"),
    ("batch_progress", "Diproses", "Processed"),
    ("batch_done", "Selesai", "Done"),
    ("batch_failed", "gagal", "failed"),
    ("nav_account", "Akun", "Account"),
    ("policy_notice", "Kebijakan privasi baru, versi", "New privacy policy, version"),
    ("policy_ack", "Saya sudah membaca", "I have read it"),
];

/// Interface strings in one language.
fn strings(lang: Lang) -> std::collections::BTreeMap<&'static str, &'static str> {
    STRINGS
        .iter()
        .map(|&(k, id, en)| (k, lang.pick(id, en)))
        .collect()
}

#[derive(Serialize)]
struct ResultView {
    filename: Option<String>,
    captions: Vec<CaptionView>,
    width: u32,
    height: u32,
    format: String,
    camera: Option<String>,
    date_taken: Option<String>,
    gps_present: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct CaptionView {
    text: String,
    lang: String,
}

pub(crate) fn ctx_of(req: &Request) -> RequestCtx {
    req.extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or(RequestCtx {
            id: String::new(),
            lang: Lang::default(),
        })
}

pub(crate) fn render(
    state: &AppState,
    name: &str,
    lang: Lang,
    path: &str,
    extra: minijinja::Value,
) -> Response {
    let info = state.captioner().info();
    let langs = &info.languages;
    let ctx = context! {
        lang => lang.code(),
        other_lang => match lang { Lang::Id => "en", Lang::En => "id" },
        path => path,
        t => strings(lang),
        model_name => info.name.clone(),
        model_langs => langs.clone(),
        both_ok => langs.iter().any(|l| l == "id") && langs.iter().any(|l| l == "en"),
        default_caption_lang => if langs.iter().any(|l| l == lang.code()) { lang.code() } else { state.captioner().default_language() },
        max_mb => state.config().max_upload_bytes / 1_000_000,
        max_files => state.config().max_files,
        job_days => state.config().job_result_days.max(1),
        session_idle_days => state.config().session_idle_seconds.div_ceil(86_400),
        contact_email => state.config().contact_email.clone(),
        privacy_version => PRIVACY_VERSION,
        privacy_date => PRIVACY_DATE,
        tls => state.config().tls(),
        ..extra
    };
    match state
        .templates()
        .get_template(name)
        .and_then(|t| t.render(ctx))
    {
        Ok(html) => {
            let mut res = Html(html).into_response();
            res.headers_mut().insert(
                header::CONTENT_LANGUAGE,
                HeaderValue::from_static(lang.code()),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, template = name, "template failed");
            ApiError::Internal.into_response()
        }
    }
}

/// `GET /`: the upload form.
pub async fn index(State(state): State<AppState>, req: Request) -> Response {
    let ctx = ctx_of(&req);
    let auth = crate::auth::authenticate(&state, req.headers())
        .await
        .ok()
        .flatten();
    let prefs = crate::auth::effective_preferences(&state, auth.as_ref(), req.headers())
        .await
        .unwrap_or_default();
    let notice = match &auth {
        Some(a) => crate::policy::pending_for(&state, a.user.id)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    render(
        &state,
        "index.html",
        ctx.lang,
        "/",
        context! {
            csrf => auth.as_ref().and_then(|a| a.csrf().map(str::to_owned)),
            signed_in => auth.is_some(),
            sel_lang => prefs.lang.clone().unwrap_or_default(),
            sel_style => prefs.style.clone().unwrap_or_default(),
            sel_alternatives => prefs.alternatives.unwrap_or(1),
            policy_notice => notice,
        },
    )
}

/// `POST /`: the form without JavaScript; answers with the page and the captions.
pub async fn submit(State(state): State<AppState>, req: Request) -> Response {
    let ctx = ctx_of(&req);
    let lang = ctx.lang;
    let mut form = Options {
        alternatives: 1,
        ..Options::default()
    };
    let mut csrf = None;
    // Held until the body is read, so that a refusal before then can drain it.
    let mut unread = Some(req);
    let outcome = async {
        let req = unread.as_ref().expect("body not yet read");
        state.rate_limit(client_ip(req, state.config().trust_forwarded_for))?;
        let headers = req.headers().clone();
        let signed_in = crate::auth::authenticate(&state, &headers).await?;
        csrf = signed_in.as_ref().and_then(|a| a.csrf().map(str::to_owned));
        let permit = state.queue_permit()?;
        let sub = read_submission(&state, unread.take().expect("body not yet read")).await?;
        let form_csrf = sub
            .pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.clone());
        let auth = crate::auth::caption_auth(signed_in, &headers, form_csrf.as_deref())?;
        let prefs = crate::auth::effective_preferences(&state, auth.as_ref(), &headers).await?;
        let opts = sub.options_under(&prefs)?;
        form = opts.clone();
        let user = auth.as_ref().map(|a| &a.user);
        crate::rights::caption_and_record(&state, permit, sub.uploads, &opts, user).await
    }
    .await;
    if let Some(req) = unread {
        let cap = crate::body_limit(state.config().max_upload_bytes) as u64;
        crate::caption::discard_unread(&state, req, cap).await;
    }
    let selected = context! {
        sel_lang => match form.lang {
            Some(crate::caption::LangChoice::Id) => "id",
            Some(crate::caption::LangChoice::En) => "en",
            Some(crate::caption::LangChoice::Both) => "both",
            None => "",
        },
        sel_style => form.style.as_str(),
        sel_alternatives => form.alternatives,
        sel_gender_neutral => form.gender_neutral,
        csrf => csrf,
    };
    match outcome {
        Ok(results) => {
            let views: Vec<ResultView> = results
                .into_iter()
                .map(|r| match r.outcome {
                    Ok(c) => ResultView {
                        filename: r.filename,
                        captions: c
                            .captions
                            .into_iter()
                            .map(|c| CaptionView {
                                text: c.text,
                                lang: c.lang,
                            })
                            .collect(),
                        width: c.image.width,
                        height: c.image.height,
                        format: c.image.format,
                        camera: c.metadata.camera,
                        date_taken: c.metadata.date_taken,
                        gps_present: c.metadata.gps == Gps::Present,
                        error: None,
                    },
                    Err(e) => ResultView {
                        filename: r.filename,
                        captions: vec![],
                        width: 0,
                        height: 0,
                        format: String::new(),
                        camera: None,
                        date_taken: None,
                        gps_present: false,
                        error: Some(e.messages(lang).1),
                    },
                })
                .collect();
            render(
                &state,
                "index.html",
                lang,
                "/",
                context! { results => views, ..selected },
            )
        }
        Err(e) => {
            let (title, detail) = e.messages(lang);
            let mut res = render(
                &state,
                "index.html",
                lang,
                "/",
                context! { error_title => title, error_detail => detail, error_code => e.code(), ..selected },
            );
            *res.status_mut() = e.status();
            if let Some(s) = e.retry_after() {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            res
        }
    }
}

/// `GET /privacy`.
pub async fn privacy(State(state): State<AppState>, req: Request) -> Response {
    let ctx = ctx_of(&req);
    render(&state, "privacy.html", ctx.lang, "/privacy", context! {})
}

/// `GET /contact`.
pub async fn contact(State(state): State<AppState>, req: Request) -> Response {
    let ctx = ctx_of(&req);
    render(&state, "contact.html", ctx.lang, "/contact", context! {})
}

/// `GET /lang/{id|en}?next=/path`: remembers the interface language in a cookie and goes back.
pub async fn set_lang(
    State(state): State<AppState>,
    Path(code): Path<String>,
    req: Request,
) -> Response {
    let Some(lang) = Lang::parse(&code).filter(|_| code.len() == 2) else {
        return ApiError::NotFound.into_response();
    };
    let next = query_param(req.uri(), "next")
        .filter(|n| {
            n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
        })
        .unwrap_or_else(|| "/".into());
    let secure = if state.config().tls() { "; Secure" } else { "" };
    let cookie = format!(
        "lang={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}",
        lang.code()
    );
    let mut res = StatusCode::SEE_OTHER.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&next) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    res
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /static/app.js`.
pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /static/app.css`.
pub async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_in_both_languages() {
        let env = templates();
        for lang in [Lang::Id, Lang::En] {
            for name in ["index.html", "privacy.html", "contact.html"] {
                let html = env
                    .get_template(name)
                    .and_then(|t| {
                        t.render(context! {
                            lang => lang.code(), other_lang => "en", path => "/",
                            t => strings(lang), model_name => "m", model_langs => vec!["en"],
                            both_ok => false, default_caption_lang => "en", max_mb => 20,
                            max_files => 10, job_days => 7, session_idle_days => 7,
                            privacy_version => PRIVACY_VERSION,
                            privacy_date => PRIVACY_DATE, tls => false,
                        })
                    })
                    .map_err(|e| format!("{e:#}"))
                    .unwrap();
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
            }
        }
    }
}
