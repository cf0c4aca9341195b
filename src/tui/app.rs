//! The dashboard's state machine: `update(Action)` changes UI state and returns the trainer command to
//! send, if any. Pure apart from the image cache, so it is tested without a terminal.

use super::action::{Action, View};
use super::gallery::{self, Filter, Sort, Split};
use super::preview::ImageCache;
use super::theme::Theme;
use crate::run::RunView;
use crate::run::explain::ExplainRequest;
use crate::run::{Record, RunState, StopWhen, TrainCommand, TrainEvent};
use std::path::PathBuf;

/// Factor for `+` / `-`.
pub const LR_STEP: f64 = 2.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Help,
    LrPrompt(String),
    /// Typing the path of an image or folder to classify.
    OpenPrompt(String),
    /// The opened image(s): prediction, probabilities and Grad-CAM.
    Predict,
    QuitConfirm,
    /// The end-of-run popup with the test report.
    Summary,
}

/// How the UI wants to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Quit,
    /// Leave the dashboard; training goes on (in-process: handed over to a background process;
    /// attached: the client just leaves).
    Detach,
}

pub struct App {
    pub run: RunView,
    pub view: View,
    pub mode: Mode,
    pub theme: Theme,
    /// Watching a log: controls are disabled.
    pub read_only: bool,
    /// Attached to another process's run: `q` detaches, it never stops training.
    pub attached: bool,
    pub exit: Option<Exit>,
    /// Leave as soon as the trainer has finished (after "stop and save").
    pub quit_when_finished: bool,
    pub summary_shown: bool,
    pub cursor: (usize, usize),
    pub confusion_split: Split,
    pub gallery_split: Split,
    pub filter: Filter,
    pub sort: Sort,
    pub selected: usize,
    /// One sample image per class for the Data view.
    pub samples: Vec<Option<PathBuf>>,
    pub images: ImageCache,
    /// The Runs view's folder, list and selection.
    pub runs: super::runs::RunsBrowser,
    /// Show the running clock (off in tests: elapsed then comes from event times alone).
    pub clock: bool,
    /// Grad-CAM overlay on the gallery preview and the opened image.
    pub cam_on: bool,
    /// The class Grad-CAM explains (None: the predicted class).
    pub cam_class: Option<usize>,
    /// The worker that reads the run's checkpoint (None: no run to ask, e.g. in tests).
    pub explain: Option<crate::run::explain::ExplainClient>,
    pub explained: std::collections::HashMap<ExplainRequest, Result<crate::run::explain::Explained, crate::run::explain::Unexplained>>,
    pending: std::collections::HashSet<ExplainRequest>,
    /// Bumped when a new checkpoint is saved: explanations are asked again.
    pub explain_generation: u64,
    /// Images opened with `o` and the one shown.
    pub opened: Vec<PathBuf>,
    pub opened_at: usize,
}

impl App {
    pub fn new(theme: Theme, images: ImageCache) -> App {
        App {
            run: RunView::default(),
            view: View::Dashboard,
            mode: Mode::Normal,
            theme,
            read_only: false,
            attached: false,
            exit: None,
            quit_when_finished: false,
            summary_shown: false,
            cursor: (0, 0),
            confusion_split: Split::Val,
            gallery_split: Split::Val,
            filter: Filter::All,
            sort: Sort::File,
            selected: 0,
            samples: vec![],
            images,
            clock: false,
            runs: Default::default(),
            cam_on: false,
            cam_class: None,
            explain: None,
            explained: Default::default(),
            pending: Default::default(),
            opened: vec![],
            opened_at: 0,
            explain_generation: 0,
        }
    }

    /// The explanation of `path` for the current Grad-CAM class: asked for on first use, `None`
    /// until the worker answers.
    pub fn explanation(&mut self, path: &std::path::Path) -> Option<&Result<crate::run::explain::Explained, crate::run::explain::Unexplained>> {
        let req = ExplainRequest { path: path.to_path_buf(), cam_class: self.cam_class };
        if !self.explained.contains_key(&req) && !self.pending.contains(&req) {
            match &self.explain {
                Some(client) if client.requests.send(req.clone()).is_ok() => {
                    self.pending.insert(req.clone());
                }
                _ => {
                    self.explained.insert(req.clone(), Err(crate::run::explain::Unexplained::NoCheckpoint));
                }
            }
        }
        self.explained.get(&req)
    }

    /// Collect the worker's answers; true when one arrived (redraw).
    pub fn poll_explanations(&mut self) -> bool {
        let mut got = false;
        if let Some(client) = &self.explain {
            while let Ok(e) = client.answers.try_recv() {
                self.pending.remove(&e.request);
                if self.explained.len() > 64 {
                    self.explained.clear();
                }
                self.explained.insert(e.request, e.result);
                got = true;
            }
        }
        got
    }

