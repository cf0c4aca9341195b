//! `report.md`: the run's outcome, figures, classification report, data, configuration and
//! environment, in Markdown that renders well on GitHub.

use super::Inputs;
use crate::run::format::{fmt_duration, printable};

fn cell(s: &str) -> String {
    printable(s).replace('|', "\\|")
}

/// The whole report.
pub fn render(inputs: &Inputs, figures: &[String], skipped: &[String]) -> String {
    let view = &inputs.view;
    let mut s = format!("# tumorscope report: {}\n\n", cell(&inputs.run.name()));
    if inputs.meta.synthetic {
        s += "> **SYNTHETIC DATA.** This run trained on the built-in phantom set: its figures say nothing about real MRI.\n\n";
    }
    s += &outcome(inputs);
    s += "\n## Figures\n\n";
    let captions = [
        ("curves.png", "Training (green) and validation (red) accuracy and loss against epoch; grey lines mark learning-rate changes"),
        ("confusion.png", "Confusion matrix of the test split: counts and row percentages (rows: true class)"),
        ("samples.png", "A sample training image from each label"),
        (
            "misclassified.png",
            "The most confident misclassifications of the test split (with the Grad-CAM of the predicted class when the report was drawn with the network at hand)",
        ),
        ("class_scores.png", "Per-class precision, recall and F1 on the test split"),
        ("roc_pr.png", "One-vs-rest ROC (left) and precision-recall (right) curves of the test split, with each class's area"),
        ("reliability.png", "Reliability diagram of the test split: accuracy against confidence, raw (red) and calibrated (green)"),
    ];
    for (file, caption) in captions {
        if figures.iter().any(|f| f == file) {
            let svg = file.replace(".png", ".svg");
            let also = if figures.contains(&svg) { format!(" ([SVG]({svg}))") } else { String::new() };
            s += &format!("**{caption}**{also}\n\n![{caption}]({file})\n\n");
        }
    }
    if !skipped.is_empty() {
        s += "Not drawn:\n\n";
        for k in skipped {
            s += &format!("- {}\n", cell(k));
        }
        s += "\n";
    }
    if let Some(r) = &view.test_report {
        s += "## Classification report (test split)\n\n";
        if let Some(w) = &view.test_weights {
            s += &format!("Weights: {}.\n\n", cell(w));
        }
        s += &format!("```text\n{}\n{}```\n", printable(&r.to_text(4)), printable(&r.confusion_text()));
        if let Some(u) = &inputs.uncertainty {
            s += &format!(
                "\n```text\n{}\n{}```\n",
                printable(&crate::metrics::intervals::text(&u.intervals, &inputs.meta.classes, r.confusion.total() as usize)),
                printable(&crate::metrics::curves::table(&u.curves))
            );
        }
    }
    s += &calibration(inputs);
    s += &data(inputs);
    s += &config(inputs);
    s += &environment(inputs);
    s
}

fn outcome(inputs: &Inputs) -> String {
    let view = &inputs.view;
    let mut rows: Vec<(String, String)> = vec![];
    rows.push(("status".into(), view.status().to_string()));
    rows.push(("epochs".into(), format!("{} of {}", view.history.len(), view.epochs.max(inputs.meta.config.epochs))));
    if let Some(o) = &view.outcome {
        rows.push(("ended".into(), o.reason.clone()));
        if let Some(by) = &o.stopped_by {
            rows.push(("stopped by".into(), by.to_string()));
        }
    }
    if let Some((acc, epoch)) = view.best {
        rows.push(("best validation accuracy".into(), format!("{:.2}% (epoch {epoch})", 100.0 * acc)));
    }
    if let Some(r) = &view.test_report {
        let interval = inputs
            .uncertainty
            .as_ref()
            .map(|u| format!(" (95% interval {:.1}–{:.1})", 100.0 * u.intervals.accuracy.lo, 100.0 * u.intervals.accuracy.hi));
        rows.push((
            "test accuracy".into(),
            format!("{:.2}% on {} images{}", 100.0 * r.accuracy, r.confusion.total(), interval.unwrap_or_default()),
        ));
    }
    rows.push(("training time".into(), fmt_duration(view.elapsed(None))));
    let mut s = String::from("| | |\n|---|---|\n");
    for (k, v) in rows {
        s += &format!("| {} | {} |\n", cell(&k), cell(&v));
    }
    s
}

