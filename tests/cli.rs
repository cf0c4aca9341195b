//! The real binary end to end: train (headless) on generated images, eval, predict, bad input.

mod common;
use common::{bin, write_image};
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str], cache: &Path) -> Output {
    Command::new(bin()).args(args).env("TUMORSCOPE_CACHE", cache).env_remove("TUMORSCOPE_DATA").output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Three classes × 24 images, plus a zero-byte, a truncated and a non-image file.
fn dataset(root: &Path) {
    for (c, name) in ["alpha", "beta", "gamma"].iter().enumerate() {
        for i in 0..24 {
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            write_image(&root.join(name).join(format!("{i:03}.{ext}")), c, i);
        }
    }
    std::fs::write(root.join("alpha/empty.jpg"), b"").unwrap();
    let png = std::fs::read(root.join("beta/000.png")).unwrap();
    std::fs::write(root.join("beta/truncated.png"), &png[..png.len() / 3]).unwrap();
    std::fs::write(root.join("gamma/notes.txt"), b"not an image").unwrap();
}

fn only_run(runs: &Path) -> std::path::PathBuf {
    let mut v: Vec<_> = std::fs::read_dir(runs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v.pop().unwrap()
}

#[test]
fn train_eval_predict_round_trip_with_bad_files() {
    let t = tempfile::tempdir().unwrap();
    let (data, runs, cache) = (t.path().join("data"), t.path().join("runs"), t.path().join("cache"));
    dataset(&data);
    let o = common::train_small(&data, &runs, &cache, &["--epochs", "2", "--val-fraction", "0.2", "--test-fraction", "0.2"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for bad in ["empty.jpg: skipped: empty file", "truncated.png: skipped: corrupt or truncated", "notes.txt: skipped: not an image"] {
        assert!(out.contains(bad), "missing warning '{bad}' in:\n{out}");
    }
    assert!(out.contains("3 skipped"), "{out}");
    assert!(out.contains("epoch  1/2") && out.contains("val_acc") && out.contains("img/s") && out.contains("ETA"), "{out}");
    assert!(out.contains("precision    recall  f1-score   support"), "{out}");

    let run_dir = only_run(&runs);
    for f in ["events.jsonl", "run.json", "config.toml", "best.safetensors", "last.safetensors", "report.json"] {
        assert!(run_dir.join(f).exists(), "{f} missing");
    }
    let events = tumorscope::run::log::read_log(&run_dir.join("events.jsonl")).unwrap().records;
    assert!(events.iter().any(|r| matches!(r.event, tumorscope::run::TrainEvent::Finished { .. })));
    assert!(run_dir.join("resume.json").exists() && run_dir.join("process.json").exists());

    // Reloading the best checkpoint gives the very predictions training reported on the test split.
    let o = run(&["eval", run_dir.to_str().unwrap(), "--json"], &cache);
    assert!(o.status.success(), "{}", text(&o));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let trained: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(eval["report"]["confusion"], trained["confusion"]);
    assert_eq!(eval["report"]["accuracy"], trained["accuracy"]);

    let o = run(&["eval", run_dir.to_str().unwrap()], &cache);
    assert!(text(&o).contains("weighted avg") && text(&o).contains("confusion matrix"), "{}", text(&o));
    // bf16 inference exists for Lite0 only: a small-cnn run says so in one line naming the run.
    let o = run(&["eval", run_dir.to_str().unwrap(), "--bf16"], &cache);
    assert!(!o.status.success());
    assert!(text(&o).contains("--bf16 needs an efficientnet-lite0 run (this one is small-cnn)"), "{}", text(&o));

    // predict: bad files get one line each, the others are still predicted.
    let good = data.join("gamma/000.png");
    let o = run(
        &[
            "predict",
            "--run",
            run_dir.to_str().unwrap(),
            "--no-image",
            good.to_str().unwrap(),
            data.join("alpha/empty.jpg").to_str().unwrap(),
            "/nonexistent.png",
            data.join("beta").to_str().unwrap(),
        ],
        &cache,
    );
    let out = text(&o);
    assert!(!o.status.success());
    assert!(out.contains("empty.jpg: empty file"), "{out}");
    assert!(out.contains("/nonexistent.png: no such file or folder"), "{out}");
    assert!(out.contains("truncated.png: corrupt or truncated"), "{out}");
    assert_eq!(out.matches("prediction:").count(), 1 + 24, "{out}");
    assert!(out.contains("alpha") && out.contains("gamma"));

    let o = run(&["predict", "--run", run_dir.to_str().unwrap(), "--json", good.to_str().unwrap()], &cache);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sum: f64 = v["probabilities"].as_object().unwrap().values().map(|p| p.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{v}");

    predict_stops_when_stdout_is_closed(&run_dir, &data, &cache);
}

/// `predict DIR | head`: once nothing reads stdout, the rest of the folder is not predicted. A broken
/// file sorts last, after 40 good ones (three batches): reached, it fails the command; never reached, the
/// command ends cleanly.
fn predict_stops_when_stdout_is_closed(run_dir: &Path, data: &Path, cache: &Path) {
    let late = data.parent().unwrap().join("late");
    std::fs::create_dir_all(&late).unwrap();
    for i in 0..40 {
        std::fs::copy(data.join(format!("gamma/{:03}.png", 2 * (i % 12))), late.join(format!("{i:03}.png"))).unwrap();
    }
    std::fs::write(late.join("zz.png"), b"not an image").unwrap();
    let args = ["predict", "--run", run_dir.to_str().unwrap(), "--json", late.to_str().unwrap()];
    // Read to the end, the folder fails on its last file.
    let o = run(&args, cache);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("zz.png: not an image"), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 40);
    // stdout is a pipe whose reader is already gone: the first line fails, and predict stops there.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let o = Command::new(bin())
        .args(args)
        .env("TUMORSCOPE_CACHE", cache)
        .stdout(std::process::Stdio::from(writer))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("zz.png"), "predicted on after stdout closed: {err}");
}

#[test]
fn dataset_errors_are_one_clear_line() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let o = run(&["train", "--no-tui", "--data", "/definitely/missing"], &cache);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "error: /definitely/missing: no such folder");

    let one = t.path().join("one");
    write_image(&one.join("only/a.png"), 0, 0);
    let o = run(&["train", "--no-tui", "--data", one.to_str().unwrap()], &cache);
    assert!(!o.status.success());
    assert!(text(&o).contains("need at least two"), "{}", text(&o));

    let empty = t.path().join("empty");
    write_image(&empty.join("a/a.png"), 0, 0);
    std::fs::create_dir_all(empty.join("b")).unwrap();
    std::fs::write(empty.join("b/broken.jpg"), b"").unwrap();
    let o = run(&["train", "--no-tui", "--data", empty.to_str().unwrap()], &cache);
    assert!(!o.status.success());
    assert!(text(&o).contains("class 'b' has no readable images"), "{}", text(&o));

    let o = run(&["train", "--no-tui", "--synthetic", "--batch-size", "0"], &cache);
    assert!(text(&o).contains("batch_size must be at least 1"), "{}", text(&o));
    assert!(!text(&o).contains("panicked"));
}

#[test]
fn synthetic_demo_is_labelled_and_learns() {
    let t = tempfile::tempdir().unwrap();
    let (runs, cache) = (t.path().join("runs"), t.path().join("cache"));
    let o = run(
        &[
            "train",
            "--no-tui",
            "--synthetic",
            "--model",
            "small-cnn",
            "--image-size",
            "64",
            "--epochs",
            "6",
            "--lr",
            "1e-3",
            "--runs-dir",
            runs.to_str().unwrap(),
        ],
        &cache,
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("SYNTHETIC"), "{out}");
    assert!(out.contains("Brain Tumor MRI Dataset"), "must say how to get the real data: {out}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(only_run(&runs).join("report.json")).unwrap()).unwrap();
    let acc = report["accuracy"].as_f64().unwrap();
    assert!(acc > 0.6, "phantom classes should be learnable (4 classes, chance 0.25): test accuracy {acc}");
}

/// `device`, `runs_dir` and `data` can live in the config file (same names as the flags); flags win;
/// a bad value names the file and the key; an escape sequence in a file name never reaches the terminal.
#[test]
fn config_file_holds_run_settings_and_names_are_sanitised() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let data = t.path().join("data");
    dataset(&data);
    std::fs::write(data.join("alpha/evil\u{1b}]0;owned\u{7}.jpg"), b"").unwrap();
    let runs = t.path().join("from-file");
    let cfg = t.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "model = \"small-cnn\"\nimage_size = 32\nepochs = 1\nbatch_size = 16\ndevice = \"cpu\"\nruns_dir = \"{}\"\ndata = \"{}\"\n",
            runs.display(),
            data.display()
        ),
    )
    .unwrap();
    let o = run(&["train", "--no-tui", "--config", cfg.to_str().unwrap()], &cache);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 1, "the run went to the file's runs_dir");
    let out = text(&o);
    assert!(out.contains("evil?]0;owned?.jpg: skipped: empty file"), "{out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "control characters reached the terminal");
    let other = t.path().join("from-flag");
    let o = run(&["train", "--no-tui", "--config", cfg.to_str().unwrap(), "--runs-dir", other.to_str().unwrap()], &cache);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1, "the flag wins over the file");
    std::fs::write(&cfg, "device = \"tpu\"\n").unwrap();
    let o = run(&["train", "--no-tui", "--config", cfg.to_str().unwrap()], &cache);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("c.toml") && e.contains("device = \"tpu\": expected one of auto, cpu, cuda, cuda:N"), "{e}");
}

