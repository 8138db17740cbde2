//! Black-box tests of the binary as systemd runs it (issue "Packaging and systemd"): the
//! `Type=notify` protocol over a datagram socket this test binds as `NOTIFY_SOCKET` (READY=1
//! only once every listener accepts connections, WATCHDOG=1 at half of `WATCHDOG_USEC`,
//! STOPPING=1 on SIGTERM), and where the logs go when `JOURNAL_STREAM` is set. The checks are
//! `redline_testkit::systemd`'s, shared with the agent; this file says how to start the
//! collector.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use redline_testkit::{free_port, systemd};

const BIN: &str = env!("CARGO_BIN_EXE_redline-collector");
/// Logged once the store is open.
const STARTED: &str = "store loaded";

/// `run` on three free ports with its data in `dir`; returns the command and its ports.
fn command(dir: &Path) -> (Command, [u16; 3]) {
    let ports = [free_port(), free_port(), free_port()];
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--otlp-grpc-listen", &format!("127.0.0.1:{}", ports[0])])
        .args(["--otlp-http-listen", &format!("127.0.0.1:{}", ports[1])])
        .args(["--http-listen", &format!("127.0.0.1:{}", ports[2])])
        .stdout(Stdio::null());
    for variable in systemd::VARIABLES {
        cmd.env_remove(variable);
    }
    (cmd, ports)
}

#[test]
fn notify_socket_gets_ready_once_listening_then_watchdog_pings_then_stopping() {
    // The pings come from the store's writer answering the watchdog probe.
    let dir = tempfile::tempdir().unwrap();
    let (cmd, ports) = command(dir.path());
    systemd::ready_then_watchdog_then_stopping(cmd, dir.path(), &ports);
}

#[test]
fn without_watchdog_usec_it_sends_ready_and_stopping_but_no_pings() {
    let dir = tempfile::tempdir().unwrap();
    systemd::no_pings_without_watchdog_usec(command(dir.path()).0, dir.path());
}

#[test]
fn journal_stream_naming_stderr_means_the_journal_and_json_lines_without_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    systemd::journal_stream_naming_stderr(command(dir.path()).0, dir.path(), STARTED);
}

#[test]
fn journal_stream_naming_another_file_keeps_text() {
    let dir = tempfile::tempdir().unwrap();
    systemd::journal_stream_naming_another_file(command(dir.path()).0, dir.path(), STARTED);
}
