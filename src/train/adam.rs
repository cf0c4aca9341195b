//! Adam, as libtorch's C++ `torch::optim::Adam` computes it, with its state in the open: tch's
//! optimizer hides the moments and the step count, and an exact resume needs to save them.
//!
//! The trainable parameters live in one flat buffer (each variable becomes a view of its slice, with
//! its own strides, channels-last included), and so do the two moments: a step is a handful of
//! operations over the whole buffer instead of a dozen per variable, which on a GPU means a dozen kernel
//! launches per step instead of a dozen per weight tensor. Every element goes through the same
//! operations in the same order, so the result is the same as a step variable by variable.

use tch::nn::VarStore;
use tch::{Kind, TchError, Tensor};

pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Steps taken (for the bias corrections).
    pub step: i64,
    names: Vec<String>,
    /// The variables (views of `flat`), and where each one's slice starts.
    params: Vec<Tensor>,
    offsets: Vec<i64>,
    flat: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// A dense tensor's elements in memory order, as a 1-D view (no copy).
fn memory_order(t: &Tensor) -> Result<Tensor, TchError> {
    t.f_as_strided([t.numel() as i64], [1], t.storage_offset())
}

/// A copy of `src` laid out as `like` (dense, in `like`'s strides: contiguous or channels-last).
fn dense_like(like: &Tensor, src: &Tensor) -> Result<Tensor, TchError> {
    let mut d = like.f_empty_like()?;
    d.f_copy_(src)?;
    Ok(d)
}

