//! The model layer's errors in one leaf file (the files that raise them import it; it imports none of
//! them, so no two model files depend on each other through their errors).

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error(
        "{0}: pretrained EfficientNet-Lite0 weights not found; run scripts/setup.sh (or set TUMORSCOPE_WEIGHTS, or pass --no-pretrained)"
    )]
    NotFound(String),
    #[error("{path}: cannot load weights: {message}")]
    Load { path: String, message: String },
    #[error("{path}: not EfficientNet-Lite0 weights (missing {missing} tensors, e.g. {example})")]
    Mismatch { path: String, missing: usize, example: String },
}

/// Why an ensemble cannot be read or loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum EnsembleError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not an ensemble: {source}")]
    Invalid { path: String, source: serde_json::Error },
    #[error("{path}: written by a newer tumorscope (format {found})")]
    Format { path: String, found: u32 },
    #[error("{0}: no members")]
    Empty(String),
    #[error("ensemble member {0}")]
    Run(#[from] crate::run::dir::RunDirError),
    #[error("ensemble member {0}")]
    Weights(#[from] WeightsError),
    #[error("ensemble member {path}: {source}")]
    Torch { path: String, source: tch::TchError },
}

/// Why a run's network cannot be loaded; each names the folder or file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Run(#[from] crate::run::dir::RunDirError),
    #[error("{0}: no checkpoint yet (best.safetensors or last.safetensors; the first epoch has not ended)")]
    NoCheckpoint(String),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{path}: {source}")]
    Torch { path: String, source: tch::TchError },
    #[error(transparent)]
    Ensemble(Box<EnsembleError>),
}
