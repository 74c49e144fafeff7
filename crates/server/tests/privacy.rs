//! Privacy acceptance test: after good and bad uploads through the API and the no-JavaScript
//! form, the server's data directory and the process's temp directory hold no image bytes
//! (the temp directory holds nothing at all but ONNX Runtime's own session-id file), and the
//! log holds no captions, no client address, no file names and no image bytes. The account
//! error paths too (a mail relay that refuses the recipient and quotes the address, password
//! resets, failed and throttled sign-ins, duplicate sign-ups, bad tokens): no email address
//! reaches the log, the sign-in counters are salted with the deployment's secret, and they
//! are gone within seconds of their 15 minutes.
//!
//! This test binary is its own process: it points `TMPDIR` at a fresh folder before anything
//! else runs, and it installs the one global `tracing` subscriber, writing to a buffer. So it
//! holds exactly one `#[test]`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use serde_json::Value;
mod common;
use common::Go;
use common::{sample, zip_bytes, Backend, TestServer};

/// The log, as the server would write it to stderr.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A PNG with noisy pixels (so its compressed bytes are distinctive).
fn png_noise(w: u32, h: u32) -> Vec<u8> {
    let mut x = 0x2545_f491u32;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let b = x.to_le_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn part(bytes: &[u8], name: &str, mime: &str) -> Part {
    Part::bytes(bytes.to_vec())
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap()
}

/// Caption texts anywhere in a JSON answer (single or batch).
fn json_captions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(caps)) = m.get("captions") {
                for c in caps {
                    if let Some(t) = c["text"].as_str() {
                        out.push(t.to_string());
                    }
                }
            }
            m.values().for_each(|v| json_captions(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| json_captions(v, out)),
        _ => {}
    }
}

/// Caption texts on a result page (`<li lang=".." class="caption">TEXT</li>`).
fn html_captions(html: &str, out: &mut Vec<String>) {
    for piece in html.split("class=\"caption\">").skip(1) {
        let text = piece.split("</li>").next().unwrap_or("");
        let text = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&");
        out.push(text.trim().to_string());
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What must not appear: image magic numbers and 64-byte windows of each upload.
fn needles(uploads: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut n = vec![
        ("JPEG magic FF D8 FF".to_string(), vec![0xff, 0xd8, 0xff]),
        (
            "PNG magic 89 50 4E 47".to_string(),
            vec![0x89, 0x50, 0x4e, 0x47],
        ),
    ];
    for (name, bytes) in uploads {
        let len = bytes.len();
        if len < 64 {
            n.push((format!("all of {name}"), bytes.clone()));
            continue;
        }
        // A window every 512 bytes (any copy of 576 or more bytes contains one) and the end.
        for at in (0..=len - 64).step_by(512).chain([len - 64]) {
            n.push((
                format!("64 bytes of {name} at {at}"),
                bytes[at..at + 64].to_vec(),
            ));
        }
    }
    n
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            walk(&e.path(), files);
        } else {
            files.push(e.path());
        }
    }
}

