//! The change functions (CONTRACT §3.6), offered only when the server allows changes, and
//! `kubernetes.waitFor`, which only reads and is always offered.
//!
//! A change function changes nothing: its handler plans the change by a dry run and returns
//! `{object, diff, change}`, where `change` is the request to send later. The server's call
//! path takes `change` out before the result is shaped and keeps it in a plan; no program
//! and no client ever sees it, and only an approved plan is sent.

use std::time::{Duration, Instant};

use cluster::{
    Cluster, ClusterError, DeletePodArgs, ErrorKind, NodeArgs, PatchArgs, PlannedChange,
    RestartArgs, RollbackArgs, ScaleArgs, SetImageArgs, WaitArgs,
};
use serde_json::{Value, json};

use crate::functions::{check, parse, schema};
use crate::{Annotations, Function, HandlerFuture, ItemSink, READ_ONLY, Reply, Shape};

/// The key of a change function's result that carries the planned request to the call path.
pub const CHANGE_KEY: &str = "change";

/// Seconds `waitFor` waits when the call names no timeout.
const DEFAULT_WAIT_SECONDS: u64 = 20;

/// How often `waitFor` looks.
const POLL: Duration = Duration::from_millis(500);

/// A planned change as a handler's reply: what the model sees (`object`, `diff`) and what
/// only the server keeps (`change`).
fn reply(p: PlannedChange) -> Result<Reply, ClusterError> {
    Ok(Reply::Value(json!({
        "object": p.object,
        "diff": p.diff,
        CHANGE_KEY: {"target": p.target, "request": p.request, "resourceVersion": p.resource_version},
    })))
}

/// The parts of a change function's reply: `(object, diff, target, request, resourceVersion)`
/// go back into a [`PlannedChange`].
pub fn planned(mut value: Value) -> Result<(Value, PlannedChange), ClusterError> {
    let bad = || {
        ClusterError::new(
            ErrorKind::Unavailable,
            "a change function returned no planned request (a bug in kubecode): nothing was planned",
        )
    };
    let change = value
        .as_object_mut()
        .and_then(|m| m.remove(CHANGE_KEY))
        .ok_or_else(bad)?;
    let target = serde_json::from_value(change.get("target").cloned().ok_or_else(bad)?)
        .map_err(|_| bad())?;
    let request = serde_json::from_value(change.get("request").cloned().ok_or_else(bad)?)
        .map_err(|_| bad())?;
    let resource_version = change
        .get("resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let p = PlannedChange {
        target,
        request,
        resource_version,
        object: value.get("object").cloned().unwrap_or(Value::Null),
        diff: value
            .get("diff")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    Ok((value, p))
}

fn scale<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move { reply(c.plan_scale(&parse("kubernetes.scale", args)?).await?) })
}

fn restart<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move { reply(c.plan_restart(&parse("kubernetes.restart", args)?).await?) })
}

fn rollback<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        reply(
            c.plan_rollback(&parse("kubernetes.rollback", args)?)
                .await?,
        )
    })
}

fn set_image<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        reply(
            c.plan_set_image(&parse("kubernetes.setImage", args)?)
                .await?,
        )
    })
}

fn patch<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move { reply(c.plan_patch(&parse("kubernetes.patch", args)?).await?) })
}

fn cordon<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        reply(
            c.plan_cordon(&parse("kubernetes.cordon", args)?, true)
                .await?,
        )
    })
}

fn uncordon<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        reply(
            c.plan_cordon(&parse("kubernetes.uncordon", args)?, false)
                .await?,
        )
    })
}

fn delete_pod<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        reply(
            c.plan_delete_pod(&parse("kubernetes.deletePod", args)?)
                .await?,
        )
    })
}

