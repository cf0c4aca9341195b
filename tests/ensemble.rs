//! Ensembles with the real binary on synthetic phantoms: an ensemble of one run answers as that run
//! (same test report, same probabilities); two runs of one split make an ensemble that eval and
//! predict accept, with each member's probabilities; mismatched members and an occupied folder are
//! refused in one line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(root: &Path, args: &[&str]) -> Output {
    Command::new(common::bin()).args(args).current_dir(root).env("TUMORSCOPE_CACHE", root.join("cache")).env_remove("TUMORSCOPE_DATA").output().unwrap()
}

fn ok(o: Output) -> String {
    let t = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{t}");
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Train a 2-epoch small CNN into `root/runs/<name>` with `extra` flags.
fn train(root: &Path, data: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let dir = root.join("runs").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = vec!["train", "--no-tui", "--data", data.to_str().unwrap(), "--model", "small-cnn", "--epochs", "2"];
    if !extra.contains(&"--image-size") {
        a.extend(["--image-size", "32"]);
    }
    a.extend_from_slice(&["--run-dir", dir.to_str().unwrap()]);
    a.extend_from_slice(extra);
    ok(run(root, &a));
    dir
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn ensembles_answer_like_runs_and_refuse_mismatched_members() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("phantoms");
    tumorscope::data::synthetic::write_set(&data, 24, 6).unwrap();
    let a = train(root, &data, "a", &["--seed", "1", "--split-seed", "7"]);
    let b = train(root, &data, "b", &["--seed", "2", "--split-seed", "7"]);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // An ensemble of one run is that run.
    ok(run(root, &["ensemble", &s(&a), "--out", "one"]));
    let eval = |m: &str| -> serde_json::Value { serde_json::from_str(&ok(run(root, &["eval", m, "--json"]))).unwrap() };
    let (ea, e1) = (eval(&s(&a)), eval("one"));
    assert_eq!(ea["report"], e1["report"]);
    assert_eq!(ea["images"], e1["images"]);
    assert_eq!(ea["intervals"], e1["intervals"]);
    let image = data.join("Testing").join("glioma");
    let image = std::fs::read_dir(&image).unwrap().next().unwrap().unwrap().path();
    let pa = json_lines(&ok(run(root, &["predict", "--run", &s(&a), "--json", &s(&image)])));
    let p1 = json_lines(&ok(run(root, &["predict", "--run", "one", "--json", &s(&image)])));
    for (k, v) in pa[0]["probabilities"].as_object().unwrap() {
        let (x, y) = (v.as_f64().unwrap(), p1[0]["probabilities"][k].as_f64().unwrap());
        assert!((x - y).abs() < 1e-5, "{k}: run {x}, ensemble of it {y}");
    }

    // Two members: eval and predict (each member's probabilities, their spread, the mean map).
    ok(run(root, &["ensemble", &s(&a), &s(&b), "--out", "two"]));
    let e2 = eval("two");
    assert_eq!(e2["images"], ea["images"], "the shared test split");
    let p2 = json_lines(&ok(run(root, &["predict", "--run", "two", "--json", "--cam", &s(&image)])));
    assert_eq!(p2[0]["ensemble"]["members"].as_array().unwrap().len(), 2);
    assert!(p2[0]["ensemble"]["spread"]["glioma"].as_f64().is_some());
    assert!(p2[0]["cam"]["map"].as_array().is_some_and(|m| !m.is_empty()));

    // Refused, one line each, nothing written: another input size, another test split, a used folder.
    let c = train(root, &data, "c", &["--seed", "1", "--split-seed", "7", "--image-size", "48"]);
    // Another folder's Testing/ (a smaller one): no test split in common with the others.
    let other = root.join("phantoms2");
    tumorscope::data::synthetic::write_set(&other, 24, 4).unwrap();
    let d = train(root, &other, "d", &["--seed", "1"]);
    for (args, needle) in [
        (vec![s(&a), s(&c)], "input size"),
        (vec![s(&a), s(&d)], "share no test split"),
        (vec![s(&a), s(&b)], "not empty"),
    ] {
        let out = if needle == "not empty" { "two".to_string() } else { format!("bad-{}", needle.len()) };
        let mut full: Vec<&str> = vec!["ensemble"];
        full.extend(args.iter().map(String::as_str));
        full.extend(["--out", &out]);
        let o = run(root, &full);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.lines().count() == 1 && err.contains(needle), "{args:?}: {err}");
        if needle != "not empty" {
            assert!(!root.join(&out).exists(), "a refused ensemble wrote {out}");
        }
    }
}
