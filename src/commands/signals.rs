//! Signals, the same in every mode (dashboard, plain lines, detached, after a hand-over):
//! SIGINT/SIGTERM stop after the current batch, save and report (a second one skips the report);
//! SIGHUP moves output into the run folder and training goes on (or stops, with --stop-on-hangup).

use crate::run::{RunDir, TrainCommand, output};
use crate::tui::next_signal as next;
use std::sync::mpsc::Sender;
use tokio::signal::unix::{SignalKind, signal};

/// Turn signals into trainer commands until aborted.
pub async fn forward(commands: Sender<TrainCommand>, run: RunDir, stop_on_hangup: bool, hangup: tokio::sync::watch::Sender<bool>) {
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut stops = 0;
    loop {
        let name = tokio::select! {
            _ = next(&mut int) => "SIGINT",
            _ = next(&mut term) => "SIGTERM",
            _ = next(&mut hup) => {
                output::leave_terminal(&run.output_log());
                let _ = hangup.send(true);
                if !stop_on_hangup {
                    output::out("hang-up: the terminal is gone; training goes on (tumorscope attach to follow it)");
                    continue;
                }
                "SIGHUP"
            }
        };
        stops += 1;
        let cmd = if stops == 1 { TrainCommand::Signal(name.into()) } else { TrainCommand::Abort(name.into()) };
        if stops == 1 {
            output::err(&format!("{name}: stopping after this batch, saving, then the report ({name} again: skip the report)"));
        }
        let _ = commands.send(cmd);
    }
}
