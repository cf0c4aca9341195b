//! Runs view: the runs of the folder with their states; the selected ones' validation accuracy and
//! loss overlaid, and a table of the settings that differ between them with their best and test
//! figures.

use super::block;
use crate::run::compare::config_differences;
use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Cell, Chart, Dataset, GraphType, LegendPosition, Paragraph, Row, Table};

/// A colour per selected run, from the theme's palettes.
fn colours(app: &App) -> [Color; 6] {
    let t = &app.theme;
    [t.train, t.val, t.accent, t.green[4], t.red[4], t.muted]
}

fn short(name: &str) -> String {
    // `20261126-011501-efficientnet-lite0` → `11-26 01:15:01 efficientnet-lite0`.
    let parts: Vec<&str> = name.splitn(3, '-').collect();
    match parts.as_slice() {
        [d, t, rest] if d.len() == 8 && t.len() == 6 && d.is_ascii() && t.is_ascii() => {
            format!("{}-{} {}:{}:{} {rest}", &d[4..6], &d[6..8], &t[0..2], &t[2..4], &t[4..6])
        }
        _ => name.to_string(),
    }
}

pub fn draw(f: &mut Frame, app: &mut App, area: Rect) {
    if !app.runs.loaded {
        app.refresh_runs();
    }
    if let Some(e) = &app.runs.error {
        f.render_widget(Paragraph::new(e.clone()).block(block(app, " runs ")), area);
        return;
    }
    let [top, bottom] = Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let [list, charts] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    draw_list(f, app, list);
    let [acc, loss] = Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    draw_chart(f, app, acc, true);
    draw_chart(f, app, loss, false);
    draw_table(f, app, bottom);
}

fn draw_list(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let palette = colours(app);
    let selected: Vec<String> = app.runs.selected_entries().iter().map(|e| e.summary.name.clone()).collect();
    let rows: Vec<Row> = app
        .runs
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let s = &e.summary;
            let mark = match selected.iter().position(|n| n == &s.name) {
                Some(k) => Span::styled("■ ", Style::default().fg(palette[k % palette.len()])),
                None => Span::raw("□ "),
            };
            let state_style = match s.state.as_str() {
                "failed" | "crashed" => Style::default().fg(t.warning),
                "running" | "paused" => Style::default().fg(t.accent),
                _ => Style::default().fg(t.muted),
            };
            let row = Row::new(vec![
                Cell::from(Line::from(vec![mark, Span::raw(short(&s.name).chars().take(14).collect::<String>())])),
                Cell::from(Span::styled(s.state.clone(), state_style)),
                Cell::from(format!("{}/{}", s.epoch, s.epochs)),
                Cell::from(s.best_val_acc.map(|a| format!("{a:.3}")).unwrap_or_else(|| "-".into())),
                Cell::from(s.test_acc.map(|a| format!("{a:.3}")).unwrap_or_else(|| "-".into())),
            ]);
            if i == app.runs.cursor { row.style(Style::default().add_modifier(Modifier::REVERSED)) } else { row }
        })
        .collect();
    let folder = app.runs.dir.as_ref().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let title = format!(" {folder}/ · {} runs · space: compare · r: reread ", app.runs.entries.len());
    let table =
        Table::new(rows, [Constraint::Fill(1), Constraint::Length(8), Constraint::Length(5), Constraint::Length(5), Constraint::Length(5)])
            .header(
                Row::new(vec!["run", "state", "epoch", "best", "test"]).style(Style::default().fg(t.muted).add_modifier(Modifier::BOLD)),
            )
            .block(block(app, title));
    f.render_widget(table, area);
}

fn draw_chart(f: &mut Frame, app: &App, area: Rect, accuracy: bool) {
    let palette = colours(app);
    let entries = app.runs.selected_entries();
    let series: Vec<(String, Vec<(f64, f64)>)> = entries
        .iter()
        .map(|e| (short(&e.summary.name), e.curve.iter().map(|&(ep, a, l)| (ep as f64, if accuracy { a } else { l })).collect()))
        .collect();
    let xmax = entries.iter().map(|e| e.summary.epochs.max(e.curve.len())).max().unwrap_or(2).max(2) as f64;
    let values = series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
    let (lo, hi) = super::y_bounds(values, accuracy);
    let datasets: Vec<Dataset> = series
        .iter()
        .enumerate()
        .map(|(k, (name, pts))| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(palette[k % palette.len()]))
                .data(pts)
        })
        .collect();
    let axis = Style::default().fg(app.theme.muted);
    let chart = Chart::new(datasets)
        .block(block(app, if accuracy { " val accuracy " } else { " val loss " }))
        .legend_position(Some(if accuracy { LegendPosition::BottomRight } else { LegendPosition::TopRight }))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
        .x_axis(Axis::default().style(axis).bounds([1.0, xmax]).labels(vec![Span::raw("1"), Span::raw(format!("{}", xmax as usize))]))
        .y_axis(Axis::default().style(axis).bounds([lo, hi]).labels(vec![Span::raw(format!("{lo:.2}")), Span::raw(format!("{hi:.2}"))]));
    f.render_widget(chart, area);
}

fn draw_table(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let palette = colours(app);
    let entries = app.runs.selected_entries();
    if entries.is_empty() {
        f.render_widget(Paragraph::new("Select runs with space to compare them.").block(block(app, " compare ")), area);
        return;
    }
    let fmt = |v: Option<f64>| v.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into());
    let mut rows = vec![
        Row::new(std::iter::once("state".to_string()).chain(entries.iter().map(|e| e.summary.state.clone())).collect::<Vec<_>>()),
        Row::new(
            std::iter::once("best val_acc".to_string())
                .chain(entries.iter().map(|e| match (e.summary.best_val_acc, e.summary.best_epoch) {
                    (Some(a), Some(ep)) => format!("{a:.4} (ep {ep})"),
                    _ => "-".into(),
                }))
                .collect::<Vec<_>>(),
        ),
        Row::new(std::iter::once("test acc".to_string()).chain(entries.iter().map(|e| fmt(e.summary.test_acc))).collect::<Vec<_>>()),
        Row::new(std::iter::once("model".to_string()).chain(entries.iter().map(|e| e.summary.model.clone())).collect::<Vec<_>>()),
    ];
    let diffs = config_differences(&entries.iter().map(|e| e.config.as_ref()).collect::<Vec<_>>());
    for (key, vals) in &diffs {
        rows.push(
            Row::new(std::iter::once(key.clone()).chain(vals.iter().cloned()).collect::<Vec<_>>()).style(Style::default().fg(t.accent)),
        );
    }
    let header = Row::new(std::iter::once(Cell::from("")).chain(entries.iter().enumerate().map(|(k, e)| {
        Cell::from(Span::styled(short(&e.summary.name), Style::default().fg(palette[k % palette.len()]).add_modifier(Modifier::BOLD)))
    })));
    let mut widths = vec![Constraint::Length(17)];
    widths.extend(entries.iter().map(|_| Constraint::Min(12)));
    let title =
        if diffs.is_empty() { " compare: same settings ".to_string() } else { format!(" compare: {} setting(s) differ ", diffs.len()) };
    f.render_widget(Table::new(rows, widths).header(header).block(block(app, title)), area);
}
