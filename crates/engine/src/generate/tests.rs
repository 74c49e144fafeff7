//! The decoding loop against a fake model whose next-token distribution is a function of the
//! sequence so far, so expected outputs can be worked out by hand.

use super::*;

/// Rows keep their full sequences; logits come from `f(sequence)`.
struct Fake<F: Fn(&[u32]) -> Vec<f32>> {
    rows: Vec<Vec<u32>>,
    f: F,
    vocab: usize,
}

impl<F: Fn(&[u32]) -> Vec<f32>> Fake<F> {
    fn new(rows: usize, vocab: usize, f: F) -> Self {
        Fake {
            rows: vec![vec![]; rows],
            f,
            vocab,
        }
    }
}

impl<F: Fn(&[u32]) -> Vec<f32>> StepModel for Fake<F> {
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for (row, &t) in self.rows.iter_mut().zip(tokens) {
            row.push(t);
            out.extend((self.f)(row));
        }
        Ok(out)
    }
    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        self.rows = rows.iter().map(|&r| self.rows[r].clone()).collect();
        Ok(())
    }
    fn vocab_size(&self) -> usize {
        self.vocab
    }
}

const EOS: u32 = 1;

fn cfg() -> GenerationConfig {
    GenerationConfig {
        decoder_start_token_id: 0,
        eos_token_ids: vec![EOS],
        max_new_tokens: 6,
        ..Default::default()
    }
}

/// Log-probabilities of the normalised distribution `p`.
fn probs(p: &[f32]) -> Vec<f32> {
    let total: f32 = p.iter().sum();
    p.iter().map(|x| (x / total).ln()).collect()
}

/// Step 1: token 2 (0.6) or 3 (0.4). After 2, everything is uncertain (4 or 5 at 0.5 each,
/// then EOS); after 3, token 4 is near certain then EOS. Greedy takes 2; beam search finds 3 4.
fn trap(seq: &[u32]) -> Vec<f32> {
    match seq {
        [0] => probs(&[1e-9, 1e-9, 0.6, 0.4, 1e-9, 1e-9]),
        [0, 2] => probs(&[1e-9, 1e-9, 1e-9, 1e-9, 0.5, 0.5]),
        [0, 3] => probs(&[1e-9, 1e-9, 1e-9, 1e-9, 0.99, 0.01]),
        _ => probs(&[1e-9, 0.99, 0.002, 0.002, 0.002, 0.002]),
    }
}

#[test]
fn greedy_takes_the_locally_best_token_and_stops_at_eos() {
    let mut m = Fake::new(1, 6, trap);
    let out = generate(&mut m, 1, &cfg()).unwrap();
    assert_eq!(out[0][0].tokens, vec![0, 2, 4, 1]);
    let last = [1e-9, 0.99, 0.002, 0.002, 0.002, 0.002];
    let expected = (0.6f32).ln() + (0.5f32).ln() + probs(&last)[1];
    assert!(
        (out[0][0].score - expected).abs() < 1e-4,
        "{} vs {expected}",
        out[0][0].score
    );
}

#[test]
fn beam_search_finds_the_globally_better_sequence() {
    let mut m = Fake::new(2, 6, trap);
    let c = GenerationConfig {
        num_beams: 2,
        num_return_sequences: 2,
        length_penalty: 0.0,
        ..cfg()
    };
    let out = generate(&mut m, 1, &c).unwrap();
    assert_eq!(out[0][0].tokens, vec![0, 3, 4, 1]);
    assert!(out[0][0].score > out[0][1].score);
    let expected = probs(&[1e-9, 1e-9, 0.6, 0.4, 1e-9, 1e-9])[3]
        + probs(&[1e-9, 1e-9, 1e-9, 1e-9, 0.99, 0.01])[4]
        + probs(&[1e-9, 0.99, 0.002, 0.002, 0.002, 0.002])[1];
    assert!(
        (out[0][0].score - expected).abs() < 1e-4,
        "{} vs {expected}",
        out[0][0].score
    );
}

#[test]
fn batched_beam_search_equals_one_at_a_time() {
    let c = GenerationConfig {
        num_beams: 3,
        num_return_sequences: 3,
        ..cfg()
    };
    let single = generate(&mut Fake::new(3, 6, trap), 1, &c).unwrap();
    let batched = generate(&mut Fake::new(9, 6, trap), 3, &c).unwrap();
    for item in &batched {
        assert_eq!(item, &single[0]);
    }
}

