//! Batch jobs end to end: the real server on a random port with its worker and sweeper, on
//! SQLite and on PostgreSQL (a fresh database in the server that `scripts/test-services`
//! starts; without TAKARIR_TEST_POSTGRES_URL those tests fail, they are never skipped).

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::Client;
use serde_json::Value;
mod common;
use common::Go;
use common::{sample, wait_done, wait_for, Backend, TestServer};
use takarir_server::ServerConfig;

/// A node on `backend` with the job limits these tests use; `edit` changes more.
async fn start_with(backend: Backend, edit: impl FnOnce(&mut ServerConfig)) -> TestServer {
    TestServer::start(backend, |c| {
        c.max_upload_bytes = 2_000_000;
        c.job_max_bytes = 8_000_000;
        edit(c)
    })
    .await
}

async fn start(backend: Backend) -> TestServer {
    start_with(backend, |_| {}).await
}

fn file(bytes: Vec<u8>, name: &str) -> Part {
    Part::bytes(bytes).file_name(name.to_string())
}

/// A ZIP with: two photos (one in a folder), a path-traversal name, an absolute name, a
/// nested ZIP, a bomb (30 MB of zeros, a few KB packed), a text file, an empty file.
fn tricky_zip() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("coffee.jpg", o).unwrap();
    w.write_all(&sample("coffee.jpg")).unwrap();
    w.add_directory("sub/", o).unwrap();
    w.start_file("sub/rocket.jpg", o).unwrap();
    w.write_all(&sample("rocket.jpg")).unwrap();
    w.start_file("../../etc/evil.jpg", o).unwrap();
    w.write_all(&sample("coffee.jpg")).unwrap();
    w.start_file("/abs/evil.jpg", o).unwrap();
    w.write_all(&sample("coffee.jpg")).unwrap();
    w.start_file("inner.zip", o).unwrap();
    w.write_all(&common::zip_bytes()).unwrap();
    w.start_file("bomb.png", o.large_file(false)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..30 {
        w.write_all(&zeros).unwrap();
    }
    w.start_file("notes.jpg", o).unwrap();
    w.write_all(b"this is text, not a photo").unwrap();
    w.start_file("empty.png", o).unwrap();
    w.finish().unwrap().into_inner()
}

/// POSTs a job form.
async fn send_job(client: &Client, base: &str, form: Form) -> reqwest::Response {
    client
        .post(format!("{base}/api/v1/jobs"))
        .multipart(form)
        .go()
        .await
}

/// POSTs a job form; the creation answer as JSON.
async fn create_job(client: &Client, base: &str, form: Form) -> Value {
    send_job(client, base, form).await.json().await.unwrap()
}

/// A webhook receiver on loopback: its address, and each call's headers and body.
async fn hook_receiver() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, Vec<u8>)>,
) {
    use axum::http::HeaderMap;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(HeaderMap, Vec<u8>)>();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                tx.send((headers, body.to_vec())).unwrap();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    (addr, rx)
}

