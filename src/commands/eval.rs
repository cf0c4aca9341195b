//! `tumorscope eval`: rebuild a run's network and split, evaluate its best checkpoint.

use super::prepare::{self, DataSource};
use crate::calibration::{self, Calibration};
use crate::cli::EvalArgs;
use crate::run::dir::RunDir;
use crate::train::evaluate::evaluate_with;
use anyhow::{Context, Result};
use std::path::PathBuf;
use tch::nn::VarStore;

/// A trained network rebuilt from its run folder.
pub struct LoadedRun {
    pub meta: crate::run::dir::RunMeta,
    pub net: crate::model::Net,
    pub vs: VarStore,
    pub checkpoint: PathBuf,
    pub device: tch::Device,
}

/// `bf16`: the folded copy in bfloat16 (`--bf16`).
pub fn load_run(run: &std::path::Path, device: &str, bf16: bool) -> Result<LoadedRun> {
    let device = crate::device::parse_device(device)?;
    let crate::model::weights::RunNetwork { meta, vs, net, checkpoint } =
        crate::model::inference::load_model(run, device, true)?;
    // Inference only from here: the BatchNorm-folded copy where the network has one.
    let net = if bf16 {
        net.folded_bf16().with_context(|| {
            format!("{}: --bf16 needs an efficientnet-lite0 run (this one is {})", run.display(), meta.config.model.name())
        })?
    } else {
        net.folded().unwrap_or(net)
    };
    Ok(LoadedRun { meta, net, vs, checkpoint, device })
}

/// The test images that are copies of training images, for `--exclude-near-duplicates`.
struct Honest {
    /// The split's images that are not training images themselves.
    candidates: Vec<usize>,
    exact: Vec<usize>,
    near: Vec<usize>,
    threshold: u32,
}

/// Calibration figures of one evaluation: raw, and with the fitted temperature when there is one.
#[derive(Debug, serde::Serialize)]
struct Calibrated {
    bins: usize,
    ece: f64,
    brier: f64,
    temperature: Option<f64>,
    ece_calibrated: Option<f64>,
    brier_calibrated: Option<f64>,
}

impl Calibrated {
    fn of(preds: &[crate::run::events::Prediction], cal: Option<&Calibration>) -> Calibrated {
        let probs: Vec<Vec<f32>> = preds.iter().map(|p| p.probs.clone()).collect();
        let truth: Vec<usize> = preds.iter().map(|p| p.truth).collect();
        let scaled: Option<Vec<Vec<f32>>> = cal.map(|c| probs.iter().map(|p| calibration::with_temperature(p, c.temperature)).collect());
        Calibrated {
            bins: calibration::ECE_BINS,
            ece: calibration::ece(&probs, &truth, calibration::ECE_BINS),
            brier: calibration::brier(&probs, &truth),
            temperature: cal.map(|c| c.temperature),
            ece_calibrated: scaled.as_ref().map(|s| calibration::ece(s, &truth, calibration::ECE_BINS)),
            brier_calibrated: scaled.as_ref().map(|s| calibration::brier(s, &truth)),
        }
    }

    fn text(&self) -> String {
        let mut s = format!("calibration ({} bins): ECE {:.2}%, Brier {:.4} (raw probabilities)", self.bins, 100.0 * self.ece, self.brier);
        if let (Some(t), Some(e), Some(b)) = (self.temperature, self.ece_calibrated, self.brier_calibrated) {
            s += &format!("\n                       ECE {:.2}%, Brier {:.4} (calibrated, temperature {t:.3})", 100.0 * e, b);
        }
        s + "\n"
    }
}

