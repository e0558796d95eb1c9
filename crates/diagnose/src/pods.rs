//! `diagnose.pods`: the unhealthy pods of a scope and why each is unhealthy.
//!
//! Healthy pods are only counted. An unhealthy pod gets one finding: its container states, its
//! last termination told apart (OOMKilled, a liveness-probe kill, a signal, an exit code), its
//! decisive events, the objects its spec names that do not exist, and the failing
//! container's previous log tail. Pods of one owner with the same problem share one finding.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use cluster::{Cluster, ClusterError, ErrorKind, GetQuery, ListQuery, LogsQuery};
use serde::Deserialize;
use serde_json::Value;

use crate::finding::{Finding, ObjectRef, Report};
use crate::util::{Event, ago, arr, at, cut, events, int, s, time};

/// Arguments of `diagnose.pods`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodsQuery {
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Every namespace.
    #[serde(default)]
    pub all_namespaces: bool,
    /// Only pods with these labels (`app=web,tier!=cache`).
    pub label_selector: Option<String>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Restarts within this long of now make a Ready pod worth a (low-severity) finding.
const RECENT_RESTART: i64 = 3600;
/// A pod younger than this may still be starting: not a finding.
const STARTING: i64 = 90;
/// Log tails read per report, and lines kept of each.
const MAX_LOGS: usize = 5;
const LOG_LINES: u64 = 20;
const KEEP_LOG_LINES: usize = 12;
/// Events kept per finding.
const EVENTS_PER_FINDING: usize = 4;
/// Up to this many pods' events are read pod by pod; more, namespace by namespace.
const PER_POD_EVENTS: usize = 6;
/// Object references checked per report.
const MAX_REFS: usize = 40;

/// Diagnoses the pods of a namespace (or all, or those matching a label selector).
pub async fn pods(c: &Cluster, q: &PodsQuery) -> Result<Report, ClusterError> {
    let list = c
        .list(&ListQuery {
            kind: "pods".into(),
            namespace: q.namespace.clone(),
            all_namespaces: q.all_namespaces,
            label_selector: q.label_selector.clone(),
            context: q.context.clone(),
            ..Default::default()
        })
        .await?;
    let mut scope = if q.all_namespaces {
        "all namespaces".to_string()
    } else {
        let ns = match q.namespace.clone().filter(|n| !n.is_empty()) {
            Some(ns) => ns,
            None => c.default_namespace(q.context.as_deref()).await?,
        };
        format!("namespace {ns}")
    };
    if let Some(sel) = &q.label_selector {
        scope.push_str(&format!(" with labels {sel}"));
    }
    let mut report = Report::default();
    analyze(c, &list, &scope, q.context.as_deref(), &mut report).await;
    if list.is_empty() {
        report.check(format!(
            "no pods in {scope}: check the namespace (kubernetes.list of Namespace) or the selector"
        ));
    }
    Ok(report.cap())
}

/// How a pod is doing, before its events are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Triage {
    Healthy,
    Completed,
    Starting,
    RecentRestart,
    Unhealthy,
}

fn triage(pod: &Value, now: DateTime<Utc>) -> Triage {
    let age = time(s(pod, "/metadata/creationTimestamp")).map(|t| (now - t).num_seconds());
    let young = age.is_some_and(|a| a < STARTING);
    if let Some(deleted) = time(s(pod, "/metadata/deletionTimestamp")) {
        // Terminating: a problem only when it takes far longer than a grace period.
        return if (now - deleted).num_seconds() > 300 {
            Triage::Unhealthy
        } else {
            Triage::Starting
        };
    }
    match s(pod, "/status/phase") {
        "Succeeded" => return Triage::Completed,
        "Failed" | "Unknown" => return Triage::Unhealthy,
        "Pending" if young => return Triage::Starting,
        "Pending" => return Triage::Unhealthy,
        _ => {}
    }
    let statuses = statuses(pod);
    let all_ready = !statuses.is_empty()
        && statuses
            .iter()
            .filter(|(init, _)| !init)
            .all(|(_, st)| st.get("ready").and_then(Value::as_bool) == Some(true));
    let ready_condition = arr(pod, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == "Ready")
        .map(|c| s(c, "/status") == "True");
    if all_ready && ready_condition != Some(false) {
        let recent = statuses.iter().any(|(_, st)| {
            time(s(st, "/lastState/terminated/finishedAt"))
                .is_some_and(|t| (now - t).num_seconds() < RECENT_RESTART)
        });
        return if recent {
            Triage::RecentRestart
        } else {
            Triage::Healthy
        };
    }
    // Not ready: give a pod that has just started its probes' time.
    let waiting = statuses
        .iter()
        .any(|(_, st)| st.pointer("/state/waiting").is_some());
    if young && !waiting {
        return Triage::Starting;
    }
    Triage::Unhealthy
}

