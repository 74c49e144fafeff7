//! `takarir eval`: caption a reference set and score it with the coco-caption metrics.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget};

use super::generation::GenerationArgs;
use super::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Folder holding the images named in the references
    #[arg(long)]
    images: PathBuf,
    /// References: JSON {"image.jpg": ["ref", ...]} or Flickr-style TSV (NAME.jpg#N<TAB>caption)
    #[arg(long)]
    references: PathBuf,
    /// Only the images listed in this file (one name per line)
    #[arg(long)]
    split: Option<PathBuf>,
    #[command(flatten)]
    gen: GenerationArgs,
    /// Write the generated captions as JSON {"image.jpg": "caption"} here
    #[arg(long)]
    output: Option<PathBuf>,
    /// Evaluate only the first N images (in name order)
    #[arg(long)]
    limit: Option<usize>,
    /// Images per encoder run
    #[arg(long, default_value_t = 16)]
    batch: usize,
}

/// True when some word trigram occurs twice.
fn repeats_trigram(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut seen = HashSet::new();
    words.windows(3).any(|w| !seen.insert(w.to_vec()))
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut refs = takarir_eval::load_references(&args.references, args.split.as_deref())?;
    if let Some(n) = args.limit {
        refs = refs.into_iter().take(n).collect();
    }
    let captioner = args.model.load()?;
    let mut opts = args.gen.options();
    opts.num_return_sequences = Some(1);
    let (g, lang) = captioner.generation_config(&opts)?;
    let names: Vec<String> = refs.keys().cloned().collect();
    let bar = ProgressBar::with_draw_target(Some(names.len() as u64), ProgressDrawTarget::stderr());
    let started = Instant::now();
    let mut candidates: BTreeMap<String, String> = BTreeMap::new();
    for chunk in names.chunks(args.batch.max(1)) {
        let bytes: Vec<Vec<u8>> = chunk
            .iter()
            .map(|n| {
                std::fs::read(args.images.join(n))
                    .with_context(|| format!("reading {}", args.images.join(n).display()))
            })
            .collect::<anyhow::Result<_>>()?;
        let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let (results, _) = captioner.caption_images(&slices, &opts);
        for (name, r) in chunk.iter().zip(results) {
            let r = r.with_context(|| format!("captioning {name}"))?;
            candidates.insert(
                name.clone(),
                r.captions
                    .into_iter()
                    .next()
                    .map(|c| c.text)
                    .unwrap_or_default(),
            );
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let scores = takarir_eval::evaluate(&candidates, &refs)?;
    let empty = candidates.values().filter(|c| c.trim().is_empty()).count();
    let trigram = candidates.values().filter(|c| repeats_trigram(c)).count();
    if let Some(out) = &args.output {
        std::fs::write(out, serde_json::to_string_pretty(&candidates)?)?;
    }
    let report = serde_json::json!({
        "model": captioner.info().name,
        "lang": lang,
        "images": scores.images,
        "num_beams": g.num_beams,
        "no_repeat_ngram_size": g.no_repeat_ngram_size,
        "bleu_1": scores.bleu[0], "bleu_2": scores.bleu[1], "bleu_3": scores.bleu[2], "bleu_4": scores.bleu[3],
        "rouge_l": scores.rouge_l,
        "cider_d": scores.cider_d,
        "empty_captions": empty,
        "captions_repeating_a_trigram": trigram,
        "seconds": seconds,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::repeats_trigram;

    #[test]
    fn trigram_repeats_are_detected() {
        assert!(repeats_trigram("a dog runs a dog runs"));
        assert!(!repeats_trigram("a dog runs and a dog jumps"));
    }
}
