//! The JSON files of a Hugging Face model directory, read into typed structs.
//!
//! Only the keys the engine uses are read; unknown keys are ignored so that models exported by
//! different versions of `transformers`/Optimum load alike. Nested `decoder`/`encoder` sections of
//! `VisionEncoderDecoderConfig` are searched for ids that the top level lacks.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::generate::{EarlyStopping, GenerationConfig};

/// One or several token ids (`transformers` accepts both forms for `eos_token_id`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(i64),
    Many(Vec<i64>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<u32> {
        match self {
            OneOrMany::One(v) => vec![v as u32],
            OneOrMany::Many(v) => v.into_iter().map(|x| x as u32).collect(),
        }
    }
}

/// What the engine needs from `config.json`.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// `model_type`, for display.
    pub model_type: String,
    /// `model_version`, a release label the model's publisher sets (Takarir's models do).
    pub version: Option<String>,
    /// First decoder input token.
    pub decoder_start_token_id: u32,
    /// Tokens that end a caption.
    pub eos_token_ids: Vec<u32>,
    /// Padding token.
    pub pad_token_id: Option<u32>,
    /// Language code → token forced as the first generated token (Takarir's bilingual models).
    pub languages: BTreeMap<String, String>,
    /// Decoder layer/head counts when the ONNX graph leaves them symbolic.
    pub decoder_heads: Option<usize>,
    /// Per-head width, likewise.
    pub decoder_head_dim: Option<usize>,
}

fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null()).or_else(|| {
        v.get("decoder")
            .and_then(|d| d.get(key))
            .filter(|x| !x.is_null())
    })
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| EngineError::model(path, format!("invalid JSON: {e}")))
}

fn ids(v: Option<&Value>) -> Option<Vec<u32>> {
    v.and_then(|x| serde_json::from_value::<OneOrMany>(x.clone()).ok())
        .map(OneOrMany::into_vec)
}

impl ModelConfig {
    /// Reads `config.json`, with `generation_config.json` (if any) filling in missing ids.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let cfg = read_json(&path)?;
        let gen = match dir.join("generation_config.json") {
            p if p.exists() => read_json(&p)?,
            _ => Value::Null,
        };
        let pick = |key: &str| find_key(&cfg, key).or_else(|| find_key(&gen, key));
        let decoder_start_token_id = ids(pick("decoder_start_token_id"))
            .or_else(|| ids(pick("bos_token_id")))
            .and_then(|v| v.first().copied())
            .ok_or_else(|| {
                EngineError::model(&path, "no decoder_start_token_id or bos_token_id")
            })?;
        let eos_token_ids = ids(pick("eos_token_id")).unwrap_or_default();
        let pad_token_id = ids(pick("pad_token_id")).and_then(|v| v.first().copied());
        let languages = cfg
            .get("languages")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        let usize_of = |key: &str| pick(key).and_then(Value::as_u64).map(|v| v as usize);
        let heads = usize_of("decoder_attention_heads")
            .or_else(|| usize_of("n_head"))
            .or_else(|| usize_of("num_attention_heads"));
        let width = usize_of("d_model")
            .or_else(|| usize_of("n_embd"))
            .or_else(|| usize_of("hidden_size"));
        Ok(ModelConfig {
            model_type: cfg
                .get("model_type")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            version: cfg
                .get("model_version")
                .and_then(Value::as_str)
                .map(str::to_string),
            decoder_start_token_id,
            eos_token_ids,
            pad_token_id,
            languages,
            decoder_heads: heads,
            decoder_head_dim: heads.zip(width).map(|(h, w)| w / h.max(1)),
        })
    }
}

