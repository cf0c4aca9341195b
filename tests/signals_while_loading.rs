//! A signal that comes while `train` loads its data (seconds to minutes on a large set) is the
//! command's to handle, not the default action's: a hang-up is remembered and the run goes on,
//! SIGINT or SIGTERM end the command at once. Real signals, sent to this test's own process (its own
//! binary, so no other test sees them); the "loading" is a job that waits until the test lets it go,
//! so nothing here depends on timing.

use nix::sys::signal::{Signal, raise};
use std::sync::mpsc;
use tumorscope::commands::signals::{Listener, StoppedWhileLoading};

#[test]
fn signals_while_loading_are_handled_not_fatal() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let mut listener = Listener::install();

        // A job that finishes: its value comes back, nothing was seen.
        let v = listener.during(|| 41 + 1).await.unwrap();
        assert_eq!((v, listener.hung_up), (42, false));

        // SIGTERM while the job still runs: the wait ends at once with the signal, the job abandoned.
        let (release, held) = mpsc::channel::<()>();
        let raiser = tokio::spawn(async { raise(Signal::SIGTERM).unwrap() });
        let r = listener.during(move || held.recv()).await;
        raiser.await.unwrap();
        let stop = r.expect_err("SIGTERM ends the wait");
        assert_eq!((stop.0, stop.exit_code()), ("SIGTERM", 143));
        assert_eq!(stop.to_string(), "SIGTERM while loading the data: stopped before training started");
        drop(release);

        // A hang-up is remembered and the job goes on; a SIGINT after it still ends the wait.
        let (release, held) = mpsc::channel::<()>();
        let (running_tx, running) = tokio::sync::oneshot::channel::<()>();
        let raiser = tokio::spawn(async move {
            let _ = running.await;
            raise(Signal::SIGHUP).unwrap();
            raise(Signal::SIGINT).unwrap();
        });
        let r = listener
            .during(move || {
                let _ = running_tx.send(());
                held.recv()
            })
            .await;
        raiser.await.unwrap();
        let stop: StoppedWhileLoading = r.expect_err("SIGINT ends the wait");
        assert_eq!((stop.0, stop.exit_code()), ("SIGINT", 130));
        assert!(listener.hung_up, "the hang-up before it was remembered");
        drop(release);
    });
    rt.shutdown_background();
}
