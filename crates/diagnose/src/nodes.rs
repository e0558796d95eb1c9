//! `diagnose.nodes`: every node's conditions (Ready, pressure, network), whether it takes new
//! pods (cordoned, tainted), its allocatable CPU and memory against the sum of its pods'
//! requests, and the pods on nodes that are not Ready.

use std::collections::HashMap;

use chrono::Utc;
use cluster::{Cluster, ClusterError, ListQuery};
use serde::Deserialize;
use serde_json::Value;

use crate::finding::{Finding, ObjectRef, Report};
use crate::util::{arr, at, bytes, cut, millicores, quantity, s};

/// Arguments of `diagnose.nodes`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodesQuery {
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Taints every cluster has on purpose: not a problem.
const EXPECTED_TAINTS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];

/// Requests of a node's pods, summed.
#[derive(Debug, Default, Clone, Copy)]
struct Requests {
    cpu: f64,
    memory: f64,
    pods: usize,
}

/// The requests one pod reserves: the larger of its containers' sum and its largest init container.
fn pod_requests(pod: &Value) -> (f64, f64) {
    let get = |c: &Value, r: &str| {
        c.pointer(&format!("/resources/requests/{r}"))
            .and_then(Value::as_str)
            .and_then(quantity)
            .unwrap_or(0.0)
    };
    let sum = |r: &str| {
        arr(pod, "/spec/containers")
            .iter()
            .map(|c| get(c, r))
            .sum::<f64>()
    };
    let init = |r: &str| {
        arr(pod, "/spec/initContainers")
            .iter()
            .map(|c| get(c, r))
            .fold(0.0, f64::max)
    };
    (
        sum("cpu").max(init("cpu")),
        sum("memory").max(init("memory")),
    )
}

