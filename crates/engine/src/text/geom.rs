//! Plane geometry of the detector's post-processing, computed the way the reference computes it:
//! OpenCV's `findContours` (as point sets), `convexHull` + `minAreaRect` (rotating calipers in
//! single precision), `boxPoints`, `fillPoly`, and Clipper's round-join polygon offset
//! (`pyclipper`). Matching their arithmetic, not just their geometry, is what keeps the boxes
//! within a pixel of the Python package: the reference truncates float corners to integers
//! before offsetting, so a corner computed as 9.9999 instead of 10.0 moves a box by a pixel.

/// A point in pixel coordinates.
pub type Point = [f32; 2];

/// Point sets whose convex hulls are those of the contours `cv2.findContours(mask,
/// RETR_LIST, CHAIN_APPROX_SIMPLE)` returns: one per 8-connected foreground component (its
/// outer border) and one per hole (a 4-connected background region that does not reach the
/// image edge; its border is the foreground pixels 4-adjacent to it). Only the hull of a contour
/// matters downstream (minimum-area rectangles), so each set holds just the leftmost and
/// rightmost pixel of every row. Pixels on the image edge belong to their component (OpenCV 5
/// pads the image with background rather than clearing its frame). Sets come in raster order
/// of their first pixel.
pub fn contour_point_sets(mask: &[bool], w: usize, h: usize) -> Vec<Vec<[i32; 2]>> {
    debug_assert_eq!(mask.len(), w * h);
    const NONE: u32 = u32::MAX;
    // Foreground components, 8-connected.
    let mut label = vec![NONE; w * h];
    let mut first_pixel: Vec<usize> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    for start in 0..w * h {
        if !mask[start] || label[start] != NONE {
            continue;
        }
        let id = first_pixel.len() as u32;
        first_pixel.push(start);
        label[start] = id;
        stack.push(start);
        while let Some(p) = stack.pop() {
            let (x, y) = ((p % w) as isize, (p / w) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let q = ny as usize * w + nx as usize;
                    if mask[q] && label[q] == NONE {
                        label[q] = id;
                        stack.push(q);
                    }
                }
            }
        }
    }
    let mut sets: Vec<(usize, RowExtremes)> = first_pixel
        .iter()
        .map(|&p| (p, RowExtremes::default()))
        .collect();
    for (p, &l) in label.iter().enumerate() {
        if l != NONE {
            sets[l as usize].1.add((p % w) as i32, (p / w) as i32);
        }
    }

    // Holes: background regions, 4-connected, not reaching the edge.
    let mut bg = vec![NONE; w * h];
    const OUTSIDE: u32 = u32::MAX - 1;
    let flood = |seed: usize, id: u32, bg: &mut Vec<u32>, stack: &mut Vec<usize>| {
        bg[seed] = id;
        stack.push(seed);
        let mut members = Vec::new();
        while let Some(p) = stack.pop() {
            members.push(p);
            let (x, y) = (p % w, p / w);
            let mut visit = |q: usize| {
                if !mask[q] && bg[q] == NONE {
                    bg[q] = id;
                    stack.push(q);
                }
            };
            if x > 0 {
                visit(p - 1);
            }
            if x + 1 < w {
                visit(p + 1);
            }
            if y > 0 {
                visit(p - w);
            }
            if y + 1 < h {
                visit(p + w);
            }
        }
        members
    };
    for x in 0..w {
        for p in [x, (h - 1) * w + x] {
            if !mask[p] && bg[p] == NONE {
                flood(p, OUTSIDE, &mut bg, &mut stack);
            }
        }
    }
    for y in 0..h {
        for p in [y * w, y * w + w - 1] {
            if !mask[p] && bg[p] == NONE {
                flood(p, OUTSIDE, &mut bg, &mut stack);
            }
        }
    }
    let mut next_hole = 0u32;
    for start in 0..w * h {
        if mask[start] || bg[start] != NONE {
            continue;
        }
        let members = flood(start, next_hole, &mut bg, &mut stack);
        next_hole += 1;
        let mut border = RowExtremes::default();
        let mut first = usize::MAX;
        for p in members {
            // A hole never touches the edge, so all four neighbours exist.
            for q in [p - 1, p + 1, p - w, p + w] {
                if mask[q] {
                    border.add((q % w) as i32, (q / w) as i32);
                    first = first.min(q);
                }
            }
        }
        sets.push((first, border));
    }
    sets.sort_by_key(|(first, _)| *first);
    sets.into_iter().map(|(_, r)| r.points()).collect()
}

