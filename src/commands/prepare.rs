//! Shared by `train` and `eval`: find the data, load it with a progress bar, split it.

use crate::config::TrainConfig;
use crate::data::{self, ImageSet, LoadReport, Split, dupes, synthetic};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Where the data comes from and whether it is the synthetic stand-in.
#[derive(Debug, Clone)]
pub struct DataSource {
    pub root: PathBuf,
    pub synthetic: bool,
}

pub const GET_REAL_DATA: &str = "Using the built-in SYNTHETIC phantom set: results say nothing about real MRI.\n\
  For real data, download the Kaggle \"Brain Tumor MRI Dataset\" (Masoud Nickparvar), unpack it so that\n\
  data/brain-tumor-mri/Training/<class>/*.jpg (and Testing/) exist, or pass --data DIR / set TUMORSCOPE_DATA.";

/// `--data`, then `$TUMORSCOPE_DATA`, then `./data/brain-tumor-mri`, else synthetic phantoms.
pub fn resolve_source(data: Option<&Path>, force_synthetic: bool) -> Result<DataSource> {
    if !force_synthetic {
        if let Some(p) = data {
            return Ok(DataSource { root: p.to_path_buf(), synthetic: false });
        }
        if let Some(p) = std::env::var_os("TUMORSCOPE_DATA") {
            return Ok(DataSource { root: PathBuf::from(p), synthetic: false });
        }
        let local = PathBuf::from("data/brain-tumor-mri");
        if local.is_dir() {
            return Ok(DataSource { root: local, synthetic: false });
        }
    }
    let root = synthetic::ensure_synthetic(120, 30).context("cannot write the synthetic phantom set")?;
    Ok(DataSource { root, synthetic: true })
}

/// Where a trained run's data is now (for `eval`, `train --resume`): `--data` when given, else the folder
/// it trained on; a synthetic run's phantoms are written again if the cache was cleaned since.
pub fn run_source(meta: &crate::run::RunMeta, data: Option<&Path>) -> Result<DataSource> {
    match (data, meta.synthetic) {
        (Some(d), _) => Ok(DataSource { root: d.to_path_buf(), synthetic: false }),
        (None, true) => resolve_source(None, true),
        (None, false) => Ok(DataSource { root: PathBuf::from(&meta.data_root), synthetic: false }),
    }
}

/// Decode (or load the cache) with a progress bar on stderr, and print what was skipped.
pub fn load(src: &DataSource, cfg: &TrainConfig, quiet: bool) -> Result<(ImageSet, LoadReport)> {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} images {per_sec} {eta}").unwrap().progress_chars("=> "));
    bar.set_prefix("loading");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let (mut set, report) = data::load_dataset(&src.root, cfg.image_size, cfg.limit_per_class, &data::decode::Reading::of(cfg), &progress)?;
    bar.finish_and_clear();
    set.synthetic = src.synthetic;
    if !quiet {
        for w in &report.warnings {
            crate::run::output::err(&format!("warning: {w}"));
        }
        for (p, why) in &report.skipped {
            crate::run::output::err(&format!("warning: {}: skipped: {why}", p.display()));
        }
        crate::run::output::err(&format!(
            "data: {} images in {} classes from {}{} ({} skipped, {:.1}s{})",
            report.decoded,
            set.classes.len(),
            src.root.display(),
            if src.synthetic { " [SYNTHETIC]" } else { "" },
            report.skipped.len(),
            report.seconds,
            if report.from_cache { ", from cache" } else { "" }
        ));
    }
    Ok((set, report))
}

/// The run's split: copies of one picture (byte copies, and near copies within the configured
/// threshold) stay on one side. More folds than the smallest class has copy groups is refused.
pub fn split(set: &ImageSet, cfg: &TrainConfig) -> Result<Split> {
    let (groups, near_groups) = group_keys(set, cfg.near_duplicate_threshold);
    if cfg.folds > 0 {
        let pool: Vec<usize> = (0..set.len()).filter(|&i| !set.from_test_folder[i]).collect();
        let most = data::split::smallest_class_groups(&pool, &set.labels, &groups, set.classes.len());
        if cfg.folds > most {
            anyhow::bail!(
                "--folds {}: the smallest class has only {most} groups of distinct images to deal into folds (at most {most})",
                cfg.folds
            );
        }
    }
    let holdout = match cfg.folds {
        0 => data::Holdout::Fraction(cfg.val_fraction),
        k => data::Holdout::Fold { k, index: cfg.fold },
    };
    let mut split = data::make_split_with(
        &set.labels,
        &set.hashes,
        &groups,
        &set.from_test_folder,
        set.classes.len(),
        holdout,
        cfg.test_fraction,
        cfg.split_seed(),
    );
    split.near_groups = near_groups;
    let mut sizes = std::collections::HashMap::new();
    for g in &groups {
        *sizes.entry(*g).or_insert(0usize) += 1;
    }
    split.largest_group = sizes.values().copied().max().unwrap_or(0);
    let patient_of = &set.patients;
    if patient_of.iter().any(Option::is_some) {
        split.patients = patient_of.iter().flatten().collect::<std::collections::HashSet<_>>().len();
        let in_pool: std::collections::HashSet<u64> =
            (0..set.len()).filter(|&i| !set.from_test_folder[i]).filter_map(|i| patient_of[i]).collect();
        let kept: std::collections::HashSet<usize> = split.test.iter().copied().collect();
        split.test_patients_dropped = (0..set.len())
            .filter(|&i| set.from_test_folder[i] && !kept.contains(&i))
            .filter(|&i| patient_of[i].is_some_and(|k| in_pool.contains(&k)))
            .count();
        split.patient_of = patient_of.clone();
    }
    Ok(split)
}

