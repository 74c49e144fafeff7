//! `takarir caption`: files and folders in, one caption line (or record) per image out.
//!
//! Every file gets its own result: a failure prints one error line and the rest go on; the
//! exit code is 1 if anything failed. Images are captioned in batches (one encoder run each).

use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use takarir_engine::{Caption, CaptionOptions, ImageCaptions};

use super::ModelArgs;

const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"];

/// Output format.
#[derive(Clone, Copy, PartialEq)]
pub enum OutputFormat {
    Text,
    Json,
    Jsonl,
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Images, or folders searched recursively for images
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    gen: GenerationArgs,
    /// One JSON array of all results
    #[arg(long, conflicts_with_all = ["jsonl", "csv"])]
    json: bool,
    /// One JSON object per line
    #[arg(long, conflicts_with = "csv")]
    jsonl: bool,
    /// CSV with a header row: file,lang,rank,caption,score,error
    #[arg(long)]
    csv: bool,
    /// Also write the best caption next to each image (`photo.jpg` → `photo.txt`)
    #[arg(long, value_parser = ["txt"])]
    sidecar: Option<String>,
    /// Images per encoder run
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    batch: u16,
    /// Include generated token ids in JSON output (for parity checks against other runtimes)
    #[arg(long)]
    tokens: bool,
    /// Caption on a Takarir service instead (one batch job), e.g. http://host:8080; only
    /// --lang and --alternatives apply there
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// With --server: an API key with the `captions` scope, so that the job is the account's
    /// (its captions enter the account's history while history is on); anonymous without one
    #[arg(
        long,
        env = "TAKARIR_API_KEY",
        hide_env_values = true,
        requires = "server"
    )]
    api_key: Option<String>,
}

/// Generation options shared by `caption`, `eval` and `bench`; unset ones keep the model's defaults.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GenerationArgs {
    /// Caption language: id or en [default: id when the model has it]
    #[arg(long, short = 'l')]
    pub lang: Option<String>,
    /// Beam width (1 = greedy)
    #[arg(long)]
    pub beams: Option<usize>,
    /// Maximum tokens per caption
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Minimum tokens per caption
    #[arg(long)]
    pub min_tokens: Option<usize>,
    /// Captions per image (beam search or sampling)
    #[arg(long)]
    pub alternatives: Option<usize>,
    /// Beam length penalty exponent (> 0 favours longer captions)
    #[arg(long)]
    pub length_penalty: Option<f64>,
    /// Forbid repeating any n-gram of this many tokens
    #[arg(long)]
    pub no_repeat_ngram: Option<usize>,
    /// Repetition penalty (1 = off)
    #[arg(long)]
    pub repetition_penalty: Option<f32>,
    /// Sample instead of searching
    #[arg(long)]
    pub sample: bool,
    /// Sampling temperature
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Sampling: keep the k most likely tokens
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sampling: nucleus probability mass
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Sampling seed
    #[arg(long)]
    pub seed: Option<u64>,
}

impl GenerationArgs {
    pub fn options(&self) -> CaptionOptions {
        CaptionOptions {
            lang: self.lang.clone(),
            num_beams: self.beams,
            max_new_tokens: self.max_tokens,
            min_new_tokens: self.min_tokens,
            length_penalty: self.length_penalty,
            no_repeat_ngram_size: self.no_repeat_ngram,
            repetition_penalty: self.repetition_penalty,
            num_return_sequences: self.alternatives,
            do_sample: self.sample.then_some(true),
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            early_stopping: None,
            grounded: None,
        }
    }
}

/// Expands folders (recursively, image extensions only, sorted); files named explicitly are
/// always kept so that a mislabelled file still gets its error line.
fn collect(inputs: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            out.push(dir.to_path_buf());
            return;
        };
        let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for i in inputs {
        if i.is_dir() {
            walk(i, &mut out);
        } else {
            out.push(i.clone());
        }
    }
    out
}

