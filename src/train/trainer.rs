//! The trainer thread: owns the VarStore, network and optimiser (tch tensors are not `Sync`), emits
//! `Record`s and obeys `TrainCommand`s between batches. Every record goes to `events.jsonl`, to the
//! in-process channel and to every client of the run's socket. Errors and panics in libtorch become
//! a `Failed` event, never a dead UI. The exact state is saved at every epoch end and at every stop,
//! so a run can be resumed (or handed over to a background process) as if it had never stopped.

use super::adam::Adam;
use super::amp::{self, LossScale};
use super::callbacks::{BestTracker, EarlyStopping, ReduceLrOnPlateau, cosine_lr};
use super::ema::Ema;
use super::evaluate::evaluate;
use super::resume::{self, PartialEpoch, ResumeState};
use crate::config::{Amp, Schedule, TrainConfig};
use crate::data::augment::AugmentParams;
use crate::data::pipeline::{self, Batches};
use crate::data::{ImageSet, Split, batch};
use crate::model;
use crate::rng::Rng;
use crate::run::dir::{ProcessInfo, hostname};
use crate::run::events::{EpochMetrics, MAX_LR, MIN_LR, ResumePoint, RunInfo, RunState, StopWhen, TrainCommand, TrainEvent};
use crate::run::format::fmt_lr;
use crate::run::log::{EventLog, now_unix_f64};
use crate::run::socket::Hub;
use crate::run::{Record, RunDir};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use tch::nn;
use tch::{Device, Kind, TchError, Tensor};

/// Why a training run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Weights(#[from] crate::model::weights::WeightsError),
    #[error("{path}: cannot save checkpoint: {source}")]
    Checkpoint { path: String, source: tch::TchError },
    #[error("resume state: {0}")]
    Resume(String),
    #[error(
        "loss became {value} at epoch {epoch}, batch {batch} (lr {lr}): stopped before the weights were touched; lower the learning rate"
    )]
    NonFiniteLoss { value: f64, epoch: usize, batch: usize, lr: String },
    #[error("mixed precision (--amp): {0}")]
    Amp(String),
    #[error("the batch worker thread ended before the epoch's last batch")]
    BatchWorker,
    #[error("training ended but the final checkpoint could not be saved: {0}")]
    FinalSave(Box<TrainError>),
}

/// Everything a training run needs.
pub struct TrainJob {
    pub config: TrainConfig,
    pub data: Arc<ImageSet>,
    pub split: Split,
    pub device: Device,
    pub run: RunDir,
    pub data_root: String,
    /// Pretrained Lite0 weights (used when `config.pretrained` and not resuming).
    pub weights: PathBuf,
    /// `ImageSet::fingerprint`, recorded with the resume state.
    pub data_fingerprint: String,
    /// Continue from the run folder's saved state.
    pub resume: Option<ResumeState>,
    /// Serve the run's control socket (attach, ctl).
    pub serve_socket: bool,
    /// Write TensorBoard event files into `RUN/tensorboard/`.
    pub tensorboard: bool,
}

/// The UI's side of a running trainer.
pub struct TrainerHandle {
    pub events: tokio::sync::mpsc::UnboundedReceiver<Record>,
    pub commands: Sender<TrainCommand>,
    pub thread: std::thread::JoinHandle<()>,
    /// The control socket, when served.
    pub socket: Option<PathBuf>,
}

/// Start training on a new thread (and serve the socket, if asked).
pub fn spawn(job: TrainJob) -> std::io::Result<TrainerHandle> {
    let (etx, erx) = tokio::sync::mpsc::unbounded_channel();
    let (ctx, crx) = std::sync::mpsc::channel();
    let log = EventLog::open(&job.run.events())?;
    // A socket that cannot be served costs steering (attach, ctl), never the run.
    let (server, socket_error) = match job.serve_socket.then(|| crate::run::socket::serve(&job.run, ctx.clone())) {
        Some(Ok(s)) => (Some(s), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let socket = server.as_ref().map(|s| s.path.clone());
    job.run.write_process(&ProcessInfo {
        pid: std::process::id(),
        host: hostname(),
        socket: socket.as_ref().map(|p| p.display().to_string()),
        started_unix: now_unix_f64(),
    })?;
    let thread = std::thread::Builder::new().name("trainer".into()).spawn(move || {
        let hub = server.as_ref().map(|s| s.hub.clone());
        let mut out = Emitter { tx: etx, log, hub, log_failed: false, tb: None };
        if let Some(e) = socket_error {
            out.emit(TrainEvent::Warning {
                message: format!("cannot serve the control socket: {e}; training goes on without attach and ctl"),
            });
        }
        if job.tensorboard {
            match crate::run::tensorboard::TensorBoard::create(&job.run.path.join("tensorboard"), &hostname()) {
                Ok(tb) => out.tb = Some(tb),
                Err(e) => out.emit(TrainEvent::Warning { message: format!("cannot write TensorBoard files: {e}") }),
            }
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&job, &mut out, &crx)));
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(p) => Some(panic_message(&p)),
        };
        if let Some(error) = error {
            out.emit(TrainEvent::State { state: RunState::Failed });
            out.emit(TrainEvent::Failed { error });
        }
        drop(server); // clients see the end of the stream; the socket file goes
    })?;
    Ok(TrainerHandle { events: erx, commands: ctx, thread, socket })
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    format!("trainer crashed: {msg}")
}

