//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The real dataset for tests that need real images: `$TUMORSCOPE_TEST_DATA`. `None` (and a note on
/// stderr) elsewhere, so those tests say they were skipped.
pub fn real_data(test: &str) -> Option<PathBuf> {
    match std::env::var_os("TUMORSCOPE_TEST_DATA").map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        Some(p) => panic!("TUMORSCOPE_TEST_DATA={} is not a folder", p.display()),
        None => {
            eprintln!("SKIPPED {test}: set TUMORSCOPE_TEST_DATA to the brain-tumor-mri folder to run it");
            None
        }
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tumorscope"))
}

/// Write a small image (gray gradient with a class-dependent bright square) as PNG or JPEG.
pub fn write_image(path: &Path, class: usize, i: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::GrayImage::from_fn(48, 40, |x, y| {
        let inside = match class {
            0 => x < 16 && y < 16,
            1 => x > 30 && y > 22,
            _ => (18..30).contains(&x) && (14..26).contains(&y),
        };
        image::Luma([if inside { 230 } else { ((x + y + i as u32 * 7) % 60) as u8 }])
    });
    img.save(path).unwrap();
}
