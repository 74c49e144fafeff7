//! Reading the text in photos: signs, posters, labels, screenshots.
//!
//! # Design
//! Three small ONNX graphs from PaddleOCR, as the `rapidocr` 3.10.0 wheel ships them
//! (`models/text/`, see its `MODEL_CARD.md`): a DB text detector (PP-OCRv6 small), a
//! two-way orientation classifier (0° / 180°, PP-OCR mobile v2.0) and a CTC line recogniser
//! (PP-OCRv6 small, multilingual, Latin script included, so one recogniser serves Indonesian and
//! English). The recogniser's 18,708-character dictionary lives in the graph's metadata
//! (`character`, one per line); CTC class 0 is the blank and the last class a space, as the
//! reference's `CTCLabelDecode` builds it.
//!
//! [`TextReader`] runs the reference pipeline (`rapidocr.main.RapidOCR.__call__` with the
//! package's `config.yaml`) step for step, so that it reads what the Python package reads:
//! 1. bound the image: a long side over 2000 px is brought down to 2000, a short side under
//!    30 px up to 30 (sides rounded to multiples of 32 when resized);
//! 2. pad very flat images (height ≤ 30 or width/height > 8) with black bands above and below;
//! 3. detect ([`db`]): resize so the short side is at least 736 (the package's default) or the
//!    long side at most 640 (the shipped setting, [`DEFAULT_DETECTOR_SIZE`], about four times
//!    less work on a 1-megapixel photo), in multiples of 32; normalise to [-1, 1] in BGR order,
//!    run the detector, DB post-processing, reading order;
//! 4. crop each box with a perspective warp (bicubic, replicated borders); crops at least 1.5×
//!    taller than wide are turned a quarter counter-clockwise;
//! 5. orientation: crops sorted by aspect ratio, batches of 6 at 48×192; a crop classified 180°
//!    with probability > 0.9 is turned round;
//! 6. recognition: crops sorted by aspect ratio, batches of 6 at height 48 and the batch's
//!    widest ratio (at least 320/48), right-padded with zeros; greedy CTC (argmax, repeats
//!    merged, blanks dropped); confidence = mean probability of the kept characters;
//! 7. boxes back to the original image; lines with empty text or a confidence under the
//!    threshold (the reference's `text_score`, 0.5; shipped 0.8) are dropped, and, in the
//!    shipped settings, lines with letters of scripts other than Latin or with fewer than two
//!    letters or digits ([`is_latin_line`]).
//!
//! Pixel operations are OpenCV's, re-implemented bit for bit where it matters ([`cv`],
//! [`geom`]): the detector and recogniser see the bytes they see in Python.
//!
//! The reader is separate from the captioner and loads only when asked: captioning without text
//! costs nothing more. Beside the captioner, pass the decoded upright image to
//! [`TextReader::read_rgb`] so that the file is decoded once. Sessions sit behind mutexes, like
//! the captioner's: one reader serves every request (`Send + Sync`).
//!
//! [`compose`] turns a caption and the lines read into a caption that quotes the text.

pub mod compose;
pub mod cv;
pub mod db;
pub mod geom;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use image::RgbImage;
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::image::{decode, ImageLimits};
pub use db::DetectorSize;
use db::{DbParams, Quad};

pub use compose::{compose_caption, Layout};

/// Detector graph file in the model directory.
pub const DETECTOR_FILE: &str = "PP-OCRv6_det_small.onnx";
/// Recogniser graph file.
pub const RECOGNISER_FILE: &str = "PP-OCRv6_rec_small.onnx";
/// Orientation classifier graph file.
pub const CLASSIFIER_FILE: &str = "ch_ppocr_mobile_v2.0_cls_mobile.onnx";

/// The reference's `Global.text_score`: lines read with a lower confidence are dropped. The
/// parity fixture is recorded at this threshold.
pub const REFERENCE_MIN_CONFIDENCE: f32 = 0.5;
/// The shipped threshold (see `models/text/MODEL_CARD.md` for the spurious-line rate it gives
/// on photos without text).
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.8;

