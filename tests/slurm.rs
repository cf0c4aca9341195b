//! A two-fold experiment through a real Slurm: `scripts/slurm-local.sh` starts a one-node cluster on
//! this machine (installing slurm-wlm and munge from Debian's packages when root), then `experiment
//! run --executor slurm` submits a job array and drives it to the end. Where Slurm cannot be started
//! the test says SKIPPED; with TUMORSCOPE_REQUIRE_SLURM=1 (CI, which runs as root) that is a failure.

mod common;

use std::path::Path;
use std::process::Command;

fn slurm_up() -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh");
    let o = Command::new("bash").arg(script).output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    if o.status.success() {
        return true;
    }
    assert!(std::env::var_os("TUMORSCOPE_REQUIRE_SLURM").is_none(), "Slurm is required here but did not start: {out}");
    eprintln!("SKIPPED two_fold_experiment_through_sbatch: {}", out.trim());
    false
}

#[test]
fn a_two_fold_experiment_runs_to_its_end_through_sbatch() {
    if !slurm_up() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("phantoms");
    tumorscope::data::synthetic::write_set(&data, 24, 6).unwrap();
    let o = Command::new(common::bin())
        .args(["experiment", "run", "--folds", "2", "--executor", "slurm", "--parallel", "2", "--name", "slurm2"])
        .args(["--experiments-dir", "exps", "--data", data.to_str().unwrap(), "--model", "small-cnn", "--image-size", "32", "--epochs", "2"])
        .current_dir(tmp.path())
        .env("TUMORSCOPE_CACHE", tmp.path().join("cache"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{text}");
    assert!(text.contains("submitted Slurm job array"), "{text}");
    let exp = std::fs::read_dir(tmp.path().join("exps")).unwrap().next().unwrap().unwrap().path();
    // Each member ran as an array task: its task output names it.
    let outs: Vec<String> = std::fs::read_dir(exp.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "out"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for m in ["fold0-seed42", "fold1-seed42"] {
        assert!(outs.iter().any(|o| o.contains(&format!("member {m} on"))), "{m} ran in no task: {outs:?}");
    }
    let o = Command::new(common::bin()).args(["experiment", "show", exp.to_str().unwrap(), "--json"]).output().unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["aggregate"]["scored"], 2, "{j}");
    for m in j["aggregate"]["members"].as_array().unwrap() {
        assert_eq!(m["state"], "finished");
    }
}
