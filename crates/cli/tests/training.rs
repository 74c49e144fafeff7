//! `takarir training export` and `takarir training withdrawn` with the real binary against
//! the store a real service wrote (SQLite + a local object directory): two users consent,
//! caption photos (one in Indonesian, one in English) and correct a caption each; the export
//! holds exactly their consented items in the training pipeline's layout, nothing in it
//! identifies a person (no email, no account id, no EXIF), and each owner's audit log records
//! it. One user withdraws: `withdrawn --since` lists exactly their items, and the next export
//! leaves them out and counts them in its manifest.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
mod common;
use common::{root, Go};

const PASSWORD: &str = "jerapah-berlari-cepat-9";

struct User {
    cookie: String,
    csrf: String,
}

impl User {
    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        r.header("cookie", format!("takarir_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf)
    }
}

async fn register(http: &reqwest::Client, base: &str, email: &str) -> User {
    let res = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
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
    User { cookie, csrf }
}

/// Consents (history on, so captions can be corrected), captions `photos` in `lang`, and
/// corrects the first caption to `correction`.
async fn contribute(
    http: &reqwest::Client,
    base: &str,
    who: &User,
    lang: &str,
    photos: &[&str],
    correction: &str,
) {
    let r = who
        .auth(http.patch(format!("{base}/api/v1/me/preferences")))
        .json(&json!({"history_enabled": true, "training_consent": true}))
        .go()
        .await;
    assert_eq!(r.status(), 200);
    for name in photos {
        let bytes = std::fs::read(root().join("samples").join(name)).unwrap();
        let form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(bytes)
                .file_name(name.to_string())
                .mime_str("image/jpeg")
                .unwrap(),
        );
        let r = who
            .auth(http.post(format!("{base}/api/v1/captions?lang={lang}")))
            .multipart(form)
            .go()
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let me: Value = who
        .auth(http.get(format!("{base}/api/v1/me")))
        .fetch_json()
        .await;
    assert_eq!(me["training_items"].as_array().unwrap().len(), photos.len());
    let first = me["history"][0]["id"].as_i64().unwrap();
    let r = who
        .auth(http.patch(format!("{base}/api/v1/me/history/{first}")))
        .json(&json!({"corrected_caption": correction}))
        .go()
        .await;
    assert_eq!(r.status(), 204);
}

fn takarir(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_takarir"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn ids_of(manifest: &Value, lang: &str) -> BTreeSet<String> {
    manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["lang"] == lang)
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_consented_items_only_and_no_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "TAKARIR_DATA_DIR".to_string(),
            tmp.path().join("data").display().to_string(),
        ),
        // The bilingual model: one user captions in Indonesian.
        (
            "TAKARIR_MODEL".to_string(),
            root().join("models/default").display().to_string(),
        ),
        ("TAKARIR_RATE_LIMIT_PER_MINUTE".to_string(), "0".to_string()),
    ];
    let (mut server, base) = common::serve(&env).await;
    let http = reqwest::Client::new();
    let (ana_mail, ben_mail) = ("ana.rahma@contoh.id", "ben.smith@example.com");
    let ana = register(&http, &base, ana_mail).await;
    let ben = register(&http, &base, ben_mail).await;
    // Someone who never consents: nothing of theirs is exported.
    let cal = register(&http, &base, "cal@example.org").await;
    contribute(
        &http,
        &base,
        &ana,
        "id",
        &["chelsea-exif-rotated.jpg", "coffee.jpg"],
        "kucing oranye   menatap\tkamera",
    )
    .await;
    contribute(
        &http,
        &base,
        &ben,
        "en",
        &["rocket.jpg", "astronaut.jpg", "chelsea.jpg"],
        "a rocket lifting off at dawn",
    )
    .await;
    let r = cal
        .auth(http.patch(format!("{base}/api/v1/me/preferences")))
        .json(&json!({"history_enabled": true}))
        .go()
        .await;
    assert_eq!(r.status(), 200);

    // The export while the service runs.
    let out1 = tmp.path().join("export-1");
    let reason = "monthly fine-tune 2026-12";
    let summary: Value = serde_json::from_str(&ok(takarir(
        &env,
        &[
            "training",
            "export",
            "--to",
            out1.to_str().unwrap(),
            "--reason",
            reason,
        ],
    )))
    .unwrap();
    assert_eq!(summary["items"], 5);
    let m1 = read_json(&out1.join("manifest.json"));
    assert_eq!(m1["format"], "takarir-training-export/1");
    assert_eq!(m1["items"], 5);
    assert_eq!(m1["per_language"], json!({"en": 3, "id": 2}));
    assert!(m1["exported_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(m1["consent_versions"].as_object().unwrap().len(), 1);
    // The pipeline's layout: an image per item, captions per language, the two splits.
    let id_tsv = std::fs::read_to_string(out1.join("captions.id.tsv")).unwrap();
    let en_tsv = std::fs::read_to_string(out1.join("captions.en.tsv")).unwrap();
    assert_eq!(id_tsv.lines().count(), 2);
    assert_eq!(en_tsv.lines().count(), 3);
    assert!(
        id_tsv.contains(".png#0\tkucing oranye menatap kamera\n"),
        "{id_tsv}"
    );
    assert!(
        en_tsv.contains(".png#0\ta rocket lifting off at dawn\n"),
        "{en_tsv}"
    );
    let mut split_names = Vec::new();
    for s in ["train", "dev"] {
        let text = std::fs::read_to_string(out1.join(format!("splits/{s}.txt"))).unwrap();
        split_names.extend(text.lines().map(str::to_string));
    }
    split_names.sort();
    let mut image_names: Vec<String> = std::fs::read_dir(out1.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    image_names.sort();
    assert_eq!(split_names, image_names);
    assert_eq!(image_names.len(), 5);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out1).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the export is the operator's alone: {mode:o}"
        );
    }
    for name in &image_names {
        let png = std::fs::read(out1.join("images").join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: a PNG");
        image::load_from_memory(&png).unwrap();
    }

    // Nothing identifies a person: no email, no account or row id, no EXIF.
    let db_path = tmp.path().join("data/takarir.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .unwrap();
    let user_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(&pool)
        .await
        .unwrap();
    let item_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM training_items")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(item_ids.len(), 5);
    let exif = std::fs::read(root().join("samples/chelsea-exif-rotated.jpg")).unwrap();
    assert!(exif.windows(4).any(|w| w == b"Exif"));
    for (path, bytes) in files(&out1) {
        for needle in [ana_mail, ben_mail, "contoh.id", "example.com"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{path} holds {needle}"
            );
        }
        for needle in [&b"Exif"[..], b"eXIf", b"tEXt", b"iTXt", b"zTXt"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{path} holds metadata"
            );
        }
        if !path.ends_with(".png") {
            let text = String::from_utf8(bytes).unwrap();
            assert!(!text.contains('@'), "{path}: {text}");
            assert!(!text.contains("user"), "{path} names an account");
        }
    }
    // The manifest says only what it documents; pseudonyms are 32 hex digits, not row ids.
    let mut keys: Vec<&String> = m1.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "consent_versions",
            "entries",
            "exported_at",
            "format",
            "held_back_per_language",
            "items",
            "per_language"
        ]
    );
    for e in m1["entries"].as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!item_ids.iter().any(|i| id == i.to_string()));
        assert!(!user_ids.iter().any(|u| id == u.to_string()));
        let mut keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["consent_version", "id", "lang", "split"]);
    }

    // The owners' audit logs record the export with its reason; the non-consenting user's not.
    for (who, expected) in [(&ana, 1), (&ben, 1), (&cal, 0)] {
        let me: Value = who
            .auth(http.get(format!("{base}/api/v1/me")))
            .fetch_json()
            .await;
        let audit = me["audit"].as_array().unwrap();
        assert_eq!(audit.len(), expected, "{audit:?}");
        if expected == 1 {
            assert_eq!(audit[0]["action"], "training_export");
            assert_eq!(audit[0]["reason"], reason);
        }
    }

    // An export needs a reason and an empty directory.
    let out = takarir(
        &env,
        &[
            "training",
            "export",
            "--to",
            out1.to_str().unwrap(),
            "--reason",
            "again",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let empty = tmp.path().join("never");
    let out = takarir(
        &env,
        &[
            "training",
            "export",
            "--to",
            empty.to_str().unwrap(),
            "--reason",
            " ",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reason"));
    assert!(!empty.exists());

    // Ben withdraws: his items are exactly those `withdrawn --since` lists.
    let r = ben
        .auth(http.post(format!("{base}/api/v1/me/consents/training")))
        .json(&json!({"granted": false}))
        .go()
        .await;
    assert_eq!(r.status(), 204);
    let manifest1 = out1.join("manifest.json");
    let listed: BTreeSet<String> = ok(takarir(
        &env,
        &[
            "training",
            "withdrawn",
            "--since",
            manifest1.to_str().unwrap(),
        ],
    ))
    .lines()
    .map(str::to_string)
    .collect();
    let (ana_ids, ben_ids) = (ids_of(&m1, "id"), ids_of(&m1, "en"));
    assert_eq!(listed, ben_ids);

    // The next export leaves them out and counts them; Ana's items keep their pseudonyms.
    let out2 = tmp.path().join("export-2");
    ok(takarir(
        &env,
        &[
            "training",
            "export",
            "--to",
            out2.to_str().unwrap(),
            "--reason",
            reason,
            "--previous",
            manifest1.to_str().unwrap(),
        ],
    ));
    let m2 = read_json(&out2.join("manifest.json"));
    assert_eq!(m2["items"], 2);
    assert_eq!(m2["per_language"], json!({"id": 2}));
    assert_eq!(ids_of(&m2, "id"), ana_ids);
    assert!(ids_of(&m2, "en").is_empty());
    assert!(!out2.join("captions.en.tsv").exists());
    let w = &m2["withdrawn_since_previous"];
    assert_eq!(w["count"], 3);
    assert_eq!(w["previous_exported_at"], m1["exported_at"]);
    let w_ids: BTreeSet<String> = w["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(w_ids, ben_ids);
    assert_eq!(std::fs::read_dir(out2.join("images")).unwrap().count(), 2);

    pool.close().await;
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A copy of the tiny test model as version `name` of `models`, with `model_version` set.
fn model_version(models: &Path, name: &str, version: &str) -> std::path::PathBuf {
    let dir = models.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(common::fixture_model()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let mut config = read_json(&dir.join("config.json"));
    config["model_version"] = json!(version);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("MODEL_CARD.md"), format!("# {version}\n")).unwrap();
    dir
}

async fn active_model(http: &reqwest::Client, base: &str) -> Value {
    let models: Value = http.get(format!("{base}/api/v1/models")).fetch_json().await;
    assert_eq!(models["models"].as_array().unwrap().len(), 1);
    assert_eq!(models["models"][0]["active"], true);
    models["models"][0].clone()
}

/// Model versions: promote a fine-tuned version whose card names a training export, and the
/// service (restarted) answers with it and its card, and tells the user whose items were in
/// that export that they trained the model in use (and the user whose were not, that they did
/// not); roll back, and the earlier version is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_versions_promote_and_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let v1 = model_version(&models, "v1", "tiny-1");
    let v2 = model_version(&models, "v2", "tiny-2");
    // Not a caption model: not listed.
    std::fs::create_dir_all(models.join("text")).unwrap();
    let env = vec![
        (
            "TAKARIR_DATA_DIR".to_string(),
            tmp.path().join("data").display().to_string(),
        ),
        ("TAKARIR_MODEL".to_string(), v1.display().to_string()),
        ("TAKARIR_RATE_LIMIT_PER_MINUTE".to_string(), "0".to_string()),
    ];
    let (mut server, base) = common::serve(&env).await;
    let http = reqwest::Client::new();
    let m = active_model(&http, &base).await;
    assert_eq!(m["version"], "tiny-1");
    assert_eq!(m["card"], Value::Null);
    let dea = register(&http, &base, "dea@contoh.id").await;
    let eko = register(&http, &base, "eko@contoh.id").await;
    contribute(&http, &base, &dea, "en", &["coffee.jpg"], "a cup of coffee").await;
    let out = tmp.path().join("export");
    ok(takarir(
        &env,
        &[
            "training",
            "export",
            "--to",
            out.to_str().unwrap(),
            "--reason",
            "fine-tune",
        ],
    ));
    let manifest = read_json(&out.join("manifest.json"));
    let exported_at = manifest["exported_at"].as_str().unwrap();
    // The fine-tune's card (what training/ writes beside the model).
    let card = json!({
        "version": "tiny-2",
        "base": "tiny-1",
        "training_exports": [exported_at],
        "consented_items_per_language": {"en": 1},
        "gates": {"flickr8k_dev": {"before": 0.50, "after": 0.505}},
    });
    std::fs::write(v2.join("card.json"), card.to_string()).unwrap();

    let list = ok(takarir(&env, &["models", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with("* v1\t"), "{list}");
    assert!(lines[1].starts_with("  v2\ttiny-2\t"), "{list}");
    let out = takarir(&env, &["models", "promote", "v3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model version"));
    ok(takarir(&env, &["models", "promote", "v2"]));
    assert!(ok(takarir(&env, &["models", "list"])).contains("* v2\t"));

    // Restarted, the service loads the promoted version.
    server.kill().unwrap();
    server.wait().unwrap();
    let (mut server, base) = common::serve(&env).await;
    let m = active_model(&http, &base).await;
    assert_eq!(m["version"], "tiny-2");
    assert_eq!(m["card"]["training_exports"], json!([exported_at]));
    assert_eq!(m["card"]["consented_items_per_language"], json!({"en": 1}));
    assert_eq!(m["card"]["gates"]["flickr8k_dev"]["after"], 0.505);
    // Sessions live in the database: the same users, signed in still.
    let me: Value = dea
        .auth(http.get(format!("{base}/api/v1/me")))
        .fetch_json()
        .await;
    assert_eq!(
        me["model_in_use"],
        json!({"version": "tiny-2", "trained_with_your_items": true, "training_exports": [exported_at]})
    );
    assert_eq!(me["audit"][0]["detail"], exported_at);
    let page = dea
        .auth(http.get(format!("{base}/account?lang=en")))
        .fetch_text()
        .await;
    assert!(
        page.contains("Model in use: tiny-2: your training items helped train it"),
        "{page}"
    );
    let me: Value = eko
        .auth(http.get(format!("{base}/api/v1/me")))
        .fetch_json()
        .await;
    assert_eq!(me["model_in_use"]["trained_with_your_items"], false);
    // Withdrawing does not untrain the version in use, and the document says so plainly.
    let r = dea
        .auth(http.post(format!("{base}/api/v1/me/consents/training")))
        .json(&json!({"granted": false}))
        .go()
        .await;
    assert_eq!(r.status(), 204);
    let me: Value = dea
        .auth(http.get(format!("{base}/api/v1/me")))
        .fetch_json()
        .await;
    assert_eq!(me["model_in_use"]["trained_with_your_items"], true);
    assert!(me["training_items"].as_array().unwrap().is_empty());

    // Rollback: v1 again after a restart, which no export trained.
    ok(takarir(&env, &["models", "rollback"]));
    assert!(ok(takarir(&env, &["models", "list"])).contains("* v1\t"));
    let out = takarir(&env, &["models", "rollback"]);
    assert_eq!(out.status.code(), Some(2), "nothing left to roll back to");
    server.kill().unwrap();
    server.wait().unwrap();
    let (mut server, base) = common::serve(&env).await;
    assert_eq!(active_model(&http, &base).await["version"], "tiny-1");
    let me: Value = dea
        .auth(http.get(format!("{base}/api/v1/me")))
        .fetch_json()
        .await;
    assert_eq!(me["model_in_use"]["trained_with_your_items"], false);
    server.kill().unwrap();
    server.wait().unwrap();
}