fn calibration(inputs: &Inputs) -> String {
    use crate::calibration::{ECE_BINS, brier, ece};
    if inputs.view.test_predictions.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n## Calibration (test split)\n\n");
    let (p, t) = inputs.test_probabilities(None);
    let mut rows = vec![("raw".to_string(), ece(&p, &t, ECE_BINS), brier(&p, &t))];
    match &inputs.calibration {
        Some(c) => {
            let (q, t) = inputs.test_probabilities(Some(c.temperature));
            rows.push((format!("calibrated (T = {:.3})", c.temperature), ece(&q, &t, ECE_BINS), brier(&q, &t)));
            s += &format!(
                "Temperature scaling was fitted on {} {} images of `{}` (validation ECE {:.2}% → {:.2}%). Probabilities in \
                 `predict`, the gallery and this report are calibrated; `--uncalibrated` shows the raw ones.\n\n",
                c.images,
                cell(&c.fitted_on),
                cell(&c.checkpoint),
                100.0 * c.ece_before,
                100.0 * c.ece_after
            );
        }
        None => s += "No temperature was fitted (`tumorscope eval RUN --fit-temperature` fits one).\n\n",
    }
    s += &format!("| probabilities | ECE ({ECE_BINS} bins) | Brier |\n|---|---:|---:|\n");
    for (name, e, b) in rows {
        s += &format!("| {name} | {:.2}% | {b:.4} |\n", 100.0 * e);
    }
    s
}

fn data(inputs: &Inputs) -> String {
    let mut s = String::from("\n## Data\n\n");
    s += &format!("Folder `{}`", printable(&inputs.meta.data_root));
    if let Some(f) = &inputs.meta.data_fingerprint {
        s += &format!(", fingerprint `{f}`");
    }
    s += ".\n\n";
    if let Some(info) = &inputs.view.info {
        s += "| class | train | val | test |\n|---|---:|---:|---:|\n";
        for (k, c) in info.classes.iter().enumerate() {
            let n = |v: &Vec<usize>| v.get(k).copied().unwrap_or(0);
            s += &format!("| {} | {} | {} | {} |\n", cell(c), n(&info.train_counts), n(&info.val_counts), n(&info.test_counts));
        }
        let total = |v: &Vec<usize>| v.iter().sum::<usize>();
        s += &format!("| **all** | {} | {} | {} |\n\n", total(&info.train_counts), total(&info.val_counts), total(&info.test_counts));
    }
    let t = inputs.meta.config.near_duplicate_threshold;
    match &inputs.record {
        Some(r) => {
            s += &format!(
                "Copies of one picture never straddle the split: byte copies{}. Test images left out as copies of training images: **{} exact, {} near**.\n",
                if t == 0 {
                    " only (near-duplicate grouping was off)".to_string()
                } else {
                    format!(" and {} near-copy groups (perceptual hash within {t} of 256 bits)", r.near_groups)
                },
                r.test_duplicates_dropped,
                r.test_near_duplicates_dropped
            );
        }
        None => s += "This run has no split record (`split.json`).\n",
    }
    s
}

fn config(inputs: &Inputs) -> String {
    let mut s = String::from("\n## Configuration\n\n| setting | value |\n|---|---|\n");
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&inputs.meta.config) {
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(x) => x,
                other => other.to_string(),
            };
            s += &format!("| `{k}` | {} |\n", cell(&v));
        }
    }
    s
}

fn environment(inputs: &Inputs) -> String {
    let info = inputs.view.info.as_ref();
    let threads = match inputs.meta.config.threads {
        0 => format!("all cores ({})", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        n => n.to_string(),
    };
    let rows = [
        ("tumorscope", env!("CARGO_PKG_VERSION").to_string()),
        ("model", info.map(|i| i.model.clone()).unwrap_or_else(|| inputs.meta.config.model.name().to_string())),
        ("device", info.map(|i| i.device.clone()).unwrap_or_else(|| "unknown".into())),
        ("threads", threads),
        ("host", info.map(|i| i.host.clone()).filter(|h| !h.is_empty()).unwrap_or_else(|| "unknown".into())),
        ("platform", format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)),
        ("report written", format!("{} UTC", crate::run::dir::utc_stamp(crate::run::dir::now_unix()))),
    ];
    let mut s = String::from("\n## Environment\n\n| | |\n|---|---|\n");
    for (k, v) in rows {
        s += &format!("| {k} | {} |\n", cell(&v));
    }
    s
}
