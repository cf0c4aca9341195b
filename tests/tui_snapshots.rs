//! Every view rendered into ratatui's TestBackend from a scripted event sequence (insta snapshots),
//! the confusion matrix's colours, and a sweep of terminal sizes that must never panic.

mod common;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use std::path::Path;
use tumorscope::config::TrainConfig;
use tumorscope::metrics::ConfusionMatrix;
use tumorscope::run::{EpochMetrics, Prediction, Record, RunInfo, RunState, StopWhen, TrainEvent};
use tumorscope::tui::action::{Action, View};
use tumorscope::tui::app::App;
use tumorscope::tui::preview::ImageCache;
use tumorscope::tui::theme::Theme;

const CLASSES: [&str; 4] = ["glioma", "meningioma", "notumor", "pituitary"];

fn confusion(epoch: usize) -> ConfusionMatrix {
    let e = epoch as u64;
    ConfusionMatrix { counts: vec![vec![100 + e, 8 - e, 2, 0], vec![3, 110 + e, 5 - e, 1], vec![0, 1, 150, 0], vec![1, 0, 0, 120 + e]] }
}

fn predictions(dir: &Path) -> Vec<Prediction> {
    (0..12)
        .map(|i| {
            let truth = i % 4;
            let pred = if i % 5 == 4 { (truth + 1) % 4 } else { truth };
            let path = dir.join(format!("img_{i:02}.png"));
            common::write_image(&path, truth % 3, i);
            let mut probs = vec![0.02f32; 4];
            probs[pred] = 0.94 - (i as f32) * 0.01;
            probs[(pred + 2) % 4] = 1.0 - probs[pred] - 0.04;
            Prediction { path: path.display().to_string(), truth, pred, loss: -(probs[truth].ln()), probs }
        })
        .collect()
}

/// Number the events and give them times: 5 s per batch, epochs end 102 s apart.
fn stamp(events: Vec<TrainEvent>) -> Vec<Record> {
    let mut t = 1_795_000_000.0;
    events
        .into_iter()
        .enumerate()
        .map(|(seq, event)| {
            match &event {
                TrainEvent::BatchEnd { .. } => t += 2.0,
                TrainEvent::EpochEnd { metrics } => t = 1_795_000_000.0 + metrics.elapsed_seconds,
                _ => {}
            }
            Record { seq: seq as u64, time: t, event }
        })
        .collect()
}

