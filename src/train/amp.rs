//! Automatic mixed precision on CUDA (`--amp`): the forward pass and the loss run under libtorch's
//! autocast, which casts convolutions and matrix products to bf16 or fp16 and keeps reductions and the
//! loss in f32; the weights, their gradients and Adam stay f32. fp16's narrow range needs a dynamic
//! loss scale (PyTorch's GradScaler rules); bf16 has f32's range and needs none.

use super::adam::Adam;
use crate::config::Amp;
use tch::{Device, Kind, TchError, Tensor};

/// The kind autocast casts to (None: off).
pub fn kind(amp: Amp) -> Option<Kind> {
    match amp {
        Amp::Off => None,
        Amp::Bf16 => Some(Kind::BFloat16),
        Amp::Fp16 => Some(Kind::Half),
    }
}

/// Run `f` (the forward pass and loss) under autocast at `amp`'s precision on `device`; as it is for
/// `off` and on a CPU.
pub fn autocast<T>(amp: Amp, device: Device, f: impl FnOnce() -> T) -> Result<T, crate::cuda_runtime::CudaRuntimeError> {
    match (kind(amp), device) {
        (Some(kind), Device::Cuda(_)) => crate::cuda_runtime::with_cuda_autocast(kind, f),
        _ => Ok(f()),
    }
}

/// Whether `amp` changes anything on `device`.
pub fn active(amp: Amp, device: Device) -> bool {
    amp != Amp::Off && device.is_cuda()
}

/// Backward of `loss`, multiplied by the loss scale when there is one.
pub fn backward(loss: &Tensor, scale: Option<&LossScale>) -> Result<(), TchError> {
    match scale {
        Some(s) => loss.f_mul_scalar(s.scale)?.f_backward(),
        None => loss.f_backward(),
    }
}

/// The step's one read-back, after backward is queued: the scalar tensors `values` (as f64, in order)
/// and, with a loss scale, whether the scaled gradients overflowed.
pub fn read_back(values: &[Tensor], opt: &Adam, scale: Option<&LossScale>) -> Result<(Vec<f64>, bool), TchError> {
    let mut parts: Vec<Tensor> = values.iter().map(|t| t.f_detach()?.f_to_kind(Kind::Float)).collect::<Result<_, _>>()?;
    if scale.is_some() {
        parts.push(opt.grad_sum()?);
    }
    let mut read = Vec::<f64>::try_from(Tensor::f_stack(&parts, 0)?.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?)?;
    let overflowed = scale.is_some() && read.pop().is_some_and(|sum| !sum.is_finite());
    Ok((read, overflowed))
}

/// The optimiser step, unless the scaled gradients overflowed (then it is skipped); the loss scale
/// follows either way. True when the weights moved.
pub fn step(opt: &mut Adam, scale: Option<&mut LossScale>, overflowed: bool) -> Result<bool, TchError> {
    if !overflowed {
        opt.step_unscaled(scale.as_ref().map_or(1.0, |s| 1.0 / s.scale))?;
    }
    if let Some(s) = scale {
        s.update(overflowed);
    }
    Ok(!overflowed)
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

    /// The fp16 step's logic, run on the CPU: a loss scaled by 2^16 and unscaled gradients give the
    /// plain step bit for bit (powers of two are exact); gradients that overflow skip the step, leave
    /// the weights alone and halve the scale.
    #[test]
    fn a_loss_scaled_step_equals_the_plain_one_and_an_overflow_skips_it() {
        use tch::nn::{self, Module, VarStore};
        tch::manual_seed(6);
        let net = |vs: &VarStore| {
            nn::seq().add(nn::linear(vs.root() / "a", 5, 7, Default::default())).add_fn(|x| x.relu()).add(nn::linear(
                vs.root() / "b",
                7,
                3,
                Default::default(),
            ))
        };
        let (vs1, mut vs2) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        let (m1, m2) = (net(&vs1), net(&vs2));
        vs2.copy(&vs1).unwrap();
        let (mut plain, mut scaled) = (Adam::new(&vs1, 1e-2, 0.0).unwrap(), Adam::new(&vs2, 1e-2, 0.0).unwrap());
        let mut scale = Some(LossScale::new());
        let x = Tensor::randn([8, 5], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [8], (Kind::Int64, Device::Cpu));
        for _ in 0..5 {
            plain.zero_grad();
            let loss = m1.forward(&x).cross_entropy_for_logits(&y);
            backward(&loss, None).unwrap();
            let (read, overflowed) = read_back(&[loss], &plain, None).unwrap();
            assert!(read[0].is_finite() && !overflowed);
            assert!(step(&mut plain, None, overflowed).unwrap());
            scaled.zero_grad();
            let loss = m2.forward(&x).cross_entropy_for_logits(&y);
            backward(&loss, scale.as_ref()).unwrap();
            let (read2, overflowed) = read_back(&[loss], &scaled, scale.as_ref()).unwrap();
            assert_eq!(read2, read, "the read-back is the unscaled loss");
            assert!(step(&mut scaled, scale.as_mut(), overflowed).unwrap());
        }
        let same = |a: &VarStore, b: &VarStore| a.variables().iter().all(|(n, t)| t.equal(&b.variables()[n]));
        assert!(same(&vs1, &vs2));
        assert_eq!(scale.as_ref().unwrap().clean_steps, 5);
        scaled.zero_grad();
        let loss = m2.forward(&x).cross_entropy_for_logits(&y) * f64::INFINITY;
        backward(&loss, scale.as_ref()).unwrap();
        let (_, overflowed) = read_back(&[loss], &scaled, scale.as_ref()).unwrap();
        assert!(overflowed);
        assert!(!step(&mut scaled, scale.as_mut(), overflowed).unwrap());
        assert!(same(&vs1, &vs2), "a skipped step leaves the weights alone");
        assert_eq!((scale.as_ref().unwrap().scale, scale.as_ref().unwrap().skipped), (LossScale::INITIAL / 2.0, 1));
    }
}
