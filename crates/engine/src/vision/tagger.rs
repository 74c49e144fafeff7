//! The tagger: the original ImageNet-1k EfficientNet-Lite2 classifier, run through ONNX Runtime.
//!
//! The captioner's encoder fine-tuned the backbone's top blocks for captioning, so its features
//! no longer match the 1000-class head; the tagger is the untouched network. Its 1000
//! probabilities are summed into everyday tag groups (`tabby`, `tiger cat`, `Persian cat` → cat)
//! and into evidence for the detector's COCO classes.

use std::path::Path;
use std::sync::Mutex;

use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use super::detector::resize_exact;
use super::lexicon::TaggerSpec;
use crate::error::{EngineError, Result};

/// The tagger session and its conventions.
pub struct Tagger {
    session: Mutex<Session>,
    input: String,
    spec: TaggerSpec,
}

impl Tagger {
    /// Opens the tagger graph of a bundle.
    pub fn load(dir: &Path, spec: &TaggerSpec, threads: usize) -> Result<Self> {
        let (session, input, _) = super::open_graph(dir, &spec.file, "tagger", threads)?;
        Ok(Tagger {
            session: Mutex::new(session),
            input,
            spec: spec.clone(),
        })
    }

    /// The tagger's input `[3, S, S]` for an upright RGB image.
    pub fn preprocess(&self, img: &image::RgbImage) -> Result<Vec<f32>> {
        let s = self.spec.input_size;
        let resized = resize_exact(img, s, s)?;
        let plane = (s * s) as usize;
        let mut chw = vec![0f32; 3 * plane];
        for (i, px) in resized.chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * plane + i] = (px[c] as f32 / 255.0 - self.spec.mean[c]) / self.spec.std[c];
            }
        }
        Ok(chw)
    }

    /// ImageNet probabilities (1000 per image) for a batch of pre-processed images.
    pub fn classify(&self, pixels: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        if pixels.is_empty() {
            return Ok(vec![]);
        }
        let s = self.spec.input_size as usize;
        let mut batch = Vec::with_capacity(pixels.len() * 3 * s * s);
        for p in pixels {
            batch.extend_from_slice(p);
        }
        let input = TensorRef::from_array_view(([pixels.len(), 3, s, s], batch.as_slice()))?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(vec![(
            std::borrow::Cow::from(self.input.as_str()),
            SessionInputValue::from(input),
        )])?;
        let (shape, data) = outputs[0].try_extract_tensor::<f32>()?;
        let width = *shape.last().unwrap_or(&0) as usize;
        if width != 1000 || shape[0] as usize != pixels.len() {
            return Err(EngineError::Inference(format!(
                "tagger output of shape {shape:?}, expected [{}, 1000]",
                pixels.len()
            )));
        }
        Ok(data.chunks(width).map(<[f32]>::to_vec).collect())
    }
}
