use clap::Parser;
use tumorscope::cli::{Cli, Command};
use tumorscope::commands;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Train(a) => commands::train::run(a).await,
            Command::Eval(a) => commands::eval::run(a),
            Command::Predict(a) => commands::predict::run(a),
            Command::Watch(a) => tumorscope::tui::watch(a).await,
            Command::Bench(a) => commands::bench::run(a),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the outermost context and its cause.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}