/// Objects left under `jobs/` in the node's local object store.
fn job_objects(data: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let root = data.join("objects/jobs");
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

async fn bad_input_and_formats(backend: Backend) {
    let node = start(backend).await;
    let client = Client::new();
    let form = Form::new()
        .text("lang", "en")
        .part("image", file(sample("chelsea.jpg"), "chelsea.jpg"))
        .part("image", file(b"GIF89a broken".to_vec(), "broken.gif"))
        .part("archive", file(tricky_zip(), "photos.zip"));
    let res = client
        .post(format!("{}/api/v1/jobs", node.base))
        .header("accept-language", "en")
        .multipart(form)
        .go()
        .await;
    assert_eq!(res.status().as_u16(), 202);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    // chelsea, broken.gif, and 8 entries (the directory is not a file).
    assert_eq!(created["total"], 10, "{created}");
    // Refused while unpacking: 2 unsafe names, the nested ZIP, the bomb, the empty file.
    assert_eq!(created["failed"], 5, "{created}");
    let done = wait_done(&client, &node.base, &id).await;
    assert_eq!(
        (done["done"].as_i64(), done["failed"].as_i64()),
        (Some(3), Some(7))
    );
    assert_eq!(done["progress"], 1.0);

    let jsonl = client
        .get(format!(
            "{}/api/v1/jobs/{id}/results?format=jsonl",
            node.base
        ))
        .fetch_text()
        .await;
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 10);
    let by_file = |f: &str| {
        rows.iter()
            .find(|r| r["file"] == f)
            .unwrap_or_else(|| panic!("{f}"))
    };
    // Only base names are kept: never the folders inside the archive.
    assert!(!jsonl.contains("sub/") && !jsonl.contains("../") && !jsonl.contains("/abs"));
    for good in ["chelsea.jpg", "coffee.jpg", "rocket.jpg"] {
        let r = by_file(good);
        assert!(r.get("error").is_none(), "{r}");
        let caps = r["captions"].as_array().unwrap();
        assert_eq!(caps.len(), 1);
        assert_eq!(caps[0]["lang"], "en");
        assert!(!caps[0]["text"].as_str().unwrap().trim().is_empty());
    }
    for (f, code) in [
        ("broken.gif", "corrupt_image"),
        ("evil.jpg", "unsafe_archive_path"),
        ("inner.zip", "nested_archive"),
        ("bomb.png", "payload_too_large"),
        ("notes.jpg", "unsupported_media_type"),
        ("empty.png", "empty_image"),
    ] {
        let r = by_file(f);
        assert_eq!(r["error"]["code"], code, "{r}");
        // In the language of the request that created the job.
        assert!(r["error"]["detail"].as_str().unwrap().is_ascii(), "{r}");
    }
    let evil = rows.iter().filter(|r| r["file"] == "evil.jpg");
    assert!(
        evil.clone().count() == 2
            && evil
                .into_iter()
                .all(|r| r["error"]["code"] == "unsafe_archive_path")
    );
    // Upload order is kept.
    let idx: Vec<i64> = rows.iter().map(|r| r["index"].as_i64().unwrap()).collect();
    assert_eq!(idx, (0..10).collect::<Vec<_>>());

    let csv = client
        .get(format!("{}/api/v1/jobs/{id}/results?format=csv", node.base))
        .fetch_text()
        .await;
    let lines: Vec<&str> = csv.lines().collect();
    // The CLI's header too: one row per caption (ranked, scored) or per failed file.
    assert_eq!(
        lines[0],
        "index,file,lang,rank,caption,score,error_code,error"
    );
    assert_eq!(lines.len(), 11);
    assert!(csv.contains(",,,,,nested_archive,"), "{csv}");

    let zip_bytes = client
        .get(format!("{}/api/v1/jobs/{id}/results?format=zip", node.base))
        .fetch_bytes()
        .await;
    let mut z = zip::ZipArchive::new(Cursor::new(zip_bytes.to_vec())).unwrap();
    let mut names: Vec<String> = z.file_names().map(String::from).collect();
    names.sort();
    assert_eq!(
        names,
        ["chelsea.txt", "coffee.txt", "errors.txt", "rocket.txt"]
    );
    let mut text = String::new();
    z.by_name("errors.txt")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.lines().count(), 7);

    let bad = client
        .get(format!("{}/api/v1/jobs/{id}/results?format=xml", node.base))
        .go()
        .await;
    assert_eq!(bad.status().as_u16(), 400);
    // Inputs are gone once captioned; nothing else of the job's is in the object store.
    assert!(
        job_objects(node.data_dir()).is_empty(),
        "{:?}",
        job_objects(node.data_dir())
    );

    // The job can be deleted at once; then it is gone.
    let job = format!("{}/api/v1/jobs/{id}", node.base);
    assert_eq!(client.delete(&job).go().await.status().as_u16(), 204);
    assert_eq!(client.get(&job).go().await.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_per_file_and_formats_sqlite() {
    bad_input_and_formats(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_per_file_and_formats_postgres() {
    bad_input_and_formats(Backend::Postgres).await;
}

/// A request-level problem (bad option, no file) stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_job_leaves_nothing() {
    let node = start(Backend::Sqlite).await;
    let client = Client::new();
    let form = Form::new()
        .part("image", file(sample("coffee.jpg"), "coffee.jpg"))
        .text("style", "poetic");
    let res = send_job(&client, &node.base, form).await;
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid_option");
    // Indonesian by default.
    assert!(body["title"].as_str().unwrap().contains("Opsi"));
    let res = client
        .post(format!("{}/api/v1/jobs", node.base))
        .multipart(Form::new().text("lang", "en"))
        .go()
        .await;
    assert_eq!(res.status().as_u16(), 400);
    let takarir_store::Db::Sqlite(pool) = &node.state.storage().db else {
        unreachable!()
    };
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert!(job_objects(node.data_dir()).is_empty());
    // The routes are in the OpenAPI document.
    let routes = "post /api/v1/jobs, get /api/v1/jobs/{id}, delete /api/v1/jobs/{id}, get /api/v1/jobs/{id}/results";
    common::assert_documented(&node, routes, "JobStatus").await;
}

/// The webhook arrives once, signed with the secret the creation answer showed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_signed() {
    let (hook_addr, mut rx) = hook_receiver().await;

    // The receiver is on loopback, which webhooks may reach only when configured to.
    let node = start_with(Backend::Sqlite, |c| c.webhook_private_networks = true).await;
    let client = Client::new();
    let form = Form::new()
        .part("image", file(sample("coffee.jpg"), "coffee.jpg"))
        .part("image", file(sample("rocket.jpg"), "rocket.jpg"))
        .text("webhook_url", format!("http://{hook_addr}/hook"));
    let created = create_job(&client, &node.base, form).await;
    let secret = created["webhook_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    let (headers, body) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("webhook within a minute")
        .unwrap();
    let ts: i64 = headers["x-takarir-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = headers["x-takarir-signature"].to_str().unwrap();
    assert_eq!(
        sig,
        takarir_server::service::jobs::webhook::sign(&secret, ts, &body)
    );
    assert_ne!(
        sig,
        takarir_server::service::jobs::webhook::sign("wrong", ts, &body)
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["job"]["id"], created["id"]);
    assert_eq!(v["job"]["done"], 2);
    let id = created["id"].as_str().unwrap();
    // Recorded as delivered, and sent once.
    let status = wait_for(&client, &node.base, id, 50, |s| s["webhook"] == "delivered")
        .await
        .unwrap_or_else(|s| s);
    assert_eq!(status["webhook"], "delivered");
    assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv())
        .await
        .is_err());
    // A non-http webhook is refused up front.
    let form = Form::new()
        .part("image", file(sample("coffee.jpg"), "coffee.jpg"))
        .text("webhook_url", "file:///etc/passwd");
    let res = send_job(&client, &node.base, form).await;
    assert_eq!(res.status().as_u16(), 400);
}

/// By default a webhook never reaches the server's own network: an address in the URL is
/// refused with the job, and a host name that resolves only to such addresses is not called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_private_networks_are_refused() {
    let (hook_addr, mut rx) = hook_receiver().await;
    let port = hook_addr.port();

    let node = start(Backend::Sqlite).await;
    let client = Client::new();
    for (url, lang) in [
        (format!("http://127.0.0.1:{port}/hook"), "en"),
        (format!("http://[::ffff:127.0.0.1]:{port}/hook"), "en"),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "id"),
        ("http://10.1.2.3/hook".to_string(), "en"),
    ] {
        let form = Form::new()
            .part("image", file(sample("coffee.jpg"), "coffee.jpg"))
            .text("webhook_url", url.clone());
        let res = client
            .post(format!("{}/api/v1/jobs", node.base))
            .header("Accept-Language", lang)
            .multipart(form)
            .go()
            .await;
        assert_eq!(res.status().as_u16(), 400, "{url}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "webhook_not_public", "{url}");
        let detail = problem["detail"].as_str().unwrap();
        if lang == "id" {
            assert!(detail.contains("alamat publik"), "{detail}");
        } else {
            assert!(detail.contains("public address"), "{detail}");
        }
    }
    // `localhost` is a host name: the job is accepted and captioned, the webhook is not sent.
    let form = Form::new()
        .part("image", file(sample("coffee.jpg"), "coffee.jpg"))
        .text("webhook_url", format!("http://localhost:{port}/hook"));
    let created = create_job(&client, &node.base, form).await;
    let id = created["id"].as_str().expect("job accepted");
    let status = wait_for(&client, &node.base, id, 300, |s| s["webhook"].is_string())
        .await
        .unwrap_or_else(|s| s);
    assert_eq!(status["done"], 1, "{status}");
    assert_eq!(
        status["webhook"], "failed: not a public address",
        "{status}"
    );
    assert!(rx.try_recv().is_err(), "the loopback receiver was called");
}

