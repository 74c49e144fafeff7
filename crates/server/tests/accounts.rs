//! Account and data-rights acceptance tests: the real server on a random port, on SQLite and
//! on a fresh database in the real PostgreSQL server that `scripts/test-services` starts, with
//! account emails delivered to the real SMTP server (aiosmtpd) it starts too and read back
//! from its maildir. Without those services these tests fail; they are never skipped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use takarir_engine::{Captioner, CaptionerOptions};
mod common;
use common::{model_dir, sample, wait_done};
use takarir_server::{AppState, Server, ServerConfig, Storage};
use takarir_store::test_support::{put_stored_bytes, stored_bytes};
use takarir_store::users::{NewUser, Role, UserId};
use takarir_store::Db;

fn captioner() -> Arc<Captioner> {
    static C: OnceLock<Arc<Captioner>> = OnceLock::new();
    C.get_or_init(|| {
        let mut o = CaptionerOptions::new(model_dir());
        o.threads = 1;
        Arc::new(Captioner::load(&o).expect("fixture model loads"))
    })
    .clone()
}

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

struct Env {
    base: String,
    client: Client,
    storage: Storage,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pg: Option<(String, String)>,
    _data: tempfile::TempDir,
}

impl Env {
    async fn start(postgres: bool, edit: impl FnOnce(&mut ServerConfig)) -> Env {
        // Server errors into the test's output (shown when a test fails).
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let data = tempfile::tempdir().unwrap();
        let mut pg = None;
        let database_url = if postgres {
            let server = env("TAKARIR_TEST_POSTGRES_URL");
            static N: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "takarir_srv_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let admin = sqlx::PgPool::connect(&server).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let mut url = url::Url::parse(&server).unwrap();
            url.set_path(&format!("/{name}"));
            pg = Some((server, name));
            Some(url.to_string())
        } else {
            None
        };
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            model: model_dir(),
            threads: Some(1),
            rate_limit_per_minute: 0,
            shutdown_grace_seconds: 5,
            data_dir: data.path().to_path_buf(),
            database_url,
            smtp_url: Some(format!(
                "smtp://127.0.0.1:{}",
                env("TAKARIR_TEST_SMTP_PORT")
            )),
            ..ServerConfig::default()
        };
        edit(&mut config);
        let storage = Storage::open(&config).await.expect("storage opens");
        let state = AppState::new(config.clone(), captioner(), storage.clone());
        let server = Server::bind(config, state).await.expect("binds");
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Env {
            base: format!("http://{addr}"),
            // No connection reuse: a request refused before its body is read (403 on an
            // upload) makes the server close that connection, and a pooled one can race it.
            client: Client::builder()
                .pool_max_idle_per_host(0)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            storage,
            stop: Some(tx),
            task,
            pg,
            _data: data,
        }
    }

    fn db(&self) -> &Db {
        &self.storage.db
    }

    async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.storage.db.close().await;
        if let Some((server, name)) = self.pg.take() {
            let admin = sqlx::PgPool::connect(&server).await.unwrap();
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
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
        r.send().await.unwrap()
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
        r.send().await.unwrap()
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
            .send()
            .await
            .unwrap()
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
        match self.db() {
            Db::Sqlite(p) => {
                let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(p)
                    .await
                    .unwrap();
                let mut out = Vec::new();
                for t in tables {
                    let n: i64 = sqlx::query_scalar(&format!(
                        "SELECT COUNT(*) FROM pragma_table_info('{t}') WHERE name = 'user_id'"
                    ))
                    .fetch_one(p)
                    .await
                    .unwrap();
                    if n > 0 {
                        out.push(t);
                    }
                }
                out
            }
            Db::Postgres(p) => sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'user_id'",
            )
            .fetch_all(p)
            .await
            .unwrap(),
        }
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
    res.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let rest = v.strip_prefix("takarir_session=")?;
        assert!(v.contains("HttpOnly") && v.contains("SameSite=Lax"), "{v}");
        Some(rest.split(';').next()?.to_string())
    })
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

