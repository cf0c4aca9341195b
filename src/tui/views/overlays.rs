//! Popups: help, quit confirmation, LR prompt and the end-of-run summary.

use super::block;
use crate::tui::app::App;
use crate::tui::keys::Scope;
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))]).flex(Flex::Center).areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))]).flex(Flex::Center).areas(v);
    r
}

fn popup(f: &mut Frame, app: &App, area: Rect, title: &str, lines: Vec<Line>, w: u16) {
    let r = centered(area, w, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(app, format!(" {title} ")).border_style(Style::default().fg(app.theme.accent))),
        r,
    );
}

pub fn help(f: &mut Frame, app: &App, area: Rect) {
    let lines = crate::tui::keys::help_lines(Scope::Views);
    let width = lines.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|(k, what)| {
            Line::from(vec![Span::styled(format!("{k:>width$}  "), Style::default().fg(app.theme.accent).bold()), Span::raw(what)])
        })
        .collect();
    popup(f, app, area, "keys · Esc, Enter or ? closes", lines, 120);
}

pub fn quit_confirm(f: &mut Frame, app: &App, area: Rect) {
    let k = |s: String| Span::styled(s, Style::default().fg(app.theme.accent).bold());
    let mut lines = vec![Line::from("Training is still running.")];
    lines.extend(crate::tui::keys::quit_hints().into_iter().map(|(keys, what)| Line::from(vec![k(keys), Span::raw(format!("  {what}"))])));
    popup(f, app, area, "quit?", lines, 60);
}

pub fn open_prompt(f: &mut Frame, app: &App, area: Rect, buf: &str) {
    let lines = vec![
        Line::from("An image file, or a folder of images, to classify with this run's best checkpoint so far."),
        Line::from(vec![Span::raw("path: "), Span::styled(format!("{buf}▏"), Style::default().fg(app.theme.accent).bold())]),
        Line::from(Span::styled("Tab completes · Enter opens · Esc cancels", Style::default().fg(app.theme.muted))),
    ];
    popup(f, app, area, "open image", lines, 96);
}

pub fn lr_prompt(f: &mut Frame, app: &App, area: Rect, buf: &str) {
    let lines = vec![
        Line::from(format!("current {}", crate::run::format::fmt_lr(app.run.lr))),
        Line::from(vec![Span::raw("new lr: "), Span::styled(format!("{buf}▏"), Style::default().fg(app.theme.accent).bold())]),
        Line::from(Span::styled("Enter applies · Esc cancels", Style::default().fg(app.theme.muted))),
    ];
    popup(f, app, area, "set learning rate", lines, 40);
}

pub fn summary(f: &mut Frame, app: &App, area: Rect) {
    let r = &app.run;
    let mut lines = vec![];
    if r.synthetic() {
        lines.push(Line::from(Span::styled(
            "SYNTHETIC data: these figures say nothing about real MRI",
            Style::default().fg(app.theme.warning).bold(),
        )));
    }
    if let Some(e) = &r.error {
        lines.push(Line::from(Span::styled(format!("training failed: {e}"), Style::default().fg(app.theme.warning).bold())));
    }
    if let Some(o) = &r.outcome {
        lines.push(Line::from(format!("{} · {}", o.reason, super::fmt_secs(o.elapsed_seconds))));
        lines.push(Line::from(format!(
            "best val_acc {:.4} at epoch {}{}",
            o.best_val_acc,
            o.best_epoch,
            o.test_acc.map(|a| format!(" · test accuracy {a:.4}")).unwrap_or_default()
        )));
    }
    if let Some(rep) = &r.test_report {
        lines.push(Line::from(""));
        if let Some(w) = &r.test_weights {
            lines.push(Line::from(Span::styled(format!("test set, {w}"), Style::default().fg(app.theme.muted))));
        }
        lines.extend(rep.to_text(4).lines().map(|l| Line::from(l.to_string())));
    }
    if let Some(i) = &r.info {
        lines.push(Line::from(Span::styled(format!("run folder: {}", i.run_dir), Style::default().fg(app.theme.muted))));
    }
    if let Some(p) = &r.report {
        lines.push(Line::from(Span::styled(format!("report: {p}"), Style::default().fg(app.theme.muted))));
    }
    lines.push(Line::from(Span::styled("Esc/Enter: review the run · q: quit", Style::default().fg(app.theme.muted))));
    popup(f, app, area, "training finished", lines, 72);
}
