//! Finding and loading ONNX Runtime.
//!
//! `ort` is built with `load-dynamic`: the `libonnxruntime` shared library is loaded at run time,
//! not linked, so the binary builds anywhere and uses the library that the project's set-up
//! installs from the `onnxruntime` PyPI wheel into `.venv`. The library is looked for, in order:
//! an explicit path (config or `--ort-lib`), `TAKARIR_ORT_LIB`, `ORT_DYLIB_PATH`, then a `.venv`
//! in the current directory, the executable's directory, or any of their ancestors. One
//! environment exists per process (ONNX Runtime allows no more); it is created on first use.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::error::{EngineError, Result};

static ENVIRONMENT: OnceLock<std::result::Result<(Environment, PathBuf), String>> = OnceLock::new();

const LIB_PREFIX: &str = if cfg!(target_os = "macos") {
    "libonnxruntime"
} else {
    "libonnxruntime.so"
};

/// The ONNX Runtime library inside a Python virtual environment, if the wheel is installed there.
fn in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .filter_map(|py| std::fs::read_dir(py.path().join("site-packages/onnxruntime/capi")).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.starts_with(LIB_PREFIX) && !n.contains("providers")
        })
        .collect();
    // Prefer the fully versioned file (libonnxruntime.so.1.32.0) when several names exist.
    found.sort_by_key(|p| std::cmp::Reverse(p.to_string_lossy().len()));
    found.into_iter().next()
}

/// Where the ONNX Runtime library is, or a message that says how to get it.
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(EngineError::Runtime(format!(
                "ONNX Runtime library {} does not exist",
                p.display()
            )))
        };
    }
    for var in ["TAKARIR_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(EngineError::Runtime(format!(
                    "{var}={} does not name a file",
                    p.display()
                )))
            };
        }
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.extend(exe_dir.ancestors().map(Path::to_path_buf));
    }
    for root in &roots {
        if let Some(lib) = in_venv(&root.join(".venv")) {
            return Ok(lib);
        }
    }
    Err(EngineError::Runtime(
        "ONNX Runtime library not found. Run the set-up script (`scripts/setup`), which installs the \
         onnxruntime wheel into .venv, or set TAKARIR_ORT_LIB to the path of libonnxruntime.so"
            .into(),
    ))
}

/// The process-wide ONNX Runtime environment, loading the library on first call.
pub fn environment(explicit: Option<&Path>) -> Result<&'static Environment> {
    let entry = ENVIRONMENT.get_or_init(|| {
        let lib = find_library(explicit).map_err(|e| e.to_string())?;
        let builder = ort::init_from(&lib)
            .map_err(|e| format!("could not load ONNX Runtime from {}: {e}", lib.display()))?;
        let env = builder
            .with_name("takarir")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("could not start ONNX Runtime from {}: {e}", lib.display()))?;
        Ok((env, lib))
    });
    match entry {
        Ok((env, _)) => Ok(env),
        Err(msg) => Err(EngineError::Runtime(msg.clone())),
    }
}

/// The library the process environment was loaded from, once it is loaded.
pub fn loaded_library() -> Option<&'static Path> {
    ENVIRONMENT
        .get()
        .and_then(|e| e.as_ref().ok())
        .map(|(_, p)| p.as_path())
}
