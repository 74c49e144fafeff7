//! ONNX Runtime's own telemetry stays off. The official Linux builds (the `onnxruntime` wheel
//! the project ships) write a persistent device id and an event cache under
//! `~/.cache/Microsoft/DeveloperTools/.onnxruntime` and try to upload events to Microsoft;
//! `with_telemetry(false)` does not prevent it. Loading a model through the engine must leave no
//! such files, wherever HOME, XDG_CACHE_HOME and the working directory point.
//!
//! One test in its own binary: it changes the process environment and working directory.

use std::path::{Path, PathBuf};

use takarir_engine::{CaptionOptions, Captioner, CaptionerOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every path under `dir` whose name mentions Microsoft or onnxruntime.
fn vendor_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_lowercase();
            if name.contains("microsoft") || name.contains("onnxruntime") || name == "deviceid" {
                found.push(p.clone());
            }
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    found
}

#[test]
fn captioning_writes_no_vendor_telemetry_files() {
    let home = std::env::temp_dir().join(format!("takarir-telemetry-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    // Before any thread or library reads the environment.
    std::env::set_var("HOME", &home);
    std::env::set_var("XDG_CACHE_HOME", home.join(".cache"));
    std::env::remove_var("ORT_DISABLE_TELEMETRY");
    // The library is still found from the test executable's directory (the checkout's .venv).
    std::env::set_current_dir(&home).unwrap();

    let mut o = CaptionerOptions::new(
        root()
            .join("fixtures/parity/vit-gpt2-tiny")
            .to_string_lossy()
            .into_owned(),
    );
    o.threads = 1;
    let captioner = Captioner::load(&o).unwrap();
    let photo = std::fs::read(root().join("samples/coffee.jpg")).unwrap();
    let (results, _) = captioner.caption_images(&[&photo[..]], &CaptionOptions::default());
    assert!(results[0].is_ok(), "{:?}", results[0].as_ref().err());
    drop(captioner);

    let left = vendor_files(&home);
    let _ = std::fs::remove_dir_all(&home);
    assert!(
        left.is_empty(),
        "ONNX Runtime wrote telemetry files: {left:?}"
    );
    assert_eq!(
        std::env::var("ORT_DISABLE_TELEMETRY").as_deref(),
        Ok("1"),
        "the engine did not turn ONNX Runtime's telemetry off"
    );
}
