//! `attach`, `ctl`, `watch` and `train --resume` on folders that are not what they expect: each gets
//! one clear line naming the folder and what is wrong, and nothing in the run folder is overwritten.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str], cache: &Path) -> Output {
    Command::new(common::bin()).args(args).env("TUMORSCOPE_CACHE", cache).output().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// One line, starting with `error:`, naming `what`.
fn one_clear_line(o: &Output, what: &str, needle: &str) {
    assert!(!o.status.success(), "{what}: should fail");
    let e = err(o);
    assert_eq!(e.lines().count(), 1, "{what}: one line, got:\n{e}");
    assert!(e.starts_with("error: ") && e.contains(needle), "{what}: '{needle}' not in: {e}");
}

/// A finished 2-epoch run on a tiny synthetic data set.
fn finished_run(root: &Path) -> PathBuf {
    let data = root.join("data");
    for (c, class) in ["alpha", "beta", "gamma"].iter().enumerate() {
        for i in 0..12 {
            common::write_image(&data.join(class).join(format!("{i:03}.png")), c, i);
        }
    }
    let runs = root.join("runs");
    let o = common::train_small(&data, &runs, &root.join("cache"), &["--batch-size", "8", "--epochs", "2"]);
    assert!(o.status.success(), "{}", err(&o));
    std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path()
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn every_client_names_the_folder_and_what_is_wrong() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let missing = t.path().join("no-such-run");
    let foreign = t.path().join("holiday-photos");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("beach.jpg"), b"not a run").unwrap();
    for (what, folder, needle) in [("missing", &missing, "no such run folder"), ("foreign", &foreign, "not a tumorscope run folder")] {
        let f = folder.to_str().unwrap();
        one_clear_line(&run(&["attach", f], &cache), &format!("attach {what}"), needle);
        one_clear_line(&run(&["watch", f], &cache), &format!("watch {what}"), needle);
        one_clear_line(&run(&["ctl", f, "pause"], &cache), &format!("ctl {what}"), needle);
        one_clear_line(&run(&["train", "--resume", f, "--no-tui"], &cache), &format!("resume {what}"), needle);
        assert!(err(&run(&["ctl", f, "pause"], &cache)).contains(f), "the folder is named");
    }
    assert_eq!(std::fs::read(foreign.join("beach.jpg")).unwrap(), b"not a run");
    one_clear_line(&run(&["attach", "--runs-dir", t.path().to_str().unwrap()], &cache), "attach with nothing running", "no running run");
    one_clear_line(&run(&["runs", "--runs-dir", missing.to_str().unwrap()], &cache), "runs missing", "no such runs folder");
}

#[test]
fn finished_crashed_stale_and_truncated_runs() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let run_dir = finished_run(t.path());
    let r = run_dir.to_str().unwrap();
    // Not running: ctl refuses with the run's state.
    one_clear_line(&run(&["ctl", r, "stop"], &cache), "ctl finished", "not running (finished)");
    one_clear_line(&run(&["train", "--resume", r, "--no-tui"], &cache), "resume finished", "all 2 epochs are done");
    // A resume cannot change settings or the model.
    one_clear_line(&run(&["train", "--resume", r, "--lr", "1e-2", "--no-tui"], &cache), "resume --lr", "drop --lr");
    one_clear_line(
        &run(&["train", "--resume", r, "--model", "efficientnet-lite0", "--no-tui"], &cache),
        "resume --model",
        "cannot change the model",
    );
    // attach and watch need a terminal; they say so after checking the folder.
    one_clear_line(&run(&["attach", r], &cache), "attach without a terminal", "needs a terminal");

    // A crash: the process is gone, its socket file is stale, the last line is cut short.
    let events = run_dir.join("events.jsonl");
    let text = std::fs::read_to_string(&events).unwrap();
    let kept: Vec<&str> = text.lines().take_while(|l| !l.contains("\"event\":\"state\",\"state\":\"evaluating\"")).collect();
    std::fs::write(&events, format!("{}\n{{\"seq\":999,\"time\":1.0,\"event\":\"batch_e", kept.join("\n"))).unwrap();
    let stale = std::env::temp_dir().join(format!("tumorscope-test-stale-{}.sock", std::process::id()));
    let listener = std::os::unix::net::UnixListener::bind(&stale).unwrap();
    drop(listener); // the file stays, nobody listens: a killed run's socket
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    std::fs::write(
        run_dir.join("process.json"),
        format!(
            "{{\"pid\":{dead},\"host\":\"{}\",\"socket\":\"{}\",\"started_unix\":0.0}}",
            tumorscope::run::dir::hostname(),
            stale.display()
        ),
    )
    .unwrap();
    let before = snapshot(&run_dir);
    one_clear_line(&run(&["ctl", r, "pause"], &cache), "ctl crashed", "not running (crashed)");
    let o = run(&["runs", "--runs-dir", run_dir.parent().unwrap().to_str().unwrap(), "--json"], &cache);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"state\": \"crashed\""), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(snapshot(&run_dir), before, "clients change nothing in the run folder");
    // The socket answers nobody: a clear line from the client library too.
    let e = tumorscope::run::socket::connect(&tumorscope::run::RunDir::open(&run_dir).unwrap()).unwrap_err().to_string();
    assert!(e.contains("stale socket") && e.contains(&dead.to_string()), "{e}");
    let _ = std::fs::remove_file(&stale);

    // Resume continues after the cut line: it stays as it was, the new records start on a line of
    // their own, and the log reads back whole.
    let o = run(&["train", "--resume", r, "--epochs", "3", "--no-tui"], &cache);
    assert!(o.status.success(), "{}", err(&o));
    let log = tumorscope::run::log::read_log(&events).unwrap();
    assert_eq!(log.bad_lines.len(), 1, "the cut line, kept");
    assert!(!log.truncated_tail);
    let view = tumorscope::run::RunView::from_records(&log.records);
    assert_eq!(view.history.iter().map(|m| m.epoch).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(view.status(), "finished");
}
