//! Captioning: running the engine through the bounded inference queue, post-processing its
//! captions (short style, gender-neutral wording, distinct alternatives), and what a caption
//! leaves behind for the caller ([`caption_and_record`] is the one place a caption is made
//! and recorded, for the API, the web page and batch jobs alike).
//!
//! With the `text` feature the engine reads the text of each image from the pixels it decodes
//! for captioning (the text reader is loaded on the first such request, and runs under the same
//! queue place as the captioner); the best caption of each language then quotes prominent
//! text ([`takarir_engine::compose_caption`]).
//!
//! Anonymous captions write only the aggregate counters (`usage_daily`). A signed-in user's
//! captions also add to their own counters; to their history only while history is on (text,
//! settings, time, image size and format: never the image or its EXIF); and, only while
//! training consent stands, the image's pixels (re-encoded as PNG, so without EXIF; encrypted)
//! and the final caption to the training store.

use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use takarir_engine::{compose_caption, Captioner, ImageCaptions, LazyTextReader, TextResult};
use takarir_store::consents::PURPOSE_TRAINING;
use takarir_store::erasure::user_prefix;
use takarir_store::history::NewHistoryEntry;
use takarir_store::training::NewTrainingItem;
use takarir_store::users::User;
use takarir_store::Sensitivity;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::i18n::Lang;
use crate::metrics::Metrics;
use crate::options::{CaptionOptions, Style, SHORT_WORDS};
use crate::service::accounts::auth::random_token;
use crate::state::{AppState, QueuePermit};

/// One caption in a response.
#[derive(Debug, Clone, Serialize, ToSchema, Deserialize)]
pub struct CaptionOut {
    /// Caption text.
    pub text: String,
    /// Language code.
    pub lang: String,
    /// The captioner's raw log-probability score (length-penalised; higher is better;
    /// comparable within one image and language only). Not a probability: see `confidence`.
    pub score: f32,
    /// Calibrated chance, 0 to 1, that the caption names no object that is not in the photo
    /// (from the detector, the tagger and the caption; fitted on dev photos). Absent for models
    /// without a detector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: Option<f32>,
    /// `true` when a person should check the caption before using it as alt text: the
    /// confidence is low, or the caption names something the detector and tagger do not see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_review: Option<bool>,
    /// Where the text comes from: `model` (the captioner), `constrained` (the captioner with
    /// unseen objects' words forbidden) or `template` (built from the detected objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CaptionSource>,
    /// The model's token ids (the CLI's parity output; never sent by the service).
    #[serde(skip)]
    pub tokens: Vec<u32>,
    /// Grounding's review features (the CLI's calibration output; never sent by the service).
    #[serde(skip)]
    pub review_features: Vec<f32>,
}

/// Where a caption's text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptionSource {
    /// The captioner's own caption.
    Model,
    /// The captioner, decoding again with the words of unseen objects forbidden.
    Constrained,
    /// A sentence built from the detected objects.
    Template,
}

impl From<takarir_engine::grounding::Source> for CaptionSource {
    fn from(s: takarir_engine::grounding::Source) -> Self {
        use takarir_engine::grounding::Source as S;
        match s {
            S::Model => CaptionSource::Model,
            S::Constrained => CaptionSource::Constrained,
            S::Template => CaptionSource::Template,
        }
    }
}

/// An object the detector found.
#[derive(Debug, Clone, Serialize, ToSchema, Deserialize)]
pub struct ObjectOut {
    /// Class name in English (`cat`, `table`).
    pub name_en: String,
    /// Class name in Indonesian (`kucing`, `meja`).
    pub name_id: String,
    /// Stable class identifier (one of the 80 COCO classes, e.g. `dining table`).
    pub class: String,
    /// Detector score, 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: f32,
    /// Where: pixels of the upright image.
    #[serde(rename = "box")]
    pub bbox: BoxOut,
}

