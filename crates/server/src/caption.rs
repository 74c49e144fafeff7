//! Caption options, reading uploads from a request, running the engine through the bounded
//! inference queue, and post-processing captions (short style, gender-neutral wording,
//! distinct alternatives).

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Request};
use axum::http::header;
use serde::Serialize;
use takarir_engine::{CaptionOptions, ImageCaptions};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::i18n::Lang;
use crate::{AppState, QueuePermit};

/// Most alternatives a request may ask for.
pub const MAX_ALTERNATIVES: usize = 5;
/// Most words in a `short` caption.
pub const SHORT_WORDS: usize = 12;

/// Caption style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// At most 12 words, cut at a word boundary.
    Short,
    /// One sentence (the model's natural length).
    #[default]
    Sentence,
    /// Longer: wider beam, length penalty above 1, more tokens.
    Detailed,
}

impl Style {
    /// The option value.
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Short => "short",
            Style::Sentence => "sentence",
            Style::Detailed => "detailed",
        }
    }
}

/// Requested caption language(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LangChoice {
    /// Indonesian.
    Id,
    /// English.
    En,
    /// Indonesian and English.
    Both,
}

/// Options of one caption request (query string or form fields).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// Caption language; `None` is the model's default (Indonesian first).
    pub lang: Option<LangChoice>,
    /// Style.
    pub style: Style,
    /// Distinct captions per image and language, 1..=5.
    pub alternatives: usize,
    /// Rewrite gendered person words to neutral ones.
    pub gender_neutral: bool,
}

impl Options {
    /// Reads options from name/value pairs; unknown names are ignored, empty values mean the
    /// default. Later pairs override earlier ones.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Options, ApiError> {
        let mut o = Options {
            alternatives: 1,
            ..Options::default()
        };
        for (name, value) in pairs {
            let v = value.trim();
            let bad = |expected| ApiError::InvalidOption {
                name: name.to_string(),
                value: truncate_chars(value, 40),
                expected,
            };
            match name {
                "lang" if v.is_empty() => o.lang = None,
                "lang" => {
                    o.lang = Some(match v.to_ascii_lowercase().as_str() {
                        "id" => LangChoice::Id,
                        "en" => LangChoice::En,
                        "both" => LangChoice::Both,
                        _ => return Err(bad("id, en, both")),
                    })
                }
                "style" if v.is_empty() => o.style = Style::default(),
                "style" => {
                    o.style = match v.to_ascii_lowercase().as_str() {
                        "short" => Style::Short,
                        "sentence" => Style::Sentence,
                        "detailed" => Style::Detailed,
                        _ => return Err(bad("short, sentence, detailed")),
                    }
                }
                "alternatives" if v.is_empty() => o.alternatives = 1,
                "alternatives" => {
                    o.alternatives = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_ALTERNATIVES).contains(n))
                        .ok_or_else(|| bad("1..5"))?
                }
                "gender_neutral" => {
                    o.gender_neutral = match v.to_ascii_lowercase().as_str() {
                        "" | "0" | "false" | "off" | "no" => false,
                        "1" | "true" | "on" | "yes" => true,
                        _ => return Err(bad("true, false")),
                    }
                }
                _ => {}
            }
        }
        Ok(o)
    }

    /// The languages to caption in, checked against the model's.
    pub fn languages(&self, supported: &[String], default: &str) -> Result<Vec<String>, ApiError> {
        let wanted: Vec<&str> = match self.lang {
            None => vec![default],
            Some(LangChoice::Id) => vec!["id"],
            Some(LangChoice::En) => vec!["en"],
            Some(LangChoice::Both) => vec!["id", "en"],
        };
        for l in &wanted {
            if !supported.iter().any(|s| s == l) {
                return Err(ApiError::LanguageNotSupported {
                    lang: if self.lang == Some(LangChoice::Both) {
                        "both".into()
                    } else {
                        l.to_string()
                    },
                    supported: supported.to_vec(),
                });
            }
        }
        Ok(wanted.into_iter().map(String::from).collect())
    }

    /// Engine settings for one language.
    pub fn engine_options(&self, lang: &str) -> CaptionOptions {
        let (beams, max_tokens, length_penalty, min_tokens) = match self.style {
            Style::Short => (3, 20, 1.0, None),
            Style::Sentence => (3, 30, 1.0, None),
            Style::Detailed => (5, 50, 1.5, Some(8)),
        };
        let (beams, returned) = if self.alternatives > 1 {
            // Ask for more than needed: duplicates are dropped after post-processing.
            let b = beams.max((2 * self.alternatives).min(10));
            (b, b)
        } else {
            (beams, 1)
        };
        CaptionOptions {
            lang: Some(lang.to_string()),
            num_beams: Some(beams),
            max_new_tokens: Some(max_tokens),
            min_new_tokens: min_tokens,
            length_penalty: Some(length_penalty),
            num_return_sequences: Some(returned),
            no_repeat_ngram_size: Some(3),
            ..CaptionOptions::default()
        }
    }
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// One caption in a response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaptionOut {
    /// Caption text.
    pub text: String,
    /// Language code.
    pub lang: String,
    /// Model score (higher is better; comparable within one image and language).
    pub score: f32,
}

