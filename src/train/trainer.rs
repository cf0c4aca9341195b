//! The training loop as a `Trainer` made of named phases: `new` sets everything up (device, network,
//! optimiser, resume state, EMA, loss scale, thread watch) and announces the run; each epoch is
//! `start_epoch`, then for every batch `between_batches` (commands, pause, stops) and `step` (with the
//! non-finite guard and BatchNorm rollback), then `end_epoch` (validation, best checkpoint, schedule,
//! early stopping, resume state); `finish` saves, calibrates, tests and reports. `run` is the loop
//! that calls them. The exact state is saved at every epoch end and at every stop, so a run can be
//! resumed (or handed over to a background process) as if it had never stopped.

use super::adam::Adam;
use super::amp::{self, LossScale};
use super::callbacks::{BestTracker, EarlyStopping, ReduceLrOnPlateau, cosine_lr};
use super::control::{Control, Finishing, apply, poll_finishing};
use super::ema::Ema;
use super::evaluate::evaluate;
use super::job::{TrainError, TrainJob};
use super::resume::{self, PartialEpoch, ResumeState};
use super::threads::LoadWatch;
use crate::config::{Amp, Schedule, TrainConfig};
use crate::data::augment::AugmentParams;
use crate::data::pipeline::{self, Batches};
use crate::data::{ImageSet, batch};
use crate::model;
use crate::rng::Rng;
use crate::run::dir::hostname;
use crate::run::emitter::Emitter;
use crate::run::events::StopCause;
use crate::run::events::{
    CheckpointReason, EpochMetrics, LrReason, ResumePoint, RunInfo, RunState, SplitName, StopWhen, TrainCommand, TrainEvent,
};
use crate::run::format::fmt_lr;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tch::nn;
use tch::{Kind, TchError, Tensor};

