//! The report's charts, drawn with plotters on any backend (PNG through a pixel buffer, SVG as vector):
//! accuracy and loss against epoch, the confusion heatmap and per-class precision, recall and F1.
//! Text uses the embedded DejaVu Sans, so a bare server draws it the same as a desktop.

use super::palette::{self, BACKGROUND, GRID, MUTED, PANEL, TEXT, TRAIN, VALIDATION};
use crate::metrics::{ConfusionMatrix, Report};
use crate::run::events::EpochMetrics;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The family the embedded font is registered under.
pub const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Register the embedded font once (plotters looks fonts up by family name).
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, FONT_BYTES);
    });
}

pub fn font(size: u32, color: RGBColor) -> TextStyle<'static> {
    TextStyle { font: (FONT, size).into_font(), color: color.to_backend_color(), pos: Pos::default() }
}

fn centered(size: u32, color: RGBColor) -> TextStyle<'static> {
    font(size, color).pos(Pos::new(HPos::Center, VPos::Center))
}

pub type Area<DB> = DrawingArea<DB, Shift>;

/// A figure that could not be drawn or written (plotters' or the image encoder's message).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DrawError(pub String);

pub(super) fn err<E: std::fmt::Display>(e: E) -> DrawError {
    DrawError(e.to_string())
}

/// Draw into a PNG of `w×h` at `path`.
pub fn png(path: &Path, (w, h): (u32, u32), draw: impl FnOnce(&Area<BitMapBackend<'_>>) -> Result<(), DrawError>) -> Result<(), DrawError> {
    register_font();
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(err)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| err("pixel buffer of the wrong size"))?;
    img.save(path).map_err(|e| err(format!("{}: {e}", path.display())))
}