/// The image as decoded (upright).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageOut {
    /// Upright width in pixels (EXIF orientation applied).
    pub width: u32,
    /// Upright height in pixels.
    pub height: u32,
    /// Container format (`jpeg`, `png`, ...).
    pub format: String,
}

/// Whether the file carried GPS coordinates. Their values are never read out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Gps {
    /// The file has GPS tags (not returned).
    Present,
    /// No GPS tags.
    Absent,
}

/// EXIF summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetadataOut {
    /// Camera make and model.
    pub camera: Option<String>,
    /// Date taken, as written in the file.
    pub date_taken: Option<String>,
    /// EXIF orientation (1–8).
    pub orientation: Option<u16>,
    /// `present` or `absent`; coordinates are never returned.
    pub gps: Gps,
}

/// A captioned image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaptionedImage {
    /// Best first; for `lang=both`, Indonesian then English.
    pub captions: Vec<CaptionOut>,
    /// Image facts.
    pub image: ImageOut,
    /// EXIF summary.
    pub metadata: MetadataOut,
}

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The client's file name, if any (never logged).
    pub filename: Option<String>,
    /// The file's bytes (memory only).
    pub bytes: Bytes,
}

/// A request's uploads and option pairs.
#[derive(Debug, Default)]
pub struct Submission {
    /// Images in order.
    pub uploads: Vec<Upload>,
    /// Option pairs: query string first, then form fields.
    pub pairs: Vec<(String, String)>,
}

impl Submission {
    /// The options to caption with for a user: their preferences first, then the request's own
    /// pairs, which win.
    pub fn options_under(
        &self,
        prefs: &takarir_store::preferences::Preferences,
    ) -> Result<Options, ApiError> {
        let defaults = crate::rights::preference_pairs(prefs);
        Options::from_pairs(
            defaults
                .iter()
                .chain(&self.pairs)
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// The interface language named by a `lang` form field or query value, if any.
    pub fn lang_hint(&self) -> Option<Lang> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::parse(v))
    }
}

/// The client address: the connection's peer, or, when `trust_forwarded_for` is on (the server
/// is behind a reverse proxy), the last address in `X-Forwarded-For` (the one the proxy added).
/// Used only as a rate-limit key in memory; never logged.
pub fn client_ip(req: &Request, trust_forwarded_for: bool) -> std::net::IpAddr {
    client_ip_of(
        req.headers(),
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0),
        trust_forwarded_for,
    )
}

/// [`client_ip`] from the headers and the peer address.
pub fn client_ip_of(
    headers: &axum::http::HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> std::net::IpAddr {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.map(|p| p.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
}

/// Reads images and options from a multipart form or a raw image body. Images stay in memory.
/// At most `max_concurrent_uploads` bodies are received at once (503 past that), each within
/// `upload_timeout_seconds` (408).
pub async fn read_submission(state: &AppState, req: Request) -> Result<Submission, ApiError> {
    let _permit = match state.upload_permit() {
        Ok(p) => p,
        Err(e) => {
            discard_unread(
                state,
                req,
                crate::body_limit(state.config().max_upload_bytes) as u64,
            )
            .await;
            return Err(e);
        }
    };
    let timeout = std::time::Duration::from_secs(state.config().upload_timeout_seconds);
    tokio::time::timeout(timeout, read_body(state, req))
        .await
        .map_err(|_| ApiError::UploadTimeout)?
}

/// Reads and throws away the body of a request refused before its body was read (429, 503),
/// so that a client still sending its upload gets the refusal instead of a broken pipe. Nothing
/// is kept; reading stops past `cap` bytes or after a few seconds, when the connection is
/// simply closed.
pub async fn discard_unread(state: &AppState, req: Request, cap: u64) {
    use futures_util::StreamExt;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap) {
        return;
    }
    let within = std::time::Duration::from_secs(state.config().upload_timeout_seconds.min(10));
    let mut stream = req.into_body().into_data_stream();
    let _ = tokio::time::timeout(within, async {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len() as u64;
            if seen > cap {
                break;
            }
        }
    })
    .await;
}

async fn read_body(state: &AppState, req: Request) -> Result<Submission, ApiError> {
    let limit = state.config().max_upload_bytes;
    let mut sub = Submission {
        pairs: req
            .uri()
            .query()
            .map(crate::i18n::form_pairs)
            .unwrap_or_default(),
        ..Submission::default()
    };
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > crate::body_limit(limit) as u64 {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let too_large = |status: axum::http::StatusCode| {
        if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::MalformedRequest
        }
    };
    if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, state)
            .await
            .map_err(|e| too_large(e.status()))?;
        while let Some(field) = mp.next_field().await.map_err(|e| too_large(e.status()))? {
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(|s| s.to_string());
            if name == "image" || name == "images" || name == "image[]" {
                let bytes = field.bytes().await.map_err(|e| too_large(e.status()))?;
                // A browser sends an empty part for a file input left empty.
                if bytes.is_empty() && filename.as_deref().unwrap_or("").is_empty() {
                    continue;
                }
                if bytes.len() as u64 > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                if sub.uploads.len() >= state.config().max_files {
                    return Err(ApiError::TooManyFiles {
                        max: state.config().max_files,
                    });
                }
                sub.uploads.push(Upload { filename, bytes });
            } else if filename.is_none() {
                let text = field.text().await.map_err(|e| too_large(e.status()))?;
                if text.len() <= 200 {
                    sub.pairs.push((name, text));
                }
            }
        }
    } else if ctype.starts_with("image/") || ctype.starts_with("application/octet-stream") {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| too_large(e.status()))?;
        if bytes.len() as u64 > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        if !bytes.is_empty() {
            sub.uploads.push(Upload {
                filename: None,
                bytes,
            });
        }
    } else if ctype.is_empty() {
        return Err(ApiError::NoImage);
    } else {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(sub)
}