impl Adam {
    /// Over every trainable variable of `vs`, in name order; moments start at zero. The variables are
    /// moved into one buffer: do not replace their data afterwards (`to_channels_last` comes first).
    pub fn new(vs: &VarStore, lr: f64, weight_decay: f64) -> Result<Adam, TchError> {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, mut params): (Vec<String>, Vec<Tensor>) = named.into_iter().unzip();
        let device = params.first().map_or(tch::Device::Cpu, |p| p.device());
        let (flat, offsets) = tch::no_grad(|| -> Result<(Tensor, Vec<i64>), TchError> {
            // Each variable dense in its own layout (contiguous or channels-last), then side by side.
            let mut parts = Vec::with_capacity(params.len());
            for p in &params {
                parts.push(memory_order(&dense_like(p, p)?)?);
            }
            let flat = if parts.is_empty() { Tensor::f_zeros([0], (Kind::Float, device))? } else { Tensor::f_cat(&parts, 0)? };
            let mut offsets = Vec::with_capacity(params.len());
            let mut at = 0i64;
            for p in &mut params {
                offsets.push(at);
                let view = flat.f_as_strided(p.size(), p.stride(), at)?;
                p.f_set_data(&view)?;
                at += p.numel() as i64;
            }
            Ok((flat, offsets))
        })?;
        let exp_avg = flat.f_zeros_like()?;
        let exp_avg_sq = flat.f_zeros_like()?;
        Ok(Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, names, params, offsets, flat, exp_avg, exp_avg_sq })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update from the gradients `backward` left on the parameters.
    pub fn step(&mut self) -> Result<(), TchError> {
        self.step_unscaled(1.0)
    }

    /// `t`'s slice for variable `i`, shaped and strided as the variable.
    fn view_of(&self, t: &Tensor, i: usize) -> Result<Tensor, TchError> {
        let p = &self.params[i];
        t.f_as_strided(p.size(), p.stride(), self.offsets[i])
    }

    /// Every gradient side by side in the buffer's layout (None if a variable has none yet).
    fn flat_grad(&self) -> Result<Option<Tensor>, TchError> {
        let mut parts = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let g = p.grad();
            if !g.defined() {
                return Ok(None);
            }
            // A gradient laid out as its variable (the usual case) is read in place.
            let g = if g.stride() == p.stride() { g } else { dense_like(p, &g)? };
            parts.push(memory_order(&g)?);
        }
        if parts.is_empty() {
            return Ok(None);
        }
        Tensor::f_cat(&parts, 0).map(Some)
    }

    /// The sum of every gradient, as a one-element f32 tensor on the parameters' device: it is finite
    /// exactly when no gradient holds an inf or NaN (or the sum itself overflowed, which a loss scale
    /// treats the same way). Computed without reading it back.
    pub fn grad_sum(&self) -> Result<Tensor, TchError> {
        tch::no_grad(|| match self.flat_grad()? {
            Some(g) => g.f_sum(Kind::Float),
            None => {
                let mut total = Tensor::f_zeros([], (Kind::Float, self.flat.device()))?;
                for p in &self.params {
                    let g = p.grad();
                    if g.defined() {
                        total = total.f_add(&g.f_sum(Kind::Float)?)?;
                    }
                }
                Ok(total)
            }
        })
    }

    /// One update from gradients that are `1 / inv_scale` times the true ones (a loss scale).
    pub fn step_unscaled(&mut self, inv_scale: f64) -> Result<(), TchError> {
        self.check_views()?;
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2 = 1.0 - self.beta2.powi(self.step as i32);
        let step_size = self.lr / bc1;
        tch::no_grad(|| {
            let update = |p: &mut Tensor, m: &mut Tensor, v: &mut Tensor, g: Tensor| -> Result<(), TchError> {
                let g = if inv_scale != 1.0 { g.f_mul_scalar(inv_scale)? } else { g };
                let g = if self.weight_decay != 0.0 { g.f_add(&p.f_mul_scalar(self.weight_decay)?)? } else { g };
                let _ = m.f_mul_scalar_(self.beta1)?;
                let _ = m.f_add_(&g.f_mul_scalar(1.0 - self.beta1)?)?;
                let _ = v.f_mul_scalar_(self.beta2)?;
                let _ = v.f_addcmul_(&g.f_mul_scalar(1.0 - self.beta2)?, &g)?;
                let denom = v.f_sqrt()?.f_div_scalar(bc2.sqrt())?.f_add_scalar(self.eps)?;
                let _ = p.f_addcdiv_(&m.f_mul_scalar(-step_size)?, &denom)?;
                Ok(())
            };
            match self.flat_grad()? {
                Some(g) => {
                    update(&mut self.flat.shallow_clone(), &mut self.exp_avg.shallow_clone(), &mut self.exp_avg_sq.shallow_clone(), g)
                }
                // A variable without a gradient (not used this step) is left alone, moments included,
                // as libtorch's Adam does: the others are updated one by one.
                None => {
                    for i in 0..self.params.len() {
                        let g = self.params[i].grad();
                        if g.defined() {
                            let (mut m, mut v) = (self.view_of(&self.exp_avg, i)?, self.view_of(&self.exp_avg_sq, i)?);
                            update(&mut self.params[i].shallow_clone(), &mut m, &mut v, g)?;
                        }
                    }
                    Ok(())
                }
            }
        })
    }

    /// The variables must still be views of the buffer: replacing one's data (`set_data`) after
    /// the optimiser was built would leave it out of every update.
    fn check_views(&self) -> Result<(), TchError> {
        let base = self.flat.data_ptr() as usize;
        for (i, p) in self.params.iter().enumerate() {
            if p.data_ptr() as usize != base + self.offsets[i] as usize * self.flat.kind().elt_size_in_bytes() {
                return Err(TchError::Kind(format!("Adam: the data of {} was replaced after the optimiser was built", self.names[i])));
            }
        }
        Ok(())
    }

    /// The moments, named `adam.m.<var>` and `adam.v.<var>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.names.len());
        for (i, n) in self.names.iter().enumerate() {
            if let (Ok(m), Ok(v)) = (self.view_of(&self.exp_avg, i), self.view_of(&self.exp_avg_sq, i)) {
                out.push((format!("adam.m.{n}"), m));
                out.push((format!("adam.v.{n}"), v));
            }
        }
        out
    }

    /// Restore moments saved by `state` (every one must be there).
    pub fn load_state(&mut self, tensors: &std::collections::HashMap<String, Tensor>, step: i64) -> Result<(), super::StateError> {
        tch::no_grad(|| {
            for (i, n) in self.names.iter().enumerate() {
                for (key, flat) in [(format!("adam.m.{n}"), &self.exp_avg), (format!("adam.v.{n}"), &self.exp_avg_sq)] {
                    let src = tensors.get(&key).ok_or_else(|| super::StateError::Missing(key.clone()))?;
                    let torch = |source| super::StateError::Torch { key: key.clone(), source };
                    let mut dst = self.view_of(flat, i).map_err(torch)?;
                    dst.f_copy_(&src.to_device(dst.device())).map_err(torch)?;
                }
            }
            Ok::<(), super::StateError>(())
        })?;
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::{Device, Kind};

    fn model(vs: &VarStore) -> nn::Sequential {
        nn::seq().add(nn::linear(vs.root() / "a", 6, 8, Default::default())).add_fn(|x| x.relu()).add(nn::linear(
            vs.root() / "b",
            8,
            3,
            Default::default(),
        ))
    }

    /// Two copies of the same small network, and a batch for it.
    fn twins(seed: i64) -> (VarStore, VarStore, nn::Sequential, nn::Sequential, Tensor, Tensor) {
        tch::manual_seed(seed);
        let (vs1, mut vs2) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        let (m1, m2) = (model(&vs1), model(&vs2));
        vs2.copy(&vs1).unwrap();
        let x = Tensor::randn([16, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [16], (Kind::Int64, Device::Cpu));
        (vs1, vs2, m1, m2, x, y)
    }

    #[test]
    fn matches_libtorch_adam_step_for_step() {
        let (vs1, vs2, m1, m2, x, y) = twins(3);
        let mut theirs = nn::Adam { wd: 1e-2, ..Default::default() }.build(&vs1, 1e-2).unwrap();
        let mut ours = Adam::new(&vs2, 1e-2, 1e-2).unwrap();
        for _ in 0..25 {
            theirs.backward_step(&m1.forward(&x).cross_entropy_for_logits(&y));
            ours.zero_grad();
            m2.forward(&x).cross_entropy_for_logits(&y).backward();
            ours.step().unwrap();
        }
        for (n, t) in vs1.variables() {
            let d = (&t - &vs2.variables()[&n]).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{n}: max |Δ| {d}");
        }
    }

    /// A loss scaled by 1024 and a step that divides the gradients back gives the unscaled step; the
    /// gradient sum turns non-finite when one gradient does.
    #[test]
    fn a_scaled_loss_and_an_unscaling_step_match_the_plain_step() {
        let (vs1, vs2, m1, m2, x, y) = twins(4);
        let (mut a, mut b) = (Adam::new(&vs1, 1e-2, 0.0).unwrap(), Adam::new(&vs2, 1e-2, 0.0).unwrap());
        for _ in 0..10 {
            a.zero_grad();
            m1.forward(&x).cross_entropy_for_logits(&y).backward();
            a.step().unwrap();
            b.zero_grad();
            (m2.forward(&x).cross_entropy_for_logits(&y) * 1024.0).backward();
            assert!(b.grad_sum().unwrap().double_value(&[]).is_finite());
            b.step_unscaled(1.0 / 1024.0).unwrap();
        }
        for (n, t) in vs1.variables() {
            let d = (&t - &vs2.variables()[&n]).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{n}: max |Δ| {d}");
        }
        b.zero_grad();
        (m2.forward(&x).cross_entropy_for_logits(&y) * f64::INFINITY).backward();
        assert!(!b.grad_sum().unwrap().double_value(&[]).is_finite());
    }

    /// Adam over the flat buffer gives bit for bit what the same operations give variable by variable,
    /// channels-last convolution weights and weight decay included; the variables stay views of the
    /// buffer, so the network sees each update.
    #[test]
    fn the_flat_step_equals_a_step_variable_by_variable() {
        tch::manual_seed(5);
        let conv = |vs: &VarStore| {
            let c1 = nn::conv2d(vs.root() / "c1", 3, 8, 3, Default::default());
            let c2 = nn::conv2d(vs.root() / "c2", 8, 8, 3, nn::ConvConfig { groups: 8, ..Default::default() });
            let fc = nn::linear(vs.root() / "fc", 8, 3, Default::default());
            nn::seq().add(c1).add_fn(|x| x.relu()).add(c2).add_fn(|x| x.mean_dim(&[2i64, 3][..], false, Kind::Float)).add(fc)
        };
        let (vs1, mut vs2) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        let (m1, m2) = (conv(&vs1), conv(&vs2));
        vs2.copy(&vs1).unwrap();
        crate::model::weights::to_channels_last(&vs1).unwrap();
        crate::model::weights::to_channels_last(&vs2).unwrap();
        let mut flat = Adam::new(&vs1, 1e-2, 1e-3).unwrap();
        // The reference: the same update, one variable at a time.
        let mut named: Vec<(String, Tensor)> = vs2.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut moments: Vec<(Tensor, Tensor)> = named.iter().map(|(_, p)| (p.zeros_like(), p.zeros_like())).collect();
        let x = crate::data::batch::channels_last(&Tensor::randn([4, 3, 12, 12], (Kind::Float, Device::Cpu))).unwrap();
        let y = Tensor::randint(3, [4], (Kind::Int64, Device::Cpu));
        for step in 1..=6 {
            flat.zero_grad();
            m1.forward(&x).cross_entropy_for_logits(&y).backward();
            flat.step().unwrap();
            for (_, p) in &mut named {
                p.zero_grad();
            }
            m2.forward(&x).cross_entropy_for_logits(&y).backward();
            let (bc1, bc2) = (1.0 - 0.9f64.powi(step), 1.0 - 0.999f64.powi(step));
            tch::no_grad(|| {
                for ((_, p), (m, v)) in named.iter_mut().zip(&mut moments) {
                    let g = p.grad().f_add(&p.f_mul_scalar(1e-3).unwrap()).unwrap();
                    let _ = m.f_mul_scalar_(0.9).unwrap();
                    let _ = m.f_add_(&g.f_mul_scalar(1.0 - 0.9).unwrap()).unwrap();
                    let _ = v.f_mul_scalar_(0.999).unwrap();
                    let _ = v.f_addcmul_(&g.f_mul_scalar(1.0 - 0.999).unwrap(), &g).unwrap();
                    let denom = v.f_sqrt().unwrap().f_div_scalar(bc2.sqrt()).unwrap().f_add_scalar(1e-8).unwrap();
                    let _ = p.f_addcdiv_(&m.f_mul_scalar(-1e-2 / bc1).unwrap(), &denom).unwrap();
                }
            });
        }
        for (n, p) in &named {
            let d = (p - &vs1.variables()[n]).abs().max().double_value(&[]);
            assert_eq!(d, 0.0, "{n}");
            assert_eq!(vs1.variables()[n].stride(), p.stride(), "{n} keeps its layout");
        }
        let moved = vs1.variables()["fc.bias"].copy();
        flat.zero_grad();
        m1.forward(&x).cross_entropy_for_logits(&y).backward();
        flat.step().unwrap();
        assert!((moved - &vs1.variables()["fc.bias"]).abs().max().double_value(&[]) > 0.0, "the network sees the update");
        let mut replaced = vs1.variables()["fc.bias"].shallow_clone();
        replaced.set_data(&replaced.copy());
        assert!(flat.step().unwrap_err().to_string().contains("fc.bias was replaced"));
    }
}
