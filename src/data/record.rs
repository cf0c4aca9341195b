//! The split a run trained with, recorded file by file (`RUN/split.json`): every image's path relative
//! to the data root, its content hash, label and split. `eval` scores exactly this record, so adding or
//! removing images later never turns a "test" set into training images without a word.

use super::{ImageSet, Split};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Why a split record cannot be read; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not a split record: {source}")]
    Invalid { path: String, source: serde_json::Error },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// Relative to the data root, `/`-separated.
    pub path: String,
    /// FNV-1a of the file's bytes, hex.
    pub hash: String,
    pub label: usize,
    /// `train`, `val`, `test`, or `excluded` (a test image byte-identical to a training image).
    pub split: String,
    /// Cross-validation: the fold this training-pool image belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<usize>,
    /// DICOM/NIfTI: the image's patient group, as a salted hash (never the identifier itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    pub format: u32,
    pub classes: Vec<String>,
    pub fingerprint: String,
    pub test_duplicates_dropped: usize,
    /// Test-folder images left out as near copies of training images (0 in records before grouping).
    #[serde(default)]
    pub test_near_duplicates_dropped: usize,
    #[serde(default)]
    pub near_groups: usize,
    /// Cross-validation: how many folds, and the one validated on (`val`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<usize>,
    pub files: Vec<RecordedFile>,
}

/// The recorded images of one split found in a loaded set.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// Indices into the set, in record order.
    pub indices: Vec<usize>,
    pub recorded: usize,
    /// Recorded files that are gone, and files whose bytes changed (left out).
    pub missing: usize,
    pub changed: usize,
}

impl Matched {
    /// A one-line note when the data no longer matches the record.
    pub fn note(&self, split: &str) -> Option<String> {
        (self.missing + self.changed > 0).then(|| {
            format!(
                "{} of the {} recorded {split} images are missing and {} changed since training; evaluating the {} that remain",
                self.missing,
                self.recorded,
                self.changed,
                self.indices.len()
            )
        })
    }
}

fn rel(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

impl SplitRecord {
    pub fn new(set: &ImageSet, root: &Path, split: &Split, fingerprint: &str) -> SplitRecord {
        let mut which = vec!["excluded"; set.len()];
        for (name, idx) in [("train", &split.train), ("val", &split.val), ("test", &split.test)] {
            for &i in idx {
                which[i] = name;
            }
        }
        let files = (0..set.len())
            .map(|i| RecordedFile {
                path: rel(&set.paths[i], root),
                hash: format!("{:016x}", set.hashes[i]),
                label: set.labels[i],
                split: which[i].to_string(),
                fold: split.fold_of.get(i).copied().flatten(),
                group: split.patient_of.get(i).copied().flatten().map(|k| format!("{k:016x}")),
            })
            .collect();
        SplitRecord {
            format: 1,
            classes: set.classes.clone(),
            fingerprint: fingerprint.to_string(),
            test_duplicates_dropped: split.test_duplicates_dropped,
            test_near_duplicates_dropped: split.test_near_duplicates_dropped,
            near_groups: split.near_groups,
            folds: split.folds.map(|f| f.0),
            fold: split.folds.map(|f| f.1),
            files,
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::run::dir::write_atomic(path, &serde_json::to_vec(self).map_err(std::io::Error::other)?)
    }

    pub fn read(path: &Path) -> Result<SplitRecord, RecordError> {
        let bytes = std::fs::read(path).map_err(|source| RecordError::Read { path: path.display().to_string(), source })?;
        serde_json::from_slice(&bytes).map_err(|source| RecordError::Invalid { path: path.display().to_string(), source })
    }

    /// The recorded split over `set` (loaded from `root`), for a resume on the same images.
    pub fn to_split(&self, set: &ImageSet, root: &Path) -> Split {
        Split {
            train: self.sorted(set, root, "train"),
            val: self.sorted(set, root, "val"),
            test: self.sorted(set, root, "test"),
            test_duplicates_dropped: self.test_duplicates_dropped,
            test_near_duplicates_dropped: self.test_near_duplicates_dropped,
            near_groups: self.near_groups,
            folds: self.folds.zip(self.fold),
            fold_of: match self.folds {
                None => vec![],
                Some(_) => {
                    let mut fold_of = vec![None; set.len()];
                    let by_path: HashMap<String, usize> = (0..set.len()).map(|i| (rel(&set.paths[i], root), i)).collect();
                    for f in &self.files {
                        if let Some(&i) = by_path.get(&f.path) {
                            fold_of[i] = f.fold;
                        }
                    }
                    fold_of
                }
            },
            patient_of: self.groups(set, root),
            largest_group: 0,
            test_patients_dropped: 0,
            patients: self.files.iter().filter_map(|f| f.group.as_ref()).collect::<std::collections::HashSet<_>>().len(),
        }
    }

    /// The recorded patient group of each image of `set` (empty when none was recorded).
    fn groups(&self, set: &ImageSet, root: &Path) -> Vec<Option<u64>> {
        if self.files.iter().all(|f| f.group.is_none()) {
            return vec![];
        }
        let by_path: HashMap<&str, Option<u64>> =
            self.files.iter().map(|f| (f.path.as_str(), f.group.as_deref().and_then(|g| u64::from_str_radix(g, 16).ok()))).collect();
        (0..set.len()).map(|i| by_path.get(rel(&set.paths[i], root).as_str()).copied().flatten()).collect()
    }

    fn sorted(&self, set: &ImageSet, root: &Path, split: &str) -> Vec<usize> {
        let mut v = self.matched(set, root, split).indices;
        v.sort_unstable();
        v
    }

    /// Find the recorded `split` in `set` (loaded from `root`): by relative path, checked by hash.
    pub fn matched(&self, set: &ImageSet, root: &Path, split: &str) -> Matched {
        let by_path: HashMap<String, usize> = (0..set.len()).map(|i| (rel(&set.paths[i], root), i)).collect();
        let mut m = Matched { indices: vec![], recorded: 0, missing: 0, changed: 0 };
        for f in self.files.iter().filter(|f| f.split == split) {
            m.recorded += 1;
            match by_path.get(&f.path) {
                None => m.missing += 1,
                Some(&i) if format!("{:016x}", set.hashes[i]) != f.hash || set.labels[i] != f.label => m.changed += 1,
                Some(&i) => m.indices.push(i),
            }
        }
        m
    }
}
