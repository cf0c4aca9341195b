//! The GPU path: two epochs of EfficientNet-Lite0 on a small real subset on CUDA, in f32 and in each
//! mixed precision (`--amp bf16`, `--amp fp16`), then the test accuracy. Skipped, with a note on
//! stderr, where there is no NVIDIA driver, where libtorch sees no CUDA device, or without the real
//! data (`TUMORSCOPE_TEST_DATA`).

mod common;

/// Train on CUDA with `amp` and check the run used the GPU in that precision and learned.
fn two_epochs_on_cuda(name: &str, amp: &str) {
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
    let args = ["--device", "cuda", "--amp", amp, "--data", data.to_str().unwrap(), "--limit-per-class", "150", "--epochs", "2"];
    let (out, _, acc) = common::train_real(t.path(), &args);
    assert!(out.contains("on cuda:0"), "the run did not use the GPU:\n{out}");
    if amp != "off" {
        assert!(out.contains(&format!("amp {amp}")), "the run did not say it trained in {amp}:\n{out}");
    }
    eprintln!("{name}: test accuracy {acc:.4}");
    // 600 images, 4 classes (chance 0.25); the CPU run of tests/real_data.rs (400 images, 3 epochs at
    // 128 px) scores 0.75–0.77, so 0.6 leaves room for the GPU's different float rounding.
    assert!(acc >= 0.6, "test accuracy {acc} after 2 epochs on CUDA (--amp {amp}):\n{out}");
}

#[test]
fn two_epochs_on_cuda_learn_real_mri() {
    two_epochs_on_cuda("two_epochs_on_cuda_learn_real_mri", "off");
}

#[test]
fn two_epochs_on_cuda_in_bf16_learn_real_mri() {
    two_epochs_on_cuda("two_epochs_on_cuda_in_bf16_learn_real_mri", "bf16");
}

#[test]
fn two_epochs_on_cuda_in_fp16_learn_real_mri() {
    two_epochs_on_cuda("two_epochs_on_cuda_in_fp16_learn_real_mri", "fp16");
}

/// `--amp` really casts on CUDA: under the trainer's autocast a matrix product comes out in the chosen
/// 16-bit kind, and plain f32 again after it.
#[test]
fn autocast_casts_to_the_chosen_kind_on_cuda() {
    let name = "autocast_casts_to_the_chosen_kind_on_cuda";
    if !tumorscope::cuda_runtime::driver_present() {
        eprintln!("SKIPPED {name}: no NVIDIA driver on this machine");
        return;
    }
    let device = match tumorscope::device::parse_device("cuda") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("SKIPPED {name}: {e}");
            return;
        }
    };
    use tumorscope::config::Amp;
    let x = tch::Tensor::ones([8, 8], (tch::Kind::Float, device));
    for (amp, kind) in [(Amp::Bf16, tch::Kind::BFloat16), (Amp::Fp16, tch::Kind::Half), (Amp::Off, tch::Kind::Float)] {
        let y = tumorscope::train::amp::autocast(amp, device, || x.matmul(&x)).unwrap();
        assert_eq!(y.kind(), kind, "--amp {}", amp.name());
        assert_eq!(x.matmul(&x).kind(), tch::Kind::Float, "autocast is off again after --amp {}", amp.name());
    }
}
