//! Account and data-rights acceptance tests: the real server on a random port, on SQLite and
//! on a fresh database in the real PostgreSQL server that `scripts/test-services` starts, with
//! account emails delivered to the real SMTP server (aiosmtpd) it starts too and read back
//! from its maildir. Without those services these tests fail; they are never skipped.

//!
//! One test binary, a module per feature: `identity` (sign-in, sessions, passwords, keys),
//! `data` (history, training, exports, erasure, jobs) and `pages` (web forms, policy notices,
//! admin); the shared helpers are here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
#[path = "../common/mod.rs"]
mod common;
use common::Go;
use common::{sample, wait_done, Backend, TestServer};
use takarir_server::{AppState, Server, ServerConfig, Storage};
use takarir_store::test_support::{put_stored_bytes, stored_bytes};
use takarir_store::users::{NewUser, Role, UserId};
use takarir_store::Db;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run these tests through scripts/test or `scripts/test-services cargo test -p takarir-server`")
    })
}

/// A unique email address for this test run.
fn email(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}.{}.{}.{}@contoh.id",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

const PASSWORD: &str = "kuda-lari-kencang-42";

/// A test server with account emails going to the SMTP server of `scripts/test-services`.
struct Env(TestServer);

impl std::ops::Deref for Env {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.0
    }
}

impl Env {
    async fn start(postgres: bool, edit: impl FnOnce(&mut ServerConfig)) -> Env {
        let smtp = format!("smtp://127.0.0.1:{}", env("TAKARIR_TEST_SMTP_PORT"));
        Env(TestServer::start(Backend::postgres_if(postgres), |c| {
            c.smtp_url = Some(smtp);
            edit(c)
        })
        .await)
    }

    async fn finish(self) {
        self.0.stop().await;
    }

    /// An admin account, made the way the command line does (never by sign-up), signed in.
    async fn admin(&self, addr: &str) -> Who {
        let hash = takarir_server::service::accounts::auth::hash_password(PASSWORD).await;
        let (email, password_hash) = (addr, hash.unwrap());
        let role = Role::Admin;
        let new = NewUser {
            email,
            password_hash: &password_hash,
            role,
        };
        self.db().users().create(new).await.unwrap();
        Who::from_login(self.login(addr, PASSWORD, None).await).await
    }

    /// A JSON call, optionally as a session (cookie + CSRF header) or with an API key.
    async fn call(
        &self,
        method: Method,
        path: &str,
        who: &Who,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut r = self.client.request(method, self.url(path));
        r = who.apply(r);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.go().await
    }

    /// A GET as `who`, its body as JSON.
    async fn get_json(&self, path: &str, who: &Who) -> Value {
        self.call(Method::GET, path, who, None)
            .await
            .json()
            .await
            .unwrap()
    }

    async fn register(&self, email: &str) -> Who {
        let res = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                &Who::Nobody,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        Who::from_login(res).await
    }

    async fn login(&self, email: &str, password: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut r = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}));
        if let Some(c) = cookie {
            r = r.header("cookie", format!("takarir_session={c}"));
        }
        r.go().await
    }

    async fn caption(&self, who: &Who) -> reqwest::Response {
        self.caption_file(who, "coffee.jpg").await
    }

    async fn caption_file(&self, who: &Who, name: &str) -> reqwest::Response {
        let form = Form::new().part(
            "image",
            Part::bytes(sample(name))
                .file_name("a.png")
                .mime_str("image/jpeg")
                .unwrap(),
        );
        who.apply(self.client.post(self.url("/api/v1/captions")))
            .multipart(form)
            .go()
            .await
    }

    async fn user_id(&self, email: &str) -> UserId {
        self.db()
            .users()
            .get_by_email(email)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// Every table (but the migrations' own) and its row count.
    async fn table_counts(&self) -> Vec<(String, i64)> {
        let tables: Vec<String> = match self.db() {
            Db::Sqlite(p) => sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
            )
            .fetch_all(p)
            .await
            .unwrap(),
            Db::Postgres(p) => sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' ORDER BY tablename",
            )
            .fetch_all(p)
            .await
            .unwrap(),
        };
        let mut out = Vec::new();
        for t in tables {
            out.push((
                t.clone(),
                self.scalar(&format!("SELECT COUNT(*) FROM {t}")).await,
            ));
        }
        out
    }

    /// Tables with a `user_id` column.
    async fn user_tables(&self) -> Vec<String> {
        takarir_store::test_support::tables_with_user_id(self.db()).await
    }

    async fn scalar(&self, sql: &str) -> i64 {
        match self.db() {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    }

    async fn rows_of(&self, table: &str, user: UserId) -> i64 {
        self.scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE user_id = {}",
            user.0
        ))
        .await
    }
}

/// Who makes a request.
#[derive(Clone)]
enum Who {
    Nobody,
    Session {
        cookie: String,
        csrf: String,
    },
    /// A session cookie without the CSRF header.
    CookieOnly(String),
    Key(String),
}

impl Who {
    async fn from_login(res: reqwest::Response) -> Who {
        let cookie = session_cookie(&res).expect("session cookie set");
        let body: Value = res.json().await.unwrap();
        Who::Session {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Who::Nobody => r,
            Who::Session { cookie, csrf } => r
                .header("cookie", format!("takarir_session={cookie}"))
                .header("x-csrf-token", csrf),
            Who::CookieOnly(cookie) => r.header("cookie", format!("takarir_session={cookie}")),
            Who::Key(k) => r.bearer_auth(k),
        }
    }

