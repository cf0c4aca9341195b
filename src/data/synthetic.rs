//! A small built-in set of synthetic MRI-like phantoms, for a first run without the real dataset.
//! Each class depends on a plausible cue: glioma = irregular intra-axial mass with a necrotic core,
//! meningioma = round extra-axial mass against the skull, pituitary = small mass at the sella,
//! notumor = none. Results on it are always labelled SYNTHETIC.

use crate::rng::Rng;
use std::path::{Path, PathBuf};

pub const CLASSES: [&str; 4] = ["glioma", "meningioma", "notumor", "pituitary"];
const SIDE: u32 = 160;
const VERSION: &str = "synthetic-v1";

/// Where the phantoms live (under the user cache folder).
pub fn synthetic_root() -> PathBuf {
    super::cache::cache_root().join(VERSION)
}

/// Render one phantom of class `class` (index into `CLASSES`).
pub fn render(class: usize, rng: &mut Rng) -> image::GrayImage {
    render_with_mask(class, rng).0
}

/// A phantom and its tumour mask (255 inside the lesion, 0 elsewhere; all 0 for `notumor`), for
/// checking where an explanation points.
pub fn render_with_mask(class: usize, rng: &mut Rng) -> (image::GrayImage, image::GrayImage) {
    let s = SIDE as f64;
    let cx = s / 2.0 + rng.range(-6.0, 6.0);
    let cy = s / 2.0 + rng.range(-6.0, 6.0);
    let rx = rng.range(54.0, 64.0);
    let ry = rng.range(64.0, 72.0);
    let gain = rng.range(0.8, 1.2);
    let tex = (rng.range(0.15, 0.3), rng.range(0.15, 0.3), rng.range(0.0, std::f64::consts::TAU));
    // Lesion blobs: (x, y, radius, intensity); glioma gets a dark core.
    let mut blobs: Vec<(f64, f64, f64, f64)> = vec![];
    let mut core: Option<(f64, f64, f64)> = None;
    match CLASSES[class] {
        "glioma" => {
            let a = rng.range(0.0, std::f64::consts::TAU);
            let d = rng.range(0.2, 0.5);
            let (gx, gy) = (cx + a.cos() * rx * d, cy + a.sin() * ry * d);
            for _ in 0..rng.below(3) + 3 {
                blobs.push((gx + rng.range(-10.0, 10.0), gy + rng.range(-10.0, 10.0), rng.range(7.0, 13.0), rng.range(150.0, 185.0)));
            }
            core = Some((gx, gy, rng.range(4.0, 7.0)));
        }
        "meningioma" => {
            let a = rng.range(-std::f64::consts::PI * 0.95, -std::f64::consts::PI * 0.05);
            let r = rng.range(10.0, 16.0);
            let (ex, ey) = (cx + a.cos() * (rx * 0.9 - r * 0.8), cy + a.sin() * (ry * 0.9 - r * 0.8));
            blobs.push((ex, ey, r, rng.range(185.0, 215.0)));
        }
        "pituitary" => {
            blobs.push((cx + rng.range(-3.0, 3.0), cy + ry * rng.range(0.38, 0.48), rng.range(5.0, 8.0), rng.range(175.0, 210.0)));
        }
        _ => {}
    }
    let mask = image::GrayImage::from_fn(SIDE, SIDE, |x, y| {
        let (x, y) = (x as f64, y as f64);
        let e = (((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2)).sqrt();
        // The lesion as drawn: each blob and its 4-pixel bright rim.
        let inside = e <= 0.9 && blobs.iter().any(|&(bx, by, br, _)| ((x - bx).powi(2) + (y - by).powi(2)).sqrt() < br + 4.0);
        image::Luma([if inside { 255 } else { 0 }])
    });
    let img = image::GrayImage::from_fn(SIDE, SIDE, |x, y| {
        let (x, y) = (x as f64, y as f64);
        let e = (((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2)).sqrt();
        let mut v = if e > 1.0 {
            0.0
        } else if e > 0.9 {
            200.0
        } else if e > 0.86 {
            40.0
        } else {
            let ventricle = (((x - cx) / 14.0).powi(2) + ((y - cy + 4.0) / 7.0).powi(2)).sqrt() < 1.0;
            if ventricle { 45.0 } else { 95.0 + 10.0 * ((x * tex.0 + tex.2).sin() * (y * tex.1).cos()) }
        };
        if e <= 0.9 {
            for &(bx, by, br, bi) in &blobs {
                let d = ((x - bx).powi(2) + (y - by).powi(2)).sqrt();
                if d < br {
                    v = bi;
                } else if d < br + 4.0 && v < bi {
                    v = v.max(v + (bi - v) * 0.3 * (1.0 - (d - br) / 4.0));
                }
            }
            if let Some((gx, gy, gr)) = core
                && ((x - gx).powi(2) + (y - gy).powi(2)).sqrt() < gr
            {
                v = 55.0;
            }
        }
        let noise = (rng.next_f64() + rng.next_f64() + rng.next_f64() - 1.5) * 14.0;
        image::Luma([((v * gain) + if e <= 1.0 { noise } else { noise * 0.3 }).clamp(0.0, 255.0) as u8])
    });
    (img, mask)
}

/// Write the phantom set (`Training/` and `Testing/`) once; later calls reuse it.
pub fn ensure_synthetic(per_class_train: usize, per_class_test: usize) -> std::io::Result<PathBuf> {
    let root = synthetic_root();
    let marker = root.join(format!(".complete-{per_class_train}-{per_class_test}"));
    if marker.exists() {
        return Ok(root);
    }
    write_set(&root, per_class_train, per_class_test)?;
    std::fs::write(marker, b"")?;
    Ok(root)
}

/// Write `train` and `test` phantoms of each class into `root/Training/<class>` and `root/Testing/<class>`
/// (PNG and JPEG alternately, as real collections mix them).
pub fn write_set(root: &Path, train: usize, test: usize) -> std::io::Result<()> {
    let mut rng = Rng::new(2024);
    for (split, n) in [("Training", train), ("Testing", test)] {
        for (c, name) in CLASSES.iter().enumerate() {
            let dir = root.join(split).join(name);
            std::fs::create_dir_all(&dir)?;
            for i in 0..n {
                let img = render(c, &mut rng);
                // Mixed modes and formats, as real collections are.
                let res = if i % 2 == 0 {
                    img.save(dir.join(format!("phantom_{i:04}.png")))
                } else {
                    image::DynamicImage::ImageLuma8(img).to_rgb8().save(dir.join(format!("phantom_{i:04}.jpg")))
                };
                res.map_err(std::io::Error::other)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_in(img: &image::GrayImage, x0: u32, y0: u32, x1: u32, y1: u32) -> f64 {
        let mut s = 0.0;
        for y in y0..y1 {
            for x in x0..x1 {
                s += img.get_pixel(x, y).0[0] as f64;
            }
        }
        s / ((x1 - x0) * (y1 - y0)) as f64
    }

    #[test]
    fn pituitary_cue_sits_at_the_sella_and_notumor_has_none() {
        let mut bright_pit = 0.0;
        let mut bright_none = 0.0;
        for seed in 0..10 {
            bright_pit += mean_in(&render(3, &mut Rng::new(seed)), 72, 100, 88, 116);
            bright_none += mean_in(&render(2, &mut Rng::new(seed)), 72, 100, 88, 116);
        }
        assert!(bright_pit > bright_none + 300.0, "pituitary {bright_pit} vs none {bright_none}");
    }

    #[test]
    fn masks_cover_the_lesion_and_only_tumours_have_one() {
        for (class, name) in CLASSES.iter().enumerate() {
            let (img, mask) = render_with_mask(class, &mut Rng::new(7));
            let n = mask.pixels().filter(|p| p.0[0] == 255).count();
            assert_eq!(n > 0, *name != "notumor", "{name}: {n} mask pixels");
            if n > 0 {
                // The lesion (and its rim) is brighter than the rest of the head.
                let mean = |inside: bool| {
                    let v: Vec<f64> = img
                        .pixels()
                        .zip(mask.pixels())
                        .filter(|(p, m)| (m.0[0] == 255) == inside && p.0[0] > 30)
                        .map(|(p, _)| p.0[0] as f64)
                        .collect();
                    v.iter().sum::<f64>() / v.len().max(1) as f64
                };
                assert!(mean(true) > mean(false) + 10.0, "{name}: {} inside the mask, {} outside", mean(true), mean(false));
            }
        }
        // The mask does not change the image (the set on disk stays the same).
        assert_eq!(render(1, &mut Rng::new(3)).as_raw(), render_with_mask(1, &mut Rng::new(3)).0.as_raw());
    }

    #[test]
    fn classes_render_differently() {
        let a = render(0, &mut Rng::new(1));
        let b = render(2, &mut Rng::new(1));
        assert_ne!(a.as_raw(), b.as_raw());
    }
}
