//! A run folder: `run.json` (config, classes, data), `config.toml`, `events.jsonl` (every event,
//! numbered and timed), `process.json` (who trains it, where its socket is), checkpoints, the resume
//! state and the test report.

use crate::config::TrainConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `eval`, `predict` and `--resume` need to rebuild a run's network, data and split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub config: TrainConfig,
    pub classes: Vec<String>,
    pub data_root: String,
    pub synthetic: bool,
    pub created_unix: u64,
    /// Hash of every image's relative path, content and label (see `ImageSet::fingerprint`).
    #[serde(default)]
    pub data_fingerprint: Option<String>,
}

/// The training process of a run, as it recorded itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub host: String,
    /// The control socket, once it is served.
    pub socket: Option<String>,
    pub started_unix: f64,
}

/// Whether a run's training process is there.
#[derive(Debug, Clone, PartialEq)]
pub enum Liveness {
    /// The process runs on this host.
    Alive(ProcessInfo),
    /// The recorded process is gone.
    Gone(ProcessInfo),
    /// Recorded on another host: cannot tell from here.
    Elsewhere(ProcessInfo),
    /// No process ever recorded itself (an old run, or one that never started).
    Unknown,
}

/// Why a run folder cannot be used. Each names the folder or file.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{0}: no such run folder")]
    Missing(String),
    #[error("{0}: not a folder")]
    NotAFolder(String),
    #[error("{0}: not a tumorscope run folder (no run.json or events.jsonl)")]
    NotARun(String),
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: invalid run metadata: {source}")]
    Meta { path: String, source: serde_json::Error },
}

/// A run's folder and its files.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

/// `YYYYmmdd-HHMMSS` in UTC, without a date crate.
pub fn utc_stamp(unix: u64) -> String {
    let days = (unix / 86400) as i64;
    let secs = unix % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().to_string()).unwrap_or_else(|_| "localhost".into())
}

/// Write a file whole or not at all, and durably: a temp file of a name no other writer uses (this
/// process's id and a counter), flushed to disk, renamed over `path`, then the folder flushed so the
/// rename survives a power loss. The temp file never stays behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}-{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return r;
    }
    sync_folder(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")));
    Ok(())
}

/// Flush a folder's entries (a rename into it) to disk; best effort: not every filesystem allows it.
fn sync_folder(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Whether process `pid` runs on this host (not a zombie). Says nothing of what the process is: a
/// run's proof of life is its lock (`RunDir::lock_held`), not its pid.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if pid == std::process::id() {
        return true;
    }
    if raw <= 0 {
        return false;
    }
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).unwrap_or("");
        return state != "Z" && state != "X";
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    }
}

/// The lock a run's trainer holds for as long as it lives (`flock` on `RUN/trainer.lock`): the one
/// proof that a run is alive, whatever the binary is called, and what keeps two trainers out of one
/// folder. The kernel releases it when the process ends, however it ends.
pub struct TrainerLock {
    /// Open on the lock file, locked. Closing the last descriptor of it (this one, and a child's copy)
    /// releases the lock; nothing ever unlocks it explicitly, so a copy handed to a child keeps it.
    _file: std::fs::File,
}

/// `flock` on an open file (the call itself; nix's `Flock` wrapper unlocks when dropped, which would
/// release a lock handed to a child too).
#[allow(deprecated)]
fn flock(file: &std::fs::File, arg: nix::fcntl::FlockArg) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    nix::fcntl::flock(file.as_raw_fd(), arg)
}

/// Why a run's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{run}: the run is still training (pid {pid}): use `tumorscope attach {run}`")]
    Held { run: String, pid: String },
    #[error("{path}: cannot lock: {source}")]
    Io { path: String, source: std::io::Error },
}

impl TrainerLock {
    /// A copy of the lock to give a child process as its standard input: the child holds the run from
    /// its first instruction, and keeps holding it after this process ends.
    pub fn for_child(&self) -> std::io::Result<std::fs::File> {
        self._file.try_clone()
    }
}

