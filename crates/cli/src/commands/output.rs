//! How `takarir caption` writes results, locally or from a service: one line per caption
//! (text), one JSON record per file (JSON, JSONL), or the CSV that batch jobs write too (one
//! writer, one header, spreadsheet formulas defused); an error line on standard error per
//! failed file; and optionally the best caption in a `.txt` beside each image.

use std::io::{Stdout, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use takarir_server::error::Problem;
use takarir_server::service::captioning::{CaptionOut, CaptionSource, ObjectOut, TagOut, TextOut};
use takarir_server::service::jobs::records::{CsvWriter, ItemRecord};

/// Output format.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
    Jsonl,
    Csv,
}

/// One file's JSON record.
#[derive(Serialize)]
struct Record<'a> {
    file: &'a str,
    /// The model that wrote the captions (local runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    captions: Option<Vec<CaptionJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    objects: Option<&'a [ObjectOut]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [TagOut]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a TextOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct CaptionJson<'a> {
    text: &'a str,
    lang: &'a str,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    needs_review: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<CaptionSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<&'a [u32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    review_features: Option<&'a [f32]>,
}

/// The problem of a file that cannot be read.
pub fn unreadable(e: &str) -> Problem {
    Problem {
        kind: "urn:takarir:problem:unreadable_file".into(),
        title: "Unreadable file".into(),
        status: 400,
        detail: e.to_string(),
        code: "unreadable_file".into(),
        request_id: String::new(),
    }
}

/// Writes a caption file; an existing file is never replaced unless `overwrite` (it may be the
/// user's own notes: a sidecar run once silently replaced `coffee.txt`).
fn write_sidecar(path: &Path, text: &str, overwrite: bool) -> std::io::Result<()> {
    write_new(path, &format!("{text}\n"), overwrite)
}

/// An XMP sidecar with the IPTC "Alt Text (Accessibility)" property: the best caption of each
/// language, the first also as `x-default` (what photo tools and CMSs read as alt text).
fn xmp_alt_text(captions: &[(&str, &str)]) -> String {
    fn esc(t: &str) -> String {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }
    let mut items = String::new();
    if let Some((_, text)) = captions.first() {
        items.push_str(&format!(
            "     <rdf:li xml:lang=\"x-default\">{}</rdf:li>\n",
            esc(text)
        ));
    }
    for (lang, text) in captions {
        items.push_str(&format!(
            "     <rdf:li xml:lang=\"{}\">{}</rdf:li>\n",
            esc(lang),
            esc(text)
        ));
    }
    format!(
        "<?xpacket begin=\"{bom}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n \
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n  \
         <rdf:Description rdf:about=\"\" \
         xmlns:Iptc4xmpCore=\"http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/\">\n   \
         <Iptc4xmpCore:AltTextAccessibility>\n    <rdf:Alt>\n{items}    </rdf:Alt>\n   \
         </Iptc4xmpCore:AltTextAccessibility>\n  </rdf:Description>\n </rdf:RDF>\n\
         </x:xmpmeta>\n<?xpacket end=\"w\"?>\n",
        bom = '\u{feff}'
    )
}

fn write_new(path: &Path, contents: &str, overwrite: bool) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .create_new(!overwrite)
        .truncate(true)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

/// The results written so far.
pub struct Output {
    format: OutputFormat,
    /// `txt` or `xmp`.
    sidecar: Option<String>,
    overwrite: bool,
    tokens: bool,
    out: Stdout,
    csv: Option<CsvWriter<Stdout>>,
    /// `--json`: each record serialised exactly as `--jsonl` writes it, then one array.
    json: Vec<String>,
    model: Option<(String, String)>,
    failed: usize,
}

impl Output {
    /// Starts the output (the CSV header).
    pub fn new(
        format: OutputFormat,
        sidecar: Option<String>,
        overwrite: bool,
        tokens: bool,
    ) -> anyhow::Result<Output> {
        let csv = match format {
            OutputFormat::Csv => Some(CsvWriter::new(std::io::stdout())?),
            _ => None,
        };
        Ok(Output {
            format,
            sidecar,
            overwrite,
            tokens,
            out: std::io::stdout(),
            csv,
            json: Vec::new(),
            model: None,
            failed: 0,
        })
    }

