//! A small CNN from scratch: four conv–BN–ReLU–pool stages, global average pooling, dropout, linear.
//! Trains in seconds per epoch on CPU, for quick experiments and the synthetic demo.

use tch::Tensor;
use tch::nn::{self, ModuleT};

#[derive(Debug)]
pub struct SmallCnn {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    dropout: f64,
    fc: nn::Linear,
}

impl SmallCnn {
    pub fn new(p: &nn::Path, classes: i64, dropout: f64) -> Self {
        let widths = [3, 24, 48, 96, 160];
        let f = p / "features";
        let convs = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let cfg = nn::ConvConfig { padding: 1, bias: false, ..Default::default() };
                (nn::conv2d(&f / format!("conv{i}"), w[0], w[1], 3, cfg), nn::batch_norm2d(&f / format!("bn{i}"), w[1], Default::default()))
            })
            .collect();
        SmallCnn { convs, dropout, fc: nn::linear(p / "classifier", 160, classes, Default::default()) }
    }
}

impl ModuleT for SmallCnn {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        use super::Classifier;
        self.head(&self.feature_map(x, train), train)
    }
}

impl super::Classifier for SmallCnn {
    /// The last stage's activations before its pooling (an eighth of the input side), for a finer
    /// Grad-CAM than the pooled map.
    fn feature_map(&self, x: &Tensor, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        let last = self.convs.len() - 1;
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            x = x.apply(conv).apply_t(bn, train).relu();
            if i < last {
                x = x.max_pool2d_default(2);
            }
        }
        x
    }

    fn head(&self, fmap: &Tensor, train: bool) -> Tensor {
        fmap.max_pool2d_default(2).mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float).dropout(self.dropout, train).apply(&self.fc)
    }
}
