//! A round-robin HTTP proxy on loopback for the replicas load figure: each request goes to
//! the next backend, so consecutive requests of one MCP session land on different replicas.
//! Bounded: request bodies up to 1 MiB, responses streamed through as they come.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Largest request body forwarded (MCP requests of the benchmark are a few KiB).
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The proxy; it stops when dropped.
pub struct RoundRobin {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Backends {
    addrs: Vec<SocketAddr>,
    next: AtomicUsize,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl RoundRobin {
    /// Listens on a free loopback port and forwards to `backends` in turn.
    pub async fn start(backends: Vec<SocketAddr>) -> anyhow::Result<RoundRobin> {
        anyhow::ensure!(!backends.is_empty(), "the proxy needs at least one backend");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Backends {
            addrs: backends,
            next: AtomicUsize::new(0),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| forward(shared.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RoundRobin { addr, task })
    }
}

async fn forward(
    backends: Arc<Backends>,
    request: hyper::Request<Incoming>,
) -> anyhow::Result<hyper::Response<Incoming>> {
    let turn = backends.next.fetch_add(1, Ordering::Relaxed) % backends.addrs.len();
    let backend = backends.addrs[turn];
    let (mut parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("request body: {e}"))?
        .to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    parts.uri = format!("http://{backend}{path}").parse()?;
    let request = hyper::Request::from_parts(parts, Full::new(body));
    backends
        .client
        .request(request)
        .await
        .with_context(|| format!("forwarding to {backend}"))
}
