//! Planned changes (CONTRACT §3.6): each change function computes the exact request it would
//! send, sends it once with `dryRun=All` (the API server changes nothing), and returns the
//! object as it would be, a readable diff, and the request itself with the `resourceVersion`
//! it was planned against as a precondition. Nothing here applies a change on its own: only
//! [`Cluster::apply_change`] sends a real write, and the server calls it only for a plan a
//! person approved.

use bytes::Bytes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::discovery::ApiResource;
use crate::error::{ClusterError, ErrorKind, Result};
use crate::reads::path_segment;
use crate::transport::Retry;
use crate::{Cluster, Context};

/// The field manager kubecode's writes are recorded under.
const FIELD_MANAGER: &str = "kubecode";

/// The annotation `kubectl rollout restart` sets on the pod template.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The annotation a Deployment and its ReplicaSets carry their revision in.
const REVISION: &str = "deployment.kubernetes.io/revision";

/// Arguments of `kubernetes.scale`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleArgs {
    /// Deployment, StatefulSet or ReplicaSet (any spelling).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// The number of replicas wanted.
    pub replicas: u32,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `kubernetes.restart` (`kubectl rollout restart`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartArgs {
    /// Deployment, StatefulSet or DaemonSet (any spelling).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `kubernetes.rollback` (`kubectl rollout undo`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackArgs {
    /// Deployment (any spelling).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// The revision to go back to (default: the one before the current).
    pub revision: Option<u64>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `kubernetes.setImage`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetImageArgs {
    /// Deployment, StatefulSet, DaemonSet, ReplicaSet or Pod (any spelling).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// The container's name (an init container's also works).
    pub container: String,
    /// The new image (`registry/app:1.2.3`).
    pub image: String,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// How a patch's body is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PatchKind {
    /// JSON merge patch (RFC 7386): objects merge, lists are replaced.
    #[default]
    Merge,
    /// Kubernetes' strategic merge patch: lists such as `containers` merge by name.
    Strategic,
    /// JSON patch (RFC 6902): a list of operations.
    Json,
}

impl PatchKind {
    fn content_type(self) -> &'static str {
        match self {
            PatchKind::Merge => "application/merge-patch+json",
            PatchKind::Strategic => "application/strategic-merge-patch+json",
            PatchKind::Json => "application/json-patch+json",
        }
    }
}

/// Arguments of `kubernetes.patch`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchArgs {
    /// Kind, plural, short name or `plural.group` (not Secret).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// The patch: an object (merge, strategic) or a list of operations (json).
    pub patch: Value,
    /// `merge` (default), `strategic` or `json`.
    #[serde(rename = "type")]
    pub kind_of_patch: Option<PatchKind>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `kubernetes.cordon` and `kubernetes.uncordon`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeArgs {
    /// The node's name.
    pub name: String,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `kubernetes.deletePod`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletePodArgs {
    /// The pod's name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// The exact request a planned change sends, fixed when it was planned: sending it later
/// sends the same bytes (a restart's time included), with its precondition inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRequest {
    /// `PATCH` or `DELETE`.
    pub method: String,
    /// The object's path, without a query.
    pub path: String,
    /// The body's media type (the patch type).
    pub content_type: String,
    /// The JSON body: the patch, or the DeleteOptions.
    pub body: Value,
    /// The kubeconfig context it goes to.
    pub context: Option<String>,
}

impl ChangeRequest {
    /// The same request with another `resourceVersion` precondition: for a later change of an
    /// object this plan already changed (its precondition becomes the version that write
    /// made, so a third party's change in between is still caught).
    pub fn with_resource_version(&self, rv: &str) -> ChangeRequest {
        let mut next = self.clone();
        match &mut next.body {
            Value::Array(ops) => {
                if let Some(test) = ops.first_mut().filter(|op| {
                    op.get("op").and_then(Value::as_str) == Some("test")
                        && op.get("path").and_then(Value::as_str)
                            == Some("/metadata/resourceVersion")
                }) {
                    test["value"] = json!(rv);
                }
            }
            body if body.get("preconditions").is_some() => {
                body["preconditions"]["resourceVersion"] = json!(rv);
            }
            body => {
                if body.pointer("/metadata/resourceVersion").is_some() {
                    body["metadata"]["resourceVersion"] = json!(rv);
                }
            }
        }
        next
    }
}

/// What a change is about, for people: kind, name, namespace and what is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeTarget {
    /// The object's kind (`Deployment`).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace (none for cluster-scoped objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What the change does, in a few words (`scale to 3 replicas`).
    pub action: String,
}

impl ChangeTarget {
    /// `Deployment shop/web`.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// A change computed and checked by a dry run, not applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// What it changes.
    pub target: ChangeTarget,
    /// The request to send.
    pub request: ChangeRequest,
    /// The object's `resourceVersion` when planned (the request's precondition).
    pub resource_version: String,
    /// The object as the API server's dry run says it would be (managedFields removed).
    pub object: Value,
    /// A unified diff of the object's YAML before and after.
    pub diff: String,
}

/// What a condition of `kubernetes.waitFor` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum WaitCondition {
    /// A Deployment, StatefulSet or DaemonSet runs its current template everywhere, all available.
    RolledOut,
    /// A Pod or Node is Ready; a workload has all its replicas ready.
    Ready,
    /// The object is gone.
    Deleted,
    /// A Node is cordoned.
    Unschedulable,
}

