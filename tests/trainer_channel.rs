//! The trainer driven only through its channels: every command is obeyed, echoed as an event and
//! recorded in events.jsonl; failures arrive as a `Failed` event, not a panic.

mod common;
use tumorscope::config::{ModelKind, TrainConfig};
use tumorscope::run::{Record, RunDir, RunState, StopWhen, TrainCommand, TrainEvent};
use tumorscope::train::{self, TrainJob};

/// libtorch's random generator is one per process: trainers running side by side in this test
/// binary would draw from each other's stream. Real runs have one trainer per process.
static TORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH.lock().unwrap_or_else(|e| e.into_inner())
}

fn job(dir: &std::path::Path, cfg: TrainConfig) -> TrainJob {
    job_in(RunDir::create(dir, "test").unwrap(), cfg)
}

fn job_in(run: RunDir, cfg: TrainConfig) -> TrainJob {
    common::tiny_job(run, cfg)
}

fn small(epochs: usize) -> TrainConfig {
    TrainConfig { model: ModelKind::SmallCnn, image_size: 32, batch_size: 8, epochs, lr: 1e-3, augment: true, ..TrainConfig::article() }
}

/// Receive until `pred` matches, collecting everything seen.
fn until(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Record>, seen: &mut Vec<Record>, pred: impl Fn(&TrainEvent) -> bool) -> TrainEvent {
    loop {
        if let Some(r) = rx.blocking_recv() {
            seen.push(r.clone());
            if pred(&r.event) {
                return r.event;
            }
        } else {
            panic!("trainer ended early; last events: {:?}", &seen[seen.len().saturating_sub(3)..]);
        }
    }
}

#[test]
fn commands_are_obeyed_echoed_and_logged() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), small(50));
    let run = j.run.clone();
    let mut h = train::spawn(j).unwrap();
    let mut seen = vec![];
    // Paused first: every command below lands where the trainer waits, whatever the machine's speed.
    h.commands.send(TrainCommand::Pause).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Paused }));
    let paused_in = epoch_at(&seen);
    // While paused: LR, checkpoint and early-stopping changes still take effect at once.
    h.commands.send(TrainCommand::SetLr(0.01)).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::LrChanged { .. }));
    assert!(
        matches!(e, TrainEvent::LrChanged { from, to, ref reason, .. } if from == 1e-3 && to == 0.01 && *reason == tumorscope::run::events::LrReason::User),
        "{e:?}"
    );
    h.commands.send(TrainCommand::ScaleLr(0.5)).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::LrChanged { .. }));
    assert!(matches!(e, TrainEvent::LrChanged { to, .. } if (to - 0.005).abs() < 1e-12), "{e:?}");
    h.commands.send(TrainCommand::CheckpointNow).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Checkpointed { .. }));
    let TrainEvent::Checkpointed { path, reason, .. } = e else { unreachable!() };
    assert_eq!(reason, tumorscope::run::events::CheckpointReason::User);
    assert!(std::path::Path::new(&path).exists());
    h.commands.send(TrainCommand::SetEarlyStopping(false)).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::EarlyStopping { enabled: false, .. }));
    h.commands.send(TrainCommand::SetLr(-1.0)).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::CommandRejected { command, .. } if command == "lr -1"));
    // `+` pressed too often: the ceiling holds and says so.
    h.commands.send(TrainCommand::ScaleLr(1e4)).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::CommandRejected { .. }));
    assert!(
        matches!(e, TrainEvent::CommandRejected { ref reason, .. } if reason.contains("ceiling 1e1") && reason.contains("stays 5e-3")),
        "{e:?}"
    );
    h.commands.send(TrainCommand::Resume).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Training }));
    h.commands.send(TrainCommand::StopAfterEpoch).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    let TrainEvent::Finished { reason, .. } = e else { unreachable!() };
    assert_eq!(reason, format!("stopped by user after epoch {paused_in}"));
    assert!(
        seen.iter().any(|r| matches!(&r.event, TrainEvent::EpochEnd { metrics } if metrics.epoch == paused_in)),
        "the epoch is completed, with validation"
    );
    assert!(seen.iter().any(|r| matches!(r.event, TrainEvent::TestReport { .. })));
    h.thread.join().unwrap();
    // Everything the channel said is in the log, in order, numbered from 0.
    let logged = tumorscope::run::log::read_log(&run.events()).unwrap().records;
    assert_eq!(logged.len(), seen.len() + count_rest(&mut h.events));
    assert_eq!(&logged[..seen.len()], &seen[..]);
    assert!(logged.iter().enumerate().all(|(i, r)| r.seq == i as u64));
    assert!(run.best().exists() && run.last().exists());
    // Checkpoints describe themselves.
    let meta = tumorscope::model::weights::read_metadata(&run.best()).unwrap();
    assert_eq!(meta["model"], "small-cnn");
    assert_eq!(meta["classes"], "[\"a\",\"b\"]");
    assert!(meta["config"].contains("\"batch_size\":8"));
}

