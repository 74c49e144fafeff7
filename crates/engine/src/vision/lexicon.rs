//! The vision bundle's data file (`vision.json`): the detector's and the tagger's input
//! conventions, the 80 COCO classes with their English and Indonesian names and the words a
//! caption may use for them, and the ImageNet groups the tagger reports as everyday words.
//!
//! Mentions are found the way the CHAIR measure finds them (Rohrbach et al. 2018): whole words,
//! longest phrase first ("hot dog" before "dog", "teddy bear" before "bear"), English plurals
//! derived, Indonesian reduplication (`kucing-kucing`) matched on its base word. The same
//! matcher serves grounding (which classes a caption names) and the tests of both languages.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{EngineError, Result};

/// What kind of thing a class or tag group is; templates choose words and relations by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// People.
    Person,
    /// Animals.
    Animal,
    /// Things that carry people.
    Vehicle,
    /// Food and drink.
    Food,
    /// Furniture and fixtures.
    Furniture,
    /// Kitchen appliances.
    Appliance,
    /// Places and scenes.
    Place,
    /// Plants.
    Plant,
    /// Everything else.
    Object,
}

/// One detector class.
#[derive(Debug, Clone, Deserialize)]
pub struct ClassInfo {
    /// COCO name (`dining table`).
    pub name: String,
    /// English label for output and templates (`table`).
    pub en: String,
    /// Indonesian label (`meja`).
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// Small or thin things the detector often misses: a caption may name them unopposed.
    #[serde(default)]
    pub small: bool,
    /// Words (and phrases) that name the class in each language.
    pub words: HashMap<String, Vec<String>>,
}

impl ClassInfo {
    /// The label in `lang` (English for any language without one).
    pub fn label(&self, lang: &str) -> &str {
        if lang == "id" {
            &self.id
        } else {
            &self.en
        }
    }
}

/// A group of ImageNet classes reported as one everyday tag (`tabby`, `tiger cat` → cat).
#[derive(Debug, Clone, Deserialize)]
pub struct TagGroup {
    /// English label.
    pub en: String,
    /// Indonesian label.
    pub id: String,
    /// The COCO class this group is evidence for, if any.
    #[serde(rename = "class")]
    pub coco_class: Option<String>,
    /// Its kind.
    pub kind: Kind,
    /// ImageNet-1k indices.
    pub imagenet: Vec<usize>,
}

impl TagGroup {
    /// The label in `lang`.
    pub fn label(&self, lang: &str) -> &str {
        if lang == "id" {
            &self.id
        } else {
            &self.en
        }
    }
}

/// The detector's input convention and output layout.
#[derive(Debug, Clone, Deserialize)]
pub struct DetectorSpec {
    /// ONNX file name inside the bundle.
    pub file: String,
    /// Square input side.
    pub input_size: u32,
    /// `bgr` or `rgb`.
    pub channel_order: String,
    /// Per-channel mean on 0..255 values, in the input's channel order.
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    pub std: [f32; 3],
    /// Feature strides, finest first.
    pub strides: Vec<u32>,
    /// Distance bins per box side minus one (GFL's `reg_max`).
    pub reg_max: usize,
    /// Class names, in output order.
    pub classes: Vec<String>,
}

/// The tagger's input convention.
#[derive(Debug, Clone, Deserialize)]
pub struct TaggerSpec {
    /// ONNX file name inside the bundle.
    pub file: String,
    /// Square input side.
    pub input_size: u32,
    /// Per-channel mean on 0..1 values (RGB).
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    pub std: [f32; 3],
    /// ImageNet label of each output (for debugging output only).
    #[serde(default)]
    pub labels: Vec<String>,
}

/// `vision.json` as written.
#[derive(Debug, Clone, Deserialize)]
pub struct VisionSpec {
    /// `takarir-vision-1`.
    pub format: String,
    /// Detector.
    pub detector: DetectorSpec,
    /// Tagger.
    pub tagger: TaggerSpec,
    /// COCO classes, in the detector's order.
    pub classes: Vec<ClassInfo>,
    /// Everyday tags over ImageNet classes.
    pub tag_groups: Vec<TagGroup>,
}

/// Finds which classes a caption names, per language.
#[derive(Debug, Clone)]
pub struct Lexicon {
    classes: Vec<ClassInfo>,
    /// Per language: phrase (words) → class index, longest phrases first.
    phrases: HashMap<String, Vec<(Vec<String>, usize)>>,
    longest: usize,
}

