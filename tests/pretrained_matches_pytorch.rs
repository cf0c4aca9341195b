//! The Rust EfficientNet-Lite0 loads the ImageNet weights correctly: for one fixed image its 1000-class
//! logits agree with PyTorch's (same weights, same input) within 1e-3. The reference is generated here
//! with the project venv's torch (scripts/reference_logits.py).

use std::path::Path;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Tensor};
use tumorscope::model::lite0::{Head, Lite0};
use tumorscope::model::weights;

#[test]
fn imagenet_logits_agree_with_pytorch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let w = weights::lite0_weights_path();
    assert!(python.exists() && w.exists(), "run scripts/setup.sh first ({} / {})", python.display(), w.display());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ref.safetensors");
    let status = std::process::Command::new(&python)
        .arg(root.join("scripts/reference_logits.py"))
        .arg("--weights")
        .arg(&w)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "reference script failed");
    let named = Tensor::read_safetensors(&out).unwrap();
    let get = |n: &str| named.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
    let (input, expected) = (get("input"), get("logits"));

    for channels_last in [false, true] {
        let mut vs = VarStore::new(Device::Cpu);
        let net = Lite0::new(&vs.root(), Head::ImageNet, 0.2, 0.01);
        weights::load_checkpoint(&mut vs, &w).unwrap(); // every variable must be in the file
        let x = if channels_last {
            weights::to_channels_last(&vs).unwrap();
            tumorscope::data::batch::channels_last(&input).unwrap()
        } else {
            input.shallow_clone()
        };
        let got = tch::no_grad(|| net.forward_t(&x, false));
        let diff = (&got - &expected).abs().max().double_value(&[]);
        assert!(diff < 1e-3, "channels_last={channels_last}: max |Δlogit| = {diff}");
        assert_eq!(got.argmax(-1, false).int64_value(&[0]), expected.argmax(-1, false).int64_value(&[0]));
    }
}
