//! Which predictions the gallery lists: split, filter and sort.

use crate::run::Prediction;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Val,
    Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Misclassified,
    True(usize),
    Pred(usize),
    /// One confusion-matrix cell: (true, predicted).
    Cell(usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    File,
    ConfidenceAsc,
    ConfidenceDesc,
    LossDesc,
}

impl Sort {
    pub fn next(self) -> Sort {
        match self {
            Sort::File => Sort::ConfidenceAsc,
            Sort::ConfidenceAsc => Sort::ConfidenceDesc,
            Sort::ConfidenceDesc => Sort::LossDesc,
            Sort::LossDesc => Sort::File,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::File => "file",
            Sort::ConfidenceAsc => "confidence ↑",
            Sort::ConfidenceDesc => "confidence ↓",
            Sort::LossDesc => "loss ↓",
        }
    }
}

impl Filter {
    /// all → misclassified → true:each class → pred:each class → all.
    pub fn next(self, classes: usize) -> Filter {
        match self {
            Filter::All => Filter::Misclassified,
            Filter::Misclassified if classes > 0 => Filter::True(0),
            Filter::True(c) if c + 1 < classes => Filter::True(c + 1),
            Filter::True(_) => Filter::Pred(0),
            Filter::Pred(c) if c + 1 < classes => Filter::Pred(c + 1),
            _ => Filter::All,
        }
    }

    pub fn keep(self, p: &Prediction) -> bool {
        match self {
            Filter::All => true,
            Filter::Misclassified => !p.correct(),
            Filter::True(c) => p.truth == c,
            Filter::Pred(c) => p.pred == c,
            Filter::Cell(t, q) => p.truth == t && p.pred == q,
        }
    }

    pub fn label(self, classes: &[String]) -> String {
        let name = |i: usize| classes.get(i).map(|c| crate::data::display_class(c)).unwrap_or_else(|| i.to_string());
        match self {
            Filter::All => "all".into(),
            Filter::Misclassified => "misclassified".into(),
            Filter::True(c) => format!("true = {}", name(c)),
            Filter::Pred(c) => format!("predicted = {}", name(c)),
            Filter::Cell(t, q) => format!("true = {}, predicted = {}", name(t), name(q)),
        }
    }
}

/// Indices into `items` after filtering and sorting.
pub fn select(items: &[Prediction], filter: Filter, sort: Sort) -> Vec<usize> {
    let mut v: Vec<usize> = (0..items.len()).filter(|&i| filter.keep(&items[i])).collect();
    match sort {
        Sort::File => {}
        Sort::ConfidenceAsc => v.sort_by(|&a, &b| items[a].confidence().total_cmp(&items[b].confidence())),
        Sort::ConfidenceDesc => v.sort_by(|&a, &b| items[b].confidence().total_cmp(&items[a].confidence())),
        Sort::LossDesc => v.sort_by(|&a, &b| items[b].loss.total_cmp(&items[a].loss)),
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(truth: usize, pred: usize, conf: f32, loss: f32) -> Prediction {
        let mut probs = vec![0.0; 3];
        probs[pred] = conf;
        Prediction { path: format!("{truth}{pred}"), truth, pred, probs, loss }
    }

    #[test]
    fn filters_and_sorts() {
        let items = vec![p(0, 0, 0.9, 0.1), p(0, 1, 0.6, 2.0), p(1, 1, 0.7, 0.3), p(2, 1, 0.99, 4.0)];
        assert_eq!(select(&items, Filter::Misclassified, Sort::File), vec![1, 3]);
        assert_eq!(select(&items, Filter::Pred(1), Sort::ConfidenceAsc), vec![1, 2, 3]);
        assert_eq!(select(&items, Filter::All, Sort::LossDesc), vec![3, 1, 2, 0]);
        assert_eq!(select(&items, Filter::Cell(0, 1), Sort::File), vec![1]);
        assert_eq!(select(&items, Filter::True(0), Sort::ConfidenceDesc), vec![0, 1]);
    }

    #[test]
    fn filter_cycle_covers_every_class_and_returns() {
        let mut f = Filter::All;
        let mut seen = vec![];
        for _ in 0..6 {
            f = f.next(2);
            seen.push(f);
        }
        assert_eq!(seen, vec![Filter::Misclassified, Filter::True(0), Filter::True(1), Filter::Pred(0), Filter::Pred(1), Filter::All]);
    }
}
