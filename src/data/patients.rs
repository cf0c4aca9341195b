//! Patients in a dataset, by salted key only: images per patient, and patients whose images sit in
//! two classes or in both `Training/` and `Testing/` (the leakage that inflates test accuracy most).

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What `audit` says about patients. Keys are shown as the first 12 hex digits of the salted hash.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Patients {
    /// Distinct patients (or studies where a file has no PatientID; a NIfTI file is its own).
    pub patients: usize,
    /// Images that belong to a known patient.
    pub images: usize,
    pub images_per_patient_min: usize,
    pub images_per_patient_median: usize,
    pub images_per_patient_max: usize,
    /// Patients whose images carry two or more labels.
    pub in_two_classes: Vec<String>,
    /// Patients with images in both `Training/` and `Testing/`.
    pub in_train_and_test: Vec<String>,
}

/// The shown form of a patient key.
pub fn shown(key: u64) -> String {
    format!("patient {:012x}", key >> 16)
}

/// Tally images by patient key; `None` when no image has one (a JPEG set).
pub fn tally(keys: &[Option<u64>], classes: &[&str], splits: &[&str]) -> Option<Patients> {
    let mut by: BTreeMap<u64, (usize, BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for ((k, c), s) in keys.iter().zip(classes).zip(splits) {
        if let Some(k) = k {
            let e = by.entry(*k).or_default();
            e.0 += 1;
            e.1.insert(c);
            e.2.insert(s);
        }
    }
    if by.is_empty() {
        return None;
    }
    let mut counts: Vec<usize> = by.values().map(|v| v.0).collect();
    counts.sort_unstable();
    Some(Patients {
        patients: by.len(),
        images: counts.iter().sum(),
        images_per_patient_min: counts[0],
        images_per_patient_median: counts[counts.len() / 2],
        images_per_patient_max: counts[counts.len() - 1],
        in_two_classes: by.iter().filter(|(_, v)| v.1.len() > 1).map(|(k, _)| shown(*k)).collect(),
        in_train_and_test: by.iter().filter(|(_, v)| v.2.len() > 1).map(|(k, _)| shown(*k)).collect(),
    })
}

impl Patients {
    /// The lines `audit` prints.
    pub fn summary(&self, identifying_files: usize) -> String {
        let mut s = format!(
            "\npatients: {} ({} images; per patient min {}, median {}, max {})\n",
            self.patients, self.images, self.images_per_patient_min, self.images_per_patient_median, self.images_per_patient_max
        );
        s += &format!("files carrying identifying attributes (names, IDs, dates of birth…): {identifying_files} (not shown)\n");
        for (what, v) in [("in two classes", &self.in_two_classes), ("in both Training/ and Testing/", &self.in_train_and_test)] {
            s += &format!(
                "patients {what}: {}{}\n",
                v.len(),
                if v.is_empty() { String::new() } else { format!(" ({})", v.iter().take(5).cloned().collect::<Vec<_>>().join(", ")) }
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patients_across_classes_and_splits_are_found() {
        let keys = [Some(1 << 20), Some(1 << 20), Some(2 << 20), Some(2 << 20), Some(3 << 20), None];
        let classes = ["a", "a", "a", "b", "a", "a"];
        let splits = ["train", "test", "train", "train", "train", "train"];
        let p = tally(&keys, &classes, &splits).unwrap();
        assert_eq!((p.patients, p.images, p.images_per_patient_min, p.images_per_patient_max), (3, 5, 1, 2));
        assert_eq!(p.in_train_and_test, vec![shown(1 << 20)]);
        assert_eq!(p.in_two_classes, vec![shown(2 << 20)]);
        assert!(tally(&[None], &["a"], &["train"]).is_none());
    }
}
