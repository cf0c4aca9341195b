//! `report EXP`: an experiment's figures and `EXP/report/report.md`: each member's test accuracy with
//! its bootstrap interval beside the mean's interval, every member's validation curve, and the tables
//! of `experiment show`.

use super::figures::{self, DrawError, err, font};
use super::palette::{BACKGROUND, DARK, GREEN, GRID, PANEL, RED, TEXT};
use crate::experiment::aggregate::{self, Aggregate};
use crate::experiment::members::{self, MemberStatus};
use crate::experiment::{ExperimentDir, Plan};
use plotters::prelude::*;
use std::path::PathBuf;

pub const MEMBERS_SIZE: (u32, u32) = (900, 480);
pub const VAL_CURVES_SIZE: (u32, u32) = (900, 480);

type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;

fn colour(i: usize) -> RGBColor {
    [GREEN[3], RED[3], DARK[4], GREEN[4], RED[4], GREEN[2], RED[2], DARK[3]][i % 8]
}

/// Each member's test accuracy with its 95% bootstrap interval (error bars), and the mean with its
/// 95% interval as a band.
pub fn members<DB: DrawingBackend>(root: &Area<DB>, a: &Aggregate) -> Result<(), DrawError> {
    root.fill(&BACKGROUND).map_err(err)?;
    let scored: Vec<(usize, &aggregate::MemberFigures)> = a.members.iter().enumerate().filter(|(_, m)| m.test_acc.is_some()).collect();
    let lo = scored.iter().filter_map(|(_, m)| m.test_acc.map(|t| t.lo)).fold(1.0, f64::min);
    let lo = ((lo - 0.01).max(0.0) * 100.0).floor() / 100.0;
    let n = a.members.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Test accuracy per member (95% bootstrap intervals), {} members", scored.len()), font(18, TEXT))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n - 0.5, lo..1.0)
        .map_err(err)?;
    let names: Vec<String> = a.members.iter().map(|m| m.id.clone()).collect();
    chart
        .configure_mesh()
        .bold_line_style(PANEL)
        .light_line_style(BACKGROUND)
        .axis_style(GRID)
        .label_style(font(12, TEXT))
        .axis_desc_style(font(14, TEXT))
        .y_desc("test accuracy")
        .x_labels(a.members.len())
        .x_label_formatter(&|x| names.get(x.round() as usize).cloned().unwrap_or_default())
        .draw()
        .map_err(err)?;
    if let Some(s) = a.test_acc {
        chart.draw_series(std::iter::once(Rectangle::new([(-0.5, s.lo), (n - 0.5, s.hi)], GREEN[0].filled()))).map_err(err)?;
        chart.draw_series(std::iter::once(PathElement::new(vec![(-0.5, s.mean), (n - 0.5, s.mean)], GREEN[3].stroke_width(2)))).map_err(err)?;
    }
    for (i, m) in &scored {
        let t = m.test_acc.unwrap_or_default_interval();
        let x = *i as f64;
        chart.draw_series(std::iter::once(PathElement::new(vec![(x, t.lo), (x, t.hi)], RED[3].stroke_width(2)))).map_err(err)?;
        chart.draw_series(std::iter::once(Circle::new((x, t.estimate), 5, RED[4].filled()))).map_err(err)?;
    }
    Ok(())
}

trait OrDefault {
    fn unwrap_or_default_interval(self) -> crate::metrics::intervals::Interval;
}

impl OrDefault for Option<crate::metrics::intervals::Interval> {
    fn unwrap_or_default_interval(self) -> crate::metrics::intervals::Interval {
        self.unwrap_or(crate::metrics::intervals::Interval { estimate: 0.0, lo: 0.0, hi: 0.0 })
    }
}