/// `--fit-temperature`: fit on the run's recorded validation split and store it beside the checkpoint.
fn fit_temperature(
    lr: &LoadedRun,
    run: &std::path::Path,
    record: Option<&crate::data::record::SplitRecord>,
    set: &crate::data::ImageSet,
    root: &std::path::Path,
    other_folder: bool,
) -> Result<Calibration> {
    let rec = match record {
        Some(r) if !other_folder => r,
        _ => anyhow::bail!("{}: --fit-temperature needs the run's own data folder and its split record (split.json)", run.display()),
    };
    let m = rec.matched(set, root, "val");
    if m.indices.is_empty() {
        anyhow::bail!("{}: the recorded validation split has no images left to fit on", run.display());
    }
    let val = evaluate_with(&lr.net, set, &m.indices, 64, lr.device, None)?;
    let probs: Vec<Vec<f32>> = val.predictions.iter().map(|p| p.probs.clone()).collect();
    let truth: Vec<usize> = val.predictions.iter().map(|p| p.truth).collect();
    let name = lr.checkpoint.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let c = Calibration::fit(&probs, &truth, &name, "val");
    let path = run.join("calibration.json");
    c.write(&path).with_context(|| format!("{}: cannot write", path.display()))?;
    crate::run::output::err(&format!(
        "fitted temperature {:.3} on {} validation images (ECE {:.2}% → {:.2}%): {}",
        c.temperature,
        c.images,
        100.0 * c.ece_before,
        100.0 * c.ece_after,
        path.display()
    ));
    Ok(c)
}

/// The run's fitted temperature, if it was fitted for the checkpoint in use (and not `uncalibrated`);
/// otherwise a note saying why the probabilities stay raw.
pub fn calibration_for(run: &LoadedRun, run_dir: &std::path::Path, uncalibrated: bool) -> (Option<Calibration>, Option<String>) {
    let path = run_dir.join("calibration.json");
    if uncalibrated || !path.exists() {
        return (None, None);
    }
    match Calibration::read(&path) {
        Ok(c) if run.checkpoint.file_name().is_some_and(|n| n.to_string_lossy() == c.checkpoint) => (Some(c), None),
        Ok(c) => (
            None,
            Some(format!("{}: fitted for {}, not {}: probabilities are raw", path.display(), c.checkpoint, run.checkpoint.display())),
        ),
        Err(e) => (None, Some(format!("{e}: probabilities are raw"))),
    }
}

fn same_folder(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The images an evaluation scores and what it says about them.
struct Selection {
    split_name: String,
    idx: Vec<usize>,
    notes: Vec<String>,
}

/// What one evaluation measured, for printing.
struct Scored<'a> {
    args: &'a EvalArgs,
    lr: &'a LoadedRun,
    set: &'a crate::data::ImageSet,
    src: &'a DataSource,
    sel: &'a Selection,
    /// The images scored (the selection, less training images when looking for copies).
    idx: &'a [usize],
    tta: Option<crate::train::tta::Tta>,
    seconds: f64,
    ev: &'a crate::train::evaluate::Evaluation,
    report: crate::metrics::Report,
    intervals: crate::metrics::intervals::Intervals,
    curves: Vec<crate::metrics::curves::ClassCurves>,
    calib: Calibrated,
    honest: Option<(&'a Honest, crate::metrics::ConfusionMatrix)>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let tta = args.tta.as_deref().map(crate::train::tta::Tta::parse).transpose()?;
    let lr = load_run(&args.run, &args.device, args.bf16)?;
    let dir = RunDir::open(&args.run).map_err(anyhow::Error::msg)?;
    if !["test", "val", "train", "all"].contains(&args.split.as_str()) {
        anyhow::bail!("--split {}: expected test, val, train or all", args.split);
    }
    // Another folder than the run's is scored whole: none of it was split for this run.
    let other_folder = args.data.as_ref().is_some_and(|d| !same_folder(d, std::path::Path::new(&lr.meta.data_root)));
    let src = prepare::run_source(&lr.meta, args.data.as_deref())?;
    crate::run::privacy::follow(&dir.path);
    let record = split_record(&dir, &args, other_folder)?;
    let mut cfg = lr.meta.config.clone();
    if other_folder || record.is_some() {
        cfg.limit_per_class = 0; // every image: the record says which are the split's
    }
    let (set, _) = prepare::load(&src, &cfg, args.json)?;
    if set.classes != lr.meta.classes {
        anyhow::bail!("{}: classes {:?} differ from the run's {:?}", src.root.display(), set.classes, lr.meta.classes);
    }
    let scope = Scope { args: &args, lr: &lr, set: &set, src: &src, record: record.as_ref(), other_folder };
    let sel = select(&scope)?;
    let honest = if args.exclude_near_duplicates { Some(copies_of_training(&scope, &sel)?) } else { None };
    let idx: &[usize] = honest.as_ref().map_or(&sel.idx, |h| &h.candidates);
    let t0 = std::time::Instant::now();
    let ev = evaluate_with(&lr.net, &set, idx, 64, lr.device, tta)?;
    let seconds = t0.elapsed().as_secs_f64();
    let report = ev.confusion.report(&set.classes);
    let crate::report::Uncertainty { intervals, curves } =
        crate::report::Uncertainty::of(&ev.predictions, &set.classes).ok_or_else(|| anyhow::anyhow!("{}: nothing was scored", src.root.display()))?;
    let (mut cal, cal_note) = calibration_for(&lr, &args.run, args.uncalibrated);
    if let Some(n) = cal_note {
        crate::run::output::err(&format!("note: {n}"));
    }
    if args.fit_temperature {
        cal = Some(fit_temperature(&lr, &args.run, record.as_ref(), &set, &src.root, other_folder)?);
    }
    let calib = Calibrated::of(&ev.predictions, cal.as_ref());
    let honest = honest.as_ref().map(|h| (h, without_copies(h, &ev, idx, set.classes.len())));
    let scored = Scored {
        args: &args,
        lr: &lr,
        set: &set,
        src: &src,
        sel: &sel,
        idx,
        tta,
        seconds,
        ev: &ev,
        report,
        intervals,
        curves,
        calib,
        honest,
    };
    if args.json { print_json(&scored) } else { print_text(&scored) }
}

/// The run's recorded split, if any: a record that is there but unreadable is an error, not a reason to
/// score a different split; a missing one is said at once.
fn split_record(dir: &RunDir, args: &EvalArgs, other_folder: bool) -> Result<Option<crate::data::record::SplitRecord>> {
    if let Ok(true) = dir.split_record().try_exists() {
        return Ok(Some(crate::data::record::SplitRecord::read(&dir.split_record())?));
    }
    if !other_folder && args.split != "all" {
        crate::run::output::err(&format!(
            "note: {}: missing, so the {} split is recomputed from the seed: exact only if the data and tumorscope's \
             splitting are unchanged since the run trained (--split all scores every image)",
            dir.split_record().display(),
            args.split
        ));
    }
    Ok(None)
}

/// What choosing the images to score looks at: the command, the run, the loaded folder and its record.
struct Scope<'a> {
    args: &'a EvalArgs,
    lr: &'a LoadedRun,
    set: &'a crate::data::ImageSet,
    src: &'a DataSource,
    record: Option<&'a crate::data::record::SplitRecord>,
    /// The folder is not the one the run trained on: it is scored whole.
    other_folder: bool,
}

