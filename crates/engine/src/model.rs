//! Resolving a model: which files make it up, wherever it lives.
//!
//! A model is a directory in the layout Hugging Face Optimum writes for `VisionEncoderDecoder`
//! models (`encoder_model.onnx`, `decoder_model_merged.onnx` or the pair `decoder_model.onnx` +
//! `decoder_with_past_model.onnx`, `*_quantized.onnx` variants, the JSON configs and
//! `tokenizer.json`; ONNX files may sit in an `onnx/` subfolder as on the Hub), or `hf:ORG/NAME[@REV]`,
//! fetched with `hf-hub` into the standard Hugging Face cache (`HF_HOME`), honouring
//! `HF_HUB_OFFLINE=1`.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// Which decoder graphs a model provides.
#[derive(Debug, Clone, PartialEq)]
pub enum DecoderFiles {
    /// One graph with a `use_cache_branch` input (Optimum's merged decoder).
    Merged(PathBuf),
    /// A first-step graph without past and a graph for the following steps.
    Split {
        /// `decoder_model.onnx`.
        first: PathBuf,
        /// `decoder_with_past_model.onnx`.
        with_past: PathBuf,
    },
}

/// The files of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// Where `config.json` and the other JSON files are.
    pub dir: PathBuf,
    /// The encoder graph.
    pub encoder: PathBuf,
    /// The decoder graph(s).
    pub decoder: DecoderFiles,
    /// Whether the int8 `*_quantized.onnx` graphs were chosen.
    pub quantized: bool,
}

const JSON_FILES: [&str; 4] = [
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
];

