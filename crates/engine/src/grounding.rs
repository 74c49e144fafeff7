//! Grounded captions: a caption may only name what the detector and the tagger support.
//!
//! The captioner learned from Flickr8k (people and dogs), so on everyday photos it names people
//! and dogs that are not there. Grounding checks each caption against [`Evidence`] from the
//! vision bundle and decides, per image and language:
//! 1. *In-domain* photos (every confidently seen class is one the captioner learned well, the
//!    `staples`): the best model caption whose named classes are all supported is kept; if none
//!    is, the model decodes again with the unsupported classes' words banned; if that still
//!    misses the main object, a template names what was seen.
//! 2. *Out-of-domain* photos (a confidently seen class outside the staples: a kitchen, a bear,
//!    a bus): the captioner has never learned to describe them, so a model caption is kept only
//!    when it names exactly the planned objects (the one or two most salient confident classes);
//!    otherwise a template names them. The plan is the same in every language, so the
//!    Indonesian and English captions name the same things.
//!
//! Templates are plain and true ("a cat on a bed", "seekor kucing di atas tempat tidur"): counts,
//! and relations read from the boxes (riding, holding, on), never guessed activities.
//! Every caption gets a calibrated `confidence` and `needs_review` (see [`Review`]).

use serde::{Deserialize, Serialize};

use crate::vision::{BoxFrac, Detection, Kind, Lexicon, Seen, Vision};

/// Thresholds and switches; the defaults are what the shipped bundle was tuned with on dev sets
/// (coco-dev and Flickr8k dev); `vision.json` may override any of them under `grounding`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GroundingParams {
    /// A detection at or above this score is confident.
    pub det_confident: f32,
    /// A tag group mass at or above this is confident evidence for its class.
    pub tag_confident: f32,
    /// An animal detection at or above this needs no agreement from the tagger.
    pub det_sure: f32,
    /// Tagger mass an animal detection needs when the tagger knows that animal.
    pub tag_agree: f32,
    /// Tagger mass of another animal (or vehicle) that vetoes an unsure detection of one the
    /// tagger sees little of (the detector takes dogs for horses, bicycles for motorcycles).
    pub tag_conflict: f32,
    /// Below this tagger mass of its own, an animal or vehicle detection yields to a conflict.
    pub tag_conflict_own: f32,
    /// A detection this sure stands against any conflict.
    pub det_conflict_sure: f32,
    /// A detection at or above this makes a class supported (may be named).
    pub det_support: f32,
    /// A tag mass at or above this makes a class supported.
    pub tag_support: f32,
    /// Classes the captioner learned well; other confident classes make a photo out-of-domain.
    pub staples: Vec<String>,
    /// Model alternatives considered (beam search returns this many).
    pub alternatives: usize,
    /// Classes a plan names at most.
    pub plan_size: usize,
    /// A tag group this likely names an object-less photo ("a street sign").
    pub tag_template: f32,
    /// Tags reported at or above this.
    pub tags_min: f32,
    /// Review: logistic weights over [`Review::features`] (bias first).
    pub review_weights: Vec<f32>,
    /// Review: captions whose confidence is below this need review.
    pub review_threshold: f32,
    /// A tagger this sure of one animal overrules an unsure person detection covering this
    /// much of the image (the detector takes close-ups of cats for people).
    pub animal_over_person: f32,
    /// Share of the image an unsure person box must cover for `animal_over_person` to apply.
    pub person_box_area: f32,
    /// A caption decoded with bans must name at least one object (else it is often a
    /// fragment such as "a brown and white is standing").
    pub constrained_names_object: bool,
    /// With nothing seen confidently, a strong tag's template comes before a re-decoding.
    pub tag_before_constrained: bool,
    /// Out-of-domain photos: a model caption must name the main object and nothing outside the
    /// plan (`false`: exactly the plan).
    pub ood_subset: bool,
    /// Only the most salient confident object makes a photo out-of-domain: a person on a bench
    /// stays the captioner's (it names people well), a cat on a bench does not.
    pub ood_main_only: bool,
    /// A class outside the staples makes a photo out-of-domain only at or above this score
    /// (detector or tagger), which can be stricter than `det_confident`.
    pub ood_score: f32,
}

