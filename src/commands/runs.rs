//! `tumorscope runs`: the runs under a folder, newest first, with real liveness.

use crate::cli::RunsArgs;
use crate::run::output;
use crate::run::status::{summarize, table};
use anyhow::Result;

pub async fn run(a: RunsArgs) -> Result<()> {
    if !a.runs_dir.is_dir() {
        anyhow::bail!("{}: no such runs folder (train writes runs there; --runs-dir chooses another)", a.runs_dir.display());
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
