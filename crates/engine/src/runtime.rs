//! Finding and loading ONNX Runtime.
//!
//! `ort` is built with `load-dynamic`: the `libonnxruntime` shared library is loaded at run time,
//! not linked, so the binary builds anywhere and uses the library that the project's set-up
//! installs from the `onnxruntime` PyPI wheel into `.venv`, or the copy of it that a release
//! archive or the container image ships beside the binary. The library is looked for, in order:
//! an explicit path (config or `--ort-lib`), `TAKARIR_ORT_LIB`, `ORT_DYLIB_PATH`, then
//! `libonnxruntime.so*` in the executable's directory or in `lib/` beside it, then a `.venv` in
//! the current directory, the executable's directory, or any of their ancestors. The shipped copy
//! comes before any `.venv` so that an unpacked release uses the library it was released with,
//! wherever it is unpacked. One environment exists per process (ONNX Runtime allows no more); it
//! is created on first use.

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

/// The ONNX Runtime library in `dir` (not its provider plug-ins), preferring the fully versioned
/// file (`libonnxruntime.so.1.32.0`) when several names exist.
fn lib_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.starts_with(LIB_PREFIX) && !n.contains("providers") && p.is_file()
        })
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.to_string_lossy().len()));
    found.into_iter().next()
}

/// The ONNX Runtime library inside a Python virtual environment, if the wheel is installed there.
fn in_venv(venv: &Path) -> Option<PathBuf> {
    std::fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .find_map(|py| lib_in_dir(&py.path().join("site-packages/onnxruntime/capi")))
}

/// The library shipped beside the executable: in its directory, or in `lib/` there.
fn beside_executable(exe_dir: &Path) -> Option<PathBuf> {
    lib_in_dir(exe_dir).or_else(|| lib_in_dir(&exe_dir.join("lib")))
}

/// Where the ONNX Runtime library is, or a message that says how to get it.
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf> {
    let cwd = std::env::current_dir().ok();
    // `current_exe` resolves symbolic links on Linux, so `/usr/local/bin/takarir` linked to an
    // unpacked release still finds the library beside the real file.
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    find_library_in(
        explicit,
        |var| std::env::var_os(var),
        cwd.as_deref(),
        exe_dir.as_deref(),
    )
}

/// [`find_library`] with the environment, working directory and executable's directory given.
fn find_library_in(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
    cwd: Option<&Path>,
    exe_dir: Option<&Path>,
) -> Result<PathBuf> {
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
        if let Some(p) = env(var).filter(|v| !v.is_empty()) {
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
    if let Some(lib) = exe_dir.and_then(beside_executable) {
        return Ok(lib);
    }
    let roots = cwd
        .into_iter()
        .flat_map(Path::ancestors)
        .chain(exe_dir.into_iter().flat_map(Path::ancestors));
    for root in roots {
        if let Some(lib) = in_venv(&root.join(".venv")) {
            return Ok(lib);
        }
    }
    Err(EngineError::Runtime(
        "ONNX Runtime library not found. Run the set-up script (`scripts/setup`), which installs the \
         onnxruntime wheel into .venv, put libonnxruntime.so beside the takarir executable (as the \
         release archive does), or set TAKARIR_ORT_LIB to the path of libonnxruntime.so"
            .into(),
    ))
}

/// Turns off the telemetry compiled into ONNX Runtime's official Linux builds (the PyPI wheel's
/// library, 1.32.0 included). Without it the library writes a persistent device id and an event
/// cache under `~/.cache/Microsoft/DeveloperTools/.onnxruntime` and resolves and calls
/// `mobile.events.data.microsoft.com` from the server (seen with strace); `with_telemetry(false)`
/// does not stop either. `ORT_DISABLE_TELEMETRY=1`, read when the library starts, does. Takarir
/// opens no connection its operator did not configure, so the variable is set before the library
/// is loaded unless the operator has set it (to anything: `0` opts in). Setting it here, once,
/// before ONNX Runtime exists, races only with threads that read the environment at that moment;
/// the CLI and the server load the model before they serve anything.
fn disable_vendor_telemetry() {
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
}

/// The process-wide ONNX Runtime environment, loading the library on first call.
pub fn environment(explicit: Option<&Path>) -> Result<&'static Environment> {
    let entry = ENVIRONMENT.get_or_init(|| {
        disable_vendor_telemetry();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "takarir-runtime-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn touch(path: &Path) -> PathBuf {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
        path.to_path_buf()
    }

    fn no_env(_: &str) -> Option<std::ffi::OsString> {
        None
    }

    fn venv_lib(root: &Path) -> PathBuf {
        touch(
            &root.join(
                ".venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0",
            ),
        )
    }

    #[test]
    fn a_library_beside_the_executable_comes_before_any_venv() {
        let t = TempDir::new();
        let exe_dir = t.0.join("takarir-0.1.0");
        let shipped = touch(&exe_dir.join("libonnxruntime.so.1.32.0"));
        touch(&exe_dir.join("libonnxruntime_providers_shared.so"));
        venv_lib(&t.0);
        venv_lib(&exe_dir);
        let found = find_library_in(None, no_env, Some(&t.0), Some(&exe_dir)).unwrap();
        assert_eq!(found, shipped);
    }

    #[test]
    fn lib_beside_the_executable_is_searched_and_the_versioned_name_wins() {
        let t = TempDir::new();
        let exe_dir = t.0.join("bin");
        touch(&exe_dir.join("lib/libonnxruntime.so"));
        let versioned = touch(&exe_dir.join("lib/libonnxruntime.so.1.32.0"));
        let found = find_library_in(None, no_env, None, Some(&exe_dir)).unwrap();
        assert_eq!(found, versioned);
    }

    #[test]
    fn the_environment_overrides_the_shipped_library_and_a_venv_is_the_fallback() {
        let t = TempDir::new();
        let exe_dir = t.0.join("release");
        touch(&exe_dir.join("libonnxruntime.so.1.32.0"));
        let chosen = touch(&t.0.join("elsewhere/libonnxruntime.so"));
        let env = |var: &str| (var == "ORT_DYLIB_PATH").then(|| chosen.clone().into_os_string());
        let found = find_library_in(None, env, None, Some(&exe_dir)).unwrap();
        assert_eq!(found, chosen);

        // Nothing shipped: the working directory's ancestors' `.venv`.
        let bare = t.0.join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        let in_venv = venv_lib(&t.0);
        let cwd = t.0.join("project/sub");
        let found = find_library_in(None, no_env, Some(&cwd), Some(&bare)).unwrap();
        assert_eq!(found, in_venv);
    }

    #[test]
    fn nothing_found_says_how_to_get_the_library() {
        let t = TempDir::new();
        let err = find_library_in(None, no_env, Some(&t.0), Some(&t.0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TAKARIR_ORT_LIB"), "{err}");
        assert!(err.contains("beside the takarir executable"), "{err}");
    }
}
