//! `RUN/report/`: figures (PNG, and SVG for the charts) in the article's palettes and `report.md`,
//! built from what the run recorded (`events.jsonl`, `meta.json`, `split.json`) and the images on
//! disk. No tch: `tumorscope report RUN` redraws it from any machine that can read the folder.

pub mod experiment;
pub mod figures;
pub mod markdown;
pub mod overlay;
pub mod palette;
pub mod roc;
pub mod tiles;

use crate::data::record::SplitRecord;
use crate::run::dir::{RunDir, RunMeta};
use crate::run::events::Prediction;
use crate::run::state::{Outcome, RunView};
use std::path::{Path, PathBuf};

/// What `write` produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub dir: PathBuf,
    pub markdown: PathBuf,
    /// File names inside `dir`.
    pub figures: Vec<String>,
    /// Figures that could not be made, and why.
    pub skipped: Vec<String>,
}

/// Everything the report is made from.
pub struct Inputs {
    pub run: RunDir,
    pub meta: RunMeta,
    pub view: RunView,
    pub record: Option<SplitRecord>,
    /// The temperature fitted for this run: `RUN/calibration.json` (written at the end of training
    /// and by `eval --fit-temperature`).
    pub calibration: Option<crate::calibration::Calibration>,
    /// The test predictions' intervals and curves, computed once (the figure and report.md use them).
    pub uncertainty: Option<Uncertainty>,
}

/// Why a report could not be written (a figure that cannot be drawn is only skipped, and said).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Run(#[from] crate::run::dir::RunDirError),
    /// The run's events could not be read.
    #[error(transparent)]
    Events(#[from] crate::run::log::LogError),
    #[error("{path}: cannot create: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Write { path: String, source: std::io::Error },
}

impl Inputs {
    pub fn read(run: &RunDir) -> Result<Inputs, ReportError> {
        let meta = run.read_meta()?;
        let (view, _) = crate::run::status::load_view(run)?;
        let record = SplitRecord::read(&run.split_record()).ok();
        let calibration = crate::calibration::Calibration::read(&run.path.join("calibration.json")).ok();
        let uncertainty = Uncertainty::of(&view.test_predictions, &meta.classes);
        Ok(Inputs { run: run.clone(), meta, view, record, calibration, uncertainty })
    }

    /// Where an image the run recorded is now: as recorded if it is there, else under the run's data
    /// folder by its path relative to the root (the run may have been started from another folder).
    pub fn locate(&self, recorded: &str) -> PathBuf {
        let p = PathBuf::from(recorded);
        if p.exists() {
            return p;
        }
        if let Some(rec) = &self.record
            && let Some(f) = rec.files.iter().find(|f| p.ends_with(Path::new(&f.path)))
        {
            return Path::new(&self.meta.data_root).join(&f.path);
        }
        p
    }

    /// The test split's probabilities (at temperature `t`, or raw) and true labels.
    pub fn test_probabilities(&self, t: Option<f64>) -> (Vec<Vec<f32>>, Vec<usize>) {
        let p = &self.view.test_predictions;
        let probs = p
            .iter()
            .map(|p| match t {
                Some(t) => crate::calibration::with_temperature(&p.probs, t),
                None => p.probs.clone(),
            })
            .collect();
        (probs, p.iter().map(|p| p.truth).collect())
    }

    /// Test images predicted wrong, most confident first.
    pub fn confident_mistakes(&self, n: usize) -> Vec<&Prediction> {
        let mut wrong: Vec<&Prediction> = self.view.test_predictions.iter().filter(|p| !p.correct()).collect();
        wrong.sort_by(|a, b| b.confidence().total_cmp(&a.confidence()));
        wrong.truncate(n);
        wrong
    }
}

/// How sure the test figures are, and the per-class curves.
pub struct Uncertainty {
    pub intervals: crate::metrics::intervals::Intervals,
    pub curves: Vec<crate::metrics::curves::ClassCurves>,
}

impl Uncertainty {
    /// The bootstrap intervals and one-vs-rest curves of a prediction set (none when it is empty).
    pub fn of(preds: &[Prediction], classes: &[String]) -> Option<Uncertainty> {
        if preds.is_empty() {
            return None;
        }
        let truth: Vec<usize> = preds.iter().map(|p| p.truth).collect();
        let pred: Vec<usize> = preds.iter().map(|p| p.pred).collect();
        let probs: Vec<Vec<f32>> = preds.iter().map(|p| p.probs.clone()).collect();
        Some(Uncertainty {
            intervals: crate::metrics::intervals::of_predictions(&truth, &pred, classes.len()),
            curves: crate::metrics::curves::per_class(&probs, &truth, &pred, classes),
        })
    }
}

