//! The PATCH formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the common
//! cases of Kubernetes' strategic merge patch.

use serde_json::{Map, Value};

/// The patch formats a PATCH request may carry, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json`.
    Json,
}

impl PatchType {
    /// The patch type of a `Content-Type` header, if it is one kubesim applies.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/json-patch+json" => Some(PatchType::Json),
            _ => None,
        }
    }
}

/// Applies a patch to a copy of `target`; the error says what in the patch is wrong.
pub fn apply(target: &Value, patch: &Value, kind: PatchType) -> Result<Value, String> {
    let mut out = target.clone();
    match kind {
        PatchType::Merge => json_patch::merge(&mut out, patch),
        PatchType::Strategic => strategic_merge(&mut out, patch)?,
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| format!("invalid JSON patch: {e}"))?;
            json_patch::patch(&mut out, &ops)
                .map_err(|e| format!("the JSON patch could not be applied: {e}"))?;
        }
    }
    Ok(out)
}

/// The merge key of a list field, from the Kubernetes API's `patchMergeKey` tags: the field
/// that identifies the items of a list merged by key (`containers` by `name`), as strategic
/// merge patch and server-side apply merge them.
pub fn merge_key(field: &str, sample: &Value) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        // Container ports merge by containerPort, Service ports by port.
        "ports" if sample.get("containerPort").is_some() => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(patch_map) = patch else {
        return Err("a strategic merge patch must be a JSON object".into());
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch_map.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return Ok(());
    };
    for (key, value) in patch_map {
        if key == "$patch" || key.starts_with("$setElementOrder/") || key == "$retainKeys" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) =
                (target_map.get_mut(field), value)
            {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) => {
                let slot = target_map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(slot, value)?;
            }
            Value::Array(items) => {
                let key_field = items.first().and_then(|s| merge_key(key, s));
                match (key_field, target_map.get_mut(key)) {
                    (Some(mk), Some(Value::Array(existing))) => merge_list(existing, items, mk)?,
                    _ => {
                        let cleaned: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .cloned()
                            .collect();
                        target_map.insert(key.clone(), Value::Array(cleaned));
                    }
                }
            }
            other => {
                target_map.insert(key.clone(), other.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], merge_key: &str) -> Result<(), String> {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *existing = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return Ok(());
    }
    for item in items {
        let Some(id) = item.get(merge_key) else {
            return Err(format!(
                "an element of a list merged by `{merge_key}` has no `{merge_key}`"
            ));
        };
        let position = existing.iter().position(|e| e.get(merge_key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(p), true) => {
                existing.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => strategic_merge(&mut existing[p], item)?,
            (None, false) => existing.push(item.clone()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let target = json!({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
                                     "replicas": 1, "paused": true}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}],
                                    "replicas": 3, "paused": null}});
        let out = apply(&target, &patch, PatchType::Strategic).unwrap();
        assert_eq!(out["spec"]["containers"][0]["image"], "a:1");
        assert_eq!(out["spec"]["containers"][1]["image"], "b:2");
        assert_eq!(out["spec"]["containers"][2]["name"], "c");
        assert_eq!(out["spec"]["replicas"], 3);
        assert!(out["spec"].get("paused").is_none());
    }

    #[test]
    fn strategic_merge_directives() {
        let target = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["x", "y"],
                            "finalizers": ["f1", "f2"]});
        let patch = json!({"env": [{"name": "A", "$patch": "delete"}], "args": ["z"],
                           "$deleteFromPrimitiveList/finalizers": ["f1"]});
        let out = apply(&target, &patch, PatchType::Strategic).unwrap();
        assert_eq!(out["env"], json!([{"name": "B", "value": "2"}]));
        assert_eq!(out["args"], json!(["z"]));
        assert_eq!(out["finalizers"], json!(["f2"]));
    }

    #[test]
    fn merge_and_json_patch() {
        let target = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        let out = apply(
            &target,
            &json!({"a": {"b": null}, "l": [3]}),
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(out, json!({"a": {"c": 2}, "l": [3]}));
        let ops = json!([{"op": "replace", "path": "/a/b", "value": 5}, {"op": "add", "path": "/l/-", "value": 9}]);
        let out = apply(&target, &ops, PatchType::Json).unwrap();
        assert_eq!(out, json!({"a": {"b": 5, "c": 2}, "l": [1, 2, 9]}));
        assert!(
            apply(
                &target,
                &json!([{"op": "remove", "path": "/zz"}]),
                PatchType::Json
            )
            .is_err()
        );
    }
}
