//! Draws the Experiment view: members (state, epoch bar, best validation, test accuracy with its
//! interval), the aggregate, and the members' validation accuracy curves overlaid.

use crate::experiment::members::MemberState;
use crate::tui::experiment::ExperimentScreen;
use crate::tui::keys::{Scope, help_lines};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table};

fn block<'a>(s: &ExperimentScreen, title: impl Into<Line<'a>>) -> Block<'a> {
    let t = &s.theme;
    Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(t.border))
        .title(title.into())
        .title_style(Style::default().fg(t.text).add_modifier(Modifier::BOLD))
        .style(Style::default().bg(t.background).fg(t.text))
}

fn colour(s: &ExperimentScreen, i: usize) -> Color {
    let t = &s.theme;
    [t.train, t.val, t.accent, t.green[4], t.red[4], t.muted][i % 6]
}

fn bar(epoch: usize, epochs: usize, width: usize) -> String {
    let filled = (epoch * width).checked_div(epochs).unwrap_or(0).min(width);
    format!("{}{} {epoch}/{epochs}", "█".repeat(filled), "░".repeat(width - filled))
}

fn state_colour(s: &ExperimentScreen, st: MemberState) -> Color {
    match st {
        MemberState::Finished => s.theme.train,
        MemberState::Running => s.theme.accent,
        MemberState::Failed | MemberState::Crashed => s.theme.warning,
        _ => s.theme.muted,
    }
}

pub fn draw(f: &mut Frame, s: &ExperimentScreen) {
    let area = f.area();
    f.render_widget(Block::default().style(Style::default().bg(s.theme.background).fg(s.theme.text)), area);
    let n = s.statuses.len() as u16;
    let [table, agg, chart, foot] =
        Layout::vertical([Constraint::Length(n + 3), Constraint::Length(4), Constraint::Min(6), Constraint::Length(1)]).areas(area);
    draw_members(f, s, table);
    draw_aggregate(f, s, agg);
    draw_curves(f, s, chart);
    let hint = if s.read_only { "↑↓ member · ⏎ open · r reread · ? help · q leave" } else { "↑↓ member · ⏎ open · s stop all · p pause all · ? help · q leave" };
    let text = s.note.clone().map(|n| format!("{n}   ·   {hint}")).unwrap_or(hint.to_string());
    f.render_widget(Paragraph::new(text).style(Style::default().fg(s.theme.muted)), foot);
    if s.help {
        draw_help(f, s, area);
    }
}

fn draw_members(f: &mut Frame, s: &ExperimentScreen, area: Rect) {
    let rows = s.aggregate.members.iter().enumerate().map(|(i, m)| {
        let test = m.test_acc.map(|t| format!("{:.2}% [{:.1}, {:.1}]", 100.0 * t.estimate, 100.0 * t.lo, 100.0 * t.hi)).unwrap_or_else(|| "-".into());
        let best = m.best_val_acc.map(|b| format!("{:.2}%", 100.0 * b)).unwrap_or_else(|| "-".into());
        let mut style = Style::default().fg(s.theme.text);
        if i == s.cursor {
            style = style.add_modifier(Modifier::REVERSED);
        }
        Row::new(vec![
            Span::styled(m.id.clone(), Style::default().fg(colour(s, i))).into(),
            Span::styled(m.state.word(), Style::default().fg(state_colour(s, m.state))).into(),
            Line::from(bar(m.epoch, m.epochs, 12)),
            Line::from(best),
            Line::from(test),
        ])
        .style(style)
    });
    let header = Row::new(vec!["member", "state", "epoch", "best val", "test accuracy [95% CI]"]).style(Style::default().fg(s.theme.muted));
    let widths = [Constraint::Length(28), Constraint::Length(9), Constraint::Length(20), Constraint::Length(9), Constraint::Min(22)];
    let title = format!(" experiment {} · {} member(s) · {} ", s.plan.name, s.statuses.len(), format!("{:?}", s.plan.executor).to_lowercase());
    f.render_widget(Table::new(rows, widths).header(header).block(block(s, title)), area);
}

fn draw_aggregate(f: &mut Frame, s: &ExperimentScreen, area: Rect) {
    let a = &s.aggregate;
    let line = match a.test_acc {
        Some(t) => format!(
            "test accuracy: mean {:.2}%, 95% interval of the mean [{:.2}, {:.2}], SD {:.2} over {} member(s){}",
            100.0 * t.mean,
            100.0 * t.lo,
            100.0 * t.hi,
            100.0 * t.std,
            a.scored,
            a.macro_f1.map(|m| format!(" · macro F1 {:.2}%", 100.0 * m.mean)).unwrap_or_default()
        ),
        None => "no member has a test report yet".to_string(),
    };
    f.render_widget(Paragraph::new(line).wrap(ratatui::widgets::Wrap { trim: true }).block(block(s, " aggregate ")), area);
}

fn draw_curves(f: &mut Frame, s: &ExperimentScreen, area: Rect) {
    let series: Vec<Vec<(f64, f64)>> = s
        .statuses
        .iter()
        .map(|m| m.view.as_ref().map(|v| v.history.iter().map(|h| (h.epoch as f64, h.val_acc)).collect()).unwrap_or_default())
        .collect();
    let max_x = series.iter().flatten().map(|p| p.0).fold(1.0, f64::max);
    let lo = series.iter().flatten().map(|p| p.1).fold(1.0, f64::min).clamp(0.0, 0.99);
    let datasets = series
        .iter()
        .enumerate()
        .map(|(i, pts)| {
            let w = if i == s.cursor { Modifier::BOLD } else { Modifier::empty() };
            Dataset::default().marker(Marker::Braille).graph_type(GraphType::Line).style(Style::default().fg(colour(s, i)).add_modifier(w)).data(pts)
        })
        .collect();
    let axis = |t: &'static str| Axis::default().title(t).style(Style::default().fg(s.theme.muted));
    let chart = Chart::new(datasets)
        .block(block(s, " validation accuracy by epoch, every member "))
        .x_axis(axis("epoch").bounds([1.0, max_x]).labels(["1".to_string(), format!("{max_x:.0}")]))
        .y_axis(axis("val acc").bounds([lo, 1.0]).labels([format!("{:.0}%", 100.0 * lo), "100%".to_string()]));
    f.render_widget(chart, area);
}

fn draw_help(f: &mut Frame, s: &ExperimentScreen, area: Rect) {
    let lines: Vec<Line> = help_lines(Scope::Experiment).into_iter().map(|(k, w)| Line::from(format!("{k:>10}  {w}"))).collect();
    let h = lines.len() as u16 + 2;
    let r = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4).min(70), height: h.min(area.height) };
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block(s, " experiment keys ")), r);
}
