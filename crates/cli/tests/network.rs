//! No unconfigured network traffic: `takarir caption` and `takarir serve` (captioning photos,
//! running for longer than ONNX Runtime's telemetry takes to start, about 9 s) run under
//! `strace -f`, which records every `connect` and every datagram sent with an address. With
//! SQLite and a local object store configured, and no relay or webhook, the only allowed
//! traffic is none at all: no connection to any internet or loopback address, no DNS query
//! (port 53, or the nscd/resolved sockets a name lookup tries first).
//!
//! `strace` is required (scripts/test installs it); without it the test fails, never skips.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{fixture_model, free_port, root, wait_healthy, Go};

/// The traced calls that carry a network address.
const TRACE: &str = "trace=connect,sendto,sendmsg,sendmmsg";

/// The lines of an strace log that reach for the network: an internet address, a DNS port, or
/// a name-service socket.
fn network_attempts(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter(|l| {
            l.contains("AF_INET")
                || l.contains("htons(53)")
                || l.contains("nscd")
                || l.contains("resolve")
                || l.contains("microsoft")
        })
        .map(str::to_string)
        .collect()
}

fn strace(log: &Path) -> Command {
    let found = Command::new("strace").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "strace is needed for this test (scripts/test installs it: apt-get install strace)"
    );
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-e", TRACE, "-o"])
        .arg(log)
        .arg(env!("CARGO_BIN_EXE_takarir"));
    c
}

#[test]
fn caption_makes_no_network_connection() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("caption.strace");
    let out = strace(&log)
        .args(["caption", "--model"])
        .arg(fixture_model())
        .args(["--lang", "en"])
        .arg(root().join("samples/coffee.jpg"))
        .arg(root().join("samples/rocket.jpg"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log.is_file(), "strace wrote its log");
    let attempts = network_attempts(&log);
    assert!(
        attempts.is_empty(),
        "takarir caption reached for the network: {attempts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_makes_no_unconfigured_connection() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.strace");
    let port = free_port();
    let started = Instant::now();
    let mut server = strace(&log)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("HOME", dir.path())
        .env("TAKARIR_DATA_DIR", dir.path().join("data"))
        .env("TAKARIR_MODEL", fixture_model())
        .env("TAKARIR_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let client = reqwest::Client::new();
    for photo in ["coffee.jpg", "chelsea.jpg"] {
        let form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(
                std::fs::read(root().join("samples").join(photo)).unwrap(),
            )
            .file_name(photo),
        );
        let answer = client
            .post(format!("{base}/api/v1/captions?lang=en"))
            .multipart(form)
            .fetch_json()
            .await;
        assert!(answer["captions"][0]["text"].is_string(), "{answer}");
    }
    // ONNX Runtime's telemetry, when on, starts about 9 s after the model loads, then retries.
    let stay = Duration::from_secs(20).saturating_sub(started.elapsed());
    tokio::time::sleep(stay).await;
    // Stop the traced server itself (stopping strace would only detach it): strace then ends.
    let children = format!("/proc/{0}/task/{0}/children", server.id());
    for pid in std::fs::read_to_string(children)
        .unwrap()
        .split_whitespace()
    {
        let _ = Command::new("kill").args(["-TERM", pid]).status();
    }
    let status = server.wait().unwrap();
    assert!(status.code().is_some(), "strace ended with its server");
    let attempts = network_attempts(&log);
    assert!(
        attempts.is_empty(),
        "takarir serve reached for the network: {attempts:#?}"
    );
}