    /// Names the model in every JSON record from now on.
    pub fn set_model(&mut self, name: &str, version: &str) {
        self.model = Some((name.to_string(), version.to_string()));
    }

    /// Writes one file's result: `path` is the image, `r.file` its name in the output.
    pub fn record(&mut self, path: &Path, r: &ItemRecord) -> anyhow::Result<()> {
        let file = r.file.as_str();
        if let Some(e) = &r.error {
            self.failed += 1;
            eprintln!("error: {file}: {} ({})", e.detail, e.code);
        } else if let Some(kind) = self.sidecar.as_deref().filter(|_| path.as_os_str() != "-") {
            let captions = r.caption_list();
            if let Some(best) = captions.first() {
                let side = path.with_extension(kind);
                let written = if kind == "xmp" {
                    let mut firsts: Vec<(&str, &str)> = Vec::new();
                    for c in captions.iter() {
                        if !firsts.iter().any(|(l, _)| *l == c.lang) {
                            firsts.push((&c.lang, &c.text));
                        }
                    }
                    write_new(&side, &xmp_alt_text(&firsts), self.overwrite)
                } else {
                    write_sidecar(&side, &best.text, self.overwrite)
                };
                if let Err(e) = written {
                    self.failed += 1;
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        eprintln!(
                            "error: {}: exists and was left as it is (--overwrite replaces it)",
                            side.display()
                        );
                    } else {
                        eprintln!("error: {}: {e}", side.display());
                    }
                }
            }
        }
        if let Some(csv) = &mut self.csv {
            csv.write(r)?;
            return Ok(());
        }
        let mut out = self.out.lock();
        match self.format {
            OutputFormat::Text => {
                for c in r.caption_list() {
                    writeln!(out, "{file}\t{}", c.text)?;
                }
            }
            OutputFormat::Jsonl => writeln!(out, "{}", serde_json::to_string(&self.json_of(r))?)?,
            OutputFormat::Json => self.json.push(serde_json::to_string(&self.json_of(r))?),
            OutputFormat::Csv => {}
        }
        Ok(())
    }

    fn json_of<'a>(&'a self, r: &'a ItemRecord) -> Record<'a> {
        let caption = |c: &'a CaptionOut| CaptionJson {
            text: &c.text,
            lang: &c.lang,
            score: c.score,
            confidence: c.confidence,
            needs_review: c.needs_review,
            source: c.source,
            tokens: self.tokens.then_some(c.tokens.as_slice()),
            review_features: (self.tokens && !c.review_features.is_empty())
                .then_some(c.review_features.as_slice()),
        };
        Record {
            file: &r.file,
            model: self.model.as_ref().map(|m| m.0.as_str()),
            model_version: self.model.as_ref().map(|m| m.1.as_str()),
            captions: r
                .captions
                .as_ref()
                .map(|cs| cs.iter().map(caption).collect()),
            width: r.image.as_ref().map(|i| i.width),
            height: r.image.as_ref().map(|i| i.height),
            format: r.image.as_ref().map(|i| i.format.as_str()),
            objects: r.objects.as_deref(),
            tags: r.tags.as_deref(),
            text: r.text.as_ref(),
            error: r
                .error
                .as_ref()
                .map(|e| format!("{} ({})", e.detail, e.code)),
        }
    }

    /// Ends the output (the JSON array); the exit code: 1 if any file failed.
    pub fn finish(mut self) -> anyhow::Result<i32> {
        if let Some(csv) = self.csv.take() {
            csv.finish()?.flush()?;
        }
        if self.format == OutputFormat::Json {
            writeln!(self.out, "[\n{}\n]", self.json.join(",\n"))?;
        }
        Ok(if self.failed > 0 { 1 } else { 0 })
    }

    /// Counts a failure reported elsewhere (a file that could not be sent).
    pub fn count_failure(&mut self) {
        self.failed += 1;
    }
}

/// A progress bar on standard error for `n` files (hidden for three or fewer).
pub fn progress(n: usize) -> ProgressBar {
    let target = if n <= 3 {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(n as u64), target);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} ETA {eta}")
            .expect("valid template"),
    );
    bar
}