const MIN_SIDE: u32 = 30;
const MAX_SIDE: u32 = 2000;
const PAD_MIN_HEIGHT: u32 = 30;
const PAD_WIDTH_HEIGHT_RATIO: f64 = 8.0;
/// The reference's detector input rule (`limit_type: min`, `limit_side_len: 736`); the parity
/// fixture is recorded with it.
pub const REFERENCE_DETECTOR_SIZE: DetectorSize = DetectorSize::MinSide(736);
/// The shipped detector input rule (see `models/text/MODEL_CARD.md` for what it costs and
/// gives).
pub const DEFAULT_DETECTOR_SIZE: DetectorSize = DetectorSize::MaxSide(640);
const CLS_SHAPE: (usize, usize) = (48, 192);
const CLS_BATCH: usize = 6;
const CLS_THRESH: f32 = 0.9;
const REC_HEIGHT: usize = 48;
const REC_MIN_WIDTH: usize = 320;
const REC_BATCH: usize = 6;

/// How to load a text reader.
#[derive(Debug, Clone)]
pub struct TextReaderOptions {
    /// Directory holding the three graphs (`models/text`).
    pub dir: PathBuf,
    /// ONNX Runtime intra-op threads per graph.
    pub threads: usize,
    /// Explicit path of `libonnxruntime` (otherwise found as [`crate::runtime`] describes).
    pub ort_library: Option<PathBuf>,
    /// Input limits for [`TextReader::read`] (and the pixel limit for `read_rgb`).
    pub limits: ImageLimits,
    /// Lines read with a lower confidence are left out.
    pub min_confidence: f32,
    /// The detector's input size rule.
    pub detector_size: DetectorSize,
    /// Keep only lines a reader of Indonesian and English can use ([`is_latin_line`]): no
    /// letters of other scripts (the recogniser also knows CJK, which on photos without
    /// writing is its usual false reading), at least two letters or digits.
    pub latin_only: bool,
}

impl TextReaderOptions {
    /// Options for a model directory with the default threads, limits and threshold.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TextReaderOptions {
            dir: dir.into(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            ort_library: None,
            limits: ImageLimits::default(),
            min_confidence: DEFAULT_MIN_CONFIDENCE,
            detector_size: DEFAULT_DETECTOR_SIZE,
            latin_only: true,
        }
    }

    /// The Python package's settings (threshold 0.5, detector short side ≥ 736): what the
    /// parity fixture is recorded with.
    pub fn reference(dir: impl Into<PathBuf>) -> Self {
        TextReaderOptions {
            min_confidence: REFERENCE_MIN_CONFIDENCE,
            detector_size: REFERENCE_DETECTOR_SIZE,
            latin_only: false,
            ..TextReaderOptions::new(dir)
        }
    }
}

/// One line of text.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TextLine {
    /// The text, trimmed.
    pub text: String,
    /// Mean probability of its characters (0–1).
    pub confidence: f32,
    /// Corners in image pixels (upright image): top-left, top-right, bottom-right, bottom-left.
    pub polygon: [[f32; 2]; 4],
    /// Confidence of each whitespace-separated word of `text` (the lowest probability of its
    /// characters), for callers that must not quote uncertain words.
    #[serde(skip)]
    pub word_confidences: Vec<f32>,
    /// Row of the line in reading order (lines of one row are left to right).
    #[serde(skip)]
    pub row: usize,
}

impl TextLine {
    /// Height of the line's box (mean of its two sides), in pixels.
    pub fn height(&self) -> f32 {
        let d = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        let p = &self.polygon;
        (d(p[0], p[3]) + d(p[1], p[2])) / 2.0
    }

    /// Area of the line's box, in square pixels.
    pub fn area(&self) -> f32 {
        let p = &self.polygon;
        let mut a = 0.0;
        for i in 0..4 {
            let (q, r) = (p[i], p[(i + 1) % 4]);
            a += q[0] * r[1] - r[0] * q[1];
        }
        (a / 2.0).abs()
    }
}

