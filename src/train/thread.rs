//! A training run on its own thread (`spawn`): the event log, the socket and TensorBoard are opened
//! here, and an error or a panic in libtorch ends as a `Failed` event, never a dead UI.

use super::job::TrainJob;
use crate::run::Record;
use crate::run::dir::{ProcessInfo, hostname};
use crate::run::emitter::Emitter;
use crate::run::events::{RunState, TrainCommand, TrainEvent};
use crate::run::log::{EventLog, now_unix_f64};
use std::path::PathBuf;
use std::sync::mpsc::Sender;

/// The UI's side of a running trainer.
pub struct TrainerHandle {
    pub events: tokio::sync::mpsc::UnboundedReceiver<Record>,
    pub commands: Sender<TrainCommand>,
    pub thread: std::thread::JoinHandle<()>,
    /// The control socket, when served.
    pub socket: Option<PathBuf>,
}

/// Start training on a new thread (and serve the socket, if asked).
pub fn spawn(job: TrainJob) -> std::io::Result<TrainerHandle> {
    let (etx, erx) = tokio::sync::mpsc::unbounded_channel();
    let (ctx, crx) = std::sync::mpsc::channel();
    let log = EventLog::open(&job.run.events())?;
    // A socket that cannot be served costs steering (attach, ctl), never the run.
    let (server, socket_error) = match job.serve_socket.then(|| crate::run::socket::serve(&job.run, ctx.clone())) {
        Some(Ok(s)) => (Some(s), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let socket = server.as_ref().map(|s| s.path.clone());
    // Commands dropped into the run folder (`ctl` from a machine that cannot reach the socket).
    crate::run::inbox::clear(&job.run);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    crate::run::inbox::watch(job.run.clone(), ctx.clone(), done.clone(), |why| crate::run::output::err(&format!("warning: ignored {why}")));
    job.run.write_process(&ProcessInfo {
        pid: std::process::id(),
        host: hostname(),
        socket: socket.as_ref().map(|p| p.display().to_string()),
        started_unix: now_unix_f64(),
    })?;
    let thread = std::thread::Builder::new().name("trainer".into()).spawn(move || {
        // libtorch's panicking ops (module forwards) can still panic: caught below, reported as Failed.
        crate::run::output::panics_reported_here();
        let hub = server.as_ref().map(|s| s.hub.clone());
        let mut out = Emitter::new(etx, log, hub);
        if let Some(e) = socket_error {
            out.emit(TrainEvent::Warning {
                message: format!("cannot serve the control socket: {e}; training goes on without attach and ctl"),
            });
        }
        if job.tensorboard {
            match crate::run::tensorboard::TensorBoard::create(&job.run.path.join("tensorboard"), &hostname()) {
                Ok(tb) => out.with_tensorboard(tb),
                Err(e) => out.emit(TrainEvent::Warning { message: format!("cannot write TensorBoard files: {e}") }),
            }
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| super::trainer::run(&job, &mut out, &crx)));
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(p) => Some(panic_message(&p)),
        };
        if let Some(error) = error {
            out.emit(TrainEvent::State { state: RunState::Failed });
            out.emit(TrainEvent::Failed { error });
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(server); // clients see the end of the stream; the socket file goes
    })?;
    Ok(TrainerHandle { events: erx, commands: ctx, thread, socket })
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    format!("trainer crashed: {msg}")
}
