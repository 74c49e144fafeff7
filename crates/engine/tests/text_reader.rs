//! The text reader on photos with rendered Indonesian and English phrases
//! (`fixtures/text-parity/*.webp`, made by `scripts/dev/record_text_parity.py`, which also
//! records where each phrase was drawn): it reads the phrases' words at the shipped threshold,
//! reads nothing on a photo without writing, decodes once beside the captioner, and refuses bad
//! input with the engine's typed errors, one bad file never sinking the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use takarir_engine::image::decode;
use takarir_engine::text::{compose_caption, Layout, TextReader, TextReaderOptions};
use takarir_engine::{EngineError, ImageLimits};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reader() -> &'static TextReader {
    static READER: OnceLock<TextReader> = OnceLock::new();
    READER.get_or_init(|| {
        let mut o = TextReaderOptions::new(root().join("models/text"));
        o.threads = 2;
        TextReader::load(&o).expect("models/text loads")
    })
}

#[derive(Deserialize)]
struct Phrase {
    text: String,
    lang: String,
}

#[derive(Deserialize)]
struct Scene {
    phrases: Vec<Phrase>,
}

#[derive(Deserialize)]
struct Fixture {
    images: BTreeMap<String, Scene>,
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace())
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn reads_the_rendered_phrases_in_both_languages() {
    let dir = root().join("fixtures/text-parity");
    let fixture: Fixture =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut per_lang: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (name, scene) in &fixture.images {
        let r = reader()
            .read(&std::fs::read(dir.join(name)).unwrap())
            .unwrap();
        let mut have = words(&r.text);
        for p in &scene.phrases {
            let e = per_lang.entry(p.lang.clone()).or_default();
            for w in words(&p.text) {
                e.1 += 1;
                if let Some(i) = have.iter().position(|h| *h == w) {
                    have.remove(i);
                    e.0 += 1;
                } else {
                    eprintln!("{name}: `{w}` of `{}` not read in {:?}", p.text, r.text);
                }
            }
        }
        // Every line has a box inside the image and a confidence over the threshold.
        for l in &r.lines {
            assert!(l.confidence >= reader().min_confidence(), "{name}: {l:?}");
            for [x, y] in l.polygon {
                assert!(x >= 0.0 && y >= 0.0 && x <= r.width as f32 && y <= r.height as f32);
            }
        }
    }
    assert_eq!(per_lang.len(), 2, "{per_lang:?}");
    for (lang, (hit, total)) in &per_lang {
        let recall = *hit as f64 / *total as f64;
        eprintln!("{lang}: {hit}/{total} words");
        assert!(total >= &15 && recall >= 0.85, "{lang}: {hit}/{total}");
    }
}

#[test]
fn a_photo_without_writing_reads_nothing_and_captions_are_unchanged() {
    let bytes = std::fs::read(root().join("samples/chelsea.jpg")).unwrap();
    let r = reader().read(&bytes).unwrap();
    assert!(r.lines.is_empty(), "{:?}", r.lines);
    assert_eq!(r.text, "");
    assert_eq!(r.layout, Layout::Photo);
    let caption = "seekor kucing berbaring di lantai";
    assert_eq!(compose_caption(caption, "id", &r.lines, r.layout), caption);
}

#[test]
fn decoded_once_beside_the_captioner_gives_the_same_lines() {
    let bytes = std::fs::read(root().join("fixtures/text-parity/12.webp")).unwrap();
    let from_bytes = reader().read(&bytes).unwrap();
    let img = decode(&bytes, &ImageLimits::default()).unwrap();
    let from_rgb = reader().read_rgb(&img.rgb).unwrap();
    assert_eq!(from_bytes.lines, from_rgb.lines);
    assert!(
        from_bytes.text.contains("JALAN DITUTUP"),
        "{}",
        from_bytes.text
    );
    // The composer quotes the sign in the caption's language.
    let en = compose_caption(
        "a sign in front of a cat",
        "en",
        &from_rgb.lines,
        from_rgb.layout,
    );
    assert!(
        en.contains("that reads “") && en.contains("JALAN DITUTUP"),
        "{en}"
    );
    let id = compose_caption(
        "papan di depan kucing",
        "id",
        &from_rgb.lines,
        from_rgb.layout,
    );
    assert!(
        id.contains("bertuliskan “") && id.contains("JALAN DITUTUP"),
        "{id}"
    );
}

#[test]
fn bad_input_gets_typed_errors_and_spares_the_others() {
    let good = std::fs::read(root().join("fixtures/text-parity/10.webp")).unwrap();
    let jpeg = std::fs::read(root().join("samples/coffee.jpg")).unwrap();
    let truncated = &jpeg[..jpeg.len() / 2];
    let results = reader().read_images(&[b"", b"not an image", truncated, &good]);
    assert!(matches!(results[0], Err(EngineError::Empty)));
    assert!(matches!(results[1], Err(EngineError::UnsupportedFormat)));
    assert!(matches!(results[2], Err(EngineError::CorruptImage(_))));
    let r = results[3].as_ref().expect("the good file is read");
    assert!(r.text.contains("ROAD CLOSED"), "{}", r.text);

    let mut small = TextReaderOptions::new(root().join("models/text"));
    small.threads = 1;
    small.limits.max_pixels = 100_000;
    let strict = TextReader::load(&small).unwrap();
    assert!(matches!(
        strict.read(&good),
        Err(EngineError::TooManyPixels { .. })
    ));
    let img = decode(&good, &ImageLimits::default()).unwrap();
    assert!(matches!(
        strict.read_rgb(&img.rgb),
        Err(EngineError::TooManyPixels { .. })
    ));
}

#[test]
fn a_missing_model_directory_is_a_model_error() {
    let o = TextReaderOptions::new(root().join("models/no-such-text-model"));
    match TextReader::load(&o) {
        Err(EngineError::Model { reason, .. }) => assert!(reason.contains("missing"), "{reason}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("loaded a missing model"),
    }
}