/// Where the time went for one image, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TextTimings {
    /// Bounding, padding, detector input, detector, DB post-processing.
    pub detect_ms: f64,
    /// Crops and orientation.
    pub classify_ms: f64,
    /// Recognition.
    pub recognise_ms: f64,
}

/// The text of one image.
#[derive(Debug, Clone, Serialize)]
pub struct TextResult {
    /// Lines in reading order: rows top to bottom, each row left to right.
    pub lines: Vec<TextLine>,
    /// The whole text in reading order: a row's lines joined by spaces, rows by newlines.
    pub text: String,
    /// Upright image width.
    pub width: u32,
    /// Upright image height.
    pub height: u32,
    /// What kind of picture the text suggests.
    pub layout: Layout,
    /// Time per stage.
    #[serde(skip)]
    pub timings: TextTimings,
}

impl TextResult {
    /// Share of the image covered by line boxes (0–1).
    pub fn coverage(&self) -> f32 {
        let area: f32 = self.lines.iter().map(TextLine::area).sum();
        (area / (self.width.max(1) as f32 * self.height.max(1) as f32)).min(1.0)
    }
}

/// Identity of the loaded graphs.
#[derive(Debug, Clone, Serialize)]
pub struct TextModelInfo {
    /// Model directory name.
    pub name: String,
    /// Characters in the recogniser's dictionary.
    pub characters: usize,
    /// Time to open the graphs, in milliseconds.
    pub load_ms: f64,
}

/// A graph, its input and output names.
struct Graph {
    session: Mutex<Session>,
    input: String,
    output: String,
}

impl Graph {
    fn open(dir: &Path, file: &str, threads: usize) -> Result<Self> {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(EngineError::model(
                &path,
                "missing (see models/text/MODEL_CARD.md)",
            ));
        }
        let env = crate::runtime::environment(None)?;
        let session = crate::onnx::open_once_per_image(env, &path, threads)?;
        let input = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| EngineError::model(&path, "graph has no input"))?;
        let output = session
            .outputs()
            .first()
            .map(|o| o.name().to_string())
            .ok_or_else(|| EngineError::model(&path, "graph has no output"))?;
        Ok(Graph {
            session: Mutex::new(session),
            input,
            output,
        })
    }

    /// Runs on a `[n, 3, h, w]` tensor; returns the output's shape and values.
    fn run(&self, data: &[f32], shape: [usize; 4]) -> Result<(Vec<usize>, Vec<f32>)> {
        let input = TensorRef::from_array_view((shape, data))?;
        let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = s.run(vec![(
            Cow::from(self.input.as_str()),
            SessionInputValue::from(input),
        )])?;
        let out = outputs
            .get(&self.output)
            .ok_or_else(|| EngineError::Inference("graph returned nothing".into()))?;
        let (shape, values) = out.try_extract_tensor::<f32>()?;
        Ok((shape.iter().map(|&d| d as usize).collect(), values.to_vec()))
    }
}

/// The text reader: detector, orientation classifier, recogniser. `Send + Sync`.
pub struct TextReader {
    det: Graph,
    cls: Graph,
    rec: Graph,
    /// CTC classes: blank, the dictionary, space.
    charset: Vec<String>,
    limits: ImageLimits,
    min_confidence: f32,
    detector_size: DetectorSize,
    latin_only: bool,
    db: DbParams,
    info: TextModelInfo,
}

