//! The trainer thread: owns the VarStore, network and optimiser (tch tensors are not `Sync`), emits
//! `TrainEvent`s and obeys `TrainCommand`s between batches. Every event is also appended to the run's
//! `events.jsonl`. Errors and panics in libtorch become a `Failed` event, never a dead UI.

use super::callbacks::{BestTracker, EarlyStopping, ReduceLrOnPlateau};
use super::evaluate::evaluate;
use super::events::{EpochMetrics, RunInfo, RunState, TrainCommand, TrainEvent};
use crate::config::TrainConfig;
use crate::data::augment::{AugmentParams, augment};
use crate::data::{ImageSet, Split, batch};
use crate::model;
use crate::rng::Rng;
use crate::runlog::{EventLog, RunDir};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind};

/// Everything a training run needs.
pub struct TrainJob {
    pub config: TrainConfig,
    pub data: Arc<ImageSet>,
    pub split: Split,
    pub device: Device,
    pub run: RunDir,
    pub data_root: String,
    /// Pretrained Lite0 weights (used when `config.pretrained`).
    pub weights: PathBuf,
}

/// The UI's side of a running trainer.
pub struct TrainerHandle {
    pub events: tokio::sync::mpsc::UnboundedReceiver<TrainEvent>,
    pub commands: Sender<TrainCommand>,
    pub thread: std::thread::JoinHandle<()>,
}

/// Start training on a new thread.
pub fn spawn(job: TrainJob) -> std::io::Result<TrainerHandle> {
    let (etx, erx) = tokio::sync::mpsc::unbounded_channel();
    let (ctx, crx) = std::sync::mpsc::channel();
    let log = EventLog::create(&job.run.events())?;
    let thread = std::thread::Builder::new().name("trainer".into()).spawn(move || {
        let mut out = Emitter { tx: etx, log, log_failed: false };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&job, &mut out, &crx)));
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(p) => Some(panic_message(&p)),
        };
        if let Some(error) = error {
            out.emit(TrainEvent::State { state: RunState::Failed });
            out.emit(TrainEvent::Failed { error });
        }
    })?;
    Ok(TrainerHandle { events: erx, commands: ctx, thread })
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    format!("trainer crashed: {msg}")
}

/// Sends to the UI and appends to `events.jsonl`.
struct Emitter {
    tx: tokio::sync::mpsc::UnboundedSender<TrainEvent>,
    log: EventLog,
    log_failed: bool,
}

impl Emitter {
    fn emit(&mut self, e: TrainEvent) {
        if let Err(err) = self.log.append(&e)
            && !self.log_failed
        {
            self.log_failed = true;
            let _ = self.tx.send(TrainEvent::Log { message: format!("cannot write events.jsonl: {err}") });
        }
        let _ = self.tx.send(e); // a closed UI must not stop training
    }

    fn log(&mut self, message: impl Into<String>) {
        self.emit(TrainEvent::Log { message: message.into() });
    }
}

/// Mutable control state, changed by commands.
struct Control {
    stop_after_epoch: bool,
    stop_now: bool,
    paused: bool,
    checkpoint_now: bool,
    lr: f64,
    lr_changed_by_user: Option<f64>,
}

fn counts(set: &ImageSet, idx: &[usize]) -> Vec<usize> {
    let mut c = vec![0; set.classes.len()];
    for &i in idx {
        c[set.labels[i]] += 1;
    }
    c
}

/// `1e-3`, `3e-4`, `2.5e-4`: short and exact enough for a log line.
pub fn fmt_lr(lr: f64) -> String {
    let s = format!("{lr:.2e}");
    match s.split_once('e') {
        Some((m, e)) => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
        None => s,
    }
}

/// Apply one command. Returns a log line saying what happened.
fn apply(cmd: TrainCommand, c: &mut Control, early: &mut EarlyStopping, out: &mut Emitter, epoch: usize) {
    let msg = match cmd {
        TrainCommand::StopAfterEpoch => {
            c.stop_after_epoch = true;
            c.paused = false;
            out.emit(TrainEvent::State { state: RunState::Stopping });
            format!("early stop requested: stopping after epoch {epoch}")
        }
        TrainCommand::StopNow => {
            c.stop_now = true;
            c.paused = false;
            out.emit(TrainEvent::State { state: RunState::Stopping });
            "stop now requested: saving current weights".to_string()
        }
        TrainCommand::SetLr(lr) | TrainCommand::ScaleLr(lr) if !(lr.is_finite() && lr > 0.0) => {
            format!("ignored invalid learning rate {lr}")
        }
        TrainCommand::SetLr(lr) => {
            c.lr_changed_by_user = Some(lr);
            return;
        }
        TrainCommand::ScaleLr(f) => {
            c.lr_changed_by_user = Some(c.lr_changed_by_user.unwrap_or(c.lr) * f);
            return;
        }
        TrainCommand::Pause => {
            if c.paused {
                return;
            }
            c.paused = true;
            out.emit(TrainEvent::State { state: RunState::Paused });
            "paused".to_string()
        }
        TrainCommand::Resume => {
            if !c.paused {
                return;
            }
            c.paused = false;
            out.emit(TrainEvent::State { state: RunState::Training });
            "resumed".to_string()
        }
        TrainCommand::CheckpointNow => {
            c.checkpoint_now = true;
            return;
        }
        TrainCommand::SetEarlyStopping(on) => {
            early.enabled = on;
            out.emit(TrainEvent::EarlyStopping { enabled: on });
            format!("early stopping {} (patience {}, waited {})", if on { "on" } else { "off" }, early.patience, early.wait())
        }
    };
    out.log(msg);
}

