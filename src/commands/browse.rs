//! `tumorscope predict --run RUN DIR --browse`: the dashboard's gallery (and confusion view) over any
//! folder of images, with the run's predictions. Class subfolders named like the run's classes give
//! the true labels, so the misclassified filter and the confusion matrix work; without them the true
//! class is unknown and shown as the prediction.

use super::eval::load_run;
use crate::cli::PredictArgs;
use crate::metrics::ConfusionMatrix;
use crate::run::events::{Prediction, Record, RunInfo, RunState, TrainEvent};
use anyhow::{Result, bail};
use std::io::IsTerminal;
use std::ops::ControlFlow;

pub async fn run(args: PredictArgs) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("predict --browse opens the dashboard and needs a terminal (without --browse, predict prints)");
    }
    let lr = load_run(&args.run, &args.device, args.bf16)?;
    let (cal, _) = super::eval::calibration_for(&lr, &args.run, args.uncalibrated);
    let predicted = predict_all(&args, &lr, cal.as_ref())?;
    let n = predicted.items.len();
    let events = as_events(&args, &lr, predicted);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for (seq, event) in events.into_iter().enumerate() {
        let _ = tx.send(Record { seq: seq as u64, time: crate::run::log::now_unix_f64(), event });
    }
    let theme = crate::tui::theme::Theme::load("article")?;
    let session = crate::tui::Session {
        records: rx,
        commands: crate::tui::CommandSink::ReadOnly,
        hangup: None,
        remote: None,
        note: Some(format!(
            "browsing {n} images with {} ({})",
            lr.checkpoint.display(),
            if cal.is_some() { "calibrated" } else { "raw probabilities" }
        )),
        runs_dir: None,
        explain: Some(crate::explain::spawn(args.run.clone())),
        view: Some(crate::tui::action::View::Gallery),
    };
    crate::tui::dashboard(session, theme).await?;
    drop(tx);
    Ok(())
}

/// Every image's prediction, the files that could not be predicted, and how many had a class folder.
struct Predictions {
    items: Vec<Prediction>,
    skipped: Vec<String>,
    labelled: usize,
}

fn predict_all(args: &PredictArgs, lr: &super::eval::LoadedRun, cal: Option<&crate::calibration::Calibration>) -> Result<Predictions> {
    let classes = &lr.meta.classes;
    let tta = args.tta.as_deref().map(crate::train::tta::Tta::parse).transpose()?;
    let mut out = Predictions { items: vec![], skipped: vec![], labelled: 0 };
    let reading = super::predict::reading(args, &lr.meta.config);
    let opts = super::batched::Options::new(lr.meta.config.image_size, reading, tta, false, lr.device);
    let files = super::predict::into_slices(super::predict::expand(&args.paths), &reading);
    // The dashboard opens once every file is predicted: say what is happening meanwhile.
    crate::run::output::err(&format!("predicting {} files with {}…", files.iter().filter(|f| f.is_ok()).count(), lr.checkpoint.display()));
    super::batched::for_each(&lr.net, files, opts, |item| {
        let super::batched::Predicted { path, probs, .. } = match item {
            Ok(p) => p,
            Err(e) => {
                out.skipped.push(e);
                return Ok(ControlFlow::Continue(()));
            }
        };
        let probs = match cal {
            Some(c) => crate::calibration::with_temperature(&probs, c.temperature),
            None => probs,
        };
        let pred = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k).unwrap_or(0);
        // The true class from the folder the image sits in, when it is one of the run's classes.
        let truth = path.parent().and_then(|d| d.file_name()).and_then(|n| classes.iter().position(|c| *c == n.to_string_lossy()));
        out.labelled += truth.is_some() as usize;
        let truth = truth.unwrap_or(pred);
        let loss = -(probs[truth].max(1e-12)).ln();
        out.items.push(Prediction { path: path.display().to_string(), truth, pred, probs, loss });
        Ok(ControlFlow::Continue(()))
    })?;
    if out.items.is_empty() {
        bail!(
            "no image could be predicted ({} skipped{})",
            out.skipped.len(),
            out.skipped.first().map(|s| format!(": {s}")).unwrap_or_default()
        );
    }
    Ok(out)
}

/// The predictions as the events of a finished run, so the dashboard's gallery and confusion view show
/// them: its start, the test predictions, their report, and warnings.
fn as_events(args: &PredictArgs, lr: &super::eval::LoadedRun, p: Predictions) -> Vec<TrainEvent> {
    let classes = &lr.meta.classes;
    let mut cm = ConfusionMatrix::new(classes.len());
    for item in &p.items {
        cm.add(item.truth, item.pred);
    }
    let n = p.items.len();
    let info = RunInfo {
        run_dir: args.run.display().to_string(),
        data_root: args.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" "),
        synthetic: lr.meta.synthetic,
        model: lr.meta.config.model.name().to_string(),
        device: format!("{:?}", lr.device).to_lowercase(),
        classes: classes.clone(),
        train_counts: vec![0; classes.len()],
        val_counts: vec![0; classes.len()],
        test_counts: (0..classes.len()).map(|c| p.items.iter().filter(|i| i.truth == c).count()).collect(),
        batches_per_epoch: 0,
        config: lr.meta.config.clone(),
        samples: (0..classes.len()).map(|c| p.items.iter().find(|i| i.truth == c).map(|i| i.path.clone())).collect(),
        pid: std::process::id(),
        host: crate::run::dir::hostname(),
        resumed: None,
    };
    let weights = format!("{} of {}", lr.checkpoint.display(), args.run.display());
    let mut events = vec![
        TrainEvent::Started { info: Box::new(info) },
        TrainEvent::Predictions { split: crate::run::events::SplitName::Test, epoch: 0, items: p.items },
        TrainEvent::TestReport { report: cm.report(classes), weights },
    ];
    if p.labelled < n {
        events.push(TrainEvent::Warning {
            message: format!(
                "{} of {n} images are not in a class folder: their true class is unknown (shown as the prediction)",
                n - p.labelled
            ),
        });
    }
    for s in p.skipped.iter().take(20) {
        events.push(TrainEvent::Warning { message: format!("skipped {s}") });
    }
    events.push(TrainEvent::State { state: RunState::Finished });
    events
}
