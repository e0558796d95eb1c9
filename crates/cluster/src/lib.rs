//! Cluster access for kubecode: credentials resolved as kubectl resolves them, one client per
//! context created on first use, a discovery cache, and the read operations of CONTRACT §3.2
//! (list, get, logs, events, metrics, contexts, API resources, Helm releases).
//!
//! Reads are GETs. The only requests that may change the cluster are in `change.rs`: dry runs
//! of planned changes, and [`Cluster::apply_change`], which the server calls only for a plan a
//! person approved.

mod change;
pub mod compact;
mod discovery;
mod error;
mod helm;
mod kubeconfig;
mod logs;
mod managed;
mod observe;
mod openapi;
mod raw;
mod reads;
mod transport;
mod view;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub use change::{
    ChangeRequest, ChangeTarget, DeletePodArgs, NodeArgs, Observation, PatchArgs, PatchKind,
    PlannedChange, RestartArgs, RollbackArgs, ScaleArgs, SetImageArgs, WaitArgs, WaitCondition,
    diff_objects,
};
pub use discovery::{ApiResource, resolve as find_kind};
pub use error::{ClusterError, ErrorKind, Result};
pub use helm::{HelmGetQuery, HelmHistoryQuery, HelmListQuery, HelmRelease, HelmReleaseSummary};
pub use kubeconfig::{ContextInfo, Source};
pub use logs::{
    DEFAULT_LINES_PER_POD, LogsQuery, MAX_SELECTED_PODS, PodLog, PodLogs, filter_log,
    render_pod_logs,
};
pub use observe::ApiObserver;
pub use openapi::KindSchema;
pub use reads::{EventType, EventsQuery, GetQuery, ListQuery, MetricsKind, MetricsQuery};
pub use transport::{Limits, Retry};
pub use view::{View, managed_paths};

use transport::Transport;

/// One context's API server, its default namespace and its discovery cache.
pub(crate) struct Context {
    pub transport: Transport,
    pub namespace: String,
    discovery: tokio::sync::RwLock<Option<Arc<Vec<ApiResource>>>>,
    /// OpenAPI v3 documents by group-version (`apis/apps/v1`).
    openapi: tokio::sync::Mutex<HashMap<String, Arc<serde_json::Value>>>,
}

/// Access to the clusters of a kubeconfig (or the in-cluster service account).
pub struct Cluster {
    source: Source,
    default_context: Option<String>,
    limits: Limits,
    /// Who requests are made as, when not the credentials' own account.
    impersonate: Option<(String, Vec<String>)>,
    contexts: tokio::sync::Mutex<HashMap<String, Arc<Context>>>,
    observer: observe::ObserverSlot,
}

impl Cluster {
    /// Resolves credentials as kubectl does (`kubeconfig` is `--kubeconfig`); `context`
    /// overrides the kubeconfig's current context.
    pub fn new(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        limits: Limits,
    ) -> Result<Cluster> {
        Ok(Cluster::with_source(
            kubeconfig::resolve(kubeconfig)?,
            context,
            limits,
        ))
    }

