//! Image decoding and pre-processing.
//!
//! Images are decoded from memory only: nothing here touches the disk, which is what lets the
//! server promise that uploads never outlive the request. Limits are checked on the header
//! before any pixel is decoded (file size, megapixels), so decompression bombs are refused
//! without allocating. EXIF orientation is applied before anything else, so the model always
//! sees the photo upright. Pre-processing then follows `preprocessor_config.json` exactly:
//! resize (PIL-compatible convolution filters), centre crop, rescale, normalise, channels first.
//!
//! Pixel count alone does not bound memory: a 1×39,999,999 PNG is under 40 megapixels yet
//! took ~900 MB, because the resizer's coefficient tables grow with the longest side. So the
//! header is also checked against an estimate of the whole decode-and-prepare peak
//! ([`memory_estimate`]) under `max_memory_bytes`, and the decoder runs under `image`'s
//! `Limits` with the same budget as a backstop.

use std::io::Cursor;

use fast_image_resize as fir;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::Serialize;

use crate::config::{PreprocessorConfig, Resize};
use crate::error::{EngineError, Result};

/// Input limits. The defaults are the product's: 20 MB files, 40 megapixels, 256 MB of
/// memory to decode and prepare one image.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Largest accepted image, in pixels (width × height).
    pub max_pixels: u64,
    /// Most memory decoding and preparing one image may take ([`memory_estimate`]), in bytes.
    pub max_memory_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 20 * 1000 * 1000,
            max_pixels: 40_000_000,
            max_memory_bytes: 256 << 20,
        }
    }
}

/// Bytes of the resizer's coefficient tables per pixel of an image's width plus height
/// (measured: 1×39,999,999 took ~780 MB over its 120 MB of pixels, ~20 bytes a row; with margin).
const RESIZE_BYTES_PER_SIDE_PIXEL: u64 = 24;

/// The estimated peak memory of decoding and preparing a `width`×`height` image whose decoder
/// buffer (in the file's own colour type) is `decoded_bytes`: that buffer, the 8-bit RGB copy
/// when the colour type differs, a rotated copy when EXIF turns it, and the resizer's tables.
pub fn memory_estimate(
    width: u32,
    height: u32,
    decoded_bytes: u64,
    rgb8: bool,
    turned: bool,
) -> u64 {
    let rgb = width as u64 * height as u64 * 3;
    let copies = u64::from(!rgb8) + u64::from(turned);
    decoded_bytes
        .saturating_add(rgb * copies)
        .saturating_add(RESIZE_BYTES_PER_SIDE_PIXEL * (width as u64 + height as u64))
}

fn check_memory(
    width: u32,
    height: u32,
    decoded_bytes: u64,
    rgb8: bool,
    turned: bool,
    limits: &ImageLimits,
) -> Result<()> {
    let needed = memory_estimate(width, height, decoded_bytes, rgb8, turned);
    if needed > limits.max_memory_bytes {
        return Err(EngineError::TooMuchMemory {
            width,
            height,
            needed_mb: needed.div_ceil(1 << 20),
            limit_mb: limits.max_memory_bytes >> 20,
        });
    }
    Ok(())
}

/// What the EXIF block says, reduced to what may be shown to the user. GPS coordinates are
/// never copied out of the file: only whether they are present.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ImageMetadata {
    /// Camera make and model, if recorded.
    pub camera: Option<String>,
    /// `DateTimeOriginal` as written in the file.
    pub date_taken: Option<String>,
    /// EXIF orientation tag (1–8), if present.
    pub orientation: Option<u16>,
    /// Whether the file carries GPS coordinates.
    pub gps_present: bool,
}

/// A decoded, upright image and what was learned about it on the way.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// Pixels, EXIF orientation applied, as 8-bit RGB.
    pub rgb: image::RgbImage,
    /// Container format, lower-case (`jpeg`, `png`, ...).
    pub format: &'static str,
    /// Width and height as stored in the file (before orientation).
    pub stored_size: (u32, u32),
    /// EXIF summary.
    pub metadata: ImageMetadata,
}

fn format_name(f: ImageFormat) -> Option<&'static str> {
    Some(match f {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::WebP => "webp",
        ImageFormat::Gif => "gif",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Tiff => "tiff",
        _ => return None,
    })
}

