//! `tumorscope train`: load data, split, create (or reopen) the run folder, start the trainer thread and
//! its socket, then show the dashboard (terminal) or plain progress lines. With `--detach` the run
//! starts as a background process instead; with `--resume` it continues a stopped run exactly.

use super::resuming::{Resuming, open_resume, take_lock};
use super::{detach, headless, prepare, signals};
use crate::cli::TrainArgs;
use crate::config::TrainConfig;
use crate::run::dir::{RunDir, RunMeta, now_unix};
use crate::run::{RunView, TrainCommand, TrainEvent, output};
use crate::train::{self, TrainJob};
use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use std::sync::Arc;

/// Exit codes (README has the table): 0 finished or stopped by the user (keys, `ctl`, hand-over);
/// 1 failed; 128 + the signal's number when a signal stopped it.
pub fn exit_code(view: &RunView) -> u8 {
    if view.error.is_some() {
        return 1;
    }
    match view.outcome.as_ref().map(|o| o.stopped_by.as_ref().and_then(crate::run::events::StopCause::exit_code)) {
        Some(Some(code)) => code,
        Some(None) => 0,
        None => 1,
    }
}

/// The exit code, also when a signal came after the trainer could act on it (during the report, as
/// the process ends): a run that a signal reached exits with its code unless it failed.
pub fn exit_code_with(view: &RunView, signal: Option<&str>) -> u8 {
    match exit_code(view) {
        0 => signal.and_then(signals::exit_code).unwrap_or(0),
        code => code,
    }
}

pub async fn run(args: TrainArgs) -> Result<u8> {
    if args.detached_child {
        detach::become_session_leader();
    } else if args.detach {
        // This process only starts the background one: signals act as usual.
        signals::release();
        return detach::start(&args);
    }
    // A new run that a detaching parent created records why it never got going (a resumed run's
    // folder is left as it was: it can still be resumed).
    let known_run = if args.resume.is_none() { args.run_dir.clone() } else { None };
    let result = train(args).await;
    if let (Err(e), Some(dir)) = (&result, known_run) {
        // A run that never got going still says why, for `runs`, `watch` and `attach`.
        record_failure(&dir, e);
    }
    match result {
        Err(e) => match e.downcast_ref::<signals::StoppedWhileLoading>() {
            Some(stop) => {
                output::err(&stop.to_string());
                Ok(stop.exit_code())
            }
            None => Err(e),
        },
        ok => ok,
    }
}

fn record_failure(dir: &std::path::Path, e: &anyhow::Error) {
    let events = dir.join("events.jsonl");
    let Ok(mut log) = crate::run::log::EventLog::open(&events) else { return };
    let view = crate::run::log::read_log(&events).map(|l| RunView::from_records(&l.records)).unwrap_or_default();
    if view.state.is_over() {
        return;
    }
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let rec = log.stamp(TrainEvent::Failed { error: chain.join(": ") });
    let _ = log.write(&rec);
}

