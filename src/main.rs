use clap::Parser;
use tumorscope::cli::{Cli, Command};
use tumorscope::commands;

/// Runs before any shared library initialises (libtorch's static set-up takes a fraction of a
/// second): SIGHUP, SIGINT and SIGTERM are held back from the first instruction, so `train` can
/// answer one that comes before it listens. Every other command lets them through once its
/// arguments are parsed.
extern "C" fn hold_signals_at_start() {
    commands::signals::hold();
}

#[allow(unsafe_code)] // a plain function pointer placed where the dynamic loader runs it first
#[used]
#[unsafe(link_section = ".preinit_array")]
static HOLD_SIGNALS: extern "C" fn() = hold_signals_at_start;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Everything a command writes may hold patients' pixels: private unless a run says otherwise.
    tumorscope::run::privacy::apply(false);
    if !matches!(cli.command, Command::Train(_)) {
        commands::signals::release();
    }
    // Long libtorch jobs restart once with the malloc and OpenMP settings read only at start-up
    // (a predict stays one process: it must start fast).
    if matches!(cli.command, Command::Train(_) | Command::Eval(_) | Command::Bench(_)) {
        tumorscope::tuning::reexec_if_needed();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tumorscope::run::output::err(&format!("error: cannot start the async runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Train(a) => commands::train::run(a).await,
            Command::Eval(a) => commands::eval::run(a).map(|_| 0),
            Command::Predict(a) if a.browse => commands::browse::run(a).await.map(|_| 0),
            Command::Predict(a) => commands::predict::run(a).map(|_| 0),
            Command::Watch(a) => commands::attach::watch(a).await.map(|_| 0),
            Command::Attach(a) => commands::attach::attach(a).await.map(|_| 0),
            Command::Ctl(a) => commands::ctl::run(a).map(|_| 0),
            Command::Runs(a) => commands::runs::run(a).await.map(|_| 0),
            Command::Audit(a) => commands::audit::run(a),
            Command::Report(a) => commands::report::run(a).map(|_| 0),
            Command::Cache(a) => commands::cache::run(a).map(|_| 0),
            Command::Bench(a) => commands::bench::run(a).map(|_| 0),
            Command::Experiment(a) => commands::experiment::run(a),
            Command::Ensemble(a) => commands::ensemble::run(a).map(|_| 0),
        }
    });
    // Leave without waiting for the runtime's blocked readers (a terminal that is gone, a socket).
    rt.shutdown_background();
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            // One line: the outermost context and its cause.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            tumorscope::run::output::err(&format!("error: {}", chain.join(": ")));
            std::process::ExitCode::FAILURE
        }
    }
}
