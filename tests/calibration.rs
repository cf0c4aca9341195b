//! Temperature scaling end to end: training fits a temperature on the validation split and stores it
//! beside the checkpoint; `eval` reports ECE and Brier raw and calibrated (`--fit-temperature` refits,
//! `--uncalibrated` ignores it); `predict` shows calibrated probabilities unless `--uncalibrated`, and
//! calibration never changes the predicted class. `predict --save-cam` writes one overlay per image.

mod common;
use common::{bin, train_small};
use std::process::Command;

#[test]
fn a_trained_run_is_calibrated_and_says_so() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    common::three_classes(&data);
    let runs = t.path().join("runs");
    let cache = t.path().join("cache");
    let o = train_small(&data, &runs, &cache, &["--epochs", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("calibrated on"), "{}", String::from_utf8_lossy(&o.stdout));
    let run = std::fs::read_dir(&runs).unwrap().flatten().next().unwrap().path();
    let cal: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("calibration.json")).unwrap()).unwrap();
    let temperature = cal["temperature"].as_f64().unwrap();
    assert!(temperature > 0.0 && cal["checkpoint"] == "best.safetensors" && cal["fitted_on"] == "val", "{cal}");

    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", run.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let o = Command::new(bin()).args(&args).env("TUMORSCOPE_CACHE", &cache).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let v = eval(&[]);
    let c = &v["calibration"];
    assert_eq!(c["bins"], 15);
    assert!((c["temperature"].as_f64().unwrap() - temperature).abs() < 1e-12, "{c}");
    for k in ["ece", "brier", "ece_calibrated", "brier_calibrated"] {
        let x = c[k].as_f64().unwrap_or(-1.0);
        assert!((0.0..=2.0).contains(&x), "{k} = {x}");
    }
    assert!(eval(&["--uncalibrated"])["calibration"]["temperature"].is_null());
    // Refitting on the same recorded validation split gives the same temperature.
    let refit = eval(&["--fit-temperature"]);
    assert!((refit["calibration"]["temperature"].as_f64().unwrap() - temperature).abs() < 1e-6, "{refit}");

    let beta = data.join("beta");
    let predict = |extra: &[&str]| {
        let mut args = vec!["predict", "--run", run.to_str().unwrap(), "--json", beta.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = Command::new(bin()).args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>()
    };
    let calibrated = predict(&[]);
    let raw = predict(&["--uncalibrated"]);
    assert_eq!(calibrated.len(), 24);
    for (a, b) in calibrated.iter().zip(&raw) {
        assert_eq!(a["class"], b["class"], "calibration changed a prediction");
        assert!((a["calibrated"].as_f64().unwrap() - temperature).abs() < 1e-12);
        assert!(b["calibrated"].is_null());
        let sum: f64 = a["probabilities"].as_object().unwrap().values().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{a}");
    }
    // --save-cam writes one overlay per image (same-named files from two folders do not collide).
    let cams = t.path().join("cams");
    let o = Command::new(bin())
        .args(["predict", "--run", run.to_str().unwrap(), "--no-image", "--save-cam", cams.to_str().unwrap()])
        .args([data.join("alpha/000.png"), data.join("beta/000.png")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Grad-CAM (plain"), "{}", String::from_utf8_lossy(&o.stdout));
    for name in ["000.cam.png", "000-2.cam.png"] {
        let img = image::open(cams.join(name)).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (48, 40), "{name}: the overlay keeps the image's size");
    }
    let o = Command::new(bin()).args(["eval", run.to_str().unwrap(), "--fit-temperature", "--uncalibrated"]).output().unwrap();
    assert!(!o.status.success(), "conflicting flags are refused");
}
