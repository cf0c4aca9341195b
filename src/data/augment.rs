//! Training augmentation: horizontal flip, small rotation and shift (one affine warp, bilinear, black
//! outside the image as an MRI background is), brightness and contrast. Pure Rust on the u8 pixels, so
//! it can run on a worker thread beside the training step without touching libtorch's thread pool.
//!
//! The warp is the one `affine_grid` + `grid_sample` (bilinear, zero padding, `align_corners=false`)
//! compute; a test checks it against libtorch.

use crate::rng::Rng;

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

/// The random choices for one image: the 2×3 affine map of normalised output to input coordinates
/// (as `affine_grid` takes it), the contrast gain about the image mean, and the brightness offset
/// (0–255 scale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    pub theta: [f32; 6],
    pub gain: f32,
    pub bias: f32,
}

/// Draw one image's augmentation. The order of the draws is part of the seed's meaning: a resumed
/// run replays it.
pub fn draw(p: &AugmentParams, rng: &mut Rng) -> Draw {
    let flip = if rng.next_f64() < p.flip_prob { -1.0 } else { 1.0 };
    let a = rng.range(-p.max_rotate_deg, p.max_rotate_deg).to_radians();
    let (tx, ty) = (rng.range(-p.max_shift, p.max_shift) * 2.0, rng.range(-p.max_shift, p.max_shift) * 2.0);
    let theta = [(flip * a.cos()) as f32, -a.sin() as f32, tx as f32, (flip * a.sin()) as f32, a.cos() as f32, ty as f32];
    let gain = rng.range(1.0 - p.max_contrast, 1.0 + p.max_contrast) as f32;
    let bias = (rng.range(-p.max_brightness, p.max_brightness) * 255.0) as f32;
    Draw { theta, gain, bias }
}

