//! `takarir bench`: where the time goes, and how the engine compares with a plain Python
//! onnxruntime + numpy + PIL reference doing the same work on the same files in the same run.
//!
//! Figures: decode + pre-process per image, encoder at batch 1, decoder per token, end-to-end
//! latency p50/p95 at batch 1, images/s at batch 8, peak resident memory. The reference
//! (`scripts/bench_reference.py`) runs in a child process with the same thread count and
//! decoding settings and reports the same figures; the ratios are printed side by side.
//!
//! `--text` adds text reading (`models/text`): decode + detect + orient + recognise, end to end
//! p50/p95 at batch 1 on a photo of about one megapixel with a few lines
//! (`fixtures/text-bench/signs-1mp.jpg`), and, with `--text-python`, the `rapidocr` package on
//! the same photo with the same threads and settings (`scripts/bench_text_reference.py`). The text reader is
//! loaded after the captioning figures are taken, so they are those of captioning alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};
use takarir_engine::{CaptionOptions, Captioner, Features, Timings};

use super::{find_up, ModelArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Folder of images to time [default: samples/]
    #[arg(long)]
    images: Option<PathBuf>,
    /// Timed runs per figure
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Beam width for both engines (1 = greedy)
    #[arg(long, default_value_t = 1)]
    beams: usize,
    /// Caption language (multilingual models)
    #[arg(long)]
    lang: Option<String>,
    /// Python interpreter for the reference [default: .venv/bin/python]; `none` skips it
    #[arg(long)]
    python: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Also time text reading (the text models, one photo with a few lines)
    #[arg(long)]
    text: bool,
    /// Time text reading only (no captioning figures)
    #[arg(long)]
    text_only: bool,
    /// Text model directory [default: models/text]
    #[arg(long)]
    text_model: Option<PathBuf>,
    /// Photo or folder for the text figures [default: fixtures/text-bench/signs-1mp.jpg]
    #[arg(long)]
    text_images: Option<PathBuf>,
    /// Python interpreter with `rapidocr` installed, for the text reference [default: none]
    #[arg(long)]
    text_python: Option<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if args.text_only {
        let threads = bench_threads(&args);
        let report =
            json!({ "threads": threads, "runs": args.runs, "text": text_bench(&args, threads)? });
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_text_table(&report);
        }
        return Ok(0);
    }
    let dir = match &args.images {
        Some(d) => d.clone(),
        None => find_up("samples").context("no --images and no samples/ folder found")?,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e))
        })
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no .jpg/.png images in {}",
        dir.display()
    );
    let images: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let threads = bench_threads(&args);
    let model_args = ModelArgs {
        threads: Some(threads),
        ..args.model.clone()
    };

    let load_start = Instant::now();
    let captioner = model_args.load()?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1000.0;
    let opts = CaptionOptions {
        num_beams: Some(args.beams),
        lang: args.lang.clone(),
        ..Default::default()
    };
    let (g, lang) = captioner.generation_config(&opts)?;

    // Warm-up: first runs allocate arenas and page in weights.
    for img in &images {
        let (r, _) = captioner.caption_images(&[img.as_slice()], &opts);
        r.into_iter().next().expect("one result")?;
    }

    let mut prep = Vec::new();
    let mut enc = Vec::new();
    let mut per_token = Vec::new();
    let mut e2e = Vec::new();
    for i in 0..args.runs {
        let img = &images[i % images.len()];
        let t = Instant::now();
        let p = captioner.prepare(img)?;
        prep.push(t.elapsed().as_secs_f64() * 1000.0);
        let mut timings = Timings::default();
        captioner.caption_with_config(&[&p], &g, lang.clone(), &mut timings)?;
        enc.push(timings.encode_ms);
        per_token.push(timings.generate_ms / timings.decoder_steps.max(1) as f64);
        let t = Instant::now();
        let (r, _) = captioner.caption_images(&[img.as_slice()], &opts);
        r.into_iter().next().expect("one result")?;
        e2e.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    e2e.sort_by(f64::total_cmp);
    let batch8: Vec<&[u8]> = (0..8)
        .map(|i| images[i % images.len()].as_slice())
        .collect();
    let rounds = (args.runs / 4).max(2);
    let t = Instant::now();
    for _ in 0..rounds {
        let (r, _) = captioner.caption_images(&batch8, &opts);
        for x in r {
            x?;
        }
    }
    let images_per_s = (rounds * 8) as f64 / t.elapsed().as_secs_f64();
    let all_languages = all_languages_p50(&captioner, &images, &opts, args.runs)?;
    let grounding = grounding_p50(&captioner, &images, &opts, args.runs)?;

    let rust = json!({
        "load_ms": load_ms,
        "decode_preprocess_ms": mean(&prep),
        "encoder_ms": mean(&enc),
        "decoder_ms_per_token": mean(&per_token),
        "e2e_p50_ms": percentile(&e2e, 0.5),
        "e2e_p95_ms": percentile(&e2e, 0.95),
        "images_per_s_batch8": images_per_s,
        "peak_rss_mib": peak_rss_mib(),
        "all_languages": all_languages,
        "grounding": grounding,
    });
    let model_dir = captioner_dir(&model_args)?;
    let model_name = captioner.info().name.clone();
    let python = match args.python.as_deref() {
        Some("none") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => find_up(".venv/bin/python"),
    };
    let reference = match (python, find_up("scripts/bench_reference.py")) {
        (Some(py), Some(script)) => Some(run_reference(
            &py,
            &script,
            &model_dir,
            &files,
            &args,
            threads,
            lang.as_deref(),
        )?),
        _ => None,
    };
    let text = if args.text {
        drop(captioner);
        text_bench(&args, threads)?
    } else {
        Value::Null
    };
    let report = json!({
        "model": model_name, "threads": threads, "beams": args.beams, "images": files.len(),
        "runs": args.runs, "rust": rust, "python_reference": reference, "text": text,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
        if !report["text"].is_null() {
            print_text_table(&report);
        }
    }
    Ok(0)
}

/// End-to-end p50 of the captioner alone, of a grounded caption (detector and tagger in the
/// loop) and of a grounded caption with the objects and tags returned, side by side in one run.
/// Null when the model has no vision bundle.
fn grounding_p50(
    captioner: &Captioner,
    images: &[Vec<u8>],
    opts: &CaptionOptions,
    runs: usize,
) -> anyhow::Result<Value> {
    if !captioner.info().vision {
        return Ok(Value::Null);
    }
    let alone = CaptionOptions {
        grounded: Some(false),
        ..opts.clone()
    };
    let grounded = CaptionOptions {
        grounded: Some(true),
        ..opts.clone()
    };
    let only = Features {
        caption: true,
        objects: false,
        tags: false,
    };
    let all = Features {
        caption: true,
        objects: true,
        tags: true,
    };
    let cases = [(&alone, only), (&grounded, only), (&grounded, all)];
    let mut times = vec![Vec::new(); cases.len()];
    // Interleaved, so that a busy neighbour slows every case alike.
    for i in 0..runs {
        let img = [images[i % images.len()].as_slice()];
        for (k, (o, f)) in cases.iter().enumerate() {
            let t = Instant::now();
            let (r, _) = captioner.analyze_images(&img, std::slice::from_ref(*o), *f);
            r.into_iter().next().expect("one result")?;
            times[k].push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let p50: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            percentile(t, 0.5)
        })
        .collect();
    Ok(json!({
        "caption_alone_p50_ms": p50[0],
        "grounded_caption_p50_ms": p50[1],
        "grounded_with_objects_and_tags_p50_ms": p50[2],
        "overhead": p50[2] / p50[0],
    }))
}

fn bench_threads(args: &Args) -> usize {
    args.model.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Text reading figures: load time, stage means, end-to-end p50/p95 from the file bytes, lines
/// read, and the Python `rapidocr` reference when an interpreter is given.
fn text_bench(args: &Args, threads: usize) -> anyhow::Result<Value> {
    use takarir_engine::text::{DetectorSize, TextReader, TextReaderOptions};
    let dir = match &args.text_model {
        Some(d) => d.clone(),
        None => find_up("models/text").context("no --text-model and no models/text found")?,
    };
    let files: Vec<PathBuf> = match &args.text_images {
        Some(p) if p.is_dir() => {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| ["jpg", "jpeg", "png", "webp"].contains(&e))
                })
                .collect();
            v.sort();
            v
        }
        Some(p) => vec![p.clone()],
        None => vec![find_up("fixtures/text-bench/signs-1mp.jpg")
            .context("no --text-images and no fixtures/text-bench/signs-1mp.jpg found")?],
    };
    anyhow::ensure!(!files.is_empty(), "no photos for the text figures");
    let images: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let mut opts = TextReaderOptions::new(&dir);
    opts.threads = threads;
    opts.ort_library = args.model.ort_lib.clone();
    let t = Instant::now();
    let reader = TextReader::load(&opts)?;
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    for img in &images {
        reader.read(img)?;
    }
    let (mut e2e, mut det, mut cls, mut rec) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut lines = 0;
    let mut megapixels = 0.0;
    for i in 0..args.runs {
        let img = &images[i % images.len()];
        let t = Instant::now();
        let r = reader.read(img)?;
        e2e.push(t.elapsed().as_secs_f64() * 1000.0);
        det.push(r.timings.detect_ms);
        cls.push(r.timings.classify_ms);
        rec.push(r.timings.recognise_ms);
        lines = r.lines.len();
        megapixels = r.width as f64 * r.height as f64 / 1e6;
    }
    e2e.sort_by(f64::total_cmp);
    let reference = match args.text_python.as_deref() {
        None | Some("none") => Value::Null,
        Some(py) => {
            let script = find_up("scripts/bench_text_reference.py")
                .context("scripts/bench_text_reference.py not found")?;
            let mut cmd = Command::new(py);
            cmd.arg(&script)
                .arg("--threads")
                .arg(threads.to_string())
                .arg("--text-score")
                .arg(reader.min_confidence().to_string());
            // The same detector input rule as the reader (the package's own is MinSide(736)).
            if let DetectorSize::MaxSide(side) = reader.detector_size() {
                cmd.arg("--det-max-side").arg(side.to_string());
            }
            let out = cmd
                .arg("--runs")
                .arg(args.runs.to_string())
                .args(&files)
                .output()
                .with_context(|| format!("running {py}"))?;
            anyhow::ensure!(
                out.status.success(),
                "Python text reference failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).context("Python text reference printed no JSON")?
        }
    };
    Ok(json!({
        "model": reader.info().name,
        "photos": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "megapixels": megapixels,
        "lines": lines,
        "rust": {
            "load_ms": load_ms,
            "detect_ms": mean(&det),
            "classify_ms": mean(&cls),
            "recognise_ms": mean(&rec),
            "p50_ms": percentile(&e2e, 0.5),
            "p95_ms": percentile(&e2e, 0.95),
            "peak_rss_mib": peak_rss_mib(),
        },
        "python_reference": reference,
    }))
}

