//! Process settings that libtorch's runtime reads only at start-up, so a long job re-executes itself
//! once with them in its environment (the user's own values always win; `TUMORSCOPE_NO_TUNING=1`
//! turns this off):
//!
//! - `GLIBC_TUNABLES` malloc settings: keep freed memory (no trim, a 256 MiB top pad, the largest
//!   mmap threshold) so the activation buffers of every step are not returned to the kernel and
//!   faulted in again. Measured on 2 cores: the train step 55–57 → 61–64 img/s, system time of a
//!   bench 2.7 s → 1.1 s.
//! - `OMP_WAIT_POLICY=PASSIVE` when the machine is already busy at start (1-minute load ≥ 0.75):
//!   OpenMP threads then sleep at barriers instead of spinning for a descheduled sibling. Measured
//!   with one competing busy process: 18 → 31–33 img/s. On an idle machine spinning is a little
//!   faster, so the policy is chosen from the load.

/// Marks a process that already carries the settings.
const TUNED: &str = "TUMORSCOPE_TUNED";

/// The malloc tunables applied when the user set none.
pub const MALLOC_TUNABLES: &str =
    "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295:glibc.malloc.top_pad=268435456";

/// The 1-minute load average.
fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// The settings to add to this process's environment (empty: none needed).
pub fn settings(env: impl Fn(&str) -> Option<String>, load: Option<f64>) -> Vec<(&'static str, String)> {
    if env(TUNED).is_some() || env("TUMORSCOPE_NO_TUNING").is_some_and(|v| v != "0") {
        return vec![];
    }
    let mut v = vec![];
    if env("GLIBC_TUNABLES").is_none() {
        v.push(("GLIBC_TUNABLES", MALLOC_TUNABLES.to_string()));
    }
    if env("OMP_WAIT_POLICY").is_none() && load.is_some_and(|l| l >= 0.75) {
        v.push(("OMP_WAIT_POLICY", "PASSIVE".to_string()));
    }
    v
}

/// Re-execute this process with the settings, if it lacks them; returns only when it did not (the
/// settings were there already, or exec failed: then the job runs untuned).
pub fn reexec_if_needed() {
    use std::os::unix::process::CommandExt;
    let add = settings(|k| std::env::var(k).ok(), load1());
    if add.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(TUNED, "1");
    if let Some(a0) = std::env::args_os().next() {
        cmd.arg0(a0);
    }
    for (k, v) in add {
        cmd.env(k, v);
    }
    let _err = cmd.exec(); // returns only on failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_respect_the_user_and_the_load() {
        let none = |_: &str| None;
        assert_eq!(settings(none, Some(0.1)), vec![("GLIBC_TUNABLES", MALLOC_TUNABLES.to_string())]);
        assert_eq!(settings(none, Some(1.2)).len(), 2, "busy: passive waits too");
        let user = |k: &str| (k == "GLIBC_TUNABLES" || k == "OMP_WAIT_POLICY").then(|| "mine".to_string());
        assert!(settings(user, Some(3.0)).is_empty(), "the user's values win");
        let tuned = |k: &str| (k == TUNED).then(|| "1".to_string());
        assert!(settings(tuned, Some(3.0)).is_empty(), "never twice");
        let off = |k: &str| (k == "TUMORSCOPE_NO_TUNING").then(|| "1".to_string());
        assert!(settings(off, Some(3.0)).is_empty());
    }
}