/// Numbers each event, appends it to `events.jsonl`, and sends it to the UI and socket clients.
struct Emitter {
    tx: tokio::sync::mpsc::UnboundedSender<Record>,
    log: EventLog,
    hub: Option<Arc<Hub>>,
    log_failed: bool,
    tb: Option<crate::run::tensorboard::TensorBoard>,
}

impl Emitter {
    fn emit(&mut self, e: TrainEvent) {
        let rec = self.log.stamp(e);
        if let Err(err) = self.log.write(&rec)
            && !self.log_failed
        {
            self.log_failed = true;
            let warn = self.log.stamp(TrainEvent::Warning { message: format!("cannot write events.jsonl: {err}") });
            self.send(warn);
        }
        self.send(rec);
    }

    fn send(&mut self, rec: Record) {
        if let Some(tb) = &mut self.tb
            && let Err(e) = tb.add(&rec)
        {
            let warn = self.log.stamp(TrainEvent::Warning { message: format!("{}: TensorBoard writing stopped: {e}", tb.path.display()) });
            self.tb = None;
            let _ = self.log.write(&warn);
            let _ = self.tx.send(warn);
        }
        if let Some(h) = &self.hub {
            h.broadcast(&rec);
        }
        let _ = self.tx.send(rec); // a closed UI must not stop training
    }
}

/// Mutable control state, changed by commands.
struct Control {
    stop: Option<(StopWhen, String)>,
    paused: bool,
    checkpoint_now: bool,
    lr_changed_by_user: Option<f64>,
}

fn rank(w: StopWhen) -> u8 {
    match w {
        StopWhen::AfterEpoch => 0,
        StopWhen::Now => 1,
        StopWhen::HandOver => 2,
        StopWhen::Abort => 3,
    }
}

fn counts(set: &ImageSet, idx: &[usize]) -> Vec<usize> {
    let mut c = vec![0; set.classes.len()];
    for &i in idx {
        c[set.labels[i]] += 1;
    }
    c
}

/// The seed for libtorch's generator (dropout) at one batch: resuming at any batch draws the same.
fn batch_seed(seed: u64, epoch: usize, batch: usize) -> i64 {
    let h = crate::rng::fnv1a(
        &[seed.to_le_bytes(), (epoch as u64).to_le_bytes(), (batch as u64).to_le_bytes()].concat(),
        crate::rng::FNV_OFFSET,
    );
    (h >> 1) as i64
}