impl TextReader {
    /// Opens the three graphs of `opts.dir` and reads the recogniser's dictionary.
    pub fn load(opts: &TextReaderOptions) -> Result<Self> {
        let started = Instant::now();
        crate::runtime::environment(opts.ort_library.as_deref())?;
        let det = Graph::open(&opts.dir, DETECTOR_FILE, opts.threads)?;
        let cls = Graph::open(&opts.dir, CLASSIFIER_FILE, opts.threads)?;
        let rec = Graph::open(&opts.dir, RECOGNISER_FILE, opts.threads)?;
        let rec_path = opts.dir.join(RECOGNISER_FILE);
        let dictionary = {
            let s = rec.session.lock().unwrap_or_else(|p| p.into_inner());
            let meta = s
                .metadata()
                .map_err(|e| EngineError::model(&rec_path, format!("no metadata: {e}")))?;
            let chars = meta.custom("character");
            chars.ok_or_else(|| {
                EngineError::model(&rec_path, "no `character` dictionary in the graph metadata")
            })?
        };
        let mut charset: Vec<String> = vec!["blank".into()];
        charset.extend(dictionary.split('\n').map(str::to_string));
        charset.push(" ".into());
        {
            let s = rec.session.lock().unwrap_or_else(|p| p.into_inner());
            let classes = s.outputs().first().and_then(|o| match o.dtype() {
                ort::value::ValueType::Tensor { shape, .. } => {
                    shape.last().copied().filter(|&d| d > 0)
                }
                _ => None,
            });
            if let Some(c) = classes {
                if c as usize != charset.len() {
                    return Err(EngineError::model(
                        &rec_path,
                        format!(
                            "{c} output classes but {} dictionary entries + blank + space",
                            charset.len() - 2
                        ),
                    ));
                }
            }
        }
        let name = std::fs::canonicalize(&opts.dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| opts.dir.display().to_string());
        let info = TextModelInfo {
            name,
            characters: charset.len() - 2,
            load_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        Ok(TextReader {
            det,
            cls,
            rec,
            charset,
            limits: opts.limits,
            min_confidence: opts.min_confidence,
            detector_size: opts.detector_size,
            latin_only: opts.latin_only,
            db: DbParams::default(),
            info,
        })
    }

    /// What was loaded.
    pub fn info(&self) -> &TextModelInfo {
        &self.info
    }

    /// The confidence threshold in force.
    pub fn min_confidence(&self) -> f32 {
        self.min_confidence
    }

    /// The detector's input size rule in force.
    pub fn detector_size(&self) -> DetectorSize {
        self.detector_size
    }

    /// The same reader with another confidence threshold.
    pub fn with_min_confidence(mut self, min_confidence: f32) -> Self {
        self.min_confidence = min_confidence;
        self
    }

    /// Reads the text of an image file held in memory (decoded with the engine's limits, EXIF
    /// orientation applied).
    pub fn read(&self, bytes: &[u8]) -> Result<TextResult> {
        let img = decode(bytes, &self.limits)?;
        self.read_rgb(&img.rgb)
    }

    /// Reads several image files: one result per file, in order; a bad file gets its own error.
    pub fn read_images(&self, images: &[&[u8]]) -> Vec<Result<TextResult>> {
        images.iter().map(|b| self.read(b)).collect()
    }

    /// Reads the text of an already decoded, upright RGB image.
    pub fn read_rgb(&self, img: &RgbImage) -> Result<TextResult> {
        let (w, h) = img.dimensions();
        if w as u64 * h as u64 > self.limits.max_pixels {
            return Err(EngineError::TooManyPixels {
                width: w,
                height: h,
                limit_megapixels: (self.limits.max_pixels / 1_000_000) as u32,
            });
        }
        if w == 0 || h == 0 {
            return Err(EngineError::CorruptImage("image has no pixels".into()));
        }
        let mut timings = TextTimings::default();
        let t = Instant::now();
        let (work, ratio_w, ratio_h) = within_bounds(img);
        let (padded, top) = pad_vertically(&work);
        let boxes = self.detect(&padded)?;
        timings.detect_ms = t.elapsed().as_secs_f64() * 1000.0;
        let quads: Vec<Quad> = boxes.iter().map(|b| b.0).collect();
        let rows = db::rows_of(&quads);

        let t = Instant::now();
        let crops: Vec<RgbImage> = quads.iter().map(|q| crop(&padded, q)).collect();
        let crops = self.orient(crops)?;
        timings.classify_ms = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let read = self.recognise(&crops)?;
        timings.recognise_ms = t.elapsed().as_secs_f64() * 1000.0;

        let (rw, rh) = (ratio_w as f32, ratio_h as f32);
        let mut lines = Vec::new();
        for ((quad, row), (text, confidence, word_confidences)) in quads.iter().zip(rows).zip(read)
        {
            if text.trim().is_empty()
                || confidence < self.min_confidence
                || (self.latin_only && !is_latin_line(&text))
            {
                continue;
            }
            let polygon = quad.map(|[x, y]| {
                [
                    (x * rw).clamp(0.0, w as f32),
                    ((y - top as f32) * rh).clamp(0.0, h as f32),
                ]
            });
            lines.push(TextLine {
                text: text.trim().to_string(),
                confidence,
                polygon,
                word_confidences,
                row,
            });
        }
        let text = join_rows(&lines);
        let mut result = TextResult {
            lines,
            text,
            width: w,
            height: h,
            layout: Layout::Photo,
            timings,
        };
        result.layout = compose::layout_of(&result, img);
        Ok(result)
    }

    /// Detector input, run and DB post-processing: boxes in `img`'s coordinates.
    fn detect(&self, img: &RgbImage) -> Result<Vec<(Quad, f64)>> {
        let (w, h) = img.dimensions();
        let Some((dw, dh)) = db::input_size(w, h, self.detector_size) else {
            return Ok(vec![]);
        };
        let resized = cv::resize_linear(img, dw, dh);
        let plane = (dw * dh) as usize;
        let mut x = vec![0f32; 3 * plane];
        for (i, px) in resized.pixels().enumerate() {
            for c in 0..3 {
                // BGR order; (v * (1/255) - 0.5) / 0.5 with the reference's float64 mean/std.
                let v = px.0[2 - c] as f32 * (1.0f32 / 255.0);
                x[c * plane + i] = ((v as f64 - 0.5) / 0.5) as f32;
            }
        }
        let (shape, prob) = self.det.run(&x, [1, 3, dh as usize, dw as usize])?;
        let (mh, mw) = match shape.as_slice() {
            [_, _, mh, mw] => (*mh, *mw),
            _ => {
                return Err(EngineError::Inference(format!(
                    "detector output has shape {shape:?}"
                )))
            }
        };
        Ok(db::boxes_from_map(&prob[..mh * mw], mw, mh, w, h, &self.db))
    }

    /// The orientation classifier: crops read upside down are turned round.
    fn orient(&self, mut crops: Vec<RgbImage>) -> Result<Vec<RgbImage>> {
        let order = by_aspect_ratio(&crops);
        let (ch, cw) = CLS_SHAPE;
        for batch in order.chunks(CLS_BATCH) {
            let mut x = vec![0f32; batch.len() * 3 * ch * cw];
            for (b, &i) in batch.iter().enumerate() {
                let img = &crops[i];
                let ratio = img.width() as f64 / img.height() as f64;
                let rw = ((ch as f64 * ratio).ceil() as usize).min(cw);
                normalise_into(img, rw.max(1), ch, cw, &mut x[b * 3 * ch * cw..]);
            }
            let (shape, probs) = self.cls.run(&x, [batch.len(), 3, ch, cw])?;
            let classes = shape.get(1).copied().unwrap_or(2);
            for (b, &i) in batch.iter().enumerate() {
                let p = &probs[b * classes..(b + 1) * classes];
                let (label, score) = argmax(p);
                if label == 1 && score > CLS_THRESH {
                    crops[i] = cv::rotate180(&crops[i]);
                }
            }
        }
        Ok(crops)
    }

    /// The recogniser: text, confidence and per-word confidences of each crop.
    fn recognise(&self, crops: &[RgbImage]) -> Result<Vec<(String, f32, Vec<f32>)>> {
        let mut out: Vec<(String, f32, Vec<f32>)> = vec![(String::new(), 0.0, vec![]); crops.len()];
        let order = by_aspect_ratio(crops);
        for batch in order.chunks(REC_BATCH) {
            let mut max_ratio = REC_MIN_WIDTH as f64 / REC_HEIGHT as f64;
            for &i in batch {
                let r = crops[i].width() as f64 / crops[i].height() as f64;
                max_ratio = max_ratio.max(r);
            }
            let width = (REC_HEIGHT as f64 * max_ratio) as usize;
            let mut x = vec![0f32; batch.len() * 3 * REC_HEIGHT * width];
            for (b, &i) in batch.iter().enumerate() {
                let img = &crops[i];
                let ratio = img.width() as f64 / img.height() as f64;
                let rw = ((REC_HEIGHT as f64 * ratio).ceil() as usize).min(width);
                normalise_into(
                    img,
                    rw.max(1),
                    REC_HEIGHT,
                    width,
                    &mut x[b * 3 * REC_HEIGHT * width..],
                );
            }
            let (shape, probs) = self.rec.run(&x, [batch.len(), 3, REC_HEIGHT, width])?;
            let (steps, classes) = match shape.as_slice() {
                [_, t, c] => (*t, *c),
                _ => {
                    return Err(EngineError::Inference(format!(
                        "recogniser output has shape {shape:?}"
                    )))
                }
            };
            for (b, &i) in batch.iter().enumerate() {
                let rows = &probs[b * steps * classes..(b + 1) * steps * classes];
                out[i] = ctc_decode(rows, steps, classes, &self.charset);
            }
        }
        Ok(out)
    }
}

/// A text reader opened on first use, for callers that may never need one (captioning without
/// text must not pay for it). A failed load is remembered and reported on every call.
pub struct LazyTextReader {
    opts: TextReaderOptions,
    cell: OnceLock<Result<TextReader>>,
}

impl LazyTextReader {
    /// Nothing is opened until [`LazyTextReader::get`].
    pub fn new(opts: TextReaderOptions) -> Self {
        LazyTextReader {
            opts,
            cell: OnceLock::new(),
        }
    }