/// Init container statuses (marked `true`) then container statuses.
fn statuses(pod: &Value) -> Vec<(bool, &Value)> {
    arr(pod, "/status/initContainerStatuses")
        .iter()
        .map(|st| (true, st))
        .chain(
            arr(pod, "/status/containerStatuses")
                .iter()
                .map(|st| (false, st)),
        )
        .collect()
}

fn spec_container<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    arr(pod, "/spec/containers")
        .iter()
        .chain(arr(pod, "/spec/initContainers"))
        .find(|c| s(c, "/name") == name)
}

/// What the pod's diagnosis found, before references and logs are added.
struct PodDiag {
    pod: Value,
    finding: Finding,
    /// What kind of problem (for grouping pods of one owner with the same problem).
    class: String,
    /// The container whose log explains it, and whether the previous instance's.
    log: Option<(String, bool)>,
}

/// Signal names of the common 128+N exit codes.
fn signal_name(n: i64) -> &'static str {
    match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Whether the kubelet killed `container` for failing its liveness probe, by its events.
fn liveness_killed(events: &[&Event], container: &str) -> bool {
    let about =
        |e: &Event| e.field_path.is_empty() || e.field_path.contains(&format!("{{{container}}}"));
    events.iter().any(|e| {
        about(e)
            && ((e.reason == "Unhealthy" && e.message.starts_with("Liveness probe"))
                || (e.reason == "Killing" && e.message.contains("liveness")))
    })
}

/// A last termination told apart: (what happened, class, hint).
fn termination(
    t: &Value,
    container: &str,
    spec: Option<&Value>,
    events: &[&Event],
) -> (String, String, String) {
    let code = int(t, "/exitCode").unwrap_or(0);
    let reason = s(t, "/reason");
    let limit = spec
        .map(|c| s(c, "/resources/limits/memory"))
        .filter(|l| !l.is_empty())
        .unwrap_or("none set");
    if reason == "OOMKilled" {
        return (
            format!("OOMKilled (exit {code}): it used more memory than its limit ({limit})"),
            "oom".into(),
            format!(
                "Raise resources.limits.memory of container {container} (now {limit}) or make it use less; its previous log shows what it was doing when killed"
            ),
        );
    }
    if code == 137 && liveness_killed(events, container) {
        return (
            "killed by its liveness probe (exit 137, reason Error: not OOM)".into(),
            "liveness".into(),
            format!(
                "The liveness probe of {container} fails (see the Unhealthy events) and the kubelet kills it: fix what blocks the health endpoint, or give the probe a longer timeoutSeconds / failureThreshold / initialDelaySeconds"
            ),
        );
    }
    if code > 128 {
        let n = code - 128;
        let mut what = format!("killed by signal {n} ({}, exit {code})", signal_name(n));
        if code == 137 {
            what.push_str(": not OOMKilled and no liveness-probe kill recorded");
        }
        return (
            what,
            format!("signal{n}"),
            format!(
                "Something sent {} to {container}: check the node's events and the previous log",
                signal_name(n)
            ),
        );
    }
    if code == 0 {
        return (
            "exits with code 0 (Completed) and is restarted: a container of a long-running pod must not exit".into(),
            "exit0".into(),
            format!("{container}'s command ends: run it as a Job, or fix its command/args to keep running"),
        );
    }
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(", {reason}")
    };
    (
        format!("exits with code {code}{reason}"),
        format!("exit{code}"),
        format!("The previous log of {container} shows why it exits"),
    )
}

fn termination_line(t: &Value, restarts: i64, now: DateTime<Utc>) -> String {
    let mut line = format!(
        "last termination: exit {} {}",
        int(t, "/exitCode").unwrap_or(0),
        s(t, "/reason")
    );
    let finished = s(t, "/finishedAt");
    if !finished.is_empty() {
        line.push_str(&format!(" at {}", at(now, finished)));
    }
    line.push_str(&format!("; {restarts} restarts"));
    let message = s(t, "/message");
    if !message.is_empty() {
        line.push_str(&format!("; message: {}", cut(message, 200)));
    }
    line
}

