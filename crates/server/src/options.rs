//! The caption options: one typed model for every door (the API's query and form fields, the
//! web form, the signed-out preferences cookie, stored preferences, batch jobs and the CLI),
//! with one set of defaults, so that one photo with the same options gets one caption
//! whichever way it comes in.
//!
//! - [`CaptionOptions`] is what one request is captioned with; [`CaptionOptions::default`] is
//!   the service default everywhere.
//! - [`OptionDefaults`] is what a user keeps as their defaults (account preferences, or the
//!   `takarir_prefs` cookie): each field unset falls back to the service default.
//! - Text values (query, form, cookie, stored preferences) are read with `FromStr`; JSON
//!   (stored jobs, OpenAPI) with serde; both spell values the same (`id`, `short`, ...).
//!
//! Extension point: [`Features`] is the set of outputs a request asks for (Azure-style
//! `features=caption,tags,objects,text`). A new output adds a variant to [`Feature`], and a
//! field to the captioned-image view that is filled when it is asked for. Nothing else here
//! needs reshaping.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Most alternatives a request may ask for.
pub const MAX_ALTERNATIVES: u8 = 5;
/// Most words in a `short` caption.
pub const SHORT_WORDS: usize = 12;

/// An option value outside its vocabulary or range: what was given and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// The value, cut to 40 characters.
    pub value: String,
    /// What is accepted.
    pub expected: &'static str,
}

impl BadValue {
    fn new(value: &str, expected: &'static str) -> Self {
        BadValue {
            value: value.chars().take(40).collect(),
            expected,
        }
    }

    /// The request error for option `name`.
    pub fn for_option(self, name: &str) -> ApiError {
        ApiError::InvalidOption {
            name: name.to_string(),
            value: self.value,
            expected: self.expected,
        }
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not one of {}", self.value, self.expected)
    }
}

impl std::error::Error for BadValue {}

/// Enums spelled in lower case: `FromStr` (case-insensitive), `as_str` and `Display`, so text
/// and JSON spell every value alike.
macro_rules! spelled {
    ($ty:ident, $expected:literal, $($variant:ident = $text:literal),+) => {
        impl $ty {
            /// Every value, in order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The value as spelled in requests.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl FromStr for $ty {
            type Err = BadValue;

            fn from_str(s: &str) -> Result<Self, BadValue> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(BadValue::new(s, $expected)),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Requested caption language(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LangChoice {
    /// Indonesian.
    Id,
    /// English.
    En,
    /// Indonesian, then English.
    Both,
}

spelled!(
    LangChoice,
    "id, en, both",
    Id = "id",
    En = "en",
    Both = "both"
);

impl LangChoice {
    /// The language codes this choice captions in.
    pub fn codes(self) -> &'static [&'static str] {
        match self {
            LangChoice::Id => &["id"],
            LangChoice::En => &["en"],
            LangChoice::Both => &["id", "en"],
        }
    }
}

/// Caption style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
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

spelled!(
    Style,
    "short, sentence, detailed",
    Short = "short",
    Sentence = "sentence",
    Detailed = "detailed"
);

/// One output a request can ask for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    /// Captions, grounded in what the detector and the tagger see.
    Caption,
    /// Detected objects: class in English and Indonesian, confidence, box.
    Objects,
    /// Everyday tags for what the photo shows, in English and Indonesian.
    Tags,
    /// The text in the photo (signs, labels, screenshots): lines with their confidence and
    /// polygon, and the whole text; captions then quote prominent text.
    Text,
    /// The EXIF summary (camera, date taken, orientation, whether GPS is present) in a batch
    /// job's stored results. A direct answer always carries it (nothing of it is kept); a job
    /// keeps it for the job's life only when asked for.
    Metadata,
}

spelled!(
    Feature,
    "caption, objects, tags, text, metadata",
    Caption = "caption",
    Objects = "objects",
    Tags = "tags",
    Text = "text",
    Metadata = "metadata"
);

/// The outputs a request asks for: never empty; `caption` by default. As text, a
/// comma-separated list (`features=caption`); as JSON, an array.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Feature>", into = "Vec<Feature>")]
pub struct Features(BTreeSet<Feature>);

impl utoipa::PartialSchema for Features {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name(Feature::name()))
            .min_items(Some(1))
            .unique_items(true)
            .into()
    }
}

