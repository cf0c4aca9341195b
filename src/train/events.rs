//! What the trainer says (events) and what it obeys (commands). Events are plain data: the TUI, the
//! headless printer and `events.jsonl` are all built from them.

use crate::config::TrainConfig;
use crate::metrics::{ConfusionMatrix, Report};
use serde::{Deserialize, Serialize};

/// Where a run stands.
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

/// Static facts about a run, sent once at the start.
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

/// Everything the trainer reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    Started {
        info: RunInfo,
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
        reason: String,
    },
    Checkpointed {
        epoch: usize,
        path: String,
        val_acc: Option<f64>,
        reason: String,
    },
    /// Early stopping was switched on or off.
    EarlyStopping {
        enabled: bool,
    },
    /// A control or callback message for the log pane.
    Log {
        message: String,
    },
    Predictions {
        split: String,
        epoch: usize,
        items: Vec<Prediction>,
    },
    TestReport {
        report: Report,
    },
    Finished {
        reason: String,
        best_val_acc: f64,
        best_epoch: usize,
        test_acc: Option<f64>,
        elapsed_seconds: f64,
    },
    Failed {
        error: String,
    },
}

/// What the user (TUI keys, signals) can ask of a running trainer.
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
}
