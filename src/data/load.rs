//! Turn a discovered folder into an in-memory `ImageSet`: decode on all cores (or read the cache),
//! skip bad files with a warning naming each.

use super::cache::{self, CachedItem};
use super::{DataError, Discovered, decode, discover_with};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Decoded images, all `size×size` RGB, with their labels and origins.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub size: u32,
    pub classes: Vec<String>,
    /// `len * size * size * 3` bytes, HWC per image.
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    pub paths: Vec<PathBuf>,
    pub hashes: Vec<u64>,
    pub from_test_folder: Vec<bool>,
    /// DICOM and NIfTI: each image's salted patient key (`None` for JPEG/PNG), from discovery.
    pub patients: Vec<Option<u64>>,
    /// The data is the built-in synthetic phantom set, not real MRI.
    pub synthetic: bool,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn bytes_per_image(&self) -> usize {
        (self.size * self.size * 3) as usize
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.bytes_per_image();
        &self.pixels[i * n..(i + 1) * n]
    }

    pub fn has_test_folder(&self) -> bool {
        self.from_test_folder.iter().any(|t| *t)
    }

    /// Identifies the data a run trained on: every image's path relative to `root`, content hash and
    /// label, plus the class names and image size. Moving the folder keeps it; any added, removed,
    /// changed or relabelled image changes it.
    pub fn fingerprint(&self, root: &Path) -> String {
        let mut items: Vec<(String, u64, usize)> = (0..self.len())
            .map(|i| {
                let rel = self.paths[i].strip_prefix(root).unwrap_or(&self.paths[i]);
                (rel.to_string_lossy().to_string(), self.hashes[i], self.labels[i])
            })
            .collect();
        items.sort();
        let mut h = crate::rng::fnv1a(self.classes.join("\n").as_bytes(), crate::rng::FNV_OFFSET);
        h = crate::rng::fnv1a(&self.size.to_le_bytes(), h);
        for (p, c, l) in &items {
            h = crate::rng::fnv1a(p.as_bytes(), h);
            h = crate::rng::fnv1a(&c.to_le_bytes(), h);
            h = crate::rng::fnv1a(&(*l as u64).to_le_bytes(), h);
        }
        format!("{h:016x}-{}", items.len())
    }
}

/// What loading did, for the summary line.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub files: usize,
    pub decoded: usize,
    /// (file, why) for each skipped file.
    pub skipped: Vec<(PathBuf, String)>,
    pub warnings: Vec<String>,
    pub from_cache: bool,
    pub seconds: f64,
}

/// Progress callback: (done, total).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Discover, decode (or load from cache) and keep only readable images.
pub fn load_dataset(
    root: &Path,
    size: u32,
    limit_per_class: usize,
    reading: &decode::Reading,
    progress: Progress,
) -> Result<(ImageSet, LoadReport), DataError> {
    let t0 = std::time::Instant::now();
    let mut d: Discovered = discover_with(root, reading)?;
    if limit_per_class > 0 {
        let mut seen = std::collections::HashMap::new();
        d.entries.retain(|e| {
            let n = seen.entry((e.label, e.from_test_folder)).or_insert(0usize);
            *n += 1;
            *n <= limit_per_class
        });
    }
    let paths: Vec<PathBuf> = d.entries.iter().map(|e| e.path.clone()).collect();
    let per = (size * size * 3) as usize;
    let cpath = cache::cache_path(cache::cache_key(&paths, size, &reading.imaging));
    let cached = cache::read(&cpath, paths.len(), per);
    let from_cache = cached.is_some();
    let (items, pixels) = match cached {
        Some(hit) => {
            progress(paths.len(), paths.len());
            hit
        }
        None => {
            let (items, pixels, io_failures) = decode_all(&paths, size, reading, progress);
            super::medical::forget_volumes();
            // A file that could not be read (permissions, I/O) may read next time: cache only
            // outcomes that depend on the bytes alone.
            if io_failures > 0 {
                d.warnings.push(format!(
                    "{io_failures} file(s) could not be read; the dataset cache is not written, so they are tried again next time"
                ));
            } else if let Err(e) = cache::write(&cpath, &items, &pixels) {
                d.warnings.push(format!("{}: cannot write dataset cache: {e}", cpath.display()));
            }
            (items, pixels)
        }
    };
    let report = LoadReport { files: paths.len(), warnings: std::mem::take(&mut d.warnings), from_cache, ..Default::default() };
    let (set, mut report) = keep_readable(&d, size, pixels, &items, report);
    check_every_class(root, &d.classes, &set)?;
    report.seconds = t0.elapsed().as_secs_f64();
    Ok((set, report))
}

