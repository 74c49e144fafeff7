//! Helpers shared by the server's integration tests: the repository's files and test bodies.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Client;
use serde_json::Value;

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

/// The database for a test server: `None` (SQLite in the data directory) unless
/// TAKARIR_TEST_BACKEND=postgres, then a fresh PostgreSQL database (`scripts/test` runs the
/// HTTP and privacy suites once more that way).
pub async fn test_database_url() -> Option<String> {
    if std::env::var("TAKARIR_TEST_BACKEND").ok().as_deref() != Some("postgres") {
        return None;
    }
    Some(fresh_postgres_url().await)
}

/// A fresh database in the PostgreSQL server named by TAKARIR_TEST_POSTGRES_URL (which
/// `scripts/test-services` starts); its URL.
pub async fn fresh_postgres_url() -> String {
    takarir_store::test_support::fresh_postgres_database("takarir_srv")
        .await
        .1
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
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if until(&s) {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(s)
}
