//! TypeScript declarations generated from the functions' JSON Schemas: what `tools.describe`,
//! `kubecode types` and the `kubecode://types/*.d.ts` resources show a model.

use serde_json::Value;

use crate::{Catalog, Function};

/// The shared types every declaration file starts with: the names the index's return
/// types use.
pub const PRELUDE: &str = "/** A Kubernetes object as the API returns it, metadata.managedFields removed. tools.describe(\"Pod\") gives any kind's fields. */\n\
type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [field: string]: any }; [field: string]: any };\n\
/** An event, compact; first/last in RFC 3339. */\n\
type Event = { type: \"Normal\" | \"Warning\"; reason: string; message: string; object: { kind: string; name: string; namespace?: string }; count: number; first: string; last: string; source?: string };\n\
/** Resource usage: CPU in millicores, memory in bytes; pods per container, nodes with the percent of allocatable. */\n\
type Usage = { name: string; namespace?: string; cpuMillicores: number; memoryBytes: number; containers?: { name: string; cpuMillicores: number; memoryBytes: number }[]; cpuPercent?: number; memoryPercent?: number };\n\
/** A Helm release revision. */\n\
type HelmRelease = { name: string; namespace: string; revision: number; status: string; chart: string; appVersion?: string; updated?: string; description?: string };\n\
/** What a diagnose function found (small findings with evidence) and what it checked. */\n\
type Report = { findings: { object: { kind: string; name: string; namespace?: string }; problem: string; evidence: string[]; hint?: string }[]; checked: string[] };\n";

/// The same types in one line each, short: what the code-mode description carries.
pub const TYPES_BRIEF: &str = "Types: K8sObject = Kubernetes JSON (no managedFields); Event = {type, reason, message, object: {kind, name, namespace}, count, first, last}; Usage = {name, namespace, cpuMillicores, memoryBytes, containers?}; HelmRelease = {name, namespace, revision, status, chart, appVersion}; Report = {findings: {object, problem, evidence[], hint?}[], checked[]}.";

fn is_k8s_object(schema: &Value) -> bool {
    schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|x| x == "apiVersion") && r.iter().any(|x| x == "metadata"))
}

/// A TypeScript type for a JSON Schema.
pub fn ts_type(schema: &Value) -> String {
    if is_k8s_object(schema) {
        return "K8sObject".into();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" | ");
    }
    // `"type": ["string", "integer"]`: a union.
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let mut names: Vec<String> = types
            .iter()
            .map(|t| {
                let mut one = schema.clone();
                one["type"] = t.clone();
                ts_type(&one)
            })
            .collect();
        names.dedup();
        return names.join(" | ");
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "string".into(),
        Some("integer") | Some("number") => "number".into(),
        Some("boolean") => "boolean".into(),
        Some("array") => {
            let item = schema
                .get("items")
                .map(ts_type)
                .unwrap_or_else(|| "any".into());
            if item.contains(' ') && !item.starts_with('{') {
                format!("({item})[]")
            } else {
                format!("{item}[]")
            }
        }
        Some("object") => match schema.get("properties").and_then(Value::as_object) {
            Some(props) if !props.is_empty() => {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let fields: Vec<String> = props
                    .iter()
                    .map(|(name, s)| {
                        let optional = if required.contains(&name.as_str()) {
                            ""
                        } else {
                            "?"
                        };
                        format!("{name}{optional}: {}", ts_type(s))
                    })
                    .collect();
                format!("{{ {} }}", fields.join("; "))
            }
            _ => "Record<string, any>".into(),
        },
        _ => "any".into(),
    }
}

/// The parameter list of a function, as `a: {...}` (optional when nothing is required).
fn parameters(f: &Function) -> String {
    let props = f.input_schema.get("properties").and_then(Value::as_object);
    if props.is_none_or(|p| p.is_empty()) {
        return String::new();
    }
    let required = f
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    format!(
        "a{}: {}",
        if required { "" } else { "?" },
        ts_type(&f.input_schema)
    )
}

/// `kubernetes.list({kind, namespace?, ...})`: the call shape for an index line.
pub fn signature(f: &Function) -> String {
    let required: Vec<&str> = f
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let params: Vec<String> = f
        .parameters()
        .into_iter()
        // Every Kubernetes function takes the kubeconfig `context`: the description says so
        // once. (Where `context` means more, as logs' lines around a match, it is shown.)
        .filter(|p| {
            p != "context"
                || f.input_schema.pointer("/properties/context/type")
                    != Some(&Value::from("string"))
        })
        .map(|p| {
            if required.contains(&p.as_str()) {
                p
            } else {
                format!("{p}?")
            }
        })
        .collect();
    if params.is_empty() {
        format!("{}()", f.path)
    } else {
        format!("{}({{{}}})", f.path, params.join(", "))
    }
}

