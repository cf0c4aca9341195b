//! Decode any JPEG/PNG (grayscale, RGB, RGBA, 16-bit, CMYK) into RGB bytes at a square size, upright
//! (EXIF orientation applied, as OpenCV's `imread` does in the article), and only after its header says
//! it is not larger than the pixel limit.

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader};
use std::io::{BufRead, Seek};
use std::path::Path;

use super::medical;
use super::read::content;
pub use super::read::{DecodeError, MAX_FILE_BYTES, check_pixels, describe_kind, open_regular, read_file};
pub use crate::config::DEFAULT_MAX_PIXELS;
use crate::config::imaging::Imaging;

/// How files are read: the pixel limit, and how DICOM and NIfTI become 8-bit slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub max_pixels: u64,
    pub imaging: Imaging,
}

impl Reading {
    /// The default imaging with this pixel limit.
    pub fn plain(max_pixels: u64) -> Reading {
        Reading { max_pixels, imaging: Imaging::default() }
    }

    /// As a run reads its images.
    pub fn of(cfg: &crate::config::TrainConfig) -> Reading {
        Reading { max_pixels: cfg.max_image_pixels, imaging: cfg.imaging() }
    }
}

impl Default for Reading {
    fn default() -> Reading {
        Reading::plain(DEFAULT_MAX_PIXELS)
    }
}

/// A file decoded and resized: `size*size*3` bytes, row-major HWC.
#[derive(Debug)]
pub struct Decoded {
    pub rgb: Vec<u8>,
    /// FNV-1a of the raw file bytes: byte-identical files share it.
    pub content_hash: u64,
}

/// Read, check, decode and resize one file. The file is opened and read once; the pixel limit is
/// checked from the header before any pixel is decoded.
pub fn decode_file(path: &Path, size: u32, reading: &Reading) -> Result<Decoded, DecodeError> {
    if let Some(src) = medical::Source::of(path) {
        let (img, hash) = medical::open(&src, &reading.imaging, reading.max_pixels)?;
        return Ok(Decoded { rgb: network_input(img, size), content_hash: hash });
    }
    decode_bytes(&read_file(path)?, size, reading.max_pixels)
}

pub fn decode_bytes(bytes: &[u8], size: u32, max_pixels: u64) -> Result<Decoded, DecodeError> {
    let rgb = match decode_jpeg_direct(bytes, size, max_pixels) {
        Some(rgb) => rgb?,
        None => network_input(decode_image(bytes, max_pixels)?, size),
    };
    Ok(Decoded { rgb, content_hash: crate::rng::fnv1a(bytes, crate::rng::FNV_OFFSET) })
}

/// Decoded pixels of one thread's last JPEG, kept for the next: a fresh buffer per image was zeroed
/// and faulted in by the kernel each time. Buffers above this size are not kept.
const KEEP_SCRATCH_BYTES: usize = 16 << 20;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A baseline or progressive JPEG in grayscale, YCbCr or RGB, decoded by zune-jpeg straight from the
/// bytes into a reused buffer and resized from there: the same decoder, options and pixels as
/// `image`'s JPEG path, without its copy of the file, its two extra header parses and its zero-filled
/// output buffer. `None` where this path does not apply (not a JPEG, CMYK, YCCK, any zune error):
/// then `image` decodes the file, and names any error, as before.
fn decode_jpeg_direct(bytes: &[u8], size: u32, max_pixels: u64) -> Option<Result<Vec<u8>, DecodeError>> {
    use image::metadata::Orientation;
    use zune_core::colorspace::ColorSpace;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return None;
    }
    let opts = zune_core::options::DecoderOptions::default().set_strict_mode(false).set_max_width(usize::MAX).set_max_height(usize::MAX);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), opts);
    d.decode_headers().ok()?;
    let (w, h) = d.dimensions()?;
    let (w, h) = (u32::try_from(w).ok()?, u32::try_from(h).ok()?);
    if let Err(e) = check_pixels(w, h, max_pixels) {
        return Some(Err(e));
    }
    let channels = match d.input_colorspace()? {
        ColorSpace::Luma => 1,
        ColorSpace::YCbCr | ColorSpace::RGB => 3,
        _ => return None,
    };
    d.set_options(d.options().jpeg_set_out_colorspace(if channels == 1 { ColorSpace::Luma } else { ColorSpace::RGB }));
    let orientation = d.exif().and_then(|e| Orientation::from_exif_chunk(e)).unwrap_or(Orientation::NoTransforms);
    let n = d.output_buffer_size()?;
    let mut decode = |buf: &mut Vec<u8>| -> Option<Vec<u8>> {
        if buf.len() < n {
            buf.resize(n, 0);
        }
        d.decode_into(&mut buf[..n]).ok()?;
        let px = &buf[..n];
        if orientation == Orientation::NoTransforms {
            return Some(resize_pixels(px, w, h, channels, size));
        }
        let mut img = if channels == 1 {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, px.to_vec())?)
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, px.to_vec())?)
        };
        img.apply_orientation(orientation);
        Some(network_input(img, size))
    };
    let rgb = if n <= KEEP_SCRATCH_BYTES { SCRATCH.with_borrow_mut(decode) } else { decode(&mut Vec::new()) };
    rgb.map(Ok)
}

