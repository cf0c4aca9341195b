//! The trainer behaves exactly as the one before it was split into named phases: the same events (less
//! what changes from run to run: times, speeds, paths, pid and host) and the same tensors in every
//! checkpoint and resume file, bit for bit. The fixtures in `tests/fixtures/` were recorded by the
//! trainer as it was before the split (`TUMORSCOPE_BLESS=1 cargo test --test trainer_equivalence`
//! records them anew, for a change meant to alter behaviour).
//!
//! Three runs on a tiny in-memory set, one thread (libtorch's results are then the same from run to
//! run on a machine): the article's recipe (plateau schedule, early stopping), the same run resumed
//! for one more epoch, and the fast recipe's moving parts (cosine warm-up, label smoothing, EMA, TTA).

mod common;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tumorscope::config::{ModelKind, Schedule, TrainConfig};
use tumorscope::run::RunDir;
use tumorscope::train;

/// Keys whose values change from run to run or machine to machine, not with what the trainer does.
const VARYING: [&str; 8] = ["time", "elapsed_seconds", "epoch_seconds", "img_per_s", "pid", "host", "device", "wall_seconds"];

/// Report figures added after the fixtures were recorded (the trainer's behaviour is the same; the
/// report draws more): left out of the comparison, so the fixtures stay those of the one-body trainer.
const FIGURES_ADDED_SINCE: [&str; 2] = ["roc_pr.png", "roc_pr.svg"];

fn normalise(v: &mut Value, run: &str) {
    match v {
        Value::Object(m) => {
            for k in VARYING {
                m.remove(k);
            }
            if let Some(Value::Array(figures)) = m.get_mut("figures") {
                figures.retain(|f| !FIGURES_ADDED_SINCE.iter().any(|a| f == a));
            }
            for x in m.values_mut() {
                normalise(x, run);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalise(x, run)),
        Value::String(s) if s.contains(run) => *s = s.replace(run, "RUN"),
        _ => {}
    }
}

/// The run's events, one normalised JSON line each.
fn events(run: &RunDir) -> Vec<String> {
    let dir = run.path.display().to_string();
    std::fs::read_to_string(run.events())
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            normalise(&mut v, &dir);
            v.to_string()
        })
        .collect()
}

/// Every tensor of the run's weight files, as `file name dtype shape fnv-hash-of-bytes`.
fn tensors(run: &RunDir) -> Vec<String> {
    let mut out = vec![];
    for file in ["best.safetensors", "last.safetensors", "resume.safetensors"] {
        let bytes = std::fs::read(run.path.join(file)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = st.names().into_iter().cloned().collect();
        names.sort();
        for n in names {
            let t = st.tensor(&n).unwrap();
            let h = tumorscope::rng::fnv1a(t.data(), tumorscope::rng::FNV_OFFSET);
            out.push(format!("{file} {n} {:?} {:?} {h:016x}", t.dtype(), t.shape()));
        }
    }
    out
}

fn drain(h: train::TrainerHandle) {
    let mut events = h.events;
    while events.blocking_recv().is_some() {}
    h.thread.join().unwrap();
}

fn train_to_end(run: &RunDir, cfg: &TrainConfig, resume: bool) {
    let mut job = common::tiny_job(run.clone(), cfg.clone());
    // What `train` writes before the trainer starts: the report is drawn from it.
    let meta = tumorscope::run::RunMeta {
        config: cfg.clone(),
        classes: job.data.classes.clone(),
        data_root: job.data_root.clone(),
        synthetic: true,
        created_unix: 0,
        data_fingerprint: Some(job.data_fingerprint.clone()),
    };
    run.write_meta(&meta).unwrap();
    if resume {
        job.resume = Some(train::resume::read_state(run).unwrap());
    }
    drain(train::spawn(job).unwrap());
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

/// Compare with the recorded lines, or record them (`TUMORSCOPE_BLESS=1`).
fn check(name: &str, got: &[String]) {
    let path = fixture(name);
    if std::env::var_os("TUMORSCOPE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got.join("\n") + "\n").unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (record it with TUMORSCOPE_BLESS=1)", path.display()));
    let want: Vec<&str> = want.lines().collect();
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        assert_eq!(*w, g, "{name}: line {} differs", i + 1);
    }
    assert_eq!(want.len(), got.len(), "{name}: {} lines recorded, {} now", want.len(), got.len());
}

#[test]
fn the_trainer_in_phases_does_exactly_what_the_one_body_did() {
    let dir = tempfile::tempdir().unwrap();
    let small = TrainConfig {
        model: ModelKind::SmallCnn,
        image_size: 32,
        batch_size: 8,
        lr: 1e-3,
        threads: 1,
        dropout: 0.3,
        ..TrainConfig::article()
    };

    // The article's recipe: a plateau that cuts the rate and early stopping that ends the run.
    let article = TrainConfig { epochs: 6, plateau_patience: 1, plateau_min_delta: 0.5, early_stopping_patience: 3, ..small.clone() };
    let run = RunDir::create(dir.path(), "article").unwrap();
    train_to_end(&run, &article, false);
    let first = events(&run);
    check("trainer_article.events.jsonl", &first);
    check("trainer_article.tensors.txt", &tensors(&run));

    // The same run, resumed from its last saved state for more epochs.
    let more = TrainConfig { epochs: article.epochs + 2, early_stopping: false, ..article.clone() };
    train_to_end(&run, &more, true);
    let all = events(&run);
    check("trainer_resumed.events.jsonl", &all[first.len()..]);
    check("trainer_resumed.tensors.txt", &tensors(&run));

    // The fast recipe's moving parts on the small network.
    let fast = TrainConfig {
        epochs: 3,
        schedule: Schedule::Cosine,
        warmup_epochs: 1.0,
        early_stopping: false,
        label_smoothing: 0.1,
        ema_decay: 0.9,
        tta: "flip".into(),
        ..small
    };
    let run = RunDir::create(dir.path(), "fast").unwrap();
    train_to_end(&run, &fast, false);
    check("trainer_fast.events.jsonl", &events(&run));
    check("trainer_fast.tensors.txt", &tensors(&run));
}