/// The generation defaults in `generation_config.json` (missing keys take `transformers` defaults).
pub fn load_generation_config(dir: &Path, model: &ModelConfig) -> Result<GenerationConfig> {
    let mut g = GenerationConfig {
        decoder_start_token_id: model.decoder_start_token_id,
        eos_token_ids: model.eos_token_ids.clone(),
        pad_token_id: model.pad_token_id,
        ..GenerationConfig::default()
    };
    let path = dir.join("generation_config.json");
    if !path.exists() {
        return Ok(g);
    }
    let v = read_json(&path)?;
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    let u = |k: &str| v.get(k).and_then(Value::as_u64).map(|x| x as usize);
    if let Some(x) = u("num_beams") {
        g.num_beams = x.max(1);
    }
    if let Some(x) = u("max_new_tokens") {
        g.max_new_tokens = x;
    } else if let Some(x) = u("max_length") {
        // Encoder-decoder models count the decoder start token in max_length.
        g.max_new_tokens = x.saturating_sub(1).max(1);
    }
    if let Some(x) = u("min_new_tokens") {
        g.min_new_tokens = x;
    } else if let Some(x) = u("min_length") {
        g.min_new_tokens = x.saturating_sub(1);
    }
    if let Some(x) = f("length_penalty") {
        g.length_penalty = x;
    }
    if let Some(x) = u("no_repeat_ngram_size") {
        g.no_repeat_ngram_size = x;
    }
    if let Some(x) = f("repetition_penalty") {
        g.repetition_penalty = x as f32;
    }
    if let Some(x) = v.get("do_sample").and_then(Value::as_bool) {
        g.do_sample = x;
    }
    if let Some(x) = f("temperature") {
        g.temperature = x as f32;
    }
    if let Some(x) = u("top_k") {
        g.top_k = x;
    }
    if let Some(x) = f("top_p") {
        g.top_p = x as f32;
    }
    if let Some(x) = u("num_return_sequences") {
        g.num_return_sequences = x.max(1);
    }
    if let Some(x) = ids(v.get("forced_bos_token_id")) {
        g.forced_first_token = x.first().copied();
    }
    match v.get("early_stopping") {
        Some(Value::Bool(true)) => g.early_stopping = EarlyStopping::True,
        Some(Value::String(s)) if s == "never" => g.early_stopping = EarlyStopping::Never,
        _ => {}
    }
    Ok(g)
}

/// `preprocessor_config.json`: how pixels become the encoder's input.
#[derive(Debug, Clone)]
pub struct PreprocessorConfig {
    /// Resize to exactly this (height, width) after any shortest-edge resize.
    pub resize: Resize,
    /// PIL resampling filter code (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming).
    pub resample: u32,
    /// Centre crop to (height, width) after resizing.
    pub crop: Option<(u32, u32)>,
    /// Multiply pixel values by this (usually 1/255) if set.
    pub rescale_factor: Option<f32>,
    /// Per-channel mean and std to normalise with, if set.
    pub normalize: Option<([f32; 3], [f32; 3])>,
}

/// How the image is resized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resize {
    /// No resizing.
    None,
    /// To exactly height × width.
    Exact(u32, u32),
    /// Shortest edge to this length, keeping the aspect ratio.
    ShortestEdge(u32),
}

impl PreprocessorConfig {
    /// Reads `preprocessor_config.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("preprocessor_config.json");
        let v = read_json(&path)?;
        let b = |k: &str, d: bool| v.get(k).and_then(Value::as_bool).unwrap_or(d);
        let size = v.get("size");
        let resize = if !b("do_resize", true) {
            Resize::None
        } else {
            match size {
                Some(Value::Number(n)) => {
                    let s = n.as_u64().unwrap_or(224) as u32;
                    Resize::Exact(s, s)
                }
                Some(obj) if obj.get("shortest_edge").is_some() => {
                    Resize::ShortestEdge(obj["shortest_edge"].as_u64().unwrap_or(224) as u32)
                }
                Some(obj) if obj.get("height").is_some() => Resize::Exact(
                    obj["height"].as_u64().unwrap_or(224) as u32,
                    obj.get("width").and_then(Value::as_u64).unwrap_or(224) as u32,
                ),
                _ => return Err(EngineError::model(&path, "do_resize without a usable size")),
            }
        };
        let crop = if b("do_center_crop", false) {
            match v.get("crop_size") {
                Some(Value::Number(n)) => n.as_u64().map(|s| (s as u32, s as u32)),
                Some(obj) => Some((
                    obj.get("height").and_then(Value::as_u64).unwrap_or(224) as u32,
                    obj.get("width").and_then(Value::as_u64).unwrap_or(224) as u32,
                )),
                None => None,
            }
        } else {
            None
        };
        let triple = |k: &str, d: f32| -> [f32; 3] {
            match v.get(k) {
                Some(Value::Array(a)) if a.len() == 3 => {
                    [0, 1, 2].map(|i| a[i].as_f64().unwrap_or(d as f64) as f32)
                }
                Some(Value::Number(n)) => [n.as_f64().unwrap_or(d as f64) as f32; 3],
                _ => [d; 3],
            }
        };
        Ok(PreprocessorConfig {
            resize,
            resample: v.get("resample").and_then(Value::as_u64).unwrap_or(2) as u32,
            crop,
            rescale_factor: b("do_rescale", true).then(|| {
                v.get("rescale_factor")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0 / 255.0) as f32
            }),
            normalize: b("do_normalize", true)
                .then(|| (triple("image_mean", 0.5), triple("image_std", 0.5))),
        })
    }

    /// The (height, width) of the tensor this configuration produces, if fixed.
    pub fn output_size(&self) -> Option<(u32, u32)> {
        self.crop.or(match self.resize {
            Resize::Exact(h, w) => Some((h, w)),
            _ => None,
        })
    }
}