/// A box in pixels of the upright image.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, Deserialize)]
pub struct BoxOut {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// A tag: an everyday word for what the photo shows.
#[derive(Debug, Clone, Serialize, ToSchema, Deserialize)]
pub struct TagOut {
    /// English.
    pub name_en: String,
    /// Indonesian.
    pub name_id: String,
    /// Confidence, 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: f32,
}

/// The text read in an image.
#[derive(Debug, Clone, Serialize, ToSchema, Deserialize)]
pub struct TextOut {
    /// Lines in reading order: rows top to bottom, each row left to right. Only lines read
    /// with enough confidence, in Latin script.
    pub lines: Vec<TextLineOut>,
    /// The whole text in reading order: a row's lines joined by spaces, rows by newlines.
    pub full_text: String,
    /// What the text suggests the picture is: `photo` (a scene with some writing),
    /// `document` or `screenshot` (mostly text).
    pub layout: TextLayout,
}

/// One line of text.
#[derive(Debug, Clone, Serialize, ToSchema, Deserialize)]
pub struct TextLineOut {
    /// The text.
    pub text: String,
    /// Mean probability of its characters, 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: f32,
    /// The line's four corners, `[x, y]` in pixels of the upright image: top-left, top-right,
    /// bottom-right, bottom-left (of the text's own direction).
    #[schema(value_type = Vec<Vec<u32>>)]
    pub polygon: [[u32; 2]; 4],
}

/// What kind of picture the text suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TextLayout {
    /// A scene that may hold some writing (a sign, a label).
    Photo,
    /// Mostly text: a page, a menu, a letter.
    Document,
    /// Mostly text on flat colours: a screen capture.
    Screenshot,
}

impl From<&TextResult> for TextOut {
    fn from(t: &TextResult) -> Self {
        let clamp = |v: f32, side: u32| v.round().clamp(0.0, side as f32) as u32;
        TextOut {
            lines: t
                .lines
                .iter()
                .map(|l| TextLineOut {
                    text: l.text.clone(),
                    confidence: l.confidence,
                    polygon: l
                        .polygon
                        .map(|[x, y]| [clamp(x, t.width), clamp(y, t.height)]),
                })
                .collect(),
            full_text: t.text.clone(),
            layout: match t.layout {
                takarir_engine::Layout::Photo => TextLayout::Photo,
                takarir_engine::Layout::Document => TextLayout::Document,
                takarir_engine::Layout::Screenshot => TextLayout::Screenshot,
            },
        }
    }
}

/// The image as decoded (upright).
#[derive(Debug, Clone, Serialize, ToSchema, Deserialize)]
pub struct ImageOut {
    /// Upright width in pixels (EXIF orientation applied).
    pub width: u32,
    /// Upright height in pixels.
    pub height: u32,
    /// Container format (`jpeg`, `png`, ...).
    pub format: String,
}

/// Whether the file carried GPS coordinates. Their values are never read out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gps {
    /// The file has GPS tags (not returned).
    Present,
    /// No GPS tags.
    Absent,
}

/// EXIF summary.
#[derive(Debug, Clone, Serialize, ToSchema, Deserialize)]
pub struct MetadataOut {
    /// Camera make and model.
    pub camera: Option<String>,
    /// Date taken, as written in the file.
    pub date_taken: Option<String>,
    /// EXIF orientation (1–8).
    #[schema(minimum = 1, maximum = 8)]
    pub orientation: Option<u16>,
    /// `present` or `absent`; coordinates are never returned.
    pub gps: Gps,
}

/// A captioned image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaptionedImage {
    /// Best first; for `lang=both`, Indonesian then English. Empty unless `caption` is asked.
    pub captions: Vec<CaptionOut>,
    /// Detected objects, best first, when `objects` is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<ObjectOut>>,
    /// Tags, most confident first, when `tags` is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagOut>>,
    /// The text in the image, when `text` is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextOut>,
    /// Image facts.
    pub image: ImageOut,
    /// EXIF summary.
    pub metadata: MetadataOut,
}

