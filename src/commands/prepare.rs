//! Shared by `train` and `eval`: find the data, load it with a progress bar, split it.

use crate::config::TrainConfig;
use crate::data::{self, ImageSet, LoadReport, Split, synthetic};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Where the data comes from and whether it is the synthetic stand-in.
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

/// Decode (or load the cache) with a progress bar on stderr, and print what was skipped.
pub fn load(src: &DataSource, cfg: &TrainConfig, quiet: bool) -> Result<(ImageSet, LoadReport)> {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} images {per_sec} {eta}").unwrap().progress_chars("=> "));
    bar.set_prefix("loading");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let (mut set, report) = data::load_dataset(&src.root, cfg.image_size, cfg.limit_per_class, cfg.max_image_pixels, &progress)?;
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

pub fn split(set: &ImageSet, cfg: &TrainConfig) -> Split {
    data::make_split(&set.labels, &set.hashes, &set.from_test_folder, set.classes.len(), cfg.val_fraction, cfg.test_fraction, cfg.seed)
}
