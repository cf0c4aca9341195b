//! A run folder: `run.json` (config, classes, data), `config.toml`, `events.jsonl` (every event and
//! control action, timestamped), checkpoints and the test report.

use crate::config::TrainConfig;
use crate::train::TrainEvent;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// What `eval` and `predict` need to rebuild a run's network and split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub config: TrainConfig,
    pub classes: Vec<String>,
    pub data_root: String,
    pub synthetic: bool,
    pub created_unix: u64,
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

impl RunDir {
    /// Create `parent/<stamp>-<model>` (with a suffix if it exists already).
    pub fn create(parent: &Path, model: &str) -> std::io::Result<RunDir> {
        let base = format!("{}-{model}", utc_stamp(now_unix()));
        for k in 0..100 {
            let name = if k == 0 { base.clone() } else { format!("{base}-{k}") };
            let p = parent.join(name);
            if !p.exists() {
                std::fs::create_dir_all(&p)?;
                return Ok(RunDir { path: p });
            }
        }
        Err(std::io::Error::other("too many runs with the same timestamp"))
    }

    pub fn open(path: &Path) -> Result<RunDir, String> {
        if !path.join("run.json").exists() {
            return Err(format!("{}: not a tumorscope run folder (no run.json)", path.display()));
        }
        Ok(RunDir { path: path.to_path_buf() })
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

    pub fn write_meta(&self, meta: &RunMeta) -> std::io::Result<()> {
        std::fs::write(self.meta_path(), serde_json::to_string_pretty(meta).map_err(std::io::Error::other)?)?;
        std::fs::write(self.path.join("config.toml"), meta.config.to_toml())
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
}

/// Appends events to `events.jsonl`, one JSON object per line with a `time` field (unix seconds).
pub struct EventLog {
    file: std::io::BufWriter<std::fs::File>,
}

impl EventLog {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog { file: std::io::BufWriter::new(file) })
    }

    pub fn append(&mut self, event: &TrainEvent) -> std::io::Result<()> {
        let mut v = serde_json::to_value(event).map_err(std::io::Error::other)?;
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        if let Some(o) = v.as_object_mut() {
            o.insert("time".into(), serde_json::json!((t * 1000.0).round() / 1000.0));
        }
        serde_json::to_writer(&mut self.file, &v).map_err(std::io::Error::other)?;
        self.file.write_all(b"\n")?;
        self.file.flush()
    }
}

/// Read back every event of a log, skipping lines that do not parse (a line cut by a crash).
pub fn read_events(path: &Path) -> std::io::Result<Vec<TrainEvent>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    Ok(f.lines().map_while(Result::ok).filter_map(|l| serde_json::from_str::<TrainEvent>(&l).ok()).collect())
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
    fn events_round_trip_with_time() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("events.jsonl");
        let mut log = EventLog::create(&p).unwrap();
        let e = TrainEvent::LrChanged { epoch: 2, from: 1e-3, to: 3e-4, reason: "user".into() };
        log.append(&e).unwrap();
        log.append(&TrainEvent::Log { message: "hi".into() }).unwrap();
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"{\"event\":\"trunc").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.lines().next().unwrap().contains("\"time\""));
        assert_eq!(read_events(&p).unwrap(), vec![e, TrainEvent::Log { message: "hi".into() }]);
    }
}
