//! The caption page (`GET /`, and `POST /`, the form without JavaScript), the privacy and
//! contact pages, the language switch and the compiled-in assets.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Serialize;

use crate::error::ApiError;
use crate::http::extract::{
    caption_caller, client_ip, cookie_defaults, credentials, discard_unread, read_submission, Ctx,
};
use crate::http::web::{render, with_error};
use crate::i18n::{query_param, Lang};
use crate::options::{CaptionOptions, OptionDefaults};
use crate::service::accounts::auth::{authenticate, caption_auth};
use crate::service::accounts::caption_defaults;
use crate::service::captioning::{caption_and_record, Gps, ImageResult};
use crate::service::privacy::policy::pending_for;
use crate::state::AppState;

const APP_JS: &str = include_str!("../../../static/app.js");
const APP_CSS: &str = include_str!("../../../static/app.css");

/// One image's result on the page.
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
    objects: Option<Vec<LabelView>>,
    tags: Option<Vec<LabelView>>,
    /// The lines read, when text was asked for.
    text_lines: Option<Vec<LineView>>,
    error: Option<String>,
}

/// A line of text read in the photo, with its confidence.
#[derive(Serialize)]
struct LineView {
    text: String,
    percent: u32,
}

#[derive(Serialize)]
struct CaptionView {
    text: String,
    lang: String,
    needs_review: bool,
    confidence: Option<u32>,
}

/// An object or a tag on the page: its name in the page's language and a percentage.
#[derive(Serialize)]
struct LabelView {
    name: String,
    percent: u32,
}

impl ResultView {
    fn of(r: ImageResult, lang: Lang) -> ResultView {
        match r.outcome {
            Ok(c) => ResultView {
                filename: r.filename,
                captions: c
                    .captions
                    .into_iter()
                    .map(|c| CaptionView {
                        text: c.text,
                        lang: c.lang,
                        needs_review: c.needs_review.unwrap_or(false),
                        confidence: c.confidence.map(percent),
                    })
                    .collect(),
                objects: c.objects.map(|os| {
                    os.into_iter()
                        .map(|o| LabelView {
                            name: lang.pick(&o.name_id, &o.name_en).to_string(),
                            percent: percent(o.confidence),
                        })
                        .collect()
                }),
                tags: c.tags.map(|ts| {
                    ts.into_iter()
                        .map(|t| LabelView {
                            name: lang.pick(&t.name_id, &t.name_en).to_string(),
                            percent: percent(t.confidence),
                        })
                        .collect()
                }),
                text_lines: c.text.map(|t| {
                    t.lines
                        .into_iter()
                        .map(|l| LineView {
                            text: l.text,
                            percent: percent(l.confidence),
                        })
                        .collect()
                }),
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
                objects: None,
                tags: None,
                text_lines: None,
                error: Some(e.messages(lang).1),
            },
        }
    }
}

fn percent(x: f32) -> u32 {
    (x.clamp(0.0, 1.0) * 100.0).round() as u32
}

/// The form's selected options.
#[derive(Serialize)]
struct Selected {
    sel_lang: &'static str,
    sel_style: &'static str,
    sel_alternatives: u8,
    sel_gender_neutral: bool,
}

impl Selected {
    fn of_defaults(d: &OptionDefaults) -> Selected {
        Selected {
            sel_lang: d.lang.map(|l| l.as_str()).unwrap_or_default(),
            sel_style: d.style.map(|s| s.as_str()).unwrap_or_default(),
            sel_alternatives: d.alternatives.unwrap_or(1),
            sel_gender_neutral: false,
        }
    }

    fn of_options(o: &CaptionOptions) -> Selected {
        Selected {
            sel_lang: o.lang.map(|l| l.as_str()).unwrap_or_default(),
            sel_style: o.style.as_str(),
            sel_alternatives: o.alternatives,
            sel_gender_neutral: o.gender_neutral,
        }
    }
}

/// `GET /`: the upload form.
pub async fn index(State(state): State<AppState>, ctx: Ctx, req: Request) -> Response {
    let creds = credentials(req.headers());
    let auth = authenticate(&state, &creds).await.ok().flatten();
    let defaults = caption_defaults(&state, auth.as_ref(), cookie_defaults(req.headers()))
        .await
        .unwrap_or_default();
    let notice = match &auth {
        Some(a) => pending_for(&state, a.user.id).await.ok().flatten(),
        None => None,
    };
    let selected = minijinja::Value::from_serialize(Selected::of_defaults(&defaults));
    render(
        &state,
        "index.html",
        ctx.lang(),
        "/",
        context! {
            csrf => auth.as_ref().and_then(|a| a.csrf().map(str::to_owned)),
            signed_in => auth.is_some(),
            policy_notice => notice,
            ..selected
        },
    )
}

