//! The in-memory object store: collections keyed by resource, resourceVersions, and the
//! change feed that watches read. Changes live in memory only.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::resources::{Registry, ResourceKey, ResourceType};
use crate::snapshot::{Logs, Snapshot, SnapshotError, format_time};
use crate::status::ApiError;

/// How many past changes are kept so that a watch can resume from a resourceVersion.
const HISTORY: usize = 10_000;

/// An object as stored: the JSON value and its serialized bytes (lists are concatenations).
#[derive(Debug)]
pub struct StoredObject {
    /// The object.
    pub value: Value,
    /// `value` serialized as JSON.
    pub json: Bytes,
}

impl StoredObject {
    fn new(value: Value) -> Arc<StoredObject> {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Arc::new(StoredObject { value, json })
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `metadata.namespace`, empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

impl ChangeType {
    /// The watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch reports it.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// The collection.
    pub resource: ResourceKey,
    /// What happened.
    pub kind: ChangeType,
    /// The object after the change (before it, for deletions).
    pub object: Arc<StoredObject>,
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The objects, sorted by namespace then name.
    pub items: Vec<Arc<StoredObject>>,
    /// The list's resourceVersion.
    pub rv: u64,
    /// The (namespace, name) after which the next page starts, when there is one.
    pub next: Option<(String, String)>,
    /// How many matching objects follow this page.
    pub remaining: u64,
}

type Collection = BTreeMap<(String, String), Arc<StoredObject>>;

struct State {
    registry: Registry,
    collections: HashMap<ResourceKey, Collection>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
}

/// The store behind a server.
pub struct Store {
    state: RwLock<State>,
    changes: broadcast::Sender<Arc<Change>>,
    now: DateTime<Utc>,
    logs: Logs,
}

/// A watch subscription: changes already past, then the live feed.
pub struct Subscription {
    /// Changes after the requested resourceVersion that had already happened.
    pub backlog: Vec<Arc<Change>>,
    /// Changes to come.
    pub live: broadcast::Receiver<Arc<Change>>,
    /// The store's resourceVersion when subscribing.
    pub rv: u64,
}

fn rv_of(v: &Value) -> Option<u64> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn uid_for(identity: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, identity.as_bytes()).to_string()
}

impl Store {
    /// Builds a store from a snapshot: registers CRDs and unknown kinds, fills in
    /// namespaces, uids and resourceVersions the snapshot lacks.
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Store, SnapshotError> {
        let mut registry = Registry::builtin();
        let mut has_metrics = false;
        for o in &snapshot.objects {
            let v = &o.object;
            if v["kind"] == "CustomResourceDefinition" {
                registry
                    .add_crd(v)
                    .map_err(|reason| malformed(&o.source, reason))?;
            }
            if v["apiVersion"] == "metrics.k8s.io/v1beta1" {
                has_metrics = true;
            }
        }
        if has_metrics {
            registry.add_metrics();
        }
        let now = snapshot.now;
        // Namespaces the snapshot implies are as old as its oldest object.
        let oldest = snapshot
            .objects
            .iter()
            .filter_map(|o| {
                o.object
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
            })
            .filter_map(crate::snapshot::parse_time)
            .min()
            .unwrap_or(now);
        let mut collections: HashMap<ResourceKey, Collection> = HashMap::new();
        let mut max_rv = 0u64;
        let mut pending_rv = Vec::new();
        let mut namespaces_used: BTreeSet<String> = BTreeSet::from(["default".to_string()]);
        for o in snapshot.objects {
            let mut v = o.object;
            let api_version = v["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            let has_ns = v.pointer("/metadata/namespace").is_some_and(|n| n != "");
            let rt = match registry.by_kind(&api_version, &kind) {
                Some(rt) => rt.clone(),
                None => registry.ensure_kind(&api_version, &kind, has_ns),
            };
            let meta = v
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| malformed(&o.source, "metadata must be a mapping".into()))?;
            if rt.namespaced {
                let ns = meta
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("default")
                    .to_string();
                meta.insert("namespace".into(), json!(ns));
                namespaces_used.insert(ns);
            } else {
                meta.remove("namespace");
            }
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let name = meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !meta.contains_key("uid") {
                let id = format!("{api_version}/{kind}/{ns}/{name}");
                meta.insert("uid".into(), json!(uid_for(&id)));
            }
            if !meta.contains_key("creationTimestamp") {
                meta.insert("creationTimestamp".into(), json!(format_time(now)));
            }
            match rv_of(&v) {
                Some(rv) => max_rv = max_rv.max(rv),
                None => pending_rv.push((rt.key(), ns.clone(), name.clone())),
            }
            collections
                .entry(rt.key())
                .or_default()
                .insert((ns, name), StoredObject::new(v));
        }
        // Namespaces the snapshot uses but does not define, as a real cluster would have them.
        let ns_key = ResourceKey {
            group: String::new(),
            version: "v1".into(),
            plural: "namespaces".into(),
        };
        let existing = collections.entry(ns_key.clone()).or_default();
        for ns in namespaces_used {
            if existing.contains_key(&(String::new(), ns.clone())) {
                continue;
            }
            let v = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": uid_for(&format!("v1/Namespace//{ns}")),
                    "creationTimestamp": format_time(oldest),
                    "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            });
            pending_rv.push((ns_key.clone(), String::new(), ns.clone()));
            existing.insert((String::new(), ns), StoredObject::new(v));
        }
        let mut rv = max_rv;
        for (key, ns, name) in pending_rv {
            if let Some(slot) = collections
                .get_mut(&key)
                .and_then(|c| c.get_mut(&(ns, name)))
            {
                rv += 1;
                let mut v = slot.value.clone();
                v["metadata"]["resourceVersion"] = json!(rv.to_string());
                *slot = StoredObject::new(v);
            }
        }
        let (changes, _) = broadcast::channel(4096);
        Ok(Store {
            state: RwLock::new(State {
                registry,
                collections,
                rv,
                history: VecDeque::new(),
            }),
            changes,
            now,
            logs: snapshot.logs,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The snapshot's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Container logs.
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// A copy of the resource registry.
    pub fn registry(&self) -> Registry {
        self.read().registry.clone()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.read().rv
    }

    /// Number of objects of one resource.
    pub fn count(&self, key: &ResourceKey) -> usize {
        self.read().collections.get(key).map_or(0, BTreeMap::len)
    }

    /// Whether a namespace exists.
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        let state = self.read();
        namespace_exists(&state, namespace)
    }

    /// One object.
    pub fn get(&self, key: &ResourceKey, namespace: &str, name: &str) -> Option<Arc<StoredObject>> {
        self.read()
            .collections
            .get(key)
            .and_then(|c| c.get(&(namespace.to_string(), name.to_string())))
            .cloned()
    }

    /// A page of the objects of one resource (one namespace, or all when `namespace` is
    /// `None`) that satisfy `filter`, starting after `after`.
    pub fn list(
        &self,
        key: &ResourceKey,
        namespace: Option<&str>,
        filter: &dyn Fn(&Value) -> bool,
        limit: Option<usize>,
        after: Option<(String, String)>,
    ) -> Page {
        let state = self.read();
        let rv = state.rv;
        let Some(collection) = state.collections.get(key) else {
            return Page {
                items: Vec::new(),
                rv,
                next: None,
                remaining: 0,
            };
        };
        let lower = match (&after, namespace) {
            (Some(k), _) => std::ops::Bound::Excluded(k.clone()),
            (None, Some(ns)) => std::ops::Bound::Included((ns.to_string(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0u64;
        for ((ns, _), obj) in collection.range((lower, std::ops::Bound::Unbounded)) {
            if namespace.is_some_and(|want| want != ns) {
                if namespace.is_some_and(|want| ns.as_str() > want) {
                    break;
                }
                continue;
            }
            if !filter(&obj.value) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                if next.is_none() {
                    let last: &Arc<StoredObject> = items.last().unwrap_or(obj);
                    next = Some((last.namespace().to_string(), last.name().to_string()));
                }
                remaining += 1;
                continue;
            }
            items.push(obj.clone());
        }
        Page {
            items,
            rv,
            next,
            remaining,
        }
    }

    /// Subscribes to changes after `since` (a resourceVersion), or to changes from now on.
    pub fn subscribe(&self, since: Option<u64>) -> Result<Subscription, ApiError> {
        let state = self.read();
        let live = self.changes.subscribe();
        let backlog = match since {
            Some(rv) if rv < state.rv => {
                let oldest = state.history.front().map(|c| c.rv).unwrap_or(state.rv + 1);
                if rv + 1 < oldest {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        oldest.saturating_sub(1)
                    )));
                }
                state
                    .history
                    .iter()
                    .filter(|c| c.rv > rv)
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        Ok(Subscription {
            backlog,
            live,
            rv: state.rv,
        })
    }

    /// Creates an object; fills uid, resourceVersion, creationTimestamp and generation.
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: &str,
        object: Value,
        dry_run: bool,
    ) -> Result<Arc<StoredObject>, ApiError> {
        self.create_at(rt, namespace, object, dry_run, self.now)
    }

    /// Creates an object as `create` does, stamped `created` (the controller's clock runs on
    /// from the snapshot's).
    pub fn create_at(
        &self,
        rt: &ResourceType,
        namespace: &str,
        mut object: Value,
        dry_run: bool,
        created: DateTime<Utc>,
    ) -> Result<Arc<StoredObject>, ApiError> {
        let mut state = self.write();
        if rt.namespaced && !namespace_exists(&state, namespace) {
            return Err(ApiError::namespace_not_found(namespace));
        }
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let key = (namespace.to_string(), name.clone());
        let exists = state
            .collections
            .get(&rt.key())
            .is_some_and(|c| c.contains_key(&key));
        if exists {
            return Err(ApiError::already_exists(rt, &name));
        }
        let rv = state.rv + 1;
        let meta = &mut object["metadata"];
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] = json!(format_time(created));
        if object.get("spec").is_some() {
            object["metadata"]["generation"] = json!(1);
        }
        let stored = StoredObject::new(object);
        if !dry_run {
            self.commit(
                &mut state,
                rt,
                key,
                Some(stored.clone()),
                ChangeType::Added,
                stored.clone(),
            );
        }
        Ok(stored)
    }

    /// Replaces an object. A `resourceVersion` in `object` must match the stored one.
    pub fn update(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Arc<StoredObject>, ApiError> {
        let mut state = self.write();
        let key = (namespace.to_string(), name.to_string());
        let old = existing(&state, rt, &key)?;
        let current_rv = old
            .value
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        let given_rv = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        if given_rv.is_some_and(|given| !given.is_empty() && Some(given) != current_rv) {
            return Err(ApiError::conflict(rt, name));
        }
        let rv = state.rv + 1;
        for field in ["uid", "creationTimestamp"] {
            if let Some(v) = old.value["metadata"].get(field) {
                object["metadata"][field] = v.clone();
            }
        }
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let generation = old
            .value
            .pointer("/metadata/generation")
            .and_then(Value::as_i64);
        if let Some(g) = generation {
            let bumped = if object.get("spec") != old.value.get("spec") {
                g + 1
            } else {
                g
            };
            object["metadata"]["generation"] = json!(bumped);
        }
        let stored = StoredObject::new(object);
        if !dry_run {
            self.commit(
                &mut state,
                rt,
                key,
                Some(stored.clone()),
                ChangeType::Modified,
                stored.clone(),
            );
        }
        Ok(stored)
    }

    /// Deletes an object (for a namespace, also everything in it).
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<Arc<StoredObject>, ApiError> {
        let mut state = self.write();
        let key = (namespace.to_string(), name.to_string());
        let old = existing(&state, rt, &key)?;
        if dry_run {
            return Ok(old);
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            let registry = state.registry.clone();
            for t in registry.types().iter().filter(|t| t.namespaced) {
                let contained: Vec<_> = state
                    .collections
                    .get(&t.key())
                    .map(|c| {
                        c.range((name.to_string(), String::new())..)
                            .take_while(|((ns, _), _)| ns == name)
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, v) in contained {
                    self.commit(&mut state, t, k, None, ChangeType::Deleted, v);
                }
            }
        }
        self.commit(&mut state, rt, key, None, ChangeType::Deleted, old.clone());
        Ok(old)
    }

    fn commit(
        &self,
        state: &mut State,
        rt: &ResourceType,
        key: (String, String),
        new: Option<Arc<StoredObject>>,
        kind: ChangeType,
        object: Arc<StoredObject>,
    ) {
        state.rv += 1;
        let collection = state.collections.entry(rt.key()).or_default();
        match new {
            Some(o) => {
                collection.insert(key, o);
            }
            None => {
                collection.remove(&key);
            }
        }
        let change = Arc::new(Change {
            rv: state.rv,
            resource: rt.key(),
            kind,
            object,
        });
        state.history.push_back(change.clone());
        if state.history.len() > HISTORY {
            state.history.pop_front();
        }
        // No receiver is fine: nobody is watching.
        let _ = self.changes.send(change);
    }
}

fn existing(
    state: &State,
    rt: &ResourceType,
    key: &(String, String),
) -> Result<Arc<StoredObject>, ApiError> {
    state
        .collections
        .get(&rt.key())
        .and_then(|c| c.get(key))
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, &key.1))
}

fn namespace_exists(state: &State, namespace: &str) -> bool {
    let key = ResourceKey {
        group: String::new(),
        version: "v1".into(),
        plural: "namespaces".into(),
    };
    state
        .collections
        .get(&key)
        .is_some_and(|c| c.contains_key(&(String::new(), namespace.to_string())))
}

fn malformed(source: &str, reason: String) -> SnapshotError {
    let (path, line) = source.rsplit_once(':').unwrap_or((source, "1"));
    SnapshotError::Malformed {
        path: path.to_string(),
        line: line.parse().unwrap_or(1),
        reason,
    }
}
