//! What any client knows about a run, built only from `Record`s (live, streamed or replayed from
//! `events.jsonl`). No tensors, no I/O, no clock: times come from the events.

use super::events::{EpochMetrics, Prediction, Record, RunInfo, RunState, SplitName, TrainEvent};
use super::format::log_line;
use crate::metrics::Report;
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
    pub stopped_by: Option<super::events::StopCause>,
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
    /// Which weights the test report scored.
    pub test_weights: Option<String>,
    /// `RUN/report/report.md`, once written.
    pub report: Option<String>,
    /// The fitted temperature (probabilities shown are calibrated with it), once fitted.
    pub temperature: Option<f64>,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub early_stopping: bool,
    /// Unix time of the first event, of the current session's start, and of the latest event.
    pub created_time: f64,
    pub session_time: f64,
    pub last_time: f64,
    /// Training seconds of earlier sessions (a resumed run).
    pub elapsed_before: f64,
    /// Seq of the latest record folded in (attached clients skip what they have seen).
    pub last_seq: Option<u64>,
    /// The process died without a final event (set by clients that checked liveness).
    pub crashed: bool,
    /// (threads now, threads at start) while the run has given threads up to other processes.
    pub threads_given_up: Option<(usize, usize)>,
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
            test_weights: None,
            report: None,
            temperature: None,
            outcome: None,
            error: None,
            early_stopping: true,
            created_time: 0.0,
            session_time: 0.0,
            last_time: 0.0,
            elapsed_before: 0.0,
            last_seq: None,
            crashed: false,
            threads_given_up: None,
        }
    }
}

