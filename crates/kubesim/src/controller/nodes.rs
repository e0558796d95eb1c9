//! Nodes: the cordon taint, and where a pod fits (the scheduler's filters that matter here).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::{Controller, put, str_at};
use crate::snapshot::format_time;
use crate::status::ApiError;

const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// CPU (cores), memory (bytes) and pod count.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    cpu: f64,
    memory: f64,
    pods: f64,
}

/// What the pods bound to each node request: built once from the store, then kept up to
/// date from the change feed, so that placing a pod does not read every pod again.
#[derive(Debug, Default)]
pub(super) struct Placement {
    by_pod: HashMap<(String, String), (String, Usage)>,
    by_node: HashMap<String, Usage>,
}

impl Placement {
    /// Takes in a pod as it now is (or its deletion). Idempotent: a change seen twice
    /// (once when building, once from the feed) counts once.
    pub(super) fn note(&mut self, pod: &Value, deleted: bool) {
        let key = (
            str_at(pod, "/metadata/namespace").to_string(),
            str_at(pod, "/metadata/name").to_string(),
        );
        if let Some((node, u)) = self.by_pod.remove(&key)
            && let Some(total) = self.by_node.get_mut(&node)
        {
            total.cpu -= u.cpu;
            total.memory -= u.memory;
            total.pods -= 1.0;
        }
        let node = str_at(pod, "/spec/nodeName");
        if deleted
            || node.is_empty()
            || matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed")
        {
            return;
        }
        let u = requests(pod);
        let total = self.by_node.entry(node.to_string()).or_default();
        total.cpu += u.cpu;
        total.memory += u.memory;
        total.pods += 1.0;
        self.by_pod.insert(key, (node.to_string(), u));
    }
}

impl Controller {
    /// Keeps the `node.kubernetes.io/unschedulable:NoSchedule` taint in step with
    /// `spec.unschedulable`, as the node lifecycle controller does.
    pub(super) fn sync_node(&mut self, name: &str) -> Result<(), ApiError> {
        let Some(node) = self.store.get(&self.types.nodes.key(), "", name) else {
            return Ok(());
        };
        let cordoned = node.value.pointer("/spec/unschedulable") == Some(&json!(true));
        let mut taints: Vec<Value> = node
            .value
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_ours = |t: &Value| t["key"] == UNSCHEDULABLE_TAINT && t["effect"] == "NoSchedule";
        let has = taints.iter().any(is_ours);
        if cordoned == has {
            return Ok(());
        }
        if cordoned {
            taints.push(json!({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule",
                "timeAdded": format_time(self.now())}));
        } else {
            taints.retain(|t| !is_ours(t));
        }
        let mut v = node.value.clone();
        if taints.is_empty() {
            if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("taints");
            }
        } else {
            put(&mut v, &["spec", "taints"], json!(taints));
        }
        self.update(&self.types.nodes, &node, v.clone())?;
        let status = if cordoned {
            "NodeNotSchedulable"
        } else {
            "NodeSchedulable"
        };
        self.event(
            &v,
            "Normal",
            status,
            &format!("Node {name} status is now: {status}"),
            "kubelet",
        );
        Ok(())
    }

    /// The placement table, built from the store the first time.
    fn placement(&mut self) -> &Placement {
        if self.placement.is_none() {
            let mut p = Placement::default();
            for pod in self.list(&self.types.pods, None, &|p| {
                !str_at(p, "/spec/nodeName").is_empty()
            }) {
                p.note(&pod.value, false);
            }
            self.placement = Some(p);
        }
        self.placement.get_or_insert_default()
    }

    /// Counts a pod the controller just bound before its change comes through the feed.
    pub(super) fn placed(&mut self, pod: &Value) {
        if let Some(p) = &mut self.placement {
            p.note(pod, false);
        }
    }

    /// The node the scheduler would bind `pod` to, or the FailedScheduling message saying
    /// why none fits. Among nodes that fit, the one with fewest pods (then by name) wins.
    pub(super) fn place(&mut self, pod: &Value) -> Result<String, String> {
        let nodes = self.list(&self.types.nodes, None, &|_| true);
        if nodes.is_empty() {
            return Err("no nodes available to schedule pods".into());
        }
        let used = &self.placement().by_node;
        let want = requests(pod);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(f64, String)> = None;
        for node in &nodes {
            let n = &node.value;
            let name = node.name().to_string();
            let problems = misfits(n, pod, used.get(&name).copied().unwrap_or_default(), want);
            if problems.is_empty() {
                let pods = used.get(&name).map_or(0.0, |u| u.pods);
                if best.as_ref().is_none_or(|(p, _)| pods < *p) {
                    best = Some((pods, name));
                }
            } else {
                for p in problems {
                    *reasons.entry(p).or_default() += 1;
                }
            }
        }
        if let Some((_, name)) = best {
            return Ok(name);
        }
        let total = nodes.len();
        let mut parts: Vec<String> = reasons
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        parts.sort();
        Err(format!(
            "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.",
            parts.join(", ")
        ))
    }
}

