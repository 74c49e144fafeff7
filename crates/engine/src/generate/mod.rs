//! Text generation: the decoding loop, independent of ONNX.
//!
//! The loop talks to the model through [`StepModel`] (feed one token per row, get the last
//! position's logits, reorder the cache rows), so it is unit-tested with a fake model and run for
//! real by [`crate::onnx::OnnxDecoder`]. Semantics follow `transformers` 4.57 `generate()` for
//! encoder–decoder models exactly, because the parity tests compare token ids with it:
//! - logits processors run in the same order (repetition penalty, no-repeat n-gram, bad words,
//!   min new tokens, forced first token; then temperature, top-k, top-p when sampling);
//! - greedy and sampling process raw logits; beam search processes log-softmax scores;
//! - beam search is the vectorised algorithm of `_beam_search` (2×beams candidates per step,
//!   length penalty `score / generated_len^length_penalty`, the same early-stopping heuristic,
//!   all in f32), so even tie-breaking and `early_stopping` variants agree.

mod beam;
mod processors;

pub use processors::{LogitsProcessor, ProcessorList};

use rand::{Rng, SeedableRng};

use crate::error::{EngineError, Result};

/// When beam search may stop (the `early_stopping` of `transformers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// Stop when no running beam can, by a heuristic, beat the finished ones (the default).
    #[default]
    False,
    /// Stop as soon as `num_beams` hypotheses have finished.
    True,
    /// Canonical beam search: stop only when no better hypothesis is possible at all.
    Never,
}

/// Everything that shapes one generation call. Defaults come from `generation_config.json`.
#[derive(Debug, Clone)]
pub struct GenerationConfig {
    /// First decoder token.
    pub decoder_start_token_id: u32,
    /// Tokens that end a sequence.
    pub eos_token_ids: Vec<u32>,
    /// Padding token (unused in outputs, which are unpadded).
    pub pad_token_id: Option<u32>,
    /// Largest number of generated tokens (the start token excluded).
    pub max_new_tokens: usize,
    /// EOS is forbidden before this many generated tokens.
    pub min_new_tokens: usize,
    /// Beam width; 1 means greedy or sampling.
    pub num_beams: usize,
    /// Beam score = sum of log-probabilities / generated_length^length_penalty.
    pub length_penalty: f64,
    /// Beam stopping rule.
    pub early_stopping: EarlyStopping,
    /// Sample instead of taking the most likely token.
    pub do_sample: bool,
    /// Sampling temperature.
    pub temperature: f32,
    /// Keep only the k most likely tokens when sampling (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p when sampling (1 = off).
    pub top_p: f32,
    /// Seed for sampling; the same seed gives the same captions.
    pub seed: u64,
    /// Forbid repeating any n-gram of this size (0 = off).
    pub no_repeat_ngram_size: usize,
    /// CTRL-style repetition penalty (1 = off).
    pub repetition_penalty: f32,
    /// Sequences returned per image (≤ num_beams with beam search).
    pub num_return_sequences: usize,
    /// Token forced as the first generated one (`forced_bos_token_id`; Takarir's language token).
    pub forced_first_token: Option<u32>,
    /// Token sequences never to generate (`bad_words_ids`).
    pub bad_words_ids: Vec<Vec<u32>>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        // transformers' GenerationConfig defaults (max_length 20 → 19 new tokens after the start token).
        GenerationConfig {
            decoder_start_token_id: 0,
            eos_token_ids: vec![],
            pad_token_id: None,
            max_new_tokens: 19,
            min_new_tokens: 0,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
            do_sample: false,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            seed: 0,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
            num_return_sequences: 1,
            forced_first_token: None,
            bad_words_ids: vec![],
        }
    }
}

impl GenerationConfig {
    /// Checks option ranges and combinations before any model work.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(EngineError::InvalidOption(m.into()));
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1");
        }
        if self.num_beams == 0 || self.num_beams > 32 {
            return bad("num_beams must be between 1 and 32");
        }
        if self.num_return_sequences == 0 {
            return bad("num_return_sequences must be at least 1");
        }
        if self.num_beams > 1 && self.num_return_sequences > self.num_beams {
            return bad("num_return_sequences cannot exceed num_beams");
        }
        if self.num_beams == 1 && !self.do_sample && self.num_return_sequences > 1 {
            return bad("greedy search returns one sequence; use beams or sampling for more");
        }
        if self.do_sample && self.num_beams > 1 {
            return bad("beam sampling is not supported; use num_beams = 1 with sampling");
        }
        if self.do_sample && (self.temperature.is_nan() || self.temperature <= 0.0) {
            return bad("temperature must be positive");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p must be in (0, 1]");
        }
        if self.repetition_penalty.is_nan() || self.repetition_penalty <= 0.0 {
            return bad("repetition_penalty must be positive");
        }
        Ok(())
    }
}

