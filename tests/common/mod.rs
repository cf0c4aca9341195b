//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod dicom;

use std::path::{Path, PathBuf};

/// The real dataset for tests that need real images: `$TUMORSCOPE_TEST_DATA`. `None` (and a note on
/// stderr) elsewhere, so those tests say they were skipped.
pub fn real_data(test: &str) -> Option<PathBuf> {
    match std::env::var_os("TUMORSCOPE_TEST_DATA").map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        Some(p) => panic!("TUMORSCOPE_TEST_DATA={} is not a folder", p.display()),
        None => {
            eprintln!("SKIPPED {test}: set TUMORSCOPE_TEST_DATA to the brain-tumor-mri folder to run it");
            None
        }
    }
}

/// Kill -9 the training process a run folder recorded, if it still runs: a failed test leaves nothing
/// behind.
pub fn kill_recorded_process(run: &Path) {
    if let Some(p) = tumorscope::run::RunDir::open(run).ok().and_then(|r| r.read_process())
        && p.pid != 0
        && tumorscope::run::dir::pid_alive(p.pid)
    {
        let _ = std::process::Command::new("kill").args(["-9", &p.pid.to_string()]).status();
    }
}

/// The real data (`$TUMORSCOPE_TEST_DATA`) when it is given; else the built-in synthetic phantoms of the
/// four classes (`Training/` 24 and `Testing/` 6 per class), written into `dir`. For tests that need real
/// files but no real pixels (the dashboard, runs that outlive their terminal): they run everywhere.
pub fn real_or_synthetic(dir: &Path) -> PathBuf {
    match std::env::var_os("TUMORSCOPE_TEST_DATA").map(PathBuf::from) {
        Some(p) if p.is_dir() => p,
        Some(p) => panic!("TUMORSCOPE_TEST_DATA={} is not a folder", p.display()),
        None => {
            let root = dir.join("phantoms");
            tumorscope::data::synthetic::write_set(&root, 24, 6).unwrap();
            root
        }
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tumorscope"))
}

/// `train --no-tui` of the small CNN at 32 px on `data` into `runs`, with `extra` flags; the dataset
/// cache in `cache`.
pub fn train_small(data: &Path, runs: &Path, cache: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "--no-tui", "--data", data.to_str().unwrap(), "--model", "small-cnn", "--image-size", "32"];
    args.extend_from_slice(&["--runs-dir", runs.to_str().unwrap()]);
    args.extend_from_slice(extra);
    std::process::Command::new(bin()).args(&args).env("TUMORSCOPE_CACHE", cache).env_remove("TUMORSCOPE_DATA").output().unwrap()
}

/// `train --no-tui` with `args` on real data (the converted ImageNet weights, the dataset cache in
/// `tmp`), which must succeed: its output, the run folder (the only one in `tmp/runs`) and the test
/// accuracy of its report.
pub fn train_real(tmp: &Path, args: &[&str]) -> (String, PathBuf, f64) {
    let runs = tmp.join("runs");
    let o = std::process::Command::new(bin())
        .args(["train", "--no-tui", "--runs-dir", runs.to_str().unwrap()])
        .args(args)
        .env("TUMORSCOPE_CACHE", tmp.join("cache"))
        .env("TUMORSCOPE_WEIGHTS", tumorscope::model::weights::lite0_weights_path())
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let acc = report["accuracy"].as_f64().unwrap();
    (out, run, acc)
}

