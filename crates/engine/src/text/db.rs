//! Text detection around the model: the input size rule, and the Differentiable Binarization
//! (DB) post-processing that turns the model's per-pixel text probability into rotated boxes.
//! Each step is the reference's (`rapidocr/ch_ppocr_det/utils.py`, `DBPostProcess` with the
//! package's `config.yaml` values), in its order:
//!
//! 1. binarise: probability > `thresh` (0.3), then dilate with a 2×2 kernel;
//! 2. one candidate per contour (outer borders and holes), at most `max_candidates` (1000);
//! 3. its minimum-area rectangle; drop it if the shorter side is under `min_size` (3);
//! 4. score = mean probability inside that rectangle (`score_mode: fast`); drop it under
//!    `box_thresh` (0.5);
//! 5. unclip: grow the rectangle by area × `unclip_ratio` (1.6) / perimeter with round joins,
//!    take the new polygon's minimum-area rectangle, drop it if its shorter side is under
//!    `min_size + 2`;
//! 6. scale to the input image (rounded half to even, clipped), order corners clockwise from
//!    top-left, clip to the image, drop boxes 3 pixels or less across;
//! 7. reading order: top-left corners by y; a gap of 10 pixels or more starts a new row; rows
//!    left to right.

use serde::Serialize;

use super::geom::{self, Point};

/// A quadrilateral: top-left, top-right, bottom-right, bottom-left.
pub type Quad = [Point; 4];

/// DB post-processing parameters (the reference's defaults).
#[derive(Debug, Clone, Copy)]
pub struct DbParams {
    /// Binarisation threshold on the probability map.
    pub thresh: f32,
    /// Smallest mean probability of a kept box.
    pub box_thresh: f64,
    /// Largest number of contours looked at.
    pub max_candidates: usize,
    /// Growth of a box relative to area / perimeter.
    pub unclip_ratio: f64,
    /// Smallest shorter side of a box before growth, in map pixels.
    pub min_size: f32,
}

impl Default for DbParams {
    fn default() -> Self {
        DbParams {
            thresh: 0.3,
            box_thresh: 0.5,
            max_candidates: 1000,
            unclip_ratio: 1.6,
            min_size: 3.0,
        }
    }
}

/// How large the detector's input is (the reference's `limit_type` and `limit_side_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorSize {
    /// `limit_type: min`, the package's default with 736: the shorter side is brought up to at
    /// least this many pixels (a 1-megapixel photo is detected at full size).
    MinSide(u32),
    /// `limit_type: max`: the longer side is brought down to at most this many pixels; smaller
    /// images keep their size.
    MaxSide(u32),
}

/// The reference's `DetPreProcess.resize`: the ratio from [`DetectorSize`], then both sides
/// rounded to multiples of 32 (Python's `round`, half to even). `None` when a side rounds to 0.
pub fn input_size(w: u32, h: u32, size: DetectorSize) -> Option<(u32, u32)> {
    let ratio = match size {
        DetectorSize::MinSide(limit) if w.min(h) < limit => {
            limit as f64 / if h < w { h } else { w } as f64
        }
        DetectorSize::MaxSide(limit) if w.max(h) > limit => {
            limit as f64 / if h > w { h } else { w } as f64
        }
        _ => 1.0,
    };
    let rw = (w as f64 * ratio) as u32;
    let rh = (h as f64 * ratio) as u32;
    let r32 = |v: u32| ((v as f64 / 32.0).round_ties_even() * 32.0) as u32;
    let (rw, rh) = (r32(rw), r32(rh));
    (rw > 0 && rh > 0).then_some((rw, rh))
}

