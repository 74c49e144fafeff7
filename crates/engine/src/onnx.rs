//! The encoder and KV-cached decoder, run with ONNX Runtime.
//!
//! Decoder inputs are recognised by name, as Optimum exports them: `input_ids`,
//! `encoder_hidden_states`, `past_key_values.*` (self- and, for some models, cross-attention),
//! `use_cache_branch` (merged graphs), and the optional `attention_mask`,
//! `encoder_attention_mask`, `position_ids`, `cache_position`. Each `present.X` output becomes the
//! next step's `past_key_values.X`; cache entries a graph stops returning (cross-attention after
//! the first step) are kept as they were. Beam search reorders cache rows between steps.
//!
//! `Session::run` needs `&mut`, so each graph sits behind a mutex; a generation locks it per step,
//! so concurrent requests share one session and interleave.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;

use ort::session::{builder::GraphOptimizationLevel, Session, SessionInputValue};
use ort::value::{Tensor, TensorRef, ValueType};

use crate::error::{EngineError, Result};
use crate::generate::StepModel;
use crate::model::{DecoderFiles, ModelFiles};

fn ort_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Inference(e.to_string())
}

pub(crate) fn open(
    env: &ort::environment::Environment,
    path: &Path,
    threads: usize,
) -> Result<Session> {
    open_with(env, path, threads, true)
}

/// A graph that runs once per image (detector, tagger, the text reader's graphs): its idle
/// threads sleep instead of spinning, so that they do not take the cores from the captioner's
/// many short decoder runs (on a busy 2-core machine the text detector ran in 125 ms instead of
/// 200 ms that way).
pub(crate) fn open_once_per_image(
    env: &ort::environment::Environment,
    path: &Path,
    threads: usize,
) -> Result<Session> {
    open_with(env, path, threads, false)
}