fn diagnose_pod(pod: &Value, events: &[&Event], now: DateTime<Utc>) -> PodDiag {
    let object = ObjectRef::of(pod, "Pod");
    let mut problems: Vec<String> = Vec::new();
    let mut classes: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    let mut evidence: Vec<String> = Vec::new();
    let mut log = None;
    let phase = s(pod, "/status/phase");
    let created = time(s(pod, "/metadata/creationTimestamp"));

    if let Some(deleted) = time(s(pod, "/metadata/deletionTimestamp")) {
        problems.push(format!("stuck Terminating since {}", ago(now, deleted)));
        classes.push("terminating".into());
        let finalizers: Vec<&str> = arr(pod, "/metadata/finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if !finalizers.is_empty() {
            evidence.push(format!("finalizers: {}", finalizers.join(", ")));
        }
        hints.push("A finalizer or an unreachable node keeps the pod: check its node and the controllers named by its finalizers".into());
    }
    if phase == "Failed" {
        let reason = s(pod, "/status/reason");
        problems.push(format!(
            "Failed{}",
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        ));
        classes.push(format!("failed:{reason}"));
        let message = s(pod, "/status/message");
        if !message.is_empty() {
            evidence.push(format!("status: {}", cut(message, 240)));
        }
    }
    let scheduled = arr(pod, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == "PodScheduled");
    if phase == "Pending" && scheduled.is_some_and(|c| s(c, "/status") == "False") {
        let message = scheduled.map(|c| s(c, "/message")).unwrap_or("");
        problems.push("Pending: cannot be scheduled".into());
        classes.push("unschedulable".into());
        evidence.push(format!(
            "PodScheduled=False {}: {}",
            scheduled.map(|c| s(c, "/reason")).unwrap_or(""),
            cut(message, 300)
        ));
        hints.push(if message.contains("PersistentVolumeClaim") {
            "A PersistentVolumeClaim of the pod is not bound: read its events (kind PersistentVolumeClaim) and check its storageClassName".into()
        } else {
            "The scheduling message says what no node offers: lower the requests, add capacity, or fix nodeSelector / affinity / tolerations".into()
        });
    } else if phase == "Pending" && s(pod, "/spec/nodeName").is_empty() && statuses(pod).is_empty()
    {
        problems.push("Pending: not scheduled yet (no scheduler decision recorded)".into());
        classes.push("pending".into());
        hints.push("Check that a scheduler runs (schedulerName) and read the pod's events".into());
    }

    for (init, st) in statuses(pod) {
        let name = s(st, "/name");
        let label = if init {
            format!("init container {name}")
        } else {
            format!("container {name}")
        };
        let spec = spec_container(pod, name);
        let restarts = int(st, "/restartCount").unwrap_or(0);
        let last = st.pointer("/lastState/terminated");
        let ready = st.get("ready").and_then(Value::as_bool) == Some(true);
        if let Some(w) = st.pointer("/state/waiting") {
            let reason = s(w, "/reason");
            let message = s(w, "/message");
            match reason {
                "CrashLoopBackOff" => {
                    let what = match last {
                        Some(t) => {
                            let (what, class, hint) = termination(t, name, spec, events);
                            evidence.push(termination_line(t, restarts, now));
                            classes.push(class);
                            hints.push(hint);
                            what
                        }
                        None => {
                            classes.push("crashloop".into());
                            "keeps exiting".into()
                        }
                    };
                    problems.push(format!("{label} is in CrashLoopBackOff: {what}"));
                    log = log.or(Some((name.to_string(), true)));
                }
                "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => {
                    let image = spec.map(|c| s(c, "/image")).unwrap_or(s(st, "/image"));
                    problems.push(format!("{label} cannot pull image {image} ({reason})"));
                    classes.push("image".into());
                    hints.push("Check that the image's repository and tag exist (the Failed event gives the registry's answer); for a private registry, the pod's imagePullSecrets".into());
                }
                "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                    problems.push(format!(
                        "{label} cannot be created ({reason}): {}",
                        cut(message, 200)
                    ));
                    classes.push(format!("create:{reason}"));
                    hints.push("The message names what is wrong in the container's configuration: a missing ConfigMap/Secret or key, or a bad command".into());
                }
                "ContainerCreating" | "PodInitializing" => {
                    let mount = events
                        .iter()
                        .any(|e| e.reason == "FailedMount" || e.reason == "FailedAttachVolume");
                    let old = created.is_some_and(|t| (now - t).num_seconds() > 300);
                    if mount {
                        problems.push(format!("{label} cannot start: a volume cannot be mounted"));
                        classes.push("mount".into());
                        hints.push(
                            "The FailedMount event names the volume and what is missing".into(),
                        );
                    } else if old {
                        problems.push(format!(
                            "{label} is stuck in {reason} since {}",
                            created.map(|t| ago(now, t)).unwrap_or_default()
                        ));
                        classes.push("creating".into());
                        hints.push("Read the pod's events for what the kubelet waits on".into());
                    }
                }
                _ => {
                    problems.push(format!(
                        "{label} is waiting: {reason}{}",
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", cut(message, 160))
                        }
                    ));
                    classes.push(format!("waiting:{reason}"));
                }
            }
            if !reason.is_empty() {
                evidence.insert(
                    0,
                    format!(
                        "{label} state: waiting {reason}{}",
                        if message.is_empty() || reason == "CrashLoopBackOff" {
                            String::new()
                        } else {
                            format!(" ({})", cut(message, 160))
                        }
                    ),
                );
            }
            continue;
        }
        if let Some(t) = st.pointer("/state/terminated") {
            let code = int(t, "/exitCode").unwrap_or(0);
            if code != 0 {
                let (what, class, hint) = termination(t, name, spec, events);
                problems.push(format!("{label} terminated: {what}"));
                evidence.push(termination_line(t, restarts, now).replacen(
                    "last termination",
                    "terminated",
                    1,
                ));
                classes.push(class);
                hints.push(hint);
                log = log.or(Some((name.to_string(), false)));
            }
            continue;
        }
        if ready || init {
            continue;
        }
        // Running, not ready.
        let probe = |kind: &str| {
            events.iter().any(|e| {
                e.reason == "Unhealthy"
                    && e.message.starts_with(kind)
                    && (e.field_path.is_empty() || e.field_path.contains(&format!("{{{name}}}")))
            })
        };
        if let (Some(t), true) = (last, restarts > 0) {
            let (what, class, hint) = termination(t, name, spec, events);
            problems.push(format!("{label} is not ready and restarts: {what}"));
            evidence.push(termination_line(t, restarts, now));
            classes.push(class);
            hints.push(hint);
            log = log.or(Some((name.to_string(), true)));
        } else if probe("Readiness probe") {
            problems.push(format!(
                "{label} is running but not ready: its readiness probe fails"
            ));
            classes.push("readiness".into());
            hints.push("The Unhealthy events give the probe's error; the current log may say why the app does not answer".into());
            log = log.or(Some((name.to_string(), false)));
        } else if probe("Startup probe") {
            problems.push(format!("{label} has not started: its startup probe fails"));
            classes.push("startup".into());
            log = log.or(Some((name.to_string(), false)));
        } else {
            problems.push(format!("{label} is running but not ready"));
            classes.push("notready".into());
            log = log.or(Some((name.to_string(), false)));
        }
    }
    if problems.is_empty() {
        let ready = arr(pod, "/status/conditions")
            .iter()
            .find(|c| s(c, "/type") == "Ready");
        problems.push(format!(
            "{phase} and not ready{}",
            ready
                .map(|c| format!(": {}", cut(s(c, "/message"), 160)))
                .unwrap_or_default()
        ));
        classes.push("notready".into());
    }

    // The decisive events: warnings (and liveness kills), newest first, one per reason+message.
    let mut seen = BTreeSet::new();
    let mut decisive: Vec<String> = Vec::new();
    for e in events.iter().rev() {
        let liveness_kill = e.reason == "Killing" && e.message.contains("liveness");
        // "Error: ErrImagePull" repeats the container state; the event with the detail stays.
        let bare = e
            .message
            .strip_prefix("Error: ")
            .is_some_and(|r| !r.contains(' '));
        if (e.event_type != "Warning" && !liveness_kill) || bare {
            continue;
        }
        if seen.insert((e.reason.clone(), cut(&e.message, 60))) {
            decisive.push(e.line(now));
        }
        if decisive.len() >= EVENTS_PER_FINDING {
            break;
        }
    }
    let mut finding = Finding::new(object, problems.join("; "));
    for e in evidence.into_iter().chain(decisive) {
        finding.evidence(e);
    }
    if !arr(pod, "/metadata/ownerReferences").is_empty() {
        finding.evidence(format!("owned by {}", owner(pod)));
    }
    if let Some(h) = hints.into_iter().next() {
        finding = finding.hint(h);
    }
    PodDiag {
        pod: pod.clone(),
        finding,
        class: classes.join("+"),
        log,
    }
}