/// Leftmost and rightmost x of each row of a pixel set.
#[derive(Default)]
struct RowExtremes {
    y0: i32,
    rows: Vec<(i32, i32)>,
}

impl RowExtremes {
    fn add(&mut self, x: i32, y: i32) {
        if self.rows.is_empty() {
            self.y0 = y;
        }
        if y < self.y0 {
            let extra = (self.y0 - y) as usize;
            self.rows
                .splice(0..0, std::iter::repeat_n((i32::MAX, i32::MIN), extra));
            self.y0 = y;
        }
        let i = (y - self.y0) as usize;
        if i >= self.rows.len() {
            self.rows.resize(i + 1, (i32::MAX, i32::MIN));
        }
        let r = &mut self.rows[i];
        r.0 = r.0.min(x);
        r.1 = r.1.max(x);
    }

    fn points(&self) -> Vec<[i32; 2]> {
        let mut out = Vec::with_capacity(self.rows.len() * 2);
        for (i, &(a, b)) in self.rows.iter().enumerate() {
            if a <= b {
                let y = self.y0 + i as i32;
                out.push([a, y]);
                if b != a {
                    out.push([b, y]);
                }
            }
        }
        out
    }
}

/// Convex hull (Andrew's monotone chain), counter-clockwise in a y-up frame, no repeated or
/// collinear vertices. The rotating calipers below accept either orientation.
fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut p: Vec<Point> = points.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: Point, a: Point, b: Point| -> f64 {
        (a[0] as f64 - o[0] as f64) * (b[1] as f64 - o[1] as f64)
            - (a[1] as f64 - o[1] as f64) * (b[0] as f64 - o[0] as f64)
    };
    let mut hull: Vec<Point> = Vec::with_capacity(2 * p.len());
    for &pt in &p {
        while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], pt) <= 0.0 {
            hull.pop();
        }
        hull.push(pt);
    }
    let lower = hull.len() + 1;
    for &pt in p.iter().rev().skip(1) {
        while hull.len() >= lower && cross(hull[hull.len() - 2], hull[hull.len() - 1], pt) <= 0.0 {
            hull.pop();
        }
        hull.push(pt);
    }
    hull.pop();
    hull
}

/// OpenCV's `RotatedRect`: centre, (width, height), angle in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    /// Centre.
    pub center: Point,
    /// Width and height.
    pub size: [f32; 2],
    /// Angle of the width side, degrees.
    pub angle: f32,
}

