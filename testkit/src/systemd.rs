//! The checks of how a program behaves under systemd, against a real datagram socket bound as
//! `NOTIFY_SOCKET`: READY=1 only once every listener accepts connections, WATCHDOG=1 at half
//! of `WATCHDOG_USEC`, STOPPING=1 on SIGTERM and a clean exit, and where the logs go when
//! `JOURNAL_STREAM` is set. Each program's test file passes a `Command` that starts it on
//! free ports, with the systemd variables removed, stdout discarded and stderr left to these
//! functions.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Guard;

/// The variables through which systemd talks to a service; a test command starts without
/// them, whatever the environment of `cargo test` holds.
pub const VARIABLES: [&str; 4] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
];

/// A bound notification socket, as systemd holds one for each `Type=notify` service.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        NotifySocket { socket, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next notification; panics after a minute without one.
    pub fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("no notification within the timeout")
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// READY=1 first, and by then each of `ports` accepts connections; then WATCHDOG=1 about
/// every half second (`WATCHDOG_USEC` of one second); on SIGTERM, STOPPING=1 and exit 0.
pub fn ready_then_watchdog_then_stopping(mut command: Command, dir: &Path, ports: &[u16]) {
    let sock = NotifySocket::bind(dir);
    let mut child = Guard(
        command
            .env("NOTIFY_SOCKET", sock.path())
            // WATCHDOG_PID is left unset, which sd_notify reads as "this process" (systemd
            // sets it to the main pid).
            .env("WATCHDOG_USEC", "1000000")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    assert_eq!(sock.recv(), "READY=1\n");
    for port in ports {
        TcpStream::connect(("127.0.0.1", *port))
            .unwrap_or_else(|e| panic!("READY=1 sent before port {port} listened: {e}"));
    }

    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(sock.recv(), "WATCHDOG=1\n");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(10),
        "three pings took {took:?}"
    );

    // Pings may still arrive before STOPPING=1.
    child.terminate();
    loop {
        match sock.recv().as_str() {
            "STOPPING=1\n" => break,
            "WATCHDOG=1\n" => {}
            other => panic!("unexpected notification {other:?}"),
        }
    }
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

/// Without `WATCHDOG_USEC`: READY=1, no pings for 1.5 s, then STOPPING=1 on SIGTERM.
pub fn no_pings_without_watchdog_usec(mut command: Command, dir: &Path) {
    let sock = NotifySocket::bind(dir);
    let mut child = Guard(
        command
            .env("NOTIFY_SOCKET", sock.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert_eq!(sock.recv(), "READY=1\n");
    std::thread::sleep(Duration::from_millis(1500));
    child.terminate();
    assert_eq!(sock.recv(), "STOPPING=1\n");
    assert!(child.0.wait().unwrap().success());
}

/// Runs the program with stderr in a file and `JOURNAL_STREAM` set to what `journal_stream`
/// makes of that file's metadata, until it is ready, then stops it; returns its stderr.
fn stderr_with_journal_stream(
    mut command: Command,
    dir: &Path,
    journal_stream: impl FnOnce(&std::fs::Metadata) -> String,
) -> String {
    let log = dir.join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let value = journal_stream(&file.metadata().unwrap());
    let sock = NotifySocket::bind(dir);
    let mut child = Guard(
        command
            .env("NOTIFY_SOCKET", sock.path())
            .env("JOURNAL_STREAM", value)
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap(),
    );
    assert_eq!(sock.recv(), "READY=1\n");
    child.terminate();
    assert!(child.0.wait().unwrap().success());
    std::fs::read_to_string(&log).unwrap()
}

/// `JOURNAL_STREAM` naming stderr: with journald on this host the entries go there, not to
/// stderr; without it, JSON lines on stderr, the first a warning about the journal. `marker`
/// is a message the program logs at start.
pub fn journal_stream_naming_stderr(command: Command, dir: &Path, marker: &str) {
    let text = stderr_with_journal_stream(command, dir, |m| format!("{}:{}", m.dev(), m.ino()));
    if Path::new("/run/systemd/journal/socket").exists() {
        assert!(!text.contains(marker), "{text}");
    } else {
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with('{') && first.contains("journal"),
            "expected the fallback warning as JSON first: {text}"
        );
        assert!(
            text.lines().all(|l| l.starts_with('{')),
            "not all JSON: {text}"
        );
        assert!(text.contains(marker), "{text}");
    }
}

/// `JOURNAL_STREAM` naming another file (what a shell started from a service inherits):
/// plain text on stderr, as without the variable.
pub fn journal_stream_naming_another_file(command: Command, dir: &Path, marker: &str) {
    let text = stderr_with_journal_stream(command, dir, |m| format!("{}:{}", m.dev(), m.ino() + 1));
    assert!(text.contains(marker), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with('{')),
        "JSON instead of text: {text}"
    );
}