/// ONNX Runtime (1.32: its bundled 1DS telemetry client) writes `$TMPDIR/.ses` when its
/// environment is created, even with telemetry off: a millisecond timestamp and a random
/// session UUID. It holds nothing from any request; it is the one file tolerated in TMPDIR.
fn is_ort_session_file(path: &Path) -> bool {
    if path.file_name().and_then(|n| n.to_str()) != Some(".ses") {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut lines = text.lines();
    let stamp_ok = lines
        .next()
        .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    let uuid_ok = lines.next().is_some_and(|l| {
        l.len() == 36
            && l.char_indices().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    });
    stamp_ok && uuid_ok && lines.next().is_none()
}

#[test]
fn uploads_leave_no_trace_on_disk_or_in_the_log() {
    // Before anything else: a fresh temp directory for this process, and a fresh data dir.
    let base = std::env::temp_dir().join(format!("takarir-privacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let tmp = base.join("tmp");
    let data = base.join("data");
    std::fs::create_dir_all(&tmp).unwrap();
    std::env::set_var("TMPDIR", &tmp);
    assert_eq!(std::env::temp_dir(), tmp);

    let log = LogBuffer::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,takarir_server=trace,takarir_engine=trace",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (uploads, captions) = rt.block_on(exercise(&data));
    drop(rt);

    // Nothing on disk.
    let needles = needles(&uploads);
    let mut files = Vec::new();
    walk(&data, &mut files);
    walk(&tmp, &mut files);
    for f in &files {
        // SQLite removes its -wal/-shm files when the last connection closes, which may happen
        // between the walk and the read: a file gone holds nothing.
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", f.display()),
        };
        for (what, n) in &needles {
            assert!(find(&bytes, n).is_none(), "{} holds {what}", f.display());
        }
    }
    let mut in_tmp = Vec::new();
    walk(&tmp, &mut in_tmp);
    in_tmp.retain(|p| !is_ort_session_file(p));
    assert!(in_tmp.is_empty(), "temp dir is not empty: {in_tmp:?}");

    // Nothing in the log.
    let log = log.0.lock().unwrap().clone();
    for (what, n) in &needles {
        assert!(find(&log, n).is_none(), "the log holds {what}");
    }
    let text = String::from_utf8_lossy(&log);
    assert!(
        text.contains("request done"),
        "the log was captured:\n{text}"
    );
    for line in text.lines() {
        // The server's own bound address is in its "listening" line; no other line may name
        // an address (every client here is 127.0.0.1).
        if !line.contains("listening") {
            assert!(
                !line.contains("127.0.0.1"),
                "the log holds a client address: {line}"
            );
        }
    }
    assert!(captions.len() >= 8, "captions collected: {captions:?}");
    for c in &captions {
        if c.chars().count() >= 4 {
            assert!(!text.contains(c.as_str()), "the log holds a caption: {c:?}");
        }
    }
    // No email address on any path: neither the one used nor its domain, nor any other.
    assert!(
        !text.contains("pv-ani") && !text.contains("mail-7c1d"),
        "{text}"
    );
    assert!(
        text.contains("account email not sent"),
        "the relay's refusal was logged (without the address):\n{text}"
    );
    for line in text.lines() {
        assert!(!line.contains('@'), "the log holds an address: {line}");
    }
    for (name, _) in &uploads {
        assert!(
            !text.contains(name.as_str()),
            "the log holds a file name: {name}"
        );
    }
    eprintln!(
        "privacy: {} file(s) scanned, {} captions and {} log lines checked",
        files.len(),
        captions.len(),
        text.lines().count()
    );
    std::fs::remove_dir_all(&base).ok();
}

/// Runs the server, sends good and bad uploads, stops it. Returns what was uploaded (by the
/// unique file name it was sent under) and every caption the server answered with.
async fn exercise(data: &Path) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    let smtp = refusing_smtp_relay().await;
    let server = TestServer::start_at(data, Backend::from_env(), |c| {
        c.max_upload_bytes = 300_000;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{smtp}"));
        // An account's failures only slow its sign-ins down; the client's limit refuses (429),
        // and is reached here before any slowing down.
        c.login_failures_per_client = 5;
    })
    .await;
    let base = server.base.clone();
    let client = Client::new();
    let api = format!("{base}/api/v1/captions");

    let coffee = sample("coffee.jpg");
    let rotated = sample("chelsea-exif-rotated.jpg");
    let rocket = sample("rocket.jpg");
    let chelsea = sample("chelsea.jpg");
    let astronaut = sample("astronaut.jpg");
    let png = png_noise(48, 40);
    let truncated = astronaut[..astronaut.len() / 2].to_vec();
    let zip = zip_bytes();
    let too_big: Vec<u8> = astronaut.iter().cycle().take(310_000).copied().collect();
    let uploads: Vec<(String, Vec<u8>)> = vec![
        ("pv-coffee-71c3.jpg".into(), coffee.clone()),
        ("pv-noise-0e95.png".into(), png.clone()),
        ("pv-truncated-5d2a.jpg".into(), truncated.clone()),
        ("pv-archive-c4f0.zip".into(), zip.clone()),
        ("pv-rotated-b81e.jpg".into(), rotated.clone()),
        ("pv-rocket-2a77.jpg".into(), rocket.clone()),
        ("pv-chelsea-9d04.jpg".into(), chelsea.clone()),
        ("pv-too-big-6e1b.jpg".into(), too_big.clone()),
    ];
    let name = |i: usize| uploads[i].0.clone();
    let mut captions = Vec::new();

    // API, multipart: a JPEG, a PNG, a truncated JPEG, a ZIP, an EXIF-rotated JPEG.
    for (i, mime, status) in [
        (0, "image/jpeg", 200),
        (1, "image/png", 200),
        (2, "image/jpeg", 422),
        (3, "application/zip", 415),
        (4, "image/jpeg", 200),
    ] {
        let form = Form::new()
            .part("image", part(&uploads[i].1, &name(i), mime))
            .text("lang", "en");
        let res = client.post(&api).multipart(form).go().await;
        assert_eq!(res.status().as_u16(), status, "{}", name(i));
        let body: Value = res.json().await.unwrap();
        json_captions(&body, &mut captions);
    }
    // API, raw bodies: a PNG, a ZIP declared as a JPEG, a truncated JPEG.
    for (bytes, mime, status) in [
        (&png, "image/png", 200),
        (&zip, "image/jpeg", 415),
        (&truncated, "image/jpeg", 422),
    ] {
        let res = client
            .post(format!("{api}?alternatives=3&style=detailed"))
            .header("content-type", mime)
            .body(bytes.clone())
            .go()
            .await;
        assert_eq!(res.status().as_u16(), status, "raw {mime}");
        let body: Value = res.json().await.unwrap();
        json_captions(&body, &mut captions);
    }
    // API, a batch with a bad file among good ones.
    let form = Form::new()
        .part("image", part(&rocket, &name(5), "image/jpeg"))
        .part("image", part(&zip, &name(3), "application/zip"))
        .part("image", part(&chelsea, &name(6), "image/jpeg"))
        .part("image", part(&rotated, &name(4), "image/jpeg"));
    let res = client.post(&api).multipart(form).go().await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["results"].as_array().unwrap().len(), 4);
    json_captions(&body, &mut captions);
    // API, too large: refused part-way through the body.
    let res = client
        .post(&api)
        .header("content-type", "image/jpeg")
        .body(too_big.clone())
        .go()
        .await;
    assert_eq!(res.status().as_u16(), 413);

    // The no-JavaScript form: several files, a bad one, and a refused one.
    let form = Form::new()
        .part("image", part(&coffee, &name(0), "image/jpeg"))
        .part("image", part(&png, &name(1), "image/png"))
        .part("image", part(&truncated, &name(2), "image/jpeg"))
        .text("lang", "en")
        .text("alternatives", "2");
    let res = client.post(format!("{base}/")).multipart(form).go().await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let before = captions.len();
    html_captions(&html, &mut captions);
    assert!(captions.len() >= before + 2, "captions on the result page");
    let form = Form::new().part("image", part(&zip, &name(3), "application/zip"));
    let page = format!("{base}/?lang=en");
    let res = client.post(page).multipart(form).go().await;
    // One file per result on the page: the bad one is a failed result, not a failed page.
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("class=\"result failed\""), "{html}");
    let form = Form::new().part("image", part(&too_big, &name(7), "image/jpeg"));
    let res = client.post(format!("{base}/")).multipart(form).go().await;
    assert_eq!(res.status().as_u16(), 413);

    account_error_paths(&server, &client).await;

    server.stop().await;
    captions.retain(|c| !c.is_empty());
    (uploads, captions)
}

