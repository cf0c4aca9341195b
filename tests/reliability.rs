//! The failures a review and hand checks found, each driven through the real binary on the built-in
//! synthetic set (so these run everywhere, with or without real data): `train --detach --no-tui`,
//! `ctl lr nan`, a FIFO given to `predict`, private run folders, liveness by lock under another binary
//! name, two resumes at once, a hostile or too long `$TMPDIR`, SIGTERM during the final evaluation,
//! a config with NaN, and `eval` without `split.json`. Every wait is for a state, never a fixed time,
//! and every process started is killed if a step fails.

mod common;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tumorscope::run::{RunDir, RunView};

const WAIT: u64 = 180;

/// Kills the processes of the runs under a folder when dropped (from their `process.json`).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for run in tumorscope::run::dir::list_runs(&self.0).unwrap_or_default() {
            common::kill_recorded_process(&run.path);
        }
    }
}

struct Env {
    tmp: tempfile::TempDir,
    runs: PathBuf,
    _cleanup: Cleanup,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        Env { _cleanup: Cleanup(runs.clone()), runs, tmp }
    }

    fn cmd_with(&self, bin: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.args(args).env("TUMORSCOPE_CACHE", self.tmp.path().join("cache")).env_remove("TUMORSCOPE_DATA");
        c.stdin(std::process::Stdio::null());
        c
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_with(&common::bin(), args)
    }

    /// `args` with a timeout: a command that hangs fails the test instead of blocking the suite.
    fn run(&self, args: &[&str]) -> Output {
        output_within(self.cmd(args), 120)
    }

    /// The flags of a quick synthetic run (small CNN, 32 px) into this environment's runs folder.
    fn train(&self, epochs: usize, extra: &[&str]) -> Vec<String> {
        self.train_at(32, epochs, extra)
    }

    fn train_at(&self, size: u32, epochs: usize, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> =
            ["train", "--synthetic", "--model", "small-cnn", "--no-tensorboard"].iter().map(|s| s.to_string()).collect();
        v.extend(["--image-size".into(), size.to_string()]);
        v.extend(["--epochs".into(), epochs.to_string(), "--runs-dir".into(), self.runs.display().to_string()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn only_run(&self) -> PathBuf {
        let runs = tumorscope::run::dir::list_runs(&self.runs).unwrap();
        assert_eq!(runs.len(), 1, "one run folder");
        runs[0].path.clone()
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Run a command to its end, or kill it after `secs` and fail.
fn output_within(mut c: Command, secs: u64) -> Output {
    let child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{c:?} did not end within {secs} s");
        }
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn view(run: &Path) -> RunView {
    let log = tumorscope::run::log::read_log(&run.join("events.jsonl")).map(|l| l.records).unwrap_or_default();
    RunView::from_records(&log)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < Duration::from_secs(WAIT), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file and folder under `dir`, with its mode.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = vec![(dir.to_path_buf(), mode(dir))];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(modes(&p));
        } else {
            out.push((p.clone(), mode(&p)));
        }
    }
    out
}

/// The most natural way to start a run on a server trains, in a private folder.
#[test]
fn train_detach_no_tui_trains_in_a_private_folder() {
    let env = Env::new();
    let o = env.run(&strs(&env.train(2, &["--detach", "--no-tui"])));
    assert!(o.status.success() && text(&o).contains("in the background"), "{}", text(&o));
    let run = env.only_run();
    wait_until("the detached run finishes", || view(&run).status() == "finished");
    let log = std::fs::read_to_string(run.join("output.log")).unwrap();
    assert!(!log.contains("error") && log.contains("finished"), "{log}");
    // Patients' pixels stay with their owner: every folder 0700, every file 0600.
    let wide: Vec<_> = modes(&env.runs).into_iter().filter(|(p, m)| m & 0o077 != 0 || (p.is_dir() && *m != 0o700)).collect();
    assert!(wide.is_empty(), "readable by others: {wide:?}");
    assert!(run.join("report").join("samples.png").is_file());
    // A resumed run in the background, the same way, continues.
    let o = env.run(&["train", "--resume", run.to_str().unwrap(), "--epochs", "3", "--no-tui", "--detach"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_until("the resumed run finishes", || view(&run).status() == "finished" && view(&run).history.len() == 3);
}

/// A lab that shares runs within a group says so once; other users still read nothing.
#[test]
fn a_run_shared_with_the_group_is_group_readable_only() {
    let env = Env::new();
    let config = env.tmp.path().join("shared.toml");
    std::fs::write(&config, "share_with_group = true\n").unwrap();
    let o = env.run(&strs(&env.train(1, &["--no-tui", "--config", config.to_str().unwrap()])));
    assert!(o.status.success(), "{}", text(&o));
    let run = env.only_run();
    for (p, m) in modes(&run) {
        let want = if p.is_dir() { 0o750 } else { 0o640 };
        assert_eq!(m, want, "{}", p.display());
    }
    // `report` writes into the folder as it was made.
    let o = env.run(&["report", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mode(&run.join("report").join("report.md")), 0o640);
}

/// Numbers that have no JSON form (NaN, infinities, 1e400) and rates outside the range are refused at
/// once, naming the value; `ctl` never waits for an answer that cannot come.
#[test]
fn ctl_lr_nan_is_refused_at_once() {
    let env = Env::new();
    let o = env.run(&strs(&env.train(100_000, &["--detach", "--no-tui"])));
    assert!(o.status.success(), "{}", text(&o));
    let run = env.only_run();
    let r = run.to_str().unwrap();
    wait_until("the run serves its socket", || RunDir { path: run.clone() }.read_process().is_some_and(|p| p.socket.is_some()));
    let o = env.run(&["ctl", r, "pause"]);
    assert!(o.status.success(), "{}", text(&o));
    for (args, needle) in [
        (vec!["lr", "nan"], "NaN is not a positive number"),
        (vec!["lr", "inf"], "inf is not a positive number"),
        (vec!["lr", "1e400"], "1e400 is too large"),
        (vec!["lr", "100"], "not below the ceiling 10"),
        (vec!["lr", "-1"], "-1 is not a positive number"),
        (vec!["lr-scale", "nan"], "NaN is not a positive number"),
    ] {
        let mut a = vec!["ctl", r];
        a.extend(&args);
        let o = env.run(&a);
        assert!(!o.status.success() && text(&o).contains(needle), "{args:?}: {}", text(&o));
    }
    // A valid one is answered by the trainer, and the run is stopped.
    let o = env.run(&["ctl", r, "lr", "2e-3"]);
    assert!(o.status.success() && text(&o).contains("2e-3"), "{}", text(&o));
    let o = env.run(&["ctl", r, "stop-now"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_until("the run stops", || view(&run).is_over());
}

/// A FIFO (or any file that is not a regular file) named as an image is refused at once with one line,
/// and the other images are still predicted.
#[test]
fn predict_refuses_a_fifo_instead_of_hanging() {
    let env = Env::new();
    let o = env.run(&strs(&env.train(1, &["--no-tui"])));
    assert!(o.status.success(), "{}", text(&o));
    let run = env.only_run();
    let fifo = env.tmp.path().join("scan.jpg");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let good = env.tmp.path().join("good.png");
    common::write_image(&good, 0, 1);
    let folder = env.tmp.path().join("folder");
    common::write_image(&folder.join("a.png"), 1, 2);
    assert!(Command::new("mkfifo").arg(folder.join("b.jpg")).status().unwrap().success());
    let o = env.run(&["predict", "--run", run.to_str().unwrap(), "--no-image", fifo.to_str().unwrap(), good.to_str().unwrap()]);
    let out = text(&o);
    assert!(out.contains("scan.jpg: not a regular file (a FIFO)") && out.contains("good.png"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("scan.jpg")).count(), 1, "{out}");
    let o = env.run(&["predict", "--run", run.to_str().unwrap(), "--no-image", folder.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("a.png"), "a folder's FIFO is passed over: {}", text(&o));
    // A FIFO in a class folder is passed over with a warning, not waited on.
    let data = env.tmp.path().join("data");
    common::three_classes(&data);
    assert!(Command::new("mkfifo").arg(data.join("alpha").join("pipe.png")).status().unwrap().success());
    let o = env.run(&["audit", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}

/// The binary under another name (a symlink, a packaged name) still shows its runs alive, and no
/// second trainer starts on them: the lock is the proof of life, not the process's name.
#[test]
fn liveness_holds_under_another_binary_name_and_one_trainer_per_run() {
    let env = Env::new();
    let renamed = env.tmp.path().join("mri-train");
    std::os::unix::fs::symlink(common::bin(), &renamed).unwrap();
    let o = output_within(env.cmd_with(&renamed, &strs(&env.train(100_000, &["--detach", "--no-tui"]))), 120);
    assert!(o.status.success(), "{}", text(&o));
    let run = env.only_run();
    let r = run.to_str().unwrap();
    wait_until("the run trains", || view(&run).status() == "running");
    let o = env.run(&["runs", "--runs-dir", env.runs.to_str().unwrap(), "--json"]);
    assert!(text(&o).contains("\"running\""), "{}", text(&o));
    let o = env.run(&["train", "--resume", r, "--no-tui"]);
    assert!(!o.status.success() && text(&o).contains("still training"), "{}", text(&o));
    let o = env.run(&["ctl", r, "stop-now"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_until("the run stops and lets go", || view(&run).is_over() && !RunDir { path: run.clone() }.lock_held());

    // Two resumes started together: exactly one trains, the other is refused before loading anything.
    let args = ["train", "--resume", r, "--no-tui", "--epochs", "100000"];
    let (a, b) = (
        env.cmd(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap(),
        env.cmd(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap(),
    );
    let (pa, pb) = (a.id(), b.id());
    let refused = |o: &Output| !o.status.success() && text(o).contains("still training");
    let (tx, rx) = std::sync::mpsc::channel();
    for child in [a, b] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output().unwrap());
        });
    }
    let first = rx.recv_timeout(Duration::from_secs(WAIT)).expect("one of the two ends (refused)");
    assert!(refused(&first), "the first to end was refused: {}", text(&first));
    wait_until("the other trains", || view(&run).status() == "running");
    let o = env.run(&["ctl", r, "stop-now"]);
    assert!(o.status.success(), "{}", text(&o));
    let second = rx.recv_timeout(Duration::from_secs(WAIT)).expect("the trainer ends");
    assert!(second.status.success(), "{}", text(&second));
    for p in [pa, pb] {
        assert!(!tumorscope::run::dir::pid_alive(p));
    }
    let log = tumorscope::run::log::read_log(&run.join("events.jsonl")).unwrap().records;
    assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1), "one writer: the sequence numbers run on");
}

/// Another user's `$TMPDIR/tumorscope-<uid>`, or a `$TMPDIR` too deep for a socket path, never stops a
/// run: the socket goes to a private place of its own, and steering works.
#[test]
fn a_hostile_or_long_tmpdir_does_not_stop_training() {
    let env = Env::new();
    let uid = nix::unistd::getuid().as_raw();
    let hostile = env.tmp.path().join("tmp");
    let taken = hostile.join(format!("tumorscope-{uid}"));
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::set_permissions(&taken, std::fs::Permissions::from_mode(0o777)).unwrap();
    let long = env.tmp.path().join("t".repeat(100));
    std::fs::create_dir_all(&long).unwrap();
    for tmpdir in [hostile, long] {
        let runs = env.tmp.path().join(format!("runs-{}", tmpdir.as_os_str().len()));
        let _cleanup = Cleanup(runs.clone());
        let mut args = env.train(100_000, &["--detach", "--no-tui"]);
        let at = args.iter().position(|a| a == "--runs-dir").unwrap();
        args[at + 1] = runs.display().to_string();
        let mut c = env.cmd(&strs(&args));
        c.env("TMPDIR", &tmpdir).env_remove("XDG_RUNTIME_DIR");
        let o = output_within(c, 120);
        assert!(o.status.success(), "{}", text(&o));
        let run = tumorscope::run::dir::list_runs(&runs).unwrap().remove(0);
        wait_until("the run trains with its socket", || {
            view(&run.path).status() == "running" && run.read_process().is_some_and(|p| p.socket.is_some())
        });
        let socket = PathBuf::from(run.read_process().unwrap().socket.unwrap());
        assert!(!socket.starts_with(&taken), "{}", socket.display());
        let o = env.run(&["ctl", run.path.to_str().unwrap(), "stop-now"]);
        assert!(o.status.success(), "{}", text(&o));
        wait_until("the run stops", || view(&run.path).is_over());
    }
}

/// SIGTERM while the run is being evaluated at its end: exit 143, as promised, with the report.
#[test]
fn sigterm_during_the_final_evaluation_exits_143() {
    let env = Env::new();
    // Larger images, a larger test split and test-time augmentation make the final evaluation last a
    // while (about 3 s here, against the 50 ms this test polls at).
    let args = env.train_at(128, 1, &["--no-tui", "--tta", "flip,shift=2", "--test-fraction", "0.5"]);
    let mut child = env.cmd(&strs(&args)).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let runs = env.runs.clone();
    wait_until("the final evaluation starts", || {
        tumorscope::run::dir::list_runs(&runs).ok().and_then(|r| r.first().cloned()).is_some_and(|r| {
            tumorscope::run::log::read_log(&r.events()).is_ok_and(|l| {
                l.records
                    .iter()
                    .any(|r| matches!(r.event, tumorscope::run::TrainEvent::State { state: tumorscope::run::RunState::Evaluating }))
            })
        })
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "SIGTERM during the final evaluation");
}

/// NaN in a config file is refused before any data loads, with one line naming the file and the key.
#[test]
fn a_config_with_nan_is_refused_naming_the_key() {
    let env = Env::new();
    for (text_, key) in [("min_lr = nan\n", "min_lr"), ("weight_decay = nan\n", "weight_decay"), ("threads = 5000\n", "threads")] {
        let config = env.tmp.path().join("bad.toml");
        std::fs::write(&config, text_).unwrap();
        let o = env.run(&strs(&env.train(1, &["--no-tui", "--config", config.to_str().unwrap()])));
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success() && err.contains("bad.toml") && err.contains(key), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!env.runs.exists(), "nothing was started");
    }
    let o = env.run(&strs(&env.train(1, &["--no-tui", "--threads", "100000"])));
    assert!(!o.status.success() && text(&o).contains("threads"), "{}", text(&o));
}

/// `eval` says so when a run's split record is missing, and refuses one it cannot read.
#[test]
fn eval_says_when_the_split_record_is_missing() {
    let env = Env::new();
    let o = env.run(&strs(&env.train(1, &["--no-tui"])));
    assert!(o.status.success(), "{}", text(&o));
    let run = env.only_run();
    let split = run.join("split.json");
    std::fs::write(&split, b"{ not json").unwrap();
    let o = env.run(&["eval", run.to_str().unwrap(), "--device", "cpu"]);
    assert!(!o.status.success() && text(&o).contains("split.json"), "{}", text(&o));
    std::fs::remove_file(&split).unwrap();
    let o = env.run(&["eval", run.to_str().unwrap(), "--device", "cpu"]);
    assert!(o.status.success() && text(&o).contains("split.json: missing, so the test split is recomputed"), "{}", text(&o));
}

/// SIGTERM while the terminal's output is blocked (Ctrl-S, a stalled SSH connection) is acted on at
/// once: the stop is sent before anything is printed, and no print holds the signal path. The run is
/// stopped and reported while the output is still blocked; once it flows again, `train` exits 143.
#[test]
fn sigterm_while_the_terminal_is_blocked_is_acted_on() {
    let env = Env::new();
    let args = env.train(100_000, &["--no-tui"]);
    let cmd = format!(
        "TUMORSCOPE_CACHE={} {} {}; echo EXIT=$?; sleep 600",
        env.tmp.path().join("cache").display(),
        common::bin().display(),
        args.join(" ")
    );
    let tmux = common::Tmux::start(&format!("blocked-{}", std::process::id()), &cmd);
    wait_until("the run trains", || {
        tumorscope::run::dir::list_runs(&env.runs).is_ok_and(|r| r.len() == 1) && view(&env.only_run()).status() == "running"
    });
    let run = env.only_run();
    let pid = RunDir { path: run.clone() }.read_process().unwrap().pid;
    tmux.keys("C-s");
    // Until its main thread waits on the terminal (a full tty buffer); where the kernel does not say
    // (wchan hidden), after a while anyway: the stop must come whatever the output does.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.contains("wait_woken") || wchan.contains("tty") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_until("the stop is acted on while the output is blocked", || view(&run).is_over());
    assert_eq!(view(&run).outcome.and_then(|o| o.stopped_by).map(String::from).as_deref(), Some("SIGTERM"));
    tmux.keys("C-q");
    tmux.wait_for(&["EXIT=143"], WAIT);
}
