//! Backup and restore with the real `takarir` binary, on SQLite + a local object directory and
//! on PostgreSQL + an S3-compatible server (started by `scripts/test-services`; without them the
//! PostgreSQL test fails, it is never skipped): back up while the service runs, erase a user,
//! lose the database and the objects, restore: the erased user stays erased, everyone else's
//! data is back, and the restored service answers requests. Prints the restore time for a
//! database with 10,000 history rows. Likewise for lesser withdrawals made through the API
//! after a backup (training consent, a history entry, a job, an API key, an export): after
//! the restore every one is still withdrawn or deleted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Instant;

use serde_json::Value;
use takarir_store::history::NewHistoryEntry;
use takarir_store::users::{NewUser, Role};
use takarir_store::{Blobs, Db, KeyRing, Sensitivity};
mod common;
use common::root;
use common::Go;

const HISTORY_ROWS: usize = 10_000;

struct Setup {
    env: Vec<(String, String)>,
    db_url: String,
    store_url: String,
    keys: String,
    pg_admin: Option<(String, String)>,
    dir: tempfile::TempDir,
}

async fn setup(backend: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keys = format!("k1:{}", KeyRing::generate_key_hex());
    let (db_url, store_url, pg_admin) = if backend == "sqlite" {
        (
            format!("sqlite://{}/db/takarir.db", dir.path().display()),
            format!("file://{}/objects", dir.path().display()),
            None,
        )
    } else {
        let endpoint = std::env::var("TAKARIR_TEST_S3_ENDPOINT")
            .expect("TAKARIR_TEST_S3_ENDPOINT: run through scripts/test or scripts/test-services");
        let bucket =
            std::env::var("TAKARIR_TEST_S3_BUCKET").unwrap_or_else(|_| "takarir-test".into());
        let (server, url, name) =
            takarir_store::test_support::fresh_postgres_database("takarir_backup").await;
        (
            url,
            format!(
                "s3://{bucket}/{name}?endpoint={endpoint}&region=us-east-1&allow_http=true\
                 &access_key_id=test&secret_access_key=test"
            ),
            Some((server, name)),
        )
    };
    let env = vec![
        (
            "TAKARIR_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ),
        ("TAKARIR_DATABASE_URL".into(), db_url.clone()),
        ("TAKARIR_OBJECT_STORE_URL".into(), store_url.clone()),
        ("TAKARIR_ENCRYPTION_KEYS".into(), keys.clone()),
        (
            "TAKARIR_MODEL".into(),
            root()
                .join("fixtures/parity/vit-gpt2-tiny")
                .display()
                .to_string(),
        ),
        ("TAKARIR_THREADS".into(), "1".into()),
    ];
    Setup {
        env,
        db_url,
        store_url,
        keys,
        pg_admin,
        dir,
    }
}

impl Setup {
    fn takarir(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_takarir"));
        c.args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    async fn serve(&self) -> (Child, String) {
        common::serve(&self.env).await
    }

    fn run_json(&self, args: &[&str]) -> Value {
        let out = self.takarir(args).output().unwrap();
        assert!(
            out.status.success(),
            "takarir {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn blobs(&self) -> Blobs {
        Blobs::open(&self.store_url, KeyRing::parse(&self.keys).unwrap()).unwrap()
    }

    /// The disaster: the database and every object but the erasure and withdrawal records are
    /// gone.
    async fn lose_everything(&self) {
        match &self.pg_admin {
            None => std::fs::remove_dir_all(self.dir.path().join("db")).unwrap(),
            Some((server, name)) => {
                let admin = sqlx::PgPool::connect(server).await.unwrap();
                sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await
                    .unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
            }
        }
        let blobs = self.blobs();
        for path in blobs.list("").await.unwrap() {
            if !path.starts_with("erasure-log/") && !path.starts_with("withdrawal-log/") {
                blobs.delete(&path).await.unwrap();
            }
        }
    }
}

async fn count(db: &Db, sql: &str, user: i64) -> i64 {
    match db {
        Db::Sqlite(p) => sqlx::query_scalar(sql)
            .bind(user)
            .fetch_one(p)
            .await
            .unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(sql)
            .bind(user)
            .fetch_one(p)
            .await
            .unwrap(),
    }
}

async fn fill_history(db: &Db, user: i64, n: usize) {
    // One transaction: 10,000 single-row autocommits would dominate the test's time.
    macro_rules! fill {
        ($pool:expr) => {{
            let mut tx = $pool.begin().await.unwrap();
            for i in 0..n {
                sqlx::query(
                    "INSERT INTO history (user_id, caption, lang, style, width, height, format, created_at) \
                     VALUES ($1, $2, 'id', 'sentence', 640, 480, 'jpeg', $3)",
                )
                .bind(user)
                .bind(format!("seekor kucing nomor {i}"))
                .bind(time::OffsetDateTime::now_utc())
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
        }};
    }
    match db {
        Db::Sqlite(p) => fill!(p),
        Db::Postgres(p) => fill!(p),
    }
}

async fn scenario(backend: &str) {
    let s = setup(backend).await;
    let db = Db::connect(&s.db_url).await.unwrap();
    let blobs = s.blobs();
    let new = |email| NewUser {
        email,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        role: Role::User,
    };
    let alice = db.users().create(new("alice@example.org")).await.unwrap();
    let bob = db.users().create(new("bob@example.org")).await.unwrap();
    for u in [&alice, &bob] {
        db.history()
            .create(
                u.id,
                NewHistoryEntry {
                    caption: "seekor anjing di pantai",
                    lang: "id",
                    style: "sentence",
                    width: 10,
                    height: 10,
                    format: "jpeg",
                },
            )
            .await
            .unwrap();
        let path = format!("users/{}/training/1.jpg", u.id.0);
        blobs
            .put(
                &path,
                format!("photo of {}", u.id.0).as_bytes(),
                Sensitivity::Personal,
            )
            .await
            .unwrap();
    }
    // A large object (an export, streamed in 1 MiB pieces): backed up and restored a part at
    // a time, past the size restored in one request.
    let big: Vec<u8> = (0..20usize << 20).map(|i| (i * 7 % 253) as u8).collect();
    let big_path = format!("users/{}/exports/big.zip", bob.id.0);
    let pieces: Vec<_> = big
        .chunks(1 << 20)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    blobs
        .put_stream(
            &big_path,
            futures_util::stream::iter(pieces),
            Sensitivity::Personal,
        )
        .await
        .unwrap();
    fill_history(&db, bob.id.0, HISTORY_ROWS - 2).await;
    let alice_hash = alice.subject_hash();

    // Back up while the service runs.
    let (mut server, _) = s.serve().await;
    let backup_dir = s.dir.path().join("backup");
    let b = s.run_json(&["backup", "--to", backup_dir.to_str().unwrap()]);
    assert_eq!(b["objects"], 3, "{b}");
    assert!(backup_dir.join("manifest.json").is_file());
    // A second backup into the same (non-empty) directory is refused.
    let again = s
        .takarir(&["backup", "--to", backup_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    // Personal objects stay encrypted in the backup.
    let copied = walk(&backup_dir.join("objects"));
    assert_eq!(copied.len(), 3);
    for f in &copied {
        let raw = std::fs::read(f).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("photo of"));
    }

    // Alice deletes her account after the backup.
    takarir_store::backup::erase_user(&db, &blobs, alice.id)
        .await
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    db.close().await;

    s.lose_everything().await;
    let started = Instant::now();
    let r = s.run_json(&["restore", "--from", backup_dir.to_str().unwrap()]);
    let restore_s = started.elapsed().as_secs_f64();
    assert_eq!(r["erasures_replayed"], 1, "{r}");

    let db = Db::connect(&s.db_url).await.unwrap();
    assert!(db
        .users()
        .get_by_email("alice@example.org")
        .await
        .unwrap()
        .is_none());
    assert!(db.users().get(alice.id).await.unwrap().is_none());
    let sql = "SELECT COUNT(*) FROM history WHERE user_id = $1";
    assert_eq!(count(&db, sql, alice.id.0).await, 0);
    assert!(db.erasure_log().contains(&alice_hash).await.unwrap());
    assert!(blobs
        .list(&format!("users/{}", alice.id.0))
        .await
        .unwrap()
        .is_empty());
    // Everyone else is back.
    let bob2 = db.users().get(bob.id).await.unwrap().expect("bob restored");
    assert_eq!(bob2.email, "bob@example.org");
    assert_eq!(count(&db, sql, bob.id.0).await, HISTORY_ROWS as i64 - 1);
    let photo = blobs
        .get(&format!("users/{}/training/1.jpg", bob.id.0))
        .await
        .unwrap();
    assert_eq!(&photo[..], format!("photo of {}", bob.id.0).as_bytes());
    assert!(
        blobs.get(&big_path).await.unwrap() == big,
        "the large object comes back intact"
    );
    db.close().await;

    // The restored service answers.
    let (mut server, base) = s.serve().await;
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(std::fs::read(root().join("samples/coffee.jpg")).unwrap())
            .file_name("coffee.jpg"),
    );
    let url = format!("{base}/api/v1/captions?lang=en");
    let answer = reqwest::Client::new().post(url).multipart(form);
    let answer = answer.fetch_json().await;
    assert!(answer["captions"][0]["text"].is_string(), "{answer}");
    server.kill().unwrap();
    server.wait().unwrap();
    println!(
        "{backend}: restore of {HISTORY_ROWS} history rows + {} objects took {restore_s:.2} s \
         (takarir restore wall time, process start included; internal {:.2} s)",
        r["objects"],
        r["seconds"].as_f64().unwrap()
    );
    if let Some((server, name)) = &s.pg_admin {
        takarir_store::test_support::drop_postgres_database(server, name).await;
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_keeps_erasures_sqlite() {
    scenario("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_keeps_erasures_postgres() {
    scenario("postgres").await;
}

/// An erasure whose object deletion fails (here: the user's folder in the object store cannot
/// be walked, a symlink loop standing in for an outage) has already written its replay record,
/// so restoring a backup taken before it still erases the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_whose_objects_fail_is_still_replayed_by_a_restore() {
    let s = setup("sqlite").await;
    let db = Db::connect(&s.db_url).await.unwrap();
    let blobs = s.blobs();
    let carol = db
        .users()
        .create(NewUser {
            email: "carol@example.org",
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            role: Role::User,
        })
        .await
        .unwrap();
    let photo = format!("users/{}/training/1.jpg", carol.id.0);
    blobs
        .put(&photo, b"photo of carol", Sensitivity::Personal)
        .await
        .unwrap();
    let backup_dir = s.dir.path().join("backup");
    s.run_json(&["backup", "--to", backup_dir.to_str().unwrap()]);

    let folder = s
        .dir
        .path()
        .join(format!("objects/users/{}/training", carol.id.0));
    let trap = folder.join("loop");
    std::os::unix::fs::symlink(&folder, &trap).unwrap();
    let erased = takarir_store::backup::erase_user(&db, &blobs, carol.id).await;
    assert!(erased.is_err(), "deleting the objects fails");
    assert!(db.users().get(carol.id).await.unwrap().is_none());
    let records = blobs.list("erasure-log").await.unwrap();
    assert_eq!(records.len(), 1, "the replay record was written first");
    std::fs::remove_file(&trap).unwrap();
    db.close().await;

    s.lose_everything().await;
    let r = s.run_json(&["restore", "--from", backup_dir.to_str().unwrap()]);
    assert_eq!(r["erasures_replayed"], 1, "{r}");
    let db = Db::connect(&s.db_url).await.unwrap();
    let carol_again = db.users().get_by_email("carol@example.org").await;
    assert!(carol_again.unwrap().is_none(), "erased again");
    assert!(blobs.get(&photo).await.is_err(), "her photo is gone again");
    db.close().await;
}

/// A photo as a multipart form part.
fn photo_part(name: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(std::fs::read(root().join("samples/coffee.jpg")).unwrap())
        .file_name(name.to_string())
}

/// Back up; then, through the running service, withdraw training consent, delete a history
/// entry, delete a batch job, revoke an API key and an export; lose everything; restore: every
/// one of them is still withdrawn or deleted, and what was not withdrawn is back.
async fn withdrawals_scenario(backend: &str) {
    let s = setup(backend).await;
    let db = Db::connect(&s.db_url).await.unwrap();
    let blobs = s.blobs();
    let password = "dana's long password";
    let password_hash = takarir_server::service::accounts::auth::hash_password(password)
        .await
        .unwrap();
    let dana = db
        .users()
        .create(NewUser {
            email: "dana@example.org",
            password_hash: &password_hash,
            role: Role::User,
        })
        .await
        .unwrap();
    let scopes = ["captions", "read", "write"];
    let key = "tkr_withdrawals_test_main_key_0123456789abcdef";
    db.api_keys()
        .create(dana.id, "main", key, &scopes)
        .await
        .unwrap();
    let spare = "tkr_withdrawals_test_spare_key_0123456789abcdef";
    let spare_row = db
        .api_keys()
        .create(dana.id, "spare", spare, &scopes)
        .await
        .unwrap();
    db.close().await;

    let (mut server, base) = s.serve().await;
    let http = reqwest::Client::new();
    let auth = format!("Bearer {key}");
    let r = http
        .patch(format!("{base}/api/v1/me/preferences"))
        .header("authorization", &auth)
        .json(&serde_json::json!({"history_enabled": true}))
        .go()
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = http
        .post(format!("{base}/api/v1/me/consents/training"))
        .header("authorization", &auth)
        .json(&serde_json::json!({"granted": true}))
        .go()
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    // Two captions: history entries and training items.
    for _ in 0..2 {
        let form = reqwest::multipart::Form::new().part("image", photo_part("coffee.jpg"));
        let answer = http
            .post(format!("{base}/api/v1/captions?lang=en"))
            .header("authorization", &auth)
            .multipart(form)
            .fetch_json()
            .await;
        assert!(answer["captions"][0]["text"].is_string(), "{answer}");
    }
    let form = reqwest::multipart::Form::new().part("image", photo_part("holiday/coffee.jpg"));
    let job = http
        .post(format!("{base}/api/v1/jobs"))
        .header("authorization", &auth)
        .multipart(form)
        .fetch_json()
        .await;
    let job_id = job["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"))
        .to_string();
    let export = http
        .post(format!("{base}/api/v1/me/exports"))
        .header("authorization", &auth)
        .fetch_json()
        .await;
    let export_id = export["id"].as_i64().unwrap_or_else(|| panic!("{export}"));
    // Wait for the job and the export to be done, so that both are in the backup.
    let done = async {
        loop {
            let j = http
                .get(format!("{base}/api/v1/jobs/{job_id}"))
                .header("authorization", &auth)
                .fetch_json()
                .await;
            let e = http
                .get(format!("{base}/api/v1/me/exports"))
                .header("authorization", &auth)
                .fetch_json()
                .await;
            if j["status"] == "done" && e["exports"][0]["status"] == "ready" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), done)
        .await
        .expect("the job and the export are done within a minute");

    let db = Db::connect(&s.db_url).await.unwrap();
    let history = db
        .history()
        .list(dana.id, Default::default())
        .await
        .unwrap();
    // Two captions and the job's: three entries, and as many training items.
    assert_eq!(history.len(), 3);
    let deleted = history[1].id;
    let kept: Vec<_> = history
        .iter()
        .map(|h| h.id)
        .filter(|&h| h != deleted)
        .collect();
    let training = db.training().list(dana.id).await.unwrap();
    assert_eq!(training.len(), 3, "training items while consent stands");
    let export_path = db.exports().list(dana.id).await.unwrap()[0]
        .object_path
        .clone();
    db.close().await;

    let backup_dir = s.dir.path().join("backup");
    s.run_json(&["backup", "--to", backup_dir.to_str().unwrap()]);

    // After the backup, through the API: every kind of withdrawal.
    let send = |req: reqwest::RequestBuilder| async {
        let r = req.header("authorization", &auth).go().await;
        let status = r.status();
        assert!(status.is_success(), "{status}: {}", r.text().await.unwrap());
    };
    send(
        http.post(format!("{base}/api/v1/me/consents/training"))
            .json(&serde_json::json!({"granted": false})),
    )
    .await;
    send(http.delete(format!("{base}/api/v1/me/history/{}", deleted.0))).await;
    send(http.delete(format!("{base}/api/v1/jobs/{job_id}"))).await;
    // Keys are managed from a session (cookie and CSRF token), not with a key.
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "dana@example.org", "password": password}))
        .go()
        .await;
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("takarir_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .delete(format!("{base}/api/v1/me/api-keys/{}", spare_row.id.0))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .go()
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    send(http.delete(format!("{base}/api/v1/me/exports/{export_id}"))).await;
    server.kill().unwrap();
    server.wait().unwrap();

    s.lose_everything().await;
    let r = s.run_json(&["restore", "--from", backup_dir.to_str().unwrap()]);
    assert_eq!(r["withdrawals_replayed"], 5, "{r}");

    let db = Db::connect(&s.db_url).await.unwrap();
    let consent = db
        .consents()
        .latest(dana.id, takarir_store::consents::PURPOSE_TRAINING)
        .await
        .unwrap()
        .unwrap();
    assert!(!consent.granted, "training consent stays withdrawn");
    let prefs = db.preferences().get_or_default(dana.id).await.unwrap();
    assert!(!prefs.training_consent);
    assert!(db.training().list(dana.id).await.unwrap().is_empty());
    for item in &training {
        assert!(
            blobs.get(&item.object_path).await.is_err(),
            "training image gone"
        );
    }
    let ids: Vec<_> = db
        .history()
        .list(dana.id, Default::default())
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(
        ids, kept,
        "the deleted entry stays deleted, the other is back"
    );
    assert!(
        db.jobs().get(&job_id).await.unwrap().is_none(),
        "job stays deleted"
    );
    assert!(db.api_keys().authenticate(spare).await.unwrap().is_none());
    assert!(db.api_keys().authenticate(key).await.unwrap().is_some());
    assert!(db.exports().list(dana.id).await.unwrap().is_empty());
    assert!(blobs.get(&export_path).await.is_err(), "export ZIP gone");
    db.close().await;

    // The next upload is not training data: consent was not granted again.
    let (mut server, base) = s.serve().await;
    let form = reqwest::multipart::Form::new().part("image", photo_part("coffee.jpg"));
    let answer = http
        .post(format!("{base}/api/v1/captions?lang=en"))
        .header("authorization", &auth)
        .multipart(form)
        .fetch_json()
        .await;
    assert!(answer["captions"][0]["text"].is_string(), "{answer}");
    server.kill().unwrap();
    server.wait().unwrap();
    let db = Db::connect(&s.db_url).await.unwrap();
    assert!(db.training().list(dana.id).await.unwrap().is_empty());
    db.close().await;

    // Restoring the same backup again replays them again: still withdrawn.
    let again = s.run_json(&["restore", "--from", backup_dir.to_str().unwrap()]);
    assert_eq!(again["withdrawals_replayed"], 5, "{again}");
    let db = Db::connect(&s.db_url).await.unwrap();
    assert!(db.jobs().get(&job_id).await.unwrap().is_none());
    assert!(db.api_keys().authenticate(spare).await.unwrap().is_none());
    db.close().await;
    if let Some((server, name)) = &s.pg_admin {
        takarir_store::test_support::drop_postgres_database(server, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_keeps_withdrawals_sqlite() {
    withdrawals_scenario("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_keeps_withdrawals_postgres() {
    withdrawals_scenario("postgres").await;
}