/// `cv2.minAreaRect`: the hull, then OpenCV's rotating calipers in single precision.
pub fn min_area_rect(points: &[Point]) -> RotatedRect {
    let hull = convex_hull(points);
    let n = hull.len();
    let mut rect = RotatedRect {
        center: [0.0, 0.0],
        size: [0.0, 0.0],
        angle: 0.0,
    };
    let angle_rad: f32;
    if n > 2 {
        let out = rotating_calipers_min_area(&hull);
        rect.center = [
            out[0][0] + (out[1][0] + out[2][0]) * 0.5,
            out[0][1] + (out[1][1] + out[2][1]) * 0.5,
        ];
        rect.size = [
            ((out[1][0] as f64).powi(2) + (out[1][1] as f64).powi(2)).sqrt() as f32,
            ((out[2][0] as f64).powi(2) + (out[2][1] as f64).powi(2)).sqrt() as f32,
        ];
        angle_rad = (out[1][1] as f64).atan2(out[1][0] as f64) as f32;
    } else if n == 2 {
        rect.center = [
            (hull[0][0] + hull[1][0]) * 0.5,
            (hull[0][1] + hull[1][1]) * 0.5,
        ];
        let dx = hull[1][0] as f64 - hull[0][0] as f64;
        let dy = hull[1][1] as f64 - hull[0][1] as f64;
        rect.size = [(dx * dx + dy * dy).sqrt() as f32, 0.0];
        angle_rad = dy.atan2(dx) as f32;
    } else {
        if n == 1 {
            rect.center = hull[0];
        }
        angle_rad = 0.0;
    }
    rect.angle = (angle_rad as f64 * 180.0 / std::f64::consts::PI) as f32;
    rect
}

/// OpenCV's `rotatingCalipers(CALIPERS_MINAREARECT)`: returns a corner and the two side
/// vectors of the smallest enclosing rectangle. Ties keep the last candidate, as OpenCV does.
fn rotating_calipers_min_area(points: &[Point]) -> [Point; 3] {
    let n = points.len();
    let mut vect = vec![[0f32; 2]; n];
    let mut inv_len = vec![0f32; n];
    let (mut left, mut bottom, mut right, mut top) = (0usize, 0usize, 0usize, 0usize);
    let mut pt0 = points[0];
    let (mut left_x, mut right_x, mut top_y, mut bottom_y) = (pt0[0], pt0[0], pt0[1], pt0[1]);
    for i in 0..n {
        if pt0[0] < left_x {
            left_x = pt0[0];
            left = i;
        }
        if pt0[0] > right_x {
            right_x = pt0[0];
            right = i;
        }
        if pt0[1] > top_y {
            top_y = pt0[1];
            top = i;
        }
        if pt0[1] < bottom_y {
            bottom_y = pt0[1];
            bottom = i;
        }
        let pt = points[if i + 1 < n { i + 1 } else { 0 }];
        let dx = pt[0] as f64 - pt0[0] as f64;
        let dy = pt[1] as f64 - pt0[1] as f64;
        vect[i] = [dx as f32, dy as f32];
        inv_len[i] = (1.0 / (dx * dx + dy * dy).sqrt()) as f32;
        pt0 = pt;
    }
    let mut orientation = 0f32;
    {
        let (mut ax, mut ay) = (vect[n - 1][0] as f64, vect[n - 1][1] as f64);
        for v in &vect {
            let (bx, by) = (v[0] as f64, v[1] as f64);
            let convexity = ax * by - ay * bx;
            if convexity != 0.0 {
                orientation = if convexity > 0.0 { 1.0 } else { -1.0 };
                break;
            }
            ax = bx;
            ay = by;
        }
    }
    let mut base_a = orientation;
    let mut base_b = 0f32;
    let mut seq = [bottom, right, top, left];
    let mut minarea = f32::MAX;
    let mut best: (usize, f32, f32, f32, f32, usize) = (0, 0.0, 0.0, 0.0, 0.0, 0);
    for _ in 0..n {
        let dp = [
            base_a * vect[seq[0]][0] + base_b * vect[seq[0]][1],
            -base_b * vect[seq[1]][0] + base_a * vect[seq[1]][1],
            -base_a * vect[seq[2]][0] - base_b * vect[seq[2]][1],
            base_b * vect[seq[3]][0] - base_a * vect[seq[3]][1],
        ];
        let mut maxcos = dp[0] * inv_len[seq[0]];
        let mut main = 0usize;
        for i in 1..4 {
            let c = dp[i] * inv_len[seq[i]];
            if c > maxcos {
                main = i;
                maxcos = c;
            }
        }
        let pindex = seq[main];
        let lead_x = vect[pindex][0] * inv_len[pindex];
        let lead_y = vect[pindex][1] * inv_len[pindex];
        match main {
            0 => {
                base_a = lead_x;
                base_b = lead_y;
            }
            1 => {
                base_a = lead_y;
                base_b = -lead_x;
            }
            2 => {
                base_a = -lead_x;
                base_b = -lead_y;
            }
            _ => {
                base_a = -lead_y;
                base_b = lead_x;
            }
        }
        seq[main] += 1;
        if seq[main] == n {
            seq[main] = 0;
        }
        let dx = points[seq[1]][0] - points[seq[3]][0];
        let dy = points[seq[1]][1] - points[seq[3]][1];
        let width = dx * base_a + dy * base_b;
        let dx = points[seq[2]][0] - points[seq[0]][0];
        let dy = points[seq[2]][1] - points[seq[0]][1];
        let height = -dx * base_b + dy * base_a;
        let area = width * height;
        if area <= minarea {
            minarea = area;
            best = (seq[3], base_a, width, base_b, height, seq[0]);
        }
    }
    let (left_i, a1, width, b1, height, bottom_i) = best;
    let (a2, b2) = (-b1, a1);
    let c1 = a1 * points[left_i][0] + points[left_i][1] * b1;
    let c2 = a2 * points[bottom_i][0] + points[bottom_i][1] * b2;
    let idet = 1.0f32 / (a1 * b2 - a2 * b1);
    let px = (c1 * b2 - c2 * b1) * idet;
    let py = (a1 * c2 - a2 * c1) * idet;
    [
        [px, py],
        [a1 * width, b1 * width],
        [a2 * height, b2 * height],
    ]
}

