//! An exponential moving average of the weights (`ema_decay` > 0). The average, not the raw weights, is
//! what validation scores and what checkpoints hold: at the end of a fine-tuning run the raw weights
//! still jitter from batch to batch, and their average generalises more evenly. BatchNorm running
//! statistics are averaged the same way. Training itself is unchanged.

use std::collections::HashMap;
use tch::nn::VarStore;
use tch::{TchError, Tensor};

pub struct Ema {
    /// The averaged copy, a VarStore of the same network (so it can be evaluated and saved as is).
    pub store: VarStore,
    decay: f64,
    /// (name, averaged, live), in name order.
    pairs: Vec<(String, Tensor, Tensor)>,
}

impl Ema {
    /// Start the average at the live weights of `live`; `store` holds a second network of the same shape.
    pub fn new(live: &VarStore, store: VarStore, decay: f64) -> Result<Ema, TchError> {
        let mut live_vars = live.variables();
        let mut pairs = Vec::new();
        for (name, mut avg) in store.variables() {
            let src = live_vars.remove(&name).ok_or_else(|| TchError::Kind(format!("ema: the live network lacks {name}")))?;
            tch::no_grad(|| avg.f_copy_(&src))?;
            pairs.push((name, avg, src));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Ema { store, decay, pairs })
    }

    /// The decay after optimiser step `step` (1-based): `decay`, but shorter early on, so the average
    /// does not drag the starting weights along: min(decay, (1 + step) / (10 + step)).
    pub fn decay_at(&self, step: i64) -> f64 {
        self.decay.min((1.0 + step as f64) / (10.0 + step as f64))
    }

    /// After optimiser step `step`: average ← d·average + (1 − d)·live.
    pub fn update(&mut self, step: i64) -> Result<(), TchError> {
        let d = self.decay_at(step);
        tch::no_grad(|| {
            for (_, avg, live) in &mut self.pairs {
                if avg.is_floating_point() {
                    let _ = avg.f_lerp_(live, 1.0 - d)?;
                } else {
                    avg.f_copy_(live)?;
                }
            }
            Ok(())
        })
    }

    /// The average, named `ema.<var>`, for the resume state.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.pairs.iter().map(|(n, a, _)| (format!("ema.{n}"), a.shallow_clone())).collect()
    }

    /// Restore an average saved by `state` (every variable must be there).
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), super::StateError> {
        tch::no_grad(|| {
            for (n, avg, _) in &mut self.pairs {
                let key = format!("ema.{n}");
                let src = tensors.get(&key).ok_or_else(|| super::StateError::Missing(key.clone()))?;
                avg.f_copy_(&src.to_device(avg.device())).map_err(|source| super::StateError::Torch { key: key.clone(), source })?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;
    use tch::nn;

    #[test]
    fn the_average_follows_the_live_weights_at_the_decay() {
        let live = VarStore::new(Device::Cpu);
        let _l = nn::linear(live.root() / "a", 3, 2, Default::default());
        let store = VarStore::new(Device::Cpu);
        let _s = nn::linear(store.root() / "a", 3, 2, Default::default());
        let mut ema = Ema::new(&live, store, 0.9).unwrap();
        let w = |vs: &VarStore| vs.variables()["a.weight"].copy();
        assert_eq!((w(&ema.store) - w(&live)).abs().max().double_value(&[]), 0.0, "starts at the live weights");
        assert!((ema.decay_at(1) - 2.0 / 11.0).abs() < 1e-12 && ema.decay_at(10_000) == 0.9);
        let before = w(&ema.store);
        tch::no_grad(|| {
            let _ = live.variables()["a.weight"].shallow_clone().f_add_scalar_(1.0).unwrap();
        });
        ema.update(10_000).unwrap();
        let want = &before * 0.9 + (&before + 1.0) * 0.1;
        assert!((w(&ema.store) - want).abs().max().double_value(&[]) < 1e-6);
        // Saved and restored through the resume state's names.
        let saved: HashMap<String, Tensor> = ema.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
        assert!(saved.contains_key("ema.a.weight") && saved.contains_key("ema.a.bias"));
        ema.update(10_000).unwrap();
        ema.load_state(&saved).unwrap();
        assert_eq!((w(&ema.store) - &saved["ema.a.weight"]).abs().max().double_value(&[]), 0.0);
        assert!(ema.load_state(&HashMap::new()).unwrap_err().to_string().contains("lacks ema.a."));
    }
}
