//! Many nodes, one queue: `takarir serve` processes on loopback ports share one PostgreSQL
//! database and one S3-compatible object store (both started by `scripts/test-services`; the
//! test fails without them, it is never skipped). A job of 300 images is sent to one node,
//! another node is killed with SIGKILL while it holds a lease, and the job must still finish
//! with every image captioned exactly once and no input object left.
//!
//! The model is the tiny fixture unless TAKARIR_MULTINODE_MODEL names another (to measure
//! throughput with the default model); images per second are printed.

use std::io::{Cursor, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use takarir_store::{Blobs, Db, KeyRing};
mod common;
use common::Go;
use common::{free_port, root};

struct Cluster {
    nodes: Vec<(Child, String)>,
    db_url: String,
    store_url: String,
    keys: String,
    admin_url: String,
    db_name: String,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (child, _) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn cluster(n: usize) -> Cluster {
    let endpoint = std::env::var("TAKARIR_TEST_S3_ENDPOINT")
        .expect("TAKARIR_TEST_S3_ENDPOINT: run through scripts/test or scripts/test-services");
    let bucket = std::env::var("TAKARIR_TEST_S3_BUCKET").unwrap_or_else(|_| "takarir-test".into());
    let (server, db_url, db_name) =
        takarir_store::test_support::fresh_postgres_database("takarir_multinode").await;
    let tag = db_name.trim_start_matches("takarir_multinode_").to_string();
    let store_url = format!(
        "s3://{bucket}/multinode-{tag}?endpoint={endpoint}&region=us-east-1&allow_http=true\
         &access_key_id=test&secret_access_key=test"
    );
    let keys = format!("k1:{}", KeyRing::generate_key_hex());
    // Migrate once up front, so the nodes do not race to create the schema.
    Db::connect(&db_url).await.unwrap().close().await;
    let dir = tempfile::tempdir().unwrap();
    let model = std::env::var("TAKARIR_MULTINODE_MODEL").unwrap_or_else(|_| {
        root()
            .join("fixtures/parity/vit-gpt2-tiny")
            .to_string_lossy()
            .into_owned()
    });
    let mut nodes = Vec::new();
    for i in 0..n {
        let port = free_port();
        let data = dir.path().join(format!("node{i}"));
        let child = Command::new(env!("CARGO_BIN_EXE_takarir"))
            .arg("serve")
            .env("TAKARIR_LISTEN", format!("127.0.0.1:{port}"))
            .env("TAKARIR_MODEL", &model)
            .env("TAKARIR_THREADS", "1")
            .env("TAKARIR_DATA_DIR", &data)
            .env("TAKARIR_DATABASE_URL", &db_url)
            .env("TAKARIR_OBJECT_STORE_URL", &store_url)
            .env("TAKARIR_ENCRYPTION_KEYS", &keys)
            .env("TAKARIR_JOB_LEASE_SECONDS", "3")
            .env("TAKARIR_RATE_LIMIT_PER_MINUTE", "0")
            .env("TAKARIR_JOB_MAX_FILES", "1000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("takarir serve starts");
        nodes.push((child, format!("http://127.0.0.1:{port}")));
    }
    for (_, base) in &nodes {
        common::wait_healthy(base).await;
    }
    Cluster {
        nodes,
        db_url,
        store_url,
        keys,
        admin_url: server,
        db_name,
        _dir: dir,
    }
}

impl Cluster {
    async fn drop_database(&self) {
        takarir_store::test_support::drop_postgres_database(&self.admin_url, &self.db_name).await;
    }
}

/// `n` distinct small PNGs in one ZIP.
fn photos_zip(n: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n {
        let img = image::RgbImage::from_fn(48, 32, |x, y| {
            image::Rgb([
                (x * 5 + i as u32) as u8,
                (y * 7) as u8,
                (i * 13 % 256) as u8,
            ])
        });
        let mut png = Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        w.start_file(format!("photo-{i:03}.png"), o).unwrap();
        w.write_all(png.get_ref()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

async fn submit(base: &str, zip: Vec<u8>) -> String {
    let form = reqwest::multipart::Form::new()
        .text("style", "detailed")
        .part(
            "archive",
            reqwest::multipart::Part::bytes(zip).file_name("photos.zip"),
        );
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/jobs"))
        .multipart(form)
        .go()
        .await;
    assert_eq!(res.status().as_u16(), 202);
    let v: Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn status(base: &str, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/jobs/{id}"))
        .fetch_json()
        .await
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Pending items leased to the node with this process id.
async fn leases_of(db: &Db, pid: u32) -> i64 {
    let Db::Postgres(pool) = db else {
        unreachable!()
    };
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM job_items WHERE state = 'pending' AND lease_owner LIKE $1",
    )
    .bind(format!("node-{pid}-%"))
    .fetch_one(pool)
    .await
    .unwrap();
    n
}

async fn check_exactly_once(c: &Cluster, id: &str, n: i64) -> i64 {
    let db = Db::connect(&c.db_url).await.unwrap();
    let Db::Postgres(pool) = &db else {
        unreachable!()
    };
    let (done, with_result, leased, retried): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE state = 'done'), COUNT(result), \
         COUNT(lease_owner), COUNT(*) FILTER (WHERE attempts > 1) \
         FROM job_items WHERE job_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((done, with_result, leased), (n, n, 0));
    let (jdone, jfailed, total): (i64, i64, i64) =
        sqlx::query_as("SELECT done, failed, total FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
    // One count per item: a second result for any item would push `done` past n.
    assert_eq!((jdone, jfailed, total), (n, 0, n));
    db.close().await;
    let blobs = Blobs::open(&c.store_url, KeyRing::parse(&c.keys).unwrap()).unwrap();
    let left = blobs.list("jobs/").await.unwrap();
    assert!(left.is_empty(), "input objects left behind: {left:?}");
    retried
}

/// One node, then three with one killed (one after the other, so the throughput figures do
/// not share the machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_one_node_then_three_surviving_sigkill() {
    one_node().await;
    three_nodes_with_sigkill().await;
}

async fn three_nodes_with_sigkill() {
    const N: usize = 300;
    let mut c = cluster(3).await;
    let zip = photos_zip(N);
    let started = Instant::now();
    let id = submit(&c.nodes[0].1, zip).await;
    let db = Db::connect(&c.db_url).await.unwrap();
    // Freeze node 1 at a moment it holds a lease, then kill it: its item must be taken over.
    let victim = c.nodes[1].0.id();
    while status(&c.nodes[0].1, &id).await["done"].as_i64().unwrap() < N as i64 / 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "node 1 never held a lease");
        signal(victim, "-STOP");
        if leases_of(&db, victim).await > 0 {
            break;
        }
        signal(victim, "-CONT");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let before_kill = status(&c.nodes[0].1, &id).await;
    c.nodes[1].0.kill().unwrap(); // SIGKILL
    c.nodes[1].0.wait().unwrap();
    let finished_before_kill = before_kill["done"].as_i64().unwrap();
    assert!(finished_before_kill < N as i64, "the kill came mid-job");
    let survivor = c.nodes[2].1.clone();
    let done = loop {
        let s = status(&survivor, &id).await;
        if s["status"] == "done" {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "job stalled: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(done["done"], N as i64);
    db.close().await;
    let retried = check_exactly_once(&c, &id, N as i64).await;
    assert!(retried >= 1, "the killed node's item was retried");
    println!(
        "3 nodes (one killed at {finished_before_kill}/{N}): {N} images in {secs:.1} s = {:.1} images/s; {retried} item(s) taken over",
        N as f64 / secs
    );
    c.drop_database().await;
}

async fn one_node() {
    const N: usize = 300;
    let c = cluster(1).await;
    let started = Instant::now();
    let id = submit(&c.nodes[0].1, photos_zip(N)).await;
    loop {
        let s = status(&c.nodes[0].1, &id).await;
        if s["status"] == "done" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "job stalled: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    check_exactly_once(&c, &id, N as i64).await;
    println!(
        "1 node: {N} images in {secs:.1} s = {:.1} images/s",
        N as f64 / secs
    );
    c.drop_database().await;
}
