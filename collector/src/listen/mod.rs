//! The listeners' connection layer: accepting TCP connections, TLS handshakes, and the
//! bearer-token check every listener applies (`auth`).
//!
//! [`Incoming::spawn`] starts one accept task per listener. Plain connections are handed on
//! as they arrive; TLS handshakes run in their own tasks (at most [`MAX_HANDSHAKES`] at once,
//! each within [`HANDSHAKE_TIMEOUT`]) so a slow or hostile client cannot hold up the accept
//! loop, and a failed handshake (plaintext sent to a TLS port, an untrusted or expired client
//! certificate) is counted in `redline_collector_tls_handshake_failures_total` and closed.
//! The servers (tonic for gRPC, axum for HTTP) read finished connections from a bounded
//! channel, through [`Incoming`], which is both an axum `Listener` and a stream for tonic.
//!
//! Lifecycle: the accept task ends when the stop signal is raised or the servers drop their
//! [`Incoming`]; connections already handed over are the servers' to drain.

pub mod auth;
pub mod client;
pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

pub use auth::{Scope, TokenFiles, Tokens};
pub use tls::{ServerTls, TlsFiles};

/// Longest a TLS handshake may take before the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once per listener; further connections wait in the
/// kernel's accept queue.
pub const MAX_HANDSHAKES: usize = 256;
/// Accepted connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// An accepted connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        let tcp = match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        };
        tonic::transport::server::TcpConnectInfo {
            local_addr: tcp.local_addr().ok(),
            remote_addr: tcp.peer_addr().ok(),
        }
    }
}

/// The connections of one listener, ready to serve.
pub struct Incoming {
    local: SocketAddr,
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
}

