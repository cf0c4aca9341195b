//! Real MRI: a short EfficientNet-Lite0 training on a small stratified subset of the shared dataset,
//! then the checkpoint reloaded by `eval` must reproduce the trainer's test predictions exactly.

mod common;
use std::process::Command;

#[test]
fn short_pretrained_training_on_real_mri_learns_and_reloads() {
    let Some(data) = common::real_data("short_pretrained_training_on_real_mri_learns_and_reloads") else { return };
    let t = tempfile::tempdir().unwrap();
    let runs = t.path().join("runs");
    let o = Command::new(common::bin())
        .args([
            "train",
            "--no-tui",
            "--data",
            data.to_str().unwrap(),
            "--limit-per-class",
            "100",
            "--epochs",
            "3",
            "--image-size",
            "128",
            "--runs-dir",
            runs.to_str().unwrap(),
        ])
        .env("TUMORSCOPE_CACHE", t.path().join("cache"))
        .env("TUMORSCOPE_WEIGHTS", tumorscope::model::weights::lite0_weights_path())
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    assert!(out.contains("efficientnet-lite0 (ImageNet)"), "{out}");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let acc = report["accuracy"].as_f64().unwrap();
    // 4 classes (chance 0.25). Measured with seeds 1, 2 and 3: 0.767, 0.750, 0.767 on the 60 test images.
    // The bar sits nine images below the worst of them, so no machine or lucky draw decides it.
    assert!(acc >= 0.6, "test accuracy {acc} after 3 epochs on 400 real images:\n{out}");

    let o = Command::new(common::bin())
        .args(["eval", run.to_str().unwrap(), "--json"])
        .env("TUMORSCOPE_CACHE", t.path().join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(eval["report"]["confusion"], report["confusion"], "reloaded checkpoint must predict exactly as in training");
}