/// Arguments of `kubernetes.waitFor`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitArgs {
    /// Kind (any spelling).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// `rolledOut`, `ready`, `deleted` or `unschedulable`.
    pub condition: WaitCondition,
    /// Most seconds to wait (default 20; the run's wall limit still applies).
    pub timeout_seconds: Option<u64>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// One look at an object for `kubernetes.waitFor`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Whether the condition holds.
    pub met: bool,
    /// What was seen, in words (`2 of 3 replicas updated, 1 available`).
    pub state: String,
}

/// The object at hand: its API resource, namespace and path.
struct Located {
    resource: ApiResource,
    namespace: Option<String>,
    path: String,
}

fn is_kind(r: &ApiResource, group: &str, names: &[&str]) -> bool {
    r.group == group && names.contains(&r.name.as_str())
}

/// Removes what changes on every write and says nothing to a reviewer.
fn for_review(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for noise in ["managedFields", "resourceVersion", "generation"] {
            meta.remove(noise);
        }
    }
    v
}

fn yaml(v: &Value) -> String {
    serde_saphyr::to_string(v)
        .unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default() + "\n")
}

/// A unified diff of two objects' YAML, headed by the object's name.
pub fn diff_objects(label: &str, before: &Value, after: Option<&Value>) -> String {
    let old = yaml(&for_review(before.clone()));
    let new = after
        .map(|a| yaml(&for_review(a.clone())))
        .unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&old, &new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("{label} (now)"), &format!("{label} (planned)"))
        .to_string();
    if text.is_empty() {
        format!("{label}: no difference (the change would leave the object as it is)\n")
    } else {
        text
    }
}

fn string_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

impl Cluster {
    async fn locate(
        &self,
        ctx: &Context,
        kind: &str,
        name: &str,
        namespace: &Option<String>,
    ) -> Result<Located> {
        if name.is_empty() {
            return Err(ClusterError::bad_input(
                "name",
                "`name` is empty: pass the object's name",
            ));
        }
        path_segment("name", name)?;
        let resource = self.resolve(ctx, kind).await?;
        if is_kind(&resource, "", &["secrets"]) {
            return Err(ClusterError::bad_input(
                "kind",
                "kubecode does not change Secrets: it never handles Secret values. Change the Secret with your own tools (kubectl, your secret manager)",
            ));
        }
        let namespace = Self::namespace_for(ctx, &resource, namespace, false)?;
        let path = format!("{}/{name}", resource.collection_path(namespace.as_deref()));
        Ok(Located {
            resource,
            namespace,
            path,
        })
    }

