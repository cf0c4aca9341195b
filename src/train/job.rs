//! What a training run is given (`TrainJob`) and how it fails (`TrainError`).

use super::resume::ResumeState;
use crate::config::TrainConfig;
use crate::data::{ImageSet, Split};
use crate::run::RunDir;
use std::path::PathBuf;
use std::sync::Arc;
use tch::Device;

/// Why a training run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Weights(#[from] crate::model::weights::WeightsError),
    #[error("{path}: cannot save checkpoint: {source}")]
    Checkpoint { path: String, source: tch::TchError },
    #[error("resume state: {0}")]
    Resume(#[from] super::StateError),
    #[error("resume state: {0}")]
    ResumeState(#[from] super::resume::ResumeError),
    #[error(
        "loss became {value} at epoch {epoch}, batch {batch} (lr {lr}): stopped before the weights were touched; lower the learning rate"
    )]
    NonFiniteLoss { value: f64, epoch: usize, batch: usize, lr: String },
    #[error("mixed precision (--amp): {0}")]
    Amp(crate::cuda_runtime::CudaRuntimeError),
    #[error("the batch worker thread ended before the epoch's last batch")]
    BatchWorker,
    #[error("training ended but the final checkpoint could not be saved: {0}")]
    FinalSave(Box<TrainError>),
}

/// Everything a training run needs.
pub struct TrainJob {
    pub config: TrainConfig,
    pub data: Arc<ImageSet>,
    pub split: Split,
    pub device: Device,
    pub run: RunDir,
    pub data_root: String,
    /// Pretrained Lite0 weights (used when `config.pretrained` and not resuming).
    pub weights: PathBuf,
    /// `ImageSet::fingerprint`, recorded with the resume state.
    pub data_fingerprint: String,
    /// Continue from the run folder's saved state.
    pub resume: Option<ResumeState>,
    /// Serve the run's control socket (attach, ctl).
    pub serve_socket: bool,
    /// Write TensorBoard event files into `RUN/tensorboard/`.
    pub tensorboard: bool,
}