const IRREGULAR: &[(&str, &str)] = &[
    ("man", "men"),
    ("woman", "women"),
    ("child", "children"),
    ("person", "people"),
    ("mouse", "mice"),
    ("knife", "knives"),
    ("sheep", "sheep"),
    ("calf", "calves"),
    ("goose", "geese"),
    ("ox", "oxen"),
    ("people", "people"),
    ("cattle", "cattle"),
    ("scissors", "scissors"),
    ("luggage", "luggage"),
    ("broccoli", "broccoli"),
    ("skis", "skis"),
    ("ski", "skis"),
    ("glass", "glasses"),
    ("teddy", "teddies"),
];

/// English plural of a word or of a phrase's last word.
pub fn plural_en(phrase: &str) -> String {
    let (head, last) = match phrase.rsplit_once(' ') {
        Some((h, l)) => (Some(h), l),
        None => (None, phrase),
    };
    let p = if let Some((_, p)) = IRREGULAR.iter().find(|(s, _)| *s == last) {
        p.to_string()
    } else if last.ends_with(['s', 'x']) || last.ends_with("ch") || last.ends_with("sh") {
        format!("{last}es")
    } else if last.ends_with('y')
        && !matches!(last.chars().rev().nth(1), Some('a' | 'e' | 'i' | 'o' | 'u'))
    {
        format!("{}ies", &last[..last.len() - 1])
    } else {
        format!("{last}s")
    };
    match head {
        Some(h) => format!("{h} {p}"),
        None => p,
    }
}