/// The network's input from a decoded image, equal to `resize_for_network(&img.to_rgb8(), size)`. A
/// grayscale image is resized as one plane and then copied into the three channels: a third of the
/// resize work, and no trip through `image`'s colour conversion, which goes via floats per pixel.
/// (An RGB image whose channels are all equal is resized as RGB: finding that out and splitting the
/// plane cost more, measured, than the resize it saves.)
pub fn network_input(img: DynamicImage, size: u32) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    match img {
        DynamicImage::ImageLuma8(g) => resize_pixels(g.as_raw(), w, h, 1, size),
        DynamicImage::ImageRgb8(rgb) => resize_pixels(rgb.as_raw(), w, h, 3, size),
        other => resize_pixels(other.to_rgb8().as_raw(), w, h, 3, size),
    }
}

/// `w×h` pixels of 1 (gray) or 3 (RGB) channels to `size×size` RGB: one bilinear (triangle)
/// convolution whose support widens with the reduction, so downscaling averages rather than skips
/// pixels. SIMD (fast_image_resize); an image already at the size is copied as is.
fn resize_pixels(px: &[u8], w: u32, h: u32, channels: usize, size: u32) -> Vec<u8> {
    use fast_image_resize::{FilterType as F, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
    let pixel = if channels == 1 { PixelType::U8 } else { PixelType::U8x3 };
    let resized = if (w, h) == (size, size) {
        px.to_vec()
    } else {
        let simd = images::ImageRef::new(w, h, px, pixel).ok().and_then(|src| {
            let mut dst = images::Image::new(size, size, pixel);
            let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(F::Bilinear));
            Resizer::new().resize(&src, &mut dst, &opts).ok().map(|_| dst.into_vec())
        });
        // The SIMD resizer refuses nothing a decoded image can be; the portable one stays as a fallback.
        simd.unwrap_or_else(|| {
            let triangle = FilterType::Triangle;
            if channels == 1 {
                let img = image::GrayImage::from_raw(w, h, px.to_vec()).unwrap_or_default();
                image::imageops::resize(&img, size, size, triangle).into_raw()
            } else {
                let img = image::RgbImage::from_raw(w, h, px.to_vec()).unwrap_or_default();
                image::imageops::resize(&img, size, size, triangle).into_raw()
            }
        })
    };
    if channels == 1 { gray_to_rgb(&resized) } else { resized }
}

fn gray_to_rgb(gray: &[u8]) -> Vec<u8> {
    let mut rgb = vec![0u8; gray.len() * 3];
    for (px, &v) in rgb.chunks_exact_mut(3).zip(gray) {
        px.copy_from_slice(&[v, v, v]);
    }
    rgb
}

