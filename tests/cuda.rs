//! The GPU path: two epochs of EfficientNet-Lite0 on a small real subset on CUDA, then the test
//! accuracy. Skipped, with a note on stderr, where there is no NVIDIA driver, where libtorch sees no
//! CUDA device, or without the real data (`TUMORSCOPE_TEST_DATA`).

mod common;
use std::process::Command;

#[test]
fn two_epochs_on_cuda_learn_real_mri() {
    let name = "two_epochs_on_cuda_learn_real_mri";
    if !tumorscope::cuda_runtime::driver_present() {
        eprintln!("SKIPPED {name}: no NVIDIA driver on this machine");
        return;
    }
    if let Err(e) = tumorscope::device::parse_device("cuda") {
        eprintln!("SKIPPED {name}: {e}");
        return;
    }
    let Some(data) = common::real_data(name) else { return };
    let t = tempfile::tempdir().unwrap();
    let runs = t.path().join("runs");
    let o = Command::new(common::bin())
        .args(["train", "--no-tui", "--device", "cuda", "--data", data.to_str().unwrap(), "--limit-per-class", "150"])
        .args(["--epochs", "2", "--runs-dir", runs.to_str().unwrap()])
        .env("TUMORSCOPE_CACHE", t.path().join("cache"))
        .env("TUMORSCOPE_WEIGHTS", tumorscope::model::weights::lite0_weights_path())
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    assert!(out.contains("on cuda:0"), "the run did not use the GPU:\n{out}");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let acc = report["accuracy"].as_f64().unwrap();
    // 600 images, 4 classes (chance 0.25); the CPU run of tests/real_data.rs (400 images, 3 epochs at
    // 128 px) scores 0.75–0.77, so 0.6 leaves room for the GPU's different float rounding.
    assert!(acc >= 0.6, "test accuracy {acc} after 2 epochs on CUDA:\n{out}");
}
