//! Reading reference and candidate caption files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::EvalError;

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, EvalError> {
    serde_json::from_str(text).map_err(|source| EvalError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads reference captions, image name → captions.
///
/// The file is either JSON, `{ "image.jpg": ["ref one", "ref two"], ... }` (recognised by a
/// leading `{`), or a Flickr-style TSV with lines `NAME.jpg#N<TAB>caption` (the `#N` suffix is
/// optional; blank lines are skipped; captions keep their file order).
///
/// With `split`, a text file naming one image per line (blank lines ignored), only those
/// images are returned.
///
/// # Errors
/// [`EvalError::Io`] and [`EvalError::Json`] for unreadable or malformed files,
/// [`EvalError::Tsv`] for a TSV line without a tab, an image name or a caption, and
/// [`EvalError::SplitImageMissing`] when the split names an image with no captions.
pub fn load_references(
    path: &Path,
    split: Option<&Path>,
) -> Result<BTreeMap<String, Vec<String>>, EvalError> {
    let text = read(path)?;
    let mut refs = if text.trim_start().starts_with('{') {
        parse_json::<BTreeMap<String, Vec<String>>>(path, &text)?
    } else {
        parse_tsv(path, &text)?
    };
    if let Some(split) = split {
        let names: BTreeSet<String> = read(split)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(missing) = names.iter().find(|n| !refs.contains_key(*n)) {
            return Err(EvalError::SplitImageMissing {
                image: missing.clone(),
                split: split.to_path_buf(),
            });
        }
        refs.retain(|name, _| names.contains(name));
    }
    Ok(refs)
}

fn parse_tsv(path: &Path, text: &str) -> Result<BTreeMap<String, Vec<String>>, EvalError> {
    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: &str| EvalError::Tsv {
            path: path.to_path_buf(),
            line: k + 1,
            message: message.to_string(),
        };
        let (key, caption) = line
            .split_once('\t')
            .ok_or_else(|| err("expected NAME#N<TAB>caption"))?;
        let name = key.rsplit_once('#').map_or(key, |(name, _)| name).trim();
        if name.is_empty() {
            return Err(err("empty image name"));
        }
        if caption.trim().is_empty() {
            return Err(err("empty caption"));
        }
        refs.entry(name.to_string())
            .or_default()
            .push(caption.trim().to_string());
    }
    Ok(refs)
}

/// Loads candidate captions from JSON, `{ "image.jpg": "a generated caption", ... }`.
///
/// # Errors
/// [`EvalError::Io`] and [`EvalError::Json`] for unreadable or malformed files.
pub fn load_candidates(path: &Path) -> Result<BTreeMap<String, String>, EvalError> {
    parse_json(path, &read(path)?)
}
