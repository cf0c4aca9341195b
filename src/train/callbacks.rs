//! The article's callbacks, with Keras semantics: ReduceLROnPlateau and early stopping on validation
//! accuracy, and "keep the best checkpoint".

/// Keras `ReduceLROnPlateau(monitor="val_accuracy", mode="max")`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReduceLrOnPlateau {
    pub factor: f64,
    pub patience: usize,
    pub min_delta: f64,
    pub min_lr: f64,
    best: Option<f64>,
    wait: usize,
}

impl ReduceLrOnPlateau {
    pub fn new(factor: f64, patience: usize, min_delta: f64, min_lr: f64) -> Self {
        ReduceLrOnPlateau { factor, patience, min_delta, min_lr, best: None, wait: 0 }
    }

    /// Feed an epoch's metric; returns the new LR when it should drop.
    pub fn step(&mut self, metric: f64, lr: f64) -> Option<f64> {
        match self.best {
            Some(b) if metric <= b + self.min_delta => self.wait += 1,
            _ => {
                self.best = Some(metric);
                self.wait = 0;
                return None;
            }
        }
        if self.wait >= self.patience && lr > self.min_lr {
            self.wait = 0;
            return Some((lr * self.factor).max(self.min_lr));
        }
        None
    }
}

/// Stop when the metric has not improved by `min_delta` for `patience` epochs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EarlyStopping {
    pub enabled: bool,
    pub patience: usize,
    pub min_delta: f64,
    best: Option<f64>,
    wait: usize,
}

impl EarlyStopping {
    pub fn new(enabled: bool, patience: usize, min_delta: f64) -> Self {
        EarlyStopping { enabled, patience, min_delta, best: None, wait: 0 }
    }

    /// True when training should stop now. As Keras: an improving epoch never stops, so patience 0
    /// stops at the first epoch that does not improve.
    pub fn step(&mut self, metric: f64) -> bool {
        match self.best {
            Some(b) if metric <= b + self.min_delta => self.wait += 1,
            _ => {
                self.best = Some(metric);
                self.wait = 0;
                return false;
            }
        }
        self.enabled && self.wait >= self.patience
    }

    pub fn wait(&self) -> usize {
        self.wait
    }
}

/// Keras `ModelCheckpoint(save_best_only=True, mode="max")`: strictly better than any before.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BestTracker {
    pub best: Option<(f64, usize)>,
}

impl BestTracker {
    pub fn improved(&mut self, metric: f64, epoch: usize) -> bool {
        if self.best.is_none_or(|(b, _)| metric > b) {
            self.best = Some((metric, epoch));
            true
        } else {
            false
        }
    }
}

/// Warm-up then cosine decay, batch by batch: the rate of batch `step` (0-based over the whole run of
/// `total` batches) rises linearly to `peak` over `warmup` batches (at most half the run), then falls
/// along a half cosine to `floor` at the last batch.
pub fn cosine_lr(peak: f64, floor: f64, step: usize, warmup: usize, total: usize) -> f64 {
    let total = total.max(1);
    let warmup = warmup.min(total / 2);
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = (total - warmup).saturating_sub(1).max(1) as f64;
    let t = ((step - warmup) as f64 / span).min(1.0);
    floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_peaks_and_ends_at_the_floor() {
        let lr: Vec<f64> = (0..100).map(|s| cosine_lr(1e-3, 1e-6, s, 10, 100)).collect();
        assert!((lr[0] - 1e-4).abs() < 1e-12, "{}", lr[0]);
        assert!((lr[9] - 1e-3).abs() < 1e-12 && (lr[10] - 1e-3).abs() < 1e-12);
        assert!(lr[10..].windows(2).all(|w| w[1] <= w[0]), "decays monotonically");
        assert!((lr[99] - 1e-6).abs() < 1e-12, "{}", lr[99]);
        assert!((lr[10 + 89 / 2] - 5.005e-4).abs() < 2e-5, "halfway is half");
        // A warm-up longer than half the run is cut to half; one batch in all is the peak.
        assert!((cosine_lr(1e-3, 0.0, 4, 1000, 10) - 1e-3).abs() < 1e-12);
        assert_eq!(cosine_lr(1e-3, 0.0, 0, 0, 1), 1e-3);
    }

    #[test]
    fn plateau_waits_patience_epochs_then_multiplies_by_factor() {
        let mut p = ReduceLrOnPlateau::new(0.3, 2, 0.001, 1e-6);
        let mut lr = 1e-3;
        let mut changes = vec![];
        // improves, improves, flat (+0.0005 < min_delta), flat -> reduce at epoch 4; flat, flat -> reduce at 6.
        for (e, acc) in [0.80, 0.90, 0.9005, 0.899, 0.90, 0.9009].iter().enumerate() {
            if let Some(n) = p.step(*acc, lr) {
                changes.push((e + 1, n));
                lr = n;
            }
        }
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].0, 4);
        assert!((changes[0].1 - 3e-4).abs() < 1e-12);
        assert_eq!(changes[1].0, 6);
        assert!((changes[1].1 - 9e-5).abs() < 1e-12);
    }

    #[test]
    fn plateau_respects_min_lr_and_resets_on_improvement() {
        let mut p = ReduceLrOnPlateau::new(0.1, 1, 0.0, 1e-4);
        assert_eq!(p.step(0.5, 1e-4), None);
        assert_eq!(p.step(0.5, 1e-4), None, "already at min_lr");
        let mut p = ReduceLrOnPlateau::new(0.5, 2, 0.0, 0.0);
        p.step(0.5, 1.0);
        p.step(0.4, 1.0);
        p.step(0.6, 1.0);
        assert_eq!(p.step(0.6, 1.0), None, "wait was reset by the improvement");
        assert_eq!(p.step(0.6, 1.0), Some(0.5));
    }

    #[test]
    fn early_stopping_counts_and_can_be_disabled() {
        let mut s = EarlyStopping::new(true, 2, 0.0);
        assert!(!s.step(0.5));
        assert!(!s.step(0.5));
        assert!(s.step(0.4));
        let mut off = EarlyStopping::new(false, 1, 0.0);
        off.step(0.5);
        assert!(!off.step(0.4));
        off.enabled = true;
        assert!(off.step(0.4));
    }

    #[test]
    fn patience_zero_stops_at_the_first_epoch_without_improvement() {
        let mut e = EarlyStopping::new(true, 0, 0.001);
        assert!(!e.step(0.80), "the first epoch always improves");
        assert!(!e.step(0.85));
        assert!(e.step(0.85), "no improvement, patience 0: stop");
    }

    #[test]
    fn best_is_strictly_better() {
        let mut b = BestTracker::default();
        assert!(b.improved(0.5, 1));
        assert!(!b.improved(0.5, 2));
        assert!(b.improved(0.6, 3));
        assert_eq!(b.best, Some((0.6, 3)));
    }
}
