//! Server-side field validation: the fields of an object its schema does not declare, as
//! the API server reports them for `fieldValidation=Strict` (an error) or `Warn` (warnings).

use serde_json::{Map, Value};

use super::KindSchema;

/// The paths (`spec.template.spec.containers[0].imagePullPolicyy`) of the fields of `object`
/// that its kind's schema does not declare, in document order.
pub fn unknown_fields(schema: &KindSchema, object: &Value) -> Vec<String> {
    let defs = schema.definitions.as_ref();
    let mut out = Vec::new();
    if let Some(root) = defs.get(&schema.name) {
        walk(defs, root, object, "", &mut out);
    }
    out
}

/// The schema a `$ref` names, or the schema itself.
fn resolve<'a>(defs: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    let name = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit_once('/'))
        .map(|(_, name)| name);
    match name.and_then(|n| defs.get(n)) {
        Some(target) => target,
        None => schema,
    }
}

/// A schema with its `$ref` and `allOf` parts, all of which describe the same value.
fn parts<'a>(defs: &'a Map<String, Value>, schema: &'a Value, out: &mut Vec<&'a Value>) {
    if out.len() > 16 {
        return;
    }
    let resolved = resolve(defs, schema);
    out.push(resolved);
    if let Some(all) = resolved.get("allOf").and_then(Value::as_array) {
        for s in all {
            parts(defs, s, out);
        }
    }
    if !std::ptr::eq(resolved, schema)
        && let Some(all) = schema.get("allOf").and_then(Value::as_array)
    {
        for s in all {
            parts(defs, s, out);
        }
    }
}

fn walk(
    defs: &Map<String, Value>,
    schema: &Value,
    value: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    let mut all = Vec::new();
    parts(defs, schema, &mut all);
    if all
        .iter()
        .any(|s| s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)))
    {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties: Vec<&Map<String, Value>> = all
                .iter()
                .filter_map(|s| s.get("properties").and_then(Value::as_object))
                .collect();
            let additional = all.iter().find_map(|s| s.get("additionalProperties"));
            // An object schema that declares no fields (RawExtension, FieldsV1) takes any.
            if properties.is_empty() && additional.is_none() {
                return;
            }
            for (key, v) in fields {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match properties.iter().find_map(|p| p.get(key)) {
                    Some(s) => walk(defs, s, v, &child, out),
                    None => match additional {
                        Some(Value::Bool(true)) => {}
                        Some(s @ Value::Object(_)) => walk(defs, s, v, &child, out),
                        _ => out.push(child),
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = all.iter().find_map(|s| s.get("items")) {
                for (i, v) in items.iter().enumerate() {
                    walk(defs, item_schema, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_through_refs_and_lists() {
        let catalog = crate::openapi::Catalog::new(&Registry::builtin(), &[]);
        let schema = catalog.kind_schema("apps", "v1", "Deployment").unwrap();
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "labels": {"x": "y"}, "bogus": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                  "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "Always",
                    "resources": {"limits": {"cpu": "1"}}}]}}},
            "status": {"replicas": 1}});
        assert_eq!(
            unknown_fields(&schema, &d),
            vec![
                "metadata.bogus".to_string(),
                "spec.template.spec.containers[0].imagePullPolicyy".to_string()
            ]
        );
        let cm = catalog.kind_schema("", "v1", "ConfigMap").unwrap();
        assert!(unknown_fields(&cm, &json!({"data": {"any": "key"}, "metadata": {"managedFields": [{"fieldsV1": {"f:data": {}}}]}})).is_empty());
    }
}