/// The epoch the trainer is in, from the last `EpochStart` seen.
fn epoch_at(seen: &[Record]) -> usize {
    seen.iter()
        .rev()
        .find_map(|r| match r.event {
            TrainEvent::EpochStart { epoch, .. } => Some(epoch),
            _ => None,
        })
        .expect("an epoch started")
}

/// Where a paused trainer waits: (epochs done, the next batch), from the events seen until `Paused`.
fn paused_at(seen: &[Record]) -> (usize, usize) {
    let epoch = epoch_at(seen);
    let done = seen.iter().rev().take_while(|r| !matches!(r.event, TrainEvent::EpochStart { .. })).find_map(|r| match r.event {
        TrainEvent::BatchEnd { batch, .. } => Some(batch),
        _ => None,
    });
    (epoch - 1, done.unwrap_or(0))
}

fn count_rest(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Record>) -> usize {
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn stop_now_saves_current_weights_mid_epoch() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), small(50));
    let run = j.run.clone();
    let mut h = train::spawn(j).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { batch: 2, .. }));
    h.commands.send(TrainCommand::StopNow).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    let TrainEvent::Finished { reason, .. } = e else { unreachable!() };
    assert!(reason.starts_with("stopped by user during epoch"), "{reason}");
    assert!(run.last().exists(), "current weights saved");
    let weights = seen.iter().find_map(|r| match &r.event {
        TrainEvent::TestReport { weights, .. } => Some(weights.clone()),
        _ => None,
    });
    assert!(weights.as_deref().is_some_and(|w| w.starts_with("current weights")), "the report says which weights: {weights:?}");
    assert!(std::fs::read_to_string(run.path.join("report.txt")).unwrap().starts_with("weights: current weights"));
    h.thread.join().unwrap();
}

/// A learning rate that blows the loss up: the run fails with the epoch and batch, before the
/// optimiser step, so `last` holds the finite weights from before that batch.
#[test]
fn non_finite_loss_fails_the_run_without_touching_the_weights() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), TrainConfig { lr: 1e30, ..small(5) });
    let run = j.run.clone();
    let seen = drain(train::spawn(j).unwrap());
    let error = seen.iter().find_map(|r| match &r.event {
        TrainEvent::Failed { error } => Some(error.clone()),
        _ => None,
    });
    let error = error.expect("a Failed event");
    assert!(
        error.starts_with("loss became") && error.contains("at epoch 1, batch") && error.contains("lower the learning rate"),
        "{error}"
    );
    assert!(!seen.iter().any(|r| matches!(r.event, TrainEvent::Finished { .. })));
    for (name, t) in tch::Tensor::read_safetensors(run.last()).unwrap() {
        assert!(t.isfinite().all().int64_value(&[]) == 1, "{name} is not finite");
    }
    assert!(train::resume::read_state(&run).is_ok(), "the state before the bad batch is saved");
}