/// The sweeper deletes expired jobs and orphaned inputs, and records counts only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeper_deletes_expired_and_orphaned() {
    let node = start(Backend::Sqlite).await;
    let client = Client::new();
    let form = Form::new().part("image", file(sample("coffee.jpg"), "coffee.jpg"));
    let created = create_job(&client, &node.base, form).await;
    let id = created["id"].as_str().unwrap().to_string();
    wait_done(&client, &node.base, &id).await;
    let s = node.state.storage();
    // An input a crashed node left behind, for a finished item.
    s.blobs
        .put(
            &format!("jobs/{id}/in/000000"),
            b"left",
            takarir_store::Sensitivity::Personal,
        )
        .await
        .unwrap();
    let c = takarir_server::service::upkeep::sweep(&node.state)
        .await
        .unwrap();
    assert_eq!((c.jobs_deleted, c.objects_deleted), (0, 1));
    assert!(job_objects(node.data_dir()).is_empty());
    let takarir_store::Db::Sqlite(pool) = &s.db else {
        unreachable!()
    };
    sqlx::query("UPDATE jobs SET expires_ms = 0")
        .execute(pool)
        .await
        .unwrap();
    let c = takarir_server::service::upkeep::sweep(&node.state)
        .await
        .unwrap();
    assert_eq!(c.jobs_deleted, 1);
    let gone = client
        .get(format!("{}/api/v1/jobs/{id}", node.base))
        .go()
        .await;
    assert_eq!(gone.status().as_u16(), 404);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM job_items")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let runs = s.db.jobs().sweeps(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].1.jobs_deleted, 1);
}

