//! The dashboard: a ratatui TUI over crossterm, driven by one tokio loop over key events, trainer
//! events and a redraw tick (at most 10 redraws a second, only when something changed).

pub mod action;
pub mod app;
pub mod experiment;
pub mod gallery;
pub mod keys;
pub mod preview;
pub mod runs;
pub mod theme;
pub mod views;

use crate::run::{Record, RunDir, RunView, TrainCommand, output};
use app::{App, Exit};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::Stdout;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// Redraw at most this often.
pub const FRAME: Duration = Duration::from_millis(100);

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
        if crate::run::output::panics_are_reported() {
            return;
        }
        restore();
        prev(info);
    }));
    Ok((Terminal::new(CrosstermBackend::new(std::io::stdout()))?, guard))
}

/// Where commands go.
pub enum CommandSink {
    /// Watching: no controls.
    ReadOnly,
    /// The trainer thread of this process.
    Local(std::sync::mpsc::Sender<TrainCommand>),
    /// Another process's trainer, through its socket.
    Socket(std::os::unix::net::UnixStream),
    /// A trainer on another machine, through the run folder (`RUN/inbox/`); records come from the log.
    Inbox(RunDir),
}

/// What the dashboard shows and steers: records in, commands out.
pub struct Session {
    pub records: UnboundedReceiver<Record>,
    pub commands: CommandSink,
    /// Set when the terminal hangs up (in-process runs).
    pub hangup: Option<tokio::sync::watch::Receiver<bool>>,
    /// Another process's run: checked for a crash when its stream ends or goes quiet.
    pub remote: Option<RunDir>,
    /// A note for the log pane (why the session is read-only, a skipped log line…).
    pub note: Option<String>,
    /// Open on the Runs view of this folder (`runs --tui`).
    pub runs_dir: Option<PathBuf>,
    /// Answers `o` and the Grad-CAM overlay from the run's checkpoint.
    pub explain: Option<crate::run::explain::ExplainClient>,
    /// Open on this view (default: the Dashboard).
    pub view: Option<action::View>,
}

impl Session {
    pub fn local(
        records: UnboundedReceiver<Record>,
        commands: std::sync::mpsc::Sender<TrainCommand>,
        hangup: tokio::sync::watch::Receiver<bool>,
    ) -> Session {
        Session {
            records,
            commands: CommandSink::Local(commands),
            hangup: Some(hangup),
            remote: None,
            note: None,
            runs_dir: None,
            explain: None,
            view: None,
        }
    }
}

/// How the dashboard ended.
pub enum Ending {
    /// Done with this run (it is over, or this client detached or only watched).
    Over(RunView),
    /// In-process: the user asked to keep training in the background.
    HandOver(UnboundedReceiver<Record>, RunView),
    /// In-process: the screen is gone (hang-up) or the user quit before the run saved; follow the
    /// rest with plain output.
    Continue(UnboundedReceiver<Record>, RunView),
}

/// Run the dashboard until the user leaves or the screen goes.
pub async fn dashboard(session: Session, theme: theme::Theme) -> anyhow::Result<Ending> {
    let local = matches!(session.commands, CommandSink::Local(_));
    let (mut term, guard) = setup()?;
    let mut app = App::new(theme, preview::ImageCache::detect());
    app.clock = true;
    app.read_only = matches!(session.commands, CommandSink::ReadOnly);
    app.attached = matches!(session.commands, CommandSink::Socket(_) | CommandSink::Inbox(_));
    if let Some(n) = &session.note {
        app.run.push_log(n.clone());
    }
    if let Some(dir) = &session.runs_dir {
        app.runs.dir = Some(dir.clone());
        app.update(action::Action::Show(action::View::Runs));
    }
    let mut session = session;
    app.explain = session.explain.take();
    if let Some(v) = session.view {
        app.update(action::Action::Show(v));
    }
    let (records, end) = event_loop(&mut term, &mut app, session, local).await?;
    drop(guard);
    // The guard restored the terminal; ratatui's own drop would `eprintln!` (and panic) on a terminal
    // that is gone.
    std::mem::forget(term);
    let _ = std::panic::take_hook();
    let view = app.run.clone();
    Ok(match end {
        Exit::Detach if local => Ending::HandOver(records, view),
        _ if local && !view.is_over() => Ending::Continue(records, view),
        _ => {
            print_summary(&app);
            Ending::Over(view)
        }
    })
}