/// Decodes an image held in memory, refusing anything over `limits` before decoding pixels.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<DecodedImage> {
    if bytes.is_empty() {
        return Err(EngineError::Empty);
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(EngineError::FileTooLarge {
            size: bytes.len() as u64,
            limit: limits.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| EngineError::UnsupportedFormat)?;
    let name = format_name(format).ok_or(EngineError::UnsupportedFormat)?;
    let corrupt = |e: image::ImageError| EngineError::CorruptImage(e.to_string());

    // PNG declares its size in the first chunk: refuse bombs even when the rest is missing.
    if format == ImageFormat::Png && bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        let w = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
        let h = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
        check_pixels(w, h, limits)?;
        // The least the decoder needs (8-bit greyscale); the exact check follows below.
        check_memory(w, h, w as u64 * h as u64, true, false, limits)?;
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(EngineError::CorruptImage(
            "truncated JPEG (no end-of-image marker after the last scan)".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut lim = Limits::default();
    // A backstop for what the estimate below cannot see (decoder scratch space).
    lim.max_alloc = Some(limits.max_memory_bytes);
    reader.limits(lim);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, limits)?;
    if w == 0 || h == 0 {
        return Err(EngineError::CorruptImage("image has no pixels".into()));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let rgb8 = decoder.color_type() == image::ColorType::Rgb8;
    let turned = orientation != image::metadata::Orientation::NoTransforms;
    check_memory(w, h, decoder.total_bytes(), rgb8, turned, limits)?;
    let metadata = decoder
        .exif_metadata()
        .ok()
        .flatten()
        .map(|raw| read_exif(&raw))
        .unwrap_or_default();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => EngineError::TooMuchMemory {
            width: w,
            height: h,
            needed_mb: (limits.max_memory_bytes >> 20) + 1,
            limit_mb: limits.max_memory_bytes >> 20,
        },
        e => corrupt(e),
    })?;
    img.apply_orientation(orientation);
    Ok(DecodedImage {
        rgb: img.into_rgb8(),
        format: name,
        stored_size: (w, h),
        metadata,
    })
}

/// The JPEG decoder grey-fills truncated files; a complete file has an end-of-image marker
/// (FF D9) after its last start-of-scan (FF DA). Entropy-coded data never contains FF D9 (FF is
/// byte-stuffed), and an EXIF thumbnail's own EOI comes before the main image's scans.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_eoi = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    matches!((last_sos, last_eoi), (Some(s), Some(e)) if e > s)
}

fn check_pixels(w: u32, h: u32, limits: &ImageLimits) -> Result<()> {
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(EngineError::TooManyPixels {
            width: w,
            height: h,
            limit_megapixels: (limits.max_pixels / 1_000_000) as u32,
        });
    }
    Ok(())
}

fn read_exif(raw: &[u8]) -> ImageMetadata {
    use exif::{In, Tag};
    let Ok(ex) = exif::Reader::new().read_raw(raw.to_vec()) else {
        return ImageMetadata::default();
    };
    let text = |tag| {
        ex.get_field(tag, In::PRIMARY)
            .map(|f| {
                f.display_value()
                    .to_string()
                    .trim_matches('"')
                    .trim()
                    .to_string()
            })
            .filter(|s| !s.is_empty())
    };
    let camera = match (text(Tag::Make), text(Tag::Model)) {
        (Some(make), Some(model)) if model.starts_with(&make) => Some(model),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (a, b) => a.or(b),
    };
    let gps_present = ex.fields().any(|f| f.tag.context() == exif::Context::Gps);
    let orientation = ex
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .map(|v| v as u16);
    ImageMetadata {
        camera,
        date_taken: text(Tag::DateTimeOriginal).or_else(|| text(Tag::DateTime)),
        orientation,
        gps_present,
    }
}

fn filter(resample: u32) -> fir::ResizeAlg {
    use fir::FilterType as F;
    // PIL's resampling codes; fast_image_resize implements the same convolution filters as PIL.
    match resample {
        0 => fir::ResizeAlg::Nearest,
        1 => fir::ResizeAlg::Convolution(F::Lanczos3),
        3 => fir::ResizeAlg::Convolution(F::CatmullRom),
        4 => fir::ResizeAlg::Convolution(F::Box),
        5 => fir::ResizeAlg::Convolution(F::Hamming),
        _ => fir::ResizeAlg::Convolution(F::Bilinear),
    }
}

fn resize(
    img: &image::RgbImage,
    width: u32,
    height: u32,
    resample: u32,
) -> Result<image::RgbImage> {
    if img.dimensions() == (width, height) {
        return Ok(img.clone());
    }
    let src = fir::images::ImageRef::new(
        img.width(),
        img.height(),
        img.as_raw(),
        fir::PixelType::U8x3,
    )
    .map_err(|e| EngineError::CorruptImage(e.to_string()))?;
    let mut dst = fir::images::Image::new(width, height, fir::PixelType::U8x3);
    fir::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &fir::ResizeOptions::new().resize_alg(filter(resample)),
        )
        .map_err(|e| EngineError::CorruptImage(e.to_string()))?;
    Ok(image::RgbImage::from_raw(width, height, dst.into_vec()).expect("buffer size matches"))
}

