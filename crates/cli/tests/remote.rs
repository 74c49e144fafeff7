//! `takarir caption --server URL`: the same folder, captioned by a running `takarir serve`
//! (SQLite and a local object directory in a temp dir) as one batch job.

use std::process::Command;

use serde_json::Value;
mod common;
use common::root;
use common::Go;

/// `takarir serve` with the tiny test model and its data under `dir`: the process and its URL.
async fn serve(dir: &std::path::Path) -> (std::process::Child, String) {
    let data = dir.join("data").display().to_string();
    common::serve(&[("TAKARIR_DATA_DIR".into(), data)]).await
}

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
    let (mut server, base) = serve(tmp.path()).await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_makes_the_job_the_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["coffee.jpg", "rocket.jpg"] {
        std::fs::copy(root().join("samples").join(name), photos.join(name)).unwrap();
    }
    let (mut server, base) = serve(tmp.path()).await;
    let http = reqwest::Client::new();
    // An account with history on, and a key for the command line.
    let res = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({"email": "cli@contoh.id", "password": "jerapah-berlari-cepat-9"}))
        .go()
        .await;
    assert_eq!(res.status(), 201);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("takarir_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    let csrf = res.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let session = |r: reqwest::RequestBuilder| {
        r.header("cookie", format!("takarir_session={cookie}"))
            .header("x-csrf-token", &csrf)
    };
    let r = session(http.patch(format!("{base}/api/v1/me/preferences")))
        .json(&serde_json::json!({"history_enabled": true}))
        .go()
        .await;
    assert_eq!(r.status(), 200);
    let r = session(http.post(format!("{base}/api/v1/me/api-keys")))
        .json(&serde_json::json!({"name": "cli", "scopes": ["captions", "read"]}))
        .go()
        .await;
    assert_eq!(r.status(), 201);
    let key = r.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();

    let caption = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_takarir"))
            .args(["caption", "--server", &base, "--lang", "en", "--jsonl"])
            .arg(&photos)
            .env("TAKARIR_API_KEY", key)
            .output()
            .unwrap()
    };
    let out = caption(&key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let texts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["captions"][0]["text"].clone())
        .collect();
    assert_eq!(texts.len(), 2);
    let history: Value = http
        .get(format!("{base}/api/v1/me/history"))
        .bearer_auth(&key)
        .fetch_json()
        .await;
    let kept: Vec<Value> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["caption"].clone())
        .collect();
    assert_eq!(kept.len(), 2, "{history}");
    assert!(kept.iter().all(|c| texts.contains(c)), "{history}");

    // An unknown key is refused, not quietly made anonymous; the key needs a server.
    let out = caption("tkr_not_a_key");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut without_server = Command::new(env!("CARGO_BIN_EXE_takarir"));
    without_server
        .args(["caption", "--api-key", "k"])
        .arg(&photos);
    assert_eq!(without_server.output().unwrap().status.code(), Some(2));
    server.kill().unwrap();
    server.wait().unwrap();
}

/// One photo with the same options gets one caption from every door: the CLI on its own, the
/// CLI through a batch job, the API (multipart and raw body) and the web form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_photo_one_caption_from_every_door() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = tmp.path().join("coffee.jpg");
    std::fs::copy(root().join("samples/coffee.jpg"), &photo).unwrap();
    let bytes = std::fs::read(&photo).unwrap();
    let (mut server, base) = serve(tmp.path()).await;
    let http = reqwest::Client::new();
    for (style, alternatives) in [("sentence", "1"), ("short", "2")] {
        let flags = [
            "--lang",
            "en",
            "--style",
            style,
            "--alternatives",
            alternatives,
            "--gender-neutral",
        ];
        let cli = |remote: bool| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_takarir"));
            c.arg("caption").args(flags).arg("--jsonl").arg(&photo);
            if remote {
                c.args(["--server", &base]);
            } else {
                c.args(["--model"])
                    .arg(root().join("fixtures/parity/vit-gpt2-tiny"))
                    .args(["--threads", "1"]);
            }
            let out = c.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            texts(&v["captions"])
        };
        let query =
            format!("lang=en&style={style}&alternatives={alternatives}&gender_neutral=true");
        let multipart = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(bytes.clone()).file_name("coffee.jpg"),
        );
        let api: Value = http
            .post(format!("{base}/api/v1/captions?{query}"))
            .multipart(multipart)
            .fetch_json()
            .await;
        let raw: Value = http
            .post(format!("{base}/api/v1/captions?{query}"))
            .header("content-type", "image/jpeg")
            .body(bytes.clone())
            .fetch_json()
            .await;
        let form = reqwest::multipart::Form::new()
            .text("lang", "en")
            .text("style", style)
            .text("alternatives", alternatives)
            .text("gender_neutral", "true")
            .part(
                "image",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name("coffee.jpg"),
            );
        let page = http
            .post(format!("{base}/"))
            .multipart(form)
            .fetch_text()
            .await;
        let local = cli(false);
        assert_eq!(
            local.len(),
            alternatives.parse::<usize>().unwrap(),
            "{local:?}"
        );
        assert_eq!(texts(&api["captions"]), local, "API, {style}");
        assert_eq!(texts(&raw["captions"]), local, "raw body, {style}");
        assert_eq!(cli(true), local, "batch job, {style}");
        for t in &local {
            let escaped = t
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            assert!(page.contains(&escaped), "web form, {style}: {t}");
        }
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

fn texts(captions: &Value) -> Vec<String> {
    captions
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect()
}
