//! `tumorscope predict`: classify files or folders; show each image in the terminal with viuer.
//! A bad file gets a one-line error and the others are still predicted.

use super::eval::load_run;
use crate::cli::PredictArgs;
use crate::data::decode::Reading;
use crate::data::{display_class, medical};
use crate::model::gradcam;
use crate::report::overlay;
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

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
        } else if let Some(kind) = std::fs::metadata(p).ok().map(|m| m.file_type()).filter(|k| !k.is_file()) {
            out.push(Err(format!("{}: not a regular file ({})", p.display(), crate::data::decode::describe_kind(kind))));
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

/// How `predict` reads its inputs: the run's window and pixel limit, with the slices asked for.
pub fn reading(args: &PredictArgs, cfg: &crate::config::TrainConfig) -> Reading {
    let mut r = Reading::of(cfg);
    r.imaging.slices = args.slices;
    r.imaging.axis = args.slice_axis.unwrap_or(cfg.slice_axis);
    r
}

/// Each DICOM or NIfTI file becomes its slices (`FILE#INDEX`, as `reading` says); a file whose header
/// cannot be read becomes its one-line error; other files stay as they are.
pub fn into_slices(files: Vec<Result<PathBuf, String>>, reading: &Reading) -> Vec<Result<PathBuf, String>> {
    let slices = |p: PathBuf| -> Vec<Result<PathBuf, String>> {
        let Some(expanded) = medical::expand_file(&p, &reading.imaging, reading.max_pixels) else { return vec![Ok(p)] };
        match expanded {
            Ok(e) => {
                if let Some(n) = e.note {
                    crate::run::output::err(&format!("note: {n}"));
                }
                e.paths.into_iter().map(Ok).collect()
            }
            Err(e) => vec![Err(format!("{}: {e}", p.display()))],
        }
    };
    files.into_iter().flat_map(|f| f.map_or_else(|e| vec![Err(e)], slices)).collect()
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

/// How much of a pixel the strongest Grad-CAM evidence covers.
pub const CAM_ALPHA: f32 = 0.55;

/// `<stem>.cam.png`, or `<stem>-2.cam.png` … when images of the same name (from different folders)
/// were already written in this run.
fn unique_name(path: &Path, used: &mut std::collections::HashSet<String>) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "image".into());
    let mut name = format!("{stem}.cam.png");
    let mut k = 2;
    while !used.insert(name.clone()) {
        name = format!("{stem}-{k}.cam.png");
        k += 1;
    }
    name
}

/// A class given by name (as in the run, or as displayed) or by index.
pub fn class_index(c: &str, classes: &[String]) -> Result<usize> {
    if let Some(k) = classes.iter().position(|x| x == c || display_class(x) == c) {
        return Ok(k);
    }
    match c.parse::<usize>() {
        Ok(k) if k < classes.len() => Ok(k),
        _ => anyhow::bail!("--cam-class {c}: not a class of this run (expected one of {} or 0..{})", classes.join(", "), classes.len() - 1),
    }
}