/// Checkpoint writes that fail (here: a folder stands where the file goes; root ignores read-only
/// modes, this fails for everyone): a warning each time, training goes on, no temp file stays, and
/// only the final save's failure fails the run.
#[test]
fn failing_checkpoint_writes_warn_and_training_goes_on() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::create(dir.path(), "blocked").unwrap();
    for f in [run.best(), run.last()] {
        std::fs::create_dir_all(f.join("in-the-way")).unwrap();
    }
    let seen = drain(train::spawn(job_in(run.clone(), small(3))).unwrap());
    let warnings: Vec<&String> = seen
        .iter()
        .filter_map(|r| match &r.event {
            TrainEvent::Warning { message } => Some(message),
            _ => None,
        })
        .collect();
    assert!(warnings.iter().any(|w| w.contains("best.safetensors") && w.contains("training goes on")), "{warnings:?}");
    assert_eq!(epochs(&seen).len(), 3, "all epochs ran");
    let failed = seen.iter().find_map(|r| match &r.event {
        TrainEvent::Failed { error } => Some(error.clone()),
        _ => None,
    });
    assert!(failed.as_deref().is_some_and(|e| e.contains("final checkpoint could not be saved")), "{failed:?}");
    let temps: Vec<_> =
        std::fs::read_dir(&run.path).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp")).collect();
    assert!(temps.is_empty(), "{temps:?}");
    assert!(seen.iter().any(|r| matches!(r.event, TrainEvent::TestReport { .. })), "the report is still written");
}

/// Collect a whole run's records.
fn drain(mut h: train::TrainerHandle) -> Vec<Record> {
    let mut seen = vec![];
    while let Some(r) = h.events.blocking_recv() {
        seen.push(r);
    }
    h.thread.join().unwrap();
    seen
}

fn epochs(records: &[Record]) -> Vec<(usize, f64, f64, f64, f64, f64)> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            TrainEvent::EpochEnd { metrics: m } => Some((m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc, m.lr)),
            _ => None,
        })
        .collect()
}

fn assert_same_epochs(a: &[(usize, f64, f64, f64, f64, f64)], b: &[(usize, f64, f64, f64, f64, f64)]) {
    assert_eq!(a.len(), b.len(), "{a:?}\nvs\n{b:?}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.0, y.0);
        for (u, v) in [(x.1, y.1), (x.2, y.2), (x.3, y.3), (x.4, y.4), (x.5, y.5)] {
            assert!((u - v).abs() <= 1e-6 * u.abs().max(1.0), "epoch {}: {x:?} vs {y:?}", x.0);
        }
    }
}

/// On CPU with a fixed seed and one thread, stopping (after an epoch, or mid-epoch) and resuming ends
/// with the same per-epoch metrics as a run that never stopped.
#[test]
fn a_stopped_and_resumed_run_matches_an_uninterrupted_one() {
    let _torch = torch_lock();
    let cfg = TrainConfig { threads: 1, dropout: 0.3, ..small(4) };
    let dir = tempfile::tempdir().unwrap();
    let straight = epochs(&drain(train::spawn(job(dir.path(), cfg.clone())).unwrap()));
    assert_eq!(straight.len(), 4);
    for stop in [TrainCommand::StopAfterEpoch, TrainCommand::StopNow] {
        let run = RunDir::create(dir.path(), "stopped").unwrap();
        let mut h = train::spawn(job_in(run.clone(), cfg.clone())).unwrap();
        let mut seen = vec![];
        // Pause in epoch 2 (after its 3rd batch, or a little later on a busy machine), then stop there.
        until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { epoch: 2, batch: 3, .. }));
        h.commands.send(TrainCommand::Pause).unwrap();
        until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Paused }));
        let at = paused_at(&seen);
        h.commands.send(stop.clone()).unwrap();
        seen.extend(drain(h));
        let first = epochs(&seen);
        assert!(first.len() < 4, "{stop:?}: stopped early");
        let state = train::resume::read_state(&run).unwrap();
        // A kill -9 between the two writes of the last save leaves the previous save's JSON beside
        // the new tensors: the state inside the tensor file still continues the run exactly.
        let stale = train::resume::ResumeState { epoch: state.epoch.saturating_sub(1), batch: 0, adam_step: 1, ..state.clone() };
        std::fs::write(run.resume_state(), serde_json::to_vec(&stale).unwrap()).unwrap();
        assert_eq!(train::resume::read_state(&run).unwrap(), state, "{stop:?}: the tensor file's copy wins");
        if stop == TrainCommand::StopNow {
            assert_eq!((state.epoch, state.batch), at, "stopped where the trainer was paused");
        }
        let mut j = job_in(run.clone(), cfg.clone());
        j.resume = Some(state);
        let second = drain(train::spawn(j).unwrap());
        let TrainEvent::Started { info } = &second[0].event else { panic!("{:?}", second[0]) };
        assert!(info.resumed.is_some());
        let mut all = first.clone();
        all.extend(epochs(&second));
        assert_same_epochs(&all, &straight);
        // One log, numbered on from where the first session stopped; the fold shows 4 epochs.
        let log = tumorscope::run::log::read_log(&run.events()).unwrap().records;
        assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        let view = tumorscope::run::RunView::from_records(&log);
        assert_eq!(view.history.iter().map(|m| m.epoch).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(view.status(), "finished");
    }
}

