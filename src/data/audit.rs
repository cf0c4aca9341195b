//! `tumorscope audit`: what a dataset folder really holds. Counts per class and split, image sizes and
//! colour modes, unreadable files, and duplicates: exact (same bytes) and near (a perceptual hash of the
//! decoded image within a Hamming threshold: the same slice re-encoded, resized or re-exposed), each
//! within a class, across classes (conflicting labels) or across `Training/` and `Testing/` (leakage).

use super::DataError;
use super::decode::Reading;
use image::DynamicImage;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

use super::dupes::Phash;
pub use super::dupes::{DEFAULT_NEAR_THRESHOLD, HASH_BITS, perceptual_hash};

#[derive(Debug, Clone, Serialize)]
pub struct AuditedImage {
    pub path: String,
    pub class: String,
    /// `train` or `test` (from the dataset's `Testing/` folder).
    pub split: &'static str,
    pub width: u32,
    pub height: u32,
    pub mode: String,
    #[serde(skip)]
    content: u64,
    #[serde(skip)]
    phash: Phash,
    /// Salted patient key (DICOM, NIfTI).
    #[serde(skip)]
    patient: Option<u64>,
    #[serde(skip)]
    identifying: bool,
}

/// Where a group of copies sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    WithinClass,
    /// The same picture under two labels.
    AcrossClasses,
    /// A test image that is a copy of a training image.
    TrainTest,
}

#[derive(Debug, Clone, Serialize)]
pub struct DuplicateGroup {
    /// `exact` (same bytes) or `near` (same picture, other bytes).
    pub kind: &'static str,
    pub scope: Scope,
    /// The splits its files are in (`train`, `test`).
    pub splits: Vec<&'static str>,
    /// Paths relative to the data root.
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub root: String,
    pub threshold: u32,
    pub classes: Vec<String>,
    /// class → split → images.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    pub sizes: BTreeMap<String, usize>,
    pub modes: BTreeMap<String, usize>,
    /// (file, why).
    pub unreadable: Vec<(String, String)>,
    pub groups: Vec<DuplicateGroup>,
    /// DICOM and NIfTI sets: images per patient and patients across classes or splits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patients: Option<super::patients::Patients>,
    /// Files that carry identifying attributes (counted, never shown).
    pub identifying_files: usize,
}

/// Stored size and colour mode, from the header alone.
fn header(bytes: &[u8]) -> Option<(u32, u32, &'static str)> {
    use image::{ColorType, ImageDecoder};
    let decoder = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().ok()?.into_decoder().ok()?;
    let (w, h) = decoder.dimensions();
    let mode = match decoder.color_type() {
        ColorType::L8 | ColorType::L16 => "L",
        ColorType::La8 | ColorType::La16 => "LA",
        ColorType::Rgba8 | ColorType::Rgba16 | ColorType::Rgba32F => "RGBA",
        _ => "RGB",
    };
    Some((w, h, mode))
}

/// A file `audit` could not read, and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {why}")]
struct Unreadable {
    file: String,
    why: String,
}

/// One file (or slice) audited: its size, mode, hashes and patient.
fn audit_one(e: &super::ImageEntry, root: &Path, class: &str, reading: &Reading) -> Result<AuditedImage, Unreadable> {
    let rel = e.path.strip_prefix(root).unwrap_or(&e.path).to_string_lossy().to_string();
    let unreadable = |why: String| Unreadable { file: rel.clone(), why };
    let split = if e.from_test_folder { "test" } else { "train" };
    if let Some(src) = super::medical::Source::of(&e.path) {
        let (img, content) = super::medical::open(&src, &reading.imaging, reading.max_pixels).map_err(|err| unreadable(err.to_string()))?;
        let super::medical::Identity { patient, identifying } = e.identity;
        let mode = match src.format {
            super::medical::Format::Dicom => "DICOM",
            super::medical::Format::Nifti => "NIfTI",
        };
        let (width, height) = (img.width(), img.height());
        let phash = perceptual_hash(&DynamicImage::ImageRgb8(img.into_rgb8()));
        return Ok(AuditedImage {
            path: rel,
            class: class.into(),
            split,
            width,
            height,
            mode: mode.into(),
            content,
            phash,
            patient,
            identifying,
        });
    }
    let bytes = std::fs::read(&e.path).map_err(|err| unreadable(format!("cannot read: {err}")))?;
    let rgb = super::decode::decode_rgb(&bytes, reading.max_pixels).map_err(|err| unreadable(err.to_string()))?;
    let (width, height, mode) = header(&bytes).ok_or_else(|| unreadable("unreadable header".into()))?;
    Ok(AuditedImage {
        path: rel,
        class: class.into(),
        split,
        width,
        height,
        mode: mode.to_string(),
        content: crate::rng::fnv1a(&bytes, crate::rng::FNV_OFFSET),
        phash: perceptual_hash(&DynamicImage::ImageRgb8(rgb)),
        patient: None,
        identifying: false,
    })
}

