//! The open-image popup (`o`): the image (with its Grad-CAM overlay on `g`), the prediction and every
//! class probability, from the run's checkpoint via the explain worker.

use super::block;
use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui_image::{Resize, StatefulImage};

pub fn draw(f: &mut Frame, app: &mut App, area: Rect) {
    let Some(path) = app.opened_path().cloned() else { return };
    let r = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: area.height.saturating_sub(4) };
    f.render_widget(Clear, r);
    let title = format!(
        " {} ({} of {}) ",
        crate::run::format::printable(&path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()),
        app.opened_at + 1,
        app.opened.len()
    );
    let outer = block(app, title).border_style(Style::default().fg(app.theme.accent));
    let inner = outer.inner(r);
    f.render_widget(outer, r);
    let [img_area, text_area] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(inner);
    let classes: Vec<String> = app.run.classes().to_vec();
    let name = |k: usize| crate::data::display_class(classes.get(k).map(String::as_str).unwrap_or("?"));
    let cam_on = app.cam_on;
    let t = app.theme.clone();
    let explained = app.explanation(&path).cloned();
    let mut lines: Vec<Line> = vec![];
    match explained {
        None => {
            lines.push(Line::from("asking the checkpoint…"));
        }
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled(e.to_string(), Style::default().fg(t.warning))));
        }
        Some(Ok(e)) => {
            let key = format!("{}#{}#{}#{}", path.display(), if cam_on { "cam" } else { "plain" }, e.cam.class, app.explain_generation);
            let proto = app.images.get_made(&key, || {
                if cam_on { crate::report::overlay::overlay(&e.image, &e.cam.map, e.cam.h, e.cam.w, 0.55) } else { e.image.clone() }
            });
            f.render_stateful_widget(
                StatefulImage::default().resize(Resize::Scale(Some(image::imageops::FilterType::Triangle))),
                img_area,
                proto,
            );
            let verdict = if name(e.pred) == "no tumor" { "no tumor detected".to_string() } else { format!("{} tumor", name(e.pred)) };
            lines.push(Line::from(Span::styled(format!("prediction: {verdict}"), Style::default().fg(t.accent).bold())));
            lines.push(Line::from(Span::styled(
                match e.temperature {
                    Some(tt) => format!("{} · calibrated (T = {tt:.2})", e.checkpoint),
                    None => format!("{} · raw probabilities", e.checkpoint),
                },
                Style::default().fg(t.muted),
            )));
            lines.push(Line::from(""));
            for (c, p) in e.probs.iter().enumerate() {
                let bar = "█".repeat((p * 20.0).round() as usize);
                lines.push(Line::from(vec![
                    Span::raw(format!("{:<11}{:>6.1}% ", name(c), p * 100.0)),
                    Span::styled(bar, Style::default().fg(if c == e.pred { t.train } else { t.val })),
                ]));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(if cam_on {
                format!("Grad-CAM: {} (plain, {}×{})", name(e.cam.class), e.cam.h, e.cam.w)
            } else {
                "Grad-CAM off".to_string()
            }));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("g Grad-CAM · [ ] class · ↑↓ image · Esc close", Style::default().fg(t.muted))));
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text_area);
}
