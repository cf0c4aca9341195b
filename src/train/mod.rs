//! The training loop on its own thread, talking only through typed events and commands.

pub mod callbacks;
pub mod evaluate;
pub mod events;
pub mod trainer;

pub use events::{Prediction, RunInfo, RunState, TrainCommand, TrainEvent};
pub use trainer::{TrainJob, TrainerHandle, spawn};