both_backends!(anonymous_use_leaves_no_rows_but_counters, |pg| {
    let e = Env::start(pg, |_| {}).await;
    assert_eq!(e.caption(&Who::Nobody).await.status(), StatusCode::OK);
    let form = Form::new().part(
        "image",
        Part::bytes(sample("coffee.jpg"))
            .file_name("b.png")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let res = e
        .client
        .post(e.url("/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Pages and the signed-out preference cookie write nothing either.
    assert_eq!(
        e.client
            .get(e.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // The account routes are in the OpenAPI document.
    let doc: Value = e
        .client
        .get(e.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/me", "delete"),
        ("/api/v1/me/exports", "post"),
        ("/api/v1/admin/users/{id}/access", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["PreferencesPatch"].is_object());
    for (table, n) in e.table_counts().await {
        if table == "usage_daily" {
            assert!(n >= 1, "the aggregate counter counts anonymous captions");
        } else if table == "retention_runs" {
            // The sweeper's own counts (jobs, objects deleted): nothing about anyone.
        } else {
            assert_eq!(n, 0, "anonymous use wrote to {table}");
        }
    }
    assert!(
        e.storage.blobs.list("").await.unwrap().is_empty(),
        "no object stored"
    );
    e.finish().await;
});

both_backends!(signup_verify_and_reset_by_email, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let addr = email("ani");
    // Password minimums.
    for bad in ["pendek", &format!("x{addr}x")] {
        let res = e
            .call(
                Method::POST,
                "/api/v1/auth/register",
                &Who::Nobody,
                Some(json!({"email": addr, "password": bad})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(res.json::<Value>().await.unwrap()["code"], "weak_password");
    }
    let who = e.register(&addr).await;
    let me: Value = e.get_json("/api/v1/me", &who).await;
    assert_eq!(me["profile"]["email_verified_at"], Value::Null);
    // The same address again is refused.
    let dup = e
        .call(
            Method::POST,
            "/api/v1/auth/register",
            &Who::Nobody,
            Some(json!({"email": addr.to_uppercase(), "password": PASSWORD})),
        )
        .await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);

    let mail = mail_to(&addr, "/account/verify?token=").await;
    let token = link_token(&mail, "/account/verify");
    let page = e
        .client
        .get(e.url(&format!("/account/verify?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let again = e
        .client
        .get(e.url(&format!("/account/verify?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::GONE, "a link works once");
    let me: Value = e.get_json("/api/v1/me", &who).await;
    assert!(me["profile"]["email_verified_at"].is_string());

    // Reset: the answer is the same for unknown addresses; the link sets a new password and
    // ends every session.
    for a in [addr.as_str(), "tidak.ada@contoh.id"] {
        let r = e
            .call(
                Method::POST,
                "/api/v1/auth/password/forgot",
                &Who::Nobody,
                Some(json!({"email": a})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let mail = mail_to(&addr, "/account/reset?token=").await;
    let token = link_token(&mail, "/account/reset");
    let new_pw = "sapi-terbang-tinggi-7";
    let r = e
        .call(
            Method::POST,
            "/api/v1/auth/password/reset",
            &Who::Nobody,
            Some(json!({"token": token, "password": new_pw})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &who, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        e.login(&addr, PASSWORD, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(e.login(&addr, new_pw, None).await.status(), StatusCode::OK);
    e.finish().await;
});

both_backends!(
    password_change_needs_the_current_one_and_ends_other_sessions,
    |pg| {
        let e = Env::start(pg, |_| {}).await;
        let addr = email("ganti");
        let here = e.register(&addr).await;
        let elsewhere = Who::from_login(e.login(&addr, PASSWORD, None).await).await;
        let change =
            |current: &str, new: &str| json!({"current_password": current, "new_password": new});
        let new_pw = "kuda-laut-berenang-9";
        // A wrong current password, a weak new one, or no CSRF header change nothing.
        let r = e
            .call(
                Method::POST,
                "/api/v1/me/password",
                &here,
                Some(change("salah-sekali-123", new_pw)),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.json::<Value>().await.unwrap()["code"],
            "invalid_credentials"
        );
        let r = e
            .call(
                Method::POST,
                "/api/v1/me/password",
                &here,
                Some(change(PASSWORD, "pendek")),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "weak_password");
        let r = e
            .call(
                Method::POST,
                "/api/v1/me/password",
                &Who::CookieOnly(here.cookie().into()),
                Some(change(PASSWORD, new_pw)),
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            e.call(Method::GET, "/api/v1/me", &elsewhere, None)
                .await
                .status(),
            StatusCode::OK
        );
        // The right one: this session stays, the other ends, only the new password signs in.
        let r = e
            .call(
                Method::POST,
                "/api/v1/me/password",
                &here,
                Some(change(PASSWORD, new_pw)),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            e.call(Method::GET, "/api/v1/me", &here, None)
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            e.call(Method::GET, "/api/v1/me", &elsewhere, None)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            e.login(&addr, PASSWORD, None).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(e.login(&addr, new_pw, None).await.status(), StatusCode::OK);
        e.finish().await;
    }
);

both_backends!(an_unused_session_ends_a_used_one_lives_on, |pg| {
    let e = Env::start(pg, |c| c.session_idle_seconds = 2).await;
    let addr = email("diam");
    let who = e.register(&addr).await;
    let me: Value = e.get_json("/api/v1/me", &who).await;
    assert!(me["sessions"][0]["last_used_at"].is_string(), "{me}");
    // Used every second: alive past the 2-second limit.
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        assert_eq!(
            e.call(Method::GET, "/api/v1/me", &who, None).await.status(),
            StatusCode::OK
        );
    }
    // Left alone for longer than the limit: signed out, and the row is gone.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &who, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let uid = e.user_id(&addr).await;
    assert_eq!(e.db().sessions().list(uid).await.unwrap().len(), 0);
    // The privacy page states the limit (rounded up to days).
    let page = e
        .call(Method::GET, "/privacy?lang=en", &Who::Nobody, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("lasts 30 days (less if unused for 1 day) or until"),
        "{page}"
    );
    e.finish().await;
});

both_backends!(csrf_is_required_for_cookie_changes_and_forms, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let who = e.register(&email("csrf")).await;
    let cookie_only = Who::CookieOnly(who.cookie().to_string());
    let patch = json!({"history_enabled": true});
    let r = e
        .call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &cookie_only,
            Some(patch.clone()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "csrf_failed");
    let wrong = Who::Session {
        cookie: who.cookie().to_string(),
        csrf: "x".repeat(43),
    };
    assert_eq!(
        e.call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &wrong,
            Some(patch.clone())
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.call(Method::PATCH, "/api/v1/me/preferences", &who, Some(patch))
            .await
            .status(),
        StatusCode::OK
    );
    // Web forms: a signed-in form without or with a wrong token is refused.
    let form_post = |fields: Vec<(&'static str, String)>| {
        e.client
            .post(e.url("/account/history/delete-all"))
            .header("cookie", format!("takarir_session={}", who.cookie()))
            .form(&fields)
            .send()
    };
    assert_eq!(
        form_post(vec![]).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        form_post(vec![("csrf", "y".repeat(43))])
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let Who::Session { csrf, .. } = &who else {
        unreachable!()
    };
    assert_eq!(
        form_post(vec![("csrf", csrf.clone())])
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );
    // Signed-out forms use the double-submit cookie.
    let r = e
        .client
        .post(e.url("/account/login"))
        .form(&[("email", "a@b.c"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let t = "z".repeat(43);
    let r = e
        .client
        .post(e.url("/account/login"))
        .header("cookie", format!("takarir_csrf={t}"))
        .form(&[
            ("email", "a@b.c"),
            ("password", "salah-sekali-123"),
            ("csrf", &t),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "token accepted, credentials checked"
    );
    // A cookie-authenticated caption without the token is anonymous: nothing recorded.
    assert_eq!(e.caption(&cookie_only).await.status(), StatusCode::OK);
    assert_eq!(e.scalar("SELECT COUNT(*) FROM history").await, 0);
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    assert_eq!(e.scalar("SELECT COUNT(*) FROM history").await, 1);
    e.finish().await;
});

both_backends!(sign_in_rotates_the_session, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let addr = email("fix");
    let first = e.register(&addr).await;
    // A token planted before sign-in (by an attacker) is not adopted.
    let planted = "penyerang-menanam-token-ini-sebelum-masuk-000";
    let res = e.login(&addr, PASSWORD, Some(planted)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let new = session_cookie(&res).unwrap();
    assert_ne!(new, planted);
    assert_eq!(
        e.call(
            Method::GET,
            "/api/v1/me",
            &Who::CookieOnly(planted.into()),
            None
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    // Signing in with an existing session ends it and issues a new one.
    let res = e.login(&addr, PASSWORD, Some(first.cookie())).await;
    let newer = session_cookie(&res).unwrap();
    assert_ne!(newer, first.cookie());
    assert_eq!(
        e.call(
            Method::GET,
            "/api/v1/me",
            &Who::CookieOnly(first.cookie().into()),
            None
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        e.call(
            Method::GET,
            "/api/v1/me",
            &Who::CookieOnly(newer.clone()),
            None
        )
        .await
        .status(),
        StatusCode::OK
    );
    // Sign-out ends it.
    let who = Who::from_login(e.login(&addr, PASSWORD, None).await).await;
    assert_eq!(
        e.call(Method::POST, "/api/v1/auth/logout", &who, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &who, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    e.finish().await;
});

both_backends!(sign_in_is_throttled_per_account_and_client, |pg| {
    let e = Env::start(pg, |c| {
        c.login_failures_per_account = 3;
        c.login_failures_per_client = 5;
        c.rate_limit_per_minute = 3;
    })
    .await;
    let a = email("thr");
    let b = email("thr");
    e.register(&a).await;
    e.register(&b).await;
    for _ in 0..3 {
        assert_eq!(
            e.login(&a, "salah-salah-salah", None).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = e.login(&a, PASSWORD, None).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password, once over"
    );
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "too_many_attempts"
    );
    // The other account still signs in, until this client is over its own limit.
    assert_eq!(e.login(&b, PASSWORD, None).await.status(), StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(
            e.login(&b, "salah-salah-salah", None).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        e.login(&b, PASSWORD, None).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Requests that send email (sign-up, reset) share the per-client rate limit: two sign-ups
    // above, one reset, then refused.
    let forgot = json!({"email": a});
    let r = e
        .call(
            Method::POST,
            "/api/v1/auth/password/forgot",
            &Who::Nobody,
            Some(forgot.clone()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = e
        .call(
            Method::POST,
            "/api/v1/auth/password/forgot",
            &Who::Nobody,
            Some(forgot),
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    e.finish().await;
});

both_backends!(api_keys_are_shown_once_hashed_and_scoped, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let addr = email("key");
    let who = e.register(&addr).await;
    let make = |scopes: Value| {
        e.call(
            Method::POST,
            "/api/v1/me/api-keys",
            &who,
            Some(json!({"name": "uji", "scopes": scopes})),
        )
    };
    let r = make(json!(["captions"])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let cap_key = r.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let read_key = make(json!(["read"])).await.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        make(json!(["admin"])).await.status(),
        StatusCode::FORBIDDEN,
        "admin scope for admins only"
    );
    // Stored hashed: the key is nowhere in the database.
    let listed: Value = e.get_json("/api/v1/me/api-keys", &who).await;
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&cap_key));
    let hashes: i64 = e
        .scalar(&format!(
            "SELECT COUNT(*) FROM api_keys WHERE key_hash = '{}'",
            takarir_store::token_hash(&cap_key)
        ))
        .await;
    assert_eq!(hashes, 1);
    let plain: i64 = e
        .scalar(&format!(
            "SELECT COUNT(*) FROM api_keys WHERE key_hash = '{cap_key}' OR prefix = '{cap_key}'"
        ))
        .await;
    assert_eq!(plain, 0);

    let cap = Who::Key(cap_key);
    let read = Who::Key(read_key);
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &cap, None).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(e.caption(&cap).await.status(), StatusCode::OK);
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &read, None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(e.caption(&read).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        e.call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &read,
            Some(json!({"history_enabled": true}))
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    // Keys cannot make keys or delete the account; an unknown key is 401, not anonymous.
    assert_eq!(
        e.call(
            Method::POST,
            "/api/v1/me/api-keys",
            &read,
            Some(json!({"name": "x", "scopes": ["read"]}))
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.call(
            Method::DELETE,
            "/api/v1/me",
            &read,
            Some(json!({"password": PASSWORD}))
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.caption(&Who::Key("tkr_tidak_ada".into())).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The usage of the captions key counts for the account.
    let me: Value = e.get_json("/api/v1/me", &read).await;
    assert_eq!(me["usage"][0]["count"], 1);
    e.finish().await;
});

/// A user with history, training consent and one captioned image: returns the session.
async fn active_user(e: &Env, addr: &str) -> Who {
    let who = e.register(addr).await;
    let r = e
        .call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &who,
            Some(json!({"history_enabled": true, "training_consent": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    who
}

both_backends!(history_training_and_withdrawal, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let addr = email("hist");
    let who = e.register(&addr).await;
    // Off by default: a caption leaves no history and no training item.
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    let me: Value = e.get_json("/api/v1/me", &who).await;
    assert_eq!(me["preferences"]["history_enabled"], false);
    assert_eq!(me["preferences"]["training_consent"], false);
    assert_eq!(me["history"].as_array().unwrap().len(), 0);
    assert_eq!(me["usage"][0]["count"], 1);

    let r = e
        .call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &who,
            Some(json!({"history_enabled": true, "training_consent": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A photo with EXIF metadata (orientation): the training copy keeps none of it.
    let exif = sample("chelsea-exif-rotated.jpg");
    assert!(exif.windows(4).any(|w| w == b"Exif"));
    assert_eq!(
        e.caption_file(&who, "chelsea-exif-rotated.jpg")
            .await
            .status(),
        StatusCode::OK
    );
    let uid = e.user_id(&addr).await;
    let me: Value = e.get_json("/api/v1/me", &who).await;
    let h = &me["history"][0];
    assert_eq!(h["format"], "jpeg");
    assert!(h["width"].as_u64().unwrap() > 0);
    let items = e.db().training().list(uid).await.unwrap();
    assert_eq!(items.len(), 1);
    // The pixels only: a PNG of the upright image, nothing of the original file's metadata.
    let stored = e.storage.blobs.get(&items[0].object_path).await.unwrap();
    assert!(stored.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(!stored.windows(4).any(|w| w == b"Exif"));
    let img = image::load_from_memory(&stored).unwrap();
    assert_eq!(
        (img.width() as u64, img.height() as u64),
        (h["width"].as_u64().unwrap(), h["height"].as_u64().unwrap())
    );
    assert_eq!(items[0].format, "png");
    assert!(
        e.storage
            .blobs
            .get_with_info(&items[0].object_path)
            .await
            .unwrap()
            .1
            .key_id
            .is_some(),
        "encrypted"
    );
    // A correction is kept beside the original and becomes the training caption.
    let id = h["id"].as_i64().unwrap();
    let r = e
        .call(
            Method::PATCH,
            &format!("/api/v1/me/history/{id}"),
            &who,
            Some(json!({"corrected_caption": "anjing menangkap piringan"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list: Value = e
        .call(
            Method::GET,
            "/api/v1/me/history?search=piringan",
            &who,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["history"][0]["caption"], h["caption"]);
    assert_eq!(
        list["history"][0]["corrected_caption"],
        "anjing menangkap piringan"
    );
    assert_eq!(
        e.db().training().list(uid).await.unwrap()[0].caption,
        "anjing menangkap piringan"
    );
    // Turning history off asks what to do with the entries.
    let r = e
        .call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &who,
            Some(json!({"history_enabled": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Withdrawal: training items and their images gone at once; a later export has none.
    let r = e
        .call(
            Method::POST,
            "/api/v1/me/consents/training",
            &who,
            Some(json!({"granted": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(e.db().training().list(uid).await.unwrap().is_empty());
    assert!(e
        .storage
        .blobs
        .list(&format!("users/{}/training", uid.0))
        .await
        .unwrap()
        .is_empty());
    let ledger = e.db().consents().list(uid).await.unwrap();
    let training: Vec<bool> = ledger
        .iter()
        .filter(|c| c.purpose == "training")
        .map(|c| c.granted)
        .collect();
    assert_eq!(training, vec![true, false]);
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    assert!(
        e.db().training().list(uid).await.unwrap().is_empty(),
        "no new item after withdrawal"
    );
    let zip = export_zip(&e, &who).await;
    assert_eq!(zip_names(&zip), vec!["data.json"]);
    // Delete one entry.
    let list: Value = e.get_json("/api/v1/me/history", &who).await;
    let entries = list["history"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    let one = entries[0]["id"].as_i64().unwrap();
    let r = e
        .call(
            Method::DELETE,
            &format!("/api/v1/me/history/{one}"),
            &who,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = e
        .call(
            Method::DELETE,
            &format!("/api/v1/me/history/{one}"),
            &who,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(e.db().history().count(uid).await.unwrap(), 1);
    // History off, deleting the entries.
    let r = e
        .call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &who,
            Some(json!({"history_enabled": false, "delete_history": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(e.db().history().count(uid).await.unwrap(), 0);
    e.finish().await;
});

async fn export_zip(e: &Env, who: &Who) -> Vec<u8> {
    let r = e.call(Method::POST, "/api/v1/me/exports", who, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let url = v["url"].as_str().unwrap();
    let path = &url[url.find("/exports/").unwrap()..];
    let r = e.client.get(e.url(path)).send().await.unwrap();
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

both_backends!(
    export_holds_exactly_the_documented_files_of_one_user,
    |pg| {
        let e = Env::start(pg, |_| {}).await;
        let a = email("exa");
        let b = email("exb");
        let who = active_user(&e, &a).await;
        let other = active_user(&e, &b).await;
        let other_key = e
            .call(
                Method::POST,
                "/api/v1/me/api-keys",
                &other,
                Some(json!({"name": "kunci-milik-budi", "scopes": ["read"]})),
            )
            .await;
        assert_eq!(other_key.status(), StatusCode::CREATED);
        let zip = export_zip(&e, &who).await;
        let uid = e.user_id(&a).await;
        let item = &e.db().training().list(uid).await.unwrap()[0];
        assert_eq!(
            zip_names(&zip),
            vec![
                "data.json".to_string(),
                format!("training/{}.png", item.id.0)
            ]
        );
        let data = zip_file(&zip, "data.json");
        validate_against_schema(&data);
        let doc: Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["profile"]["email"], a);
        assert_eq!(doc["history"].as_array().unwrap().len(), 1);
        assert!(doc["consents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["purpose"] == "training" && c["granted"] == true));
        let stored = e.storage.blobs.get(&item.object_path).await.unwrap();
        assert_eq!(
            zip_file(&zip, &format!("training/{}.png", item.id.0)),
            stored.to_vec()
        );
        // Nothing of the other user.
        let text = String::from_utf8_lossy(&data);
        assert!(!text.contains(&b) && !text.contains("kunci-milik-budi"));
        let other_id = e.user_id(&b).await;
        assert!(!text.contains(&format!("\"id\": {},\n    \"email\"", other_id.0)));
        // The access document (GET /api/v1/me) validates too.
        let me: Value = e.get_json("/api/v1/me", &who).await;
        let mut me = me;
        me.as_object_mut().unwrap().remove("policy_notice");
        validate_against_schema(&serde_json::to_vec(&me).unwrap());
        // Revoking the link: it stops working and the ZIP is gone.
        let list: Value = e.get_json("/api/v1/me/exports", &who).await;
        let id = list["exports"][0]["id"].as_i64().unwrap();
        let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
        let url = r.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
        let path = url[url.find("/exports/").unwrap()..].to_string();
        let list: Value = e.get_json("/api/v1/me/exports", &who).await;
        let id2 = list["exports"][1]["id"].as_i64().unwrap();
        assert_ne!(id, id2);
        assert_eq!(
            e.call(
                Method::DELETE,
                &format!("/api/v1/me/exports/{id2}"),
                &who,
                None
            )
            .await
            .status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            e.client.get(e.url(&path)).send().await.unwrap().status(),
            StatusCode::GONE
        );
        assert_eq!(
            e.storage
                .blobs
                .list(&format!("users/{}/exports", uid.0))
                .await
                .unwrap()
                .len(),
            1
        );
        e.finish().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_streamed_and_never_passes_damaged_as_whole() {
    let e = Env::start(false, |_| {}).await;
    let a = email("exs");
    let who = active_user(&e, &a).await;
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    let uid = e.user_id(&a).await;
    let items = e.db().training().list(uid).await.unwrap();
    assert_eq!(items.len(), 2);

    // Stored encrypted in chunks (format 2), sent with the length the listing gives.
    let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let size = v["size_bytes"].as_u64().unwrap();
    let url = v["url"].as_str().unwrap();
    let link = url[url.find("/exports/").unwrap()..].to_string();
    let r = e.client.get(e.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], size.to_string().as_str());
    let zip = r.bytes().await.unwrap().to_vec();
    assert_eq!(zip.len() as u64, size);
    let mut names = vec!["data.json".to_string()];
    for item in &items {
        let name = format!("training/{}.png", item.id.0);
        let stored = e.storage.blobs.get(&item.object_path).await.unwrap();
        assert_eq!(zip_file(&zip, &name), stored.to_vec());
        names.push(name);
    }
    names.sort();
    let mut got = zip_names(&zip);
    got.sort();
    assert_eq!(got, names);
    let prefix = format!("users/{}/exports", uid.0);
    let exports = e.storage.blobs.list(&prefix).await.unwrap();
    assert_eq!(exports.len(), 1);
    let raw = stored_bytes(&e.storage.blobs, &exports[0]).await;
    assert!(raw.starts_with(b"TKRB\x02"));
    assert!(size > 2 * 64 * 1024, "several chunks: {size} bytes");

    // A chunk damaged at rest: the download breaks off, it never arrives whole with wrong bytes.
    let mut bad = raw.clone();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    put_stored_bytes(&e.storage.blobs, &exports[0], bad).await;
    let r = e.client.get(e.url(&link)).send().await.unwrap();
    assert!(
        r.bytes().await.is_err(),
        "a damaged export must not download in full"
    );
    put_stored_bytes(&e.storage.blobs, &exports[0], raw).await;
    let r = e.client.get(e.url(&link)).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), zip);

    // A training image that cannot be read: no export, and no partial ZIP left behind.
    put_stored_bytes(
        &e.storage.blobs,
        &items[1].object_path,
        b"not one of ours".to_vec(),
    )
    .await;
    let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(e.storage.blobs.list(&prefix).await.unwrap(), exports);
    // Listed as failed (so the user knows), with nothing stored.
    let list: Value = e.get_json("/api/v1/me/exports", &who).await;
    let statuses: Vec<&str> = list["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ready", "failed"]);
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_made_in_the_background_and_its_link_waits_for_it() {
    // No waiting in the request: every export answers 202 at once and is made afterwards.
    let e = Env::start(false, |c| c.export_wait_seconds = 0).await;
    let a = email("exbg");
    let who = active_user(&e, &a).await;
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    let uid = e.user_id(&a).await;
    let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "pending");
    let url = v["url"].as_str().unwrap();
    let link = url[url.find("/exports/").unwrap()..].to_string();
    // Listed pending until its ZIP is stored, then ready with its size.
    let mut ready = Value::Null;
    for _ in 0..300 {
        let list: Value = e.get_json("/api/v1/me/exports", &who).await;
        let x = list["exports"][0].clone();
        assert_eq!(x["id"], v["id"]);
        match x["status"].as_str().unwrap() {
            "pending" => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => {
                ready = x;
                break;
            }
        }
    }
    assert_eq!(ready["status"], "ready", "made within 30 s: {ready}");
    let r = e.client.get(e.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let zip = r.bytes().await.unwrap().to_vec();
    assert_eq!(zip.len() as u64, ready["size_bytes"].as_u64().unwrap());
    let data: Value = serde_json::from_slice(&zip_file(&zip, "data.json")).unwrap();
    assert_eq!(data["profile"]["email"], a.as_str());
    assert_eq!(
        zip_names(&zip).len(),
        3,
        "data.json and the two training images"
    );

    // A link whose export is still being made answers 409 with Retry-After, in the user's
    // language; one that could not be made answers 410. (Rows made directly, so the state is
    // certain when the link is asked for.)
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(7);
    let pending = e
        .db()
        .exports()
        .create(uid, "tok-pending", "users/none/exports/none.zip", expires)
        .await
        .unwrap();
    let r = e
        .client
        .get(e.url("/exports/tok-pending"))
        .header("accept-language", "id")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.headers()["retry-after"], "5");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "export_pending");
    assert_eq!(p["title"], "Ekspor sedang disiapkan");
    e.db().exports().fail(pending.id).await.unwrap();
    let r = e
        .client
        .get(e.url("/exports/tok-pending"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "export_failed");

    // Revoked while being made: once made, its ZIP is deleted rather than kept.
    let prefix = format!("users/{}/exports", uid.0);
    let before = e.storage.blobs.list(&prefix).await.unwrap();
    assert_eq!(before.len(), 1);
    let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = e
        .call(
            Method::DELETE,
            &format!("/api/v1/me/exports/{id}"),
            &who,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The background task may still be uploading: the listing must settle back to the first
    // export alone and stay so.
    let mut settled = 0;
    for _ in 0..100 {
        if e.storage.blobs.list(&prefix).await.unwrap() == before {
            settled += 1;
            if settled == 20 {
                break;
            }
        } else {
            settled = 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(settled, 20, "the revoked export's ZIP is not left behind");
    e.finish().await;
}

/// POSTs a batch job of `files` (sample photos, or `None` for a text file posing as a photo) as
/// `who`; the job id.
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
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

both_backends!(
    a_signed_in_users_batch_job_counts_like_their_captions,
    |pg| {
        let e = Env::start(pg, |_| {}).await;
        let addr = email("tugas");
        let who = e.register(&addr).await;
        let uid = e.user_id(&addr).await;
        let r = e
            .call(
                Method::PATCH,
                "/api/v1/me/preferences",
                &who,
                Some(json!({"history_enabled": true, "training_consent": true, "lang": "en"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let usage_before = e
            .scalar("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM usage_daily")
            .await;

        // Two photos and one bad file, with the session's CSRF token: the job is the user's.
        let id = create_job(&e, &who, &[Some("coffee.jpg"), None, Some("rocket.jpg")]).await;
        let s = wait_done(&e.client, &e.base, &id).await;
        assert_eq!(
            (s["done"].as_i64(), s["failed"].as_i64()),
            (Some(2), Some(1))
        );
        let me: Value = e.get_json("/api/v1/me", &who).await;
        // The preference (English only) was the job's default; history and training as for
        // single captions; the bad file leaves nothing.
        let history = me["history"].as_array().unwrap();
        assert_eq!(history.len(), 2, "{me}");
        assert!(history
            .iter()
            .all(|h| h["lang"] == "en" && h["format"] == "jpeg"));
        let results = e
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{id}/results"),
                &Who::Nobody,
                None,
            )
            .await
            .text()
            .await
            .unwrap();
        let texts: Vec<Value> = results
            .lines()
            .flat_map(|l| {
                let row: Value = serde_json::from_str(l).unwrap();
                row["captions"]
                    .as_array()
                    .map(|c| c.iter().map(|c| c["text"].clone()).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(texts.len(), 2, "{results}");
        for h in history {
            assert!(texts.contains(&h["caption"]), "{results}");
        }
        assert_eq!(me["usage"][0]["count"], 2);
        assert_eq!(me["training_items"].as_array().unwrap().len(), 2);
        let jobs = me["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0]["id"], id.as_str());
        assert_eq!(
            (jobs[0]["done"].as_i64(), jobs[0]["failed"].as_i64()),
            (Some(2), Some(1))
        );
        assert!(jobs[0]["finished_at"].is_string());
        assert_eq!(
            e.scalar("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM usage_daily")
                .await,
            usage_before + 2
        );
        validate_against_schema(&zip_file(&export_zip(&e, &who).await, "data.json"));

        // The cookie without its CSRF token (a forged cross-site upload): an anonymous job that
        // writes nothing of the user's, only the aggregate counter.
        let anon = create_job(
            &e,
            &Who::CookieOnly(who.cookie().to_string()),
            &[Some("coffee.jpg")],
        )
        .await;
        wait_done(&e.client, &e.base, &anon).await;
        let me: Value = e.get_json("/api/v1/me", &who).await;
        assert_eq!(me["history"].as_array().unwrap().len(), 2);
        assert_eq!(me["jobs"].as_array().unwrap().len(), 1);
        assert_eq!(me["usage"][0]["count"], 2);
        assert_eq!(
            e.scalar("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM usage_daily")
                .await,
            usage_before + 3
        );

        // Erasure takes the user's jobs, their results and any input still stored.
        let leftover = format!("jobs/{id}/in/000099");
        e.storage
            .blobs
            .put(
                &leftover,
                b"not yet captioned",
                takarir_store::Sensitivity::Personal,
            )
            .await
            .unwrap();
        let r = e
            .call(
                Method::DELETE,
                "/api/v1/me",
                &who,
                Some(json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(e.rows_of("jobs", uid).await, 0);
        assert!(e
            .storage
            .blobs
            .list(&format!("jobs/{id}/"))
            .await
            .unwrap()
            .is_empty());
        let gone = e
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{id}"),
                &Who::Nobody,
                None,
            )
            .await;
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
        // The anonymous job is nobody's: it stays until it expires or its holder deletes it.
        let kept = e
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{anon}"),
                &Who::Nobody,
                None,
            )
            .await;
        assert_eq!(kept.status(), StatusCode::OK);
        e.finish().await;
    }
);

both_backends!(erasure_leaves_nothing_of_the_user, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let a = email("hapus");
    let b = email("tetap");
    // An admin, made the way the command line does (never by sign-up).
    let admin_addr = email("admin");
    let hash = takarir_server::service::accounts::auth::hash_password(PASSWORD)
        .await
        .unwrap();
    e.db()
        .users()
        .create(NewUser {
            email: &admin_addr,
            password_hash: &hash,
            role: Role::Admin,
        })
        .await
        .unwrap();
    let admin = Who::from_login(e.login(&admin_addr, PASSWORD, None).await).await;

    let who = active_user(&e, &a).await;
    let other = active_user(&e, &b).await;
    let uid = e.user_id(&a).await;
    let other_id = e.user_id(&b).await;
    // A second session, API keys, an export, a correction, audit entries about the user.
    let second = Who::from_login(e.login(&a, PASSWORD, None).await).await;
    for who in [&who, &other] {
        let r = e
            .call(
                Method::POST,
                "/api/v1/me/api-keys",
                who,
                Some(json!({"name": "k", "scopes": ["captions", "read"]})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        export_zip(&e, who).await;
    }
    for (id, reason) in [
        (uid, "tiket dukungan #12"),
        (other_id, "tiket dukungan #13"),
    ] {
        let r = e
            .call(
                Method::POST,
                &format!("/api/v1/admin/users/{}/access", id.0),
                &admin,
                Some(json!({"reason": reason})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Without a reason staff get nothing; a non-admin gets nothing.
    let r = e
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{}/access", uid.0),
            &admin,
            Some(json!({"reason": " "})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        e.call(Method::GET, "/api/v1/admin/stats", &other, None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let stats: Value = e.get_json("/api/v1/admin/stats", &admin).await;
    assert_eq!(stats["accounts"], 3);
    assert!(
        !stats.to_string().contains("@"),
        "no addresses in the aggregates"
    );
    // The user sees the staff access on their access page.
    let me: Value = e.get_json("/api/v1/me", &who).await;
    assert_eq!(me["audit"][0]["reason"], "tiket dukungan #12");

    let tables = e.user_tables().await;
    for t in [
        "history",
        "consents",
        "preferences",
        "sessions",
        "api_keys",
        "training_items",
        "exports",
        "audit_log",
        "user_usage_daily",
        "email_tokens",
    ] {
        assert!(tables.contains(&t.to_string()), "{t} has user_id");
        if t != "email_tokens" {
            assert!(
                e.rows_of(t, uid).await > 0,
                "the user has rows in {t} before erasure"
            );
        }
    }
    assert!(!e
        .storage
        .blobs
        .list(&format!("users/{}", uid.0))
        .await
        .unwrap()
        .is_empty());
    let mut other_before = Vec::new();
    for t in &tables {
        other_before.push(e.rows_of(t, other_id).await);
    }
    let other_objects = e
        .storage
        .blobs
        .list(&format!("users/{}", other_id.0))
        .await
        .unwrap();

    // The password is asked again; a wrong one erases nothing.
    let r = e
        .call(
            Method::DELETE,
            "/api/v1/me",
            &who,
            Some(json!({"password": "bukan-kata-sandinya"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let subject = e
        .db()
        .users()
        .get(uid)
        .await
        .unwrap()
        .unwrap()
        .subject_hash();
    let r = e
        .call(
            Method::DELETE,
            "/api/v1/me",
            &who,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    for t in &tables {
        assert_eq!(
            e.rows_of(t, uid).await,
            0,
            "{t} keeps rows of the erased user"
        );
    }
    assert_eq!(
        e.scalar(&format!("SELECT COUNT(*) FROM users WHERE id = {}", uid.0))
            .await,
        0
    );
    assert!(
        e.storage
            .blobs
            .list(&format!("users/{}", uid.0))
            .await
            .unwrap()
            .is_empty(),
        "objects left"
    );
    assert!(e.db().erasure_log().contains(&subject).await.unwrap());
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &second, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The other user is untouched.
    let mut other_after = Vec::new();
    for t in &tables {
        other_after.push(e.rows_of(t, other_id).await);
    }
    assert_eq!(other_before, other_after);
    assert_eq!(
        e.storage
            .blobs
            .list(&format!("users/{}", other_id.0))
            .await
            .unwrap(),
        other_objects
    );
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &other, None)
            .await
            .status(),
        StatusCode::OK
    );
    e.finish().await;
});

both_backends!(
    significant_policy_version_is_noticed_and_emailed_once,
    |pg| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("versions.toml");
        let v1 = "[[version]]\nversion = \"1.0\"\ndate = \"2026-11-29\"\nsignificant = true\nsummary_id = \"a\"\nsummary_en = \"a\"\n";
        std::fs::write(&file, v1).unwrap();
        let f = file.clone();
        let e = Env::start(pg, move |c| c.policy_file = Some(f)).await;
        let addr = email("pol");
        let who = e.register(&addr).await;
        let me: Value = e.get_json("/api/v1/me", &who).await;
        assert_eq!(
            me["policy_notice"],
            Value::Null,
            "sign-up acknowledges the current version"
        );
        // The same database under a new significant version.
        let url = e.storage.db.clone();
        let _ = url;
        let data_dir = e._data.path().to_path_buf();
        let database_url = match e.db() {
            Db::Sqlite(_) => None,
            Db::Postgres(_) => {
                let (server, name) = e.pg.clone().unwrap();
                let mut u = url::Url::parse(&server).unwrap();
                u.set_path(&format!("/{name}"));
                Some(u.to_string())
            }
        };
        std::fs::write(&file, format!("{v1}[[version]]\nversion = \"2.0\"\ndate = \"2027-01-01\"\nsignificant = true\nsummary_id = \"baru\"\nsummary_en = \"new\"\n")).unwrap();
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            model: model_dir(),
            threads: Some(1),
            data_dir,
            database_url,
            smtp_url: Some(format!(
                "smtp://127.0.0.1:{}",
                env("TAKARIR_TEST_SMTP_PORT")
            )),
            policy_file: Some(file.clone()),
            ..ServerConfig::default()
        };
        let storage = Storage::open(&config).await.unwrap();
        let state = AppState::new(config.clone(), captioner(), storage);
        assert_eq!(
            takarir_server::service::privacy::policy::notify_all(&state)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            takarir_server::service::privacy::policy::notify_all(&state)
                .await
                .unwrap(),
            0,
            "once"
        );
        let mail = mail_to(&addr, "2.0").await;
        assert!(mail.contains("/account"));
        assert_eq!(mails_count(&addr, "versi 2.0"), 1);
        config.listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(config, state).await.unwrap();
        let base = format!("http://{}", server.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        let get_me = || who.apply(e.client.get(format!("{base}/api/v1/me"))).send();
        let me: Value = get_me().await.unwrap().json().await.unwrap();
        assert_eq!(me["policy_notice"]["version"], "2.0");
        let page = who
            .apply(e.client.get(format!("{base}/")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("id=\"policy-notice\""));
        let r = who
            .apply(e.client.post(format!("{base}/api/v1/me/policy/ack")))
            .json(&json!({"version": "2.0"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let me: Value = get_me().await.unwrap().json().await.unwrap();
        assert_eq!(me["policy_notice"], Value::Null);
        assert!(me["consents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["purpose"] == "policy" && c["policy_version"] == "2.0"));
        let _ = tx.send(());
        let _ = task.await;
        e.finish().await;
    }
);

/// The `takarir_csrf` cookie a signed-out page sets, and the same value as the form carries it.
async fn signed_out_token(e: &Env, path: &str) -> String {
    let res = e.client.get(e.url(path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            Some(
                v.strip_prefix("takarir_csrf=")?
                    .split(';')
                    .next()?
                    .to_string(),
            )
        })
        .expect("csrf cookie");
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("name=\"csrf\" value=\"{cookie}\"")));
    cookie
}

/// The `csrf` value of the first form on a signed-in page.
fn page_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

both_backends!(web_forms_cover_every_right_without_javascript, |pg| {
    let e = Env::start(pg, |_| {}).await;
    // Signed out: caption defaults in a cookie, applied to the next caption.
    let t = signed_out_token(&e, "/account").await;
    let res = e
        .client
        .post(e.url("/account/preferences"))
        .header("cookie", format!("takarir_csrf={t}"))
        .form(&[
            ("csrf", t.as_str()),
            ("lang", "en"),
            ("style", "short"),
            ("alternatives", "2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let prefs = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            v.to_str()
                .ok()
                .filter(|v| v.starts_with("takarir_prefs="))
                .map(str::to_owned)
        })
        .expect("prefs cookie");
    assert!(
        prefs.starts_with("takarir_prefs=lang.en~style.short~alt.2;"),
        "{prefs}"
    );
    let form = Form::new().part(
        "image",
        Part::bytes(sample("coffee.jpg"))
            .file_name("c.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let v: Value = e
        .client
        .post(e.url("/api/v1/captions"))
        .header("cookie", "takarir_prefs=lang.en~style.short~alt.2")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["captions"].as_array().unwrap().len(),
        2,
        "alternatives from the cookie"
    );
    assert!(e
        .table_counts()
        .await
        .iter()
        .all(|(t, n)| t == "usage_daily" || *n == 0));

    // Sign up with the form (double-submit token), in English.
    let addr = email("web");
    let t = signed_out_token(&e, "/account/signup?lang=en").await;
    let res = e
        .client
        .post(e.url("/account/signup"))
        .header("cookie", format!("takarir_csrf={t}"))
        .form(&[
            ("csrf", t.as_str()),
            ("email", addr.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let session = session_cookie(&res).unwrap();
    let get_page = |q: &'static str| {
        e.client
            .get(e.url(&format!("/account{q}")))
            .header("cookie", format!("takarir_session={session}"))
            .send()
    };
    let html = get_page("?lang=en").await.unwrap().text().await.unwrap();
    assert!(
        html.contains("<html lang=\"en\">")
            && html.contains(&addr)
            && html.contains("not verified yet")
    );
    let csrf = page_csrf(&html);
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let mut fields = fields;
        fields.push(("csrf", csrf.clone()));
        e.client
            .post(e.url(&path))
            .header("cookie", format!("takarir_session={session}"))
            .form(&fields)
            .send()
    };
    // History and training on; a caption through the plain form (with the token) is kept.
    let r = post(
        "/account/preferences".into(),
        vec![
            ("history_enabled", "on".into()),
            ("training_consent", "on".into()),
            ("style", "sentence".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let form = Form::new().text("csrf", csrf.clone()).part(
        "image",
        Part::bytes(sample("coffee.jpg"))
            .file_name("c.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let r = e
        .client
        .post(e.url("/"))
        .header("cookie", format!("takarir_session={session}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let uid = e.user_id(&addr).await;
    let entries = e
        .db()
        .history()
        .list(uid, Default::default())
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(e.db().training().list(uid).await.unwrap().len(), 1);
    // Correct it, find it, delete it.
    let id = entries[0].id.0;
    let r = post(
        format!("/account/history/{id}/edit"),
        vec![("corrected_caption", "secangkir kopi".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = get_page("?q=kopi").await.unwrap().text().await.unwrap();
    assert!(html.contains("secangkir kopi"));
    assert_eq!(
        e.db().training().list(uid).await.unwrap()[0].caption,
        "secangkir kopi"
    );
    // Withdraw with one click: training items gone.
    let r = post("/account/consent".into(), vec![("granted", "false".into())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(e.db().training().list(uid).await.unwrap().is_empty());
    // Turning history off while it has entries: the form's choice decides.
    let r = post(
        "/account/preferences".into(),
        vec![("history_existing", "delete".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(e.db().history().count(uid).await.unwrap(), 0);
    // Correct the email address: unverified again until the new link is opened.
    let new_addr = email("webbaru");
    let r = post("/account/email".into(), vec![("email", new_addr.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mail = mail_to(&new_addr, "/account/verify?token=").await;
    let r = e
        .client
        .get(e.url(&format!(
            "/account/verify?token={}",
            link_token(&mail, "/account/verify")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let user = e.db().users().get(uid).await.unwrap().unwrap();
    assert_eq!(user.email, new_addr);
    assert!(user.email_verified_at.is_some());
    // Change the password with the form: the current one is checked, this session stays.
    let new_pw = "merpati-putih-terbang-3";
    let r = post(
        "/account/password".into(),
        vec![
            ("current_password", "bukan-ini-sandinya".into()),
            ("new_password", new_pw.into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // (the form posts carry no language: the answer is in Indonesian, the default)
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Email atau kata sandi salah."));
    let r = post(
        "/account/password".into(),
        vec![
            ("current_password", PASSWORD.into()),
            ("new_password", new_pw.into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account?msg=password_changed");
    let html = get_page("?lang=en&msg=password_changed")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Password changed. Your sessions on other devices have been signed out."));
    assert_eq!(
        e.login(&new_addr, PASSWORD, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        e.login(&new_addr, new_pw, None).await.status(),
        StatusCode::OK
    );
    // An API key through the form is shown once, in the answer (never in a URL).
    let r = post(
        "/account/keys".into(),
        vec![("name", "skrip".into()), ("scope_read", "on".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let at = html.find("<code id=\"new-key\">").unwrap() + "<code id=\"new-key\">".len();
    let key = html[at..].split('<').next().unwrap().to_string();
    assert!(key.starts_with("tkr_"));
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &Who::Key(key.clone()), None)
            .await
            .status(),
        StatusCode::OK
    );
    let html = get_page("").await.unwrap().text().await.unwrap();
    assert!(!html.contains(&key), "the key is not shown again");
    // Erasure: wrong password refused, right one erases.
    let r = post(
        "/account/delete".into(),
        vec![("password", "bukan-ini-sandinya".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(e.db().users().get(uid).await.unwrap().is_some());
    let r = post("/account/delete".into(), vec![("password", new_pw.into())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(e.db().users().get(uid).await.unwrap().is_none());
    for t in e.user_tables().await {
        assert_eq!(e.rows_of(&t, uid).await, 0, "{t}");
    }
    e.finish().await;
});

both_backends!(admin_page_shows_aggregates_and_audits_access, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let admin_addr = email("adm");
    let hash = takarir_server::service::accounts::auth::hash_password(PASSWORD)
        .await
        .unwrap();
    e.db()
        .users()
        .create(NewUser {
            email: &admin_addr,
            password_hash: &hash,
            role: Role::Admin,
        })
        .await
        .unwrap();
    let admin = Who::from_login(e.login(&admin_addr, PASSWORD, None).await).await;
    let addr = email("subjek");
    let user = e.register(&addr).await;
    let uid = e.user_id(&addr).await;
    // Not for users, not for anyone signed out.
    for who in [&user, &Who::Nobody] {
        let r = who
            .apply(e.client.get(e.url("/admin")))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == StatusCode::FORBIDDEN || r.status() == StatusCode::UNAUTHORIZED,
            "{}",
            r.status()
        );
    }
    let html = e
        .call(Method::GET, "/admin?lang=en", &admin, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"stat-accounts\">2<"));
    assert!(!html.contains(&addr), "no address in the overview");
    let csrf = page_csrf(&html);
    let open = |reason: &'static str| {
        admin
            .apply(
                e.client
                    .post(e.url(&format!("/admin/users/{}/access", uid.0))),
            )
            .form(&[("csrf", csrf.as_str()), ("reason", reason)])
            .send()
    };
    assert_eq!(open("").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert!(e.db().audit().list(uid).await.unwrap().is_empty());
    let r = open("permintaan pengguna lewat email").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(&addr));
    let page = e
        .call(Method::GET, "/account", &user, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("permintaan pengguna lewat email"),
        "the user sees the access"
    );
    e.finish().await;
});