#[derive(Default)]
struct Tally {
    figures: Vec<String>,
    skipped: Vec<String>,
}

impl Tally {
    fn made(&mut self, name: &str, r: Result<(), figures::DrawError>) {
        match r {
            Ok(()) => self.figures.push(name.to_string()),
            Err(e) => self.skipped.push(format!("{name}: {e}")),
        }
    }
}

/// How many misclassified images the figure shows.
pub const MISTAKES_SHOWN: usize = 8;

/// Write `RUN/report/`: every figure the run's records allow, then `report.md`.
pub fn write(run: &RunDir) -> Result<Written, ReportError> {
    write_ending(run, None)
}

/// Grad-CAM of an image's predicted class, from whoever can run the network (the report cannot).
pub type CamSource<'a> = &'a dyn Fn(&Path) -> Option<crate::run::explain::CamMap>;

/// As `write`, for the trainer that is about to log how the run ended (`outcome`).
pub fn write_ending(run: &RunDir, outcome: Option<Outcome>) -> Result<Written, ReportError> {
    write_with(run, outcome, None)
}

/// As `write`, with the ending the trainer is about to log and a source of Grad-CAM maps for the
/// misclassification figure.
pub fn write_with(run: &RunDir, outcome: Option<Outcome>, cams: Option<CamSource>) -> Result<Written, ReportError> {
    let mut inputs = Inputs::read(run)?;
    if let Some(o) = outcome {
        inputs.view.outcome = Some(o);
        inputs.view.state = crate::run::events::RunState::Finished;
    }
    let dir = run.path.join("report");
    std::fs::create_dir_all(&dir).map_err(|source| ReportError::CreateDir { path: dir.display().to_string(), source })?;
    let mut t = Tally::default();
    draw_curves(&inputs, &dir, &mut t);
    draw_test_report(&inputs, &dir, &mut t);
    draw_reliability(&inputs, &dir, &mut t);
    draw_roc_pr(&inputs, &dir, &mut t);
    draw_samples(&inputs, &dir, &mut t);
    draw_mistakes(&inputs, &dir, cams, &mut t);
    let markdown = dir.join("report.md");
    let text = markdown::render(&inputs, &t.figures, &t.skipped);
    crate::run::dir::write_atomic(&markdown, text.as_bytes())
        .map_err(|source| ReportError::Write { path: markdown.display().to_string(), source })?;
    Ok(Written { dir, markdown, figures: t.figures, skipped: t.skipped })
}

/// Draw one figure as `STEM.png` and `STEM.svg` (the drawing is the same code over two backends).
macro_rules! png_and_svg {
    ($t:expr, $dir:expr, $stem:literal, $size:expr, |$a:ident| $draw:expr) => {
        $t.made(concat!($stem, ".png"), figures::png(&$dir.join(concat!($stem, ".png")), $size, |$a| $draw));
        $t.made(concat!($stem, ".svg"), figures::svg(&$dir.join(concat!($stem, ".svg")), $size, |$a| $draw));
    };
}

/// Accuracy and loss per epoch, with the learning-rate changes marked.
fn draw_curves(inputs: &Inputs, dir: &Path, t: &mut Tally) {
    let view = &inputs.view;
    if view.history.is_empty() {
        t.skipped.push("curves: no epoch finished".into());
        return;
    }
    let changes: Vec<(usize, f64)> = view.lr_history.iter().skip(1).copied().collect();
    png_and_svg!(t, dir, "curves", figures::CURVES_SIZE, |a| figures::curves(a, &view.history, &changes));
}

/// The test split's confusion heatmap and per-class scores.
fn draw_test_report(inputs: &Inputs, dir: &Path, t: &mut Tally) {
    let classes = &inputs.meta.classes;
    let Some(report) = &inputs.view.test_report else {
        let why = "no test report (no test split, or the run stopped before testing)";
        t.skipped.extend(["confusion", "class_scores"].map(|n| format!("{n}: {why}")));
        return;
    };
    let title = format!("Confusion matrix, test split ({} images)", report.confusion.total());
    let size = figures::HeatmapLayout::new(classes.len()).size();
    png_and_svg!(t, dir, "confusion", size, |a| figures::confusion(a, &report.confusion, classes, &title));
    png_and_svg!(t, dir, "class_scores", figures::SCORES_SIZE, |a| figures::class_scores(a, report));
}

