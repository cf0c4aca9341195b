//! Near-duplicate grouping in the split, on a fixture built at test time from real MRI: `Testing/`
//! holds distinct slices plus a byte copy, a re-encoded copy and a resized copy of training images.
//! `train` drops the byte copy as exact and the others as near copies (threshold 0: the byte copy only),
//! and `eval --exclude-near-duplicates` scores a run that kept them both with and without them.

mod common;
use std::path::Path;
use std::process::Command;

const CLASSES: [&str; 4] = ["glioma", "meningioma", "notumor", "pituitary"];

fn real_images(data: &Path, class: &str, n: usize) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(data.join("Training").join(class)).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    v.into_iter().step_by(53).take(n).collect() // spread out: not neighbours in the listing
}

fn fixture(data: &Path, root: &Path) {
    for class in CLASSES {
        let imgs = real_images(data, class, 16);
        for (i, p) in imgs.iter().enumerate() {
            let split = if i < 12 { "Training" } else { "Testing" };
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(p, dir.join(format!("{i}.jpg"))).unwrap();
        }
    }
    let g = root.join("Training/glioma");
    std::fs::copy(g.join("0.jpg"), root.join("Testing/glioma/byte-copy.jpg")).unwrap();
    let one = image::open(g.join("1.jpg")).unwrap().to_rgb8();
    let mut q = std::fs::File::create(root.join("Testing/glioma/q60.jpg")).unwrap();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut q, 60).encode_image(&one).unwrap();
    let m = image::open(root.join("Training/meningioma/0.jpg")).unwrap().to_rgb8();
    image::imageops::resize(&m, 160, 160, image::imageops::FilterType::Triangle).save(root.join("Testing/meningioma/small.png")).unwrap();
}

fn train(root: &Path, runs: &Path, cache: &Path, extra: &[&str]) -> (std::path::PathBuf, String) {
    let mut args = vec!["train", "--no-tui", "--data", root.to_str().unwrap(), "--model", "small-cnn", "--image-size", "64"];
    args.extend_from_slice(&["--epochs", "1", "--runs-dir", runs.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let o = Command::new(common::bin()).args(&args).env("TUMORSCOPE_CACHE", cache).env_remove("TUMORSCOPE_DATA").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    let run = std::fs::read_dir(runs).unwrap().flatten().map(|e| e.path()).max().unwrap();
    (run, err)
}

fn recorded(run: &Path, split: &str) -> Vec<String> {
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("split.json")).unwrap()).unwrap();
    let mut v: Vec<String> =
        rec["files"].as_array().unwrap().iter().filter(|f| f["split"] == split).map(|f| f["path"].as_str().unwrap().to_string()).collect();
    v.sort();
    v
}

#[test]
fn near_copies_of_training_images_leave_the_test_split() {
    let Some(data) = common::real_data("near_copies_of_training_images_leave_the_test_split") else { return };
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("fixture");
    fixture(&data, &root);
    let cache = t.path().join("cache");

    let (run, err) = train(&root, &t.path().join("grouped"), &cache, &[]);
    assert!(err.contains("dropped 1 test image(s) as exact and 2 as near copies of training images"), "{err}");
    let excluded = recorded(&run, "excluded");
    assert_eq!(excluded, vec!["Testing/glioma/byte-copy.jpg", "Testing/glioma/q60.jpg", "Testing/meningioma/small.png"]);
    assert_eq!(recorded(&run, "test").len(), 16, "the distinct test slices all stay");

    let (exact_only, err) = train(&root, &t.path().join("exact"), &cache, &["--near-duplicate-threshold", "0"]);
    assert!(err.contains("dropped 1 test image(s) as exact and 0 as near copies"), "{err}");
    assert_eq!(recorded(&exact_only, "test").len(), 18);

    let o = Command::new(common::bin())
        .args(["eval", exact_only.to_str().unwrap(), "--exclude-near-duplicates", "--json"])
        .env("TUMORSCOPE_CACHE", &cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 18);
    let honest = &v["without_copies_of_training"];
    assert_eq!((honest["exact_copies"].as_u64(), honest["near_copies"].as_u64(), honest["images"].as_u64()), (Some(0), Some(2), Some(16)));

    // Not a test split: refused with a clear line.
    let o = Command::new(common::bin())
        .args(["eval", exact_only.to_str().unwrap(), "--exclude-near-duplicates", "--split", "val"])
        .env("TUMORSCOPE_CACHE", &cache)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--exclude-near-duplicates scores a test split"));
}