impl GroundingParams {
    /// The bundle's `grounding` section of `vision.json` over the defaults.
    pub fn load(dir: &std::path::Path) -> crate::error::Result<Self> {
        let path = dir.join(crate::vision::VISION_FILE);
        let text =
            std::fs::read_to_string(&path).map_err(|source| crate::error::EngineError::Io {
                path: path.clone(),
                source,
            })?;
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            grounding: Option<GroundingParams>,
        }
        let f: File = serde_json::from_str(&text).map_err(|e| {
            crate::error::EngineError::model(&path, format!("unreadable grounding section: {e}"))
        })?;
        let mut params = f.grounding.unwrap_or_default();
        // Development only: tune thresholds without editing the bundle (a JSON object whose
        // keys replace the bundle's).
        if let Ok(over) = std::env::var("TAKARIR_GROUNDING_OVERRIDE") {
            let mut v = serde_json::to_value(&params).expect("params serialise");
            let o: serde_json::Value = serde_json::from_str(&over).map_err(|e| {
                crate::error::EngineError::InvalidOption(format!("TAKARIR_GROUNDING_OVERRIDE: {e}"))
            })?;
            if let (Some(v), Some(o)) = (v.as_object_mut(), o.as_object()) {
                for (k, x) in o {
                    v.insert(k.clone(), x.clone());
                }
            }
            params = serde_json::from_value(v).map_err(|e| {
                crate::error::EngineError::InvalidOption(format!("TAKARIR_GROUNDING_OVERRIDE: {e}"))
            })?;
        }
        Ok(params)
    }
}

impl Default for GroundingParams {
    fn default() -> Self {
        GroundingParams {
            det_confident: 0.45,
            tag_confident: 0.5,
            det_sure: 0.65,
            tag_agree: 0.01,
            tag_conflict: 0.3,
            tag_conflict_own: 0.1,
            det_conflict_sure: 0.8,
            det_support: 0.15,
            tag_support: 0.1,
            staples: [
                "person",
                "dog",
                "sports ball",
                "frisbee",
                "bicycle",
                "skateboard",
                "surfboard",
                "skis",
                "snowboard",
                "kite",
                "boat",
                "car",
                "tennis racket",
                "baseball glove",
                "baseball bat",
            ]
            .map(String::from)
            .to_vec(),
            alternatives: 3,
            plan_size: 2,
            tag_template: 0.3,
            tags_min: 0.1,
            review_weights: vec![],
            review_threshold: 0.5,
            animal_over_person: 0.9,
            person_box_area: 0.5,
            constrained_names_object: true,
            tag_before_constrained: true,
            ood_subset: false,
            ood_main_only: true,
            ood_score: 0.55,
        }
    }
}

/// Per-class evidence for one image.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Best detector score per class.
    pub det: Vec<f32>,
    /// Confident boxes per class, best first.
    pub boxes: Vec<Vec<BoxFrac>>,
    /// Share of the image the confident boxes cover, per class.
    pub area: Vec<f32>,
    /// Tagger mass per class.
    pub tag: Vec<f32>,
    /// Whether the class is confidently there.
    pub confident: Vec<bool>,
    /// Whether a caption may name the class.
    pub supported: Vec<bool>,
    /// Mass of each tag group.
    pub groups: Vec<f32>,
    /// Some confident class is outside the staples.
    pub out_of_domain: bool,
}

/// Where a caption came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The captioner, unchanged.
    Model,
    /// The captioner, decoding again with unsupported objects' words banned.
    Constrained,
    /// A sentence built from the detected objects.
    Template,
}

/// Grounding of one image: the evidence and the shared decisions of every language.
pub struct Grounder<'a> {
    vision: &'a Vision,
    params: &'a GroundingParams,
}

