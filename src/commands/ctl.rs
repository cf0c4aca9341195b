//! `tumorscope ctl RUN ACTION`: one command through the run's socket, then the trainer's answer.

use crate::cli::CtlArgs;
use crate::run::format::log_line;
use crate::run::status::load_view;
use crate::run::{RunDir, RunState, TrainEvent, output, socket};
use anyhow::{Result, bail};
use std::time::Duration;

/// How long to wait for the answer: commands act between batches, and one batch can be slow.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(a: CtlArgs) -> Result<()> {
    let run = RunDir::open(&a.run).map_err(anyhow::Error::msg)?;
    let (view, _) = load_view(&run)?;
    if view.is_over() {
        bail!("{}: not running ({}); nothing to control", run.path.display(), view.status());
    }
    let cmd = a.action.command();
    if a.via_folder || matches!(run.liveness(), crate::run::Liveness::Elsewhere(_)) {
        return through_folder(&run, &cmd);
    }
    let mut stream = socket::connect(&run).map_err(|e| anyhow::anyhow!("{}: not running: {e}", run.path.display()))?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut lines = socket::incoming(std::io::BufReader::new(stream.try_clone()?));
    // Send only once registered (`hello`), so the answer cannot be broadcast before this client hears.
    if !lines.by_ref().any(|i| i == socket::Incoming::Hello) {
        bail!("{}: the trainer closed the connection before greeting", run.path.display());
    }
    socket::send(&mut stream, &cmd)?;
    for incoming in lines {
        let rec = match incoming {
            socket::Incoming::Record(r) => r,
            socket::Incoming::Hello => continue,
            socket::Incoming::Refused(why) => bail!("{}: the trainer refused '{}': {why}", run.path.display(), cmd.describe()),
            socket::Incoming::Dropped => break,
        };
        if answered(&run, &cmd, &rec)? {
            return Ok(());
        }
    }
    bail!(
        "{}: no answer to '{}' (the trainer closed the connection or took over {}s)",
        run.path.display(),
        cmd.describe(),
        ANSWER_TIMEOUT.as_secs()
    )
}

/// The command as a file in `RUN/inbox/` (the trainer runs on another machine, or `--via-folder`);
/// the answer read from `events.jsonl` as it grows.
fn through_folder(run: &RunDir, cmd: &crate::run::TrainCommand) -> Result<()> {
    let mut tail = crate::run::log::Tailer::new(&run.events());
    tail.poll()?; // what was logged before the command
    let file = crate::run::inbox::post(run, cmd).map_err(|e| anyhow::anyhow!("{}: cannot post the command: {e}", crate::run::inbox::inbox(run).display()))?;
    let start = std::time::Instant::now();
    while start.elapsed() < ANSWER_TIMEOUT {
        for rec in tail.poll()? {
            if answered(run, cmd, &rec)? {
                return Ok(());
            }
        }
        std::thread::sleep(crate::run::inbox::POLL);
    }
    let _ = std::fs::remove_file(&file);
    bail!("{}: no answer to '{}' through {} within {}s", run.path.display(), cmd.describe(), crate::run::inbox::inbox(run).display(), ANSWER_TIMEOUT.as_secs())
}

/// Print the answer when `rec` is it; an error when it refuses the command or the run ended first.
fn answered(run: &RunDir, cmd: &crate::run::TrainCommand, rec: &crate::run::Record) -> Result<bool> {
    if cmd.acknowledged_by(&rec.event) {
        let line = match &rec.event {
            TrainEvent::State { state: RunState::Training } => "resumed".to_string(),
            TrainEvent::State { state: RunState::Stopping } => "stopping (the stop already asked for goes on)".to_string(),
            ev => log_line(ev, RunState::Training).unwrap_or_else(|| format!("{ev:?}")),
        };
        output::out(&line);
        if let TrainEvent::CommandRejected { .. } = rec.event {
            bail!("{}: the trainer rejected '{}'", run.path.display(), cmd.describe());
        }
        return Ok(true);
    }
    if rec.event.is_final() {
        bail!("{}: the run ended before it answered '{}'", run.path.display(), cmd.describe());
    }
    Ok(false)
}
