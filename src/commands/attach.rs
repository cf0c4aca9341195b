//! `attach` (full control over a running run's socket) and `watch` (read-only, from `events.jsonl`).
//! Both open the same dashboard over the same records; a run that is over, or whose process is gone,
//! is reviewed read-only.

use crate::cli::{AttachArgs, WatchArgs};
use crate::run::status::summarize;
use crate::run::{Liveness, RunDir, socket};
use crate::tui::{CommandSink, Session};
use anyhow::{Result, bail};
use std::io::IsTerminal;

fn need_terminal(what: &str) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("{what} opens the dashboard and needs a terminal (use `tumorscope runs` or `ctl` from scripts)");
    }
    Ok(())
}

/// The newest run under `runs_dir` whose process is alive.
fn newest_running(runs_dir: &std::path::Path) -> Result<RunDir> {
    let runs = crate::run::dir::list_runs(runs_dir).map_err(|e| anyhow::anyhow!("{}: cannot list runs: {e}", runs_dir.display()))?;
    for r in runs {
        if matches!(r.liveness(), Liveness::Alive(_))
            && !matches!(summarize(&r).state.as_str(), "finished" | "stopped" | "failed" | "crashed")
        {
            return Ok(r);
        }
    }
    bail!("{}: no running run (tumorscope runs lists them; tumorscope attach RUN reviews any)", runs_dir.display())
}

/// A note about lines of the log that could not be read.
fn log_note(run: &RunDir) -> Option<String> {
    crate::run::log::read_log(&run.events()).ok().and_then(|l| l.note(&run.events()))
}

fn read_only_session(run: &RunDir, why: Option<String>) -> Session {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    crate::tui::tail_log(run.events(), tx);
    let note = match (why, log_note(run)) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    Session {
        records: rx,
        commands: CommandSink::ReadOnly,
        hangup: None,
        remote: Some(run.clone()),
        note,
        runs_dir: None,
        explain: Some(crate::explain::spawn(run.path.clone())),
        view: None,
    }
}

/// `attach EXP` / `watch EXP`: the Experiment view; Enter opens a member's dashboard and comes back.
async fn experiment_view(exp: crate::experiment::ExperimentDir, theme: &str, read_only: bool) -> Result<()> {
    use crate::tui::experiment::{ExperimentEnding, ExperimentScreen, run};
    let plan = exp.read_plan()?;
    let t = crate::tui::theme::Theme::load(theme)?;
    need_terminal(if read_only { "watch" } else { "attach" })?;
    let mut screen = ExperimentScreen::new(exp, plan, t, read_only);
    loop {
        match run(&mut screen)? {
            ExperimentEnding::Quit => return Ok(()),
            ExperimentEnding::Open(member, true) => Box::pin(watch(WatchArgs { run: member, theme: theme.to_string() })).await?,
            ExperimentEnding::Open(member, false) => {
                Box::pin(attach(AttachArgs { run: Some(member), runs_dir: "runs".into(), theme: theme.to_string() })).await?
            }
        }
        screen.refresh();
    }
}

pub async fn attach(a: AttachArgs) -> Result<()> {
    if let Some(exp) = a.run.as_deref().and_then(super::experiment::as_experiment) {
        return Box::pin(experiment_view(exp, &a.theme, false)).await;
    }
    let run = match &a.run {
        Some(p) => RunDir::open(p).map_err(anyhow::Error::msg)?,
        None => newest_running(&a.runs_dir)?,
    };
    if !run.events().exists() {
        bail!("{}: no events.jsonl yet (the run is still loading its data; try again in a moment)", run.path.display());
    }
    let theme = crate::tui::theme::Theme::load(&a.theme)?;
    need_terminal("attach")?;
    let session = match (run.liveness(), socket::connect(&run)) {
        (Liveness::Alive(_), Ok(stream)) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            crate::tui::attach_stream(run.events(), stream.try_clone()?, tx);
            Session {
                records: rx,
                commands: CommandSink::Socket(stream),
                hangup: None,
                remote: Some(run.clone()),
                note: log_note(&run),
                runs_dir: None,
                explain: Some(crate::explain::spawn(run.path.clone())),
                view: None,
            }
        }
        (Liveness::Elsewhere(p), _) if !crate::run::status::load_view(&run).map(|(v, _)| v.is_over()).unwrap_or(true) => {
            let mut s = read_only_session(&run, Some(format!("steering through the run folder: the trainer runs on {}", p.host)));
            s.commands = CommandSink::Inbox(run.clone());
            s
        }
        (_, Err(e)) => read_only_session(&run, Some(format!("read-only review: {e}"))),
        (_, Ok(_)) => read_only_session(&run, Some("read-only review: the run is not training".into())),
    };
    crate::tui::dashboard(session, theme).await?;
    Ok(())
}

pub async fn watch(a: WatchArgs) -> Result<()> {
    if let Some(exp) = super::experiment::as_experiment(&a.run) {
        return Box::pin(experiment_view(exp, &a.theme, true)).await;
    }
    let run = RunDir::open(&a.run).map_err(anyhow::Error::msg)?;
    if !run.events().exists() {
        bail!("{}: no events.jsonl yet (the run is still loading its data; try again in a moment)", run.path.display());
    }
    let theme = crate::tui::theme::Theme::load(&a.theme)?;
    need_terminal("watch")?;
    crate::tui::dashboard(read_only_session(&run, None), theme).await?;
    Ok(())
}