/// Audit a dataset folder. `threshold` 0 finds exact copies only.
pub fn audit(root: &Path, threshold: u32, reading: &Reading) -> Result<Audit, DataError> {
    let d = super::discover_with(root, reading)?;
    let decoded: Vec<Result<AuditedImage, Unreadable>> =
        d.entries.par_iter().map(|e| audit_one(e, root, &d.classes[e.label], reading)).collect();
    let mut images = vec![];
    let mut unreadable = vec![];
    for r in decoded {
        match r {
            Ok(i) => images.push(i),
            Err(Unreadable { file, why }) => unreadable.push((file, why)),
        }
    }
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    let mut modes = BTreeMap::new();
    for i in &images {
        *counts.entry(i.class.clone()).or_default().entry(i.split.to_string()).or_default() += 1;
        *sizes.entry(format!("{}×{}", i.width, i.height)).or_default() += 1;
        *modes.entry(i.mode.clone()).or_default() += 1;
    }
    let content: Vec<u64> = images.iter().map(|i| i.content).collect();
    let phashes: Vec<Phash> = images.iter().map(|i| i.phash).collect();
    let mut exact = super::dupes::exact_groups(&content);
    let mut near = super::dupes::near_groups(&content, &phashes, threshold);
    let scope = |g: &[usize]| {
        let classes = g.iter().map(|&i| &images[i].class).collect::<std::collections::BTreeSet<_>>().len();
        let splits = g.iter().map(|&i| images[i].split).collect::<std::collections::BTreeSet<_>>().len();
        if classes > 1 {
            Scope::AcrossClasses
        } else if splits > 1 {
            Scope::TrainTest
        } else {
            Scope::WithinClass
        }
    };
    let files = |g: &[usize]| g.iter().map(|&i| images[i].path.clone()).collect::<Vec<_>>();
    let splits =
        |g: &[usize]| g.iter().map(|&i| images[i].split).collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>();
    let mut groups: Vec<DuplicateGroup> =
        exact.groups().iter().map(|g| DuplicateGroup { kind: "exact", scope: scope(g), splits: splits(g), files: files(g) }).collect();
    for g in near.groups() {
        // A near group that is one exact group adds nothing.
        let roots: std::collections::BTreeSet<usize> = g.iter().map(|&i| exact.find(i)).collect();
        if roots.len() > 1 {
            groups.push(DuplicateGroup { kind: "near", scope: scope(&g), splits: splits(&g), files: files(&g) });
        }
    }
    let keys: Vec<Option<u64>> = images.iter().map(|i| i.patient).collect();
    let classes: Vec<&str> = images.iter().map(|i| i.class.as_str()).collect();
    let in_split: Vec<&str> = images.iter().map(|i| i.split).collect();
    let patients = super::patients::tally(&keys, &classes, &in_split);
    // A file is counted once, however many slices it gave.
    let identifying_files = images
        .iter()
        .filter(|i| i.identifying)
        .map(|i| i.path.rsplit_once('#').map_or(i.path.as_str(), |(f, _)| f))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok(Audit {
        root: root.display().to_string(),
        threshold,
        classes: d.classes,
        counts,
        sizes,
        modes,
        unreadable,
        groups,
        patients,
        identifying_files,
    })
}

impl Audit {
    /// Groups that put a copy of a training image in the test folder.
    pub fn leaks(&self) -> usize {
        self.groups.iter().filter(|g| g.splits.len() > 1).count()
    }

    /// The summary table `audit` prints.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "audit of {} ({} images, {} unreadable; near-duplicate threshold {} of {HASH_BITS} bits{})\n\n",
            self.root,
            self.sizes.values().sum::<usize>(),
            self.unreadable.len(),
            self.threshold,
            if self.threshold == 0 { ": exact copies only" } else { "" }
        );
        s += &format!("{:<14}{:>8}{:>8}\n", "class", "train", "test");
        for (c, by) in &self.counts {
            s += &format!(
                "{:<14}{:>8}{:>8}\n",
                crate::run::format::printable(c),
                by.get("train").unwrap_or(&0),
                by.get("test").unwrap_or(&0)
            );
        }
        let top = |m: &BTreeMap<String, usize>| {
            let mut v: Vec<(&String, &usize)> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1));
            let shown: Vec<String> = v.iter().take(5).map(|(k, n)| format!("{k}: {n}")).collect();
            format!("{}{}", shown.join(", "), if v.len() > 5 { format!(", and {} more", v.len() - 5) } else { String::new() })
        };
        s += &format!("\nsizes: {}\nmodes: {}\n", top(&self.sizes), top(&self.modes));
        for (f, why) in self.unreadable.iter().take(10) {
            s += &format!("unreadable: {}: {why}\n", crate::run::format::printable(f));
        }
        s += &format!("\n{:<28}{:>8}{:>14}\n", "duplicates", "groups", "extra images");
        for kind in ["exact", "near"] {
            for (scope, label) in
                [(Scope::WithinClass, "within a class"), (Scope::AcrossClasses, "across classes"), (Scope::TrainTest, "Training ↔ Testing")]
            {
                let gs: Vec<&DuplicateGroup> = self.groups.iter().filter(|g| g.kind == kind && g.scope == scope).collect();
                let extra: usize = gs.iter().map(|g| g.files.len() - 1).sum();
                s += &format!("{:<28}{:>8}{:>14}\n", format!("{kind}, {label}"), gs.len(), extra);
            }
        }
        if self.leaks() > 0 {
            s += &format!(
                "\n{} group(s) put a copy of a training image in Testing/: test accuracy on this folder overstates.\n",
                self.leaks()
            );
        }
        if let Some(p) = &self.patients {
            s += &p.summary(self.identifying_files);
        }
        s
    }
}
