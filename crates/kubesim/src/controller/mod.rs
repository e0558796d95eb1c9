//! A small, deterministic controller loop: what the kube-controller-manager, the scheduler
//! and the kubelet would do after a write, so that changes sent to kubesim have the
//! consequences a cluster gives them.
//!
//! - Deployments roll ReplicaSets as the deployment controller does (pod-template-hash,
//!   revisions, rolling update within maxSurge/maxUnavailable, rollback reusing an old
//!   ReplicaSet) and keep their status and conditions, so `kubectl rollout status` ends.
//! - ReplicaSets and StatefulSets create and delete pods to match their replicas; a pod
//!   deleted from under them is replaced.
//! - New pods are scheduled to a node that is schedulable and fits (or stay Pending with a
//!   FailedScheduling event) and become Running and Ready after `ready_after`, unless a
//!   pod of the same workload running the same containers fails: then they fail alike.
//! - A cordoned node gets the `node.kubernetes.io/unschedulable:NoSchedule` taint.
//! - Deleting an owner deletes what it owns (background garbage collection).
//!
//! It reacts only to changes made after the server started (it follows the store's change
//! feed): the captured state of a snapshot is never "repaired". Names come from hashes and
//! counters, never from a random source, so the same writes give the same objects.

mod nodes;
mod pods;
mod workloads;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use crate::resources::{Registry, ResourceKey, ResourceType};
use crate::snapshot::format_time;
use crate::status::ApiError;
use crate::store::{Change, ChangeType, Store, StoredObject};

/// How long pods the controller creates stay Pending before they run and are Ready, unless
/// `ServerConfig::ready_after` says otherwise.
pub const DEFAULT_READY_AFTER: Duration = Duration::from_millis(500);

/// Characters of generated name suffixes (as Kubernetes' `rand.String`: no vowels, no
/// look-alikes).
const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// One piece of work; the derived order is the order work is done in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Node(String),
    Collect { namespace: String, uid: String },
    // ReplicaSets before Deployments, so that a deployment plans from fresh ReplicaSet status.
    ReplicaSet(String, String),
    Deployment(String, String),
    StatefulSet(String, String),
    Schedule,
}

/// The well-known resources the controller reads and writes.
struct Types {
    deployments: ResourceType,
    replica_sets: ResourceType,
    stateful_sets: ResourceType,
    pods: ResourceType,
    nodes: ResourceType,
    events: ResourceType,
}

impl Types {
    fn new(registry: &Registry) -> Option<Types> {
        let get = |group: &str, version: &str, plural: &str| {
            registry
                .by_key(&ResourceKey {
                    group: group.into(),
                    version: version.into(),
                    plural: plural.into(),
                })
                .cloned()
        };
        Some(Types {
            deployments: get("apps", "v1", "deployments")?,
            replica_sets: get("apps", "v1", "replicasets")?,
            stateful_sets: get("apps", "v1", "statefulsets")?,
            pods: get("", "v1", "pods")?,
            nodes: get("", "v1", "nodes")?,
            events: get("", "v1", "events")?,
        })
    }
}

/// A pod the controller made that is waiting to start.
#[derive(Debug, Clone)]
struct Starting {
    namespace: String,
    name: String,
    uid: String,
}

/// The controller's state.
pub(crate) struct Controller {
    store: Arc<Store>,
    types: Types,
    ready_after: Duration,
    /// When the controller started; the snapshot's clock runs on from here.
    started: Instant,
    dirty: BTreeSet<Work>,
    /// Pods to start, by when.
    timers: BTreeMap<(Instant, u64), Starting>,
    /// Pods the controller made that no node could take yet.
    unscheduled: BTreeSet<(String, String)>,
    /// What the pods on each node request, built on first use and kept from the feed.
    placement: Option<nodes::Placement>,
    /// Per owner (namespace/name), how many pod names were handed out.
    names: HashMap<String, u64>,
    /// Counters behind event names, timers and pod IPs.
    serial: u64,
    next_ip: u32,
}

/// Starts the controller for `store`; it stops when `shutdown` turns true or its sender
/// goes away. Subscribes before returning, so that every write after this call is seen.
pub(crate) fn spawn(
    store: Arc<Store>,
    ready_after: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(types) = Types::new(&store.registry()) else {
        return;
    };
    // Subscribing from now on cannot fail (no resourceVersion to resume from).
    let Ok(subscription) = store.subscribe(None) else {
        return;
    };
    let mut live = subscription.live;
    let mut c = Controller {
        store,
        types,
        ready_after,
        started: Instant::now(),
        dirty: BTreeSet::new(),
        timers: BTreeMap::new(),
        unscheduled: BTreeSet::new(),
        placement: None,
        names: HashMap::new(),
        serial: 0,
        next_ip: 0,
    };
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Work in slices, letting the server's requests run in between.
            if !c.work(&mut live, 64) {
                c.start_due_pods();
                tokio::task::yield_now().await;
                continue;
            }
            let next = c.timers.keys().next().map(|(at, _)| *at);
            tokio::select! {
                received = live.recv() => match received {
                    Ok(change) => c.observe(&change),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!("the controller missed {n} changes; objects they touched are not reconciled");
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => c.start_due_pods(),
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
    });
}

