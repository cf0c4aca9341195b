//! The exact state of a run between two batches: `resume.safetensors` (weights, BatchNorm statistics
//! and Adam's moments) plus `resume.json` (everything else). `train --resume` continues from it as if
//! the run had never stopped.

use super::adam::Adam;
use super::callbacks::{BestTracker, EarlyStopping, ReduceLrOnPlateau};
use super::ema::Ema;
use crate::config::TrainConfig;
use crate::rng::Rng;
use crate::run::RunDir;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tch::Tensor;
use tch::nn::VarStore;

/// Why a run's resume state cannot be saved or read. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{path}: no resume state (the run was made by an older tumorscope, or stopped before its first save)")]
    NoState { path: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: invalid resume state: {source}")]
    Invalid { path: String, source: serde_json::Error },
    #[error("{path}: resume state format {found} (this tumorscope reads {FORMAT})")]
    Format { path: String, found: u32 },
    #[error("{path}: does not match resume.json (a save was cut short); resume is not possible")]
    Stale { path: String },
    /// The tensor file: unreadable, written for another network, or the optimiser's state does not fit.
    #[error("{path}: {message}")]
    Tensors { path: String, message: String },
}

fn shown(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// Sums over the batches of an unfinished epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    pub loss_sum: f64,
    pub correct: usize,
    pub seen: usize,
    pub compute_seconds: f64,
    pub wall_seconds: f64,
}

/// Everything but tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    pub format: u32,
    pub model: String,
    pub classes: Vec<String>,
    pub config: TrainConfig,
    pub data_fingerprint: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Batches completed of epoch `epoch + 1` (0: at the epoch boundary).
    pub batch: usize,
    /// The training order: the current epoch's when `batch > 0`, else the last epoch's (the next
    /// epoch shuffles it again).
    pub order: Vec<usize>,
    pub rng: Rng,
    pub partial: PartialEpoch,
    pub lr: f64,
    pub adam_step: i64,
    pub plateau: ReduceLrOnPlateau,
    pub early: EarlyStopping,
    pub best: BestTracker,
    pub paused: bool,
    pub elapsed_seconds: f64,
    /// A user set the rate, so the cosine schedule no longer moves it (absent in older states).
    #[serde(default)]
    pub lr_pinned: bool,
    /// fp16 mixed precision's loss scale (absent otherwise, and in older states).
    #[serde(default)]
    pub loss_scale: Option<crate::train::amp::LossScale>,
}

pub const FORMAT: u32 = 1;

/// Save the state. The tensor file carries the state's JSON in its metadata, and its atomic rename
/// is the one moment the new state takes over: a process killed before it leaves the last pair
/// whole, one killed after it leaves the new state whole. `resume.json`, written next, is a readable
/// copy (and all that runs saved by older versions have).
pub fn save(run: &RunDir, st: &ResumeState, vs: &VarStore, opt: &Adam, ema: Option<&Ema>) -> Result<(), ResumeError> {
    let json = serde_json::to_string(st).map_err(|source| ResumeError::Invalid { path: shown(&run.resume_state()), source })?;
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (format!("model.{n}"), t)).collect();
    named.extend(opt.state());
    named.extend(ema.map(Ema::state).unwrap_or_default());
    let meta = HashMap::from([
        ("format".to_string(), "tumorscope-resume".to_string()),
        ("stamp".to_string(), stamp(st)),
        (STATE_KEY.to_string(), json.clone()),
    ]);
    let tensors = run.resume_tensors();
    crate::model::weights::save_named(named, &meta, &tensors)
        .map_err(|e| ResumeError::Tensors { path: shown(&tensors), message: e.to_string() })?;
    crate::run::dir::write_atomic(&run.resume_state(), json.as_bytes())
        .map_err(|source| ResumeError::Io { path: shown(&run.resume_state()), source })
}

/// The metadata key of the state inside `resume.safetensors`.
const STATE_KEY: &str = "state";

fn stamp(st: &ResumeState) -> String {
    format!("{}:{}:{}", st.epoch, st.batch, st.adam_step)
}

/// Read the state (without loading tensors): what `--resume` checks before loading data. The copy
/// inside `resume.safetensors` wins, as it always matches the tensors; `resume.json` serves runs
/// saved before the copy existed.
pub fn read_state(run: &RunDir) -> Result<ResumeState, ResumeError> {
    if let Some(st) = embedded_state(run)? {
        return Ok(st);
    }
    let p = run.resume_state();
    let text = std::fs::read(&p).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ResumeError::NoState { path: shown(&p) },
        _ => ResumeError::Io { path: shown(&p), source },
    })?;
    parse_state(&text, &p)
}

/// A state's JSON, read from `p`, in the format this version reads.
fn parse_state(json: &[u8], p: &std::path::Path) -> Result<ResumeState, ResumeError> {
    let st: ResumeState = serde_json::from_slice(json).map_err(|source| ResumeError::Invalid { path: shown(p), source })?;
    if st.format != FORMAT {
        return Err(ResumeError::Format { path: shown(p), found: st.format });
    }
    Ok(st)
}

fn embedded_state(run: &RunDir) -> Result<Option<ResumeState>, ResumeError> {
    let p = run.resume_tensors();
    if !p.exists() {
        return Ok(None);
    }
    let mut meta = crate::model::weights::read_metadata(&p).map_err(|e| ResumeError::Tensors { path: shown(&p), message: e.to_string() })?;
    let Some(text) = meta.remove(STATE_KEY) else { return Ok(None) };
    parse_state(text.as_bytes(), &p).map(Some)
}

/// Load the tensors into the network and the optimiser.
pub fn load_tensors(run: &RunDir, st: &ResumeState, vs: &mut VarStore, opt: &mut Adam) -> Result<HashMap<String, Tensor>, ResumeError> {
    let p = run.resume_tensors();
    let bad = |message: String| ResumeError::Tensors { path: shown(&p), message };
    let meta = crate::model::weights::read_metadata(&p).map_err(|e| bad(e.to_string()))?;
    if meta.get("stamp") != Some(&stamp(st)) {
        return Err(ResumeError::Stale { path: shown(&p) });
    }
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(&p).map_err(|e| bad(e.to_string()))?.into_iter().collect();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let key = format!("model.{name}");
            let src = tensors.get(&key).ok_or_else(|| bad(format!("lacks {key}: saved for another model?")))?;
            if src.size() != var.size() {
                return Err(bad(format!("{key} has shape {:?}, the network {:?}", src.size(), var.size())));
            }
            var.f_copy_(&src.to_device(var.device())).map_err(|e| bad(format!("{key}: {e}")))?;
        }
        Ok(())
    })?;
    opt.load_state(&tensors, st.adam_step).map_err(|e| bad(e.to_string()))?;
    Ok(tensors)
}
