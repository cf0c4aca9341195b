//! What the trainer says (events) and what it obeys (commands). Events are plain data: the dashboard,
//! the plain printer, attached clients and `events.jsonl` are all built from them, and each carries its
//! own time and sequence number (`Record`), so a replay renders exactly what the live run rendered.

use crate::config::TrainConfig;
use crate::metrics::{ConfusionMatrix, Report};
use serde::{Deserialize, Serialize};

/// Where a run stands, as the trainer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Loading,
    Training,
    Paused,
    Stopping,
    Evaluating,
    Finished,
    Failed,
}

impl RunState {
    pub fn label(self) -> &'static str {
        match self {
            RunState::Loading => "loading",
            RunState::Training => "training",
            RunState::Paused => "paused",
            RunState::Stopping => "stopping",
            RunState::Evaluating => "evaluating",
            RunState::Finished => "finished",
            RunState::Failed => "failed",
        }
    }

    pub fn is_over(self) -> bool {
        matches!(self, RunState::Finished | RunState::Failed)
    }
}

/// Where a resumed run picked up: after `batch` batches of `epoch` (batch 0: at the epoch's start).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResumePoint {
    pub epoch: usize,
    pub batch: usize,
    /// Training seconds spent before this session.
    pub elapsed_seconds: f64,
}

/// Static facts about a run, sent at the start of every training session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_dir: String,
    pub data_root: String,
    pub synthetic: bool,
    pub model: String,
    pub device: String,
    pub classes: Vec<String>,
    /// Images per class in each split.
    pub train_counts: Vec<usize>,
    pub val_counts: Vec<usize>,
    pub test_counts: Vec<usize>,
    pub batches_per_epoch: usize,
    pub config: TrainConfig,
    /// One training image path per class, for the Data view.
    #[serde(default)]
    pub samples: Vec<Option<String>>,
    /// Process id and host of the training process.
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub host: String,
    /// Set when this session continues an earlier one.
    #[serde(default)]
    pub resumed: Option<ResumePoint>,
}

/// One classified image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub path: String,
    pub truth: usize,
    pub pred: usize,
    pub probs: Vec<f32>,
    /// Cross-entropy of this image.
    pub loss: f32,
}

impl Prediction {
    pub fn confidence(&self) -> f32 {
        self.probs.get(self.pred).copied().unwrap_or(0.0)
    }

    pub fn correct(&self) -> bool {
        self.truth == self.pred
    }
}

/// Metrics at the end of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub lr: f64,
    pub img_per_s: f64,
    pub epoch_seconds: f64,
    pub elapsed_seconds: f64,
    pub confusion: ConfusionMatrix,
}

/// How a stop request ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopWhen {
    /// Finish the epoch (validation, callbacks), then save and report.
    AfterEpoch,
    /// After the current batch: save `last` and the resume state, then report.
    Now,
    /// After the current batch: save `last` and the resume state, skip the report.
    Abort,
    /// After the current batch: save the resume state; a detached process continues the run.
    HandOver,
}

/// Everything the trainer reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    Started {
        info: Box<RunInfo>,
    },
    State {
        state: RunState,
    },
    EpochStart {
        epoch: usize,
        epochs: usize,
    },
    BatchEnd {
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f64,
        acc: f64,
        img_per_s: f64,
        lr: f64,
    },
    EpochEnd {
        metrics: EpochMetrics,
    },
    LrChanged {
        epoch: usize,
        from: f64,
        to: f64,
        reason: LrReason,
    },
    Checkpointed {
        epoch: usize,
        path: String,
        val_acc: Option<f64>,
        reason: CheckpointReason,
    },
    /// Early stopping was switched on or off.
    EarlyStopping {
        enabled: bool,
        #[serde(default)]
        patience: usize,
        #[serde(default)]
        waited: usize,
    },
    /// A stop was asked for, by `cause` (`user`, `SIGTERM`, `SIGINT`, `SIGHUP`, `hand-over`).
    StopRequested {
        when: StopWhen,
        epoch: usize,
        cause: StopCause,
    },
    /// A command that could not be carried out.
    CommandRejected {
        command: String,
        reason: String,
    },
    /// The compute threads changed with the machine's load: other processes keep `busy_elsewhere`
    /// cores busy.
    ThreadsChanged {
        from: usize,
        to: usize,
        busy_elsewhere: f64,
    },
    /// Something went wrong that does not end the run.
    Warning {
        message: String,
    },
    Predictions {
        split: SplitName,
        epoch: usize,
        items: Vec<Prediction>,
    },
    TestReport {
        report: Report,
        /// Which weights were scored: the best checkpoint, or the current weights when no epoch ended.
        #[serde(default)]
        weights: String,
    },
    /// Temperature scaling was fitted on the validation split (`RUN/calibration.json`): predicted
    /// probabilities are shown as softmax(log p / temperature) from here on.
    Calibrated {
        temperature: f64,
        images: usize,
        ece_before: f64,
        ece_after: f64,
    },
    /// `RUN/report/` was written: `path` is its `report.md`, `figures` the files drawn.
    ReportWritten {
        path: String,
        #[serde(default)]
        figures: Vec<String>,
    },
    Finished {
        reason: String,
        best_val_acc: f64,
        best_epoch: usize,
        test_acc: Option<f64>,
        elapsed_seconds: f64,
        /// Who stopped the run early: `user`, a signal name, or `hand-over`. None: it ran its course.
        #[serde(default)]
        stopped_by: Option<StopCause>,
    },
    Failed {
        error: String,
    },
}

