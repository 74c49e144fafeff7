//! Reference/candidate loading (JSON, Flickr-style TSV, split files) and error cases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use takarir_eval::{evaluate, load_candidates, load_references, EvalError};

/// A scratch directory unique to one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("takarir-eval-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const TSV: &str = "a.jpg#0\tA dog runs .\na.jpg#1\tA brown dog is running.\r\n\nb.jpg#0\tTwo cats sleep .\nb.jpg#1\tCats on a sofa\nc.jpg#0\tA red car\n";

#[test]
fn loads_flickr_tsv_grouped_by_image_in_file_order() {
    let dir = Scratch::new("tsv");
    let refs = load_references(&dir.file("caps.tsv", TSV), None).unwrap();
    assert_eq!(refs.len(), 3);
    assert_eq!(refs["a.jpg"], ["A dog runs .", "A brown dog is running."]);
    assert_eq!(refs["b.jpg"], ["Two cats sleep .", "Cats on a sofa"]);
    assert_eq!(refs["c.jpg"], ["A red car"]);
}

#[test]
fn loads_json_references() {
    let dir = Scratch::new("json");
    let p = dir.file(
        "refs.json",
        r#" { "a.jpg": ["one", "two"], "b.jpg": ["three"] }"#,
    );
    let refs = load_references(&p, None).unwrap();
    assert_eq!(refs["a.jpg"], ["one", "two"]);
    assert_eq!(refs["b.jpg"], ["three"]);
}

#[test]
fn split_restricts_images() {
    let dir = Scratch::new("split");
    let split = dir.file("test.txt", "a.jpg\n\n  c.jpg  \n");
    let refs = load_references(&dir.file("caps.tsv", TSV), Some(&split)).unwrap();
    assert_eq!(refs.keys().collect::<Vec<_>>(), ["a.jpg", "c.jpg"]);
}

#[test]
fn split_naming_unknown_image_is_an_error() {
    let dir = Scratch::new("split-missing");
    let split = dir.file("test.txt", "a.jpg\nzzz.jpg\n");
    let err = load_references(&dir.file("caps.tsv", TSV), Some(&split)).unwrap_err();
    assert!(
        matches!(err, EvalError::SplitImageMissing { ref image, .. } if image == "zzz.jpg"),
        "{err}"
    );
}

#[test]
fn malformed_tsv_line_reports_line_number() {
    let dir = Scratch::new("bad-tsv");
    let p = dir.file("caps.tsv", "a.jpg#0\tA dog\nno tab here\n");
    let err = load_references(&p, None).unwrap_err();
    assert!(matches!(err, EvalError::Tsv { line: 2, .. }), "{err}");
    let p = dir.file("caps2.tsv", "a.jpg#0\t   \n");
    assert!(matches!(
        load_references(&p, None).unwrap_err(),
        EvalError::Tsv { line: 1, .. }
    ));
}

#[test]
fn malformed_json_and_missing_files_are_errors() {
    let dir = Scratch::new("bad-json");
    let p = dir.file("refs.json", r#"{ "a.jpg": "not a list" }"#);
    assert!(matches!(
        load_references(&p, None).unwrap_err(),
        EvalError::Json { .. }
    ));
    let p = dir.file("cands.json", "[1, 2]");
    assert!(matches!(
        load_candidates(&p).unwrap_err(),
        EvalError::Json { .. }
    ));
    let missing = Path::new("/nonexistent/takarir/refs.json");
    assert!(matches!(
        load_references(missing, None).unwrap_err(),
        EvalError::Io { .. }
    ));
    assert!(matches!(
        load_candidates(missing).unwrap_err(),
        EvalError::Io { .. }
    ));
}

#[test]
fn candidate_without_references_is_an_error() {
    let refs = BTreeMap::from([("a.jpg".to_string(), vec!["a dog".to_string()])]);
    let cands = BTreeMap::from([
        ("a.jpg".to_string(), "a dog".to_string()),
        ("b.jpg".to_string(), "a cat".to_string()),
    ]);
    let err = evaluate(&cands, &refs).unwrap_err();
    assert!(
        matches!(err, EvalError::MissingReferences(ref i) if i == "b.jpg"),
        "{err}"
    );

    let empty_refs = BTreeMap::from([("a.jpg".to_string(), Vec::new())]);
    let one = BTreeMap::from([("a.jpg".to_string(), "a dog".to_string())]);
    assert!(matches!(
        evaluate(&one, &empty_refs).unwrap_err(),
        EvalError::MissingReferences(_)
    ));
}

#[test]
fn no_candidates_is_an_error() {
    let refs = BTreeMap::from([("a.jpg".to_string(), vec!["a dog".to_string()])]);
    assert!(matches!(
        evaluate(&BTreeMap::new(), &refs).unwrap_err(),
        EvalError::NoCandidates
    ));
}

#[test]
fn extra_reference_images_are_ignored() {
    let refs = BTreeMap::from([
        ("a.jpg".to_string(), vec!["a dog runs on grass".to_string()]),
        ("b.jpg".to_string(), vec!["a cat sleeps".to_string()]),
    ]);
    let cands = BTreeMap::from([("a.jpg".to_string(), "a dog runs on grass".to_string())]);
    let s = evaluate(&cands, &refs).unwrap();
    assert_eq!(s.images, 1);
    // One image: log(1) = 0 idf weights, so CIDEr-D is 0 exactly as in pycocoevalcap.
    assert_eq!(s.cider_d, 0.0);
}

#[test]
fn empty_candidate_scores_zero() {
    let refs = BTreeMap::from([
        ("a.jpg".to_string(), vec!["a dog runs".to_string()]),
        ("b.jpg".to_string(), vec!["a cat sleeps".to_string()]),
    ]);
    let cands = BTreeMap::from([
        ("a.jpg".to_string(), "...".to_string()),
        ("b.jpg".to_string(), "".to_string()),
    ]);
    let s = evaluate(&cands, &refs).unwrap();
    assert_eq!(s.rouge_l, 0.0);
    assert_eq!(s.cider_d, 0.0);
    assert!(s.bleu.iter().all(|b| *b < 1e-6));
}
