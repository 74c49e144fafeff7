//! `takarir caption`: files and folders in, one caption line (or record) per image out.
//!
//! The captions are the service's: the same options (language, style, alternatives,
//! gender-neutral wording) with the same defaults and the same post-processing as the API and
//! the web page (`takarir_server::service::captioning`), so one photo gets one caption from
//! every door. Decoding flags (`--beams`, ...) adjust the engine settings on top, locally.
//!
//! Every file gets its own result: a failure prints one error line and the rest go on; the
//! exit code is 1 if anything failed. Images are captioned in batches (one encoder run each).

use std::path::{Path, PathBuf};

use takarir_engine::CaptionOptions;
use takarir_server::i18n::Lang;
use takarir_server::options::Feature;
use takarir_server::service::captioning::{caption_images, BatchItem};
use takarir_server::service::jobs::records::ItemRecord;

use super::generation::{DecodingArgs, OptionArgs};
use super::output::{unreadable, Output, OutputFormat};
use super::ModelArgs;

const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Images (`-` reads one from standard input), or folders searched recursively for images
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    options: OptionArgs,
    #[command(flatten)]
    decoding: DecodingArgs,
    /// One JSON array of all results
    #[arg(long, conflicts_with_all = ["jsonl", "csv"])]
    json: bool,
    /// One JSON object per line
    #[arg(long, conflicts_with = "csv")]
    jsonl: bool,
    /// CSV with a header row: index,file,lang,rank,caption,score,error_code,error
    #[arg(long)]
    csv: bool,
    /// Also write the caption next to each image: `txt` (`photo.jpg` → `photo.txt`, the best
    /// caption) or `xmp` (`photo.xmp`, IPTC "Alt Text (Accessibility)": the best caption of each
    /// language, read by photo tools and CMSs)
    #[arg(long, value_parser = ["txt", "xmp"])]
    sidecar: Option<String>,
    /// Replace existing sidecar files (without it, a file that exists is left as it is and
    /// reported as an error)
    #[arg(long, requires = "sidecar")]
    overwrite: bool,
    /// Text model directory, for `--features ...,text` [default: `text/` beside the model
    /// directory, i.e. models/text]
    #[arg(long, value_name = "DIR", env = "TAKARIR_TEXT_MODEL")]
    text_model: Option<PathBuf>,
    /// Images per encoder run
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    batch: u16,
    /// Include generated token ids in JSON output (for parity checks against other runtimes)
    #[arg(long)]
    tokens: bool,
    /// Caption on a Takarir service instead (one batch job), e.g. http://host:8080; the
    /// decoding flags do not apply there (the service chooses the decoding)
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
    let opts = args.options.options();
    let output = Output::new(format, args.sidecar.clone(), args.overwrite, args.tokens)?;
    if let Some(server) = &args.server {
        if args.decoding.any() || args.tokens {
            anyhow::bail!(
                "with --server the decoding flags and --tokens do not apply (the service chooses the decoding)"
            );
        }
        return super::remote::run(super::remote::Remote {
            server,
            api_key: args.api_key.as_deref(),
            files: &files,
            options: &args.options,
            output,
        });
    }
    let captioner = args.model.load()?;
    let text = args.model.text_reader(&captioner, args.text_model.clone());
    if opts.features.contains(Feature::Text) {
        // A missing text model is refused once, up front, rather than once per file.
        text.get()
            .map_err(|e| anyhow::anyhow!("cannot read text: {e}"))?;
    }
    let alternatives = usize::from(opts.alternatives);
    let tune = |o: &mut CaptionOptions| args.decoding.apply(o, alternatives);
    // Refuse bad options once, up front, rather than once per file.
    let langs: Vec<String> = match opts.lang {
        None => vec![captioner.default_language().to_string()],
        Some(l) => l.codes().iter().map(|c| c.to_string()).collect(),
    };
    for lang in &langs {
        let mut o = opts.engine_options(lang);
        tune(&mut o);
        captioner
            .generation_config(&o)
            .map_err(|e| anyhow::anyhow!(flag_names(&e.to_string())))?;
    }

    let bar = super::output::progress(files.len());
    let mut output = output;
    output.set_model(&captioner.info().name, &captioner.info().version);
    let mut index = 0usize;
    for chunk in files.chunks(args.batch as usize) {
        let bytes: Vec<Result<Vec<u8>, String>> = chunk
            .iter()
            .map(|p| read_input(p).map_err(|e| e.to_string()))
            .collect();
        let readable: Vec<&[u8]> = bytes
            .iter()
            .filter_map(|b| b.as_ref().ok().map(Vec::as_slice))
            .collect();
        let mut results =
            caption_images(&captioner, &text, &readable, &opts, &langs, tune).into_iter();
        for (path, b) in chunk.iter().zip(&bytes) {
            let file = path.display().to_string();
            let item = match b {
                Err(e) => BatchItem {
                    filename: None,
                    captions: None,
                    objects: None,
                    tags: None,
                    text: None,
                    image: None,
                    metadata: None,
                    error: Some(unreadable(e)),
                },
                Ok(_) => {
                    let outcome = results.next().expect("one result per readable file");
                    BatchItem::of(None, outcome, Lang::En, "")
                }
            };
            let record = ItemRecord::new(index as i64, &file, item);
            index += 1;
            bar.suspend(|| output.record(path, &record))?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    output.finish()
}

/// The engine's checks name its generation fields; a CLI user typed flags.
fn flag_names(message: &str) -> String {
    const FLAGS: [(&str, &str); 9] = [
        ("num_return_sequences", "--alternatives"),
        ("num_beams", "--beams"),
        ("max_new_tokens", "--max-tokens"),
        ("min_new_tokens", "--min-tokens"),
        ("length_penalty", "--length-penalty"),
        ("no_repeat_ngram_size", "--no-repeat-ngram"),
        ("repetition_penalty", "--repetition-penalty"),
        ("temperature", "--temperature"),
        ("top_p", "--top-p"),
    ];
    let mut m = message.to_string();
    for (field, flag) in FLAGS {
        m = m.replace(field, flag);
    }
    m.replace("num_beams = 1", "--beams 1")
}

/// An image file's bytes; `-` is standard input (`curl … | takarir caption -`).
fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        return Ok(bytes);
    }
    std::fs::read(path)
}