impl TrainEvent {
    /// Ends a training session (the process that emitted it stops).
    pub fn is_final(&self) -> bool {
        matches!(self, TrainEvent::Finished { .. } | TrainEvent::Failed { .. })
    }
}

/// Why the learning rate changed (the words the log and `events.jsonl` use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrReason {
    /// `ctl lr`, `l`, `+` or `-`.
    User,
    /// ReduceLROnPlateau cut it.
    Plateau,
}

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointReason {
    /// A new best validation accuracy (`best.safetensors`).
    #[serde(rename = "best val_acc")]
    BestValAcc,
    /// The final weights (`last.safetensors`).
    #[serde(rename = "last")]
    Last,
    /// Asked for (`c`, `ctl checkpoint`).
    #[serde(rename = "user")]
    User,
}

/// Which split a set of predictions is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    Val,
    Test,
}

/// The word each protocol enum is written as, in the log and on screen.
macro_rules! words {
    ($($t:ty { $($v:ident => $w:literal),* })*) => {$(
        impl $t {
            pub fn word(self) -> &'static str {
                match self { $(Self::$v => $w),* }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.word())
            }
        }
    )*};
}

words! {
    LrReason { User => "user", Plateau => "plateau" }
    CheckpointReason { BestValAcc => "best val_acc", Last => "last", User => "user" }
    SplitName { Val => "val", Test => "test" }
}

/// Who or what stopped a run, written as the word the log has always used: `user`, `hand-over`, a
/// signal's name (`SIGHUP`, `SIGINT`, `SIGTERM`), `Ctrl-C`, or another cause as it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum StopCause {
    User,
    HandOver,
    Sighup,
    Sigint,
    Sigterm,
    CtrlC,
    Other(String),
}

impl StopCause {
    pub fn as_str(&self) -> &str {
        match self {
            StopCause::User => "user",
            StopCause::HandOver => "hand-over",
            StopCause::Sighup => "SIGHUP",
            StopCause::Sigint => "SIGINT",
            StopCause::Sigterm => "SIGTERM",
            StopCause::CtrlC => "Ctrl-C",
            StopCause::Other(s) => s,
        }
    }

    /// 128 + the signal's number: the exit code of a `train` this signal stopped (None: not a signal).
    pub fn exit_code(&self) -> Option<u8> {
        match self {
            StopCause::Sighup => Some(129),
            StopCause::Sigint => Some(130),
            StopCause::Sigterm => Some(143),
            _ => None,
        }
    }

    pub fn is_signal(&self) -> bool {
        self.exit_code().is_some()
    }
}

impl From<&str> for StopCause {
    fn from(s: &str) -> Self {
        match s {
            "user" => StopCause::User,
            "hand-over" => StopCause::HandOver,
            "SIGHUP" => StopCause::Sighup,
            "SIGINT" => StopCause::Sigint,
            "SIGTERM" => StopCause::Sigterm,
            "Ctrl-C" => StopCause::CtrlC,
            other => StopCause::Other(other.to_string()),
        }
    }
}

impl From<String> for StopCause {
    fn from(s: String) -> Self {
        StopCause::from(s.as_str())
    }
}

impl From<StopCause> for String {
    fn from(c: StopCause) -> Self {
        c.as_str().to_string()
    }
}

impl std::fmt::Display for StopCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for StopCause {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for StopCause {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An event as logged and streamed: its sequence number in the run and its unix time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub time: f64,
    #[serde(flatten)]
    pub event: TrainEvent,
}

pub use crate::config::{MAX_LR, MIN_LR, check_factor, check_lr};

/// What the user (keys, `ctl`, signals) can ask of a running trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", content = "value", rename_all = "snake_case")]
pub enum TrainCommand {
    /// Finish the current epoch (with validation and callbacks), then stop.
    StopAfterEpoch,
    /// Stop at the next batch, saving the current weights.
    StopNow,
    SetLr(f64),
    /// Multiply the learning rate.
    ScaleLr(f64),
    Pause,
    Resume,
    CheckpointNow,
    SetEarlyStopping(bool),
    /// A signal (its name): stop at the next batch, save, report.
    Signal(String),
    /// A second interrupt (its cause): stop at the next batch, save the weights, skip the report.
    Abort(String),
    /// Save the exact state at the next batch and stop, so a detached process can continue the run.
    HandOver,
}

impl TrainCommand {
    /// Whether `ev` is the trainer's answer to this command (every command gets one).
    pub fn acknowledged_by(&self, ev: &TrainEvent) -> bool {
        match (self, ev) {
            // A refusal answers the command it names (the same words), not every command in flight.
            (_, TrainEvent::CommandRejected { command, .. }) => *command == self.describe(),
            (
                TrainCommand::StopAfterEpoch
                | TrainCommand::StopNow
                | TrainCommand::Signal(_)
                | TrainCommand::Abort(_)
                | TrainCommand::HandOver,
                TrainEvent::StopRequested { .. },
            ) => true,
            (TrainCommand::SetLr(_) | TrainCommand::ScaleLr(_), TrainEvent::LrChanged { reason, .. }) => *reason == LrReason::User,
            (TrainCommand::Pause, TrainEvent::State { state }) => *state == RunState::Paused,
            (TrainCommand::Resume, TrainEvent::State { state }) => *state == RunState::Training,
            (TrainCommand::CheckpointNow, TrainEvent::Checkpointed { reason, .. }) => *reason == CheckpointReason::User,
            (TrainCommand::SetEarlyStopping(_), TrainEvent::EarlyStopping { .. }) => true,
            _ => false,
        }
    }