/// `POST /`: the form without JavaScript; answers with the page and the captions.
pub async fn submit(State(state): State<AppState>, ctx: Ctx, req: Request) -> Response {
    let lang = ctx.lang();
    let mut form = CaptionOptions::default();
    let mut csrf = None;
    let ip = client_ip(&req, state.config().trust_forwarded_for);
    // Held until the body is read, so that a refusal before then can drain it.
    let mut unread = Some(req);
    let outcome = async {
        let req = unread.as_ref().expect("body not yet read");
        let caller = caption_caller(&state, ip, req.headers()).await?;
        let (signed_in, creds, cookie) = (caller.signed_in, caller.creds, caller.cookie);
        csrf = signed_in.as_ref().and_then(|a| a.csrf().map(str::to_owned));
        let sub = read_submission(&state, unread.take().expect("body not yet read")).await?;
        let sent = creds.csrf.as_deref().or(sub.field("csrf"));
        let auth = caption_auth(signed_in, sent)?;
        let defaults = caption_defaults(&state, auth.as_ref(), cookie).await?;
        let opts = sub.options_under(&defaults)?;
        form = opts.clone();
        let user = auth.as_ref().map(|a| &a.user);
        // Only now, with the upload read, does the request take an inference place: a slow
        // upload never holds one.
        let permit = state.queue_permit()?;
        caption_and_record(&state, permit, sub.uploads, &opts, user).await
    }
    .await;
    if let Some(req) = unread {
        discard_unread(&state, req, state.config().body_limit()).await;
    }
    if matches!(outcome, Err(ApiError::Busy { .. })) {
        state.refund_rate_limit(ip);
    }
    let selected = minijinja::Value::from_serialize(Selected::of_options(&form));
    match outcome {
        Ok(results) => {
            let views: Vec<ResultView> = results
                .into_iter()
                .map(|r| ResultView::of(r, lang))
                .collect();
            render(
                &state,
                "index.html",
                lang,
                "/",
                context! { results => views, csrf => csrf, ..selected },
            )
        }
        Err(e) => {
            let (title, detail) = e.messages(lang);
            let page = render(
                &state,
                "index.html",
                lang,
                "/",
                context! {
                    error_title => title, error_detail => detail, error_code => e.code(),
                    csrf => csrf, ..selected
                },
            );
            with_error(page, &e)
        }
    }
}

/// `GET /privacy`.
pub async fn privacy(State(state): State<AppState>, ctx: Ctx) -> Response {
    render(
        &state,
        "privacy.html",
        ctx.lang(),
        "/privacy",
        privacy_facts(state.config()),
    )
}

/// What the privacy page states about this deployment, read from its running configuration:
/// each retention period, the processors (database, object store, mail relay) and where they
/// are, and the controller and data-protection contact.
fn privacy_facts(c: &crate::config::ServerConfig) -> minijinja::Value {
    use crate::service::accounts::{RESET_HOURS, VERIFY_HOURS};
    let db_url = c.database_url();
    let (db_kind, db_host) = match url::Url::parse(&db_url) {
        Ok(u) if u.scheme().starts_with("postgres") => {
            ("postgres", u.host_str().map(str::to_string))
        }
        _ => ("sqlite", None),
    };
    let store = url::Url::parse(&c.object_store_url()).ok();
    let store_kind = store.as_ref().map_or("file", |u| match u.scheme() {
        "s3" => "s3",
        "gs" => "gs",
        _ => "file",
    });
    let query = |key: &str| {
        store.as_ref().and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        })
    };
    let store_endpoint = query("endpoint")
        .and_then(|e| url::Url::parse(&e).ok())
        .and_then(|u| u.host_str().map(str::to_string));
    let smtp_host = c
        .smtp_url
        .as_deref()
        .and_then(|s| url::Url::parse(s).ok())
        .and_then(|u| u.host_str().map(str::to_string));
    context! {
        history_days => c.history_retention_days,
        backup_days => c.backup_retention_days,
        export_days => 7,
        session_days => 30,
        verify_hours => VERIFY_HOURS,
        reset_hours => RESET_HOURS,
        signin_minutes => 15,
        db_kind => db_kind,
        db_host => db_host,
        store_kind => store_kind,
        store_bucket => store.as_ref().and_then(|u| u.host_str().map(str::to_string)),
        store_region => query("region"),
        store_endpoint => store_endpoint,
        smtp_host => smtp_host,
        controller => c.controller.clone().filter(|_| c.controller_set()),
        dpo_email => c.dpo_email.clone().filter(|_| c.controller_set()),
    }
}

/// `GET /contact`.
pub async fn contact(State(state): State<AppState>, ctx: Ctx) -> Response {
    render(&state, "contact.html", ctx.lang(), "/contact", context! {})
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