/// Apply one command; every command is answered with an event.
fn apply(cmd: TrainCommand, c: &mut Control, lr: f64, early: &mut EarlyStopping, out: &mut Emitter, epoch: usize) {
    let stop = |c: &mut Control, out: &mut Emitter, when: StopWhen, cause: String| {
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
        TrainCommand::StopAfterEpoch => stop(c, out, StopWhen::AfterEpoch, "user".into()),
        TrainCommand::StopNow => stop(c, out, StopWhen::Now, "user".into()),
        TrainCommand::Signal(name) => stop(c, out, StopWhen::Now, name),
        TrainCommand::Abort(cause) => stop(c, out, StopWhen::Abort, cause),
        TrainCommand::HandOver => stop(c, out, StopWhen::HandOver, "hand-over".into()),
        TrainCommand::SetLr(v) | TrainCommand::ScaleLr(v) if !(v.is_finite() && v > 0.0) => {
            out.emit(TrainEvent::CommandRejected { command: cmd.describe(), reason: "the value must be a positive number".into() })
        }
        TrainCommand::SetLr(_) | TrainCommand::ScaleLr(_) => {
            let target = match cmd {
                TrainCommand::SetLr(v) => v,
                TrainCommand::ScaleLr(f) => c.lr_changed_by_user.unwrap_or(lr) * f,
                _ => unreachable!(),
            };
            if !(MIN_LR..MAX_LR).contains(&target) {
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
struct Finishing {
    /// The first stop's cause (a signal's name): the run's exit code follows it.
    cause: Option<String>,
    /// A second signal, or an abort: skip what is left (calibration, test, report).
    skip_rest: bool,
}

/// Commands between the phases of finishing a run. Training is over, so there is nothing left to stop
/// but the evaluation: a signal or stop is recorded as the run's cause (so `train` exits 143 after a
/// SIGTERM) and the report is still written; a second signal (an abort) skips what is left. Every
/// other command is refused, so no sender waits for an answer.
fn poll_finishing(commands: &Receiver<TrainCommand>, out: &mut Emitter, epoch: usize, f: &mut Finishing, already: &Option<String>) {
    for cmd in commands.try_iter() {
        let (when, cause) = match &cmd {
            TrainCommand::Signal(name) if f.cause.is_some() || already.as_deref().is_some_and(|c| c.starts_with("SIG")) => {
                (StopWhen::Abort, name.clone())
            }
            TrainCommand::Signal(name) => (StopWhen::Now, name.clone()),
            TrainCommand::Abort(cause) => (StopWhen::Abort, cause.clone()),
            TrainCommand::StopNow | TrainCommand::StopAfterEpoch => (StopWhen::Now, "user".to_string()),
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

/// Everything that changes as training goes on (what `ResumeState` saves).
struct Progress {
    epoch: usize,
    batch: usize,
    order: Vec<usize>,
    rng: Rng,
    partial: PartialEpoch,
    lr: f64,
    plateau: ReduceLrOnPlateau,
    early: EarlyStopping,
    best: BestTracker,
    elapsed_before: f64,
    /// A user set the rate: the cosine schedule no longer moves it.
    lr_pinned: bool,
    /// fp16 mixed precision's loss scale (None otherwise).
    loss_scale: Option<LossScale>,
}

fn run(job: &TrainJob, out: &mut Emitter, commands: &Receiver<TrainCommand>) -> Result<(), TrainError> {
    let cfg = &job.config;
    let set = &*job.data;
    let t0 = Instant::now();
    tch::manual_seed(cfg.seed as i64);
    if cfg.threads > 0 {
        tch::set_num_threads(cfg.threads as i32);
    }
    let mut vs = nn::VarStore::new(job.device);
    let net = model::build(&vs, cfg, set.classes.len());
    net.freeze_stages(cfg.freeze_stages);
    let pretrained = cfg.pretrained && cfg.model == crate::config::ModelKind::EfficientnetLite0;
    if pretrained && job.resume.is_none() {
        crate::model::weights::load_pretrained(&mut vs, &job.weights)?;
    }
    // Channels-last weights on every device: libtorch's fast depthwise path on a CPU, cuDNN's
    // NHWC (tensor-core) kernels on a GPU.
    crate::model::weights::to_channels_last(&vs)?;
    if job.device.is_cuda() {
        // Fixed shapes: let cuDNN time its algorithms once and keep the fastest.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let mut opt = Adam::new(&vs, cfg.lr, cfg.weight_decay)?;
    // BatchNorm's running statistics change in the forward pass, before the loss can be checked: a
    // copy taken before each batch puts them back if the loss is not finite (they are small).
    let buffers: Vec<tch::Tensor> = vs.variables().into_values().filter(|t| !t.requires_grad()).collect();
    let mut resume_tensors = None;
    let mut p = match &job.resume {
        None => Progress {
            epoch: 0,
            batch: 0,
            order: job.split.train.clone(),
            rng: Rng::new(cfg.seed.wrapping_add(1)),
            partial: PartialEpoch::default(),
            lr: cfg.lr,
            plateau: ReduceLrOnPlateau::new(cfg.plateau_factor, cfg.plateau_patience, cfg.plateau_min_delta, cfg.min_lr),
            early: EarlyStopping::new(cfg.early_stopping, cfg.early_stopping_patience, cfg.plateau_min_delta),
            best: BestTracker::default(),
            elapsed_before: 0.0,
            lr_pinned: false,
            loss_scale: None,
        },
        Some(st) => {
            resume_tensors = Some(resume::load_tensors(&job.run, st, &mut vs, &mut opt).map_err(TrainError::Resume)?);
            opt.set_lr(st.lr);
            Progress {
                epoch: st.epoch,
                batch: st.batch,
                order: st.order.clone(),
                rng: st.rng.clone(),
                partial: st.partial.clone(),
                lr: st.lr,
                plateau: st.plateau.clone(),
                early: st.early.clone(),
                best: st.best.clone(),
                elapsed_before: st.elapsed_seconds,
                lr_pinned: st.lr_pinned,
                loss_scale: st.loss_scale.clone(),
            }
        }
    };
    // fp16 needs a loss scale (a resumed run keeps its own); nothing else does.
    let fp16 = cfg.amp == Amp::Fp16 && job.device.is_cuda();
    p.loss_scale = if fp16 { p.loss_scale.take().or_else(|| Some(LossScale::new())) } else { None };
    // The moving average (if on) is a second network: validation scores it and checkpoints hold it.
    let mut ema = None;
    let mut ema_net = None;
    if cfg.ema_decay > 0.0 {
        let store = nn::VarStore::new(job.device);
        let n = model::build(&store, cfg, set.classes.len());
        crate::model::weights::to_channels_last(&store)?;
        let mut e = Ema::new(&vs, store, cfg.ema_decay)?;
        if let Some(t) = &resume_tensors {
            e.load_state(t).map_err(TrainError::Resume)?;
        }
        ema = Some(e);
        ema_net = Some(n);
    }
    drop(resume_tensors);
    let eval_net: &model::Net = ema_net.as_ref().unwrap_or(&net);
    let elapsed = |p: &Progress| p.elapsed_before + t0.elapsed().as_secs_f64();
    let batches = job.split.train.len().div_ceil(cfg.batch_size);
    let samples = (0..set.classes.len())
        .map(|c| job.split.train.iter().find(|&&i| set.labels[i] == c).map(|&i| set.paths[i].display().to_string()))
        .collect();
    out.emit(TrainEvent::Started {
        info: Box::new(RunInfo {
            run_dir: job.run.path.display().to_string(),
            data_root: job.data_root.clone(),
            synthetic: set.synthetic,
            model: cfg.model.name().to_string() + if pretrained { " (ImageNet)" } else { "" },
            device: crate::device::describe(job.device)
                + &if amp::active(cfg.amp, job.device) { format!(", amp {}", cfg.amp.name()) } else { String::new() },
            classes: set.classes.clone(),
            train_counts: counts(set, &job.split.train),
            val_counts: counts(set, &job.split.val),
            test_counts: counts(set, &job.split.test),
            batches_per_epoch: batches,
            config: cfg.clone(),
            samples,
            pid: std::process::id(),
            host: hostname(),
            resumed: job.resume.as_ref().map(|st| ResumePoint { epoch: st.epoch, batch: st.batch, elapsed_seconds: st.elapsed_seconds }),
        }),
    });
    if cfg.amp != Amp::Off && !job.device.is_cuda() {
        out.emit(TrainEvent::Warning {
            message: format!(
                "--amp {} applies on CUDA only: this run trains in f32 on {}",
                cfg.amp.name(),
                crate::device::describe(job.device)
            ),
        });
    }
    let paused = job.resume.as_ref().is_some_and(|st| st.paused);
    let mut c = Control { stop: None, paused, checkpoint_now: false, lr_changed_by_user: None };
    out.emit(TrainEvent::State { state: if paused { RunState::Paused } else { RunState::Training } });
    let aug = cfg.augment.then(AugmentParams::default);
    let save_state = |p: &Progress, paused: bool, vs: &nn::VarStore, opt: &Adam, ema: Option<&Ema>| -> Result<(), TrainError> {
        let st = ResumeState {
            format: resume::FORMAT,
            model: cfg.model.name().to_string(),
            classes: set.classes.clone(),
            config: cfg.clone(),
            data_fingerprint: job.data_fingerprint.clone(),
            epoch: p.epoch,
            batch: p.batch,
            order: p.order.clone(),
            rng: p.rng.clone(),
            partial: p.partial.clone(),
            lr: p.lr,
            adam_step: opt.step,
            plateau: p.plateau.clone(),
            early: p.early.clone(),
            best: p.best.clone(),
            paused,
            elapsed_seconds: elapsed(p),
            lr_pinned: p.lr_pinned,
            loss_scale: p.loss_scale.clone(),
        };
        resume::save(&job.run, &st, vs, opt, ema).map_err(TrainError::Resume)
    };
    let mut stop_reason = format!("completed {} epochs", cfg.epochs);
    let mut stopped_by: Option<String> = None;
    let mut final_stop: Option<StopWhen> = None;
    let mut failure: Option<TrainError> = None;

    // Automatic thread counts on a CPU follow the machine's load (see `threads`).
    let mut load_watch = super::threads::wanted(cfg.threads, job.device.is_cuda(), |k| std::env::var(k).ok()).then(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        super::threads::LoadWatch::new(tch::get_num_threads().max(1) as usize, cores)
    });

    'epochs: while p.epoch < cfg.epochs {
        let epoch = p.epoch + 1;
        out.emit(TrainEvent::EpochStart { epoch, epochs: cfg.epochs });
        // The epoch's order and generator from before its shuffle: a stop before its first batch (a
        // command that came during the last validation, or while paused there) saves these, so the
        // resumed run shuffles exactly as an uninterrupted one.
        let unshuffled = (p.batch == 0).then(|| (p.order.clone(), p.rng.clone()));
        if p.batch == 0 {
            p.rng.shuffle(&mut p.order);
            p.partial = PartialEpoch::default();
        }
        let te = Instant::now() - Duration::from_secs_f64(p.partial.wall_seconds);
        let order = p.order.clone();
        // Every draw of the epoch is made now, in batch order (the generator ends where a batch-by-batch
        // loop would); a stop at batch b saves the state from before b's draws. A worker thread builds
        // the batches two ahead of the step.
        let start = p.batch;
        let planned = pipeline::plan_epoch(&order, cfg.batch_size, start, aug.as_ref(), &mut p.rng);
        let rng_before: Vec<Rng> = planned.iter().map(|x| x.rng_before.clone()).collect();
        // On a GPU the step is quicker than one thread can build a batch: the batches are shared out
        // over the cores, three ahead.
        let gpu = job.device.is_cuda();
        let mut built = Batches::prefetched(job.data.clone(), planned.into_iter().map(|x| x.plan).collect(), if gpu { 3 } else { 2 }, gpu);
        for (b, idx) in batch::chunks(&order, cfg.batch_size).enumerate().skip(p.batch) {
            // Commands between batches; block while paused (a stop request ends the wait).
            loop {
                let cmd = if c.paused && c.stop.is_none() {
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
                        apply(cmd, &mut c, p.lr, &mut p.early, out, epoch);
                        // Act at once, also while paused, so the answer comes right away.
                        if let Some(lr) = c.lr_changed_by_user.take() {
                            opt.set_lr(lr);
                            out.emit(TrainEvent::LrChanged { epoch, from: p.lr, to: lr, reason: "user".into() });
                            p.lr = lr;
                            if cfg.schedule == Schedule::Cosine && !p.lr_pinned {
                                p.lr_pinned = true;
                                out.emit(TrainEvent::Warning {
                                    message: format!(
                                        "the cosine schedule is off for the rest of the run: lr stays {} until changed",
                                        fmt_lr(lr)
                                    ),
                                });
                            }
                        }
                        if c.checkpoint_now {
                            c.checkpoint_now = false;
                            let path = job.run.path.join(format!("manual-epoch{epoch}-batch{b}.safetensors"));
                            // A failed save answers the command as a refusal, so `ctl checkpoint` fails too.
                            if let Err(e) = save(checkpointed(&vs, &ema), &path, job, epoch, None, "user", out) {
                                out.emit(TrainEvent::CommandRejected {
                                    command: TrainCommand::CheckpointNow.describe(),
                                    reason: format!("{e}; training goes on"),
                                });
                            }
                        }
                    }
                    None if c.paused && c.stop.is_none() => continue,
                    None => break,
                }
            }
            if let Some((when, cause)) = c.stop.clone()
                && when != StopWhen::AfterEpoch
            {
                p.batch = b;
                p.rng = rng_before[b - start].clone();
                p.partial.wall_seconds = te.elapsed().as_secs_f64();
                if b == 0
                    && let Some((order, rng)) = unshuffled.clone()
                {
                    (p.order, p.rng) = (order, rng);
                }
                stop_reason = match when {
                    StopWhen::HandOver => format!("handed over to a background process during epoch {epoch}"),
                    _ if cause == "user" => format!("stopped by user during epoch {epoch}"),
                    _ => format!("stopped: {cause} during epoch {epoch}"),
                };
                stopped_by = Some(cause);
                final_stop = Some(when);
                break 'epochs;
            }
            if cfg.schedule == Schedule::Cosine && !p.lr_pinned {
                let warmup = (cfg.warmup_epochs * batches as f64).round() as usize;
                p.lr = cosine_lr(cfg.lr, cfg.min_lr, (epoch - 1) * batches + b, warmup, cfg.epochs * batches);
                opt.set_lr(p.lr);
            }
            let tb = Instant::now();
            tch::manual_seed(batch_seed(cfg.seed, epoch, b));
            let next = built.next().ok_or(TrainError::BatchWorker)?;
            let (x, y) = batch::from_built(&next, set.size, job.device)?;
            let buffers_before: Vec<tch::Tensor> = buffers.iter().map(|t| t.copy()).collect();
            let (logits, loss) = amp::autocast(cfg.amp, job.device, || -> Result<(Tensor, Tensor), TchError> {
                let logits = net.forward_t(&x, true);
                let loss = if cfg.label_smoothing > 0.0 {
                    logits.f_cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, cfg.label_smoothing)?
                } else {
                    logits.cross_entropy_for_logits(&y)
                };
                Ok((logits, loss))
            })
            .map_err(TrainError::Amp)??;
            opt.zero_grad();
            amp::backward(&loss, p.loss_scale.as_ref())?;
            // One read-back per batch, after backward is queued: the loss, the hits and (with a loss
            // scale) whether the gradients overflowed. The optimiser steps only after the loss is
            // known to be finite.
            let hits = logits.f_argmax(-1, false)?.f_eq_tensor(&y)?.f_sum(Kind::Float)?;
            let (read, overflowed) = amp::read_back(&[loss, hits], &opt, p.loss_scale.as_ref())?;
            let (l, hits) = (read[0], read[1].round() as usize);
            if !l.is_finite() {
                // Before the optimiser step: the weights are still those from before this batch; the
                // running statistics are put back too.
                tch::no_grad(|| {
                    for (mut t, before) in buffers.iter().map(|t| t.shallow_clone()).zip(&buffers_before) {
                        let _ = t.f_copy_(before);
                    }
                });
                opt.zero_grad();
                failure = Some(TrainError::NonFiniteLoss { value: l, epoch, batch: b + 1, lr: fmt_lr(p.lr) });
                p.batch = b;
                p.rng = rng_before[b - start].clone();
                p.partial.wall_seconds = te.elapsed().as_secs_f64();
                final_stop = Some(StopWhen::Now);
                break 'epochs;
            }
            // Scaled gradients that overflowed (fp16): the step is skipped and the scale lowered.
            if amp::step(&mut opt, p.loss_scale.as_mut(), overflowed)?
                && let Some(e) = &mut ema
            {
                e.update(opt.step)?;
            }
            p.partial.compute_seconds += tb.elapsed().as_secs_f64();
            p.partial.loss_sum += l * idx.len() as f64;
            p.partial.correct += hits;
            p.partial.seen += idx.len();
            out.emit(TrainEvent::BatchEnd {
                epoch,
                batch: b + 1,
                batches,
                loss: l,
                acc: hits as f64 / idx.len() as f64,
                img_per_s: p.partial.seen as f64 / p.partial.compute_seconds.max(1e-9),
                lr: p.lr,
            });
            if let Some(c) = load_watch.as_mut().and_then(|w| w.tick()) {
                tch::set_num_threads(c.to as i32);
                out.emit(TrainEvent::ThreadsChanged { from: c.from, to: c.to, busy_elsewhere: c.elsewhere });
            }
        }
        p.epoch = epoch;
        p.batch = 0;
        let seen = p.partial.seen.max(1) as f64;
        let folded = eval_net.folded();
        let val = evaluate(folded.as_ref().unwrap_or(eval_net), set, &job.split.val, cfg.batch_size * 2, job.device)?;
        let metrics = EpochMetrics {
            epoch,
            epochs: cfg.epochs,
            train_loss: p.partial.loss_sum / seen,
            train_acc: p.partial.correct as f64 / seen,
            val_loss: val.loss,
            val_acc: val.accuracy(),
            lr: p.lr,
            img_per_s: p.partial.seen as f64 / p.partial.compute_seconds.max(1e-9),
            epoch_seconds: te.elapsed().as_secs_f64(),
            elapsed_seconds: elapsed(&p),
            confusion: val.confusion.clone(),
        };
        let val_acc = metrics.val_acc;
        out.emit(TrainEvent::EpochEnd { metrics });
        out.emit(TrainEvent::Predictions { split: "val".into(), epoch, items: val.predictions });
        if p.best.improved(val_acc, epoch)
            && let Err(e) = save(checkpointed(&vs, &ema), &job.run.best(), job, epoch, Some(val_acc), "best val_acc", out)
        {
            out.emit(TrainEvent::Warning { message: format!("{e}; training goes on, the previous best checkpoint is intact") });
        }
        if cfg.schedule == Schedule::Plateau
            && let Some(new_lr) = p.plateau.step(val_acc, p.lr)
        {
            opt.set_lr(new_lr);
            out.emit(TrainEvent::LrChanged { epoch, from: p.lr, to: new_lr, reason: "plateau".into() });
            p.lr = new_lr;
        }
        let early_stop = p.early.step(val_acc);
        if let Err(e) = save_state(&p, c.paused, &vs, &opt, ema.as_ref()) {
            out.emit(TrainEvent::Warning { message: format!("cannot save the resume state: {e}; training goes on") });
        }
        if early_stop {
            stop_reason = format!("early stopping: val_acc did not improve for {} epochs", p.early.patience);
            break;
        }
        if let Some((_, cause)) = &c.stop {
            stop_reason = if cause == "user" {
                format!("stopped by user after epoch {epoch}")
            } else {
                format!("stopped: {cause} after epoch {epoch}")
            };
            stopped_by = Some(cause.clone());
            break;
        }
    }
    if final_stop.is_some()
        && let Err(e) = save_state(&p, c.paused, &vs, &opt, ema.as_ref())
    {
        out.emit(TrainEvent::Warning { message: format!("cannot save the resume state: {e}") });
    }
    let mut finishing = Finishing::default();
    poll_finishing(commands, out, p.epoch, &mut finishing, &stopped_by);
    // The test report with the run's full thread count, as `eval` scores it.
    if let Some(w) = load_watch.as_ref()
        && w.current() != w.max()
    {
        tch::set_num_threads(w.max() as i32);
    }
    // The final save: the only write whose failure fails the run.
    let mut final_error = None;
    if final_stop != Some(StopWhen::HandOver)
        && let Err(e) = save(checkpointed(&vs, &ema), &job.run.last(), job, p.epoch, None, "last", out)
    {
        out.emit(TrainEvent::Warning { message: e.to_string() });
        final_error = Some(e);
    }

    // Test with the best weights, as the article evaluates its best checkpoint (a stop before the
    // first epoch ended has none: then the current weights, and the report says so).
    let mut test_acc = None;
    let best = p.best.best.filter(|_| job.run.best().is_file());
    let report_weights = match best {
        Some((a, e)) => Some(format!("best checkpoint (epoch {e}, val_acc {a:.4})")),
        None if failure.is_none() => Some("current weights: no epoch finished, so there is no best checkpoint".to_string()),
        None => None,
    };
    poll_finishing(commands, out, p.epoch, &mut finishing, &stopped_by);
    if let Some(weights) = report_weights
        && !matches!(final_stop, Some(StopWhen::Abort | StopWhen::HandOver))
        && !finishing.skip_rest
    {
        out.emit(TrainEvent::State { state: RunState::Evaluating });
        if best.is_some() {
            crate::model::weights::load_checkpoint(ema.as_mut().map_or(&mut vs, |e| &mut e.store), &job.run.best())?;
        }
        let folded = eval_net.folded();
        let inference_net = folded.as_ref().unwrap_or(eval_net);
        // Temperature scaling, fitted on the validation split of the weights the test report scores.
        if !job.split.val.is_empty() {
            let val = evaluate(inference_net, set, &job.split.val, cfg.batch_size * 2, job.device)?;
            let probs: Vec<Vec<f32>> = val.predictions.iter().map(|p| p.probs.clone()).collect();
            let truth: Vec<usize> = val.predictions.iter().map(|p| p.truth).collect();
            let checkpoint = if best.is_some() { "best.safetensors" } else { "current weights" };
            let c = crate::calibration::Calibration::fit(&probs, &truth, checkpoint, "val");
            let path = job.run.path.join("calibration.json");
            match c.write(&path) {
                Ok(()) => out.emit(TrainEvent::Calibrated {
                    temperature: c.temperature,
                    images: c.images,
                    ece_before: c.ece_before,
                    ece_after: c.ece_after,
                }),
                Err(e) => out.emit(TrainEvent::Warning { message: format!("{}: cannot write: {e}", path.display()) }),
            }
        }
        poll_finishing(commands, out, p.epoch, &mut finishing, &stopped_by);
        if !job.split.test.is_empty() && !finishing.skip_rest {
            // The config's test-time augmentation, if any (validated with the config).
            let tta = (!cfg.tta.is_empty()).then(|| crate::train::tta::Tta::parse(&cfg.tta).ok()).flatten();
            let test = crate::train::evaluate::evaluate_with(inference_net, set, &job.split.test, cfg.batch_size * 2, job.device, tta)?;
            let report = test.confusion.report(&set.classes);
            test_acc = Some(report.accuracy);
            let text = format!("weights: {weights}\n\n{}\n{}", report.to_text(4), report.confusion_text());
            for (name, bytes) in
                [("report.txt", text.into_bytes()), ("report.json", serde_json::to_vec_pretty(&report).unwrap_or_default())]
            {
                if let Err(e) = crate::run::dir::write_atomic(&job.run.path.join(name), &bytes) {
                    out.emit(TrainEvent::Warning {
                        message: format!("{}: cannot write the report: {e}", job.run.path.join(name).display()),
                    });
                }
            }
            out.emit(TrainEvent::Predictions { split: "test".into(), epoch: p.epoch, items: test.predictions });
            out.emit(TrainEvent::TestReport { report, weights });
        }
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if let Some(e) = final_error {
        return Err(TrainError::FinalSave(Box::new(e)));
    }
    poll_finishing(commands, out, p.epoch, &mut finishing, &stopped_by);
    if let Some(cause) = finishing.cause.take() {
        stop_reason = format!("{stop_reason}; {cause} during the final evaluation");
        stopped_by = Some(cause);
    }
    // The figures and report.md, from what the log now holds (an aborted or handed-over run has no
    // report yet: `tumorscope report RUN` or the session that finishes it writes one).
    let (best_val_acc, best_epoch) = p.best.best.unwrap_or((0.0, 0));
    let outcome =
        crate::run::state::Outcome { reason: stop_reason, best_val_acc, best_epoch, test_acc, elapsed_seconds: elapsed(&p), stopped_by };
    if !matches!(final_stop, Some(StopWhen::Abort | StopWhen::HandOver)) && !finishing.skip_rest {
        // Grad-CAM for the misclassification figure, from the checkpoint the test report scored.
        let checkpoint = crate::explain::Checkpoint::open(&job.run.path).ok();
        let cam = |p: &std::path::Path| {
            let req = crate::run::explain::ExplainRequest { path: p.to_path_buf(), cam_class: None };
            checkpoint.as_ref().and_then(|c| c.explain(&req).ok()).map(|e| e.cam)
        };
        match crate::report::write_with(&job.run, Some(outcome.clone()), Some(&cam)) {
            Ok(w) => out.emit(TrainEvent::ReportWritten { path: w.markdown.display().to_string(), figures: w.figures }),
            Err(e) => out.emit(TrainEvent::Warning { message: format!("cannot write the report: {e}") }),
        }
    }
    let crate::run::state::Outcome { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds, stopped_by } = outcome;
    out.emit(TrainEvent::State { state: RunState::Finished });
    out.emit(TrainEvent::Finished { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds, stopped_by });
    Ok(())
}

/// The weights checkpoints hold: the moving average when there is one, else the trained weights.
fn checkpointed<'a>(vs: &'a nn::VarStore, ema: &'a Option<Ema>) -> &'a nn::VarStore {
    ema.as_ref().map_or(vs, |e| &e.store)
}

/// A checkpoint whose header says what it is: model, classes, config and epoch.
fn save(
    vs: &nn::VarStore,
    path: &std::path::Path,
    job: &TrainJob,
    epoch: usize,
    val_acc: Option<f64>,
    reason: &str,
    out: &mut Emitter,
) -> Result<(), TrainError> {
    let meta = HashMap::from([
        ("format".to_string(), "tumorscope-checkpoint".to_string()),
        ("model".to_string(), job.config.model.name().to_string()),
        ("classes".to_string(), serde_json::to_string(&job.data.classes).unwrap_or_default()),
        ("config".to_string(), serde_json::to_string(&job.config).unwrap_or_default()),
        ("epoch".to_string(), epoch.to_string()),
        ("data_fingerprint".to_string(), job.data_fingerprint.clone()),
    ]);
    crate::model::weights::save(vs, path, &meta).map_err(|source| TrainError::Checkpoint { path: path.display().to_string(), source })?;
    out.emit(TrainEvent::Checkpointed { epoch, path: path.display().to_string(), val_acc, reason: reason.to_string() });
    Ok(())
}