/// Why `pod` does not fit on `node`, in the scheduler's words (empty when it fits).
fn misfits(node: &Value, pod: &Value, used: Usage, want: Usage) -> Vec<String> {
    if node.pointer("/spec/unschedulable") == Some(&json!(true)) {
        return vec!["node(s) were unschedulable".into()];
    }
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .is_none_or(|c| c["status"] == "True");
    let tolerations: Vec<Value> = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !ready
        && !tolerates(
            &tolerations,
            "node.kubernetes.io/not-ready",
            "",
            "NoSchedule",
        )
    {
        return vec!["node(s) had untolerated taint {node.kubernetes.io/not-ready: }".into()];
    }
    for t in node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let effect = str_at(t, "/effect");
        if effect != "NoSchedule" && effect != "NoExecute" {
            continue;
        }
        let (key, value) = (str_at(t, "/key"), str_at(t, "/value"));
        if !tolerates(&tolerations, key, value, effect) {
            return vec![format!("node(s) had untolerated taint {{{key}: {value}}}")];
        }
    }
    if let Some(selector) = pod.pointer("/spec/nodeSelector").and_then(Value::as_object) {
        let labels = &node["metadata"]["labels"];
        if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return vec!["node(s) didn't match Pod's node affinity/selector".into()];
        }
    }
    let allocatable = |r: &str| {
        node.pointer(&format!("/status/allocatable/{r}"))
            .and_then(Value::as_str)
            .and_then(quantity)
    };
    let mut out = Vec::new();
    if allocatable("pods").is_some_and(|max| used.pods + 1.0 > max) {
        out.push("Too many pods".to_string());
    }
    if want.cpu > 0.0 && allocatable("cpu").is_some_and(|max| used.cpu + want.cpu > max + 1e-9) {
        out.push("Insufficient cpu".to_string());
    }
    if want.memory > 0.0
        && allocatable("memory").is_some_and(|max| used.memory + want.memory > max + 0.5)
    {
        out.push("Insufficient memory".to_string());
    }
    out
}

/// Whether a toleration lets a pod onto a node with the taint `key=value:effect`.
fn tolerates(tolerations: &[Value], key: &str, value: &str, effect: &str) -> bool {
    tolerations.iter().any(|t| {
        let t_effect = str_at(t, "/effect");
        let t_key = str_at(t, "/key");
        let exists = str_at(t, "/operator") == "Exists";
        (t_effect.is_empty() || t_effect == effect)
            && ((t_key.is_empty() && exists) || t_key == key)
            && (exists || str_at(t, "/value") == value)
    })
}

/// The CPU and memory a pod requests (a limit without a request counts as the request,
/// as the API server defaults it).
fn requests(pod: &Value) -> Usage {
    let mut u = Usage::default();
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let amount = |r: &str| {
            c.pointer(&format!("/resources/requests/{r}"))
                .or_else(|| c.pointer(&format!("/resources/limits/{r}")))
                .and_then(|q| match q {
                    Value::String(s) => quantity(s),
                    other => other.as_f64(),
                })
                .unwrap_or(0.0)
        };
        u.cpu += amount("cpu");
        u.memory += amount("memory");
    }
    u
}

/// A Kubernetes quantity (`250m`, `1.5`, `512Mi`, `1G`, `1e3`) as a number of base units.
fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    const SUFFIXES: [(&str, f64); 15] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = s.strip_suffix(suffix)
            && let Ok(n) = number.parse::<f64>()
        {
            return Some(n * factor);
        }
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("250m"), Some(0.25));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("512Mi"), Some(536_870_912.0));
        assert_eq!(quantity("1G"), Some(1e9));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("lots"), None);
    }

    #[test]
    fn tolerations_match_taints() {
        let exists = [json!({"operator": "Exists"})];
        assert!(tolerates(&exists, "anything", "x", "NoSchedule"));
        let equal = [json!({"key": "team", "value": "a", "effect": "NoSchedule"})];
        assert!(tolerates(&equal, "team", "a", "NoSchedule"));
        assert!(!tolerates(&equal, "team", "b", "NoSchedule"));
        assert!(!tolerates(&equal, "team", "a", "NoExecute"));
    }
}