/// Reliability of the test probabilities, raw and with the fitted temperature.
fn draw_reliability(inputs: &Inputs, dir: &Path, t: &mut Tally) {
    if inputs.view.test_predictions.is_empty() {
        t.skipped.push("reliability: no test predictions".into());
        return;
    }
    let cal = inputs.calibration.as_ref().map(|c| c.temperature);
    let (probs, truth) = inputs.test_probabilities(None);
    let raw = crate::calibration::reliability(&probs, &truth, crate::calibration::ECE_BINS);
    let scaled = cal.map(|t| {
        let (p, tr) = inputs.test_probabilities(Some(t));
        crate::calibration::reliability(&p, &tr, crate::calibration::ECE_BINS)
    });
    let title = match cal {
        Some(t) => format!("Reliability, test split (temperature {t:.2})"),
        None => "Reliability, test split (no temperature fitted)".to_string(),
    };
    png_and_svg!(t, dir, "reliability", figures::RELIABILITY_SIZE, |a| figures::reliability(a, &raw, scaled.as_deref(), &title));
}

/// One-vs-rest ROC and precision-recall curves of the test predictions.
fn draw_roc_pr(inputs: &Inputs, dir: &Path, t: &mut Tally) {
    let Some(u) = &inputs.uncertainty else {
        t.skipped.push("roc_pr: no test predictions".into());
        return;
    };
    let title = format!("One-vs-rest ROC and precision-recall, test split ({} images)", inputs.view.test_predictions.len());
    png_and_svg!(t, dir, "roc_pr", roc::ROC_PR_SIZE, |a| roc::roc_pr(a, &u.curves, &title));
}

/// One sample image of each class, as the run recorded them.
fn draw_samples(inputs: &Inputs, dir: &Path, t: &mut Tally) {
    let classes = &inputs.meta.classes;
    let reading = crate::data::decode::Reading::of(&inputs.meta.config);
    let samples: Vec<tiles::Tile> = inputs
        .view
        .info
        .as_ref()
        .map(|info| {
            info.samples
                .iter()
                .enumerate()
                .filter_map(|(k, s)| s.as_ref().map(|s| (k, s)))
                .map(|(k, s)| {
                    let name = crate::data::display_class(classes.get(k).map(String::as_str).unwrap_or("?"));
                    tiles::Tile::load(&inputs.locate(s), &reading, vec![(name, palette::TEXT)])
                })
                .collect()
        })
        .unwrap_or_default();
    if samples.is_empty() {
        t.skipped.push("samples: the run recorded no sample images".into());
        return;
    }
    let size = tiles::grid_size(samples.len(), samples.len());
    t.made(
        "samples.png",
        figures::png(&dir.join("samples.png"), size, |a| tiles::grid(a, "A sample from each label", &samples, samples.len())),
    );
}

/// The most confident mistakes on the test split, with Grad-CAM when a source of maps is given.
fn draw_mistakes(inputs: &Inputs, dir: &Path, cams: Option<CamSource>, t: &mut Tally) {
    let classes = &inputs.meta.classes;
    let mistakes = inputs.confident_mistakes(MISTAKES_SHOWN);
    if inputs.view.test_predictions.is_empty() {
        t.skipped.push("misclassified: no test predictions".into());
        return;
    }
    if mistakes.is_empty() {
        t.skipped.push("misclassified: every test image was classified correctly".into());
        return;
    }
    let name = |k: usize| crate::data::display_class(classes.get(k).map(String::as_str).unwrap_or("?"));
    // Calibrated confidence when the run has a temperature (the figure's title says which).
    let temperature = inputs.calibration.as_ref().map(|c| c.temperature);
    let confidence = |p: &Prediction| match temperature {
        Some(t) => crate::calibration::with_temperature(&p.probs, t).get(p.pred).copied().unwrap_or(0.0),
        None => p.confidence(),
    };
    let title = format!(
        "Most confident mistakes (test{}{})",
        if temperature.is_some() { "; calibrated" } else { "" },
        if cams.is_some() { "; Grad-CAM: predicted class" } else { "" }
    );
    let tiles: Vec<tiles::Tile> = mistakes
        .iter()
        .map(|p| {
            let path = inputs.locate(&p.path);
            let cam = cams.and_then(|f| f(&path));
            let labels = vec![
                (format!("true: {}", name(p.truth)), palette::GREEN[3]),
                (format!("pred: {} {:.0}%", name(p.pred), 100.0 * confidence(p)), palette::RED[3]),
            ];
            tiles::Tile::load_with_cam(&path, &crate::data::decode::Reading::of(&inputs.meta.config), cam.as_ref(), labels)
        })
        .collect();
    let cols = tiles.len().min(4);
    let size = tiles::grid_size(tiles.len(), cols);
    t.made("misclassified.png", figures::png(&dir.join("misclassified.png"), size, |a| tiles::grid(a, &title, &tiles, cols)));
}
