//! The text reader against the Python `rapidocr` 3.10.0 package on photos with rendered
//! Indonesian and English phrases (`fixtures/text-parity`, recorded by
//! `scripts/dev/record_text_parity.py`), with the package's default settings and with the
//! shipped ones (the same settings given to both): the same lines in the same order, the same
//! text on at least 95% of them, boxes within 3 pixels, confidences within 0.03.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use takarir_engine::text::{
    is_latin_line, TextReader, TextReaderOptions, DEFAULT_DETECTOR_SIZE, DEFAULT_MIN_CONFIDENCE,
    REFERENCE_MIN_CONFIDENCE,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Deserialize)]
struct Line {
    text: String,
    confidence: f32,
    polygon: [[f32; 2]; 4],
}

#[derive(Deserialize)]
struct Image {
    lines: Vec<Line>,
    lines_shipped: Vec<Line>,
}

#[derive(Deserialize)]
struct Fixture {
    images: BTreeMap<String, Image>,
}

fn corner_distance(a: &[[f32; 2]; 4], b: &[[f32; 2]; 4]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
        .fold(0.0, f32::max)
}

fn check(opts: TextReaderOptions, shipped: bool) {
    let dir = root().join("fixtures/text-parity");
    let fixture: Fixture =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert!(fixture.images.len() >= 12);
    let reader = TextReader::load(&opts).expect("models/text loads");
    let (mut lines, mut same_text, mut worst_box, mut worst_conf) = (0usize, 0usize, 0f32, 0f32);
    for (name, image) in &fixture.images {
        // The shipped settings also leave out non-Latin and one-character lines, which the
        // Python package has no option for: the same rule is applied to its lines.
        let want: Vec<&Line> = if shipped {
            image
                .lines_shipped
                .iter()
                .filter(|l| is_latin_line(&l.text))
                .collect()
        } else {
            image.lines.iter().collect()
        };
        let got = reader
            .read(&std::fs::read(dir.join(name)).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            got.lines.len(),
            want.len(),
            "{name}: {:?} vs {:?}",
            got.lines.iter().map(|l| &l.text).collect::<Vec<_>>(),
            want.iter().map(|l| &l.text).collect::<Vec<_>>()
        );
        // Same lines in the same reading order.
        for (g, w) in got.lines.iter().zip(want.iter().copied()) {
            let d = corner_distance(&g.polygon, &w.polygon);
            assert!(
                d <= 3.0,
                "{name} `{}`: box {:?} vs {:?}",
                w.text,
                g.polygon,
                w.polygon
            );
            worst_box = worst_box.max(d);
            lines += 1;
            if g.text == w.text.trim() {
                same_text += 1;
                worst_conf = worst_conf.max((g.confidence - w.confidence).abs());
            } else {
                eprintln!("{name}: `{}` vs `{}`", g.text, w.text);
            }
        }
    }
    eprintln!(
        "shipped settings {shipped}: {lines} lines, same text on {same_text}, worst corner \
         {worst_box} px, worst confidence {worst_conf}"
    );
    assert!(lines >= 20, "{lines}");
    assert!(
        same_text as f64 >= 0.95 * lines as f64,
        "{same_text}/{lines}"
    );
    assert!(worst_conf <= 0.03, "{worst_conf}");
}

#[test]
fn reads_what_the_python_package_reads() {
    let mut opts = TextReaderOptions::reference(root().join("models/text"));
    opts.threads = 2;
    assert_eq!(opts.min_confidence, REFERENCE_MIN_CONFIDENCE);
    check(opts, false);
}

#[test]
fn reads_what_the_python_package_reads_with_the_shipped_settings() {
    let mut opts = TextReaderOptions::new(root().join("models/text"));
    opts.threads = 2;
    assert_eq!(opts.min_confidence, DEFAULT_MIN_CONFIDENCE);
    assert_eq!(opts.detector_size, DEFAULT_DETECTOR_SIZE);
    check(opts, true);
}
