//! `tumorscope predict`: classify files or folders; show each image in the terminal with viuer.
//! A bad file gets a one-line error and the others are still predicted.

use super::eval::load_run;
use crate::cli::PredictArgs;
use crate::data::{decode, display_class};
use anyhow::Result;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The files to classify, in order: files as given, folders walked in sorted order. Each file is
/// visited once (by its real path), and symbolic links that loop back are not followed.
pub fn expand(paths: &[PathBuf]) -> Vec<Result<PathBuf, String>> {
    let mut out = vec![];
    let mut seen_files = std::collections::HashSet::new();
    let mut seen_dirs = std::collections::HashSet::new();
    for p in paths {
        if p.is_dir() {
            let mut files = vec![];
            walk(p, &mut seen_dirs, &mut files);
            files.sort();
            if files.is_empty() {
                out.push(Err(format!("{}: folder holds no files", p.display())));
            }
            out.extend(files.into_iter().filter(|f| seen_files.insert(real(f))).map(Ok));
        } else if p.exists() {
            if seen_files.insert(real(p)) {
                out.push(Ok(p.clone()));
            }
        } else {
            out.push(Err(format!("{}: no such file or folder", p.display())));
        }
    }
    out
}

fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn walk(dir: &Path, seen_dirs: &mut std::collections::HashSet<PathBuf>, files: &mut Vec<PathBuf>) {
    if !seen_dirs.insert(real(dir)) {
        return; // a link back to a folder already walked
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                walk(&p, seen_dirs, files);
            } else if p.is_file() {
                files.push(p);
            }
        }
    }
}

pub fn run(args: PredictArgs) -> Result<()> {
    let lr = load_run(&args.run, &args.device)?;
    let size = lr.meta.config.image_size;
    let show = !args.no_image && !args.json && std::io::stdout().is_terminal();
    let (cal, note) = super::eval::calibration_for(&lr, &args.run, args.uncalibrated);
    if let Some(n) = note {
        crate::run::output::err(&format!("note: {n}"));
    }
    let probabilities = match &cal {
        Some(c) => format!("calibrated probabilities (temperature {:.3}, fitted on {} validation images)", c.temperature, c.images),
        None if args.uncalibrated => "raw probabilities (--uncalibrated)".to_string(),
        None => "raw probabilities (the run has no fitted temperature: eval --fit-temperature)".to_string(),
    };
    if !args.json {
        crate::run::output::err(&probabilities);
    }
    let mut failures = 0;
    let mut done = 0;
    for item in expand(&args.paths) {
        let path = match item {
            Ok(p) => p,
            Err(e) => {
                crate::run::output::err(&format!("error: {e}"));
                failures += 1;
                continue;
            }
        };
        // One read and decode serves both the network input and the terminal preview.
        let img = match decode::open_rgb(&path, lr.meta.config.max_image_pixels) {
            Ok(img) => img,
            Err(e) => {
                crate::run::output::err(&format!("error: {}: {e}", path.display()));
                failures += 1;
                continue;
            }
        };
        let s = size as i64;
        let x = Tensor::f_from_data_size(&decode::resize_for_network(&img, size), &[1, s, s, 3], Kind::Uint8)?
            .to_device(lr.device)
            .to_kind(Kind::Float)
            .permute([0, 3, 1, 2]);
        let probs: Vec<f32> =
            Vec::<f32>::try_from(crate::train::evaluate::probabilities(&lr.net, &x)?.to_device(tch::Device::Cpu).flatten(0, -1))?;
        let probs = match &cal {
            Some(c) => crate::calibration::with_temperature(&probs, c.temperature),
            None => probs,
        };
        let best = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
        done += 1;
        if args.json {
            let p: serde_json::Map<String, serde_json::Value> =
                lr.meta.classes.iter().zip(&probs).map(|(c, p)| (c.clone(), serde_json::json!(p))).collect();
            crate::run::output::out(&format!(
                "{}",
                serde_json::json!({"path": path.display().to_string(), "class": lr.meta.classes[best], "confidence": probs[best], "probabilities": p, "calibrated": cal.as_ref().map(|c| c.temperature)})
            ));
            continue;
        }
        if show {
            let conf = viuer::Config { width: Some(40), absolute_offset: false, ..Default::default() };
            let _ = viuer::print(&image::DynamicImage::ImageRgb8(img), &conf);
        }
        let name = display_class(&lr.meta.classes[best]);
        let verdict = if name == "no tumor" { "no tumor detected".to_string() } else { format!("{name} tumor") };
        crate::run::output::out(&format!("{}\n  prediction: {verdict} ({:.1}%)", path.display(), probs[best] * 100.0));
        let all: Vec<String> = lr.meta.classes.iter().zip(&probs).map(|(c, p)| format!("{} {:.1}%", display_class(c), p * 100.0)).collect();
        crate::run::output::out(&format!(
            "  {}{}",
            all.join("  "),
            if lr.meta.synthetic { "  [model trained on SYNTHETIC data]" } else { "" }
        ));
    }
    if failures > 0 {
        anyhow::bail!("{failures} of {} input(s) could not be predicted", failures + done);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_loops_and_repeats_are_visited_once() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("scans");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/one.jpg"), b"x").unwrap();
        std::fs::write(root.join("two.jpg"), b"x").unwrap();
        std::os::unix::fs::symlink(&root, root.join("a/loop")).unwrap(); // scans/a/loop -> scans
        std::os::unix::fs::symlink(root.join("two.jpg"), root.join("alias.jpg")).unwrap();
        let got: Vec<PathBuf> = expand(&[root.clone(), root.join("two.jpg")]).into_iter().map(Result::unwrap).collect();
        let mut reals: Vec<PathBuf> = got.iter().map(|p| real(p)).collect();
        reals.sort();
        let mut want = vec![real(&root.join("a/one.jpg")), real(&root.join("two.jpg"))];
        want.sort();
        assert_eq!(reals, want, "{got:?}");
    }
}