    fn cookie(&self) -> &str {
        match self {
            Who::Session { cookie, .. } | Who::CookieOnly(cookie) => cookie,
            _ => panic!("not a session"),
        }
    }
}

/// The value of the session cookie a response sets.
fn session_cookie(res: &reqwest::Response) -> Option<String> {
    let v = set_cookie(res, "takarir_session")?;
    assert!(v.contains("HttpOnly") && v.contains("SameSite=Lax"), "{v}");
    Some(v["takarir_session=".len()..].split(';').next()?.to_string())
}

/// The whole `Set-Cookie` value a response sets for cookie `name`.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    let all = res.headers().get_all("set-cookie");
    let mut values = all.iter().filter_map(|v| v.to_str().ok());
    let prefix = format!("{name}=");
    values.find(|v| v.starts_with(&prefix)).map(str::to_owned)
}

/// A message with a quoted-printable body decoded (lettre picks that for long lines).
fn decoded(mail: &str) -> String {
    if !mail.contains("Content-Transfer-Encoding: quoted-printable") {
        return mail.to_string();
    }
    let joined = mail.replace("=\r\n", "").replace("=\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The newest delivered message to `to` whose text contains `needle`, waiting up to 20 s.
async fn mail_to(to: &str, needle: &str) -> String {
    let dir = PathBuf::from(env("TAKARIR_TEST_SMTP_MAILDIR"));
    for _ in 0..200 {
        let mut found: Vec<(PathBuf, String)> = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "eml") {
                let text = decoded(&std::fs::read_to_string(&p).unwrap_or_default());
                let rcpt = text.lines().next().unwrap_or("");
                if rcpt.contains(to) && text.contains(needle) {
                    found.push((p, text));
                }
            }
        }
        found.sort();
        if let Some((_, text)) = found.pop() {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message to {to} containing {needle:?}");
}

/// How many delivered messages to `to` contain `needle`.
fn mails_count(to: &str, needle: &str) -> usize {
    let dir = PathBuf::from(env("TAKARIR_TEST_SMTP_MAILDIR"));
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter(|e| {
            let t = decoded(&std::fs::read_to_string(e.path()).unwrap_or_default());
            t.lines().next().unwrap_or("").contains(to) && t.contains(needle)
        })
        .count()
}

/// The token of the first link in a message that has `path?token=`.
fn link_token(mail: &str, path: &str) -> String {
    let start = mail.find(&format!("{path}?token=")).expect("link in mail") + path.len() + 7;
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

macro_rules! both_backends {
    ($name:ident, |$pg:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $pg = false;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $pg = true;
                $body
            }
        }
    };
}

/// A user with history, training consent and one captioned image: returns the session.
async fn active_user(e: &Env, addr: &str) -> Who {
    let who = e.register(addr).await;
    let body = json!({"history_enabled": true, "training_consent": true});
    let r = e
        .call(Method::PATCH, "/api/v1/me/preferences", &who, Some(body))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    who
}

async fn export_zip(e: &Env, who: &Who) -> Vec<u8> {
    let r = e.call(Method::POST, "/api/v1/me/exports", who, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let url = v["url"].as_str().unwrap();
    let path = &url[url.find("/exports/").unwrap()..];
    let r = e.client.get(e.url(path)).go().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    r.bytes().await.unwrap().to_vec()
}

fn zip_names(zip: &[u8]) -> Vec<String> {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    (0..a.len())
        .map(|i| a.by_index(i).unwrap().name().to_string())
        .collect()
}

fn zip_file(zip: &[u8], name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut out = Vec::new();
    a.by_name(name).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Validates `data` against the committed schema with Python's `jsonschema` (the test venv's).
fn validate_against_schema(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.json");
    std::fs::write(&file, data).unwrap();
    let schema = common::root().join("crates/server/schemas/export-v1.schema.json");
    let out = std::process::Command::new(env("TAKARIR_TEST_PYTHON"))
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())\n\
             errors = list(v.iter_errors(json.load(open(sys.argv[2]))))\n\
             [print(e.json_path, e.message) for e in errors]\n\
             sys.exit(1 if errors else 0)",
        ])
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "data.json does not validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// POSTs a batch job of `files` (sample photos, or `None` for a text file posing as a photo) as
/// `who`; the job id.
/// Polls the status of `who`'s job `id` until it is done (a minute at most); that status.
async fn wait_done_as(e: &Env, who: &Who, id: &str) -> Value {
    let mut s = Value::Null;
    for _ in 0..600 {
        s = e.get_json(&format!("/api/v1/jobs/{id}"), who).await;
        if s["status"] == "done" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish: {s}")
}

async fn create_job(e: &Env, who: &Who, files: &[Option<&str>]) -> String {
    let mut form = Form::new();
    for (i, f) in files.iter().enumerate() {
        let bytes = match f {
            Some(name) => sample(name),
            None => b"only text, not a photo".to_vec(),
        };
        form = form.part("image", Part::bytes(bytes).file_name(format!("{i}.jpg")));
    }
    let r = who
        .apply(e.client.post(e.url("/api/v1/jobs")))
        .multipart(form)
        .go()
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// The `takarir_csrf` cookie a signed-out page sets, and the same value as the form carries it.
async fn signed_out_token(e: &Env, path: &str) -> String {
    let res = e.client.get(e.url(path)).go().await;
    assert_eq!(res.status(), StatusCode::OK);
    let set = set_cookie(&res, "takarir_csrf").expect("csrf cookie");
    let cookie = set["takarir_csrf=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("name=\"csrf\" value=\"{cookie}\"")));
    cookie
}

/// The `csrf` value of the first form on a signed-in page.
fn page_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

mod data;
mod identity;
mod pages;
