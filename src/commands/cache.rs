//! `tumorscope cache info|clean`: the dataset cache holds patients' pixels; show it and free it.

use crate::cli::{CacheAction, CacheArgs};
use crate::data::cache;
use crate::run::output;
use anyhow::{Context, Result};

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

pub fn run(a: CacheArgs) -> Result<()> {
    match a.action {
        CacheAction::Info => {
            let u = cache::usage();
            output::out(&format!("dataset cache: {} ({} data set(s), {})", u.dir.display(), u.files, mib(u.bytes)));
            output::out(&format!("weights: {}", crate::model::weights::lite0_weights_path().display()));
            output::out("set TUMORSCOPE_CACHE (or XDG_CACHE_HOME) to move it; `tumorscope cache clean` frees it");
        }
        CacheAction::Clean => {
            let u = cache::clean().with_context(|| format!("{}: cannot clean", cache::datasets_dir().display()))?;
            output::out(&format!("removed {} data set cache(s), {} freed, from {}", u.files, mib(u.bytes), u.dir.display()));
        }
    }
    Ok(())
}
