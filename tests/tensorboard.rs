//! TensorBoard files a training run writes are read back by the `tensorboard` package itself (its
//! event accumulator, from the project venv): every epoch scalar and every batch loss, equal to
//! events.jsonl's values at f32 precision. `--no-tensorboard` writes none.

mod common;
use std::process::Command;

fn train(data: &std::path::Path, runs: &std::path::Path, cache: &std::path::Path, extra: &[&str]) -> std::path::PathBuf {
    let mut args = vec!["--epochs", "3"];
    args.extend_from_slice(extra);
    let o = common::train_small(data, runs, cache, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_dir(runs).unwrap().next().unwrap().unwrap().path()
}

#[test]
fn tensorboard_reads_back_every_scalar() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    for (c, class) in ["alpha", "beta", "gamma"].iter().enumerate() {
        for i in 0..16 {
            common::write_image(&data.join(class).join(format!("{i:03}.png")), c, i);
        }
    }
    let run = train(&data, &t.path().join("runs"), &t.path().join("cache"), &[]);
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let script = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}))
"#;
    let o = Command::new(&python)
        .args(["-c", script, run.join("tensorboard").to_str().unwrap()])
        .output()
        .expect("the venv's python (scripts/setup.sh)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tb: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let records = tumorscope::run::log::read_log(&run.join("events.jsonl")).unwrap().records;
    let mut epochs = vec![];
    let mut batches = 0;
    for r in &records {
        match &r.event {
            tumorscope::run::TrainEvent::EpochEnd { metrics } => epochs.push(metrics.clone()),
            tumorscope::run::TrainEvent::BatchEnd { .. } => batches += 1,
            _ => {}
        }
    }
    assert_eq!(epochs.len(), 3);
    for (tag, pick) in [("epoch/val_acc", 0), ("epoch/loss", 1), ("epoch/lr", 2)] {
        let series = tb[tag].as_array().unwrap_or_else(|| panic!("{tag} missing in {tb}"));
        assert_eq!(series.len(), 3, "{tag}");
        for (m, s) in epochs.iter().zip(series) {
            let want = [m.val_acc, m.train_loss, m.lr][pick] as f32;
            assert_eq!(s[0].as_u64().unwrap() as usize, m.epoch, "{tag} step");
            assert_eq!(s[1].as_f64().unwrap() as f32, want, "{tag} at epoch {}", m.epoch);
        }
    }
    for tag in ["epoch/acc", "epoch/val_loss"] {
        assert_eq!(tb[tag].as_array().map(|a| a.len()), Some(3), "{tag}");
    }
    assert_eq!(tb["batch/loss"].as_array().unwrap().len(), batches);

    let t2 = tempfile::tempdir().unwrap();
    let run = train(&data, &t2.path().join("runs"), &t.path().join("cache"), &["--no-tensorboard"]);
    assert!(!run.join("tensorboard").exists());
}
