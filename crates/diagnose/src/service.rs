//! `diagnose.service`: whether a Service reaches its pods: its selector against the pods of its
//! namespace, its ready and not-ready endpoints, and its target ports against the selected
//! pods' container ports.

use std::collections::BTreeMap;

use cluster::{Cluster, ClusterError, ErrorKind, GetQuery, ListQuery};
use serde::Deserialize;
use serde_json::Value;

use crate::finding::{Finding, ObjectRef, Report};
use crate::util::{arr, int, labels_string, s};

/// Arguments of `diagnose.service`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceQuery {
    /// The Service's name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Labels the controllers add that say nothing about what a pod is.
const NOISE_LABELS: [&str; 4] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
];

/// Ready and not-ready endpoint addresses: (address, pod name).
#[derive(Debug, Default)]
struct Endpoints {
    source: &'static str,
    ready: Vec<(String, String)>,
    not_ready: Vec<(String, String)>,
}

/// Diagnoses a Service.
pub async fn service(c: &Cluster, q: &ServiceQuery) -> Result<Report, ClusterError> {
    let context = q.context.as_deref();
    let svc = c
        .get(&GetQuery {
            kind: "Service".into(),
            name: q.name.clone(),
            namespace: q.namespace.clone(),
            context: q.context.clone(),
            ..Default::default()
        })
        .await?;
    let ns = s(&svc, "/metadata/namespace").to_string();
    let object = ObjectRef::of(&svc, "Service");
    let mut report = Report::default();
    let kind = s(&svc, "/spec/type");
    if kind == "ExternalName" {
        report.check(format!(
            "Service {} is of type ExternalName ({}): it has no selector or endpoints to check",
            object.id(),
            s(&svc, "/spec/externalName")
        ));
        return Ok(report);
    }
    let selector: BTreeMap<String, String> = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let selector_text = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = c
        .list(&ListQuery {
            kind: "pods".into(),
            namespace: Some(ns.clone()),
            context: q.context.clone(),
            ..Default::default()
        })
        .await?;
    let matches = |p: &Value| {
        selector.iter().all(|(k, v)| {
            p.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                == Some(v)
        })
    };
    let selected: Vec<&Value> = if selector.is_empty() {
        Vec::new()
    } else {
        pods.iter().filter(|p| matches(p)).collect()
    };
    let endpoints = endpoints(c, &ns, &q.name, context).await;
    let ready_pods = selected
        .iter()
        .filter(|p| {
            arr(p, "/status/conditions")
                .iter()
                .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True")
        })
        .count();
    if selector.is_empty() {
        report.check(format!(
            "Service {} has no selector: its endpoints are set by hand or by another controller",
            object.id()
        ));
    } else {
        report.check(format!(
            "selector {selector_text} against {} pods in namespace {ns}: {} match, {ready_pods} of them ready",
            pods.len(),
            selected.len()
        ));
    }
    match &endpoints {
        Ok(e) => report.check(format!(
            "{}: {} ready and {} not-ready addresses",
            e.source,
            e.ready.len(),
            e.not_ready.len()
        )),
        Err(e) => report.check(format!(
            "endpoints of Service {} could not be read ({}): {}",
            object.id(),
            e.kind.code(),
            e.message
        )),
    }

    // The selector matches nothing: say which pods come closest.
    if !selector.is_empty() && selected.is_empty() {
        let mut f = Finding::new(
            object.clone(),
            format!(
                "selector {selector_text} matches no pod in namespace {ns}: the Service has no endpoints"
            ),
        );
        for line in closest(&pods, &selector) {
            f.evidence(line);
        }
        if pods.is_empty() {
            f.evidence(format!("namespace {ns} has no pods at all"));
        }
        report.findings.push(f.hint(
            "Make the Service's selector match the pods' labels (or the pod template's labels match the selector); kubernetes.list of Pod with labelSelector shows what matches",
        ));
    }

    // Endpoints: pods selected but none (or not all) ready behind the Service.
    if let Ok(e) = &endpoints
        && !selected.is_empty()
    {
        if e.ready.is_empty() {
            let mut f = Finding::new(
                object.clone(),
                format!(
                    "no ready endpoints: {} pods match the selector, none is ready to serve",
                    selected.len()
                ),
            );
            let names: Vec<&str> = e
                .not_ready
                .iter()
                .map(|(_, p)| p.as_str())
                .take(5)
                .collect();
            if !names.is_empty() {
                f.evidence(format!("not-ready endpoints: {}", names.join(", ")));
            }
            report.findings.push(f.hint(
                "The pods are not Ready: diagnose.pods with the selector as labelSelector says why",
            ));
        } else if !e.not_ready.is_empty() {
            let names: Vec<&str> = e
                .not_ready
                .iter()
                .map(|(_, p)| p.as_str())
                .take(5)
                .collect();
            let mut f = Finding::new(
                object.clone(),
                format!(
                    "{} of {} endpoints are not ready",
                    e.not_ready.len(),
                    e.not_ready.len() + e.ready.len()
                ),
            );
            f.evidence(format!("not-ready endpoints: {}", names.join(", ")));
            report.findings.push(f.hint(
                "Traffic goes only to the ready ones: diagnose.pods with the selector as labelSelector says why the others are not ready",
            ));
        }
    }

    // Ports: each targetPort against the selected pods' container ports.
    if !selected.is_empty() {
        let mut checked_ports = Vec::new();
        for port in arr(&svc, "/spec/ports") {
            let number = int(port, "/port").unwrap_or(0);
            let label = match s(port, "/name") {
                "" => format!("port {number}"),
                n => format!("port {n} ({number})"),
            };
            let target = match port.get("targetPort") {
                Some(Value::String(name)) => Target::Named(name.clone()),
                Some(Value::Number(n)) => Target::Number(n.as_i64().unwrap_or(number)),
                _ => Target::Number(number),
            };
            let declared: Vec<(i64, String)> = selected
                .iter()
                .flat_map(|p| arr(p, "/spec/containers"))
                .flat_map(|c| arr(c, "/ports"))
                .map(|p| {
                    (
                        int(p, "/containerPort").unwrap_or(0),
                        s(p, "/name").to_string(),
                    )
                })
                .collect();
            let serving = selected
                .iter()
                .filter(|p| {
                    arr(p, "/spec/containers")
                        .iter()
                        .flat_map(|c| arr(c, "/ports"))
                        .any(|cp| match &target {
                            Target::Named(n) => s(cp, "/name") == n,
                            Target::Number(n) => int(cp, "/containerPort") == Some(*n),
                        })
                })
                .count();
            let mut shown: Vec<String> = declared
                .iter()
                .map(|(n, name)| {
                    if name.is_empty() {
                        n.to_string()
                    } else {
                        format!("{n}/{name}")
                    }
                })
                .collect();
            shown.sort();
            shown.dedup();
            match &target {
                Target::Named(n) if serving < selected.len() => {
                    let mut f = Finding::new(
                        object.clone(),
                        format!(
                            "{label} targets the named port {n:?}, which {} of {} selected pods declare",
                            serving,
                            selected.len()
                        ),
                    );
                    f.evidence(format!(
                        "the selected pods' container ports: {}",
                        if shown.is_empty() {
                            "none declared".into()
                        } else {
                            shown.join(", ")
                        }
                    ));
                    report.findings.push(f.hint(
                        "A named targetPort must be the name of a containerPort in every selected pod: rename the container port or set targetPort to its number",
                    ));
                }
                Target::Number(n) if serving == 0 && !declared.is_empty() => {
                    let mut f = Finding::new(
                        object.clone(),
                        format!("{label} targets port {n}, which no selected pod declares"),
                    );
                    f.evidence(format!(
                        "the selected pods' container ports: {}",
                        shown.join(", ")
                    ));
                    report.findings.push(f.hint(
                        "Set the Service's targetPort to the port the container listens on (its containerPort)",
                    ));
                }
                Target::Number(n) if declared.is_empty() => checked_ports.push(format!(
                    "{label} → {n}: the pods declare no container ports (not verifiable)"
                )),
                Target::Named(n) => {
                    checked_ports.push(format!("{label} → {n}: declared by {serving} pods"))
                }
                Target::Number(n) => {
                    checked_ports.push(format!("{label} → {n}: declared by {serving} pods"))
                }
            }
        }
        if !checked_ports.is_empty() {
            report.check(format!("target ports: {}", checked_ports.join("; ")));
        }
    }
    Ok(report.cap())
}