fn union_area(boxes: &[BoxFrac]) -> f32 {
    // A 32×32 occupancy grid: exact enough for salience, cheap, and order-independent.
    const N: usize = 32;
    let mut grid = [[false; N]; N];
    for b in boxes {
        let (x0, x1) = (
            (b.x0 * N as f32) as usize,
            (b.x1 * N as f32).ceil() as usize,
        );
        let (y0, y1) = (
            (b.y0 * N as f32) as usize,
            (b.y1 * N as f32).ceil() as usize,
        );
        for row in grid
            .iter_mut()
            .take(y1.max(y0 + 1).min(N))
            .skip(y0.min(N - 1))
        {
            for cell in row
                .iter_mut()
                .take(x1.max(x0 + 1).min(N))
                .skip(x0.min(N - 1))
            {
                *cell = true;
            }
        }
    }
    grid.iter().flatten().filter(|&&c| c).count() as f32 / (N * N) as f32
}

impl<'a> Grounder<'a> {
    /// A grounder over a loaded bundle.
    pub fn new(vision: &'a Vision, params: &'a GroundingParams) -> Self {
        Grounder { vision, params }
    }

    fn lex(&self) -> &Lexicon {
        self.vision.lexicon()
    }

    /// The caption-word matcher.
    pub fn lexicon(&self) -> &'a Lexicon {
        self.vision.lexicon()
    }

    /// Combines the detector's and the tagger's outputs into per-class evidence.
    pub fn evidence(&self, seen: &Seen) -> Evidence {
        let p = self.params;
        let classes = self.lex().classes();
        let n = classes.len();
        let groups = self.vision.group_scores(&seen.imagenet);
        let mut det = vec![0f32; n];
        let mut boxes: Vec<Vec<BoxFrac>> = vec![vec![]; n];
        for d in &seen.detections {
            det[d.class] = det[d.class].max(d.score);
            if d.score >= p.det_confident {
                boxes[d.class].push(d.bbox);
            }
        }
        let mut tag = vec![0f32; n];
        let mut tagged = vec![false; n];
        for (g, mass) in self.vision.tag_groups().iter().zip(&groups) {
            if let Some(c) = g
                .coco_class
                .as_deref()
                .and_then(|c| self.lex().class_index(c))
            {
                // Groups may share ImageNet classes (espresso: cup and coffee): the largest counts.
                tag[c] = tag[c].max(*mass);
                tagged[c] = true;
            }
        }
        let animal = |c: usize| classes[c].kind == Kind::Animal;
        // Another class of the same kind that the tagger is sure of, while it sees little of c.
        let conflicted = |c: usize| {
            matches!(classes[c].kind, Kind::Animal | Kind::Vehicle)
                && det[c] < p.det_conflict_sure
                && tag[c] < p.tag_conflict_own
                && (0..n).any(|o| {
                    o != c && classes[o].kind == classes[c].kind && tag[o] >= p.tag_conflict
                })
        };
        let mut confident: Vec<bool> = (0..n)
            .map(|c| {
                let by_det = det[c] >= p.det_confident
                    && !conflicted(c)
                    && (!animal(c)
                        || det[c] >= p.det_sure
                        || if tagged[c] {
                            tag[c] >= p.tag_agree
                        } else {
                            // An animal the tagger cannot name (giraffe) is vetoed by another
                            // animal it names with confidence (the detector confuses animals).
                            !(0..n).any(|o| o != c && animal(o) && tag[o] >= p.tag_conflict)
                        });
                by_det || tag[c] >= p.tag_confident
            })
            .collect();
        // A close-up of an animal the tagger is sure of is not also an unsure, image-filling person.
        if (0..n).any(|c| animal(c) && tag[c] >= p.animal_over_person) {
            for c in (0..n).filter(|&c| classes[c].kind == Kind::Person) {
                let big = boxes[c].iter().any(|b| b.area() >= p.person_box_area);
                if confident[c] && det[c] < p.det_sure && big {
                    confident[c] = false;
                }
            }
        }
        let supported: Vec<bool> = (0..n)
            .map(|c| {
                confident[c]
                    || det[c] >= p.det_support
                    || tag[c] >= p.tag_support
                    || classes[c].small
            })
            .collect();
        let area: Vec<f32> = (0..n)
            .map(|c| {
                if !boxes[c].is_empty() {
                    union_area(&boxes[c])
                } else if confident[c] {
                    0.3 // seen by the tagger only: the whole-image classifier, so assume it is big
                } else {
                    0.0
                }
            })
            .collect();
        let out_of_domain = (0..n).any(|c| {
            confident[c]
                && det[c].max(tag[c]) >= p.ood_score
                && !p.staples.contains(&classes[c].name)
        });
        let mut ev = Evidence {
            det,
            boxes,
            area,
            tag,
            confident,
            supported,
            groups,
            out_of_domain,
        };
        if p.ood_main_only && ev.out_of_domain {
            ev.out_of_domain = self
                .ranked(&ev)
                .first()
                .is_some_and(|&m| !p.staples.contains(&classes[m].name));
        }
        ev
    }

    fn salience(&self, ev: &Evidence, c: usize) -> f32 {
        let kind = self.lex().classes()[c].kind;
        let animate = matches!(kind, Kind::Person | Kind::Animal);
        ev.area[c] * ev.det[c].max(ev.tag[c]) * if animate { 2.5 } else { 1.0 }
    }

    /// Confident classes, most salient first.
    pub fn ranked(&self, ev: &Evidence) -> Vec<usize> {
        let mut cs: Vec<usize> = (0..ev.det.len()).filter(|&c| ev.confident[c]).collect();
        cs.sort_by(|&a, &b| self.salience(ev, b).total_cmp(&self.salience(ev, a)));
        cs
    }

    /// The objects every language's caption should name, when the photo is out-of-domain.
    pub fn plan(&self, ev: &Evidence) -> Vec<usize> {
        let mut r = self.ranked(ev);
        r.truncate(self.params.plan_size);
        r
    }

    /// Whether a model caption may be kept as it is.
    pub fn accepts(&self, ev: &Evidence, text: &str, lang: &str) -> bool {
        let named = self.lex().mentions(text, lang);
        if ev.out_of_domain {
            let plan = self.plan(ev);
            if self.params.ood_subset {
                plan.first().is_some_and(|m| named.contains(m))
                    && named.iter().all(|c| plan.contains(c))
            } else {
                named.len() == plan.len() && plan.iter().all(|c| named.contains(c))
            }
        } else {
            named.iter().all(|&c| ev.supported[c])
        }
    }

    /// Classes whose words a re-decoding must not produce (in-domain photos).
    pub fn banned(&self, ev: &Evidence) -> Vec<usize> {
        (0..ev.det.len()).filter(|&c| !ev.supported[c]).collect()
    }

    /// Whether a caption decoded with bans may be used: it names the main object, if any.
    pub fn accepts_constrained(&self, ev: &Evidence, text: &str, lang: &str) -> bool {
        let named = self.lex().mentions(text, lang);
        if named.iter().any(|&c| !ev.supported[c]) {
            return false;
        }
        match self.ranked(ev).first() {
            Some(main) => named.contains(main),
            None => !self.params.constrained_names_object || !named.is_empty(),
        }
    }

    /// Whether a template should be tried before re-decoding: nothing was seen confidently
    /// but a tag is strong enough to name the photo.
    pub fn tag_first(&self, ev: &Evidence) -> bool {
        self.params.tag_before_constrained
            && !ev.confident.iter().any(|&c| c)
            && ev.groups.iter().any(|&m| m >= self.params.tag_template)
    }

    /// A sentence naming the plan (out-of-domain) or the most salient objects, or the top tag
    /// of a photo without any; `None` when nothing was seen with confidence.
    pub fn template(&self, ev: &Evidence, lang: &str) -> Option<String> {
        let objects = self.plan(ev);
        if objects.is_empty() {
            let (g, mass) = ev
                .groups
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))?;
            if *mass < self.params.tag_template {
                return None;
            }
            let group = &self.vision.tag_groups()[g];
            return Some(Phrase::new(lang).tag(group.label(lang), group.kind));
        }
        Some(compose(self.lex(), ev, &self.ranked(ev), lang))
    }

    /// Objects for output: confident detections (after the animal checks), best first.
    pub fn objects(&self, ev: &Evidence, seen: &Seen) -> Vec<Detection> {
        seen.detections
            .iter()
            .filter(|d| d.score >= self.params.det_confident && ev.confident[d.class])
            .cloned()
            .collect()
    }

    /// Tags for output: confident tag groups and detected classes, by confidence, each label once.
    pub fn tags(&self, ev: &Evidence) -> Vec<(String, String, f32)> {
        let mut out: Vec<(String, String, f32)> = Vec::new();
        let mut push = |en: &str, id: &str, conf: f32| {
            if let Some(t) = out.iter_mut().find(|t| t.0 == en) {
                t.2 = t.2.max(conf);
            } else {
                out.push((en.to_string(), id.to_string(), conf));
            }
        };
        for (g, &mass) in self.vision.tag_groups().iter().zip(&ev.groups) {
            if mass >= self.params.tags_min {
                push(&g.en, &g.id, mass);
            }
        }
        for (c, class) in self.lex().classes().iter().enumerate() {
            if ev.confident[c] {
                push(&class.en, &class.id, ev.det[c].max(ev.tag[c]));
            }
        }
        out.sort_by(|a, b| b.2.total_cmp(&a.2));
        out.truncate(10);
        out
    }
}