#[test]
fn pause_then_hand_over_keeps_the_run_paused() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), small(3));
    let run = j.run.clone();
    let mut h = train::spawn(j).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { batch: 1, .. }));
    h.commands.send(TrainCommand::Pause).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Paused }));
    h.commands.send(TrainCommand::HandOver).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::StopRequested { when: StopWhen::HandOver, .. }));
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    assert!(matches!(e, TrainEvent::Finished { stopped_by: Some(ref s), test_acc: None, .. } if s == "hand-over"), "{e:?}");
    h.thread.join().unwrap();
    let state = train::resume::read_state(&run).unwrap();
    assert!(state.paused, "the next process starts paused");
    let mut j = job_in(run.clone(), small(3));
    j.resume = Some(state);
    let mut h = train::spawn(j).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Paused }));
    h.commands.send(TrainCommand::Resume).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Training }));
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { stopped_by: None, .. }));
    h.thread.join().unwrap();
}

/// A signal stops after the batch and reports; a second one skips the report.
#[test]
fn signals_stop_with_their_cause() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut h = train::spawn(job(dir.path(), small(50))).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { batch: 2, .. }));
    h.commands.send(TrainCommand::Signal("SIGTERM".into())).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    assert!(
        matches!(e, TrainEvent::Finished { stopped_by: Some(ref s), ref reason, .. } if s == "SIGTERM" && reason.starts_with("stopped: SIGTERM")),
        "{e:?}"
    );
    assert!(seen.iter().any(|r| matches!(r.event, TrainEvent::TestReport { .. })), "the report is written");
    h.thread.join().unwrap();

    let mut h = train::spawn(job(dir.path(), small(50))).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { batch: 2, .. }));
    h.commands.send(TrainCommand::Abort("SIGINT".into())).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    assert!(matches!(e, TrainEvent::Finished { test_acc: None, .. }), "{e:?}");
    assert!(!seen.iter().any(|r| matches!(r.event, TrainEvent::TestReport { .. })));
    h.thread.join().unwrap();
}

#[test]
fn missing_pretrained_weights_fail_as_an_event() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig { model: ModelKind::EfficientnetLite0, pretrained: true, image_size: 32, epochs: 1, ..TrainConfig::article() };
    let mut h = train::spawn(job(dir.path(), cfg)).unwrap();
    let mut seen = vec![];
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Failed { .. }));
    let TrainEvent::Failed { error } = e else { unreachable!() };
    assert!(error.contains("no-such-weights.safetensors") && error.contains("scripts/setup.sh"), "{error}");
    h.thread.join().unwrap();
}

fn screen(records: &[Record]) -> ratatui::buffer::Buffer {
    use tumorscope::tui::{app::App, preview::ImageCache, theme::Theme};
    let mut app = App::new(Theme::article(), ImageCache::halfblocks());
    for r in records {
        app.on_event(r);
    }
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 32)).unwrap();
    term.draw(|f| tumorscope::tui::views::draw(f, &mut app)).unwrap();
    term.backend().buffer().clone()
}

/// Live and attached screens are the same by construction: the in-process channel, a client of the
/// socket (log first, then the stream) and a replay of events.jsonl give the same records and draw
/// the same screen.
#[test]
fn live_attached_and_replayed_screens_are_identical() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), small(2));
    j.serve_socket = true;
    let run = j.run.clone();
    let h = train::spawn(j).unwrap();
    let stream = tumorscope::run::socket::connect(&run).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tumorscope::tui::attach_stream(run.events(), stream, tx);
    let live = drain(h);
    let mut attached = vec![];
    while let Some(r) = rx.blocking_recv() {
        attached.push(r);
    }
    let replay = tumorscope::run::log::read_log(&run.events()).unwrap().records;
    assert!(live.iter().any(|r| matches!(r.event, TrainEvent::Finished { .. })));
    assert_eq!(live, replay);
    assert_eq!(attached, replay);
    let screen_live = screen(&live);
    assert_eq!(screen_live, screen(&attached));
    assert_eq!(screen_live, screen(&replay));
    let text: String = screen_live.content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("FINISHED") && text.contains("epoch 2/2"), "{text}");
}

