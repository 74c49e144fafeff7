//! The `takarir` binary, run as a user would, on temp folders built from the repo's samples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn fixture_model() -> String {
    root()
        .join("fixtures/parity/vit-gpt2-tiny")
        .to_string_lossy()
        .into_owned()
}

fn takarir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_takarir"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Two good photos, a corrupt JPEG, an empty file and a text file named .jpg.
fn mixed_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for s in ["astronaut.jpg", "coffee.jpg"] {
        std::fs::copy(root().join("samples").join(s), dir.path().join(s)).unwrap();
    }
    let jpeg = std::fs::read(root().join("samples/rocket.jpg")).unwrap();
    std::fs::write(dir.path().join("corrupt.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(dir.path().join("empty.jpg"), b"").unwrap();
    std::fs::write(
        dir.path().join("notes.jpg"),
        b"this is a text file, not a photo\n",
    )
    .unwrap();
    dir
}

/// `takarir caption --model FIXTURE --lang en ARGS...`.
fn caption_en(args: &[&str]) -> std::process::Output {
    let model = fixture_model();
    takarir(&[&["caption", "--model", &model, "--lang", "en"][..], args].concat())
}

#[test]
fn a_folder_with_bad_files_captions_the_good_ones_and_exits_1() {
    let dir = mixed_folder();
    let out = caption_en(&[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for good in ["astronaut.jpg", "coffee.jpg"] {
        assert_eq!(
            stdout.lines().filter(|l| l.contains(good)).count(),
            1,
            "{stdout}"
        );
    }
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("corrupt.jpg") && l.contains("corrupt")),
        "{stderr}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("empty.jpg") && l.contains("empty")),
        "{stderr}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("notes.jpg") && l.contains("unsupported")),
        "{stderr}"
    );
}

#[test]
fn all_good_files_exit_0_and_every_format_carries_every_file() {
    let dir = mixed_folder();
    let model = fixture_model();
    let good = [
        "caption",
        "--model",
        &model,
        "--lang",
        "en",
        "--beams",
        "3",
        "--alternatives",
        "2",
    ];
    let astro = root().join("samples/astronaut.jpg");
    let out = takarir(&[&good[..], &[astro.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2, "two alternatives");

    let folder = dir.path().to_str().unwrap();
    let json = takarir(&[&good[..], &["--json", folder]].concat());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let records = v.as_array().unwrap();
    assert_eq!(records.len(), 5);
    assert_eq!(
        records.iter().filter(|r| r.get("error").is_some()).count(),
        3
    );
    let ok = records
        .iter()
        .find(|r| r["file"].as_str().unwrap().ends_with("astronaut.jpg"))
        .unwrap();
    assert_eq!(ok["captions"].as_array().unwrap().len(), 2);
    assert_eq!(
        (ok["width"].as_u64(), ok["height"].as_u64()),
        (Some(512), Some(512))
    );

    let jsonl = takarir(&[&good[..], &["--jsonl", folder]].concat());
    let lines: Vec<serde_json::Value> = text(&jsonl.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);

    let csv = takarir(&[&good[..], &["--csv", folder]].concat());
    let csv = text(&csv.stdout);
    assert!(csv.starts_with("index,file,lang,rank,caption,score,error_code,error\n"));
    assert_eq!(csv.lines().count(), 1 + 2 * 2 + 3, "{csv}");
}

#[test]
fn sidecar_writes_a_txt_next_to_each_good_image() {
    let dir = mixed_folder();
    let out = caption_en(&["--sidecar", "txt", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let first_line = |name: &str| {
        text(&out.stdout)
            .lines()
            .find(|l| l.contains(name))
            .unwrap()
            .split('\t')
            .nth(1)
            .unwrap()
            .to_string()
    };
    for name in ["astronaut", "coffee"] {
        let side = std::fs::read_to_string(dir.path().join(format!("{name}.txt"))).unwrap();
        assert_eq!(side.trim_end_matches('\n'), first_line(name));
    }
    assert!(!dir.path().join("corrupt.txt").exists());
}

#[test]
fn sidecar_never_replaces_an_existing_file_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    for s in ["astronaut.jpg", "coffee.jpg"] {
        std::fs::copy(root().join("samples").join(s), dir.path().join(s)).unwrap();
    }
    let notes = dir.path().join("coffee.txt");
    std::fs::write(&notes, "my own notes about the coffee\n").unwrap();
    let out = caption_en(&["--sidecar", "txt", dir.path().to_str().unwrap()]);
    // The existing file is kept and reported; the other photo still gets its sidecar.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "my own notes about the coffee\n"
    );
    assert!(text(&out.stderr).contains("coffee.txt: exists"));
    assert!(text(&out.stderr).contains("--overwrite"));
    assert!(dir.path().join("astronaut.txt").exists());
    let out = caption_en(&[
        "--sidecar",
        "txt",
        "--overwrite",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&notes).unwrap();
    assert_ne!(written, "my own notes about the coffee\n");
    assert!(text(&out.stdout).contains(written.trim_end()));
    // --overwrite means nothing without a sidecar.
    let out = caption_en(&["--overwrite", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unsupported_language_and_bad_options_fail_before_any_work() {
    let img = root().join("samples/astronaut.jpg");
    let out = takarir(&[
        "caption",
        "--model",
        &fixture_model(),
        "--lang",
        "id",
        img.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`id` is not supported"),
        "{}",
        text(&out.stderr)
    );
    // More alternatives than beams: the engine's own check, before any image is read.
    let out = caption_en(&["--beams", "2", "--alternatives", "3", img.to_str().unwrap()]);
    let (code, stderr) = (out.status.code(), text(&out.stderr));
    assert!(
        code == Some(2) && stderr.contains("--alternatives cannot exceed --beams"),
        "{stderr}"
    );
    // Errors name the flags the user typed, not the engine's fields.
    let out = caption_en(&["--beams", "0", img.to_str().unwrap()]);
    let (code, stderr) = (out.status.code(), text(&out.stderr));
    assert!(
        code == Some(2) && stderr.contains("--beams must be between 1 and 32"),
        "{stderr}"
    );
    assert!(!stderr.contains("num_beams"), "{stderr}");
}

#[test]
fn missing_onnx_runtime_says_what_to_do() {
    let img = root().join("samples/astronaut.jpg");
    let out = Command::new(env!("CARGO_BIN_EXE_takarir"))
        .args([
            "caption",
            "--model",
            &fixture_model(),
            img.to_str().unwrap(),
        ])
        .env("TAKARIR_ORT_LIB", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("TAKARIR_ORT_LIB"),
        "{}",
        text(&out.stderr)
    );
}

/// Lays out a Hugging Face cache (HF_HOME/hub/models--ORG--NAME/{refs,snapshots}) holding the
/// fixture model, as `hf-hub` would have left it after a download.
fn hf_cache_with_fixture(home: &Path) {
    let repo = home.join("hub/models--takarir--tiny");
    let snap = repo.join("snapshots/0123456789abcdef");
    std::fs::create_dir_all(snap.join("onnx")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123456789abcdef").unwrap();
    let src = root().join("fixtures/parity/vit-gpt2-tiny");
    for f in std::fs::read_dir(&src).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        let dest = if name.ends_with(".onnx") {
            snap.join("onnx").join(&name)
        } else {
            snap.join(&name)
        };
        std::fs::copy(f.path(), dest).unwrap();
    }
}

#[test]
fn hf_models_load_from_the_cache_offline_and_fail_clearly_when_absent() {
    let home = tempfile::tempdir().unwrap();
    let img = root().join("samples/astronaut.jpg");
    let run = |spec: &str| {
        Command::new(env!("CARGO_BIN_EXE_takarir"))
            .args([
                "caption",
                "--model",
                spec,
                "--lang",
                "en",
                img.to_str().unwrap(),
            ])
            .current_dir(root())
            .env("HF_HOME", home.path())
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    };
    let out = run("hf:takarir/tiny");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("offline") && text(&out.stderr).contains("not cached"),
        "{}",
        text(&out.stderr)
    );

    hf_cache_with_fixture(home.path());
    let cached = run("hf:takarir/tiny");
    assert_eq!(cached.status.code(), Some(0), "{}", text(&cached.stderr));
    let local = takarir(&[
        "caption",
        "--model",
        &fixture_model(),
        "--lang",
        "en",
        img.to_str().unwrap(),
    ]);
    assert_eq!(
        text(&cached.stdout).split('\t').nth(1),
        text(&local.stdout).split('\t').nth(1)
    );
    assert_eq!(
        run("hf:takarir/tiny@other").status.code(),
        Some(2),
        "unknown revision is not cached"
    );
}

#[test]
fn eval_scores_a_reference_set() {
    let dir = tempfile::tempdir().unwrap();
    let refs = dir.path().join("refs.json");
    std::fs::write(&refs, r#"{"astronaut.jpg": ["a woman in a space suit", "an astronaut poses"], "coffee.jpg": ["a cup of coffee"]}"#).unwrap();
    let preds = dir.path().join("preds.json");
    let out = takarir(&[
        "eval",
        "--model",
        &fixture_model(),
        "--lang",
        "en",
        "--images",
        root().join("samples").to_str().unwrap(),
        "--references",
        refs.to_str().unwrap(),
        "--output",
        preds.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"], 2);
    for k in ["bleu_1", "bleu_4", "rouge_l", "cider_d"] {
        assert!(report[k].as_f64().unwrap() >= 0.0, "{k}");
    }
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(preds).unwrap()).unwrap();
    assert_eq!(p.as_object().unwrap().len(), 2);
}

#[test]
fn admin_create_makes_a_staff_account_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let run = |email: &str, password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_takarir"))
            .args(["admin", "create", "--email", email])
            .env("TAKARIR_DATA_DIR", data.path())
            .env_remove("TAKARIR_ADMIN_PASSWORD")
            .env_remove("TAKARIR_DATABASE_URL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let weak = run("staf@contoh.id", "pendek");
    assert_eq!(weak.status.code(), Some(2));
    assert!(
        text(&weak.stderr).contains("at least 10"),
        "{}",
        text(&weak.stderr)
    );
    let made = run("staf@contoh.id", "kata-sandi-pegawai-panjang");
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    assert!(text(&made.stdout).contains("admin account created (id 1)"));
    let again = run("STAF@contoh.id", "");
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("account 1 is already an admin"));
    assert!(data.path().join("takarir.db").is_file());
}

/// `--features caption,text`: the JSONL records carry the lines read (text, confidence,
/// polygon) and the whole text, and the caption quotes the sign; without a text model the
/// command says so once, before any work.
#[test]
fn caption_with_text_reads_the_sign_and_quotes_it() {
    let sign = root().join("fixtures/text-parity/12.webp");
    let cat = root().join("samples/chelsea.jpg");
    let text_model = root().join("models/text");
    let out = caption_en(&[
        "--features",
        "caption,text",
        "--text-model",
        text_model.to_str().unwrap(),
        "--jsonl",
        sign.to_str().unwrap(),
        cat.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    let lines = rows[0]["text"]["lines"].as_array().unwrap();
    let sign_line = lines
        .iter()
        .find(|l| l["text"] == "JALAN DITUTUP")
        .unwrap_or_else(|| panic!("{}", rows[0]));
    assert_eq!(sign_line["polygon"].as_array().unwrap().len(), 4);
    assert!(sign_line["confidence"].as_f64().unwrap() > 0.8);
    assert!(rows[0]["text"]["full_text"]
        .as_str()
        .unwrap()
        .contains("Air Minum Gratis"));
    let caption = rows[0]["captions"][0]["text"].as_str().unwrap();
    assert!(
        caption.contains("“") && caption.contains("JALAN DITUTUP"),
        "{caption}"
    );
    assert_eq!(rows[1]["text"]["lines"], serde_json::json!([]));

    // Without `text`, nothing is read.
    let out = caption_en(&["--jsonl", sign.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let row: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert!(row.get("text").is_none(), "{row}");

    // No text model beside the fixture model: one clear error, nothing captioned.
    let out = caption_en(&["--features", "caption,text", sign.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read text") && stderr.contains("MODEL_CARD"),
        "{stderr}"
    );
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    // `takarir caption DIR | head -0`: the reader is gone before the first line is written.
    let model = fixture_model();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_takarir"))
        .args(["caption", "--model", &model, "--lang", "en"])
        .arg(root().join("samples"))
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).to_lowercase().contains("broken pipe"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_and_jsonl_write_the_same_records_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    for s in ["astronaut.jpg", "coffee.jpg"] {
        std::fs::copy(root().join("samples").join(s), dir.path().join(s)).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let jsonl = caption_en(&["--jsonl", d]);
    let json = caption_en(&["--json", d]);
    assert_eq!(jsonl.status.code(), Some(0), "{}", text(&jsonl.stderr));
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let lines: Vec<String> = text(&jsonl.stdout).lines().map(str::to_string).collect();
    let array: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(array.len(), 2);
    // Each array element is written exactly as its JSONL line: same fields, order and digits.
    let raw: Vec<String> = text(&json.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| l.trim_end_matches(',').to_string())
        .collect();
    assert_eq!(raw, lines);
    for (line, record) in lines.iter().zip(&array) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(&v, record);
        assert!(v["model"].as_str().is_some_and(|m| !m.is_empty()), "{line}");
        assert!(v["model_version"].is_string(), "{line}");
    }
}

#[test]
fn a_dash_reads_the_image_from_standard_input() {
    use std::io::Write;
    let model = fixture_model();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_takarir"))
        .args(["caption", "--model", &model, "--lang", "en", "-"])
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let photo = std::fs::read(root().join("samples/coffee.jpg")).unwrap();
    child.stdin.take().unwrap().write_all(&photo).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The same caption as the file gives.
    let from_file = caption_en(&[root().join("samples/coffee.jpg").to_str().unwrap()]);
    let caption = |o: &[u8]| {
        text(o)
            .lines()
            .next()
            .unwrap()
            .split('\t')
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert!(
        text(&out.stdout).starts_with("-\t"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(caption(&out.stdout), caption(&from_file.stdout));
}

#[test]
fn completions_and_the_manual_page_cover_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = takarir(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in ["takarir", "caption", "sidecar", "overwrite"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    let out = takarir(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let out = takarir(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH takarir"),
        "{page}"
    );
    assert!(page.contains("caption") && page.contains("serve"));
}

#[test]
fn xmp_sidecar_carries_the_alt_text_that_exiftool_reads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("samples/coffee.jpg"),
        dir.path().join("coffee.jpg"),
    )
    .unwrap();
    let photo = dir.path().join("coffee.jpg");
    let out = caption_en(&["--sidecar", "xmp", photo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let caption = text(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .nth(1)
        .unwrap()
        .to_string();
    // exiftool (Debian libimage-exiftool-perl; scripts/test installs it) reads the IPTC
    // "Alt Text (Accessibility)" property back, in x-default and in the caption's language.
    let read = Command::new("exiftool")
        .args(["-j", "-XMP-iptcCore:all"])
        .arg(dir.path().join("coffee.xmp"))
        .output()
        .expect("exiftool is installed (scripts/test installs it)");
    let tags: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(tags[0]["AltTextAccessibility"], caption.as_str(), "{tags}");
    assert_eq!(
        tags[0]["AltTextAccessibility-en"],
        caption.as_str(),
        "{tags}"
    );
    // Like the text sidecar, it is never written over without --overwrite.
    let out = caption_en(&["--sidecar", "xmp", photo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

/// `log_format = json`: every line `takarir serve` writes, from start to shutdown and for
/// requests that succeed or fail, is one JSON object, and a request's line carries its route
/// (from the request span) and status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_json_logs_writes_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_takarir"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("TAKARIR_MODEL", fixture_model())
        .env("TAKARIR_THREADS", "1")
        .env("TAKARIR_DATA_DIR", dir.path().join("data"))
        .env("TAKARIR_LOG_FORMAT", "json")
        .env_remove("TAKARIR_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    common::wait_healthy(&base).await;
    let client = reqwest::Client::new();
    let photo = std::fs::read(root().join("samples/coffee.jpg")).unwrap();
    let r = client
        .post(format!("{base}/api/v1/captions?lang=en"))
        .header("content-type", "image/jpeg")
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{base}/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // SIGTERM: a graceful shutdown, which logs too.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect();
    let message = |v: &serde_json::Value| v["fields"]["message"].as_str().unwrap_or("").to_string();
    assert!(
        lines.iter().any(|v| message(v).starts_with("listening")),
        "{text}"
    );
    assert!(
        lines.iter().any(|v| message(v) == "shutting down"),
        "{text}"
    );
    let done = |route: &str, status: u64| {
        lines.iter().any(|v| {
            message(v) == "request done"
                && v["span"]["route"] == route
                && v["fields"]["status"] == status
                && v["level"] == "INFO"
        })
    };
    assert!(done("/api/v1/captions", 200), "{text}");
    assert!(done("unmatched", 404), "{text}");
}
