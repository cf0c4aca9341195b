//! `tumorscope audit DATA`: the summary table, or every group as JSON; `--fail-on-leak` for CI.

use crate::cli::AuditArgs;
use crate::run::output;
use anyhow::Result;

/// Exit code when `--fail-on-leak` finds a test image that copies a training image.
pub const LEAK_EXIT: u8 = 3;

pub fn run(a: AuditArgs) -> Result<u8> {
    let t0 = std::time::Instant::now();
    let audit = crate::data::audit::audit(&a.data, a.threshold, &a.reading())?;
    if a.json {
        output::out(&serde_json::to_string_pretty(&audit)?);
    } else {
        output::out(&audit.summary());
        output::err(&format!("audited in {:.1}s", t0.elapsed().as_secs_f64()));
    }
    if a.fail_on_leak && audit.leaks() > 0 {
        output::err(&format!("{}: {} leak group(s): test images that duplicate training images", a.data.display(), audit.leaks()));
        return Ok(LEAK_EXIT);
    }
    Ok(0)
}
