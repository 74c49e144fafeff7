//! End-to-end tests: the real server on 127.0.0.1 with a random port and the tiny fixture
//! model (English only, gibberish captions), spoken to over HTTP with reqwest.

use std::sync::Arc;

use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use serde_json::Value;
mod common;
use common::Go;
use common::{sample, zip_bytes, Backend, TestServer};
use takarir_server::ServerConfig;

/// A server on the backend TAKARIR_TEST_BACKEND names; `edit` changes its configuration.
async fn start(edit: impl FnOnce(&mut ServerConfig)) -> TestServer {
    TestServer::start(Backend::from_env(), edit).await
}

/// POSTs one image as the multipart `image` part to `/api/v1/captions{query}`.
async fn post_image(
    s: &TestServer,
    query: &str,
    bytes: Vec<u8>,
    name: &str,
    mime: &str,
) -> reqwest::Response {
    let form = Form::new().part(
        "image",
        Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str(mime)
            .unwrap(),
    );
    s.client
        .post(s.url(&format!("/api/v1/captions{query}")))
        .multipart(form)
        .go()
        .await
}

async fn problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], rid.as_str());
    assert!(body["type"].as_str().unwrap().ends_with(code));
    assert!(!body["title"].as_str().unwrap().is_empty());
    body
}

/// A PNG of the given declared size: signature, IHDR (with a correct CRC), no pixel data.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn png_1x1() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(1, 1, image::Rgb([200, 30, 40]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// chelsea.jpg with an EXIF APP1 segment carrying a camera and GPS coordinates.
fn jpeg_with_gps() -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value as EV};
    let r = |num, denom| Rational { num, denom };
    let fields = [
        Field {
            tag: Tag::Make,
            ifd_num: In::PRIMARY,
            value: EV::Ascii(vec![b"TakarirCam".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitudeRef,
            ifd_num: In::PRIMARY,
            value: EV::Ascii(vec![b"S".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: EV::Rational(vec![r(41, 1), r(23, 1), r(98765, 1000)]),
        },
        Field {
            tag: Tag::GPSLongitudeRef,
            ifd_num: In::PRIMARY,
            value: EV::Ascii(vec![b"E".to_vec()]),
        },
        Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: EV::Rational(vec![r(131, 1), r(57, 1), r(24681, 1000)]),
        },
    ];
    let mut w = exif::experimental::Writer::new();
    for f in &fields {
        w.push_field(f);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    w.write(&mut tiff, false).unwrap();
    let tiff = tiff.into_inner();
    let jpeg = sample("chelsea.jpg");
    assert_eq!(
        &jpeg[2..4],
        b"\xff\xe0",
        "chelsea.jpg starts with JFIF APP0"
    );
    let app0_end = 4 + u16::from_be_bytes([jpeg[4], jpeg[5]]) as usize;
    let mut out = jpeg[..app0_end].to_vec();
    out.extend_from_slice(b"\xff\xe1");
    out.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[app0_end..]);
    out
}

fn assert_security_headers(res: &reqwest::Response) {
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.contains_key("x-request-id"));
    assert!(
        !h.contains_key("strict-transport-security"),
        "no HSTS over plain HTTP"
    );
}

#[tokio::test]
async fn read_only_routes_answer_with_security_headers() {
    let s = start(|_| {}).await;

    let res = s.get("/api/v1/health").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_security_headers(&res);
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["model"], "vit-gpt2-tiny");
    assert_eq!(health["queue_in_use"], 0);

    let models: Value = s.get("/api/v1/models").await.json().await.unwrap();
    let m = &models["models"][0];
    assert_eq!(m["name"], "vit-gpt2-tiny");
    assert_eq!(m["languages"], serde_json::json!(["en"]));
    assert_eq!(m["default_language"], "en");

    let res = s.get("/api/v1/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/captions"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/health"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/models"]["get"].is_object());
    for schema in ["CaptionResponse", "Problem", "MetadataOut", "BatchResponse"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }

    let res = s.get("/static/app.js").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_security_headers(&res);
    assert!(res.text().await.unwrap().contains("XMLHttpRequest"));
    let res = s.get("/static/app.css").await;
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));

    // Pages: Indonesian by default, English by Accept-Language, by ?lang and by the cookie.
    let res = s.get("/").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_security_headers(&res);
    assert_eq!(res.headers()["content-language"], "id");
    let html = res.text().await.unwrap();
    assert!(html.contains("<html lang=\"id\">"));
    assert!(html.contains("Buat takarir"));
    assert!(html.contains("enctype=\"multipart/form-data\""));
    assert!(html.contains("<label for=\"image\">"));
    assert!(html.contains("<script src=\"/static/app.js\" defer></script>"));
    assert_eq!(html.matches("<script").count(), 1, "no inline script");
    assert!(!html.contains("style=\""), "no inline styles");
    assert!(
        !html.contains("<img"),
        "no images without alt on the form page"
    );

    let en = s
        .client
        .get(s.url("/"))
        .header("accept-language", "en-GB,en;q=0.9")
        .fetch_text()
        .await;
    assert!(en.contains("<html lang=\"en\">"));
    assert!(en.contains("Caption an image"));

    for path in ["/privacy", "/contact"] {
        let id = s.get(path).await.text().await.unwrap();
        let en = s
            .get(&format!("{path}?lang=en"))
            .await
            .text()
            .await
            .unwrap();
        assert_ne!(id, en);
        assert!(id.contains("<html lang=\"id\">"));
        assert!(en.contains("<html lang=\"en\">"));
    }
    let privacy = s.get("/privacy").await.text().await.unwrap();
    use takarir_server::policy::{PRIVACY_DATE, PRIVACY_VERSION};
    assert!(privacy.contains(&format!("Versi {PRIVACY_VERSION}")));
    assert!(privacy.contains("tidak disimpan"));
    assert!(privacy.contains(PRIVACY_DATE));
    // A trained model is replaced at the next version, not untrained; no schedule set here.
    assert!(privacy.contains("<strong>diganti pada versi berikutnya</strong>"));
    assert!(privacy.contains("belum menetapkan jadwal tetap"));
    let privacy_en = s.get("/privacy?lang=en").await.text().await.unwrap();
    assert!(privacy_en.contains("not stored"));
    assert!(privacy_en.contains("<strong>replaced at the next version</strong>"));
    assert!(privacy_en.contains("has not set a fixed schedule"));

    // The switch link sets a cookie and goes back; a foreign `next` is not followed.
    let res = s.get("/lang/en?next=%2Fprivacy").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/privacy");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("lang=en;"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"));
    let res = s.get("/lang/id?next=//evil.example").await;
    assert_eq!(res.headers()["location"], "/");
    let with_cookie = s
        .client
        .get(s.url("/contact"))
        .header("cookie", "lang=en")
        .go()
        .await;
    assert_eq!(with_cookie.headers()["content-language"], "en");

    let res = s.get("/nope").await;
    assert_security_headers(&res);
    problem(res, 404, "not_found").await;
    let res = s.client.delete(s.url("/api/v1/health")).go().await;
    problem(res, 405, "method_not_allowed").await;

    let metrics = s.get("/metrics").await;
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    s.stop().await;
}