/// eval scores the split the run recorded: after 10 files are lost (3 of them test images) it says so
/// and scores the rest of that test split, not a new split. Another folder (here: only `Testing/`)
/// is scored whole.
#[test]
fn eval_scores_the_recorded_split_and_another_folder_whole() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let data = t.path().join("data");
    dataset(&data);
    let runs = t.path().join("runs");
    let o = common::train_small(&data, &runs, &cache, &["--epochs", "1", "--test-fraction", "0.3"]);
    assert!(o.status.success(), "{}", text(&o));
    let run_dir = only_run(&runs);
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("split.json")).unwrap()).unwrap();
    let files = record["files"].as_array().unwrap();
    let of =
        |split: &str| files.iter().filter(|f| f["split"] == split).map(|f| f["path"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (test, train) = (of("test"), of("train"));
    assert!(test.len() >= 6, "{test:?}");
    for p in test.iter().take(3).chain(train.iter().take(7)) {
        std::fs::remove_file(data.join(p)).unwrap();
    }
    let o = run(&["eval", run_dir.to_str().unwrap(), "--json"], &cache);
    assert!(o.status.success(), "{}", text(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["split"], "test");
    assert_eq!(e["images"].as_u64().unwrap() as usize, test.len() - 3, "the rest of the recorded test split");
    let note = e["notes"][0].as_str().unwrap();
    assert!(note.starts_with(&format!("3 of the {} recorded test images are missing", test.len())), "{note}");

    let other = t.path().join("other");
    for class in ["alpha", "beta", "gamma"] {
        for i in 0..4 {
            let src = std::fs::read_dir(data.join(class))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "png"))
                .nth(i)
                .unwrap();
            std::fs::create_dir_all(other.join("Testing").join(class)).unwrap();
            std::fs::copy(&src, other.join("Testing").join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    let o = run(&["eval", run_dir.to_str().unwrap(), "--data", other.to_str().unwrap(), "--json"], &cache);
    assert!(o.status.success(), "{}", text(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((e["split"].as_str().unwrap(), e["images"].as_u64().unwrap()), ("all", 12), "every image of the other folder");
    assert!(e["notes"][0].as_str().unwrap().contains("every image in it is evaluated"));
}

/// `--amp` on a CPU run: it trains in f32, says so once, and records the setting in the run's config.
#[test]
fn amp_on_a_cpu_trains_in_f32_and_says_so() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let data = t.path().join("data");
    dataset(&data);
    let runs = t.path().join("runs");
    let o = common::train_small(&data, &runs, &cache, &["--epochs", "1", "--device", "cpu", "--amp", "bf16"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert_eq!(out.matches("--amp bf16 applies on CUDA only: this run trains in f32 on cpu").count(), 1, "{out}");
    let config = std::fs::read_to_string(only_run(&runs).join("config.toml")).unwrap();
    assert!(config.contains("amp = \"bf16\""), "{config}");
    let o = run(&["train", "--no-tui", "--synthetic", "--amp", "fp32"], &cache);
    assert!(!o.status.success());
    assert!(text(&o).contains("invalid value 'fp32' for '--amp"), "{}", text(&o));
}
