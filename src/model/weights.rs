//! Pretrained weights and checkpoints: locate the converted Lite0 file, load it into a VarStore, keep
//! conv weights channels-last (libtorch follows the input's strides; depthwise backward is much faster),
//! and save checkpoints as contiguous safetensors.

use std::path::{Path, PathBuf};
use tch::Tensor;
use tch::nn::VarStore;

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

/// `$TUMORSCOPE_WEIGHTS`, else the setup script's output in the cache folder.
pub fn lite0_weights_path() -> PathBuf {
    std::env::var_os("TUMORSCOPE_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::data::cache::cache_root().join("efficientnet-lite0.safetensors"))
}

/// Load the ImageNet backbone; only variables of a new head (`classifier.*`) may be absent.
pub fn load_pretrained(vs: &mut VarStore, path: &Path) -> Result<(), WeightsError> {
    if !path.exists() {
        return Err(WeightsError::NotFound(path.display().to_string()));
    }
    let missing = vs.load_partial(path).map_err(|e| WeightsError::Load { path: path.display().to_string(), message: e.to_string() })?;
    let unexpected: Vec<_> = missing.iter().filter(|n| !n.starts_with("classifier")).collect();
    if let Some(first) = unexpected.first() {
        return Err(WeightsError::Mismatch { path: path.display().to_string(), missing: unexpected.len(), example: first.to_string() });
    }
    Ok(())
}

/// Give every 4-D variable channels-last strides (same values, same logical shape).
pub fn to_channels_last(vs: &VarStore) -> Result<(), tch::TchError> {
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            if t.dim() == 4 {
                let cl = t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?;
                t.f_set_data(&cl)?;
            }
        }
        Ok(())
    })
}

/// Save every variable as a contiguous tensor (safetensors cannot store strided views).
pub fn save(vs: &VarStore, path: &Path) -> Result<(), tch::TchError> {
    let mut named: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(n, t)| (n, t.contiguous().to_device(tch::Device::Cpu))).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let tmp = path.with_extension("safetensors.tmp");
    Tensor::write_safetensors(&named, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| tch::TchError::FileFormat(format!("{}: {e}", path.display())))
}

/// Load a checkpoint written by `save` (every variable must be present).
pub fn load_checkpoint(vs: &mut VarStore, path: &Path) -> Result<(), WeightsError> {
    let err = |m: String| WeightsError::Load { path: path.display().to_string(), message: m };
    if !path.exists() {
        return Err(err("no such file".into()));
    }
    let missing = vs.load_partial(path).map_err(|e| err(e.to_string()))?;
    if !missing.is_empty() {
        return Err(err(format!("checkpoint lacks {} tensors (e.g. {}); was it saved for another model?", missing.len(), missing[0])));
    }
    Ok(())
}
