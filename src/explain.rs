//! The worker behind `run::explain`: it answers "what does this run's checkpoint say about this image,
//! and where did it look" for the dashboard, on a thread of its own. It reads the run's checkpoint (the
//! best so far while training, reloaded when the file changes), so the trainer is never disturbed.

use crate::run::explain::{ExplainClient, ExplainRequest, Explanation, Unexplained};
use std::path::PathBuf;

pub use crate::train::explain::Checkpoint;

/// Start the worker for the run in `run`.
pub fn spawn(run: PathBuf) -> ExplainClient {
    let (req_tx, req_rx) = std::sync::mpsc::channel::<ExplainRequest>();
    let (ans_tx, ans_rx) = std::sync::mpsc::channel::<Explanation>();
    let _ = std::thread::Builder::new().name("explain".into()).spawn(move || {
        let mut loaded: Option<Checkpoint> = None;
        for request in req_rx {
            // Reload when there was no checkpoint yet or a newer best was saved.
            let stale = match &loaded {
                None => true,
                Some(l) => l.is_stale(&run),
            };
            let mut error = None;
            if stale {
                match Checkpoint::open(&run) {
                    Ok(l) => loaded = Some(l),
                    // The answer crosses to the dashboard as the line it shows.
                    Err(e) => error = Some(e.to_string()),
                }
            }
            let result = match (&loaded, error) {
                (_, Some(e)) => Err(Unexplained::Failed(e)),
                (Some(l), None) => l.explain(&request).map_err(|e| Unexplained::Failed(e.to_string())),
                (None, None) => Err(Unexplained::NoCheckpoint),
            };
            if ans_tx.send(Explanation { request, result }).is_err() {
                break;
            }
        }
    });
    ExplainClient { requests: req_tx, answers: ans_rx }
}
