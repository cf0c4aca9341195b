//! The run core: the vocabulary of a training run and everything a client needs to follow and steer
//! one, with no tch and no ratatui. The trainer speaks it; the dashboard, the plain printer, attached
//! clients, `ctl` and `runs` all read it.
//!
//! - `events`: `TrainEvent`, `TrainCommand`, `Record` (an event with its seq and time);
//! - `state`: the fold from records to `RunView`;
//! - `format`: durations, learning rates and the lines every renderer prints;
//! - `log`: `events.jsonl` writer, reader and tailer;
//! - `emitter`: the trainer's voice: each event numbered, logged, streamed and sent to TensorBoard;
//! - `dir`: the run folder, its metadata, `process.json` and liveness;
//! - `socket`: the control socket, server and client;
//! - `output`: stdout/stderr that survive a closed pipe or terminal;
//! - `privacy`: who may read what is written (private by default, or shared with the group);
//! - `status`: one summary per run for `tumorscope runs`;
//! - `tensorboard`: TensorBoard event files from the records;
//! - `compare`: runs side by side (curves, settings that differ) for the Runs view;
//! - `explain`: the requests and answers of a checkpoint asked about one image (`o`, Grad-CAM).

pub mod compare;
pub mod dir;
pub mod emitter;
pub mod events;
pub mod explain;
pub mod format;
pub mod inbox;
pub mod log;
pub mod output;
pub mod privacy;
pub mod socket;
pub mod state;
pub mod status;
pub mod tensorboard;

pub use dir::{Liveness, RunDir, RunMeta};
pub use events::{EpochMetrics, Prediction, Record, RunInfo, RunState, StopWhen, TrainCommand, TrainEvent};
pub use state::RunView;