async fn train(args: TrainArgs) -> Result<u8> {
    // From here on a signal is this command's to handle, even while the data loads.
    let mut listener = signals::Listener::install();
    // The run's lock, before the data loads: a resumed run's, or that of a new run's folder that a
    // detaching parent made (a new run in the foreground takes it as its folder is made).
    let (resuming, early_lock) = match open_resume(&args)? {
        Some((r, lock)) => (Some(r), Some(lock)),
        None => (None, args.run_dir.as_ref().map(|dir| take_lock(&RunDir { path: dir.clone() }, &args)).transpose()?),
    };
    let (cfg, place) = settings(&args, resuming.as_ref())?;
    let steering = steering_available();
    let device = crate::device::parse_device(&place.device)?;
    let mut use_tui = !args.no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let theme = if use_tui { Some(crate::tui::theme::Theme::load(&place.theme)?) } else { None };
    let data = load_data(&args, &place, &cfg, resuming.as_ref(), &mut listener).await?;
    if listener.hung_up {
        // The terminal went while the data loaded: no dashboard; `forward` moves output to the run.
        use_tui = false;
    }
    let split = choose_split(&data, &cfg, resuming.as_ref())?;
    let run = match (&resuming, &args.run_dir) {
        (Some(r), _) => r.run.clone(),
        (None, Some(dir)) => RunDir::open(dir)
            .or_else(|_| std::fs::create_dir_all(dir).map(|_| RunDir { path: dir.clone() }).map_err(|e| e.to_string()))
            .map_err(anyhow::Error::msg)?,
        (None, None) => RunDir::create(&place.runs_dir, cfg.model.name())
            .with_context(|| format!("{}: cannot create run folder", place.runs_dir.display()))?,
    };
    let lock = match early_lock {
        Some(lock) => lock,
        None => run.lock()?,
    };
    write_run_files(&run, &cfg, &data, &split, resuming.as_ref())?;
    let job = TrainJob {
        config: cfg,
        data_root: data.root.display().to_string(),
        data_fingerprint: data.fingerprint,
        data: Arc::new(data.set),
        split,
        device,
        run: run.clone(),
        weights: crate::model::weights::lite0_weights_path(),
        resume: resuming.map(|r| r.state),
        serve_socket: steering,
        tensorboard: !args.no_tensorboard,
    };
    let handle = train::spawn(job).context("cannot start the trainer")?;
    let (hangup_tx, hangup_rx) = tokio::sync::watch::channel(false);
    let first_signal = signals::FirstSignal::default();
    let sig = tokio::spawn(signals::forward(
        listener,
        handle.commands.clone(),
        run.clone(),
        args.stop_on_hangup,
        hangup_tx,
        first_signal.clone(),
    ));
    let (view, handed_over) = follow(handle, theme.filter(|_| use_tui), hangup_rx, &run).await?;
    sig.abort();
    if handed_over && view.outcome.as_ref().and_then(|o| o.stopped_by.as_ref()) == Some(&crate::run::events::StopCause::HandOver) {
        detach::continue_in_background(&run, &args, &place, &lock)?;
        return Ok(0);
    }
    Ok(exit_code_with(&view, first_signal.get().copied()))
}

/// The settings a run trains with: a resumed run's own (less `--epochs` and `--threads`), else the
/// flags over the config file over the recipe; and where it runs. Sets who may read a new run.
fn settings(args: &TrainArgs, resuming: Option<&Resuming>) -> Result<(TrainConfig, crate::cli::RunPlace)> {
    let (resolved, place) = args.resolve_all()?;
    // A new run is private unless shared with the group (a resumed one follows its folder: see
    // `open_resume`).
    let Some(r) = resuming else {
        crate::run::privacy::apply(place.share_with_group);
        return Ok((resolved, place));
    };
    let mut cfg = r.meta.config.clone();
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    }
    if let Some(t) = args.threads {
        cfg.threads = t;
    }
    cfg.validate()?;
    if r.state.epoch >= cfg.epochs {
        bail!(
            "{}: all {} epochs are done; pass --epochs N (more than {}) to train further",
            r.run.path.display(),
            cfg.epochs,
            r.state.epoch
        );
    }
    Ok((cfg, place))
}

/// Where the control socket will live, known before minutes of loading: without a safe place the run
/// trains with steering off, and says so now.
fn steering_available() -> bool {
    match crate::run::socket::socket_dir() {
        Ok(_) => true,
        Err(e) => {
            output::err(&format!("warning: {e}: training goes on without attach and ctl"));
            false
        }
    }
}

/// The images a run trains on, where they came from, and their fingerprint.
struct Loaded {
    set: crate::data::ImageSet,
    src: prepare::DataSource,
    /// The data folder's canonical path.
    root: std::path::PathBuf,
    fingerprint: String,
}

/// Load the data while listening for signals (SIGINT or SIGTERM end the command; a hang-up is
/// remembered); a resumed run must find the very images it trained on.
async fn load_data(
    args: &TrainArgs,
    place: &crate::cli::RunPlace,
    cfg: &TrainConfig,
    resuming: Option<&Resuming>,
    listener: &mut signals::Listener,
) -> Result<Loaded> {
    let src = match resuming {
        Some(r) => prepare::run_source(&r.meta, place.data.as_deref())?,
        None => prepare::resolve_source(place.data.as_deref(), args.synthetic)?,
    };
    if src.synthetic && resuming.is_none() {
        output::err(prepare::GET_REAL_DATA);
    }
    let (set, _report) = {
        let (src, cfg) = (src.clone(), cfg.clone());
        listener.during(move || prepare::load(&src, &cfg, false)).await??
    };
    if listener.hung_up && args.stop_on_hangup {
        return Err(signals::StoppedWhileLoading("SIGHUP").into());
    }
    let root = std::fs::canonicalize(&src.root).unwrap_or(src.root.clone());
    let fingerprint = set.fingerprint(&src.root);
    if let Some(r) = resuming
        && r.state.data_fingerprint != fingerprint
    {
        bail!(
            "{}: the data in {} is not what the run trained on (fingerprint {} now, {} then): a resume needs the same images",
            r.run.path.display(),
            src.root.display(),
            fingerprint,
            r.state.data_fingerprint
        );
    }
    Ok(Loaded { set, src, root, fingerprint })
}

