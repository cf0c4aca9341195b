//! `tumorscope runs`: the runs under a folder, newest first, with real liveness.

use crate::cli::RunsArgs;
use crate::run::output;
use crate::run::status::{summarize, table};
use anyhow::Result;
use std::io::IsTerminal;

pub async fn run(a: RunsArgs) -> Result<()> {
    if !a.runs_dir.is_dir() {
        anyhow::bail!("{}: no such runs folder (train writes runs there; --runs-dir chooses another)", a.runs_dir.display());
    }
    if a.tui {
        let theme = crate::tui::theme::Theme::load(&a.theme)?;
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            anyhow::bail!("runs --tui opens the dashboard and needs a terminal (plain `tumorscope runs` prints a table)");
        }
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let session = crate::tui::Session {
            records: rx,
            commands: crate::tui::CommandSink::ReadOnly,
            hangup: None,
            remote: None,
            note: None,
            runs_dir: Some(a.runs_dir.clone()),
            explain: None,
            view: None,
        };
        crate::tui::dashboard(session, theme).await?;
        return Ok(());
    }
    let runs = crate::run::dir::list_runs(&a.runs_dir).map_err(|e| anyhow::anyhow!("{}: cannot list runs: {e}", a.runs_dir.display()))?;
    let summaries: Vec<_> = runs.iter().map(summarize).collect();
    if a.json {
        output::out(&serde_json::to_string_pretty(&summaries)?);
    } else if summaries.is_empty() {
        output::out(&format!("no runs under {}", a.runs_dir.display()));
    } else {
        output::out(&table(&summaries));
    }
    Ok(())
}
