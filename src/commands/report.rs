//! `tumorscope report RUN`: (re)draw the run's figures and report.md into `RUN/report/`.

use crate::cli::ReportArgs;
use crate::run::dir::RunDir;
use crate::run::output;
use anyhow::Result;

pub fn run(a: ReportArgs) -> Result<()> {
    let run = RunDir::open(&a.run).map_err(anyhow::Error::msg)?;
    let w = crate::report::write(&run).map_err(anyhow::Error::msg)?;
    for s in &w.skipped {
        output::err(&format!("note: not drawn: {s}"));
    }
    output::out(&format!("report: {}", w.markdown.display()));
    for f in &w.figures {
        output::out(&format!("  {}", w.dir.join(f).display()));
    }
    Ok(())
}
