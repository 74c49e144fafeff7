//! Helpers shared by the CLI's integration tests that run `takarir serve` processes.
#![allow(dead_code)] // each test binary uses its own subset

#[path = "../../../server/tests/common/client.rs"]
mod client;

#[allow(unused_imports)] // not every test binary sends with it
pub use client::Go;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the service at `base` answers `/api/v1/health` with success (a minute at most).
pub async fn wait_healthy(base: &str) {
    let client = reqwest::Client::new();
    let ready = async {
        loop {
            if let Ok(r) = client.get(format!("{base}/api/v1/health")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .unwrap_or_else(|_| panic!("{base} answers /api/v1/health within a minute"));
}

/// The tiny English-only test model.
pub fn fixture_model() -> PathBuf {
    root().join("fixtures/parity/vit-gpt2-tiny")
}

/// Starts `takarir serve` on a free loopback port with the environment `env` (the tiny test
/// model and one thread unless `env` says otherwise), and waits until it answers: the process
/// and its URL.
pub async fn serve(env: &[(String, String)]) -> (Child, String) {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_takarir"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("TAKARIR_MODEL", fixture_model())
        .env("TAKARIR_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    (child, base)
}
