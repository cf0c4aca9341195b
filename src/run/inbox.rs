//! Steering through the run folder, for a trainer whose socket is on another machine (a Slurm node):
//! a client drops a command as a file in `RUN/inbox/` (owner-only, written whole, then renamed into
//! place); the trainer takes the files between batches, oldest first, and answers with the same
//! events as on the socket, which reach the client through `events.jsonl` on the shared filesystem.

use super::dir::RunDir;
use super::events::TrainCommand;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

/// How often the trainer's side looks for new commands.
pub const POLL: Duration = Duration::from_millis(400);

pub fn inbox(run: &RunDir) -> PathBuf {
    run.path.join("inbox")
}

/// Drop `cmd` into the run's inbox; the file's path.
pub fn post(run: &RunDir, cmd: &TrainCommand) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = inbox(run);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let name = format!("{nanos:020}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(&serde_json::to_vec(cmd).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    let path = dir.join(format!("{name}.json"));
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A file in the inbox that is not obeyed, and why.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}: not a regular file")]
    NotAFile(String),
    #[error("{0}: owned by uid {1}, not this user")]
    Foreign(String, u32),
    #[error("{0}: writable by others")]
    Writable(String),
    #[error("{0}: not a command: {1}")]
    NotACommand(String, serde_json::Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Take every command waiting in the inbox, oldest first; each file is removed once read. A file not
/// owned by this user, writable by others, or not a command is removed and reported, not obeyed.
pub fn take(run: &RunDir) -> Vec<Result<TrainCommand, Refused>> {
    let Ok(entries) = std::fs::read_dir(inbox(run)) else { return vec![] };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    let uid = nix::unistd::getuid().as_raw();
    files
        .into_iter()
        .map(|p| {
            let shown = p.display().to_string();
            let checked = match std::fs::symlink_metadata(&p) {
                Ok(m) if !m.is_file() => Err(Refused::NotAFile(shown)),
                Ok(m) if m.uid() != uid => Err(Refused::Foreign(shown, m.uid())),
                Ok(m) if m.mode() & 0o022 != 0 => Err(Refused::Writable(shown)),
                Ok(_) => match std::fs::read(&p) {
                    Ok(b) => serde_json::from_slice(&b).map_err(|e| Refused::NotACommand(shown, e)),
                    Err(e) => Err(Refused::Io(shown, e)),
                },
                Err(e) => Err(Refused::Io(shown, e)),
            };
            let _ = std::fs::remove_file(&p);
            checked
        })
        .collect()
}

/// Empty the inbox (a trainer starting does not obey commands meant for an earlier process).
pub fn clear(run: &RunDir) {
    let _ = take(run);
}

/// Forward the inbox's commands to the trainer until `done`; refused files are passed to `refused`.
pub fn watch(run: RunDir, commands: Sender<TrainCommand>, done: Arc<AtomicBool>, refused: impl Fn(Refused) + Send + 'static) {
    let _ = std::thread::Builder::new().name("inbox".into()).spawn(move || {
        while !done.load(Ordering::Relaxed) {
            for c in take(&run) {
                match c {
                    Ok(cmd) => {
                        if commands.send(cmd).is_err() {
                            return;
                        }
                    }
                    Err(why) => refused(why),
                }
            }
            std::thread::sleep(POLL);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posted_commands_are_taken_once_in_order_and_foreign_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir { path: t.path().to_path_buf() };
        post(&run, &TrainCommand::Pause).unwrap();
        post(&run, &TrainCommand::SetLr(1e-4)).unwrap();
        let mode = std::fs::metadata(inbox(&run)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let bad = inbox(&run).join("99999999999999999999-1-0.json");
        std::fs::write(&bad, br#"{"not": 1}"#).unwrap();
        let got = take(&run);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().ok(), Some(&TrainCommand::Pause));
        assert_eq!(got[1].as_ref().ok(), Some(&TrainCommand::SetLr(1e-4)));
        assert!(matches!(got[2], Err(Refused::NotACommand(..))));
        assert!(take(&run).is_empty(), "each command is taken once");
        post(&run, &TrainCommand::Pause).unwrap();
        let p = std::fs::read_dir(inbox(&run)).unwrap().next().unwrap().unwrap().path();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        assert!(matches!(take(&run)[0], Err(Refused::Writable(_))));
    }
}