    /// The image the open-image popup shows.
    pub fn opened_path(&self) -> Option<&PathBuf> {
        self.opened.get(self.opened_at)
    }

    fn open(&mut self, text: &str) {
        let text = text.trim();
        let path = match text.strip_prefix("~/") {
            Some(rest) => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest),
            None => PathBuf::from(text),
        };
        let files = if path.is_dir() {
            crate::run::explain::images_in(&path)
        } else if path.is_file() {
            vec![path.clone()]
        } else {
            vec![]
        };
        if files.is_empty() {
            let why = if path.is_dir() { "folder holds no images" } else { "no such file or folder" };
            self.run.push_log(format!("{}: {why}", crate::run::format::printable(&path.display().to_string())));
            self.mode = Mode::Normal;
            return;
        }
        self.opened = files;
        self.opened_at = 0;
        self.mode = Mode::Predict;
    }

    fn cycle_cam_class(&mut self, d: isize) {
        let n = self.run.classes().len() as isize;
        // None (predicted) sits before class 0.
        let at = self.cam_class.map(|c| c as isize).unwrap_or(-1);
        let next = (at + 1 + d).rem_euclid(n + 1) - 1;
        self.cam_class = (next >= 0).then_some(next as usize);
        self.cam_on = true;
    }

    /// Training seconds so far.
    pub fn elapsed(&self) -> f64 {
        self.run.elapsed(self.clock.then(crate::run::log::now_unix_f64))
    }

    /// Feed a trainer record.
    pub fn on_event(&mut self, rec: &Record) {
        self.run.apply(rec);
        let ev = &rec.event;
        match ev {
            TrainEvent::Started { info } => {
                self.samples = info.samples.iter().map(|s| s.as_ref().map(PathBuf::from)).collect();
            }
            // A signal stops the process that owns the screen: leave once the run is saved.
            TrainEvent::StopRequested { cause, when, .. }
                if !self.attached && !self.read_only && (cause != "user" || *when == StopWhen::Abort) =>
            {
                self.quit_when_finished = true;
            }
            TrainEvent::Checkpointed { .. } | TrainEvent::Calibrated { .. } => {
                // A newer checkpoint (or temperature) answers differently: ask again.
                self.explained.clear();
                self.explain_generation += 1;
            }
            TrainEvent::TestReport { .. } => {
                self.gallery_split = Split::Test;
                self.confusion_split = Split::Test;
            }
            TrainEvent::Finished { .. } | TrainEvent::Failed { .. } => {
                if self.quit_when_finished {
                    self.exit = Some(Exit::Quit);
                } else if !self.summary_shown && !self.read_only {
                    self.summary_shown = true;
                    self.mode = Mode::Summary;
                }
            }
            TrainEvent::Predictions { .. } if self.samples.iter().all(|s| s.is_none()) => {
                let preds = &self.run.val_predictions;
                self.samples =
                    (0..self.run.classes().len()).map(|c| preds.iter().find(|p| p.truth == c).map(|p| PathBuf::from(&p.path))).collect();
            }
            _ => {}
        }
        // Only these change the prediction lists or the class count; batch events (the hot path) do not.
        if matches!(ev, TrainEvent::Started { .. } | TrainEvent::Predictions { .. } | TrainEvent::TestReport { .. }) {
            self.clamp_selection();
        }
    }

    pub fn gallery_items(&self) -> &[crate::run::Prediction] {
        match self.gallery_split {
            Split::Test if !self.run.test_predictions.is_empty() => &self.run.test_predictions,
            _ => &self.run.val_predictions,
        }
    }

    pub fn gallery_selection(&self) -> Vec<usize> {
        gallery::select(self.gallery_items(), self.filter, self.sort)
    }

    /// The confusion matrix shown: validation (latest epoch) or test.
    pub fn confusion(&self) -> Option<&crate::metrics::ConfusionMatrix> {
        match self.confusion_split {
            Split::Test => self.run.test_report.as_ref().map(|r| &r.confusion),
            Split::Val => self.run.history.last().map(|m| &m.confusion),
        }
    }

    /// The shown split's one-vs-rest areas under the ROC curve, per class, when its predictions are
    /// at hand (validation predictions are those of the latest epoch).
    pub fn roc_auc(&self) -> Option<Vec<f64>> {
        let preds = match self.confusion_split {
            Split::Test => &self.run.test_predictions,
            Split::Val => &self.run.val_predictions,
        };
        if preds.is_empty() {
            return None;
        }
        let truth: Vec<usize> = preds.iter().map(|p| p.truth).collect();
        let pred: Vec<usize> = preds.iter().map(|p| p.pred).collect();
        let probs: Vec<Vec<f32>> = preds.iter().map(|p| p.probs.clone()).collect();
        Some(crate::metrics::curves::per_class(&probs, &truth, &pred, self.run.classes()).iter().map(|c| c.roc_auc).collect())
    }

    fn clamp_selection(&mut self) {
        let n = self.gallery_selection().len();
        self.selected = self.selected.min(n.saturating_sub(1));
        let k = self.run.classes().len().max(1);
        self.cursor = (self.cursor.0.min(k - 1), self.cursor.1.min(k - 1));
    }

    fn training(&self) -> bool {
        !self.run.is_over() && self.run.info.is_some()
    }

    fn control(&mut self, cmd: TrainCommand) -> Option<TrainCommand> {
        if self.read_only {
            self.run.push_log(if self.run.is_over() {
                "read-only: the run is not training (resume it with train --resume)"
            } else {
                "read-only: use tumorscope attach to control this run"
            });
            return None;
        }
        if !self.training() {
            self.run.push_log("training is not running");
            return None;
        }
        Some(cmd)
    }

    /// The runs folder the Runs view lists: the current run's parent, unless one was given.
    pub fn refresh_runs(&mut self) {
        let current = self.run.info.as_ref().map(|i| std::path::PathBuf::from(&i.run_dir));
        if self.runs.dir.is_none() {
            self.runs.dir = current.as_ref().and_then(|p| p.parent().map(|p| p.to_path_buf()));
        }
        let name = current.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string());
        self.runs.refresh(name.as_deref());
    }

    fn show(&mut self, v: View) {
        self.view = v;
        if v == View::Runs {
            self.refresh_runs();
        }
    }

    fn move_by(&mut self, d: isize) {
        match self.view {
            View::Runs => self.runs.move_by(d),
            View::Gallery => {
                let n = self.gallery_selection().len();
                if n > 0 {
                    self.selected = (self.selected as isize + d).clamp(0, n as isize - 1) as usize;
                }
            }
            View::Confusion => {
                let k = self.run.classes().len().max(1) as isize;
                self.cursor.0 = (self.cursor.0 as isize + d.signum()).clamp(0, k - 1) as usize;
            }
            _ => {}
        }
    }

    /// Apply an action; returns the command for the trainer, if any.
    pub fn update(&mut self, action: Action) -> Option<TrainCommand> {
        if let Some(done) = self.update_prompt(&action) {
            return done;
        }
        if let Some(done) = self.update_popup(&action) {
            return done;
        }
        match action {
            Action::Interrupt => self.interrupt(),
            Action::Quit if self.attached => {
                self.exit = Some(Exit::Detach);
                None
            }
            Action::Quit => {
                if self.training() && !self.read_only {
                    self.mode = Mode::QuitConfirm;
                } else {
                    self.exit = Some(Exit::Quit);
                }
                None
            }
            a if matches!(self.mode, Mode::Normal) => self.update_normal(a),
            _ => None,
        }
    }

    /// Typing in the learning-rate or open-image prompt; None when the action is not a prompt's.
    fn update_prompt(&mut self, action: &Action) -> Option<Option<TrainCommand>> {
        match (&mut self.mode, action) {
            (Mode::LrPrompt(buf), Action::Char(c)) => {
                if c.is_ascii_digit() || ".eE-+".contains(*c) {
                    buf.push(*c);
                }
            }
            (Mode::OpenPrompt(buf), Action::Char(c)) => buf.push(*c),
            (Mode::LrPrompt(buf) | Mode::OpenPrompt(buf), Action::Backspace) => {
                buf.pop();
            }
            (Mode::OpenPrompt(buf), Action::Complete) => *buf = crate::run::explain::complete(buf),
            (Mode::LrPrompt(buf), Action::Enter) => {
                let text = buf.clone();
                self.mode = Mode::Normal;
                let lr = match text.trim().parse::<f64>() {
                    Ok(v) => crate::run::events::check_lr(v).map_err(|e| e.to_string()),
                    Err(_) => Err(format!("'{text}' is not a number")),
                };
                return Some(match lr {
                    Ok(lr) => self.control(TrainCommand::SetLr(lr)),
                    Err(why) => {
                        self.run.push_log(format!("invalid learning rate: {why}; type a number such as 3e-4"));
                        None
                    }
                });
            }
            (Mode::OpenPrompt(buf), Action::Enter) => {
                let text = buf.clone();
                self.open(&text);
            }
            _ => return None,
        }
        Some(None)
    }

    /// The opened image, Grad-CAM keys, closing a popup and the quit dialog; None when the action is
    /// not theirs.
    fn update_popup(&mut self, action: &Action) -> Option<Option<TrainCommand>> {
        let in_views = matches!(self.mode, Mode::Predict | Mode::Normal);
        match (&self.mode, action) {
            (Mode::Predict, Action::Up) => self.opened_at = self.opened_at.saturating_sub(1),
            (Mode::Predict, Action::Down) => self.opened_at = (self.opened_at + 1).min(self.opened.len().saturating_sub(1)),
            (_, Action::ToggleCam) if in_views => self.cam_on = !self.cam_on,
            (_, Action::CamPrevClass) if in_views => self.cycle_cam_class(-1),
            (_, Action::CamNextClass) if in_views => self.cycle_cam_class(1),
            (_, Action::OpenPrompt) if in_views => self.mode = Mode::OpenPrompt(String::new()),
            (Mode::Normal, _) => return None,
            (_, Action::Escape) | (Mode::Help, Action::ToggleHelp) => self.mode = Mode::Normal,
            (Mode::QuitConfirm, Action::QuitStopAndSave) => {
                self.mode = Mode::Normal;
                self.quit_when_finished = true;
                self.run.push_log("stopping and saving before quitting…");
                return Some(Some(TrainCommand::StopNow));
            }
            (Mode::QuitConfirm, Action::QuitDetach) => self.exit = Some(Exit::Detach),
            _ => return None,
        }
        Some(None)
    }

    /// Ctrl-C: leave a client or a finished run; stop and save a running one (again: skip the report).
    fn interrupt(&mut self) -> Option<TrainCommand> {
        if self.attached || self.read_only || !self.training() {
            self.exit = Some(if self.attached { Exit::Detach } else { Exit::Quit });
            None
        } else if !self.quit_when_finished {
            self.quit_when_finished = true;
            self.run.push_log("Ctrl-C: stopping now and saving before quitting (Ctrl-C again: skip the report)");
            Some(TrainCommand::StopNow)
        } else {
            Some(TrainCommand::Abort("Ctrl-C".into()))
        }
    }

    fn update_normal(&mut self, a: Action) -> Option<TrainCommand> {
        match a {
            Action::NextView => self.show(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            Action::PrevView => self.show(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()]),
            Action::Show(v) => self.show(v),
            Action::ToggleSelect if self.view == View::Runs => self.runs.toggle(),
            Action::Refresh if self.view == View::Runs => self.refresh_runs(),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-10),
            Action::PageDown => self.move_by(10),
            Action::Home => self.move_by(-1_000_000),
            Action::End => self.move_by(1_000_000),
            Action::Left | Action::Right if self.view == View::Confusion => {
                let k = self.run.classes().len().max(1);
                self.cursor.1 = if a == Action::Left { self.cursor.1.saturating_sub(1) } else { (self.cursor.1 + 1).min(k - 1) };
            }
            Action::Enter if self.view == View::Confusion => {
                self.filter = Filter::Cell(self.cursor.0, self.cursor.1);
                self.gallery_split = self.confusion_split;
                self.selected = 0;
                self.view = View::Gallery;
            }
            Action::CycleFilter => {
                self.filter = self.filter.next(self.run.classes().len());
                self.selected = 0;
            }
            Action::CycleSort => {
                self.sort = self.sort.next();
                self.selected = 0;
            }
            Action::ToggleSplit => {
                let next = |s: Split| if s == Split::Val { Split::Test } else { Split::Val };
                match self.view {
                    View::Confusion => self.confusion_split = next(self.confusion_split),
                    _ => self.gallery_split = next(self.gallery_split),
                }
                self.selected = 0;
            }
            Action::ToggleImageProtocol => {
                let p = self.images.toggle_protocol();
                self.run.push_log(format!("image protocol: {p}"));
            }
            Action::CycleTheme => {
                self.theme = self.theme.next_builtin();
                self.run.push_log(format!("theme: {}", self.theme.name));
            }
            Action::ToggleHelp => self.mode = Mode::Help,
            Action::OpenLrPrompt => {
                if self.read_only || !self.training() {
                    return self.control(TrainCommand::SetLr(self.run.lr));
                }
                self.mode = Mode::LrPrompt(String::new());
            }
            Action::StopAfterEpoch => return self.control(TrainCommand::StopAfterEpoch),
            Action::StopNow => return self.control(TrainCommand::StopNow),
            Action::LrUp => return self.control(TrainCommand::ScaleLr(LR_STEP)),
            Action::LrDown => return self.control(TrainCommand::ScaleLr(1.0 / LR_STEP)),
            Action::TogglePause => {
                let cmd = if self.run.state == RunState::Paused { TrainCommand::Resume } else { TrainCommand::Pause };
                return self.control(cmd);
            }
            Action::CheckpointNow => return self.control(TrainCommand::CheckpointNow),
            Action::ToggleEarlyStopping => return self.control(TrainCommand::SetEarlyStopping(!self.run.early_stopping)),
            _ => {}
        }
        None
    }
}
