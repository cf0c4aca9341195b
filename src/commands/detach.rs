//! Background runs: `train --detach` re-spawns this binary as its own session (no controlling
//! terminal, stdin from /dev/null, stdout and stderr into the run folder's `output.log`), and a
//! dashboard's hand-over re-spawns it with `--resume` to continue the run it just saved.

use crate::cli::TrainArgs;
use crate::run::dir::{ProcessInfo, RunDir, TrainerLock, hostname};
use crate::run::log::now_unix_f64;
use crate::run::output;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::process::{Command, Stdio};

/// In the child: leave the terminal's session, so a closed SSH connection never reaches it.
pub fn become_session_leader() {
    let _ = nix::unistd::setsid();
}

/// Start the child with the run's lock as its standard input: it holds the run from its first
/// instruction (`RunDir::adopt_lock`), and `runs` never sees the run unguarded in between.
pub fn spawn_child(run: &RunDir, args: Vec<OsString>, lock: &TrainerLock) -> Result<u32> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run.output_log())
        .with_context(|| format!("{}: cannot open", run.output_log().display()))?;
    let exe = std::env::current_exe().context("cannot find the tumorscope binary")?;
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::from(lock.for_child().with_context(|| format!("{}: cannot hand the lock on", run.lock_path().display()))?))
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("cannot start the background process")?;
    let pid = child.id();
    // The child records its socket once it serves one; until then, its pid says it is alive.
    run.write_process(&ProcessInfo { pid, host: hostname(), socket: None, started_unix: now_unix_f64() })
        .with_context(|| format!("{}: cannot write", run.process_path().display()))?;
    Ok(pid)
}

fn print_started(run: &RunDir, pid: u32, what: &str) {
    let p = run.path.display();
    output::out(&format!("{what} {p} in the background (pid {pid})"));
    output::out(&format!("  attach:  tumorscope attach {p}"));
    output::out(&format!("  control: tumorscope ctl {p} stop | pause | resume | lr 1e-4 | …"));
    output::out(&format!("  output:  {}", run.output_log().display()));
}

/// `train --detach`: check what can be checked here, create the run folder, start the child.
pub fn start(args: &TrainArgs) -> Result<u8> {
    let (run, lock) = match super::resuming::open_resume(args)? {
        Some((r, lock)) => (r.run, lock),
        None => {
            let (cfg, place) = args.resolve_all()?;
            crate::run::privacy::apply(place.share_with_group);
            crate::device::parse_device(&place.device)?;
            if let Some(d) = &place.data
                && !d.is_dir()
            {
                anyhow::bail!("{}: no such folder", d.display());
            }
            let run = RunDir::create(&place.runs_dir, cfg.model.name())
                .with_context(|| format!("{}: cannot create run folder", place.runs_dir.display()))?;
            let lock = run.lock()?;
            (run, lock)
        }
    };
    let child_args = child_args(std::env::args_os().skip(1), &run);
    let pid = spawn_child(&run, child_args, &lock)?;
    print_started(&run, pid, if args.resume.is_some() { "resuming" } else { "started" });
    Ok(0)
}

/// The detached child's arguments: the user's, less the flags only this process acts on (`--detach`,
/// and `--no-tui`, which the child is always given: clap refuses a flag given twice).
fn child_args(user: impl Iterator<Item = OsString>, run: &RunDir) -> Vec<OsString> {
    let mut args: Vec<OsString> = user.filter(|a| a != "--detach" && a != "--no-tui").collect();
    args.extend(["--run-dir".into(), run.path.clone().into_os_string(), "--detached-child".into(), "--no-tui".into()]);
    args
}

/// After a hand-over: a detached `train --resume` continues the run the dashboard just saved.
pub fn continue_in_background(run: &RunDir, args: &TrainArgs, place: &crate::cli::RunPlace, lock: &TrainerLock) -> Result<()> {
    let mut child_args: Vec<OsString> = vec!["train".into(), "--resume".into(), run.path.clone().into_os_string()];
    child_args.extend(["--device".into(), place.device.clone().into()]);
    if let Some(t) = args.threads {
        child_args.extend(["--threads".into(), t.to_string().into()]);
    }
    if let Some(d) = &place.data {
        child_args.extend(["--data".into(), d.clone().into_os_string()]);
    }
    if args.stop_on_hangup {
        child_args.push("--stop-on-hangup".into());
    }
    child_args.extend(["--detached-child".into(), "--no-tui".into()]);
    let pid = spawn_child(run, child_args, lock)?;
    print_started(run, pid, "training continues:");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Whatever the user typed, the child's command line parses (it was refused with `--no-tui`).
    #[test]
    fn the_childs_arguments_always_parse() {
        let run = RunDir { path: "/tmp/r".into() };
        for user in [
            vec!["train", "--detach", "--no-tui", "--synthetic"],
            vec!["train", "--no-tui", "--detach"],
            vec!["train", "--resume", "runs/x", "--no-tui", "--detach"],
            vec!["train", "--detach"],
        ] {
            let args = child_args(user.iter().map(OsString::from), &run);
            let cli = crate::cli::Cli::try_parse_from(std::iter::once(OsString::from("tumorscope")).chain(args.clone()));
            let Ok(crate::cli::Cli { command: crate::cli::Command::Train(t) }) = cli else { panic!("{user:?} -> {args:?}: {cli:?}") };
            assert!(t.no_tui && t.detached_child && !t.detach, "{user:?}");
        }
    }
}
