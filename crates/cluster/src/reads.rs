//! list, get, events and metrics.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::compact;
use crate::discovery::ApiResource;
use crate::error::{ClusterError, ErrorKind, Result};
use crate::raw::{Page, PageHead, tidy_text};
use crate::view::View;
use crate::{Cluster, Context};

/// Arguments of `kubernetes.list`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// Kind, plural, short name or `plural.group`.
    pub kind: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Every namespace.
    #[serde(default)]
    pub all_namespaces: bool,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
    /// Most objects to return.
    pub limit: Option<u64>,
    /// Dotted paths to keep in each object (`["metadata.name", "status.containerStatuses"]`;
    /// a path through a list applies to each item). `kind`, `metadata.name` and
    /// `metadata.namespace` are always kept. Default: whole objects.
    pub fields: Option<Vec<String>>,
    /// Keep a summary of `metadata.managedFields` as `metadata.managers`:
    /// `[{manager, operation, time, fields}]` (who changed which fields, and when).
    #[serde(default)]
    pub managers: bool,
    /// One compact row per object with the columns `kubectl get` prints (`{name, namespace,
    /// ready, status, restarts, age, ...}`) instead of whole objects.
    #[serde(default)]
    pub rows: bool,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `kubernetes.get`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetQuery {
    /// Kind, plural, short name or `plural.group`.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Dotted paths to keep (`["spec.template.spec.containers.image", "status"]`).
    /// `kind`, `metadata.name` and `metadata.namespace` are always kept. Default: the whole object.
    pub fields: Option<Vec<String>>,
    /// Keep a summary of `metadata.managedFields` as `metadata.managers`:
    /// `[{manager, operation, time, fields}]` (who changed which fields, and when).
    #[serde(default)]
    pub managers: bool,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `kubernetes.events`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsQuery {
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Every namespace.
    #[serde(default)]
    pub all_namespaces: bool,
    /// Kind of the involved object (`Pod`).
    pub kind: Option<String>,
    /// Name of the involved object.
    pub name: Option<String>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub event_type: Option<EventType>,
    /// Only events seen in the last N seconds.
    pub since_seconds: Option<u64>,
    /// Dotted paths to keep in each event (`["reason", "message", "last"]`); `object` is
    /// always kept.
    pub fields: Option<Vec<String>>,
    /// The API's own Event objects instead of compact ones.
    #[serde(default)]
    pub raw: bool,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// The two event types: `Normal` (routine) and `Warning` (something went wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[allow(missing_docs)]
pub enum EventType {
    Normal,
    Warning,
}

/// What `kubernetes.metrics` reads: pods or nodes. Spelled as every function that takes a
/// kind accepts it (CONTRACT §2): the kind (`Pod`), the plural (`pods`), a short name (`po`)
/// or `plural.group`, in any case; the metrics kinds (`PodMetrics`) too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum MetricsKind {
    #[default]
    Pods,
    Nodes,
}

impl MetricsKind {
    /// The metrics kind a kind's spelling names, if any.
    pub fn from_spelling(kind: &str) -> Option<MetricsKind> {
        let k = kind.trim().to_ascii_lowercase();
        let k = k.strip_suffix(".metrics.k8s.io").unwrap_or(&k);
        match k {
            "pod" | "pods" | "po" | "podmetrics" => Some(MetricsKind::Pods),
            "node" | "nodes" | "no" | "nodemetrics" => Some(MetricsKind::Nodes),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for MetricsKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let kind = String::deserialize(d)?;
        MetricsKind::from_spelling(&kind).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "metrics exist for pods and nodes only, not {kind:?}: pass kind \"Pod\" or \"Node\""
            ))
        })
    }
}

/// Arguments of `kubernetes.metrics`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsQuery {
    /// `Pod` or `Node` (or `pods`, `po`, `nodes`, `no`: any spelling of the two kinds).
    #[schemars(with = "String")]
    pub kind: MetricsKind,
    /// Namespace for pods (default: the context's).
    pub namespace: Option<String>,
    /// One pod or node.
    pub name: Option<String>,
    /// The API's own PodMetrics/NodeMetrics objects instead of millicores and bytes.
    #[serde(default)]
    pub raw: bool,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Which objects of a resource a list asks for.
#[derive(Debug, Default)]
pub(crate) struct Selection<'a> {
    /// One namespace, or all when `None` (always `None` for cluster-scoped kinds).
    pub namespace: Option<&'a str>,
    /// `labelSelector`.
    pub labels: Option<String>,
    /// `fieldSelector`.
    pub fields: Option<String>,
    /// Most objects to return.
    pub limit: Option<u64>,
    /// What to hand over per object.
    pub form: Form,
}

