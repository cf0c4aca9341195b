//! Confusion view: counts and row-normalised shares, green scale on the diagonal and red off it, with
//! per-class precision, recall (sensitivity), specificity, one-vs-rest ROC AUC, F1 and support. Arrow keys pick a cell; Enter opens its images.

use super::{block, contrast};
use crate::data::display_class;
use crate::tui::app::App;
use crate::tui::gallery::Split;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table};

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let classes: Vec<String> = app.run.classes().iter().map(|c| display_class(c)).collect();
    let title = match app.confusion_split {
        Split::Val => format!(
            " validation confusion · epoch {} · rows true, columns predicted ",
            app.run.history.last().map(|m| m.epoch).unwrap_or(0)
        ),
        Split::Test => " test confusion (best checkpoint) · rows true, columns predicted ".to_string(),
    };
    let Some(m) = app.confusion() else {
        let msg = match app.confusion_split {
            Split::Val => "No validation results yet: the matrix appears after the first epoch.",
            Split::Test => "No test report yet: it appears when training finishes (v: validation).",
        };
        f.render_widget(Paragraph::new(msg).block(block(app, title)), area);
        return;
    };
    let k = m.n();
    let t = &app.theme;
    let [top, bottom] = Layout::vertical([Constraint::Length(k as u16 + 4), Constraint::Min(0)]).areas(area);
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(6).max(11) as u16;
    let mut header = vec![Cell::from("true \\ pred").style(Style::default().fg(t.muted))];
    header.extend(classes.iter().map(|c| Cell::from(c.clone()).style(Style::default().fg(t.text).bold())));
    let rows = (0..k).map(|i| {
        let mut cells = vec![Cell::from(classes[i].clone()).style(Style::default().fg(t.text).bold())];
        for j in 0..k {
            let share = m.row_fraction(i, j);
            let bg = t.cell(i == j, share);
            let mut style = Style::default().bg(bg).fg(contrast(bg));
            if (i, j) == app.cursor {
                style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            cells.push(Cell::from(format!("{:>4} {:>5.1}%", m.counts[i][j], share * 100.0)).style(style));
        }
        Row::new(cells)
    });
    let widths = std::iter::once(Constraint::Length(width)).chain((0..k).map(|_| Constraint::Length(width))).collect::<Vec<_>>();
    let table = Table::new(rows, widths).header(Row::new(header)).column_spacing(1).block(block(app, title));
    f.render_widget(table, top);

    let auc = app.roc_auc();
    let mut rows = vec![];
    for (i, class) in classes.iter().enumerate() {
        let s = m.scores(i);
        let negatives = m.total() - m.row_sum(i);
        let false_pos = m.col_sum(i) - m.counts[i][i];
        let specificity = if negatives > 0 { format!("{:.4}", (negatives - false_pos) as f64 / negatives as f64) } else { "-".into() };
        rows.push(Row::new(vec![
            class.clone(),
            format!("{:.4}", s.precision),
            format!("{:.4}", s.recall),
            specificity,
            auc.as_ref().and_then(|a| a.get(i)).map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into()),
            format!("{:.4}", s.f1),
            s.support.to_string(),
        ]));
    }
    let blank = String::new;
    rows.push(
        Row::new(vec!["accuracy".into(), blank(), blank(), blank(), blank(), format!("{:.4}", m.accuracy()), m.total().to_string()])
            .style(Style::default().bold()),
    );
    let header =
        Row::new(vec!["class", "precision", "recall", "specificity", "ROC AUC", "f1-score", "support"]).style(Style::default().fg(t.muted));
    let c10 = Constraint::Length(12);
    let w = [Constraint::Length(width), c10, c10, c10, c10, c10, Constraint::Length(8)];
    let (r, c) = app.cursor;
    let hint = if r < k && c < k {
        format!(" ⏎ show the {} images: true {} → predicted {} ", m.counts[r][c], classes[r], classes[c])
    } else {
        String::new()
    };
    let scores = Table::new(rows, w)
        .header(header)
        .block(block(app, " per-class scores ").title_bottom(Line::from(hint).style(Style::default().fg(t.muted))));
    f.render_widget(scores, bottom);
}