/// A run three epochs in, with a plateau LR drop and a user LR change.
fn script(dir: &Path, finished: bool) -> Vec<Record> {
    let config = TrainConfig { lr: 1e-3, ..TrainConfig::article() };
    let mut ev = vec![
        TrainEvent::Started {
            info: Box::new(RunInfo {
                run_dir: "runs/20261125-120000-efficientnet-lite0".into(),
                data_root: "/data/brain-tumor-mri".into(),
                synthetic: false,
                model: "efficientnet-lite0 (ImageNet)".into(),
                device: "cpu (2 threads)".into(),
                classes: CLASSES.iter().map(|s| s.to_string()).collect(),
                train_counts: vec![1070, 1085, 1289, 1180],
                val_counts: vec![119, 120, 143, 131],
                test_counts: vec![132, 134, 159, 146],
                batches_per_epoch: 137,
                config: config.clone(),
                samples: vec![],
                pid: 4242,
                host: "gpu-box".into(),
                resumed: None,
            }),
        },
        TrainEvent::State { state: RunState::Training },
    ];
    let accs = [(0.85, 0.889), (0.937, 0.918), (0.951, 0.924)];
    let mut lr = 1e-3;
    for (e, (ta, va)) in accs.iter().enumerate() {
        let epoch = e + 1;
        ev.push(TrainEvent::EpochStart { epoch, epochs: 12 });
        for b in 1..=20 {
            ev.push(TrainEvent::BatchEnd {
                epoch,
                batch: b,
                batches: 137,
                loss: 0.9 / (b as f64).sqrt() / epoch as f64,
                acc: *ta,
                img_per_s: 44.5,
                lr,
            });
        }
        ev.push(TrainEvent::EpochEnd {
            metrics: EpochMetrics {
                epoch,
                epochs: 12,
                train_loss: 0.45 / epoch as f64,
                train_acc: *ta,
                val_loss: 0.42 - 0.05 * e as f64,
                val_acc: *va,
                lr,
                img_per_s: 44.5,
                epoch_seconds: 102.0,
                elapsed_seconds: 102.0 * epoch as f64,
                confusion: confusion(epoch),
            },
        });
        ev.push(TrainEvent::Predictions { split: tumorscope::run::events::SplitName::Val, epoch, items: predictions(dir) });
        ev.push(TrainEvent::Checkpointed {
            epoch,
            path: "runs/20261125-120000-efficientnet-lite0/best.safetensors".into(),
            val_acc: Some(*va),
            reason: tumorscope::run::events::CheckpointReason::BestValAcc,
        });
        if epoch == 2 {
            ev.push(TrainEvent::LrChanged { epoch, from: lr, to: 3e-4, reason: tumorscope::run::events::LrReason::Plateau });
            lr = 3e-4;
        }
    }
    ev.push(TrainEvent::EpochStart { epoch: 4, epochs: 12 });
    ev.push(TrainEvent::BatchEnd { epoch: 4, batch: 60, batches: 137, loss: 0.12, acc: 0.97, img_per_s: 45.1, lr });
    ev.push(TrainEvent::LrChanged { epoch: 4, from: lr, to: 1.5e-4, reason: tumorscope::run::events::LrReason::User });
    if finished {
        let report = confusion(4).report(&CLASSES.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        ev.push(TrainEvent::StopRequested { when: StopWhen::AfterEpoch, epoch: 4, cause: "user".into() });
        ev.push(TrainEvent::State { state: RunState::Evaluating });
        ev.push(TrainEvent::Predictions { split: tumorscope::run::events::SplitName::Test, epoch: 4, items: predictions(dir) });
        ev.push(TrainEvent::TestReport { report, weights: "best checkpoint (epoch 3, val_acc 0.9240)".into() });
        ev.push(TrainEvent::Calibrated { temperature: 1.5, images: 485, ece_before: 0.031, ece_after: 0.012 });
        ev.push(TrainEvent::ReportWritten {
            path: "runs/20261125-120000-efficientnet-lite0/report/report.md".into(),
            figures: vec!["curves.png".into()],
        });
        ev.push(TrainEvent::State { state: RunState::Finished });
        ev.push(TrainEvent::Finished {
            reason: "stopped by user after epoch 4".into(),
            best_val_acc: 0.924,
            best_epoch: 3,
            test_acc: Some(0.9621),
            elapsed_seconds: 431.0,
            stopped_by: Some("user".into()),
        });
    }
    stamp(ev)
}

fn app(dir: &Path, finished: bool) -> App {
    let mut app = App::new(Theme::article(), ImageCache::halfblocks());
    for e in script(dir, finished) {
        app.on_event(&e);
    }
    app
}

fn render(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| tumorscope::tui::views::draw(f, app)).unwrap();
    term.backend().buffer().clone()
}

fn text(b: &Buffer) -> String {
    let mut s = String::new();
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            s.push_str(b[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

fn snap(name: &str, app: &mut App) {
    let b = render(app, 100, 32);
    insta::assert_snapshot!(name, text(&b));
}

#[test]
fn every_view_while_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(dir.path(), false);
    snap("dashboard", &mut a);
    a.update(Action::Show(View::Confusion));
    a.update(Action::Down);
    a.update(Action::Right);
    snap("confusion", &mut a);
    a.update(Action::Show(View::Gallery));
    snap("gallery", &mut a);
    a.update(Action::CycleFilter);
    snap("gallery_misclassified", &mut a);
    a.update(Action::Show(View::Data));
    snap("data", &mut a);
    a.update(Action::ToggleHelp);
    snap("help", &mut a);
    a.update(Action::Escape);
    a.update(Action::Quit);
    snap("quit_confirm", &mut a);
    a.update(Action::Escape);
    a.update(Action::OpenLrPrompt);
    for c in "2e-4".chars() {
        a.update(Action::Char(c));
    }
    snap("lr_prompt", &mut a);
}

/// When the run gives threads up to other processes, the header says so, and the log says why; when
/// it takes them back, the header is as before.
#[test]
fn the_header_shows_threads_given_up_to_a_busy_machine() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(dir.path(), false);
    let before = text(&render(&mut a, 100, 32));
    let (mut seq, time) = (a.run.last_seq.unwrap_or(0), a.run.last_time);
    let mut feed = |a: &mut App, from, to, busy| {
        seq += 1;
        a.on_event(&Record { seq, time, event: TrainEvent::ThreadsChanged { from, to, busy_elsewhere: busy } });
    };
    feed(&mut a, 2, 1, 0.97);
    let busy = text(&render(&mut a, 100, 32));
    assert!(busy.contains("1 of 2 threads: machine busy"), "{busy}");
    assert!(busy.contains("threads 2 → 1: other processes keep 1.0 cores busy"), "{busy}");
    feed(&mut a, 1, 2, 0.0);
    let after = text(&render(&mut a, 100, 32));
    assert!(!after.contains("of 2 threads"), "{after}");
    assert_eq!(after.lines().take(2).collect::<Vec<_>>(), before.lines().take(2).collect::<Vec<_>>(), "the header as before");
}

#[test]
fn summary_after_finish_and_small_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(dir.path(), true);
    snap("summary", &mut a);
    a.update(Action::Escape);
    let b = render(&mut a, 80, 24);
    insta::assert_snapshot!("dashboard_80x24_finished", text(&b));
    let b = render(&mut a, 40, 12);
    insta::assert_snapshot!("dashboard_40x12", text(&b));
    // After calibration the gallery shows calibrated probabilities and says so.
    a.update(Action::Show(View::Gallery));
    let s = text(&render(&mut a, 100, 32));
    assert!(s.contains("prediction · calibrated (T = 1.50)"), "{s}");
    insta::assert_snapshot!("gallery_finished_calibrated", s);
}

