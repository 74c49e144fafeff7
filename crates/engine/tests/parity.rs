//! Token-exact parity with `transformers` `generate()`.
//!
//! `fixtures/parity/expected.json` was recorded by `scripts/dev/make_parity_fixture.py` from a tiny
//! random ViT + GPT-2 `VisionEncoderDecoderModel` and its Optimum ONNX export. Every case must
//! give the same token ids from the Rust engine, and scores within 1e-4, on both the merged and
//! the split decoder layouts. Pre-processing is checked separately against the recorded pixels.

use std::path::{Path, PathBuf};

use serde_json::Value;
use takarir_engine::generate::{EarlyStopping, GenerationConfig};
use takarir_engine::{CaptionOptions, Captioner, CaptionerOptions, Prepared, Timings};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn expected() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/parity/expected.json")).unwrap(),
    )
    .unwrap()
}

fn load(dir: &str, quantized: bool) -> Captioner {
    let mut o = CaptionerOptions::new(root().join(dir).to_string_lossy().into_owned());
    o.threads = 1;
    o.prefer_quantized = quantized;
    Captioner::load(&o).unwrap()
}

fn recorded_pixels(exp: &Value, image: &str) -> Prepared {
    let px: Vec<f32> = exp["images"][image]["pixel_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let side = ((px.len() / 3) as f64).sqrt() as usize;
    Prepared {
        pixels: px,
        height: side,
        width: side,
        image_width: side as u32,
        image_height: side as u32,
        format: "png",
        metadata: Default::default(),
        vision_input: None,
    }
}

fn config_for(c: &Captioner, kwargs: &Value) -> GenerationConfig {
    let mut g = c.default_generation().clone();
    let u = |k: &str| kwargs.get(k).and_then(Value::as_u64).map(|x| x as usize);
    g.max_new_tokens = u("max_new_tokens").unwrap();
    g.num_beams = u("num_beams").unwrap_or(1);
    g.min_new_tokens = u("min_new_tokens").unwrap_or(0);
    g.num_return_sequences = u("num_return_sequences").unwrap_or(1);
    g.no_repeat_ngram_size = u("no_repeat_ngram_size").unwrap_or(0);
    g.repetition_penalty = kwargs
        .get("repetition_penalty")
        .and_then(Value::as_f64)
        .unwrap_or(1.0) as f32;
    g.length_penalty = kwargs
        .get("length_penalty")
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    g.early_stopping = match kwargs.get("early_stopping") {
        Some(Value::Bool(true)) => EarlyStopping::True,
        Some(Value::String(s)) if s == "never" => EarlyStopping::Never,
        _ => EarlyStopping::False,
    };
    g
}

fn check_model(dir: &str) {
    let exp = expected();
    let c = load(dir, false);
    let mut checked = 0;
    for case in exp["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let g = config_for(&c, &case["kwargs"]);
        let results = case["results"].as_array().unwrap();
        let prepared: Vec<Prepared> = results
            .iter()
            .map(|r| recorded_pixels(&exp, r["image"].as_str().unwrap()))
            .collect();
        let outputs = if case["batched"].as_bool().unwrap() {
            let refs: Vec<&Prepared> = prepared.iter().collect();
            c.caption_with_config(&refs, &g, None, &mut Timings::default())
                .unwrap()
        } else {
            prepared
                .iter()
                .map(|p| {
                    c.caption_with_config(&[p], &g, None, &mut Timings::default())
                        .unwrap()
                        .remove(0)
                })
                .collect()
        };
        for (r, got) in results.iter().zip(&outputs) {
            let image = r["image"].as_str().unwrap();
            let want: Vec<Vec<u32>> = serde_json::from_value(r["sequences"].clone()).unwrap();
            let got_tokens: Vec<Vec<u32>> = got.iter().map(|c| c.tokens.clone()).collect();
            assert_eq!(
                got_tokens, want,
                "{dir} case {name} image {image}: token ids differ"
            );
            let scores: Vec<f64> = match r["sequences_scores"].as_array() {
                Some(s) => s.iter().map(|v| v.as_f64().unwrap()).collect(),
                None => r["transition_scores_sum"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect(),
            };
            for (cap, want) in got.iter().zip(&scores) {
                assert!(
                    (cap.score as f64 - want).abs() < 1e-4,
                    "{dir} case {name} image {image}: score {} vs {want}",
                    cap.score
                );
            }
            let texts: Vec<String> = serde_json::from_value(r["texts"].clone()).unwrap();
            let got_texts: Vec<String> = got.iter().map(|c| c.text.clone()).collect();
            assert_eq!(
                got_texts,
                texts
                    .iter()
                    .map(|t| t.trim().to_string())
                    .collect::<Vec<_>>(),
                "{name} {image}: decoded text"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} results checked");
}

#[test]
fn merged_decoder_matches_transformers_generate_token_for_token() {
    check_model("fixtures/parity/vit-gpt2-tiny");
}

#[test]
fn split_decoder_pair_matches_transformers_generate_token_for_token() {
    check_model("fixtures/parity/vit-gpt2-tiny-split");
}

#[test]
fn preprocessing_matches_the_reference_processor() {
    let exp = expected();
    let c = load("fixtures/parity/vit-gpt2-tiny", false);
    for (name, img) in exp["images"].as_object().unwrap() {
        let bytes = std::fs::read(root().join(img["path"].as_str().unwrap())).unwrap();
        let got = c.prepare(&bytes).unwrap();
        let want = recorded_pixels(&exp, name);
        assert_eq!((got.height, got.width), (want.height, want.width));
        let max = got
            .pixels
            .iter()
            .zip(&want.pixels)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // One 8-bit level is 2/255 ≈ 0.0078 after normalisation; JPEG decoders may differ by that.
        assert!(max <= 0.0079 * 2.0, "{name}: pixels differ by up to {max}");
    }
}

#[test]
fn exif_rotated_photo_is_seen_upright() {
    let c = load("fixtures/parity/vit-gpt2-tiny", false);
    let upright = c
        .prepare(&std::fs::read(root().join("samples/chelsea.jpg")).unwrap())
        .unwrap();
    let rotated = c
        .prepare(&std::fs::read(root().join("samples/chelsea-exif-rotated.jpg")).unwrap())
        .unwrap();
    assert_eq!(
        (rotated.image_width, rotated.image_height),
        (upright.image_width, upright.image_height)
    );
    assert_eq!(rotated.metadata.orientation, Some(6));
    let max = upright
        .pixels
        .iter()
        .zip(&rotated.pixels)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max < 0.05, "rotated photo differs from upright by {max}");
}

#[test]
fn quantized_graphs_load_and_caption() {
    let c = load("fixtures/parity/vit-gpt2-tiny-quantized", true);
    assert!(c.info().quantized);
    let bytes = std::fs::read(root().join("samples/astronaut.jpg")).unwrap();
    let (results, _) = c.caption_images(
        &[&bytes],
        &CaptionOptions {
            num_beams: Some(3),
            ..Default::default()
        },
    );
    let caps = &results[0].as_ref().unwrap().captions;
    assert_eq!(caps.len(), 1);
    assert!(caps[0].tokens.len() >= 2 && caps[0].tokens[0] == 400);
}

#[test]
fn unsupported_language_is_a_clear_error() {
    let c = load("fixtures/parity/vit-gpt2-tiny", false);
    let err = c
        .generation_config(&CaptionOptions {
            lang: Some("id".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(&err, takarir_engine::EngineError::UnsupportedLanguage { lang, supported } if lang == "id" && supported == &["en"]),
        "{err}"
    );
    assert!(err.to_string().contains("not supported"), "{err}");
    // Through the batch API, every image gets the same typed error.
    let bytes = std::fs::read(root().join("samples/astronaut.jpg")).unwrap();
    let (results, _) = c.caption_images(
        &[&bytes, &bytes],
        &CaptionOptions {
            lang: Some("id".into()),
            ..Default::default()
        },
    );
    assert!(results.iter().all(|r| matches!(
        r,
        Err(takarir_engine::EngineError::UnsupportedLanguage { .. })
    )));
}