#[derive(Serialize)]
struct Record<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    captions: Option<Vec<CaptionOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct CaptionOut<'a> {
    text: &'a str,
    lang: Option<&'a str>,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<&'a [u32]>,
}

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn outs(c: &[Caption], tokens: bool) -> Vec<CaptionOut<'_>> {
    c.iter()
        .map(|c| CaptionOut {
            text: &c.text,
            lang: c.lang.as_deref(),
            score: c.score,
            tokens: tokens.then_some(c.tokens.as_slice()),
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let format = match (args.json, args.jsonl, args.csv) {
        (true, _, _) => OutputFormat::Json,
        (_, true, _) => OutputFormat::Jsonl,
        (_, _, true) => OutputFormat::Csv,
        _ => OutputFormat::Text,
    };
    let files = collect(&args.inputs);
    if files.is_empty() {
        anyhow::bail!("no images found in {:?}", args.inputs);
    }
    if let Some(server) = &args.server {
        let g = &args.gen;
        if g.beams.is_some()
            || g.max_tokens.is_some()
            || g.min_tokens.is_some()
            || g.length_penalty.is_some()
            || g.no_repeat_ngram.is_some()
            || g.repetition_penalty.is_some()
            || g.sample
            || args.tokens
        {
            anyhow::bail!("with --server only --lang and --alternatives apply (the service chooses the decoding)");
        }
        return super::remote::run(super::remote::Remote {
            server,
            api_key: args.api_key.as_deref(),
            files: &files,
            lang: g.lang.as_deref(),
            alternatives: g.alternatives,
            format,
            sidecar: args.sidecar.is_some(),
        });
    }
    let captioner = args.model.load()?;
    let opts = args.gen.options();
    // Refuse bad options once, up front, rather than once per file.
    captioner.generation_config(&opts)?;

    let bar = ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr());
    if files.len() <= 3 {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} ETA {eta}")
            .expect("valid template"),
    );

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0usize;
    let mut json_all: Vec<serde_json::Value> = Vec::new();
    if format == OutputFormat::Csv {
        writeln!(out, "file,lang,rank,caption,score,error")?;
    }
    for chunk in files.chunks(args.batch as usize) {
        let bytes: Vec<Result<Vec<u8>, String>> = chunk
            .iter()
            .map(|p| std::fs::read(p).map_err(|e| e.to_string()))
            .collect();
        let readable: Vec<&[u8]> = bytes
            .iter()
            .filter_map(|b| b.as_ref().ok().map(Vec::as_slice))
            .collect();
        let (mut results, _) = captioner.caption_images(&readable, &opts);
        let mut results = results.drain(..);
        for (path, b) in chunk.iter().zip(&bytes) {
            let result: Result<ImageCaptions, String> = match b {
                Err(e) => Err(e.clone()),
                Ok(_) => results
                    .next()
                    .expect("one result per readable file")
                    .map_err(|e| e.to_string()),
            };
            let file = path.display().to_string();
            if let Err(e) = &result {
                failed += 1;
                bar.suspend(|| eprintln!("error: {file}: {e}"));
            }
            if let (Ok(r), Some(_)) = (&result, &args.sidecar) {
                if let Some(best) = r.captions.first() {
                    let side = path.with_extension("txt");
                    if let Err(e) = std::fs::write(&side, format!("{}\n", best.text)) {
                        failed += 1;
                        bar.suspend(|| eprintln!("error: {}: {e}", side.display()));
                    }
                }
            }
            let record = match &result {
                Ok(r) => Record {
                    file: file.clone(),
                    captions: Some(outs(&r.captions, args.tokens)),
                    width: Some(r.width),
                    height: Some(r.height),
                    format: Some(r.format),
                    error: None,
                },
                Err(e) => Record {
                    file: file.clone(),
                    captions: None,
                    width: None,
                    height: None,
                    format: None,
                    error: Some(e.clone()),
                },
            };
            bar.suspend(|| -> std::io::Result<()> {
                match (format, &result) {
                    (OutputFormat::Text, Ok(r)) => {
                        for c in &r.captions {
                            writeln!(out, "{file}\t{}", c.text)?;
                        }
                    }
                    (OutputFormat::Text, Err(_)) => {}
                    (OutputFormat::Jsonl, _) => {
                        writeln!(out, "{}", serde_json::to_string(&record)?)?
                    }
                    (OutputFormat::Json, _) => json_all.push(serde_json::to_value(&record)?),
                    (OutputFormat::Csv, Ok(r)) => {
                        for (rank, c) in r.captions.iter().enumerate() {
                            let lang = c.lang.as_deref().unwrap_or("");
                            writeln!(
                                out,
                                "{},{lang},{},{},{:.4},",
                                csv_field(&file),
                                rank + 1,
                                csv_field(&c.text),
                                c.score
                            )?;
                        }
                    }
                    (OutputFormat::Csv, Err(e)) => {
                        writeln!(out, "{},,,,,{}", csv_field(&file), csv_field(e))?
                    }
                }
                Ok(())
            })?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if format == OutputFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&json_all)?)?;
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