    /// The reader, loading it on the first call.
    pub fn get(&self) -> Result<&TextReader> {
        match self.cell.get_or_init(|| TextReader::load(&self.opts)) {
            Ok(r) => Ok(r),
            Err(e) => Err(e.duplicate()),
        }
    }

    /// Whether the reader has been loaded (successfully or not).
    pub fn is_loaded(&self) -> bool {
        self.cell.get().is_some()
    }
}

/// The reference's `resize_image_within_bounds`: the image and the factors that map its
/// coordinates back to the original's.
fn within_bounds(img: &RgbImage) -> (Cow<'_, RgbImage>, f64, f64) {
    let (ow, oh) = img.dimensions();
    let r32 = |v: f64| ((v as u32 as f64 / 32.0).round_ties_even() * 32.0) as u32;
    let mut cur: Cow<'_, RgbImage> = Cow::Borrowed(img);
    let (w, h) = (ow as f64, oh as f64);
    if ow.max(oh) > MAX_SIDE {
        let ratio = MAX_SIDE as f64 / w.max(h);
        let (rw, rh) = (r32(w * ratio).max(1), r32(h * ratio).max(1));
        cur = Cow::Owned(cv::resize_linear(img, rw, rh));
    }
    let (cw, ch) = cur.dimensions();
    if cw.min(ch) < MIN_SIDE {
        let ratio = MIN_SIDE as f64 / (cw.min(ch) as f64);
        let (rw, rh) = (
            r32(cw as f64 * ratio).max(32),
            r32(ch as f64 * ratio).max(32),
        );
        cur = Cow::Owned(cv::resize_linear(&cur, rw, rh));
    }
    // Factors relative to the original (the reference keeps only the last step's, which
    // differs when both steps apply, an image over 2000 px long and under 30 px thin).
    let (fw, fh) = cur.dimensions();
    (cur, w / fw as f64, h / fh as f64)
}

/// The reference's `apply_vertical_padding`: black bands above and below flat images.
fn pad_vertically(img: &RgbImage) -> (Cow<'_, RgbImage>, u32) {
    let (w, h) = img.dimensions();
    if h > PAD_MIN_HEIGHT && (w as f64 / h as f64) <= PAD_WIDTH_HEIGHT_RATIO {
        return (Cow::Borrowed(img), 0);
    }
    let new_h = ((w as f64 / PAD_WIDTH_HEIGHT_RATIO) as u32).max(PAD_MIN_HEIGHT) * 2;
    let pad = (new_h as i64 - h as i64).unsigned_abs() as u32 / 2;
    let mut out = RgbImage::new(w, h + 2 * pad);
    image::imageops::replace(&mut out, img, 0, pad as i64);
    (Cow::Owned(out), pad)
}

/// The reference's `get_rotate_crop_image`.
fn crop(img: &RgbImage, q: &Quad) -> RgbImage {
    let d = |a: [f32; 2], b: [f32; 2]| {
        ((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1])).sqrt()
    };
    let w = d(q[0], q[1]).max(d(q[2], q[3])) as u32;
    let h = d(q[0], q[3]).max(d(q[1], q[2])) as u32;
    let (wf, hf) = (w as f32, h as f32);
    let std = [[0.0, 0.0], [wf, 0.0], [wf, hf], [0.0, hf]];
    let warped = cv::perspective_transform(q, &std)
        .and_then(|m| cv::invert3(&m))
        .map(|inv| cv::warp_perspective_cubic(img, &inv, w.max(1), h.max(1)))
        .unwrap_or_else(|| RgbImage::new(w.max(1), h.max(1)));
    if warped.height() as f64 / warped.width() as f64 >= 1.5 {
        cv::rotate90_ccw(&warped)
    } else {
        warped
    }
}