impl ToSchema for Features {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            Feature::name().into(),
            <Feature as utoipa::PartialSchema>::schema(),
        ));
    }
}

impl Features {
    /// Whether `f` is asked for.
    pub fn contains(&self, f: Feature) -> bool {
        self.0.contains(&f)
    }

    /// The features, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Feature> + '_ {
        self.0.iter().copied()
    }
}

impl Default for Features {
    fn default() -> Self {
        Features([Feature::Caption].into())
    }
}

impl TryFrom<Vec<Feature>> for Features {
    type Error = BadValue;

    fn try_from(v: Vec<Feature>) -> Result<Self, BadValue> {
        if v.is_empty() {
            return Err(BadValue::new(
                "",
                "at least one of caption, objects, tags, text",
            ));
        }
        Ok(Features(v.into_iter().collect()))
    }
}

impl From<Features> for Vec<Feature> {
    fn from(f: Features) -> Self {
        f.0.into_iter().collect()
    }
}

impl FromStr for Features {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<Self, BadValue> {
        let parts: Vec<&str> = s.split(',').filter(|p| !p.trim().is_empty()).collect();
        if parts.is_empty() {
            return Ok(Features::default());
        }
        parts
            .into_iter()
            .map(Feature::from_str)
            .collect::<Result<Vec<_>, _>>()
            .and_then(Features::try_from)
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Feature::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// The number of distinct captions per image and language: 1 to [`MAX_ALTERNATIVES`].
pub fn parse_alternatives(s: &str) -> Result<u8, BadValue> {
    s.trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (1..=MAX_ALTERNATIVES).contains(n))
        .ok_or_else(|| BadValue::new(s, "1..5"))
}

/// A boolean option: `true/false`, `on/off`, `yes/no`, `1/0`; empty is false.
pub fn parse_flag(s: &str) -> Result<bool, BadValue> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "off" | "no" => Ok(false),
        "1" | "true" | "on" | "yes" => Ok(true),
        _ => Err(BadValue::new(s, "true, false")),
    }
}

/// What one request is captioned with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CaptionOptions {
    /// Caption language(s); absent: the model's default language (Indonesian first).
    pub lang: Option<LangChoice>,
    /// Caption style.
    pub style: Style,
    /// Distinct captions per image and language.
    #[schema(minimum = 1, maximum = 5)]
    pub alternatives: u8,
    /// Rewrite gendered person words (man, woman, pria, wanita, ...) to neutral ones.
    pub gender_neutral: bool,
    /// Outputs to produce: any of `caption` (default), `objects`, `tags`, `text`.
    pub features: Features,
}

impl Default for CaptionOptions {
    fn default() -> Self {
        CaptionOptions {
            lang: None,
            style: Style::Sentence,
            alternatives: 1,
            gender_neutral: false,
            features: Features::default(),
        }
    }
}

