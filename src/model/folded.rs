//! An inference-only copy of EfficientNet-Lite0 with every BatchNorm folded into the convolution
//! before it: `conv(x, w)·γ/√(σ²+ε) + β − μ·γ/√(σ²+ε)` is one convolution with weight `w·γ/√(σ²+ε)`
//! and bias `β − μ·γ/√(σ²+ε)`. That drops 49 BatchNorm passes (and their memory traffic) from every
//! forward pass; the logits agree with the unfolded network within float noise (tested ≤ 1e-4).
//!
//! The copy holds its own tensors, detached from the VarStore: fold again after the weights change.

use super::same::{relu6, same_conv_padding, same_input};
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// A convolution with its BatchNorm folded in, TF "SAME" padding as `lite0::SameConv`.
#[derive(Debug)]
pub(crate) struct FoldedConv {
    w: Tensor,
    b: Tensor,
    k: i64,
    s: i64,
    groups: i64,
}

impl FoldedConv {
    /// Fold `bn` (eps `eps`) into a bias-free convolution weight `w` [out, in/groups, k, k].
    pub(crate) fn new(w: &Tensor, bn: &nn::BatchNorm, eps: f64, k: i64, s: i64, groups: i64) -> Result<Self, tch::TchError> {
        tch::no_grad(|| {
            // In double precision, rounded once at the end.
            let f64_ = |t: &Tensor| t.f_to_kind(Kind::Double);
            let (mean, var) = (f64_(&bn.running_mean)?, f64_(&bn.running_var)?);
            let gamma = match &bn.ws {
                Some(t) => f64_(t)?,
                None => var.ones_like(),
            };
            let beta = match &bn.bs {
                Some(t) => f64_(t)?,
                None => mean.zeros_like(),
            };
            let kind = w.kind();
            let scale = gamma.f_div(&(var.f_add_scalar(eps)?.f_sqrt()?))?;
            let w = f64_(w)?.f_mul(&scale.f_view([-1, 1, 1, 1])?)?.f_to_kind(kind)?;
            // Channels-last, as the unfolded weights are (libtorch follows the input's strides).
            let w = crate::data::batch::channels_last(&w)?;
            let b = beta.f_sub(&mean.f_mul(&scale)?)?.f_to_kind(kind)?;
            Ok(FoldedConv { w: w.f_detach()?, b: b.f_detach()?, k, s, groups })
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let pad = same_conv_padding(self.k, self.s);
        same_input(x, self.k, self.s).conv2d(&self.w, Some(&self.b), [self.s, self.s], [pad, pad], [1, 1], self.groups)
    }
}

/// One MBConv block, folded.
#[derive(Debug)]
pub(crate) struct FoldedBlock {
    pub(crate) expand: Option<FoldedConv>,
    pub(crate) depthwise: FoldedConv,
    pub(crate) project: FoldedConv,
    pub(crate) residual: bool,
}

impl FoldedConv {
    fn shallow_clone(&self) -> Self {
        FoldedConv { w: self.w.shallow_clone(), b: self.b.shallow_clone(), ..*self }
    }
}

impl FoldedBlock {
    fn shallow_clone(&self) -> Self {
        FoldedBlock {
            expand: self.expand.as_ref().map(FoldedConv::shallow_clone),
            depthwise: self.depthwise.shallow_clone(),
            project: self.project.shallow_clone(),
            residual: self.residual,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let y = match &self.expand {
            Some(c) => relu6(c.forward(x)),
            None => x.shallow_clone(),
        };
        let y = self.project.forward(&relu6(self.depthwise.forward(&y)));
        if self.residual { y + x } else { y }
    }
}

/// The folded network. Inference only: `train` is ignored (no dropout, no BatchNorm updates).
#[derive(Debug)]
pub struct FoldedLite0 {
    pub(crate) stem: FoldedConv,
    pub(crate) blocks: Vec<FoldedBlock>,
    pub(crate) head: FoldedConv,
    pub(crate) fc_w: Tensor,
    pub(crate) fc_b: Option<Tensor>,
}

impl FoldedLite0 {
    /// The same network with its convolutions in `kind` (the linear layer stays in f32): inputs are
    /// cast to it, pooled features come back as f32.
    pub fn with_conv_kind(self, kind: Kind) -> Result<Self, tch::TchError> {
        let conv = |c: FoldedConv| -> Result<FoldedConv, tch::TchError> {
            Ok(FoldedConv { w: c.w.f_to_kind(kind)?, b: c.b.f_to_kind(kind)?, ..c })
        };
        let blocks = self
            .blocks
            .into_iter()
            .map(|b| {
                Ok(FoldedBlock {
                    expand: b.expand.map(conv).transpose()?,
                    depthwise: conv(b.depthwise)?,
                    project: conv(b.project)?,
                    residual: b.residual,
                })
            })
            .collect::<Result<Vec<_>, tch::TchError>>()?;
        Ok(FoldedLite0 { stem: conv(self.stem)?, blocks, head: conv(self.head)?, fc_w: self.fc_w, fc_b: self.fc_b })
    }

    fn conv_features(&self, x: &Tensor) -> Tensor {
        // A no-op (no copy) where the input is already in the weights' kind.
        let mut x = relu6(self.stem.forward(&x.to_kind(self.stem.w.kind())));
        for b in &self.blocks {
            x = b.forward(&x);
        }
        relu6(self.head.forward(&x))
    }
}

impl ModuleT for FoldedLite0 {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        super::Classifier::head(self, &self.conv_features(x), false)
    }
}

impl super::Classifier for FoldedLite0 {
    fn replica(&self) -> Option<super::Net> {
        Some(Box::new(FoldedLite0 {
            stem: self.stem.shallow_clone(),
            blocks: self.blocks.iter().map(FoldedBlock::shallow_clone).collect(),
            head: self.head.shallow_clone(),
            fc_w: self.fc_w.shallow_clone(),
            fc_b: self.fc_b.as_ref().map(Tensor::shallow_clone),
        }))
    }

    fn feature_map(&self, x: &Tensor, _train: bool) -> Tensor {
        self.conv_features(x)
    }

    fn head(&self, fmap: &Tensor, _train: bool) -> Tensor {
        fmap.mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float).linear(&self.fc_w, self.fc_b.as_ref())
    }
}
