//! The dashboard: a ratatui TUI over crossterm, driven by one tokio loop over key events, trainer
//! events and a redraw tick (at most 10 redraws a second, only when something changed).

pub mod action;
pub mod app;
pub mod gallery;
pub mod keys;
pub mod preview;
pub mod state;
pub mod theme;
pub mod views;

use crate::train::{TrainCommand, TrainEvent};
use app::{App, Exit};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::Stdout;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// Redraw at most this often.
pub const FRAME: Duration = Duration::from_millis(100);

/// How the dashboard ended.
pub enum TuiEnd {
    /// The run is over (or was only watched).
    Done,
    /// Training goes on; follow these events with plain output.
    Detached(UnboundedReceiver<TrainEvent>),
}

/// Leaves raw mode and the alternate screen however the dashboard ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

pub fn restore() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::terminal::LeaveAlternateScreen, crossterm::cursor::Show);
}

fn setup() -> anyhow::Result<(Terminal<CrosstermBackend<Stdout>>, TerminalGuard)> {
    crossterm::terminal::enable_raw_mode()?;
    let guard = TerminalGuard;
    crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen, crossterm::cursor::Hide)?;
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The trainer's panics are caught and reported as a Failed event; the dashboard stays up.
        if std::thread::current().name() == Some("trainer") {
            return;
        }
        restore();
        prev(info);
    }));
    Ok((Terminal::new(CrosstermBackend::new(std::io::stdout()))?, guard))
}

/// The dashboard for a live run.
pub async fn run_training(
    events: UnboundedReceiver<TrainEvent>,
    commands: std::sync::mpsc::Sender<TrainCommand>,
    data: Arc<crate::data::ImageSet>,
    theme: theme::Theme,
) -> anyhow::Result<TuiEnd> {
    let (mut term, guard) = setup()?;
    let mut app = App::new(theme, preview::ImageCache::detect());
    app.started = Some(Instant::now());
    app.samples = (0..data.classes.len()).map(|c| data.labels.iter().position(|&l| l == c).map(|i| data.paths[i].clone())).collect();
    drop(data);
    let (events, end) = event_loop(&mut term, &mut app, events, Some(commands)).await?;
    drop(guard);
    let _ = std::panic::take_hook();
    match end {
        Exit::Detach => {
            println!("dashboard closed; training continues with plain output (Ctrl-C stops and saves).");
            Ok(TuiEnd::Detached(events))
        }
        Exit::Quit if !app.run.state.is_over() => {
            println!("waiting for the trainer to stop and save…");
            Ok(TuiEnd::Detached(events))
        }
        Exit::Quit => {
            print_summary(&app);
            Ok(TuiEnd::Done)
        }
    }
}

fn print_summary(app: &App) {
    if let Some(o) = &app.run.outcome {
        println!(
            "finished: {}; best val_acc {:.4} (epoch {}){}",
            o.reason,
            o.best_val_acc,
            o.best_epoch,
            o.test_acc.map(|a| format!(", test acc {a:.4}")).unwrap_or_default()
        );
    }
    if let Some(e) = &app.run.error {
        println!("training failed: {e}");
    }
    if let Some(i) = &app.run.info {
        println!("run folder: {}", i.run_dir);
    }
}

/// Follow a run folder's `events.jsonl` (read-only).
pub async fn watch(a: crate::cli::WatchArgs) -> anyhow::Result<()> {
    let dir = crate::runlog::RunDir::open(&a.run).map_err(anyhow::Error::msg)?;
    let theme = theme::Theme::load(&a.theme)?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let path = dir.events();
    tokio::spawn(follow_log(path, tx));
    let (mut term, guard) = setup()?;
    let mut app = App::new(theme, preview::ImageCache::detect());
    app.read_only = true;
    let _ = event_loop(&mut term, &mut app, rx, None).await?;
    drop(guard);
    let _ = std::panic::take_hook();
    Ok(())
}

/// Tail a JSON-lines event log, sending each complete line as an event.
async fn follow_log(path: PathBuf, tx: tokio::sync::mpsc::UnboundedSender<TrainEvent>) {
    use std::io::{Read, Seek, SeekFrom};
    let mut pos = 0u64;
    let mut pending = String::new();
    loop {
        if let Ok(mut f) = std::fs::File::open(&path)
            && f.seek(SeekFrom::Start(pos)).is_ok()
        {
            let mut buf = String::new();
            if let Ok(n) = f.read_to_string(&mut buf) {
                pos += n as u64;
                pending.push_str(&buf);
                while let Some(i) = pending.find('\n') {
                    let line: String = pending.drain(..=i).collect();
                    if let Ok(ev) = serde_json::from_str::<TrainEvent>(&line)
                        && tx.send(ev).is_err()
                    {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(unix)]
fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

async fn next_signal(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// The loop: keys → actions → commands; trainer events → state; redraw when dirty, ≤ 10/s.
async fn event_loop(
    term: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    mut events: UnboundedReceiver<TrainEvent>,
    commands: Option<std::sync::mpsc::Sender<TrainCommand>>,
) -> anyhow::Result<(UnboundedReceiver<TrainEvent>, Exit)> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut hangup = signal(tokio::signal::unix::SignalKind::hangup());
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate());
    let mut dirty = true;
    let mut headless = false; // the terminal went away (SIGHUP): stop drawing, finish saving
    let mut events_open = true;
    let mut last_clock = Instant::now();
    let send = |cmd: TrainCommand| {
        if let Some(c) = &commands {
            let _ = c.send(cmd);
        }
    };
    loop {
        tokio::select! {
            ev = events.recv(), if events_open => match ev {
                Some(ev) => {
                    app.on_event(&ev);
                    while let Ok(ev) = events.try_recv() {
                        app.on_event(&ev);
                    }
                    dirty = true;
                }
                None => events_open = false,
            },
            k = keys.next(), if !headless => match k {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    if let Some(action) = keys::map(&app.mode, key) {
                        if let Some(cmd) = app.update(action) {
                            send(cmd);
                        }
                        dirty = true;
                    }
                }
                Some(Ok(Event::Resize(_, _))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => headless = true,
            },
            _ = next_signal(&mut hangup) => {
                headless = true;
                app.quit_when_finished = true;
                send(TrainCommand::StopNow);
            }
            _ = next_signal(&mut terminate) => {
                app.quit_when_finished = true;
                send(TrainCommand::StopNow);
                dirty = true;
            }
            _ = tick.tick() => {
                if last_clock.elapsed() >= Duration::from_secs(1) && !app.run.state.is_over() {
                    last_clock = Instant::now();
                    dirty = true;
                }
                if dirty && !headless {
                    let r = term.draw(|f| views::draw(f, app));
                    if r.is_err() {
                        headless = true;
                    }
                    dirty = false;
                }
            }
        }
        if let Some(exit) = app.exit {
            return Ok((events, exit));
        }
        if !events_open && app.quit_when_finished {
            return Ok((events, Exit::Quit));
        }
    }
}
