//! Training augmentation on a whole batch at once: horizontal flip, small rotation and shift (one affine
//! warp), brightness and contrast. Works on 0–255 float NCHW so the warp's zero padding is black, as an
//! MRI background is.

use crate::rng::Rng;
use tch::{Kind, Tensor};

/// How strongly to perturb.
#[derive(Debug, Clone, Copy)]
pub struct AugmentParams {
    pub flip_prob: f64,
    pub max_rotate_deg: f64,
    /// As a fraction of the image side.
    pub max_shift: f64,
    pub max_brightness: f64,
    pub max_contrast: f64,
}

impl Default for AugmentParams {
    fn default() -> Self {
        AugmentParams { flip_prob: 0.5, max_rotate_deg: 10.0, max_shift: 0.08, max_brightness: 0.1, max_contrast: 0.15 }
    }
}

/// Augment `x` ([B,3,H,W], float 0–255). Returns a new tensor in the same range.
pub fn augment(x: &Tensor, p: &AugmentParams, rng: &mut Rng) -> Result<Tensor, tch::TchError> {
    let (b, c, h, w) = x.size4()?;
    let mut theta = Vec::with_capacity(b as usize * 6);
    let mut gain = Vec::with_capacity(b as usize);
    let mut bias = Vec::with_capacity(b as usize);
    for _ in 0..b {
        let flip = if rng.next_f64() < p.flip_prob { -1.0 } else { 1.0 };
        let a = rng.range(-p.max_rotate_deg, p.max_rotate_deg).to_radians();
        let (tx, ty) = (rng.range(-p.max_shift, p.max_shift) * 2.0, rng.range(-p.max_shift, p.max_shift) * 2.0);
        theta.extend_from_slice(&[(flip * a.cos()) as f32, -a.sin() as f32, tx as f32, (flip * a.sin()) as f32, a.cos() as f32, ty as f32]);
        gain.push(rng.range(1.0 - p.max_contrast, 1.0 + p.max_contrast) as f32);
        bias.push((rng.range(-p.max_brightness, p.max_brightness) * 255.0) as f32);
    }
    let dev = x.device();
    let theta = Tensor::from_slice(&theta).view([b, 2, 3]).to_device(dev);
    let grid = Tensor::f_affine_grid_generator(&theta, [b, c, h, w], false)?;
    let warped = x.f_grid_sampler(&grid, 0, 0, false)?;
    let gain = Tensor::from_slice(&gain).view([b, 1, 1, 1]).to_device(dev);
    let bias = Tensor::from_slice(&bias).view([b, 1, 1, 1]).to_device(dev);
    let mean = warped.f_mean_dim([1i64, 2, 3].as_slice(), true, Kind::Float)?;
    let out = ((warped - &mean) * gain + mean + bias).clamp(0.0, 255.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_shape_and_range_and_changes_pixels() {
        let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, tch::Device::Cpu)) * 255.0;
        let y = augment(&x, &AugmentParams::default(), &mut Rng::new(1)).unwrap();
        assert_eq!(y.size(), vec![4, 3, 32, 32]);
        assert!(y.min().double_value(&[]) >= 0.0 && y.max().double_value(&[]) <= 255.0);
        assert!((&y - &x).abs().mean(Kind::Float).double_value(&[]) > 1.0);
    }

    #[test]
    fn zero_strength_is_identity() {
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, tch::Device::Cpu)) * 255.0;
        let p = AugmentParams { flip_prob: 0.0, max_rotate_deg: 0.0, max_shift: 0.0, max_brightness: 0.0, max_contrast: 0.0 };
        let y = augment(&x, &p, &mut Rng::new(1)).unwrap();
        assert!((&y - &x).abs().max().double_value(&[]) < 1e-3);
    }
}