/// A job takes a token of the client's caption rate limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_rate_limited() {
    let node = start_with(Backend::Sqlite, |c| c.rate_limit_per_minute = 1).await;
    let client = Client::new();
    let send = || {
        client
            .post(format!("{}/api/v1/jobs", node.base))
            .multipart(Form::new().part("image", file(sample("coffee.jpg"), "coffee.jpg")))
            .send()
    };
    assert_eq!(send().await.unwrap().status().as_u16(), 202);
    let second = send().await.unwrap();
    assert_eq!(second.status().as_u16(), 429);
    assert!(second.headers().contains_key("retry-after"));
}

/// A job keeps only each file's base name and its captions: no client folder, and no EXIF
/// value unless the request asked for `metadata`; the owner's access document holds the
/// results.
async fn jobs_keep_little(backend: Backend) {
    let node = start(backend).await;
    let client = Client::new();
    let user = node
        .db()
        .users()
        .create(takarir_store::users::NewUser {
            email: "job-owner@example.org",
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            role: takarir_store::users::Role::User,
        })
        .await
        .unwrap();
    let key = "tkr_jobs_keep_little_0123456789abcdefghijklmn";
    node.db()
        .api_keys()
        .create(user.id, "k", key, &["captions", "read"])
        .await
        .unwrap();
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    let owner = Client::builder().default_headers(auth).build().unwrap();
    let rotated = sample("chelsea-exif-rotated.jpg");
    let mut ids = Vec::new();
    for features in [None, Some("caption,metadata")] {
        let mut form = Form::new()
            .text("lang", "en")
            .part(
                "image",
                file(rotated.clone(), r"C:\Users\ani\Pictures\kucing.jpg"),
            )
            .part(
                "image",
                file(sample("coffee.jpg"), "holiday/2025/ani/kopi.jpg"),
            );
        if let Some(f) = features {
            form = form.text("features", f);
        }
        let res = client
            .post(format!("{}/api/v1/jobs", node.base))
            .bearer_auth(key)
            .multipart(form)
            .go()
            .await;
        assert_eq!(res.status().as_u16(), 202);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        // The job is the user's: only their key may poll it (anyone else gets 404).
        wait_done(&owner, &node.base, &id).await;
        ids.push(id);
    }
    for (n, id) in ids.iter().enumerate() {
        let items = node.db().jobs().items(id).await.unwrap();
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["kucing.jpg", "kopi.jpg"]);
        let stored: Vec<Value> = items
            .iter()
            .map(|i| serde_json::from_str(i.result.as_deref().unwrap()).unwrap())
            .collect();
        for r in &stored {
            let text = r.to_string();
            assert!(
                !text.contains("Users") && !text.contains("holiday"),
                "{text}"
            );
            assert!(r["captions"][0]["text"].is_string(), "{r}");
        }
        if n == 0 {
            assert!(
                stored.iter().all(|r| r.get("metadata").is_none()),
                "{stored:?}"
            );
        } else {
            // Asked for: the EXIF orientation of the rotated photo is kept with this job.
            assert_eq!(stored[0]["metadata"]["orientation"], 6, "{:?}", stored[0]);
        }
    }
    let me = client
        .get(format!("{}/api/v1/me", node.base))
        .bearer_auth(key)
        .fetch_json()
        .await;
    let jobs = me["jobs"].as_array().unwrap_or_else(|| panic!("{me}"));
    assert_eq!(jobs.len(), 2, "{me}");
    for j in jobs {
        let results = j["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{j}");
        assert_eq!(results[0]["file"], "kucing.jpg");
        assert!(results[1]["captions"][0]["text"].is_string(), "{j}");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_keep_base_names_and_no_exif_unless_asked_sqlite() {
    jobs_keep_little(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_keep_base_names_and_no_exif_unless_asked_postgres() {
    jobs_keep_little(Backend::Postgres).await;
}
/// A batch job asked for text: each result record carries the lines read, and the caption of
/// the photo with a sign quotes it; a photo without writing reads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_records_carry_the_text_read() {
    let node = start(Backend::Sqlite).await;
    let client = Client::new();
    let sign = std::fs::read(common::root().join("fixtures/text-parity/12.webp")).unwrap();
    let form = Form::new()
        .text("features", "caption,text")
        .part("image", file(sample("chelsea.jpg"), "chelsea.jpg"))
        .part("image", file(sign, "sign.webp"));
    let created = create_job(&client, &node.base, form).await;
    let id = created["id"].as_str().unwrap().to_string();
    wait_done(&client, &node.base, &id).await;
    let jsonl = client
        .get(format!(
            "{}/api/v1/jobs/{id}/results?format=jsonl",
            node.base
        ))
        .fetch_text()
        .await;
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_file = |f: &str| rows.iter().find(|r| r["file"] == f).unwrap();
    let cat = by_file("chelsea.jpg");
    assert_eq!(cat["text"]["lines"], serde_json::json!([]), "{cat}");
    let sign = by_file("sign.webp");
    let lines = sign["text"]["lines"].as_array().unwrap();
    assert!(
        lines.iter().any(|l| l["text"] == "JALAN DITUTUP"
            && l["polygon"].as_array().is_some_and(|p| p.len() == 4)),
        "{sign}"
    );
    assert!(sign["text"]["full_text"]
        .as_str()
        .unwrap()
        .contains("JALAN DITUTUP"));
    let caption = sign["captions"][0]["text"].as_str().unwrap();
    assert!(
        caption.contains("“") && caption.contains("JALAN DITUTUP"),
        "{caption}"
    );
    node.stop().await;
}
