//! Decode any JPEG/PNG (grayscale, RGB, RGBA, 16-bit, CMYK) into RGB bytes at a square size.

use image::imageops::FilterType;
use std::path::Path;

/// A file decoded and resized: `size*size*3` bytes, row-major HWC.
#[derive(Debug)]
pub struct Decoded {
    pub rgb: Vec<u8>,
    /// FNV-1a of the raw file bytes: byte-identical files share it.
    pub content_hash: u64,
}

/// Read, decode and resize one file. The error names what is wrong, not where (callers add the path).
pub fn decode_file(path: &Path, size: u32) -> Result<Decoded, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    decode_bytes(&bytes, size)
}

pub fn decode_bytes(bytes: &[u8], size: u32) -> Result<Decoded, String> {
    let rgb = decode_rgb(bytes)?;
    Ok(Decoded { rgb: resize_for_network(&rgb, size), content_hash: crate::rng::fnv1a(bytes, crate::rng::FNV_OFFSET) })
}

/// Decode any supported image, any size, as RGB.
pub fn decode_rgb(bytes: &[u8]) -> Result<image::RgbImage, String> {
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    let format = image::guess_format(bytes).map_err(|_| "not an image (unrecognised format)".to_string())?;
    let img = image::load_from_memory_with_format(bytes, format).map_err(|e| format!("corrupt or truncated image: {e}"))?;
    if img.width() == 0 || img.height() == 0 {
        return Err("image has zero width or height".into());
    }
    Ok(img.to_rgb8())
}

/// The network's input: `size×size` RGB bytes, resized exactly as the training data was.
pub fn resize_for_network(rgb: &image::RgbImage, size: u32) -> Vec<u8> {
    image::imageops::resize(rgb, size, size, FilterType::Triangle).into_raw()
}

/// Load an image for display or prediction, any size, as RGB.
pub fn open_rgb(path: &Path) -> Result<image::RgbImage, String> {
    decode_rgb(&std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?)
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
            let d = decode_bytes(&encode(img, fmt), 16).unwrap();
            assert_eq!(d.rgb.len(), 16 * 16 * 3);
        }
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(decode_bytes(b"", 8).unwrap_err().contains("empty"));
        assert!(decode_bytes(b"hello, not an image", 8).unwrap_err().contains("not an image"));
        let png = encode(DynamicImage::ImageLuma8(image::GrayImage::new(64, 64)), ImageFormat::Png);
        assert!(decode_bytes(&png[..png.len() / 2], 8).unwrap_err().contains("corrupt or truncated"));
    }

    #[test]
    fn identical_bytes_identical_hash() {
        let png = encode(DynamicImage::ImageLuma8(image::GrayImage::new(8, 8)), ImageFormat::Png);
        assert_eq!(decode_bytes(&png, 4).unwrap().content_hash, decode_bytes(&png.clone(), 4).unwrap().content_hash);
    }
}
