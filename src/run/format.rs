//! The words and numbers every renderer shares: durations, learning rates, the per-epoch line, the
//! "finished" line, and the log line each event stands for (the log pane is derived, not sent).

use super::events::{EpochMetrics, RunState, StopWhen, TrainEvent};

/// Text safe to print on a terminal: control characters (an escape sequence hidden in a file or
/// folder name, a carriage return…) become `?`. Newlines and tabs stay.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        s.chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { '?' } else { c }).collect::<String>().into()
    } else {
        s.into()
    }
}

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

/// `1e-3`, `3e-4`, `2.5e-4`: short and exact enough for a log line.
pub fn fmt_lr(lr: f64) -> String {
    let s = format!("{lr:.2e}");
    match s.split_once('e') {
        Some((m, e)) => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
        None => s,
    }
}

/// The plain printer's line for a finished epoch.
pub fn epoch_line(m: &EpochMetrics, eta_seconds: Option<f64>) -> String {
    format!(
        "epoch {:>2}/{}  loss {:.4}  acc {:.4}  val_loss {:.4}  val_acc {:.4}  lr {:.2e}  {:.1} img/s{}",
        m.epoch,
        m.epochs,
        m.train_loss,
        m.train_acc,
        m.val_loss,
        m.val_acc,
        m.lr,
        m.img_per_s,
        eta_seconds.map(|s| format!("  ETA {}", fmt_duration(s))).unwrap_or_default()
    )
}

/// `finished: <reason>; best val_acc 0.9629 (epoch 10), test acc 0.9860; 19m47s`.
pub fn finished_line(reason: &str, best_val_acc: f64, best_epoch: usize, test_acc: Option<f64>, elapsed_seconds: f64) -> String {
    format!(
        "finished: {reason}; best val_acc {best_val_acc:.4} (epoch {best_epoch}){}; {}",
        test_acc.map(|a| format!(", test acc {a:.4}")).unwrap_or_default(),
        fmt_duration(elapsed_seconds)
    )
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The log-pane (and `ctl`) line for an event, if it deserves one. `prev` is the state before it.
pub fn log_line(ev: &TrainEvent, prev: RunState) -> Option<String> {
    Some(match ev {
        TrainEvent::Started { info } => match info.resumed {
            Some(r) if r.batch > 0 => {
                format!("resumed {} at epoch {}, batch {} ({} on {})", file_name(&info.run_dir), r.epoch, r.batch, info.model, info.device)
            }
            Some(r) => format!("resumed {} after epoch {} ({} on {})", file_name(&info.run_dir), r.epoch, info.model, info.device),
            None => format!("run {} started: {} on {}", file_name(&info.run_dir), info.model, info.device),
        },
        TrainEvent::State { state: RunState::Paused } => "paused".into(),
        TrainEvent::State { state: RunState::Training } if prev == RunState::Paused => "resumed".into(),
        TrainEvent::LrChanged { from, to, reason, .. } if *reason == super::events::LrReason::Plateau => {
            format!("ReduceLROnPlateau: lr {} → {}", fmt_lr(*from), fmt_lr(*to))
        }
        TrainEvent::LrChanged { from, to, reason, .. } => format!("lr {} → {} ({reason})", fmt_lr(*from), fmt_lr(*to)),
        TrainEvent::Checkpointed { path, val_acc: Some(a), reason, .. } => {
            format!("checkpoint saved ({reason}, val_acc {a:.4}): {}", file_name(path))
        }
        TrainEvent::Checkpointed { path, reason, .. } => format!("checkpoint saved ({reason}): {}", file_name(path)),
        TrainEvent::EarlyStopping { enabled, patience, waited } => {
            format!("early stopping {} (patience {patience}, waited {waited})", if *enabled { "on" } else { "off" })
        }
        TrainEvent::StopRequested { when, epoch, cause } => {
            let by = if *cause == super::events::StopCause::User { String::new() } else { format!("{cause}: ") };
            match when {
                StopWhen::AfterEpoch => format!("{by}early stop requested: stopping after epoch {epoch}"),
                StopWhen::Now => format!("{by}stop now requested: saving current weights"),
                StopWhen::Abort => format!("{by}stopping at once: saving weights, skipping the report"),
                StopWhen::HandOver => "handing the run over to a background process".into(),
            }
        }
        TrainEvent::CommandRejected { command, reason } => format!("'{command}' rejected: {reason}"),
        TrainEvent::Warning { message } => format!("WARNING: {message}"),
        TrainEvent::ThreadsChanged { from, to, busy_elsewhere } if to < from => {
            format!("threads {from} → {to}: other processes keep {busy_elsewhere:.1} cores busy")
        }
        TrainEvent::ThreadsChanged { from, to, busy_elsewhere } => {
            format!("threads {from} → {to}: the cores are free again ({busy_elsewhere:.1} busy elsewhere)")
        }
        TrainEvent::Calibrated { temperature, images, ece_before, ece_after } => format!(
            "calibrated on {images} validation images: temperature {temperature:.3}, ECE {:.2}% → {:.2}%",
            100.0 * ece_before,
            100.0 * ece_after
        ),
        TrainEvent::ReportWritten { path, figures } => format!("report written ({} figures): {path}", figures.len()),
        TrainEvent::Finished { reason, .. } => format!("finished: {reason}"),
        TrainEvent::Failed { error } => format!("FAILED: {error}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_never_reach_the_terminal() {
        assert_eq!(printable("scan\u{1b}[2J\u{1b}]0;owned\u{7}.jpg"), "scan?[2J?]0;owned?.jpg");
        assert_eq!(printable("two\nlines\tok"), "two\nlines\tok");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(42.4), "42s");
        assert_eq!(fmt_duration(185.0), "3m05s");
        assert_eq!(fmt_duration(3720.0), "1h02m");
    }

    #[test]
    fn learning_rates() {
        assert_eq!(fmt_lr(1e-3), "1e-3");
        assert_eq!(fmt_lr(2.5e-4), "2.5e-4");
        assert_eq!(fmt_lr(0.0003), "3e-4");
    }

    #[test]
    fn log_lines_come_from_typed_events() {
        let lr = TrainEvent::LrChanged { epoch: 1, from: 1e-3, to: 5e-4, reason: crate::run::events::LrReason::User };
        assert_eq!(log_line(&lr, RunState::Training).unwrap(), "lr 1e-3 → 5e-4 (user)");
        let resumed = TrainEvent::State { state: RunState::Training };
        assert_eq!(log_line(&resumed, RunState::Paused).unwrap(), "resumed");
        assert_eq!(log_line(&resumed, RunState::Loading), None);
        let stop = TrainEvent::StopRequested { when: StopWhen::Now, epoch: 3, cause: "SIGTERM".into() };
        assert_eq!(log_line(&stop, RunState::Training).unwrap(), "SIGTERM: stop now requested: saving current weights");
        let fewer = TrainEvent::ThreadsChanged { from: 2, to: 1, busy_elsewhere: 0.96 };
        assert_eq!(log_line(&fewer, RunState::Training).unwrap(), "threads 2 → 1: other processes keep 1.0 cores busy");
        let more = TrainEvent::ThreadsChanged { from: 1, to: 2, busy_elsewhere: 0.02 };
        assert_eq!(log_line(&more, RunState::Training).unwrap(), "threads 1 → 2: the cores are free again (0.0 busy elsewhere)");
    }
}
