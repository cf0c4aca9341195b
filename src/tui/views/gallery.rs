//! Gallery: validation or test images with true label, prediction and confidence; the selected image
//! is drawn with ratatui-image beside its probabilities.

use super::block;
use crate::data::display_class;
use crate::run::events::Prediction;
use crate::tui::app::App;
use crate::tui::gallery::Split;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};
use ratatui_image::{Resize, StatefulImage};

pub fn draw(f: &mut Frame, app: &mut App, area: Rect) {
    let sel = app.gallery_selection();
    let items = app.gallery_items().to_vec();
    let split = if app.gallery_split == Split::Test && !app.run.test_predictions.is_empty() { "test" } else { "validation" };
    let title = format!(
        " {split} · {} · sort {} · {}/{} ",
        app.filter.label(app.run.classes()),
        app.sort.label(),
        if sel.is_empty() { 0 } else { app.selected + 1 },
        sel.len()
    );
    let [list_area, preview_area] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    if items.is_empty() {
        f.render_widget(
            Paragraph::new("No predictions yet: validation images appear after the first epoch.").block(block(app, title)),
            area,
        );
        return;
    }
    draw_list(f, app, list_area, &sel, &items, title);
    let Some(&i) = sel.get(app.selected) else {
        f.render_widget(Paragraph::new("No image matches this filter (f: change filter).").block(block(app, " preview ")), preview_area);
        return;
    };
    let p = items[i].clone();
    let caption_h = (app.run.classes().len() as u16 + 4).min(preview_area.height / 2);
    let [img_area, caption] = Layout::vertical([Constraint::Min(0), Constraint::Length(caption_h)]).areas(preview_area);
    draw_preview(f, app, img_area, &p);
    draw_caption(f, app, caption, &p);
}

fn class_names(app: &App) -> Vec<String> {
    app.run.classes().iter().map(|c| display_class(c)).collect()
}

/// The probabilities shown: calibrated once the run fitted a temperature (the caption says so).
fn shown(app: &App, p: &Prediction) -> Vec<f32> {
    match app.run.temperature {
        Some(t) => crate::calibration::with_temperature(&p.probs, t),
        None => p.probs.clone(),
    }
}

/// One row per selected image: right or wrong, true → predicted, confidence, file name.
fn draw_list(f: &mut Frame, app: &App, area: Rect, sel: &[usize], items: &[Prediction], title: String) {
    let t = &app.theme;
    let classes = class_names(app);
    let name = |i: usize| classes.get(i).cloned().unwrap_or_default();
    let rows: Vec<ListItem> = sel
        .iter()
        .map(|&i| {
            let p = &items[i];
            let (mark, color) = if p.correct() { ("✓", t.accent) } else { ("✗", t.warning) };
            let file = std::path::Path::new(&p.path)
                .file_name()
                .map(|n| crate::run::format::printable(&n.to_string_lossy()).into_owned())
                .unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::styled(format!("{mark} "), Style::default().fg(color).bold()),
                Span::raw(format!(
                    "{:<10} → {:<10} {:>5.1}% ",
                    name(p.truth),
                    name(p.pred),
                    shown(app, p).get(p.pred).copied().unwrap_or(0.0) * 100.0
                )),
                Span::styled(file, Style::default().fg(t.muted)),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected((!sel.is_empty()).then_some(app.selected));
    let list = List::new(rows)
        .block(block(app, title))
        .highlight_style(Style::default().bg(t.surface).add_modifier(Modifier::BOLD))
        .highlight_symbol("▶ ");
    f.render_stateful_widget(list, area, &mut state);
}

/// The selected image, or its Grad-CAM overlay from the explain worker (asked on first view).
fn draw_preview(f: &mut Frame, app: &mut App, area: Rect, p: &Prediction) {
    let classes = class_names(app);
    let cam_title = match (app.cam_on, app.cam_class) {
        (false, _) => String::new(),
        (true, None) => "Grad-CAM: predicted · ".to_string(),
        (true, Some(c)) => format!("Grad-CAM: {} · ", classes.get(c).cloned().unwrap_or_default()),
    };
    let b = block(app, format!(" preview · {cam_title}{} ", app.images.protocol()));
    let inner = b.inner(area);
    f.render_widget(b, area);
    let warning = app.theme.warning;
    let muted = app.theme.muted;
    let fit = || StatefulImage::default().resize(Resize::Scale(Some(image::imageops::FilterType::Triangle)));
    if !app.cam_on {
        let reading = app.run.info.as_ref().map(|i| crate::data::decode::Reading::of(&i.config)).unwrap_or_default();
        match app.images.get(&p.path, &reading) {
            Ok(proto) => f.render_stateful_widget(fit(), inner, proto),
            Err(e) => f.render_widget(Paragraph::new(e.to_string()).wrap(Wrap { trim: true }).style(Style::default().fg(warning)), inner),
        }
        return;
    }
    let generation = app.explain_generation;
    match app.explanation(std::path::Path::new(&p.path)).cloned() {
        Some(Ok(e)) => {
            let key = format!("{}#cam#{}#{generation}", p.path, e.cam.class);
            let proto = app.images.get_made(&key, || crate::report::overlay::overlay(&e.image, &e.cam.map, e.cam.h, e.cam.w, 0.55));
            f.render_stateful_widget(fit(), inner, proto);
        }
        Some(Err(e)) => f.render_widget(Paragraph::new(e.to_string()).wrap(Wrap { trim: true }).style(Style::default().fg(warning)), inner),
        None => f.render_widget(Paragraph::new("computing Grad-CAM…").style(Style::default().fg(muted)), inner),
    }
}

/// True and predicted class, the loss, and a bar per class probability.
fn draw_caption(f: &mut Frame, app: &App, area: Rect, p: &Prediction) {
    let t = &app.theme;
    let classes = class_names(app);
    let name = |i: usize| classes.get(i).cloned().unwrap_or_default();
    let verdict = if p.correct() {
        Span::styled("correct", Style::default().fg(t.accent).bold())
    } else {
        Span::styled("WRONG", Style::default().fg(t.warning).bold())
    };
    let mut lines = vec![
        Line::from(vec![Span::raw(format!("true {} · predicted {} ", name(p.truth), name(p.pred))), verdict]),
        Line::from(format!("loss {:.4}", p.loss)),
    ];
    for (c, prob) in shown(app, p).iter().enumerate() {
        let bar = "█".repeat((prob * 20.0).round() as usize);
        lines.push(Line::from(vec![
            Span::raw(format!("{:<11}{:>6.1}% ", name(c), prob * 100.0)),
            Span::styled(bar, Style::default().fg(if c == p.truth { t.train } else { t.val })),
        ]));
    }
    let title = match app.run.temperature {
        Some(t) => format!(" prediction · calibrated (T = {t:.2}) "),
        None => " prediction ".to_string(),
    };
    f.render_widget(Paragraph::new(lines).block(block(app, title)), area);
}