#[test]
#[allow(clippy::needless_range_loop)]
fn confusion_cells_use_the_articles_palettes() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(dir.path(), false);
    a.update(Action::Show(View::Confusion));
    a.update(Action::End); // move the cursor off (0,0) so it is not reversed
    let b = render(&mut a, 100, 32);
    let t = Theme::article();
    let m = confusion(3);
    // Find each cell by its text ("count share%") and check its background.
    let screen = text(&b);
    for i in 0..4 {
        for j in 0..4 {
            if (i, j) == a.cursor {
                continue;
            }
            let share = m.row_fraction(i, j);
            let label = format!("{:>4} {:>5.1}%", m.counts[i][j], share * 100.0);
            let row = (0..b.area.height).find(|&y| {
                let line: String = (0..b.area.width).map(|x| b[(x, y)].symbol().to_string()).collect();
                line.starts_with(&format!("│{:<11}", tumorscope::data::display_class(CLASSES[i])))
            });
            let y = row.unwrap_or_else(|| panic!("row for {} not found in\n{screen}", CLASSES[i]));
            let line: Vec<String> = (0..b.area.width).map(|x| b[(x, y)].symbol().to_string()).collect();
            let joined = line.concat();
            let col = joined
                .find(&label)
                .map(|byte| joined[..byte].chars().count())
                .unwrap_or_else(|| panic!("cell '{label}' not in row '{joined}'"));
            let bg = b[(col as u16, y)].bg;
            let expected = t.cell(i == j, share);
            assert_eq!(bg, expected, "cell ({i},{j}) '{label}'");
            if i == j {
                assert!(t.green.contains(&bg), "diagonal must be green-scale");
            } else if m.counts[i][j] > 0 {
                assert!(t.red.contains(&bg), "errors must be red-scale");
            }
        }
    }
    assert_eq!(t.cell(true, 1.0), Color::Rgb(0xD0, 0xF0, 0xC0));
    assert_eq!(t.cell(false, 0.5), Color::Rgb(0x9E, 0x17, 0x17));
}

#[test]
fn no_size_panics() {
    let dir = tempfile::tempdir().unwrap();
    for finished in [false, true] {
        let mut a = app(dir.path(), finished);
        for view in View::ALL {
            a.update(Action::Escape);
            a.update(Action::Show(view));
            for (w, h) in [(1, 1), (2, 3), (10, 4), (20, 6), (40, 12), (45, 13), (60, 18), (80, 24), (120, 40), (200, 60)] {
                render(&mut a, w, h);
            }
            a.update(Action::ToggleHelp);
            render(&mut a, 30, 8);
        }
    }
}

