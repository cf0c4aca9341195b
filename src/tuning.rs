//! Process settings that libtorch's runtime reads only at start-up, so a long job re-executes itself
//! once with them in its environment (the user's own values always win; `TUMORSCOPE_NO_TUNING=1`
//! turns this off):
//!
//! - `GLIBC_TUNABLES` malloc settings: keep freed memory (no trim, a 256 MiB top pad, the largest
//!   mmap threshold) so the activation buffers of every step are not returned to the kernel and
//!   faulted in again. Measured on 2 cores: the train step 55–57 → 61–64 img/s, system time of a
//!   bench 2.7 s → 1.1 s. And one malloc arena: the trainer runs on its own thread, whose arena
//!   (64 MiB sub-heaps, trimmed as they empty) kept faulting the step's buffers in again; with the
//!   main arena for every thread a real run went 44.6–44.9 → 49.1–56.6 img/s.
//! - `OMP_WAIT_POLICY=PASSIVE` when other processes keep at least half a core busy at start (sampled
//!   from `/proc/stat` over 0.2 s): OpenMP threads then sleep at barriers instead of spinning for a
//!   descheduled sibling. Measured with one competing busy process: 18 → 31–33 img/s. On an idle
//!   machine spinning is faster, so the policy follows what the machine is doing now (the load
//!   average would still count a job that just ended).

/// Marks a process that already carries the settings.
const TUNED: &str = "TUMORSCOPE_TUNED";

/// The malloc tunables applied when the user set none.
pub const MALLOC_TUNABLES: &str =
    "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295:glibc.malloc.top_pad=268435456:glibc.malloc.arena_max=1";

/// (busy, total) ticks of all CPUs from `/proc/stat`'s first line (idle and iowait are not busy).
pub fn parse_proc_stat(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}

/// (busy, total) jiffies of all CPUs so far.
pub fn cpu_times() -> Option<(u64, u64)> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// How many cores other processes keep busy right now (this process sleeps while it samples).
fn busy_cores() -> Option<f64> {
    let (b0, t0) = cpu_times()?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (b1, t1) = cpu_times()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    (t1 > t0).then(|| (b1 - b0) as f64 / (t1 - t0) as f64 * cores)
}

/// The settings to add to this process's environment (empty: none needed).
/// `busy`: cores other processes keep busy (None: unknown).
pub fn settings(env: impl Fn(&str) -> Option<String>, busy: Option<f64>) -> Vec<(&'static str, String)> {
    if env(TUNED).is_some() || env("TUMORSCOPE_NO_TUNING").is_some_and(|v| v != "0") {
        return vec![];
    }
    let mut v = vec![];
    if env("GLIBC_TUNABLES").is_none() {
        v.push(("GLIBC_TUNABLES", MALLOC_TUNABLES.to_string()));
    }
    if env("OMP_WAIT_POLICY").is_none() && busy.is_some_and(|b| b >= 0.5) {
        v.push(("OMP_WAIT_POLICY", "PASSIVE".to_string()));
    }
    v
}

/// Re-execute this process with the settings, if it lacks them; returns only when it did not (the
/// settings were there already, or exec failed: then the job runs untuned).
pub fn reexec_if_needed() {
    use std::os::unix::process::CommandExt;
    let env = |k: &str| std::env::var(k).ok();
    // Sample the machine only when the answer matters.
    let wanted = env("OMP_WAIT_POLICY").is_none() && env(TUNED).is_none() && env("TUMORSCOPE_NO_TUNING").is_none_or(|v| v == "0");
    let busy = if wanted { busy_cores() } else { None };
    let add = settings(env, busy);
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
    // The signal mask and any signal pending under it survive the exec (std resets neither): a
    // hang-up that `train` held back meanwhile is answered by the new image.
    let _err = cmd.exec(); // returns only on failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_respect_the_user_and_the_load() {
        let none = |_: &str| None;
        assert_eq!(settings(none, Some(0.1)), vec![("GLIBC_TUNABLES", MALLOC_TUNABLES.to_string())]);
        assert_eq!(settings(none, Some(1.0)).len(), 2, "one busy core: passive waits too");
        let user = |k: &str| (k == "GLIBC_TUNABLES" || k == "OMP_WAIT_POLICY").then(|| "mine".to_string());
        assert!(settings(user, Some(3.0)).is_empty(), "the user's values win");
        let tuned = |k: &str| (k == TUNED).then(|| "1".to_string());
        assert!(settings(tuned, Some(3.0)).is_empty(), "never twice");
        let off = |k: &str| (k == "TUMORSCOPE_NO_TUNING").then(|| "1".to_string());
        assert!(settings(off, Some(3.0)).is_empty());
    }
}
