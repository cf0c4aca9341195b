//! Opening a run to resume it: its folder, settings and saved state, checked against what the user
//! asked for, with the run's trainer lock taken before any data loads. Shared by `train --resume` and
//! the detaching parent that starts it in the background.

use crate::cli::TrainArgs;
use crate::run::dir::{RunDir, RunMeta, TrainerLock};
use crate::train::resume::{self, ResumeState};
use anyhow::{Result, bail};

/// What a resumed run needs: its folder, state and settings.
pub struct Resuming {
    pub run: RunDir,
    pub meta: RunMeta,
    pub state: ResumeState,
}

/// The run's trainer lock for this process: a detached child adopts the one its parent took for it.
pub fn take_lock(run: &RunDir, args: &TrainArgs) -> Result<TrainerLock> {
    Ok(if args.detached_child { run.adopt_lock()? } else { run.lock()? })
}

/// The run `--resume` names, checked, with its trainer lock (held from before the data loads to the
/// end: no second trainer can start on the run). What is written from here on follows the folder's
/// privacy (shared with the group only if it is).
pub fn open_resume(args: &TrainArgs) -> Result<Option<(Resuming, TrainerLock)>> {
    let Some(path) = &args.resume else { return Ok(None) };
    let run = RunDir::open(path).map_err(anyhow::Error::msg)?;
    let meta = run.read_meta().map_err(anyhow::Error::msg)?;
    let lock = take_lock(&run, args)?;
    crate::run::privacy::follow(&run.path);
    let fixed = args.fixed_on_resume();
    if !fixed.is_empty() {
        bail!(
            "{}: a resumed run keeps its settings; drop {} (only --epochs, --threads and --device may change)",
            run.path.display(),
            fixed.join(", ")
        );
    }
    if let Some(m) = args.model
        && m != meta.config.model
    {
        bail!("{}: the run trained {}, not {}: a resume cannot change the model", run.path.display(), meta.config.model.name(), m.name());
    }
    let state = resume::read_state(&run).map_err(anyhow::Error::msg)?;
    if state.model != meta.config.model.name() || state.classes != meta.classes {
        bail!(
            "{}: resume.json is for {} {:?}, run.json for {} {:?}",
            run.path.display(),
            state.model,
            state.classes,
            meta.config.model.name(),
            meta.classes
        );
    }
    Ok(Some((Resuming { run, meta, state }, lock)))
}