/// Every member's validation accuracy by epoch.
pub fn val_curves<DB: DrawingBackend>(root: &Area<DB>, statuses: &[MemberStatus]) -> Result<(), DrawError> {
    root.fill(&BACKGROUND).map_err(err)?;
    let series: Vec<(String, Vec<(f64, f64)>)> = statuses
        .iter()
        .map(|s| (s.member.id.clone(), s.view.as_ref().map(|v| v.history.iter().map(|h| (h.epoch as f64, h.val_acc)).collect()).unwrap_or_default()))
        .collect();
    let last = series.iter().flat_map(|s| &s.1).map(|p| p.0).fold(1.0, f64::max);
    let lo = series.iter().flat_map(|s| &s.1).map(|p| p.1).fold(1.0, f64::min);
    let lo = ((lo - 0.02).max(0.0) * 50.0).floor() / 50.0;
    let mut chart = figures::styled_chart(root, Some("Validation accuracy by epoch, every member"), 0.5..last + 0.5, lo..1.0, ("epoch", "validation accuracy"))?;
    for (i, (name, pts)) in series.into_iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    figures::legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// What `write` produced.
pub struct Written {
    pub markdown: PathBuf,
    pub figures: Vec<PathBuf>,
    pub skipped: Vec<String>,
}

/// Write `EXP/report/`: the figures, then `report.md`.
pub fn write(exp: &ExperimentDir, plan: &Plan) -> Result<Written, super::ReportError> {
    let statuses = members::all(exp, &plan.members);
    let agg = aggregate::aggregate(&statuses);
    let dir = exp.path.join("report");
    std::fs::create_dir_all(&dir).map_err(|source| super::ReportError::CreateDir { path: dir.display().to_string(), source })?;
    let (mut made, mut skipped) = (vec![], vec![]);
    let mut record = |name: &str, r: Result<(), DrawError>| match r {
        Ok(()) => made.push(dir.join(name)),
        Err(e) => skipped.push(format!("{name}: {e}")),
    };
    record("members.png", figures::png(&dir.join("members.png"), MEMBERS_SIZE, |a| members(a, &agg)));
    record("members.svg", figures::svg(&dir.join("members.svg"), MEMBERS_SIZE, |a| members(a, &agg)));
    record("val_curves.png", figures::png(&dir.join("val_curves.png"), VAL_CURVES_SIZE, |a| val_curves(a, &statuses)));
    record("val_curves.svg", figures::svg(&dir.join("val_curves.svg"), VAL_CURVES_SIZE, |a| val_curves(a, &statuses)));
    let md = markdown(exp, plan, &agg, &made);
    let markdown = dir.join("report.md");
    crate::run::dir::write_atomic(&markdown, md.as_bytes()).map_err(|source| super::ReportError::Write { path: markdown.display().to_string(), source })?;
    Ok(Written { markdown, figures: made, skipped })
}

fn markdown(exp: &ExperimentDir, plan: &Plan, agg: &Aggregate, figures: &[PathBuf]) -> String {
    let mut s = format!("# tumorscope experiment: {}\n\n", crate::run::format::printable(&plan.name));
    s += &format!(
        "{} member(s): {} fold(s), seeds {:?}{}; every member gets `{}`.\n\n",
        plan.members.len(),
        plan.folds.max(1),
        plan.seeds,
        plan.grid.iter().map(|g| format!(", {} ∈ {{{}}}", g.key, g.values.join(", "))).collect::<String>(),
        crate::run::format::printable(&plan.train_args.join(" "))
    );
    for (file, caption) in [
        ("members.png", "Each member's test accuracy with its 95% bootstrap interval; the band is the 95% interval of the mean"),
        ("val_curves.png", "Validation accuracy by epoch, every member"),
    ] {
        if figures.iter().any(|f| f.ends_with(file)) {
            s += &format!("**{caption}**\n\n![{caption}]({file})\n\n");
        }
    }
    s += &format!("```text\n{}```\n\n", crate::run::format::printable(&aggregate::text(agg)));
    s += &format!("Experiment folder: `{}`; `tumorscope experiment show` prints the same tables.\n", exp.path.display());
    s
}