/// The cosine schedule sets each batch's rate from its place in the run (warm-up, then decay to
/// min_lr); a cosine run with label smoothing that is stopped mid-epoch and resumed ends as an
/// uninterrupted one; a rate set by hand stays for the rest of the run.
#[test]
fn cosine_schedule_follows_the_batches_resumes_exactly_and_a_user_rate_pins_it() {
    use tumorscope::config::Schedule;
    use tumorscope::train::callbacks::cosine_lr;
    let _torch = torch_lock();
    let cfg = TrainConfig { threads: 1, dropout: 0.3, schedule: Schedule::Cosine, warmup_epochs: 1.0, label_smoothing: 0.1, ..small(3) };
    let dir = tempfile::tempdir().unwrap();
    let records = drain(train::spawn(job(dir.path(), cfg.clone())).unwrap());
    let lrs: Vec<(usize, usize, usize, f64)> = records
        .iter()
        .filter_map(|r| match r.event {
            TrainEvent::BatchEnd { epoch, batch, batches, lr, .. } => Some((epoch, batch, batches, lr)),
            _ => None,
        })
        .collect();
    let per = lrs[0].2;
    assert_eq!(lrs.len(), 3 * per);
    for &(e, b, _, lr) in &lrs {
        let want = cosine_lr(cfg.lr, cfg.min_lr, (e - 1) * per + b - 1, per, 3 * per);
        assert!((lr - want).abs() <= 1e-12, "epoch {e} batch {b}: lr {lr}, want {want}");
    }
    assert!(lrs[0].3 < cfg.lr && (lrs[per - 1].3 - cfg.lr).abs() < 1e-12, "warms up over the first epoch");
    assert!((lrs.last().unwrap().3 - cfg.min_lr).abs() < 1e-12, "ends at min_lr");
    let straight = epochs(&records);

    // Stopped in the middle of epoch 2 and resumed: the same epochs.
    assert_same_epochs(&stopped_in_epoch_2_and_resumed(dir.path(), &cfg), &straight);

    // A rate set by hand during the run stays (a long run, stopped once the effect is seen).
    let mut h = train::spawn(job(dir.path(), TrainConfig { epochs: 40, ..cfg.clone() })).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { epoch: 1, batch: 2, .. }));
    h.commands.send(TrainCommand::SetLr(2e-3)).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::LrChanged { .. }));
    let epoch_after = |e: &TrainEvent| matches!(e, TrainEvent::EpochEnd { .. });
    until(&mut h.events, &mut seen, epoch_after);
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { batch: 3, .. }));
    h.commands.send(TrainCommand::StopNow).unwrap();
    seen.extend(drain(h));
    let after: Vec<f64> = seen
        .iter()
        .skip_while(|r| !matches!(r.event, TrainEvent::LrChanged { .. }))
        .filter_map(|r| match r.event {
            TrainEvent::BatchEnd { lr, .. } => Some(lr),
            _ => None,
        })
        .collect();
    assert!(!after.is_empty() && after.iter().all(|&lr| lr == 2e-3), "{after:?}");
    assert!(seen.iter().any(|r| matches!(&r.event, TrainEvent::Warning { message } if message.contains("cosine schedule is off"))));
}