/// An object a pod's spec names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ref {
    kind: &'static str,
    namespace: String,
    name: String,
}

/// The ConfigMaps, Secrets, PVCs, ServiceAccount and pull secrets a pod needs (optional ones
/// and those every namespace has are left out), each with where the pod uses it.
fn references(pod: &Value) -> Vec<(Ref, String)> {
    let ns = s(pod, "/metadata/namespace").to_string();
    let mut out = Vec::new();
    let mut add = |kind: &'static str, name: &str, used: String| {
        if !name.is_empty() && name != "kube-root-ca.crt" {
            out.push((
                Ref {
                    kind,
                    namespace: ns.clone(),
                    name: name.to_string(),
                },
                used,
            ));
        }
    };
    let optional = |v: &Value| v.get("optional").and_then(Value::as_bool) == Some(true);
    for v in arr(pod, "/spec/volumes") {
        let vol = s(v, "/name");
        if let Some(cm) = v.get("configMap").filter(|x| !optional(x)) {
            add("ConfigMap", s(cm, "/name"), format!("volume {vol}"));
        }
        if let Some(sec) = v.get("secret").filter(|x| !optional(x)) {
            add("Secret", s(sec, "/secretName"), format!("volume {vol}"));
        }
        if let Some(pvc) = v.get("persistentVolumeClaim") {
            add(
                "PersistentVolumeClaim",
                s(pvc, "/claimName"),
                format!("volume {vol}"),
            );
        }
    }
    for c in arr(pod, "/spec/containers")
        .iter()
        .chain(arr(pod, "/spec/initContainers"))
    {
        let cname = s(c, "/name");
        for e in arr(c, "/env") {
            let var = s(e, "/name");
            if let Some(r) = e
                .pointer("/valueFrom/configMapKeyRef")
                .filter(|x| !optional(x))
            {
                add(
                    "ConfigMap",
                    s(r, "/name"),
                    format!("env {var} of container {cname}"),
                );
            }
            if let Some(r) = e
                .pointer("/valueFrom/secretKeyRef")
                .filter(|x| !optional(x))
            {
                add(
                    "Secret",
                    s(r, "/name"),
                    format!("env {var} of container {cname}"),
                );
            }
        }
        for e in arr(c, "/envFrom") {
            if let Some(r) = e.get("configMapRef").filter(|x| !optional(x)) {
                add(
                    "ConfigMap",
                    s(r, "/name"),
                    format!("envFrom of container {cname}"),
                );
            }
            if let Some(r) = e.get("secretRef").filter(|x| !optional(x)) {
                add(
                    "Secret",
                    s(r, "/name"),
                    format!("envFrom of container {cname}"),
                );
            }
        }
    }
    let sa = s(pod, "/spec/serviceAccountName");
    if sa != "default" {
        add("ServiceAccount", sa, "serviceAccountName".into());
    }
    for p in arr(pod, "/spec/imagePullSecrets") {
        add("Secret", s(p, "/name"), "imagePullSecrets".into());
    }
    out
}

