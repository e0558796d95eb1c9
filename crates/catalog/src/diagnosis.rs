//! The diagnosis building blocks (`diagnose.*`, CONTRACT §3.2): each returns
//! `{ findings, checked }` from the `diagnose` crate.

use cluster::Cluster;
use diagnose::{HelmDriftQuery, NodesQuery, PodsQuery, Report, ServiceQuery, WorkloadQuery};
use serde_json::Value;

use crate::functions::{check, parse, schema, to_json};
use crate::{Function, HandlerFuture, ItemSink, READ_ONLY, Shape};

/// A diagnosis's doc: what it examines, then what every diagnosis returns.
macro_rules! doc {
    ($what:literal) => {
        concat!($what, " ", "Returns {findings: [{object: {kind, name, namespace?}, problem, evidence: string[], hint?}], checked: string[]}: one finding per problem with short evidence (conditions, terminations, decisive events, log tails) and a hint of what to do or read next; what was examined (and any cap) is in `checked`. Healthy objects are counted in `checked`, never listed; at most 20 findings. Compose with kubernetes.get/logs/events for what it does not cover.")
    };
}

const NARROW: &str = "Narrow the call: pass namespace or labelSelector.";

fn pods<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<PodsQuery>("diagnose.pods", args)?;
        to_json(diagnose::pods(c, &q).await?)
    })
}

fn workload<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<WorkloadQuery>("diagnose.workload", args)?;
        to_json(diagnose::workload(c, &q).await?)
    })
}

fn service<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<ServiceQuery>("diagnose.service", args)?;
        to_json(diagnose::service(c, &q).await?)
    })
}

fn helm_drift<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<HelmDriftQuery>("diagnose.helmDrift", args)?;
        to_json(diagnose::helm_drift(c, &q).await?)
    })
}

fn nodes<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<NodesQuery>("diagnose.nodes", args)?;
        to_json(diagnose::nodes(c, &q).await?)
    })
}

/// The five diagnosis functions, in index order.
pub(crate) fn functions() -> Vec<Function> {
    vec![
        Function {
            path: "diagnose.pods",
            tool_name: "diagnose_pods",
            summary: "Which pods are unhealthy and why: states, OOM vs probe kills, events, missing refs, log tail",
            doc: doc!(
                "Examines the pods of a namespace (the context's by default), of all namespaces, or those matching labelSelector. For each unhealthy pod: container states (CrashLoopBackOff, image pulls, config errors), the last termination told apart (OOMKilled, killed by its liveness probe, a signal, an exit code), restarts, its Warning events, ConfigMaps/Secrets/PVCs/ServiceAccounts/pull secrets its spec names that do not exist (names only), scheduling messages, and the failing container's previous log tail. Pods of one owner with the same problem share a finding. Completed pods and pods that are Ready are not findings (a Ready pod that restarted in the last hour is, marked low severity)."
            ),
            input_schema: schema::<PodsQuery>(),
            output_schema: schema::<Report>(),
            returns: "Report",
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: NARROW,
            validate: check::<PodsQuery>,
            handler: pods,
            filter: None,
        },
        Function {
            path: "diagnose.workload",
            tool_name: "diagnose_workload",
            summary: "Why a Deployment/StatefulSet/DaemonSet rollout is stuck: conditions, revision diff, quota, pods",
            doc: doc!(
                "Reads a workload's rollout: desired/updated/ready/available replicas, conditions (ProgressDeadlineExceeded, ReplicaFailure), its revisions (ReplicaSets or ControllerRevisions) and what changed in the pod template between the newest two (image, env, resources, ...), the controller's FailedCreate events and the ResourceQuota they name, and its pods' problems as diagnose.pods finds them. `kind` takes any spelling (Deployment, deploy, sts, ds)."
            ),
            input_schema: schema::<WorkloadQuery>(),
            output_schema: schema::<Report>(),
            returns: "Report",
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: "Read the pods' details with diagnose.pods and a labelSelector.",
            validate: check::<WorkloadQuery>,
            handler: workload,
            filter: None,
        },
        Function {
            path: "diagnose.service",
            tool_name: "diagnose_service",
            summary: "Whether a Service reaches its pods: selector vs labels, endpoints, target ports",
            doc: doc!(
                "Checks a Service's selector against the pods of its namespace (when none match: the pods whose labels come closest), its ready and not-ready endpoints (EndpointSlices, else Endpoints), and each targetPort (named or numbered) against the selected pods' container ports."
            ),
            input_schema: schema::<ServiceQuery>(),
            output_schema: schema::<Report>(),
            returns: "Report",
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: "",
            validate: check::<ServiceQuery>,
            handler: service,
            filter: None,
        },
        Function {
            path: "diagnose.helmDrift",
            tool_name: "diagnose_helm_drift",
            summary: "Drift of live objects from their chart's manifest: missing objects, changed fields, who changed them",
            doc: doc!(
                "Compares the objects in the manifest of an installed chart's latest revision (`name` is the release) with the live ones: objects that are missing, and the fields the manifest sets that differ live (fields the API server defaults are ignored; 8080 and \"8080\", 1 and 1000m compare equal). When the live object's managedFields say which other manager set a drifted field, the evidence names it and when."
            ),
            input_schema: schema::<HelmDriftQuery>(),
            output_schema: schema::<Report>(),
            returns: "Report",
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: "",
            validate: check::<HelmDriftQuery>,
            handler: helm_drift,
            filter: None,
        },
        Function {
            path: "diagnose.nodes",
            tool_name: "diagnose_nodes",
            summary: "Node problems: NotReady, pressure, cordons, taints, requests vs allocatable",
            doc: doc!(
                "Examines every node: the Ready condition (False or Unknown) and the pods on nodes that are not Ready, MemoryPressure/DiskPressure/PIDPressure/NetworkUnavailable, cordons and taints (the control-plane taint is expected), and the sum of its pods' CPU and memory requests against its allocatable (over-committed)."
            ),
            input_schema: schema::<NodesQuery>(),
            output_schema: schema::<Report>(),
            returns: "Report",
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: "",
            validate: check::<NodesQuery>,
            handler: nodes,
            filter: None,
        },
    ]
}
