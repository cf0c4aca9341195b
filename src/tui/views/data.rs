//! Data view: images per class per split, and one sample image per class (the article's "Sample Image
//! From Each Label").

use super::block;
use crate::data::display_class;
use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph};
use ratatui_image::{Resize, StatefulImage};

pub fn draw(f: &mut Frame, app: &mut App, area: Rect) {
    let Some(info) = app.run.info.clone() else {
        f.render_widget(Paragraph::new("Waiting for the run to start…").block(block(app, " data ")), area);
        return;
    };
    let t = app.theme.clone();
    let [chart_area, samples_area] = Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let total = |v: &[usize]| v.iter().sum::<usize>();
    let title = format!(
        " images per class · train {} · val {} · test {}{} ",
        total(&info.train_counts),
        total(&info.val_counts),
        total(&info.test_counts),
        if info.synthetic { " · SYNTHETIC" } else { "" }
    );
    let groups: Vec<BarGroup> = info
        .classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let bar = |v: usize, color, label: &str| {
                Bar::default()
                    .value(v as u64)
                    .label(Line::from(label.to_string()))
                    .style(Style::default().fg(color))
                    .value_style(Style::default().fg(t.background).bg(color))
            };
            BarGroup::default().label(Line::from(display_class(name)).centered()).bars(&[
                bar(info.train_counts[c], t.green[3], "train"),
                bar(info.val_counts[c], t.red[3], "val"),
                bar(info.test_counts[c], t.muted, "test"),
            ])
        })
        .collect();
    let bar_width = (chart_area.width.saturating_sub(2) / (info.classes.len().max(1) as u16 * 4)).clamp(1, 8);
    let mut chart = BarChart::default().block(block(app, title)).bar_width(bar_width).bar_gap(1).group_gap(2);
    for g in groups {
        chart = chart.data(g);
    }
    f.render_widget(chart, chart_area);

    let b = block(app, " sample image from each label ");
    let inner = b.inner(samples_area);
    f.render_widget(b, samples_area);
    let n = info.classes.len().max(1);
    let cols = Layout::horizontal((0..n).map(|_| Constraint::Ratio(1, n as u32))).split(inner);
    for (c, col) in cols.iter().enumerate() {
        let [img, label] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(*col);
        f.render_widget(
            Paragraph::new(Line::from(display_class(&info.classes[c])).centered()).style(Style::default().fg(t.text).bold()),
            label,
        );
        match app.samples.get(c).cloned().flatten() {
            Some(path) => match app.images.get(&path.display().to_string(), &crate::data::decode::Reading::of(&info.config)) {
                Ok(proto) => f.render_stateful_widget(
                    StatefulImage::default().resize(Resize::Scale(Some(image::imageops::FilterType::Triangle))),
                    img,
                    proto,
                ),
                Err(e) => f.render_widget(Paragraph::new(e.to_string()).style(Style::default().fg(t.warning)), img),
            },
            None => f.render_widget(Paragraph::new("(no sample yet)").style(Style::default().fg(t.muted)), img),
        }
    }
}