/// Lower-case words of a caption: letters, digits, apostrophes and inner hyphens.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
        .map(|w| w.trim_matches(|c| c == '-' || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

impl Lexicon {
    /// Builds the matcher from the classes' word lists.
    pub fn new(classes: Vec<ClassInfo>) -> Self {
        let mut phrases: HashMap<String, Vec<(Vec<String>, usize)>> = HashMap::new();
        let mut longest = 1;
        for (i, c) in classes.iter().enumerate() {
            for (lang, ws) in &c.words {
                let list = phrases.entry(lang.clone()).or_default();
                for w in ws {
                    let mut forms = vec![w.clone()];
                    if lang == "en" {
                        forms.push(plural_en(w));
                    }
                    for f in forms {
                        let ph: Vec<String> = f.split(' ').map(str::to_string).collect();
                        longest = longest.max(ph.len());
                        if !list.iter().any(|(p, _)| *p == ph) {
                            list.push((ph, i));
                        }
                    }
                }
            }
        }
        for list in phrases.values_mut() {
            list.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        }
        Lexicon {
            classes,
            phrases,
            longest,
        }
    }

    /// The classes, in detector order.
    pub fn classes(&self) -> &[ClassInfo] {
        &self.classes
    }

    /// Whether captions in `lang` can be checked.
    pub fn knows(&self, lang: &str) -> bool {
        self.phrases.contains_key(lang)
    }

    /// Index of a class by COCO name.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c.name == name)
    }

    /// Classes named by a caption, in order of first mention (each once).
    pub fn mentions(&self, text: &str, lang: &str) -> Vec<usize> {
        let Some(list) = self.phrases.get(lang) else {
            return vec![];
        };
        let ws: Vec<String> = words(text)
            .into_iter()
            .map(|w| base_word(&w, lang))
            .collect();
        let mut found = Vec::new();
        let mut i = 0;
        while i < ws.len() {
            let mut step = 1;
            for (ph, class) in list {
                let n = ph.len();
                if n > self.longest || i + n > ws.len() || ws[i..i + n] != ph[..] {
                    continue;
                }
                // "orange shirt" is a colour, not the fruit (as in the CHAIR tool).
                if lang == "en" && ph.len() == 1 && ph[0] == "orange" {
                    let next = ws.get(i + 1).map(String::as_str);
                    if !matches!(
                        next,
                        None | Some(
                            "and" | "on" | "in" | "is" | "are" | "with" | "slices" | "slice"
                        )
                    ) {
                        break;
                    }
                }
                if !found.contains(class) {
                    found.push(*class);
                }
                step = n;
                break;
            }
            i += step;
        }
        found
    }

    /// Every phrase that names `class` in `lang` (for banning or forcing words in decoding).
    pub fn phrases_of(&self, class: usize, lang: &str) -> Vec<String> {
        self.phrases
            .get(lang)
            .map(|l| {
                l.iter()
                    .filter(|(_, c)| *c == class)
                    .map(|(p, _)| p.join(" "))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Indonesian reduplication names the plural: `kucing-kucing` → `kucing` (but `laki-laki`,
/// `kupu-kupu` and other fixed reduplicated words stay whole, since they are whole words).
fn base_word(w: &str, lang: &str) -> String {
    if lang == "id" {
        if let Some((a, b)) = w.split_once('-') {
            if a == b && !matches!(a, "laki" | "kupu" | "biri" | "kura" | "layang" | "ubur") {
                return a.to_string();
            }
        }
    }
    w.to_string()
}

impl VisionSpec {
    /// Reads and checks `vision.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let spec: VisionSpec = serde_json::from_str(&text)
            .map_err(|e| EngineError::model(path, format!("unreadable vision.json: {e}")))?;
        if spec.format != "takarir-vision-1" {
            return Err(EngineError::model(
                path,
                format!("unknown vision format `{}`", spec.format),
            ));
        }
        if spec.classes.len() != spec.detector.classes.len()
            || spec
                .classes
                .iter()
                .zip(&spec.detector.classes)
                .any(|(a, b)| a.name != *b)
        {
            return Err(EngineError::model(
                path,
                "classes must list the detector's classes in order",
            ));
        }
        for g in &spec.tag_groups {
            if let Some(c) = &g.coco_class {
                if !spec.classes.iter().any(|k| k.name == *c) {
                    return Err(EngineError::model(
                        path,
                        format!("tag group `{}` names unknown class `{c}`", g.en),
                    ));
                }
            }
            if g.imagenet.iter().any(|&i| i >= 1000) {
                return Err(EngineError::model(
                    path,
                    format!("tag group `{}` has an index over 999", g.en),
                ));
            }
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, en: &[&str], id: &[&str]) -> ClassInfo {
        ClassInfo {
            name: name.into(),
            en: name.into(),
            id: name.into(),
            kind: Kind::Object,
            small: false,
            words: HashMap::from([
                ("en".into(), en.iter().map(|s| s.to_string()).collect()),
                ("id".into(), id.iter().map(|s| s.to_string()).collect()),
            ]),
        }
    }

    fn lexicon() -> Lexicon {
        Lexicon::new(vec![
            class(
                "person",
                &["man", "person", "child"],
                &["orang", "laki-laki", "anak"],
            ),
            class("dog", &["dog", "puppy"], &["anjing"]),
            class("hot dog", &["hot dog"], &["hot dog"]),
            class("orange", &["orange"], &["jeruk"]),
            class("teddy bear", &["teddy bear"], &["boneka beruang"]),
            class("bear", &["bear"], &["beruang"]),
        ])
    }

    #[test]
    fn plurals() {
        assert_eq!(plural_en("dog"), "dogs");
        assert_eq!(plural_en("man"), "men");
        assert_eq!(plural_en("bus"), "buses");
        assert_eq!(plural_en("puppy"), "puppies");
        assert_eq!(plural_en("hot dog"), "hot dogs");
        assert_eq!(plural_en("toy"), "toys");
    }

    #[test]
    fn finds_longest_phrases_and_plurals() {
        let l = lexicon();
        let names = |t: &str, lang: &str| -> Vec<String> {
            l.mentions(t, lang)
                .into_iter()
                .map(|i| l.classes()[i].name.clone())
                .collect()
        };
        assert_eq!(names("Two men eat hot dogs.", "en"), ["person", "hot dog"]);
        assert_eq!(
            names("a teddy bear and a bear", "en"),
            ["teddy bear", "bear"]
        );
        assert_eq!(names("a man in an orange shirt", "en"), ["person"]);
        assert_eq!(names("an orange and a puppy", "en"), ["orange", "dog"]);
        assert_eq!(
            names("dua anjing-anjing dan anak-anak", "id"),
            ["dog", "person"]
        );
        assert_eq!(names("seorang laki-laki", "id"), ["person"]);
        assert_eq!(names("boneka beruang di kasur", "id"), ["teddy bear"]);
        assert!(names("a red car", "en").is_empty());
        assert!(l.mentions("a dog", "fr").is_empty());
    }
}
