//! `tumorscope train`: load data, split, create the run folder, start the trainer thread, then show the
//! dashboard (terminal) or plain progress lines.

use super::prepare;
use crate::cli::TrainArgs;
use crate::runlog::{RunDir, RunMeta, now_unix};
use crate::train::{self, TrainJob};
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::sync::Arc;

pub async fn run(args: TrainArgs) -> Result<()> {
    let cfg = args.resolve()?;
    let device = crate::device::parse_device(&args.device).map_err(anyhow::Error::msg)?;
    let use_tui = !args.no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let theme = if use_tui { Some(crate::tui::theme::Theme::load(&args.theme)?) } else { None };
    let src = prepare::resolve_source(args.data.as_deref(), args.synthetic)?;
    if src.synthetic {
        eprintln!("{}", prepare::GET_REAL_DATA);
    }
    let (set, _report) = prepare::load(&src, &cfg, false)?;
    let split = prepare::split(&set, &cfg);
    if split.test_duplicates_dropped > 0 {
        eprintln!(
            "note: {} test image(s) are byte-identical to training images and were left out of the test set",
            split.test_duplicates_dropped
        );
    }
    if split.train.is_empty() || split.val.is_empty() {
        anyhow::bail!(
            "{}: too few images to split ({} train, {} val); add images or lower --val-fraction",
            src.root.display(),
            split.train.len(),
            split.val.len()
        );
    }
    std::fs::create_dir_all(&args.runs_dir).with_context(|| format!("{}: cannot create runs folder", args.runs_dir.display()))?;
    let run = RunDir::create(&args.runs_dir, cfg.model.name())
        .with_context(|| format!("{}: cannot create run folder", args.runs_dir.display()))?;
    let data_root = std::fs::canonicalize(&src.root).unwrap_or(src.root.clone()).display().to_string();
    run.write_meta(&RunMeta {
        config: cfg.clone(),
        classes: set.classes.clone(),
        data_root: data_root.clone(),
        synthetic: src.synthetic,
        created_unix: now_unix(),
    })
    .with_context(|| format!("{}: cannot write run metadata", run.path.display()))?;
    let job =
        TrainJob { config: cfg, data: Arc::new(set), split, device, run, data_root, weights: crate::model::weights::lite0_weights_path() };
    let data = job.data.clone();
    let handle = train::spawn(job).context("cannot start the trainer thread")?;
    let commands = handle.commands.clone();
    let result = match theme {
        Some(theme) => match crate::tui::run_training(handle.events, commands.clone(), data, theme).await {
            Ok(crate::tui::TuiEnd::Done) => Ok(()),
            Ok(crate::tui::TuiEnd::Detached(events)) => super::headless::follow(events, commands.clone()).await,
            Err(e) => Err(e),
        },
        None => {
            drop(data);
            super::headless::follow(handle.events, commands.clone()).await
        }
    };
    if result.is_err() {
        // The screen failed, not the training: stop it cleanly (weights saved) rather than exit
        // while libtorch is mid-step on the trainer thread.
        let _ = commands.send(crate::train::TrainCommand::StopNow);
    }
    drop(commands);
    let _ = handle.thread.join();
    result
}
