//! The training loop on its own thread, talking only through typed events and commands.

pub mod adam;
pub mod amp;
pub mod callbacks;
pub mod control;
pub mod ema;
pub mod evaluate;
pub mod explain;
pub mod job;
pub mod resume;
pub mod spread;
pub mod thread;
pub mod threads;
pub mod trainer;
pub mod tta;

pub use crate::run::events::{Prediction, RunInfo, RunState, TrainCommand, TrainEvent};
pub use job::{TrainError, TrainJob};
pub use thread::{TrainerHandle, spawn};

/// A saved optimiser or average state that does not fit the network being resumed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the resume state lacks {0}")]
    Missing(String),
    #[error("{key}: {source}")]
    Torch { key: String, source: tch::TchError },
}
