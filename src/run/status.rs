//! One line per run for `tumorscope runs`: the fold of its log plus whether its process is alive.

use super::dir::{RunDir, RunMeta};
use super::format::fmt_duration;
use super::log::read_log;
use super::state::RunView;
use serde::Serialize;

/// A run as `runs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub name: String,
    pub path: String,
    /// running, paused, loading, stopping, evaluating, finished, stopped, failed, crashed.
    pub state: String,
    pub epoch: usize,
    pub epochs: usize,
    pub best_val_acc: Option<f64>,
    pub best_epoch: Option<usize>,
    pub test_acc: Option<f64>,
    /// The test accuracy's 95% bootstrap interval (from the run's test predictions).
    pub test_acc_interval: Option<(f64, f64)>,
    pub model: String,
    pub data: String,
    pub started_unix: Option<f64>,
    pub duration_seconds: f64,
    pub pid: Option<u32>,
    pub host: Option<String>,
    /// `RUN/report/report.md`, when written.
    pub report: Option<String>,
}

/// Fold a run's log and check its process: the view clients show, crash detection included.
pub fn load_view(run: &RunDir) -> Result<(RunView, Option<String>), super::log::LogError> {
    let log = read_log(&run.events())?;
    let mut view = RunView::from_records(&log.records);
    if !view.state.is_over() && run.process_gone() {
        view.mark_crashed();
    }
    Ok((view, log.note(&run.events())))
}

pub fn summarize(run: &RunDir) -> RunSummary {
    summary_of(run, &load_view(run).map(|(v, _)| v).unwrap_or_default())
}

/// A run's summary from its view as `load_view` made it (crash already checked).
pub fn summary_of(run: &RunDir, view: &RunView) -> RunSummary {
    let meta: Option<RunMeta> = run.read_meta().ok();
    let process = run.read_process();
    let model = view.info.as_ref().map(|i| i.model.clone()).or_else(|| meta.as_ref().map(|m| m.config.model.name().to_string()));
    let data = view.info.as_ref().map(|i| i.data_root.clone()).or_else(|| meta.as_ref().map(|m| m.data_root.clone()));
    let data = data.map(|d| std::path::Path::new(&d).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or(d));
    // No `started` yet and not crashed (load_view checked the process): still loading its data.
    let state = if view.info.is_none() && !view.is_over() { "loading".to_string() } else { view.status().to_string() };
    RunSummary {
        name: run.name(),
        path: run.path.display().to_string(),
        state,
        epoch: view.history.last().map(|m| m.epoch).unwrap_or(0),
        epochs: view.epochs,
        best_val_acc: view.best.map(|b| b.0),
        best_epoch: view.best.map(|b| b.1),
        test_acc: view.test_report.as_ref().map(|r| r.accuracy),
        test_acc_interval: test_interval(view),
        model: model.unwrap_or_else(|| "?".into()),
        data: data.unwrap_or_else(|| "?".into()),
        started_unix: (view.created_time > 0.0).then_some(view.created_time),
        // A live run's clock runs on; a finished or crashed one's stopped at its last event.
        duration_seconds: view.elapsed(Some(super::log::now_unix_f64())),
        pid: process.as_ref().map(|p| p.pid),
        host: process.map(|p| p.host),
        report: view.report.clone().or_else(|| {
            let p = run.path.join("report").join("report.md");
            p.is_file().then(|| p.display().to_string())
        }),
    }
}

/// The 95% bootstrap interval of the test accuracy, from the run's test predictions.
pub fn test_interval(view: &RunView) -> Option<(f64, f64)> {
    let p = &view.test_predictions;
    if p.is_empty() || view.test_report.is_none() {
        return None;
    }
    let truth: Vec<usize> = p.iter().map(|p| p.truth).collect();
    let pred: Vec<usize> = p.iter().map(|p| p.pred).collect();
    let n = p.iter().map(|p| p.probs.len()).max().unwrap_or(0).max(truth.iter().chain(&pred).max().map_or(0, |m| m + 1));
    let a = crate::metrics::intervals::of_predictions(&truth, &pred, n).accuracy;
    Some((a.lo, a.hi))
}

/// `2026-11-26 01:02` (UTC) for a unix time.
pub fn fmt_started(unix: f64) -> String {
    let s = super::dir::utc_stamp(unix as u64);
    format!("{}-{}-{} {}:{}", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13])
}

/// The table `runs` prints.
pub fn table(runs: &[RunSummary]) -> String {
    let mut rows = vec![[
        "RUN".to_string(),
        "STATE".into(),
        "EPOCH".into(),
        "BEST VAL_ACC".into(),
        "TEST ACC".into(),
        "MODEL".into(),
        "DATA".into(),
        "STARTED (UTC)".into(),
        "DURATION".into(),
        "REPORT".into(),
    ]];
    for r in runs {
        rows.push([
            r.name.clone(),
            r.state.clone(),
            format!("{}/{}", r.epoch, r.epochs),
            match (r.best_val_acc, r.best_epoch) {
                (Some(a), Some(e)) => format!("{a:.4} (ep {e})"),
                _ => "-".into(),
            },
            match (r.test_acc, r.test_acc_interval) {
                (Some(a), Some((lo, hi))) => format!("{a:.4} [{lo:.3}, {hi:.3}]"),
                (Some(a), None) => format!("{a:.4}"),
                _ => "-".into(),
            },
            r.model.clone(),
            r.data.clone(),
            r.started_unix.map(fmt_started).unwrap_or_else(|| "-".into()),
            fmt_duration(r.duration_seconds),
            match &r.report {
                // Relative to the run folder named in the first column.
                Some(p) => std::path::Path::new(p).strip_prefix(&r.path).map(|x| x.display().to_string()).unwrap_or_else(|_| p.clone()),
                None => "-".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..10).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| r.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect::<Vec<_>>().join("  ").trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
