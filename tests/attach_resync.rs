//! A client that the trainer drops for falling behind (a suspended `attach`, a sleeping laptop) is
//! told so, connects again and re-syncs from the log: every record once, in order, none lost.
//! The trainer's side here is a scripted socket (the protocol lines of `run::socket`), so where the
//! drop falls is fixed; the real server's drop and its `dropped` line are tested in `run::socket`.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use tumorscope::run::dir::{ProcessInfo, hostname};
use tumorscope::run::log::EventLog;
use tumorscope::run::socket::{DROPPED, HELLO};
use tumorscope::run::{Record, RunDir, TrainEvent};

fn warning(log: &mut EventLog, i: u64) -> Record {
    let rec = log.stamp(TrainEvent::Warning { message: format!("record {i}") });
    log.write(&rec).unwrap();
    rec
}

fn line(r: &Record) -> Vec<u8> {
    let mut l = serde_json::to_vec(r).unwrap();
    l.push(b'\n');
    l
}

#[test]
fn a_dropped_client_reconnects_and_misses_nothing() {
    let t = tempfile::tempdir().unwrap();
    let run = RunDir::create(t.path(), "m").unwrap();
    let mut log = EventLog::open(&run.events()).unwrap();
    let recs: Vec<Record> = (1..=4).map(|i| warning(&mut log, i)).collect();
    let sock = t.path().join("s.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    run.write_process(&ProcessInfo {
        pid: std::process::id(),
        host: hostname(),
        socket: Some(sock.display().to_string()),
        started_unix: 0.0,
    })
    .unwrap();
    let server = std::thread::spawn(move || {
        // First connection: greeted, one live record the log also has, one it has not yet, dropped.
        let (mut a, _) = listener.accept().unwrap();
        a.write_all(HELLO.as_bytes()).unwrap();
        a.write_all(&line(&recs[3])).unwrap();
        let fifth = warning(&mut log, 5);
        a.write_all(&line(&fifth)).unwrap();
        // Records the dropped client never streamed: only the log has them.
        let (sixth, seventh) = (warning(&mut log, 6), warning(&mut log, 7));
        a.write_all(DROPPED.as_bytes()).unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        // Second connection: greeted, then the stream goes on from there, and the run ends.
        let (mut b, _) = listener.accept().unwrap();
        b.write_all(HELLO.as_bytes()).unwrap();
        b.write_all(&line(&seventh)).unwrap();
        let eighth = warning(&mut log, 8);
        b.write_all(&line(&eighth)).unwrap();
        drop(sixth);
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tumorscope::tui::attach_stream(run.events(), UnixStream::connect(&sock).unwrap(), tx);
    let mut seqs = vec![];
    while let Some(r) = rx.blocking_recv() {
        seqs.push(r.seq);
    }
    server.join().unwrap();
    assert_eq!(seqs, (0..=7).collect::<Vec<u64>>(), "every record once, in order");
}