fn print_text_table(r: &Value) {
    let t = &r["text"];
    println!(
        "text reading ({})  threads {}  {:.2} MP  {} lines  runs {}",
        t["model"].as_str().unwrap_or("?"),
        r["threads"],
        t["megapixels"].as_f64().unwrap_or(0.0),
        t["lines"],
        r["runs"]
    );
    let f = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    for (label, key) in [
        ("  detect (ms, mean)", "detect_ms"),
        ("  orient (ms, mean)", "classify_ms"),
        ("  recognise (ms, mean)", "recognise_ms"),
    ] {
        println!("{label:<32} {:>10}", f(t["rust"][key].as_f64()));
    }
    for (label, key) in [
        ("  end to end p50 (ms)", "p50_ms"),
        ("  end to end p95 (ms)", "p95_ms"),
    ] {
        let a = t["rust"][key].as_f64();
        let b = t["python_reference"].get(key).and_then(Value::as_f64);
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
            _ => "-".into(),
        };
        println!("{label:<32} {:>10} {:>10} {ratio:>16}", f(a), f(b));
    }
}

/// A multilingual model asked for every language of one image (the service's `lang=both`):
/// end-to-end p50 when the languages share one decode and encoder run, and, as the reference,
/// when each language is a call of its own (as the service did before). Interleaved runs.
fn all_languages_p50(
    captioner: &takarir_engine::Captioner,
    images: &[Vec<u8>],
    opts: &CaptionOptions,
    runs: usize,
) -> anyhow::Result<Value> {
    let langs = &captioner.info().languages;
    if langs.len() < 2 {
        return Ok(Value::Null);
    }
    let per_lang: Vec<CaptionOptions> = langs
        .iter()
        .map(|l| CaptionOptions {
            lang: Some(l.clone()),
            ..opts.clone()
        })
        .collect();
    let (mut shared, mut separate) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let img = [images[i % images.len()].as_slice()];
        let t = Instant::now();
        let (r, _) = captioner.caption_images_each(&img, &per_lang);
        r.into_iter().next().expect("one result")?;
        shared.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        for o in &per_lang {
            let (r, _) = captioner.caption_images(&img, o);
            r.into_iter().next().expect("one result")?;
        }
        separate.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    shared.sort_by(f64::total_cmp);
    separate.sort_by(f64::total_cmp);
    Ok(json!({
        "languages": langs,
        "shared_encoder_p50_ms": percentile(&shared, 0.5),
        "call_per_language_p50_ms": percentile(&separate, 0.5),
    }))
}

