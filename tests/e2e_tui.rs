//! Drive the real binary's dashboard in tmux: start a short training on a small real subset, press `-`
//! then `s`, and check that the screen showed both and that events.jsonl recorded them. Then follow the
//! finished run with `tumorscope watch`.

mod common;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tumorscope::train::TrainEvent;

struct Tmux(String);

impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", name, "-x", "100", "-y", "30", cmd])
            .status()
            .expect("tmux is needed for this test (apt-get install tmux)");
        assert!(ok.success());
        Tmux(name.to_string())
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn keys(&self, k: &str) {
        Command::new("tmux").args(["send-keys", "-t", &self.0, k]).status().unwrap();
    }

    /// Wait until the screen holds every needle.
    fn wait_for(&self, needles: &[&str], secs: u64) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {needles:?}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

fn run_dir(runs: &Path) -> std::path::PathBuf {
    std::fs::read_dir(runs).unwrap().next().unwrap().unwrap().path()
}

#[test]
fn keys_change_lr_and_stop_early_in_a_real_terminal() {
    let Some(data) = common::real_data("keys_change_lr_and_stop_early_in_a_real_terminal") else { return };
    let t = tempfile::tempdir().unwrap();
    let runs = t.path().join("runs");
    // Tiny epochs run dozens a second: keep ReduceLROnPlateau out of the way so the only LR change is
    // the key press, and its log line stays on screen.
    let config = t.path().join("e2e.toml");
    std::fs::write(&config, "plateau_patience = 1000000\n").unwrap();
    let name = format!("tumorscope-e2e-{}", std::process::id());
    let cmd = format!(
        "env TUMORSCOPE_CACHE={} TUMORSCOPE_IMAGES=halfblocks {} train --config {} --data {} --limit-per-class 16 --model small-cnn --image-size 48 --epochs 1000000 --lr 1e-3 --no-early-stopping --runs-dir {}; sleep 30",
        t.path().join("cache").display(),
        common::bin().display(),
        config.display(),
        data.display(),
        runs.display()
    );
    let tmux = Tmux::start(&name, &cmd);
    tmux.wait_for(&["TRAINING", "batch ", "1 Dashboard"], 90);
    tmux.keys("-");
    let s = tmux.wait_for(&["lr 1e-3 → 5e-4 (user)"], 30);
    assert!(s.contains("lr 5e-4"), "LR panel shows the new rate:\n{s}");
    tmux.keys("s");
    let s = tmux.wait_for(&["early stop requested", "training finished", "stopped by user after epoch"], 60);
    assert!(s.contains("FINISHED"), "{s}");

    let run = run_dir(&runs);
    let events = tumorscope::runlog::read_events(&run.join("events.jsonl")).unwrap();
    assert!(
        events.iter().any(|e| matches!(e, TrainEvent::LrChanged { from, to, reason, .. } if reason == "user" && (*from - 1e-3).abs() < 1e-12 && (*to - 5e-4).abs() < 1e-12)),
        "events.jsonl lacks the user LR change"
    );
    assert!(events.iter().any(|e| matches!(e, TrainEvent::Log { message } if message.starts_with("early stop requested"))));
    let stopped_at = events.iter().find_map(|e| match e {
        TrainEvent::Finished { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(stopped_at.as_deref().is_some_and(|r| r.starts_with("stopped by user after epoch")), "{stopped_at:?}");
    tmux.keys("q");
    tmux.wait_for(&["finished: stopped by user"], 20); // summary printed after the dashboard closes
    drop(tmux);

    // The same run, followed read-only from its log.
    let name = format!("tumorscope-watch-{}", std::process::id());
    let watch =
        Tmux::start(&name, &format!("env TUMORSCOPE_IMAGES=halfblocks {} watch {}; sleep 10", common::bin().display(), run.display()));
    watch.wait_for(&["FINISHED", "READ-ONLY", "lr 1e-3 → 5e-4 (user)"], 30);
    watch.keys("s");
    watch.wait_for(&["read-only: controls work in the window that started the training"], 10);
    watch.keys("q");
}
