//! Finding credentials as kubectl does: `--kubeconfig`, else the merged `KUBECONFIG` list,
//! else `~/.kube/config`, else the in-cluster service account.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Serialize;

use crate::error::{ClusterError, ErrorKind, Result};

/// Where credentials come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A kubeconfig (one file, or several merged).
    Kubeconfig(Box<Kubeconfig>),
    /// The pod's service account (`KUBERNETES_SERVICE_HOST` and the mounted token).
    InCluster,
}

/// One context, as `kubernetes.contexts()` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ContextInfo {
    /// Context name.
    pub name: String,
    /// The cluster it points at.
    pub cluster: String,
    /// Its default namespace, if it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Whether it is the current (default) context.
    pub current: bool,
}

/// The name kubecode gives the in-cluster credentials.
pub const IN_CLUSTER: &str = "in-cluster";

fn unreadable(path: &Path, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::new(
        ErrorKind::Unavailable,
        format!("cannot read the kubeconfig {}: {e}", path.display()),
    )
}

/// Resolves the credential source. `explicit` is `--kubeconfig`.
pub fn resolve(explicit: Option<&Path>) -> Result<Source> {
    if let Some(path) = explicit {
        let kc = Kubeconfig::read_from(path).map_err(|e| unreadable(path, e))?;
        return Ok(Source::Kubeconfig(Box::new(kc)));
    }
    if let Some(list) = std::env::var_os("KUBECONFIG") {
        // Like kubectl, files in the list that do not exist are skipped.
        let paths: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
        if !paths.is_empty() {
            let mut merged = Kubeconfig::default();
            for p in &paths {
                let next = Kubeconfig::read_from(p).map_err(|e| unreadable(p, e))?;
                merged = merged.merge(next).map_err(|e| unreadable(p, e))?;
            }
            return Ok(Source::Kubeconfig(Box::new(merged)));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let default = Path::new(&home).join(".kube").join("config");
        if default.exists() {
            let kc = Kubeconfig::read_from(&default).map_err(|e| unreadable(&default, e))?;
            return Ok(Source::Kubeconfig(Box::new(kc)));
        }
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Ok(Source::InCluster);
    }
    Err(ClusterError::new(
        ErrorKind::Unavailable,
        "no cluster credentials found: pass --kubeconfig FILE, set KUBECONFIG, create ~/.kube/config, or run inside a cluster",
    ))
}

impl Source {
    /// The contexts this source offers.
    pub fn contexts(&self) -> Vec<ContextInfo> {
        match self {
            Source::InCluster => vec![ContextInfo {
                name: IN_CLUSTER.into(),
                cluster: IN_CLUSTER.into(),
                namespace: None,
                current: true,
            }],
            Source::Kubeconfig(kc) => kc
                .contexts
                .iter()
                .map(|c| ContextInfo {
                    name: c.name.clone(),
                    cluster: c
                        .context
                        .as_ref()
                        .map(|x| x.cluster.clone())
                        .unwrap_or_default(),
                    namespace: c.context.as_ref().and_then(|x| x.namespace.clone()),
                    current: kc.current_context.as_deref() == Some(c.name.as_str()),
                })
                .collect(),
        }
    }

    /// The context used when a call names none.
    pub fn current(&self) -> Option<String> {
        match self {
            Source::InCluster => Some(IN_CLUSTER.into()),
            Source::Kubeconfig(kc) => kc
                .current_context
                .clone()
                .or_else(|| kc.contexts.first().map(|c| c.name.clone())),
        }
    }

    /// A kube-rs configuration for one context.
    pub async fn config(&self, context: &str) -> Result<kube::Config> {
        match self {
            Source::InCluster => kube::Config::incluster().map_err(|e| {
                ClusterError::new(
                    ErrorKind::Unavailable,
                    format!("cannot use the in-cluster service account: {e}"),
                )
            }),
            Source::Kubeconfig(kc) => {
                if !kc.contexts.iter().any(|c| c.name == context) {
                    let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                    return Err(ClusterError::bad_input(
                        "context",
                        format!(
                            "no context named {context:?}; the kubeconfig has: {}",
                            names.join(", ")
                        ),
                    ));
                }
                let options = KubeConfigOptions {
                    context: Some(context.to_string()),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig((**kc).clone(), &options)
                    .await
                    .map_err(|e| {
                        ClusterError::new(
                            ErrorKind::Unavailable,
                            format!("cannot use context {context:?}: {e}"),
                        )
                    })
            }
        }
    }
}
