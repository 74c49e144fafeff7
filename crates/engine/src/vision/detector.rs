//! The object detector: NanoDet (a COCO-80, anchor-free GFL detector) run through ONNX Runtime.
//!
//! Input: the upright photo stretched to a square (`input_size`, 416), in the channel order and
//! normalisation `vision.json` gives (BGR, mean/std on 0..255 for NanoDet). Output, per stride
//! (8, 16, 32): one row per grid cell with 80 class scores (already sigmoid) and 4 × (reg_max+1)
//! distance bins (left, top, right, bottom). A box side is the expectation of its softmaxed bins
//! times the stride, measured from the cell centre — the General Focal Loss integral. Boxes of
//! one class that overlap by more than 0.6 IoU keep only the highest score.

use std::path::Path;
use std::sync::Mutex;

use fast_image_resize as fir;
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use serde::Serialize;

use super::lexicon::DetectorSpec;
use crate::error::{EngineError, Result};

/// Candidates below this score are not decoded at all.
const MIN_SCORE: f32 = 0.05;
/// Same-class boxes overlapping more than this are one object.
const NMS_IOU: f32 = 0.6;
/// At most this many detections per image.
const MAX_DETECTIONS: usize = 100;

/// A box in fractions of the image's width and height (0..1), upright.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoxFrac {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
}

impl BoxFrac {
    /// Area as a fraction of the image.
    pub fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    /// Intersection over union.
    pub fn iou(&self, o: &BoxFrac) -> f32 {
        let inter = self.intersection(o);
        let union = self.area() + o.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// Overlapping area.
    pub fn intersection(&self, o: &BoxFrac) -> f32 {
        let w = (self.x1.min(o.x1) - self.x0.max(o.x0)).max(0.0);
        let h = (self.y1.min(o.y1) - self.y0.max(o.y0)).max(0.0);
        w * h
    }
}

/// One detected object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// Class index (detector order).
    pub class: usize,
    /// Score 0..1.
    pub score: f32,
    /// Where.
    pub bbox: BoxFrac,
}

/// The detector session and its conventions.
pub struct Detector {
    session: Mutex<Session>,
    input: String,
    spec: DetectorSpec,
}

impl Detector {
    /// Opens the detector graph of a bundle.
    pub fn load(dir: &Path, spec: &DetectorSpec, threads: usize) -> Result<Self> {
        let (session, input, path) = super::open_graph(dir, &spec.file, "detector", threads)?;
        let outputs = session.outputs().len();
        if outputs != 2 * spec.strides.len() {
            return Err(EngineError::model(
                &path,
                format!(
                    "detector has {outputs} outputs, expected scores and boxes for {} strides",
                    spec.strides.len()
                ),
            ));
        }
        Ok(Detector {
            session: Mutex::new(session),
            input,
            spec: spec.clone(),
        })
    }

    /// The detector's input tensor `[1, 3, S, S]` for an upright RGB image.
    pub fn preprocess(&self, img: &image::RgbImage) -> Result<Vec<f32>> {
        let s = self.spec.input_size;
        let resized = resize_exact(img, s, s)?;
        let plane = (s * s) as usize;
        let mut chw = vec![0f32; 3 * plane];
        let bgr = self.spec.channel_order == "bgr";
        for (i, px) in resized.chunks_exact(3).enumerate() {
            for c in 0..3 {
                let v = px[if bgr { 2 - c } else { c }] as f32;
                chw[c * plane + i] = (v - self.spec.mean[c]) / self.spec.std[c];
            }
        }
        Ok(chw)
    }