/// Turns an upright RGB image into the encoder's input, `[3, H, W]` float32, channels first.
pub fn preprocess(img: &image::RgbImage, cfg: &PreprocessorConfig) -> Result<(Vec<f32>, u32, u32)> {
    let (w, h) = img.dimensions();
    let mut out = match cfg.resize {
        Resize::None => img.clone(),
        Resize::Exact(th, tw) => resize(img, tw, th, cfg.resample)?,
        Resize::ShortestEdge(s) => {
            // As transformers' get_resize_output_image_size: the long side is truncated, not rounded.
            let (nw, nh) = if w <= h {
                (s, (s as u64 * h as u64 / w as u64) as u32)
            } else {
                ((s as u64 * w as u64 / h as u64) as u32, s)
            };
            resize(img, nw.max(1), nh.max(1), cfg.resample)?
        }
    };
    if let Some((ch, cw)) = cfg.crop {
        let (w, h) = out.dimensions();
        if w >= cw && h >= ch {
            let (left, top) = ((w - cw) / 2, (h - ch) / 2);
            out = image::imageops::crop_imm(&out, left, top, cw, ch).to_image();
        } else {
            // Smaller than the crop: resize up to it rather than pad (rare for photos).
            out = resize(&out, cw, ch, cfg.resample)?;
        }
    }
    let (w, h) = out.dimensions();
    let plane = (w * h) as usize;
    let mut chw = vec![0f32; 3 * plane];
    let scale = cfg.rescale_factor.unwrap_or(1.0);
    let (mean, std) = cfg.normalize.unwrap_or(([0.0; 3], [1.0; 3]));
    for (i, px) in out.pixels().enumerate() {
        for c in 0..3 {
            // Same operation order as transformers: rescale, then (x - mean) / std, in float32.
            let v = px[c] as f32 * scale;
            chw[c * plane + i] = if cfg.normalize.is_some() {
                (v - mean[c]) / std[c]
            } else {
                v
            };
        }
    }
    Ok((chw, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &DynamicImage, f: ImageFormat) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, f).unwrap();
        buf.into_inner()
    }

    #[test]
    fn decodes_every_supported_format() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(16, 8, |x, y| {
            image::Rgb([x as u8 * 10, y as u8 * 20, 7])
        }));
        for (f, name) in [
            (ImageFormat::Png, "png"),
            (ImageFormat::Jpeg, "jpeg"),
            (ImageFormat::Gif, "gif"),
            (ImageFormat::Bmp, "bmp"),
            (ImageFormat::Tiff, "tiff"),
            (ImageFormat::WebP, "webp"),
        ] {
            let d = decode(&encode(&img, f), &ImageLimits::default()).unwrap();
            assert_eq!(d.format, name);
            assert_eq!(d.rgb.dimensions(), (16, 8));
        }
    }

    #[test]
    fn refuses_bad_inputs_with_typed_errors() {
        let lim = ImageLimits::default();
        assert!(matches!(decode(b"", &lim), Err(EngineError::Empty)));
        assert!(matches!(
            decode(b"hello, this is text", &lim),
            Err(EngineError::UnsupportedFormat)
        ));
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(64, 64));
        let jpeg = encode(&img, ImageFormat::Jpeg);
        assert!(matches!(
            decode(&jpeg[..jpeg.len() / 2], &lim),
            Err(EngineError::CorruptImage(_))
        ));
        let small = ImageLimits {
            max_bytes: 10,
            ..lim
        };
        assert!(matches!(
            decode(&jpeg, &small),
            Err(EngineError::FileTooLarge { .. })
        ));
    }

    #[test]
    fn memory_budget_refuses_extreme_shapes_not_large_photos() {
        let lim = ImageLimits::default();
        // A 40 MP photo (JPEG decodes to RGB8): ~115 MB, accepted.
        let (w, h) = (7300, 5479);
        let rgb = w as u64 * h as u64 * 3;
        assert!(memory_estimate(w, h, rgb, true, false) <= lim.max_memory_bytes);
        assert!(check_memory(w, h, rgb, true, false, &lim).is_ok());
        // The same photo turned by EXIF and as 16-bit RGBA: refused.
        assert!(check_memory(w, h, rgb * 8 / 3, false, true, &lim).is_err());
        // 1×39,999,999: under 40 MP, but the resizer's tables alone would be ~900 MB.
        let err = check_memory(1, 39_999_999, 119_999_997, true, false, &lim).unwrap_err();
        assert!(
            matches!(err, EngineError::TooMuchMemory { width: 1, height: 39_999_999, needed_mb, limit_mb: 256 } if needed_mb > 1000),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_huge_dimensions_from_the_header_alone() {
        // A valid PNG header declaring 30000×30000 followed by no pixel data: refused before decoding.
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&30000u32.to_be_bytes());
        ihdr.extend_from_slice(&30000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        let mut chunk = b"IHDR".to_vec();
        chunk.extend_from_slice(&ihdr);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        let err = decode(&png, &ImageLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::TooManyPixels {
                    width: 30000,
                    height: 30000,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn preprocess_rescales_normalises_channels_first() {
        let img = image::RgbImage::from_pixel(4, 2, image::Rgb([255, 0, 51]));
        let cfg = PreprocessorConfig {
            resize: Resize::Exact(2, 2),
            resample: 2,
            crop: None,
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some(([0.5; 3], [0.5; 3])),
        };
        let (t, h, w) = preprocess(&img, &cfg).unwrap();
        assert_eq!((h, w), (2, 2));
        assert_eq!(t.len(), 12);
        assert!(
            (t[0] - 1.0).abs() < 1e-6
                && (t[4] + 1.0).abs() < 1e-6
                && (t[8] - (0.2 - 0.5) / 0.5).abs() < 1e-6
        );
    }
}