/// Train `job` to its end (or its stop), emitting every event through `out` and obeying `commands`.
pub(super) fn run(job: &TrainJob, out: &mut Emitter, commands: &Receiver<TrainCommand>) -> Result<(), TrainError> {
    let mut t = Trainer::new(job, out, commands)?;
    while t.p.epoch < job.config.epochs {
        let mut epoch = t.start_epoch();
        if t.train_epoch(&mut epoch)?.is_break() || t.end_epoch(&epoch)?.is_break() {
            break;
        }
    }
    t.finish()
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

impl Progress {
    /// A run's start.
    fn fresh(job: &TrainJob) -> Self {
        let cfg = &job.config;
        Progress {
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
        }
    }

    /// Where a saved state left off.
    fn resumed(st: &ResumeState) -> Self {
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
}

/// How a run ends: why, by whom, and how it stopped (if it did before its last epoch).
struct Ending {
    reason: String,
    stopped_by: Option<StopCause>,
    stop: Option<StopWhen>,
    failure: Option<TrainError>,
}

/// One epoch in progress: its order, the draws made for it, and the batches being built.
struct Epoch {
    number: usize,
    /// When the epoch started, less the time it ran before a resume.
    started: Instant,
    order: Vec<usize>,
    /// The first batch this session trains (0, or where a resumed run stopped).
    start: usize,
    /// The generator before each batch's draws: a stop at batch b saves the one from before b.
    rng_before: Vec<Rng>,
    /// The order and generator from before the epoch's shuffle (an epoch that starts at batch 0).
    unshuffled: Option<(Vec<usize>, Rng)>,
    built: Batches,
}

/// A training run's state, from set-up to the report.
struct Trainer<'a> {
    job: &'a TrainJob,
    cfg: &'a TrainConfig,
    set: &'a ImageSet,
    out: &'a mut Emitter,
    commands: &'a Receiver<TrainCommand>,
    vs: nn::VarStore,
    net: model::Net,
    opt: Adam,
    /// BatchNorm's running statistics: copied before each batch, put back if its loss is not finite.
    buffers: Vec<Tensor>,
    /// The moving average of the weights and the network it lives in (validation scores it).
    ema: Option<Ema>,
    ema_net: Option<model::Net>,
    p: Progress,
    c: Control,
    aug: Option<AugmentParams>,
    load_watch: Option<LoadWatch>,
    t0: Instant,
    batches: usize,
    end: Ending,
}

impl<'a> Trainer<'a> {
    /// Set up the device, the network (pretrained or resumed), the optimiser, the moving average and the
    /// loss scale, then announce the run (`Started`, and its state).
    fn new(job: &'a TrainJob, out: &'a mut Emitter, commands: &'a Receiver<TrainCommand>) -> Result<Self, TrainError> {
        let cfg = &job.config;
        let set = &*job.data;
        let t0 = Instant::now();
        tch::manual_seed(cfg.seed as i64);
        if cfg.threads > 0 {
            tch::set_num_threads(cfg.threads as i32);
        }
        let (mut vs, net) = build_network(job)?;
        if job.device.is_cuda() {
            // Fixed shapes: let cuDNN time its algorithms once and keep the fastest.
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let mut opt = Adam::new(&vs, cfg.lr, cfg.weight_decay)?;
        // BatchNorm's running statistics change in the forward pass, before the loss can be checked: a
        // copy taken before each batch puts them back if the loss is not finite (they are small).
        let buffers: Vec<Tensor> = vs.variables().into_values().filter(|t| !t.requires_grad()).collect();
        let mut resume_tensors = None;
        let mut p = match &job.resume {
            None => Progress::fresh(job),
            Some(st) => {
                resume_tensors = Some(resume::load_tensors(&job.run, st, &mut vs, &mut opt)?);
                opt.set_lr(st.lr);
                Progress::resumed(st)
            }
        };
        // fp16 needs a loss scale (a resumed run keeps its own); nothing else does.
        let fp16 = cfg.amp == Amp::Fp16 && job.device.is_cuda();
        p.loss_scale = if fp16 { p.loss_scale.take().or_else(|| Some(LossScale::new())) } else { None };
        let (ema, ema_net) = build_ema(job, &vs, resume_tensors.as_ref())?;
        drop(resume_tensors);
        let paused = job.resume.as_ref().is_some_and(|st| st.paused);
        // Automatic thread counts on a CPU follow the machine's load (see `threads`).
        let load_watch = super::threads::wanted(cfg.threads, job.device.is_cuda(), |k| std::env::var(k).ok()).then(|| {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            LoadWatch::new(tch::get_num_threads().max(1) as usize, cores)
        });
        let mut t = Trainer {
            job,
            cfg,
            set,
            out,
            commands,
            vs,
            net,
            opt,
            buffers,
            ema,
            ema_net,
            p,
            c: Control { stop: None, paused, checkpoint_now: false, lr_changed_by_user: None },
            aug: cfg.augment.then(AugmentParams::default),
            load_watch,
            t0,
            batches: job.split.train.len().div_ceil(cfg.batch_size),
            end: Ending { reason: format!("completed {} epochs", cfg.epochs), stopped_by: None, stop: None, failure: None },
        };
        t.announce();
        Ok(t)
    }

    /// `Started` with everything a screen shows of the run, a warning for mixed precision on a CPU, and
    /// the first state.
    fn announce(&mut self) {
        let (job, cfg, set) = (self.job, self.cfg, self.set);
        let samples = (0..set.classes.len())
            .map(|c| job.split.train.iter().find(|&&i| set.labels[i] == c).map(|&i| set.paths[i].display().to_string()))
            .collect();
        self.out.emit(TrainEvent::Started {
            info: Box::new(RunInfo {
                run_dir: job.run.path.display().to_string(),
                data_root: job.data_root.clone(),
                synthetic: set.synthetic,
                model: cfg.model.name().to_string() + if pretrained(cfg) { " (ImageNet)" } else { "" },
                device: crate::device::describe(job.device)
                    + &if amp::active(cfg.amp, job.device) { format!(", amp {}", cfg.amp.name()) } else { String::new() },
                classes: set.classes.clone(),
                train_counts: counts(set, &job.split.train),
                val_counts: counts(set, &job.split.val),
                test_counts: counts(set, &job.split.test),
                batches_per_epoch: self.batches,
                config: cfg.clone(),
                samples,
                pid: std::process::id(),
                host: hostname(),
                resumed: job.resume.as_ref().map(|st| ResumePoint {
                    epoch: st.epoch,
                    batch: st.batch,
                    elapsed_seconds: st.elapsed_seconds,
                }),
            }),
        });
        if cfg.amp != Amp::Off && !job.device.is_cuda() {
            self.out.emit(TrainEvent::Warning {
                message: format!(
                    "--amp {} applies on CUDA only: this run trains in f32 on {}",
                    cfg.amp.name(),
                    crate::device::describe(job.device)
                ),
            });
        }
        let state = if self.c.paused { RunState::Paused } else { RunState::Training };
        self.out.emit(TrainEvent::State { state });
    }

    /// The network validation and the reports score: the moving average when there is one.
    fn eval_net(&self) -> &model::Net {
        self.ema_net.as_ref().unwrap_or(&self.net)
    }

    fn elapsed(&self) -> f64 {
        self.p.elapsed_before + self.t0.elapsed().as_secs_f64()
    }

    /// Announce the epoch, shuffle its order (unless it resumes mid-way) and plan every draw of it.
    fn start_epoch(&mut self) -> Epoch {
        let number = self.p.epoch + 1;
        self.out.emit(TrainEvent::EpochStart { epoch: number, epochs: self.cfg.epochs });
        // The epoch's order and generator from before its shuffle: a stop before its first batch (a
        // command that came during the last validation, or while paused there) saves these, so the
        // resumed run shuffles exactly as an uninterrupted one.
        let unshuffled = (self.p.batch == 0).then(|| (self.p.order.clone(), self.p.rng.clone()));
        if self.p.batch == 0 {
            self.p.rng.shuffle(&mut self.p.order);
            self.p.partial = PartialEpoch::default();
        }
        let started = Instant::now() - Duration::from_secs_f64(self.p.partial.wall_seconds);
        let order = self.p.order.clone();
        // Every draw of the epoch is made now, in batch order (the generator ends where a batch-by-batch
        // loop would); a stop at batch b saves the state from before b's draws. A worker thread builds
        // the batches two ahead of the step.
        let start = self.p.batch;
        let planned = pipeline::plan_epoch(&order, self.cfg.batch_size, start, self.aug.as_ref(), &mut self.p.rng);
        let rng_before: Vec<Rng> = planned.iter().map(|x| x.rng_before.clone()).collect();
        // On a GPU the step is quicker than one thread can build a batch: the batches are shared out
        // over the cores, three ahead.
        let gpu = self.job.device.is_cuda();
        let plans = planned.into_iter().map(|x| x.plan).collect();
        let built = Batches::prefetched(self.job.data.clone(), plans, if gpu { 3 } else { 2 }, gpu);
        Epoch { number, started, order, start, rng_before, unshuffled, built }
    }

    /// Every batch of the epoch from where it starts: commands before each, then the step. Breaks when
    /// a stop or a non-finite loss ends the run mid-epoch.
    fn train_epoch(&mut self, e: &mut Epoch) -> Result<ControlFlow<()>, TrainError> {
        let order = std::mem::take(&mut e.order);
        for (b, idx) in batch::chunks(&order, self.cfg.batch_size).enumerate().skip(self.p.batch) {
            if self.between_batches(e, b).is_break() || self.step(e, b, idx.len())?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Commands before batch `b`; blocks while paused (a stop request ends the wait). Breaks on a stop
    /// that does not wait for the epoch's end, with the state from before `b` kept for resuming.
    fn between_batches(&mut self, e: &Epoch, b: usize) -> ControlFlow<()> {
        while let Some(cmd) = self.next_command() {
            self.handle(cmd, e.number, b);
        }
        let Some((when, cause)) = self.c.stop.clone().filter(|(w, _)| *w != StopWhen::AfterEpoch) else {
            return ControlFlow::Continue(());
        };
        self.keep_place(e, b);
        if b == 0
            && let Some((order, rng)) = e.unshuffled.clone()
        {
            (self.p.order, self.p.rng) = (order, rng);
        }
        self.end.reason = match when {
            StopWhen::HandOver => format!("handed over to a background process during epoch {}", e.number),
            _ if cause == StopCause::User => format!("stopped by user during epoch {}", e.number),
            _ => format!("stopped: {cause} during epoch {}", e.number),
        };
        self.end.stopped_by = Some(cause);
        self.end.stop = Some(when);
        ControlFlow::Break(())
    }

    /// The next command to act on before a batch: waits while paused, else takes what is there.
    fn next_command(&mut self) -> Option<TrainCommand> {
        loop {
            if !(self.c.paused && self.c.stop.is_none()) {
                return self.commands.try_recv().ok();
            }
            match self.commands.recv_timeout(Duration::from_millis(200)) {
                Ok(cmd) => return Some(cmd),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => self.c.paused = false,
            }
        }
    }

    /// Apply one command at once (also while paused, so the answer comes right away).
    fn handle(&mut self, cmd: TrainCommand, epoch: usize, b: usize) {
        apply(cmd, &mut self.c, self.p.lr, &mut self.p.early, self.out, epoch);
        if let Some(lr) = self.c.lr_changed_by_user.take() {
            self.opt.set_lr(lr);
            self.out.emit(TrainEvent::LrChanged { epoch, from: self.p.lr, to: lr, reason: LrReason::User });
            self.p.lr = lr;
            if self.cfg.schedule == Schedule::Cosine && !self.p.lr_pinned {
                self.p.lr_pinned = true;
                self.out.emit(TrainEvent::Warning {
                    message: format!("the cosine schedule is off for the rest of the run: lr stays {} until changed", fmt_lr(lr)),
                });
            }
        }
        if self.c.checkpoint_now {
            self.c.checkpoint_now = false;
            let path = self.job.run.path.join(format!("manual-epoch{epoch}-batch{b}.safetensors"));
            // A failed save answers the command as a refusal, so `ctl checkpoint` fails too.
            if let Err(e) = save(checkpointed(&self.vs, &self.ema), &path, self.job, epoch, None, CheckpointReason::User, self.out) {
                self.out.emit(TrainEvent::CommandRejected {
                    command: TrainCommand::CheckpointNow.describe(),
                    reason: format!("{e}; training goes on"),
                });
            }
        }
    }

    /// Keep the place before batch `b` (for the resume state): the batch, its generator, the time.
    fn keep_place(&mut self, e: &Epoch, b: usize) {
        self.p.batch = b;
        self.p.rng = e.rng_before[b - e.start].clone();
        self.p.partial.wall_seconds = e.started.elapsed().as_secs_f64();
    }

    /// One optimiser step on batch `b` of `n` images. A loss that is not finite stops the run before the
    /// optimiser touches the weights, with BatchNorm's statistics put back.
    fn step(&mut self, e: &mut Epoch, b: usize, n: usize) -> Result<ControlFlow<()>, TrainError> {
        let cfg = self.cfg;
        let epoch = e.number;
        if cfg.schedule == Schedule::Cosine && !self.p.lr_pinned {
            let warmup = (cfg.warmup_epochs * self.batches as f64).round() as usize;
            self.p.lr = cosine_lr(cfg.lr, cfg.min_lr, (epoch - 1) * self.batches + b, warmup, cfg.epochs * self.batches);
            self.opt.set_lr(self.p.lr);
        }
        let tb = Instant::now();
        tch::manual_seed(batch_seed(cfg.seed, epoch, b));
        let next = e.built.next().ok_or(TrainError::BatchWorker)?;
        let (x, y) = batch::from_built(&next, self.set.size, self.job.device)?;
        let buffers_before: Vec<Tensor> = self.buffers.iter().map(|t| t.copy()).collect();
        let net = &self.net;
        let (logits, loss) = amp::autocast(cfg.amp, self.job.device, || -> Result<(Tensor, Tensor), TchError> {
            let logits = net.forward_t(&x, true);
            let loss = if cfg.label_smoothing > 0.0 {
                logits.f_cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, cfg.label_smoothing)?
            } else {
                logits.cross_entropy_for_logits(&y)
            };
            Ok((logits, loss))
        })
        .map_err(TrainError::Amp)??;
        self.opt.zero_grad();
        amp::backward(&loss, self.p.loss_scale.as_ref())?;
        // One read-back per batch, after backward is queued: the loss, the hits and (with a loss
        // scale) whether the gradients overflowed. The optimiser steps only after the loss is
        // known to be finite.
        let hits = logits.f_argmax(-1, false)?.f_eq_tensor(&y)?.f_sum(Kind::Float)?;
        let (read, overflowed) = amp::read_back(&[loss, hits], &self.opt, self.p.loss_scale.as_ref())?;
        let (l, hits) = (read[0], read[1].round() as usize);
        if !l.is_finite() {
            self.roll_back(&buffers_before);
            self.end.failure = Some(TrainError::NonFiniteLoss { value: l, epoch, batch: b + 1, lr: fmt_lr(self.p.lr) });
            self.keep_place(e, b);
            self.end.stop = Some(StopWhen::Now);
            return Ok(ControlFlow::Break(()));
        }
        // Scaled gradients that overflowed (fp16): the step is skipped and the scale lowered.
        if amp::step(&mut self.opt, self.p.loss_scale.as_mut(), overflowed)?
            && let Some(ema) = &mut self.ema
        {
            ema.update(self.opt.step)?;
        }
        self.count_batch(epoch, b, n, l, hits, tb.elapsed().as_secs_f64());
        Ok(ControlFlow::Continue(()))
    }

    /// Before the optimiser step: the weights are still those from before this batch; the running
    /// statistics are put back too.
    fn roll_back(&mut self, buffers_before: &[Tensor]) {
        tch::no_grad(|| {
            for (mut t, before) in self.buffers.iter().map(|t| t.shallow_clone()).zip(buffers_before) {
                let _ = t.f_copy_(before);
            }
        });
        self.opt.zero_grad();
    }

    /// Add a finished batch to the epoch's figures, say so, and let the thread watch act.
    fn count_batch(&mut self, epoch: usize, b: usize, n: usize, loss: f64, hits: usize, seconds: f64) {
        let part = &mut self.p.partial;
        part.compute_seconds += seconds;
        part.loss_sum += loss * n as f64;
        part.correct += hits;
        part.seen += n;
        let img_per_s = part.seen as f64 / part.compute_seconds.max(1e-9);
        let acc = hits as f64 / n as f64;
        self.out.emit(TrainEvent::BatchEnd { epoch, batch: b + 1, batches: self.batches, loss, acc, img_per_s, lr: self.p.lr });
        if let Some(c) = self.load_watch.as_mut().and_then(|w| w.tick()) {
            tch::set_num_threads(c.to as i32);
            self.out.emit(TrainEvent::ThreadsChanged { from: c.from, to: c.to, busy_elsewhere: c.elsewhere });
        }
    }

    /// Validation, the best checkpoint, the plateau schedule, early stopping and the resume state. Breaks
    /// when early stopping or a stop asked for at the epoch's end ends the run.
    fn end_epoch(&mut self, e: &Epoch) -> Result<ControlFlow<()>, TrainError> {
        let epoch = e.number;
        self.p.epoch = epoch;
        self.p.batch = 0;
        let val_acc = self.validate(e)?;
        if self.p.best.improved(val_acc, epoch)
            && let Err(err) = save(
                checkpointed(&self.vs, &self.ema),
                &self.job.run.best(),
                self.job,
                epoch,
                Some(val_acc),
                CheckpointReason::BestValAcc,
                self.out,
            )
        {
            self.out.emit(TrainEvent::Warning { message: format!("{err}; training goes on, the previous best checkpoint is intact") });
        }
        if self.cfg.schedule == Schedule::Plateau
            && let Some(new_lr) = self.p.plateau.step(val_acc, self.p.lr)
        {
            self.opt.set_lr(new_lr);
            self.out.emit(TrainEvent::LrChanged { epoch, from: self.p.lr, to: new_lr, reason: LrReason::Plateau });
            self.p.lr = new_lr;
        }
        let early_stop = self.p.early.step(val_acc);
        if let Err(err) = self.save_state() {
            self.out.emit(TrainEvent::Warning { message: format!("cannot save the resume state: {err}; training goes on") });
        }
        if early_stop {
            self.end.reason = format!("early stopping: val_acc did not improve for {} epochs", self.p.early.patience);
            return Ok(ControlFlow::Break(()));
        }
        if let Some((_, cause)) = &self.c.stop {
            self.end.reason = if cause == "user" {
                format!("stopped by user after epoch {epoch}")
            } else {
                format!("stopped: {cause} after epoch {epoch}")
            };
            self.end.stopped_by = Some(cause.clone());
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Score the validation split, announce the epoch's figures and predictions; its accuracy.
    fn validate(&mut self, e: &Epoch) -> Result<f64, TrainError> {
        let seen = self.p.partial.seen.max(1) as f64;
        let folded = self.eval_net().folded();
        let net = folded.as_ref().unwrap_or(self.eval_net());
        let val = evaluate(net, self.set, &self.job.split.val, self.cfg.batch_size * 2, self.job.device)?;
        let part = &self.p.partial;
        let metrics = EpochMetrics {
            epoch: e.number,
            epochs: self.cfg.epochs,
            train_loss: part.loss_sum / seen,
            train_acc: part.correct as f64 / seen,
            val_loss: val.loss,
            val_acc: val.accuracy(),
            lr: self.p.lr,
            img_per_s: part.seen as f64 / part.compute_seconds.max(1e-9),
            epoch_seconds: e.started.elapsed().as_secs_f64(),
            elapsed_seconds: self.elapsed(),
            confusion: val.confusion.clone(),
        };
        let val_acc = metrics.val_acc;
        self.out.emit(TrainEvent::EpochEnd { metrics });
        self.out.emit(TrainEvent::Predictions { split: SplitName::Val, epoch: e.number, items: val.predictions });
        Ok(val_acc)
    }

    /// The exact state to resume from (weights, optimiser, schedule, place in the data).
    fn save_state(&self) -> Result<(), TrainError> {
        let (p, cfg) = (&self.p, self.cfg);
        let st = ResumeState {
            format: resume::FORMAT,
            model: cfg.model.name().to_string(),
            classes: self.set.classes.clone(),
            config: cfg.clone(),
            data_fingerprint: self.job.data_fingerprint.clone(),
            epoch: p.epoch,
            batch: p.batch,
            order: p.order.clone(),
            rng: p.rng.clone(),
            partial: p.partial.clone(),
            lr: p.lr,
            adam_step: self.opt.step,
            plateau: p.plateau.clone(),
            early: p.early.clone(),
            best: p.best.clone(),
            paused: self.c.paused,
            elapsed_seconds: self.elapsed(),
            lr_pinned: p.lr_pinned,
            loss_scale: p.loss_scale.clone(),
        };
        Ok(resume::save(&self.job.run, &st, &self.vs, &self.opt, self.ema.as_ref())?)
    }

    /// The run is over: save where a stop left it, save `last`, score the test split with the best
    /// weights (after calibrating on validation), write the report and say how it ended. Signals and
    /// commands are read between these phases.
    fn finish(mut self) -> Result<(), TrainError> {
        if self.end.stop.is_some()
            && let Err(e) = self.save_state()
        {
            self.out.emit(TrainEvent::Warning { message: format!("cannot save the resume state: {e}") });
        }
        let mut finishing = Finishing::default();
        poll_finishing(self.commands, self.out, self.p.epoch, &mut finishing, &self.end.stopped_by);
        // The test report with the run's full thread count, as `eval` scores it.
        if let Some(w) = self.load_watch.as_ref()
            && w.current() != w.max()
        {
            tch::set_num_threads(w.max() as i32);
        }
        // The final save: the only write whose failure fails the run.
        let mut final_error = None;
        if self.end.stop != Some(StopWhen::HandOver)
            && let Err(e) = save(
                checkpointed(&self.vs, &self.ema),
                &self.job.run.last(),
                self.job,
                self.p.epoch,
                None,
                CheckpointReason::Last,
                self.out,
            )
        {
            self.out.emit(TrainEvent::Warning { message: e.to_string() });
            final_error = Some(e);
        }
        let test_acc = self.test(&mut finishing)?;
        if let Some(f) = self.end.failure.take() {
            return Err(f);
        }
        if let Some(e) = final_error {
            return Err(TrainError::FinalSave(Box::new(e)));
        }
        poll_finishing(self.commands, self.out, self.p.epoch, &mut finishing, &self.end.stopped_by);
        if let Some(cause) = finishing.cause.take() {
            self.end.reason = format!("{}; {cause} during the final evaluation", self.end.reason);
            self.end.stopped_by = Some(cause);
        }
        self.report(test_acc, finishing.skip_rest);
        Ok(())
    }

    /// Test with the best weights, as the article evaluates its best checkpoint (a stop before the first
    /// epoch ended has none: then the current weights, and the report says so); the temperature is
    /// fitted on validation first. None when there is nothing to test or the run was not to be reported.
    fn test(&mut self, finishing: &mut Finishing) -> Result<Option<f64>, TrainError> {
        let best = self.p.best.best.filter(|_| self.job.run.best().is_file());
        let report_weights = match best {
            Some((a, e)) => Some(format!("best checkpoint (epoch {e}, val_acc {a:.4})")),
            None if self.end.failure.is_none() => Some("current weights: no epoch finished, so there is no best checkpoint".to_string()),
            None => None,
        };
        poll_finishing(self.commands, self.out, self.p.epoch, finishing, &self.end.stopped_by);
        let Some(weights) = report_weights else { return Ok(None) };
        if matches!(self.end.stop, Some(StopWhen::Abort | StopWhen::HandOver)) || finishing.skip_rest {
            return Ok(None);
        }
        self.out.emit(TrainEvent::State { state: RunState::Evaluating });
        if best.is_some() {
            crate::model::weights::load_checkpoint(self.ema.as_mut().map_or(&mut self.vs, |e| &mut e.store), &self.job.run.best())?;
        }
        self.calibrate(best.is_some())?;
        poll_finishing(self.commands, self.out, self.p.epoch, finishing, &self.end.stopped_by);
        if self.job.split.test.is_empty() || finishing.skip_rest {
            return Ok(None);
        }
        self.score_test(weights).map(Some)
    }

    /// Temperature scaling, fitted on the validation split of the weights the test report scores.
    fn calibrate(&mut self, from_best: bool) -> Result<(), TrainError> {
        if self.job.split.val.is_empty() {
            return Ok(());
        }
        let folded = self.eval_net().folded();
        let net = folded.as_ref().unwrap_or(self.eval_net());
        let val = evaluate(net, self.set, &self.job.split.val, self.cfg.batch_size * 2, self.job.device)?;
        let probs: Vec<Vec<f32>> = val.predictions.iter().map(|p| p.probs.clone()).collect();
        let truth: Vec<usize> = val.predictions.iter().map(|p| p.truth).collect();
        let checkpoint = if from_best { "best.safetensors" } else { "current weights" };
        let c = crate::calibration::Calibration::fit(&probs, &truth, checkpoint, "val");
        let path = self.job.run.path.join("calibration.json");
        match c.write(&path) {
            Ok(()) => self.out.emit(TrainEvent::Calibrated {
                temperature: c.temperature,
                images: c.images,
                ece_before: c.ece_before,
                ece_after: c.ece_after,
            }),
            Err(e) => self.out.emit(TrainEvent::Warning { message: format!("{}: cannot write: {e}", path.display()) }),
        }
        Ok(())
    }

    /// The test split with the config's test-time augmentation: `report.txt`, `report.json`, the test
    /// predictions and the `TestReport` event; the accuracy.
    fn score_test(&mut self, weights: String) -> Result<f64, TrainError> {
        let (job, cfg, set) = (self.job, self.cfg, self.set);
        // The config's test-time augmentation, if any (validated with the config).
        let tta = (!cfg.tta.is_empty()).then(|| crate::train::tta::Tta::parse(&cfg.tta).ok()).flatten();
        let folded = self.eval_net().folded();
        let net = folded.as_ref().unwrap_or(self.eval_net());
        let test = crate::train::evaluate::evaluate_with(net, set, &job.split.test, cfg.batch_size * 2, job.device, tta)?;
        let report = test.confusion.report(&set.classes);
        let accuracy = report.accuracy;
        let text = format!("weights: {weights}\n\n{}\n{}", report.to_text(4), report.confusion_text());
        for (name, bytes) in [("report.txt", text.into_bytes()), ("report.json", serde_json::to_vec_pretty(&report).unwrap_or_default())] {
            if let Err(e) = crate::run::dir::write_atomic(&job.run.path.join(name), &bytes) {
                self.out
                    .emit(TrainEvent::Warning { message: format!("{}: cannot write the report: {e}", job.run.path.join(name).display()) });
            }
        }
        self.out.emit(TrainEvent::Predictions { split: SplitName::Test, epoch: self.p.epoch, items: test.predictions });
        self.out.emit(TrainEvent::TestReport { report, weights });
        Ok(accuracy)
    }

    /// The figures and report.md, from what the log now holds (an aborted or handed-over run has no
    /// report yet: `tumorscope report RUN` or the session that finishes it writes one); then the end.
    fn report(self, test_acc: Option<f64>, skip: bool) {
        let (best_val_acc, best_epoch) = self.p.best.best.unwrap_or((0.0, 0));
        let elapsed_seconds = self.elapsed();
        let Ending { reason, stopped_by, stop, .. } = self.end;
        let outcome = crate::run::state::Outcome { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds, stopped_by };
        if !matches!(stop, Some(StopWhen::Abort | StopWhen::HandOver)) && !skip {
            // Grad-CAM for the misclassification figure, from the checkpoint the test report scored.
            let checkpoint = super::explain::Checkpoint::open(&self.job.run.path).ok();
            let cam = |p: &std::path::Path| {
                let req = crate::run::explain::ExplainRequest { path: p.to_path_buf(), cam_class: None };
                checkpoint.as_ref().and_then(|c| c.explain(&req).ok()).map(|e| e.cam)
            };
            match crate::report::write_with(&self.job.run, Some(outcome.clone()), Some(&cam)) {
                Ok(w) => self.out.emit(TrainEvent::ReportWritten { path: w.markdown.display().to_string(), figures: w.figures }),
                Err(e) => self.out.emit(TrainEvent::Warning { message: format!("cannot write the report: {e}") }),
            }
        }
        let crate::run::state::Outcome { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds, stopped_by } = outcome;
        self.out.emit(TrainEvent::State { state: RunState::Finished });
        self.out.emit(TrainEvent::Finished { reason, best_val_acc, best_epoch, test_acc, elapsed_seconds, stopped_by });
    }
}

/// The weights checkpoints hold: the moving average when there is one, else the trained weights.
fn checkpointed<'a>(vs: &'a nn::VarStore, ema: &'a Option<Ema>) -> &'a nn::VarStore {
    ema.as_ref().map_or(vs, |e| &e.store)
}

fn pretrained(cfg: &TrainConfig) -> bool {
    cfg.pretrained && cfg.model == crate::config::ModelKind::EfficientnetLite0
}

/// The network on the job's device: built, stages frozen, ImageNet weights for a new pretrained run,
/// channels-last weights (libtorch's fast depthwise path on a CPU, cuDNN's NHWC kernels on a GPU).
fn build_network(job: &TrainJob) -> Result<(nn::VarStore, model::Net), TrainError> {
    let cfg = &job.config;
    let mut vs = nn::VarStore::new(job.device);
    let net = model::build(&vs, cfg, job.data.classes.len());
    net.freeze_stages(cfg.freeze_stages);
    if pretrained(cfg) && job.resume.is_none() {
        crate::model::weights::load_pretrained(&mut vs, &job.weights)?;
    }
    crate::model::weights::to_channels_last(&vs)?;
    Ok((vs, net))
}

/// The moving average (if on): a second network that validation scores and checkpoints hold; a resumed
/// run takes its saved average.
fn build_ema(
    job: &TrainJob,
    vs: &nn::VarStore,
    resume_tensors: Option<&HashMap<String, Tensor>>,
) -> Result<(Option<Ema>, Option<model::Net>), TrainError> {
    let cfg = &job.config;
    if cfg.ema_decay <= 0.0 {
        return Ok((None, None));
    }
    let store = nn::VarStore::new(job.device);
    let n = model::build(&store, cfg, job.data.classes.len());
    crate::model::weights::to_channels_last(&store)?;
    let mut e = Ema::new(vs, store, cfg.ema_decay)?;
    if let Some(t) = resume_tensors {
        e.load_state(t).map_err(TrainError::Resume)?;
    }
    Ok((Some(e), Some(n)))
}

/// A checkpoint whose header says what it is: model, classes, config and epoch.
fn save(
    vs: &nn::VarStore,
    path: &std::path::Path,
    job: &TrainJob,
    epoch: usize,
    val_acc: Option<f64>,
    reason: CheckpointReason,
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
    out.emit(TrainEvent::Checkpointed { epoch, path: path.display().to_string(), val_acc, reason });
    Ok(())
}
