//! Signals, the same in every mode (dashboard, plain lines, detached, after a hand-over):
//! SIGINT/SIGTERM stop after the current batch, save and report (a second one skips the report);
//! SIGHUP moves output into the run folder and training goes on (or stops, with --stop-on-hangup).
//! They are caught from the start of `train`, so one that comes while the data loads is not fatal
//! either: SIGINT/SIGTERM then end the command before anything starts, and a hang-up is remembered.
//! Before that, from the binary's first instruction on, they are held back (`hold`), so one that
//! comes while libtorch loads or the process re-executes itself waits for the listener.

use crate::run::{RunDir, TrainCommand, output};
use crate::tui::next_signal as next;
use std::sync::mpsc::Sender;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGHUP, SIGINT and SIGTERM: the signals a run answers.
fn answered() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGINT, Signal::SIGTERM] {
        set.add(s);
    }
    set
}

/// Hold the answered signals back (pending, not acted on) on this thread and the threads it starts.
/// The binary calls this before libtorch's libraries initialise, and the mask and anything pending
/// outlive the re-exec of the process tuning: so a signal in the first second of `train` waits for
/// its `Listener` instead of ending the process.
pub fn hold() {
    let _ = nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&answered()), None);
}

/// Let held signals through again: any that came meanwhile are acted on now (by a `Listener`, once
/// one is installed, else by their default actions).
pub fn release() {
    let _ = nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_UNBLOCK, Some(&answered()), None);
}

/// The signals a run answers, taken over from their default actions (which end the process).
pub struct Listener {
    int: Option<Signal>,
    term: Option<Signal>,
    hup: Option<Signal>,
    /// A hang-up came before `forward` took over.
    pub hung_up: bool,
}

/// SIGINT or SIGTERM came while the data loaded: nothing was started.
#[derive(Debug, thiserror::Error)]
#[error("{0} while loading the data: stopped before training started")]
pub struct StoppedWhileLoading(pub &'static str);

/// 128 + the signal's number, the exit code of a command a signal stopped (None: not a signal).
pub fn exit_code(name: &str) -> Option<u8> {
    crate::run::events::StopCause::from(name).exit_code()
}

impl StoppedWhileLoading {
    /// As for a run that the same signal stopped.
    pub fn exit_code(&self) -> u8 {
        exit_code(self.0).unwrap_or(130)
    }
}

impl Listener {
    /// Take the signals over, then let through any that [`hold`] kept back.
    pub fn install() -> Self {
        let listener = Listener {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
            hung_up: false,
        };
        release();
        listener
    }

    /// Run `work` on a blocking thread while listening: a hang-up is remembered (the terminal's
    /// output turns quiet), SIGINT or SIGTERM ends the wait at once (the work is abandoned).
    pub async fn during<T: Send + 'static>(&mut self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, StoppedWhileLoading> {
        let mut job = tokio::task::spawn_blocking(work);
        loop {
            tokio::select! {
                // A hang-up first: one that came with the end of the job is still recorded.
                biased;
                _ = next(&mut self.hup) => self.hung_up = true,
                done = &mut job => match done {
                    Ok(v) => return Ok(v),
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                },
                _ = next(&mut self.int) => return Err(StoppedWhileLoading("SIGINT")),
                _ = next(&mut self.term) => return Err(StoppedWhileLoading("SIGTERM")),
            }
        }
    }
}

/// The first stopping signal a run received (its name), whenever it came: `train` exits with its code
/// even when it came too late for the trainer to see it (after the report).
pub type FirstSignal = std::sync::Arc<std::sync::OnceLock<&'static str>>;

/// Print without ever holding up the signal path: a terminal whose output is blocked (Ctrl-S, a
/// stalled SSH connection) delays only this line, not the stop.
fn say(line: String) {
    let _ = std::thread::Builder::new().name("signal-note".into()).spawn(move || output::err(&line));
}

/// Turn signals into trainer commands until aborted: each command is sent before anything is printed.
/// A hang-up the listener saw earlier is handled first.
pub async fn forward(
    listener: Listener,
    commands: Sender<TrainCommand>,
    run: RunDir,
    stop_on_hangup: bool,
    hangup: tokio::sync::watch::Sender<bool>,
    first: FirstSignal,
) {
    let Listener { mut int, mut term, mut hup, hung_up } = listener;
    let mut early_hup = hung_up;
    let mut stops = 0;
    loop {
        let name = tokio::select! {
            _ = next(&mut int) => "SIGINT",
            _ = next(&mut term) => "SIGTERM",
            _ = async { if early_hup { early_hup = false } else { next(&mut hup).await } } => {
                output::leave_terminal(&run.output_log());
                let _ = hangup.send(true);
                if !stop_on_hangup {
                    say("hang-up: the terminal is gone; training goes on (tumorscope attach to follow it)".into());
                    continue;
                }
                "SIGHUP"
            }
        };
        stops += 1;
        let cmd = if stops == 1 { TrainCommand::Signal(name.into()) } else { TrainCommand::Abort(name.into()) };
        let _ = first.set(name);
        let _ = commands.send(cmd);
        if stops == 1 {
            say(format!("{name}: stopping after this batch, saving, then the report ({name} again: skip the report)"));
        }
    }
}