/// `cv2.boxPoints`: the four corners of a rotated rectangle, OpenCV's order and arithmetic.
pub fn box_points(r: &RotatedRect) -> [Point; 4] {
    let angle = r.angle as f64 * std::f64::consts::PI / 180.0;
    let b = angle.cos() as f32 * 0.5;
    let a = angle.sin() as f32 * 0.5;
    let [cx, cy] = r.center;
    let [w, h] = r.size;
    let p0 = [cx - a * h - b * w, cy + b * h - a * w];
    let p1 = [cx + a * h - b * w, cy - b * h - a * w];
    let p2 = [2.0 * cx - p0[0], 2.0 * cy - p0[1]];
    let p3 = [2.0 * cx - p1[0], 2.0 * cy - p1[1]];
    [p0, p1, p2, p3]
}

/// The reference's `get_mini_boxes`: the minimum-area rectangle of `points` with its corners
/// in the order top-left, top-right, bottom-right, bottom-left (by x, then y within each side),
/// and the rectangle's shorter side.
pub fn mini_box(points: &[Point]) -> ([Point; 4], f32) {
    let rect = min_area_rect(points);
    let mut p = box_points(&rect);
    // Python's sorted() on x alone: stable.
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    ([p[i1], p[i2], p[i3], p[i4]], rect.size[0].min(rect.size[1]))
}

