//! Compute threads that follow the machine's load during a run. A user's machine is never idle: when
//! another process starts to keep a core busy, libtorch's threads would wait at every barrier for a
//! sibling the kernel has descheduled (2 threads beside one busy process: 18 img/s, against 55 alone).
//! The process tuning picks the OpenMP wait policy once, at start; this watches on. Every few seconds,
//! between batches, it reads how much CPU other processes used (all busy time in `/proc/stat` less
//! this process's own), and gives up one thread per core they keep busy, at least one left. When they
//! stop, the threads come back. A change needs two samples in a row, so a short burst moves nothing.
//!
//! Only where the thread count is automatic (`threads = 0`): a count the user set is kept, and so is
//! its bit-for-bit repeatability (libtorch's sums may group differently with another thread count).
//! Not where OpenMP's threads wait passively (the process tuning chose that because the machine was
//! busy at start, or the user did): they then sleep rather than spin, and giving one up gained
//! nothing. Measured on these 2 cores, a short real run (article recipe, 600 images) with one busy
//! process beside it:
//! - the busy process starting 8 s into the run (spinning waits): **17.8, 19.6 img/s** with 2 threads,
//!   **30.9, 34.4** once the watch gave one up;
//! - the busy process there from the start (passive waits): 31.7, 32.1 img/s with 2 threads, 27.4,
//!   31.7 with 1.

use std::time::{Duration, Instant};

/// Whether to watch: an automatic thread count (`threads = 0`) on a CPU, OpenMP's waits not passive,
/// the tuning not switched off (`TUMORSCOPE_NO_TUNING`). `env` reads the environment.
pub fn wanted(threads: usize, cuda: bool, env: impl Fn(&str) -> Option<String>) -> bool {
    let passive = env("OMP_WAIT_POLICY").is_some_and(|p| p.eq_ignore_ascii_case("passive"));
    let off = env("TUMORSCOPE_NO_TUNING").is_some_and(|v| v != "0");
    threads == 0 && !cuda && !passive && !off
}

/// Time between samples.
pub const PERIOD: Duration = Duration::from_secs(3);

/// CPU time counters, in clock ticks: the whole machine's busy and total, this process's own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub busy: u64,
    pub total: u64,
    pub own: u64,
}

/// This process's user + system ticks from `/proc/self/stat` (fields 14 and 15; the command name in
/// parentheses may hold spaces, so fields are counted after its closing parenthesis).
pub fn parse_self_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn read_sample() -> Option<Sample> {
    let (busy, total) = crate::tuning::cpu_times()?;
    let own = parse_self_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(Sample { busy, total, own })
}

/// Cores that other processes kept busy between two samples (`cores` in the machine).
pub fn busy_elsewhere(a: Sample, b: Sample, cores: usize) -> Option<f64> {
    let total = b.total.checked_sub(a.total).filter(|&t| t > 0)?;
    let others = b.busy.saturating_sub(a.busy).saturating_sub(b.own.saturating_sub(a.own));
    Some(others as f64 / total as f64 * cores as f64)
}

/// The thread count for `max` threads when other processes keep `elsewhere` cores busy: one fewer
/// per core they use (half a core counts as one), at least one.
pub fn target(max: usize, elsewhere: f64) -> usize {
    let give_up = (elsewhere + 0.5).floor().max(0.0) as usize;
    max.saturating_sub(give_up).max(1)
}

/// A change of thread count, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub from: usize,
    pub to: usize,
    pub elsewhere: f64,
}

/// The watcher: `tick` between batches.
#[derive(Debug)]
pub struct LoadWatch {
    max: usize,
    cores: usize,
    current: usize,
    last: Option<(Instant, Sample)>,
    /// The target the previous sample asked for, when it differed from `current`.
    pending: Option<usize>,
}

impl LoadWatch {
    /// Watch a run that uses `max` threads on a machine of `cores`.
    pub fn new(max: usize, cores: usize) -> Self {
        LoadWatch { max: max.max(1), cores: cores.max(1), current: max.max(1), last: None, pending: None }
    }

