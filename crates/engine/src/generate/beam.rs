//! Beam search, step for step the vectorised `_beam_search` of `transformers` 4.57.
//!
//! Per item: `num_beams` running beams, and `num_beams` finished slots initialised to -1e9.
//! Each step takes the top `2 × num_beams` continuations over all beams; those ending in EOS
//! (or reaching the length limit) compete for the finished slots with their length-penalised
//! score, the rest (best `num_beams`) keep running. Arithmetic is f32 with the same -1e9 masks
//! as the reference, so ties and early stopping resolve identically.

use super::{
    log_softmax_in_place, EarlyStopping, GenerationConfig, Hypothesis, ProcessorList, StepModel,
};
use crate::error::Result;

const MASK: f32 = -1.0e9;

/// Indices of the `k` largest values, largest first; equal values keep index order.
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    for (i, &v) in values.iter().enumerate() {
        if best.len() == k
            && v.partial_cmp(&values[best[k - 1]]) != Some(std::cmp::Ordering::Greater)
        {
            continue;
        }
        let pos = best.partition_point(|&j| values[j] >= v);
        best.insert(pos, i);
        best.truncate(k);
    }
    best
}

struct Item {
    running: Vec<Vec<u32>>,
    running_scores: Vec<f32>,
    finished: Vec<Vec<u32>>,
    finished_scores: Vec<f32>,
    is_finished: Vec<bool>,
    heuristic_unsatisfied: bool,
}

pub(super) fn beam_search(
    model: &mut dyn StepModel,
    batch: usize,
    cfg: &GenerationConfig,
    procs: &ProcessorList,
) -> Result<Vec<Vec<Hypothesis>>> {
    let nb = cfg.num_beams;
    let vocab = model.vocab_size();
    let prompt_len = 1;
    let max_length = prompt_len + cfg.max_new_tokens;
    let keep = 2.max(1 + cfg.eos_token_ids.len()) * nb;
    let start = vec![cfg.decoder_start_token_id];
    let mut items: Vec<Item> = (0..batch)
        .map(|_| Item {
            running: vec![start.clone(); nb],
            running_scores: (0..nb).map(|j| if j == 0 { 0.0 } else { MASK }).collect(),
            finished: vec![start.clone(); nb],
            finished_scores: vec![MASK; nb],
            is_finished: vec![false; nb],
            heuristic_unsatisfied: true,
        })
        .collect();
    let mut feed = vec![cfg.decoder_start_token_id; batch * nb];
    let mut cur_len = prompt_len;
    let mut acc = vec![0f32; nb * vocab];
    loop {
        let logits = model.step(&feed)?;
        let mut all_hit = true;
        let mut reorder = Vec::with_capacity(batch * nb);
        for (b, item) in items.iter_mut().enumerate() {
            for j in 0..nb {
                let row = &mut acc[j * vocab..(j + 1) * vocab];
                row.copy_from_slice(&logits[(b * nb + j) * vocab..(b * nb + j + 1) * vocab]);
                log_softmax_in_place(row);
                procs.process(&item.running[j], prompt_len, row);
                let base = item.running_scores[j];
                for x in row.iter_mut() {
                    *x += base;
                }
            }
            // Top-k continuations over all beams of this item.
            let cand = top_k(&acc, keep);
            let cand_scores: Vec<f32> = cand.iter().map(|&i| acc[i]).collect();
            let cand_beam: Vec<usize> = cand.iter().map(|&i| i / vocab).collect();
            let cand_tok: Vec<u32> = cand.iter().map(|&i| (i % vocab) as u32).collect();
            let hits: Vec<bool> = cand_tok
                .iter()
                .map(|t| cfg.eos_token_ids.contains(t) || cur_len + 1 >= max_length)
                .collect();
            all_hit &= hits.iter().all(|&h| h);
            let seq_of = |k: usize, item: &Item| {
                let mut s = item.running[cand_beam[k]].clone();
                s.push(cand_tok[k]);
                s
            };

            // Running beams for the next step: best non-finished continuations.
            let running_lp: Vec<f32> = cand_scores
                .iter()
                .zip(&hits)
                .map(|(&s, &h)| s + if h { MASK } else { 0.0 })
                .collect();
            let next = top_k(&running_lp, nb);
            let new_running: Vec<Vec<u32>> = next.iter().map(|&k| seq_of(k, item)).collect();
            let new_running_scores: Vec<f32> = next.iter().map(|&k| running_lp[k]).collect();
            reorder.extend(next.iter().map(|&k| b * nb + cand_beam[k]));

            // Finished slots: merge the newly finished top-num_beams candidates.
            let denom = ((cur_len + 1 - prompt_len) as f64).powf(cfg.length_penalty) as f32;
            let full =
                item.is_finished.iter().all(|&f| f) && cfg.early_stopping == EarlyStopping::True;
            let mut merged_scores = item.finished_scores.clone();
            let mut just_finished = vec![false; keep];
            for k in 0..cand.len() {
                let mut s = cand_scores[k] / denom;
                if full {
                    s += MASK;
                }
                if !item.heuristic_unsatisfied {
                    s += MASK;
                }
                just_finished[k] = hits[k] && k < nb;
                if !just_finished[k] {
                    s += MASK;
                }
                merged_scores.push(s);
            }
            let chosen = top_k(&merged_scores, nb);
            let mut finished = Vec::with_capacity(nb);
            let mut finished_scores = Vec::with_capacity(nb);
            let mut is_finished = Vec::with_capacity(nb);
            for &m in &chosen {
                if m < nb {
                    finished.push(item.finished[m].clone());
                    is_finished.push(item.is_finished[m]);
                } else {
                    finished.push(seq_of(m - nb, item));
                    is_finished.push(just_finished[m - nb]);
                }
                finished_scores.push(merged_scores[m]);
            }
            item.finished = finished;
            item.finished_scores = finished_scores;
            item.is_finished = is_finished;
            item.running = new_running;
            item.running_scores = new_running_scores;
        }
        cur_len += 1;
        for item in items.iter_mut() {
            let best_len = if cfg.early_stopping == EarlyStopping::Never && cfg.length_penalty > 0.0
            {
                max_length - prompt_len
            } else {
                cur_len - prompt_len
            };
            let best_possible =
                item.running_scores[0] / (best_len as f64).powf(cfg.length_penalty) as f32;
            let min_finished = item
                .finished_scores
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min);
            let improvable = item
                .is_finished
                .iter()
                .any(|&f| best_possible > if f { min_finished } else { MASK });
            item.heuristic_unsatisfied &= improvable;
        }
        let improvement_possible = items.iter().any(|i| i.heuristic_unsatisfied);
        let all_done = items.iter().all(|i| i.is_finished.iter().all(|&f| f));
        let open_beam = !(all_done && cfg.early_stopping == EarlyStopping::True);
        if !(improvement_possible && open_beam && !all_hit) {
            break;
        }
        model.reorder(&reorder)?;
        for (b, item) in items.iter().enumerate() {
            for j in 0..nb {
                feed[b * nb + j] = *item.running[j].last().expect("non-empty");
            }
        }
    }
    Ok(items
        .into_iter()
        .map(|item| {
            item.finished
                .into_iter()
                .zip(item.finished_scores)
                .take(cfg.num_return_sequences)
                .map(|(tokens, score)| Hypothesis { tokens, score })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_is_sorted_and_stable() {
        assert_eq!(
            top_k(&[1.0, 3.0, 3.0, 2.0, f32::NEG_INFINITY], 3),
            vec![1, 2, 3]
        );
        assert_eq!(top_k(&[0.5], 1), vec![0]);
    }
}
