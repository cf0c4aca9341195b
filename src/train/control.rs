//! Commands from the user (keys, `ctl`, signals) as the trainer applies them: between batches while it
//! trains, and between the phases of finishing a run. Every command is answered with an event.

use super::callbacks::EarlyStopping;
use crate::run::emitter::Emitter;
use crate::run::events::{MAX_LR, MIN_LR, RunState, StopCause, StopWhen, TrainCommand, TrainEvent, check_factor, check_lr};
use crate::run::format::fmt_lr;
use std::sync::mpsc::Receiver;

/// Mutable control state, changed by commands.
pub(super) struct Control {
    pub stop: Option<(StopWhen, StopCause)>,
    pub paused: bool,
    pub checkpoint_now: bool,
    pub lr_changed_by_user: Option<f64>,
}

fn rank(w: StopWhen) -> u8 {
    match w {
        StopWhen::AfterEpoch => 0,
        StopWhen::Now => 1,
        StopWhen::HandOver => 2,
        StopWhen::Abort => 3,
    }
}

/// Apply one command; every command is answered with an event.
pub(super) fn apply(cmd: TrainCommand, c: &mut Control, lr: f64, early: &mut EarlyStopping, out: &mut Emitter, epoch: usize) {
    let stop = |c: &mut Control, out: &mut Emitter, when: StopWhen, cause: StopCause| {
        if c.stop.as_ref().is_none_or(|(w, _)| rank(when) > rank(*w)) {
            c.stop = Some((when, cause.clone()));
        }
        if when != StopWhen::HandOver {
            c.paused = false;
        }
        out.emit(TrainEvent::StopRequested { when, epoch, cause });
        out.emit(TrainEvent::State { state: RunState::Stopping });
    };
    match cmd {
        TrainCommand::StopAfterEpoch => stop(c, out, StopWhen::AfterEpoch, StopCause::User),
        TrainCommand::StopNow => stop(c, out, StopWhen::Now, StopCause::User),
        TrainCommand::Signal(name) => stop(c, out, StopWhen::Now, name.into()),
        TrainCommand::Abort(cause) => stop(c, out, StopWhen::Abort, cause.into()),
        TrainCommand::HandOver => stop(c, out, StopWhen::HandOver, StopCause::HandOver),
        TrainCommand::SetLr(v) | TrainCommand::ScaleLr(v) if check_factor(v).is_err() => {
            out.emit(TrainEvent::CommandRejected { command: cmd.describe(), reason: "the value must be a positive number".into() })
        }
        TrainCommand::SetLr(_) | TrainCommand::ScaleLr(_) => {
            let target = match cmd {
                TrainCommand::SetLr(v) => v,
                TrainCommand::ScaleLr(f) => c.lr_changed_by_user.unwrap_or(lr) * f,
                _ => unreachable!(),
            };
            // The one learning-rate rule (`config::check_lr`), said with the bound it would pass.
            if check_lr(target).is_err() {
                let bound =
                    if target >= MAX_LR { format!("the ceiling {}", fmt_lr(MAX_LR)) } else { format!("the floor {}", fmt_lr(MIN_LR)) };
                out.emit(TrainEvent::CommandRejected {
                    command: cmd.describe(),
                    reason: format!("lr {} would pass {bound}; it stays {}", fmt_lr(target), fmt_lr(lr)),
                });
            } else {
                c.lr_changed_by_user = Some(target);
            }
        }
        TrainCommand::Pause => {
            c.paused = c.stop.is_none();
            let state = if c.paused { RunState::Paused } else { RunState::Stopping };
            out.emit(TrainEvent::State { state });
        }
        TrainCommand::Resume => {
            c.paused = false;
            let state = if c.stop.is_some() { RunState::Stopping } else { RunState::Training };
            out.emit(TrainEvent::State { state });
        }
        TrainCommand::CheckpointNow => c.checkpoint_now = true,
        TrainCommand::SetEarlyStopping(on) => {
            early.enabled = on;
            out.emit(TrainEvent::EarlyStopping { enabled: on, patience: early.patience, waited: early.wait() });
        }
    }
}

/// What commands did while the run was being finished (final save, calibration, test, report).
#[derive(Default)]
pub(super) struct Finishing {
    /// The first stop's cause (a signal's name): the run's exit code follows it.
    pub cause: Option<StopCause>,
    /// A second signal, or an abort: skip what is left (calibration, test, report).
    pub skip_rest: bool,
}

/// Commands between the phases of finishing a run. Training is over, so there is nothing left to stop
/// but the evaluation: a signal or stop is recorded as the run's cause (so `train` exits 143 after a
/// SIGTERM) and the report is still written; a second signal (an abort) skips what is left. Every
/// other command is refused, so no sender waits for an answer.
pub(super) fn poll_finishing(
    commands: &Receiver<TrainCommand>,
    out: &mut Emitter,
    epoch: usize,
    f: &mut Finishing,
    already: &Option<StopCause>,
) {
    for cmd in commands.try_iter() {
        let (when, cause) = match &cmd {
            TrainCommand::Signal(name) if f.cause.is_some() || already.as_ref().is_some_and(|c| c.is_signal()) => {
                (StopWhen::Abort, StopCause::from(name.as_str()))
            }
            TrainCommand::Signal(name) => (StopWhen::Now, StopCause::from(name.as_str())),
            TrainCommand::Abort(cause) => (StopWhen::Abort, StopCause::from(cause.as_str())),
            TrainCommand::StopNow | TrainCommand::StopAfterEpoch => (StopWhen::Now, StopCause::User),
            _ => {
                out.emit(TrainEvent::CommandRejected {
                    command: cmd.describe(),
                    reason: "training is over: the run is being evaluated".into(),
                });
                continue;
            }
        };
        if when == StopWhen::Abort {
            f.skip_rest = true;
        }
        if f.cause.is_none() && already.is_none() {
            f.cause = Some(cause.clone());
        }
        out.emit(TrainEvent::StopRequested { when, epoch, cause });
    }
}
