//! Server-side apply (`PATCH` with `application/apply-patch+yaml`), following the API
//! server's model closely enough for Helm v4 and `kubectl apply --server-side`:
//!
//! - each manager's applied fields are recorded in `metadata.managedFields` as a FieldsV1
//!   set (`f:` fields, `k:` items of lists merged by key);
//! - applying merges the configuration into the live object (maps field by field, lists with
//!   a merge key item by item, other lists whole) and removes the fields the same manager
//!   applied last time and applies no more, unless another manager also owns them;
//! - a field another manager owns whose value the configuration changes is a conflict (409)
//!   unless `force=true`, which takes the field over.
//!
//! - a write that is not an apply (update, patch) to an object that has managed fields makes
//!   its manager (operation `Update`) the owner of the fields it changed, taking them from
//!   the others, so that an applier no longer prunes what someone else changed since.
//!
//! Not modelled: ownership of objects never applied (no entries are invented for them),
//! `x-kubernetes-list-type: set` lists (treated as atomic), and apply to subresources.

use serde_json::{Map, Value, json};

use crate::patch::merge_key;

/// One field ownership conflict: the manager that owns the field, and the field's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager.
    pub manager: String,
    /// The apiVersion the manager wrote with.
    pub api_version: String,
    /// `.spec.replicas`, `.spec.template.spec.containers[name="web"].image`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug)]
pub enum ApplyError {
    /// The configuration is not usable (what is wrong).
    Invalid(String),
    /// Fields owned by other managers would change.
    Conflicts(Vec<Conflict>),
}

/// The fields the server keeps itself, which no manager owns.
fn tracked(object: &Value) -> Value {
    let mut o = object.clone();
    if let Value::Object(m) = &mut o {
        m.remove("apiVersion");
        m.remove("kind");
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            for field in [
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "managedFields",
                "selfLink",
                "deletionTimestamp",
            ] {
                meta.remove(field);
            }
            if meta.is_empty() {
                m.remove("metadata");
            }
        }
    }
    o
}

/// The FieldsV1 set of the fields a configuration sets.
pub fn field_set(config: &Value) -> Value {
    let mut set = Map::new();
    if let Value::Object(fields) = config {
        for (name, value) in fields {
            set.insert(format!("f:{name}"), member_set(name, value));
        }
    }
    Value::Object(set)
}

fn member_set(name: &str, value: &Value) -> Value {
    match value {
        Value::Object(m) if !m.is_empty() => field_set(value),
        Value::Array(items) => match items.first().and_then(|i| merge_key(name, i)) {
            Some(key) => {
                let mut set = Map::new();
                for item in items {
                    if let Some(k) = item_key(item, key) {
                        let mut child = field_set(item);
                        if let Value::Object(c) = &mut child {
                            c.insert(".".into(), json!({}));
                        }
                        set.insert(k, child);
                    }
                }
                Value::Object(set)
            }
            None => json!({}),
        },
        _ => json!({}),
    }
}

/// `k:{"name":"web"}`: how FieldsV1 names an item of a list merged by `key`.
fn item_key(item: &Value, key: &str) -> Option<String> {
    let id = item.get(key)?;
    Some(format!("k:{}", json!({key: id})))
}

fn item_matches(item: &Value, set_key: &str) -> bool {
    let Some(Ok(Value::Object(want))) = set_key
        .strip_prefix("k:")
        .map(serde_json::from_str::<Value>)
    else {
        return false;
    };
    want.iter().all(|(k, v)| item.get(k) == Some(v))
}

/// Merges `config` into `live` (maps field by field, keyed lists item by item).
fn merge(live: &mut Value, config: &Value) {
    let (Value::Object(l), Value::Object(c)) = (&mut *live, config) else {
        *live = config.clone();
        return;
    };
    for (name, value) in c {
        match (l.get_mut(name), value) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => merge(existing, value),
            (Some(Value::Array(existing)), Value::Array(items)) => {
                match items.first().and_then(|i| merge_key(name, i)) {
                    Some(key) => merge_items(existing, items, key),
                    None => *existing = items.clone(),
                }
            }
            _ => {
                l.insert(name.clone(), value.clone());
            }
        }
    }
}

fn merge_items(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        match existing
            .iter_mut()
            .find(|e| item.get(key).is_some() && e.get(key) == item.get(key))
        {
            Some(e) => merge(e, item),
            None => existing.push(item.clone()),
        }
    }
}