impl Incoming {
    /// Starts the accept task of `listener` (named `name` in metrics and logs).
    pub fn spawn(
        listener: TcpListener,
        name: &'static str,
        tls: Option<ServerTls>,
        mut stop: watch::Receiver<bool>,
    ) -> io::Result<Incoming> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
            loop {
                let accepted = tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => break,
                    _ = tx.closed() => break,
                    accepted = listener.accept() => accepted,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors or a connection reset before accept: wait a
                        // little instead of spinning.
                        tracing::warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                match &tls {
                    None => {
                        if tx.send((Conn::Plain(tcp), peer)).await.is_err() {
                            break;
                        }
                    }
                    Some(tls) => {
                        let Ok(permit) = handshakes.clone().acquire_owned().await else {
                            break;
                        };
                        let acceptor = tls.acceptor();
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let _permit = permit;
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                                .await
                            {
                                Ok(Ok(stream)) => {
                                    let _ = tx.send((Conn::Tls(Box::new(stream)), peer)).await;
                                }
                                Ok(Err(e)) => {
                                    metrics::counter!("redline_collector_tls_handshake_failures_total", "listener" => name, "reason" => "handshake").increment(1);
                                    tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed");
                                }
                                Err(_) => {
                                    metrics::counter!("redline_collector_tls_handshake_failures_total", "listener" => name, "reason" => "timeout").increment(1);
                                    tracing::debug!(listener = name, %peer, "TLS handshake timed out");
                                }
                            }
                        });
                    }
                }
            }
        });
        Ok(Incoming { local, ready })
    }

    /// The connections as a stream, for tonic's `serve_with_incoming`.
    pub fn into_stream(self) -> impl tokio_stream::Stream<Item = io::Result<Conn>> + Send {
        tokio_stream::StreamExt::map(
            tokio_stream::wrappers::ReceiverStream::new(self.ready),
            |(c, _)| Ok(c),
        )
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task has stopped: the server's graceful shutdown ends the serve loop;
            // until then there is nothing more to accept.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Everything that secures the listeners, as loaded: the tokens and each listener's TLS.
/// Cheap to clone; [`Security::reload`] re-reads every file in place (SIGHUP).
#[derive(Clone)]
pub struct Security {
    pub tokens: Tokens,
    /// TLS of `otlp_grpc`, `otlp_http` and `http`, in that order; `None` is plaintext.
    pub tls: [Option<ServerTls>; 3],
}

impl Security {
    /// Reads the token files and builds the TLS configurations; any problem is an error
    /// naming the file.
    pub fn load(config: &crate::config::SecurityConfig) -> Result<Security, String> {
        let tokens = Tokens::load(&config.tokens).map_err(|e| e.to_string())?;
        let mut tls: [Option<ServerTls>; 3] = [None, None, None];
        if let Some(t) = &config.tls {
            for (i, name) in crate::config::ListenerName::ALL.into_iter().enumerate() {
                if !t.listeners.contains(&name) {
                    continue;
                }
                let alpn: &[&'static [u8]] = match name {
                    crate::config::ListenerName::OtlpGrpc => &[b"h2"],
                    _ => &[b"h2", b"http/1.1"],
                };
                let require = t.client_auth_listeners.contains(&name);
                tls[i] = Some(ServerTls::load(&t.files, require, alpn).map_err(|e| e.to_string())?);
            }
        }
        Ok(Security { tokens, tls })
    }

    /// Re-reads tokens and certificates; returns the problems (what failed keeps its
    /// previous state).
    pub fn reload(&self) -> Vec<String> {
        let mut problems = self.tokens.reload();
        // The listeners share files; one report per distinct failure is enough.
        for tls in self.tls.iter().flatten() {
            if let Err(e) = tls.reload() {
                let e = format!("{e}; the certificates in force stay");
                if !problems.contains(&e) {
                    problems.push(e);
                }
            }
        }
        problems
    }

    /// Applies a reloaded configuration's tokens and certificates: token files may be added,
    /// removed or renamed, and TLS listeners may use other files or change whether they ask
    /// for client certificates. Whether a listener speaks TLS at all is fixed until a restart
    /// (`crate::reload` reports that change). What fails keeps its previous state; the
    /// problems are returned.
    pub fn reconfigure(&self, config: &crate::config::SecurityConfig) -> Vec<String> {
        let mut problems = self.tokens.reconfigure(&config.tokens);
        for (name, tls) in crate::config::ListenerName::ALL.into_iter().zip(&self.tls) {
            let (Some(tls), Some(wanted)) = (tls, &config.tls) else {
                continue;
            };
            let require = wanted.client_auth_listeners.contains(&name);
            if let Err(e) = tls.reconfigure(&wanted.files, require) {
                let e = format!("{e}; the certificates in force stay");
                if !problems.contains(&e) {
                    problems.push(e);
                }
            }
        }
        problems
    }

    /// The URL scheme a listener speaks.
    pub fn scheme(&self, listener: crate::config::ListenerName) -> &'static str {
        let i = crate::config::ListenerName::ALL
            .iter()
            .position(|l| *l == listener)
            .unwrap_or(0);
        if self.tls[i].is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Counts a refused request.
pub fn count_denied(listener: &'static str, denied: auth::Denied) {
    metrics::counter!("redline_collector_unauthenticated_total", "listener" => listener, "reason" => denied.as_str()).increment(1);
}

/// The gRPC listener's token check, as a tonic interceptor: a missing or wrong token is
/// `UNAUTHENTICATED`, which OTLP clients do not retry.
pub fn grpc_auth(
    tokens: Tokens,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |request: tonic::Request<()>| {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(auth::bearer_value);
        match tokens.check(Scope::Ingest, presented) {
            Ok(()) => Ok(request),
            Err(denied) => {
                count_denied("otlp_grpc", denied);
                let message = denied.message(Scope::Ingest);
                Err(match denied {
                    auth::Denied::Forbidden => tonic::Status::permission_denied(message),
                    _ => tonic::Status::unauthenticated(message),
                })
            }
        }
    }
}

/// What an API request needs: `None` for the health probes and the signed GitHub webhook
/// (its HMAC signature is its authentication), `Read` for reads (including Prometheus' POST
/// forms of queries), `Write` for everything that changes state.
pub fn api_scope(method: &axum::http::Method, path: &str) -> Option<Scope> {
    use axum::http::Method;
    if matches!(path, "/healthz" | "/readyz" | "/api/v1/webhooks/github") {
        return None;
    }
    let read_by_post = matches!(
        path,
        "/api/v1/query" | "/api/v1/query_range" | "/api/v1/series" | "/api/v1/labels"
    );
    if *method == Method::GET
        || *method == Method::HEAD
        || *method == Method::OPTIONS
        || (*method == Method::POST && read_by_post)
    {
        Some(Scope::Read)
    } else {
        Some(Scope::Write)
    }
}

/// The HTTP API's token check, as axum middleware: 401 (no or unknown token) or 403 (a
/// token of another scope) with Prometheus' error envelope.
pub async fn api_auth(
    axum::extract::State(tokens): axum::extract::State<Tokens>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(scope) = api_scope(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    match tokens.check_headers(scope, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(denied) => {
            count_denied("http", denied);
            let (status, error_type) = match denied {
                auth::Denied::Forbidden => (axum::http::StatusCode::FORBIDDEN, "forbidden"),
                _ => (axum::http::StatusCode::UNAUTHORIZED, "unauthorized"),
            };
            let body = serde_json::json!({
                "status": "error",
                "errorType": error_type,
                "error": denied.message(scope),
            });
            (
                status,
                [
                    (axum::http::header::WWW_AUTHENTICATE, "Bearer"),
                    (axum::http::header::CONTENT_TYPE, "application/json"),
                ],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// The HTTP API's limit of requests in progress (`limits.api_max_concurrent_requests`): a
/// request that finds every permit taken is answered 429 with `Retry-After` and Prometheus'
/// error envelope, so a burst of heavy queries cannot pile up without bound. The health probes
/// are never turned away (an overloaded collector is still alive).
pub async fn api_concurrency(
    axum::extract::State(in_flight): axum::extract::State<Arc<Semaphore>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return next.run(request).await;
    }
    let Ok(_permit) = in_flight.try_acquire_owned() else {
        metrics::counter!("redline_collector_limit_exceeded_total", "limit" => "api_max_concurrent_requests").increment(1);
        let body = serde_json::json!({
            "status": "error",
            "errorType": "unavailable",
            "error": "too many API requests in progress (limits.api_max_concurrent_requests); retry later",
        });
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [
                (axum::http::header::RETRY_AFTER, "1"),
                (axum::http::header::CONTENT_TYPE, "application/json"),
            ],
            body.to_string(),
        )
            .into_response();
    };
    next.run(request).await
}
