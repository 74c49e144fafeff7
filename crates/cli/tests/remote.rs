//! `takarir caption --server URL`: the same folder, captioned by a running `takarir serve`
//! (SQLite and a local object directory in a temp dir) as one batch job.

use std::process::{Command, Stdio};

use serde_json::Value;
mod common;
use common::root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caption_through_a_server_job() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(photos.join("nested")).unwrap();
    std::fs::copy(root().join("samples/coffee.jpg"), photos.join("coffee.jpg")).unwrap();
    std::fs::copy(
        root().join("samples/rocket.jpg"),
        photos.join("nested/rocket.jpg"),
    )
    .unwrap();
    std::fs::write(photos.join("broken.jpg"), b"\xff\xd8\xff\xe0 not really").unwrap();
    let port = common::free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_takarir"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("TAKARIR_DATA_DIR", tmp.path().join("data"))
        .env(
            "TAKARIR_MODEL",
            root().join("fixtures/parity/vit-gpt2-tiny"),
        )
        .env("TAKARIR_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    common::wait_healthy(&base).await;

    let out = Command::new(env!("CARGO_BIN_EXE_takarir"))
        .args([
            "caption",
            "--server",
            &base,
            "--lang",
            "en",
            "--jsonl",
            "--sidecar",
            "txt",
        ])
        .arg(&photos)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "one file failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("error: ").count(), 1, "{stderr}");
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    let good: Vec<&Value> = rows.iter().filter(|r| r.get("error").is_none()).collect();
    assert_eq!(good.len(), 2);
    for r in &good {
        assert_eq!(r["captions"][0]["lang"], "en");
        assert!(!r["captions"][0]["text"].as_str().unwrap().is_empty());
    }
    assert!(photos.join("coffee.txt").is_file());
    assert!(photos.join("nested/rocket.txt").is_file());
    // Options the service does not take are refused locally.
    let bad = Command::new(env!("CARGO_BIN_EXE_takarir"))
        .args(["caption", "--server", &base, "--beams", "4"])
        .arg(&photos)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    server.kill().unwrap();
    server.wait().unwrap();
    // The job was deleted after its results were read: no inputs or rows remain.
    let objects = tmp.path().join("data/objects/jobs");
    let left = std::fs::read_dir(&objects).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0);
}