    /// The words `ctl` and the log use for it.
    pub fn describe(&self) -> String {
        match self {
            TrainCommand::StopAfterEpoch => "stop".into(),
            TrainCommand::StopNow => "stop-now".into(),
            TrainCommand::SetLr(v) => format!("lr {v}"),
            TrainCommand::ScaleLr(f) => format!("lr-scale {f}"),
            TrainCommand::Pause => "pause".into(),
            TrainCommand::Resume => "resume".into(),
            TrainCommand::CheckpointNow => "checkpoint".into(),
            TrainCommand::SetEarlyStopping(on) => format!("early-stopping {}", if *on { "on" } else { "off" }),
            TrainCommand::Signal(s) => format!("signal {s}"),
            TrainCommand::Abort(s) => format!("abort ({s})"),
            TrainCommand::HandOver => "hand-over".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_flatten_time_and_seq_and_round_trip_floats_exactly() {
        let r = Record {
            seq: 7,
            time: 1_795_000_000.125,
            event: TrainEvent::LrChanged { epoch: 2, from: 0.1 + 0.2, to: 3e-4, reason: LrReason::User },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.starts_with("{\"seq\":7,\"time\":1795000000.125,\"event\":\"lr_changed\""), "{line}");
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
    }

    /// Stop causes are written as the words the log always had, and read back from them; the exit
    /// code is the signal's.
    #[test]
    fn stop_causes_keep_their_words_and_exit_codes() {
        for (c, w, code) in [
            (StopCause::User, "user", None),
            (StopCause::HandOver, "hand-over", None),
            (StopCause::Sighup, "SIGHUP", Some(129)),
            (StopCause::Sigint, "SIGINT", Some(130)),
            (StopCause::Sigterm, "SIGTERM", Some(143)),
            (StopCause::CtrlC, "Ctrl-C", None),
            (StopCause::Other("watchdog".into()), "watchdog", None),
        ] {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{w}\""));
            assert_eq!(serde_json::from_str::<StopCause>(&format!("\"{w}\"")).unwrap(), c);
            assert_eq!((c.as_str(), c.exit_code()), (w, code));
        }
        assert_eq!(serde_json::to_string(&CheckpointReason::BestValAcc).unwrap(), "\"best val_acc\"");
        assert_eq!(serde_json::from_str::<SplitName>("\"test\"").unwrap(), SplitName::Test);
    }

    #[test]
    fn every_command_has_an_acknowledgement() {
        let stop = TrainEvent::StopRequested { when: StopWhen::Now, epoch: 1, cause: "user".into() };
        assert!(TrainCommand::StopNow.acknowledged_by(&stop));
        assert!(TrainCommand::Signal("SIGTERM".into()).acknowledged_by(&stop));
        let lr = TrainEvent::LrChanged { epoch: 1, from: 1e-3, to: 5e-4, reason: LrReason::User };
        assert!(TrainCommand::ScaleLr(0.5).acknowledged_by(&lr));
        let plateau = TrainEvent::LrChanged { epoch: 1, from: 1e-3, to: 3e-4, reason: LrReason::Plateau };
        assert!(!TrainCommand::ScaleLr(0.5).acknowledged_by(&plateau));
        assert!(TrainCommand::Pause.acknowledged_by(&TrainEvent::State { state: RunState::Paused }));
        assert!(!TrainCommand::Pause.acknowledged_by(&TrainEvent::State { state: RunState::Training }));
        let rejected = TrainEvent::CommandRejected { command: "lr -1".into(), reason: "not positive".into() };
        assert!(TrainCommand::SetLr(-1.0).acknowledged_by(&rejected));
        // Answers are matched to the command that caused them: another command's refusal, or a
        // warning that happens to come while a checkpoint is asked for, answers nothing.
        assert!(!TrainCommand::SetLr(0.5).acknowledged_by(&rejected));
        assert!(!TrainCommand::CheckpointNow.acknowledged_by(&rejected));
        let warning = TrainEvent::Warning { message: "cannot write TensorBoard files".into() };
        assert!(!TrainCommand::CheckpointNow.acknowledged_by(&warning));
        let failed = TrainEvent::CommandRejected { command: "checkpoint".into(), reason: "cannot save".into() };
        assert!(TrainCommand::CheckpointNow.acknowledged_by(&failed));
    }
}