/// The images to score: every image of another folder (or with `--split all`), else the recorded
/// split's, else the split recomputed from the seed.
fn select(scope: &Scope) -> Result<Selection> {
    let Scope { args, lr, set, src, record, other_folder } = *scope;
    let mut notes = vec![];
    let (split_name, idx): (String, Vec<usize>) = if other_folder || args.split == "all" {
        if other_folder && args.split != "all" {
            notes.push(format!("{}: not the run's data folder, so every image in it is evaluated (--split all)", src.root.display()));
        }
        ("all".into(), (0..set.len()).collect())
    } else if let Some(rec) = record {
        let m = rec.matched(set, &src.root, &args.split);
        notes.extend(m.note(&args.split));
        (args.split.clone(), m.indices)
    } else {
        let split = prepare::split(set, &lr.meta.config)?;
        let idx = match args.split.as_str() {
            "val" => split.val,
            "train" => split.train,
            _ => split.test,
        };
        (args.split.clone(), idx)
    };
    for n in &notes {
        crate::run::output::err(&format!("note: {n}"));
    }
    if idx.is_empty() {
        anyhow::bail!("{}: the {} split is empty", src.root.display(), split_name);
    }
    Ok(Selection { split_name, idx, notes })
}

/// `--exclude-near-duplicates`: the selection's images that are exact or near copies of a training
/// image (the run's recorded training and validation images, or another folder's `Training/`).
fn copies_of_training(scope: &Scope, sel: &Selection) -> Result<Honest> {
    let Scope { args, lr, set, src, record, other_folder } = *scope;
    if !["test", "all"].contains(&sel.split_name.as_str()) {
        anyhow::bail!("--exclude-near-duplicates scores a test split (--split test or all), not {}", sel.split_name);
    }
    let reference: Vec<usize> = match (record, other_folder || args.split == "all") {
        (Some(rec), false) => {
            let mut r = rec.matched(set, &src.root, "train").indices;
            r.extend(rec.matched(set, &src.root, "val").indices);
            r
        }
        _ => (0..set.len()).filter(|&i| !set.from_test_folder[i]).collect(),
    };
    let candidates: Vec<usize> = sel.idx.iter().copied().filter(|i| !reference.contains(i)).collect();
    if reference.is_empty() || candidates.is_empty() {
        anyhow::bail!(
            "{}: --exclude-near-duplicates needs training images beside the test images (a Training/ and a Testing/ folder)",
            src.root.display()
        );
    }
    let threshold = args.near_duplicate_threshold.unwrap_or(match lr.meta.config.near_duplicate_threshold {
        0 => crate::data::dupes::DEFAULT_NEAR_THRESHOLD,
        t => t,
    });
    let phashes = crate::data::dupes::hash_pixels(&set.pixels, set.size);
    let (exact, near) = crate::data::dupes::copies_of(&set.hashes, &phashes, threshold, &reference, &candidates);
    Ok(Honest { candidates, exact, near, threshold })
}