impl RunDir {
    /// Create `parent/<stamp>-<model>` exclusively: two runs started in the same second (even by two
    /// processes) get two folders.
    pub fn create(parent: &Path, model: &str) -> std::io::Result<RunDir> {
        std::fs::create_dir_all(parent)?;
        let base = format!("{}-{model}", utc_stamp(now_unix()));
        for k in 0..1000 {
            let name = if k == 0 { base.clone() } else { format!("{base}-{k}") };
            let p = parent.join(name);
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(RunDir { path: p }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("too many runs with the same timestamp"))
    }

    /// An existing run folder (one with `run.json` or `events.jsonl`).
    pub fn open(path: &Path) -> Result<RunDir, RunDirError> {
        let shown = || path.display().to_string();
        if !path.exists() {
            return Err(RunDirError::Missing(shown()));
        }
        if !path.is_dir() {
            return Err(RunDirError::NotAFolder(shown()));
        }
        let d = RunDir { path: path.to_path_buf() };
        if !d.meta_path().exists() && !d.events().exists() && !d.process_path().exists() {
            return Err(RunDirError::NotARun(shown()));
        }
        Ok(d)
    }

    pub fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| self.path.display().to_string())
    }

    pub fn events(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }
    pub fn best(&self) -> PathBuf {
        self.path.join("best.safetensors")
    }
    pub fn last(&self) -> PathBuf {
        self.path.join("last.safetensors")
    }
    pub fn meta_path(&self) -> PathBuf {
        self.path.join("run.json")
    }
    /// The file the trainer's lock is taken on.
    pub fn lock_path(&self) -> PathBuf {
        self.path.join("trainer.lock")
    }

    fn open_lock_file(&self) -> Result<std::fs::File, LockError> {
        let path = self.lock_path();
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LockError::Io { path: path.display().to_string(), source })
    }

    /// Take the run's trainer lock, or say who holds it. Taken before any data loads, so two
    /// trainers started together on one run cannot both train.
    pub fn lock(&self) -> Result<TrainerLock, LockError> {
        let file = self.open_lock_file()?;
        match flock(&file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(()) => Ok(TrainerLock { _file: file }),
            Err(nix::errno::Errno::EWOULDBLOCK) => Err(LockError::Held {
                run: self.path.display().to_string(),
                pid: self.read_process().map(|p| p.pid.to_string()).unwrap_or_else(|| "unknown".into()),
            }),
            Err(e) => Err(LockError::Io { path: self.lock_path().display().to_string(), source: e.into() }),
        }
    }

    /// The lock a detaching parent took for this process and handed it as standard input (checked to
    /// be this run's lock file); without one, the lock is taken as usual.
    pub fn adopt_lock(&self) -> Result<TrainerLock, LockError> {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let inherited = std::io::stdin().as_fd().try_clone_to_owned().ok().map(std::fs::File::from);
        if let Some(file) = inherited
            && let (Ok(a), Ok(b)) = (file.metadata(), std::fs::metadata(self.lock_path()))
            && (a.dev(), a.ino()) == (b.dev(), b.ino())
            && flock(&file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
        {
            return Ok(TrainerLock { _file: file });
        }
        self.lock()
    }

    /// Whether a trainer holds the run's lock now (this process's own lock counts).
    pub fn lock_held(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.lock_path()) else { return false };
        flock(&file, nix::fcntl::FlockArg::LockSharedNonblock) == Err(nix::errno::Errno::EWOULDBLOCK)
    }

    pub fn process_path(&self) -> PathBuf {
        self.path.join("process.json")
    }
    /// Where a detached or hung-up process writes its output.
    pub fn output_log(&self) -> PathBuf {
        self.path.join("output.log")
    }
    /// Every image's relative path, hash, label and split, as trained.
    pub fn split_record(&self) -> PathBuf {
        self.path.join("split.json")
    }
    pub fn resume_state(&self) -> PathBuf {
        self.path.join("resume.json")
    }
    pub fn resume_tensors(&self) -> PathBuf {
        self.path.join("resume.safetensors")
    }

    pub fn write_meta(&self, meta: &RunMeta) -> std::io::Result<()> {
        write_atomic(&self.meta_path(), serde_json::to_string_pretty(meta).map_err(std::io::Error::other)?.as_bytes())?;
        write_atomic(&self.path.join("config.toml"), meta.config.to_toml().as_bytes())
    }

    pub fn read_meta(&self) -> Result<RunMeta, RunDirError> {
        let p = self.meta_path();
        let text = std::fs::read_to_string(&p).map_err(|source| RunDirError::Read { path: p.display().to_string(), source })?;
        serde_json::from_str(&text).map_err(|source| RunDirError::Meta { path: p.display().to_string(), source })
    }

    /// The checkpoint to use: best if present, else last.
    pub fn checkpoint(&self) -> Option<PathBuf> {
        [self.best(), self.last()].into_iter().find(|p| p.exists())
    }

    pub fn write_process(&self, info: &ProcessInfo) -> std::io::Result<()> {
        write_atomic(&self.process_path(), serde_json::to_string_pretty(info).map_err(std::io::Error::other)?.as_bytes())
    }

    pub fn read_process(&self) -> Option<ProcessInfo> {
        serde_json::from_str(&std::fs::read_to_string(self.process_path()).ok()?).ok()
    }

    /// The run's training process is gone: recorded here and dead, or never recorded at all (a
    /// folder from before process.json). A run elsewhere cannot be judged from here.
    pub fn process_gone(&self) -> bool {
        matches!(self.liveness(), Liveness::Gone(_) | Liveness::Unknown)
    }

    /// Alive when a trainer holds the run's lock; gone when none does. A process recorded on another
    /// host whose lock is free here may still live there (a lock need not cross machines).
    pub fn liveness(&self) -> Liveness {
        let info = self.read_process();
        if self.lock_held() {
            let p = info.unwrap_or(ProcessInfo { pid: 0, host: hostname(), socket: None, started_unix: 0.0 });
            return if p.host != hostname() { Liveness::Elsewhere(p) } else { Liveness::Alive(p) };
        }
        match info {
            None => Liveness::Unknown,
            Some(p) if p.host != hostname() => Liveness::Elsewhere(p),
            Some(p) => Liveness::Gone(p),
        }
    }
}