pub fn run(args: PredictArgs) -> Result<()> {
    let lr = load_run(&args.run, &args.device, args.bf16)?;
    let size = lr.meta.config.image_size;
    let show = !args.no_image && !args.json && std::io::stdout().is_terminal();
    let (cal, note) = super::eval::calibration_for(&lr, &args.run, args.uncalibrated);
    if let Some(n) = note {
        crate::run::output::err(&format!("note: {n}"));
    }
    if !args.json {
        crate::run::output::err(&match &cal {
            _ if lr.net.ensemble().is_some() => "ensemble: the mean of its members' calibrated probabilities".to_string(),
            Some(c) => format!("calibrated probabilities (temperature {:.3}, fitted on {} validation images)", c.temperature, c.images),
            None if args.uncalibrated => "raw probabilities (--uncalibrated)".to_string(),
            None => "raw probabilities (the run has no fitted temperature: eval --fit-temperature)".to_string(),
        });
    }
    let cam_class = match &args.cam_class {
        None => None,
        Some(c) => Some(class_index(c, &lr.meta.classes)?),
    };
    let tta = args.tta.as_deref().map(crate::train::tta::Tta::parse).transpose()?;
    if let (Some(t), false) = (tta, args.json) {
        crate::run::output::err(&t.describe());
    }
    let explain = args.cam || args.save_cam.is_some() || cam_class.is_some();
    if let Some(dir) = &args.save_cam {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let mut p = Printer { args: &args, lr: &lr, cal, cam_class, explain, show, used_names: Default::default(), failures: 0, done: 0 };
    // The decoded image itself is kept only for the terminal preview and Grad-CAM's overlay.
    let reading = reading(&args, &lr.meta.config);
    let opts = super::batched::Options::new(size, reading, tta, show || explain, lr.device);
    super::batched::for_each(&lr.net, into_slices(expand(&args.paths), &reading), opts, |item| p.handle(item))?;
    if p.failures > 0 {
        anyhow::bail!("{} of {} input(s) could not be predicted", p.failures, p.failures + p.done);
    }
    Ok(())
}

/// Prints each prediction as it comes (and writes its Grad-CAM overlay), counting what failed.
struct Printer<'a> {
    args: &'a PredictArgs,
    lr: &'a super::eval::LoadedRun,
    cal: Option<crate::calibration::Calibration>,
    cam_class: Option<usize>,
    explain: bool,
    show: bool,
    used_names: std::collections::HashSet<String>,
    failures: usize,
    done: usize,
}