fn open_with(
    env: &ort::environment::Environment,
    path: &Path,
    threads: usize,
    spinning: bool,
) -> Result<Session> {
    let load = |e: String| EngineError::model(path, format!("cannot load ONNX graph: {e}"));
    Session::builder(env)
        .map_err(|e| load(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| load(e.to_string()))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| load(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| load(e.to_string()))?
        .with_intra_op_spinning(spinning)
        .map_err(|e| load(e.to_string()))?
        .commit_from_file(path)
        .map_err(|e| load(e.to_string()))
}

/// A `past_key_values.*` input: its name and fixed dimensions (heads, width) if the graph says.
#[derive(Debug, Clone)]
struct PastInput {
    name: String,
    heads: Option<i64>,
    head_dim: Option<i64>,
}

/// Input names of a decoder graph, checked once at load.
#[derive(Debug, Clone)]
struct DecoderSignature {
    past: Vec<PastInput>,
    has_use_cache_branch: bool,
    has_attention_mask: bool,
    has_encoder_attention_mask: bool,
    has_position_ids: bool,
    has_cache_position: bool,
}

fn signature(session: &Session, path: &Path) -> Result<DecoderSignature> {
    let mut sig = DecoderSignature {
        past: vec![],
        has_use_cache_branch: false,
        has_attention_mask: false,
        has_encoder_attention_mask: false,
        has_position_ids: false,
        has_cache_position: false,
    };
    let mut has_ids = false;
    for input in session.inputs() {
        let name = input.name();
        match name {
            "input_ids" => has_ids = true,
            "encoder_hidden_states" => {}
            "use_cache_branch" => sig.has_use_cache_branch = true,
            "attention_mask" | "decoder_attention_mask" => sig.has_attention_mask = true,
            "encoder_attention_mask" => sig.has_encoder_attention_mask = true,
            "position_ids" => sig.has_position_ids = true,
            "cache_position" => sig.has_cache_position = true,
            n if n.starts_with("past_key_values.") => {
                let dims: Vec<i64> = match input.dtype() {
                    ValueType::Tensor { shape, .. } => shape.iter().copied().collect(),
                    _ => vec![],
                };
                let fixed = |i: usize| dims.get(i).copied().filter(|&d| d > 0);
                sig.past.push(PastInput {
                    name: n.to_string(),
                    heads: fixed(1),
                    head_dim: fixed(3),
                });
            }
            other => {
                return Err(EngineError::model(
                    path,
                    format!("unsupported decoder input `{other}`"),
                ));
            }
        }
    }
    if !has_ids {
        return Err(EngineError::model(path, "decoder has no input_ids input"));
    }
    Ok(sig)
}

enum DecoderGraphs {
    Merged(Mutex<Session>),
    Split {
        first: Mutex<Session>,
        with_past: Mutex<Session>,
    },
}

/// Encoder and decoder sessions of one model, shared by all requests.
pub struct OnnxModel {
    encoder: Mutex<Session>,
    encoder_input: String,
    encoder_output: String,
    decoder: DecoderGraphs,
    first_sig: DecoderSignature,
    next_sig: DecoderSignature,
    vocab_size: usize,
    fallback_heads: Option<usize>,
    fallback_head_dim: Option<usize>,
}

impl OnnxModel {
    /// Opens the graphs with `threads` intra-op threads each.
    pub fn load(
        files: &ModelFiles,
        threads: usize,
        vocab_size: usize,
        heads: Option<usize>,
        head_dim: Option<usize>,
    ) -> Result<Self> {
        let env = crate::runtime::environment(None)?;
        let encoder = open(env, &files.encoder, threads)?;
        let encoder_input = encoder
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .find(|n| n == "pixel_values")
            .or_else(|| encoder.inputs().first().map(|i| i.name().to_string()))
            .ok_or_else(|| EngineError::model(&files.encoder, "encoder has no input"))?;
        let encoder_output = encoder
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .find(|n| n == "last_hidden_state")
            .or_else(|| encoder.outputs().first().map(|o| o.name().to_string()))
            .ok_or_else(|| EngineError::model(&files.encoder, "encoder has no output"))?;
        let (decoder, first_sig, next_sig) = match &files.decoder {
            DecoderFiles::Merged(p) => {
                let s = open(env, p, threads)?;
                let sig = signature(&s, p)?;
                if !sig.has_use_cache_branch {
                    return Err(EngineError::model(
                        p,
                        "merged decoder without a use_cache_branch input",
                    ));
                }
                (DecoderGraphs::Merged(Mutex::new(s)), sig.clone(), sig)
            }
            DecoderFiles::Split { first, with_past } => {
                let a = open(env, first, threads)?;
                let b = open(env, with_past, threads)?;
                let (sa, sb) = (signature(&a, first)?, signature(&b, with_past)?);
                (
                    DecoderGraphs::Split {
                        first: Mutex::new(a),
                        with_past: Mutex::new(b),
                    },
                    sa,
                    sb,
                )
            }
        };
        // The logits width is the true vocabulary (it can exceed the tokenizer's when padded).
        let logits_dim = match &decoder {
            DecoderGraphs::Merged(s) | DecoderGraphs::Split { first: s, .. } => {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.outputs()
                    .iter()
                    .find(|o| o.name() == "logits")
                    .and_then(|o| match o.dtype() {
                        ValueType::Tensor { shape, .. } => shape.last().copied().filter(|&d| d > 0),
                        _ => None,
                    })
            }
        };
        let vocab_size = logits_dim.map(|d| d as usize).unwrap_or(vocab_size);
        Ok(OnnxModel {
            encoder: Mutex::new(encoder),
            encoder_input,
            encoder_output,
            decoder,
            first_sig,
            next_sig,
            vocab_size,
            fallback_heads: heads,
            fallback_head_dim: head_dim,
        })
    }

    /// Runs the encoder on `[batch, 3, H, W]` pixels; returns `(hidden states, [batch, seq, dim])`.
    pub fn encode(
        &self,
        pixels: &[f32],
        batch: usize,
        height: usize,
        width: usize,
    ) -> Result<(Vec<f32>, [usize; 3])> {
        let input =
            TensorRef::from_array_view(([batch, 3, height, width], pixels)).map_err(ort_err)?;
        let mut enc = self.encoder.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = enc
            .run(vec![(
                Cow::from(self.encoder_input.as_str()),
                SessionInputValue::from(input),
            )])
            .map_err(ort_err)?;
        let out = outputs
            .get(&self.encoder_output)
            .ok_or_else(|| EngineError::Inference("encoder returned nothing".into()))?;
        let (shape, data) = out.try_extract_tensor::<f32>().map_err(ort_err)?;
        if shape.len() != 3 {
            return Err(EngineError::Inference(format!(
                "encoder output has shape {shape:?}, expected 3 dimensions"
            )));
        }
        Ok((
            data.to_vec(),
            [shape[0] as usize, shape[1] as usize, shape[2] as usize],
        ))
    }

    /// A decoder stepper over `rows` rows; row `r` attends to encoder item `r / repeat`.
    pub fn decoder(&self, encoded: &[f32], shape: [usize; 3], repeat: usize) -> OnnxDecoder<'_> {
        let per_item = shape[1] * shape[2];
        let mut states = Vec::with_capacity(encoded.len() * repeat);
        for item in encoded.chunks(per_item) {
            for _ in 0..repeat {
                states.extend_from_slice(item);
            }
        }
        OnnxDecoder {
            model: self,
            rows: shape[0] * repeat,
            enc_len: shape[1],
            enc_dim: shape[2],
            states,
            cache: None,
            past_len: 0,
        }
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

struct CacheEntry {
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// One generation's decoder state: expanded encoder states and the KV cache.
pub struct OnnxDecoder<'m> {
    model: &'m OnnxModel,
    rows: usize,
    enc_len: usize,
    enc_dim: usize,
    states: Vec<f32>,
    cache: Option<Vec<CacheEntry>>,
    past_len: usize,
}

impl OnnxDecoder<'_> {
    fn run(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let m = self.model;
        let first = self.cache.is_none();
        let sig = if first { &m.first_sig } else { &m.next_sig };
        let rows = self.rows;
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let total = self.past_len + 1;
        let mut inputs: Vec<(Cow<str>, SessionInputValue)> = Vec::new();
        let owned = |t: Tensor<i64>| SessionInputValue::from(t);
        inputs.push((
            "input_ids".into(),
            owned(Tensor::from_array(([rows, 1], ids)).map_err(ort_err)?),
        ));
        inputs.push((
            "encoder_hidden_states".into(),
            TensorRef::from_array_view((
                [rows, self.enc_len, self.enc_dim],
                self.states.as_slice(),
            ))
            .map_err(ort_err)?
            .into(),
        ));
        if sig.has_use_cache_branch {
            inputs.push((
                "use_cache_branch".into(),
                Tensor::from_array(([1usize], vec![!first]))
                    .map_err(ort_err)?
                    .into(),
            ));
        }
        if sig.has_attention_mask {
            inputs.push((
                "attention_mask".into(),
                owned(
                    Tensor::from_array(([rows, total], vec![1i64; rows * total]))
                        .map_err(ort_err)?,
                ),
            ));
        }
        if sig.has_encoder_attention_mask {
            let n = rows * self.enc_len;
            inputs.push((
                "encoder_attention_mask".into(),
                owned(Tensor::from_array(([rows, self.enc_len], vec![1i64; n])).map_err(ort_err)?),
            ));
        }
        if sig.has_position_ids {
            inputs.push((
                "position_ids".into(),
                owned(
                    Tensor::from_array(([rows, 1], vec![self.past_len as i64; rows]))
                        .map_err(ort_err)?,
                ),
            ));
        }
        if sig.has_cache_position {
            inputs.push((
                "cache_position".into(),
                owned(Tensor::from_array(([1usize], vec![self.past_len as i64])).map_err(ort_err)?),
            ));
        }
        let empty: Vec<f32> = Vec::new();
        for p in &sig.past {
            match self
                .cache
                .as_ref()
                .and_then(|c| c.iter().find(|e| e.name == p.name))
            {
                Some(e) => inputs.push((
                    p.name.as_str().into(),
                    TensorRef::from_array_view((e.shape.clone(), e.data.as_slice()))
                        .map_err(ort_err)?
                        .into(),
                )),
                None => {
                    // First step: zero-length dummies, as Optimum feeds them.
                    let heads = p
                        .heads
                        .map(|h| h as usize)
                        .or(m.fallback_heads)
                        .ok_or_else(|| {
                            EngineError::Inference(format!(
                                "cannot tell the head count of {}",
                                p.name
                            ))
                        })?;
                    let dim = p
                        .head_dim
                        .map(|h| h as usize)
                        .or(m.fallback_head_dim)
                        .ok_or_else(|| {
                            EngineError::Inference(format!(
                                "cannot tell the head width of {}",
                                p.name
                            ))
                        })?;
                    inputs.push((
                        p.name.as_str().into(),
                        TensorRef::from_array_view(([rows, heads, 0, dim], empty.as_slice()))
                            .map_err(ort_err)?
                            .into(),
                    ));
                }
            }
        }
        let graph = match (&m.decoder, first) {
            (DecoderGraphs::Merged(s), _) => s,
            (DecoderGraphs::Split { first: s, .. }, true) => s,
            (DecoderGraphs::Split { with_past: s, .. }, false) => s,
        };
        let mut session = graph.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(inputs).map_err(ort_err)?;
        let (shape, logits) = outputs
            .get("logits")
            .ok_or_else(|| EngineError::Inference("decoder returned no logits".into()))?
            .try_extract_tensor::<f32>()
            .map_err(ort_err)?;
        let vocab = shape[shape.len() - 1] as usize;
        if vocab != m.vocab_size {
            return Err(EngineError::Inference(format!(
                "decoder returned {vocab} logits per row, expected {}",
                m.vocab_size
            )));
        }
        let seq = shape[1] as usize;
        let mut last = Vec::with_capacity(rows * vocab);
        for r in 0..rows {
            let off = (r * seq + seq - 1) * vocab;
            last.extend_from_slice(&logits[off..off + vocab]);
        }
        let mut cache = self.cache.take().unwrap_or_default();
        for (name, value) in outputs.iter() {
            let Some(rest) = name.strip_prefix("present") else {
                continue;
            };
            let past_name = format!("past_key_values{rest}");
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
            let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            match cache.iter_mut().find(|e| e.name == past_name) {
                Some(e) => {
                    e.shape = shape;
                    e.data.clear();
                    e.data.extend_from_slice(data);
                }
                None => cache.push(CacheEntry {
                    name: past_name,
                    shape,
                    data: data.to_vec(),
                }),
            }
        }
        drop(outputs);
        drop(session);
        self.cache = Some(cache);
        self.past_len += 1;
        Ok(last)
    }
}

impl StepModel for OnnxDecoder<'_> {
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.run(tokens)
    }

    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        if rows.iter().enumerate().all(|(i, &r)| i == r) {
            return Ok(());
        }
        if let Some(cache) = &mut self.cache {
            for e in cache.iter_mut() {
                let per_row = e.data.len() / e.shape[0].max(1);
                let mut out = Vec::with_capacity(e.data.len());
                for &r in rows {
                    out.extend_from_slice(&e.data[r * per_row..(r + 1) * per_row]);
                }
                e.data = out;
            }
        }
        Ok(())
    }

    fn vocab_size(&self) -> usize {
        self.model.vocab_size
    }
}