/// The split: a resumed run keeps the one it recorded (the fingerprint says the images are the same),
/// so a change in how splits are made never moves an image across it; a new run makes one and says so.
fn choose_split(data: &Loaded, cfg: &TrainConfig, resuming: Option<&Resuming>) -> Result<crate::data::Split> {
    let recorded = resuming
        .and_then(|r| crate::data::record::SplitRecord::read(&r.run.split_record()).ok())
        .map(|rec| rec.to_split(&data.set, &data.src.root));
    let split = match recorded {
        Some(split) => split,
        None => prepare::split(&data.set, cfg)?,
    };
    if resuming.is_none() {
        output::err(&prepare::split_summary(&split, cfg, data.set.has_test_folder()));
    }
    if split.train.is_empty() || split.val.is_empty() {
        bail!(
            "{}: too few images to split ({} train, {} val); add images or lower --val-fraction",
            data.src.root.display(),
            split.train.len(),
            split.val.len()
        );
    }
    Ok(split)
}

/// `run.json` and `config.toml` (what `eval`, `predict` and `--resume` rebuild from), and a new run's
/// `split.json`.
fn write_run_files(run: &RunDir, cfg: &TrainConfig, data: &Loaded, split: &crate::data::Split, resuming: Option<&Resuming>) -> Result<()> {
    let meta = RunMeta {
        config: cfg.clone(),
        classes: data.set.classes.clone(),
        data_root: data.root.display().to_string(),
        synthetic: data.src.synthetic,
        created_unix: resuming.map(|r| r.meta.created_unix).unwrap_or_else(now_unix),
        data_fingerprint: Some(data.fingerprint.clone()),
    };
    run.write_meta(&meta).with_context(|| format!("{}: cannot write run metadata", run.path.display()))?;
    if resuming.is_none() {
        crate::data::record::SplitRecord::new(&data.set, &data.src.root, split, &data.fingerprint)
            .write(&run.split_record())
            .with_context(|| format!("{}: cannot write the split record", run.split_record().display()))?;
    }
    Ok(())
}

/// Follow the run to its end in the dashboard (with a theme) or as plain lines, and wait for the
/// trainer: the final view, and whether the dashboard handed the run over to a background process.
async fn follow(
    handle: train::TrainerHandle,
    theme: Option<crate::tui::theme::Theme>,
    hangup: tokio::sync::watch::Receiver<bool>,
    run: &RunDir,
) -> Result<(RunView, bool)> {
    let commands = handle.commands.clone();
    let Some(theme) = theme else {
        let mut view = RunView::default();
        headless::follow(handle.events, hangup, &mut view, false).await;
        drop(commands);
        let _ = handle.thread.join();
        return Ok((view, false));
    };
    let mut session = crate::tui::Session::local(handle.events, commands.clone(), hangup.clone());
    session.explain = Some(crate::explain::spawn(run.path.clone()));
    let (view, handed_over) = match crate::tui::dashboard(session, theme).await {
        Ok(crate::tui::Ending::Over(view)) => (view, false),
        Ok(crate::tui::Ending::HandOver(events, mut view)) => {
            output::out("handing the run over to a background process…");
            let _ = commands.send(TrainCommand::HandOver);
            headless::follow(events, hangup, &mut view, true).await;
            (view, true)
        }
        Ok(crate::tui::Ending::Continue(events, mut view)) => {
            headless::follow(events, hangup, &mut view, false).await;
            (view, false)
        }
        Err(e) => {
            // The screen failed, not the training: stop it cleanly (weights saved).
            let _ = commands.send(TrainCommand::StopNow);
            drop(commands);
            let _ = handle.thread.join();
            return Err(e);
        }
    };
    drop(commands);
    let _ = handle.thread.join();
    Ok((view, handed_over))
}
