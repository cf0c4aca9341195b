//! `events.jsonl`: one `Record` per line, appended by the training process and read back by every
//! client. One writer, one whole-file reader and one tailer, so every client parses it the same way.

use super::events::{Record, TrainEvent};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub fn now_unix_f64() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Appends records; numbering continues from what the file already holds (a resumed run).
pub struct EventLog {
    file: std::fs::File,
    next_seq: u64,
}

impl EventLog {
    /// Open for appending. A last line cut by a crash is closed with a newline first, so the next
    /// record starts on a line of its own; nothing already written is changed.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let next_seq = match read_log(path) {
            Ok(l) => l.records.last().map(|r| r.seq + 1).unwrap_or(0),
            Err(_) => 0,
        };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).read(true).open(path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(EventLog { file, next_seq })
    }

    /// Number and time an event (whether or not it can be written).
    pub fn stamp(&mut self, event: TrainEvent) -> Record {
        let r = Record { seq: self.next_seq, time: (now_unix_f64() * 1000.0).round() / 1000.0, event };
        self.next_seq += 1;
        r
    }

    pub fn write(&mut self, rec: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write per line: readers never see half a record unless the machine dies mid-write.
        self.file.write_all(&line)
    }
}

/// A log read back whole.
#[derive(Debug, Default)]
pub struct LogRead {
    pub records: Vec<Record>,
    /// 1-based numbers of complete lines that are not records.
    pub bad_lines: Vec<usize>,
    /// The file ends in a line without its newline (a crash mid-write); it was ignored.
    pub truncated_tail: bool,
}

impl LogRead {
    /// A one-line note about what was skipped, if anything.
    pub fn note(&self, path: &Path) -> Option<String> {
        match (self.truncated_tail, self.bad_lines.len()) {
            (false, 0) => None,
            (true, 0) => Some(format!("{}: the last line is cut short (the process died while writing it); ignored", path.display())),
            (t, n) => Some(format!(
                "{}: {n} unreadable line(s) (first: line {}){}; ignored",
                path.display(),
                self.bad_lines[0],
                if t { " and a cut-short last line" } else { "" }
            )),
        }
    }
}

/// Why a log cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{0}: no events.jsonl (not a tumorscope run folder, or the run never started)")]
    Missing(String),
    #[error("{path}: cannot read: {source}")]
    Io { path: String, source: std::io::Error },
}

fn parse_lines(bytes: &[u8], first_line: usize, out: &mut LogRead) {
    for (k, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => out.records.push(r),
            Err(_) => out.bad_lines.push(first_line + k),
        }
    }
}

/// Read every record of a log. Unreadable lines are skipped and counted, never fatal.
pub fn read_log(path: &Path) -> Result<LogRead, LogError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LogError::Missing(path.display().to_string()),
        _ => LogError::Io { path: path.display().to_string(), source },
    })?;
    let mut out = LogRead::default();
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    parse_lines(&bytes[..complete], 1, &mut out);
    out.truncated_tail = bytes[complete..].iter().any(|b| !b.is_ascii_whitespace());
    Ok(out)
}

/// Follows a growing log: each `poll` returns the records completed since the last one.
pub struct Tailer {
    path: PathBuf,
    pos: u64,
    pending: Vec<u8>,
    lines_seen: usize,
    pub bad_lines: usize,
}

impl Tailer {
    pub fn new(path: &Path) -> Tailer {
        Tailer { path: path.to_path_buf(), pos: 0, pending: vec![], lines_seen: 0, bad_lines: 0 }
    }

    pub fn poll(&mut self) -> std::io::Result<Vec<Record>> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(self.pos))?;
        let n = f.read_to_end(&mut self.pending)?;
        self.pos += n as u64;
        let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') else { return Ok(vec![]) };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        let mut out = LogRead::default();
        parse_lines(&complete, self.lines_seen + 1, &mut out);
        self.lines_seen += complete.iter().filter(|b| **b == b'\n').count();
        self.bad_lines += out.bad_lines.len();
        Ok(out.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::events::TrainEvent;

    fn log_event(m: &str) -> TrainEvent {
        TrainEvent::Warning { message: m.into() }
    }

    #[test]
    fn appends_number_and_read_back_with_a_cut_line() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("events.jsonl");
        let mut log = EventLog::open(&p).unwrap();
        let a = log.stamp(log_event("a"));
        log.write(&a).unwrap();
        let b = log.stamp(log_event("b"));
        log.write(&b).unwrap();
        drop(log);
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"{\"seq\":2,\"event\":\"warn").unwrap();
        let r = read_log(&p).unwrap();
        assert_eq!(r.records, vec![a.clone(), b.clone()]);
        assert!(r.truncated_tail);
        assert!(r.note(&p).unwrap().contains("cut short"));
        // Reopening continues the numbering on a fresh line and keeps the cut line as it was.
        let mut log = EventLog::open(&p).unwrap();
        let c = log.stamp(log_event("c"));
        assert_eq!(c.seq, 2);
        log.write(&c).unwrap();
        let r = read_log(&p).unwrap();
        assert_eq!(r.records, vec![a, b, c]);
        assert_eq!(r.bad_lines, vec![3]);
        assert!(!r.truncated_tail);
        assert!(std::fs::read_to_string(&p).unwrap().contains("{\"seq\":2,\"event\":\"warn\n"));
    }

    #[test]
    fn tailer_returns_only_complete_lines() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("events.jsonl");
        let mut tail = Tailer::new(&p);
        assert!(tail.poll().unwrap().is_empty(), "no file yet");
        let mut log = EventLog::open(&p).unwrap();
        let a = log.stamp(log_event("a"));
        log.write(&a).unwrap();
        let line = serde_json::to_string(&log.stamp(log_event("b"))).unwrap();
        let (head, rest) = line.split_at(10);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(head.as_bytes()).unwrap();
        assert_eq!(tail.poll().unwrap(), vec![a]);
        f.write_all(format!("{rest}\nnot json\n").as_bytes()).unwrap();
        let got = tail.poll().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(tail.bad_lines, 1);
    }

    #[test]
    fn missing_log_is_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let e = read_log(&t.path().join("events.jsonl")).unwrap_err().to_string();
        assert!(e.contains("no events.jsonl"), "{e}");
    }
}