/// With `ema_decay`, training is the same batch for batch (same train loss and accuracy as without),
/// validation scores the moving average (other val figures), the best checkpoint holds the average,
/// and a run stopped mid-epoch and resumed ends as an uninterrupted one.
#[test]
fn the_moving_average_is_what_validation_scores_and_it_resumes_exactly() {
    let _torch = torch_lock();
    let plain = TrainConfig { threads: 1, dropout: 0.3, ..small(3) };
    let cfg = TrainConfig { ema_decay: 0.9, ..plain.clone() };
    let dir = tempfile::tempdir().unwrap();
    let without = epochs(&drain(train::spawn(job(dir.path(), plain)).unwrap()));
    let j = job(dir.path(), cfg.clone());
    let run = j.run.clone();
    let straight = epochs(&drain(train::spawn(j).unwrap()));
    for (a, b) in without.iter().zip(&straight) {
        assert!((a.1 - b.1).abs() <= 1e-6 && a.2 == b.2, "training itself changed: {a:?} vs {b:?}");
    }
    assert!(without.iter().zip(&straight).any(|(a, b)| a.3 != b.3), "validation did not score the average: {straight:?}");
    // Checkpoints hold the average: the last one equals the average the resume state keeps, not the
    // raw weights beside it.
    let (last, resume) = (common::read_tensors(&run.last()), common::read_tensors(&run.resume_tensors()));
    let name = last.keys().find(|k| k.ends_with("weight")).unwrap().clone();
    assert!(resume.contains_key(&format!("ema.{name}")), "the resume state keeps the average");
    assert_eq!((&last[&name] - &resume[&format!("ema.{name}")]).abs().max().double_value(&[]), 0.0, "checkpoints hold the average");
    assert!((&last[&name] - &resume[&format!("model.{name}")]).abs().max().double_value(&[]) > 0.0);
    assert_same_epochs(&stopped_in_epoch_2_and_resumed(dir.path(), &cfg), &straight);
}

/// The epochs of a run stopped at once after the 2nd batch of epoch 2, then resumed to the end.
fn stopped_in_epoch_2_and_resumed(dir: &std::path::Path, cfg: &TrainConfig) -> Vec<(usize, f64, f64, f64, f64, f64)> {
    let run = RunDir::create(dir, "stopped").unwrap();
    let mut h = train::spawn(job_in(run.clone(), cfg.clone())).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { epoch: 2, batch: 2, .. }));
    h.commands.send(TrainCommand::StopNow).unwrap();
    seen.extend(drain(h));
    let mut j = job_in(run.clone(), cfg.clone());
    j.resume = Some(train::resume::read_state(&run).unwrap());
    let mut all = epochs(&seen);
    all.extend(epochs(&drain(train::spawn(j).unwrap())));
    all
}

/// A manual checkpoint that cannot be written answers `checkpoint` with a refusal (so `ctl checkpoint`
/// fails), and training goes on.
#[test]
fn a_failed_manual_checkpoint_answers_the_command_with_a_refusal() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), small(50));
    // Wherever the pause lands, the manual checkpoint's path is taken by a folder.
    for e in 1..=3 {
        for b in 0..=20 {
            std::fs::create_dir_all(j.run.path.join(format!("manual-epoch{e}-batch{b}.safetensors")).join("in-the-way")).unwrap();
        }
    }
    let mut h = train::spawn(j).unwrap();
    let mut seen = vec![];
    h.commands.send(TrainCommand::Pause).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Paused }));
    h.commands.send(TrainCommand::CheckpointNow).unwrap();
    let answer = until(&mut h.events, &mut seen, |e| TrainCommand::CheckpointNow.acknowledged_by(e));
    assert!(
        matches!(&answer, TrainEvent::CommandRejected { command, reason } if command == "checkpoint" && reason.contains("training goes on")),
        "{answer:?}"
    );
    h.commands.send(TrainCommand::StopNow).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    h.thread.join().unwrap();
}

