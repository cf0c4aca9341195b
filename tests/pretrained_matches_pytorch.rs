//! The Rust EfficientNet-Lite0 loads the ImageNet weights correctly: for one fixed image its 1000-class
//! logits agree with PyTorch's (same weights, same input) within 1e-3, and so does its Grad-CAM map of
//! the top class (within 1e-3 on the 0..1 map). Its BatchNorm-folded inference copy gives the same
//! logits within 1e-4. The reference is generated here with the project venv's
//! torch (scripts/reference_logits.py).

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
    let (cam_ref, cam_class) = (get("cam"), get("cam_class").int64_value(&[0]) as usize);

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

        // The BatchNorm-folded copy eval and predict run: the same logits within 1e-4.
        let folded = net.fold().unwrap();
        let got_folded = tch::no_grad(|| folded.forward_t(&x, false));
        let fold_diff = (&got_folded - &got).abs().max().double_value(&[]);
        eprintln!("channels_last={channels_last}: folded vs unfolded max |Δlogit| = {fold_diff:e}");
        assert!(fold_diff <= 1e-4, "channels_last={channels_last}: folded network differs by {fold_diff}");

        let cam = tumorscope::model::gradcam::grad_cam(&net, &x, None).unwrap();
        assert_eq!(cam.class, cam_class, "Grad-CAM explains the top class");
        assert_eq!((cam.h as i64, cam.w as i64), (cam_ref.size()[0], cam_ref.size()[1]));
        let want = Vec::<f32>::try_from(cam_ref.flatten(0, -1)).unwrap();
        let worst = cam.map.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "channels_last={channels_last}: max |Δcam| = {worst}; {:?} vs {want:?}", cam.map);
        assert!(want.iter().any(|v| *v > 0.0) && want.iter().any(|v| *v < 0.99), "the reference map is not flat");
    }
}
