//! An ensemble: several trained runs that answer as one. `ensemble.json` in a model folder names the
//! members, their checkpoints and their fitted temperatures; the network averages the members'
//! calibrated probabilities, so everything that infers with a run (eval, predict, the gallery, `o`)
//! infers with an ensemble unchanged: its logits are the log of the averaged probabilities.

use super::{Classifier, Net};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::{ModuleT, VarStore};
use tch::{Kind, Tensor};

pub const FILE: &str = "ensemble.json";
pub const FORMAT: u32 = 1;

pub use super::errors::EnsembleError;


/// One member as `ensemble.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberSpec {
    /// The member's run folder (absolute).
    pub run: PathBuf,
    /// Its checkpoint (absolute): the best, else the last, when the ensemble was made.
    pub checkpoint: PathBuf,
    /// Its fitted temperature for that checkpoint, if any (its probabilities are softmax(z / T)).
    pub temperature: Option<f64>,
    pub model: String,
}

/// `ensemble.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSpec {
    pub format: u32,
    pub classes: Vec<String>,
    pub image_size: u32,
    pub members: Vec<MemberSpec>,
    /// Test images the members share (their common test split), recorded in the folder's split.json.
    pub test_images: usize,
    pub created_unix: u64,
}

impl EnsembleSpec {
    pub fn read(dir: &Path) -> Result<EnsembleSpec, EnsembleError> {
        let p = dir.join(FILE);
        let path = p.display().to_string();
        let bytes = std::fs::read(&p).map_err(|source| EnsembleError::Read { path: path.clone(), source })?;
        let spec: EnsembleSpec = serde_json::from_slice(&bytes).map_err(|source| EnsembleError::Invalid { path: path.clone(), source })?;
        if spec.format > FORMAT {
            return Err(EnsembleError::Format { path, found: spec.format });
        }
        if spec.members.is_empty() {
            return Err(EnsembleError::Empty(path));
        }
        Ok(spec)
    }
}

/// Whether `dir` holds an ensemble.
pub fn is_ensemble(dir: &Path) -> bool {
    dir.join(FILE).is_file()
}

struct Member {
    net: Net,
    temperature: Option<f64>,
}

/// The members' networks, answering as one.
pub struct Ensemble {
    members: Vec<Member>,
    /// The members' weights (their networks hold handles on them).
    _stores: Vec<VarStore>,
}

impl std::fmt::Debug for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ensemble of {}", self.members.len())
    }
}

impl Ensemble {
    /// Build and load every member from `spec` on `device`. Each failure names the member's file.
    pub fn load(spec: &EnsembleSpec, device: tch::Device, channels_last: bool) -> Result<Ensemble, EnsembleError> {
        let mut members = vec![];
        let mut stores = vec![];
        for m in &spec.members {
            let meta = crate::run::RunDir::open(&m.run).and_then(|d| d.read_meta())?;
            let mut vs = VarStore::new(device);
            let net = super::build(&vs, &meta.config, meta.classes.len());
            super::weights::load_checkpoint(&mut vs, &m.checkpoint)?;
            if channels_last {
                super::weights::to_channels_last(&vs).map_err(|source| EnsembleError::Torch { path: m.checkpoint.display().to_string(), source })?;
            }
            members.push(Member { net, temperature: m.temperature });
            stores.push(vs);
        }
        Ok(Ensemble { members, _stores: stores })
    }

    /// Each member's calibrated probabilities [B, classes] for a batch.
    pub fn member_probs(&self, x: &Tensor) -> Vec<Tensor> {
        self.members
            .iter()
            .map(|m| {
                let z = m.net.forward_t(x, false);
                let z = match m.temperature {
                    Some(t) => z / t,
                    None => z,
                };
                z.softmax(-1, Kind::Float)
            })
            .collect()
    }

    pub fn nets(&self) -> impl Iterator<Item = &Net> {
        self.members.iter().map(|m| &m.net)
    }

    fn with_nets(&self, f: impl Fn(&Net) -> Option<Net>) -> Option<Net> {
        let members: Option<Vec<Member>> = self.members.iter().map(|m| f(&m.net).map(|net| Member { net, temperature: m.temperature })).collect();
        members.map(|members| Box::new(Ensemble { members, _stores: vec![] }) as Net)
    }
}

impl ModuleT for Ensemble {
    /// The log of the members' mean calibrated probabilities: a softmax of it gives that mean back.
    fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        let probs = self.member_probs(x);
        let n = probs.len() as f64;
        let sum = probs.into_iter().reduce(|a, b| a + b).expect("an ensemble has members");
        (sum / n).clamp_min(1e-12).log()
    }
}

impl Classifier for Ensemble {
    /// Grad-CAM asks each member (`gradcam::grad_cam` averages their maps); this is the first's.
    fn feature_map(&self, x: &Tensor, train: bool) -> Tensor {
        self.members[0].net.feature_map(x, train)
    }
    fn head(&self, fmap: &Tensor, train: bool) -> Tensor {
        self.members[0].net.head(fmap, train)
    }
    fn folded(&self) -> Option<Net> {
        self.with_nets(|n| n.folded())
    }
    fn replica(&self) -> Option<Net> {
        self.with_nets(|n| n.replica())
    }
    fn ensemble(&self) -> Option<&Ensemble> {
        Some(self)
    }
}
