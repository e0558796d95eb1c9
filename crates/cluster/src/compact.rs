//! Compact forms a model reads instead of raw API objects: events with one set of times,
//! metrics in millicores and bytes, and server-side table rows.

use kube_quantity::ParsedQuantity;
use serde_json::{Map, Value, json};

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn first_text<'a>(v: &'a Value, pointers: &[&str]) -> Option<&'a str> {
    pointers.iter().find_map(|p| text(v, p))
}

/// An event (`core/v1` or `events.k8s.io/v1`) as
/// `{type, reason, message, object: {kind, name, namespace?}, count, first, last, source?}`,
/// its times normalised from `eventTime` / `firstTimestamp` / `lastTimestamp` / `series`.
pub fn event(e: &Value) -> Value {
    let regarding = e
        .get("involvedObject")
        .or_else(|| e.get("regarding"))
        .unwrap_or(&Value::Null);
    let mut object = Map::new();
    for key in ["kind", "name", "namespace"] {
        if let Some(v) = text(regarding, &format!("/{key}")) {
            object.insert(key.into(), v.into());
        }
    }
    let first = first_text(
        e,
        &[
            "/firstTimestamp",
            "/eventTime",
            "/deprecatedFirstTimestamp",
            "/metadata/creationTimestamp",
        ],
    );
    let last = first_text(
        e,
        &[
            "/series/lastObservedTime",
            "/lastTimestamp",
            "/deprecatedLastTimestamp",
            "/eventTime",
        ],
    )
    .or(first);
    let count = ["/series/count", "/count", "/deprecatedCount"]
        .iter()
        .find_map(|p| e.pointer(p).and_then(Value::as_u64))
        .unwrap_or(1);
    let mut m = Map::new();
    m.insert("type".into(), text(e, "/type").unwrap_or("Normal").into());
    m.insert("reason".into(), text(e, "/reason").unwrap_or("").into());
    m.insert(
        "message".into(),
        first_text(e, &["/message", "/note"])
            .unwrap_or("")
            .trim_end()
            .into(),
    );
    m.insert("object".into(), Value::Object(object));
    m.insert("count".into(), count.into());
    m.insert("first".into(), first.unwrap_or("").into());
    m.insert("last".into(), last.unwrap_or("").into());
    if let Some(source) = first_text(
        e,
        &[
            "/source/component",
            "/reportingComponent",
            "/reportingController",
        ],
    ) {
        m.insert("source".into(), source.into());
    }
    Value::Object(m)
}

/// A quantity (`500m`, `2`, `128Mi`, `1.5Gi`, `1e3`) as a number of its units (cores for
/// CPU, bytes for memory).
pub fn quantity(q: &str) -> Option<f64> {
    ParsedQuantity::try_from(q).ok()?.to_bytes_f64()
}

fn quantity_of(v: Option<&Value>) -> Option<f64> {
    quantity(v?.as_str()?)
}

/// A CPU quantity (`250m`, `1`, `123456789n`) in millicores, rounded.
pub fn millicores(q: &str) -> Option<u64> {
    let cores = ParsedQuantity::try_from(q).ok()?.to_bytes_f64()?;
    Some((cores * 1000.0).round().max(0.0) as u64)
}

/// A memory quantity (`512Mi`, `1G`, `1048576`) in bytes.
pub fn bytes(q: &str) -> Option<u64> {
    let b = ParsedQuantity::try_from(q).ok()?.to_bytes_f64()?;
    Some(b.round().max(0.0) as u64)
}

fn usage(u: &Value) -> (u64, u64) {
    let cpu = quantity_of(u.get("cpu")).map_or(0, |c| (c * 1000.0).round() as u64);
    let mem = quantity_of(u.get("memory")).map_or(0, |b| b.round() as u64);
    (cpu, mem)
}