/// What a reference check found.
enum Found {
    Exists,
    /// A PersistentVolumeClaim that exists but is not bound: its phase and storage class.
    Unbound(String, String),
    Missing,
    Unreadable(String),
}

async fn check_ref(c: &Cluster, r: &Ref, context: Option<&str>) -> Found {
    let q = GetQuery {
        kind: r.kind.into(),
        name: r.name.clone(),
        namespace: Some(r.namespace.clone()),
        context: context.map(str::to_string),
        ..Default::default()
    };
    // Only existence (and a claim's phase) is kept: nothing of a Secret's content leaves here.
    match c.get(&q).await {
        Ok(o) if r.kind == "PersistentVolumeClaim" => {
            let phase = s(&o, "/status/phase");
            if phase == "Bound" {
                Found::Exists
            } else {
                Found::Unbound(
                    if phase.is_empty() { "unbound" } else { phase }.to_string(),
                    s(&o, "/spec/storageClassName").to_string(),
                )
            }
        }
        Ok(_) => Found::Exists,
        Err(e) if e.kind == ErrorKind::NotFound => Found::Missing,
        Err(e) => Found::Unreadable(e.kind.code().to_string()),
    }
}

/// Names of `kind` in a namespace that look like `name` (a shared prefix of 5+ characters).
async fn similar_names(
    c: &Cluster,
    kind: &str,
    namespace: &str,
    name: &str,
    context: Option<&str>,
) -> Vec<String> {
    let Ok(all) = c
        .list(&ListQuery {
            kind: kind.into(),
            namespace: Some(namespace.into()),
            context: context.map(str::to_string),
            ..Default::default()
        })
        .await
    else {
        return Vec::new();
    };
    let common = |a: &str| {
        a.chars()
            .zip(name.chars())
            .take_while(|(x, y)| x == y)
            .count()
    };
    let mut found: Vec<(usize, String)> = all
        .iter()
        .map(|o| s(o, "/metadata/name").to_string())
        .filter(|n| n != name && common(n) >= 5.min(name.len()))
        .map(|n| (common(&n), n))
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.into_iter().take(3).map(|(_, n)| n).collect()
}

/// The controller that owns a pod (`ReplicaSet/web-7d4b9c6f8d`), or the pod itself.
fn owner(pod: &Value) -> String {
    arr(pod, "/metadata/ownerReferences")
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| arr(pod, "/metadata/ownerReferences").first())
        .map(|o| format!("{}/{}", s(o, "/kind"), s(o, "/name")))
        .unwrap_or_else(|| format!("Pod/{}", s(pod, "/metadata/name")))
}