/// The declaration of one function, with its documentation and parameter docs.
pub fn declaration(f: &Function) -> String {
    let name = f.path.rsplit('.').next().unwrap_or(f.path);
    let mut doc = format!("/**\n * {}\n *\n * {}\n", f.summary, f.doc);
    if let Some(props) = f.input_schema.get("properties").and_then(Value::as_object) {
        for (p, s) in props {
            if let Some(d) = s.get("description").and_then(Value::as_str) {
                doc.push_str(&format!(" * @param a.{p} {d}\n"));
            }
        }
    }
    doc.push_str(" */\n");
    // The index's type where it is a TypeScript type (a name from the prelude), else the
    // one the output schema gives.
    let returns = if f.returns.contains('{') {
        ts_type(&f.output_schema)
    } else {
        f.returns.to_string()
    };
    let generic = format!(
        "{doc}function {name}({}): Promise<{returns}>;",
        parameters(f)
    );
    match typed_overload(f, name) {
        Some(overload) => format!("{overload}\n{generic}"),
        None => generic,
    }
}

/// For a function that returns objects of the kind it is given (`list`, `get`): the overload
/// that types the result by a literal kind, through `Kinds` (`kubecode://types/kinds.d.ts`).
fn typed_overload(f: &Function, name: &str) -> Option<String> {
    let element = match f.returns {
        "K8sObject" => "Kinds[K]",
        "K8sObject[]" => "Kinds[K][]",
        _ => return None,
    };
    f.input_schema.pointer("/properties/kind")?;
    let args = ts_type(&f.input_schema).replacen("kind: string", "kind: K", 1);
    Some(format!(
        "/** With a literal kind (\"Pod\", \"deploy\", ...) the result is typed: `Kinds` in kubecode://types/kinds.d.ts. */\nfunction {name}<K extends keyof Kinds>(a: {args}): Promise<{element}>;"
    ))
}

impl Catalog {
    /// The declarations of one namespace (`kubernetes`), or of all when `None`, as a `.d.ts`.
    pub fn declarations(&self, namespace: Option<&str>) -> String {
        let mut out = String::from(PRELUDE);
        let mut namespaces: Vec<&str> = self
            .functions()
            .iter()
            .map(|f| f.path.split('.').next().unwrap_or(""))
            .collect();
        namespaces.dedup();
        for ns in namespaces
            .into_iter()
            .filter(|ns| namespace.is_none_or(|n| n == *ns))
        {
            out.push_str(&format!("\ndeclare namespace tools.{ns} {{\n"));
            for f in self
                .functions()
                .iter()
                .filter(|f| f.path.starts_with(&format!("{ns}.")))
            {
                for line in declaration(f).lines() {
                    out.push_str("  ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out.push_str("}\n");
        }
        out
    }

    /// The declarations of the built-in kinds `list`/`get` are typed with (`Kinds`).
    pub fn kind_declarations(&self) -> String {
        crate::kind_types::builtin_declarations().to_string()
    }

    /// The declaration of one function by path, with the shared types it refers to.
    pub fn describe(&self, path: &str) -> Option<String> {
        self.by_path(path)
            .map(|f| format!("{PRELUDE}\n{}", declaration(f)))
    }

    /// One line per function: signature and summary. The index code mode's tool
    /// descriptions carry.
    pub fn index(&self) -> String {
        self.functions()
            .iter()
            .map(|f| format!("- {} → {}: {}", signature(f), f.returns, f.summary))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_read_like_the_contract() {
        let c = Catalog::new();
        let list = c.describe("kubernetes.list").unwrap();
        assert!(
            list.contains("function list(a: { kind: string; namespace?: string;"),
            "{list}"
        );
        assert!(list.contains("): Promise<K8sObject[]>;"), "{list}");
        assert!(
            list.contains("function list<K extends keyof Kinds>(a: { kind: K; namespace?: string;")
                && list.contains("): Promise<Kinds[K][]>;"),
            "a literal kind types the result: {list}"
        );
        let logs = c.describe("kubernetes.logs").unwrap();
        assert!(
            logs.contains("Promise<string>") && logs.contains("@param a.grep"),
            "{logs}"
        );
        assert!(
            logs.contains("context?: string | number")
                && logs.contains("function logs(a?: { name?: string; labelSelector?: string;"),
            "{logs}"
        );
        let events = c.describe("kubernetes.events").unwrap();
        assert!(
            events.contains("type?: \"Normal\" | \"Warning\""),
            "{events}"
        );
        let contexts = c.describe("kubernetes.contexts").unwrap();
        assert!(
            contexts.contains("function contexts(): Promise<"),
            "{contexts}"
        );
        let all = c.declarations(None);
        assert!(
            all.contains("declare namespace tools.kubernetes {")
                && all.contains("declare namespace tools.helm {")
        );
        assert!(!c.declarations(Some("helm")).contains("tools.kubernetes"));
        let index = c.index();
        assert_eq!(index.lines().count(), c.functions().len());
        assert!(
            index.contains("- kubernetes.get({kind, name, namespace?, fields?, managers?}) → K8sObject: One object"),
            "{index}"
        );
        assert!(c.describe("kubernetes.nope").is_none());
    }
}