/// Noun phrases and their articles, counts and classifiers in English and Indonesian.
struct Phrase<'l> {
    lang: &'l str,
}

const HERD: &[&str] = &["sheep", "cow", "elephant", "zebra", "horse", "giraffe"];

impl<'l> Phrase<'l> {
    fn new(lang: &'l str) -> Self {
        Phrase { lang }
    }

    fn id(&self) -> bool {
        self.lang == "id"
    }

    fn article(word: &str) -> &'static str {
        if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        }
    }

    /// "a cat", "two cats", "a herd of elephants" / "seekor kucing", "dua ekor kucing".
    fn noun(&self, class: &crate::vision::ClassInfo, n: usize) -> String {
        let w = class.label(self.lang);
        if self.id() {
            return match (class.kind, n) {
                (Kind::Person, 1) => "seseorang".into(),
                (Kind::Person, 2) => "dua orang".into(),
                (Kind::Person, _) => "sekelompok orang".into(),
                (Kind::Animal, 1) => format!("seekor {w}"),
                (Kind::Animal, 2) => format!("dua ekor {w}"),
                (Kind::Animal, _)
                    if HERD.contains(&class.name.as_str()) || class.name == "bird" =>
                {
                    format!("sekawanan {w}")
                }
                (Kind::Animal, _) => format!("beberapa ekor {w}"),
                (Kind::Food, 1) => w.to_string(),
                (_, 1) => format!("sebuah {w}"),
                (_, 2) => format!("dua {w}"),
                _ => format!("beberapa {w}"),
            };
        }
        let plural = crate::vision::lexicon::plural_en(w);
        match n {
            _ if class.name == "skis" => "skis".into(),
            _ if class.name == "broccoli" => "broccoli".into(),
            1 if class.kind == Kind::Person => "a person".into(),
            1 => format!("{} {w}", Self::article(w)),
            2 => format!("two {plural}"),
            _ if class.kind == Kind::Person => "a group of people".into(),
            _ if HERD.contains(&class.name.as_str()) => format!("a herd of {plural}"),
            _ if class.name == "bird" => "a flock of birds".into(),
            _ => format!("several {plural}"),
        }
    }

    /// A photo known only by its top tag: "a street sign" / "rambu jalan".
    fn tag(&self, label: &str, kind: Kind) -> String {
        if self.id() {
            return match kind {
                Kind::Animal => format!("seekor {label}"),
                Kind::Place | Kind::Food => label.to_string(),
                _ => format!("sebuah {label}"),
            };
        }
        match kind {
            Kind::Food if !label.ends_with('s') => label.to_string(),
            _ if label.ends_with('s') && !label.ends_with("ss") => label.to_string(),
            _ => format!("{} {label}", Self::article(label)),
        }
    }
}