/// The last lines of a log, each cut to a readable length.
fn tail(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let skip = lines.len().saturating_sub(KEEP_LOG_LINES);
    lines[skip..].iter().map(|l| cut(l, 300)).collect()
}

/// Diagnoses `pods` (already listed) into `report`: findings for the unhealthy ones, counts
/// for the rest. `scope` says where they came from ("namespace shop").
pub(crate) async fn analyze(
    c: &Cluster,
    pods: &[Value],
    scope: &str,
    context: Option<&str>,
    report: &mut Report,
) {
    let now = c.server_now(context).await.unwrap_or_else(|_| Utc::now());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unhealthy: Vec<&Value> = Vec::new();
    let mut restarted: Vec<&Value> = Vec::new();
    for pod in pods {
        let t = triage(pod, now);
        let label = match t {
            Triage::Healthy => "running and ready",
            Triage::Completed => "completed",
            Triage::Starting => "starting",
            Triage::RecentRestart => "ready but restarted in the last hour",
            Triage::Unhealthy => "unhealthy",
        };
        *counts.entry(label).or_default() += 1;
        match t {
            Triage::Unhealthy => unhealthy.push(pod),
            Triage::RecentRestart => restarted.push(pod),
            _ => {}
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    report.check(format!(
        "{} pods in {scope}: {}",
        pods.len(),
        if summary.is_empty() {
            "none".to_string()
        } else {
            summary.join(", ")
        }
    ));
    if unhealthy.is_empty() && restarted.is_empty() {
        return;
    }

    // Events: a few pods' own events (read at once), or one read per namespace of the pods
    // that need them (one of all namespaces past five).
    let needing: Vec<&Value> = unhealthy.iter().chain(&restarted).copied().collect();
    let mut namespaces: BTreeSet<&str> = needing
        .iter()
        .map(|p| s(p, "/metadata/namespace"))
        .collect();
    let mut all_events: Vec<Event> = Vec::new();
    if needing.len() <= PER_POD_EVENTS {
        let reads = needing.iter().map(|p| async move {
            let mut notes = Vec::new();
            let found = events(
                c,
                Some(s(p, "/metadata/namespace")),
                "Pod",
                Some(s(p, "/metadata/name")),
                context,
                &mut notes,
            )
            .await;
            (found, notes)
        });
        for (found, notes) in futures_util::future::join_all(reads).await {
            all_events.extend(found);
            report.checked.extend(notes);
        }
        namespaces.clear();
    } else if namespaces.len() > 5 {
        namespaces.clear();
        all_events = events(c, None, "Pod", None, context, &mut report.checked).await;
    }
    for ns in &namespaces {
        all_events.extend(events(c, Some(ns), "Pod", None, context, &mut report.checked).await);
    }
    let mut by_pod: HashMap<(&str, &str), Vec<&Event>> = HashMap::new();
    for e in &all_events {
        by_pod
            .entry((e.namespace.as_str(), e.name.as_str()))
            .or_default()
            .push(e);
    }
    let events_of = |p: &Value| {
        by_pod
            .get(&(s(p, "/metadata/namespace"), s(p, "/metadata/name")))
            .cloned()
            .unwrap_or_default()
    };
    report.check(format!(
        "events of the {} unhealthy pods",
        unhealthy.len() + restarted.len()
    ));

    let mut diags: Vec<PodDiag> = unhealthy
        .iter()
        .map(|p| diagnose_pod(p, &events_of(p), now))
        .collect();
    compare_with_nodes(c, &mut diags, context, report).await;

    // References the unhealthy pods' specs name, each checked once.
    let mut refs: BTreeMap<Ref, Vec<(usize, String)>> = BTreeMap::new();
    for (i, d) in diags.iter().enumerate() {
        for (r, used) in references(&d.pod) {
            refs.entry(r).or_default().push((i, used));
        }
    }
    let checking: Vec<&Ref> = refs.keys().take(MAX_REFS).collect();
    let results =
        futures_util::future::join_all(checking.iter().map(|r| check_ref(c, r, context))).await;
    let (mut missing, mut unreadable) = (0, BTreeSet::new());
    for (r, found) in checking.iter().zip(results) {
        let users = refs.get(*r).cloned().unwrap_or_default();
        let note = match found {
            Found::Exists => continue,
            Found::Unreadable(code) => {
                unreadable.insert(format!("{}s ({code})", r.kind));
                continue;
            }
            Found::Missing => {
                missing += 1;
                let similar = if r.kind == "Secret" {
                    Vec::new()
                } else {
                    similar_names(c, r.kind, &r.namespace, &r.name, context).await
                };
                let mut note = format!(
                    "{} {} does not exist in namespace {}",
                    r.kind, r.name, r.namespace
                );
                if !similar.is_empty() {
                    note.push_str(&format!("; similar names there: {}", similar.join(", ")));
                }
                (
                    note,
                    format!(
                        "Create {} {} or point the pod template at an existing one",
                        r.kind, r.name
                    ),
                )
            }
            Found::Unbound(phase, class) => {
                let mut note = format!("PersistentVolumeClaim {} is {phase}", r.name);
                if !class.is_empty() {
                    note.push_str(&format!(" (storageClassName {class})"));
                }
                let claim_events = events(
                    c,
                    Some(&r.namespace),
                    "PersistentVolumeClaim",
                    Some(&r.name),
                    context,
                    &mut report.checked,
                )
                .await;
                if let Some(e) = claim_events
                    .iter()
                    .rev()
                    .find(|e| e.event_type == "Warning")
                {
                    note.push_str(&format!("; its event {}", e.line(now)));
                }
                (
                    note,
                    format!(
                        "Fix PersistentVolumeClaim {}: its storage class must exist (list StorageClass) and be able to provision",
                        r.name
                    ),
                )
            }
        };
        for (i, used) in users {
            if let Some(d) = diags.get_mut(i) {
                d.finding.evidence(format!("{} (used by {used})", note.0));
                if !d.finding.problem.contains(&r.name) {
                    d.finding.problem.push_str(&format!(
                        "; it needs {} {} which {}",
                        r.kind,
                        r.name,
                        if note.0.contains("does not exist") {
                            "does not exist"
                        } else {
                            "is not bound"
                        }
                    ));
                }
                d.finding.hint = Some(note.1.clone());
            }
        }
    }
    if !refs.is_empty() {
        let mut line = format!(
            "{} ConfigMaps, Secrets, PersistentVolumeClaims, ServiceAccounts and pull secrets named by the unhealthy pods (existence only): {missing} missing",
            checking.len()
        );
        if refs.len() > checking.len() {
            line.push_str(&format!(
                "; {} more not checked (cap {MAX_REFS})",
                refs.len() - checking.len()
            ));
        }
        if !unreadable.is_empty() {
            line.push_str(&format!(
                "; could not read {}",
                unreadable.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        report.check(line);
    }

    // Pods of one owner with the same problem: one finding, the others named in it.
    let mut groups: Vec<(String, Vec<PodDiag>)> = Vec::new();
    for d in diags.drain(..) {
        let key = format!(
            "{}|{}|{}",
            s(&d.pod, "/metadata/namespace"),
            owner(&d.pod),
            d.class
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(d),
            None => groups.push((key, vec![d])),
        }
    }
    let mut logs_read = 0usize;
    let mut logs_wanted = 0usize;
    for (_, group) in groups {
        let mut group = group.into_iter();
        let Some(mut first) = group.next() else {
            continue;
        };
        let others: Vec<String> = group.map(|d| d.finding.object.name).collect();
        if !others.is_empty() {
            let shown: Vec<&str> = others.iter().take(5).map(String::as_str).collect();
            let more = others.len().saturating_sub(shown.len());
            first.finding.evidence(format!(
                "the same problem in {} more pods of {}: {}{}",
                others.len(),
                owner(&first.pod),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        if let Some((container, previous)) = first.log.clone() {
            logs_wanted += 1;
            if logs_read < MAX_LOGS
                && let Some(text) = log_tail(c, &first.pod, &container, previous, context).await
            {
                logs_read += 1;
                first.finding.evidence(text);
            }
        }
        report.findings.push(first.finding);
    }
    if logs_wanted > 0 {
        let mut line = format!(
            "logs (last {LOG_LINES} lines, up to {KEEP_LOG_LINES} kept) of {logs_read} failing containers"
        );
        if logs_wanted > MAX_LOGS {
            line.push_str(&format!(
                "; {} more not read (cap {MAX_LOGS}): read them with kubernetes.logs",
                logs_wanted - MAX_LOGS
            ));
        }
        report.check(line);
    }

    // Ready pods that restarted recently: low severity, listed last.
    for pod in restarted {
        let mut f = Finding::new(ObjectRef::of(pod, "Pod"), "");
        let mut what = Vec::new();
        for (_, st) in statuses(pod) {
            if let Some(t) = st.pointer("/lastState/terminated")
                && time(s(t, "/finishedAt"))
                    .is_some_and(|t| (now - t) < Duration::seconds(RECENT_RESTART))
            {
                let name = s(st, "/name");
                let (label, _, hint) =
                    termination(t, name, spec_container(pod, name), &events_of(pod));
                what.push(format!("container {name} {label}"));
                f.evidence(termination_line(
                    t,
                    int(st, "/restartCount").unwrap_or(0),
                    now,
                ));
                f.hint.get_or_insert(hint);
            }
        }
        f.problem = format!(
            "restarted in the last hour, running and ready now (low severity): {}",
            what.join("; ")
        );
        report.findings.push(f);
    }
}

/// "previous log of container app (last 3 lines):\n..." or `None` when there is none.
async fn log_tail(
    c: &Cluster,
    pod: &Value,
    container: &str,
    previous: bool,
    context: Option<&str>,
) -> Option<String> {
    let read = |previous: bool| LogsQuery {
        name: s(pod, "/metadata/name").into(),
        namespace: Some(s(pod, "/metadata/namespace").into()),
        container: Some(container.into()),
        previous,
        tail_lines: Some(LOG_LINES),
        context: context.map(str::to_string),
        ..Default::default()
    };
    let (text, which) = match c.logs(&read(previous)).await {
        Ok(t) if !t.trim().is_empty() => (t, previous),
        // No previous instance (or an empty one): the current log may still say why.
        _ if previous => (c.logs(&read(false)).await.ok()?, false),
        _ => return None,
    };
    let lines = tail(&text);
    if lines.is_empty() {
        return None;
    }
    Some(format!(
        "{} log of container {container} (last {} lines):\n{}",
        if which { "previous" } else { "current" },
        lines.len(),
        lines.join("\n")
    ))
}

/// A pod's total requests of one resource (its containers' sum, or its largest init
/// container's when that is more, as the scheduler counts them).
fn pod_request(pod: &Value, resource: &str) -> f64 {
    let of = |c: &Value| {
        c.pointer(&format!("/resources/requests/{resource}"))
            .and_then(Value::as_str)
            .and_then(crate::util::quantity)
            .unwrap_or(0.0)
    };
    let sum: f64 = arr(pod, "/spec/containers").iter().map(of).sum();
    let init = arr(pod, "/spec/initContainers")
        .iter()
        .map(of)
        .fold(0.0, f64::max);
    sum.max(init)
}

/// For pods the scheduler found no room for ("Insufficient cpu/memory"): their requests
/// against the largest allocatable of the nodes, which tells "the nodes are full" from "no
/// node is big enough".
async fn compare_with_nodes(
    c: &Cluster,
    diags: &mut [PodDiag],
    context: Option<&str>,
    report: &mut Report,
) {
    let short = |d: &PodDiag| {
        d.class == "unschedulable"
            && d.finding
                .evidence
                .iter()
                .any(|e| e.contains("Insufficient"))
    };
    if !diags.iter().any(short) {
        return;
    }
    let nodes = match c
        .list(&ListQuery {
            kind: "nodes".into(),
            fields: Some(vec!["status.allocatable".into()]),
            context: context.map(str::to_string),
            ..Default::default()
        })
        .await
    {
        Ok(n) => n,
        Err(e) => {
            report.check(format!(
                "nodes could not be read ({}): requests not compared with allocatable",
                e.kind.code()
            ));
            return;
        }
    };
    report.check(format!(
        "allocatable of {} nodes against the requests of unschedulable pods",
        nodes.len()
    ));
    let largest = |resource: &str| {
        nodes
            .iter()
            .filter_map(|n| {
                let q = n
                    .pointer(&format!("/status/allocatable/{resource}"))
                    .and_then(Value::as_str)
                    .and_then(crate::util::quantity)?;
                Some((q, s(n, "/metadata/name").to_string()))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let show = |resource: &str, q: f64| {
        if resource == "cpu" {
            crate::util::millicores(q)
        } else {
            crate::util::bytes(q)
        }
    };
    for d in diags.iter_mut().filter(|d| short(d)) {
        let mut too_big = Vec::new();
        let mut parts = Vec::new();
        for resource in ["cpu", "memory"] {
            let wanted = pod_request(&d.pod, resource);
            let Some((most, node)) = largest(resource) else {
                continue;
            };
            parts.push(format!(
                "{resource} {} (largest node allocatable: {} on {node})",
                show(resource, wanted),
                show(resource, most)
            ));
            if wanted > most {
                too_big.push(format!(
                    "{resource} {} > {}",
                    show(resource, wanted),
                    show(resource, most)
                ));
            }
        }
        if !parts.is_empty() {
            d.finding
                .evidence(format!("the pod requests {}", parts.join(", ")));
        }
        if !too_big.is_empty() {
            d.finding
                .problem
                .push_str(&format!(": no node is big enough ({})", too_big.join(", ")));
            d.finding.hint = Some(format!(
                "No node can ever fit this pod, however empty: lower its requests ({}) or add a node larger than that; waiting or evicting other pods will not help",
                too_big.join(", ")
            ));
        }
    }
}
