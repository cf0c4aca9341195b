//! Drive the real binary's dashboard in tmux: start a short training on a small real subset, press `-`
//! then `s`, and check that the screen showed both and that events.jsonl recorded them. Then follow the
//! finished run with `tumorscope watch`.

mod common;
use common::Tmux;
use std::path::Path;
use tumorscope::run::{StopWhen, TrainEvent};

fn run_dir(runs: &Path) -> std::path::PathBuf {
    std::fs::read_dir(runs).unwrap().next().unwrap().unwrap().path()
}

#[test]
fn keys_change_lr_and_stop_early_in_a_real_terminal() {
    let phantoms = tempfile::tempdir().unwrap();
    let data = common::real_or_synthetic(phantoms.path());
    let t = tempfile::tempdir().unwrap();
    let runs = t.path().join("runs");
    // Tiny epochs run dozens a second: the article's constant rate, with ReduceLROnPlateau out of the
    // way, so the only LR change is the key press, and its log line stays on screen.
    let config = t.path().join("e2e.toml");
    std::fs::write(&config, "recipe = \"article\"\nplateau_patience = 1000000\n").unwrap();
    let name = format!("tumorscope-e2e-{}", std::process::id());
    let cmd = format!(
        "env TUMORSCOPE_CACHE={} TUMORSCOPE_IMAGES=halfblocks {} train --config {} --data {} --limit-per-class 16 --model small-cnn --image-size 48 --epochs 2000 --lr 1e-3 --no-early-stopping --stop-on-hangup --runs-dir {}; sleep 30",
        t.path().join("cache").display(),
        common::bin().display(),
        config.display(),
        data.display(),
        runs.display()
    );
    let tmux = Tmux::start(&name, &cmd);
    tmux.wait_for(&["TRAINING", "batch ", "1 Dashboard"], 90);
    tmux.keys("-");
    // The LR panel (current rate and its history) stays on screen; log lines scroll away as epochs end.
    tmux.wait_for(&["lr 5e-4", "history 1e-3 → 5e-4"], 30);
    tmux.keys("s");
    // (The end-of-run summary now covers the LR panel; events.jsonl below holds the change.)
    tmux.wait_for(&["STOPPED", "training finished", "stopped by user after epoch"], 60);

    let run = run_dir(&runs);
    let events: Vec<TrainEvent> =
        tumorscope::run::log::read_log(&run.join("events.jsonl")).unwrap().records.into_iter().map(|r| r.event).collect();
    assert!(
        events.iter().any(|e| matches!(e, TrainEvent::LrChanged { from, to, reason, .. } if *reason == tumorscope::run::events::LrReason::User && (*from - 1e-3).abs() < 1e-12 && (*to - 5e-4).abs() < 1e-12)),
        "events.jsonl lacks the user LR change"
    );
    assert!(events.iter().any(|e| matches!(e, TrainEvent::StopRequested { when: StopWhen::AfterEpoch, cause, .. } if cause == "user")));
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
    watch.wait_for(&["STOPPED", "READ-ONLY", "history 1e-3 → 5e-4"], 30);
    watch.keys("s");
    watch.wait_for(&["read-only: the run is not training"], 10);
    watch.keys("q");
}