/// Diagnoses every node.
pub async fn nodes(c: &Cluster, q: &NodesQuery) -> Result<Report, ClusterError> {
    let context = q.context.as_deref();
    let nodes = c
        .list(&ListQuery {
            kind: "nodes".into(),
            context: q.context.clone(),
            ..Default::default()
        })
        .await?;
    let now = c.server_now(context).await.unwrap_or_else(|_| Utc::now());
    let mut report = Report::default();
    // The pods of every node, to sum requests and name the pods on NotReady nodes.
    let pods = c
        .list(&ListQuery {
            kind: "pods".into(),
            all_namespaces: true,
            context: q.context.clone(),
            ..Default::default()
        })
        .await;
    let mut requests: HashMap<String, Requests> = HashMap::new();
    let mut on_node: HashMap<String, Vec<String>> = HashMap::new();
    match &pods {
        Ok(pods) => {
            for p in pods {
                let node = s(p, "/spec/nodeName");
                if node.is_empty() || matches!(s(p, "/status/phase"), "Succeeded" | "Failed") {
                    continue;
                }
                let (cpu, memory) = pod_requests(p);
                let r = requests.entry(node.to_string()).or_default();
                r.cpu += cpu;
                r.memory += memory;
                r.pods += 1;
                on_node.entry(node.to_string()).or_default().push(format!(
                    "{}/{}",
                    s(p, "/metadata/namespace"),
                    s(p, "/metadata/name")
                ));
            }
            report.check(format!(
                "requests of the {} running or pending pods placed on nodes",
                requests.values().map(|r| r.pods).sum::<usize>()
            ));
        }
        Err(e) => report.check(format!(
            "pods could not be listed ({}): requests not compared with allocatable: {}",
            e.kind.code(),
            cut(&e.message, 160)
        )),
    }

    let mut ready_count = 0;
    let mut peak = (0.0f64, 0.0f64);
    for node in &nodes {
        let name = s(node, "/metadata/name").to_string();
        let mut problems: Vec<String> = Vec::new();
        let mut evidence: Vec<String> = Vec::new();
        let mut hints: Vec<&str> = Vec::new();
        let mut ready = false;
        for cond in arr(node, "/status/conditions") {
            let (t, status) = (s(cond, "/type"), s(cond, "/status"));
            let line = || {
                format!(
                    "{t}={status} {}: {} (since {}; last heartbeat {})",
                    s(cond, "/reason"),
                    cut(s(cond, "/message"), 160),
                    at(now, s(cond, "/lastTransitionTime")),
                    at(now, s(cond, "/lastHeartbeatTime"))
                )
            };
            match (t, status) {
                ("Ready", "True") => ready = true,
                ("Ready", "Unknown") => {
                    problems.push(
                        "NotReady: the kubelet stopped posting status (Ready=Unknown)".into(),
                    );
                    evidence.push(line());
                    hints.push("The node's kubelet or its network is down: check the machine, its kubelet service and its connectivity to the API server");
                }
                ("Ready", _) => {
                    problems.push("NotReady".into());
                    evidence.push(line());
                    hints.push("The Ready condition's message says why the kubelet reports NotReady (runtime, network plugin, resources)");
                }
                ("MemoryPressure" | "DiskPressure" | "PIDPressure", "True") => {
                    problems.push(t.to_string());
                    evidence.push(line());
                    hints.push("Under pressure the kubelet evicts pods and the scheduler avoids the node: free the resource (look for Evicted pods and the largest consumers with kubernetes.metrics)");
                }
                ("NetworkUnavailable", "True") => {
                    problems.push("NetworkUnavailable".into());
                    evidence.push(line());
                    hints.push("The node's network (CNI plugin) is not configured: check the network plugin's pods on this node");
                }
                _ => {}
            }
        }
        if ready {
            ready_count += 1;
        }
        if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
            problems.push("cordoned (unschedulable): takes no new pods".into());
            hints.push("Uncordon it when its maintenance is over (kubectl uncordon)");
        }
        let taints: Vec<String> = arr(node, "/spec/taints")
            .iter()
            .filter(|t| !EXPECTED_TAINTS.contains(&s(t, "/key")))
            .filter(|t| s(t, "/key") != "node.kubernetes.io/unschedulable")
            .map(|t| {
                let value = s(t, "/value");
                format!(
                    "{}{}:{}",
                    s(t, "/key"),
                    if value.is_empty() {
                        String::new()
                    } else {
                        format!("={value}")
                    },
                    s(t, "/effect")
                )
            })
            .collect();
        if !taints.is_empty() {
            evidence.push(format!("taints: {}", taints.join(", ")));
            if problems.is_empty() {
                problems.push(format!(
                    "tainted: only pods that tolerate {} are placed here",
                    taints.join(", ")
                ));
            }
        }
        let alloc = |r: &str| {
            node.pointer(&format!("/status/allocatable/{r}"))
                .and_then(Value::as_str)
                .and_then(quantity)
        };
        if let (Some(req), Some(cpu), Some(memory)) =
            (requests.get(&name), alloc("cpu"), alloc("memory"))
        {
            let (cpu_pct, mem_pct) = (
                if cpu > 0.0 {
                    req.cpu / cpu * 100.0
                } else {
                    0.0
                },
                if memory > 0.0 {
                    req.memory / memory * 100.0
                } else {
                    0.0
                },
            );
            peak = (peak.0.max(cpu_pct), peak.1.max(mem_pct));
            let usage = format!(
                "requests: cpu {} of {} allocatable ({cpu_pct:.0}%), memory {} of {} ({mem_pct:.0}%), {} pods of {}",
                millicores(req.cpu),
                millicores(cpu),
                bytes(req.memory),
                bytes(memory),
                req.pods,
                s(node, "/status/allocatable/pods")
            );
            if cpu_pct > 100.0 || mem_pct > 100.0 {
                problems.push("over-committed: its pods request more than it can allocate".into());
                hints.push("Requests above allocatable mean pods were placed against stale capacity (or the node shrank): move or resize pods");
            }
            if !problems.is_empty() {
                evidence.push(usage);
            }
        }
        if !ready && let Some(list) = on_node.get(&name) {
            let shown: Vec<&str> = list.iter().take(8).map(String::as_str).collect();
            evidence.push(format!(
                "{} pods on it: {}{}",
                list.len(),
                shown.join(", "),
                if list.len() > shown.len() {
                    format!(" and {} more", list.len() - shown.len())
                } else {
                    String::new()
                }
            ));
        }
        if problems.is_empty() {
            continue;
        }
        let mut f = Finding::new(ObjectRef::of(node, "Node"), problems.join("; "));
        for e in evidence {
            f.evidence(e);
        }
        if let Some(h) = hints.first() {
            f = f.hint(*h);
        }
        report.findings.push(f);
    }
    report.checked.insert(
        0,
        format!(
            "{} nodes: {ready_count} Ready; conditions, taints and cordons of each; the busiest node's requests are {:.0}% of its allocatable CPU and {:.0}% of its memory",
            nodes.len(),
            peak.0,
            peak.1
        ),
    );
    Ok(report.cap())
}