/// The run folders under `runs_dir`, newest first (by name: names start with a UTC stamp).
pub fn list_runs(runs_dir: &Path) -> std::io::Result<Vec<RunDir>> {
    let mut v: Vec<RunDir> = std::fs::read_dir(runs_dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|p| RunDir::open(&p).ok())
        .collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.name()));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_is_calendar_correct() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(1_795_568_461), "20261125-010101");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
    }

    #[test]
    fn runs_in_the_same_second_get_their_own_folders() {
        let t = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|_| s.spawn(|| RunDir::create(t.path(), "m").unwrap().path)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut names: Vec<_> = dirs.iter().map(|d| d.file_name().unwrap().to_owned()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 8);
    }

    /// Whether `cond` holds within a few seconds. A process that another test thread forks holds copies
    /// of this process's descriptors until it execs: a lock closed here may stay held that long.
    fn soon(cond: impl Fn() -> bool) -> bool {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(10) {
            if cond() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    /// The lock is the proof of life: a recorded pid that runs (even this very process) is not
    /// enough, and whoever holds the lock is alive under any name.
    #[test]
    fn liveness_is_the_trainer_lock() {
        let t = tempfile::tempdir().unwrap();
        let d = RunDir::create(t.path(), "m").unwrap();
        assert_eq!(d.liveness(), Liveness::Unknown);
        let me = ProcessInfo { pid: std::process::id(), host: hostname(), socket: None, started_unix: 0.0 };
        d.write_process(&me).unwrap();
        assert_eq!(d.liveness(), Liveness::Gone(me.clone()), "a live pid without the lock is not a trainer");
        let lock = d.lock().unwrap();
        assert_eq!(d.liveness(), Liveness::Alive(me.clone()));
        let e = d.lock().err().unwrap().to_string();
        assert!(e.contains("still training") && e.contains(&me.pid.to_string()), "{e}");
        drop(lock);
        assert!(soon(|| d.liveness() == Liveness::Gone(me.clone())));
        // Held by another process, which is not called tumorscope at all (and forks nothing).
        let script =
            "import fcntl, sys, time\nf = open(sys.argv[1])\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n";
        let mut holder = std::process::Command::new("python3")
            .args(["-c", script, d.lock_path().to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "held");
        assert!(matches!(d.liveness(), Liveness::Alive(_)));
        assert!(d.lock().is_err(), "a second trainer is refused");
        holder.kill().unwrap();
        holder.wait().unwrap();
        assert!(soon(|| matches!(d.liveness(), Liveness::Gone(_))), "the kernel released it with the process");
        let elsewhere = ProcessInfo { host: "another-host".into(), ..me };
        d.write_process(&elsewhere).unwrap();
        assert!(matches!(d.liveness(), Liveness::Elsewhere(_)));
    }

    /// A lock handed to a child (as its standard input) stays held after the parent lets go.
    #[test]
    fn a_lock_handed_to_a_child_outlives_the_parents_copy() {
        let t = tempfile::tempdir().unwrap();
        let d = RunDir::create(t.path(), "m").unwrap();
        let lock = d.lock().unwrap();
        let stdin = lock.for_child().unwrap();
        let mut child = std::process::Command::new("sleep").arg("60").stdin(stdin).spawn().unwrap();
        drop(lock);
        // Still held a good while after the parent's copy closed.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(d.lock_held(), "the child holds it");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(soon(|| !d.lock_held()));
    }

    /// Writers side by side never tear each other's file: each has its own temp file, and the file
    /// is always one writer's whole bytes; no temp file stays.
    #[test]
    fn concurrent_atomic_writes_leave_one_whole_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("split.json");
        std::thread::scope(|s| {
            for k in 0..8u8 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(p, &vec![b'a' + k; 100_000]).unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 100_000);
        assert!(bytes.iter().all(|&b| b == bytes[0]), "one writer's bytes");
        let names: Vec<_> = std::fs::read_dir(t.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("split.json")], "no temp file stays");
    }

    #[test]
    fn open_names_what_is_wrong() {
        let t = tempfile::tempdir().unwrap();
        assert!(RunDir::open(&t.path().join("nope")).unwrap_err().to_string().contains("no such run folder"));
        assert!(RunDir::open(t.path()).unwrap_err().to_string().contains("not a tumorscope run folder"));
    }
}
