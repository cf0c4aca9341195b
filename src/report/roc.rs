//! One-vs-rest ROC and precision-recall curves of the test split, one line per class in the article's
//! palettes, with each class's area in the legend.

use super::figures::{DrawError, err, font};
use super::palette::{BACKGROUND, DARK, GREEN, MUTED, RED, TEXT};
use crate::metrics::curves::ClassCurves;
use plotters::prelude::*;

pub const ROC_PR_SIZE: (u32, u32) = (1120, 520);

/// A colour per class: the palettes' light shades, then their middle ones.
fn class_colour(i: usize) -> RGBColor {
    [GREEN[3], RED[3], DARK[4], GREEN[4], RED[4], GREEN[2], RED[2], DARK[3]][i % 8]
}

/// The ROC curves (left) and precision-recall curves (right).
pub fn roc_pr<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[ClassCurves],
    title: &str,
) -> Result<(), DrawError> {
    root.fill(&BACKGROUND).map_err(err)?;
    let root = root.titled(title, font(18, TEXT)).map_err(err)?;
    let (left, right) = root.split_horizontally(ROC_PR_SIZE.0 / 2);
    panel(
        &left,
        curves,
        "false positive rate",
        "true positive rate (sensitivity)",
        |c| (c.roc.clone(), format!("AUC {:.3}", c.roc_auc)),
        true,
    )?;
    panel(&right, curves, "recall", "precision", |c| (c.pr.clone(), format!("AP {:.3}", c.average_precision)), false)
}

type Series = (Vec<(f64, f64)>, String);

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[ClassCurves],
    x: &str,
    y: &str,
    series: impl Fn(&ClassCurves) -> Series,
    diagonal: bool,
) -> Result<(), DrawError> {
    let mut chart = super::figures::styled_chart(area, None, 0f64..1f64, 0f64..1.01f64, (x, y))?;
    if diagonal {
        chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (1.0, 1.0)], MUTED.stroke_width(1)))).map_err(err)?;
    }
    for (i, c) in curves.iter().enumerate() {
        let (points, area) = series(c);
        let colour = class_colour(i);
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(err)?
            .label(format!("{} ({area})", crate::data::display_class(&c.class)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    super::figures::legend(&mut chart, if diagonal { SeriesLabelPosition::LowerRight } else { SeriesLabelPosition::LowerLeft })
}
