//! Steering a run through its folder, as `ctl` does when the trainer runs on another machine (a Slurm
//! node) whose socket is out of reach: `ctl --via-folder` drops each command into `RUN/inbox/` and
//! reads the trainer's answer from `events.jsonl`. Real binary, a detached run on synthetic phantoms.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn ctl_through_the_run_folder_pauses_changes_lr_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("phantoms");
    tumorscope::data::synthetic::write_set(&data, 24, 6).unwrap();
    let bin = common::bin();
    let o = Command::new(&bin)
        .args(["train", "--detach", "--data", data.to_str().unwrap(), "--model", "small-cnn", "--image-size", "32", "--epochs", "500"])
        .args(["--runs-dir", root.join("runs").to_str().unwrap()])
        .env("TUMORSCOPE_CACHE", root.join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = std::fs::read_dir(root.join("runs")).unwrap().next().unwrap().unwrap().path();
    struct Kill(std::path::PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            common::kill_recorded_process(&self.0);
        }
    }
    let _kill = Kill(run.clone());
    let t = Instant::now();
    while !std::fs::read_to_string(run.join("events.jsonl")).unwrap_or_default().contains("epoch_start") {
        assert!(t.elapsed() < Duration::from_secs(120), "the run never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    let ctl = |action: &[&str]| {
        let o = Command::new(&bin).arg("ctl").arg(&run).args(action).arg("--via-folder").output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let (ok, out) = ctl(&["pause"]);
    assert!(ok && out.contains("paused"), "{out}");
    let (ok, out) = ctl(&["lr", "1e-4"]);
    assert!(ok && out.contains("lr"), "{out}");
    let (ok, out) = ctl(&["stop-now"]);
    assert!(ok, "{out}");
    let t = Instant::now();
    while !std::fs::read_to_string(run.join("events.jsonl")).unwrap_or_default().contains("\"finished\"") {
        assert!(t.elapsed() < Duration::from_secs(120), "the run never finished after stop-now");
        std::thread::sleep(Duration::from_millis(200));
    }
    let left: Vec<_> = std::fs::read_dir(run.join("inbox")).unwrap().collect();
    assert!(left.is_empty(), "every command was taken: {left:?}");
}