/// Boxes and scores from a `height × width` probability map, in the coordinates of a
/// `dest_w × dest_h` image, in reading order.
pub fn boxes_from_map(
    prob: &[f32],
    width: usize,
    height: usize,
    dest_w: u32,
    dest_h: u32,
    p: &DbParams,
) -> Vec<(Quad, f64)> {
    debug_assert_eq!(prob.len(), width * height);
    // Binarise and dilate (2×2 kernel, anchor at its centre: a pixel is set when it or its
    // left, upper or upper-left neighbour is above the threshold).
    let seg: Vec<bool> = prob.iter().map(|&v| v > p.thresh).collect();
    let mut mask = vec![false; width * height];
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            mask[i] = seg[i]
                || (x > 0 && seg[i - 1])
                || (y > 0 && seg[i - width])
                || (x > 0 && y > 0 && seg[i - width - 1]);
        }
    }
    let contours = geom::contour_point_sets(&mask, width, height);
    let mut out = Vec::new();
    for contour in contours.iter().take(p.max_candidates) {
        let pts: Vec<Point> = contour.iter().map(|q| [q[0] as f32, q[1] as f32]).collect();
        let (points, sside) = geom::mini_box(&pts);
        if sside < p.min_size {
            continue;
        }
        let score = box_score_fast(prob, width, height, &points);
        if p.box_thresh > score {
            continue;
        }
        let (area, length) = geom::area_and_length(&points);
        let expanded = geom::offset_round(&points, area * p.unclip_ratio / length);
        if expanded.is_empty() {
            continue;
        }
        let epts: Vec<Point> = expanded
            .iter()
            .map(|q| [q[0] as f32, q[1] as f32])
            .collect();
        let (mut b, sside) = geom::mini_box(&epts);
        if sside < p.min_size + 2.0 {
            continue;
        }
        // numpy float32: box / width * dest_width, rounded half to even, clipped.
        for c in &mut b {
            c[0] = (c[0] / width as f32 * dest_w as f32)
                .round_ties_even()
                .clamp(0.0, dest_w as f32);
            c[1] = (c[1] / height as f32 * dest_h as f32)
                .round_ties_even()
                .clamp(0.0, dest_h as f32);
        }
        out.push((b, score));
    }
    // filter_det_res
    let mut kept: Vec<(Quad, f64)> = Vec::with_capacity(out.len());
    for (b, score) in out {
        let mut q = order_clockwise(&b);
        for c in &mut q {
            c[0] = c[0].clamp(0.0, dest_w as f32 - 1.0).trunc();
            c[1] = c[1].clamp(0.0, dest_h as f32 - 1.0).trunc();
        }
        let dist = |a: Point, b: Point| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        let rect_width = dist(q[0], q[1]) as i64;
        let rect_height = dist(q[0], q[3]) as i64;
        if rect_width <= 3 || rect_height <= 3 {
            continue;
        }
        kept.push((q, score));
    }
    reading_order(kept)
}

