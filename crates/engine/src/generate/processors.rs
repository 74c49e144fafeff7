//! Logits processors, in the order `transformers` applies them.

use super::GenerationConfig;

/// Changes the scores of one row before the next token is chosen.
pub trait LogitsProcessor: Send + Sync {
    /// `seq` is the row's sequence so far (start token included), `prompt_len` how many of its
    /// tokens were given rather than generated; `scores` is modified in place.
    fn process(&self, seq: &[u32], prompt_len: usize, scores: &mut [f32]);
}

/// Penalises tokens already in the sequence (CTRL): negative scores are multiplied by the
/// penalty, positive ones divided, each token once.
struct RepetitionPenalty(f32);

impl LogitsProcessor for RepetitionPenalty {
    fn process(&self, seq: &[u32], _: usize, scores: &mut [f32]) {
        let mut seen = std::collections::HashSet::new();
        for &t in seq {
            let t = t as usize;
            if t < scores.len() && seen.insert(t) {
                let s = scores[t];
                scores[t] = if s < 0.0 { s * self.0 } else { s / self.0 };
            }
        }
    }
}

/// Bans any token that would repeat an n-gram already in the sequence (fairseq's rule).
struct NoRepeatNgram(usize);

impl LogitsProcessor for NoRepeatNgram {
    fn process(&self, seq: &[u32], _: usize, scores: &mut [f32]) {
        let n = self.0;
        let len = seq.len();
        if len < n {
            return;
        }
        // The last n-1 tokens, followed by any token that completed them before, would repeat.
        let prefix = &seq[len + 1 - n..];
        for start in 0..=len - n {
            if seq[start..start + n - 1] == *prefix {
                if let Some(s) = scores.get_mut(seq[start + n - 1] as usize) {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// Forbids end-of-sequence before `min` tokens have been generated.
struct MinNewTokens {
    min: usize,
    eos: Vec<u32>,
}

impl LogitsProcessor for MinNewTokens {
    fn process(&self, seq: &[u32], prompt_len: usize, scores: &mut [f32]) {
        if seq.len() - prompt_len < self.min {
            for &e in &self.eos {
                if let Some(s) = scores.get_mut(e as usize) {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// Bans token sequences (`bad_words_ids`): the last token of a sequence is forbidden whenever
/// the tokens before it were just generated. Grounding bans the words of objects that the
/// detector and the tagger do not support.
struct BadWords(Vec<Vec<u32>>);

impl LogitsProcessor for BadWords {
    fn process(&self, seq: &[u32], prompt_len: usize, scores: &mut [f32]) {
        let generated = &seq[prompt_len.min(seq.len())..];
        for bad in &self.0 {
            let Some((&last, prefix)) = bad.split_last() else {
                continue;
            };
            if generated.ends_with(prefix) {
                if let Some(s) = scores.get_mut(last as usize) {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// Forces the first generated token (`forced_bos_token_id`; Takarir's language token).
struct ForcedFirstToken(u32);

impl LogitsProcessor for ForcedFirstToken {
    fn process(&self, seq: &[u32], prompt_len: usize, scores: &mut [f32]) {
        if seq.len() == prompt_len {
            scores.fill(f32::NEG_INFINITY);
            if let Some(s) = scores.get_mut(self.0 as usize) {
                *s = 0.0;
            }
        }
    }
}

/// The processors and sampling warpers a configuration asks for.
pub struct ProcessorList {
    processors: Vec<Box<dyn LogitsProcessor>>,
    temperature: f32,
    top_k: usize,
    top_p: f32,
}

impl ProcessorList {
    /// Builds the list in `transformers`' order.
    pub fn from_config(cfg: &GenerationConfig) -> Self {
        let mut p: Vec<Box<dyn LogitsProcessor>> = Vec::new();
        if cfg.repetition_penalty != 1.0 {
            p.push(Box::new(RepetitionPenalty(cfg.repetition_penalty)));
        }
        if cfg.no_repeat_ngram_size > 0 {
            p.push(Box::new(NoRepeatNgram(cfg.no_repeat_ngram_size)));
        }
        if !cfg.bad_words_ids.is_empty() {
            p.push(Box::new(BadWords(cfg.bad_words_ids.clone())));
        }
        if cfg.min_new_tokens > 0 && !cfg.eos_token_ids.is_empty() {
            p.push(Box::new(MinNewTokens {
                min: cfg.min_new_tokens,
                eos: cfg.eos_token_ids.clone(),
            }));
        }
        if let Some(t) = cfg.forced_first_token {
            p.push(Box::new(ForcedFirstToken(t)));
        }
        ProcessorList {
            processors: p,
            temperature: cfg.temperature,
            top_k: cfg.top_k,
            top_p: cfg.top_p,
        }
    }

    /// Applies every processor to one row.
    pub fn process(&self, seq: &[u32], prompt_len: usize, scores: &mut [f32]) {
        for p in &self.processors {
            p.process(seq, prompt_len, scores);
        }
    }

    /// Sampling warpers: temperature, then top-k, then top-p (filtered tokens get -inf).
    pub fn warp(&self, scores: &mut [f32]) {
        if self.temperature != 1.0 {
            for s in scores.iter_mut() {
                *s /= self.temperature;
            }
        }
        if self.top_k > 0 && self.top_k < scores.len() {
            let mut sorted: Vec<f32> = scores.to_vec();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            let kth = sorted[self.top_k - 1];
            for s in scores.iter_mut() {
                if *s < kth {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
        if self.top_p < 1.0 {
            let mut idx: Vec<usize> = (0..scores.len()).collect();
            idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            let max = scores[idx[0]];
            let exp: Vec<f32> = idx.iter().map(|&i| (scores[i] - max).exp()).collect();
            let total: f32 = exp.iter().sum();
            // Keep tokens until the cumulative probability reaches top_p (at least one).
            let mut cum = 0.0;
            for (rank, &i) in idx.iter().enumerate() {
                if rank > 0 && cum >= self.top_p {
                    scores[i] = f32::NEG_INFINITY;
                }
                cum += exp[rank] / total;
            }
        }
    }
}