const RIDE: &[&str] = &[
    "horse",
    "bicycle",
    "motorcycle",
    "skateboard",
    "surfboard",
    "skis",
    "snowboard",
    "elephant",
    "boat",
];
const RIDE_ON: &[&str] = &["skateboard", "surfboard", "skis", "snowboard"];
const HOLD: &[&str] = &[
    "frisbee",
    "kite",
    "umbrella",
    "tennis racket",
    "baseball bat",
    "cell phone",
    "cup",
    "bottle",
    "remote",
    "knife",
    "toothbrush",
    "hair drier",
    "book",
    "wine glass",
    "sports ball",
    "baseball glove",
    "donut",
    "hot dog",
    "pizza",
    "sandwich",
    "banana",
    "teddy bear",
    "scissors",
    "laptop",
];
const SURFACE: &[&str] = &["bed", "couch", "bench", "chair", "dining table", "toilet"];
const KITCHEN: &[&str] = &["oven", "refrigerator", "microwave", "toaster"];

/// Share of box `a` that box `b` covers.
fn covered(a: Option<&BoxFrac>, b: Option<&BoxFrac>) -> f32 {
    match (a, b) {
        (Some(a), Some(b)) if a.area() > 0.0 => a.intersection(b) / a.area(),
        _ => 0.0,
    }
}

