//! `diagnose.workload`: a Deployment's, StatefulSet's or DaemonSet's rollout: its replica
//! counts and conditions, its revisions and what changed between the newest two, and why the
//! newest does not progress (its pods' problems, pods the controller cannot create, quota).

use chrono::Utc;
use cluster::{Cluster, ClusterError, GetQuery, ListQuery};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::finding::{Finding, ObjectRef, Report};
use crate::util::{Event, arr, at, cut, events, int, item_key, s, selector_string, show};

/// Arguments of `diagnose.workload`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadQuery {
    /// `Deployment`, `StatefulSet` or `DaemonSet` (any spelling: `deploy`, `sts`, `ds`, plurals).
    pub kind: String,
    /// The workload's name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// The three kinds of workload this reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl Kind {
    fn parse(kind: &str) -> Result<Kind, ClusterError> {
        let k = kind.trim().to_ascii_lowercase();
        let k = k.strip_suffix(".apps").unwrap_or(&k);
        match k {
            "deployment" | "deployments" | "deploy" => Ok(Kind::Deployment),
            "statefulset" | "statefulsets" | "sts" => Ok(Kind::StatefulSet),
            "daemonset" | "daemonsets" | "ds" => Ok(Kind::DaemonSet),
            _ => Err(ClusterError::bad_input(
                "kind",
                format!(
                    "diagnose.workload reads Deployments, StatefulSets and DaemonSets, not {kind:?}: pass kind \"Deployment\", \"StatefulSet\" or \"DaemonSet\" (for pods use diagnose.pods)"
                ),
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
        }
    }
}

/// Lines of template difference reported at most.
const MAX_DIFF: usize = 12;

/// One revision of a workload's pod template.
struct Revision {
    number: i64,
    /// The ReplicaSet or ControllerRevision holding it.
    holder: String,
    template: Value,
    created: String,
    /// `ready/replicas` of a ReplicaSet.
    pods: Option<String>,
    change_cause: String,
}

/// Diagnoses a workload's rollout.
pub async fn workload(c: &Cluster, q: &WorkloadQuery) -> Result<Report, ClusterError> {
    let kind = Kind::parse(&q.kind)?;
    let context = q.context.as_deref();
    let w = c
        .get(&GetQuery {
            kind: kind.name().into(),
            name: q.name.clone(),
            namespace: q.namespace.clone(),
            context: q.context.clone(),
            ..Default::default()
        })
        .await?;
    let now = c.server_now(context).await.unwrap_or_else(|_| Utc::now());
    let ns = s(&w, "/metadata/namespace").to_string();
    let uid = s(&w, "/metadata/uid").to_string();
    let object = ObjectRef::of(&w, kind.name());
    let selector = w
        .pointer("/spec/selector")
        .map(selector_string)
        .unwrap_or_default();
    let mut report = Report::default();

    // Replica counts and conditions.
    let (counts, stuck, mut problem) = rollout_state(kind, &w);
    report.check(format!("{} {}: {counts}", kind.name(), object.id()));
    let mut evidence = vec![counts];
    for cond in arr(&w, "/status/conditions") {
        let healthy = matches!(
            (s(cond, "/type"), s(cond, "/status")),
            ("Available" | "Progressing", "True") | ("ReplicaFailure", "False")
        );
        if !healthy {
            evidence.push(format!(
                "{}={} {}: {} (since {})",
                s(cond, "/type"),
                s(cond, "/status"),
                s(cond, "/reason"),
                cut(s(cond, "/message"), 240),
                at(now, s(cond, "/lastTransitionTime"))
            ));
        }
    }

    // Revisions, newest first, and what changed between the newest two.
    let mut revisions =
        revisions(c, kind, &ns, &q.name, &uid, &selector, context, &mut report).await;
    // The Deployment's own template is its current revision's: the one to compare, whatever
    // the ReplicaSet's copy (which the controller may not have updated yet) says.
    let current = int(
        &w,
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    );
    if kind == Kind::Deployment
        && let (Some(newest), Some(template)) = (revisions.first_mut(), w.pointer("/spec/template"))
        && Some(newest.number) == current
    {
        newest.template = template.clone();
    }
    for r in revisions.iter().take(3) {
        let mut line = format!("revision {} ({}", r.number, r.holder);
        if !r.created.is_empty() {
            line.push_str(&format!(", created {}", at(now, &r.created)));
        }
        if let Some(p) = &r.pods {
            line.push_str(&format!(", {p}"));
        }
        if !r.change_cause.is_empty() {
            line.push_str(&format!(", change-cause: {}", cut(&r.change_cause, 80)));
        }
        line.push(')');
        evidence.push(line);
    }
    let mut changes = Vec::new();
    if let [newest, previous, ..] = revisions.as_slice() {
        diff(&previous.template, &newest.template, "", &mut changes);
        let n = changes.len();
        changes.truncate(MAX_DIFF);
        let what = if changes.is_empty() {
            "no pod template change (a restart or a scale)".to_string()
        } else {
            changes.join("; ")
        };
        let cut_note = if n > MAX_DIFF {
            format!(" (and {} more)", n - MAX_DIFF)
        } else {
            String::new()
        };
        let line = format!(
            "changed from revision {} to {}: {what}{cut_note}",
            previous.number, newest.number
        );
        evidence.push(line.clone());
        report.check(format!(
            "pod templates of revisions {} and {}",
            previous.number, newest.number
        ));
        if !stuck {
            report.check(line);
        }
    } else if let [only] = revisions.as_slice() {
        // Said outright: "what changed in the last deploy" has no answer in the cluster.
        let line = format!(
            "only revision {} exists: no earlier pod template to compare with (nothing to roll back to)",
            only.number
        );
        evidence.push(line.clone());
        report.check(line);
    }

    // Why the newest revision does not progress: the controller's events (FailedCreate, quota).
    let mut warnings: Vec<Event> = events(
        c,
        Some(&ns),
        kind.name(),
        Some(&q.name),
        context,
        &mut report.checked,
    )
    .await
    .into_iter()
    .filter(|e| e.event_type == "Warning")
    .collect();
    if kind == Kind::Deployment
        && let Some(newest) = revisions.first()
    {
        warnings.extend(
            events(
                c,
                Some(&ns),
                "ReplicaSet",
                Some(&newest.holder),
                context,
                &mut report.checked,
            )
            .await
            .into_iter()
            .filter(|e| e.event_type == "Warning"),
        );
    }
    report.check(format!(
        "warning events of the {} and its newest revision: {}",
        kind.name(),
        warnings.len()
    ));
    warnings.sort_by_key(|e| e.last);
    let mut hint = None;
    let mut quota_named = None;
    for e in warnings.iter().rev().take(3) {
        evidence.push(e.line(now));
        if let Some(name) = quota_name(&e.message) {
            quota_named.get_or_insert(name);
        }
    }
    if quota_named.is_none() {
        quota_named = arr(&w, "/status/conditions")
            .iter()
            .find_map(|c| quota_name(s(c, "/message")));
    }
    if let Some(quota) = &quota_named {
        if let Some(line) = quota_usage(c, &ns, quota, context).await {
            evidence.push(line);
        }
        problem.push_str(&format!(
            "; the controller cannot create pods: ResourceQuota {quota} is exceeded"
        ));
        let previous = revisions
            .get(1)
            .map(|r| format!(", or roll back to revision {}", r.number))
            .unwrap_or_default();
        hint = Some(format!(
            "Free room in ResourceQuota {quota} (namespace {ns}), lower the pods' requests, or raise the quota{previous}"
        ));
    } else if let Some(e) = warnings.iter().rev().find(|e| e.reason == "FailedCreate") {
        problem.push_str(&format!(
            "; the controller cannot create pods: {}",
            cut(&e.message, 160)
        ));
    }

    // The pods' own problems.
    let pods = if selector.is_empty() {
        Vec::new()
    } else {
        c.list(&ListQuery {
            kind: "pods".into(),
            namespace: Some(ns.clone()),
            label_selector: Some(selector.clone()),
            context: q.context.clone(),
            ..Default::default()
        })
        .await?
    };
    let mut pod_report = Report::default();
    crate::pods::analyze(
        c,
        &pods,
        &format!("namespace {ns} with labels {selector}"),
        context,
        &mut pod_report,
    )
    .await;
    if stuck
        && quota_named.is_none()
        && let Some(f) = pod_report.findings.first()
    {
        problem.push_str(&format!("; its pods: {}", cut(&f.problem, 160)));
        hint.get_or_insert_with(|| {
            let back = revisions
                .get(1)
                .map(|r| format!("; to undo the rollout, roll back to revision {}", r.number))
                .unwrap_or_default();
            format!("The pod findings that follow say why the pods fail{back}")
        });
    }
    if stuck {
        let mut f = Finding::new(object, problem);
        for e in evidence {
            f.evidence(e);
        }
        if let Some(h) = hint {
            f = f.hint(h);
        }
        report.findings.push(f);
    }
    report.findings.extend(pod_report.findings);
    report.checked.extend(pod_report.checked);
    Ok(report.cap())
}

/// "desired 4, updated 0, ready 4, available 4", whether the rollout is stuck or incomplete,
/// and the problem's first words.
fn rollout_state(kind: Kind, w: &Value) -> (String, bool, String) {
    let n = |p: &str| int(w, p).unwrap_or(0);
    let generation_behind = n("/status/observedGeneration") < n("/metadata/generation");
    let cond = |t: &str| {
        arr(w, "/status/conditions")
            .iter()
            .find(|c| s(c, "/type") == t)
            .map(|c| (s(c, "/status").to_string(), s(c, "/reason").to_string()))
    };
    match kind {
        Kind::Deployment => {
            let desired = int(w, "/spec/replicas").unwrap_or(1);
            let (updated, ready, available) = (
                n("/status/updatedReplicas"),
                n("/status/readyReplicas"),
                n("/status/availableReplicas"),
            );
            let counts = format!(
                "replicas desired {desired}, updated {updated}, ready {ready}, available {available}, unavailable {}",
                n("/status/unavailableReplicas")
            );
            let revision = s(
                w,
                "/metadata/annotations/deployment.kubernetes.io~1revision",
            );
            let deadline = cond("Progressing")
                .filter(|(status, _)| status == "False")
                .map(|(_, reason)| reason);
            let failure = cond("ReplicaFailure").filter(|(status, _)| status == "True");
            let stuck = deadline.is_some()
                || failure.is_some()
                || updated < desired
                || available < desired
                || generation_behind;
            let problem = match deadline {
                Some(reason) => format!(
                    "rollout of revision {revision} is stuck ({reason}): {updated} of {desired} replicas updated, {available} available"
                ),
                None if updated < desired => format!(
                    "rollout of revision {revision} is not complete: {updated} of {desired} replicas updated, {available} available"
                ),
                None => format!("only {available} of {desired} replicas are available"),
            };
            (counts, stuck, problem)
        }
        Kind::StatefulSet => {
            let desired = int(w, "/spec/replicas").unwrap_or(1);
            let (ready, updated) = (n("/status/readyReplicas"), n("/status/updatedReplicas"));
            let (current_rev, update_rev) = (
                s(w, "/status/currentRevision"),
                s(w, "/status/updateRevision"),
            );
            let counts = format!(
                "replicas desired {desired}, ready {ready}, current {}, updated {updated}; revision {}",
                n("/status/currentReplicas"),
                if current_rev == update_rev || update_rev.is_empty() {
                    current_rev.to_string()
                } else {
                    format!("{current_rev} updating to {update_rev}")
                }
            );
            let rolling = !update_rev.is_empty() && current_rev != update_rev;
            let stuck = ready < desired || rolling || generation_behind;
            let problem = if rolling {
                format!(
                    "rollout to {update_rev} is not complete: {updated} of {desired} replicas updated, {ready} ready"
                )
            } else {
                format!("only {ready} of {desired} replicas are ready")
            };
            (counts, stuck, problem)
        }
        Kind::DaemonSet => {
            let desired = n("/status/desiredNumberScheduled");
            let (ready, updated, available) = (
                n("/status/numberReady"),
                n("/status/updatedNumberScheduled"),
                n("/status/numberAvailable"),
            );
            let misscheduled = n("/status/numberMisscheduled");
            let counts = format!(
                "pods desired {desired}, scheduled {}, updated {updated}, ready {ready}, available {available}, misscheduled {misscheduled}",
                n("/status/currentNumberScheduled")
            );
            let stuck =
                ready < desired || updated < desired || misscheduled > 0 || generation_behind;
            let problem = if updated < desired {
                format!(
                    "rollout is not complete: {updated} of {desired} pods updated, {ready} ready"
                )
            } else {
                format!("only {ready} of {desired} pods are ready")
            };
            (counts, stuck, problem)
        }
    }
}

/// The workload's revisions, newest first: its ReplicaSets (Deployment) or ControllerRevisions.
#[allow(clippy::too_many_arguments)]
async fn revisions(
    c: &Cluster,
    kind: Kind,
    ns: &str,
    name: &str,
    uid: &str,
    selector: &str,
    context: Option<&str>,
    report: &mut Report,
) -> Vec<Revision> {
    let holder_kind = if kind == Kind::Deployment {
        "replicasets"
    } else {
        "controllerrevisions"
    };
    let listed = c
        .list(&ListQuery {
            kind: holder_kind.into(),
            namespace: Some(ns.into()),
            label_selector: (kind == Kind::Deployment && !selector.is_empty())
                .then(|| selector.to_string()),
            context: context.map(str::to_string),
            ..Default::default()
        })
        .await;
    let listed = match listed {
        Ok(l) => l,
        Err(e) => {
            report.check(format!(
                "the {holder_kind} could not be listed ({}): revisions not compared",
                e.kind.code()
            ));
            return Vec::new();
        }
    };
    // Owned by uid; or by kind and name, as the controller adopts what its selector matches
    // (a workload recreated under the same name keeps its old revisions).
    let owned = listed.into_iter().filter(|o| {
        arr(o, "/metadata/ownerReferences")
            .iter()
            .any(|r| s(r, "/uid") == uid || (s(r, "/kind") == kind.name() && s(r, "/name") == name))
    });
    let mut out: Vec<Revision> = owned
        .map(|o| {
            let annotations = "/metadata/annotations/";
            if kind == Kind::Deployment {
                Revision {
                    number: int(
                        &o,
                        &format!("{annotations}deployment.kubernetes.io~1revision"),
                    )
                    .unwrap_or(0),
                    holder: s(&o, "/metadata/name").to_string(),
                    template: o.pointer("/spec/template").cloned().unwrap_or(Value::Null),
                    created: s(&o, "/metadata/creationTimestamp").to_string(),
                    pods: Some(format!(
                        "{} of {} desired pods exist, {} ready",
                        int(&o, "/status/replicas").unwrap_or(0),
                        int(&o, "/spec/replicas").unwrap_or(0),
                        int(&o, "/status/readyReplicas").unwrap_or(0)
                    )),
                    change_cause: s(&o, &format!("{annotations}kubernetes.io~1change-cause"))
                        .to_string(),
                }
            } else {
                Revision {
                    number: int(&o, "/revision").unwrap_or(0),
                    holder: s(&o, "/metadata/name").to_string(),
                    template: o
                        .pointer("/data/spec/template")
                        .cloned()
                        .unwrap_or(Value::Null),
                    created: s(&o, "/metadata/creationTimestamp").to_string(),
                    pods: None,
                    change_cause: s(&o, &format!("{annotations}kubernetes.io~1change-cause"))
                        .to_string(),
                }
            }
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.number));
    report.check(format!("{} revisions ({holder_kind})", out.len()));
    out
}

/// Labels the controllers add per revision: never a change anyone made.
const REVISION_LABELS: [&str; 2] = ["pod-template-hash", "controller-revision-hash"];

/// Path-level differences between two pod templates: `spec.containers[web].image: a → b`.
fn diff(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a
                .keys()
                .chain(b.keys().filter(|k| !a.contains_key(*k)))
                .collect();
            keys.dedup();
            for k in keys {
                if path.ends_with("labels") && REVISION_LABELS.contains(&k.as_str()) {
                    continue;
                }
                diff(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &join(k),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.iter().chain(b).all(|i| item_key(i).is_some()) => {
            for item in a {
                let key = item_key(item);
                let other = b.iter().find(|i| item_key(i) == key);
                let p = format!("{path}[{}]", key.unwrap_or_default());
                diff(item, other.unwrap_or(&Value::Null), &p, out);
            }
            for item in b {
                let key = item_key(item);
                if !a.iter().any(|i| item_key(i) == key) {
                    diff(
                        &Value::Null,
                        item,
                        &format!("{path}[{}]", key.unwrap_or_default()),
                        out,
                    );
                }
            }
        }
        (a, b) if a == b => {}
        // A field one side leaves to the API server's default is no change.
        (Value::Null, v) | (v, Value::Null) if defaulted(path, v) => {}
        (a, b) => out.push(format!("{path}: {} → {}", show(Some(a)), show(Some(b)))),
    }
}

/// Whether `value` is what the API server sets a pod template field at `path` to when it is
/// left out.
fn defaulted(path: &str, value: &Value) -> bool {
    let field = path.rsplit('.').next().unwrap_or(path);
    let default = match field {
        "imagePullPolicy" => return value == "IfNotPresent" || value == "Always",
        "terminationMessagePath" => json!("/dev/termination-log"),
        "terminationMessagePolicy" => json!("File"),
        "dnsPolicy" => json!("ClusterFirst"),
        "restartPolicy" => json!("Always"),
        "schedulerName" => json!("default-scheduler"),
        "securityContext" => json!({}),
        "terminationGracePeriodSeconds" => json!(30),
        "protocol" => json!("TCP"),
        "enableServiceLinks" => json!(true),
        "serviceAccountName" | "serviceAccount" => json!("default"),
        "priority" => json!(0),
        "preemptionPolicy" => json!("PreemptLowerPriority"),
        _ => return value.as_object().is_some_and(|m| m.is_empty()),
    };
    *value == default
}

/// The quota an "exceeded quota: NAME, requested: ..." message names.
fn quota_name(message: &str) -> Option<String> {
    let rest = message.split("exceeded quota: ").nth(1)?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// "ResourceQuota shop-compute: requests.cpu 3200m used of 3500m, ..." for resources near or at their limit.
async fn quota_usage(c: &Cluster, ns: &str, name: &str, context: Option<&str>) -> Option<String> {
    let q = c
        .get(&GetQuery {
            kind: "ResourceQuota".into(),
            name: name.into(),
            namespace: Some(ns.into()),
            context: context.map(str::to_string),
            ..Default::default()
        })
        .await
        .ok()?;
    let hard = q.pointer("/status/hard").and_then(Value::as_object)?;
    let used = q.pointer("/status/used");
    let parts: Vec<String> = hard
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} used {} of {}",
                show(used.and_then(|u| u.get(k))),
                show(Some(v))
            )
        })
        .collect();
    Some(format!("ResourceQuota {name}: {}", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_differ_by_path() {
        let a = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "1"}},
            "spec": {"containers": [{"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}]}]}});
        let b = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "2"}},
            "spec": {"containers": [{"name": "web", "image": "web:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}]}]}});
        let mut out = Vec::new();
        diff(&a, &b, "", &mut out);
        assert_eq!(
            out,
            [
                "spec.containers[web].image: web:1 → web:2",
                "spec.containers[web].env[B]: (not set) → {\"name\":\"B\",\"value\":\"x\"}"
            ]
        );
    }

    #[test]
    fn kinds_take_any_spelling_and_quota_names_parse() {
        for k in ["Deployment", "deploy", "deployments.apps", "DEPLOYMENTS"] {
            assert_eq!(Kind::parse(k).unwrap(), Kind::Deployment);
        }
        assert_eq!(Kind::parse("sts").unwrap(), Kind::StatefulSet);
        assert_eq!(Kind::parse("ds").unwrap(), Kind::DaemonSet);
        assert!(
            Kind::parse("Pod")
                .unwrap_err()
                .message
                .contains("diagnose.pods")
        );
        assert_eq!(
            quota_name("pods \"x\" is forbidden: exceeded quota: shop-compute, requested: requests.cpu=500m").as_deref(),
            Some("shop-compute")
        );
    }
}
