//! Caption quality metrics for Takarir with the coco-caption (pycocoevalcap) definitions.
//!
//! # Design
//!
//! Numbers from this crate are meant to be directly comparable with the ones published for
//! image captioning, which almost all come from coco-caption. So every step follows
//! pycocoevalcap rather than a textbook definition:
//!
//! * **Tokenisation** ([`tokenize`]): a Rust port of what coco-caption does with Stanford's
//!   Java `PTBTokenizer` (lower-casing, PTB splitting of punctuation and clitics, then the
//!   removal of its fixed punctuation list). No JVM is needed; the port agrees with the Java
//!   tokenizer on caption-like English and Indonesian text (see the tests and fixtures).
//! * **BLEU-1..4**: corpus-level, "closest" reference length, pycocoevalcap's brevity penalty
//!   and its `1e-9` / `1e-15` smoothing of the precision ratios.
//! * **ROUGE-L**: LCS-based F-measure with beta 1.2, using the best precision and the best
//!   recall over the references, averaged over images.
//! * **CIDEr-D**: 1..4-grams, tf-idf with document frequencies from the references of the
//!   evaluated images only, gaussian length penalty (sigma 6, on pycocoevalcap's "length",
//!   which is the bigram count), clipping of candidate weights by reference weights, x10,
//!   averaged over images.
//!
//! Tokens are interned to integers once, so n-gram tables hash small fixed-size arrays.
//! Everything is deterministic and single-threaded; a 1,000-image test split scores in well
//! under a second.
//!
//! ```
//! use std::collections::BTreeMap;
//! let candidates = BTreeMap::from([("a.jpg".to_string(), "A dog runs on the grass.".to_string())]);
//! let references = BTreeMap::from([(
//!     "a.jpg".to_string(),
//!     vec!["A dog runs on the grass .".to_string(), "A brown dog is running .".to_string()],
//! )]);
//! let scores = takarir_eval::evaluate(&candidates, &references).unwrap();
//! assert!((scores.bleu[3] - 1.0).abs() < 1e-6);
//! assert_eq!(scores.images, 1);
//! ```
#![deny(missing_docs)]

mod load;
mod metrics;
mod tokenize;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

pub use load::{load_candidates, load_references};
pub use tokenize::{tokenize, PUNCTUATIONS};

/// Corpus scores for a set of candidate captions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// BLEU-1, BLEU-2, BLEU-3 and BLEU-4 (corpus-level), in `[0, 1]`.
    pub bleu: [f64; 4],
    /// ROUGE-L (beta 1.2) averaged over images, in `[0, 1]`.
    pub rouge_l: f64,
    /// CIDEr-D (x10 scale, as reported in papers) averaged over images.
    pub cider_d: f64,
    /// Number of images scored.
    pub images: usize,
}

/// Errors of evaluation and of reading caption files.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON file is malformed or has the wrong shape.
    #[error("invalid JSON in {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A line of a Flickr-style TSV caption file is malformed.
    #[error("{path}:{line}: {message}")]
    Tsv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// A split file names an image that has no reference captions.
    #[error("image {image} listed in split {split} has no reference captions")]
    SplitImageMissing {
        /// The image name.
        image: String,
        /// The split file.
        split: PathBuf,
    },
    /// A candidate has no (or an empty list of) reference captions.
    #[error("no reference captions for image {0}")]
    MissingReferences(String),
    /// There is nothing to evaluate.
    #[error("no candidate captions to evaluate")]
    NoCandidates,
}

/// Scores `candidates` (image name → generated caption) against `references` (image name →
/// human captions) with coco-caption's BLEU-1..4, ROUGE-L and CIDEr-D.
///
/// Captions are raw text; both sides go through [`tokenize`]. Only the images that have a
/// candidate are scored, and CIDEr-D's document frequencies come from their references only,
/// as in pycocoevalcap. Extra reference images are ignored.
///
/// # Errors
/// [`EvalError::NoCandidates`] when `candidates` is empty, and
/// [`EvalError::MissingReferences`] when a candidate's image has no reference captions.
pub fn evaluate(
    candidates: &BTreeMap<String, String>,
    references: &BTreeMap<String, Vec<String>>,
) -> Result<Scores, EvalError> {
    if candidates.is_empty() {
        return Err(EvalError::NoCandidates);
    }
    let mut vocab: HashMap<String, u32> = HashMap::new();
    let mut intern = |text: &str| -> Vec<u32> {
        tokenize(text)
            .into_iter()
            .map(|t| {
                let next = vocab.len() as u32;
                *vocab.entry(t).or_insert(next)
            })
            .collect()
    };
    let mut images = Vec::with_capacity(candidates.len());
    for (name, candidate) in candidates {
        let refs = references
            .get(name)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| EvalError::MissingReferences(name.clone()))?;
        images.push(metrics::Image {
            candidate: intern(candidate),
            references: refs.iter().map(|r| intern(r)).collect(),
        });
    }
    // An id no real token gets, standing for pycocoevalcap's "" token of an empty caption.
    let empty_token = u32::MAX;
    Ok(Scores {
        bleu: metrics::bleu(&images),
        rouge_l: metrics::rouge_l(&images, empty_token),
        cider_d: metrics::cider_d(&images),
        images: images.len(),
    })
}