#[test]
fn keys_drive_trainer_commands() {
    use tumorscope::run::TrainCommand;
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(dir.path(), false);
    assert_eq!(a.update(Action::LrDown), Some(TrainCommand::ScaleLr(0.5)));
    assert_eq!(a.update(Action::LrUp), Some(TrainCommand::ScaleLr(2.0)));
    assert_eq!(a.update(Action::StopAfterEpoch), Some(TrainCommand::StopAfterEpoch));
    assert_eq!(a.update(Action::StopNow), Some(TrainCommand::StopNow));
    assert_eq!(a.update(Action::TogglePause), Some(TrainCommand::Pause));
    assert_eq!(a.update(Action::CheckpointNow), Some(TrainCommand::CheckpointNow));
    assert_eq!(a.update(Action::ToggleEarlyStopping), Some(TrainCommand::SetEarlyStopping(false)));
    a.update(Action::OpenLrPrompt);
    for c in "3e-4".chars() {
        a.update(Action::Char(c));
    }
    assert_eq!(a.update(Action::Enter), Some(TrainCommand::SetLr(3e-4)));
    a.update(Action::OpenLrPrompt);
    a.update(Action::Char('x'));
    assert_eq!(a.update(Action::Enter), None, "letters are not a learning rate");
    // Quit while training asks first; "stop and save" sends StopNow and leaves when finished.
    assert_eq!(a.update(Action::Quit), None);
    assert_eq!(a.mode, tumorscope::tui::app::Mode::QuitConfirm);
    assert_eq!(a.update(Action::QuitStopAndSave), Some(TrainCommand::StopNow));
    assert!(a.exit.is_none());
    a.on_event(&Record {
        seq: 1000,
        time: 1_795_001_000.0,
        event: TrainEvent::Finished {
            reason: "x".into(),
            best_val_acc: 0.9,
            best_epoch: 1,
            test_acc: None,
            elapsed_seconds: 1.0,
            stopped_by: Some("user".into()),
        },
    });
    assert_eq!(a.exit, Some(tumorscope::tui::app::Exit::Quit));
    // Confusion cell → gallery filtered to that cell.
    let mut a = app(dir.path(), false);
    a.update(Action::Show(View::Confusion));
    a.update(Action::Down);
    a.update(Action::Right);
    a.update(Action::Right);
    a.update(Action::Enter);
    assert_eq!(a.view, View::Gallery);
    assert!(a.gallery_selection().iter().all(|&i| a.gallery_items()[i].truth == 1 && a.gallery_items()[i].pred == 2));
}

/// Two run folders written from the script: one stopped by the user, one whose process vanished.
#[test]
fn runs_view_compares_curves_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    for (name, finished, lr) in [("20261125-120000-efficientnet-lite0", true, 1e-3), ("20261125-130000-efficientnet-lite0", false, 3e-4)] {
        let run = runs.join(name);
        std::fs::create_dir_all(&run).unwrap();
        let mut log = tumorscope::run::log::EventLog::open(&run.join("events.jsonl")).unwrap();
        for mut r in script(dir.path(), finished) {
            if let TrainEvent::Started { info } = &mut r.event {
                info.config.lr = lr;
                info.run_dir = run.display().to_string();
            }
            log.write(&r).unwrap();
        }
    }
    let mut a = App::new(Theme::article(), ImageCache::halfblocks());
    a.runs.dir = Some(runs.clone());
    a.update(Action::Show(View::Runs));
    assert_eq!(a.runs.entries.len(), 2);
    assert_eq!(a.runs.entries[0].summary.state, "crashed", "no process ever recorded, no final event");
    assert_eq!(a.runs.entries[1].summary.state, "stopped");
    assert_eq!(a.runs.selected_entries().len(), 2, "with no run on screen, the newest two are compared");
    let b = render(&mut a, 110, 34);
    let screen = text(&b);
    insta::assert_snapshot!("runs", screen);
    assert!(screen.contains("compare: 1 setting(s) differ") && screen.contains("lr "), "{screen}");
    a.update(Action::Down);
    a.update(Action::ToggleSelect);
    assert_eq!(a.runs.selected_entries().len(), 1);
    assert_eq!(a.runs.selected_entries()[0].summary.state, "crashed");
}