#[test]
fn forced_first_token_and_min_new_tokens_shape_the_output() {
    let c = GenerationConfig {
        forced_first_token: Some(5),
        min_new_tokens: 3,
        ..cfg()
    };
    let out = generate(&mut Fake::new(1, 6, trap), 1, &c).unwrap();
    let t = &out[0][0].tokens;
    assert_eq!(t[1], 5);
    assert!(t.len() > 3 && !t[1..4].contains(&EOS), "{t:?}");
}

#[test]
fn no_repeat_ngram_and_repetition_penalty_block_loops() {
    // A model that always prefers token 2, then 3: "2 3 2 3 ..." unless constrained.
    let looping = |seq: &[u32]| {
        if seq.last() == Some(&2) {
            probs(&[0.01, 0.01, 0.01, 0.9, 0.05, 0.02])
        } else {
            probs(&[0.01, 0.01, 0.9, 0.03, 0.03, 0.02])
        }
    };
    let plain = generate(&mut Fake::new(1, 6, looping), 1, &cfg()).unwrap();
    assert_eq!(plain[0][0].tokens, vec![0, 2, 3, 2, 3, 2, 3]);
    let c = GenerationConfig {
        no_repeat_ngram_size: 2,
        ..cfg()
    };
    let out = generate(&mut Fake::new(1, 6, looping), 1, &c).unwrap();
    let t = &out[0][0].tokens;
    let bigrams: Vec<_> = t.windows(2).collect();
    for (i, a) in bigrams.iter().enumerate() {
        assert!(!bigrams[i + 1..].contains(a), "repeated bigram in {t:?}");
    }
    // Greedy processes raw logits: positive ones are divided by the penalty.
    let raw = |seq: &[u32]| {
        if seq.last() == Some(&2) {
            vec![0.0, 0.0, 1.0, 5.0, 4.0, 0.0]
        } else {
            vec![0.0, 0.0, 5.0, 1.0, 4.0, 0.0]
        }
    };
    let c = GenerationConfig {
        repetition_penalty: 10.0,
        ..cfg()
    };
    let out = generate(&mut Fake::new(1, 6, raw), 1, &c).unwrap();
    assert_eq!(out[0][0].tokens[..4], [0, 2, 3, 4]);
}

#[test]
fn sampling_is_reproducible_per_seed_and_respects_top_k() {
    let flat = |_: &[u32]| vec![0.0f32; 6];
    let c = GenerationConfig {
        do_sample: true,
        top_k: 2,
        seed: 7,
        max_new_tokens: 12,
        ..cfg()
    };
    let a = generate(&mut Fake::new(1, 6, flat), 1, &c).unwrap();
    let b = generate(&mut Fake::new(1, 6, flat), 1, &c).unwrap();
    assert_eq!(a, b);
    // With a flat distribution, top-k 2 keeps the two lowest ids (ties keep index order).
    assert!(
        a[0][0].tokens[1..].iter().all(|&t| t <= 1),
        "{:?}",
        a[0][0].tokens
    );
    let other = generate(
        &mut Fake::new(1, 6, flat),
        1,
        &GenerationConfig {
            seed: 8,
            top_k: 0,
            ..c
        },
    )
    .unwrap();
    assert_ne!(a, other);
}

#[test]
fn invalid_combinations_are_refused() {
    for bad in [
        GenerationConfig {
            num_beams: 2,
            num_return_sequences: 3,
            ..cfg()
        },
        GenerationConfig {
            num_return_sequences: 2,
            ..cfg()
        },
        GenerationConfig {
            max_new_tokens: 0,
            ..cfg()
        },
        GenerationConfig {
            do_sample: true,
            num_beams: 2,
            ..cfg()
        },
        GenerationConfig {
            top_p: 0.0,
            ..cfg()
        },
    ] {
        assert!(matches!(
            generate(&mut Fake::new(4, 6, trap), 1, &bad),
            Err(EngineError::InvalidOption(_))
        ));
    }
}

#[test]
fn bad_words_ban_single_tokens_and_sequences() {
    // Beam search would find 3 4 (see `trap`); banning token 3 leaves 2 then 4 or 5.
    let c = GenerationConfig {
        num_beams: 2,
        bad_words_ids: vec![vec![3]],
        ..cfg()
    };
    let out = generate(&mut Fake::new(2, 6, trap), 1, &c).unwrap();
    assert!(!out[0][0].tokens.contains(&3), "{:?}", out[0][0].tokens);
    // A two-token ban forbids its last token only after the first: 2 then 4 is banned, 2 5 is not.
    let c = GenerationConfig {
        bad_words_ids: vec![vec![2, 4]],
        ..cfg()
    };
    let out = generate(&mut Fake::new(1, 6, trap), 1, &c).unwrap();
    assert_eq!(&out[0][0].tokens[..3], &[0, 2, 5]);
}