impl Default for Form {
    fn default() -> Form {
        Form::Objects(View::default())
    }
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

/// A sink of objects as a sink of their JSON text (which the list path has validated).
fn decoded<'a>(sink: &'a mut (dyn FnMut(Value) + Send)) -> impl FnMut(String) + Send + 'a {
    move |text| {
        if let Ok(v) = serde_json::from_str(&text) {
            sink(v)
        }
    }
}

/// Fills `kind`/`apiVersion` (lists omit them), then applies the view (which drops or
/// summarises `managedFields`).
pub(crate) fn tidy(mut item: Value, r: &ApiResource, view: &View) -> Value {
    if let Value::Object(m) = &mut item {
        m.entry("kind")
            .or_insert_with(|| Value::String(r.kind.clone()));
        m.entry("apiVersion")
            .or_insert_with(|| Value::String(r.api_version()));
    }
    view.apply(item)
}

/// The media type of a server-side Table (what `kubectl get` asks for).
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// What a list hands over per object.
#[derive(Debug, Clone)]
pub(crate) enum Form {
    /// The objects, as the view keeps them.
    Objects(View),
    /// The server-side table's rows.
    Rows,
}

fn timestamp(v: &Value, paths: &[&str]) -> Option<DateTime<Utc>> {
    paths
        .iter()
        .filter_map(|p| v.pointer(p).and_then(Value::as_str))
        .find_map(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// When an event was last seen, by the fields the two event APIs use.
fn last_seen(event: &Value) -> Option<DateTime<Utc>> {
    timestamp(
        event,
        &[
            "/series/lastObservedTime",
            "/lastTimestamp",
            "/eventTime",
            "/firstTimestamp",
            "/metadata/creationTimestamp",
        ],
    )
}

/// Refuses a name or namespace that is not a single URL path segment: it goes into the
/// request's path, where `/`, `?`, `#`, `%` or `..` would reach a different resource or add
/// query parameters. (Kubernetes refuses such names for every kind.)
pub(crate) fn path_segment(field: &str, value: &str) -> Result<()> {
    let bad = value == "."
        || value == ".."
        || value.chars().any(|c| {
            matches!(c, '/' | '?' | '#' | '%' | '\\') || c.is_whitespace() || c.is_control()
        });
    if bad {
        return Err(ClusterError::bad_input(
            field,
            format!(
                "`{field}` {value:?} is not a valid Kubernetes object name: names cannot contain '/', '?', '#', '%', spaces, or be '.' or '..'"
            ),
        ));
    }
    Ok(())
}

impl Cluster {
    pub(crate) fn namespace_for(
        ctx: &Context,
        r: &ApiResource,
        namespace: &Option<String>,
        all: bool,
    ) -> Result<Option<String>> {
        if !r.namespaced || all {
            return Ok(None);
        }
        let ns = namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| ctx.namespace.clone());
        path_segment("namespace", &ns)?;
        Ok(Some(ns))
    }

    /// Lists objects, following `continue` pages up to `limit` (or the list cap, beyond which
    /// the call fails and says how to narrow it).
    pub async fn list(&self, q: &ListQuery) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        self.list_each(q, &mut |item| items.push(item)).await?;
        Ok(items)
    }

    pub(crate) async fn list_resource(
        &self,
        ctx: &Arc<Context>,
        r: &ApiResource,
        sel: &Selection<'_>,
    ) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        self.list_pages(ctx, r, sel, &mut decoded(&mut |v| items.push(v)))
            .await?;
        Ok(items)
    }

    /// Like [`Cluster::list`], but hands each object to `sink` as its page arrives instead of
    /// collecting them, so that a caller can convert a large list without holding it twice.
    /// Returns how many objects were handed over.
    pub async fn list_each(
        &self,
        q: &ListQuery,
        sink: &mut (dyn FnMut(Value) + Send),
    ) -> Result<usize> {
        self.list_each_text(q, &mut decoded(sink)).await
    }

    /// Like [`Cluster::list_each`], with each object as compact JSON text, tidied
    /// (`kind`/`apiVersion` filled in, `managedFields` dropped) but never decoded: the
    /// fast path for large lists.
    pub async fn list_each_text(
        &self,
        q: &ListQuery,
        sink: &mut (dyn FnMut(String) + Send),
    ) -> Result<usize> {
        let view = View::new(q.fields.as_deref(), q.managers)?;
        let form = match (q.rows, view.is_whole()) {
            (false, _) => Form::Objects(view),
            (true, true) => Form::Rows,
            (true, false) => {
                return Err(ClusterError::bad_input(
                    "rows",
                    "`rows: true` gives the columns kubectl prints and cannot be combined with `fields` or `managers`: pass one or the other",
                ));
            }
        };
        let ctx = self.context(q.context.as_deref()).await?;
        let r = self.resolve(&ctx, &q.kind).await?;
        let namespace = Self::namespace_for(&ctx, &r, &q.namespace, q.all_namespaces)?;
        let sel = Selection {
            namespace: namespace.as_deref(),
            labels: q.label_selector.clone(),
            fields: q.field_selector.clone(),
            limit: q.limit,
            form,
        };
        self.list_pages(&ctx, &r, &sel, sink).await
    }

    /// Follows a list's pages. The next page is requested, parsed and tidied on another
    /// task while the objects of the current one go to `sink`: the API server, this task and
    /// the caller's shaping work at the same time instead of taking turns.
    async fn list_pages(
        &self,
        ctx: &Arc<Context>,
        r: &ApiResource,
        sel: &Selection<'_>,
        sink: &mut (dyn FnMut(String) + Send),
    ) -> Result<usize> {
        let cap = ctx.transport.limits().list_cap;
        let wanted = sel.limit.map(|l| l as usize).filter(|l| *l > 0);
        let path = r.collection_path(sel.namespace);
        let page_url = |room: usize, token: Option<String>| {
            let q = query(&[
                ("labelSelector", sel.labels.clone()),
                ("fieldSelector", sel.fields.clone()),
                ("limit", Some(room.min(500).to_string())),
                ("continue", token),
            ]);
            format!("{path}?{q}")
        };
        // A page's fetch says its continue token as soon as the body is in (a quick read of
        // the page's metadata), so the next page is requested before this one's objects are
        // parsed and tidied.
        let fetch = |url: String| {
            let (ctx, r, form) = (ctx.clone(), r.clone(), sel.form.clone());
            let (token_tx, token_rx) = tokio::sync::oneshot::channel();
            let page = tokio::spawn(async move {
                let accept = match form {
                    Form::Rows => TABLE,
                    Form::Objects(_) => "application/json",
                };
                let body = ctx.transport.get_as(&url, accept).await?;
                let unreadable = |e: serde_json::Error| {
                    ClusterError::new(
                        ErrorKind::Unavailable,
                        format!("{url} did not answer with a list: {e}"),
                    )
                };
                let head: PageHead = serde_json::from_slice(&body).map_err(unreadable)?;
                let _ = token_tx.send(head.continue_token());
                let items: Vec<String> = match &form {
                    Form::Rows => {
                        let table: Value = serde_json::from_slice(&body).map_err(unreadable)?;
                        if table.get("kind").and_then(Value::as_str) != Some("Table") {
                            return Err(ClusterError::new(
                                ErrorKind::Unavailable,
                                format!(
                                    "the API server does not print {} as a table: pass rows: false for whole objects",
                                    r.name
                                ),
                            ));
                        }
                        compact::table_rows(&table)
                            .iter()
                            .map(Value::to_string)
                            .collect()
                    }
                    Form::Objects(view) => {
                        let page: Page = serde_json::from_slice(&body).map_err(unreadable)?;
                        drop(body);
                        let items = page.into_items();
                        if view.is_whole() {
                            items.iter().map(|item| tidy_text(item, &r)).collect()
                        } else {
                            items
                                .iter()
                                .filter_map(|item| serde_json::from_str(item.get()).ok())
                                .map(|v| tidy(v, &r, view).to_string())
                                .collect()
                        }
                    }
                };
                Ok::<_, ClusterError>(items)
            });
            (token_rx, page)
        };
        let failed = |e: tokio::task::JoinError| {
            ClusterError::new(
                ErrorKind::Unavailable,
                format!("listing {path} failed: {e}"),
            )
        };
        let not_found = |e: ClusterError| {
            if e.kind == ErrorKind::NotFound {
                ClusterError::not_found(format!("{} (listing {} at {path})", e.message, r.name))
            } else {
                e
            }
        };
        // `room`: how many more objects the caller takes (the cap plus one, to notice a list
        // over the cap); each page asks for at most 500 of them.
        let room = |count: usize| wanted.unwrap_or(cap + 1).saturating_sub(count);
        let more_wanted = |count: usize| wanted.is_none_or(|w| count < w) && count <= cap;
        let mut count = 0usize;
        let mut next = Some((room(0).min(500), fetch(page_url(room(0), None))));
        while let Some((asked, (token, pending))) = next.take() {
            // No token: the last page, or a failed fetch (its error comes with the page).
            let token = token.await.ok().flatten();
            // The next page is requested now, as if this one were full (it is, unless a field
            // selector thinned it; then it is requested below once the count is known).
            let assumed = count + asked;
            if let Some(t) = token.clone().filter(|_| more_wanted(assumed)) {
                next = Some((
                    room(assumed).min(500),
                    fetch(page_url(room(assumed), Some(t))),
                ));
            }
            let items = pending.await.map_err(failed)?.map_err(not_found)?;
            let taking = wanted.map_or(items.len(), |w| items.len().min(w - count));
            for item in items.into_iter().take(taking) {
                sink(item);
            }
            count += taking;
            if count > cap {
                return Err(ClusterError::new(
                    ErrorKind::LimitExceeded {
                        limit: "listCap".into(),
                        value: cap as u64,
                    },
                    format!(
                        "more than {cap} {} match: narrow the call with namespace, labelSelector or fieldSelector, or pass limit",
                        r.name
                    ),
                ));
            }
            if next.is_none()
                && let Some(t) = token.filter(|_| more_wanted(count))
            {
                next = Some((room(count).min(500), fetch(page_url(room(count), Some(t)))));
            }
        }
        Ok(count)
    }

    /// Gets one object.
    pub async fn get(&self, q: &GetQuery) -> Result<Value> {
        if q.name.is_empty() {
            return Err(ClusterError::bad_input(
                "name",
                "`name` is empty: pass the object's name",
            ));
        }
        path_segment("name", &q.name)?;
        let view = View::new(q.fields.as_deref(), q.managers)?;
        let ctx = self.context(q.context.as_deref()).await?;
        let r = self.resolve(&ctx, &q.kind).await?;
        let namespace = Self::namespace_for(&ctx, &r, &q.namespace, false)?;
        let path = format!("{}/{}", r.collection_path(namespace.as_deref()), q.name);
        match ctx.transport.get_json(&path).await {
            Ok(v) => Ok(tidy(v, &r, &view)),
            Err(e) if e.kind == ErrorKind::NotFound => {
                let place = namespace
                    .map(|n| format!(" in namespace {n:?}"))
                    .unwrap_or_default();
                Err(ClusterError::not_found(format!(
                    "{} {:?} not found{place}: list them with kubernetes.list({{kind: {:?}}}) to see the names",
                    r.kind, q.name, r.kind
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Core v1 events, oldest first (newest last), filtered by involved object, type and age.
    pub async fn events(&self, q: &EventsQuery) -> Result<Vec<Value>> {
        let ctx = self.context(q.context.as_deref()).await?;
        let r = self.resolve(&ctx, "events").await?;
        let mut fields = Vec::new();
        if let Some(kind) = &q.kind {
            // Events name the involved object's Kind; accept `pod` or `pods` as well.
            let resolved = self
                .resolve(&ctx, kind)
                .await
                .map(|r| r.kind)
                .unwrap_or_else(|_| kind.clone());
            fields.push(format!("involvedObject.kind={resolved}"));
        }
        if let Some(name) = &q.name {
            fields.push(format!("involvedObject.name={name}"));
        }
        if let Some(t) = q.event_type {
            fields.push(format!("type={t:?}"));
        }
        let field_selector = (!fields.is_empty()).then(|| fields.join(","));
        let namespace = Self::namespace_for(&ctx, &r, &q.namespace, q.all_namespaces)?;
        let mut events = self
            .list_resource(
                &ctx,
                &r,
                &Selection {
                    namespace: namespace.as_deref(),
                    fields: field_selector,
                    ..Selection::default()
                },
            )
            .await?;
        if let Some(secs) = q.since_seconds {
            let cutoff = ctx.transport.now() - chrono::Duration::seconds(secs as i64);
            events.retain(|e| last_seen(e).is_some_and(|t| t >= cutoff));
        }
        events.sort_by_key(last_seen);
        Ok(events)
    }

    /// Events as a model reads them: compact (see [`compact::event`]) unless `raw`, with only
    /// the `fields` asked for.
    pub async fn events_view(&self, q: &EventsQuery) -> Result<Vec<Value>> {
        let view = if q.raw {
            View::new(q.fields.as_deref(), false)?
        } else {
            View::keeping(q.fields.as_deref(), false, &["object"])?
        };
        let events = self.events(q).await?;
        Ok(events
            .into_iter()
            .map(|e| view.apply(if q.raw { e } else { compact::event(&e) }))
            .collect())
    }

    /// Metrics as a model reads them: millicores and bytes per pod and container, or per
    /// node with its share of allocatable (see [`compact`]), unless `raw`.
    pub async fn metrics_view(&self, q: &MetricsQuery) -> Result<Vec<Value>> {
        let items = self.metrics(q).await?;
        if q.raw {
            return Ok(items);
        }
        match q.kind {
            MetricsKind::Pods => Ok(items.iter().map(compact::pod_metrics).collect()),
            MetricsKind::Nodes => {
                // The percentages are a bonus: without the right to read nodes, none.
                let nodes = self
                    .list(&ListQuery {
                        kind: "nodes".into(),
                        fields: Some(vec!["status.allocatable".into()]),
                        context: q.context.clone(),
                        ..ListQuery::default()
                    })
                    .await
                    .unwrap_or_default();
                let allocatable = |name: Option<&str>| {
                    nodes
                        .iter()
                        .find(|n| n.pointer("/metadata/name").and_then(Value::as_str) == name)
                        .and_then(|n| n.pointer("/status/allocatable"))
                };
                Ok(items
                    .iter()
                    .map(|m| {
                        let name = m.pointer("/metadata/name").and_then(Value::as_str);
                        compact::node_metrics(m, allocatable(name))
                    })
                    .collect())
            }
        }
    }

    /// Pod or node metrics from metrics-server.
    pub async fn metrics(&self, q: &MetricsQuery) -> Result<Vec<Value>> {
        let ctx = self.context(q.context.as_deref()).await?;
        let (kind, namespaced) = match q.kind {
            MetricsKind::Pods => ("pods", true),
            MetricsKind::Nodes => ("nodes", false),
        };
        let resources = crate::resources(&ctx, false).await?;
        let Some(r) = resources
            .iter()
            .find(|r| r.group == "metrics.k8s.io" && r.name == kind)
            .cloned()
        else {
            return Err(ClusterError::new(
                ErrorKind::Unavailable,
                "the metrics API (metrics.k8s.io) is not served by this cluster: metrics-server is not installed. Use resource requests/limits from kubernetes.get instead",
            ));
        };
        let namespace = namespaced.then(|| {
            q.namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| ctx.namespace.clone())
        });
        if let Some(ns) = &namespace {
            path_segment("namespace", ns)?;
        }
        match &q.name {
            Some(name) => {
                path_segment("name", name)?;
                let path = format!("{}/{name}", r.collection_path(namespace.as_deref()));
                Ok(vec![tidy(
                    ctx.transport.get_json(&path).await?,
                    &r,
                    &View::default(),
                )])
            }
            None => {
                let sel = Selection {
                    namespace: namespace.as_deref(),
                    ..Selection::default()
                };
                self.list_resource(&ctx, &r, &sel).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_take_any_spelling_of_pod_and_node() {
        for (spelling, kind) in [
            ("Pod", Some(MetricsKind::Pods)),
            ("pods", Some(MetricsKind::Pods)),
            ("po", Some(MetricsKind::Pods)),
            ("PodMetrics", Some(MetricsKind::Pods)),
            ("pods.metrics.k8s.io", Some(MetricsKind::Pods)),
            ("Node", Some(MetricsKind::Nodes)),
            ("nodes", Some(MetricsKind::Nodes)),
            ("no", Some(MetricsKind::Nodes)),
            ("Deployment", None),
            ("", None),
        ] {
            assert_eq!(MetricsKind::from_spelling(spelling), kind, "{spelling}");
        }
        let e = serde_json::from_value::<MetricsQuery>(serde_json::json!({"kind": "Deployment"}))
            .expect_err("Deployment has no metrics");
        assert!(
            e.to_string().contains("pass kind \"Pod\" or \"Node\""),
            "{e}"
        );
        let q: MetricsQuery =
            serde_json::from_value(serde_json::json!({"kind": "Pod"})).expect("Pod");
        assert_eq!(q.kind, MetricsKind::Pods);
    }

    #[test]
    fn names_are_single_path_segments() {
        for ok in [
            "payments-api",
            "system:controller:x",
            "a.b_c",
            "kube-root-ca.crt",
        ] {
            assert!(super::path_segment("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "../secrets/x",
            "x?dryRun=All",
            "x#y",
            "x%2f",
            ".",
            "..",
            "a b",
            "a/b",
        ] {
            let e = super::path_segment("name", bad).unwrap_err();
            assert_eq!(e.kind.code(), "BadInput", "{bad}");
        }
    }
}