/// Per-image result in a batch answer: captions or the image's own problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchItem {
    /// The uploaded file's name.
    pub filename: Option<String>,
    /// Captions, when the image was captioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captions: Option<Vec<CaptionOut>>,
    /// Detected objects, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<ObjectOut>>,
    /// Tags, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagOut>>,
    /// The text in the image, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextOut>,
    /// Image facts, when captioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOut>,
    /// EXIF summary, when captioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataOut>,
    /// This image's problem, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

impl BatchItem {
    /// The item for one image's outcome; a failure as a problem in `lang` with `request_id`.
    pub fn of(
        filename: Option<String>,
        outcome: Result<CaptionedImage, ApiError>,
        lang: Lang,
        request_id: &str,
    ) -> BatchItem {
        match outcome {
            Ok(c) => BatchItem {
                filename,
                captions: Some(c.captions),
                objects: c.objects,
                tags: c.tags,
                text: c.text,
                image: Some(c.image),
                metadata: Some(c.metadata),
                error: None,
            },
            Err(e) => BatchItem {
                filename,
                captions: None,
                objects: None,
                tags: None,
                text: None,
                image: None,
                metadata: None,
                error: Some(e.problem(lang, request_id)),
            },
        }
    }
}

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The client's file name, if any (never logged).
    pub filename: Option<String>,
    /// The file's bytes (memory only).
    pub bytes: Bytes,
}

/// The outcome for one image.
#[derive(Debug, Clone)]
pub struct ImageResult {
    /// The client's file name.
    pub filename: Option<String>,
    /// Captions or the image's own error.
    pub outcome: Result<CaptionedImage, ApiError>,
}

/// Captions `uploads` with `opts` (a place already taken in the bounded queue), then records
/// for `user` what the policy lets it record: what the caption endpoint, the web page and
/// batch jobs all do.
pub async fn caption_and_record(
    state: &AppState,
    permit: QueuePermit,
    uploads: Vec<Upload>,
    opts: &CaptionOptions,
    user: Option<&User>,
) -> Result<Vec<ImageResult>, ApiError> {
    if uploads.is_empty() {
        return Err(ApiError::NoImage);
    }
    let captioner = state.captioner().clone();
    let text = state.text_reader().clone();
    let langs = opts.languages(&captioner.info().languages, captioner.default_language())?;
    let task_opts = opts.clone();
    let metrics = state.metrics().clone();
    let images: Vec<Bytes> = uploads.iter().map(|u| u.bytes.clone()).collect();
    let outcomes = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let images: Vec<&[u8]> = images.iter().map(|b| b.as_ref()).collect();
        let started = Instant::now();
        let out = caption_images(&captioner, &text, &images, &task_opts, &langs, |_| {});
        metrics
            .inference_seconds
            .observe(started.elapsed().as_secs_f64());
        out
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "caption task failed");
        ApiError::Internal
    })?;
    for o in &outcomes {
        count_outcome(state.metrics(), o);
    }
    record_captions(state, user, &uploads, &outcomes, opts).await;
    Ok(uploads
        .into_iter()
        .zip(outcomes)
        .map(|(u, outcome)| ImageResult {
            filename: u.filename,
            outcome,
        })
        .collect())
}

/// Counts one image's outcome in the `images` metric.
pub fn count_outcome(metrics: &Metrics, outcome: &Result<CaptionedImage, ApiError>) {
    let label = match outcome {
        Ok(_) => "captioned",
        Err(e) => e.code(),
    };
    metrics.images.with_label_values(&[label]).inc();
}