    async fn current(&self, ctx: &Context, at: &Located, name: &str) -> Result<Value> {
        match ctx.transport.get_json(&at.path).await {
            Ok(v) => Ok(v),
            Err(e) if e.kind == ErrorKind::NotFound => {
                let place = at
                    .namespace
                    .as_ref()
                    .map(|n| format!(" in namespace {n:?}"))
                    .unwrap_or_default();
                Err(ClusterError::not_found(format!(
                    "{} {name:?} not found{place}: list them with kubernetes.list({{kind: {:?}}}) to see the names",
                    at.resource.kind, at.resource.kind
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a request with `dryRun=All` and turns the answer into a planned change.
    #[allow(clippy::too_many_arguments)]
    async fn plan(
        &self,
        ctx: &Context,
        context: Option<&str>,
        at: &Located,
        current: &Value,
        name: &str,
        action: String,
        method: &str,
        content_type: &str,
        body: Value,
    ) -> Result<PlannedChange> {
        let resource_version = string_at(current, "/metadata/resourceVersion")
            .unwrap_or_default()
            .to_string();
        let request = ChangeRequest {
            method: method.to_string(),
            path: at.path.clone(),
            content_type: content_type.to_string(),
            body,
            context: context.map(str::to_string),
        };
        let answer = send(ctx, &request, true).await?;
        let target = ChangeTarget {
            kind: at.resource.kind.clone(),
            name: name.to_string(),
            namespace: at.namespace.clone(),
            action,
        };
        let deleting = method == "DELETE";
        let mut object = if deleting { current.clone() } else { answer };
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
            // The dry run's version is not one the object will have; the plan's own
            // `resourceVersion` is the one its precondition checks.
            if !deleting {
                meta.remove("resourceVersion");
            }
        }
        let diff = diff_objects(
            &target.label(),
            current,
            if deleting { None } else { Some(&object) },
        );
        Ok(PlannedChange {
            target,
            request,
            resource_version,
            object,
            diff,
        })
    }

    /// Plans `kubernetes.scale`.
    pub async fn plan_scale(&self, a: &ScaleArgs) -> Result<PlannedChange> {
        let ctx = self.context(a.context.as_deref()).await?;
        let at = self.locate(&ctx, &a.kind, &a.name, &a.namespace).await?;
        if !is_kind(
            &at.resource,
            "apps",
            &["deployments", "statefulsets", "replicasets"],
        ) {
            return Err(ClusterError::bad_input(
                "kind",
                format!(
                    "{} cannot be scaled here: scale takes a Deployment, StatefulSet or ReplicaSet",
                    at.resource.kind
                ),
            ));
        }
        let current = self.current(&ctx, &at, &a.name).await?;
        let rv = string_at(&current, "/metadata/resourceVersion").unwrap_or_default();
        let body = json!({"metadata": {"resourceVersion": rv}, "spec": {"replicas": a.replicas}});
        let was = int_at(&current, "/spec/replicas");
        let action = format!("scale from {was} to {} replicas", a.replicas);
        self.plan(
            &ctx,
            a.context.as_deref(),
            &at,
            &current,
            &a.name,
            action,
            "PATCH",
            PatchKind::Merge.content_type(),
            body,
        )
        .await
    }

    /// Plans `kubernetes.restart`: the pod template's `restartedAt` annotation is set to the
    /// time of planning, so the request is the same whenever it is sent.
    pub async fn plan_restart(&self, a: &RestartArgs) -> Result<PlannedChange> {
        let ctx = self.context(a.context.as_deref()).await?;
        let at = self.locate(&ctx, &a.kind, &a.name, &a.namespace).await?;
        if !is_kind(
            &at.resource,
            "apps",
            &["deployments", "statefulsets", "daemonsets"],
        ) {
            return Err(ClusterError::bad_input(
                "kind",
                format!(
                    "{} cannot be restarted: restart takes a Deployment, StatefulSet or DaemonSet (delete a single pod with deletePod)",
                    at.resource.kind
                ),
            ));
        }
        let current = self.current(&ctx, &at, &a.name).await?;
        let rv = string_at(&current, "/metadata/resourceVersion").unwrap_or_default();
        let now = ctx
            .transport
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = json!({"metadata": {"resourceVersion": rv},
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
        self.plan(
            &ctx,
            a.context.as_deref(),
            &at,
            &current,
            &a.name,
            format!("rollout restart (restartedAt {now})"),
            "PATCH",
            PatchKind::Merge.content_type(),
            body,
        )
        .await
    }

    /// Plans `kubernetes.rollback`: the Deployment's template becomes that of the ReplicaSet
    /// of the revision asked for (default: the one before the current), as `kubectl rollout
    /// undo` does.
    pub async fn plan_rollback(&self, a: &RollbackArgs) -> Result<PlannedChange> {
        let ctx = self.context(a.context.as_deref()).await?;
        let at = self.locate(&ctx, &a.kind, &a.name, &a.namespace).await?;
        if !is_kind(&at.resource, "apps", &["deployments"]) {
            return Err(ClusterError::bad_input(
                "kind",
                format!(
                    "{} cannot be rolled back here: rollback takes a Deployment (its revisions are its ReplicaSets)",
                    at.resource.kind
                ),
            ));
        }
        let current = self.current(&ctx, &at, &a.name).await?;
        let uid = string_at(&current, "/metadata/uid").unwrap_or_default();
        let now: u64 = string_at(
            &current,
            &format!("/metadata/annotations/{}", REVISION.replace('/', "~1")),
        )
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
        let rs = self.resolve(&ctx, "replicasets.apps").await?;
        let list = ctx
            .transport
            .get_json(&rs.collection_path(at.namespace.as_deref()))
            .await?;
        let mut revisions: Vec<(u64, Value)> = list
            .get("items")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter(|r| {
                        r.pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|o| {
                                o.iter().any(|o| {
                                    o.get("uid").and_then(Value::as_str) == Some(uid)
                                        && o.get("controller").and_then(Value::as_bool)
                                            == Some(true)
                                })
                            })
                    })
                    .filter_map(|r| {
                        let n = r
                            .pointer("/metadata/annotations")
                            .and_then(|m| m.get(REVISION))
                            .and_then(Value::as_str)
                            .and_then(|n| n.parse::<u64>().ok())?;
                        Some((n, r.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        revisions.sort_by_key(|(n, _)| *n);
        let known = revisions
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let wanted = match a.revision {
            Some(0) | None => revisions
                .iter()
                .rev()
                .find(|(n, _)| *n < now)
                .ok_or_else(|| {
                    ClusterError::bad_input(
                        "revision",
                        format!(
                            "Deployment {:?} has no revision before the current one ({now}) to roll back to; its revisions: [{known}]",
                            a.name
                        ),
                    )
                })?,
            Some(n) => revisions.iter().find(|(r, _)| *r == n).ok_or_else(|| {
                ClusterError::bad_input(
                    "revision",
                    format!(
                        "Deployment {:?} has no revision {n}; its revisions: [{known}] (the current is {now})",
                        a.name
                    ),
                )
            })?,
        };
        let (revision, replica_set) = wanted;
        let mut template = replica_set
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        // The hash label is the ReplicaSet's own, not the template's (kubectl drops it too).
        if let Some(labels) = template
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove("pod-template-hash");
        }
        let rv = string_at(&current, "/metadata/resourceVersion").unwrap_or_default();
        let body = json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/spec/template", "value": template},
        ]);
        self.plan(
            &ctx,
            a.context.as_deref(),
            &at,
            &current,
            &a.name,
            format!("roll back from revision {now} to revision {revision}"),
            "PATCH",
            PatchKind::Json.content_type(),
            body,
        )
        .await
    }

    /// Plans `kubernetes.setImage`.
    pub async fn plan_set_image(&self, a: &SetImageArgs) -> Result<PlannedChange> {
        let ctx = self.context(a.context.as_deref()).await?;
        let at = self.locate(&ctx, &a.kind, &a.name, &a.namespace).await?;
        let pod_spec = if is_kind(&at.resource, "", &["pods"]) {
            "/spec"
        } else if is_kind(
            &at.resource,
            "apps",
            &["deployments", "statefulsets", "daemonsets", "replicasets"],
        ) {
            "/spec/template/spec"
        } else {
            return Err(ClusterError::bad_input(
                "kind",
                format!(
                    "setImage takes a Deployment, StatefulSet, DaemonSet, ReplicaSet or Pod, not {}; use patch for other kinds",
                    at.resource.kind
                ),
            ));
        };
        if a.image.trim().is_empty() {
            return Err(ClusterError::bad_input(
                "image",
                "`image` is empty: pass the image reference, such as \"registry/app:1.2.3\"",
            ));
        }
        let current = self.current(&ctx, &at, &a.name).await?;
        let names = |list: &str| -> Vec<String> {
            current
                .pointer(&format!("{pod_spec}/{list}"))
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (containers, init) = (names("containers"), names("initContainers"));
        let list = if containers.contains(&a.container) {
            "containers"
        } else if init.contains(&a.container) {
            "initContainers"
        } else {
            return Err(ClusterError::bad_input(
                "container",
                format!(
                    "{} {:?} has no container {:?}; its containers: [{}]",
                    at.resource.kind,
                    a.name,
                    a.container,
                    containers
                        .iter()
                        .chain(init.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let rv = string_at(&current, "/metadata/resourceVersion").unwrap_or_default();
        let mut patch = json!({list: [{"name": a.container, "image": a.image}]});
        for key in pod_spec.trim_start_matches('/').split('/').rev() {
            patch = json!({ key: patch });
        }
        patch["metadata"] = json!({"resourceVersion": rv});
        self.plan(
            &ctx,
            a.context.as_deref(),
            &at,
            &current,
            &a.name,
            format!("set image of container {} to {}", a.container, a.image),
            "PATCH",
            PatchKind::Strategic.content_type(),
            patch,
        )
        .await
    }

    /// Plans `kubernetes.patch`: the planned `resourceVersion` goes into the patch (merge and
    /// strategic) or a leading `test` operation (json).
    pub async fn plan_patch(&self, a: &PatchArgs) -> Result<PlannedChange> {
        let ctx = self.context(a.context.as_deref()).await?;
        let at = self.locate(&ctx, &a.kind, &a.name, &a.namespace).await?;
        let kind = a.kind_of_patch.unwrap_or_default();
        let current = self.current(&ctx, &at, &a.name).await?;
        let rv = string_at(&current, "/metadata/resourceVersion").unwrap_or_default();
        let body = match (kind, &a.patch) {
            (PatchKind::Json, Value::Array(ops)) => {
                let mut all =
                    vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv})];
                all.extend(ops.iter().cloned());
                Value::Array(all)
            }
            (PatchKind::Json, _) => {
                return Err(ClusterError::bad_input(
                    "patch",
                    "a json patch is a list of operations, such as [{op: \"replace\", path: \"/spec/replicas\", value: 2}]",
                ));
            }
            (_, Value::Object(_)) => {
                let mut body = a.patch.clone();
                if !body.get("metadata").is_some_and(Value::is_object) {
                    body["metadata"] = json!({});
                }
                body["metadata"]["resourceVersion"] = json!(rv);
                body
            }
            (_, _) => {
                return Err(ClusterError::bad_input(
                    "patch",
                    "a merge or strategic patch is an object, such as {spec: {replicas: 2}}; for a list of operations pass type: \"json\"",
                ));
            }
        };
        let label = match kind {
            PatchKind::Merge => "merge",
            PatchKind::Strategic => "strategic merge",
            PatchKind::Json => "json",
        };
        self.plan(
            &ctx,
            a.context.as_deref(),
            &at,
            &current,
            &a.name,
            format!("{label} patch"),
            "PATCH",
            kind.content_type(),
            body,
        )
        .await
    }

    /// Plans `kubernetes.cordon` (`unschedulable: true`) or `kubernetes.uncordon`.
    pub async fn plan_cordon(&self, a: &NodeArgs, cordon: bool) -> Result<PlannedChange> {
        let ctx = self.context(a.context.as_deref()).await?;
        let at = self.locate(&ctx, "nodes", &a.name, &None).await?;
        let current = self.current(&ctx, &at, &a.name).await?;
        let rv = string_at(&current, "/metadata/resourceVersion").unwrap_or_default();
        let value = if cordon { json!(true) } else { Value::Null };
        let body = json!({"metadata": {"resourceVersion": rv}, "spec": {"unschedulable": value}});
        self.plan(
            &ctx,
            a.context.as_deref(),
            &at,
            &current,
            &a.name,
            if cordon { "cordon" } else { "uncordon" }.to_string(),
            "PATCH",
            PatchKind::Merge.content_type(),
            body,
        )
        .await
    }

    /// Plans `kubernetes.deletePod`, with the pod's `resourceVersion` and `uid` as
    /// preconditions (a pod of the same name made since is not deleted).
    pub async fn plan_delete_pod(&self, a: &DeletePodArgs) -> Result<PlannedChange> {
        let ctx = self.context(a.context.as_deref()).await?;
        let at = self.locate(&ctx, "pods", &a.name, &a.namespace).await?;
        let current = self.current(&ctx, &at, &a.name).await?;
        let rv = string_at(&current, "/metadata/resourceVersion").unwrap_or_default();
        let uid = string_at(&current, "/metadata/uid").unwrap_or_default();
        let body = json!({"apiVersion": "v1", "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": rv, "uid": uid}});
        self.plan(
            &ctx,
            a.context.as_deref(),
            &at,
            &current,
            &a.name,
            "delete".to_string(),
            "DELETE",
            "application/json",
            body,
        )
        .await
    }

    /// Sends a planned request for real. Its precondition makes it fail with a conflict
    /// (`Conflict`, 409) when the object changed since planning; it is never repeated after a
    /// failure that may have come after it was applied.
    pub async fn apply_change(&self, request: &ChangeRequest) -> Result<Value> {
        let ctx = self.context(request.context.as_deref()).await?;
        send(&ctx, request, false).await
    }

    /// The precondition for a later change of an object this plan already changed: the
    /// version our write made, or the object's current version when only its status and
    /// bookkeeping changed since (a controller reporting on our write), so that a person's
    /// or another client's change in between is still refused.
    pub async fn version_after_own_write(
        &self,
        request: &ChangeRequest,
        written: &Value,
    ) -> Result<String> {
        let ctx = self.context(request.context.as_deref()).await?;
        let ours = string_at(written, "/metadata/resourceVersion")
            .unwrap_or_default()
            .to_string();
        let now = ctx.transport.get_json(&request.path).await?;
        let same = |v: &Value| {
            let mut v = for_review(v.clone());
            if let Value::Object(m) = &mut v {
                m.remove("status");
            }
            // The deployment controller records the revision it rolled on the Deployment.
            if let Some(Value::Object(a)) = v.pointer_mut("/metadata/annotations") {
                a.remove("deployment.kubernetes.io/revision");
                if a.is_empty()
                    && let Some(Value::Object(m)) = v.pointer_mut("/metadata")
                {
                    m.remove("annotations");
                }
            }
            v
        };
        if same(&now) == same(written) {
            Ok(string_at(&now, "/metadata/resourceVersion")
                .unwrap_or(&ours)
                .to_string())
        } else {
            Ok(ours)
        }
    }

    /// Looks once at an object for `kubernetes.waitFor`.
    pub async fn observe_condition(&self, a: &WaitArgs) -> Result<Observation> {
        let ctx = self.context(a.context.as_deref()).await?;
        if a.name.is_empty() {
            return Err(ClusterError::bad_input(
                "name",
                "`name` is empty: pass the object's name",
            ));
        }
        path_segment("name", &a.name)?;
        let resource = self.resolve(&ctx, &a.kind).await?;
        let namespace = Self::namespace_for(&ctx, &resource, &a.namespace, false)?;
        let path = format!(
            "{}/{}",
            resource.collection_path(namespace.as_deref()),
            a.name
        );
        let object = match ctx.transport.get_json(&path).await {
            Ok(v) => Some(v),
            Err(e) if e.kind == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        observe(&resource, a.condition, object.as_ref())
    }
}

/// Sends a change request, as a dry run or for real.
async fn send(ctx: &Context, request: &ChangeRequest, dry_run: bool) -> Result<Value> {
    let method = http::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        ClusterError::bad_input("method", format!("unknown method {:?}", request.method))
    })?;
    let query = if dry_run {
        format!("?dryRun=All&fieldManager={FIELD_MANAGER}")
    } else {
        format!("?fieldManager={FIELD_MANAGER}")
    };
    let body = Bytes::from(request.body.to_string());
    let retry = if dry_run {
        Retry::Idempotent
    } else {
        Retry::Write
    };
    let answer = ctx
        .transport
        .write(
            method,
            &format!("{}{query}", request.path),
            &request.content_type,
            body,
            retry,
        )
        .await?;
    serde_json::from_slice(&answer).map_err(|e| {
        ClusterError::new(
            ErrorKind::Unavailable,
            format!(
                "the API server answered {} with invalid JSON: {e}",
                request.path
            ),
        )
    })
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Whether a condition holds for an object (`None`: it does not exist), and what was seen.
pub fn observe(
    r: &ApiResource,
    condition: WaitCondition,
    object: Option<&Value>,
) -> Result<Observation> {
    let Some(o) = object else {
        return Ok(Observation {
            met: condition == WaitCondition::Deleted,
            state: format!("{} does not exist", r.kind),
        });
    };
    let seen = |met: bool, state: String| Ok(Observation { met, state });
    let workload = r.group == "apps";
    let wanted = o
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    match condition {
        WaitCondition::Deleted => {
            let going = o.pointer("/metadata/deletionTimestamp").is_some();
            seen(
                false,
                format!(
                    "{} still exists{}",
                    r.kind,
                    if going { " (being deleted)" } else { "" }
                ),
            )
        }
        WaitCondition::Unschedulable if r.name == "nodes" => {
            let cordoned = o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true);
            seen(
                cordoned,
                format!(
                    "node is {}",
                    if cordoned {
                        "unschedulable"
                    } else {
                        "schedulable"
                    }
                ),
            )
        }
        WaitCondition::Ready if r.name == "pods" || r.name == "nodes" => {
            let ready = condition_true(o, "Ready");
            let phase = string_at(o, "/status/phase").unwrap_or("");
            seen(
                ready,
                format!(
                    "{} is {}{}",
                    r.kind,
                    if ready { "Ready" } else { "not Ready" },
                    if phase.is_empty() {
                        String::new()
                    } else {
                        format!(" (phase {phase})")
                    }
                ),
            )
        }
        WaitCondition::Ready if workload && r.name != "daemonsets" => {
            let ready = int_at(o, "/status/readyReplicas");
            seen(
                ready >= wanted,
                format!("{ready} of {wanted} replicas ready"),
            )
        }
        WaitCondition::RolledOut | WaitCondition::Ready if r.name == "daemonsets" => {
            let desired = int_at(o, "/status/desiredNumberScheduled");
            let updated = int_at(o, "/status/updatedNumberScheduled");
            let available = int_at(o, "/status/numberAvailable");
            let current_gen = int_at(o, "/metadata/generation");
            let observed = int_at(o, "/status/observedGeneration");
            seen(
                observed >= current_gen && updated >= desired && available >= desired,
                format!("{updated} of {desired} pods updated, {available} available"),
            )
        }
        WaitCondition::RolledOut if r.name == "deployments" => {
            let current_gen = int_at(o, "/metadata/generation");
            let observed = int_at(o, "/status/observedGeneration");
            let updated = int_at(o, "/status/updatedReplicas");
            let total = int_at(o, "/status/replicas");
            let available = int_at(o, "/status/availableReplicas");
            let old = (total - updated).max(0);
            let met =
                observed >= current_gen && updated >= wanted && available >= wanted && old == 0;
            let mut state =
                format!("{updated} of {wanted} replicas updated, {available} available");
            if old > 0 {
                state.push_str(&format!(", {old} old replicas still running"));
            }
            if observed < current_gen {
                state.push_str(", the controller has not seen the latest change yet");
            }
            seen(met, state)
        }
        WaitCondition::RolledOut if r.name == "statefulsets" => {
            let updated = int_at(o, "/status/updatedReplicas");
            let ready = int_at(o, "/status/readyReplicas");
            let same =
                string_at(o, "/status/currentRevision") == string_at(o, "/status/updateRevision");
            seen(
                updated >= wanted && ready >= wanted && same,
                format!("{updated} of {wanted} replicas updated, {ready} ready"),
            )
        }
        other => Err(ClusterError::bad_input(
            "condition",
            format!(
                "{other:?} does not apply to {}: rolledOut takes a Deployment, StatefulSet or DaemonSet; ready a Pod, Node or workload; unschedulable a Node; deleted any kind",
                r.kind
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> ApiResource {
        ApiResource {
            kind: "Deployment".into(),
            name: "deployments".into(),
            group: "apps".into(),
            version: "v1".into(),
            namespaced: true,
            short_names: vec!["deploy".into()],
            singular: "deployment".into(),
            verbs: Vec::new(),
        }
    }

    #[test]
    fn diffs_leave_out_noise_and_show_the_change() {
        let before = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "resourceVersion": "5", "generation": 2, "managedFields": [{"manager": "x"}]},
            "spec": {"replicas": 2}});
        let after = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "resourceVersion": "6", "generation": 3},
            "spec": {"replicas": 3}});
        let d = diff_objects("Deployment shop/web", &before, Some(&after));
        assert!(
            d.contains("-  replicas: 2") && d.contains("+  replicas: 3"),
            "{d}"
        );
        assert!(
            !d.contains("resourceVersion")
                && !d.contains("managedFields")
                && !d.contains("generation"),
            "{d}"
        );
        assert!(d.starts_with("--- Deployment shop/web (now)"), "{d}");
        let gone = diff_objects("Pod shop/a", &before, None);
        assert!(
            gone.contains("-kind: Deployment") && !gone.contains("\n+kind"),
            "{gone}"
        );
    }

    #[test]
    fn rollouts_are_done_only_when_every_replica_is_new_and_available() {
        let r = deployments();
        let o = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}});
        let seen = observe(&r, WaitCondition::RolledOut, Some(&o)).unwrap();
        assert!(
            !seen.met && seen.state.contains("1 old replicas"),
            "{seen:?}"
        );
        let o = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert!(observe(&r, WaitCondition::RolledOut, Some(&o)).unwrap().met);
        assert!(observe(&r, WaitCondition::Deleted, None).unwrap().met);
        assert!(observe(&r, WaitCondition::Unschedulable, Some(&o)).is_err());
    }
}
