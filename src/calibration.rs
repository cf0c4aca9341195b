//! How far to trust a predicted probability: expected calibration error (ECE), the Brier score, the
//! reliability diagram's bins, and temperature scaling (one scalar `T` that divides the logits, fitted
//! on the validation split by minimising its negative log-likelihood). `T` never changes which class
//! wins, only how sure the model says it is. Works on probabilities, so it needs no network:
//! `log p` are the logits up to a constant, which softmax ignores.

use serde::{Deserialize, Serialize};

/// Bins of the expected calibration error and the reliability diagram (the usual 15).
pub const ECE_BINS: usize = 15;

/// One bin of the reliability diagram: predictions whose confidence is in `[lo, hi)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    /// Share of those predictions that were right.
    pub accuracy: f64,
    /// Their mean confidence (the top probability).
    pub confidence: f64,
}

fn top(p: &[f32]) -> (usize, f64) {
    p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, v)| (k, *v as f64)).unwrap_or((0, 0.0))
}

/// The reliability diagram: `bins` equal-width confidence bins over [0, 1].
pub fn reliability(probs: &[Vec<f32>], truth: &[usize], bins: usize) -> Vec<Bin> {
    let bins = bins.max(1);
    let mut out: Vec<Bin> = (0..bins)
        .map(|b| Bin { lo: b as f64 / bins as f64, hi: (b + 1) as f64 / bins as f64, count: 0, accuracy: 0.0, confidence: 0.0 })
        .collect();
    for (p, &t) in probs.iter().zip(truth) {
        let (pred, conf) = top(p);
        let b = ((conf * bins as f64) as usize).min(bins - 1);
        out[b].count += 1;
        out[b].accuracy += (pred == t) as u8 as f64;
        out[b].confidence += conf;
    }
    for b in &mut out {
        if b.count > 0 {
            b.accuracy /= b.count as f64;
            b.confidence /= b.count as f64;
        }
    }
    out
}

/// Expected calibration error: the count-weighted mean gap between accuracy and confidence per bin.
pub fn ece(probs: &[Vec<f32>], truth: &[usize], bins: usize) -> f64 {
    let n = probs.len().min(truth.len());
    if n == 0 {
        return 0.0;
    }
    reliability(probs, truth, bins).iter().map(|b| b.count as f64 * (b.accuracy - b.confidence).abs()).sum::<f64>() / n as f64
}

/// Multi-class Brier score: mean over images of Σₖ (pₖ − [k = truth])².
pub fn brier(probs: &[Vec<f32>], truth: &[usize]) -> f64 {
    let n = probs.len().min(truth.len());
    if n == 0 {
        return 0.0;
    }
    probs
        .iter()
        .zip(truth)
        .map(|(p, &t)| p.iter().enumerate().map(|(k, &v)| (v as f64 - (k == t) as u8 as f64).powi(2)).sum::<f64>())
        .sum::<f64>()
        / n as f64
}

/// Probabilities with temperature `t`: softmax(log p / t).
pub fn with_temperature(p: &[f32], t: f64) -> Vec<f32> {
    if !(t.is_finite() && t > 0.0) || (t - 1.0).abs() < 1e-12 {
        return p.to_vec();
    }
    let z: Vec<f64> = p.iter().map(|&v| (v as f64).max(1e-12).ln() / t).collect();
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| (v / s) as f32).collect()
}

/// Mean negative log-likelihood at temperature `t`.
pub fn nll(probs: &[Vec<f32>], truth: &[usize], t: f64) -> f64 {
    let n = probs.len().min(truth.len()).max(1);
    probs.iter().zip(truth).map(|(p, &k)| -(with_temperature(p, t)[k] as f64).max(1e-12).ln()).sum::<f64>() / n as f64
}

/// Temperatures searched: 0.05 to 20 (log-spaced golden-section search; the NLL is unimodal in log T).
const T_MIN: f64 = 0.05;
const T_MAX: f64 = 20.0;

/// The temperature that minimises the NLL of `probs` (1.0 when there is nothing to fit).
pub fn fit_temperature(probs: &[Vec<f32>], truth: &[usize]) -> f64 {
    if probs.is_empty() {
        return 1.0;
    }
    let f = |lt: f64| nll(probs, truth, lt.exp());
    let (mut a, mut b) = (T_MIN.ln(), T_MAX.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..60 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    ((a + b) / 2.0).exp()
}

/// A fitted temperature, stored beside the checkpoint it calibrates (`RUN/calibration.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub temperature: f64,
    /// The checkpoint file it was fitted for.
    pub checkpoint: String,
    /// The split it was fitted on, and how many images.
    pub fitted_on: String,
    pub images: usize,
    pub ece_before: f64,
    pub ece_after: f64,
    pub nll_before: f64,
    pub nll_after: f64,
}