/// Indices sorted by width / height (stable), as the reference batches crops.
fn by_aspect_ratio(crops: &[RgbImage]) -> Vec<usize> {
    let ratios: Vec<f64> = crops
        .iter()
        .map(|c| c.width() as f64 / c.height() as f64)
        .collect();
    let mut order: Vec<usize> = (0..crops.len()).collect();
    order.sort_by(|&a, &b| ratios[a].total_cmp(&ratios[b]));
    order
}

/// Resizes to `rw × h`, normalises to [-1, 1] in BGR order and writes a `[3, h, width]`
/// zero-padded tensor into `out`.
fn normalise_into(img: &RgbImage, rw: usize, h: usize, width: usize, out: &mut [f32]) {
    let resized = cv::resize_linear(img, rw as u32, h as u32);
    let plane = h * width;
    for (y, row) in resized.rows().enumerate() {
        for (x, px) in row.enumerate() {
            for c in 0..3 {
                let v = px.0[2 - c] as f32 / 255.0;
                out[c * plane + y * width + x] = (v - 0.5) / 0.5;
            }
        }
    }
}

fn argmax(p: &[f32]) -> (usize, f32) {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, &v) in p.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

/// Greedy CTC as the reference's `CTCLabelDecode`: per step the most probable class; repeats
/// merged, blanks dropped; confidence = mean of the kept steps' probabilities (each rounded to
/// 5 decimals, then the mean), 0 when nothing is kept.
fn ctc_decode(
    probs: &[f32],
    steps: usize,
    classes: usize,
    charset: &[String],
) -> (String, f32, Vec<f32>) {
    let mut text = String::new();
    let mut confs: Vec<f64> = Vec::new();
    let mut words: Vec<f32> = Vec::new();
    let mut word_min: Option<f32> = None;
    let mut prev = usize::MAX;
    for t in 0..steps {
        let (idx, p) = argmax(&probs[t * classes..(t + 1) * classes]);
        let keep = idx != prev && idx != 0;
        prev = idx;
        if !keep {
            continue;
        }
        let ch = charset.get(idx).map(String::as_str).unwrap_or("");
        text.push_str(ch);
        confs.push(((p as f64) * 1e5).round() / 1e5);
        if ch.trim().is_empty() {
            if let Some(m) = word_min.take() {
                words.push(m);
            }
        } else {
            word_min = Some(word_min.map_or(p, |m| m.min(p)));
        }
    }
    if let Some(m) = word_min {
        words.push(m);
    }
    let mean = if confs.is_empty() {
        0.0
    } else {
        confs.iter().sum::<f64>() / confs.len() as f64
    };
    (text, ((mean * 1e5).round() / 1e5) as f32, words)
}

