//! `tumorscope eval`: rebuild a run's network and split, evaluate its best checkpoint.

use super::prepare::{self, DataSource};
use crate::cli::EvalArgs;
use crate::run::dir::RunDir;
use crate::train::evaluate::evaluate_with;
use anyhow::{Context, Result};
use std::path::PathBuf;
use tch::nn::VarStore;

/// A trained network rebuilt from its run folder.
pub struct LoadedRun {
    pub meta: crate::run::dir::RunMeta,
    pub net: crate::model::Net,
    pub vs: VarStore,
    pub checkpoint: PathBuf,
    pub device: tch::Device,
}

pub fn load_run(run: &std::path::Path, device: &str) -> Result<LoadedRun> {
    let dir = RunDir::open(run).map_err(anyhow::Error::msg)?;
    let meta = dir.read_meta().map_err(anyhow::Error::msg)?;
    let checkpoint =
        dir.checkpoint().with_context(|| format!("{}: no checkpoint (best.safetensors or last.safetensors)", run.display()))?;
    let device = crate::device::parse_device(device).map_err(anyhow::Error::msg)?;
    let mut vs = VarStore::new(device);
    let net = crate::model::build(&vs, &meta.config, meta.classes.len());
    crate::model::weights::load_checkpoint(&mut vs, &checkpoint)?;
    if device == tch::Device::Cpu {
        crate::model::weights::to_channels_last(&vs)?;
    }
    Ok(LoadedRun { meta, net, vs, checkpoint, device })
}

pub fn run(args: EvalArgs) -> Result<()> {
    let lr = load_run(&args.run, &args.device)?;
    let src = match (&args.data, lr.meta.synthetic) {
        (Some(d), _) => DataSource { root: d.clone(), synthetic: false },
        (None, true) => prepare::resolve_source(None, true)?,
        (None, false) => DataSource { root: PathBuf::from(&lr.meta.data_root), synthetic: false },
    };
    let (set, _) = prepare::load(&src, &lr.meta.config, args.json)?;
    if set.classes != lr.meta.classes {
        anyhow::bail!("{}: classes {:?} differ from the run's {:?}", src.root.display(), set.classes, lr.meta.classes);
    }
    let split = prepare::split(&set, &lr.meta.config);
    let idx = match args.split.as_str() {
        "test" => &split.test,
        "val" => &split.val,
        "train" => &split.train,
        other => anyhow::bail!("--split {other}: expected test, val or train"),
    };
    if idx.is_empty() {
        anyhow::bail!("{}: the {} split is empty", src.root.display(), args.split);
    }
    let ev = evaluate_with(&lr.net, &set, idx, 64, lr.device, args.tta)?;
    let report = ev.confusion.report(&set.classes);
    if args.json {
        let out = serde_json::json!({
            "run": args.run.display().to_string(),
            "checkpoint": lr.checkpoint.display().to_string(),
            "split": args.split,
            "tta": args.tta,
            "synthetic": set.synthetic,
            "loss": ev.loss,
            "report": report,
        });
        crate::run::output::out(&serde_json::to_string_pretty(&out)?);
    } else {
        crate::run::output::out(&format!(
            "{} split of {}{}: {} images, checkpoint {}{}\n",
            args.split,
            src.root.display(),
            if set.synthetic { " [SYNTHETIC]" } else { "" },
            idx.len(),
            lr.checkpoint.display(),
            if args.tta { ", mirror TTA" } else { "" }
        ));
        crate::run::output::out(&report.to_text(4));
        crate::run::output::out(&format!("confusion matrix (rows: true, columns: predicted)\n{}", report.confusion_text()));
    }
    Ok(())
}
