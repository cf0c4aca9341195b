//! `tumorscope audit` on a fixture built at test time from real MRI: a byte copy, a JPEG re-encoded at
//! another quality, a resized copy and a brighter copy of one slice are found (and a copy placed in
//! Testing/ is a leak that --fail-on-leak turns into exit code 3); the other real slices, two per class,
//! are not flagged.

mod common;
use std::path::Path;
use std::process::Command;

fn real_images(data: &Path, class: &str, n: usize) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(data.join("Training").join(class)).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    v.into_iter().step_by(97).take(n).collect() // spread out: not neighbours in the listing
}

#[test]
fn planted_duplicates_are_found_and_distinct_slices_are_not() {
    let Some(data) = common::real_data("planted_duplicates_are_found_and_distinct_slices_are_not") else { return };
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("fixture");
    for class in ["glioma", "meningioma", "notumor", "pituitary"] {
        let dir = root.join("Training").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, p) in real_images(&data, class, 2).iter().enumerate() {
            std::fs::copy(p, dir.join(format!("{i}.jpg"))).unwrap();
        }
    }
    let g = root.join("Training/glioma");
    let original = image::open(g.join("0.jpg")).unwrap().to_rgb8();
    std::fs::copy(g.join("0.jpg"), g.join("copy.jpg")).unwrap();
    let mut q = std::fs::File::create(g.join("q60.jpg")).unwrap();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut q, 60).encode_image(&original).unwrap();
    image::imageops::resize(&original, 160, 160, image::imageops::FilterType::Triangle).save(g.join("small.png")).unwrap();
    image::RgbImage::from_fn(original.width(), original.height(), |x, y| {
        let p = original.get_pixel(x, y);
        image::Rgb([p[0].saturating_add(25), p[1].saturating_add(25), p[2].saturating_add(25)])
    })
    .save(g.join("bright.png"))
    .unwrap();
    std::fs::create_dir_all(root.join("Testing/glioma")).unwrap();
    std::fs::copy(g.join("1.jpg"), root.join("Testing/glioma/leaked.jpg")).unwrap();

    let o = Command::new(common::bin()).args(["audit", root.to_str().unwrap(), "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let groups = a["groups"].as_array().unwrap();
    let files = |g: &serde_json::Value| {
        let mut v: Vec<String> = g["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    let exact: Vec<_> = groups.iter().filter(|g| g["kind"] == "exact").collect();
    let near: Vec<_> = groups.iter().filter(|g| g["kind"] == "near").collect();
    assert_eq!(exact.len(), 2, "{groups:#?}");
    assert!(exact.iter().any(|g| files(g) == vec!["Training/glioma/0.jpg", "Training/glioma/copy.jpg"]));
    let leak = exact.iter().find(|g| g["scope"] == "train_test").expect("the Testing/ copy is a leak");
    assert_eq!(files(leak), vec!["Testing/glioma/leaked.jpg", "Training/glioma/1.jpg"]);
    assert_eq!(near.len(), 1, "only the planted variants: {groups:#?}");
    assert_eq!(
        files(near[0]),
        vec![
            "Training/glioma/0.jpg",
            "Training/glioma/bright.png",
            "Training/glioma/copy.jpg",
            "Training/glioma/q60.jpg",
            "Training/glioma/small.png"
        ]
    );
    assert_eq!(a["counts"]["glioma"]["train"], 6);
    assert_eq!(a["counts"]["glioma"]["test"], 1);

    let o = Command::new(common::bin()).args(["audit", root.to_str().unwrap(), "--fail-on-leak"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("exact, Training ↔ Testing") && text.contains("put a copy of a training image in Testing/"), "{text}");
    // Threshold 0: exact copies only.
    let o = Command::new(common::bin()).args(["audit", root.to_str().unwrap(), "--threshold", "0", "--json"]).output().unwrap();
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(a["groups"].as_array().unwrap().iter().all(|g| g["kind"] == "exact"));
}