impl Controller {
    /// Does pending work, taking in the changes each step makes, until nothing is left
    /// (true), or `slice` items are done or they made more than `4 * slice` writes (false).
    fn work(
        &mut self,
        live: &mut tokio::sync::broadcast::Receiver<Arc<Change>>,
        slice: usize,
    ) -> bool {
        let start = self.store.resource_version();
        for _ in 0..slice {
            if self.store.resource_version().saturating_sub(start) > 4 * slice as u64 {
                return false;
            }
            loop {
                match live.try_recv() {
                    Ok(change) => self.observe(&change),
                    Err(TryRecvError::Lagged(n)) => {
                        tracing::warn!(
                            "the controller missed {n} changes; objects they touched are not reconciled"
                        );
                    }
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            let Some(item) = self.dirty.pop_first() else {
                return true;
            };
            let result = match &item {
                Work::Node(name) => self.sync_node(name),
                Work::Collect { namespace, uid } => self.collect(namespace, uid),
                Work::Deployment(ns, name) => self.sync_deployment(ns, name),
                Work::ReplicaSet(ns, name) => self.sync_replica_set(ns, name),
                Work::StatefulSet(ns, name) => self.sync_stateful_set(ns, name),
                Work::Schedule => self.schedule_waiting(),
            };
            match result {
                Ok(()) => {}
                // Someone wrote the object meanwhile: that change is in the feed and brings
                // the object back here.
                Err(e) if e.code == 409 || e.code == 404 => {}
                Err(e) => tracing::warn!("controller: {item:?}: {}", e.message),
            }
        }
        false
    }

    /// Marks the work a change calls for.
    fn observe(&mut self, change: &Change) {
        let o = &change.object.value;
        let ns = change.object.namespace().to_string();
        let name = change.object.name().to_string();
        let r = &change.resource;
        if change.kind == ChangeType::Deleted
            && let Some(uid) = o.pointer("/metadata/uid").and_then(Value::as_str)
            && matches!(
                (r.group.as_str(), r.plural.as_str()),
                ("apps", "deployments" | "replicasets" | "statefulsets")
            )
        {
            self.dirty.insert(Work::Collect {
                namespace: ns.clone(),
                uid: uid.to_string(),
            });
        }
        match (r.group.as_str(), r.plural.as_str()) {
            ("apps", "deployments") => {
                self.dirty.insert(Work::Deployment(ns, name));
            }
            ("apps", "replicasets") => {
                if let Some(owner) = controller_of(o, "Deployment") {
                    self.dirty
                        .insert(Work::Deployment(ns.clone(), owner.to_string()));
                }
                self.dirty.insert(Work::ReplicaSet(ns, name));
            }
            ("apps", "statefulsets") => {
                self.dirty.insert(Work::StatefulSet(ns, name));
            }
            ("", "pods") => {
                if let Some(p) = &mut self.placement {
                    p.note(o, change.kind == ChangeType::Deleted);
                }
                if let Some(owner) = controller_of(o, "ReplicaSet") {
                    self.dirty
                        .insert(Work::ReplicaSet(ns.clone(), owner.to_string()));
                }
                if let Some(owner) = controller_of(o, "StatefulSet") {
                    self.dirty
                        .insert(Work::StatefulSet(ns.clone(), owner.to_string()));
                }
                if change.kind == ChangeType::Deleted {
                    self.unscheduled.remove(&(ns, name));
                    // The room it took may let a waiting pod in.
                    if !self.unscheduled.is_empty() {
                        self.dirty.insert(Work::Schedule);
                    }
                }
            }
            ("", "nodes") => {
                if change.kind != ChangeType::Deleted {
                    self.dirty.insert(Work::Node(name));
                }
                if !self.unscheduled.is_empty() {
                    self.dirty.insert(Work::Schedule);
                }
            }
            _ => {}
        }
    }

    /// The snapshot's clock, run on by the time the server has been up.
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.store.now() + elapsed
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// The objects of one resource in a namespace that `keep` picks.
    fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        keep: &dyn Fn(&Value) -> bool,
    ) -> Vec<Arc<StoredObject>> {
        self.store
            .list(&rt.key(), namespace, keep, None, None)
            .items
    }

    /// Replaces an object, failing with 409 if it changed since `current` was read.
    fn update(
        &self,
        rt: &ResourceType,
        current: &StoredObject,
        new: Value,
    ) -> Result<(), ApiError> {
        if new == current.value {
            return Ok(());
        }
        let mut new = new;
        new["metadata"]["resourceVersion"] = current.value["metadata"]["resourceVersion"].clone();
        self.store
            .update(rt, current.namespace(), current.name(), new, false)
            .map(|_| ())
    }

    /// Writes an event about `object`, as the component named would.
    fn event(&mut self, object: &Value, kind: &str, reason: &str, message: &str, component: &str) {
        let name = str_at(object, "/metadata/name").to_string();
        let ns = match str_at(object, "/metadata/namespace") {
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        // As the API server's clients name events (NAME.<hex nanoseconds>), from the
        // snapshot's clock and a counter: unique, in the order written, the same every run.
        let serial = self.next_serial();
        let nanos = self.store.now().timestamp_nanos_opt().unwrap_or(0).max(0) as u64;
        let event_name = format!("{name}.{:x}", nanos + serial);
        let now = format_time(self.now());
        let involved = json!({"apiVersion": object["apiVersion"], "kind": object["kind"], "name": name,
            "namespace": str_at(object, "/metadata/namespace"), "uid": object["metadata"]["uid"],
            "resourceVersion": object["metadata"]["resourceVersion"]});
        let host = if component == "kubelet" {
            str_at(object, "/spec/nodeName")
        } else {
            ""
        };
        let mut source = json!({"component": component});
        if !host.is_empty() {
            source["host"] = json!(host);
        }
        let e = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": involved, "reason": reason, "message": message, "source": source,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": kind, "eventTime": null,
            "reportingComponent": component, "reportingInstance": host});
        if let Err(e) = self
            .store
            .create_at(&self.types.events, &ns, e, false, self.now())
        {
            tracing::warn!("controller: cannot record an event: {}", e.message);
        }
    }

