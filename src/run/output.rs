//! Output for long-lived processes. `println!` panics once the terminal or pipe is gone (EPIPE); these
//! never do: a failed write turns that stream quiet, and after a hang-up everything goes to the run
//! folder's `output.log` instead. Training never notices. Control characters from file names never
//! reach the terminal.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

struct Sink {
    stdout_ok: bool,
    stderr_ok: bool,
    file: Option<std::fs::File>,
}

static SINK: Mutex<Sink> = Mutex::new(Sink { stdout_ok: true, stderr_ok: true, file: None });

fn write(line: &str, to_stderr: bool) {
    let line = &*super::format::printable(line);
    let Ok(mut s) = SINK.lock() else { return };
    if let Some(f) = s.file.as_mut() {
        let _ = writeln!(f, "{line}");
        return;
    }
    let ok = if to_stderr {
        s.stderr_ok && writeln!(std::io::stderr(), "{line}").is_ok()
    } else {
        s.stdout_ok && writeln!(std::io::stdout(), "{line}").and_then(|_| std::io::stdout().flush()).is_ok()
    };
    if !ok {
        if to_stderr {
            s.stderr_ok = false;
        } else {
            s.stdout_ok = false;
        }
    }
}

/// A line on stdout, or nowhere once stdout is gone.
pub fn out(line: &str) {
    write(line, false);
}

/// A line on stderr, or nowhere once stderr is gone.
pub fn err(line: &str) {
    write(line, true);
}

/// From now on, write every line to `path` (appending): the terminal is gone.
pub fn redirect(path: &Path) {
    let f = std::fs::OpenOptions::new().create(true).append(true).open(path).ok();
    if let Ok(mut s) = SINK.lock() {
        s.file = f;
        if s.file.is_none() {
            s.stdout_ok = false;
            s.stderr_ok = false;
        }
    }
}

/// Whether stdout was a terminal or pipe that is now gone (a failed write: `predict … | head`).
pub fn stdout_gone() -> bool {
    SINK.lock().map(|s| s.file.is_none() && !s.stdout_ok).unwrap_or(false)
}

/// Whether lines still reach a terminal or pipe (progress bars are pointless otherwise).
pub fn terminal_alive() -> bool {
    SINK.lock().map(|s| s.file.is_none() && s.stdout_ok && s.stderr_ok).unwrap_or(false)
}

/// The terminal is gone (hang-up): stdin becomes an empty pipe that never ends, so a terminal reader
/// left behind sleeps instead of spinning on the dead tty's end-of-file, and stdout/stderr go to
/// `path`, so no stray write anywhere (a library's `eprintln!`) can fail or panic.
pub fn leave_terminal(path: &Path) {
    redirect(path);
    if let Ok(f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = nix::unistd::dup2_stdout(&f);
        let _ = nix::unistd::dup2_stderr(&f);
    }
    if let Ok((read, write)) = nix::unistd::pipe() {
        let _ = nix::unistd::dup2_stdin(&read);
        // The write end stays open for the life of the process: reads block, never see end-of-file.
        std::mem::forget(write);
    }
}

thread_local! {
    static PANICS_REPORTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Say that this thread catches its own panics and reports them (the trainer: as a `Failed` event), so
/// a panic hook need not print them over the dashboard.
pub fn panics_reported_here() {
    PANICS_REPORTED.with(|p| p.set(true));
}

/// Whether the current thread reports its own panics.
pub fn panics_are_reported() -> bool {
    PANICS_REPORTED.with(|p| p.get())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_thread_that_says_so_reports_its_panics() {
        let marked = std::thread::spawn(|| {
            super::panics_reported_here();
            super::panics_are_reported()
        });
        assert!(marked.join().unwrap());
        assert!(!std::thread::spawn(super::panics_are_reported).join().unwrap());
    }
}
