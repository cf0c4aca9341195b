//! The trainer driven only through its channels: every command is obeyed, echoed as an event and
//! recorded in events.jsonl; failures arrive as a `Failed` event, not a panic.

use std::sync::Arc;
use std::time::Duration;
use tumorscope::config::{ModelKind, TrainConfig};
use tumorscope::data::{ImageSet, make_split};
use tumorscope::runlog::RunDir;
use tumorscope::train::{self, RunState, TrainCommand, TrainEvent, TrainJob};

fn tiny_set() -> ImageSet {
    let (n, size) = (96usize, 16u32);
    let per = (size * size * 3) as usize;
    let mut pixels = vec![0u8; n * per];
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    for i in 0..n {
        for (k, p) in pixels[i * per..(i + 1) * per].iter_mut().enumerate() {
            *p = if labels[i] == 0 { (k % 50) as u8 } else { 200 - (k % 50) as u8 };
        }
    }
    ImageSet {
        size,
        classes: vec!["a".into(), "b".into()],
        pixels,
        labels,
        paths: (0..n).map(|i| format!("img{i}.png").into()).collect(),
        hashes: (0..n as u64).collect(),
        from_test_folder: vec![false; n],
        synthetic: true,
    }
}

fn job(dir: &std::path::Path, cfg: TrainConfig) -> TrainJob {
    let set = tiny_set();
    let split = make_split(&set.labels, &set.hashes, &set.from_test_folder, 2, cfg.val_fraction, cfg.test_fraction, cfg.seed);
    TrainJob {
        config: cfg,
        data: Arc::new(set),
        split,
        device: tch::Device::Cpu,
        run: RunDir::create(dir, "test").unwrap(),
        data_root: "memory".into(),
        weights: dir.join("no-such-weights.safetensors"),
    }
}

fn small(epochs: usize) -> TrainConfig {
    TrainConfig { model: ModelKind::SmallCnn, image_size: 32, batch_size: 8, epochs, lr: 1e-3, augment: true, ..Default::default() }
}

/// Receive until `pred` matches, collecting everything seen.
fn until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<TrainEvent>,
    seen: &mut Vec<TrainEvent>,
    pred: impl Fn(&TrainEvent) -> bool,
) -> TrainEvent {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(std::time::Instant::now() < deadline, "timed out; seen {} events", seen.len());
        if let Some(e) = rx.blocking_recv() {
            seen.push(e.clone());
            if pred(&e) {
                return e;
            }
        } else {
            panic!("trainer ended early; last events: {:?}", &seen[seen.len().saturating_sub(3)..]);
        }
    }
}

#[test]
fn commands_are_obeyed_echoed_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), small(50));
    let run = j.run.clone();
    let mut h = train::spawn(j).unwrap();
    let mut seen = vec![];
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Started { .. }));
    h.commands.send(TrainCommand::Pause).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Paused }));
    // While paused: LR, checkpoint and early-stopping changes still take effect at once.
    h.commands.send(TrainCommand::SetLr(0.01)).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::LrChanged { .. }));
    assert!(matches!(e, TrainEvent::LrChanged { from, to, ref reason, .. } if from == 1e-3 && to == 0.01 && reason == "user"), "{e:?}");
    h.commands.send(TrainCommand::ScaleLr(0.5)).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::LrChanged { .. }));
    assert!(matches!(e, TrainEvent::LrChanged { to, .. } if (to - 0.005).abs() < 1e-12), "{e:?}");
    h.commands.send(TrainCommand::CheckpointNow).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Checkpointed { .. }));
    let TrainEvent::Checkpointed { path, reason, .. } = e else { unreachable!() };
    assert_eq!(reason, "user");
    assert!(std::path::Path::new(&path).exists());
    h.commands.send(TrainCommand::SetEarlyStopping(false)).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::EarlyStopping { enabled: false }));
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Log { message } if message.starts_with("early stopping off")));
    h.commands.send(TrainCommand::Resume).unwrap();
    until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::State { state: RunState::Training }));
    h.commands.send(TrainCommand::StopAfterEpoch).unwrap();
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Finished { .. }));
    let TrainEvent::Finished { reason, .. } = e else { unreachable!() };
    assert_eq!(reason, "stopped by user after epoch 1");
    assert!(
        seen.iter().any(|e| matches!(e, TrainEvent::EpochEnd { metrics } if metrics.epoch == 1)),
        "the epoch is completed, with validation"
    );
    assert!(seen.iter().any(|e| matches!(e, TrainEvent::TestReport { .. })));
    h.thread.join().unwrap();
    // Everything the channel said is in the log, in order.
    let logged = tumorscope::runlog::read_events(&run.events()).unwrap();
    assert_eq!(logged.len(), seen.len() + count_rest(&mut h.events));
    assert_eq!(&logged[..seen.len()], &seen[..]);
    assert!(run.best().exists() && run.last().exists());
}

fn count_rest(rx: &mut tokio::sync::mpsc::UnboundedReceiver<TrainEvent>) -> usize {
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn stop_now_saves_current_weights_mid_epoch() {
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
    h.thread.join().unwrap();
}

#[test]
fn missing_pretrained_weights_fail_as_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig { model: ModelKind::EfficientnetLite0, pretrained: true, image_size: 32, epochs: 1, ..Default::default() };
    let mut h = train::spawn(job(dir.path(), cfg)).unwrap();
    let mut seen = vec![];
    let e = until(&mut h.events, &mut seen, |e| matches!(e, TrainEvent::Failed { .. }));
    let TrainEvent::Failed { error } = e else { unreachable!() };
    assert!(error.contains("no-such-weights.safetensors") && error.contains("scripts/setup.sh"), "{error}");
    h.thread.join().unwrap();
}
