//! TypeScript declarations of Kubernetes kinds, generated from the cluster's OpenAPI
//! schemas: what `tools.describe("Pod")` and `kube_explain` show a model.

use std::collections::{HashSet, VecDeque};

use cluster::{ClusterError, KindSchema};
use serde_json::Value;

/// About how much declaration text one answer carries; the types beyond it are named,
/// not expanded, and the answer says how to see them.
const BUDGET: usize = 12_000;
/// Longest doc comment per field (its first sentence, cut here).
const DOC_CHARS: usize = 110;

/// The short name of a named schema: `io.k8s.api.core.v1.PodSpec` → `PodSpec`.
fn short_name(name: &str) -> &str {
    let name = name.rsplit_once('/').map_or(name, |(_, n)| n);
    name.rsplit_once('.').map_or(name, |(_, n)| n)
}

/// The first sentence of a description, on one line, at most [`DOC_CHARS`].
fn first_sentence(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let end = line
        .find(". ")
        .map(|i| i + 1)
        .unwrap_or(line.len())
        .min(line.len());
    let mut s: String = line[..end].chars().take(DOC_CHARS).collect();
    if s.len() < end {
        s.push('…');
    }
    s.replace("*/", "* /")
}

/// The `$ref` a schema stands for: `{$ref}` or `{allOf: [{$ref}]}` (how OpenAPI v3 gives a
/// referenced field its own description).
fn reference(schema: &Value) -> Option<&str> {
    schema.get("$ref").and_then(Value::as_str).or_else(|| {
        schema
            .get("allOf")
            .and_then(Value::as_array)
            .filter(|all| all.len() == 1)
            .and_then(|all| all[0].get("$ref"))
            .and_then(Value::as_str)
    })
}

struct Writer<'a> {
    k: &'a KindSchema,
    out: String,
    queued: HashSet<String>,
    queue: VecDeque<(String, String)>,
    not_expanded: Vec<String>,
}

impl Writer<'_> {
    /// A TypeScript type for a schema, queueing named types for declaration.
    fn ts(&mut self, schema: &Value) -> String {
        if let Some(r) = reference(schema) {
            let name = r.rsplit_once('/').map_or(r, |(_, n)| n).to_string();
            let Some(target) = self.k.schema(&name) else {
                return "any".into();
            };
            // Well-known scalar wrappers (Quantity, Time, IntOrString) are strings or numbers.
            if target.get("properties").is_none()
                && matches!(
                    target.get("type").and_then(Value::as_str),
                    Some("string" | "integer" | "number" | "boolean")
                )
                || target.get("x-kubernetes-int-or-string").is_some()
                || target.get("oneOf").is_some()
            {
                return self.inline(target);
            }
            let short = short_name(&name).to_string();
            if self.queued.insert(name.clone()) {
                self.queue.push_back((short.clone(), name));
            }
            return short;
        }
        self.inline(schema)
    }

    fn inline(&mut self, schema: &Value) -> String {
        if schema.get("x-kubernetes-int-or-string").is_some() {
            return "number | string".into();
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let vs: Vec<String> = values.iter().take(12).map(Value::to_string).collect();
            if !vs.is_empty() {
                return vs.join(" | ");
            }
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => "string".into(),
            Some("integer" | "number") => "number".into(),
            Some("boolean") => "boolean".into(),
            Some("array") => {
                let item = schema
                    .get("items")
                    .map(|i| self.ts(i))
                    .unwrap_or_else(|| "any".into());
                if item.contains(" | ") && !item.starts_with('{') {
                    format!("({item})[]")
                } else {
                    format!("{item}[]")
                }
            }
            Some("object") | None => {
                if let Some(props) = schema.get("properties").and_then(Value::as_object)
                    && !props.is_empty()
                {
                    // An anonymous object (custom resources nest them): inline, one level.
                    let required = required(schema);
                    let fields: Vec<String> = props
                        .iter()
                        .map(|(n, s)| {
                            let opt = if required.contains(n) { "" } else { "?" };
                            format!("{n}{opt}: {}", self.ts(s))
                        })
                        .collect();
                    return format!("{{ {} }}", fields.join("; "));
                }
                match schema.get("additionalProperties") {
                    Some(Value::Object(_)) => {
                        let v = schema
                            .get("additionalProperties")
                            .map(|a| self.ts(a))
                            .unwrap_or_else(|| "any".into());
                        format!("Record<string, {v}>")
                    }
                    _ if schema.get("type").is_some() => "Record<string, any>".into(),
                    _ => "any".into(),
                }
            }
            Some(_) => "any".into(),
        }
    }

    /// Declares one named object type: `interface Name { field?: Type; // doc }`.
    fn interface(&mut self, name: &str, schema: &Value) {
        let mut text = String::new();
        if let Some(d) = schema.get("description").and_then(Value::as_str) {
            text.push_str(&format!("/** {} */\n", first_sentence(d)));
        }
        text.push_str(&format!("interface {name} {{\n"));
        let required = required(schema);
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (field, s) in props {
                let ty = self.ts(s);
                let opt = if required.contains(field) { "" } else { "?" };
                let doc = s
                    .get("description")
                    .and_then(Value::as_str)
                    .map(|d| format!("  // {}", first_sentence(d)))
                    .unwrap_or_default();
                text.push_str(&format!("  {field}{opt}: {ty};{doc}\n"));
            }
        }
        text.push_str("}\n");
        self.out.push_str(&text);
    }
}

