//! Drawing: chrome (header, tabs, footer), the four views and the overlays. Every function copes with
//! any area size, down to nothing.

mod confusion;
mod dashboard;
mod data;
pub mod experiment;
mod gallery;
mod overlays;
mod predict;
mod runs;

use super::action::View;
use super::app::{App, Mode};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Tabs};

pub fn fmt_secs(s: f64) -> String {
    crate::run::format::fmt_duration(s)
}

/// A chart's y range: accuracy from a tenth below its lowest value up to 1; loss from 0 to a tenth
/// above its highest.
pub fn y_bounds(values: impl Iterator<Item = f64>, accuracy: bool) -> (f64, f64) {
    if accuracy {
        let lo = values.fold(1.0f64, f64::min);
        ((((lo - 0.05) * 10.0).floor() / 10.0).clamp(0.0, 0.9), 1.0)
    } else {
        let hi = values.fold(0.0f64, f64::max);
        (0.0, if hi > 0.0 { hi * 1.1 } else { 1.0 })
    }
}

/// Black or white text, whichever reads better on `bg`.
pub fn contrast(bg: Color) -> Color {
    match bg {
        Color::Rgb(r, g, b) if (0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64) > 140.0 => Color::Black,
        _ => Color::White,
    }
}

pub fn block<'a>(app: &App, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(app.theme.border))
        .title(title.into())
        .title_style(Style::default().fg(app.theme.text).add_modifier(Modifier::BOLD))
        .style(Style::default().bg(app.theme.background).fg(app.theme.text))
}

/// Draw the whole screen.
pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    f.render_widget(Block::default().style(Style::default().bg(app.theme.background).fg(app.theme.text)), area);
    let [header, tabs, body, footer] =
        Layout::vertical([Constraint::Length(2), Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
    draw_header(f, app, header);
    draw_tabs(f, app, tabs);
    match app.view {
        View::Dashboard => dashboard::draw(f, app, body),
        View::Confusion => confusion::draw(f, app, body),
        View::Gallery => gallery::draw(f, app, body),
        View::Data => data::draw(f, app, body),
        View::Runs => runs::draw(f, app, body),
    }
    draw_footer(f, app, footer);
    match app.mode.clone() {
        Mode::Help => overlays::help(f, app, area),
        Mode::QuitConfirm => overlays::quit_confirm(f, app, area),
        Mode::LrPrompt(buf) => overlays::lr_prompt(f, app, area, &buf),
        Mode::Summary => overlays::summary(f, app, area),
        Mode::OpenPrompt(buf) => overlays::open_prompt(f, app, area, &buf),
        Mode::Predict => predict::draw(f, app, area),
        Mode::Normal => {}
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let r = &app.run;
    let t = &app.theme;
    let state_color = match r.state {
        _ if r.crashed => t.warning,
        crate::run::RunState::Failed => t.warning,
        crate::run::RunState::Paused | crate::run::RunState::Stopping => t.val,
        _ => t.accent,
    };
    let sep = Span::styled(" │ ", Style::default().fg(t.border));
    let mut l1 = vec![
        Span::styled(" tumorscope", Style::default().fg(t.text).bold()),
        sep.clone(),
        Span::styled(
            if r.info.is_none() && app.runs.dir.is_some() {
                "RUNS".to_string()
            } else if r.is_over() {
                r.status().to_uppercase() // finished, stopped, failed or crashed
            } else {
                r.state.label().to_uppercase()
            },
            Style::default().fg(state_color).bold(),
        ),
    ];
    if r.info.is_some() {
        l1.extend([sep.clone(), Span::raw(format!("epoch {}/{}", r.epoch, r.epochs))]);
        l1.extend([sep.clone(), Span::raw(format!("{} elapsed", fmt_secs(app.elapsed())))]);
    }
    if let Some(eta) = r.eta_seconds() {
        l1.extend([sep.clone(), Span::raw(format!("ETA {}", fmt_secs(eta)))]);
    }
    if let Some((now, full)) = r.threads_given_up.filter(|_| !r.is_over()) {
        l1.extend([sep.clone(), Span::styled(format!("{now} of {full} threads: machine busy"), Style::default().fg(t.warning))]);
    }
    if app.read_only {
        l1.extend([sep.clone(), Span::styled("READ-ONLY", Style::default().fg(t.val))]);
    }
    if app.attached {
        l1.extend([sep.clone(), Span::styled("ATTACHED", Style::default().fg(t.accent))]);
    }
    let mut l2 = vec![Span::raw(" ")];
    if let Some(i) = &r.info {
        let name = |p: &str| {
            std::path::Path::new(p)
                .file_name()
                .map(|n| crate::run::format::printable(&n.to_string_lossy()).into_owned())
                .unwrap_or_default()
        };
        let run = name(&i.run_dir);
        let data = name(&i.data_root);
        l2.push(Span::styled(format!("run {run}"), Style::default().fg(t.muted)));
        l2.push(sep.clone());
        l2.push(Span::styled(format!("data {data}"), Style::default().fg(t.muted)));
        if i.synthetic {
            l2.push(Span::styled(" SYNTHETIC", Style::default().fg(t.warning).bold()));
        }
        l2.extend([
            sep.clone(),
            Span::styled(i.model.clone(), Style::default().fg(t.muted)),
            sep,
            Span::styled(i.device.clone(), Style::default().fg(t.muted)),
        ]);
    }
    f.render_widget(Paragraph::new(vec![Line::from(l1), Line::from(l2)]).style(Style::default().bg(t.surface).fg(t.text)), area);
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let titles: Vec<String> = View::ALL.iter().enumerate().map(|(i, v)| format!("{} {}", i + 1, v.title())).collect();
    let tabs = Tabs::new(titles)
        .select(app.view.index())
        .style(Style::default().fg(app.theme.muted).bg(app.theme.background))
        .highlight_style(Style::default().fg(app.theme.accent).add_modifier(Modifier::BOLD | Modifier::UNDERLINED))
        .divider(Span::styled("│", Style::default().fg(app.theme.border)));
    f.render_widget(tabs, area);
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let keys = crate::tui::keys::footer(app.view);
    let mut spans = vec![];
    for (k, what) in keys {
        spans.push(Span::styled(format!(" {k}"), Style::default().fg(app.theme.accent).bold()));
        spans.push(Span::styled(format!(" {what} "), Style::default().fg(app.theme.muted)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(Style::default().bg(app.theme.surface)), area);
}
