//! The training process's control socket: a Unix socket (mode 0600, in a 0700 folder of the user's,
//! peers checked by uid) that streams every record as a JSON line and takes `TrainCommand`s as JSON
//! lines. No network listener. A client that stops reading is dropped; it never slows training.

use super::dir::RunDir;
use super::events::{Record, TrainCommand};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Records a slow client may lag behind before it is dropped.
const CLIENT_QUEUE: usize = 4096;

/// The private folder for sockets: `$XDG_RUNTIME_DIR/tumorscope`, else `/tmp/tumorscope-<uid>`.
/// Socket paths hold at most 107 bytes, so they never live in (deep) run folders.
pub fn socket_dir() -> std::io::Result<PathBuf> {
    let uid = nix::unistd::getuid().as_raw();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(d) if d.is_dir() => d.join("tumorscope"),
        _ => std::env::temp_dir().join(format!("tumorscope-{uid}")),
    };
    std::fs::DirBuilder::new().mode(0o700).recursive(true).create(&dir)?;
    let m = std::fs::metadata(&dir)?;
    if m.uid() != uid || m.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{}: socket folder is not private to this user (mode {:o})",
            dir.display(),
            m.mode() & 0o777
        )));
    }
    Ok(dir)
}

/// Sends each record to every connected client.
#[derive(Default)]
pub struct Hub {
    clients: Mutex<Vec<SyncSender<Arc<[u8]>>>>,
}

impl Hub {
    pub fn broadcast(&self, rec: &Record) {
        let Ok(mut clients) = self.clients.lock() else { return };
        if clients.is_empty() {
            return;
        }
        let Ok(mut line) = serde_json::to_vec(rec) else { return };
        line.push(b'\n');
        let line: Arc<[u8]> = line.into();
        clients.retain(|c| match c.try_send(line.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        });
    }

    pub fn client_count(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// A served socket; dropping it closes every client and removes the socket file.
pub struct Server {
    pub path: PathBuf,
    pub hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(mut c) = self.hub.clients.lock() {
            c.clear();
        }
        let _ = UnixStream::connect(&self.path); // wake the accept loop
        let _ = std::fs::remove_file(&self.path);
    }
}

fn socket_name(run: &RunDir) -> String {
    let canon = std::fs::canonicalize(&run.path).unwrap_or_else(|_| run.path.clone());
    let h = crate::rng::fnv1a(canon.as_os_str().as_encoded_bytes(), crate::rng::FNV_OFFSET);
    format!("{:012x}-{}.sock", h & 0xffff_ffff_ffff, std::process::id())
}

/// Remove sockets left by training processes that were killed (`<hash>-<pid>.sock`, pid gone).
fn remove_stale(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let pid = name.strip_suffix(".sock").and_then(|n| n.rsplit_once('-')).and_then(|(_, p)| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !super::dir::pid_alive(pid)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Serve `run`'s socket; commands from clients go to `commands`.
pub fn serve(run: &RunDir, commands: Sender<TrainCommand>) -> std::io::Result<Server> {
    let dir = socket_dir()?;
    remove_stale(&dir);
    let path = dir.join(socket_name(run));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let hub = Arc::new(Hub::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (h, s) = (hub.clone(), stop.clone());
    let uid = nix::unistd::getuid().as_raw();
    std::thread::Builder::new().name("socket".into()).spawn(move || {
        for stream in listener.incoming() {
            if s.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
            if !matches!(peer, Ok(c) if c.uid() == uid) {
                continue; // another user: closed without a word
            }
            let _ = add_client(&h, stream, commands.clone());
        }
    })?;
    Ok(Server { path, hub, stop })
}

fn add_client(hub: &Hub, stream: UnixStream, commands: Sender<TrainCommand>) -> std::io::Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<[u8]>>(CLIENT_QUEUE);
    let mut writer = stream.try_clone()?;
    let reader = stream;
    std::thread::Builder::new().name("socket-out".into()).spawn(move || {
        for line in rx {
            if writer.write_all(&line).is_err() {
                break;
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Both);
    })?;
    std::thread::Builder::new().name("socket-in".into()).spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if let Ok(cmd) = serde_json::from_str::<TrainCommand>(&line)
                && commands.send(cmd).is_err()
            {
                break;
            }
        }
    })?;
    // Registered first, then greeted: a client that has read `hello` knows every later record reaches
    // it, so whatever it reads from the log after that leaves no gap.
    let hello: Arc<[u8]> = HELLO.as_bytes().into();
    if let Ok(mut c) = hub.clients.lock() {
        let _ = tx.try_send(hello);
        c.push(tx);
    }
    Ok(())
}

/// The line a server sends a client once the client is registered.
pub const HELLO: &str = "{\"hello\":1}\n";

/// What a connection yields: the server's greeting, or a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Hello,
    Record(Record),
}