impl CaptionOptions {
    /// The option names [`CaptionOptions::set`] reads.
    pub const NAMES: &'static [&'static str] = &[
        "lang",
        "style",
        "alternatives",
        "gender_neutral",
        "features",
    ];

    /// The service defaults overlaid with a user's defaults.
    pub fn under(defaults: &OptionDefaults) -> CaptionOptions {
        let base = CaptionOptions::default();
        CaptionOptions {
            lang: defaults.lang.or(base.lang),
            style: defaults.style.unwrap_or(base.style),
            alternatives: defaults.alternatives.unwrap_or(base.alternatives),
            ..base
        }
    }

    /// Sets option `name` from its text; an empty value goes back to the service default.
    /// Names that are not options are ignored (`Ok(false)`).
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, ApiError> {
        let v = value.trim();
        let base = CaptionOptions::default();
        let bad = |e: BadValue| e.for_option(name);
        match name {
            "lang" if v.is_empty() => self.lang = base.lang,
            "lang" => self.lang = Some(v.parse().map_err(bad)?),
            "style" if v.is_empty() => self.style = base.style,
            "style" => self.style = v.parse().map_err(bad)?,
            "alternatives" if v.is_empty() => self.alternatives = base.alternatives,
            "alternatives" => self.alternatives = parse_alternatives(v).map_err(bad)?,
            "gender_neutral" => self.gender_neutral = parse_flag(v).map_err(bad)?,
            "features" => self.features = v.parse().map_err(bad)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// These options with name/value pairs applied in order (later ones win).
    pub fn with_pairs<'a>(
        mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<CaptionOptions, ApiError> {
        for (name, value) in pairs {
            self.set(name, value)?;
        }
        Ok(self)
    }

    /// The service defaults with name/value pairs applied.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<CaptionOptions, ApiError> {
        CaptionOptions::default().with_pairs(pairs)
    }

    /// The languages to caption in, checked against the model's.
    pub fn languages(&self, supported: &[String], default: &str) -> Result<Vec<String>, ApiError> {
        let wanted: &[&str] = match self.lang {
            None => &[default][..],
            Some(choice) => choice.codes(),
        };
        for l in wanted {
            if !supported.iter().any(|s| s == l) {
                return Err(ApiError::LanguageNotSupported {
                    lang: match self.lang {
                        Some(LangChoice::Both) => "both".into(),
                        _ => l.to_string(),
                    },
                    supported: supported.to_vec(),
                });
            }
        }
        Ok(wanted.iter().map(|l| l.to_string()).collect())
    }

    /// Engine settings for one language.
    pub fn engine_options(&self, lang: &str) -> takarir_engine::CaptionOptions {
        // `sentence` is the model's own decoding (generation_config.json), the one its
        // measured figures (`takarir eval`) are for.
        let (beams, max_tokens, length_penalty, min_tokens) = match self.style {
            Style::Short => (Some(3), Some(20), Some(1.0), None),
            Style::Sentence => (None, None, None, None),
            Style::Detailed => (Some(5), Some(50), Some(1.5), Some(8)),
        };
        let alternatives = usize::from(self.alternatives);
        let (beams, returned) = if alternatives > 1 {
            // Ask for more than needed: duplicates are dropped after post-processing.
            let b = beams.unwrap_or(3).max((2 * alternatives).min(10));
            (Some(b), Some(b))
        } else {
            (beams, Some(1))
        };
        takarir_engine::CaptionOptions {
            lang: Some(lang.to_string()),
            num_beams: beams,
            max_new_tokens: max_tokens,
            min_new_tokens: min_tokens,
            length_penalty,
            num_return_sequences: returned,
            no_repeat_ngram_size: Some(3),
            ..takarir_engine::CaptionOptions::default()
        }
    }
}

/// A user's caption defaults (account preferences, or the signed-out `takarir_prefs` cookie);
/// unset fields are the service's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct OptionDefaults {
    /// Caption language(s).
    pub lang: Option<LangChoice>,
    /// Caption style.
    pub style: Option<Style>,
    /// Alternatives, 1..5.
    #[schema(minimum = 1, maximum = 5)]
    pub alternatives: Option<u8>,
}

impl OptionDefaults {
    /// The defaults kept in stored preferences; values that no longer parse are ignored.
    pub fn from_preferences(p: &takarir_store::preferences::Preferences) -> OptionDefaults {
        OptionDefaults {
            lang: p.lang.as_deref().and_then(|l| l.parse().ok()),
            style: p.style.as_deref().and_then(|s| s.parse().ok()),
            alternatives: p
                .alternatives
                .and_then(|n| u8::try_from(n).ok())
                .filter(|n| (1..=MAX_ALTERNATIVES).contains(n)),
        }
    }

    /// Writes these defaults into stored preferences (the other preferences stay).
    pub fn store_into(&self, p: &mut takarir_store::preferences::Preferences) {
        p.lang = self.lang.map(|l| l.as_str().to_string());
        p.style = self.style.map(|s| s.as_str().to_string());
        p.alternatives = self.alternatives.map(u32::from);
    }

