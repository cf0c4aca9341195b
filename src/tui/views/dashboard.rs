//! Dashboard: epoch and batch gauges, accuracy and loss charts, batch-loss sparkline, LR and best
//! epoch, and the log pane.

use super::block;
use crate::run::format::fmt_lr;
use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, Gauge, GraphType, LegendPosition, Paragraph, Sparkline};

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let tall = area.height >= 18;
    let [gauges, charts, middle, log] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(if tall { (area.height.saturating_sub(2) / 2).max(8) } else { 0 }),
        Constraint::Length(if area.height >= 20 {
            5
        } else if area.height >= 12 {
            4
        } else {
            0
        }),
        Constraint::Min(0),
    ])
    .areas(area);
    draw_gauges(f, app, gauges);
    if tall {
        let [acc, loss] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
        draw_chart(f, app, acc, true);
        draw_chart(f, app, loss, false);
    }
    if middle.height > 0 {
        let [spark, lr] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
        draw_sparkline(f, app, spark);
        draw_lr(f, app, lr);
    }
    draw_log(f, app, log);
}

fn draw_gauges(f: &mut Frame, app: &App, area: Rect) {
    let r = &app.run;
    let t = &app.theme;
    let [e, b] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let within = if r.batches > 0 { r.batch as f64 / r.batches as f64 } else { 0.0 };
    let done = if r.state.is_over() { 1.0 } else { ((r.epoch.saturating_sub(1)) as f64 + within) / r.epochs.max(1) as f64 };
    let gauge = |ratio: f64, label: String| {
        Gauge::default()
            .ratio(ratio.clamp(0.0, 1.0))
            .label(Span::styled(label, Style::default().fg(t.text).bold()))
            .gauge_style(Style::default().fg(t.green[2]).bg(t.surface))
            .use_unicode(true)
    };
    f.render_widget(gauge(done, format!("epoch {}/{}", r.epoch, r.epochs)), e);
    f.render_widget(gauge(within, format!("batch {}/{} · {:.1} img/s", r.batch, r.batches, r.img_per_s)), b);
}

fn draw_chart(f: &mut Frame, app: &App, area: Rect, accuracy: bool) {
    let t = &app.theme;
    let h = &app.run.history;
    let pick = |train: bool| -> Vec<(f64, f64)> {
        h.iter()
            .map(|m| {
                let v = match (accuracy, train) {
                    (true, true) => m.train_acc,
                    (true, false) => m.val_acc,
                    (false, true) => m.train_loss,
                    (false, false) => m.val_loss,
                };
                (m.epoch as f64, v)
            })
            .collect()
    };
    let (train, val) = (pick(true), pick(false));
    let xmax = (app.run.epochs.max(2)) as f64;
    let values = train.iter().chain(&val).map(|p| p.1);
    let (lo, hi) = super::y_bounds(values, accuracy);
    let fmt = |v: f64| format!("{v:.2}");
    let title = if accuracy { "accuracy" } else { "loss" };
    let datasets = vec![
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(t.train))
            .data(&train),
        Dataset::default().name("val").marker(Marker::Braille).graph_type(GraphType::Line).style(Style::default().fg(t.val)).data(&val),
    ];
    let axis_style = Style::default().fg(t.muted);
    let chart = Chart::new(datasets)
        .block(block(app, format!(" {title} (train vs val) ")))
        .legend_position(Some(if accuracy { LegendPosition::BottomRight } else { LegendPosition::TopRight }))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
        .x_axis(Axis::default().style(axis_style).bounds([1.0, xmax]).labels(vec![Span::raw("1"), Span::raw(format!("{}", xmax as usize))]))
        .y_axis(Axis::default().style(axis_style).bounds([lo, hi]).labels(vec![Span::raw(fmt(lo)), Span::raw(fmt(hi))]));
    f.render_widget(chart, area);
}

fn draw_sparkline(f: &mut Frame, app: &App, area: Rect) {
    let losses = &app.run.batch_losses;
    let width = area.width.saturating_sub(2) as usize;
    let tail = &losses[losses.len().saturating_sub(width)..];
    let data: Vec<u64> = tail.iter().map(|l| (l * 1000.0).max(0.0) as u64).collect();
    let last = losses.last().map(|l| format!(" {l:.4}")).unwrap_or_default();
    let spark =
        Sparkline::default().block(block(app, format!(" batch loss{last} "))).data(&data).style(Style::default().fg(app.theme.train));
    f.render_widget(spark, area);
}

fn draw_lr(f: &mut Frame, app: &App, area: Rect) {
    let r = &app.run;
    let t = &app.theme;
    // The latest changes only: the line must fit without wrapping.
    let hist: Vec<String> = r
        .lr_history
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(|(e, lr)| if *e == 0 { fmt_lr(*lr) } else { format!("{} (ep {e})", fmt_lr(*lr)) })
        .collect();
    let best = match r.best {
        Some((a, e)) => format!("best val_acc {a:.4} @ epoch {e}"),
        None => "best val_acc –".into(),
    };
    let lines = vec![
        Line::from(vec![
            Span::styled("lr ", Style::default().fg(t.muted)),
            Span::styled(fmt_lr(r.lr), Style::default().fg(t.accent).bold()),
            Span::styled(format!(" · early stop {}", if r.early_stopping { "on" } else { "off" }), Style::default().fg(t.muted)),
        ]),
        Line::from(Span::styled(best, Style::default().fg(t.text))),
        Line::from(Span::styled(format!("history {}", hist.join(" → ")), Style::default().fg(t.muted))),
    ];
    f.render_widget(Paragraph::new(lines).block(block(app, " learning rate · best ")), area);
}

fn draw_log(f: &mut Frame, app: &App, area: Rect) {
    if area.height < 3 {
        return;
    }
    let n = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = app.run.log.iter().skip(app.run.log.len().saturating_sub(n)).map(|l| Line::from(l.as_str())).collect();
    f.render_widget(Paragraph::new(lines).block(block(app, " log ")).style(Style::default().fg(app.theme.muted)), area);
}