/// Whether a line is of use to a reader of Latin-script languages: every letter Latin (Basic
/// Latin, Latin-1, Latin Extended-A/B, Latin Extended Additional), at least two letters or
/// digits.
pub fn is_latin_line(text: &str) -> bool {
    let latin = |c: char| {
        matches!(c as u32, 0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F | 0x1E00..=0x1EFF)
            && c != '×'
            && c != '÷'
    };
    text.chars().all(|c| !c.is_alphabetic() || latin(c))
        && text.chars().filter(|c| c.is_alphanumeric()).count() >= 2
}

/// The whole text: a row's lines joined by spaces, rows by newlines.
fn join_rows(lines: &[TextLine]) -> String {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push(if lines[i - 1].row == l.row { ' ' } else { '\n' });
        }
        out.push_str(&l.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charset() -> Vec<String> {
        ["blank", "A", "B", "C", " "]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn steps(seq: &[(usize, f32)]) -> Vec<f32> {
        let mut v = vec![0f32; seq.len() * 5];
        for (t, &(i, p)) in seq.iter().enumerate() {
            v[t * 5 + i] = p;
            v[t * 5] += (1.0 - p) * (i != 0) as u8 as f32;
        }
        v
    }

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let p = steps(&[
            (1, 0.9),
            (1, 0.8),
            (0, 0.99),
            (1, 0.7),
            (4, 0.9),
            (2, 0.55),
            (3, 0.6),
        ]);
        let (text, conf, words) = ctc_decode(&p, 7, 5, &charset());
        assert_eq!(text, "AA BC");
        assert!(
            (conf - (0.9 + 0.7 + 0.9 + 0.55 + 0.6) / 5.0).abs() < 1e-5,
            "{conf}"
        );
        assert_eq!(words, vec![0.7, 0.55]);
        let (text, conf, words) = ctc_decode(&steps(&[(0, 0.9)]), 1, 5, &charset());
        assert_eq!((text.as_str(), conf, words.len()), ("", 0.0, 0));
    }

    #[test]
    fn latin_lines() {
        for t in [
            "JALAN DITUTUP",
            "Kopi Susu Gula Aren",
            "Ñandú 24",
            "Hà Nội",
            "28",
        ] {
            assert!(is_latin_line(t), "{t}");
        }
        for t in ["七", "信LG", "H", "Москва", "-", ""] {
            assert!(!is_latin_line(t), "{t}");
        }
    }

    #[test]
    fn rows_join_with_spaces_and_newlines() {
        let line = |t: &str, row| TextLine {
            text: t.into(),
            confidence: 0.9,
            polygon: [[0.0; 2]; 4],
            word_confidences: vec![],
            row,
        };
        let lines = [line("JALAN", 0), line("DITUTUP", 0), line("Buka 24 jam", 1)];
        assert_eq!(join_rows(&lines), "JALAN DITUTUP\nBuka 24 jam");
    }

    #[test]
    fn flat_images_are_padded_and_huge_ones_bounded() {
        let img = RgbImage::new(400, 20);
        let (p, top) = pad_vertically(&img);
        assert_eq!((p.height(), top), (20 + 2 * 40, 40));
        let img = RgbImage::new(3000, 1000);
        let (b, rw, rh) = within_bounds(&img);
        // Python: round(2000 / 32) == 62 (half to even), so 1984 wide.
        assert_eq!(b.dimensions(), (1984, 672));
        assert!((rw - 3000.0 / 1984.0).abs() < 1e-12 && (rh - 1000.0 / 672.0).abs() < 1e-12);
    }
}
