//! The plain printer: a renderer of the same `RunView` the dashboard draws. A progress bar per epoch
//! on a terminal, one line per epoch and per log event. Used with `--no-tui`, when stdout is not a
//! terminal, in detached processes and after a hang-up. It never stops training: lines that cannot be
//! written (a closed pipe, a gone terminal) are dropped.

use crate::run::format::{epoch_line, finished_line};
use crate::run::{Record, RunView, TrainEvent, output};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

fn started_lines(view: &RunView) -> Option<String> {
    let info = view.info.as_ref()?;
    Some(format!(
        "run {}\n  model {} on {}, data {}{}\n  train {} / val {} / test {} images, {} batches per epoch (pid {})",
        info.run_dir,
        info.model,
        info.device,
        info.data_root,
        if info.synthetic { " [SYNTHETIC]" } else { "" },
        info.train_counts.iter().sum::<usize>(),
        info.val_counts.iter().sum::<usize>(),
        info.test_counts.iter().sum::<usize>(),
        info.batches_per_epoch,
        info.pid
    ))
}

/// A progress bar for an epoch's batches, starting where the run is.
fn epoch_bar(epoch: usize, epochs: usize, view: &RunView) -> ProgressBar {
    let b = ProgressBar::new(view.batches as u64);
    b.set_style(ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}").unwrap().progress_chars("=> "));
    b.set_prefix(format!("{epoch}/{epochs}"));
    b.set_position(view.batch as u64);
    b
}

/// Print records until the trainer's stream ends, folding them into `view`. `quiet` prints only the
/// log lines and the end (after a dashboard closed, its screen already showed the rest).
pub async fn follow(
    mut events: tokio::sync::mpsc::UnboundedReceiver<Record>,
    mut hangup: tokio::sync::watch::Receiver<bool>,
    view: &mut RunView,
    quiet: bool,
) {
    let bars = std::io::stderr().is_terminal() && !quiet;
    let mut bar: Option<ProgressBar> = None;
    loop {
        let rec = tokio::select! {
            r = events.recv() => r,
            _ = hangup.changed() => {
                if let Some(b) = bar.take() {
                    b.set_draw_target(ProgressDrawTarget::hidden());
                }
                continue;
            }
        };
        let Some(rec) = rec else { break };
        let new_log_line = view.apply(&rec);
        let hung_up = *hangup.borrow();
        match &rec.event {
            TrainEvent::Started { .. } if !quiet => {
                if let Some(s) = started_lines(view) {
                    output::out(&s);
                }
                continue;
            }
            TrainEvent::EpochStart { epoch, epochs } if bars && !hung_up => bar = Some(epoch_bar(*epoch, *epochs, view)),
            TrainEvent::BatchEnd { batch, batches, loss, img_per_s, .. } => {
                if let Some(b) = &bar {
                    b.set_length(*batches as u64);
                    b.set_position(*batch as u64);
                    b.set_message(format!("loss {loss:.4}  {img_per_s:.1} img/s"));
                }
            }
            TrainEvent::EpochEnd { metrics } if !quiet => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                output::out(&epoch_line(metrics, view.eta_seconds()));
            }
            TrainEvent::TestReport { report, weights } if !quiet => {
                let (n, text, cm) = (report.confusion.total(), report.to_text(4), report.confusion_text());
                output::out(&format!("\ntest set ({n} images, {weights}):\n{text}\n{cm}"));
            }
            TrainEvent::Finished { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds, .. } => {
                output::out(&finished_line(reason, *best_val_acc, *best_epoch, *test_acc, *elapsed_seconds));
                if let Some(i) = &view.info {
                    output::out(&format!("run folder: {}", i.run_dir));
                }
                continue;
            }
            TrainEvent::Failed { error } => {
                output::err(&format!("training failed: {error}"));
                continue;
            }
            _ => {}
        }
        if let Some(line) = new_log_line {
            let line = format!("  · {line}");
            match &bar {
                Some(b) => b.suspend(|| output::out(&line)),
                None => output::out(&line),
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
