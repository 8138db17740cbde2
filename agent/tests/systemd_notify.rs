//! Black-box tests of the binary as systemd runs it (issue "Packaging and systemd"): the
//! `Type=notify` protocol over a datagram socket this test binds as `NOTIFY_SOCKET` (READY=1
//! only once every listener accepts connections, WATCHDOG=1 at half of `WATCHDOG_USEC`,
//! STOPPING=1 on SIGTERM), and where the logs go when `JOURNAL_STREAM` is set.
#![allow(clippy::unwrap_used)]

use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_redline-agent");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `run` on three free ports, exporting to a port nobody listens on, with a short drain so
/// SIGTERM ends it quickly; the caller adds the environment and stderr.
fn command(dir: &Path, ports: [u16; 3]) -> Command {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "exporter:\n  endpoint: http://127.0.0.1:{}\n  drain_timeout: 1s\n",
            free_port()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"])
        .arg(&config)
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .args(["--otlp-grpc-listen", &format!("127.0.0.1:{}", ports[0])])
        .args(["--otlp-http-listen", &format!("127.0.0.1:{}", ports[1])])
        .args(["--listen", &format!("127.0.0.1:{}", ports[2])])
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null());
    cmd
}

/// Kills the child if the test fails half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn terminate(child: &mut Guard) {
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no notification within the timeout")
        }
        Err(e) => panic!("recv: {e}"),
    }
}

#[test]
fn notify_socket_gets_ready_once_listening_then_watchdog_pings_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let mut child = Guard(
        command(&dir.path().join("data"), ports)
            .env("NOTIFY_SOCKET", &socket_path)
            // 1 s: pings every 0.5 s. WATCHDOG_PID is left unset, which sd_notify reads as
            // "this process" (systemd sets it to the main pid).
            .env("WATCHDOG_USEC", "1000000")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The first message is READY=1, and by then every listener accepts connections.
    assert_eq!(recv(&sock), "READY=1\n");
    for port in ports {
        TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("READY=1 sent before port {port} listened: {e}"));
    }

    // Then pings, about every half second (the exporter's loop answers).
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(recv(&sock), "WATCHDOG=1\n");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(10),
        "three pings took {took:?}"
    );

    // SIGTERM: STOPPING=1 (pings may still arrive before it), then a clean exit.
    terminate(&mut child);
    loop {
        match recv(&sock).as_str() {
            "STOPPING=1\n" => break,
            "WATCHDOG=1\n" => {}
            other => panic!("unexpected notification {other:?}"),
        }
    }
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

#[test]
fn without_watchdog_usec_it_sends_ready_and_stopping_but_no_pings() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = Guard(
        command(
            &dir.path().join("data"),
            [free_port(), free_port(), free_port()],
        )
        .env("NOTIFY_SOCKET", &socket_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    assert_eq!(recv(&sock), "READY=1\n");
    std::thread::sleep(Duration::from_millis(1500));
    terminate(&mut child);
    assert_eq!(recv(&sock), "STOPPING=1\n");
    assert!(child.0.wait().unwrap().success());
}

/// Runs the agent with stderr in a file, until ready, then stops it; returns stderr.
fn stderr_with_journal_stream(journal_stream: impl FnOnce(&std::fs::Metadata) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let value = journal_stream(&file.metadata().unwrap());
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = Guard(
        command(
            &dir.path().join("data"),
            [free_port(), free_port(), free_port()],
        )
        .env("NOTIFY_SOCKET", &socket_path)
        .env("JOURNAL_STREAM", value)
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap(),
    );
    assert_eq!(recv(&sock), "READY=1\n");
    terminate(&mut child);
    assert!(child.0.wait().unwrap().success());
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn journal_stream_naming_stderr_means_the_journal_and_json_lines_without_its_socket() {
    let text = stderr_with_journal_stream(|m| format!("{}:{}", m.dev(), m.ino()));
    if Path::new("/run/systemd/journal/socket").exists() {
        // A host with journald: the entries went there, not to stderr.
        assert!(!text.contains("redline-agent running"), "{text}");
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
        assert!(text.contains("redline-agent running"), "{text}");
    }
}

#[test]
fn journal_stream_naming_another_file_keeps_text() {
    // What a shell started from a service inherits: the variable, with stderr elsewhere.
    let text = stderr_with_journal_stream(|m| format!("{}:{}", m.dev(), m.ino() + 1));
    assert!(text.contains("redline-agent running"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with('{')),
        "JSON instead of text: {text}"
    );
}
