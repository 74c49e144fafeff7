//! What is in a photo, independently of the caption: an object detector (COCO-80 boxes) and an
//! ImageNet tagger, loaded from a *vision bundle* — a directory holding `vision.json`
//! ([`lexicon`]), `detector_model.onnx` ([`detector`]) and `tagger_model.onnx` ([`tagger`]).
//!
//! The default model directory is such a bundle as well as a captioner, so one path loads all
//! three; any other captioner (an `hf:` model, say) works alone, or with a bundle named
//! explicitly (`CaptionerOptions::vision`). Both networks run on the image that was decoded
//! once for the captioner, and their outputs are what [`crate::grounding`] checks captions
//! against.

pub mod detector;
pub mod lexicon;
pub mod tagger;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use detector::{BoxFrac, Detection, Detector};
pub use lexicon::{ClassInfo, Kind, Lexicon, TagGroup, VisionSpec};
pub use tagger::Tagger;

use crate::error::{EngineError, Result};

/// The file that makes a directory a vision bundle.
pub const VISION_FILE: &str = "vision.json";

/// A loaded vision bundle. `Send + Sync`: one per process.
pub struct Vision {
    dir: PathBuf,
    spec: VisionSpec,
    lexicon: Lexicon,
    detector: Detector,
    tagger: Tagger,
}

/// The pre-processed inputs of both networks for one image.
#[derive(Debug, Clone)]
pub struct VisionInput {
    /// Detector input `[3, S, S]`.
    pub detector: Vec<f32>,
    /// Tagger input `[3, S, S]`.
    pub tagger: Vec<f32>,
}

/// What the two networks saw in one image.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Detections, best first (scores ≥ 0.05).
    pub detections: Vec<Detection>,
    /// ImageNet-1k probabilities.
    pub imagenet: Vec<f32>,
}

/// An object for output: class in both languages, confidence, box in pixels of the upright image.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DetectedObject {
    /// English name.
    pub name_en: String,
    /// Indonesian name.
    pub name_id: String,
    /// COCO class name (stable identifier).
    pub class: String,
    /// Detector score 0..1.
    pub confidence: f32,
    /// `[x, y, width, height]` in pixels of the upright image.
    pub bbox: [u32; 4],
}

/// A tag for output: an everyday word for what the image shows, in both languages.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageTag {
    /// English label.
    pub name_en: String,
    /// Indonesian label.
    pub name_id: String,
    /// Confidence 0..1.
    pub confidence: f32,
}

impl Vision {
    /// Whether `dir` holds a vision bundle.
    pub fn is_bundle(dir: &Path) -> bool {
        dir.join(VISION_FILE).is_file()
    }

    /// Opens a bundle: reads `vision.json` and both graphs.
    pub fn load(dir: &Path, threads: usize) -> Result<Self> {
        let spec = VisionSpec::load(&dir.join(VISION_FILE))?;
        let detector = Detector::load(dir, &spec.detector, threads)?;
        let tagger = Tagger::load(dir, &spec.tagger, threads)?;
        let lexicon = Lexicon::new(spec.classes.clone());
        Ok(Vision {
            dir: dir.to_path_buf(),
            spec,
            lexicon,
            detector,
            tagger,
        })
    }

    /// The bundle's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Classes and the caption-word matcher.
    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// The tag groups.
    pub fn tag_groups(&self) -> &[TagGroup] {
        &self.spec.tag_groups
    }

    /// Both networks' inputs for one upright RGB image (made while the image is decoded, so
    /// that the full-size pixels can be dropped early).
    pub fn inputs(&self, img: &image::RgbImage) -> Result<VisionInput> {
        Ok(VisionInput {
            detector: self.detector.preprocess(img)?,
            tagger: self.tagger.preprocess(img)?,
        })
    }

    /// Runs both networks (the tagger as one batch; the detector's graph takes one image).
    pub fn see(&self, inputs: &[&VisionInput]) -> Result<Vec<Seen>> {
        let refs: Vec<&[f32]> = inputs.iter().map(|i| i.tagger.as_slice()).collect();
        let imagenet = self.tagger.classify(&refs)?;
        inputs
            .iter()
            .zip(imagenet)
            .map(|(input, imagenet)| {
                Ok(Seen {
                    detections: self.detector.detect_tensor(&input.detector)?,
                    imagenet,
                })
            })
            .collect()
    }

    /// Probability mass of each tag group.
    pub fn group_scores(&self, imagenet: &[f32]) -> Vec<f32> {
        self.spec
            .tag_groups
            .iter()
            .map(|g| g.imagenet.iter().map(|&i| imagenet[i]).sum())
            .collect()
    }
}

/// Opens one of the bundle's graphs (run once per image, so its threads do not spin) and names
/// its input: the detector and the tagger load alike.
pub(crate) fn open_graph(
    dir: &Path,
    file: &str,
    what: &str,
    threads: usize,
) -> Result<(ort::session::Session, String, PathBuf)> {
    let path = dir.join(file);
    if !path.is_file() {
        return Err(EngineError::model(&path, format!("{what} graph missing")));
    }
    let env = crate::runtime::environment(None)?;
    let session = crate::onnx::open_once_per_image(env, &path, threads)?;
    let input = session
        .inputs()
        .first()
        .map(|i| i.name().to_string())
        .ok_or_else(|| EngineError::model(&path, format!("{what} has no input")))?;
    Ok((session, input, path))
}
