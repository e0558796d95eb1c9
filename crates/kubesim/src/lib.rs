//! kubesim: a Kubernetes API server that serves a cluster snapshot over HTTPS.
//!
//! It answers the REST API closely enough that `kubectl` and kube-rs work against it
//! unchanged: discovery, OpenAPI v2/v3 documents, list/get with label and field selectors
//! and paging, watches, pod logs, server-side tables, the metrics API, access reviews, and
//! mutations kept in memory (server-side apply included). Tests,
//! benchmarks, `kubecode sim` and the embedded demo cluster are all served by it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let snapshot = kubesim::Snapshot::load(std::path::Path::new("snapshot/"), &Default::default())?;
//! let server = kubesim::serve(snapshot, kubesim::ServerConfig::default()).await?;
//! std::fs::write("kubeconfig", server.kubeconfig())?;
//! # Ok(()) }
//! ```

pub mod apply;
pub mod builder;
pub mod controller;
pub mod demo;
pub mod faults;
pub mod generate;
pub mod openapi;
pub mod patch;
pub mod resources;
pub mod selector;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod table;

use std::sync::Arc;

pub use controller::DEFAULT_READY_AFTER;
pub use faults::{FaultKind, FaultRule};
pub use generate::GenerateSpec;
pub use server::{ForbidRule, Rbac, RunningServer, ServerConfig, StartError};
pub use snapshot::{LoadOptions, Snapshot, SnapshotError};
pub use store::Store;

/// Why `serve` failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The snapshot could not be turned into a store.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Serves a snapshot; returns once the server accepts connections.
pub async fn serve(snapshot: Snapshot, config: ServerConfig) -> Result<RunningServer, ServeError> {
    let store = Arc::new(Store::from_snapshot(snapshot)?);
    Ok(server::start(store, config).await?)
}
