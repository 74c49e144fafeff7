//! One module per subcommand, plus the options they share.

pub mod admin;
pub mod backup;
pub mod bench;
pub mod caption;
pub mod eval;
pub mod generation;
pub mod models;
pub mod output;
pub mod remote;
pub mod serve;
pub mod training;

use std::path::{Path, PathBuf};

use anyhow::Context;
use takarir_engine::{
    Captioner, CaptionerOptions, LazyTextReader, TextReaderOptions, VisionSource,
};

/// Model-loading options shared by every subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model directory or `hf:ORG/NAME[@REV]` [default: models/default, found from the current
    /// or the executable's directory]
    #[arg(long, short = 'm', env = "TAKARIR_MODEL")]
    pub model: Option<String>,
    /// ONNX Runtime threads per graph [default: all cores]
    #[arg(long, env = "TAKARIR_THREADS")]
    pub threads: Option<usize>,
    /// Prefer the int8 `*_quantized.onnx` graphs when the model has both
    #[arg(long)]
    pub quantized: bool,
    /// Path of libonnxruntime.so [default: TAKARIR_ORT_LIB, ORT_DYLIB_PATH, or the project .venv]
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// Vision bundle (detector, tagger) for grounded captions, objects and tags [default: the
    /// model directory's own, when it has one]; `none` turns them off
    #[arg(long, value_name = "DIR|none", env = "TAKARIR_VISION")]
    pub vision: Option<String>,
}

/// `rel` under the working directory or the executable's directory, or one of their ancestors
/// (nearest first, the working directory's side first).
pub fn find_up(rel: &str) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    cwd.iter()
        .chain(exe_dir.iter())
        .flat_map(|d| d.ancestors())
        .map(|a| a.join(rel))
        .find(|p| p.exists())
}

/// `models/default`, found as [`find_up`] finds files.
pub fn default_model() -> Option<PathBuf> {
    find_up("models/default/config.json").and_then(|p| p.parent().map(Path::to_path_buf))
}

impl ModelArgs {
    /// Loads the model these arguments name.
    pub fn load(&self) -> anyhow::Result<Captioner> {
        let model = match &self.model {
            Some(m) => m.clone(),
            None => default_model()
                .context(
                    "no --model given and no models/default found; pass --model DIR or hf:ORG/NAME",
                )?
                .to_string_lossy()
                .into_owned(),
        };
        let mut o = CaptionerOptions::new(model);
        if let Some(t) = self.threads {
            o.threads = t;
        }
        o.prefer_quantized = self.quantized;
        o.ort_library = self.ort_lib.clone();
        o.vision = match self.vision.as_deref() {
            None => VisionSource::Auto,
            Some("none") => VisionSource::Off,
            Some(dir) => VisionSource::Dir(PathBuf::from(dir)),
        };
        Ok(Captioner::load(&o)?)
    }

    /// The text reader of `dir`, else of `text/` beside `captioner`'s model directory (as the
    /// server finds it), with these threads; opened only when text is first asked for.
    pub fn text_reader(&self, captioner: &Captioner, dir: Option<PathBuf>) -> LazyTextReader {
        let beside = || {
            captioner
                .model_dir()
                .parent()
                .map(|p| p.join("text"))
                .unwrap_or_else(|| PathBuf::from("text"))
        };
        let dir = dir.unwrap_or_else(beside);
        let mut o = TextReaderOptions::new(dir);
        if let Some(t) = self.threads {
            o.threads = t;
        }
        o.ort_library = self.ort_lib.clone();
        o.limits = *captioner.limits();
        LazyTextReader::new(o)
    }
}
