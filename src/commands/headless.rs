//! Plain-terminal training output: a progress bar per epoch and one readable line per epoch.
//! Used with `--no-tui`, when stdout is not a terminal, and after "keep training headless".

use crate::train::{TrainCommand, TrainEvent};
use indicatif::{ProgressBar, ProgressStyle};

/// Formats seconds as `1h02m`, `3m05s` or `42s`.
pub fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Prints events until the trainer finishes; Ctrl-C asks it to stop now (saving), twice aborts.
pub async fn follow(
    mut events: tokio::sync::mpsc::UnboundedReceiver<TrainEvent>,
    commands: std::sync::mpsc::Sender<TrainCommand>,
) -> anyhow::Result<()> {
    let mut bar: Option<ProgressBar> = None;
    let mut epoch_secs: Vec<f64> = vec![];
    let mut failed = None;
    let mut interrupts = 0;
    loop {
        let ev = tokio::select! {
            ev = events.recv() => ev,
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts > 1 {
                    anyhow::bail!("interrupted twice: aborted without waiting for the trainer");
                }
                eprintln!("\ninterrupt: stopping now and saving current weights (Ctrl-C again to abort)");
                let _ = commands.send(TrainCommand::StopNow);
                continue;
            }
        };
        let Some(ev) = ev else { break };
        match ev {
            TrainEvent::Started { info } => {
                println!(
                    "run {}\n  model {} on {}, data {}{}\n  train {} / val {} / test {} images, {} batches per epoch",
                    info.run_dir,
                    info.model,
                    info.device,
                    info.data_root,
                    if info.synthetic { " [SYNTHETIC]" } else { "" },
                    info.train_counts.iter().sum::<usize>(),
                    info.val_counts.iter().sum::<usize>(),
                    info.test_counts.iter().sum::<usize>(),
                    info.batches_per_epoch
                );
            }
            TrainEvent::EpochStart { epoch, epochs: n } => {
                let b = ProgressBar::new(0);
                b.set_style(ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}").unwrap().progress_chars("=> "));
                b.set_prefix(format!("{epoch}/{n}"));
                bar = Some(b);
            }
            TrainEvent::BatchEnd { batch, batches, loss, img_per_s, .. } => {
                if let Some(b) = &bar {
                    b.set_length(batches as u64);
                    b.set_position(batch as u64);
                    b.set_message(format!("loss {loss:.4}  {img_per_s:.1} img/s"));
                }
            }
            TrainEvent::EpochEnd { metrics: m } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                epoch_secs.push(m.epoch_seconds);
                let mean = epoch_secs.iter().sum::<f64>() / epoch_secs.len() as f64;
                println!(
                    "epoch {:>2}/{}  loss {:.4}  acc {:.4}  val_loss {:.4}  val_acc {:.4}  lr {:.2e}  {:.1} img/s  ETA {}",
                    m.epoch,
                    m.epochs,
                    m.train_loss,
                    m.train_acc,
                    m.val_loss,
                    m.val_acc,
                    m.lr,
                    m.img_per_s,
                    fmt_duration(mean * (m.epochs.saturating_sub(m.epoch)) as f64)
                );
            }
            TrainEvent::Log { message } => {
                let line = format!("  · {message}");
                match &bar {
                    Some(b) => b.println(line),
                    None => println!("{line}"),
                }
            }
            TrainEvent::TestReport { report } => {
                println!(
                    "\ntest set ({} images, best checkpoint):\n{}\n{}",
                    report.confusion.total(),
                    report.to_text(4),
                    report.confusion_text()
                );
            }
            TrainEvent::Finished { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds } => {
                println!(
                    "finished: {reason}; best val_acc {best_val_acc:.4} (epoch {best_epoch}){}; {}",
                    test_acc.map(|a| format!(", test acc {a:.4}")).unwrap_or_default(),
                    fmt_duration(elapsed_seconds)
                );
            }
            TrainEvent::Failed { error } => failed = Some(error),
            _ => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match failed {
        Some(e) => anyhow::bail!("training failed: {e}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_duration;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(42.4), "42s");
        assert_eq!(fmt_duration(185.0), "3m05s");
        assert_eq!(fmt_duration(3720.0), "1h02m");
    }
}
