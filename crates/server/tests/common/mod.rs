//! The server's integration-test harness, shared by every suite: one way to start the real
//! server on a random port ([`TestServer::start`]) on the backend a test picks ([`Backend`]),
//! the repository's files, and test bodies.
#![allow(dead_code)] // each test binary uses its own subset

mod client;

pub use client::Go;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::Client;
use serde_json::Value;
use takarir_engine::{Captioner, CaptionerOptions};
use takarir_server::{AppState, Server, ServerConfig, Storage};
use takarir_store::Db;

/// The database behind a test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the server's data directory.
    Sqlite,
    /// A fresh database in the PostgreSQL server named by TAKARIR_TEST_POSTGRES_URL (which
    /// `scripts/test-services` starts; without it the test fails, it is never skipped).
    Postgres,
}

impl Backend {
    /// PostgreSQL when TAKARIR_TEST_BACKEND=postgres (`scripts/test` runs the HTTP and privacy
    /// suites once more that way), else SQLite.
    pub fn from_env() -> Backend {
        match std::env::var("TAKARIR_TEST_BACKEND").ok().as_deref() {
            Some("postgres") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// PostgreSQL for `true`.
    pub fn postgres_if(pg: bool) -> Backend {
        if pg {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// The fixture model, loaded once per test binary.
pub fn captioner() -> Arc<Captioner> {
    static C: OnceLock<Arc<Captioner>> = OnceLock::new();
    C.get_or_init(|| {
        let mut o = CaptionerOptions::new(model_dir());
        o.threads = 1;
        Arc::new(Captioner::load(&o).expect("fixture model loads"))
    })
    .clone()
}

/// Where a server keeps its data: a temporary directory it owns, or one the test gave.
enum DataDir {
    Owned(tempfile::TempDir),
    Given(PathBuf),
}

/// A running server: the real `Server` on 127.0.0.1 with a random port, the fixture model,
/// no rate limit, and a client that follows no redirect and reuses no connection (a request
/// refused before its body is read makes the server close its connection, which a pooled one
/// can race).
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The client.
    pub client: Client,
    /// The server's state (its storage, configuration, ...).
    pub state: AppState,
    /// The server's storage, opened beside it.
    pub storage: Storage,
    data: DataDir,
    pg: Option<(String, String)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server on `backend`; `edit` changes its configuration first.
    pub async fn start(backend: Backend, edit: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::start_with(backend, captioner(), edit).await
    }

    /// [`TestServer::start`] serving another model than the fixture one.
    pub async fn start_with(
        backend: Backend,
        captioner: Arc<Captioner>,
        edit: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        TestServer::start_in(DataDir::Owned(dir), &path, backend, captioner, edit).await
    }

    /// [`TestServer::start`] with its data in `data_dir`, which the test keeps.
    pub async fn start_at(
        data_dir: &Path,
        backend: Backend,
        edit: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let given = DataDir::Given(data_dir.to_path_buf());
        TestServer::start_in(given, data_dir, backend, captioner(), edit).await
    }

    async fn start_in(
        data: DataDir,
        path: &Path,
        backend: Backend,
        captioner: Arc<Captioner>,
        edit: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        // Server errors into the test's output (shown when a test fails).
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        std::fs::create_dir_all(path).unwrap();
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let (server, url, name) =
                    takarir_store::test_support::fresh_postgres_database("takarir_srv").await;
                Some((server, name, url))
            }
        };
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            model: model_dir(),
            text_model: Some(root().join("models/text")),
            threads: Some(1),
            rate_limit_per_minute: 0,
            shutdown_grace_seconds: 5,
            data_dir: path.to_path_buf(),
            database_url: pg.as_ref().map(|(_, _, url)| url.clone()),
            ..ServerConfig::default()
        };
        edit(&mut config);
        let storage = Storage::open(&config).await.expect("storage opens");
        let state = AppState::new(config.clone(), captioner, storage.clone());
        let server = Server::bind(config, state.clone()).await.expect("binds");
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            client: Client::builder()
                .pool_max_idle_per_host(0)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            state,
            storage,
            data,
            pg: pg.map(|(server, name, _)| (server, name)),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.storage.db
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        match &self.data {
            DataDir::Owned(d) => d.path(),
            DataDir::Given(p) => p,
        }
    }

    /// The PostgreSQL server and database name, when on PostgreSQL.
    pub fn postgres(&self) -> Option<&(String, String)> {
        self.pg.as_ref()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A GET of `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).go().await
    }

    /// Graceful shutdown: the server must end cleanly within its grace period; then its
    /// PostgreSQL database, if any, is dropped.
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).ok();
        let task = self.task.take().unwrap();
        let r = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("server stops within the grace period")
            .expect("server task did not panic");
        r.expect("server ran without error");
        self.storage.db.close().await;
        if let Some((server, name)) = self.pg.take() {
            takarir_store::test_support::drop_postgres_database(&server, &name).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A photo from samples/.
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(root().join("samples").join(name)).expect("sample photo")
}

/// The tiny English-only parity model the tests serve.
pub fn model_dir() -> String {
    root()
        .join("fixtures/parity/vit-gpt2-tiny")
        .to_string_lossy()
        .into_owned()
}

/// A small valid ZIP archive (one stored file "a.txt" containing "hi"): not an image.
pub fn zip_bytes() -> Vec<u8> {
    let mut z = b"PK\x03\x04\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    z.extend_from_slice(&[0xd9, 0x86, 0x99, 0x5d, 2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0]);
    z.extend_from_slice(b"a.txthi");
    z.extend_from_slice(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    z
}

/// Polls the job's status until it is done (a minute at most); that status.
pub async fn wait_done(client: &Client, base: &str, id: &str) -> Value {
    wait_for(client, base, id, 600, |s| s["status"] == "done")
        .await
        .unwrap_or_else(|s| panic!("job {id} did not finish: {s}"))
}

/// Polls the job's status every 100 ms, at most `tries` times, until `until` holds: Ok with
/// that status, or Err with the last one.
pub async fn wait_for(
    client: &Client,
    base: &str,
    id: &str,
    tries: usize,
    until: impl Fn(&Value) -> bool,
) -> Result<Value, Value> {
    let mut s = Value::Null;
    for _ in 0..tries {
        s = client
            .get(format!("{base}/api/v1/jobs/{id}"))
            .fetch_json()
            .await;
        if until(&s) {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(s)
}

/// Asserts that `/api/v1/openapi.json` of `s` documents `routes` (`"get /a, post /b"`) and
/// `schema`.
pub async fn assert_documented(s: &TestServer, routes: &str, schema: &str) {
    let doc = s.get("/api/v1/openapi.json").await.json::<Value>().await;
    let doc = doc.unwrap();
    for (method, path) in routes.split(", ").filter_map(|r| r.split_once(' ')) {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
}

/// A multipart part holding the sample photo `sample_name`, sent as `file_name` (image/jpeg).
pub fn jpeg_part(sample_name: &str, file_name: &str) -> reqwest::multipart::Part {
    let part = reqwest::multipart::Part::bytes(sample(sample_name));
    part.file_name(file_name.to_string())
        .mime_str("image/jpeg")
        .unwrap()
}
