//! One-vs-rest ROC and precision-recall curves with their areas, and sensitivity and specificity: the
//! figures radiology papers report per class.

use super::ConfusionMatrix;
use serde::{Deserialize, Serialize};

/// One class against the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassCurves {
    pub class: String,
    /// Area under the ROC curve (trapezoids; ties counted half, as the Mann-Whitney U).
    pub roc_auc: f64,
    /// Average precision (the step-wise area under the precision-recall curve, as scikit-learn).
    pub average_precision: f64,
    /// Recall of the class (true positive rate at the argmax decision).
    pub sensitivity: f64,
    /// True negative rate at the argmax decision.
    pub specificity: f64,
    /// (false positive rate, true positive rate), from (0,0) to (1,1), one point per distinct score.
    pub roc: Vec<(f64, f64)>,
    /// (recall, precision), recall rising.
    pub pr: Vec<(f64, f64)>,
}

/// A curve's points.
type Points = Vec<(f64, f64)>;

/// Points of the ROC and PR curves of `scores` (higher = more likely positive) against `positive`,
/// with their areas: (ROC, AUC, PR, AP).
fn curves(scores: &[f32], positive: &[bool]) -> (Points, f64, Points, f64) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let p = positive.iter().filter(|x| **x).count() as f64;
    let n = positive.len() as f64 - p;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut roc = vec![(0.0, 0.0)];
    let mut pr = vec![];
    let (mut auc, mut ap, mut last_recall) = (0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        // Every image with this score crosses the threshold at once.
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if positive[order[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        let (fpr, tpr) = (if n > 0.0 { fp / n } else { 0.0 }, if p > 0.0 { tp / p } else { 0.0 });
        let (x0, y0) = *roc.last().unwrap_or(&(0.0, 0.0));
        auc += (fpr - x0) * (tpr + y0) / 2.0;
        roc.push((fpr, tpr));
        let precision = tp / (tp + fp);
        ap += (tpr - last_recall) * precision;
        last_recall = tpr;
        pr.push((tpr, precision));
    }
    (roc, auc, pr, ap)
}

/// One-vs-rest curves of every class from per-image probabilities.
pub fn per_class(probs: &[Vec<f32>], truth: &[usize], pred: &[usize], classes: &[String]) -> Vec<ClassCurves> {
    let cm = ConfusionMatrix::from_pairs(classes.len(), truth, pred);
    let total = cm.total();
    classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let scores: Vec<f32> = probs.iter().map(|p| p.get(c).copied().unwrap_or(0.0)).collect();
            let positive: Vec<bool> = truth.iter().map(|&t| t == c).collect();
            let (roc, roc_auc, pr, average_precision) = curves(&scores, &positive);
            let negatives = total - cm.row_sum(c);
            let false_pos = cm.col_sum(c) - cm.counts[c][c];
            ClassCurves {
                class: name.clone(),
                roc_auc,
                average_precision,
                sensitivity: cm.scores(c).recall,
                specificity: if negatives > 0 { (negatives - false_pos) as f64 / negatives as f64 } else { 0.0 },
                roc,
                pr,
            }
        })
        .collect()
}

/// A plain-text table: class, sensitivity, specificity, ROC AUC, average precision.
pub fn table(curves: &[ClassCurves]) -> String {
    let mut s = format!("{:>12} {:>11} {:>11} {:>8} {:>8}\n", "", "sensitivity", "specificity", "ROC AUC", "PR AP");
    for c in curves {
        s += &format!("{:>12} {:>11.4} {:>11.4} {:>8.4} {:>8.4}\n", c.class, c.sensitivity, c.specificity, c.roc_auc, c.average_precision);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn perfect_scores_have_unit_areas_and_chance_has_a_half() {
        let truth = vec![0, 0, 1, 1];
        let probs = vec![vec![0.9, 0.1], vec![0.8, 0.2], vec![0.3, 0.7], vec![0.1, 0.9]];
        let c = per_class(&probs, &truth, &[0, 0, 1, 1], &names(2));
        assert_eq!((c[0].roc_auc, c[0].average_precision), (1.0, 1.0));
        assert_eq!((c[1].sensitivity, c[1].specificity), (1.0, 1.0));
        // Every score equal: one step from (0,0) to (1,1), area one half.
        let flat = vec![vec![0.5, 0.5]; 4];
        let c = per_class(&flat, &truth, &[0, 0, 0, 0], &names(2));
        assert_eq!(c[0].roc_auc, 0.5);
        assert_eq!(c[0].roc, vec![(0.0, 0.0), (1.0, 1.0)]);
    }

    #[test]
    fn auc_equals_the_mann_whitney_statistic() {
        // Positives score 0.9, 0.4, 0.35; negatives 0.8, 0.3, 0.1: pairs ranked right 1+... = 7 of 9.
        let truth = vec![0, 0, 0, 1, 1, 1];
        let s = [0.9f32, 0.4, 0.35, 0.8, 0.3, 0.1];
        let probs: Vec<Vec<f32>> = s.iter().map(|&x| vec![x, 1.0 - x]).collect();
        let c = per_class(&probs, &truth, &[0, 1, 1, 0, 1, 1], &names(2));
        assert!((c[0].roc_auc - 7.0 / 9.0).abs() < 1e-12, "{}", c[0].roc_auc);
        // AP = (1/3)·1 + (1/3)·(2/3) + (1/3)·(3/4).
        assert!((c[0].average_precision - (1.0 + 2.0 / 3.0 + 0.75) / 3.0).abs() < 1e-12);
        // At the argmax: class 0 predicted for 0.9 and 0.8: sensitivity 1/3, specificity 2/3.
        assert!((c[0].sensitivity - 1.0 / 3.0).abs() < 1e-12 && (c[0].specificity - 2.0 / 3.0).abs() < 1e-12);
    }
}
