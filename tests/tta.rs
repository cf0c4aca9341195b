//! Test-time augmentation from the command line: `eval --tta` and `predict --tta` take the views
//! (`flip`, `shift=N`, both), say which they used, and refuse a bad spec with one clear line; a run
//! trained with `--tta` scores its final test report with it.

mod common;
use common::{bin, train_small};
use std::process::Command;

#[test]
fn eval_and_predict_average_over_the_views_they_name() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    common::three_classes(&data);
    let runs = t.path().join("runs");
    let cache = t.path().join("cache");
    let o = train_small(&data, &runs, &cache, &["--epochs", "1", "--tta", "flip,shift=2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = std::fs::read_dir(&runs).unwrap().flatten().next().unwrap().path();
    let meta = std::fs::read_to_string(run.join("run.json")).unwrap();
    assert!(meta.contains("flip,shift=2"), "the run records its TTA: {meta}");

    let eval = |spec: &str| {
        let o = Command::new(bin())
            .args(["eval", run.to_str().unwrap(), "--json", "--tta", spec])
            .env("TUMORSCOPE_CACHE", &cache)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    assert_eq!(eval("flip")["tta"], "TTA: mirror (2 views)");
    assert_eq!(eval("flip,shift=2")["tta"], "TTA: mirror and shifts of 2 px (10 views)");

    let o = Command::new(bin()).args(["eval", run.to_str().unwrap(), "--tta", "rotate"]).env("TUMORSCOPE_CACHE", &cache).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown view 'rotate'") && err.trim().lines().count() == 1, "{err}");

    let o = Command::new(bin())
        .args(["predict", "--run", run.to_str().unwrap(), "--json", "--tta", "--", data.join("beta/000.png").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sum: f64 = v["probabilities"].as_object().unwrap().values().map(|p| p.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{v}");
}