/// `o` opens an image: the prompt, then the popup with the checkpoint's answer (here from a stand-in
/// worker on a channel: the real one, with a checkpoint, is driven in e2e_tui.rs), then `g` and `]`.
#[test]
fn open_image_popup_shows_prediction_and_grad_cam() {
    use tumorscope::run::explain::{CamMap, ExplainClient, Explained, Explanation};
    let dir = tempfile::tempdir().unwrap();
    let mut a = app(dir.path(), false);
    let (req_tx, req_rx) = std::sync::mpsc::channel();
    let (ans_tx, ans_rx) = std::sync::mpsc::channel();
    a.explain = Some(ExplainClient { requests: req_tx, answers: ans_rx });
    let image = dir.path().join("img_03.png");
    a.update(Action::OpenPrompt);
    for c in image.display().to_string().chars() {
        a.update(Action::Char(c));
    }
    // The temporary folder's name changes every run: masked, same length, so the layout stays.
    let tmp = dir.path().display().to_string();
    let masked = text(&render(&mut a, 100, 32)).replace(&tmp, &"X".repeat(tmp.chars().count()));
    insta::assert_snapshot!("open_prompt", masked);
    a.update(Action::Enter);
    let s = text(&render(&mut a, 100, 32));
    assert!(s.contains("asking the checkpoint"), "{s}");
    // The stand-in worker answers every request it got.
    let answer = |a: &mut App| {
        while let Ok(request) = req_rx.try_recv() {
            let class = request.cam_class.unwrap_or(3);
            let img = image::open(&request.path).unwrap().to_rgb8();
            let cam = CamMap { class, map: vec![0.0, 0.2, 0.1, 1.0], h: 2, w: 2 };
            let probs = vec![0.05, 0.05, 0.1, 0.8];
            let e = Explained { probs, temperature: Some(1.5), pred: 3, cam, checkpoint: "best.safetensors".into(), image: img };
            ans_tx.send(Explanation { request, result: Ok(e) }).unwrap();
        }
        assert!(a.poll_explanations());
    };
    answer(&mut a);
    let s = text(&render(&mut a, 100, 32));
    assert!(s.contains("prediction: pituitary tumor") && s.contains("calibrated (T = 1.50)") && s.contains("Grad-CAM off"), "{s}");
    a.update(Action::ToggleCam);
    a.update(Action::CamNextClass); // explain glioma instead of the predicted class
    let _ = render(&mut a, 100, 32); // asks
    answer(&mut a);
    let s = text(&render(&mut a, 100, 32));
    assert!(s.contains("Grad-CAM: glioma (plain, 2×2)"), "{s}");
    insta::assert_snapshot!("open_image_cam", s);
    a.update(Action::Escape);
    assert_eq!(a.mode, tumorscope::tui::app::Mode::Normal);
    // A path that is not there: one log line, no popup.
    a.update(Action::OpenPrompt);
    for c in "/no/such/scan.jpg".chars() {
        a.update(Action::Char(c));
    }
    a.update(Action::Enter);
    assert_eq!(a.mode, tumorscope::tui::app::Mode::Normal);
    assert!(a.run.log.iter().any(|l| l.contains("/no/such/scan.jpg: no such file or folder")));
}

/// The Experiment view over an experiment folder of two members: one finished, one training (this test
/// holds its trainer lock), drawn from their logs.
#[test]
fn the_experiment_view() {
    use tumorscope::experiment::{ExperimentDir, Member, Plan, plan};
    let dir = tempfile::tempdir().unwrap();
    let exp = ExperimentDir { path: dir.path().join("exp") };
    let members: Vec<Member> = plan::members(2, 42, &[42], &[], &[]);
    let p = Plan {
        format: plan::FORMAT,
        name: "cv2".into(),
        created_unix: 1_795_000_000,
        train_args: vec![],
        folds: 2,
        split_seed: 42,
        seeds: vec![42],
        grid: vec![],
        executor: Default::default(),
        parallel: 1,
        gpus: vec![],
        slurm: None,
        fold_counts: vec![],
        members: members.clone(),
    };
    exp.write_plan(&p).unwrap();
    let mut lock = None;
    for (m, finished) in members.iter().zip([true, false]) {
        let run = tumorscope::run::RunDir { path: exp.member_dir(m) };
        std::fs::create_dir_all(&run.path).unwrap();
        let mut log = tumorscope::run::log::EventLog::open(&run.events()).unwrap();
        for r in script(dir.path(), finished) {
            log.write(&r).unwrap();
        }
        if !finished {
            lock = Some(run.lock().unwrap());
        }
    }
    let mut screen = tumorscope::tui::experiment::ExperimentScreen::new(exp, p, Theme::article(), false);
    screen.act(&Action::Down);
    let mut term = Terminal::new(TestBackend::new(100, 24)).unwrap();
    term.draw(|f| tumorscope::tui::views::experiment::draw(f, &screen)).unwrap();
    let shown = text(term.backend().buffer());
    assert!(shown.contains("stopped") && shown.contains("running") && shown.contains("83.33%"), "{shown}");
    insta::assert_snapshot!("experiment", shown);
    drop(lock);
}