#[tokio::test]
async fn privacy_page_states_the_model_update_schedule() {
    let s = start(|c| c.model_update_days = 90).await;
    let id = s.get("/privacy").await.text().await.unwrap();
    assert!(
        id.contains("mengganti model paling lambat setiap 90 hari"),
        "{id}"
    );
    assert!(!id.contains("belum menetapkan jadwal tetap"));
    let en = s.get("/privacy?lang=en").await.text().await.unwrap();
    assert!(en.contains("replaces the model at least every 90 days"));
    s.stop().await;
}

#[tokio::test]
async fn captions_a_jpeg_over_multipart() {
    let s = start(|_| {}).await;
    let res = post_image(&s, "", sample("chelsea.jpg"), "chelsea.jpg", "image/jpeg").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_security_headers(&res);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    let caps = body["captions"].as_array().unwrap();
    assert_eq!(caps.len(), 1);
    assert!(!caps[0]["text"].as_str().unwrap().is_empty());
    assert_eq!(caps[0]["lang"], "en");
    assert!(caps[0]["score"].is_number());
    assert_eq!(body["model"]["name"], "vit-gpt2-tiny");
    assert!(body["model"]["version"].is_string());
    assert_eq!(
        body["image"],
        serde_json::json!({"width": 448, "height": 296, "format": "jpeg"})
    );
    assert_eq!(body["metadata"]["gps"], "absent");
    assert!(body["metadata"]["camera"].is_null());
    assert!(body["processing_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(body["request_id"], rid.as_str());
    s.stop().await;
}

#[tokio::test]
async fn raw_body_1x1_png() {
    let s = start(|_| {}).await;
    let res = s
        .client
        .post(s.url("/api/v1/captions?style=short"))
        .header("content-type", "image/png")
        .body(png_1x1())
        .go()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["image"],
        serde_json::json!({"width": 1, "height": 1, "format": "png"})
    );
    let text = body["captions"][0]["text"].as_str().unwrap();
    assert!(text.split_whitespace().count() <= 12, "short style: {text}");
    s.stop().await;
}

#[tokio::test]
async fn exif_rotated_photo_is_reported_upright() {
    let s = start(|_| {}).await;
    let body: Value = post_image(
        &s,
        "",
        sample("chelsea-exif-rotated.jpg"),
        "r.jpg",
        "image/jpeg",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["image"]["width"], 448);
    assert_eq!(body["image"]["height"], 296);
    assert_eq!(body["metadata"]["orientation"], 6);
    s.stop().await;
}

#[tokio::test]
async fn gps_is_reported_present_but_never_returned() {
    let s = start(|_| {}).await;
    let res = post_image(&s, "", jpeg_with_gps(), "gps.jpg", "image/jpeg").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["metadata"]["gps"], "present");
    assert_eq!(body["metadata"]["camera"], "TakarirCam");
    for needle in [
        "98.765",
        "98765",
        "24.681",
        "24681",
        // The coordinates in decimal degrees (41°23'98.765", 131°57'24.681"). A bare "131"
        // also matched a timing of 131 ms on a loaded machine.
        "41.41",
        "131.95",
        "GPS",
        "Latitude",
        "Longitude",
    ] {
        assert!(!text.contains(needle), "{needle} leaked in {text}");
    }
    // The no-JS page warns about the location without showing it.
    let form = Form::new().part(
        "image",
        Part::bytes(jpeg_with_gps())
            .file_name("gps.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let html = s.client.post(s.url("/")).multipart(form).fetch_text().await;
    assert!(html.contains("memuat lokasi GPS"));
    assert!(!html.contains("98.765") && !html.contains("98765"));
    s.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_localised_problems() {
    let s = start(|_| {}).await;

    // A ZIP file sent as an image, over multipart and as a raw body.
    let res = post_image(&s, "", zip_bytes(), "photo.jpg", "image/jpeg").await;
    let id = problem(res, 415, "unsupported_media_type").await;
    let res = s
        .client
        .post(s.url("/api/v1/captions"))
        .header("content-type", "application/zip")
        .header("accept-language", "en")
        .body(zip_bytes())
        .go()
        .await;
    let en = problem(res, 415, "unsupported_media_type").await;
    assert_ne!(id["detail"], en["detail"], "messages differ by language");
    assert_eq!(id["title"], "Jenis berkas tidak didukung");
    assert_eq!(en["title"], "Unsupported file type");

    // A 30000×30000 PNG header is refused before decoding.
    let started = std::time::Instant::now();
    let res = post_image(&s, "", png_header(30000, 30000), "big.png", "image/png").await;
    let body = problem(res, 413, "image_too_large").await;
    assert!(body["detail"].as_str().unwrap().contains("30000"));
    assert!(started.elapsed().as_secs() < 5);

    // A truncated JPEG.
    let jpeg = sample("chelsea.jpg");
    let res = post_image(
        &s,
        "?lang=en",
        jpeg[..jpeg.len() / 3].to_vec(),
        "cut.jpg",
        "image/jpeg",
    )
    .await;
    // lang=en is also the message language.
    let body = problem(res, 422, "corrupt_image").await;
    assert_eq!(body["title"], "Corrupt image");

    // An empty file and no file.
    let res = post_image(&s, "", Vec::new(), "empty.jpg", "image/jpeg").await;
    problem(res, 422, "empty_image").await;
    let res = s.client.post(s.url("/api/v1/captions")).go().await;
    problem(res, 400, "no_image").await;

    // Bad options, in both languages.
    let res = post_image(&s, "?alternatives=9", png_1x1(), "a.png", "image/png").await;
    let id = problem(res, 400, "invalid_option").await;
    assert!(id["detail"].as_str().unwrap().contains("tidak valid"));
    let res = s
        .client
        .post(s.url("/api/v1/captions?style=poetic"))
        .header("accept-language", "en-US")
        .header("content-type", "image/png")
        .body(png_1x1())
        .go()
        .await;
    let en = problem(res, 400, "invalid_option").await;
    assert!(en["detail"].as_str().unwrap().contains("is invalid"));

    // The fixture model captions in English only.
    let res = post_image(&s, "?lang=id", png_1x1(), "a.png", "image/png").await;
    let body = problem(res, 422, "language_not_supported").await;
    assert_eq!(body["title"], "Bahasa tidak didukung oleh model ini");
    let res = s
        .client
        .post(s.url("/api/v1/captions?lang=both"))
        .header("accept-language", "en")
        .header("content-type", "image/png")
        .body(png_1x1())
        .go()
        .await;
    let body = problem(res, 422, "language_not_supported").await;
    assert_eq!(body["title"], "Language not supported by this model");
    assert!(body["detail"].as_str().unwrap().contains("en"));

    // The server is still fine.
    let res = post_image(&s, "", png_1x1(), "a.png", "image/png").await;
    assert_eq!(res.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn uploads_over_the_body_limit_get_413() {
    let s = start(|c| {
        c.max_upload_bytes = 10_000;
        c.max_files = 1;
    })
    .await;
    let form = Form::new()
        .part("image", Part::bytes(png_1x1()).file_name("a.png"))
        .part("image", Part::bytes(png_1x1()).file_name("b.png"));
    let res = s
        .client
        .post(s.url("/api/v1/captions"))
        .multipart(form)
        .go()
        .await;
    let body = problem(res, 400, "too_many_files").await;
    assert!(body["detail"].as_str().unwrap().contains('1'));
    let res = post_image(&s, "", sample("chelsea.jpg"), "c.jpg", "image/jpeg").await;
    problem(res, 413, "payload_too_large").await;
    let res = s
        .client
        .post(s.url("/api/v1/captions"))
        .header("content-type", "image/jpeg")
        .body(sample("chelsea.jpg"))
        .go()
        .await;
    problem(res, 413, "payload_too_large").await;
    s.stop().await;
}

#[tokio::test]
async fn options_alternatives_style_and_batches() {
    let s = start(|_| {}).await;
    let body: Value = post_image(
        &s,
        "?alternatives=3&style=detailed&gender_neutral=true&lang=en",
        sample("coffee.jpg"),
        "c.jpg",
        "image/jpeg",
    )
    .await
    .json()
    .await
    .unwrap();
    let caps = body["captions"].as_array().unwrap();
    assert!((1..=3).contains(&caps.len()), "{body}");
    let texts: std::collections::HashSet<_> = caps
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(texts.len(), caps.len(), "alternatives are distinct");
    let scores: Vec<f64> = caps.iter().map(|c| c["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );

    // Several images in one request: per-image results, a bad one does not sink the others.
    let form = Form::new()
        .part(
            "image",
            Part::bytes(sample("rocket.jpg")).file_name("rocket.jpg"),
        )
        .part("image", Part::bytes(zip_bytes()).file_name("x.zip"))
        .part("image", Part::bytes(png_1x1()).file_name("dot.png"))
        .text("style", "short");
    let res = s
        .client
        .post(s.url("/api/v1/captions"))
        .multipart(form)
        .go()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["filename"], "rocket.jpg");
    assert_eq!(results[0]["image"]["width"], 512);
    assert_eq!(results[1]["error"]["code"], "unsupported_media_type");
    assert_eq!(results[2]["image"]["height"], 1);
    for r in [&results[0], &results[2]] {
        let t = r["captions"][0]["text"].as_str().unwrap();
        assert!(t.split_whitespace().count() <= 12);
    }
    s.stop().await;
}

#[tokio::test]
async fn no_js_form_flow_renders_captions() {
    let s = start(|_| {}).await;
    let form = Form::new()
        .part("image", common::jpeg_part("astronaut.jpg", "astronaut.jpg"))
        .text("lang", "en")
        .text("style", "short")
        .text("alternatives", "2")
        .text("gender_neutral", "true");
    let res = s.client.post(s.url("/")).multipart(form).go().await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_security_headers(&res);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("<html lang=\"id\">"));
    assert!(html.contains("astronaut.jpg"));
    assert!(html.contains("class=\"caption\""), "{html}");
    assert!(html.contains("512 × 512 (jpeg)"));
    // The chosen settings stay selected.
    assert!(html.contains("<option value=\"short\" selected>"));
    assert!(html.contains("value=\"2\""));
    assert!(html.contains("id=\"gender_neutral\" name=\"gender_neutral\" value=\"true\" checked"));

    // Errors come back as the page, with the status, in the interface language.
    let form = Form::new().part("image", Part::bytes(zip_bytes()).file_name("a.zip"));
    let res = s
        .client
        .post(s.url("/"))
        .header("cookie", "lang=en")
        .multipart(form)
        .go()
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "per-image errors are shown in the list"
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("This file is not a supported image"));
    let form = Form::new().text("style", "short");
    let res = s.client.post(s.url("/")).multipart(form).go().await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("Tidak ada gambar"));
    assert!(html.contains("role=\"alert\""));
    s.stop().await;
}

#[tokio::test]
async fn rate_limit_gives_429_with_retry_after() {
    let s = start(|c| c.rate_limit_per_minute = 2).await;
    for _ in 0..2 {
        let res = post_image(&s, "", png_1x1(), "a.png", "image/png").await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = s
        .client
        .post(s.url("/api/v1/captions"))
        .header("accept-language", "en")
        .header("content-type", "image/png")
        .body(png_1x1())
        .go()
        .await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body = problem(res, 429, "rate_limited").await;
    assert_eq!(body["title"], "Too many requests");
    // The page form is limited too, and answers in HTML.
    let form = Form::new().part("image", Part::bytes(png_1x1()).file_name("a.png"));
    let res = s.client.post(s.url("/")).multipart(form).go().await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Terlalu banyak permintaan"));
    // Behind no trusted proxy, X-Forwarded-For does not give a new bucket.
    let res = s
        .client
        .post(s.url("/api/v1/captions"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("content-type", "image/png")
        .body(png_1x1())
        .go()
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Reading routes are not limited.
    assert_eq!(s.get("/api/v1/health").await.status(), StatusCode::OK);
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("takarir_rate_limited_total 3"),
        "{metrics}"
    );
    s.stop().await;

    // Behind a trusted proxy, each forwarded client has its own bucket.
    let s = start(|c| {
        c.rate_limit_per_minute = 1;
        c.trust_forwarded_for = true;
    })
    .await;
    let send = |xff: &'static str| {
        s.client
            .post(s.url("/api/v1/captions"))
            .header("x-forwarded-for", xff)
            .header("content-type", "image/png")
            .body(png_1x1())
            .send()
    };
    assert_eq!(
        send("198.51.100.1, 203.0.113.1").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        send("203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send("203.0.113.2").await.unwrap().status(), StatusCode::OK);
    s.stop().await;
}

/// A refusal given before the body is read (here 429) must reach a client that is still
/// sending a large upload, as a response rather than a broken pipe, on every upload route.
#[tokio::test]
async fn refusals_reach_clients_still_uploading() {
    let s = start(|c| c.rate_limit_per_minute = 1).await;
    let ok = post_image(&s, "", png_1x1(), "a.png", "image/png").await;
    assert_eq!(ok.status(), StatusCode::OK);
    // Larger than loopback socket buffers, so the client is mid-upload when refused.
    let big = vec![0u8; 8 << 20];
    let raw = s
        .client
        .post(s.url("/api/v1/captions"))
        .header("accept-language", "en")
        .header("content-type", "image/png")
        .body(big.clone())
        .send()
        .await
        .expect("the refusal arrives as a response");
    problem(raw, 429, "rate_limited").await;
    for path in ["/", "/api/v1/jobs"] {
        let form = Form::new().part("image", Part::bytes(big.clone()).file_name("a.png"));
        let res = s
            .client
            .post(s.url(path))
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: the refusal arrives as a response: {e}"));
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(res.headers().contains_key("retry-after"), "{path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_gives_503_never_a_crash() {
    let s = Arc::new(start(|c| c.queue_capacity = 1).await);
    let mut saw_busy = false;
    for _round in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let form = Form::new()
                    .part(
                        "image",
                        Part::bytes(sample("rocket.jpg")).file_name("a.jpg"),
                    )
                    .part(
                        "image",
                        Part::bytes(sample("coffee.jpg")).file_name("b.jpg"),
                    )
                    .text("style", "detailed")
                    .text("alternatives", "5");
                let res = s
                    .client
                    .post(s.url("/api/v1/captions"))
                    .header("accept-language", "en")
                    .multipart(form)
                    .go()
                    .await;
                let status = res.status().as_u16();
                let retry = res.headers().get("retry-after").cloned();
                let body: Value = res.json().await.unwrap();
                (status, retry, body)
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (status, retry, body) = t.await.unwrap();
            match status {
                200 => ok += 1,
                503 => {
                    saw_busy = true;
                    assert_eq!(body["code"], "busy");
                    assert_eq!(body["title"], "Server busy");
                    assert!(retry.is_some());
                }
                other => panic!("unexpected status {other}: {body}"),
            }
        }
        assert!(ok >= 1, "at least one request got through");
        if saw_busy {
            break;
        }
    }
    assert!(saw_busy, "a full queue answers 503");
    let health: Value = s.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["queue_in_use"], 0);
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("takarir_busy_total"));
    assert!(metrics.contains("takarir_inference_queue_depth 0"));
    Arc::try_unwrap(s)
        .ok()
        .expect("all clients done")
        .stop()
        .await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let s = start(|_| {}).await;
    assert_eq!(
        post_image(&s, "", png_1x1(), "a.png", "image/png")
            .await
            .status(),
        StatusCode::OK
    );
    let _ = post_image(&s, "", zip_bytes(), "a.zip", "application/zip").await;
    let _ = s.get("/no/such/path/12345").await;
    let text = s.get("/metrics").await.text().await.unwrap();
    for needle in [
        "takarir_http_requests_total{method=\"POST\",route=\"/api/v1/captions\",status=\"200\"} 1",
        "takarir_http_requests_total{method=\"POST\",route=\"/api/v1/captions\",status=\"415\"} 1",
        "route=\"unmatched\",status=\"404\"",
        "takarir_http_request_duration_seconds_bucket{route=\"/api/v1/captions\",status=\"200\"",
        "takarir_inference_duration_seconds_count 2",
        "takarir_inference_queue_depth 0",
        "takarir_inference_queue_capacity 4",
        "takarir_model_load_seconds",
        "takarir_images_total{outcome=\"captioned\"} 1",
        "takarir_images_total{outcome=\"unsupported_media_type\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(!text.contains("12345"), "raw paths are not labels");
    assert!(!text.contains("127.0.0.1"), "no client addresses");
    s.stop().await;
}

/// A CORS preflight of `path` from `origin`, asking to POST with an API key.
async fn preflight(s: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    s.client
        .request(reqwest::Method::OPTIONS, s.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .go()
        .await
}

/// `cors_allowed_origins`: a page on an allowed origin may call the API with an API key (preflight and
/// the call itself); another origin, the web pages, and a server with no origins configured
/// get no CORS header at all.
#[tokio::test]
async fn cors_allows_the_configured_origins_on_the_api_only() {
    const CMS: &str = "https://cms.contoh.id";
    let s =
        start(|c| c.cors_allowed_origins = vec![CMS.into(), "http://127.0.0.1:3000".into()]).await;
    let r = preflight(&s, "/api/v1/captions", CMS).await;
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], CMS);
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = h["access-control-allow-headers"].to_str().unwrap();
    assert!(headers.contains("authorization"), "{headers}");
    assert!(
        !h.contains_key("access-control-allow-credentials"),
        "never with the session cookie"
    );
    // The call itself: the caption, readable by the page, with its request id.
    let form = Form::new().part(
        "image",
        Part::bytes(png_1x1())
            .file_name("a.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let r = s
        .client
        .post(s.url("/api/v1/captions"))
        .header("origin", CMS)
        .multipart(form)
        .go()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], CMS);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    // Another origin: answered, but nothing that lets its page read the API.
    for other in ["https://jahat.contoh.id", "https://cms.contoh.id.jahat.id"] {
        let r = preflight(&s, "/api/v1/captions", other).await;
        assert!(
            !r.headers().contains_key("access-control-allow-origin"),
            "{other}: {:?}",
            r.headers()
        );
        let r = s
            .client
            .get(s.url("/api/v1/health"))
            .header("origin", other)
            .go()
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(!r.headers().contains_key("access-control-allow-origin"));
    }
    // The web pages stay same-origin, even for an allowed origin.
    for path in ["/", "/account/login"] {
        let r = preflight(&s, path, CMS).await;
        assert!(
            !r.headers().contains_key("access-control-allow-origin"),
            "{path}"
        );
    }
    s.stop().await;

    // Not configured (the default): no CORS header, the preflight is an ordinary 405.
    let s = start(|_| {}).await;
    let r = preflight(&s, "/api/v1/captions", CMS).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    s.stop().await;
}

/// Makes a CA and a `localhost`/127.0.0.1 certificate signed by it with the `openssl` tool.
fn make_certs(dir: &std::path::Path) -> bool {
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Takarir Test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ])
}

#[tokio::test]
async fn https_with_hsts_when_a_certificate_is_configured() {
    let dir = std::env::temp_dir().join(format!("takarir-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // No silent skip: without the openssl tool this test fails and says why.
    assert!(make_certs(&dir), "the openssl command-line tool is needed to make a test certificate (apt-get install openssl)");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let s = start(|c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let client = Client::builder()
        .add_root_certificate(ca)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let res = client
        .get(format!("https://localhost:{port}/api/v1/health"))
        .send()
        .await
        .expect("TLS handshake with the configured certificate");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let form = Form::new().part("image", Part::bytes(png_1x1()).file_name("a.png"));
    let res = client
        .post(format!("https://localhost:{port}/api/v1/captions"))
        .multipart(form)
        .go()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = client
        .get(format!("https://localhost:{port}/lang/en"))
        .go()
        .await;
    assert!(res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
    // Plain HTTP on the TLS port gets no answer.
    let plain = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.client.get(s.url("/api/v1/health")).send(),
    )
    .await
    .expect("refused promptly");
    assert!(plain.is_err());
    s.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Opens a connection that sends headers and part of a body, then stalls.
async fn stalled_upload(base: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(
        format!(
            "POST /api/v1/captions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/png\r\n\
             Content-Length: 100000\r\nAccept-Language: en\r\n\r\nPNG"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_uploads_time_out_and_are_bounded() {
    use tokio::io::AsyncReadExt;
    let s = start(|c| {
        c.upload_timeout_seconds = 2;
        c.max_concurrent_uploads = 1;
    })
    .await;
    let mut stalled = stalled_upload(&s.base).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The only upload place is taken: another upload is refused at once.
    let res = post_image(&s, "", png_1x1(), "a.png", "image/png").await;
    assert!(res.headers().contains_key("retry-after"));
    problem(res, 503, "busy").await;
    // The stalled one gets 408 once its time is up.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stalled.read(&mut buf))
        .await
        .expect("answered within the timeout")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(head.contains("upload_timeout"), "{head}");
    drop(stalled);
    // And the place is free again.
    let res = post_image(&s, "", png_1x1(), "a.png", "image/png").await;
    assert_eq!(res.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let s = start(|_| {}).await;
    let client = s.client.clone();
    let url = s.url("/api/v1/captions?style=detailed&alternatives=5");
    let request = tokio::spawn(async move {
        let form = Form::new()
            .part(
                "image",
                Part::bytes(sample("rocket.jpg")).file_name("a.jpg"),
            )
            .part(
                "image",
                Part::bytes(sample("astronaut.jpg")).file_name("b.jpg"),
            );
        client
            .post(url)
            .multipart(form)
            .send()
            .await
            .map(|r| r.status())
    });
    // Wait (boundedly) until the request is in inference, then ask the server to stop.
    for _ in 0..500 {
        let h: Value = s.get("/api/v1/health").await.json().await.unwrap();
        if h["queue_in_use"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    s.stop().await;
    assert_eq!(request.await.unwrap().unwrap(), StatusCode::OK);
}

/// `/privacy` states this deployment as it runs: the policy version and date of its policy
/// file, each retention period from its configuration (change one, the page changes), its
/// processors and where they are, and the controller and data-protection contact; in
/// Indonesian and in English.
#[tokio::test]
async fn privacy_page_is_rendered_from_the_running_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("versions.toml");
    std::fs::write(
        &policy,
        "[[version]]\nversion = \"2.1\"\ndate = \"2026-11-30\"\nsignificant = false\nsummary_id = \"a\"\nsummary_en = \"a\"\n\
         [[version]]\nversion = \"3.0\"\ndate = \"2027-02-01\"\nsignificant = true\nsummary_id = \"b\"\nsummary_en = \"b\"\n",
    )
    .unwrap();
    let mut pages = Vec::new();
    for days in [30u64, 45] {
        let p = policy.clone();
        let s = start(move |c| {
            c.policy_file = Some(p);
            c.history_retention_days = days;
            c.job_result_days = 5;
            c.backup_retention_days = 21;
            c.smtp_url = Some("smtps://relay.mail-host.test:465".into());
            c.object_store_url = Some(
                "s3://foto-bucket/takarir?endpoint=https://s3.objects.test&region=ap-southeast-3"
                    .into(),
            );
            c.controller = Some("PT Takarir Nusantara, Jl. Merdeka 1, Jakarta".into());
            c.dpo_email = Some("dpo@takarir-nusantara.test".into());
        })
        .await;
        for lang in ["id", "en"] {
            let html = s
                .get(&format!("/privacy?lang={lang}"))
                .await
                .text()
                .await
                .unwrap();
            pages.push((days, lang, html));
        }
        s.stop().await;
    }
    for (days, lang, html) in &pages {
        let (version, history, jobs, backups) = if *lang == "id" {
            (
                "Versi 3.0",
                format!("{days} hari, lalu dihapus"),
                "5 hari",
                "Cadangan: 21 hari",
            )
        } else {
            (
                "Version 3.0",
                format!("{days} days, then deleted"),
                "5 days",
                "Backups: 21 days",
            )
        };
        for needle in [
            version,
            "2027-02-01",
            &history,
            jobs,
            backups,
            "relay.mail-host.test",
            "foto-bucket",
            "ap-southeast-3",
            "s3.objects.test",
            "PT Takarir Nusantara, Jl. Merdeka 1, Jakarta",
            "dpo@takarir-nusantara.test",
            "3 × 24",
        ] {
            assert!(
                html.contains(needle),
                "{lang}, {days} days: {needle:?} missing"
            );
        }
        let other = if *days == 30 { 45 } else { 30 };
        let stale = if *lang == "id" {
            format!("{other} hari, lalu dihapus")
        } else {
            format!("{other} days, then deleted")
        };
        assert!(
            !html.contains(&stale),
            "{lang}: {stale:?} from the other configuration"
        );
        assert!(!html.contains("2.1,"), "{lang}: the old version shown");
    }
}

/// A photo with two rendered Indonesian phrases, "JALAN DITUTUP" and "Air Minum Gratis"
/// (`fixtures/text-parity/12.webp`; where each was drawn is in its `expected.json`).
fn sign_photo() -> Vec<u8> {
    std::fs::read(common::root().join("fixtures/text-parity/12.webp")).unwrap()
}

/// The rendered phrases of the sign photo: text and box `[x0, y0, x1, y1]`.
fn sign_phrases() -> Vec<(String, [f64; 4])> {
    let path = common::root().join("fixtures/text-parity/expected.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    fixture["images"]["12.webp"]["phrases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let b: Vec<f64> = p["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            (
                p["text"].as_str().unwrap().to_string(),
                [b[0], b[1], b[2], b[3]],
            )
        })
        .collect()
}

/// Asserts that `text` (a response's `text`) has each rendered phrase as a line whose polygon
/// lies where the phrase was drawn, in pixels of an image `width`×`height`.
fn assert_reads_sign(text: &Value, width: f64, height: f64) {
    let lines = text["lines"].as_array().expect("lines");
    for (phrase, [x0, y0, x1, y1]) in sign_phrases() {
        let line = lines
            .iter()
            .find(|l| l["text"].as_str().unwrap().eq_ignore_ascii_case(&phrase))
            .unwrap_or_else(|| panic!("no line reads {phrase:?}: {text}"));
        let c = line["confidence"].as_f64().unwrap();
        assert!(c > 0.5 && c <= 1.0, "{line}");
        let pts = line["polygon"].as_array().unwrap();
        assert_eq!(pts.len(), 4, "{line}");
        let (mut cx, mut cy) = (0.0, 0.0);
        for p in pts {
            let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
            assert!(
                (0.0..=width).contains(&x) && (0.0..=height).contains(&y),
                "{line}"
            );
            cx += x / 4.0;
            cy += y / 4.0;
        }
        assert!(
            (x0..=x1).contains(&cx) && (y0..=y1).contains(&cy),
            "{phrase:?} read at ({cx}, {cy}), drawn in {:?}",
            [x0, y0, x1, y1]
        );
        assert!(text["full_text"].as_str().unwrap().contains(&phrase));
    }
    assert_eq!(text["layout"], "photo");
}

/// The quoted part of a caption (between “ and ”), if any.
fn quote_of(caption: &str) -> Option<&str> {
    let start = caption.find('“')? + '“'.len_utf8();
    let end = caption[start..].find('”')? + start;
    Some(&caption[start..end])
}

#[tokio::test]
async fn text_feature_reads_the_photo_and_the_caption_quotes_it() {
    let s = start(|_| {}).await;
    // Without `text` nothing is read: no `text` field, no quote, no text model loaded.
    let res = post_image(&s, "", sign_photo(), "sign.webp", "image/webp").await;
    assert_eq!(res.status(), StatusCode::OK);
    let plain: Value = res.json().await.unwrap();
    assert!(plain.get("text").is_none(), "{plain}");
    let plain_caption = plain["captions"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(quote_of(&plain_caption), None, "{plain_caption}");
    assert!(!s.state.text_reader().is_loaded());

    let res = post_image(
        &s,
        "?features=caption,text",
        sign_photo(),
        "sign.webp",
        "image/webp",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let (w, h) = (
        body["image"]["width"].as_f64().unwrap(),
        body["image"]["height"].as_f64().unwrap(),
    );
    assert_reads_sign(&body["text"], w, h);
    let caption = body["captions"][0]["text"].as_str().unwrap();
    assert_eq!(body["captions"][0]["lang"], "en");
    let quote = quote_of(caption).unwrap_or_else(|| panic!("no quote in {caption:?}"));
    assert!(quote.contains("JALAN DITUTUP"), "{caption}");
    assert!(
        caption.contains("reads “") || caption.contains("with the text “"),
        "{caption}"
    );

    // Text alone: no captions, the text all the same.
    let res = post_image(
        &s,
        "?features=text",
        sign_photo(),
        "sign.webp",
        "image/webp",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["captions"], serde_json::json!([]));
    assert_reads_sign(&body["text"], w, h);

    // A batch: each image its own text; a photo without writing reads no line.
    let form = Form::new()
        .part("image", common::jpeg_part("chelsea.jpg", "cat.jpg"))
        .part(
            "image",
            Part::bytes(sign_photo())
                .file_name("sign.webp")
                .mime_str("image/webp")
                .unwrap(),
        )
        .text("features", "caption,text");
    let res = s
        .client
        .post(s.url("/api/v1/captions"))
        .multipart(form)
        .go()
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["text"]["lines"], serde_json::json!([]));
    assert_eq!(results[0]["text"]["full_text"], "");
    let cat_caption = results[0]["captions"][0]["text"].as_str().unwrap();
    assert_eq!(quote_of(cat_caption), None, "{cat_caption}");
    assert_reads_sign(&results[1]["text"], w, h);

    // The page asks for text, and without JavaScript lists the lines read.
    let html = s.get("/").await.text().await.unwrap();
    assert!(
        html.contains("name=\"features\" value=\"caption,text\""),
        "{html}"
    );
    let form = Form::new()
        .part(
            "image",
            Part::bytes(sign_photo())
                .file_name("sign.webp")
                .mime_str("image/webp")
                .unwrap(),
        )
        .text("features", "caption,text");
    let res = s.client.post(s.url("/")).multipart(form).go().await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("Teks terbaca"), "{html}");
    assert!(html.contains("<li>JALAN DITUTUP ("), "{html}");
    assert!(html.contains("“JALAN DITUTUP"), "{html}");

    // The OpenAPI document describes the new output.
    let doc: Value = s.get("/api/v1/openapi.json").await.json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["TextOut"]["properties"]["full_text"].is_object());
    assert!(schemas["TextLineOut"]["properties"]["polygon"].is_object());
    assert!(schemas["Feature"].to_string().contains("\"text\""));
    s.stop().await;
}

#[tokio::test]
async fn a_missing_text_model_is_a_clear_error_and_captions_still_work() {
    let s = start(|c| c.text_model = Some("/nonexistent/takarir-text".into())).await;
    let res = post_image(
        &s,
        "?features=caption,text",
        sign_photo(),
        "sign.webp",
        "image/webp",
    )
    .await;
    let body = problem(res, 503, "text_unavailable").await;
    assert!(
        body["detail"].as_str().unwrap().contains("tidak tersedia"),
        "{body}"
    );
    let res = post_image(
        &s,
        "?features=caption,text&lang=en",
        sign_photo(),
        "sign.webp",
        "image/webp",
    )
    .await;
    let body = problem(res, 503, "text_unavailable").await;
    assert!(
        body["detail"].as_str().unwrap().contains("not available"),
        "{body}"
    );
    // Captions without text are untouched, and the page does not ask for text.
    let res = post_image(&s, "", sign_photo(), "sign.webp", "image/webp").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = s.get("/").await.text().await.unwrap();
    assert!(
        html.contains("name=\"features\" value=\"caption\""),
        "{html}"
    );
    s.stop().await;
}

/// The shipped model (Indonesian and English) quotes the sign in both languages.
#[tokio::test]
async fn shipped_model_quotes_the_sign_in_indonesian_and_english() {
    let mut o = takarir_engine::CaptionerOptions::new(
        common::root()
            .join("models/default")
            .to_string_lossy()
            .into_owned(),
    );
    o.threads = 1;
    let captioner = Arc::new(takarir_engine::Captioner::load(&o).expect("models/default loads"));
    let s = TestServer::start_with(Backend::from_env(), captioner, |_| {}).await;
    let res = post_image(
        &s,
        "?lang=both&features=caption,text",
        sign_photo(),
        "sign.webp",
        "image/webp",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let caps = body["captions"].as_array().unwrap();
    let first = |lang: &str| {
        caps.iter()
            .find(|c| c["lang"] == lang)
            .and_then(|c| c["text"].as_str())
            .unwrap_or_else(|| panic!("no {lang} caption: {body}"))
            .to_string()
    };
    let (id, en) = (first("id"), first("en"));
    for (caption, wording) in [
        (&id, ["bertuliskan “", "dengan tulisan “"]),
        (&en, ["reads “", "with the text “"]),
    ] {
        let quote = quote_of(caption).unwrap_or_else(|| panic!("no quote in {caption:?}"));
        assert!(quote.contains("JALAN DITUTUP"), "{caption}");
        assert!(wording.iter().any(|w| caption.contains(w)), "{caption}");
    }
    // Without `text`, the same captions quote nothing.
    let res = post_image(&s, "?lang=both", sign_photo(), "sign.webp", "image/webp").await;
    let body: Value = res.json().await.unwrap();
    for c in body["captions"].as_array().unwrap() {
        assert_eq!(quote_of(c["text"].as_str().unwrap()), None, "{c}");
    }
    s.stop().await;
}
