//! `tumorscope audit`: what a dataset folder really holds. Counts per class and split, image sizes and
//! colour modes, unreadable files, and duplicates: exact (same bytes) and near (a perceptual hash of the
//! decoded image within a Hamming threshold: the same slice re-encoded, resized or re-exposed), each
//! within a class, across classes (conflicting labels) or across `Training/` and `Testing/` (leakage).

use super::{DataError, discover};
use image::DynamicImage;
use image_hasher::{HashAlg, HasherConfig};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Bits of the perceptual hash: a 16×16 gradient hash. (8×8 was too coarse for MRI: dark slices of
/// different patients came within a few bits of each other.)
pub const HASH_BITS: u32 = 256;
/// Default Hamming threshold (bits of the 256) for near duplicates.
pub const DEFAULT_NEAR_THRESHOLD: u32 = 16;

type Phash = [u64; 4];

fn distance(a: &Phash, b: &Phash) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

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

/// The 256-bit gradient hash of a decoded image (brightness, re-encoding and size barely move it).
pub fn perceptual_hash(img: &DynamicImage) -> Phash {
    let h = HasherConfig::new().hash_alg(HashAlg::Gradient).hash_size(16, 16).to_hasher().hash_image(img);
    let b = h.as_bytes();
    let mut out = [0u64; 4];
    for (k, chunk) in b.chunks(8).take(4).enumerate() {
        out[k] = chunk.iter().fold(0u64, |acc, x| (acc << 8) | *x as u64);
    }
    out
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, i: usize) -> usize {
        let mut r = i;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut j = i;
        while self.0[j] != r {
            let next = self.0[j];
            self.0[j] = r;
            j = next;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

fn groups_of(uf: &mut UnionFind, n: usize) -> Vec<Vec<usize>> {
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        by_root.entry(uf.find(i)).or_default().push(i);
    }
    by_root.into_values().filter(|g| g.len() > 1).collect()
}

/// Audit a dataset folder. `threshold` 0 finds exact copies only.
pub fn audit(root: &Path, threshold: u32, max_pixels: u64) -> Result<Audit, DataError> {
    let d = discover(root)?;
    let decoded: Vec<Result<AuditedImage, String>> = d
        .entries
        .par_iter()
        .map(|e| {
            let rel = e.path.strip_prefix(root).unwrap_or(&e.path).to_string_lossy().to_string();
            let bytes = std::fs::read(&e.path).map_err(|err| format!("{rel}: cannot read: {err}"))?;
            let rgb = super::decode::decode_rgb(&bytes, max_pixels).map_err(|err| format!("{rel}: {err}"))?;
            let (width, height, mode) = header(&bytes).ok_or_else(|| format!("{rel}: unreadable header"))?;
            let hashed = DynamicImage::ImageRgb8(rgb);
            Ok(AuditedImage {
                path: rel,
                class: d.classes[e.label].clone(),
                split: if e.from_test_folder { "test" } else { "train" },
                width,
                height,
                mode: mode.to_string(),
                content: crate::rng::fnv1a(&bytes, crate::rng::FNV_OFFSET),
                phash: perceptual_hash(&hashed),
            })
        })
        .collect();
    let mut images = vec![];
    let mut unreadable = vec![];
    for r in decoded {
        match r {
            Ok(i) => images.push(i),
            Err(e) => {
                let (f, why) = e.split_once(": ").map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((e.clone(), String::new()));
                unreadable.push((f, why));
            }
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
    let n = images.len();
    // Exact copies: the same bytes.
    let mut exact = UnionFind((0..n).collect());
    let mut first: HashMap<u64, usize> = HashMap::new();
    for (k, i) in images.iter().enumerate() {
        match first.get(&i.content) {
            Some(&j) => exact.union(j, k),
            None => {
                first.insert(i.content, k);
            }
        }
    }
    // Near copies: perceptual hashes within the threshold (all pairs; 7 000 images take well under a second).
    let mut near = UnionFind((0..n).collect());
    if threshold > 0 {
        let hashes: Vec<Phash> = images.iter().map(|i| i.phash).collect();
        let pairs: Vec<(usize, usize)> = (0..n)
            .into_par_iter()
            .flat_map_iter(|a| {
                let h = &hashes;
                (a + 1..n).filter(move |&b| distance(&h[a], &h[b]) <= threshold).map(move |b| (a, b))
            })
            .collect();
        for (a, b) in pairs {
            near.union(a, b);
        }
    }
    for k in 0..n {
        let r = exact.find(k);
        near.union(r, k); // exact copies are near copies too
    }
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
    let mut groups: Vec<DuplicateGroup> = groups_of(&mut exact, n)
        .iter()
        .map(|g| DuplicateGroup { kind: "exact", scope: scope(g), splits: splits(g), files: files(g) })
        .collect();
    for g in groups_of(&mut near, n) {
        // A near group that is one exact group adds nothing.
        let roots: std::collections::BTreeSet<usize> = g.iter().map(|&i| exact.find(i)).collect();
        if roots.len() > 1 {
            groups.push(DuplicateGroup { kind: "near", scope: scope(&g), splits: splits(&g), files: files(&g) });
        }
    }
    Ok(Audit { root: root.display().to_string(), threshold, classes: d.classes, counts, sizes, modes, unreadable, groups })
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
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_groups() {
        let mut uf = UnionFind((0..6).collect());
        uf.union(0, 3);
        uf.union(3, 5);
        uf.union(1, 2);
        assert_eq!(groups_of(&mut uf, 6), vec![vec![0, 3, 5], vec![1, 2]]);
    }
}