/// Captions `images` in every language of `langs` with `opts` (checked by the caller with
/// [`CaptionOptions::languages`]), each image decoded and encoded once and its captions
/// generated once per language. `tune` may adjust the engine settings of each language (the
/// CLI's decoding flags; the service passes `|_| {}`). With the `text` feature, `text` is
/// loaded (once) and reads every image; a text model that cannot be loaded fails every image
/// with [`ApiError::TextUnavailable`]. Blocking: call it on a blocking thread.
pub fn caption_images(
    captioner: &Captioner,
    text: &LazyTextReader,
    images: &[&[u8]],
    opts: &CaptionOptions,
    langs: &[String],
    tune: impl Fn(&mut takarir_engine::CaptionOptions),
) -> Vec<Result<CaptionedImage, ApiError>> {
    let per_lang: Vec<_> = langs
        .iter()
        .map(|l| {
            let mut o = opts.engine_options(l);
            tune(&mut o);
            o
        })
        .collect();
    use crate::options::Feature;
    let features = takarir_engine::Features {
        caption: opts.features.contains(Feature::Caption),
        objects: opts.features.contains(Feature::Objects),
        tags: opts.features.contains(Feature::Tags),
    };
    let reader = if opts.features.contains(Feature::Text) {
        match text.get() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "text model unavailable");
                return images
                    .iter()
                    .map(|_| Err(ApiError::TextUnavailable))
                    .collect();
            }
        }
    } else {
        None
    };
    let (results, _timings) = captioner.analyze_images_reading(images, &per_lang, features, reader);
    results
        .into_iter()
        .map(|r| r.map_err(ApiError::from).map(|ic| convert(ic, opts)))
        .collect()
}

fn convert(ic: ImageCaptions, opts: &CaptionOptions) -> CaptionedImage {
    let mut captions: Vec<CaptionOut> = Vec::new();
    for c in ic.captions {
        let lang = c.lang.unwrap_or_else(|| "en".into());
        // A byte-level tokenizer can end on half a character; drop the replacement marks.
        let mut text = c.text.replace('\u{FFFD}', "").trim().to_string();
        if opts.gender_neutral {
            text = gender_neutral(&text, &lang);
        }
        if opts.style == Style::Short {
            text = shorten(&text, SHORT_WORDS);
        }
        // Alternatives are counted, and repeats dropped, within each language.
        let key = text.to_lowercase();
        let same_lang = captions.iter().filter(|x| x.lang == lang);
        if key.is_empty() || same_lang.clone().any(|x| x.text.to_lowercase() == key) {
            continue;
        }
        if same_lang.count() < usize::from(opts.alternatives) {
            captions.push(CaptionOut {
                text,
                lang,
                score: c.score,
                confidence: c.confidence,
                needs_review: c.needs_review,
                source: c.source.map(CaptionSource::from),
                tokens: c.tokens,
                review_features: c.review_features,
            });
        }
    }
    if let Some(t) = &ic.text {
        // The best caption of each language quotes the text; alternatives stay as written
        // (for a document, composing replaces the caption, and they would all be one).
        let mut done: Vec<String> = Vec::new();
        for c in captions.iter_mut() {
            if !done.contains(&c.lang) {
                c.text = compose_caption(&c.text, &c.lang, &t.lines, t.layout);
                done.push(c.lang.clone());
            }
        }
    }
    let text = ic.text.as_ref().map(TextOut::from);
    let objects = ic.objects.map(|os| {
        os.into_iter()
            .map(|o| ObjectOut {
                name_en: o.name_en,
                name_id: o.name_id,
                class: o.class,
                confidence: o.confidence,
                bbox: BoxOut {
                    x: o.bbox[0],
                    y: o.bbox[1],
                    width: o.bbox[2],
                    height: o.bbox[3],
                },
            })
            .collect()
    });
    let tags = ic.tags.map(|ts| {
        ts.into_iter()
            .map(|t| TagOut {
                name_en: t.name_en,
                name_id: t.name_id,
                confidence: t.confidence,
            })
            .collect()
    });
    CaptionedImage {
        captions,
        objects,
        tags,
        text,
        image: ImageOut {
            width: ic.width,
            height: ic.height,
            format: ic.format.to_string(),
        },
        metadata: MetadataOut {
            camera: ic.metadata.camera,
            date_taken: ic.metadata.date_taken,
            orientation: ic.metadata.orientation,
            gps: if ic.metadata.gps_present {
                Gps::Present
            } else {
                Gps::Absent
            },
        },
    }
}

