//! What a call keeps of an object: the fields it asked for (`fields`), and a summary of who
//! manages which fields (`managers`) in place of the raw `metadata.managedFields`.

use serde_json::{Map, Value};

use crate::error::{ClusterError, Result};

/// Most paths one `fields` list may name.
const MAX_FIELDS: usize = 64;
/// Most field paths listed per manager in a `managers` summary.
const MAX_MANAGED_PATHS: usize = 40;

/// How much of each object a call returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    fields: Option<Trie>,
    managers: bool,
}

/// Requested paths as a tree: `metadata.name` and `metadata.labels` share `metadata`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Trie {
    /// The whole value at this node was asked for.
    whole: bool,
    children: Vec<(String, Trie)>,
}

impl Trie {
    fn insert(&mut self, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            self.whole = true;
            return;
        };
        let child = match self.children.iter().position(|(k, _)| k == first) {
            Some(i) => &mut self.children[i].1,
            None => {
                self.children.push((first.to_string(), Trie::default()));
                let last = self.children.len() - 1;
                &mut self.children[last].1
            }
        };
        child.insert(rest);
    }

    fn child(&self, key: &str) -> Option<&Trie> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }

    /// The parts of `value` this node asks for; `None` when none of them is there.
    fn pick(&self, value: &Value) -> Option<Value> {
        if self.whole {
            return Some(value.clone());
        }
        match value {
            Value::Object(m) => {
                // The object's own order, not the request's.
                let kept: Map<String, Value> = m
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.child(k)?.pick(v)?)))
                    .collect();
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            // A path through a list applies to each of its items.
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|i| self.pick(i)).collect(),
            )),
            _ => None,
        }
    }
}

impl View {
    /// The view a call's `fields` and `managers` arguments ask for; checks the paths. An
    /// object's `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` are always kept.
    pub fn new(fields: Option<&[String]>, managers: bool) -> Result<View> {
        Self::keeping(
            fields,
            managers,
            &["apiVersion", "kind", "metadata.name", "metadata.namespace"],
        )
    }

    /// Like [`View::new`], always keeping the paths `identity` (a compact event's `object`).
    pub fn keeping(fields: Option<&[String]>, managers: bool, identity: &[&str]) -> Result<View> {
        let fields = match fields {
            None => None,
            Some(paths) => {
                if paths.is_empty() {
                    return Err(ClusterError::bad_input(
                        "fields",
                        "`fields` is empty: name the dotted paths to keep, e.g. [\"metadata.name\", \"status.phase\"], or leave it out for whole objects",
                    ));
                }
                if paths.len() > MAX_FIELDS {
                    return Err(ClusterError::bad_input(
                        "fields",
                        format!(
                            "`fields` names {} paths; at most {MAX_FIELDS}: keep a parent path instead of its children",
                            paths.len()
                        ),
                    ));
                }
                let mut trie = Trie::default();
                for always in identity {
                    trie.insert(&always.split('.').collect::<Vec<_>>());
                }
                if managers {
                    trie.insert(&["metadata", "managers"]);
                }
                for path in paths {
                    let parts: Vec<&str> = path.split('.').collect();
                    if parts.iter().any(|p| p.is_empty()) {
                        return Err(ClusterError::bad_input(
                            "fields",
                            format!(
                                "`fields` path {path:?} is not a dotted path: write it as \"status.containerStatuses.restartCount\" (a path through a list applies to each item)"
                            ),
                        ));
                    }
                    trie.insert(&parts);
                }
                Some(trie)
            }
        };
        Ok(View { fields, managers })
    }

    /// Whole objects without `managedFields`: what a call returns unless it asks otherwise.
    pub fn is_whole(&self) -> bool {
        self.fields.is_none() && !self.managers
    }

    /// Applies the view to an object whose `kind`/`apiVersion` are filled in: replaces
    /// `metadata.managedFields` by the summary (when asked for) or drops it, then keeps only
    /// the requested fields.
    pub fn apply(&self, mut object: Value) -> Value {
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            let managed = meta.remove("managedFields");
            if self.managers {
                meta.insert(
                    "managers".into(),
                    managed.as_ref().map_or(Value::Array(Vec::new()), summary),
                );
            }
        }
        match &self.fields {
            Some(trie) => trie
                .pick(&object)
                .unwrap_or_else(|| Value::Object(Map::new())),
            None => object,
        }
    }
}