    /// Uses a kubeconfig held in memory (the embedded demo cluster's, for instance).
    pub fn from_kubeconfig_yaml(
        yaml: &str,
        context: Option<&str>,
        limits: Limits,
    ) -> Result<Cluster> {
        let kc = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| {
            ClusterError::new(ErrorKind::Unavailable, format!("invalid kubeconfig: {e}"))
        })?;
        Ok(Cluster::with_source(
            Source::Kubeconfig(Box::new(kc)),
            context,
            limits,
        ))
    }

    fn with_source(source: Source, context: Option<&str>, limits: Limits) -> Cluster {
        let default_context = context.map(str::to_string).or_else(|| source.current());
        Cluster {
            source,
            default_context,
            limits,
            impersonate: None,
            contexts: tokio::sync::Mutex::new(HashMap::new()),
            observer: observe::ObserverSlot::default(),
        }
    }

    /// The same clusters seen as another user: every request carries `Impersonate-User`
    /// and `Impersonate-Group`, so the API server's RBAC decides for that person (the
    /// credentials need only the `impersonate` verb). Clients are made on first use.
    pub fn impersonating(&self, user: &str, groups: &[String]) -> Cluster {
        Cluster {
            source: self.source.clone(),
            default_context: self.default_context.clone(),
            limits: self.limits.clone(),
            impersonate: Some((user.to_string(), groups.to_vec())),
            contexts: tokio::sync::Mutex::new(HashMap::new()),
            // The same metrics whoever the requests are made as.
            observer: self.observer.clone(),
        }
    }

    /// Reports every API request, retry and throttle of every context to `observer` (the
    /// server's metrics). Only the first observer set is kept; returns false for a later one.
    pub fn observe(&self, observer: Arc<dyn ApiObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// The contexts on offer; `current` marks the one calls use by default.
    pub fn contexts(&self) -> Vec<ContextInfo> {
        let mut all = self.source.contexts();
        for c in &mut all {
            c.current = Some(&c.name) == self.default_context.as_ref();
        }
        all
    }

    /// The client for a context (the default one when `name` is `None`), created on first use.
    pub(crate) async fn context(&self, name: Option<&str>) -> Result<Arc<Context>> {
        let name = match name.or(self.default_context.as_deref()) {
            Some(n) => n.to_string(),
            None => {
                return Err(ClusterError::bad_input(
                    "context",
                    "the kubeconfig has no current context: pass `context`, or set one with `kubectl config use-context`",
                ));
            }
        };
        let mut contexts = self.contexts.lock().await;
        if let Some(c) = contexts.get(&name) {
            return Ok(c.clone());
        }
        let mut config = self.source.config(&name).await?;
        config.default_retry = false;
        config.read_timeout = Some(self.limits.request_timeout);
        config.connect_timeout = Some(std::time::Duration::from_secs(10));
        if let Some((user, groups)) = &self.impersonate {
            config.auth_info.impersonate = Some(user.clone());
            config.auth_info.impersonate_groups = (!groups.is_empty()).then(|| groups.clone());
        }
        let url = config.cluster_url.to_string();
        let namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config).map_err(|e| {
            ClusterError::new(
                ErrorKind::Unavailable,
                format!("cannot create a client for context {name:?}: {e}"),
            )
        })?;
        let context = Arc::new(Context {
            transport: Transport::new(client, url, self.limits.clone())
                .observed_by(self.observer.clone()),
            namespace,
            discovery: tokio::sync::RwLock::new(None),
            openapi: tokio::sync::Mutex::new(HashMap::new()),
        });
        contexts.insert(name, context.clone());
        Ok(context)
    }

    /// The namespace calls use when they name none: the context's, else `default`.
    pub async fn default_namespace(&self, context: Option<&str>) -> Result<String> {
        Ok(self.context(context).await?.namespace.clone())
    }

    /// Every resource the context serves (from the discovery cache).
    pub async fn api_resources(&self, context: Option<&str>) -> Result<Vec<ApiResource>> {
        let ctx = self.context(context).await?;
        Ok(resources(&ctx, false).await?.as_ref().clone())
    }

    /// Resolves a kind (Kind, plural, short name or `plural.group`), refreshing discovery once
    /// when it is unknown (a CRD may have been added since).
    pub(crate) async fn resolve(&self, ctx: &Context, kind: &str) -> Result<ApiResource> {
        if kind.trim().is_empty() {
            return Err(ClusterError::bad_input(
                "kind",
                "`kind` is empty: pass a kind such as \"Pod\", \"deploy\" or \"widgets.example.com\"",
            ));
        }
        let cached = resources(ctx, false).await?;
        if let Some(r) = discovery::resolve(&cached, kind) {
            return Ok(r.clone());
        }
        let fresh = resources(ctx, true).await?;
        discovery::resolve(&fresh, kind)
            .cloned()
            .ok_or_else(|| discovery::unknown_kind(&fresh, kind))
    }
}

async fn resources(ctx: &Context, refresh: bool) -> Result<Arc<Vec<ApiResource>>> {
    if !refresh && let Some(r) = ctx.discovery.read().await.as_ref() {
        return Ok(r.clone());
    }
    let mut slot = ctx.discovery.write().await;
    let found = Arc::new(discovery::discover(&ctx.transport).await?);
    *slot = Some(found.clone());
    Ok(found)
}
