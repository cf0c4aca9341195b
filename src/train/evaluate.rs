//! Inference over a list of images: loss, accuracy, confusion matrix and per-image predictions.

use crate::data::{ImageSet, batch};
use crate::metrics::ConfusionMatrix;
use crate::model::Net;
use crate::run::events::Prediction;
use tch::{Device, Kind, Tensor};

/// Result of evaluating one split.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub loss: f64,
    pub confusion: ConfusionMatrix,
    pub predictions: Vec<Prediction>,
}

impl Evaluation {
    pub fn accuracy(&self) -> f64 {
        self.confusion.accuracy()
    }
}

/// Softmax probabilities for a prepared 0–255 batch.
pub fn probabilities(net: &Net, x: &Tensor) -> Result<Tensor, tch::TchError> {
    let x = batch::channels_last(&batch::normalize(x))?;
    tch::no_grad(|| net.forward_t(&x, false).f_softmax(-1, Kind::Float))
}

/// Mean of the probabilities over the views of test-time augmentation.
pub fn probabilities_tta(net: &Net, x: &Tensor, tta: super::tta::Tta) -> Result<Tensor, tch::TchError> {
    let views = super::tta::views(x, tta)?;
    let n = views.len() as f64;
    let mut sum: Option<Tensor> = None;
    for v in views {
        let p = probabilities(net, &v)?;
        sum = Some(match sum {
            Some(s) => s + p,
            None => p,
        });
    }
    Ok(sum.expect("at least one view") / n)
}

/// Probabilities of a prepared 0–255 batch: over `tta`'s views when given, else one view.
pub fn probabilities_with(net: &Net, x: &Tensor, tta: Option<super::tta::Tta>) -> Result<Tensor, tch::TchError> {
    match tta {
        Some(t) => probabilities_tta(net, x, t),
        None => probabilities(net, x),
    }
}

/// One decoded RGB image as the network's 0–255 input [1, 3, size, size] on `device`.
pub fn image_input(img: &image::RgbImage, size: u32, device: Device) -> Result<Tensor, tch::TchError> {
    pixels_input(&crate::data::decode::resize_for_network(img, size), 1, size, device)
}

/// `n` images of `size×size×3` bytes (HWC, one after another) as the network's 0–255 input
/// [n, 3, size, size] on `device`.
pub fn pixels_input(pixels: &[u8], n: i64, size: u32, device: Device) -> Result<Tensor, tch::TchError> {
    let s = size as i64;
    Tensor::f_from_data_size(pixels, &[n, s, s, 3], Kind::Uint8)?.f_to_device(device)?.f_to_kind(Kind::Float)?.f_permute([0, 3, 1, 2])
}

/// Probabilities of one prepared input, with test-time augmentation when asked, on the CPU.
pub fn image_probabilities(net: &Net, x: &Tensor, tta: Option<super::tta::Tta>) -> Result<Vec<f32>, tch::TchError> {
    let p = probabilities_with(net, x, tta)?;
    Vec::<f32>::try_from(p.f_to_device(Device::Cpu)?.f_flatten(0, -1)?)
}

/// Evaluate `net` on `idx` of `set`, `batch_size` images at a time.
pub fn evaluate(net: &Net, set: &ImageSet, idx: &[usize], batch_size: usize, device: Device) -> Result<Evaluation, tch::TchError> {
    evaluate_with(net, set, idx, batch_size, device, None)
}

/// As `evaluate`, optionally averaging over test-time augmentation views (`tta`).
pub fn evaluate_with(
    net: &Net,
    set: &ImageSet,
    idx: &[usize],
    batch_size: usize,
    device: Device,
    tta: Option<super::tta::Tta>,
) -> Result<Evaluation, tch::TchError> {
    let job = |net: &Net, x: &Tensor| probabilities_with(net, x, tta);
    super::spread::with_spread(net, device, &job, |probabilities| scores(probabilities, set, idx, batch_size, device))
}

/// The loss, confusion and predictions of `idx`, from `probabilities` of each gathered batch.
fn scores(
    probabilities: &mut dyn FnMut(&Tensor) -> Result<Tensor, tch::TchError>,
    set: &ImageSet,
    idx: &[usize],
    batch_size: usize,
    device: Device,
) -> Result<Evaluation, tch::TchError> {
    let n = set.classes.len();
    let mut confusion = ConfusionMatrix::new(n);
    let mut predictions = Vec::with_capacity(idx.len());
    let mut loss_sum = 0.0;
    for chunk in batch::chunks(idx, batch_size) {
        let (x, y) = batch::gather(set, chunk, device)?;
        let probs = probabilities(&x)?.f_to_device(Device::Cpu)?;
        let flat: Vec<f32> = Vec::<f32>::try_from(probs.f_flatten(0, -1)?)?;
        let y: Vec<i64> = Vec::<i64>::try_from(y.f_to_device(Device::Cpu)?)?;
        for (k, &i) in chunk.iter().enumerate() {
            let p = flat[k * n..(k + 1) * n].to_vec();
            let truth = y[k] as usize;
            let pred = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(j, _)| j).unwrap_or(0);
            let loss = -(p[truth].max(1e-12)).ln();
            loss_sum += loss as f64;
            confusion.add(truth, pred);
            predictions.push(Prediction { path: set.paths[i].display().to_string(), truth, pred, probs: p, loss });
        }
    }
    Ok(Evaluation { loss: loss_sum / idx.len().max(1) as f64, confusion, predictions })
}
