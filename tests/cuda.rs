//! The GPU path: two epochs of EfficientNet-Lite0 on a small real subset on CUDA, then the test
//! accuracy. Skipped, with a note on stderr, where there is no NVIDIA driver, where libtorch sees no
//! CUDA device, or without the real data (`TUMORSCOPE_TEST_DATA`).

mod common;

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
    let (out, _, acc) =
        common::train_real(t.path(), &["--device", "cuda", "--data", data.to_str().unwrap(), "--limit-per-class", "150", "--epochs", "2"]);
    assert!(out.contains("on cuda:0"), "the run did not use the GPU:\n{out}");
    // 600 images, 4 classes (chance 0.25); the CPU run of tests/real_data.rs (400 images, 3 epochs at
    // 128 px) scores 0.75–0.77, so 0.6 leaves room for the GPU's different float rounding.
    assert!(acc >= 0.6, "test accuracy {acc} after 2 epochs on CUDA:\n{out}");
}