/// Keeps at most `max` words, cutting between words, without dangling punctuation.
pub fn shorten(text: &str, max: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= max {
        return words.join(" ");
    }
    words[..max]
        .join(" ")
        .trim_end_matches([',', ';', ':', '-', '–'])
        .to_string()
}

/// Gendered person words and their neutral replacements; longer phrases first.
const NEUTRAL_EN: &[(&str, &str)] = &[
    ("gentlemen", "people"),
    ("gentleman", "person"),
    ("ladies", "people"),
    ("lady", "person"),
    ("women", "people"),
    ("woman", "person"),
    ("men", "people"),
    ("man", "person"),
    ("boys", "children"),
    ("boy", "child"),
    ("girls", "children"),
    ("girl", "child"),
    ("guys", "people"),
    ("guy", "person"),
    ("businessmen", "businesspeople"),
    ("businessman", "businessperson"),
    ("businesswomen", "businesspeople"),
    ("businesswoman", "businessperson"),
];

const NEUTRAL_ID: &[(&str, &str)] = &[
    ("anak laki-laki", "anak"),
    ("anak perempuan", "anak"),
    ("anak lelaki", "anak"),
    ("seorang laki-laki", "seseorang"),
    ("seorang lelaki", "seseorang"),
    ("seorang perempuan", "seseorang"),
    ("seorang pria", "seseorang"),
    ("seorang wanita", "seseorang"),
    ("para pria", "orang-orang"),
    ("para wanita", "orang-orang"),
    ("para perempuan", "orang-orang"),
    ("laki-laki", "orang"),
    ("lelaki", "orang"),
    ("perempuan", "orang"),
    ("pria", "orang"),
    ("wanita", "orang"),
    ("cowok", "orang"),
    ("cewek", "orang"),
];

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-'
}

/// Rewrites gendered person words to neutral ones, whole words only, keeping a leading capital.
pub fn gender_neutral(text: &str, lang: &str) -> String {
    let table = if lang == "id" { NEUTRAL_ID } else { NEUTRAL_EN };
    let lower = text.to_lowercase();
    // Lower-casing can change byte lengths for some scripts; then leave the text alone.
    if lower.len() != text.len() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'outer: while i < text.len() {
        let at_boundary = text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c));
        if at_boundary {
            for (from, to) in table {
                if lower[i..].starts_with(from) {
                    let end = i + from.len();
                    if text[end..].chars().next().is_none_or(|c| !is_word_char(c)) {
                        let original = &text[i..end];
                        if original.chars().next().is_some_and(char::is_uppercase) {
                            let mut cs = to.chars();
                            if let Some(f) = cs.next() {
                                out.extend(f.to_uppercase());
                                out.push_str(cs.as_str());
                            }
                        } else {
                            out.push_str(to);
                        }
                        i = end;
                        continue 'outer;
                    }
                }
            }
        }
        let c = text[i..].chars().next().expect("i is a char boundary");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// What a caption request leaves behind: the aggregate counters always; for a signed-in user,
/// their counters, their history while it is on, and training items while consent stands.
/// Failures are logged, never the caller's problem (the captions are already made).
pub async fn record_captions(
    state: &AppState,
    user: Option<&User>,
    uploads: &[Upload],
    outcomes: &[Result<CaptionedImage, ApiError>],
    opts: &CaptionOptions,
) {
    if let Err(e) = try_record(state, user, uploads, outcomes, opts).await {
        tracing::error!(error = ?e, "recording captions failed");
    }
}