/// Augment one `h×w` RGB image (HWC u8) into `out` (HWC, 0–255 floats).
pub fn apply(src: &[u8], h: usize, w: usize, d: &Draw, out: &mut [f32]) {
    debug_assert_eq!(src.len(), h * w * 3);
    debug_assert_eq!(out.len(), h * w * 3);
    let [t0, t1, t2, t3, t4, t5] = d.theta;
    let (wf, hf) = (w as f32, h as f32);
    let px = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 { 0.0 } else { src[(y as usize * w + x as usize) * 3 + c] as f32 }
    };
    let mut sum = 0.0f64;
    for i in 0..h {
        let yn = (2 * i + 1) as f32 / hf - 1.0;
        for j in 0..w {
            let xn = (2 * j + 1) as f32 / wf - 1.0;
            let gx = t0 * xn + t1 * yn + t2;
            let gy = t3 * xn + t4 * yn + t5;
            let ix = ((gx + 1.0) * wf - 1.0) / 2.0;
            let iy = ((gy + 1.0) * hf - 1.0) / 2.0;
            // floor() without a libm call: exact for coordinates above −2, and anything at or below
            // −2 lands in the all-outside branch either way.
            let (x0, y0) = ((ix + 2.0) as i64 - 2, (iy + 2.0) as i64 - 2);
            let (fx, fy) = (ix - x0 as f32, iy - y0 as f32);
            let (w00, w01, w10, w11) = ((1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy);
            let o = (i * w + j) * 3;
            let mut row = 0.0f32;
            if x0 >= 0 && y0 >= 0 && x0 + 1 < w as i64 && y0 + 1 < h as i64 {
                // All four neighbours inside: no bounds checks per channel.
                let a = (y0 as usize * w + x0 as usize) * 3;
                let b = a + w * 3;
                for c in 0..3 {
                    let v = src[a + c] as f32 * w00 + src[a + 3 + c] as f32 * w01 + src[b + c] as f32 * w10 + src[b + 3 + c] as f32 * w11;
                    out[o + c] = v;
                    row += v;
                }
            } else if x0 < -1 || y0 < -1 || x0 >= w as i64 || y0 >= h as i64 {
                out[o..o + 3].fill(0.0);
            } else {
                for c in 0..3 {
                    let v = px(x0, y0, c) * w00 + px(x0 + 1, y0, c) * w01 + px(x0, y0 + 1, c) * w10 + px(x0 + 1, y0 + 1, c) * w11;
                    out[o + c] = v;
                    row += v;
                }
            }
            sum += row as f64;
        }
    }
    let mean = (sum / out.len().max(1) as f64) as f32;
    for v in out.iter_mut() {
        *v = ((*v - mean) * d.gain + mean + d.bias).clamp(0.0, 255.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    /// The libtorch formulation the Rust warp must equal: affine_grid + grid_sample on NCHW floats.
    fn reference(src: &[u8], h: usize, w: usize, d: &Draw) -> Vec<f32> {
        let (h, w) = (h as i64, w as i64);
        let x = Tensor::from_slice(src).view([1, h, w, 3]).permute([0, 3, 1, 2]).to_kind(Kind::Float);
        let theta = Tensor::from_slice(&d.theta).view([1, 2, 3]);
        let grid = Tensor::affine_grid_generator(&theta, [1, 3, h, w], false);
        let warped = x.grid_sampler(&grid, 0, 0, false);
        let mean = warped.mean_dim([1i64, 2, 3].as_slice(), true, Kind::Float);
        let out = ((&warped - &mean) * d.gain as f64 + mean + d.bias as f64).clamp(0.0, 255.0);
        Vec::<f32>::try_from(out.permute([0, 2, 3, 1]).contiguous().flatten(0, -1)).unwrap()
    }

    fn image(h: usize, w: usize, seed: u64) -> Vec<u8> {
        let mut r = Rng::new(seed);
        (0..h * w * 3).map(|_| r.below(256) as u8).collect()
    }

    #[test]
    fn warp_equals_libtorch_grid_sample() {
        let mut rng = Rng::new(3);
        for (h, w) in [(32, 32), (150, 150), (17, 23)] {
            let src = image(h, w, h as u64);
            for _ in 0..5 {
                let d = draw(&AugmentParams::default(), &mut rng);
                let mut out = vec![0.0; h * w * 3];
                apply(&src, h, w, &d, &mut out);
                let want = reference(&src, h, w, &d);
                let worst = out.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                // On the 0–255 scale: 1e-2 is 4e-5 of the range, float rounding of the grid coordinates.
                assert!(worst < 1e-2, "{h}x{w}: differs from libtorch by {worst}");
            }
        }
    }

    #[test]
    fn keeps_range_and_changes_pixels() {
        let src = image(32, 32, 1);
        let d = draw(&AugmentParams::default(), &mut Rng::new(1));
        let mut out = vec![0.0; src.len()];
        apply(&src, 32, 32, &d, &mut out);
        assert!(out.iter().all(|v| (0.0..=255.0).contains(v)));
        let moved = out.iter().zip(&src).map(|(a, b)| (a - *b as f32).abs() as f64).sum::<f64>() / out.len() as f64;
        assert!(moved > 1.0, "{moved}");
    }

    #[test]
    fn zero_strength_is_identity() {
        let src = image(16, 16, 2);
        let p = AugmentParams { flip_prob: 0.0, max_rotate_deg: 0.0, max_shift: 0.0, max_brightness: 0.0, max_contrast: 0.0 };
        let d = draw(&p, &mut Rng::new(1));
        let mut out = vec![0.0; src.len()];
        apply(&src, 16, 16, &d, &mut out);
        let worst = out.iter().zip(&src).map(|(a, b)| (a - *b as f32).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{worst}");
    }

    #[test]
    fn a_full_flip_mirrors_the_image() {
        let src = image(8, 8, 4);
        let p = AugmentParams { flip_prob: 1.0, max_rotate_deg: 0.0, max_shift: 0.0, max_brightness: 0.0, max_contrast: 0.0 };
        let d = draw(&p, &mut Rng::new(1));
        let mut out = vec![0.0; src.len()];
        apply(&src, 8, 8, &d, &mut out);
        for y in 0..8 {
            for x in 0..8 {
                for c in 0..3 {
                    assert!((out[(y * 8 + x) * 3 + c] - src[(y * 8 + 7 - x) * 3 + c] as f32).abs() < 1e-3);
                }
            }
        }
    }
}
