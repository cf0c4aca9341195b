//! `tumorscope report RUN`: (re)draw the run's figures and report.md into `RUN/report/`.

use crate::cli::ReportArgs;
use crate::run::dir::RunDir;
use crate::run::output;
use anyhow::Result;

pub fn run(a: ReportArgs) -> Result<()> {
    if let Some(exp) = super::experiment::as_experiment(&a.run) {
        let plan = exp.read_plan()?;
        let w = crate::report::experiment::write(&exp, &plan).map_err(anyhow::Error::msg)?;
        for s in &w.skipped {
            output::err(&format!("note: not drawn: {s}"));
        }
        output::out(&format!("report: {}", w.markdown.display()));
        for f in &w.figures {
            output::out(&format!("  {}", f.display()));
        }
        return Ok(());
    }
    let run = RunDir::open(&a.run).map_err(anyhow::Error::msg)?;
    crate::run::privacy::follow(&run.path);
    // With the network at hand, the misclassification figure shows where it looked.
    let checkpoint = match crate::explain::Checkpoint::open(&run.path) {
        Ok(c) => Some(c),
        Err(e) => {
            output::err(&format!("note: {e}: the misclassification figure is drawn without Grad-CAM"));
            None
        }
    };
    let cam = |p: &std::path::Path| {
        let req = crate::run::explain::ExplainRequest { path: p.to_path_buf(), cam_class: None };
        checkpoint.as_ref().and_then(|c| c.explain(&req).ok()).map(|e| e.cam)
    };
    let w = crate::report::write_with(&run, None, Some(&cam)).map_err(anyhow::Error::msg)?;
    for s in &w.skipped {
        output::err(&format!("note: not drawn: {s}"));
    }
    output::out(&format!("report: {}", w.markdown.display()));
    for f in &w.figures {
        output::out(&format!("  {}", w.dir.join(f).display()));
    }
    Ok(())
}
