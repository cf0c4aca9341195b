//! The run report: training writes `RUN/report/` by itself; `tumorscope report RUN` redraws it. Every
//! PNG decodes to its expected size and is not blank; the heatmap's cell colours follow the counts;
//! a run without a test split still gets the figures it can make; an unreadable image is a tile that
//! says so; `runs` names the report.

mod common;
use common::{bin, train_small};
use std::path::{Path, PathBuf};
use std::process::Command;
use tumorscope::report::{figures, palette, tiles};

fn only_run(runs: &Path) -> PathBuf {
    let v: Vec<PathBuf> = std::fs::read_dir(runs).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v[0].clone()
}

/// The decoded PNG, checked to be `size` and not blank (many colours, over 2% off the background).
fn png(path: &Path, size: (u32, u32)) -> image::RgbImage {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", path.display());
    let bg = palette::BACKGROUND;
    let off = img.pixels().filter(|p| p.0 != [bg.0, bg.1, bg.2]).count();
    assert!(off * 50 > img.pixels().len(), "{}: {off} of {} pixels drawn", path.display(), img.pixels().len());
    let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 20, "{}: only {} colours", path.display(), colours.len());
    img
}

fn test_confusion(run: &Path) -> Vec<Vec<u64>> {
    let log = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    let rec: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["event"] == "test_report")
        .expect("a test report");
    serde_json::from_value(rec["report"]["confusion"]["counts"].clone()).unwrap()
}

fn wrong_test_predictions(run: &Path) -> usize {
    let log = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    log.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "predictions" && r["split"] == "test")
        .flat_map(|r| r["items"].as_array().unwrap().clone())
        .filter(|p| p["truth"] != p["pred"])
        .count()
}

#[test]
fn training_writes_a_report_with_every_figure() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    common::three_classes(&data);
    let runs = t.path().join("runs");
    let o = train_small(&data, &runs, &t.path().join("cache"), &["--epochs", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let run = only_run(&runs);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("report written") && stdout.contains("report/report.md"), "{stdout}");
    let dir = run.join("report");

    png(&dir.join("curves.png"), figures::CURVES_SIZE);
    png(&dir.join("class_scores.png"), figures::SCORES_SIZE);
    png(&dir.join("samples.png"), tiles::grid_size(3, 3));
    let wrong = wrong_test_predictions(&run);
    assert_eq!(dir.join("misclassified.png").is_file(), wrong > 0, "{wrong} misclassified test images");
    if wrong > 0 {
        let shown = wrong.min(tumorscope::report::MISTAKES_SHOWN);
        png(&dir.join("misclassified.png"), tiles::grid_size(shown, shown.min(4)));
    }
    png(&dir.join("reliability.png"), figures::RELIABILITY_SIZE);
    for svg in ["curves.svg", "confusion.svg", "class_scores.svg", "reliability.svg"] {
        let text = std::fs::read_to_string(dir.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("</svg>") && text.contains("<text"), "{svg}");
    }

    // The heatmap: a cell's colour (sampled in its corner, clear of the text) brightens with its count.
    let lay = figures::HeatmapLayout::new(3);
    let heat = png(&dir.join("confusion.png"), lay.size());
    let counts = test_confusion(&run);
    let max = *counts.iter().flatten().max().unwrap();
    let mut cells = vec![];
    for (i, row) in counts.iter().enumerate() {
        for (j, &n) in row.iter().enumerate() {
            let ((x, y), _) = lay.cell_rect(i, j);
            let p = heat.get_pixel(x as u32 + 5, y as u32 + 5).0;
            assert_eq!(
                p,
                {
                    let c = palette::heat(n as f64 / max as f64);
                    [c.0, c.1, c.2]
                },
                "cell ({i},{j}) of count {n}"
            );
            cells.push((n, palette::luma(plotters::style::RGBColor(p[0], p[1], p[2]))));
        }
    }
    for &(a, la) in &cells {
        for &(b, lb) in &cells {
            if a > b {
                assert!(la > lb, "count {a} drawn no brighter than {b}: {cells:?}");
            }
        }
    }

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for needle in [
        "| status | finished |",
        "## Classification report (test split)",
        "## Calibration (test split)",
        "| calibrated (T = ",
        "![",
        "(confusion.png)",
        "## Data",
        "## Configuration",
        "## Environment",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }

    // `runs` names it; `report` redraws it, and an unreadable sample becomes a tile that says so.
    let o = Command::new(bin()).args(["runs", "--runs-dir", runs.to_str().unwrap()]).output().unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("REPORT") && table.contains("report/report.md"), "{table}");
    for e in std::fs::read_dir(data.join("alpha")).unwrap().flatten() {
        std::fs::write(e.path(), b"no longer an image").unwrap();
    }
    std::fs::remove_file(dir.join("samples.png")).unwrap();
    let o = Command::new(bin()).args(["report", run.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("samples.png"));
    png(&dir.join("samples.png"), tiles::grid_size(3, 3));
}

#[test]
fn a_run_without_a_test_split_gets_the_figures_it_can_make() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    common::three_classes(&data);
    let runs = t.path().join("runs");
    let o = train_small(&data, &runs, &t.path().join("cache"), &["--epochs", "1", "--test-fraction", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = only_run(&runs).join("report");
    png(&dir.join("curves.png"), figures::CURVES_SIZE);
    png(&dir.join("samples.png"), tiles::grid_size(3, 3));
    for absent in ["confusion.png", "class_scores.png", "misclassified.png"] {
        assert!(!dir.join(absent).exists(), "{absent}");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Not drawn:") && md.contains("confusion: no test report"), "{md}");
}

#[test]
fn report_of_a_folder_that_is_not_a_run_is_one_clear_line() {
    let t = tempfile::tempdir().unwrap();
    let o = Command::new(bin()).args(["report", t.path().to_str().unwrap()]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&t.path().display().to_string()), "{err}");
}