/// Every tensor of a safetensors file (checkpoint, resume state, converted weights), by name.
pub fn read_tensors(path: &Path) -> std::collections::HashMap<String, tch::Tensor> {
    tch::Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

/// Write a small image (gray gradient with a class-dependent bright square) as PNG or JPEG.
pub fn write_image(path: &Path, class: usize, i: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::GrayImage::from_fn(48, 40, |x, y| {
        let inside = match class {
            0 => x < 16 && y < 16,
            1 => x > 30 && y > 22,
            _ => (18..30).contains(&x) && (14..26).contains(&y),
        };
        image::Luma([if inside { 230 } else { ((x + y + i as u32 * 7) % 60) as u8 }])
    });
    img.save(path).unwrap();
}

/// Three classes (alpha, beta, gamma) × 24 PNGs of `write_image`: enough for a tiny trained run.
pub fn three_classes(root: &Path) {
    for (c, name) in ["alpha", "beta", "gamma"].iter().enumerate() {
        for i in 0..24 {
            write_image(&root.join(name).join(format!("{i:03}.png")), c, i);
        }
    }
}

/// A tmux session running a command in a 100×30 pseudo-terminal, on a tmux server of its own (so
/// tests running side by side, or one session ending as the next starts, never share a server); the
/// session is killed when dropped.
pub struct Tmux(pub String);

impl Tmux {
    pub fn start(name: &str, cmd: &str) -> Tmux {
        let t = Tmux(name.to_string());
        let ok = t
            .tmux()
            .args(["new-session", "-d", "-s", name, "-x", "100", "-y", "30", cmd])
            .status()
            .expect("tmux is needed for this test (apt-get install tmux)");
        assert!(ok.success(), "tmux new-session {name} failed");
        t
    }

    fn tmux(&self) -> std::process::Command {
        let mut c = std::process::Command::new("tmux");
        c.args(["-L", &self.0]);
        c
    }

    pub fn screen(&self) -> String {
        let o = self.tmux().args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    pub fn keys(&self, k: &str) {
        self.tmux().args(["send-keys", "-t", &self.0, k]).status().unwrap();
    }

    /// Type `text` literally (no key names).
    pub fn type_text(&self, text: &str) {
        self.tmux().args(["send-keys", "-t", &self.0, "-l", text]).status().unwrap();
    }

    /// Wait until the screen holds every needle.
    pub fn wait_for(&self, needles: &[&str], secs: u64) -> String {
        let t = std::time::Instant::now();
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            assert!(t.elapsed() < std::time::Duration::from_secs(secs), "timed out waiting for {needles:?}; screen:\n{s}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().args(["kill-server"]).status();
    }
}

/// 96 tiny two-class images in memory (16 px): a trainer runs on them in a second.
pub fn tiny_set() -> tumorscope::data::ImageSet {
    let (n, size) = (96usize, 16u32);
    let per = (size * size * 3) as usize;
    let mut pixels = vec![0u8; n * per];
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    for i in 0..n {
        for (k, p) in pixels[i * per..(i + 1) * per].iter_mut().enumerate() {
            *p = if labels[i] == 0 { (k % 50) as u8 } else { 200 - (k % 50) as u8 };
        }
    }
    tumorscope::data::ImageSet {
        size,
        classes: vec!["a".into(), "b".into()],
        pixels,
        labels,
        paths: (0..n).map(|i| format!("img{i}.png").into()).collect(),
        hashes: (0..n as u64).collect(),
        from_test_folder: vec![false; n],
        patients: vec![None; n],
        synthetic: true,
    }
}

/// A trainer's job on `tiny_set` in `run`, on the CPU, without socket or TensorBoard.
pub fn tiny_job(run: tumorscope::run::RunDir, cfg: tumorscope::config::TrainConfig) -> tumorscope::train::TrainJob {
    let set = tiny_set();
    let split = tumorscope::data::make_split(
        &set.labels,
        &set.hashes,
        &set.hashes,
        &set.from_test_folder,
        2,
        cfg.val_fraction,
        cfg.test_fraction,
        cfg.seed,
    );
    let weights = run.path.join("no-such-weights.safetensors");
    tumorscope::train::TrainJob {
        config: cfg,
        data_fingerprint: set.fingerprint(std::path::Path::new("")),
        data: std::sync::Arc::new(set),
        split,
        device: tch::Device::Cpu,
        run,
        data_root: "memory".into(),
        weights,
        resume: None,
        serve_socket: false,
        tensorboard: false,
    }
}