/// Why a calibration file cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not a calibration file: {source}")]
    Invalid { path: String, source: serde_json::Error },
    #[error("{path}: temperature {temperature} must be a positive number")]
    Temperature { path: String, temperature: f64 },
}

impl Calibration {
    /// Fit on `probs`/`truth` (the validation split of `checkpoint`).
    pub fn fit(probs: &[Vec<f32>], truth: &[usize], checkpoint: &str, fitted_on: &str) -> Calibration {
        let t = fit_temperature(probs, truth);
        let scaled: Vec<Vec<f32>> = probs.iter().map(|p| with_temperature(p, t)).collect();
        Calibration {
            temperature: t,
            checkpoint: checkpoint.to_string(),
            fitted_on: fitted_on.to_string(),
            images: probs.len(),
            ece_before: ece(probs, truth, ECE_BINS),
            ece_after: ece(&scaled, truth, ECE_BINS),
            nll_before: nll(probs, truth, 1.0),
            nll_after: nll(probs, truth, t),
        }
    }

    pub fn read(path: &std::path::Path) -> Result<Calibration, CalibrationError> {
        let shown = || path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| CalibrationError::Read { path: shown(), source })?;
        let c: Calibration = serde_json::from_slice(&bytes).map_err(|source| CalibrationError::Invalid { path: shown(), source })?;
        if !(c.temperature.is_finite() && c.temperature > 0.0) {
            return Err(CalibrationError::Temperature { path: shown(), temperature: c.temperature });
        }
        Ok(c)
    }

    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        crate::run::dir::write_atomic(path, &serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_and_brier_by_hand() {
        // Two images at confidence 0.9 (one right), one at 0.6 (right): bins 13 and 9 of 15.
        let probs = vec![vec![0.9, 0.1], vec![0.1, 0.9], vec![0.6, 0.4]];
        let truth = vec![0, 0, 0];
        let e = ece(&probs, &truth, 15);
        // bin of 0.9: accuracy 0.5, confidence 0.9, 2 images; bin of 0.6: accuracy 1, confidence 0.6.
        assert!((e - (2.0 * 0.4 + 0.4) / 3.0).abs() < 1e-6, "{e}");
        let b = brier(&probs, &truth);
        assert!((b - (0.02 + 1.62 + 0.32) / 3.0).abs() < 1e-6, "{b}");
        assert_eq!(ece(&[], &[], 15), 0.0);
    }

    #[test]
    fn temperature_keeps_the_winner_and_sums_to_one() {
        let p = vec![0.7, 0.2, 0.1];
        for t in [0.3, 1.0, 2.5] {
            let q = with_temperature(&p, t);
            assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert_eq!(top(&q).0, 0);
        }
        assert!(with_temperature(&p, 2.5)[0] < 0.7 && with_temperature(&p, 0.5)[0] > 0.7);
    }

    /// An overconfident model (true logits scaled by 3) is fitted back to a temperature near 3, and the
    /// ECE falls.
    #[test]
    fn fitting_undoes_overconfidence() {
        let mut rng = crate::rng::Rng::new(5);
        let (mut probs, mut truth) = (vec![], vec![]);
        for _ in 0..3000 {
            // A rough normal: the sum of three uniforms, centred.
            let logits: Vec<f64> = (0..4).map(|_| (rng.next_f64() + rng.next_f64() + rng.next_f64() - 1.5) * 3.0).collect();
            let e: Vec<f64> = logits.iter().map(|l| l.exp()).collect();
            let s: f64 = e.iter().sum();
            let calibrated: Vec<f64> = e.iter().map(|v| v / s).collect();
            // Draw the label from the calibrated distribution; report the overconfident one.
            let u = rng.next_f64();
            let mut acc = 0.0;
            let label = calibrated.iter().position(|p| {
                acc += p;
                u < acc
            });
            truth.push(label.unwrap_or(3));
            let sharp: Vec<f64> = logits.iter().map(|l| (3.0 * l).exp()).collect();
            let s: f64 = sharp.iter().sum();
            probs.push(sharp.iter().map(|v| (v / s) as f32).collect::<Vec<f32>>());
        }
        let c = Calibration::fit(&probs, &truth, "best.safetensors", "val");
        assert!((2.6..3.4).contains(&c.temperature), "T = {}", c.temperature);
        assert!(c.ece_after < c.ece_before / 2.0, "{c:?}");
        assert!(c.nll_after < c.nll_before);
    }
}
