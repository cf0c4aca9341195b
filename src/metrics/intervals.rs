//! Percentile bootstrap intervals: how far a test figure could move on another draw of test images of
//! the same size. A single accuracy on 800 images carries about ±0.7 points of sampling error; these
//! say so beside every figure. Seeded, so one prediction set always gives the same interval.

use super::ConfusionMatrix;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Resamples of the test images (with replacement) behind every interval.
pub const RESAMPLES: usize = 2000;
/// The seed of the resampling: fixed, so a prediction set's interval is reproducible.
pub const SEED: u64 = 2026;
/// Two-sided coverage.
pub const LEVEL: f64 = 0.95;

/// A figure and its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// `98.72% [97.9, 99.4]` (as percentages).
    pub fn percent(&self) -> String {
        format!("{:.2}% [{:.1}, {:.1}]", 100.0 * self.estimate, 100.0 * self.lo, 100.0 * self.hi)
    }

    /// The half-width in points, for `±` columns.
    pub fn half_width_points(&self) -> f64 {
        50.0 * (self.hi - self.lo)
    }
}

/// The 95% intervals of one prediction set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    pub resamples: usize,
    pub level: f64,
    pub accuracy: Interval,
    pub macro_f1: Interval,
    /// Per class, in class order.
    pub recall: Vec<Interval>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn interval(estimate: f64, mut draws: Vec<f64>, level: f64) -> Interval {
    draws.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Interval { estimate, lo: quantile(&draws, tail), hi: quantile(&draws, 1.0 - tail) }
}

/// Bootstrap `truth`/`pred` pairs (`resamples` draws, `seed`). A class absent from a resample keeps the
/// recall it had (no draw says anything about it); the estimate is the full set's figure.
pub fn bootstrap(truth: &[usize], pred: &[usize], n_classes: usize, resamples: usize, seed: u64) -> Intervals {
    let full = ConfusionMatrix::from_pairs(n_classes, truth, pred);
    let full_report = full.report(&vec![String::new(); n_classes]);
    let mut rng = Rng::new(seed);
    let (mut acc, mut f1) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    let mut recall: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); n_classes];
    let n = truth.len();
    for _ in 0..resamples {
        let mut cm = ConfusionMatrix::new(n_classes);
        for _ in 0..n {
            let i = rng.below(n);
            cm.add(truth[i], pred[i]);
        }
        acc.push(cm.accuracy());
        f1.push(cm.report(&vec![String::new(); n_classes]).macro_avg.f1);
        for (c, r) in recall.iter_mut().enumerate() {
            r.push(if cm.row_sum(c) > 0 { cm.scores(c).recall } else { full_report.per_class[c].recall });
        }
    }
    Intervals {
        resamples,
        level: LEVEL,
        accuracy: interval(full.accuracy(), acc, LEVEL),
        macro_f1: interval(full_report.macro_avg.f1, f1, LEVEL),
        recall: recall.into_iter().enumerate().map(|(c, d)| interval(full_report.per_class[c].recall, d, LEVEL)).collect(),
    }
}

/// Lines for a text report: accuracy, macro F1 and each class's recall with their intervals.
pub fn text(iv: &Intervals, classes: &[String], images: usize) -> String {
    let mut s = format!(
        "{:.0}% bootstrap intervals ({} resamples of the {images} images):\n  accuracy {}   macro F1 {}\n  recall:",
        100.0 * iv.level,
        iv.resamples,
        iv.accuracy.percent(),
        iv.macro_f1.percent()
    );
    for (c, r) in classes.iter().zip(&iv.recall) {
        s += &format!(" {c} {}", r.percent());
    }
    s + "\n"
}

/// `bootstrap` with the product's fixed resamples and seed.
pub fn of_predictions(truth: &[usize], pred: &[usize], n_classes: usize) -> Intervals {
    bootstrap(truth, pred, n_classes, RESAMPLES, SEED)
}

/// Mean, sample standard deviation and a 95% interval of the mean (Student's t) of figures measured
/// once per member of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Two-sided 97.5% quantiles of Student's t for 1..=30 degrees of freedom (then 1.96).
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093,
    2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

pub fn spread(values: &[f64]) -> Spread {
    let n = values.len();
    if n == 0 {
        return Spread { n, mean: 0.0, std: 0.0, lo: 0.0, hi: 0.0 };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Spread { n, mean, std: 0.0, lo: mean, hi: mean };
    }
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let t = T975.get(n - 2).copied().unwrap_or(1.96);
    let half = t * std / (n as f64).sqrt();
    Spread { n, mean, std, lo: mean - half, hi: mean + half }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> (Vec<usize>, Vec<usize>) {
        // 400 images, 4 classes, 360 right: every 10th is predicted as the next class.
        let truth: Vec<usize> = (0..400).map(|i| i % 4).collect();
        let pred: Vec<usize> = truth.iter().enumerate().map(|(i, &t)| if i % 10 == 0 { (t + 1) % 4 } else { t }).collect();
        (truth, pred)
    }

    #[test]
    fn a_fixed_prediction_set_gives_a_reproducible_interval_around_its_figure() {
        let (t, p) = fixed();
        let a = of_predictions(&t, &p, 4);
        assert_eq!(a, of_predictions(&t, &p, 4), "same predictions, same interval");
        assert!((a.accuracy.estimate - 0.9).abs() < 1e-12);
        assert!(a.accuracy.lo < 0.9 && 0.9 < a.accuracy.hi);
        // Binomial: sd = sqrt(0.9·0.1/400) = 1.5 points, so the 95% interval is about ±2.9 points.
        let half = a.accuracy.half_width_points();
        assert!((2.3..3.5).contains(&half), "half-width {half}");
        assert_eq!(a.recall.len(), 4);
        for r in &a.recall {
            assert!(r.lo <= r.estimate && r.estimate <= r.hi);
        }
        assert_ne!(bootstrap(&t, &p, 4, 500, 1).accuracy, bootstrap(&t, &p, 4, 500, 2).accuracy, "the seed matters");
    }

    #[test]
    fn a_perfect_set_has_no_width() {
        let t: Vec<usize> = (0..50).map(|i| i % 2).collect();
        let a = bootstrap(&t, &t, 2, 200, 3);
        assert_eq!((a.accuracy.lo, a.accuracy.hi), (1.0, 1.0));
    }

    #[test]
    fn spread_uses_students_t() {
        let s = spread(&[0.98, 0.97, 0.99]);
        assert!((s.mean - 0.98).abs() < 1e-12);
        assert!((s.std - 0.01).abs() < 1e-12);
        // t(2) = 4.303: half-width 4.303 · 0.01 / √3.
        assert!((s.hi - s.mean - 4.303 * 0.01 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(spread(&[0.5]).std, 0.0);
    }
}