fn required(schema: &Value) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Follows `field` (`spec.template.spec.containers`) from a schema, through references and
/// list items.
fn descend<'a>(k: &'a KindSchema, mut schema: &'a Value, field: &str) -> Result<&'a Value, String> {
    let mut walked = Vec::new();
    for step in field.split('.').filter(|s| !s.is_empty()) {
        loop {
            if let Some(r) = reference(schema) {
                schema = k.schema(r).ok_or_else(|| format!("no schema {r}"))?;
            } else if schema.get("type").and_then(Value::as_str) == Some("array") {
                schema = schema.get("items").ok_or("a list without item schema")?;
            } else {
                break;
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        match props.and_then(|p| p.get(step)) {
            Some(next) => schema = next,
            None => {
                let known: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let at = if walked.is_empty() {
                    k.kind.clone()
                } else {
                    format!("{}.{}", k.kind, walked.join("."))
                };
                return Err(format!(
                    "{at} has no field {step:?}; its fields: {}",
                    if known.is_empty() {
                        "none (a free-form value)".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        walked.push(step);
    }
    Ok(schema)
}

/// The declaration of a kind (or of one of its fields, `field` being a dotted path), with
/// the types it uses, breadth first, within a budget.
pub fn declaration(k: &KindSchema, field: Option<&str>) -> Result<String, ClusterError> {
    let root = k
        .schema(&k.root)
        .ok_or_else(|| ClusterError::not_found(format!("no schema {}", k.root)))?;
    let mut w = Writer {
        k,
        out: String::new(),
        queued: HashSet::new(),
        queue: VecDeque::new(),
        not_expanded: Vec::new(),
    };
    let title = match field.filter(|f| !f.is_empty()) {
        None => {
            w.out.push_str(&format!(
                "// {} ({}), from the cluster's OpenAPI schema. Lists and gets return it with metadata.managedFields removed.\n",
                k.kind, k.api_version
            ));
            w.queued.insert(k.root.clone());
            w.interface(&k.kind.clone(), root);
            None
        }
        Some(f) => {
            let target = descend(k, root, f).map_err(|e| ClusterError::bad_input("field", e))?;
            w.out.push_str(&format!(
                "// {}.{f} ({}), from the cluster's OpenAPI schema.\n",
                k.kind, k.api_version
            ));
            let ty = w.ts(target);
            let doc = target
                .get("description")
                .and_then(Value::as_str)
                .map(|d| format!(" // {}", first_sentence(d)))
                .unwrap_or_default();
            w.out.push_str(&format!("type Field = {ty};{doc}\n"));
            Some(f.to_string())
        }
    };
    while let Some((short, name)) = w.queue.pop_front() {
        if w.out.len() > BUDGET {
            w.not_expanded.push(short);
            continue;
        }
        if let Some(s) = k.schema(&name) {
            w.interface(&short, s);
        }
    }
    if !w.not_expanded.is_empty() {
        let base = title.map_or(k.kind.clone(), |f| format!("{}.{f}", k.kind));
        w.out.push_str(&format!(
            "// Not expanded here: {}. Ask for a field's type with tools.describe(\"{base}.<field>\").\n",
            w.not_expanded.join(", ")
        ));
    }
    Ok(w.out)
}

/// The kinds typed without a cluster (from the schema of the Kubernetes version k8s-openapi
/// carries): those programs most often list or get, each with the spellings that name it.
const TYPED_KINDS: &[(&str, &[&str])] = &[
    ("Pod", &["Pod", "pods", "pod", "po"]),
    (
        "Deployment",
        &["Deployment", "deployments", "deployment", "deploy"],
    ),
    (
        "ReplicaSet",
        &["ReplicaSet", "replicasets", "replicaset", "rs"],
    ),
    (
        "StatefulSet",
        &["StatefulSet", "statefulsets", "statefulset", "sts"],
    ),
    ("DaemonSet", &["DaemonSet", "daemonsets", "daemonset", "ds"]),
    ("Job", &["Job", "jobs", "job"]),
    ("Service", &["Service", "services", "service", "svc"]),
    ("Node", &["Node", "nodes", "node", "no"]),
    ("ConfigMap", &["ConfigMap", "configmaps", "configmap", "cm"]),
    (
        "PersistentVolumeClaim",
        &["PersistentVolumeClaim", "persistentvolumeclaims", "pvc"],
    ),
];

/// `kubecode://types/kinds.d.ts`: `interface Kinds` (spelling → type) and the declarations of
/// [`TYPED_KINDS`], so that `list`/`get` with a literal kind are typed. Generated from
/// k8s-openapi's schemas (the same data kubesim serves); a live cluster's own schema, custom
/// resources included, comes from `tools.describe(kind)`.
pub fn builtin_declarations() -> &'static str {
    // The same ~120 KB every time: written once per process, when first asked for.
    static DECLARATIONS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECLARATIONS.get_or_init(write_builtin_declarations)
}

fn write_builtin_declarations() -> String {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    use schemars::JsonSchema;
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let mut roots = Vec::new();
    let mut add = |kind: &str, name: std::borrow::Cow<'static, str>| {
        roots.push((kind.to_string(), name.into_owned()))
    };
    generator.subschema_for::<core::Pod>();
    add("Pod", core::Pod::schema_name());
    generator.subschema_for::<apps::Deployment>();
    add("Deployment", apps::Deployment::schema_name());
    generator.subschema_for::<apps::ReplicaSet>();
    add("ReplicaSet", apps::ReplicaSet::schema_name());
    generator.subschema_for::<apps::StatefulSet>();
    add("StatefulSet", apps::StatefulSet::schema_name());
    generator.subschema_for::<apps::DaemonSet>();
    add("DaemonSet", apps::DaemonSet::schema_name());
    generator.subschema_for::<batch::Job>();
    add("Job", batch::Job::schema_name());
    generator.subschema_for::<core::Service>();
    add("Service", core::Service::schema_name());
    generator.subschema_for::<core::Node>();
    add("Node", core::Node::schema_name());
    generator.subschema_for::<core::ConfigMap>();
    add("ConfigMap", core::ConfigMap::schema_name());
    generator.subschema_for::<core::PersistentVolumeClaim>();
    add(
        "PersistentVolumeClaim",
        core::PersistentVolumeClaim::schema_name(),
    );
    let schemas = Value::Object(generator.take_definitions(true));
    let k = KindSchema {
        kind: String::new(),
        api_version: String::new(),
        root: String::new(),
        schemas: std::sync::Arc::new(schemas),
    };
    let mut w = Writer {
        k: &k,
        out: String::from(
            "// Built-in kinds as Kubernetes defines them (k8s-openapi's schema); tools.describe(kind) gives the\n// cluster's own, custom resources included. list/get return them with metadata.managedFields removed.\n",
        ),
        queued: HashSet::new(),
        queue: VecDeque::new(),
        not_expanded: Vec::new(),
    };
    w.out.push_str("interface Kinds {\n");
    for (kind, spellings) in TYPED_KINDS {
        for s in *spellings {
            w.out.push_str(&format!("  {s:?}: {kind};\n"));
        }
    }
    w.out.push_str("}\n");
    for (kind, name) in &roots {
        if let Some(schema) = k.schema(name) {
            w.queued.insert(name.clone());
            w.interface(kind, schema);
        }
    }
    // Every type the kinds use, however deep: this is a resource, not a tool description.
    while let Some((short, name)) = w.queue.pop_front() {
        if let Some(s) = k.schema(&name) {
            w.interface(&short, s);
        }
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn widget() -> KindSchema {
        KindSchema {
            kind: "Widget".into(),
            api_version: "example.com/v1".into(),
            root: "com.example.v1.Widget".into(),
            schemas: Arc::new(json!({
                "com.example.v1.Widget": {"description": "A widget. It widgets.", "type": "object", "required": ["spec"],
                    "properties": {
                        "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}], "description": "Standard metadata."},
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer", "description": "How big."},
                            "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": true}}}},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                        "memory": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}}},
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {"type": "object", "properties": {"name": {"type": "string", "description": "Name must be unique. More text here."}}},
                "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string", "description": "Quantity."}
            })),
        }
    }

    #[test]
    fn a_kind_reads_as_typescript() {
        let d = declaration(&widget(), None).unwrap();
        assert!(d.contains("interface Widget {"), "{d}");
        assert!(
            d.contains("  metadata?: ObjectMeta;  // Standard metadata."),
            "{d}"
        );
        assert!(
            d.contains("spec: { size?: number; ports?: { port?: number | string }[]; labels?: Record<string, string> };"),
            "{d}"
        );
        assert!(d.contains("memory?: string;"), "{d}");
        assert!(
            d.contains("interface ObjectMeta {\n  name?: string;  // Name must be unique.\n}"),
            "{d}"
        );
    }

    #[test]
    fn built_in_kinds_are_declared_with_every_type_they_use() {
        let d = builtin_declarations();
        assert!(
            d.contains("interface Kinds {\n  \"Pod\": Pod;"),
            "{}",
            &d[..400]
        );
        assert!(d.contains("  \"deploy\": Deployment;"));
        for declared in [
            "interface Pod {",
            "interface PodSpec {",
            "interface Container {",
            "interface ObjectMeta {",
            "interface DeploymentSpec {",
        ] {
            assert!(d.contains(declared), "{declared}");
        }
        // Every named type a field uses is declared (checked with `tsc --strict --lib es2022`
        // together with the function declarations when this was written).
        let declared: HashSet<&str> = d
            .lines()
            .filter_map(|l| l.strip_prefix("interface "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for line in d
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains(": "))
        {
            let ty = line.split_once(": ").map_or("", |(_, t)| t);
            let ty = ty.split(';').next().unwrap_or("");
            for word in ty.split(|c: char| !c.is_ascii_alphanumeric()) {
                if word.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && word != "Record" {
                    assert!(
                        declared.contains(word),
                        "{word} is used but not declared: {line}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_field_path_drills_in_and_a_wrong_one_names_the_fields() {
        let d = declaration(&widget(), Some("spec.ports")).unwrap();
        assert!(
            d.contains("type Field = { port?: number | string }[];"),
            "{d}"
        );
        let e = declaration(&widget(), Some("spec.colour")).unwrap_err();
        assert!(
            e.message
                .contains("Widget.spec has no field \"colour\"; its fields: size, ports, labels"),
            "{}",
            e.message
        );
    }
}