/// Removes from `live` what `old` has and neither `new` nor any of `others` has.
fn prune(live: &mut Value, old: &Value, new: Option<&Value>, others: &[&Value]) {
    let Value::Object(old) = old else { return };
    for (key, old_child) in old {
        if key == "." {
            continue;
        }
        let new_child = new.and_then(|n| n.get(key));
        let other_children: Vec<&Value> = others.iter().filter_map(|o| o.get(key)).collect();
        let kept = new_child.is_some() || !other_children.is_empty();
        if let Some(name) = key.strip_prefix("f:") {
            let Some(map) = live.as_object_mut() else {
                continue;
            };
            if !kept {
                map.remove(name);
            } else if let Some(child) = map.get_mut(name) {
                prune(child, old_child, new_child, &other_children);
            }
        } else if key.starts_with("k:") {
            let Some(items) = live.as_array_mut() else {
                continue;
            };
            if !kept {
                items.retain(|i| !item_matches(i, key));
            } else if let Some(item) = items.iter_mut().find(|i| item_matches(i, key)) {
                prune(item, old_child, new_child, &other_children);
            }
        }
    }
}

/// The fields `config` sets to a value other than `live`'s that `owned` (another manager's
/// set) holds; `path` is the field path so far.
fn conflicts(config: &Value, live: &Value, owned: &Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(c) = config else { return };
    for (name, value) in c {
        let Some(owned_child) = owned.get(format!("f:{name}")) else {
            continue;
        };
        let field = format!("{path}.{name}");
        let live_child = live.get(name).unwrap_or(&Value::Null);
        let is_leaf = owned_child.as_object().is_none_or(|m| m.is_empty());
        match value {
            Value::Object(m) if !m.is_empty() && !is_leaf => {
                conflicts(value, live_child, owned_child, &field, out)
            }
            Value::Array(items) if !is_leaf => {
                let Some(key) = items.first().and_then(|i| merge_key(name, i)) else {
                    continue;
                };
                for item in items {
                    let Some(k) = item_key(item, key) else {
                        continue;
                    };
                    let Some(owned_item) = owned_child.get(&k) else {
                        continue;
                    };
                    let live_item = live_child
                        .as_array()
                        .and_then(|l| l.iter().find(|i| item_matches(i, &k)))
                        .unwrap_or(&Value::Null);
                    let label =
                        format!("{field}[{}={}]", key, item.get(key).unwrap_or(&Value::Null));
                    conflicts(item, live_item, owned_item, &label, out);
                }
            }
            _ => {
                if live_child != value {
                    out.push(field);
                }
            }
        }
    }
}

/// Removes from another manager's set the fields whose value `config` changes: a forced
/// apply takes them over. Maps left empty go too.
fn release(set: &mut Value, config: &Value, live: &Value) {
    let Value::Object(c) = config else { return };
    for (name, value) in c {
        let key = format!("f:{name}");
        let live_child = live.get(name).unwrap_or(&Value::Null);
        let Some(owned_child) = set.get_mut(&key) else {
            continue;
        };
        let is_leaf = owned_child.as_object().is_none_or(|m| m.is_empty());
        let drop = match value {
            Value::Object(m) if !m.is_empty() && !is_leaf => {
                release(owned_child, value, live_child);
                owned_child.as_object().is_some_and(|m| m.is_empty())
            }
            Value::Array(items) if !is_leaf => {
                if let Some(k) = items.first().and_then(|i| merge_key(name, i)) {
                    for item in items {
                        let Some(ik) = item_key(item, k) else {
                            continue;
                        };
                        let live_item = live_child
                            .as_array()
                            .and_then(|l| l.iter().find(|i| item_matches(i, &ik)))
                            .cloned()
                            .unwrap_or(Value::Null);
                        let Some(owned_item) = owned_child.get_mut(&ik) else {
                            continue;
                        };
                        release(owned_item, item, &live_item);
                        if owned_item
                            .as_object()
                            .is_some_and(|m| m.keys().all(|k| k == "."))
                            && let Some(m) = owned_child.as_object_mut()
                        {
                            m.remove(&ik);
                        }
                    }
                }
                owned_child.as_object().is_some_and(|m| m.is_empty())
            }
            _ => live_child != value,
        };
        if drop && let Some(m) = set.as_object_mut() {
            m.remove(&key);
        }
    }
}

