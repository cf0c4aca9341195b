//! Adam, as libtorch's C++ `torch::optim::Adam` computes it, with its state in the open: tch's
//! optimizer hides the moments and the step count, and an exact resume needs to save them.

use tch::nn::VarStore;
use tch::{TchError, Tensor};

pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Steps taken (for the bias corrections).
    pub step: i64,
    names: Vec<String>,
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
}

impl Adam {
    /// Over every trainable variable of `vs`, in name order; moments start at zero.
    pub fn new(vs: &VarStore, lr: f64, weight_decay: f64) -> Result<Adam, TchError> {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut exp_avg = Vec::with_capacity(named.len());
        let mut exp_avg_sq = Vec::with_capacity(named.len());
        for (_, p) in &named {
            // zeros_like keeps the parameter's strides (channels-last stays channels-last).
            exp_avg.push(p.f_zeros_like()?.f_detach()?);
            exp_avg_sq.push(p.f_zeros_like()?.f_detach()?);
        }
        let (names, params) = named.into_iter().unzip();
        Ok(Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, names, params, exp_avg, exp_avg_sq })
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
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2 = 1.0 - self.beta2.powi(self.step as i32);
        let step_size = self.lr / bc1;
        tch::no_grad(|| {
            for ((p, m), v) in self.params.iter_mut().zip(&mut self.exp_avg).zip(&mut self.exp_avg_sq) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = if self.weight_decay != 0.0 { g.f_add(&p.f_mul_scalar(self.weight_decay)?)? } else { g };
                let _ = m.f_mul_scalar_(self.beta1)?;
                let _ = m.f_add_(&g.f_mul_scalar(1.0 - self.beta1)?)?;
                let _ = v.f_mul_scalar_(self.beta2)?;
                let _ = v.f_addcmul_(&g.f_mul_scalar(1.0 - self.beta2)?, &g)?;
                let denom = v.f_sqrt()?.f_div_scalar(bc2.sqrt())?.f_add_scalar(self.eps)?;
                let _ = p.f_addcdiv_(&m.f_mul_scalar(-step_size)?, &denom)?;
            }
            Ok(())
        })
    }

    /// The moments, named `adam.m.<var>` and `adam.v.<var>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.names.len());
        for (n, (m, v)) in self.names.iter().zip(self.exp_avg.iter().zip(&self.exp_avg_sq)) {
            out.push((format!("adam.m.{n}"), m.shallow_clone()));
            out.push((format!("adam.v.{n}"), v.shallow_clone()));
        }
        out
    }

    /// Restore moments saved by `state` (every one must be there).
    pub fn load_state(&mut self, tensors: &std::collections::HashMap<String, Tensor>, step: i64) -> Result<(), String> {
        tch::no_grad(|| {
            for (n, (m, v)) in self.names.iter().zip(self.exp_avg.iter_mut().zip(self.exp_avg_sq.iter_mut())) {
                for (key, dst) in [(format!("adam.m.{n}"), m), (format!("adam.v.{n}"), v)] {
                    let src = tensors.get(&key).ok_or_else(|| format!("the resume state lacks {key}"))?;
                    dst.f_copy_(&src.to_device(dst.device())).map_err(|e| format!("{key}: {e}"))?;
                }
            }
            Ok::<(), String>(())
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

    #[test]
    fn matches_libtorch_adam_step_for_step() {
        tch::manual_seed(3);
        let (vs1, mut vs2) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        let (m1, m2) = (model(&vs1), model(&vs2));
        vs2.copy(&vs1).unwrap();
        let mut theirs = nn::Adam { wd: 1e-2, ..Default::default() }.build(&vs1, 1e-2).unwrap();
        let mut ours = Adam::new(&vs2, 1e-2, 1e-2).unwrap();
        let x = Tensor::randn([16, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [16], (Kind::Int64, Device::Cpu));
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
}
