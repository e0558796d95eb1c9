//! The HTTPS server: TLS, connections, and the handle a caller keeps while it runs.

mod access;
mod discovery;
mod http;
mod identity;
mod objects;
mod openapi;
mod pod_logs;
mod protobuf;
mod request_log;
mod reviews;
mod route;
mod tls;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use access::ForbidRule;
pub use discovery::KUBERNETES_VERSION;
pub use identity::{Rbac, Rule as RbacRule, TokenUser};
pub use tls::kubeconfig;

use crate::faults::{FaultRule, Faults};
use crate::store::Store;

/// How to run a server.
#[derive(Debug, Default)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port. Defaults to `127.0.0.1:0`.
    pub addr: Option<SocketAddr>,
    /// Bearer token clients must send; random when unset.
    pub token: Option<String>,
    /// Append one JSON line per request to this file.
    pub request_log: Option<PathBuf>,
    /// Faults to inject.
    pub faults: Vec<FaultRule>,
    /// Seed of the random source that decides which requests faults hit.
    pub fault_seed: u64,
    /// Requests to refuse with 403 Forbidden.
    pub forbid: Vec<ForbidRule>,
    /// Users, their tokens and what each may do; without it everything is allowed.
    pub rbac: Option<Rbac>,
    /// How long pods the controller creates (for a scaled or rolled Deployment, a
    /// ReplicaSet or StatefulSet, a deleted pod replaced) stay Pending before they run and
    /// are Ready. `None` is `DEFAULT_READY_AFTER` (500 ms); zero starts them at once.
    pub ready_after: Option<Duration>,
}

/// State shared by every connection.
pub(crate) struct App {
    pub store: Arc<Store>,
    pub token: String,
    pub faults: RwLock<Arc<Faults>>,
    pub request_log: Option<request_log::RequestLog>,
    pub forbid: Vec<ForbidRule>,
    pub rbac: Option<Rbac>,
    pub url: String,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub openapi: openapi::Cache,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The request log could not be opened.
    #[error("cannot open the request log {path}: {source}")]
    RequestLog {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TLS set-up failed.
    #[error("{0}")]
    Tls(String),
}

/// A server that is accepting connections. Dropping it stops the server.
pub struct RunningServer {
    addr: SocketAddr,
    url: String,
    ca_pem: String,
    app: Arc<App>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts serving `store` over HTTPS. Returns once the socket is bound and accepting.
pub async fn start(store: Arc<Store>, config: ServerConfig) -> Result<RunningServer, StartError> {
    let requested = config
        .addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = TcpListener::bind(requested)
        .await
        .map_err(|source| StartError::Bind {
            addr: requested,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: requested,
        source,
    })?;
    let identity = tls::identity(addr).map_err(StartError::Tls)?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let url = format!("https://{host}:{}", addr.port());
    let request_log =
        match &config.request_log {
            Some(path) => Some(request_log::RequestLog::open(path).map_err(|source| {
                StartError::RequestLog {
                    path: path.clone(),
                    source,
                }
            })?),
            None => None,
        };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    // The controller gives writes their consequences; it sees only writes from now on.
    crate::controller::spawn(
        store.clone(),
        config
            .ready_after
            .unwrap_or(crate::controller::DEFAULT_READY_AFTER),
        shutdown.clone(),
    );
    let app = Arc::new(App {
        store,
        token: config.token.unwrap_or_else(random_token),
        faults: RwLock::new(Arc::new(Faults::new(config.faults, config.fault_seed))),
        request_log,
        forbid: config.forbid,
        rbac: config.rbac,
        url: url.clone(),
        shutdown,
        openapi: openapi::Cache::default(),
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.tls);
    let task = tokio::spawn(accept_loop(listener, acceptor, app.clone()));
    Ok(RunningServer {
        addr,
        url,
        ca_pem: identity.ca_pem,
        app,
        stop,
        task,
    })
}

async fn accept_loop(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, app: Arc<App>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let app = app.clone();
                connections.spawn(async move {
                    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| http::handle(app.clone(), req));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    // A dropped-connection fault or a client going away ends the connection; nothing to report.
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://HOST:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.app.token
    }

    /// The store being served (tests read and change it directly).
    pub fn store(&self) -> &Arc<Store> {
        &self.app.store
    }

    /// A kubeconfig for this server (context `kubesim`, namespace `default`).
    pub fn kubeconfig(&self) -> String {
        tls::kubeconfig(&self.url, &self.ca_pem, &self.app.token, "default")
    }

    /// Writes the kubeconfig atomically: the file appears complete or not at all.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, self.kubeconfig())?;
        std::fs::rename(&tmp, path)
    }

    /// Replaces the fault rules while the server runs.
    pub fn set_faults(&self, rules: Vec<FaultRule>, seed: u64) {
        let mut faults = self.app.faults.write().unwrap_or_else(|e| e.into_inner());
        *faults = Arc::new(Faults::new(rules, seed));
    }

    /// Stops accepting, ends watches and closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Runs until the process is stopped.
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}