/// The final weights and every epoch's figures of a run, for exact comparison.
fn weights_of(run: &RunDir) -> Vec<(String, Vec<f32>)> {
    let mut t: Vec<(String, Vec<f32>)> = common::read_tensors(&run.last())
        .into_iter()
        .map(|(k, v)| (k, Vec::<f32>::try_from(v.to_kind(tch::Kind::Float).flatten(0, -1)).unwrap()))
        .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

/// Resume `run` from its saved state (unpaused or paused, as asked) and return the new session's handle.
fn resume(run: &RunDir, cfg: &TrainConfig, paused: bool) -> train::TrainerHandle {
    let mut j = job_in(run.clone(), cfg.clone());
    let state = train::resume::read_state(run).unwrap();
    j.resume = Some(train::resume::ResumeState { paused, ..state });
    train::spawn(j).unwrap()
}

/// A stop that lands before an epoch's first batch (a command that came during validation, or while
/// paused there) resumes with the order of an uninterrupted run: the same epochs and the same weights,
/// bit for bit. It once saved the order already shuffled, and the resumed run shuffled it again.
#[test]
fn a_stop_at_an_epoch_boundary_resumes_exactly() {
    let _torch = torch_lock();
    let cfg = TrainConfig { threads: 1, dropout: 0.3, ..small(3) };
    let dir = tempfile::tempdir().unwrap();
    let straight_run = RunDir::create(dir.path(), "straight").unwrap();
    let straight = epochs(&drain(train::spawn(job_in(straight_run.clone(), cfg.clone())).unwrap()));
    let straight_weights = weights_of(&straight_run);

    // Stopped after epoch 1, resumed paused: the trainer waits before epoch 2's first batch, and a stop
    // lands exactly there. Then resumed to the end.
    let run = RunDir::create(dir.path(), "boundary").unwrap();
    let mut h = train::spawn(job_in(run.clone(), cfg.clone())).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { epoch: 1, batch: 1, .. }));
    h.commands.send(TrainCommand::StopAfterEpoch).unwrap();
    seen.extend(drain(h));
    let mut h = resume(&run, &cfg, true);
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Paused }));
    h.commands.send(TrainCommand::StopNow).unwrap();
    seen.extend(drain(h));
    let state = train::resume::read_state(&run).unwrap();
    assert_eq!((state.epoch, state.batch), (1, 0), "stopped before epoch 2's first batch");
    seen.extend(drain(resume(&run, &cfg, false)));
    assert_same_epochs(&epochs(&seen), &straight);
    assert!(weights_of(&run) == straight_weights, "the final weights are an uninterrupted run's, bit for bit");

    // A stop sent as the last batch of an epoch ends lands in its validation, or at the next batch:
    // wherever it lands, the resumed run ends the same.
    for epoch in [1, 2] {
        let run = RunDir::create(dir.path(), "validation").unwrap();
        let mut h = train::spawn(job_in(run.clone(), cfg.clone())).unwrap();
        let mut seen = vec![];
        let started = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Started { .. }));
        let TrainEvent::Started { info } = started else { unreachable!() };
        let last = info.batches_per_epoch;
        until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::BatchEnd { epoch: e, batch, .. } if *e == epoch && *batch == last));
        h.commands.send(TrainCommand::StopNow).unwrap();
        seen.extend(drain(h));
        seen.extend(drain(resume(&run, &cfg, false)));
        assert_same_epochs(&epochs(&seen), &straight);
        assert!(weights_of(&run) == straight_weights, "stopped at the end of epoch {epoch}: the same weights");
    }
}

/// Signals during the final evaluation (calibration, test, report) are not ignored: the first is the
/// run's cause (`train` exits 143 on SIGTERM) and the report is still written; a second skips it.
#[test]
fn signals_during_the_final_evaluation_count() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut h = train::spawn(job(dir.path(), small(2))).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::EpochEnd { metrics } if metrics.epoch == 2));
    h.commands.send(TrainCommand::Signal("SIGTERM".into())).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    assert!(
        matches!(&e, TrainEvent::Finished { stopped_by: Some(s), reason, .. } if s == "SIGTERM" && reason.contains("SIGTERM during the final evaluation")),
        "{e:?}"
    );
    assert!(seen.iter().any(|r| matches!(r.event, TrainEvent::TestReport { .. })), "the report is written");
    assert!(seen.iter().any(|r| matches!(&r.event, TrainEvent::StopRequested { cause, .. } if cause == "SIGTERM")), "answered");
    h.thread.join().unwrap();

    let mut h = train::spawn(job(dir.path(), small(2))).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::EpochEnd { metrics } if metrics.epoch == 2));
    h.commands.send(TrainCommand::Signal("SIGTERM".into())).unwrap();
    h.commands.send(TrainCommand::Abort("SIGTERM".into())).unwrap();
    h.commands.send(TrainCommand::SetLr(1e-3)).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    assert!(matches!(&e, TrainEvent::Finished { stopped_by: Some(s), test_acc: None, .. } if s == "SIGTERM"), "{e:?}");
    assert!(!seen.iter().any(|r| matches!(r.event, TrainEvent::TestReport { .. } | TrainEvent::ReportWritten { .. })), "skipped");
    assert!(
        seen.iter().any(|r| matches!(&r.event, TrainEvent::CommandRejected { command, .. } if command == "lr 0.001")),
        "refused, not ignored"
    );
    h.thread.join().unwrap();
}
