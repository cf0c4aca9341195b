//! Networks: EfficientNet-Lite0 (ImageNet weights, new head) and a small CNN from scratch.

pub mod ensemble;
pub mod errors;
pub mod folded;
pub mod gradcam;
pub mod inference;
pub mod lite0;
pub mod same;
pub mod small_cnn;
pub mod weights;

use crate::config::{ModelKind, TrainConfig};
use tch::nn;

/// A classifier split at its last convolutional stage, so Grad-CAM can look at the feature map:
/// `forward_t(x) == head(feature_map(x))`.
pub trait Classifier: nn::ModuleT + Send {
    /// The last convolutional stage's output, [B, C, h, w], before global pooling.
    fn feature_map(&self, x: &tch::Tensor, train: bool) -> tch::Tensor;
    /// Pooling, dropout and the linear layer: logits [B, classes] from a feature map.
    fn head(&self, fmap: &tch::Tensor, train: bool) -> tch::Tensor;
    /// A faster inference-only copy (BatchNorm folded into the convolutions), where the network has
    /// one. It is detached from the weights: make a new one after they change.
    fn folded(&self) -> Option<Net> {
        None
    }
    /// The folded copy with its convolutions in bfloat16 (inputs cast to it, the linear layer in f32):
    /// `eval --bf16`, `predict --bf16`. Faster where the CPU has bf16 instructions; the logits move by
    /// more than float noise (README gives the accuracy).
    fn folded_bf16(&self) -> Option<Net> {
        None
    }
    /// Another handle on the same weights (no copy) that another thread can own, for inference spread
    /// over the cores (`train::spread`); None where the network has none.
    fn replica(&self) -> Option<Net> {
        None
    }
    /// Train passes leave the first `stages` stages (with the stem) without gradients, 0 = none.
    /// False where the network has no stages to freeze.
    fn freeze_stages(&self, _stages: usize) -> bool {
        false
    }
    /// The members, where the network is an ensemble of runs.
    fn ensemble(&self) -> Option<&ensemble::Ensemble> {
        None
    }
}

/// A classifier: logits [B, classes] from a normalised [B,3,H,W] batch.
pub type Net = Box<dyn Classifier>;

/// Build the network described by `cfg` under `vs.root()`.
pub fn build(vs: &nn::VarStore, cfg: &TrainConfig, classes: usize) -> Net {
    match cfg.model {
        ModelKind::EfficientnetLite0 => Box::new(
            lite0::Lite0::new(&vs.root(), lite0::Head::Classes(classes as i64), cfg.dropout, cfg.bn_momentum).with_drop_path(cfg.drop_path),
        ),
        ModelKind::SmallCnn => Box::new(small_cnn::SmallCnn::new(&vs.root(), classes as i64, cfg.dropout)),
    }
}
