//! The shipped default model (`models/default`): it loads, captions the repo's sample photos in
//! Indonesian and English, and gives exactly the tokens that PyTorch and ONNX Runtime (Python)
//! gave for them (`fixtures/default-model/expected.json`, recorded by
//! `scripts/dev/record_default_parity.py` from the training checkpoint).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use takarir_engine::{CaptionOptions, Captioner, CaptionerOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load() -> Captioner {
    let mut o = CaptionerOptions::new(root().join("models/default").to_string_lossy().into_owned());
    o.threads = 2;
    Captioner::load(&o).expect("models/default loads")
}

fn caption(c: &Captioner, bytes: &[u8], lang: &str) -> takarir_engine::Caption {
    let opts = CaptionOptions {
        lang: Some(lang.into()),
        ..Default::default()
    };
    let (mut r, _) = c.caption_images(&[bytes], &opts);
    r.remove(0).expect("captioned").captions.remove(0)
}

#[test]
fn default_model_gives_the_reference_tokens_on_the_samples() {
    let c = load();
    assert_eq!(c.info().languages, vec!["en".to_string(), "id".to_string()]);
    let expected: BTreeMap<String, BTreeMap<String, Vec<u32>>> = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/default-model/expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(expected.len(), 4);
    for (name, langs) in &expected {
        let png = std::fs::read(root().join(format!("fixtures/default-model/{name}.png"))).unwrap();
        for (lang, tokens) in langs {
            let got = caption(&c, &png, lang);
            assert_eq!(&got.tokens, tokens, "{name} {lang}: {}", got.text);
        }
    }
}

#[test]
fn default_model_captions_every_sample_in_both_languages_cleanly() {
    let c = load();
    assert_eq!(c.default_language(), "id");
    for name in [
        "astronaut",
        "chelsea",
        "coffee",
        "rocket",
        "chelsea-exif-rotated",
    ] {
        let bytes = std::fs::read(root().join(format!("samples/{name}.jpg"))).unwrap();
        let id = caption(&c, &bytes, "id");
        let en = caption(&c, &bytes, "en");
        for cap in [&id, &en] {
            let words: Vec<&str> = cap.text.split_whitespace().collect();
            assert!(
                words.len() >= 3,
                "{name}: caption too short: {:?}",
                cap.text
            );
            let mut seen = HashSet::new();
            assert!(
                words.windows(3).all(|w| seen.insert(w.to_vec())),
                "{name}: repeated trigram in {:?}",
                cap.text
            );
        }
        assert_ne!(
            id.text, en.text,
            "{name}: the two languages gave the same caption"
        );
        assert_eq!(
            (id.lang.as_deref(), en.lang.as_deref()),
            (Some("id"), Some("en"))
        );
        // The language token is the first generated token, and it differs between languages.
        assert_ne!(id.tokens[1], en.tokens[1]);
    }
}