    /// Reads the `takarir_prefs` cookie value `lang.id~style.short~alt.2`; parts that do not
    /// parse are ignored.
    pub fn from_cookie_value(v: &str) -> OptionDefaults {
        let mut d = OptionDefaults::default();
        for item in v.split('~') {
            match item.split_once('.') {
                Some(("lang", l)) => d.lang = l.parse().ok().or(d.lang),
                Some(("style", s)) => d.style = s.parse().ok().or(d.style),
                Some(("alt", n)) => d.alternatives = parse_alternatives(n).ok(),
                _ => {}
            }
        }
        d
    }

    /// The `takarir_prefs` cookie value.
    pub fn cookie_value(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.lang {
            parts.push(format!("lang.{l}"));
        }
        if let Some(s) = self.style {
            parts.push(format!("style.{s}"));
        }
        if let Some(n) = self.alternatives {
            parts.push(format!("alt.{n}"));
        }
        parts.join("~")
    }

    /// Defaults from form fields (`lang`, `style`, `alternatives`); empty or invalid values
    /// are unset (the service default).
    pub fn from_lenient(
        lang: Option<&str>,
        style: Option<&str>,
        alternatives: Option<&str>,
    ) -> Self {
        OptionDefaults {
            lang: lang.and_then(|l| l.parse().ok()),
            style: style.and_then(|s| s.parse().ok()),
            alternatives: alternatives.and_then(|n| parse_alternatives(n).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_validate() {
        let o = CaptionOptions::from_pairs([
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
        assert!(o.features.contains(Feature::Caption));
        let f = CaptionOptions::from_pairs([("features", "tags,objects")]).unwrap();
        assert!(f.features.contains(Feature::Objects) && f.features.contains(Feature::Tags));
        assert!(!f.features.contains(Feature::Caption));
        for (name, value) in [
            ("alternatives", "6"),
            ("alternatives", "0"),
            ("style", "long"),
            ("lang", "fr"),
            ("features", "caption,colours"),
        ] {
            assert!(
                CaptionOptions::from_pairs([(name, value)]).is_err(),
                "{name}={value}"
            );
        }
        let e = o.engine_options("id");
        assert_eq!(e.num_beams, Some(6));
        assert_eq!(e.num_return_sequences, Some(6));
        assert!(e.length_penalty.unwrap() > 1.0);
        let langs = ["en".to_string()];
        assert!(matches!(
            CaptionOptions::from_pairs([("lang", "id")])
                .unwrap()
                .languages(&langs, "en"),
            Err(ApiError::LanguageNotSupported { .. })
        ));
        assert_eq!(
            CaptionOptions::default().languages(&langs, "en").unwrap(),
            vec!["en"]
        );
    }

    #[test]
    fn every_door_spells_options_alike() {
        // Text, JSON and cookie forms round-trip to the same values.
        for s in Style::ALL {
            assert_eq!(s.as_str().parse::<Style>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for l in LangChoice::ALL {
            assert_eq!(l.as_str().parse::<LangChoice>().unwrap(), *l);
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
        }
        let d = OptionDefaults {
            lang: Some(LangChoice::En),
            style: Some(Style::Short),
            alternatives: Some(2),
        };
        assert_eq!(d.cookie_value(), "lang.en~style.short~alt.2");
        assert_eq!(OptionDefaults::from_cookie_value(&d.cookie_value()), d);
        let mut p = takarir_store::preferences::Preferences::default();
        d.store_into(&mut p);
        assert_eq!(OptionDefaults::from_preferences(&p), d);
        // A request's empty value goes back to the service default, not the user's.
        let o = CaptionOptions::under(&d)
            .with_pairs([("style", ""), ("alternatives", "3")])
            .unwrap();
        assert_eq!(
            (o.lang, o.style, o.alternatives),
            (Some(LangChoice::En), Style::Sentence, 3)
        );
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<CaptionOptions>(&json).unwrap(), o);
        assert!(serde_json::from_str::<CaptionOptions>(r#"{"features": []}"#).is_err());
    }
}