fn run(job: &TrainJob, out: &mut Emitter, commands: &Receiver<TrainCommand>) -> Result<(), String> {
    let cfg = &job.config;
    let set = &*job.data;
    let t0 = Instant::now();
    tch::manual_seed(cfg.seed as i64);
    if cfg.threads > 0 {
        tch::set_num_threads(cfg.threads as i32);
    }
    let mut vs = nn::VarStore::new(job.device);
    let net = model::build(&vs, cfg, set.classes.len());
    if cfg.pretrained && cfg.model == crate::config::ModelKind::EfficientnetLite0 {
        crate::model::weights::load_pretrained(&mut vs, &job.weights).map_err(|e| e.to_string())?;
    }
    if job.device == Device::Cpu {
        crate::model::weights::to_channels_last(&vs).map_err(|e| e.to_string())?;
    }
    let mut opt = nn::Adam { wd: cfg.weight_decay, ..Default::default() }.build(&vs, cfg.lr).map_err(|e| e.to_string())?;
    let batches = job.split.train.len().div_ceil(cfg.batch_size);
    out.emit(TrainEvent::Started {
        info: RunInfo {
            run_dir: job.run.path.display().to_string(),
            data_root: job.data_root.clone(),
            synthetic: set.synthetic,
            model: cfg.model.name().to_string()
                + if cfg.pretrained && cfg.model == crate::config::ModelKind::EfficientnetLite0 { " (ImageNet)" } else { "" },
            device: crate::device::describe(job.device),
            classes: set.classes.clone(),
            train_counts: counts(set, &job.split.train),
            val_counts: counts(set, &job.split.val),
            test_counts: counts(set, &job.split.test),
            batches_per_epoch: batches,
            config: cfg.clone(),
        },
    });
    out.emit(TrainEvent::State { state: RunState::Training });

    let mut c =
        Control { stop_after_epoch: false, stop_now: false, paused: false, checkpoint_now: false, lr: cfg.lr, lr_changed_by_user: None };
    let mut plateau = ReduceLrOnPlateau::new(cfg.plateau_factor, cfg.plateau_patience, cfg.plateau_min_delta, cfg.min_lr);
    let mut early = EarlyStopping::new(cfg.early_stopping, cfg.early_stopping_patience, cfg.plateau_min_delta);
    let mut best = BestTracker::default();
    let mut rng = Rng::new(cfg.seed.wrapping_add(1));
    let aug = AugmentParams::default();
    let mut stop_reason = format!("completed {} epochs", cfg.epochs);
    let mut order = job.split.train.clone();
    let mut last_epoch = 0;

    'epochs: for epoch in 1..=cfg.epochs {
        out.emit(TrainEvent::EpochStart { epoch, epochs: cfg.epochs });
        rng.shuffle(&mut order);
        let te = Instant::now();
        let mut compute_time = Duration::ZERO;
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (b, idx) in batch::chunks(&order, cfg.batch_size).enumerate() {
            // Commands between batches; block while paused.
            loop {
                let cmd = if c.paused {
                    match commands.recv_timeout(Duration::from_millis(200)) {
                        Ok(cmd) => Some(cmd),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => {
                            c.paused = false;
                            None
                        }
                    }
                } else {
                    commands.try_recv().ok()
                };
                match cmd {
                    Some(cmd) => {
                        apply(cmd, &mut c, &mut early, out, epoch);
                        // Act at once, also while paused, so the echo comes right away.
                        if let Some(lr) = c.lr_changed_by_user.take() {
                            let lr = lr.max(1e-9);
                            opt.set_lr(lr);
                            out.emit(TrainEvent::LrChanged { epoch, from: c.lr, to: lr, reason: "user".into() });
                            out.log(format!("lr {} → {} (user)", fmt_lr(c.lr), fmt_lr(lr)));
                            c.lr = lr;
                        }
                        if c.checkpoint_now {
                            c.checkpoint_now = false;
                            save(&vs, &job.run.path.join(format!("manual-epoch{epoch}-batch{b}.safetensors")), epoch, None, "user", out)?;
                        }
                    }
                    None if c.paused => continue,
                    None => break,
                }
            }
            if c.stop_now {
                stop_reason = format!("stopped by user during epoch {epoch}");
                break 'epochs;
            }
            let tb = Instant::now();
            let (x, y) = batch::gather(set, idx, job.device).map_err(|e| e.to_string())?;
            let x = if cfg.augment { augment(&x, &aug, &mut rng).map_err(|e| e.to_string())? } else { x };
            let x = batch::channels_last(&batch::normalize(&x)).map_err(|e| e.to_string())?;
            let logits = net.forward_t(&x, true);
            let loss = logits.cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
            let l = loss.f_double_value(&[]).map_err(|e| e.to_string())?;
            if !l.is_finite() {
                return Err(format!("loss became {l} at epoch {epoch}, batch {}: lower the learning rate", b + 1));
            }
            let hits = logits.argmax(-1, false).eq_tensor(&y).to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[]) as usize;
            compute_time += tb.elapsed();
            loss_sum += l * idx.len() as f64;
            correct += hits;
            seen += idx.len();
            out.emit(TrainEvent::BatchEnd {
                epoch,
                batch: b + 1,
                batches,
                loss: l,
                acc: hits as f64 / idx.len() as f64,
                img_per_s: seen as f64 / compute_time.as_secs_f64().max(1e-9),
                lr: c.lr,
            });
        }
        last_epoch = epoch;
        let img_per_s = seen as f64 / compute_time.as_secs_f64().max(1e-9);
        let val = evaluate(&net, set, &job.split.val, cfg.batch_size * 2, job.device).map_err(|e| e.to_string())?;
        let metrics = EpochMetrics {
            epoch,
            epochs: cfg.epochs,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            val_loss: val.loss,
            val_acc: val.accuracy(),
            lr: c.lr,
            img_per_s,
            epoch_seconds: te.elapsed().as_secs_f64(),
            elapsed_seconds: t0.elapsed().as_secs_f64(),
            confusion: val.confusion.clone(),
        };
        let val_acc = metrics.val_acc;
        out.emit(TrainEvent::EpochEnd { metrics });
        out.emit(TrainEvent::Predictions { split: "val".into(), epoch, items: val.predictions });
        if best.improved(val_acc, epoch) {
            save(&vs, &job.run.best(), epoch, Some(val_acc), "best val_acc", out)?;
        }
        if let Some(new_lr) = plateau.step(val_acc, c.lr) {
            opt.set_lr(new_lr);
            out.emit(TrainEvent::LrChanged { epoch, from: c.lr, to: new_lr, reason: "plateau".into() });
            out.log(format!("ReduceLROnPlateau: lr {} → {}", fmt_lr(c.lr), fmt_lr(new_lr)));
            c.lr = new_lr;
        }
        if early.step(val_acc) {
            stop_reason = format!("early stopping: val_acc did not improve for {} epochs", early.patience);
            out.log(stop_reason.clone());
            break;
        }
        if c.stop_after_epoch || c.stop_now {
            stop_reason = format!("stopped by user after epoch {epoch}");
            break;
        }
    }
    save(&vs, &job.run.last(), last_epoch, None, "last", out)?;

    // Test with the best weights, as the article evaluates its best checkpoint.
    out.emit(TrainEvent::State { state: RunState::Evaluating });
    if job.run.best().exists() {
        crate::model::weights::load_checkpoint(&mut vs, &job.run.best()).map_err(|e| e.to_string())?;
    }
    let mut test_acc = None;
    if !job.split.test.is_empty() {
        let test = evaluate(&net, set, &job.split.test, cfg.batch_size * 2, job.device).map_err(|e| e.to_string())?;
        let report = test.confusion.report(&set.classes);
        test_acc = Some(report.accuracy);
        let _ = std::fs::write(job.run.path.join("report.txt"), format!("{}\n{}", report.to_text(4), report.confusion_text()));
        let _ = std::fs::write(job.run.path.join("report.json"), serde_json::to_string_pretty(&report).unwrap_or_default());
        out.emit(TrainEvent::Predictions { split: "test".into(), epoch: last_epoch, items: test.predictions });
        out.emit(TrainEvent::TestReport { report });
    }
    let (best_val_acc, best_epoch) = best.best.unwrap_or((0.0, 0));
    out.emit(TrainEvent::State { state: RunState::Finished });
    out.emit(TrainEvent::Finished { reason: stop_reason, best_val_acc, best_epoch, test_acc, elapsed_seconds: t0.elapsed().as_secs_f64() });
    Ok(())
}

fn save(
    vs: &nn::VarStore,
    path: &std::path::Path,
    epoch: usize,
    val_acc: Option<f64>,
    reason: &str,
    out: &mut Emitter,
) -> Result<(), String> {
    crate::model::weights::save(vs, path).map_err(|e| format!("{}: cannot save checkpoint: {e}", path.display()))?;
    out.emit(TrainEvent::Checkpointed { epoch, path: path.display().to_string(), val_acc, reason: reason.to_string() });
    let what = match val_acc {
        Some(a) => format!("checkpoint saved ({reason}, val_acc {a:.4})"),
        None => format!("checkpoint saved ({reason}): {}", path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()),
    };
    out.log(what);
    Ok(())
}