/// The outcome for one image.
#[derive(Debug, Clone)]
pub struct ImageResult {
    /// The client's file name.
    pub filename: Option<String>,
    /// Captions or the image's own error.
    pub outcome: Result<CaptionedImage, ApiError>,
}

/// Captions uploads with a place already taken in the bounded queue (callers take it before
/// reading the body, so a full queue costs a refused request nothing but its headers): checks
/// the languages and runs the engine on a blocking thread.
pub async fn caption(
    state: &AppState,
    permit: QueuePermit,
    uploads: Vec<Upload>,
    opts: &Options,
) -> Result<Vec<ImageResult>, ApiError> {
    if uploads.is_empty() {
        return Err(ApiError::NoImage);
    }
    let captioner = state.captioner().clone();
    let langs = opts.languages(&captioner.info().languages, captioner.default_language())?;
    let opts = opts.clone();
    let metrics = state.metrics().clone();
    let results = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let images: Vec<&[u8]> = uploads.iter().map(|u| u.bytes.as_ref()).collect();
        let per_image = caption_in_languages(&captioner, &images, &opts, &langs, &metrics);
        uploads
            .into_iter()
            .zip(per_image)
            .map(|(u, outcome)| ImageResult {
                filename: u.filename,
                outcome,
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "caption task failed");
        ApiError::Internal
    })?;
    for r in &results {
        let outcome = match &r.outcome {
            Ok(_) => "captioned",
            Err(e) => e.code(),
        };
        state.metrics().images.with_label_values(&[outcome]).inc();
    }
    Ok(results)
}

/// Captions `images` in every language of `langs`, each image decoded and encoded once and
/// its captions generated once per language (one encoder batch for all). Blocking: call it on
/// a blocking thread.
pub(crate) fn caption_in_languages(
    captioner: &takarir_engine::Captioner,
    images: &[&[u8]],
    opts: &Options,
    langs: &[String],
    metrics: &crate::metrics::Metrics,
) -> Vec<Result<CaptionedImage, ApiError>> {
    let per_lang: Vec<_> = langs.iter().map(|l| opts.engine_options(l)).collect();
    let started = Instant::now();
    let (results, _timings) = captioner.caption_images_each(images, &per_lang);
    metrics
        .inference_seconds
        .observe(started.elapsed().as_secs_f64());
    results
        .into_iter()
        .map(|r| r.map_err(ApiError::from).map(|ic| convert(ic, opts)))
        .collect()
}

fn convert(ic: ImageCaptions, opts: &Options) -> CaptionedImage {
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
        if same_lang.count() < opts.alternatives {
            captions.push(CaptionOut {
                text,
                lang,
                score: c.score,
            });
        }
    }
    CaptionedImage {
        captions,
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

/// Per-image result in a batch response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchItem {
    /// The uploaded file's name.
    pub filename: Option<String>,
    /// Captions, when the image was captioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captions: Option<Vec<CaptionOut>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_validate() {
        let o = Options::from_pairs([
            ("lang", "both"),
            ("style", "Detailed"),
            ("alternatives", "3"),
            ("gender_neutral", "on"),
            ("other", "x"),
        ])
        .unwrap();
        assert_eq!(o.lang, Some(LangChoice::Both));
        assert_eq!(o.style, Style::Detailed);
        assert_eq!(o.alternatives, 3);
        assert!(o.gender_neutral);
        assert!(Options::from_pairs([("alternatives", "6")]).is_err());
        assert!(Options::from_pairs([("alternatives", "0")]).is_err());
        assert!(Options::from_pairs([("style", "long")]).is_err());
        assert!(Options::from_pairs([("lang", "fr")]).is_err());
        let e = o.engine_options("id");
        assert_eq!(e.num_beams, Some(6));
        assert_eq!(e.num_return_sequences, Some(6));
        assert!(e.length_penalty.unwrap() > 1.0);
        let langs = ["en".to_string()];
        assert!(matches!(
            Options::from_pairs([("lang", "id")])
                .unwrap()
                .languages(&langs, "en"),
            Err(ApiError::LanguageNotSupported { .. })
        ));
        assert_eq!(
            Options::from_pairs([])
                .unwrap()
                .languages(&langs, "en")
                .unwrap(),
            vec!["en"]
        );
    }

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