/// The confusion matrix of the scored images less the copies of training images.
fn without_copies(h: &Honest, ev: &crate::train::evaluate::Evaluation, idx: &[usize], classes: usize) -> crate::metrics::ConfusionMatrix {
    let drop: std::collections::HashSet<usize> = h.exact.iter().chain(&h.near).copied().collect();
    let mut cm = crate::metrics::ConfusionMatrix::new(classes);
    for (p, i) in ev.predictions.iter().zip(idx.iter()) {
        if !drop.contains(i) {
            cm.add(p.truth, p.pred);
        }
    }
    cm
}

fn print_json(s: &Scored) -> Result<()> {
    let out = serde_json::json!({
        "run": s.args.run.display().to_string(),
        "checkpoint": s.lr.checkpoint.display().to_string(),
        "split": s.sel.split_name,
        "images": s.idx.len(),
        "notes": s.sel.notes,
        "tta": s.tta.map(|t| t.describe()),
        "precision": if s.args.bf16 { "bf16" } else { "f32" },
        "seconds": s.seconds,
        "synthetic": s.set.synthetic,
        "loss": s.ev.loss,
        "report": s.report,
        "intervals": s.intervals,
        "per_class": s.curves,
        "calibration": s.calib,
        "without_copies_of_training": s.honest.as_ref().map(|(h, cm)| serde_json::json!({
            "threshold": h.threshold,
            "exact_copies": h.exact.len(),
            "near_copies": h.near.len(),
            "images": cm.total(),
            "report": cm.report(&s.set.classes),
        })),
    });
    crate::run::output::out(&serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn print_text(s: &Scored) -> Result<()> {
    crate::run::output::out(&format!(
        "{} split of {}{}: {} images, checkpoint {}{}{}\n",
        s.sel.split_name,
        s.src.root.display(),
        if s.set.synthetic { " [SYNTHETIC]" } else { "" },
        s.idx.len(),
        s.lr.checkpoint.display(),
        s.tta.map(|t| format!(", {}", t.describe())).unwrap_or_default(),
        if s.args.bf16 { ", bf16" } else { "" }
    ));
    crate::run::output::out(&s.report.to_text(4));
    crate::run::output::out(&crate::metrics::intervals::text(&s.intervals, &s.set.classes, s.idx.len()));
    crate::run::output::out(&crate::metrics::curves::table(&s.curves));
    crate::run::output::out(&format!("confusion matrix (rows: true, columns: predicted)\n{}", s.report.confusion_text()));
    crate::run::output::out(&s.calib.text());
    if let Some((h, cm)) = &s.honest {
        crate::run::output::out(&format!(
            "\nwithout copies of training images: {} exact and {} near copies (threshold {} of {} bits) left out\n\
             accuracy {:.2}% on {} images (official: {:.2}% on {})\n",
            h.exact.len(),
            h.near.len(),
            h.threshold,
            crate::data::dupes::HASH_BITS,
            100.0 * cm.accuracy(),
            cm.total(),
            100.0 * s.ev.accuracy(),
            s.idx.len()
        ));
        crate::run::output::out(&cm.report(&s.set.classes).to_text(4));
    }
    Ok(())
}