/// A PodMetrics object as `{name, namespace, cpuMillicores, memoryBytes, containers:
/// [{name, cpuMillicores, memoryBytes}], window?}`, the totals summed over containers.
pub fn pod_metrics(m: &Value) -> Value {
    let containers: Vec<Value> = m
        .get("containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let (cpu, mem) = usage(c.get("usage").unwrap_or(&Value::Null));
            json!({"name": text(c, "/name").unwrap_or(""), "cpuMillicores": cpu, "memoryBytes": mem})
        })
        .collect();
    let sum = |key: &str| -> u64 {
        containers
            .iter()
            .filter_map(|c| c.get(key).and_then(Value::as_u64))
            .sum()
    };
    let mut out = json!({
        "name": text(m, "/metadata/name").unwrap_or(""),
        "namespace": text(m, "/metadata/namespace").unwrap_or(""),
        "cpuMillicores": sum("cpuMillicores"),
        "memoryBytes": sum("memoryBytes"),
        "containers": containers,
    });
    if let (Some(window), Value::Object(o)) = (text(m, "/window"), &mut out) {
        o.insert("window".into(), window.into());
    }
    out
}

/// A NodeMetrics object as `{name, cpuMillicores, memoryBytes}`, with the share of the
/// node's allocatable CPU and memory (`cpuPercent`, `memoryPercent`) when `allocatable`
/// (the Node's `status.allocatable`) is given.
pub fn node_metrics(m: &Value, allocatable: Option<&Value>) -> Value {
    let (cpu, mem) = usage(m.get("usage").unwrap_or(&Value::Null));
    let mut out = Map::new();
    out.insert(
        "name".into(),
        text(m, "/metadata/name").unwrap_or("").into(),
    );
    out.insert("cpuMillicores".into(), cpu.into());
    out.insert("memoryBytes".into(), mem.into());
    if let Some(a) = allocatable {
        let percent = |used: u64, total: Option<f64>| {
            total
                .filter(|t| *t > 0.0)
                .map(|t| ((used as f64 / t) * 100.0).round() as u64)
        };
        let cpu_total = quantity_of(a.get("cpu")).map(|c| c * 1000.0);
        if let Some(p) = percent(cpu, cpu_total) {
            out.insert("cpuPercent".into(), p.into());
        }
        if let Some(p) = percent(mem, quantity_of(a.get("memory"))) {
            out.insert("memoryPercent".into(), p.into());
        }
    }
    Value::Object(out)
}

/// A column title as a key: `Nominated Node` → `nominatedNode`, `Up-to-date` → `upToDate`,
/// `Port(s)` → `ports` (a plural marker is part of its word).
fn column_key(title: &str) -> String {
    let title = title.replace("(s)", "s").replace("(S)", "S");
    let mut key = String::new();
    for (i, word) in title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .enumerate()
    {
        let lower = word.to_ascii_lowercase();
        if i == 0 {
            key.push_str(&lower);
        } else {
            let mut chars = lower.chars();
            if let Some(c) = chars.next() {
                key.push(c.to_ascii_uppercase());
                key.extend(chars);
            }
        }
    }
    key
}