/// Draw into an SVG of `w×h` at `path`.
pub fn svg(path: &Path, size: (u32, u32), draw: impl FnOnce(&Area<SVGBackend<'_>>) -> Result<(), DrawError>) -> Result<(), DrawError> {
    register_font();
    let root = SVGBackend::new(path, size).into_drawing_area();
    draw(&root)?;
    root.present().map_err(|e| err(format!("{}: {e}", path.display())))
}

pub const CURVES_SIZE: (u32, u32) = (1200, 480);

/// The article's two-panel figure: accuracy (left) and loss (right) against epoch, training in
/// green and validation in red, with each learning-rate change marked.
pub fn curves<DB: DrawingBackend>(root: &Area<DB>, history: &[EpochMetrics], lr_changes: &[(usize, f64)]) -> Result<(), DrawError> {
    root.fill(&BACKGROUND).map_err(err)?;
    let (w, _) = root.dim_in_pixel();
    let (left, right) = root.split_horizontally(w / 2);
    let last = history.iter().map(|m| m.epoch).max().unwrap_or(1).max(1) as f64;
    let xs = 0.5..last + 0.5;
    let acc: Vec<f64> = history.iter().flat_map(|m| [m.train_acc, m.val_acc]).filter(|v| v.is_finite()).collect();
    let loss: Vec<f64> = history.iter().flat_map(|m| [m.train_loss, m.val_loss]).filter(|v| v.is_finite()).collect();
    let acc_lo = acc.iter().copied().fold(1.0f64, f64::min);
    let acc_lo = ((acc_lo - 0.05).max(0.0) * 20.0).floor() / 20.0;
    let loss_hi = loss.iter().copied().fold(0.0f64, f64::max).max(0.05) * 1.1;
    // The learning-rate changes are named under the axis (labels in the plot would cover the curves).
    let used: Vec<&(usize, f64)> = lr_changes.iter().filter(|(e, _)| (*e as f64) < last).collect();
    let x_desc = if used.is_empty() {
        "epoch".to_string()
    } else {
        let start = history.first().map(|m| m.lr).unwrap_or(0.0);
        let mut d = format!("epoch · lr {}", crate::run::format::fmt_lr(start));
        for (e, lr) in &used {
            d += &format!(" → {} after {e}", crate::run::format::fmt_lr(*lr));
        }
        d
    };
    type Pick = fn(&EpochMetrics) -> f64;
    type Panel<'a, DB> = (&'a Area<DB>, &'a str, std::ops::Range<f64>, Pick, Pick);
    let panels: [Panel<DB>; 2] = [
        (&left, "Accuracy", acc_lo..1.0, |m| m.train_acc, |m| m.val_acc),
        (&right, "Loss", 0.0..loss_hi, |m| m.train_loss, |m| m.val_loss),
    ];
    for (area, title, ys, train, val) in panels {
        let mut chart = ChartBuilder::on(area)
            .caption(format!("Training and validation {}", title.to_lowercase()), font(20, TEXT))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(xs.clone(), ys.clone())
            .map_err(err)?;
        styled_mesh(&mut chart, (x_desc.as_str(), title))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_labels((last as usize).min(12))
            .draw()
            .map_err(err)?;
        // A change after the last epoch never trained anything: not marked (its label would fall off).
        for &(epoch, _) in used.iter().copied() {
            let x = epoch as f64 + 0.5;
            chart.draw_series(std::iter::once(PathElement::new(vec![(x, ys.start), (x, ys.end)], MUTED.stroke_width(1)))).map_err(err)?;
        }
        for (name, pick, color) in [("train", train, TRAIN), ("validation", val, VALIDATION)] {
            let points: Vec<(f64, f64)> = history.iter().map(|m| (m.epoch as f64, pick(m))).filter(|p| p.1.is_finite()).collect();
            line_with_dots(&mut chart, name, points, color, 3)?;
        }
        legend(&mut chart, if title == "Loss" { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::LowerRight })?;
    }
    Ok(())
}

/// Layout of the confusion heatmap: where cell (row, col) lies, in pixels.
pub struct HeatmapLayout {
    pub n: usize,
    pub left: i32,
    pub top: i32,
    pub cell: i32,
}

impl HeatmapLayout {
    pub fn new(n: usize) -> HeatmapLayout {
        HeatmapLayout { n, left: 150, top: 70, cell: 120 }
    }

    pub fn size(&self) -> (u32, u32) {
        let side = self.cell * self.n as i32;
        ((self.left + side + 30) as u32, (self.top + side + 70) as u32)
    }

    /// Top-left and bottom-right corners of a cell.
    pub fn cell_rect(&self, row: usize, col: usize) -> ((i32, i32), (i32, i32)) {
        let x = self.left + col as i32 * self.cell;
        let y = self.top + row as i32 * self.cell;
        ((x, y), (x + self.cell, y + self.cell))
    }
}

/// The confusion heatmap: one cell per (true, predicted), its brightness following the count, with
/// the count and the row percentage written in it.
pub fn confusion<DB: DrawingBackend>(root: &Area<DB>, cm: &ConfusionMatrix, classes: &[String], title: &str) -> Result<(), DrawError> {
    root.fill(&BACKGROUND).map_err(err)?;
    let lay = HeatmapLayout::new(classes.len());
    let (w, h) = lay.size();
    root.draw(&Text::new(title.to_string(), (w as i32 / 2, 28), centered(20, TEXT))).map_err(err)?;
    let max = cm.counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    for (i, row) in cm.counts.iter().enumerate() {
        for (j, &count) in row.iter().enumerate() {
            let (a, b) = lay.cell_rect(i, j);
            let fill = palette::heat(count as f64 / max);
            root.draw(&Rectangle::new([a, b], fill.filled())).map_err(err)?;
            root.draw(&Rectangle::new([a, b], GRID.stroke_width(1))).map_err(err)?;
            let (cx, cy) = ((a.0 + b.0) / 2, (a.1 + b.1) / 2);
            let ink = palette::text_on(fill);
            root.draw(&Text::new(count.to_string(), (cx, cy - 10), centered(22, ink))).map_err(err)?;
            let pct = format!("{:.1}%", 100.0 * cm.row_fraction(i, j));
            root.draw(&Text::new(pct, (cx, cy + 16), centered(13, ink))).map_err(err)?;
        }
    }
    for (k, c) in classes.iter().enumerate() {
        let name = crate::data::display_class(c);
        let (a, b) = lay.cell_rect(k, 0);
        root.draw(&Text::new(name.clone(), (a.0 - 10, (a.1 + b.1) / 2), font(15, TEXT).pos(Pos::new(HPos::Right, VPos::Center))))
            .map_err(err)?;
        let (a, b) = lay.cell_rect(lay.n - 1, k);
        root.draw(&Text::new(name, ((a.0 + b.0) / 2, b.1 + 18), centered(15, TEXT))).map_err(err)?;
    }
    let side = lay.cell * lay.n as i32;
    root.draw(&Text::new("predicted", (lay.left + side / 2, h as i32 - 22), centered(15, palette::MUTED))).map_err(err)?;
    root.draw(&Text::new("true", (lay.left - 10, lay.top - 14), font(15, palette::MUTED).pos(Pos::new(HPos::Right, VPos::Center))))
        .map_err(err)?;
    Ok(())
}

pub const SCORES_SIZE: (u32, u32) = (900, 460);

/// Per-class precision, recall and F1 as grouped bars.
pub fn class_scores<DB: DrawingBackend>(root: &Area<DB>, report: &Report) -> Result<(), DrawError> {
    root.fill(&BACKGROUND).map_err(err)?;
    let (w, h) = root.dim_in_pixel();
    let (left, top, right, bottom) = (70i32, 60i32, w as i32 - 20, h as i32 - 70);
    root.draw(&Text::new("Per-class precision, recall and F1 (test)", (w as i32 / 2, 26), centered(20, TEXT))).map_err(err)?;
    let y_of = |v: f64| bottom - ((bottom - top) as f64 * v.clamp(0.0, 1.0)).round() as i32;
    for k in 0..=5 {
        let v = k as f64 / 5.0;
        let y = y_of(v);
        root.draw(&PathElement::new(vec![(left, y), (right, y)], PANEL.stroke_width(1))).map_err(err)?;
        root.draw(&Text::new(format!("{v:.1}"), (left - 8, y), font(13, TEXT).pos(Pos::new(HPos::Right, VPos::Center)))).map_err(err)?;
    }
    let n = report.per_class.len().max(1) as i32;
    let group = (right - left) / n;
    let bar = group / 5;
    let colors = [palette::GREEN[3], palette::RED[3], palette::DARK[3]];
    for (k, s) in report.per_class.iter().enumerate() {
        let x0 = left + k as i32 * group + bar;
        for (m, v) in [s.precision, s.recall, s.f1].into_iter().enumerate() {
            let x = x0 + m as i32 * bar;
            root.draw(&Rectangle::new([(x, y_of(v)), (x + bar - 4, bottom)], colors[m].filled())).map_err(err)?;
            root.draw(&Text::new(format!("{v:.2}"), (x + (bar - 4) / 2, y_of(v) - 10), centered(11, TEXT))).map_err(err)?;
        }
        let name = crate::data::display_class(&report.classes[k]);
        root.draw(&Text::new(name, (left + k as i32 * group + group / 2, bottom + 18), centered(15, TEXT))).map_err(err)?;
    }
    root.draw(&PathElement::new(vec![(left, bottom), (right, bottom)], GRID.stroke_width(1))).map_err(err)?;
    for (m, label) in ["precision", "recall", "F1"].into_iter().enumerate() {
        let x = left + 20 + m as i32 * 130;
        let y = h as i32 - 24;
        root.draw(&Rectangle::new([(x, y - 7), (x + 14, y + 7)], colors[m].filled())).map_err(err)?;
        root.draw(&Text::new(label, (x + 20, y), font(14, TEXT).pos(Pos::new(HPos::Left, VPos::Center)))).map_err(err)?;
    }
    Ok(())
}

pub const RELIABILITY_SIZE: (u32, u32) = (640, 560);

/// The reliability diagram: accuracy against mean confidence per bin, for the raw probabilities (red)
/// and, when fitted, the temperature-calibrated ones (green); the diagonal is perfect calibration.
pub fn reliability<DB: DrawingBackend>(
    root: &Area<DB>,
    raw: &[crate::calibration::Bin],
    calibrated: Option<&[crate::calibration::Bin]>,
    title: &str,
) -> Result<(), DrawError> {
    root.fill(&BACKGROUND).map_err(err)?;
    let mut chart = styled_chart(root, Some(title), 0f64..1f64, 0f64..1f64, ("confidence", "accuracy"))?;
    chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (1.0, 1.0)], MUTED.stroke_width(1)))).map_err(err)?;
    let mut series: Vec<(&str, &[crate::calibration::Bin], RGBColor)> = vec![("raw", raw, VALIDATION)];
    if let Some(c) = calibrated {
        series.push(("calibrated", c, TRAIN));
    }
    for (name, bins, color) in series {
        let points: Vec<(f64, f64)> = bins.iter().filter(|b| b.count > 0).map(|b| (b.confidence, b.accuracy)).collect();
        line_with_dots(&mut chart, name, points, color, 4)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// A chart over `xs` × `ys` in the page's style: caption, margins, mesh and axis titles.
pub(super) fn styled_chart<'a, DB: DrawingBackend + 'a>(
    root: &'a Area<DB>,
    caption: Option<&str>,
    xs: std::ops::Range<f64>,
    ys: std::ops::Range<f64>,
    (x_desc, y_desc): (&str, &str),
) -> Result<Chart<'a, DB>, DrawError> {
    let mut b = ChartBuilder::on(root);
    if let Some(c) = caption {
        b.caption(c, font(18, TEXT));
    }
    let mut chart = b.margin(16).x_label_area_size(40).y_label_area_size(60).build_cartesian_2d(xs, ys).map_err(err)?;
    styled_mesh(&mut chart, (x_desc, y_desc)).draw().map_err(err)?;
    Ok(chart)
}

/// The page's mesh (grid, axes, labels, axis titles), ready for a chart's own label settings and `draw`.
fn styled_mesh<'a, 'b, DB: DrawingBackend + 'a>(
    chart: &'b mut Chart<'a, DB>,
    (x_desc, y_desc): (&'b str, &'b str),
) -> plotters::chart::MeshStyle<'a, 'b, plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64, DB> {
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(PANEL)
        .light_line_style(BACKGROUND)
        .axis_style(GRID)
        .label_style(font(13, TEXT))
        .axis_desc_style(font(14, TEXT))
        .x_desc(x_desc)
        .y_desc(y_desc);
    mesh
}

pub(super) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

/// A named line with a dot at each point (both charts draw their series this way).
fn line_with_dots<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    name: &str,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    dot: u32,
) -> Result<(), DrawError> {
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    chart.draw_series(points.into_iter().map(|p| Circle::new(p, dot, color.filled()))).map_err(err)?;
    Ok(())
}

/// The series legend in the page's style.
pub(super) fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>, position: SeriesLabelPosition) -> Result<(), DrawError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(PANEL)
        .border_style(GRID)
        .label_font(font(13, TEXT))
        .draw()
        .map_err(err)
}