/// The template sentence for the confident classes `ranked` (most salient first): the first one
/// or two are named, the rest only set the scene (kitchen, bathroom).
fn compose(lex: &Lexicon, ev: &Evidence, ranked: &[usize], lang: &str) -> String {
    let objects = ranked;
    let classes = lex.classes();
    let ph = Phrase::new(lang);
    let id = lang == "id";
    let count = |c: usize| ev.boxes[c].len().clamp(1, 3);
    let name = |c: usize| classes[c].name.as_str();
    let main = objects[0];
    let subject = ph.noun(&classes[main], count(main));
    let animate = matches!(classes[main].kind, Kind::Person | Kind::Animal);
    let kitchen: Vec<usize> = objects
        .iter()
        .copied()
        .filter(|&c| {
            KITCHEN.contains(&name(c))
                || (name(c) == "sink" && !ev.confident[lex.class_index("toilet").unwrap_or(0)])
        })
        .collect();
    let listed = |cs: &[usize]| -> String {
        let parts: Vec<String> = cs.iter().map(|&c| ph.noun(&classes[c], 1)).collect();
        parts.join(if id { " dan " } else { " and " })
    };
    let bare = |cs: &[usize]| -> String {
        let parts: Vec<&str> = cs.iter().map(|&c| classes[c].label(lang)).collect();
        parts.join(" dan ")
    };
    if !animate && objects.iter().any(|&c| name(c) == "toilet") {
        let mut cs: Vec<usize> = objects
            .iter()
            .copied()
            .filter(|&c| name(c) == "toilet")
            .collect();
        cs.extend(
            objects[1..]
                .iter()
                .copied()
                .filter(|&c| name(c) == "sink")
                .take(1),
        );
        return if id {
            format!("kamar mandi dengan {}", bare(&cs))
        } else {
            format!("a bathroom with {}", listed(&cs))
        };
    }
    if !animate && !kitchen.is_empty() {
        let two = &kitchen[..kitchen.len().min(2)];
        return if id {
            format!("dapur dengan {}", bare(two))
        } else {
            format!("a kitchen with {}", listed(two))
        };
    }
    let Some(&second) = objects.get(1) else {
        return subject;
    };
    let (mb, sb) = (ev.boxes[main].first(), ev.boxes[second].first());
    let ov = covered(mb, sb);
    let sec = name(second);
    let sec_np = ph.noun(&classes[second], 1);
    let sec_label = classes[second].label(lang);
    let person = classes[main].kind == Kind::Person;
    if person && RIDE.contains(&sec) && ov > 0.2 {
        return if id {
            let verb = if matches!(sec, "horse" | "bicycle" | "motorcycle" | "elephant") {
                "mengendarai"
            } else if sec == "boat" {
                "naik"
            } else {
                "di atas"
            };
            format!("{subject} {verb} {sec_label}")
        } else if RIDE_ON.contains(&sec) {
            format!("{subject} on {sec_np}")
        } else {
            format!("{subject} riding {sec_np}")
        };
    }
    let single = count(main) == 1;
    if person && HOLD.contains(&sec) && ov > 0.05 {
        return match (id, sec == "kite", single) {
            (false, true, _) => format!("{subject} flying a kite"),
            (true, true, _) => format!("{subject} bermain layang-layang"),
            (false, false, true) => format!("{subject} holding {sec_np}"),
            (false, false, false) => format!("{subject} with {sec_np}"),
            (true, false, true) => format!("{subject} memegang {sec_label}"),
            (true, false, false) => format!("{subject} dengan {sec_label}"),
        };
    }
    if SURFACE.contains(&sec) && ov > 0.3 {
        let at_table = sec == "dining table" && person;
        return match (id, at_table) {
            (false, true) => format!("{subject} at {sec_np}"),
            (false, false) => format!("{subject} on {sec_np}"),
            (true, true) => format!("{subject} di {sec_label}"),
            (true, false) => format!("{subject} di atas {sec_label}"),
        };
    }
    if person && !kitchen.is_empty() {
        return if id {
            format!("{subject} di dapur")
        } else {
            format!("{subject} in a kitchen")
        };
    }
    let other = ph.noun(&classes[second], count(second));
    if id {
        format!("{subject} dan {other}")
    } else {
        format!("{subject} and {other}")
    }
}