impl Printer<'_> {
    fn handle(&mut self, item: Result<super::batched::Predicted, String>) -> Result<ControlFlow<()>> {
        let super::batched::Predicted { path, image, input: x, probs } = match item {
            Ok(p) => p,
            Err(e) => {
                crate::run::output::err(&format!("error: {e}"));
                self.failures += 1;
                return Ok(ControlFlow::Continue(()));
            }
        };
        let cam = if self.explain { self.grad_cam(&path, &x) } else { None };
        let overlaid = match (&cam, &image) {
            (Some(c), Some(img)) => Some(overlay::overlay(img, &c.map, c.h, c.w, CAM_ALPHA)),
            _ => None,
        };
        if let (Some(dir), Some(o)) = (&self.args.save_cam, &overlaid) {
            let out = dir.join(unique_name(&path, &mut self.used_names));
            if let Err(e) = o.save(&out) {
                crate::run::output::err(&format!("error: {}: cannot write: {e}", out.display()));
                self.failures += 1;
            }
        }
        let probs = match &self.cal {
            Some(c) => crate::calibration::with_temperature(&probs, c.temperature),
            None => probs,
        };
        self.done += 1;
        if self.args.json {
            let size = image.as_ref().map_or((0, 0), |i| (i.width(), i.height()));
            let members = self.members_json(&x);
            self.print_json(&path, &probs, cam.as_ref(), size, members);
        } else {
            if let (true, Some(img)) = (self.show, image) {
                let conf = viuer::Config { width: Some(40), absolute_offset: false, ..Default::default() };
                let shown = if self.args.cam { overlaid.unwrap_or(img) } else { img };
                let _ = viuer::print(&image::DynamicImage::ImageRgb8(shown), &conf);
            }
            self.print_text(&path, &probs, cam.as_ref());
        }
        // Once whatever reads stdout has closed it (`predict DIR | head`), the remaining images would be
        // predicted for nobody: stop, as `head`'s other producers do, unless Grad-CAM files are written.
        Ok(if self.args.save_cam.is_none() && crate::run::output::stdout_gone() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    }

    /// Grad-CAM on the same normalised input the prediction used (a failure is counted and said).
    fn grad_cam(&mut self, path: &Path, x: &tch::Tensor) -> Option<gradcam::Cam> {
        let input = crate::data::batch::normalize(x);
        match gradcam::grad_cam(self.lr.net.as_ref(), &input, self.cam_class) {
            Ok(c) => Some(c),
            Err(e) => {
                crate::run::output::err(&format!("error: {}: Grad-CAM failed: {e}", path.display()));
                self.failures += 1;
                None
            }
        }
    }

    /// An ensemble's members: each one's calibrated probabilities of the image (without TTA) and, per
    /// class, their standard deviation (how much the members disagree).
    fn members_json(&self, x: &tch::Tensor) -> Option<serde_json::Value> {
        let e = self.lr.net.ensemble()?;
        let classes = &self.lr.meta.classes;
        let per: Vec<Vec<f32>> = tch::no_grad(|| e.member_probs(&crate::data::batch::normalize(x)))
            .iter()
            .map(|p| Vec::<f32>::try_from(p.flatten(0, -1).to_device(tch::Device::Cpu)).unwrap_or_default())
            .collect();
        let n = per.len() as f32;
        let spread: serde_json::Map<String, serde_json::Value> = classes
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let mean = per.iter().map(|p| p.get(c).copied().unwrap_or(0.0)).sum::<f32>() / n;
                let var = per.iter().map(|p| (p.get(c).copied().unwrap_or(0.0) - mean).powi(2)).sum::<f32>() / n;
                (name.clone(), serde_json::json!(var.sqrt()))
            })
            .collect();
        Some(serde_json::json!({"members": per, "spread": spread}))
    }

    fn print_json(&self, path: &Path, probs: &[f32], cam: Option<&gradcam::Cam>, (w, h): (u32, u32), members: Option<serde_json::Value>) {
        let classes = &self.lr.meta.classes;
        let best = best_class(probs);
        let p: serde_json::Map<String, serde_json::Value> =
            classes.iter().zip(probs).map(|(c, p)| (c.clone(), serde_json::json!(p))).collect();
        let cam = cam.map(|c| {
            let (px, py) = overlay::peak(&c.map, c.h, c.w, w, h);
            serde_json::json!({"class": classes[c.class], "peak": [px, py], "map": c.map, "h": c.h, "w": c.w})
        });
        let line = serde_json::json!({"path": path.display().to_string(), "class": classes[best], "confidence": probs[best],
            "probabilities": p, "calibrated": self.cal.as_ref().map(|c| c.temperature), "cam": cam, "ensemble": members});
        crate::run::output::out(&line.to_string());
    }

    fn print_text(&self, path: &Path, probs: &[f32], cam: Option<&gradcam::Cam>) {
        let classes = &self.lr.meta.classes;
        let best = best_class(probs);
        let name = display_class(&classes[best]);
        let verdict = if name == "no tumor" { "no tumor detected".to_string() } else { format!("{name} tumor") };
        crate::run::output::out(&format!("{}\n  prediction: {verdict} ({:.1}%)", path.display(), probs[best] * 100.0));
        let all: Vec<String> = classes.iter().zip(probs).map(|(c, p)| format!("{} {:.1}%", display_class(c), p * 100.0)).collect();
        let synthetic = if self.lr.meta.synthetic { "  [model trained on SYNTHETIC data]" } else { "" };
        crate::run::output::out(&format!("  {}{synthetic}", all.join("  ")));
        if let Some(c) = cam {
            crate::run::output::out(&format!(
                "  Grad-CAM (plain, last convolutional stage {}×{}) explains {}",
                c.h,
                c.w,
                display_class(&classes[c.class])
            ));
        }
    }
}

/// The class with the highest probability.
fn best_class(probs: &[f32]) -> usize {
    probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_overlays_never_overwrite_each_other() {
        let mut used = std::collections::HashSet::new();
        let names: Vec<String> =
            ["a/scan.jpg", "b/scan.jpg", "c/scan.png", "d/other.jpg"].iter().map(|p| unique_name(Path::new(p), &mut used)).collect();
        assert_eq!(names, ["scan.cam.png", "scan-2.cam.png", "scan-3.cam.png", "other.cam.png"]);
    }

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