enum Target {
    Named(String),
    Number(i64),
}

/// The label sets of the pods that come closest to the selector, best first.
fn closest(pods: &[Value], selector: &BTreeMap<String, String>) -> Vec<String> {
    let mut sets: BTreeMap<String, (usize, usize, Vec<String>)> = BTreeMap::new();
    for p in pods {
        let mut labels = p
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(Value::Null);
        if let Value::Object(m) = &mut labels {
            for n in NOISE_LABELS {
                m.remove(n);
            }
        }
        let matched = selector
            .iter()
            .filter(|(k, v)| labels.get(k.as_str()).and_then(Value::as_str) == Some(v.as_str()))
            .count();
        // A label whose value equals a selector value under another key: a renamed label.
        let similar = labels
            .as_object()
            .map(|m| {
                m.values()
                    .filter(|v| selector.values().any(|s| v.as_str() == Some(s.as_str())))
                    .count()
            })
            .unwrap_or(0);
        let entry = sets
            .entry(labels_string(&labels))
            .or_insert((matched, similar, Vec::new()));
        entry.2.push(s(p, "/metadata/name").to_string());
    }
    let mut ranked: Vec<_> = sets.into_iter().collect();
    ranked.sort_by_key(|(_, (matched, similar, _))| std::cmp::Reverse((*matched, *similar)));
    ranked
        .into_iter()
        .filter(|(_, (m, sim, _))| *m > 0 || *sim > 0)
        .take(3)
        .map(|(labels, (matched, _, names))| {
            let shown: Vec<&str> = names.iter().take(2).map(String::as_str).collect();
            format!(
                "closest: {} pods labelled {labels} (e.g. {}) match {matched} of {} selector labels",
                names.len(),
                shown.join(", "),
                selector.len()
            )
        })
        .collect()
}