fn pick(dir: &Path, stem: &str, quantized: bool) -> Option<PathBuf> {
    let name = if quantized {
        format!("{stem}_quantized.onnx")
    } else {
        format!("{stem}.onnx")
    };
    [dir.join(&name), dir.join("onnx").join(&name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The graph `stem` in the preferred precision, else in the other, with whether it is int8.
fn pick_either(dir: &Path, stem: &str, prefer_quantized: bool) -> Option<(PathBuf, bool)> {
    [prefer_quantized, !prefer_quantized]
        .into_iter()
        .find_map(|q| pick(dir, stem, q).map(|p| (p, q)))
}

/// Each graph is chosen on its own, so a model may ship an int8 decoder next to a full-precision
/// encoder (the default model does: its int8 encoder lost too much accuracy).
fn select(dir: &Path, prefer_quantized: bool) -> Option<ModelFiles> {
    let (encoder, encoder_q) = pick_either(dir, "encoder_model", prefer_quantized)?;
    let (decoder, decoder_q) = match pick_either(dir, "decoder_model_merged", prefer_quantized) {
        Some((m, q)) => (DecoderFiles::Merged(m), q),
        None => {
            // The split pair shares its cache tensors, so both halves come in one precision.
            [prefer_quantized, !prefer_quantized]
                .into_iter()
                .find_map(|q| {
                    let first = pick(dir, "decoder_model", q)?;
                    let with_past = pick(dir, "decoder_with_past_model", q)?;
                    Some((DecoderFiles::Split { first, with_past }, q))
                })?
        }
    };
    Some(ModelFiles {
        dir: dir.to_path_buf(),
        encoder,
        decoder,
        quantized: encoder_q || decoder_q,
    })
}

impl ModelFiles {
    /// Finds the graphs in a local directory. For each graph, full precision is preferred unless
    /// `prefer_quantized`; either kind is used when it is the only one present.
    pub fn from_dir(dir: &Path, prefer_quantized: bool) -> Result<Self> {
        if !dir.is_dir() {
            return Err(EngineError::model(dir, "no such model directory"));
        }
        for f in ["config.json", "preprocessor_config.json", "tokenizer.json"] {
            if !dir.join(f).is_file() {
                return Err(EngineError::model(dir, format!("missing {f}")));
            }
        }
        select(dir, prefer_quantized).ok_or_else(|| {
            EngineError::model(
                dir,
                "no encoder_model.onnx with decoder_model_merged.onnx (or decoder_model.onnx + \
                 decoder_with_past_model.onnx), plain or *_quantized",
            )
        })
    }

    /// Resolves `--model`: a directory path, or `hf:ORG/NAME[@REV]` from the Hugging Face Hub.
    pub fn resolve(spec: &str, prefer_quantized: bool) -> Result<Self> {
        match spec.strip_prefix("hf:") {
            Some(repo) => from_hub(repo, prefer_quantized),
            None => Self::from_dir(Path::new(spec), prefer_quantized),
        }
    }
}

/// Splits `ORG/NAME[@REV]`.
fn parse_repo(spec: &str) -> Result<(String, String)> {
    let (id, rev) = spec.split_once('@').unwrap_or((spec, "main"));
    let valid =
        id.split('/').count() == 2 && id.split('/').all(|p| !p.is_empty()) && !rev.is_empty();
    if !valid {
        return Err(EngineError::Hub(format!(
            "`hf:{spec}` is not of the form hf:ORG/NAME[@REVISION]"
        )));
    }
    Ok((id.to_string(), rev.to_string()))
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"))
        .unwrap_or(false)
}

/// Fetches (or finds in the cache) the files of a Hub model, then selects graphs as for a directory.
fn from_hub(spec: &str, prefer_quantized: bool) -> Result<ModelFiles> {
    use hf_hub::{Cache, Repo, RepoType};
    let (id, rev) = parse_repo(spec)?;
    let repo = Repo::with_revision(id.clone(), RepoType::Model, rev.clone());
    let cache = Cache::from_env();
    let cached = cache.repo(repo.clone());
    let api = if offline() {
        None
    } else {
        Some(
            hf_hub::api::sync::ApiBuilder::from_env()
                .with_progress(false)
                .build()
                .map_err(|e| EngineError::Hub(format!("cannot reach the Hugging Face Hub: {e}")))?
                .repo(repo),
        )
    };
    let mut last_error = None;
    let mut get = |name: &str| -> Option<PathBuf> {
        if let Some(p) = cached.get(name) {
            return Some(p);
        }
        match &api {
            Some(api) => api
                .get(name)
                .map_err(|e| last_error = Some(e.to_string()))
                .ok(),
            None => None,
        }
    };
    let mut dir = None;
    for f in JSON_FILES {
        let p = get(f);
        if f != "generation_config.json" && p.is_none() {
            let why = match (&api, &last_error) {
                (None, _) => "offline (HF_HUB_OFFLINE=1) and not cached".to_string(),
                (Some(_), Some(e)) => format!("offline and not cached ({e})"),
                (Some(_), None) => "not found".to_string(),
            };
            return Err(EngineError::Hub(format!(
                "hf:{id}@{rev}: {why}: {f} is missing from {}. Download the model directory \
                 elsewhere and pass --model PATH, or connect to the Hub.",
                cache.path().display()
            )));
        }
        if f == "config.json" {
            dir = p.and_then(|p| p.parent().map(Path::to_path_buf));
        }
    }
    let dir = dir.expect("config.json resolved above");
    // Fetch graphs: merged decoder first, the split pair otherwise; onnx/ subfolder or root.
    let variants = if prefer_quantized {
        [true, false]
    } else {
        [false, true]
    };
    for q in variants {
        let suffix = if q { "_quantized.onnx" } else { ".onnx" };
        let fetch = |get: &mut dyn FnMut(&str) -> Option<PathBuf>, stem: &str| {
            get(&format!("onnx/{stem}{suffix}")).or_else(|| get(&format!("{stem}{suffix}")))
        };
        let Some(encoder) = fetch(&mut get, "encoder_model") else {
            continue;
        };
        let decoder = match fetch(&mut get, "decoder_model_merged") {
            Some(m) => DecoderFiles::Merged(m),
            None => match (
                fetch(&mut get, "decoder_model"),
                fetch(&mut get, "decoder_with_past_model"),
            ) {
                (Some(first), Some(with_past)) => DecoderFiles::Split { first, with_past },
                _ => continue,
            },
        };
        return Ok(ModelFiles {
            dir,
            encoder,
            decoder,
            quantized: q,
        });
    }
    Err(EngineError::Hub(format!(
        "hf:{id}@{rev}: offline and not cached, or the repository has no ONNX encoder/decoder in the Optimum layout"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_specs_are_parsed_strictly() {
        assert_eq!(
            parse_repo("Mozilla/distilvit").unwrap(),
            ("Mozilla/distilvit".into(), "main".into())
        );
        assert_eq!(
            parse_repo("a/b@v1.0").unwrap(),
            ("a/b".into(), "v1.0".into())
        );
        for bad in ["distilvit", "a/b/c", "/b", "a/b@"] {
            assert!(parse_repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_graph_picks_its_own_precision() {
        let dir = std::env::temp_dir().join(format!("takarir-model-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Resolution looks at names only, so empty files stand in for the graphs.
        let touch = |names: &[&str]| {
            for f in names {
                std::fs::write(dir.join(f), b"").unwrap();
            }
        };
        touch(&[
            "config.json",
            "preprocessor_config.json",
            "tokenizer.json",
            "encoder_model.onnx",
            "decoder_model_merged.onnx",
            "decoder_model_merged_quantized.onnx",
        ]);
        let plain = ModelFiles::from_dir(&dir, false).unwrap();
        assert!(!plain.quantized);
        assert_eq!(
            plain.decoder,
            DecoderFiles::Merged(dir.join("decoder_model_merged.onnx"))
        );
        let int8 = ModelFiles::from_dir(&dir, true).unwrap();
        assert!(int8.quantized);
        assert_eq!(int8.encoder, dir.join("encoder_model.onnx"));
        assert_eq!(
            int8.decoder,
            DecoderFiles::Merged(dir.join("decoder_model_merged_quantized.onnx"))
        );
        // Only the split pair's int8 half for the first step: the pair falls back to full precision.
        std::fs::remove_file(dir.join("decoder_model_merged.onnx")).unwrap();
        std::fs::remove_file(dir.join("decoder_model_merged_quantized.onnx")).unwrap();
        touch(&[
            "decoder_model.onnx",
            "decoder_with_past_model.onnx",
            "decoder_model_quantized.onnx",
        ]);
        let split = ModelFiles::from_dir(&dir, true).unwrap();
        assert!(!split.quantized);
        assert_eq!(
            split.decoder,
            DecoderFiles::Split {
                first: dir.join("decoder_model.onnx"),
                with_past: dir.join("decoder_with_past_model.onnx"),
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
