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

/// Write a file whole or not at all (temp file, then rename); the temp file never stays behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let r = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Whether process `pid` runs here and is a tumorscope (not a reused pid, not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if pid == std::process::id() {
        return true;
    }
    if raw <= 0 {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if Path::new("/proc/self").exists() {
        let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else { return false };
        // The state letter follows the parenthesised command name.
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).unwrap_or("");
        if state == "Z" || state == "X" {
            return false;
        }
        let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
        return String::from_utf8_lossy(&cmdline).contains("tumorscope");
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
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
    pub fn open(path: &Path) -> Result<RunDir, String> {
        if !path.exists() {
            return Err(format!("{}: no such run folder", path.display()));
        }
        if !path.is_dir() {
            return Err(format!("{}: not a folder", path.display()));
        }
        let d = RunDir { path: path.to_path_buf() };
        if !d.meta_path().exists() && !d.events().exists() && !d.process_path().exists() {
            return Err(format!("{}: not a tumorscope run folder (no run.json or events.jsonl)", path.display()));
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

    pub fn read_meta(&self) -> Result<RunMeta, String> {
        let p = self.meta_path();
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: invalid run metadata: {e}", p.display()))
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

    pub fn liveness(&self) -> Liveness {
        match self.read_process() {
            None => Liveness::Unknown,
            Some(p) if p.host != hostname() => Liveness::Elsewhere(p),
            Some(p) if pid_alive(p.pid) => Liveness::Alive(p),
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

    #[test]
    fn liveness_sees_this_process_and_a_dead_one() {
        let t = tempfile::tempdir().unwrap();
        let d = RunDir::create(t.path(), "m").unwrap();
        assert_eq!(d.liveness(), Liveness::Unknown);
        let me = ProcessInfo { pid: std::process::id(), host: hostname(), socket: None, started_unix: 0.0 };
        d.write_process(&me).unwrap();
        // Test binaries are named after the crate (tumorscope-<hash>), like the real binary.
        assert_eq!(d.liveness(), Liveness::Alive(me.clone()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = ProcessInfo { pid, ..me.clone() };
        d.write_process(&gone).unwrap();
        assert_eq!(d.liveness(), Liveness::Gone(gone));
        let elsewhere = ProcessInfo { host: "another-host".into(), ..me };
        d.write_process(&elsewhere).unwrap();
        assert!(matches!(d.liveness(), Liveness::Elsewhere(_)));
    }

    #[test]
    fn open_names_what_is_wrong() {
        let t = tempfile::tempdir().unwrap();
        assert!(RunDir::open(&t.path().join("nope")).unwrap_err().contains("no such run folder"));
        assert!(RunDir::open(t.path()).unwrap_err().contains("not a tumorscope run folder"));
    }
}
