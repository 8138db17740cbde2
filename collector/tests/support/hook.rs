//! A webhook receiver for the tests: records every POST (path, headers, body) and answers 200.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Default)]
pub struct Hook {
    pub received: Arc<Mutex<Vec<Received>>>,
}

async fn record(State(hook): State<Hook>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    hook.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    StatusCode::OK
}

impl Hook {
    /// Listens on 127.0.0.1, any path.
    pub async fn start() -> (Hook, SocketAddr) {
        let hook = Hook::default();
        let app = axum::Router::new()
            .fallback(axum::routing::post(record))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, addr)
    }

    /// Waits (bounded; not a timing assertion) for a request to `path` whose JSON body
    /// satisfies `pred`.
    pub async fn wait(&self, path: &str, pred: impl Fn(&Value) -> bool) -> Received {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .received
                .lock()
                .unwrap()
                .iter()
                .find(|r| r.path == path && pred(&r.json()))
                .cloned();
            if let Some(r) = found {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no matching request to {path}: {:#?}",
                self.received
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|r| (r.path.clone(), r.json()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
