//! The agent's listeners (OTLP/gRPC and OTLP/HTTP relay, `/metrics`): optional TLS and an
//! optional bearer token, both reloadable.
//!
//! [`Incoming`] is what a server accepts connections from: the plain `TcpListener`, or a
//! [`TlsListener`]. A `TlsListener` owns an accept task (spawned by [`TlsListener::new`]) that
//! accepts TCP connections and runs each TLS handshake in its own task, bounded in number
//! ([`MAX_HANDSHAKES`]) and time ([`HANDSHAKE_TIMEOUT`]), so a slow or hostile client never
//! holds up the others; finished handshakes reach the server through a bounded channel. Each
//! handshake uses the newest `rustls::ServerConfig` in the listener's credentials `watch`, so a
//! reload applies to the next connection. The accept task ends when the server drops the
//! `TlsListener` (its receiver closes).
//!
//! [`Gate`] checks the `authorization: Bearer <token>` of a request against the newest token in
//! the same `watch`, in constant time, and counts refusals in
//! `redline_agent_unauthenticated_total{listener}`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt as _;

use crate::credentials::{ListenerCredentials, bearer_matches};
use crate::telemetry::{Listener, Telemetry};

/// Most TLS handshakes in progress per listener; connections beyond it are closed at once.
pub const MAX_HANDSHAKES: usize = 256;
/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const READY_CAPACITY: usize = 64;

/// The sender side of a listener's credentials, held by the agent's reload task; receivers
/// live in the listener's [`Gate`] and [`TlsListener`].
pub type CredentialsTx = watch::Sender<ListenerCredentials>;

/// Where a server takes its connections from.
#[derive(Debug)]
pub enum Incoming {
    Plain(TcpListener),
    Tls(TlsListener),
}

impl Incoming {
    /// Wraps `listener` in TLS when the listener's credentials have a TLS configuration (fixed
    /// at start; a reload changes certificates, not whether TLS is on).
    pub fn new(
        listener: TcpListener,
        creds: &watch::Receiver<ListenerCredentials>,
        which: Listener,
        telemetry: Arc<Telemetry>,
    ) -> Incoming {
        if creds.borrow().tls.is_some() {
            Incoming::Tls(TlsListener::new(listener, creds.clone(), which, telemetry))
        } else {
            Incoming::Plain(listener)
        }
    }
}

/// A TLS listener (see the module doc).
#[derive(Debug)]
pub struct TlsListener {
    /// Handshaken connections from the accept task; dropping it ends that task.
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Spawns the accept task over `listener`.
    pub fn new(
        listener: TcpListener,
        creds: watch::Receiver<ListenerCredentials>,
        which: Listener,
        telemetry: Arc<Telemetry>,
    ) -> TlsListener {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, ready) = mpsc::channel(READY_CAPACITY);
        tokio::spawn(accept_loop(listener, creds, tx, which, telemetry));
        TlsListener { ready, local }
    }
}

async fn accept_loop(
    listener: TcpListener,
    creds: watch::Receiver<ListenerCredentials>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    which: Listener,
    telemetry: Arc<Telemetry>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (tcp, peer) = tokio::select! {
            () = tx.closed() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(listener = which.as_str(), error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            telemetry.tls_handshake_failure(which).increment(1);
            continue; // too many handshakes in progress: close this one
        };
        let Some(config) = creds.borrow().tls.clone() else {
            continue;
        };
        let tx = tx.clone();
        let telemetry = telemetry.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => {
                    telemetry.tls_handshake_failure(which).increment(1);
                    tracing::debug!(listener = which.as_str(), %peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    telemetry.tls_handshake_failure(which).increment(1);
                }
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task only ends when this receiver is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl TlsListener {
    /// The handshaken connections as a stream, for tonic's `serve_with_incoming_shutdown`.
    pub fn into_stream(
        self,
    ) -> impl tokio_stream::Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> {
        tokio_stream::wrappers::ReceiverStream::new(self.ready)
            .map(|(tls, _)| Ok::<_, std::io::Error>(tls))
    }
}

/// Checks bearer tokens for one listener.
#[derive(Debug, Clone)]
pub struct Gate {
    creds: watch::Receiver<ListenerCredentials>,
    which: Listener,
    telemetry: Arc<Telemetry>,
}

impl Gate {
    pub fn new(
        creds: watch::Receiver<ListenerCredentials>,
        which: Listener,
        telemetry: Arc<Telemetry>,
    ) -> Gate {
        Gate {
            creds,
            which,
            telemetry,
        }
    }

    /// Does a request with this `authorization` value get in? Always, when no token is
    /// configured; refusals are counted.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let ok = match &self.creds.borrow().token {
            None => true,
            Some(token) => bearer_matches(authorization, token),
        };
        if !ok {
            self.telemetry.unauthenticated(self.which).increment(1);
        }
        ok
    }
}