/// How sure a caption is: features of the caption and the evidence, and a logistic map fitted
/// on dev photos to the chance that the caption names no object that is absent.
pub struct Review;

impl Review {
    /// Feature vector (without the bias): source one-hot, the caption's mean log-probability,
    /// the weakest evidence of a named class, whether a named class is only weakly supported,
    /// whether the main object is named, out-of-domain, number of confident classes, and the
    /// strongest tag group.
    pub fn features(
        lex: &Lexicon,
        ev: &Evidence,
        main: Option<usize>,
        text: &str,
        lang: &str,
        source: Source,
        logprob: Option<f32>,
    ) -> Vec<f32> {
        let named = lex.mentions(text, lang);
        let weakest = named
            .iter()
            .map(|&c| ev.det[c].max(ev.tag[c]))
            .fold(1.0f32, f32::min);
        let weak = named.iter().any(|&c| !ev.confident[c]) as u8 as f32;
        let main_named = main.map(|m| named.contains(&m) as u8 as f32).unwrap_or(1.0);
        vec![
            (source == Source::Model) as u8 as f32,
            (source == Source::Constrained) as u8 as f32,
            (source == Source::Template) as u8 as f32,
            logprob.unwrap_or(0.0),
            if named.is_empty() { 0.0 } else { weakest },
            weak,
            main_named,
            ev.out_of_domain as u8 as f32,
            ev.confident.iter().filter(|&&c| c).count() as f32,
            ev.groups.iter().copied().fold(0.0, f32::max),
            named.is_empty() as u8 as f32,
        ]
    }

    /// Confidence 0..1 from the features; 0.5 when the bundle has no fitted weights.
    pub fn confidence(params: &GroundingParams, features: &[f32]) -> f32 {
        let w = &params.review_weights;
        if w.len() != features.len() + 1 {
            return 0.5;
        }
        let z = w[0] + w[1..].iter().zip(features).map(|(a, b)| a * b).sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }
}
