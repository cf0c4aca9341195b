//! The trainer's voice: each event numbered, appended to `events.jsonl`, sent to the in-process UI,
//! to every client of the run's socket and to TensorBoard. A failing log or TensorBoard writer says so
//! once and never stops training; a closed UI never stops it either.

use super::Record;
use super::events::TrainEvent;
use super::log::EventLog;
use super::socket::Hub;
use super::tensorboard::TensorBoard;
use std::sync::Arc;

/// Numbers each event, appends it to `events.jsonl`, and sends it to the UI and socket clients.
pub struct Emitter {
    tx: tokio::sync::mpsc::UnboundedSender<Record>,
    log: EventLog,
    hub: Option<Arc<Hub>>,
    log_failed: bool,
    tb: Option<TensorBoard>,
}

impl Emitter {
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<Record>, log: EventLog, hub: Option<Arc<Hub>>) -> Self {
        Emitter { tx, log, hub, log_failed: false, tb: None }
    }

    /// Also write every record into TensorBoard event files.
    pub fn with_tensorboard(&mut self, tb: TensorBoard) {
        self.tb = Some(tb);
    }

    pub fn emit(&mut self, e: TrainEvent) {
        let rec = self.log.stamp(e);
        if let Err(err) = self.log.write(&rec)
            && !self.log_failed
        {
            self.log_failed = true;
            let warn = self.log.stamp(TrainEvent::Warning { message: format!("cannot write events.jsonl: {err}") });
            self.send(warn);
        }
        self.send(rec);
    }

    fn send(&mut self, rec: Record) {
        if let Some(tb) = &mut self.tb
            && let Err(e) = tb.add(&rec)
        {
            let warn = self.log.stamp(TrainEvent::Warning { message: format!("{}: TensorBoard writing stopped: {e}", tb.path.display()) });
            self.tb = None;
            let _ = self.log.write(&warn);
            let _ = self.tx.send(warn);
        }
        if let Some(h) = &self.hub {
            h.broadcast(&rec);
        }
        let _ = self.tx.send(rec); // a closed UI must not stop training
    }
}