async fn try_record(
    state: &AppState,
    user: Option<&User>,
    uploads: &[Upload],
    outcomes: &[Result<CaptionedImage, ApiError>],
    opts: &CaptionOptions,
) -> Result<(), ApiError> {
    let st = state.storage();
    let db = &st.db;
    let today = OffsetDateTime::now_utc().date();
    let style = opts.style.as_str();
    let prefs = match user {
        Some(u) => Some(db.preferences().get_or_default(u.id).await?),
        None => None,
    };
    let training = match (user, &prefs) {
        (Some(u), Some(p)) if p.training_consent => {
            db.consents().is_granted(u.id, PURPOSE_TRAINING).await?
        }
        _ => false,
    };
    for (i, outcome) in outcomes.iter().enumerate() {
        let Ok(c) = outcome else { continue };
        // The best caption per language, in order.
        let mut best: Vec<(&str, &str)> = Vec::new();
        for cap in &c.captions {
            if !best.iter().any(|(l, _)| *l == cap.lang) {
                best.push((cap.lang.as_str(), cap.text.as_str()));
            }
        }
        let mut first_history = None;
        for (lang, text) in &best {
            db.usage().add(today, lang, style, 1).await?;
            let (Some(u), Some(p)) = (user, &prefs) else {
                continue;
            };
            db.user_usage().add(u.id, today, lang, style, 1).await?;
            if p.history_enabled {
                let h = db
                    .history()
                    .create(
                        u.id,
                        NewHistoryEntry {
                            caption: text,
                            lang,
                            style,
                            width: c.image.width,
                            height: c.image.height,
                            format: &c.image.format,
                        },
                    )
                    .await?;
                first_history.get_or_insert(h.id);
            }
        }
        if let (true, Some(u), Some((lang, text)), Some(upload)) =
            (training, user, best.first(), uploads.get(i))
        {
            let Some(png) = clean_copy(state, upload).await else {
                continue;
            };
            let path = format!("{}/training/{}", user_prefix(u.id), random_token());
            st.blobs.put(&path, &png, Sensitivity::Personal).await?;
            db.training()
                .create(
                    u.id,
                    NewTrainingItem {
                        object_path: &path,
                        history_id: first_history,
                        caption: text,
                        lang,
                        format: "png",
                    },
                )
                .await?;
        }
    }
    Ok(())
}

/// The training copy of an upload: its pixels, upright, as a PNG, so that no EXIF value
/// (GPS position, camera serial, ...) and nothing else of the original file is kept. Made only
/// while training consent stands; it decodes the image once more, since the engine keeps its
/// decoded pixels to itself.
async fn clean_copy(state: &AppState, upload: &Upload) -> Option<Vec<u8>> {
    let bytes = upload.bytes.clone();
    let limits = state.config().image_limits();
    tokio::task::spawn_blocking(move || {
        let decoded = takarir_engine::image::decode(&bytes, &limits).ok()?;
        let mut out = std::io::Cursor::new(Vec::new());
        decoded
            .rgb
            .write_to(&mut out, image::ImageFormat::Png)
            .ok()?;
        Some(out.into_inner())
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_cuts_at_word_boundary() {
        let long = "a b c d e f g h i j k, l m n";
        assert_eq!(shorten(long, 12), "a b c d e f g h i j k, l");
        assert_eq!(
            shorten("a b c d e f g h i j k, l m", 11),
            "a b c d e f g h i j k"
        );
        assert_eq!(shorten("  two   words ", 12), "two words");
    }

    #[test]
    fn gender_neutral_english_and_indonesian() {
        assert_eq!(
            gender_neutral("A man and two women walk with a girl's dog", "en"),
            "A person and two people walk with a child's dog"
        );
        assert_eq!(
            gender_neutral("Manhattan mansion, human", "en"),
            "Manhattan mansion, human"
        );
        assert_eq!(gender_neutral("Boys playing", "en"), "Children playing");
        assert_eq!(
            gender_neutral("seorang pria dan anak perempuan di pantai", "id"),
            "seseorang dan anak di pantai"
        );
        assert_eq!(
            gender_neutral("Dua wanita dan laki-laki; priaku", "id"),
            "Dua orang dan orang; priaku"
        );
        assert_eq!(gender_neutral("Pria itu", "id"), "Orang itu");
    }
}