/// The Service's endpoints: from its EndpointSlices, else from its Endpoints object.
async fn endpoints(
    c: &Cluster,
    ns: &str,
    name: &str,
    context: Option<&str>,
) -> Result<Endpoints, ClusterError> {
    let slices = c
        .list(&ListQuery {
            kind: "endpointslices.discovery.k8s.io".into(),
            namespace: Some(ns.into()),
            label_selector: Some(format!("kubernetes.io/service-name={name}")),
            context: context.map(str::to_string),
            ..Default::default()
        })
        .await;
    let mut out = Endpoints::default();
    if let Ok(slices) = &slices
        && !slices.is_empty()
    {
        out.source = "EndpointSlices";
        for slice in slices {
            for e in arr(slice, "/endpoints") {
                let address = arr(e, "/addresses")
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let pod = s(e, "/targetRef/name").to_string();
                // `ready` unset means ready (the API's own default).
                if e.pointer("/conditions/ready").and_then(Value::as_bool) == Some(false) {
                    out.not_ready.push((address, pod));
                } else {
                    out.ready.push((address, pod));
                }
            }
        }
        return Ok(out);
    }
    out.source = "Endpoints";
    let ep = match c
        .get(&GetQuery {
            kind: "Endpoints".into(),
            name: name.into(),
            namespace: Some(ns.into()),
            context: context.map(str::to_string),
            ..Default::default()
        })
        .await
    {
        Ok(ep) => ep,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for subset in arr(&ep, "/subsets") {
        for (list, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            for a in arr(subset, &format!("/{list}")) {
                let entry = (s(a, "/ip").to_string(), s(a, "/targetRef/name").to_string());
                if ready {
                    out.ready.push(entry);
                } else {
                    out.not_ready.push(entry);
                }
            }
        }
    }
    Ok(out)
}