    /// Deletes what an object with `uid` owned (ReplicaSets and pods), as the garbage
    /// collector does with background propagation.
    fn collect(&mut self, namespace: &str, uid: &str) -> Result<(), ApiError> {
        let owned = |v: &Value| {
            v.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        };
        for rt in [&self.types.replica_sets, &self.types.pods] {
            for o in self.list(rt, Some(namespace), &owned) {
                match self.store.delete(rt, namespace, o.name(), false) {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// A string at a JSON pointer, or "".
fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Sets `path` in `v`, turning whatever is on the way that is not an object into one
/// (objects from clients may hold anything).
fn put(v: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *v = value;
        return;
    };
    let mut at = v;
    for key in parents {
        if !at.is_object() {
            *at = json!({});
        }
        at = &mut at[*key];
    }
    if !at.is_object() {
        *at = json!({});
    }
    at[*last] = value;
}

/// An integer at a JSON pointer.
fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// The name of the controlling owner of `o` when it is of `kind`.
fn controller_of<'a>(o: &'a Value, kind: &str) -> Option<&'a str> {
    o.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .filter(|r| r["kind"] == kind)
        .and_then(|r| r["name"].as_str())
}

/// Whether `owner` controls `o` (by uid, or by kind and name when either lacks a uid).
fn controlled_by(o: &Value, owner: &Value) -> bool {
    let Some(r) = o
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
    else {
        return false;
    };
    let uid = str_at(owner, "/metadata/uid");
    match r["uid"].as_str() {
        Some(u) if !u.is_empty() && !uid.is_empty() => u == uid,
        _ => r["kind"] == owner["kind"] && r["name"] == owner["metadata"]["name"],
    }
}

/// An ownerReference naming `owner` as the controller.
fn owner_reference(owner: &Value) -> Value {
    json!([{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

/// FNV-1a, 64 bits.
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV-1a, 32 bits (what the deployment controller hashes templates with).
fn fnv32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// `rand.SafeEncodeString` of Kubernetes: each byte mapped onto `NAME_CHARS`.
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| NAME_CHARS[usize::from(b) % NAME_CHARS.len()] as char)
        .collect()
}

/// `n` name characters derived from `seed`.
fn suffix(seed: &str, n: usize) -> String {
    let mut h = fnv64(seed.as_bytes());
    (0..n)
        .map(|_| {
            let c = NAME_CHARS[(h % NAME_CHARS.len() as u64) as usize] as char;
            h /= NAME_CHARS.len() as u64;
            c
        })
        .collect()
}

/// JSON with object keys sorted, so that equal values hash alike whatever their key order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Sets a condition in `conditions`, keeping its times when nothing about it changed.
fn set_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &str,
) {
    let status = if status { "True" } else { "False" };
    let existing = conditions.iter_mut().find(|c| c["type"] == kind);
    match existing {
        Some(c) if c["status"] == status && c["reason"] == reason && c["message"] == message => {}
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            c["lastUpdateTime"] = json!(now);
        }
        None => conditions.push(json!({"type": kind, "status": status, "reason": reason,
            "message": message, "lastUpdateTime": now, "lastTransitionTime": now})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 2, "p": 3}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"p": 3, "q": 2}]}, "b": 1});
        let (mut sa, mut sb) = (String::new(), String::new());
        canonical(&a, &mut sa);
        canonical(&b, &mut sb);
        assert_eq!(sa, sb);
        assert_eq!(sa, r#"{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}"#);
    }

    #[test]
    fn names_use_kubernetes_characters() {
        let s = suffix("shop/web/1", 5);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| NAME_CHARS.contains(&b)));
        assert_ne!(s, suffix("shop/web/2", 5));
        assert_eq!(safe_encode("0123456789").len(), 10);
    }
}
