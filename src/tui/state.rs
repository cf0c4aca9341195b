//! What the dashboard knows about a run, built only from `TrainEvent`s (live or replayed from
//! `events.jsonl`). No tensors, no I/O.

use crate::metrics::Report;
use crate::train::events::EpochMetrics;
use crate::train::{Prediction, RunInfo, RunState, TrainEvent};
use std::collections::VecDeque;

const LOG_LINES: usize = 500;

/// How the run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reason: String,
    pub best_val_acc: f64,
    pub best_epoch: usize,
    pub test_acc: Option<f64>,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Clone)]
pub struct RunView {
    pub info: Option<RunInfo>,
    pub state: RunState,
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    pub img_per_s: f64,
    /// Loss of each batch of the current epoch.
    pub batch_losses: Vec<f64>,
    pub history: Vec<EpochMetrics>,
    pub lr: f64,
    /// (epoch, lr) at the start and at every change.
    pub lr_history: Vec<(usize, f64)>,
    pub best: Option<(f64, usize)>,
    pub log: VecDeque<String>,
    pub val_predictions: Vec<Prediction>,
    pub test_predictions: Vec<Prediction>,
    pub test_report: Option<Report>,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub early_stopping: bool,
    /// Seconds of training so far, as last reported.
    pub elapsed_seconds: f64,
}

impl Default for RunView {
    fn default() -> Self {
        RunView {
            info: None,
            state: RunState::Loading,
            epoch: 0,
            epochs: 0,
            batch: 0,
            batches: 0,
            img_per_s: 0.0,
            batch_losses: vec![],
            history: vec![],
            lr: 0.0,
            lr_history: vec![],
            best: None,
            log: VecDeque::new(),
            val_predictions: vec![],
            test_predictions: vec![],
            test_report: None,
            outcome: None,
            error: None,
            early_stopping: true,
            elapsed_seconds: 0.0,
        }
    }
}

impl RunView {
    pub fn push_log(&mut self, line: impl Into<String>) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line.into());
    }

    pub fn classes(&self) -> &[String] {
        self.info.as_ref().map(|i| i.classes.as_slice()).unwrap_or(&[])
    }

    pub fn synthetic(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.synthetic)
    }

    /// Remaining time: finished epochs' mean duration × epochs left, minus progress into this one.
    pub fn eta_seconds(&self) -> Option<f64> {
        if self.state.is_over() || self.history.is_empty() && self.img_per_s <= 0.0 {
            return None;
        }
        let per_epoch = if self.history.is_empty() {
            let imgs: usize = self.info.as_ref()?.train_counts.iter().sum();
            imgs as f64 / self.img_per_s.max(1e-9)
        } else {
            self.history.iter().map(|m| m.epoch_seconds).sum::<f64>() / self.history.len() as f64
        };
        let done_in_epoch = if self.batches > 0 { self.batch as f64 / self.batches as f64 } else { 0.0 };
        let epochs_left = self.epochs.saturating_sub(self.epoch) as f64 + (1.0 - done_in_epoch);
        Some(per_epoch * epochs_left)
    }

    /// Fold one event into the view.
    pub fn apply(&mut self, ev: &TrainEvent) {
        match ev {
            TrainEvent::Started { info } => {
                self.epochs = info.config.epochs;
                self.lr = info.config.lr;
                self.lr_history = vec![(0, info.config.lr)];
                self.early_stopping = info.config.early_stopping;
                self.batches = info.batches_per_epoch;
                self.push_log(format!("run {} started: {} on {}", info.run_dir, info.model, info.device));
                self.info = Some(info.clone());
            }
            TrainEvent::State { state } => self.state = *state,
            TrainEvent::EpochStart { epoch, epochs } => {
                self.epoch = *epoch;
                self.epochs = *epochs;
                self.batch = 0;
                self.batch_losses.clear();
            }
            TrainEvent::BatchEnd { epoch, batch, batches, loss, img_per_s, lr, .. } => {
                self.epoch = *epoch;
                self.batch = *batch;
                self.batches = *batches;
                self.img_per_s = *img_per_s;
                self.lr = *lr;
                self.batch_losses.push(*loss);
            }
            TrainEvent::EpochEnd { metrics } => {
                self.elapsed_seconds = metrics.elapsed_seconds;
                self.img_per_s = metrics.img_per_s;
                if self.best.is_none_or(|(b, _)| metrics.val_acc > b) {
                    self.best = Some((metrics.val_acc, metrics.epoch));
                }
                self.history.push(metrics.clone());
            }
            TrainEvent::LrChanged { epoch, to, .. } => {
                self.lr = *to;
                self.lr_history.push((*epoch, *to));
            }
            TrainEvent::Checkpointed { .. } => {}
            TrainEvent::EarlyStopping { enabled } => self.early_stopping = *enabled,
            TrainEvent::Log { message } => self.push_log(message.clone()),
            TrainEvent::Predictions { split, items, .. } => match split.as_str() {
                "test" => self.test_predictions = items.clone(),
                _ => self.val_predictions = items.clone(),
            },
            TrainEvent::TestReport { report } => self.test_report = Some(report.clone()),
            TrainEvent::Finished { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds } => {
                self.elapsed_seconds = *elapsed_seconds;
                self.push_log(format!("finished: {reason}"));
                self.outcome = Some(Outcome {
                    reason: reason.clone(),
                    best_val_acc: *best_val_acc,
                    best_epoch: *best_epoch,
                    test_acc: *test_acc,
                    elapsed_seconds: *elapsed_seconds,
                });
            }
            TrainEvent::Failed { error } => {
                self.push_log(format!("FAILED: {error}"));
                self.error = Some(error.clone());
            }
        }
    }
}