/// `managedFields` as `[{manager, operation, time, subresource?, fields}]`, `fields` being
/// the leaf paths each manager owns (`spec.replicas`, `spec.template.spec.containers[name=app].image`).
pub fn summary(managed: &Value) -> Value {
    let entries = managed.as_array().map(Vec::as_slice).unwrap_or_default();
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut paths = managed_paths(e);
                let total = paths.len();
                paths.truncate(MAX_MANAGED_PATHS);
                if total > MAX_MANAGED_PATHS {
                    paths.push(format!("… and {} more", total - MAX_MANAGED_PATHS));
                }
                let mut m = Map::new();
                for key in ["manager", "operation", "time", "subresource"] {
                    if let Some(v) = e.get(key).filter(|v| !v.is_null()) {
                        m.insert(key.into(), v.clone());
                    }
                }
                m.insert(
                    "fields".into(),
                    Value::Array(paths.into_iter().map(Value::String).collect()),
                );
                Value::Object(m)
            })
            .collect(),
    )
}

/// Every field one `managedFields` entry owns, as readable leaf paths
/// (`spec.template.spec.containers[name=app].image`, `metadata.labels["app.kubernetes.io/name"]`).
pub fn managed_paths(entry: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    if let Some(f) = entry.get("fieldsV1") {
        leaf_paths(f, String::new(), &mut paths);
    }
    paths
}

/// The leaves of a `fieldsV1` tree as readable paths.
fn leaf_paths(node: &Value, at: String, out: &mut Vec<String>) {
    let Some(m) = node.as_object() else {
        return;
    };
    let children: Vec<_> = m.iter().filter(|(k, _)| k.as_str() != ".").collect();
    if children.is_empty() {
        if !at.is_empty() {
            out.push(at);
        }
        return;
    }
    for (key, child) in children {
        let step = match key.split_once(':') {
            Some(("f", name)) if name.contains(['.', '/']) => format!("[{name:?}]"),
            Some(("f", name)) if at.is_empty() => name.to_string(),
            Some(("f", name)) => format!(".{name}"),
            Some(("k", keys)) => format!("[{}]", list_key(keys)),
            Some(("v", value)) => format!("[{value}]"),
            Some(("i", index)) => format!("[{index}]"),
            _ => format!("[{key:?}]"),
        };
        leaf_paths(child, format!("{at}{step}"), out);
    }
}

/// `{"containerPort":80,"protocol":"TCP"}` as `containerPort=80,protocol=TCP`.
fn list_key(keys: &str) -> String {
    match serde_json::from_str::<Map<String, Value>>(keys) {
        Ok(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(","),
        Err(_) => keys.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": "web-1", "namespace": "shop", "uid": "u", "labels": {"app": "web"},
                 "managedFields": [{"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-30T10:00:00Z",
                   "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}},
                     "f:annotations": {"f:deployment.kubernetes.io/revision": {}}},
                   "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}}}]},
               "spec": {"containers": [{"name": "app", "image": "a:1", "env": []}, {"name": "side", "image": "s:2"}]},
               "status": {"phase": "Running", "containerStatuses": [{"name": "app", "restartCount": 3}]}})
    }

    #[test]
    fn fields_keep_the_asked_paths_and_the_identity() {
        let fields = ["spec.containers.image".to_string(), "status.phase".into()];
        let v = View::new(Some(&fields), false).unwrap().apply(pod());
        assert_eq!(
            v,
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web-1", "namespace": "shop"},
                   "spec": {"containers": [{"image": "a:1"}, {"image": "s:2"}]},
                   "status": {"phase": "Running"}})
        );
    }

    #[test]
    fn managers_summarise_managed_fields() {
        let v = View::new(None, true).unwrap().apply(pod());
        assert_eq!(
            v["metadata"]["managers"],
            json!([{"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-30T10:00:00Z",
                    "fields": ["metadata.labels.app", "metadata.annotations[\"deployment.kubernetes.io/revision\"]",
                               "spec.containers[name=app].image"]}])
        );
        assert!(v["metadata"].get("managedFields").is_none());
        let whole = View::default().apply(pod());
        assert!(whole["metadata"].get("managedFields").is_none());
        assert!(whole["metadata"].get("managers").is_none());
    }

    #[test]
    fn bad_paths_are_refused_with_an_example() {
        let e = View::new(Some(&["spec..x".to_string()]), false).unwrap_err();
        assert_eq!(e.kind.code(), "BadInput");
        assert!(e.message.contains("dotted path"), "{}", e.message);
        assert!(View::new(Some(&[]), false).is_err());
    }
}
