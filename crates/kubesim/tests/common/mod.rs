//! Shared test set-up: a kubesim server on a free loopback port and a kube-rs client for it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubesim::{RunningServer, ServerConfig, Snapshot};

/// The real-world dump vendored in the repository's `fixtures/`.
pub fn real_dump() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/real-world/aks-2020-cluster-info-dump")
}

/// A kube-rs client for a running server.
pub async fn client(server: &RunningServer) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig is usable");
    // kube-rs retries 429/503/504 up to 15 times with backoff of up to 1000 s; tests look at
    // the server's answers, not at the client's retries.
    config.default_retry = false;
    Client::try_from(config).expect("client builds")
}

/// Serves a snapshot with a config and returns the server and a client.
pub async fn serve_with(snapshot: Snapshot, config: ServerConfig) -> (RunningServer, Client) {
    let server = kubesim::serve(snapshot, config)
        .await
        .expect("server starts");
    let client = client(&server).await;
    (server, client)
}

/// Serves the demo cluster.
pub async fn demo() -> (RunningServer, Client) {
    serve_with(kubesim::demo::snapshot(), ServerConfig::default()).await
}

/// The API error a kube-rs call failed with.
pub fn api_error<T: std::fmt::Debug>(r: kube::Result<T>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(status)) => status,
        Ok(_) => panic!("expected an API error, got a success"),
        Err(other) => panic!("expected an API error, got {other}"),
    }
}

/// The name of the first pod a label selector picks.
pub async fn pod_named(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    selector: &str,
) -> String {
    let list = pods
        .list(&kube::api::ListParams::default().labels(selector))
        .await
        .expect("pods list");
    list.items
        .into_iter()
        .find_map(|p| p.metadata.name)
        .unwrap_or_else(|| panic!("no pod matches {selector}"))
}
