//! Grad-CAM (Selvaraju et al. 2017), plain, not guided: where in the image the network's evidence for a
//! class lies. The last convolutional stage's activations `A` (C×h×w) are weighted by the spatial mean
//! of the class score's gradient with respect to them, summed over channels and passed through ReLU:
//! `cam = relu(Σ_c mean(∂y/∂A_c) · A_c)`, scaled to 0..1.

use super::Classifier;
use tch::{Kind, Tensor};

/// One explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Cam {
    /// The class explained.
    pub class: usize,
    /// Softmax probabilities of the image (raw, uncalibrated).
    pub probs: Vec<f32>,
    /// Row-major h×w map in 0..1 (all zero when no location speaks for the class).
    pub map: Vec<f32>,
    pub h: usize,
    pub w: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CamError {
    #[error("class {class} out of range: the model has {classes} classes")]
    BadClass { class: usize, classes: usize },
    #[error("Grad-CAM needs one image [1, 3, H, W], got {0:?}")]
    BadInput(Vec<i64>),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Grad-CAM of `class` (default: the predicted one) for one normalised image `x` [1, 3, H, W].
pub fn grad_cam(net: &dyn Classifier, x: &Tensor, class: Option<usize>) -> Result<Cam, CamError> {
    let size = x.size();
    if size.len() != 4 || size[0] != 1 || size[1] != 3 {
        return Err(CamError::BadInput(size));
    }
    if let Some(e) = net.ensemble() {
        return ensemble_cam(e, net, x, class);
    }
    // The backbone runs without a graph; the feature map becomes a leaf that asks for its gradient, so
    // only the head is differentiated (fast, and independent of which parameters require grad).
    let fmap = tch::no_grad(|| net.feature_map(x, false)).f_detach()?.set_requires_grad(true);
    let logits = tch::with_grad(|| net.head(&fmap, false));
    let n = logits.size().last().copied().unwrap_or(0) as usize;
    let probs: Vec<f32> =
        Vec::<f32>::try_from(logits.detach().f_softmax(-1, Kind::Float)?.f_flatten(0, -1)?.f_to_device(tch::Device::Cpu)?)?;
    let class = match class {
        Some(c) if c >= n => return Err(CamError::BadClass { class: c, classes: n }),
        Some(c) => c,
        None => probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k).unwrap_or(0),
    };
    let score = tch::with_grad(|| logits.f_get(0).and_then(|row| row.f_get(class as i64)))?;
    let grads = tch::with_grad(|| Tensor::f_run_backward(&[&score], &[&fmap], false, false))?;
    let weights = grads[0].f_mean_dim([2i64, 3].as_slice(), true, Kind::Float)?;
    let cam = (fmap.detach() * weights).f_sum_dim_intlist([1i64].as_slice(), false, Kind::Float)?.f_relu()?;
    let (h, w) = (cam.size()[1] as usize, cam.size()[2] as usize);
    let mut map = Vec::<f32>::try_from(cam.f_flatten(0, -1)?.f_to_device(tch::Device::Cpu)?)?;
    let max = map.iter().copied().fold(0.0f32, f32::max);
    if max > 0.0 {
        map.iter_mut().for_each(|v| *v /= max);
    }
    Ok(Cam { class, probs, map, h, w })
}

/// An ensemble's map: the mean of its members' maps of one class (the ensemble's prediction unless
/// asked), each resampled to the first member's grid; the probabilities are the ensemble's.
fn ensemble_cam(e: &super::ensemble::Ensemble, net: &dyn Classifier, x: &Tensor, class: Option<usize>) -> Result<Cam, CamError> {
    let probs: Vec<f32> = Vec::<f32>::try_from(tch::no_grad(|| net.forward_t(x, false)).f_softmax(-1, Kind::Float)?.f_flatten(0, -1)?.f_to_device(tch::Device::Cpu)?)?;
    let n = probs.len();
    let class = match class {
        Some(c) if c >= n => return Err(CamError::BadClass { class: c, classes: n }),
        Some(c) => c,
        None => probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k).unwrap_or(0),
    };
    let mut mean: Option<Cam> = None;
    let mut count = 0.0f32;
    for m in e.nets() {
        let c = grad_cam(m.as_ref(), x, Some(class))?;
        count += 1.0;
        match &mut mean {
            None => mean = Some(c),
            Some(acc) => {
                for (i, v) in acc.map.iter_mut().enumerate() {
                    // Nearest cell of this member's grid.
                    let (y, xx) = (i / acc.w * c.h / acc.h, i % acc.w * c.w / acc.w);
                    *v += c.map[y * c.w + xx];
                }
            }
        }
    }
    let mut cam = mean.ok_or(CamError::BadInput(vec![]))?;
    let max = cam.map.iter().copied().fold(0.0f32, f32::max);
    cam.map.iter_mut().for_each(|v| *v = if max > 0.0 { *v / max } else { *v / count });
    cam.probs = probs;
    cam.class = class;
    Ok(cam)
}
