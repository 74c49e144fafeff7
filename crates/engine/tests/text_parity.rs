//! The text reader against the Python `rapidocr` 3.10.0 package on photos with rendered
//! Indonesian and English phrases (`fixtures/text-parity`, recorded by
//! `scripts/dev/record_text_parity.py` at the package's default threshold): the same lines,
//! the same text on at least 95% of them, boxes within 3 pixels, confidences within 0.02.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use takarir_engine::text::{TextReader, TextReaderOptions, REFERENCE_MIN_CONFIDENCE};

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

#[test]
fn reads_what_the_python_package_reads() {
    let dir = root().join("fixtures/text-parity");
    let fixture: Fixture =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert!(fixture.images.len() >= 12);
    let mut opts = TextReaderOptions::new(root().join("models/text"));
    opts.threads = 2;
    opts.min_confidence = REFERENCE_MIN_CONFIDENCE;
    let reader = TextReader::load(&opts).expect("models/text loads");
    let (mut lines, mut same_text, mut worst_box, mut worst_conf) = (0usize, 0usize, 0f32, 0f32);
    for (name, want) in &fixture.images {
        let got = reader
            .read(&std::fs::read(dir.join(name)).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            got.lines.len(),
            want.lines.len(),
            "{name}: {:?} vs {:?}",
            got.lines.iter().map(|l| &l.text).collect::<Vec<_>>(),
            want.lines.iter().map(|l| &l.text).collect::<Vec<_>>()
        );
        // Same lines in the same reading order.
        for (g, w) in got.lines.iter().zip(&want.lines) {
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
        "{lines} lines, same text on {same_text}, worst corner {worst_box} px, worst confidence {worst_conf}"
    );
    assert!(lines >= 20, "{lines}");
    assert!(
        same_text as f64 >= 0.95 * lines as f64,
        "{same_text}/{lines}"
    );
    assert!(worst_conf <= 0.02, "{worst_conf}");
}