/// Polls until the condition holds or the timeout passes; the call path stops it when the
/// run ends or is cancelled.
fn wait_for<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let a: WaitArgs = parse("kubernetes.waitFor", args)?;
        let seconds = a
            .timeout_seconds
            .unwrap_or(DEFAULT_WAIT_SECONDS)
            .clamp(1, 3600);
        let started = Instant::now();
        loop {
            let seen = c.observe_condition(&a).await?;
            if seen.met {
                return Ok(Reply::Value(json!({
                    "met": true, "condition": a.condition, "kind": a.kind, "name": a.name,
                    "observed": seen.state, "waitedMs": started.elapsed().as_millis() as u64,
                })));
            }
            if started.elapsed() + POLL > Duration::from_secs(seconds) {
                return Err(ClusterError::new(
                    ErrorKind::Timeout,
                    format!(
                        "{} {:?} did not become {:?} within {seconds} s; last observed: {}. Wait longer (timeoutSeconds), or read its events to see why",
                        a.kind, a.name, a.condition, seen.state
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    })
}

fn change_output() -> Value {
    json!({"type": "object", "properties": {
        "object": {"type": "object", "description": "The object as the API server's dry run says it would be (for deletePod: as it is)"},
        "diff": {"type": "string", "description": "Unified diff of the object's YAML, now against planned"},
        "plan": {"type": "object", "description": "Tools mode: the plan holding this change, {id, changes: [{object, diff, resourceVersion}], expiresAt}; pass its id to apply_plan"}},
        "required": ["object", "diff"]})
}

const CHANGE_HINT: &str = "Plan fewer changes at once, or read the diff of each with a program and return only what matters.";

/// Annotations of a function that plans a change.
const fn changing(destructive: bool, idempotent: bool) -> Annotations {
    Annotations {
        read_only: false,
        destructive,
        idempotent,
        open_world: true,
    }
}

const RETURNS: &str = "{object: K8sObject, diff: string}";

const PLANS: &str = "Changes nothing: plans the change with a server-side dry run and returns {object, diff}; a run that plans changes returns `plan` ({id, changes, expiresAt}), which only a person can approve, through the apply_plan tool.";

/// `kubernetes.waitFor`: read-only, offered always.
pub(crate) fn wait_function() -> Function {
    Function {
        path: "kubernetes.waitFor",
        tool_name: "kube_wait_for",
        summary: "Wait until rolledOut, ready, deleted or unschedulable",
        doc: "Waits without spending tokens: looks at the object every half second until the condition holds, then returns {met: true, observed, waitedMs}. rolledOut: a Deployment, StatefulSet or DaemonSet runs its current template on every replica, all available; ready: a Pod or Node is Ready, or a workload has all replicas ready; deleted: the object is gone; unschedulable: a Node is cordoned. A timeout fails with code Timeout and says the last observed state. The run's wall limit still applies.",
        input_schema: schema::<WaitArgs>(),
        output_schema: json!({"type": "object", "properties": {
            "met": {"type": "boolean"}, "condition": {"type": "string"}, "kind": {"type": "string"},
            "name": {"type": "string"}, "observed": {"type": "string"}, "waitedMs": {"type": "integer"}},
            "required": ["met", "observed", "waitedMs"]}),
        returns: "{met, observed, waitedMs}",
        annotations: READ_ONLY,
        shape: Shape::Object,
        narrow_hint: "",
        validate: check::<WaitArgs>,
        handler: wait_for,
        filter: None,
    }
}

/// The change functions, offered only with `--allow-changes`.
pub(crate) fn functions() -> Vec<Function> {
    let f = |path: &'static str,
             tool_name: &'static str,
             summary: &'static str,
             doc: &'static str,
             input_schema: Value,
             annotations: Annotations,
             validate: crate::Validator,
             handler: crate::Handler| Function {
        path,
        tool_name,
        summary,
        doc,
        input_schema,
        output_schema: change_output(),
        returns: RETURNS,
        annotations,
        shape: Shape::Object,
        narrow_hint: CHANGE_HINT,
        validate,
        handler,
        filter: None,
    };
    vec![
        f(
            "kubernetes.scale",
            "kube_scale",
            "Plan scaling a Deployment, StatefulSet or ReplicaSet to N replicas (a person approves via apply_plan)",
            PLANS,
            schema::<ScaleArgs>(),
            changing(true, true),
            check::<ScaleArgs>,
            scale,
        ),
        f(
            "kubernetes.restart",
            "kube_restart",
            "Plan a rollout restart of a Deployment, StatefulSet or DaemonSet (a person approves via apply_plan)",
            PLANS,
            schema::<RestartArgs>(),
            changing(true, false),
            check::<RestartArgs>,
            restart,
        ),
        f(
            "kubernetes.rollback",
            "kube_rollback",
            "Plan rolling a Deployment back to a revision, default the previous (a person approves via apply_plan)",
            PLANS,
            schema::<RollbackArgs>(),
            changing(true, false),
            check::<RollbackArgs>,
            rollback,
        ),
        f(
            "kubernetes.setImage",
            "kube_set_image",
            "Plan setting one container's image (a person approves via apply_plan)",
            PLANS,
            schema::<SetImageArgs>(),
            changing(true, true),
            check::<SetImageArgs>,
            set_image,
        ),
        f(
            "kubernetes.patch",
            "kube_patch",
            "Plan a merge, strategic or json patch of any object but a Secret (a person approves via apply_plan)",
            PLANS,
            schema::<PatchArgs>(),
            changing(true, false),
            check::<PatchArgs>,
            patch,
        ),
        f(
            "kubernetes.cordon",
            "kube_cordon",
            "Plan cordoning a node: no new pods are scheduled on it (a person approves via apply_plan)",
            PLANS,
            schema::<NodeArgs>(),
            changing(false, true),
            check::<NodeArgs>,
            cordon,
        ),
        f(
            "kubernetes.uncordon",
            "kube_uncordon",
            "Plan uncordoning a node (a person approves via apply_plan)",
            PLANS,
            schema::<NodeArgs>(),
            changing(false, true),
            check::<NodeArgs>,
            uncordon,
        ),
        f(
            "kubernetes.deletePod",
            "kube_delete_pod",
            "Plan deleting one pod; its controller replaces it (a person approves via apply_plan)",
            PLANS,
            schema::<DeletePodArgs>(),
            changing(true, false),
            check::<DeletePodArgs>,
            delete_pod,
        ),
    ]
}
