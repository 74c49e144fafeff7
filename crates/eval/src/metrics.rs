//! BLEU, ROUGE-L and CIDEr-D over already tokenised captions, following pycocoevalcap.

use std::collections::{HashMap, HashSet};

/// Largest n-gram order used by BLEU and CIDEr-D.
pub(crate) const N: usize = 4;

/// An n-gram of interned token ids; unused slots are `u32::MAX`.
type Ngram = [u32; N];

/// Captions of one image as interned token ids.
pub(crate) struct Image {
    pub candidate: Vec<u32>,
    pub references: Vec<Vec<u32>>,
}

/// Counts of all 1..=4-grams of a sentence.
fn ngram_counts(words: &[u32]) -> HashMap<Ngram, usize> {
    let mut counts = HashMap::new();
    for k in 1..=N {
        for window in words.windows(k) {
            let mut key = [u32::MAX; N];
            key[..k].copy_from_slice(window);
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}

fn order(ngram: &Ngram) -> usize {
    ngram.iter().filter(|&&t| t != u32::MAX).count()
}

/// Corpus BLEU-1..4 as `pycocoevalcap.bleu.BleuScorer.compute_score(option="closest")`.
pub(crate) fn bleu(images: &[Image]) -> [f64; N] {
    const SMALL: f64 = 1e-9;
    const TINY: f64 = 1e-15;
    let mut testlen = 0usize;
    let mut reflen = 0usize;
    let mut guess = [0usize; N];
    let mut correct = [0usize; N];
    for image in images {
        let mut maxcounts: HashMap<Ngram, usize> = HashMap::new();
        for r in &image.references {
            for (ngram, count) in ngram_counts(r) {
                let slot = maxcounts.entry(ngram).or_insert(0);
                *slot = (*slot).max(count);
            }
        }
        let len = image.candidate.len();
        // "closest": smallest |l - testlen|, ties to the shorter reference
        let closest = image
            .references
            .iter()
            .map(|r| (r.len().abs_diff(len), r.len()))
            .min()
            .map_or(0, |(_, l)| l);
        testlen += len;
        reflen += closest;
        for (k, g) in guess.iter_mut().enumerate() {
            *g += (len + 1).saturating_sub(k + 1);
        }
        for (ngram, count) in ngram_counts(&image.candidate) {
            correct[order(&ngram) - 1] += count.min(maxcounts.get(&ngram).copied().unwrap_or(0));
        }
    }
    let mut bleus = [0.0; N];
    let mut product = 1.0f64;
    for k in 0..N {
        product *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        bleus[k] = product.powf(1.0 / (k as f64 + 1.0));
    }
    let ratio = (testlen as f64 + TINY) / (reflen as f64 + SMALL);
    if ratio < 1.0 {
        for b in &mut bleus {
            *b *= (1.0 - 1.0 / ratio).exp();
        }
    }
    bleus
}

/// Length of the longest common subsequence of two token sequences.
fn lcs(a: &[u32], b: &[u32]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Mean ROUGE-L (beta 1.2) as `pycocoevalcap.rouge.Rouge`.
pub(crate) fn rouge_l(images: &[Image], empty_token: u32) -> f64 {
    const BETA: f64 = 1.2;
    // pycocoevalcap splits with `str.split(" ")`, so an empty caption is one empty token.
    let words = |s: &Vec<u32>| -> Vec<u32> {
        if s.is_empty() {
            vec![empty_token]
        } else {
            s.clone()
        }
    };
    let mut total = 0.0;
    for image in images {
        let cand = words(&image.candidate);
        let mut prec_max = f64::NEG_INFINITY;
        let mut rec_max = f64::NEG_INFINITY;
        for r in &image.references {
            let r = words(r);
            let l = lcs(&r, &cand) as f64;
            prec_max = prec_max.max(l / cand.len() as f64);
            rec_max = rec_max.max(l / r.len() as f64);
        }
        if prec_max != 0.0 && rec_max != 0.0 {
            total +=
                ((1.0 + BETA * BETA) * prec_max * rec_max) / (rec_max + BETA * BETA * prec_max);
        }
    }
    total / images.len() as f64
}

/// Tf-idf vectors of one sentence per n-gram order, with their norms and "length".
struct TfIdf {
    vec: [HashMap<Ngram, f64>; N],
    norm: [f64; N],
    /// What pycocoevalcap calls the length: the number of bigrams.
    length: usize,
}

/// Mean CIDEr-D (n = 4, sigma = 6) as `pycocoevalcap.cider.CiderScorer`.
pub(crate) fn cider_d(images: &[Image]) -> f64 {
    const SIGMA: f64 = 6.0;
    let crefs: Vec<Vec<HashMap<Ngram, usize>>> = images
        .iter()
        .map(|im| im.references.iter().map(|r| ngram_counts(r)).collect())
        .collect();
    let mut document_frequency: HashMap<Ngram, f64> = HashMap::new();
    for refs in &crefs {
        let unique: HashSet<&Ngram> = refs.iter().flat_map(|r| r.keys()).collect();
        for ngram in unique {
            *document_frequency.entry(*ngram).or_insert(0.0) += 1.0;
        }
    }
    let ref_len = (images.len() as f64).ln();

    let counts2vec = |counts: &HashMap<Ngram, usize>| -> TfIdf {
        let mut out = TfIdf {
            vec: Default::default(),
            norm: [0.0; N],
            length: 0,
        };
        for (ngram, &tf) in counts {
            let df = document_frequency
                .get(ngram)
                .copied()
                .unwrap_or(0.0)
                .max(1.0)
                .ln();
            let n = order(ngram) - 1;
            let v = tf as f64 * (ref_len - df);
            out.vec[n].insert(*ngram, v);
            out.norm[n] += v.powi(2);
            if n == 1 {
                out.length += tf;
            }
        }
        for x in &mut out.norm {
            *x = x.sqrt();
        }
        out
    };

    let mut total = 0.0;
    for (image, refs) in images.iter().zip(&crefs) {
        let hyp = counts2vec(&ngram_counts(&image.candidate));
        let mut score = [0.0f64; N];
        for r in refs {
            let rv = counts2vec(r);
            let delta = hyp.length as f64 - rv.length as f64;
            for (n, total_n) in score.iter_mut().enumerate() {
                let mut val = 0.0;
                for (ngram, &h) in &hyp.vec[n] {
                    let r = rv.vec[n].get(ngram).copied().unwrap_or(0.0);
                    val += h.min(r) * r;
                }
                if hyp.norm[n] != 0.0 && rv.norm[n] != 0.0 {
                    val /= hyp.norm[n] * rv.norm[n];
                }
                val *= std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
                *total_n += val;
            }
        }
        let mean = score.iter().sum::<f64>() / N as f64;
        total += mean / refs.len() as f64 * 10.0;
    }
    total / images.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_lengths() {
        assert_eq!(lcs(&[1, 2, 3, 4], &[2, 4]), 2);
        assert_eq!(lcs(&[1, 2, 3], &[4, 5]), 0);
        assert_eq!(lcs(&[], &[1]), 0);
        assert_eq!(lcs(&[1, 3, 2, 3], &[3, 2, 1, 3]), 3);
    }

    #[test]
    fn perfect_candidate_scores_one_on_bleu() {
        let images = vec![Image {
            candidate: vec![1, 2, 3, 4, 5],
            references: vec![vec![1, 2, 3, 4, 5], vec![6, 7]],
        }];
        for b in bleu(&images) {
            assert!((b - 1.0).abs() < 1e-9, "{b}");
        }
        assert!((rouge_l(&images, 0) - 1.0).abs() < 1e-12);
    }
}