/// The address the account paths use; the log must never hold it (nor its domain).
const ADDRESS: &str = "pv-ani-4f2a@mail-7c1d.example";

/// An SMTP relay on loopback that refuses every recipient, quoting the address in its answer
/// as real relays do (`550 5.1.1 <ani@...>: Recipient address rejected`). Returns its port.
async fn refusing_smtp_relay() -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = conn.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 relay.test ESMTP\r\n").await.ok();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        "250 relay.test\r\n".to_string()
                    } else if upper.starts_with("RCPT TO:") {
                        let addr = line["RCPT TO:".len()..].trim().to_string();
                        format!("550 5.1.1 {addr}: Recipient address rejected\r\n")
                    } else if upper.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.ok();
                        break;
                    } else {
                        "250 ok\r\n".to_string()
                    };
                    if w.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Drives the account paths that fail or refuse: each must leave no address in the log.
async fn account_error_paths(server: &TestServer, client: &Client) {
    let base = &server.base;
    let password = "a long enough password";
    let body = serde_json::json!({"email": ADDRESS, "password": password});
    // Sign-up: the verification email is refused by the relay.
    let res = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&body)
        .go()
        .await;
    assert_eq!(res.status().as_u16(), 201);
    // The same address again, and a malformed one.
    let res = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&body)
        .go()
        .await;
    assert!(res.status().is_client_error());
    let bad = serde_json::json!({"email": "pv-bad-91@@mail-7c1d.example", "password": password});
    let res = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&bad)
        .go()
        .await;
    assert!(res.status().is_client_error());
    // A password reset: refused by the relay too.
    let res = client
        .post(format!("{base}/api/v1/auth/password/forgot"))
        .json(&serde_json::json!({"email": ADDRESS}))
        .go()
        .await;
    assert!(res.status().is_success());
    // Wrong passwords until throttled, then a bad verification and reset token.
    let wrong = serde_json::json!({"email": ADDRESS, "password": "not the password at all"});
    let mut throttled = false;
    for _ in 0..8 {
        let res = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&wrong)
            .go()
            .await;
        throttled |= res.status().as_u16() == 429;
    }
    assert!(throttled, "sign-ins are throttled");
    for path in ["verify", "password/reset"] {
        let res = client
            .post(format!("{base}/api/v1/auth/{path}"))
            .json(&serde_json::json!({"token": "nope", "password": password}))
            .go()
            .await;
        assert!(res.status().is_client_error(), "{path}");
    }

    // The counters are salted: neither the address nor the client's address hashes to a
    // stored key without the deployment's secret (kept in the data directory).
    let salt = std::fs::read_to_string(server.data_dir().join("throttle.salt")).unwrap();
    assert_eq!(salt.trim().len(), 64);
    let unsalted = |key: &str| {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"takarir-login-v1\0");
        h.update(key.as_bytes());
        hex::encode(h.finalize())
    };
    let keys = stored_counter_keys(server.db()).await;
    assert_eq!(
        keys.len(),
        2,
        "one counter for the account, one for the client"
    );
    for plain in [format!("a:{ADDRESS}"), "c:127.0.0.1".to_string()] {
        assert!(!keys.contains(&unsalted(&plain)), "{plain} is recoverable");
    }
    // A counter whose 15 minutes have passed is gone within seconds, not at the next sweep.
    let stale = takarir_store::jobs::now_ms() - 15 * 60 * 1000 - 1;
    let sql = "UPDATE login_failures SET window_start_ms = $1";
    match server.db() {
        takarir_store::Db::Sqlite(p) => sqlx::query(sql).bind(stale).execute(p).await.map(|_| ()),
        takarir_store::Db::Postgres(p) => sqlx::query(sql).bind(stale).execute(p).await.map(|_| ()),
    }
    .unwrap();
    let swept = async {
        while !stored_counter_keys(server.db()).await.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), swept)
        .await
        .expect("stale sign-in counters are swept within 15 s");
    // Let the relay's refusals reach the log before it is read.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

async fn stored_counter_keys(db: &takarir_store::Db) -> Vec<String> {
    let sql = "SELECT key_hash FROM login_failures";
    match db {
        takarir_store::Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        takarir_store::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
    }
    .unwrap()
}