impl RunView {
    /// Fold a whole log.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> RunView {
        let mut v = RunView::default();
        for r in records {
            v.apply(r);
        }
        v
    }

    pub fn push_log(&mut self, line: impl Into<String>) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        let line = line.into();
        self.log.push_back(super::format::printable(&line).into_owned());
    }

    pub fn classes(&self) -> &[String] {
        self.info.as_ref().map(|i| i.classes.as_slice()).unwrap_or(&[])
    }

    pub fn synthetic(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.synthetic)
    }

    /// The session has ended (final event), or its process is known to be gone.
    pub fn is_over(&self) -> bool {
        self.state.is_over() || self.crashed
    }

    /// The word `runs` and the header use: running, paused, finished, stopped, failed, crashed (or
    /// loading, stopping, evaluating while those last).
    pub fn status(&self) -> &'static str {
        if self.state.is_over() {
            return match (&self.outcome, self.state) {
                (_, RunState::Failed) => "failed",
                (Some(o), _) if o.stopped_by.is_some() => "stopped",
                _ => "finished",
            };
        }
        if self.crashed {
            return "crashed";
        }
        match self.state {
            RunState::Training => "running",
            s => s.label(),
        }
    }

    /// Training seconds: earlier sessions plus this one up to `now` (or the latest event).
    pub fn elapsed(&self, now: Option<f64>) -> f64 {
        if self.info.is_none() {
            return 0.0;
        }
        if let Some(o) = &self.outcome
            && self.state.is_over()
        {
            return o.elapsed_seconds;
        }
        let until = match now {
            Some(t) if !self.is_over() => t.max(self.last_time),
            _ => self.last_time,
        };
        self.elapsed_before + (until - self.session_time).max(0.0)
    }

    /// Remaining time: finished epochs' mean duration × epochs left, minus progress into this one.
    pub fn eta_seconds(&self) -> Option<f64> {
        if self.is_over() || self.history.is_empty() && self.img_per_s <= 0.0 {
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

    /// Fold one record into the view; returns the log line it added, if any.
    pub fn apply(&mut self, rec: &Record) -> Option<String> {
        if self.created_time == 0.0 {
            self.created_time = rec.time;
        }
        self.last_time = rec.time;
        self.last_seq = Some(rec.seq);
        let prev = self.state;
        let ev = &rec.event;
        self.fold(rec.time, ev);
        let line = log_line(ev, prev)?;
        self.push_log(line.clone());
        Some(line)
    }

    /// What one event changes in the view.
    fn fold(&mut self, time: f64, ev: &TrainEvent) {
        match ev {
            TrainEvent::Started { info } => self.started(time, info),
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
            TrainEvent::EpochEnd { metrics } => self.epoch_ended(metrics),
            TrainEvent::LrChanged { epoch, to, .. } => {
                self.lr = *to;
                self.lr_history.push((*epoch, *to));
            }
            TrainEvent::EarlyStopping { enabled, .. } => self.early_stopping = *enabled,
            TrainEvent::Predictions { split, items, .. } => match split {
                SplitName::Test => self.test_predictions = items.clone(),
                SplitName::Val => self.val_predictions = items.clone(),
            },
            TrainEvent::TestReport { report, weights } => {
                self.test_report = Some(report.clone());
                self.test_weights = (!weights.is_empty()).then(|| weights.clone());
            }
            TrainEvent::ReportWritten { path, .. } => self.report = Some(path.clone()),
            TrainEvent::Calibrated { temperature, .. } => self.temperature = Some(*temperature),
            TrainEvent::Finished { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds, stopped_by } => {
                let (reason, stopped_by) = (reason.clone(), stopped_by.clone());
                let (best_val_acc, best_epoch, test_acc, elapsed_seconds) = (*best_val_acc, *best_epoch, *test_acc, *elapsed_seconds);
                self.outcome = Some(Outcome { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds, stopped_by });
                self.state = RunState::Finished;
            }
            TrainEvent::Failed { error } => {
                self.error = Some(error.clone());
                self.state = RunState::Failed;
            }
            TrainEvent::Checkpointed { .. }
            | TrainEvent::StopRequested { .. }
            | TrainEvent::CommandRejected { .. }
            | TrainEvent::Warning { .. } => {}
            TrainEvent::ThreadsChanged { from, to, .. } => {
                let full = self.threads_given_up.map_or(*from, |(_, full)| full);
                self.threads_given_up = (to < &full).then_some((*to, full));
            }
        }
    }

    /// A session starts: a resumed one continues the same history; only the session's facts change.
    fn started(&mut self, time: f64, info: &RunInfo) {
        self.session_time = time;
        self.elapsed_before = info.resumed.map(|r| r.elapsed_seconds).unwrap_or(0.0);
        self.epochs = info.config.epochs;
        if info.resumed.is_none() {
            self.lr = info.config.lr;
            self.lr_history = vec![(0, info.config.lr)];
            self.early_stopping = info.config.early_stopping;
        }
        self.batches = info.batches_per_epoch;
        self.outcome = None;
        self.error = None;
        // A new process starts with all its threads.
        self.threads_given_up = None;
        self.crashed = false;
        self.state = RunState::Loading;
        self.info = Some(info.clone());
    }

    /// An epoch's figures: the best so far, and the history (a resumed epoch replaces its earlier try).
    fn epoch_ended(&mut self, metrics: &EpochMetrics) {
        self.img_per_s = metrics.img_per_s;
        if self.best.is_none_or(|(b, _)| metrics.val_acc > b) {
            self.best = Some((metrics.val_acc, metrics.epoch));
        }
        self.history.retain(|m| m.epoch < metrics.epoch);
        self.history.push(metrics.clone());
    }

    /// Mark the run as crashed: its process is gone and it never said it ended.
    pub fn mark_crashed(&mut self) {
        if !self.state.is_over() && !self.crashed {
            self.crashed = true;
            self.push_log("CRASHED: the training process is gone without a final event (resume with train --resume)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::events::ResumePoint;

    fn rec(seq: u64, time: f64, event: TrainEvent) -> Record {
        Record { seq, time, event }
    }

    fn started(resumed: Option<ResumePoint>) -> TrainEvent {
        TrainEvent::Started {
            info: Box::new(RunInfo {
                run_dir: "runs/r".into(),
                data_root: "d".into(),
                synthetic: false,
                model: "m".into(),
                device: "cpu".into(),
                classes: vec!["a".into(), "b".into()],
                train_counts: vec![1, 1],
                val_counts: vec![1, 1],
                test_counts: vec![0, 0],
                batches_per_epoch: 3,
                config: Default::default(),
                samples: vec![],
                pid: 1,
                host: "h".into(),
                resumed,
            }),
        }
    }

    #[test]
    fn status_words_and_elapsed_across_a_resume() {
        let mut v = RunView::default();
        v.apply(&rec(0, 100.0, started(None)));
        v.apply(&rec(1, 100.0, TrainEvent::State { state: RunState::Training }));
        assert_eq!(v.status(), "running");
        assert_eq!(v.elapsed(Some(130.0)), 30.0);
        v.apply(&rec(
            2,
            140.0,
            TrainEvent::Finished {
                reason: "stopped".into(),
                best_val_acc: 0.5,
                best_epoch: 1,
                test_acc: None,
                elapsed_seconds: 40.0,
                stopped_by: Some(crate::run::events::StopCause::User),
            },
        ));
        assert_eq!(v.status(), "stopped");
        assert_eq!(v.elapsed(Some(500.0)), 40.0);
        v.apply(&rec(3, 1000.0, started(Some(ResumePoint { epoch: 1, batch: 0, elapsed_seconds: 40.0 }))));
        v.apply(&rec(4, 1000.0, TrainEvent::State { state: RunState::Training }));
        assert_eq!(v.status(), "running");
        assert_eq!(v.elapsed(Some(1010.0)), 50.0);
        v.mark_crashed();
        assert_eq!(v.status(), "crashed");
        assert!(v.log.back().unwrap().starts_with("CRASHED"));
    }

    #[test]
    fn threads_given_up_are_tracked_until_taken_back_or_a_new_process() {
        let mut v = RunView::default();
        v.apply(&rec(0, 1.0, started(None)));
        let change = |from, to| TrainEvent::ThreadsChanged { from, to, busy_elsewhere: 1.0 };
        v.apply(&rec(1, 2.0, change(4, 3)));
        v.apply(&rec(2, 3.0, change(3, 2)));
        assert_eq!(v.threads_given_up, Some((2, 4)), "counted from the first count");
        v.apply(&rec(3, 4.0, change(2, 3)));
        assert_eq!(v.threads_given_up, Some((3, 4)));
        v.apply(&rec(4, 5.0, change(3, 4)));
        assert_eq!(v.threads_given_up, None, "all back");
        v.apply(&rec(5, 6.0, change(4, 1)));
        v.apply(&rec(6, 7.0, started(Some(ResumePoint { epoch: 1, batch: 0, elapsed_seconds: 5.0 }))));
        assert_eq!(v.threads_given_up, None, "a resumed process starts with all its threads");
    }
}
