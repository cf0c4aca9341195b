//! Confusion matrix and the classification report in scikit-learn's layout.

pub mod curves;
pub mod intervals;

use serde::{Deserialize, Serialize};

/// Counts: `m[true][pred]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConfusionMatrix {
    pub counts: Vec<Vec<u64>>,
}

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Everything scikit-learn's `classification_report` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub classes: Vec<String>,
    pub per_class: Vec<ClassScores>,
    pub accuracy: f64,
    pub macro_avg: ClassScores,
    pub weighted_avg: ClassScores,
    pub confusion: ConfusionMatrix,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl ConfusionMatrix {
    pub fn new(n: usize) -> Self {
        ConfusionMatrix { counts: vec![vec![0; n]; n] }
    }

    pub fn from_pairs(n: usize, truth: &[usize], pred: &[usize]) -> Self {
        let mut m = Self::new(n);
        for (&t, &p) in truth.iter().zip(pred) {
            m.add(t, p);
        }
        m
    }

    pub fn add(&mut self, truth: usize, pred: usize) {
        if truth < self.counts.len() && pred < self.counts.len() {
            self.counts[truth][pred] += 1;
        }
    }

    pub fn n(&self) -> usize {
        self.counts.len()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn correct(&self) -> u64 {
        (0..self.n()).map(|i| self.counts[i][i]).sum()
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    pub fn row_sum(&self, i: usize) -> u64 {
        self.counts[i].iter().sum()
    }

    pub fn col_sum(&self, j: usize) -> u64 {
        self.counts.iter().map(|r| r[j]).sum()
    }

    /// Share of row `i` predicted as `j` (0 when the row is empty).
    pub fn row_fraction(&self, i: usize, j: usize) -> f64 {
        ratio(self.counts[i][j], self.row_sum(i))
    }

    pub fn scores(&self, i: usize) -> ClassScores {
        let tp = self.counts[i][i];
        let precision = ratio(tp, self.col_sum(i));
        let recall = ratio(tp, self.row_sum(i));
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        ClassScores { precision, recall, f1, support: self.row_sum(i) }
    }

    pub fn report(&self, classes: &[String]) -> Report {
        let per_class: Vec<ClassScores> = (0..self.n()).map(|i| self.scores(i)).collect();
        let n = per_class.len().max(1) as f64;
        let total = self.total();
        let avg = |f: fn(&ClassScores) -> f64| per_class.iter().map(f).sum::<f64>() / n;
        let wavg = |f: fn(&ClassScores) -> f64| {
            if total == 0 { 0.0 } else { per_class.iter().map(|s| f(s) * s.support as f64).sum::<f64>() / total as f64 }
        };
        Report {
            classes: classes.to_vec(),
            accuracy: self.accuracy(),
            macro_avg: ClassScores { precision: avg(|s| s.precision), recall: avg(|s| s.recall), f1: avg(|s| s.f1), support: total },
            weighted_avg: ClassScores { precision: wavg(|s| s.precision), recall: wavg(|s| s.recall), f1: wavg(|s| s.f1), support: total },
            per_class,
            confusion: self.clone(),
        }
    }
}

impl Report {
    /// Text exactly in scikit-learn's `classification_report` layout (digits = 2 by default there).
    pub fn to_text(&self, digits: usize) -> String {
        let width = self.classes.iter().map(|c| c.len()).chain(["weighted avg".len()]).max().unwrap_or(12).max(digits);
        let mut s = format!("{:>width$}  {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        let row = |name: &str, c: &ClassScores| {
            format!("{name:>width$}  {:>9.digits$} {:>9.digits$} {:>9.digits$} {:>9}\n", c.precision, c.recall, c.f1, c.support)
        };
        for (name, c) in self.classes.iter().zip(&self.per_class) {
            s += &row(name, c);
        }
        s += "\n";
        s += &format!("{:>width$}  {:>9} {:>9} {:>9.digits$} {:>9}\n", "accuracy", "", "", self.accuracy, self.macro_avg.support);
        s += &row("macro avg", &self.macro_avg);
        s += &row("weighted avg", &self.weighted_avg);
        s
    }

    /// The confusion matrix as an aligned text table (rows: true, columns: predicted).
    pub fn confusion_text(&self) -> String {
        let w = self.classes.iter().map(|c| c.len()).max().unwrap_or(4).max(6);
        let mut s = format!("{:>w$}  ", "true \\ pred");
        for c in &self.classes {
            s += &format!("{c:>w$} ");
        }
        s += "\n";
        for (i, c) in self.classes.iter().enumerate() {
            s += &format!("{c:>w$}  ", w = w.max(11));
            for j in 0..self.classes.len() {
                s += &format!("{:>w$} ", self.confusion.counts[i][j]);
            }
            s += "\n";
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> ConfusionMatrix {
        // truth 0: 8 right, 2 as class 1; truth 1: 1 as class 0, 9 right; truth 2: 5 right.
        ConfusionMatrix { counts: vec![vec![8, 2, 0], vec![1, 9, 0], vec![0, 0, 5]] }
    }

    #[test]
    fn hand_computed_scores() {
        let c = m();
        assert_eq!(c.total(), 25);
        assert!((c.accuracy() - 22.0 / 25.0).abs() < 1e-12);
        let s0 = c.scores(0);
        assert!((s0.precision - 8.0 / 9.0).abs() < 1e-12);
        assert!((s0.recall - 0.8).abs() < 1e-12);
        assert!((s0.f1 - 2.0 * (8.0 / 9.0) * 0.8 / (8.0 / 9.0 + 0.8)).abs() < 1e-12);
        let s1 = c.scores(1);
        assert!((s1.precision - 9.0 / 11.0).abs() < 1e-12);
        assert!((s1.recall - 0.9).abs() < 1e-12);
        assert!((c.row_fraction(0, 1) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn averages_and_layout_match_scikit_learn() {
        let r = m().report(&["a".into(), "b".into(), "c".into()]);
        let macro_p = (8.0 / 9.0 + 9.0 / 11.0 + 1.0) / 3.0;
        assert!((r.macro_avg.precision - macro_p).abs() < 1e-12);
        let weighted_r = (0.8 * 10.0 + 0.9 * 10.0 + 5.0) / 25.0;
        assert!((r.weighted_avg.recall - weighted_r).abs() < 1e-12);
        // Produced by sklearn.metrics.classification_report for the same predictions.
        let expected = "              precision    recall  f1-score   support

           a       0.89      0.80      0.84        10
           b       0.82      0.90      0.86        10
           c       1.00      1.00      1.00         5

    accuracy                           0.88        25
   macro avg       0.90      0.90      0.90        25
weighted avg       0.88      0.88      0.88        25
";
        assert_eq!(r.to_text(2), expected);
    }

    #[test]
    fn empty_class_scores_zero_not_nan() {
        let c = ConfusionMatrix { counts: vec![vec![3, 0], vec![0, 0]] };
        let s = c.scores(1);
        assert_eq!((s.precision, s.recall, s.f1, s.support), (0.0, 0.0, 0.0, 0));
    }
}
