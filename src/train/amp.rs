//! Automatic mixed precision on CUDA (`--amp`): the forward pass and the loss run under libtorch's
//! autocast, which casts convolutions and matrix products to bf16 or fp16 and keeps reductions and the
//! loss in f32; the weights, their gradients and Adam stay f32. fp16's narrow range needs a dynamic
//! loss scale (PyTorch's GradScaler rules); bf16 has f32's range and needs none.

use crate::config::Amp;
use tch::Device;

/// Run `f` (the forward pass and loss) under autocast at `amp`'s precision on `device`; as it is for
/// `off` and on a CPU.
pub fn autocast<T>(amp: Amp, device: Device, f: impl FnOnce() -> T) -> Result<T, String> {
    match (amp.kind(), device) {
        (Some(kind), Device::Cuda(_)) => crate::cuda_runtime::with_cuda_autocast(kind, f),
        _ => Ok(f()),
    }
}

/// Whether `amp` changes anything on `device`.
pub fn active(amp: Amp, device: Device) -> bool {
    amp != Amp::Off && device.is_cuda()
}

/// A dynamic loss scale: the loss is multiplied by `scale` before backward so small fp16 gradients do
/// not flush to zero; a step whose gradients overflowed is skipped and the scale halved, and after
/// `GROWTH_INTERVAL` clean steps in a row it doubles.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossScale {
    pub scale: f64,
    pub clean_steps: u32,
    /// Steps skipped so far because the scaled gradients overflowed.
    pub skipped: u64,
}

impl LossScale {
    pub const INITIAL: f64 = 65536.0;
    pub const GROWTH_INTERVAL: u32 = 2000;
    /// Below this the scale stops shrinking: gradients that overflow at 1 are a diverged run, which the
    /// loss check reports.
    pub const MIN: f64 = 1.0;

    pub fn new() -> LossScale {
        LossScale { scale: Self::INITIAL, clean_steps: 0, skipped: 0 }
    }

    /// After a step: `overflowed` says whether the scaled gradients held an inf or NaN (the step was
    /// then skipped).
    pub fn update(&mut self, overflowed: bool) {
        if overflowed {
            self.scale = (self.scale * 0.5).max(Self::MIN);
            self.clean_steps = 0;
            self.skipped += 1;
        } else {
            self.clean_steps += 1;
            if self.clean_steps >= Self::GROWTH_INTERVAL {
                self.scale = (self.scale * 2.0).min(f32::MAX as f64 / 2.0);
                self.clean_steps = 0;
            }
        }
    }
}

impl Default for LossScale {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_scale_halves_on_overflow_and_doubles_after_a_clean_stretch() {
        let mut s = LossScale::new();
        s.update(true);
        assert_eq!((s.scale, s.clean_steps, s.skipped), (32768.0, 0, 1));
        for _ in 0..LossScale::GROWTH_INTERVAL - 1 {
            s.update(false);
        }
        assert_eq!(s.scale, 32768.0);
        s.update(false);
        assert_eq!((s.scale, s.clean_steps), (65536.0, 0));
        for _ in 0..40 {
            s.update(true);
        }
        assert_eq!(s.scale, LossScale::MIN);
    }

    #[test]
    fn autocast_is_a_no_op_on_the_cpu() {
        let x = tch::Tensor::ones([2, 2], (tch::Kind::Float, Device::Cpu));
        let y = autocast(Amp::Bf16, Device::Cpu, || x.matmul(&x)).unwrap();
        assert_eq!(y.kind(), tch::Kind::Float);
        assert!(!active(Amp::Fp16, Device::Cpu));
        assert!(active(Amp::Bf16, Device::Cuda(0)));
    }
}