    /// Detects objects from a pre-processed tensor.
    pub fn detect_tensor(&self, pixels: &[f32]) -> Result<Vec<Detection>> {
        let s = self.spec.input_size as usize;
        let n_classes = self.spec.classes.len();
        let bins = self.spec.reg_max + 1;
        let input = TensorRef::from_array_view(([1usize, 3, s, s], pixels))?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(vec![(
            std::borrow::Cow::from(self.input.as_str()),
            SessionInputValue::from(input),
        )])?;
        // Outputs are recognised by shape: [1, cells, classes] scores, [1, cells, 4*bins] boxes.
        let mut scores: Vec<(usize, Vec<f32>)> = Vec::new();
        let mut boxes: Vec<(usize, Vec<f32>)> = Vec::new();
        for (_, value) in outputs.iter() {
            let (shape, data) = value.try_extract_tensor::<f32>()?;
            if shape.len() != 3 {
                return Err(EngineError::Inference(format!(
                    "detector output of shape {shape:?}"
                )));
            }
            let cells = shape[1] as usize;
            match shape[2] as usize {
                w if w == n_classes => scores.push((cells, data.to_vec())),
                w if w == 4 * bins => boxes.push((cells, data.to_vec())),
                w => {
                    return Err(EngineError::Inference(format!(
                        "detector output width {w} is neither {n_classes} classes nor {} bins",
                        4 * bins
                    )))
                }
            }
        }
        drop(outputs);
        drop(session);
        let mut candidates = Vec::new();
        for &stride in &self.spec.strides {
            let side = s / stride as usize;
            let cells = side * side;
            let sc = &scores
                .iter()
                .find(|(c, _)| *c == cells)
                .ok_or_else(|| EngineError::Inference(format!("no scores for stride {stride}")))?
                .1;
            let bx = &boxes
                .iter()
                .find(|(c, _)| *c == cells)
                .ok_or_else(|| EngineError::Inference(format!("no boxes for stride {stride}")))?
                .1;
            for cell in 0..cells {
                let row = &sc[cell * n_classes..(cell + 1) * n_classes];
                for (class, &score) in row.iter().enumerate() {
                    if score <= MIN_SCORE {
                        continue;
                    }
                    let cx = ((cell % side) as f32 + 0.5) * stride as f32;
                    let cy = ((cell / side) as f32 + 0.5) * stride as f32;
                    let dist = |side_i: usize| {
                        let b = &bx[cell * 4 * bins + side_i * bins
                            ..cell * 4 * bins + (side_i + 1) * bins];
                        expectation(b) * stride as f32
                    };
                    let size = s as f32;
                    candidates.push(Detection {
                        class,
                        score,
                        bbox: BoxFrac {
                            x0: ((cx - dist(0)) / size).clamp(0.0, 1.0),
                            y0: ((cy - dist(1)) / size).clamp(0.0, 1.0),
                            x1: ((cx + dist(2)) / size).clamp(0.0, 1.0),
                            y1: ((cy + dist(3)) / size).clamp(0.0, 1.0),
                        },
                    });
                }
            }
        }
        Ok(nms(candidates))
    }
}

/// Softmax over the bins, then the expected bin index.
fn expectation(bins: &[f32]) -> f32 {
    let max = bins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    let mut acc = 0.0;
    for (i, &b) in bins.iter().enumerate() {
        let e = (b - max).exp();
        sum += e;
        acc += e * i as f32;
    }
    acc / sum
}

/// Per-class non-maximum suppression, best first, capped.
fn nms(mut dets: Vec<Detection>) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::new();
    for d in dets {
        if keep
            .iter()
            .all(|k| k.class != d.class || k.bbox.iou(&d.bbox) < NMS_IOU)
        {
            keep.push(d);
            if keep.len() == MAX_DETECTIONS {
                break;
            }
        }
    }
    keep
}

/// Resizes (bilinear, aspect ratio not kept) to `w × h`; returns packed RGB bytes.
pub(crate) fn resize_exact(img: &image::RgbImage, w: u32, h: u32) -> Result<Vec<u8>> {
    if img.dimensions() == (w, h) {
        return Ok(img.as_raw().clone());
    }
    let src = fir::images::ImageRef::new(
        img.width(),
        img.height(),
        img.as_raw(),
        fir::PixelType::U8x3,
    )
    .map_err(|e| EngineError::CorruptImage(e.to_string()))?;
    let mut dst = fir::images::Image::new(w, h, fir::PixelType::U8x3);
    fir::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &fir::ResizeOptions::new()
                .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear)),
        )
        .map_err(|e| EngineError::CorruptImage(e.to_string()))?;
    Ok(dst.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_of_bins() {
        assert!((expectation(&[0.0, 0.0]) - 0.5).abs() < 1e-6);
        assert!((expectation(&[-50.0, -50.0, 50.0]) - 2.0).abs() < 1e-4);
    }

    #[test]
    fn nms_keeps_best_per_class() {
        let b = |x0, score, class| Detection {
            class,
            score,
            bbox: BoxFrac {
                x0,
                y0: 0.0,
                x1: x0 + 0.5,
                y1: 0.5,
            },
        };
        let kept = nms(vec![
            b(0.0, 0.5, 0),
            b(0.01, 0.9, 0),
            b(0.0, 0.4, 1),
            b(0.5, 0.3, 0),
        ]);
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].class, 1);
        assert_eq!(kept[2].bbox.x0, 0.5);
    }
}