/// The article's upload widget, in the terminal: while a real run trains, `o` opens a real MRI file
/// (typed, then Tab-completed), the popup shows the best checkpoint's prediction and probabilities, `g`
/// draws the Grad-CAM overlay, and training goes on meanwhile (its epoch counter keeps moving).
#[test]
fn open_an_image_and_its_grad_cam_while_training() {
    let phantoms = tempfile::tempdir().unwrap();
    let data = common::real_or_synthetic(phantoms.path());
    let t = tempfile::tempdir().unwrap();
    let runs = t.path().join("runs");
    let name = format!("tumorscope-open-{}", std::process::id());
    let cmd = format!(
        "env TUMORSCOPE_CACHE={} TUMORSCOPE_IMAGES=halfblocks {} train --recipe article --data {} --limit-per-class 16 --model small-cnn --image-size 48 --epochs 5000 --lr 1e-3 --no-early-stopping --stop-on-hangup --runs-dir {}; sleep 30",
        t.path().join("cache").display(),
        common::bin().display(),
        data.display(),
        runs.display()
    );
    let tmux = Tmux::start(&name, &cmd);
    tmux.wait_for(&["TRAINING", "checkpoint saved"], 90);
    let epoch_of = |screen: &str| -> usize {
        let at = screen.find("epoch ").expect("the header shows the epoch") + 6;
        screen[at..].split('/').next().unwrap().trim().parse().unwrap_or(0)
    };
    let before = epoch_of(&tmux.screen());
    // A real file: typed up to its folder, the rest completed with Tab (one match).
    let mut files: Vec<_> = std::fs::read_dir(data.join("Training/glioma")).unwrap().flatten().map(|e| e.path()).collect();
    files.retain(|f| f.extension().is_some_and(|e| e == "jpg"));
    files.sort();
    let file = files[0].display().to_string();
    let typed = &file[..file.len() - 4]; // all but ".jpg"
    tmux.keys("o");
    tmux.wait_for(&["open image", "Tab completes"], 20);
    tmux.type_text(typed);
    tmux.keys("Tab");
    tmux.wait_for(&[".jpg▏"], 20);
    tmux.keys("Enter");
    let s = tmux.wait_for(&["prediction:", "best.safetensors", "glioma", "pituitary", "Grad-CAM off"], 60);
    assert!(s.contains('%'), "{s}");
    tmux.keys("g");
    tmux.wait_for(&["Grad-CAM: ", "(plain, "], 60);
    tmux.keys("]");
    tmux.wait_for(&["Grad-CAM: glioma (plain"], 60);
    tmux.keys("Escape");
    let after = tmux.wait_for(&["1 Dashboard"], 20);
    assert!(epoch_of(&after) > before, "training went on: epoch {before} then {}", epoch_of(&after));
    tmux.keys("S");
    tmux.wait_for(&["training finished"], 60);
}

/// `predict --browse` opens the gallery over any folder: class subfolders give the truth, so the
/// misclassified filter and the confusion view work on it; arrow keys move; `q` leaves.
#[test]
fn browse_a_folder_with_a_runs_predictions() {
    let phantoms = tempfile::tempdir().unwrap();
    let data = common::real_or_synthetic(phantoms.path());
    let t = tempfile::tempdir().unwrap();
    let runs = t.path().join("runs");
    let cache = t.path().join("cache");
    let o = common::train_small(&data, &runs, &cache, &["--limit-per-class", "12", "--epochs", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = run_dir(&runs);
    // A folder of someone else's: 3 real images per class, in class subfolders.
    let folder = t.path().join("scans");
    for class in ["glioma", "meningioma", "notumor", "pituitary"] {
        let mut v: Vec<_> = std::fs::read_dir(data.join("Training").join(class)).unwrap().flatten().map(|e| e.path()).collect();
        v.sort();
        std::fs::create_dir_all(folder.join(class)).unwrap();
        for p in v.iter().rev().take(3) {
            std::fs::copy(p, folder.join(class).join(p.file_name().unwrap())).unwrap();
        }
    }
    let name = format!("tumorscope-browse-{}", std::process::id());
    let cmd = format!(
        "env TUMORSCOPE_IMAGES=halfblocks {} predict --run {} --browse {}; sleep 30",
        common::bin().display(),
        run.display(),
        folder.display()
    );
    let tmux = Tmux::start(&name, &cmd);
    let s = tmux.wait_for(&["test · all", "1/12", "READ-ONLY"], 60);
    assert!(s.contains(" → "), "{s}");
    tmux.keys("Down");
    tmux.wait_for(&["2/12"], 20);
    tmux.keys("f");
    tmux.wait_for(&["misclassified"], 20);
    tmux.keys("2");
    tmux.wait_for(&["2 Confusion"], 20);
    tmux.keys("q");
    tmux.wait_for(&["run folder:"], 20);
}