fn print_summary(app: &App) {
    if let Some(o) = &app.run.outcome {
        output::out(&crate::run::format::finished_line(&o.reason, o.best_val_acc, o.best_epoch, o.test_acc, o.elapsed_seconds));
    }
    if let Some(e) = &app.run.error {
        output::out(&format!("training failed: {e}"));
    }
    if app.attached && !app.run.is_over() {
        output::out("detached; training goes on");
    }
    if let Some(i) = &app.run.info {
        output::out(&format!("run folder: {}", i.run_dir));
    }
}

/// Send each complete record of a log file, now and as it grows (read-only clients).
pub fn tail_log(path: PathBuf, tx: tokio::sync::mpsc::UnboundedSender<Record>) {
    tokio::spawn(async move {
        let mut tailer = crate::run::log::Tailer::new(&path);
        loop {
            if let Ok(records) = tailer.poll() {
                for r in records {
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}

/// The log first, then the socket's live records (skipping those the log already had). The log is
/// read only once the server's `hello` says this client is registered, so nothing falls between them.
/// A client the trainer dropped for falling behind (a suspended `attach`, a sleeping laptop) is told
/// so: it connects again and re-syncs from the log, the same way.
pub fn attach_stream(events: PathBuf, stream: std::os::unix::net::UnixStream, tx: tokio::sync::mpsc::UnboundedSender<Record>) {
    std::thread::spawn(move || {
        let mut last = None;
        let mut stream = Some(stream);
        while let Some(s) = stream.take() {
            if follow_connection(&events, s, &tx, &mut last) != Follow::Dropped {
                return;
            }
            let run = RunDir { path: events.parent().map(PathBuf::from).unwrap_or_default() };
            stream = crate::run::socket::connect(&run).ok();
        }
    });
}

#[derive(Debug, PartialEq)]
enum Follow {
    /// The trainer closed the stream (its run ended) or this client's reader went away.
    Ended,
    /// The trainer dropped this client: connect again.
    Dropped,
}

/// One connection: its greeting, the log up to there, then live records after `last`.
fn follow_connection(
    events: &std::path::Path,
    stream: std::os::unix::net::UnixStream,
    tx: &tokio::sync::mpsc::UnboundedSender<Record>,
    last: &mut Option<u64>,
) -> Follow {
    use crate::run::socket::{Incoming, incoming};
    let (stx, srx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for i in incoming(std::io::BufReader::new(stream)) {
            if stx.send(i).is_err() {
                break;
            }
        }
    });
    let mut early = vec![];
    for i in srx.iter() {
        match i {
            Incoming::Hello => break,
            Incoming::Record(r) => early.push(r),
            Incoming::Dropped => return Follow::Dropped,
            Incoming::Refused(_) => {}
        }
    }
    let send = |r: Record, last: &mut Option<u64>| {
        if last.is_none_or(|l| r.seq > l) {
            *last = Some(r.seq);
            return tx.send(r).is_ok();
        }
        true
    };
    if let Ok(log) = crate::run::log::read_log(events) {
        for r in log.records {
            if !send(r, last) {
                return Follow::Ended;
            }
        }
    }
    for r in early {
        if !send(r, last) {
            return Follow::Ended;
        }
    }
    for i in srx {
        match i {
            Incoming::Record(r) => {
                if !send(r, last) {
                    return Follow::Ended;
                }
            }
            Incoming::Dropped => return Follow::Dropped,
            Incoming::Hello | Incoming::Refused(_) => {}
        }
    }
    Follow::Ended
}

/// The next delivery of a signal, or never when it could not be installed.
pub async fn next_signal(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Whether the run's process has gone without a final event.
fn crashed(remote: &Option<RunDir>) -> bool {
    remote.as_ref().is_some_and(RunDir::process_gone)
}

/// What the loop keeps between turns.
struct LoopState {
    dirty: bool,
    events_open: bool,
    last_clock: Instant,
    last_liveness: Instant,
}

/// Send a command the way this session reaches its trainer.
fn send_command(commands: &mut CommandSink, app: &mut App, cmd: TrainCommand) {
    match commands {
        CommandSink::ReadOnly => {}
        CommandSink::Local(c) => {
            let _ = c.send(cmd);
        }
        CommandSink::Socket(s) => {
            if let Err(e) = crate::run::socket::send(s, &cmd) {
                app.run.push_log(format!("cannot reach the trainer: {e}"));
            }
        }
        CommandSink::Inbox(run) => {
            if let Err(e) = crate::run::inbox::post(run, &cmd) {
                app.run.push_log(format!("cannot post to {}: {e}", crate::run::inbox::inbox(run).display()));
            }
        }
    }
}

/// A record arrived (or the stream ended): fold it and whatever else is waiting.
fn on_record(app: &mut App, ev: Option<Record>, events: &mut UnboundedReceiver<Record>, st: &mut LoopState, remote: &Option<RunDir>) {
    match ev {
        Some(ev) => {
            app.on_event(&ev);
            while let Ok(ev) = events.try_recv() {
                app.on_event(&ev);
            }
            st.dirty = true;
        }
        None => {
            st.events_open = false;
            if !app.run.is_over() && crashed(remote) {
                app.run.mark_crashed();
                st.dirty = true;
            }
        }
    }
}

/// A frame's tick: Grad-CAM answers, the clock, a remote run's liveness, and the redraw when anything
/// changed. False when the terminal cannot be drawn on.
fn on_tick(term: &mut Terminal<CrosstermBackend<Stdout>>, app: &mut App, st: &mut LoopState, remote: &Option<RunDir>) -> bool {
    if app.poll_explanations() {
        st.dirty = true;
    }
    if st.last_clock.elapsed() >= Duration::from_secs(1) && !app.run.is_over() {
        st.last_clock = Instant::now();
        st.dirty = true;
    }
    if remote.is_some() && !app.run.is_over() && st.last_liveness.elapsed() >= Duration::from_secs(2) {
        st.last_liveness = Instant::now();
        if crashed(remote) {
            app.run.mark_crashed();
            st.dirty = true;
        }
    }
    if st.dirty {
        if term.draw(|f| views::draw(f, app)).is_err() {
            return false;
        }
        st.dirty = false;
    }
    true
}

/// The loop: keys → actions → commands; records → state; redraw when dirty, ≤ 10/s.
async fn event_loop(
    term: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    session: Session,
    local: bool,
) -> anyhow::Result<(UnboundedReceiver<Record>, Exit)> {
    // A client (attach, watch) leaves on a hang-up or SIGTERM; an in-process run's signals are the
    // trainer's business (commands::signals).
    let client_signal = |k: tokio::signal::unix::SignalKind| if local { None } else { tokio::signal::unix::signal(k).ok() };
    let mut client_hup = client_signal(tokio::signal::unix::SignalKind::hangup());
    let mut client_term = client_signal(tokio::signal::unix::SignalKind::terminate());
    let Session { records: mut events, mut commands, mut hangup, remote, .. } = session;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut st = LoopState { dirty: true, events_open: true, last_clock: Instant::now(), last_liveness: Instant::now() };
    loop {
        tokio::select! {
            ev = events.recv(), if st.events_open => on_record(app, ev, &mut events, &mut st, &remote),
            k = keys.next() => match k {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    if let Some(action) = keys::map(&app.mode, key) {
                        if let Some(cmd) = app.update(action) {
                            send_command(&mut commands, app, cmd);
                        }
                        st.dirty = true;
                    }
                }
                Some(Ok(Event::Resize(_, _))) => st.dirty = true,
                Some(Ok(_)) => {}
                // The terminal is gone: this screen is done; training is not.
                Some(Err(_)) | None => return Ok((events, Exit::Quit)),
            },
            _ = async { match hangup.as_mut() { Some(h) => { let _ = h.changed().await; } None => std::future::pending::<()>().await } } => {
                return Ok((events, Exit::Quit));
            }
            _ = next_signal(&mut client_hup) => {
                output::leave_terminal(std::path::Path::new("/dev/null"));
                return Ok((events, Exit::Quit));
            }
            _ = next_signal(&mut client_term) => return Ok((events, Exit::Quit)),
            _ = tick.tick() => {
                if !on_tick(term, app, &mut st, &remote) {
                    return Ok((events, Exit::Quit));
                }
            }
        }
        if let Some(exit) = app.exit {
            return Ok((events, exit));
        }
        if !st.events_open && app.quit_when_finished {
            return Ok((events, Exit::Quit));
        }
    }
}
