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

/// The longest socket path a Unix socket takes (`sun_path` holds 108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The longest name `socket_name` makes: 12 hex digits, '-', a pid of up to 10 digits, ".sock".
const MAX_SOCKET_NAME: usize = 12 + 1 + 10 + 5;

/// The private folder for sockets: `$XDG_RUNTIME_DIR/tumorscope`, else `$TMPDIR/tumorscope-<uid>`, else
/// `/tmp/tumorscope-<uid>`; where none of these is private to this user (another user made it first)
/// or short enough for a socket path, a new private folder of a unique name under `$TMPDIR` or `/tmp`.
/// Socket paths hold at most 107 bytes, so they never live in (deep) run folders. Clients find the
/// socket through `process.json`, so any of these places works.
pub fn socket_dir() -> std::io::Result<PathBuf> {
    let uid = nix::unistd::getuid().as_raw();
    let mut preferred = vec![];
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|d| d.is_dir()) {
        preferred.push(d.join("tumorscope"));
    }
    let bases = [std::env::temp_dir(), PathBuf::from("/tmp")];
    preferred.extend(bases.iter().map(|b| b.join(format!("tumorscope-{uid}"))));
    choose_socket_dir(&preferred, &bases, uid)
}

/// The first of `preferred` that is (or can be made) a private folder of `uid` short enough for a
/// socket path; else a new one under the first base that allows it. One error line names every place.
fn choose_socket_dir(preferred: &[PathBuf], bases: &[PathBuf], uid: u32) -> std::io::Result<PathBuf> {
    let mut why = vec![];
    for dir in preferred {
        match private_dir(dir, uid, false) {
            Ok(()) => return Ok(dir.clone()),
            Err(e) => why.push(e.to_string()),
        }
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    for base in bases {
        let dir = base.join(format!("tumorscope-{uid}-{}-{stamp:08x}", std::process::id()));
        match private_dir(&dir, uid, true) {
            Ok(()) => return Ok(dir),
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(std::io::Error::other(format!("no private folder for the control socket: {}", why.join("; "))))
}

/// Make (or check) a folder for sockets: short enough, owned by `uid`, mode 0700. A `fresh` one must not
/// exist yet (so nobody else can have made it).
fn private_dir(dir: &Path, uid: u32, fresh: bool) -> std::io::Result<()> {
    if dir.as_os_str().len() + 1 + MAX_SOCKET_NAME > MAX_SOCKET_PATH {
        return Err(std::io::Error::other(format!(
            "{}: too long for a socket path ({} bytes at most)",
            dir.display(),
            MAX_SOCKET_PATH - 1 - MAX_SOCKET_NAME
        )));
    }
    let made = if fresh {
        std::fs::DirBuilder::new().mode(0o700).create(dir)
    } else {
        std::fs::DirBuilder::new().mode(0o700).recursive(true).create(dir)
    };
    made.map_err(|e| std::io::Error::other(format!("{}: {e}", dir.display())))?;
    let m = std::fs::symlink_metadata(dir).map_err(|e| std::io::Error::other(format!("{}: {e}", dir.display())))?;
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{}: not private to this user (owner {}, mode {:o})",
            dir.display(),
            m.uid(),
            m.mode() & 0o777
        )));
    }
    Ok(())
}

/// Sends each record to every connected client.
#[derive(Default)]
pub struct Hub {
    clients: Mutex<Vec<Client>>,
}

/// A connected client's queue, and the flag that tells its writer it was dropped.
struct Client {
    tx: SyncSender<Arc<[u8]>>,
    dropped: Arc<AtomicBool>,
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
        clients.retain(|c| match c.tx.try_send(line.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                // Too far behind (a suspended `attach`, a sleeping laptop): its writer tells it so.
                c.dropped.store(true, Ordering::SeqCst);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
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

/// Remove sockets left by training processes that were killed (`<hash>-<pid>.sock`, no such process).
/// A live trainer's socket is never removed, whatever its binary is called (a reused pid only leaves
/// a stale file in place).
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
    let dropped = Arc::new(AtomicBool::new(false));
    // One writer at a time, a line at a time: the stream and the refusals share the connection.
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let answer = writer.clone();
    let reader = stream;
    let was_dropped = dropped.clone();
    std::thread::Builder::new().name("socket-out".into()).spawn(move || {
        let write = |bytes: &[u8]| writer.lock().map_err(|_| ()).and_then(|mut w| w.write_all(bytes).map_err(|_| ()));
        for line in rx {
            if was_dropped.load(Ordering::SeqCst) || write(&line).is_err() {
                break;
            }
        }
        // A dropped client hears why once it reads again, and re-syncs from the log; its commands
        // still reach the trainer (only the stream is closed).
        let how = if was_dropped.load(Ordering::SeqCst) {
            let _ = write(DROPPED.as_bytes());
            std::net::Shutdown::Write
        } else {
            std::net::Shutdown::Both
        };
        if let Ok(w) = writer.lock() {
            let _ = w.shutdown(how);
        }
    })?;
    std::thread::Builder::new().name("socket-in".into()).spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<TrainCommand>(&line) {
                Ok(cmd) => {
                    if commands.send(cmd).is_err() {
                        break;
                    }
                }
                // Answered to this client alone, so a sender never waits for an answer that cannot come.
                Err(e) => {
                    if let Ok(mut w) = answer.lock() {
                        let _ = w.write_all(refusal(&format!("not a command: {e}")).as_bytes());
                    }
                }
            }
        }
    })?;
    // Registered first, then greeted: a client that has read `hello` knows every later record reaches
    // it, so whatever it reads from the log after that leaves no gap.
    let hello: Arc<[u8]> = HELLO.as_bytes().into();
    if let Ok(mut c) = hub.clients.lock() {
        let _ = tx.try_send(hello);
        c.push(Client { tx, dropped });
    }
    Ok(())
}