    pub fn current(&self) -> usize {
        self.current
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Feed one sample (taken at `now`); returns the change to make, if any.
    pub fn observe(&mut self, now: Instant, s: Sample) -> Option<Change> {
        let (_, prev) = self.last.replace((now, s))?;
        let elsewhere = busy_elsewhere(prev, s, self.cores)?;
        let want = target(self.max, elsewhere);
        if want == self.current {
            self.pending = None;
            return None;
        }
        if self.pending != Some(want) {
            self.pending = Some(want);
            return None;
        }
        self.pending = None;
        let change = Change { from: self.current, to: want, elsewhere };
        self.current = want;
        Some(change)
    }

    /// Sample if `PERIOD` has passed since the last one.
    pub fn tick(&mut self) -> Option<Change> {
        let now = Instant::now();
        if self.last.is_some_and(|(t, _)| now.duration_since(t) < PERIOD) {
            return None;
        }
        self.observe(now, read_sample()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_only_automatic_cpu_threads_that_spin() {
        let none = |_: &str| None;
        assert!(wanted(0, false, none));
        assert!(!wanted(2, false, none), "a count the user set stays");
        assert!(!wanted(0, true, none), "not on CUDA");
        let passive = |k: &str| (k == "OMP_WAIT_POLICY").then(|| "passive".to_string());
        assert!(!wanted(0, false, passive));
        let active = |k: &str| (k == "OMP_WAIT_POLICY").then(|| "ACTIVE".to_string());
        assert!(wanted(0, false, active));
        assert!(!wanted(0, false, |k: &str| (k == "TUMORSCOPE_NO_TUNING").then(|| "1".to_string())));
        assert!(wanted(0, false, |k: &str| (k == "TUMORSCOPE_NO_TUNING").then(|| "0".to_string())));
    }

    #[test]
    fn parses_the_kernels_counters() {
        let stat = "cpu  100 5 50 800 20 1 2 0 0 0\ncpu0 50 2 25 400 10 0 1 0 0 0\n";
        assert_eq!(crate::tuning::parse_proc_stat(stat), Some((158, 978)));
        assert_eq!(crate::tuning::parse_proc_stat("intr 1 2 3"), None);
        // A command name with spaces and parentheses.
        let own = "4242 (ts (x) y) R 1 2 3 4 5 6 7 8 9 10 300 40 0 0 20 0 3 0 100 1000 200";
        assert_eq!(parse_self_stat(own), Some(340));
        assert_eq!(parse_self_stat("4242 (ts) R 1 2"), None);
    }

    #[test]
    fn counts_only_other_processes() {
        let a = Sample { busy: 1000, total: 10_000, own: 500 };
        // 400 ticks pass over 2 cores: 300 of them busy, 100 ours, so others used 200: one core.
        let b = Sample { busy: 1300, total: 10_400, own: 600 };
        assert_eq!(busy_elsewhere(a, b, 2), Some(1.0));
        assert_eq!(busy_elsewhere(a, a, 2), None, "no time passed");
    }

    #[test]
    fn gives_up_one_thread_per_busy_core_and_keeps_one() {
        assert_eq!(target(2, 0.0), 2);
        assert_eq!(target(2, 0.4), 2);
        assert_eq!(target(2, 0.6), 1);
        assert_eq!(target(2, 3.0), 1);
        assert_eq!(target(16, 4.2), 12);
    }

    #[test]
    fn a_change_needs_two_samples_in_a_row() {
        let mut w = LoadWatch::new(2, 2);
        let t = Instant::now();
        let at = |i: u64, busy: u64, own: u64| (t + PERIOD * i as u32, Sample { busy, total: i * 600, own });
        let mut feed = |i: u64, busy: u64, own: u64| {
            let (now, s) = at(i, busy, own);
            w.observe(now, s)
        };
        // Each period: 600 ticks over 2 cores. Alone: we use all of it.
        assert_eq!(feed(0, 0, 0), None);
        assert_eq!(feed(1, 600, 600), None);
        // Another process takes a core (300 ticks): asked once, nothing moves yet.
        assert_eq!(feed(2, 1200, 900), None);
        // A burst that ends: back to alone, nothing moves.
        assert_eq!(feed(3, 1800, 1500), None);
        assert_eq!(feed(4, 2400, 1800), None);
        let c = feed(5, 3000, 2100).expect("busy twice in a row");
        assert_eq!((c.from, c.to, c.elsewhere), (2, 1, 1.0));
        // The other process ends: the thread comes back after two samples.
        assert_eq!(feed(6, 3300, 2400), None);
        let c = feed(7, 3600, 2700).expect("free twice in a row");
        assert_eq!((c.from, c.to), (1, 2));
    }
}
