//! What the black-box tests of both programs share: free loopback ports, a child process that
//! is killed if a test fails half-way, and the systemd protocol checks (`systemd`), which are
//! the same for the agent and the collector but for how each is started.
//!
//! A dev-dependency only: nothing here is shipped, and it may panic freely (a panic is a
//! failed test).
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command};

pub mod systemd;

/// A loopback port nobody listens on right now (the OS picks it; a test binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A started program, killed and reaped when the guard drops (a failed assertion included).
pub struct Guard(pub Child);

impl Guard {
    /// Sends SIGTERM, as systemd's `stop` does.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}: {status}", self.0.id());
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