/// Every greeting and record a connection streams, until the trainer closes it.
pub fn incoming(reader: impl BufRead) -> impl Iterator<Item = Incoming> {
    reader.lines().map_while(Result::ok).filter_map(|l| {
        if l.trim() == HELLO.trim() { Some(Incoming::Hello) } else { serde_json::from_str::<Record>(&l).ok().map(Incoming::Record) }
    })
}

/// Why a client cannot reach a run's trainer.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{run}: no control socket recorded (the run is still loading, or its process never served one)")]
    NoSocket { run: String },
    #[error("{socket}: stale socket left by a training process that is gone (pid {pid})")]
    Stale { socket: String, pid: u32 },
    #[error("{socket}: cannot connect: {source}")]
    Io { socket: String, source: std::io::Error },
}

/// Connect to a run's socket.
pub fn connect(run: &RunDir) -> Result<UnixStream, ConnectError> {
    let info = run.read_process();
    let Some(socket) = info.as_ref().and_then(|p| p.socket.clone()) else {
        return Err(ConnectError::NoSocket { run: run.path.display().to_string() });
    };
    let pid = info.map(|p| p.pid).unwrap_or(0);
    match UnixStream::connect(Path::new(&socket)) {
        Ok(s) => Ok(s),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
            Err(ConnectError::Stale { socket, pid })
        }
        Err(source) => Err(ConnectError::Io { socket, source }),
    }
}

/// Send one command as a JSON line.
pub fn send(stream: &mut UnixStream, cmd: &TrainCommand) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(cmd).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// The records a connection streams, until the trainer closes it.
pub fn records(stream: UnixStream) -> impl Iterator<Item = Record> {
    incoming(BufReader::new(stream)).filter_map(|i| match i {
        Incoming::Record(r) => Some(r),
        Incoming::Hello => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::dir::{ProcessInfo, hostname};
    use crate::run::events::TrainEvent;

    #[test]
    fn clients_get_records_and_send_commands_and_a_stuck_client_is_dropped() {
        let t = tempfile::tempdir().unwrap();
        // A deliberately deep run folder: the socket lives elsewhere, so its path stays short.
        let deep = t.path().join("a".repeat(60)).join("b".repeat(60));
        let run = RunDir::create(&deep, "m").unwrap();
        let (ctx, crx) = std::sync::mpsc::channel();
        let server = serve(&run, ctx).unwrap();
        assert!(server.path.as_os_str().len() < 100);
        let mode = std::fs::metadata(&server.path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        run.write_process(&ProcessInfo {
            pid: std::process::id(),
            host: hostname(),
            socket: Some(server.path.display().to_string()),
            started_unix: 0.0,
        })
        .unwrap();
        let mut a = connect(&run).unwrap();
        let b = connect(&run).unwrap();
        let stuck = connect(&run).unwrap(); // never reads
        while server.hub.client_count() < 3 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        send(&mut a, &TrainCommand::ScaleLr(0.5)).unwrap();
        assert_eq!(crx.recv().unwrap(), TrainCommand::ScaleLr(0.5));
        let rec = Record { seq: 1, time: 2.0, event: TrainEvent::Warning { message: "x".repeat(1000) } };
        // Far more than the stuck client's queue and socket buffer hold: broadcasting never blocks.
        for _ in 0..(CLIENT_QUEUE + 2000) {
            server.hub.broadcast(&rec);
        }
        assert!(server.hub.client_count() < 3, "the stuck client was dropped");
        drop(stuck);
        let got: Vec<Record> = records(b).take(3).collect();
        assert_eq!(got, vec![rec.clone(), rec.clone(), rec]);
        let path = server.path.clone();
        drop(server);
        assert!(!path.exists(), "socket removed when the server ends");
        assert!(matches!(connect(&run), Err(ConnectError::Stale { .. })));
    }

    #[test]
    fn sockets_of_killed_processes_are_cleaned_up() {
        let dead = {
            let mut c = std::process::Command::new("true").spawn().unwrap();
            let pid = c.id();
            c.wait().unwrap();
            pid
        };
        let stale = socket_dir().unwrap().join(format!("0123456789ab-{dead}.sock"));
        drop(UnixListener::bind(&stale).unwrap());
        assert!(stale.exists());
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path(), "m").unwrap();
        let (ctx, _crx) = std::sync::mpsc::channel();
        let server = serve(&run, ctx).unwrap();
        assert!(!stale.exists(), "a dead process's socket is removed");
        assert!(server.path.exists(), "this process's own socket stays");
    }
}
