//! An experiment's figures: each member's test accuracy (with its bootstrap interval), macro F1,
//! per-class recall and best validation accuracy, and over the members each metric's mean, standard
//! deviation and 95% interval of the mean.

use super::members::{MemberState, MemberStatus};
use crate::metrics::intervals::{self, Interval, Spread};
use serde::Serialize;

/// One member's row.
#[derive(Debug, Clone, Serialize)]
pub struct MemberFigures {
    pub id: String,
    pub fold: Option<usize>,
    pub seed: u64,
    pub state: MemberState,
    pub epoch: usize,
    pub epochs: usize,
    pub best_val_acc: Option<f64>,
    pub test_images: Option<usize>,
    pub test_acc: Option<Interval>,
    pub macro_f1: Option<Interval>,
    pub recall: Vec<Interval>,
    pub seconds: f64,
    pub run: String,
}

/// Over the members with a test report.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub classes: Vec<String>,
    pub members: Vec<MemberFigures>,
    /// How many members have test figures.
    pub scored: usize,
    pub test_acc: Option<Spread>,
    pub macro_f1: Option<Spread>,
    pub best_val_acc: Option<Spread>,
    /// Per class.
    pub recall: Vec<Spread>,
    /// Sum of the members' training times.
    pub member_seconds: f64,
}

fn figures(s: &MemberStatus) -> MemberFigures {
    let v = s.view.as_ref();
    let preds = v.map(|v| v.test_predictions.as_slice()).unwrap_or(&[]);
    let iv = v.and_then(|v| v.test_report.as_ref()).filter(|_| !preds.is_empty()).map(|r| {
        let truth: Vec<usize> = preds.iter().map(|p| p.truth).collect();
        let pred: Vec<usize> = preds.iter().map(|p| p.pred).collect();
        intervals::of_predictions(&truth, &pred, r.classes.len())
    });
    MemberFigures {
        id: s.member.id.clone(),
        fold: s.member.fold,
        seed: s.member.seed,
        state: s.state,
        epoch: v.and_then(|v| v.history.last()).map(|m| m.epoch).unwrap_or(0),
        epochs: v.map(|v| v.epochs).unwrap_or(0),
        best_val_acc: v.and_then(|v| v.best).map(|b| b.0),
        test_images: iv.as_ref().map(|_| preds.len()),
        test_acc: iv.as_ref().map(|i| i.accuracy),
        macro_f1: iv.as_ref().map(|i| i.macro_f1),
        recall: iv.map(|i| i.recall).unwrap_or_default(),
        seconds: v.map(|v| v.elapsed(None)).unwrap_or(0.0),
        run: s.run.path.display().to_string(),
    }
}

/// The spread of proportions: the interval of the mean is clipped to [0, 1].
fn spread_of(values: Vec<f64>) -> Option<Spread> {
    (!values.is_empty()).then(|| {
        let s = intervals::spread(&values);
        Spread { lo: s.lo.max(0.0), hi: s.hi.min(1.0), ..s }
    })
}

/// The figures of every member and their spread.
pub fn aggregate(statuses: &[MemberStatus]) -> Aggregate {
    let members: Vec<MemberFigures> = statuses.iter().map(figures).collect();
    let classes =
        statuses.iter().filter_map(|s| s.view.as_ref().and_then(|v| v.info.as_ref()).map(|i| i.classes.clone())).next().unwrap_or_default();
    let scored: Vec<&MemberFigures> = members.iter().filter(|m| m.test_acc.is_some()).collect();
    let pick = |f: &dyn Fn(&MemberFigures) -> Option<f64>| spread_of(scored.iter().filter_map(|m| f(m)).collect());
    let recall =
        (0..classes.len()).filter_map(|c| spread_of(scored.iter().filter_map(|m| m.recall.get(c).map(|r| r.estimate)).collect())).collect();
    Aggregate {
        scored: scored.len(),
        test_acc: pick(&|m| m.test_acc.map(|i| i.estimate)),
        macro_f1: pick(&|m| m.macro_f1.map(|i| i.estimate)),
        best_val_acc: spread_of(members.iter().filter_map(|m| m.best_val_acc).collect()),
        recall,
        member_seconds: members.iter().map(|m| m.seconds).sum(),
        classes,
        members,
    }
}

fn pct(x: Option<f64>) -> String {
    x.map(|x| format!("{:.2}", 100.0 * x)).unwrap_or_else(|| "-".into())
}

fn spread_line(name: &str, s: &Option<Spread>) -> String {
    match s {
        Some(s) => format!(
            "  {name:<16} mean {:.2}%  sd {:.2}  95% interval of the mean [{:.2}, {:.2}]  (n = {})\n",
            100.0 * s.mean,
            100.0 * s.std,
            100.0 * s.lo,
            100.0 * s.hi,
            s.n
        ),
        None => format!("  {name:<16} -\n"),
    }
}

/// The table `experiment show` prints: a row per member, then the aggregate.
pub fn text(a: &Aggregate) -> String {
    let mut s = format!("{:<28} {:<9} {:>7} {:>9} {:>22} {:>9}\n", "MEMBER", "STATE", "EPOCH", "BEST VAL", "TEST ACC [95% CI]", "MACRO F1");
    for m in &a.members {
        let test = m.test_acc.map(|i| format!("{:.2} [{:.1}, {:.1}]", 100.0 * i.estimate, 100.0 * i.lo, 100.0 * i.hi));
        s += &format!(
            "{:<28} {:<9} {:>7} {:>9} {:>22} {:>9}\n",
            m.id,
            m.state.word(),
            format!("{}/{}", m.epoch, m.epochs),
            pct(m.best_val_acc),
            test.unwrap_or_else(|| "-".into()),
            pct(m.macro_f1.map(|i| i.estimate))
        );
    }
    s += &format!("\nover the {} member(s) with a test report:\n", a.scored);
    s += &spread_line("test accuracy", &a.test_acc);
    s += &spread_line("macro F1", &a.macro_f1);
    s += &spread_line("best val acc", &a.best_val_acc);
    for (c, r) in a.classes.iter().zip(&a.recall) {
        s += &spread_line(&format!("recall {}", crate::data::display_class(c)), &Some(*r));
    }
    s
}
