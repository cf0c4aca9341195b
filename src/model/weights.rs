//! Pretrained weights and checkpoints: locate the converted Lite0 file, load it into a VarStore, keep
//! conv weights channels-last (libtorch follows the input's strides; depthwise backward is much faster),
//! and save checkpoints as contiguous safetensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;
use tch::nn::VarStore;

pub use super::errors::{LoadError, WeightsError};

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
                t.f_set_data(&crate::data::batch::channels_last(&t)?)?;
            }
        }
        Ok(())
    })
}

/// Save every variable as a contiguous tensor (safetensors cannot store strided views), with
/// `metadata` in the file's header so the file alone says what it is.
pub fn save(vs: &VarStore, path: &Path, metadata: &HashMap<String, String>) -> Result<(), tch::TchError> {
    save_named(vs.variables().into_iter().collect(), metadata, path)
}

/// Write named tensors and metadata to a safetensors file, atomically (temp file, then rename; the
/// temp file is removed if anything fails).
pub fn save_named(mut named: Vec<(String, Tensor)>, metadata: &HashMap<String, String>, path: &Path) -> Result<(), tch::TchError> {
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes = serialize(&named, metadata, path)?;
    crate::run::dir::write_atomic(path, &bytes).map_err(|e| tch::TchError::FileFormat(format!("{}: {e}", path.display())))
}

/// The safetensors bytes of named tensors (`path` only names the file in errors).
fn serialize(named: &[(String, Tensor)], metadata: &HashMap<String, String>, path: &Path) -> Result<Vec<u8>, tch::TchError> {
    use safetensors::tensor::{Dtype, TensorView};
    let mut buffers = Vec::with_capacity(named.len());
    for (name, t) in named {
        let t = t.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
        let dtype = match t.kind() {
            tch::Kind::Float => Dtype::F32,
            tch::Kind::Double => Dtype::F64,
            tch::Kind::Int64 => Dtype::I64,
            k => return Err(tch::TchError::Kind(format!("{name}: cannot save {k:?} tensors"))),
        };
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        buffers.push((name.clone(), dtype, shape, bytes));
    }
    let views: Vec<(String, TensorView)> = buffers
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<_, _>>()
        .map_err(|e| tch::TchError::FileFormat(format!("{}: {e:?}", path.display())))?;
    safetensors::tensor::serialize(views, &Some(metadata.clone()))
        .map_err(|e| tch::TchError::FileFormat(format!("{}: {e:?}", path.display())))
}

/// The metadata a safetensors file carries in its header.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|e| WeightsError::Load { path: path.display().to_string(), message: e.to_string() })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| WeightsError::Load { path: path.display().to_string(), message: format!("not a safetensors file: {e:?}") })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}


/// A run's trained network, as every command that infers with a run loads it.
pub struct RunNetwork {
    pub meta: crate::run::RunMeta,
    pub vs: VarStore,
    pub net: crate::model::Net,
    /// The checkpoint loaded: the best, else the last.
    pub checkpoint: PathBuf,
}

/// The one checkpoint loader for a run folder: its settings, its network built and loaded from the best
/// checkpoint (else the last) on `device`, channels-last when asked (as training keeps the weights).
/// Each failure is one line naming the folder or file.
pub fn load_run_network(run: &Path, device: tch::Device, channels_last: bool) -> Result<RunNetwork, LoadError> {
    let dir = crate::run::RunDir::open(run)?;
    let meta = dir.read_meta()?;
    let checkpoint = dir.checkpoint().ok_or_else(|| LoadError::NoCheckpoint(run.display().to_string()))?;
    let mut vs = VarStore::new(device);
    let net = crate::model::build(&vs, &meta.config, meta.classes.len());
    load_checkpoint(&mut vs, &checkpoint)?;
    if channels_last {
        to_channels_last(&vs).map_err(|source| LoadError::Torch { path: checkpoint.display().to_string(), source })?;
    }
    Ok(RunNetwork { meta, vs, net, checkpoint })
}

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