/// The rows of a `meta.k8s.io/v1` Table as objects keyed by column
/// (`{name, namespace?, ready, status, restarts, age, ...}`), empty cells (`<none>`) left out.
pub fn table_rows(table: &Value) -> Vec<Value> {
    let columns: Vec<String> = table
        .get("columnDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| column_key(text(c, "/name").unwrap_or("")))
        .collect();
    let rows = table
        .get("rows")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    rows.iter()
        .map(|row| {
            let mut m = Map::new();
            let meta = row.pointer("/object/metadata");
            if let Some(name) = meta.and_then(|m| text(m, "/name")) {
                m.insert("name".into(), name.into());
            }
            if let Some(ns) = meta.and_then(|m| text(m, "/namespace")) {
                m.insert("namespace".into(), ns.into());
            }
            let cells = row
                .get("cells")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (key, cell) in columns.iter().zip(cells) {
                let empty = matches!(cell, Value::Null)
                    || matches!(cell.as_str(), Some("" | "<none>" | "<unset>"));
                if key.is_empty() || empty || m.contains_key(key) {
                    continue;
                }
                m.insert(key.clone(), cell.clone());
            }
            Value::Object(m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn column_titles_become_keys() {
        assert_eq!(column_key("Nominated Node"), "nominatedNode");
        assert_eq!(column_key("Up-to-date"), "upToDate");
        assert_eq!(column_key("Port(s)"), "ports");
        assert_eq!(column_key("PORT(S)"), "ports");
    }

    use super::*;

    #[test]
    fn events_get_one_set_of_times() {
        let core = json!({"metadata": {"name": "x.1", "uid": "u", "resourceVersion": "9",
                            "creationTimestamp": "2026-11-30T09:00:00Z"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop", "uid": "p", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "message": "Back-off restarting failed container\n", "type": "Warning",
            "count": 14, "firstTimestamp": "2026-11-30T09:00:00Z", "lastTimestamp": "2026-11-30T10:00:00Z",
            "source": {"component": "kubelet", "host": "node-1"}});
        assert_eq!(
            event(&core),
            json!({"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
                   "object": {"kind": "Pod", "name": "web-1", "namespace": "shop"}, "count": 14,
                   "first": "2026-11-30T09:00:00Z", "last": "2026-11-30T10:00:00Z", "source": "kubelet"})
        );
        let series = json!({"involvedObject": {"kind": "Node", "name": "n"}, "reason": "R", "type": "Normal",
            "eventTime": "2026-11-30T09:00:00.000000Z", "series": {"count": 3, "lastObservedTime": "2026-11-30T09:30:00.000000Z"},
            "reportingComponent": "scheduler"});
        let c = event(&series);
        assert_eq!(c["count"], 3);
        assert_eq!(c["first"], "2026-11-30T09:00:00.000000Z");
        assert_eq!(c["last"], "2026-11-30T09:30:00.000000Z");
        assert_eq!(c["source"], "scheduler");
        assert_eq!(c["object"], json!({"kind": "Node", "name": "n"}));
    }

    #[test]
    fn metrics_are_millicores_and_bytes() {
        let pod = json!({"metadata": {"name": "web-1", "namespace": "shop", "uid": "u"}, "window": "30s",
            "containers": [{"name": "app", "usage": {"cpu": "250000000n", "memory": "128Mi"}},
                           {"name": "side", "usage": {"cpu": "5m", "memory": "1024Ki"}}]});
        assert_eq!(
            pod_metrics(&pod),
            json!({"name": "web-1", "namespace": "shop", "cpuMillicores": 255, "memoryBytes": 135266304u64,
                   "containers": [{"name": "app", "cpuMillicores": 250, "memoryBytes": 134217728u64},
                                  {"name": "side", "cpuMillicores": 5, "memoryBytes": 1048576}],
                   "window": "30s"})
        );
        let node = json!({"metadata": {"name": "n1"}, "usage": {"cpu": "1500m", "memory": "4Gi"}});
        assert_eq!(
            node_metrics(&node, Some(&json!({"cpu": "4", "memory": "16Gi"}))),
            json!({"name": "n1", "cpuMillicores": 1500, "memoryBytes": 4294967296u64, "cpuPercent": 38, "memoryPercent": 25})
        );
        assert_eq!(millicores("2"), Some(2000));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
    }

    #[test]
    fn table_rows_are_keyed_by_column() {
        let t = json!({"kind": "Table", "columnDefinitions": [{"name": "Name"}, {"name": "Ready"},
              {"name": "Status"}, {"name": "Restarts"}, {"name": "Nominated Node"}, {"name": "Up-to-date"}],
            "rows": [{"cells": ["web-1", "0/1", "CrashLoopBackOff", "5 (2m ago)", "<none>", 1],
                      "object": {"metadata": {"name": "web-1", "namespace": "shop"}}}]});
        assert_eq!(
            table_rows(&t),
            vec![
                json!({"name": "web-1", "namespace": "shop", "ready": "0/1", "status": "CrashLoopBackOff",
                        "restarts": "5 (2m ago)", "upToDate": 1})
            ]
        );
    }
}