/// Decode every file in parallel, each straight into its slot of one pixel buffer (no second copy of
/// the whole set in memory); slots of files that failed are closed up afterwards. Each file's outcome,
/// the pixels of those that decoded, and how many could not be read at all.
fn decode_all(paths: &[PathBuf], size: u32, reading: &decode::Reading, progress: Progress) -> (Vec<CachedItem>, Vec<u8>, usize) {
    let per = (size * size * 3) as usize;
    let done = AtomicUsize::new(0);
    let mut pixels = vec![0u8; paths.len() * per];
    let results: Vec<Result<u64, decode::DecodeError>> = pixels
        .par_chunks_mut(per.max(1))
        .zip(paths.par_iter())
        .map(|(slot, p)| {
            let r = decode::decode_file(p, size, reading).map(|d| {
                slot.copy_from_slice(&d.rgb);
                d.content_hash
            });
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(64) || n == paths.len() {
                progress(n, paths.len());
            }
            r
        })
        .collect();
    let mut items = Vec::with_capacity(results.len());
    let mut io_failures = 0;
    let mut kept = 0;
    for (k, r) in results.into_iter().enumerate() {
        match r {
            Ok(hash) => {
                items.push(CachedItem { hash, error: None });
                if kept != k {
                    pixels.copy_within(k * per..(k + 1) * per, kept * per);
                }
                kept += 1;
            }
            Err(e) => {
                io_failures += e.is_io() as usize;
                items.push(CachedItem { hash: 0, error: Some(e.to_string()) });
            }
        }
    }
    pixels.truncate(kept * per);
    (items, pixels, io_failures)
}

/// The set of the images that decoded; the others go into the report with why.
fn keep_readable(d: &Discovered, size: u32, pixels: Vec<u8>, items: &[CachedItem], mut report: LoadReport) -> (ImageSet, LoadReport) {
    let mut set = ImageSet {
        size,
        classes: d.classes.clone(),
        pixels,
        labels: vec![],
        paths: vec![],
        hashes: vec![],
        from_test_folder: vec![],
        patients: vec![],
        synthetic: false,
    };
    for (entry, item) in d.entries.iter().zip(items) {
        match &item.error {
            None => {
                set.labels.push(entry.label);
                set.paths.push(entry.path.clone());
                set.hashes.push(item.hash);
                set.from_test_folder.push(entry.from_test_folder);
                set.patients.push(entry.identity.patient);
            }
            Some(e) => report.skipped.push((entry.path.clone(), e.clone())),
        }
    }
    report.decoded = set.len();
    (set, report)
}

/// Every class needs training images, unless the folder holds only test images (a `Testing/`-only
/// layout, scored by eval).
fn check_every_class(root: &Path, classes: &[String], set: &ImageSet) -> Result<(), DataError> {
    let only_test = !set.from_test_folder.iter().any(|t| !t);
    for (label, class) in classes.iter().enumerate() {
        if !set.labels.iter().zip(&set.from_test_folder).any(|(l, t)| *l == label && (only_test || !t)) {
            return Err(DataError::EmptyClass { path: root.display().to_string(), class: class.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;

    fn set_under(root: &str) -> ImageSet {
        ImageSet {
            size: 8,
            classes: vec!["a".into(), "b".into()],
            pixels: vec![],
            labels: vec![0, 1],
            paths: vec![Path::new(root).join("a/1.jpg"), Path::new(root).join("b/2.jpg")],
            hashes: vec![11, 22],
            from_test_folder: vec![false, false],
            patients: vec![None, None],
            synthetic: false,
        }
    }

    /// The same images reached by another spelling of the folder (a link, a relative path, a moved
    /// copy) have the same fingerprint; a changed image does not.
    #[test]
    fn fingerprint_depends_on_the_images_not_on_where_the_folder_is() {
        let a = set_under("/mnt/link/data");
        let b = set_under("../../real/place/data");
        assert_eq!(a.fingerprint(Path::new("/mnt/link/data")), b.fingerprint(Path::new("../../real/place/data")));
        let mut c = set_under("/mnt/link/data");
        c.hashes[1] = 23;
        assert_ne!(a.fingerprint(Path::new("/mnt/link/data")), c.fingerprint(Path::new("/mnt/link/data")));
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    /// Images decoded into one buffer stay with their own paths when a file between them fails.
    #[test]
    fn a_bad_file_between_good_ones_leaves_every_image_with_its_path() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let shade = |i: u8| 20 + 30 * i;
        for (class, names) in [("a", ["1", "2", "3"]), ("b", ["4", "5", "6"])] {
            std::fs::create_dir_all(root.join(class)).unwrap();
            for n in names {
                let v = shade(n.parse().unwrap());
                image::RgbImage::from_pixel(12, 12, image::Rgb([v, v, v])).save(root.join(class).join(format!("{n}.png"))).unwrap();
            }
        }
        std::fs::write(root.join("a/2.png"), b"not a png").unwrap();
        std::fs::write(root.join("b/5.png"), b"").unwrap();
        let (set, report) = load_dataset(root, 8, 0, &decode::Reading::plain(1 << 20), &|_, _| {}).unwrap();
        assert_eq!(report.skipped.len(), 2);
        assert_eq!(set.len(), 4);
        for i in 0..set.len() {
            let n: u8 = set.paths[i].file_stem().unwrap().to_str().unwrap().parse().unwrap();
            assert!(set.image(i).iter().all(|&p| p == shade(n)), "{}: wrong pixels", set.paths[i].display());
        }
    }
}