/// A group key per image, and how many groups join images with different bytes. Images of one
/// patient (`set.patients`, salted keys; DICOM and NIfTI only) are one group too.
pub fn group_keys(set: &ImageSet, threshold: u32) -> (Vec<u64>, usize) {
    let patient_of = &set.patients;
    let has_patients = patient_of.iter().any(Option::is_some);
    if threshold == 0 && !has_patients {
        return (set.hashes.clone(), 0);
    }
    let (mut uf, near) = if threshold == 0 {
        (dupes::exact_groups(&set.hashes), 0)
    } else {
        let phashes = dupes::hash_pixels(&set.pixels, set.size);
        let mut uf = dupes::near_groups(&set.hashes, &phashes, threshold);
        let near =
            uf.groups().iter().filter(|g| g.iter().map(|&i| set.hashes[i]).collect::<std::collections::HashSet<_>>().len() > 1).count();
        (uf, near)
    };
    let mut first_of = std::collections::HashMap::new();
    for (i, key) in patient_of.iter().enumerate() {
        if let Some(k) = key {
            let first = *first_of.entry(*k).or_insert(i);
            uf.union(first, i);
        }
    }
    (dupes::group_keys(&mut uf), near)
}

/// The line `train` prints about its split and the copies it kept out of the test set.
pub fn split_summary(split: &Split, cfg: &TrainConfig, from_test_folder: bool) -> String {
    let grouping = if cfg.near_duplicate_threshold == 0 {
        "byte copies grouped (near-duplicate grouping off)".to_string()
    } else {
        format!(
            "byte copies and {} near-copy group(s) kept on one side (threshold {} of {} bits)",
            split.near_groups,
            cfg.near_duplicate_threshold,
            dupes::HASH_BITS
        )
    };
    let test = if from_test_folder {
        let patients = match split.test_patients_dropped {
            0 => String::new(),
            n => format!(" ({n} of them of patients also in the training images)"),
        };
        format!(
            "; dropped {} test image(s) as exact and {} as near copies of training images{patients}",
            split.test_duplicates_dropped, split.test_near_duplicates_dropped
        )
    } else {
        "; test carved from the same folder (no Testing/)".to_string()
    };
    let val = match split.folds {
        Some((k, i)) => format!(" (fold {} of {k})", i + 1),
        None => String::new(),
    };
    let grouping = match split.patients {
        0 => grouping,
        n => format!("{grouping}; the images of each of {n} patient(s) on one side"),
    };
    let total = split.train.len() + split.val.len() + split.test.len();
    let lumped = if split.largest_group > 50 && split.largest_group * 20 > total {
        format!(
            "\nwarning: one group holds {} images ({:.0}% of the data): copies join images (or patients) into it, so the shares above may differ from those asked for",
            split.largest_group,
            100.0 * split.largest_group as f64 / total as f64
        )
    } else {
        String::new()
    };
    format!("split: {} train, {} val{val}, {} test; {grouping}{test}{lumped}", split.train.len(), split.val.len(), split.test.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_too_large_for_the_shares_is_named() {
        let cfg = TrainConfig::default();
        let mut split = Split { train: (0..700).collect(), val: (700..800).collect(), test: (800..1000).collect(), ..Default::default() };
        split.largest_group = 200;
        let s = split_summary(&split, &cfg, false);
        assert!(s.contains("warning: one group holds 200 images (20% of the data)"), "{s}");
        split.largest_group = 40;
        assert!(!split_summary(&split, &cfg, false).contains("warning"));
        split.patients = 12;
        assert!(split_summary(&split, &cfg, false).contains("the images of each of 12 patient(s) on one side"));
    }
}