/// `cv2.fillPoly(mask, [pts], 1)` with the default 8-connected lines and no sub-pixel shift:
/// the outline drawn with Bresenham lines, the inside filled by OpenCV's scan-line edge walk.
pub fn fill_poly(mask: &mut [u8], w: usize, h: usize, pts: &[[i32; 2]]) {
    const SHIFT: i64 = 16;
    const ONE: i64 = 1 << SHIFT;
    #[derive(Clone, Copy)]
    struct Edge {
        y0: i32,
        y1: i32,
        x: i64,
        dx: i64,
    }
    let mut edges: Vec<Edge> = Vec::with_capacity(pts.len());
    let n = pts.len();
    if n == 0 {
        return;
    }
    let mut p0 = pts[n - 1];
    for &p1 in pts {
        line8(mask, w, h, p0, p1);
        let (x0, x1) = (
            ((p0[0] as i64) << SHIFT) + (ONE >> 1),
            ((p1[0] as i64) << SHIFT) + (ONE >> 1),
        );
        if p0[1] != p1[1] {
            let dx = (x1 - x0) / (p1[1] as i64 - p0[1] as i64);
            edges.push(if p0[1] < p1[1] {
                Edge {
                    y0: p0[1],
                    y1: p1[1],
                    x: x0,
                    dx,
                }
            } else {
                Edge {
                    y0: p1[1],
                    y1: p0[1],
                    x: x1,
                    dx,
                }
            });
        }
        p0 = p1;
    }
    if edges.len() < 2 {
        return;
    }
    let y_max = edges.iter().map(|e| e.y1).max().unwrap_or(0).min(h as i32);
    edges.sort_by(|a, b| a.y0.cmp(&b.y0).then(a.x.cmp(&b.x)).then(a.dx.cmp(&b.dx)));
    let total = edges.len();
    let mut next = 0usize;
    let mut active: Vec<usize> = Vec::new();
    let mut y = edges[0].y0;
    while y < y_max {
        let mut list: Vec<usize> = Vec::with_capacity(active.len() + 2);
        let mut ai = 0usize;
        let mut draw = false;
        let mut prev = usize::MAX;
        loop {
            let last = active.get(ai).copied();
            let e_y0 = if next < total {
                edges[next].y0
            } else {
                i32::MAX
            };
            if last.is_none() && e_y0 != y {
                break;
            }
            if let Some(l) = last {
                if edges[l].y1 == y {
                    ai += 1;
                    continue;
                }
            }
            let cur = match last {
                Some(l) if e_y0 > y || edges[l].x < edges[next].x => {
                    ai += 1;
                    l
                }
                _ if next < total => {
                    next += 1;
                    next - 1
                }
                _ => break,
            };
            list.push(cur);
            if draw {
                if y >= 0 {
                    let (a, b) = (edges[prev].x, edges[cur].x);
                    let (x1, x2) = if a > b {
                        (b >> SHIFT, a >> SHIFT)
                    } else {
                        (a >> SHIFT, b >> SHIFT)
                    };
                    if x1 < w as i64 && x2 >= 0 {
                        let (x1, x2) = (x1.max(0) as usize, x2.min(w as i64 - 1) as usize);
                        let row = y as usize * w;
                        mask[row + x1..=row + x2].fill(1);
                    }
                }
                edges[prev].x += edges[prev].dx;
                edges[cur].x += edges[cur].dx;
            }
            draw = !draw;
            prev = cur;
        }
        // Stable, like OpenCV's bubble sort of the active edges.
        list.sort_by_key(|&i| edges[i].x);
        active = list;
        y += 1;
    }
}

/// OpenCV's 8-connected `LineIterator` (left to right), pixels outside the mask skipped.
fn line8(mask: &mut [u8], w: usize, h: usize, a: [i32; 2], b: [i32; 2]) {
    let (mut p, q) = if b[0] < a[0] { (b, a) } else { (a, b) };
    let dx = q[0] - p[0];
    let dy = q[1] - p[1];
    let sy = if dy < 0 { -1 } else { 1 };
    let ady = dy.abs();
    let (major, minor, x_major) = if ady > dx {
        (ady, dx, false)
    } else {
        (dx, ady, true)
    };
    let mut err = major - 2 * minor;
    for _ in 0..=major {
        if p[0] >= 0 && p[1] >= 0 && (p[0] as usize) < w && (p[1] as usize) < h {
            mask[p[1] as usize * w + p[0] as usize] = 1;
        }
        let step_minor = err < 0;
        err += -2 * minor + if step_minor { 2 * major } else { 0 };
        if x_major {
            p[0] += 1;
            if step_minor {
                p[1] += sy;
            }
        } else {
            p[1] += sy;
            if step_minor {
                p[0] += 1;
            }
        }
    }
}

