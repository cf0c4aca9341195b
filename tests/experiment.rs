//! Experiments end to end with the real binary on synthetic phantoms (no real pixels needed): a
//! two-fold experiment trains every member once and aggregates; killing the driver and a member with
//! SIGKILL and running it again finishes every member without training one twice; a member folder
//! deleted by hand is trained again; bad plans are refused in one line before anything is created.

mod common;

use common::bin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let data = root.join("phantoms");
        tumorscope::data::synthetic::write_set(&data, 24, 6).unwrap();
        Env { _tmp: tmp, root, data }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .current_dir(&self.root)
            .env("TUMORSCOPE_CACHE", self.root.join("cache"))
            .env_remove("TUMORSCOPE_DATA")
            .output()
            .unwrap()
    }

    /// `experiment run` with the experiment flags, then small-CNN member flags.
    fn experiment(&self, exp_flags: &[&str], epochs: &str) -> Output {
        let mut a = vec!["experiment", "run", "--experiments-dir", "exps"];
        a.extend_from_slice(exp_flags);
        a.extend_from_slice(&["--data", self.data.to_str().unwrap(), "--model", "small-cnn", "--image-size", "32", "--epochs", epochs]);
        self.run(&a)
    }

    fn only_experiment(&self) -> PathBuf {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.root.join("exps")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(v.len(), 1, "{v:?}");
        v.pop().unwrap()
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn show(env: &Env, exp: &Path) -> serde_json::Value {
    let o = env.run(&["experiment", "show", exp.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Epoch numbers of a member's EpochEnd events, in log order.
fn epochs_ended(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["event"] == "epoch_end")
        .filter_map(|r| r["metrics"]["epoch"].as_u64())
        .collect()
}

fn split_of(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("split.json")).unwrap()).unwrap()
}

fn files_in(split: &serde_json::Value, which: &str) -> Vec<String> {
    let mut v: Vec<String> = split["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["split"] == which)
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_two_fold_experiment_trains_each_member_once_and_aggregates() {
    let env = Env::new();
    let o = env.experiment(&["--folds", "2", "--name", "cv"], "2");
    assert!(o.status.success(), "{}", text(&o));
    let exp = env.only_experiment();
    let j = show(&env, &exp);
    let agg = &j["aggregate"];
    assert_eq!(agg["scored"], 2, "{agg}");
    assert!(agg["test_acc"]["mean"].as_f64().is_some());
    let runs = exp.join("runs");
    let (a, b) = (split_of(&runs.join("fold0-seed42")), split_of(&runs.join("fold1-seed42")));
    assert_eq!((a["folds"].as_u64(), a["fold"].as_u64(), b["fold"].as_u64()), (Some(2), Some(0), Some(1)));
    // One test set; the folds are the pool, each image validated by exactly one member.
    assert_eq!(files_in(&a, "test"), files_in(&b, "test"));
    let mut val: Vec<String> = files_in(&a, "val").into_iter().chain(files_in(&b, "val")).collect();
    val.sort();
    let mut pool: Vec<String> = files_in(&a, "train").into_iter().chain(files_in(&a, "val")).collect();
    pool.sort();
    assert_eq!(val, pool);
    assert_eq!(epochs_ended(&runs.join("fold0-seed42")), [1, 2]);
    // Its report: the figures and the tables.
    let o = env.run(&["report", exp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(exp.join("report/report.md")).unwrap();
    assert!(md.contains("fold1-seed42") && md.contains("95% interval of the mean") && md.contains("members.png"), "{md}");
    assert!(exp.join("report/members.png").is_file() && exp.join("report/val_curves.svg").is_file());

    // The same command again trains nothing; a member folder deleted by hand is trained again.
    std::fs::remove_dir_all(runs.join("fold1-seed42")).unwrap();
    let o = env.experiment(&["--folds", "2", "--name", "cv"], "2");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("continuing"), "{}", text(&o));
    assert_eq!(epochs_ended(&runs.join("fold0-seed42")), [1, 2], "a finished member is not trained again");
    assert_eq!(epochs_ended(&runs.join("fold1-seed42")), [1, 2]);

    // The Experiment view in a real terminal: the members and the aggregate; Enter opens a member's
    // dashboard, q comes back, q again leaves.
    let cmd = format!("{} attach {}", bin().display(), exp.display());
    let tmux = common::Tmux::start("experiment_view", &cmd);
    tmux.wait_for(&["experiment cv", "fold0-seed42", "fold1-seed42", "finished", "95% interval of the mean"], 30);
    tmux.keys("Down");
    tmux.keys("Enter");
    tmux.wait_for(&["FINISHED", "1 Dashboard"], 30);
    tmux.keys("q");
    tmux.wait_for(&["experiment cv", "fold1-seed42"], 30);
    tmux.keys("q");
    let t = Instant::now();
    while tmux.screen().contains("experiment cv") {
        assert!(t.elapsed() < Duration::from_secs(20), "the view did not leave on q");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kill_9_of_the_driver_and_a_member_then_resume_finishes_every_member_once() {
    let env = Env::new();
    // Long enough to pause the first member well before its end.
    let o = env.experiment(&["--folds", "2", "--detach"], "40");
    assert!(o.status.success(), "{}", text(&o));
    let exp = env.only_experiment();
    let first = exp.join("runs").join("fold0-seed42");
    wait_until("the first member's first epoch", 300, || epochs_ended(&first).contains(&1));
    // Paused inside epoch 2: the kill lands at a known point.
    let o = env.run(&["ctl", first.to_str().unwrap(), "pause"]);
    assert!(o.status.success(), "{}", text(&o));
    let driver: String = std::fs::read_to_string(exp.join("driver.lock")).unwrap().trim().to_string();
    assert!(!driver.is_empty());
    Command::new("kill").args(["-9", &driver]).status().unwrap();
    common::kill_recorded_process(&first);
    wait_until("the member to die", 30, || !tumorscope::run::RunDir { path: first.clone() }.lock_held());

    let o = env.run(&["experiment", "resume", exp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for m in ["fold0-seed42", "fold1-seed42"] {
        assert_eq!(epochs_ended(&exp.join("runs").join(m)), (1..=40).collect::<Vec<u64>>(), "{m}: every epoch once");
    }
    let asides: Vec<_> = std::fs::read_dir(exp.join("runs"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(asides.is_empty(), "nothing was started from scratch again: {asides:?}");
    assert_eq!(show(&env, &exp)["aggregate"]["scored"], 2);
}

#[test]
fn bad_plans_are_refused_in_one_line_before_anything_is_made() {
    let env = Env::new();
    let cases: [(&[&str], &str); 5] = [
        (&["--folds", "1"], "--folds 1"),
        (&["--folds", "500"], "smallest class"),
        (&["--grid", "bogus=1,2"], "--grid bogus: not a train flag"),
        (&["--grid", "lr=abc"], "lr"),
        (&["--folds", "2", "--executor", "slurm"], "sbatch not found"),
    ];
    for (flags, needle) in cases {
        let mut cmd = Command::new(bin());
        cmd.args(["experiment", "run", "--experiments-dir", "exps"]).args(flags);
        cmd.args(["--data", env.data.to_str().unwrap(), "--model", "small-cnn", "--image-size", "32"]);
        // No Slurm on this PATH.
        let o = cmd.current_dir(&env.root).env("TUMORSCOPE_CACHE", env.root.join("cache")).env("PATH", "/nonexistent").output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "{flags:?} was accepted");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{flags:?}: {err}");
        assert!(errors[0].contains(needle), "{flags:?}: {err}");
        assert!(
            !env.root.join("exps").exists() || std::fs::read_dir(env.root.join("exps")).unwrap().next().is_none(),
            "{flags:?} made a folder"
        );
    }
}