fn captioner_dir(m: &ModelArgs) -> anyhow::Result<PathBuf> {
    match &m.model {
        Some(s) if s.starts_with("hf:") => {
            anyhow::bail!("bench needs a local model directory for the Python reference")
        }
        Some(s) => Ok(PathBuf::from(s)),
        None => super::default_model().context("no model"),
    }
}

fn run_reference(
    py: &Path,
    script: &Path,
    model: &Path,
    files: &[PathBuf],
    a: &Args,
    threads: usize,
    lang: Option<&str>,
) -> anyhow::Result<Value> {
    let mut cmd = Command::new(py);
    cmd.arg(script)
        .arg("--model")
        .arg(model)
        .arg("--runs")
        .arg(a.runs.to_string());
    cmd.arg("--beams")
        .arg(a.beams.to_string())
        .arg("--threads")
        .arg(threads.to_string());
    if let Some(l) = lang {
        cmd.arg("--lang").arg(l);
    }
    cmd.args(files);
    let out = cmd
        .output()
        .with_context(|| format!("running {}", py.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "Python reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("Python reference printed no JSON")
}

fn print_table(r: &Value) {
    println!(
        "model {}  threads {}  beams {}  images {}  runs {}",
        r["model"].as_str().unwrap_or("?"),
        r["threads"],
        r["beams"],
        r["images"],
        r["runs"]
    );
    let rows = [
        (
            "decode + preprocess (ms/image)",
            "decode_preprocess_ms",
            false,
        ),
        ("encoder, batch 1 (ms)", "encoder_ms", false),
        ("decoder (ms/token)", "decoder_ms_per_token", false),
        ("end to end p50, batch 1 (ms)", "e2e_p50_ms", false),
        ("end to end p95, batch 1 (ms)", "e2e_p95_ms", false),
        ("images/s, batch 8", "images_per_s_batch8", true),
        ("peak memory (MiB)", "peak_rss_mib", false),
    ];
    println!(
        "{:<32} {:>10} {:>10} {:>16}",
        "", "rust", "python", "rust advantage"
    );
    for (label, key, higher_better) in rows {
        let a = r["rust"][key].as_f64();
        let b = r["python_reference"].get(key).and_then(Value::as_f64);
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
                format!("{:.2}x", if higher_better { a / b } else { b / a })
            }
            _ => "-".into(),
        };
        let f = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        println!("{label:<32} {:>10} {:>10} {ratio:>16}", f(a), f(b));
    }
    let all = &r["rust"]["all_languages"];
    if let (Some(shared), Some(separate)) = (
        all["shared_encoder_p50_ms"].as_f64(),
        all["call_per_language_p50_ms"].as_f64(),
    ) {
        println!(
            "every language of an image ({}), end to end p50: {shared:.2} ms with one encoder run, \
             {separate:.2} ms with a call per language ({:.2}x)",
            all["languages"]
                .as_array()
                .map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("+"))
                .unwrap_or_default(),
            separate / shared
        );
    }
    let g = &r["rust"]["grounding"];
    if let (Some(alone), Some(grounded), Some(all)) = (
        g["caption_alone_p50_ms"].as_f64(),
        g["grounded_caption_p50_ms"].as_f64(),
        g["grounded_with_objects_and_tags_p50_ms"].as_f64(),
    ) {
        println!(
            "end to end p50: captioner alone {alone:.2} ms, grounded caption {grounded:.2} ms, \
             grounded with objects and tags {all:.2} ms ({:.2}x the captioner alone)",
            all / alone
        );
    }
}