fn entries(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn is_manager(entry: &Value, manager: &str) -> bool {
    entry.get("manager").and_then(Value::as_str) == Some(manager)
        && entry.get("operation").and_then(Value::as_str) == Some("Apply")
}

/// Applies `config` as `manager` to `live` (None: the object does not exist yet). `time` is
/// the timestamp recorded in the manager's entry. Returns the new object.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    time: &str,
) -> Result<Value, ApplyError> {
    if !config.is_object() {
        return Err(ApplyError::Invalid(
            "an apply configuration must be an object".into(),
        ));
    }
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null() && m.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil in an apply configuration; remove it".into(),
        ));
    }
    let api_version = config.get("apiVersion").cloned().unwrap_or(Value::Null);
    let new_set = field_set(&tracked(config));
    let entry = json!({
        "manager": manager, "operation": "Apply", "apiVersion": api_version, "time": time,
        "fieldsType": "FieldsV1", "fieldsV1": new_set,
    });
    let Some(live) = live else {
        let mut object = config.clone();
        object["metadata"]["managedFields"] = json!([entry]);
        return Ok(object);
    };
    let mut managed = entries(live);
    // Conflicts with every other manager that owns a field the configuration changes.
    let mut found = Vec::new();
    for other in managed.iter().filter(|e| !is_manager(e, manager)) {
        let mut fields = Vec::new();
        if let Some(set) = other.get("fieldsV1") {
            conflicts(config, live, set, "", &mut fields);
        }
        let text = |k: &str| {
            other
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        found.extend(fields.into_iter().map(|field| Conflict {
            manager: text("manager"),
            api_version: text("apiVersion"),
            field,
        }));
    }
    if !found.is_empty() {
        if !force {
            return Err(ApplyError::Conflicts(found));
        }
        for other in managed.iter_mut().filter(|e| !is_manager(e, manager)) {
            if let Some(set) = other.get_mut("fieldsV1") {
                release(set, config, live);
            }
        }
    }
    let old_set = managed
        .iter()
        .find(|e| is_manager(e, manager))
        .and_then(|e| e.get("fieldsV1"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut object = live.clone();
    {
        let others: Vec<&Value> = managed
            .iter()
            .filter(|e| !is_manager(e, manager))
            .filter_map(|e| e.get("fieldsV1"))
            .collect();
        prune(&mut object, &old_set, Some(&new_set), &others);
    }
    merge(&mut object, config);
    managed.retain(|e| !is_manager(e, manager));
    // A manager that owns nothing any more has no entry.
    managed.retain(|e| {
        e.get("fieldsV1")
            .and_then(Value::as_object)
            .is_none_or(|m| !m.is_empty())
    });
    managed.push(entry);
    object["metadata"]["managedFields"] = json!(managed);
    Ok(object)
}

/// The fields `new` sets to a value `old` does not have.
fn changed_set(old: &Value, new: &Value) -> Value {
    let mut set = Map::new();
    let Value::Object(n) = new else {
        return Value::Object(set);
    };
    for (name, value) in n {
        let before = old.get(name);
        if before == Some(value) {
            continue;
        }
        let child = match (before, value) {
            (Some(b @ Value::Object(_)), Value::Object(m)) if !m.is_empty() => {
                changed_set(b, value)
            }
            (Some(Value::Array(b)), Value::Array(items)) => {
                match items.first().and_then(|i| merge_key(name, i)) {
                    Some(key) => {
                        let mut keyed = Map::new();
                        for item in items {
                            let Some(k) = item_key(item, key) else {
                                continue;
                            };
                            let prior = b.iter().find(|i| item_matches(i, &k));
                            if prior == Some(item) {
                                continue;
                            }
                            let mut c = changed_set(prior.unwrap_or(&Value::Null), item);
                            if prior.is_none()
                                && let Value::Object(m) = &mut c
                            {
                                m.insert(".".into(), json!({}));
                            }
                            keyed.insert(k, c);
                        }
                        Value::Object(keyed)
                    }
                    None => json!({}),
                }
            }
            _ => member_set(name, value),
        };
        set.insert(format!("f:{name}"), child);
    }
    Value::Object(set)
}

/// Removes from `set` the fields `changed` holds (their new owner is someone else), and
/// maps left empty.
fn subtract(set: &mut Value, changed: &Value) {
    let (Value::Object(s), Value::Object(c)) = (set, changed) else {
        return;
    };
    for (key, child) in c {
        if key == "." {
            continue;
        }
        let leaf = child.as_object().is_none_or(|m| m.keys().all(|k| k == "."));
        if leaf {
            s.remove(key);
        } else if let Some(mine) = s.get_mut(key) {
            subtract(mine, child);
            if mine.as_object().is_some_and(|m| m.is_empty()) {
                s.remove(key);
            }
        }
    }
}

/// Adds `changed` to `set`.
fn union(set: &mut Value, changed: &Value) {
    let (Value::Object(s), Value::Object(c)) = (set, changed) else {
        return;
    };
    for (key, child) in c {
        match s.get_mut(key) {
            Some(mine) => union(mine, child),
            None => {
                s.insert(key.clone(), child.clone());
            }
        }
    }
}

/// Drops from `set` the fields `object` no longer has.
fn retain_existing(set: &mut Value, object: &Value) {
    let Value::Object(s) = set else { return };
    s.retain(|key, child| {
        if key == "." {
            return true;
        }
        let found = if let Some(name) = key.strip_prefix("f:") {
            object.get(name)
        } else if key.starts_with("k:") {
            object
                .as_array()
                .and_then(|items| items.iter().find(|i| item_matches(i, key)))
        } else {
            return true;
        };
        match found {
            Some(v) => {
                retain_existing(child, v);
                true
            }
            None => false,
        }
    });
}

/// Records a write that is not an apply: when `old` has managed fields, `manager` (operation
/// `Update`) becomes the owner of what the write changed, and nobody owns what it removed.
pub fn record_update(old: &Value, new: &mut Value, manager: &str, time: &str) {
    let mut managed = entries(old);
    if managed.is_empty() {
        return;
    }
    let changed = changed_set(&tracked(old), &tracked(new));
    let is_updater = |e: &Value| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some("Update")
    };
    for e in managed.iter_mut() {
        let updater = is_updater(e);
        if let Some(set) = e.get_mut("fieldsV1") {
            if !updater {
                subtract(set, &changed);
            }
            retain_existing(set, new);
        }
    }
    let has_changes = changed.as_object().is_some_and(|m| !m.is_empty());
    if has_changes {
        match managed.iter_mut().find(|e| is_updater(e)) {
            Some(e) => {
                if let Some(set) = e.get_mut("fieldsV1") {
                    union(set, &changed);
                }
                e["time"] = json!(time);
            }
            None => managed.push(json!({
                "manager": manager, "operation": "Update",
                "apiVersion": new.get("apiVersion").cloned().unwrap_or(Value::Null),
                "time": time, "fieldsType": "FieldsV1", "fieldsV1": changed,
            })),
        }
    }
    managed.retain(|e| {
        e.get("fieldsV1")
            .and_then(Value::as_object)
            .is_none_or(|m| !m.is_empty())
    });
    new["metadata"]["managedFields"] = json!(managed);
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-01-01T00:00:00Z";

    fn deployment(image: &str, extra_env: bool) -> Value {
        let mut env = vec![json!({"name": "A", "value": "1"})];
        if extra_env {
            env.push(json!({"name": "B", "value": "2"}));
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": image, "env": env}]}}}})
    }

    #[test]
    fn apply_creates_merges_and_prunes_what_the_manager_dropped() {
        let created = apply(None, &deployment("a:1", true), "helm", false, T).unwrap();
        let set = &created["metadata"]["managedFields"][0]["fieldsV1"];
        assert!(
            set["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:image"]
                .is_object()
        );
        assert!(set["f:metadata"].get("f:name").is_none());
        // Someone scales it with an update: the replicas become theirs.
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(3);
        record_update(&created, &mut scaled, "kubectl", T);
        let managers: Vec<&str> = scaled["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["helm", "kubectl"]);
        // The next apply drops replicas and env B: replicas stay (kubectl owns them), B goes.
        let mut config = deployment("a:2", false);
        config["spec"].as_object_mut().unwrap().remove("replicas");
        let applied = apply(Some(&scaled), &config, "helm", false, T).unwrap();
        assert_eq!(applied["spec"]["replicas"], 3);
        let container = &applied["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "a:2");
        assert_eq!(container["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(applied["metadata"]["labels"], json!({"app": "web"}));
        // Setting kubectl's replicas is a conflict, unless forced.
        let mut config = deployment("a:2", false);
        config["spec"]["replicas"] = json!(5);
        match apply(Some(&applied), &config, "helm", false, T) {
            Err(ApplyError::Conflicts(c)) => assert_eq!(
                c,
                vec![Conflict {
                    manager: "kubectl".into(),
                    api_version: "apps/v1".into(),
                    field: ".spec.replicas".into()
                }]
            ),
            other => panic!("expected a conflict, got {other:?}"),
        }
        let forced = apply(Some(&applied), &config, "helm", true, T).unwrap();
        assert_eq!(forced["spec"]["replicas"], 5);
        let kubectl_entry = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == "kubectl");
        assert!(
            kubectl_entry.is_none(),
            "kubectl owned only replicas, now helm's"
        );
    }
}