fn decode_upright<R: BufRead + Seek>(reader: ImageReader<R>, max_pixels: u64) -> Result<DynamicImage, DecodeError> {
    let mut decoder = reader.into_decoder().map_err(|e| content(format!("corrupt or truncated image: {e}")))?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, max_pixels)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| content(format!("corrupt or truncated image: {e}")))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Decode any supported image, any size up to `max_pixels`, as upright RGB.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<image::RgbImage, DecodeError> {
    Ok(decode_image(bytes, max_pixels)?.into_rgb8())
}

/// Decode any supported image, any size up to `max_pixels`, upright, in the pixel type it is stored in.
fn decode_image(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, DecodeError> {
    if bytes.is_empty() {
        return Err(content("empty file (0 bytes)"));
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| DecodeError::Io(e.to_string()))?;
    if reader.format().is_none() {
        return Err(content("not an image (unrecognised format)"));
    }
    decode_upright(reader, max_pixels)
}

/// The network's input: `size×size` RGB bytes, resized exactly as the training data was (see
/// `resize_pixels`).
pub fn resize_for_network(rgb: &image::RgbImage, size: u32) -> Vec<u8> {
    resize_pixels(rgb.as_raw(), rgb.width(), rgb.height(), 3, size)
}

/// Load an image (or a DICOM/NIfTI slice) for display or prediction, any size up to the pixel limit,
/// upright, as RGB.
pub fn open_rgb(path: &Path, reading: &Reading) -> Result<image::RgbImage, DecodeError> {
    if let Some(src) = medical::Source::of(path) {
        return Ok(medical::open(&src, &reading.imaging, reading.max_pixels)?.0.into_rgb8());
    }
    decode_rgb(&read_file(path)?, reading.max_pixels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageFormat};
    use std::io::Cursor;

    fn encode(img: DynamicImage, fmt: ImageFormat) -> Vec<u8> {
        let mut c = Cursor::new(Vec::new());
        img.write_to(&mut c, fmt).unwrap();
        c.into_inner()
    }

    #[test]
    fn every_mode_becomes_rgb_at_size() {
        let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(40, 30, image::Luma([200])));
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(20, 50, image::Rgba([10, 20, 30, 128])));
        let g16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(33, 33, image::Luma([65535u16])));
        for (img, fmt) in [(gray.clone(), ImageFormat::Png), (gray, ImageFormat::Jpeg), (rgba, ImageFormat::Png), (g16, ImageFormat::Png)] {
            let d = decode_bytes(&encode(img, fmt), 16, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(d.rgb.len(), 16 * 16 * 3);
        }
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = |b: &[u8]| decode_bytes(b, 8, DEFAULT_MAX_PIXELS).unwrap_err().to_string();
        assert!(e(b"").contains("empty"));
        assert!(e(b"hello, not an image").contains("not an image"));
        let png = encode(DynamicImage::ImageLuma8(image::GrayImage::new(64, 64)), ImageFormat::Png);
        assert!(e(&png[..png.len() / 2]).contains("corrupt or truncated"));
    }

    #[test]
    fn identical_bytes_identical_hash() {
        let png = encode(DynamicImage::ImageLuma8(image::GrayImage::new(8, 8)), ImageFormat::Png);
        let d = |b: &[u8]| decode_bytes(b, 4, DEFAULT_MAX_PIXELS).unwrap().content_hash;
        assert_eq!(d(&png), d(&png.clone()));
    }

    #[test]
    fn the_pixel_limit_is_checked_from_the_header_and_named() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("big.png");
        image::GrayImage::new(300, 200).save(&p).unwrap();
        let e = decode_file(&p, 8, &Reading::plain(50_000)).unwrap_err();
        assert_eq!(e.to_string(), "image too large (300×200 > 50000 pixels; raise max_image_pixels to allow it)");
        assert!(!e.is_io(), "a content error: cached, not retried");
        assert!(decode_file(&p, 8, &Reading::plain(60_000)).is_ok());
        // A PNG header that claims 100000×100000 is refused before any pixel is allocated.
        let mut huge = encode(DynamicImage::ImageLuma8(image::GrayImage::new(1, 1)), ImageFormat::Png);
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&huge[12..29]); // the IHDR chunk's type and data
        huge[29..33].copy_from_slice(&crc.to_be_bytes());
        let q = t.path().join("huge.png");
        std::fs::write(&q, &huge).unwrap();
        assert!(
            decode_file(&q, 8, &Reading::plain(DEFAULT_MAX_PIXELS)).unwrap_err().to_string().contains("image too large (100000×100000")
        );
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn unreadable_files_are_io_errors() {
        let e = decode_file(Path::new("/nonexistent/x.jpg"), 8, &Reading::plain(DEFAULT_MAX_PIXELS)).unwrap_err();
        assert!(e.is_io() && e.to_string().starts_with("cannot read"), "{e}");
    }

    /// A JPEG whose pixels are stored rotated, with EXIF orientation 6 ("rotate 90° clockwise to
    /// view"), decodes to the same picture as its upright twin.
    #[test]
    fn exif_orientation_is_applied() {
        let upright = image::RgbImage::from_fn(48, 24, |x, y| image::Rgb([(x * 5) as u8, (y * 10) as u8, if x < 12 { 250 } else { 0 }]));
        let stored = image::imageops::rotate270(&upright); // 24×48: what a camera held sideways stores
        let plain = encode(DynamicImage::ImageRgb8(upright.clone()), ImageFormat::Jpeg);
        let rotated = with_exif_orientation(&encode(DynamicImage::ImageRgb8(stored), ImageFormat::Jpeg), 6);
        let a = decode_rgb(&plain, DEFAULT_MAX_PIXELS).unwrap();
        let b = decode_rgb(&rotated, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(b.dimensions(), (48, 24), "turned upright");
        let diff: f64 =
            a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.as_raw().len() as f64;
        assert!(diff < 6.0, "mean |Δ| {diff} against the upright twin");
    }

    /// The JPEG fast path (zune-jpeg into a reused buffer) gives the very bytes of the general path
    /// (`image`'s decoder, then the resize), for gray, colour and rotated files, and a buffer left by
    /// a larger image does not leak into a smaller one.
    #[test]
    fn the_jpeg_fast_path_matches_the_general_path() {
        let colour = |w, h| image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 5) as u8, ((x + y) * 7) as u8]));
        let gray = DynamicImage::ImageLuma8(image::GrayImage::from_fn(97, 61, |x, y| image::Luma([(x * y % 251) as u8])));
        let files = [
            encode(DynamicImage::ImageRgb8(colour(300, 200)), ImageFormat::Jpeg),
            encode(gray, ImageFormat::Jpeg),
            encode(DynamicImage::ImageRgb8(colour(40, 33)), ImageFormat::Jpeg),
            with_exif_orientation(&encode(DynamicImage::ImageRgb8(colour(50, 90)), ImageFormat::Jpeg), 6),
            encode(DynamicImage::ImageRgb8(colour(16, 16)), ImageFormat::Jpeg),
        ];
        for (k, bytes) in files.iter().enumerate() {
            let general = network_input(decode_image(bytes, DEFAULT_MAX_PIXELS).unwrap(), 16);
            let fast = decode_jpeg_direct(bytes, 16, DEFAULT_MAX_PIXELS).expect("a JPEG takes the fast path").unwrap();
            assert_eq!(fast, general, "file {k}");
            assert_eq!(decode_bytes(bytes, 16, DEFAULT_MAX_PIXELS).unwrap().rgb, general, "file {k}");
            // And both equal what `predict` feeds the network: the RGB image, resized.
            assert_eq!(resize_for_network(&decode_rgb(bytes, DEFAULT_MAX_PIXELS).unwrap(), 16), general, "file {k}");
        }
        assert!(decode_jpeg_direct(b"\x89PNG\r\n", 16, DEFAULT_MAX_PIXELS).is_none(), "not a JPEG: the general path");
    }

    /// Insert an APP1 EXIF segment holding only an orientation tag right after the JPEG's SOI marker.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec(); // little-endian TIFF header, IFD at 8
        tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_le_bytes()); // count
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }
}
