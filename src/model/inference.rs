//! The network a model folder holds for inference: a run's (its best checkpoint, else its last) or an
//! ensemble's (`ensemble.json`: its members, averaged). Every command that classifies with a folder
//! loads it here, so each accepts both.

use super::ensemble::{Ensemble, EnsembleSpec, FILE, is_ensemble};
use super::weights::{LoadError, RunNetwork, load_run_network};
use std::path::Path;

pub fn load_model(dir: &Path, device: tch::Device, channels_last: bool) -> Result<RunNetwork, LoadError> {
    if !is_ensemble(dir) {
        return load_run_network(dir, device, channels_last);
    }
    let meta = crate::run::RunDir::open(dir).and_then(|d| d.read_meta())?;
    let spec = EnsembleSpec::read(dir).map_err(|e| LoadError::Ensemble(Box::new(e)))?;
    let net = Ensemble::load(&spec, device, channels_last).map_err(|e| LoadError::Ensemble(Box::new(e)))?;
    Ok(RunNetwork { meta, vs: tch::nn::VarStore::new(device), net: Box::new(net), checkpoint: dir.join(FILE) })
}
