//! Reads the text of photos and prints one JSON line per photo: the lines, the whole text, the
//! layout and, with `--captions`, the default model's captions in English and Indonesian with
//! and without the quoted text (what `scripts/dev/eval_text.py` measures).
//!
//! ```sh
//! cargo run --release -p takarir-engine --example read_text -- \
//!     [--captions] [--min-confidence 0.8] [--det-max-side 640 | --det-min-side 736] \
//!     [--threads 2] photo.jpg ...
//! ```
//!
//! Each file is decoded once: the pixels go to the reader (`TextReader::read_rgb`) and to the
//! captioner (`Captioner::prepare_decoded`), as a service doing both would.

use std::path::{Path, PathBuf};

use serde_json::json;
use takarir_engine::image::decode;
use takarir_engine::text::{compose_caption, DetectorSize, TextReader, TextReaderOptions};
use takarir_engine::{CaptionOptions, Captioner, CaptionerOptions, ImageLimits, Timings};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut captions = false;
    let mut min_confidence = None;
    let mut threads = 2usize;
    let mut det = None;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--captions" => captions = true,
            "--min-confidence" => min_confidence = Some(args.next().ok_or("value")?.parse()?),
            "--threads" => threads = args.next().ok_or("value")?.parse()?,
            "--det-max-side" => {
                det = Some(DetectorSize::MaxSide(args.next().ok_or("value")?.parse()?))
            }
            "--det-min-side" => {
                det = Some(DetectorSize::MinSide(args.next().ok_or("value")?.parse()?))
            }
            _ => files.push(PathBuf::from(a)),
        }
    }
    let mut opts = TextReaderOptions::new(root.join("models/text"));
    opts.threads = threads;
    if let Some(m) = min_confidence {
        opts.min_confidence = m;
    }
    if let Some(d) = det {
        opts.detector_size = d;
    }
    let reader = TextReader::load(&opts)?;
    let captioner = if captions {
        let mut o = CaptionerOptions::new(root.join("models/default").to_string_lossy());
        o.threads = threads;
        Some(Captioner::load(&o)?)
    } else {
        None
    };
    for f in files {
        let bytes = std::fs::read(&f)?;
        let img = match decode(&bytes, &ImageLimits::default()) {
            Ok(i) => i,
            Err(e) => {
                println!("{}", json!({"file": f, "error": e.to_string()}));
                continue;
            }
        };
        let r = reader.read_rgb(&img.rgb)?;
        let prepared = match &captioner {
            Some(c) => Some(c.prepare_decoded(img, false)?),
            None => None,
        };
        let mut out = json!({
            "file": f, "lines": r.lines, "text": r.text, "layout": r.layout,
            "word_confidences": r.lines.iter().map(|l| &l.word_confidences).collect::<Vec<_>>(),
            "timings": r.timings,
        });
        if let (Some(c), Some(p)) = (&captioner, &prepared) {
            for lang in ["en", "id"] {
                let o = CaptionOptions {
                    lang: Some(lang.into()),
                    ..Default::default()
                };
                let (g, l) = c.generation_config(&o)?;
                let mut res = c.caption_with_config(&[p], &g, l, &mut Timings::default())?;
                let plain = res.remove(0).remove(0).text;
                let composed = compose_caption(&plain, lang, &r.lines, r.layout);
                out[lang] = json!({"caption": plain, "composed": composed});
            }
        }
        println!("{out}");
    }
    Ok(())
}