/// The line a server sends a client once the client is registered.
pub const HELLO: &str = "{\"hello\":1}\n";

/// The last line a client gets when it fell too far behind and was dropped.
pub const DROPPED: &str = "{\"dropped\":1}\n";

/// The line that answers a line that is not a command.
fn refusal(why: &str) -> String {
    let mut line = serde_json::json!({ "refused": why }).to_string();
    line.push('\n');
    line
}

/// What a connection yields: the server's greeting, a record, the server's refusal of a line this
/// client sent, or word that this client was dropped for falling behind.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Hello,
    Record(Record),
    Refused(String),
    Dropped,
}

/// Every greeting and record a connection streams, until the trainer closes it.
pub fn incoming(reader: impl BufRead) -> impl Iterator<Item = Incoming> {
    reader.lines().map_while(Result::ok).filter_map(|l| {
        let l = l.trim();
        if l == HELLO.trim() {
            return Some(Incoming::Hello);
        }
        if l == DROPPED.trim() {
            return Some(Incoming::Dropped);
        }
        if let Ok(r) = serde_json::from_str::<Record>(l) {
            return Some(Incoming::Record(r));
        }
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        v.get("refused").and_then(|r| r.as_str()).map(|r| Incoming::Refused(r.to_string()))
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
        _ => None,
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
        let b = connect(&run).unwrap(); // reads only after the flood
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
        // Once it reads again, the stuck client gets its backlog, then word that it was dropped.
        let tail: Vec<Incoming> = incoming(BufReader::new(stuck)).collect();
        assert_eq!(tail.last(), Some(&Incoming::Dropped), "{} lines", tail.len());
        assert!(tail[..tail.len() - 1].iter().all(|i| matches!(i, Incoming::Hello | Incoming::Record(_))));
        drop(b);
        // A client that keeps up gets every record.
        let c = connect(&run).unwrap();
        let mut lines = incoming(BufReader::new(c));
        assert_eq!(lines.next(), Some(Incoming::Hello));
        for _ in 0..3 {
            server.hub.broadcast(&rec);
        }
        let got: Vec<Incoming> = lines.take(3).collect();
        assert_eq!(got, vec![Incoming::Record(rec.clone()), Incoming::Record(rec.clone()), Incoming::Record(rec)]);
        let path = server.path.clone();
        drop(server);
        assert!(!path.exists(), "socket removed when the server ends");
        assert!(matches!(connect(&run), Err(ConnectError::Stale { .. })));
    }

    /// A line that is not a command (NaN has no JSON form: `ctl lr nan` once sent `null`) is answered
    /// to its sender, so it never waits for an answer that cannot come.
    #[test]
    fn a_line_that_is_not_a_command_is_refused_to_its_sender() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path(), "m").unwrap();
        let (ctx, crx) = std::sync::mpsc::channel();
        let server = serve(&run, ctx).unwrap();
        let mut c = UnixStream::connect(&server.path).unwrap();
        let mut lines = incoming(BufReader::new(c.try_clone().unwrap()));
        assert_eq!(lines.next(), Some(Incoming::Hello));
        c.write_all(b"{\"command\":\"set_lr\",\"value\":null}\n").unwrap();
        let Some(Incoming::Refused(why)) = lines.next() else { panic!("no refusal") };
        assert!(why.contains("not a command"), "{why}");
        assert!(crx.try_recv().is_err(), "nothing reached the trainer");
        send(&mut c, &TrainCommand::Pause).unwrap();
        assert_eq!(crx.recv().unwrap(), TrainCommand::Pause, "the connection still works");
    }

    /// A folder another user made first, or one too deep for a socket path, is passed over: the socket
    /// goes to the next private place, else to a new private folder of its own.
    #[test]
    fn hostile_or_long_socket_folders_fall_back_to_a_private_one() {
        let t = tempfile::tempdir().unwrap();
        let uid = nix::unistd::getuid().as_raw();
        let hostile = t.path().join("taken");
        std::fs::create_dir(&hostile).unwrap();
        std::fs::set_permissions(&hostile, std::fs::Permissions::from_mode(0o777)).unwrap();
        let long = t.path().join("l".repeat(90));
        let good = t.path().join("mine");
        assert_eq!(choose_socket_dir(&[hostile.clone(), long.clone(), good.clone()], &[], uid).unwrap(), good);
        let fresh = choose_socket_dir(&[hostile.clone(), long.clone()], &[t.path().to_path_buf()], uid).unwrap();
        assert!(fresh.starts_with(t.path()) && fresh != hostile, "{}", fresh.display());
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
        // Owned by someone else (root can make that), even with a private mode.
        if uid == 0 {
            let other = t.path().join("other");
            std::fs::create_dir(&other).unwrap();
            std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).unwrap();
            nix::unistd::chown(&other, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            assert_ne!(choose_socket_dir(std::slice::from_ref(&other), &[t.path().to_path_buf()], uid).unwrap(), other);
        }
        let e = choose_socket_dir(&[hostile], &[long], uid).unwrap_err().to_string();
        assert!(e.contains("not private") && e.contains("too long"), "{e}");
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