/// One generated sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Token ids, the decoder start token first, EOS last if it was reached.
    pub tokens: Vec<u32>,
    /// Beam search: the length-penalised sequence score. Greedy and sampling: the sum of the
    /// log-probabilities (after logits processing) of the generated tokens.
    pub score: f32,
}

/// A decoder that can be stepped one token per row.
pub trait StepModel {
    /// Feeds `tokens[r]` to row `r` and returns the next-token logits, `rows × vocab`, row-major.
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>>;
    /// Keeps, for new row `i`, the cache of old row `rows[i]` (beam search).
    fn reorder(&mut self, rows: &[usize]) -> Result<()>;
    /// Vocabulary size (logits per row).
    fn vocab_size(&self) -> usize;
}

/// Generates for `batch` inputs whose model rows are laid out item-major (`num_beams` rows per
/// item for beam search, one row otherwise). Returns the hypotheses per item, best first.
pub fn generate(
    model: &mut dyn StepModel,
    batch: usize,
    cfg: &GenerationConfig,
) -> Result<Vec<Vec<Hypothesis>>> {
    cfg.validate()?;
    let procs = ProcessorList::from_config(cfg);
    if cfg.num_beams > 1 {
        return beam::beam_search(model, batch, cfg, &procs);
    }
    if cfg.do_sample && cfg.num_return_sequences > 1 {
        // Row layout for sampling several sequences: each item repeated num_return_sequences times.
        let flat = sample_or_greedy(model, batch * cfg.num_return_sequences, cfg, &procs)?;
        return Ok(flat
            .chunks(cfg.num_return_sequences)
            .map(|c| c.iter().map(|v| v[0].clone()).collect())
            .collect());
    }
    sample_or_greedy(model, batch, cfg, &procs)
}

pub(crate) fn log_softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return;
    }
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let lse = sum.ln();
    for x in row.iter_mut() {
        *x = *x - max - lse;
    }
}

/// Index of the first maximum (as `torch.argmax`).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

fn sample_or_greedy(
    model: &mut dyn StepModel,
    rows: usize,
    cfg: &GenerationConfig,
    procs: &ProcessorList,
) -> Result<Vec<Vec<Hypothesis>>> {
    let vocab = model.vocab_size();
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut seqs: Vec<Vec<u32>> = vec![vec![cfg.decoder_start_token_id]; rows];
    let mut scores = vec![0f32; rows];
    let mut done = vec![false; rows];
    let mut feed: Vec<u32> = vec![cfg.decoder_start_token_id; rows];
    for _ in 0..cfg.max_new_tokens {
        let logits = model.step(&feed)?;
        for r in 0..rows {
            if done[r] {
                // Finished rows keep being fed (the batch moves in lockstep) but are never extended.
                feed[r] = cfg.pad_token_id.unwrap_or(cfg.decoder_start_token_id);
                continue;
            }
            let mut row = logits[r * vocab..(r + 1) * vocab].to_vec();
            procs.process(&seqs[r], 1, &mut row);
            let next = if cfg.do_sample {
                procs.warp(&mut row);
                sample(&row, &mut rng)
            } else {
                argmax(&row)
            };
            log_softmax_in_place(&mut row);
            scores[r] += row[next];
            seqs[r].push(next as u32);
            feed[r] = next as u32;
            done[r] = cfg.eos_token_ids.contains(&(next as u32));
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(seqs
        .into_iter()
        .zip(scores)
        .map(|(tokens, score)| vec![Hypothesis { tokens, score }])
        .collect())
}

fn sample(logits: &[f32], rng: &mut impl Rng) -> usize {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits.iter().map(|&x| ((x - max) as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if *w > 0.0 {
            if u < *w {
                return i;
            }
            u -= w;
        }
    }
    argmax(logits)
}

#[cfg(test)]
mod tests;