/// The reference's `box_score_fast`: mean probability inside the box's polygon.
fn box_score_fast(prob: &[f32], w: usize, h: usize, b: &Quad) -> f64 {
    let fmin = |i: usize| b.iter().map(|p| p[i]).fold(f32::INFINITY, f32::min);
    let fmax = |i: usize| b.iter().map(|p| p[i]).fold(f32::NEG_INFINITY, f32::max);
    let xmin = (fmin(0).floor() as i64).clamp(0, w as i64 - 1) as usize;
    let xmax = (fmax(0).ceil() as i64).clamp(0, w as i64 - 1) as usize;
    let ymin = (fmin(1).floor() as i64).clamp(0, h as i64 - 1) as usize;
    let ymax = (fmax(1).ceil() as i64).clamp(0, h as i64 - 1) as usize;
    let (mw, mh) = (xmax - xmin + 1, ymax - ymin + 1);
    let mut mask = vec![0u8; mw * mh];
    let pts: Vec<[i32; 2]> = b
        .iter()
        .map(|p| [(p[0] - xmin as f32) as i32, (p[1] - ymin as f32) as i32])
        .collect();
    geom::fill_poly(&mut mask, mw, mh, &pts);
    let (mut sum, mut n) = (0f64, 0usize);
    for y in 0..mh {
        for x in 0..mw {
            if mask[y * mw + x] != 0 {
                sum += prob[(ymin + y) * w + xmin + x] as f64;
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The reference's `order_points_clockwise`: the two leftmost corners (stable sort on x) by y
/// give top-left and bottom-left, the two rightmost give top-right and bottom-right.
fn order_clockwise(b: &Quad) -> Quad {
    let mut xs = *b;
    xs.sort_by(|p, q| p[0].total_cmp(&q[0]));
    let mut left = [xs[0], xs[1]];
    let mut right = [xs[2], xs[3]];
    left.sort_by(|p, q| p[1].total_cmp(&q[1]));
    right.sort_by(|p, q| p[1].total_cmp(&q[1]));
    [left[0], right[0], right[1], left[1]]
}

/// The reference's `sorted_boxes`: stable sort on the top-left y; consecutive boxes whose
/// top-left y differ by 10 pixels or more start a new row; each row left to right (stable).
fn reading_order(mut boxes: Vec<(Quad, f64)>) -> Vec<(Quad, f64)> {
    boxes.sort_by(|a, b| a.0[0][1].total_cmp(&b.0[0][1]));
    let mut row = 0usize;
    let mut keyed: Vec<(usize, f32, (Quad, f64))> = Vec::with_capacity(boxes.len());
    let mut prev_y: Option<f32> = None;
    for b in boxes {
        let y = b.0[0][1];
        if let Some(py) = prev_y {
            if y - py >= ROW_GAP {
                row += 1;
            }
        }
        prev_y = Some(y);
        keyed.push((row, b.0[0][0], b));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    keyed.into_iter().map(|(_, _, b)| b).collect()
}

/// Top-left corners closer than this (in pixels of the detector's input image) share a row.
pub const ROW_GAP: f32 = 10.0;

/// Row number of each box of a reading-ordered list (the rule of [`reading_order`]).
pub fn rows_of(boxes: &[Quad]) -> Vec<usize> {
    let mut ys: Vec<(f32, usize)> = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| (b[0][1], i))
        .collect();
    ys.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rows = vec![0usize; boxes.len()];
    let mut row = 0usize;
    for k in 0..ys.len() {
        if k > 0 && ys[k].0 - ys[k - 1].0 >= ROW_GAP {
            row += 1;
        }
        rows[ys[k].1] = row;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_size_rounds_to_multiples_of_32() {
        let min = DetectorSize::MinSide(736);
        assert_eq!(input_size(1224, 816, min), Some((1216, 832)));
        assert_eq!(input_size(640, 427, min), Some((1088, 736)));
        assert_eq!(input_size(300, 40, min), Some((5504, 736)));
        let max = DetectorSize::MaxSide(640);
        assert_eq!(input_size(1224, 816, max), Some((640, 416)));
        assert_eq!(input_size(500, 375, max), Some((512, 384)));
    }

    #[test]
    fn one_bright_bar_gives_one_grown_box() {
        let (w, h) = (64usize, 32usize);
        let mut prob = vec![0.0f32; w * h];
        for y in 12..20 {
            for x in 10..50 {
                prob[y * w + x] = 0.9;
            }
        }
        let boxes = boxes_from_map(&prob, w, h, 128, 64, &DbParams::default());
        assert_eq!(boxes.len(), 1);
        let (q, score) = boxes[0];
        assert!(score > 0.7, "{score}");
        // Grown beyond the bar (x 10..50, y 12..20 in the map, doubled in the image).
        assert!(q[0][0] < 20.0 && q[1][0] > 98.0, "{q:?}");
        assert!(q[0][1] < 24.0 && q[2][1] > 38.0, "{q:?}");
    }

    #[test]
    fn reading_order_is_rows_then_left_to_right() {
        let quad =
            |x: f32, y: f32| -> Quad { [[x, y], [x + 10.0, y], [x + 10.0, y + 5.0], [x, y + 5.0]] };
        let boxes = vec![
            (quad(50.0, 3.0), 0.9),
            (quad(0.0, 40.0), 0.9),
            (quad(0.0, 8.0), 0.9),
        ];
        let order: Vec<f32> = reading_order(boxes).iter().map(|b| b.0[0][0]).collect();
        assert_eq!(order, vec![0.0, 50.0, 0.0]);
    }
}