/// Shapely's area and perimeter of a closed polygon.
pub fn area_and_length(poly: &[Point]) -> (f64, f64) {
    let n = poly.len();
    let (mut a, mut l) = (0f64, 0f64);
    for i in 0..n {
        let p = poly[i];
        let q = poly[(i + 1) % n];
        a += p[0] as f64 * q[1] as f64 - q[0] as f64 * p[1] as f64;
        l += ((q[0] as f64 - p[0] as f64).powi(2) + (q[1] as f64 - p[1] as f64).powi(2)).sqrt();
    }
    ((a / 2.0).abs(), l)
}

/// Clipper 6's `ClipperOffset` with round joins on one closed polygon (what `pyclipper` does
/// with `JT_ROUND, ET_CLOSEDPOLYGON`): the path is truncated to integers first, as pyclipper
/// converts floats. Returns the offset polygon's vertices. Clipper's final union only merges
/// and cleans vertices, which changes nothing for a convex input's hull, so it is left out.
pub fn offset_round(path: &[Point], delta: f64) -> Vec<[i64; 2]> {
    const ARC_TOLERANCE: f64 = 0.25;
    let pts: Vec<[i64; 2]> = path.iter().map(|p| [p[0] as i64, p[1] as i64]).collect();
    // Strip duplicates as ClipperOffset::AddPath does (closing duplicates too).
    let mut high = pts.len() as isize - 1;
    while high > 0 && pts[0] == pts[high as usize] {
        high -= 1;
    }
    if high < 0 {
        return vec![];
    }
    let mut src: Vec<[i64; 2]> = vec![pts[0]];
    for p in &pts[1..=high as usize] {
        if src.last() != Some(p) {
            src.push(*p);
        }
    }
    if src.len() < 3 || delta <= 0.0 {
        return vec![];
    }
    // FixOrientations: Clipper wants positive orientation (area >= 0) to grow outwards.
    let clipper_area = |poly: &[[i64; 2]]| {
        let mut a = 0f64;
        let n = poly.len();
        let mut j = n - 1;
        for i in 0..n {
            a += (poly[j][0] as f64 + poly[i][0] as f64) * (poly[j][1] as f64 - poly[i][1] as f64);
            j = i;
        }
        -a * 0.5
    };
    if clipper_area(&src) < 0.0 {
        src.reverse();
    }
    let y = if ARC_TOLERANCE > delta.abs() * 0.25 {
        delta.abs() * 0.25
    } else {
        ARC_TOLERANCE
    };
    let mut steps = std::f64::consts::PI / (1.0 - y / delta.abs()).acos();
    if steps > delta.abs() * std::f64::consts::PI {
        steps = delta.abs() * std::f64::consts::PI;
    }
    let two_pi = 2.0 * std::f64::consts::PI;
    let (sin, cos) = ((two_pi / steps).sin(), (two_pi / steps).cos());
    let steps_per_rad = steps / two_pi;
    let len = src.len();
    let normal = |a: [i64; 2], b: [i64; 2]| -> [f64; 2] {
        let dx = (b[0] - a[0]) as f64;
        let dy = (b[1] - a[1]) as f64;
        if dx == 0.0 && dy == 0.0 {
            return [0.0, 0.0];
        }
        let f = 1.0 / (dx * dx + dy * dy).sqrt();
        [dy * f, -(dx * f)]
    };
    let normals: Vec<[f64; 2]> = (0..len)
        .map(|j| normal(src[j], src[(j + 1) % len]))
        .collect();
    let round = |v: f64| -> i64 {
        if v < 0.0 {
            (v - 0.5) as i64
        } else {
            (v + 0.5) as i64
        }
    };
    let mut out: Vec<[i64; 2]> = Vec::new();
    let mut k = len - 1;
    for j in 0..len {
        let (nk, nj) = (normals[k], normals[j]);
        let p = src[j];
        let at = |n: [f64; 2]| {
            [
                round(p[0] as f64 + n[0] * delta),
                round(p[1] as f64 + n[1] * delta),
            ]
        };
        let mut sin_a = nk[0] * nj[1] - nj[0] * nk[1];
        let cos_a = nk[0] * nj[0] + nj[1] * nk[1];
        if (sin_a * delta).abs() < 1.0 {
            if cos_a > 0.0 {
                out.push(at(nk));
                k = j;
                continue;
            }
        } else {
            sin_a = sin_a.clamp(-1.0, 1.0);
        }
        if sin_a * delta < 0.0 {
            out.push(at(nk));
            out.push(p);
            out.push(at(nj));
        } else {
            // DoRound
            let a = sin_a.atan2(nk[0] * nj[0] + nk[1] * nj[1]);
            // Clipper's Round() (half away from zero) of a non-negative value.
            let n_steps = ((steps_per_rad * a.abs() + 0.5) as i64).max(1);
            let (mut x, mut yv) = (nk[0], nk[1]);
            for _ in 0..n_steps {
                out.push(at([x, yv]));
                let x2 = x;
                x = x * cos - sin * yv;
                yv = x2 * sin + yv * cos;
            }
            out.push(at(nj));
        }
        k = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_matches_pyclipper() {
        // pyclipper 1.4.0: PyclipperOffset().AddPath(box, JT_ROUND, ET_CLOSEDPOLYGON);
        // Execute(3.2) on this float box gave these vertices (in another starting order).
        let b = [[10.9, 20.7], [50.99999, 20.2], [50.6, 30.5], [10.2, 30.9]];
        let mut got = offset_round(&b, 3.2);
        got.sort();
        got.dedup();
        let mut want = vec![
            [52, 18],
            [53, 20],
            [53, 30],
            [52, 32],
            [50, 33],
            [10, 33],
            [8, 32],
            [7, 30],
            [7, 20],
            [8, 18],
            [10, 17],
            [50, 17],
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn min_area_rect_of_an_axis_aligned_block_is_exact() {
        let pts: Vec<Point> = [[2, 3], [9, 3], [9, 7], [2, 7], [5, 5]]
            .iter()
            .map(|p| [p[0] as f32, p[1] as f32])
            .collect();
        let (b, side) = mini_box(&pts);
        assert_eq!(side, 4.0);
        assert_eq!(b, [[2.0, 3.0], [9.0, 3.0], [9.0, 7.0], [2.0, 7.0]]);
    }

    #[test]
    fn contours_include_holes_and_edge_pixels() {
        // A 7x7 ring with a one-pixel hole, touching the left edge.
        let (w, h) = (9usize, 9usize);
        let mut m = vec![false; w * h];
        for y in 1..8 {
            for x in 0..7 {
                m[y * w + x] = true;
            }
        }
        m[4 * w + 3] = false;
        let sets = contour_point_sets(&m, w, h);
        assert_eq!(sets.len(), 2);
        assert!(sets[0].contains(&[0, 1]) && sets[0].contains(&[6, 7]));
        let mut hole = sets[1].clone();
        hole.sort();
        assert_eq!(hole, vec![[2, 4], [3, 3], [3, 5], [4, 4]]);
    }

    #[test]
    fn fill_poly_covers_the_outline_and_inside() {
        let (w, h) = (6usize, 5usize);
        let mut m = vec![0u8; w * h];
        fill_poly(&mut m, w, h, &[[1, 1], [4, 1], [4, 3], [1, 3]]);
        let filled: usize = m.iter().map(|&v| v as usize).sum();
        assert_eq!(filled, 12);
        assert_eq!(m[0], 0);
        assert_eq!(m[w + 1], 1);
        assert_eq!(m[3 * w + 4], 1);
    }
}
