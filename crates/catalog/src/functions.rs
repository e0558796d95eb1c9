//! The declarations: one entry per function, with its handler.

use cluster::{
    ApiResource, Cluster, ClusterError, ContextInfo, EventsQuery, GetQuery, HelmGetQuery,
    HelmHistoryQuery, HelmListQuery, HelmRelease, HelmReleaseSummary, ListQuery, LogsQuery,
    MetricsQuery, PodLogs,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Function, HandlerFuture, ItemSink, READ_ONLY, Reply, Shape};

/// Arguments of `kubernetes.apiResources`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApiResourcesQuery {
    /// Kubeconfig context.
    context: Option<String>,
}

/// `kubernetes.contexts` takes no arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArguments {}

/// A JSON Schema for `T`, without the wrapper keys a tool definition does not need.
pub(crate) fn schema<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut v = serde_json::to_value(generator.into_root_schema_for::<T>())
        .unwrap_or_else(|_| json!({"type": "object"}));
    if let Value::Object(m) = &mut v {
        m.remove("$schema");
        m.remove("title");
        m.remove("description");
    }
    drop_null(&mut v);
    v
}

/// Optional fields are absent rather than null: `"type": ["string", "null"]` becomes
/// `"type": "string"`, keeping definitions (and the TypeScript made from them) short.
fn drop_null(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(types)) = m.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    m.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(values)) = m.get_mut("enum") {
                values.retain(|x| !x.is_null());
            }
            if let Some(Value::Array(any)) = m.get("anyOf").cloned() {
                let rest: Vec<Value> = any
                    .into_iter()
                    .filter(|s| s.get("type") != Some(&json!("null")))
                    .collect();
                if let [only] = rest.as_slice() {
                    m.remove("anyOf");
                    if let Value::Object(inner) = only {
                        for (k, val) in inner {
                            m.entry(k.clone()).or_insert_with(|| val.clone());
                        }
                    }
                }
            }
            m.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

fn k8s_object() -> Value {
    json!({"type": "object", "description": "A Kubernetes object (managedFields removed)",
           "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}},
           "required": ["apiVersion", "kind", "metadata"]})
}

fn array_of(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// Deserializes arguments, naming the parameter at fault and, for unknown ones, the valid ones.
pub fn parse<T: DeserializeOwned>(path: &str, args: Value) -> Result<T, ClusterError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let at = e.path().to_string();
        let field = if at == "." {
            "arguments".to_string()
        } else {
            at.clone()
        };
        let inner = e
            .into_inner()
            .to_string()
            .replace("unknown field", "unknown parameter")
            .replace("missing field", "missing parameter");
        let location = if at == "." {
            String::new()
        } else {
            format!("{at}: ")
        };
        ClusterError::bad_input(
            &field,
            format!("invalid arguments for {path}: {location}{inner}"),
        )
    })
}

pub(crate) fn to_json<T: Serialize>(v: T) -> Result<Reply, ClusterError> {
    serde_json::to_value(v)
        .map(Reply::Value)
        .map_err(|e| ClusterError::bad_input("result", format!("cannot encode the result: {e}")))
}

/// The validator of a function whose arguments deserialize into `T`.
pub(crate) fn check<T: DeserializeOwned>(path: &str, args: &Value) -> Result<(), ClusterError> {
    parse::<T>(path, args.clone()).map(drop)
}

fn list<'a>(c: &'a Cluster, args: Value, items: ItemSink<'a>) -> HandlerFuture<'a> {
    // Streamed: each object is shaped as its page arrives, and the list is never held whole.
    Box::pin(async move {
        let q = parse::<ListQuery>("kubernetes.list", args)?;
        Ok(Reply::Streamed(c.list_each_text(&q, items).await?))
    })
}

fn get<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<GetQuery>("kubernetes.get", args)?;
        Ok(Reply::Value(c.get(&q).await?))
    })
}

fn logs<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<LogsQuery>("kubernetes.logs", args)?;
        if q.label_selector
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
        {
            // Blocks, not text: the filter selects lines per pod once they are shaped.
            return to_json(c.selected_logs(&q).await?);
        }
        Ok(Reply::Value(Value::String(c.logs(&q).await?)))
    })
}

/// Validates the arguments of `kubernetes.logs`, each and against each other.
fn check_logs(path: &str, args: &Value) -> Result<(), ClusterError> {
    parse::<LogsQuery>(path, args.clone())?.check()
}

/// `grep` (with `context`), `head` and `tailLines` on the shaped log: a match reveals
/// nothing the model could not read. A label selector's blocks become text here, each pod's
/// lines selected on their own.
fn select_log_lines(args: &Value, shaped: Value) -> Result<Value, ClusterError> {
    let q = parse::<LogsQuery>("kubernetes.logs", args.clone())?;
    match shaped {
        Value::String(text) => Ok(Value::String(cluster::filter_log(&text, &q)?)),
        blocks @ Value::Object(_) => {
            let logs: PodLogs = serde_json::from_value(blocks).map_err(|e| {
                ClusterError::bad_input("result", format!("cannot read the pods' logs: {e}"))
            })?;
            Ok(Value::String(cluster::render_pod_logs(&logs, &q)?))
        }
        other => Ok(other),
    }
}

fn events<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    // Returned as they are: serde_json::to_value would deep-copy every object.
    Box::pin(async move {
        let q = parse::<EventsQuery>("kubernetes.events", args)?;
        Ok(Reply::Value(Value::Array(c.events_view(&q).await?)))
    })
}

fn metrics<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<MetricsQuery>("kubernetes.metrics", args)?;
        Ok(Reply::Value(Value::Array(c.metrics_view(&q).await?)))
    })
}

/// Arguments of `kubernetes.explain`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExplainQuery {
    /// Kind, plural, short name or `plural.group`, optionally followed by a field path as
    /// kubectl explain takes it (`pods.spec.containers`).
    kind: String,
    /// A dotted field path inside the kind (`spec.template.spec.containers`).
    field: Option<String>,
    /// Kubeconfig context.
    context: Option<String>,
}

fn explain<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<ExplainQuery>("kubernetes.explain", args)?;
        let context = q.context.as_deref();
        // `pods.spec.containers`: the longest leading part that names a kind is the kind.
        let resources = c.api_resources(context).await?;
        let known = |k: &str| cluster::find_kind(&resources, k).is_some();
        let parts: Vec<&str> = q.kind.split('.').collect();
        let (kind, field) = match &q.field {
            Some(f) => (q.kind.clone(), Some(f.clone())),
            None if known(&q.kind) => (q.kind.clone(), None),
            None => (1..parts.len())
                .rev()
                .map(|i| (parts[..i].join("."), parts[i..].join(".")))
                .find(|(k, _)| known(k))
                .map_or((q.kind.clone(), None), |(k, f)| (k, Some(f))),
        };
        let schema = c.kind_schema(&kind, context).await?;
        Ok(Reply::Value(Value::String(crate::kind_types::declaration(
            &schema,
            field.as_deref(),
        )?)))
    })
}

fn event_schema() -> Value {
    json!({"type": "object", "properties": {
        "type": {"type": "string", "enum": ["Normal", "Warning"]}, "reason": {"type": "string"},
        "message": {"type": "string"},
        "object": {"type": "object", "properties": {"kind": {"type": "string"}, "name": {"type": "string"}, "namespace": {"type": "string"}}, "required": ["kind", "name"]},
        "count": {"type": "integer"}, "first": {"type": "string"}, "last": {"type": "string"}, "source": {"type": "string"}},
        "description": "A compact event (`raw: true`: the API's Event; `fields`: only the paths named, and `object`)"})
}

fn metrics_schema() -> Value {
    let usage = json!({"cpuMillicores": {"type": "integer"}, "memoryBytes": {"type": "integer"}});
    json!({"type": "object", "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"},
        "cpuMillicores": usage["cpuMillicores"], "memoryBytes": usage["memoryBytes"],
        "cpuPercent": {"type": "integer"}, "memoryPercent": {"type": "integer"},
        "containers": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "cpuMillicores": usage["cpuMillicores"], "memoryBytes": usage["memoryBytes"]}}}},
        "description": "Usage in millicores and bytes (`raw: true`: the API's PodMetrics/NodeMetrics)"})
}

fn contexts<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        parse::<NoArguments>("kubernetes.contexts", args)?;
        to_json(c.contexts())
    })
}

fn api_resources<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<ApiResourcesQuery>("kubernetes.apiResources", args)?;
        to_json(c.api_resources(q.context.as_deref()).await?)
    })
}

fn helm_list<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        to_json(
            c.helm_list(&parse::<HelmListQuery>("helm.list", args)?)
                .await?,
        )
    })
}

fn helm_get<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        to_json(
            c.helm_get(&parse::<HelmGetQuery>("helm.get", args)?)
                .await?,
        )
    })
}

fn helm_history<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        to_json(
            c.helm_history(&parse::<HelmHistoryQuery>("helm.history", args)?)
                .await?,
        )
    })
}

const NARROW_LIST: &str =
    "Narrow the call: pass namespace, labelSelector, fieldSelector, limit or fields.";

/// Every function, in the order an index lists them.
pub fn all() -> Vec<Function> {
    vec![
        Function {
            path: "kubernetes.list",
            tool_name: "kube_list",
            summary: "Objects of any kind (Pod, deploy, widgets.example.com), one namespace or all; selectors; fields keeps only the paths named",
            doc: "Lists objects of any kind the cluster serves, custom resources included; `kind` takes a Kind, plural, short name or plural.group. Without `namespace` the context's namespace is used; `allNamespaces: true` lists everywhere. Every page is read up to `limit`; more than the list cap (20,000 by default) fails and asks to narrow. Returns whole objects (metadata.managedFields removed); `fields: [\"metadata.name\", \"status.phase\"]` keeps only those paths (plus kind, name, namespace); `managers: true` adds metadata.managers (who changed which fields, when); `rows: true` gives one row per object with the columns kubectl get prints. A kind you may not list fails with code Forbidden; an empty list means there are none.",
            input_schema: schema::<ListQuery>(),
            output_schema: array_of(json!({"type": "object",
                "description": "A Kubernetes object (managedFields removed; with `fields`, only the paths named plus apiVersion, kind, name and namespace), or with `rows` one row of kubectl's columns ({name, namespace, ...})"})),
            returns: "K8sObject[]",
            annotations: READ_ONLY,
            shape: Shape::Items,
            narrow_hint: NARROW_LIST,
            validate: check::<ListQuery>,
            handler: list,
            filter: None,
        },
        Function {
            path: "kubernetes.get",
            tool_name: "kube_get",
            summary: "One object by kind and name",
            doc: "Gets one object (metadata.managedFields removed; `fields` and `managers` as for list). A missing object fails with code NotFound, one you may not read with Forbidden.",
            input_schema: schema::<GetQuery>(),
            output_schema: k8s_object(),
            returns: "K8sObject",
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: "Pass fields to keep only the paths you need.",
            validate: check::<GetQuery>,
            handler: get,
            filter: None,
        },
        Function {
            path: "kubernetes.logs",
            tool_name: "kube_logs",
            summary: "A container's log, or every matching pod's (labelSelector); grep (Rust regex) with context lines, head, tail",
            doc: "Reads a container's log. Without tailLines or head the whole log comes back, cut to the output cap (its end kept). `container` may be omitted when the pod has one (or names a default); otherwise the error lists them. `previous: true` reads the last terminated instance (why it crashed). `grep` is a Rust regex (no look-around, no backreferences) matched against each line; `context: N` adds N lines around each match; head/tailLines keep the first/last N matches. `labelSelector` instead of `name` reads up to 20 matching pods, one block per pod headed `==> pod/NAME <==`, the last 100 lines each unless tailLines or head is given; a pod without a log says why in its block.",
            input_schema: schema::<LogsQuery>(),
            output_schema: json!({"type": "string"}),
            returns: "string",
            annotations: READ_ONLY,
            shape: Shape::Text,
            narrow_hint: "Pass tailLines, head, sinceSeconds or grep.",
            validate: check_logs,
            handler: logs,
            filter: Some(select_log_lines),
        },
        Function {
            path: "kubernetes.events",
            tool_name: "kube_events",
            summary: "Events, oldest first, by involved object kind/name, type and age; compact",
            doc: "Lists events oldest first (newest last) as compact objects: {type, reason, message, object: {kind, name, namespace}, count, first, last, source}, times in RFC 3339 normalised from the API's several time fields. Filter by the involved object (`kind` in any spelling, `name`), `type` (Normal or Warning) and `sinceSeconds` (against the API server's clock). `raw: true` returns the API's Event objects; `fields` keeps only the paths named.",
            input_schema: schema::<EventsQuery>(),
            output_schema: array_of(event_schema()),
            returns: "Event[]",
            annotations: READ_ONLY,
            shape: Shape::Items,
            narrow_hint: "Pass namespace, kind and name, type: \"Warning\", or sinceSeconds.",
            validate: check::<EventsQuery>,
            handler: events,
            filter: None,
        },
        Function {
            path: "kubernetes.metrics",
            tool_name: "kube_metrics",
            summary: "CPU (millicores) and memory (bytes) of pods, per container, or of nodes",
            doc: "Reads metrics-server's usage: for kind Pod (any spelling) {name, namespace, cpuMillicores, memoryBytes, containers: [{name, cpuMillicores, memoryBytes}]}; for kind Node {name, cpuMillicores, memoryBytes, cpuPercent, memoryPercent} (percent of allocatable). `raw: true` returns the API's objects. Fails with code Unavailable when metrics-server is not installed.",
            input_schema: schema::<MetricsQuery>(),
            output_schema: array_of(metrics_schema()),
            returns: "Usage[]",
            annotations: READ_ONLY,
            shape: Shape::Items,
            narrow_hint: "Pass namespace or name.",
            validate: check::<MetricsQuery>,
            handler: metrics,
            filter: None,
        },
        Function {
            path: "kubernetes.explain",
            tool_name: "kube_explain",
            summary: "A kind's fields as TypeScript from the cluster's OpenAPI (CRDs too); kind \"Pod.spec.containers\" for one field",
            doc: "Returns the TypeScript declaration of a kind as this cluster serves it (from its /openapi/v3), with a short doc per field and the types it uses; types beyond the answer's budget are named, to be asked for by field path (`kind: \"pods.spec.containers\"` or `field: \"spec.containers\"`), as kubectl explain takes them.",
            input_schema: schema::<ExplainQuery>(),
            output_schema: json!({"type": "string"}),
            returns: "string",
            annotations: READ_ONLY,
            shape: Shape::Text,
            narrow_hint: "Ask for one field: kind \"Pod.spec.containers\".",
            validate: check::<ExplainQuery>,
            handler: explain,
            filter: None,
        },
        Function {
            path: "kubernetes.contexts",
            tool_name: "kube_contexts",
            summary: "The kubeconfig contexts and which one is current",
            doc: "Lists the contexts kubecode can use; pass `context` to any other function to use one.",
            input_schema: schema::<NoArguments>(),
            output_schema: array_of(schema::<ContextInfo>()),
            returns: "{name, cluster, namespace?, current}[]",
            annotations: READ_ONLY,
            shape: Shape::Items,
            narrow_hint: "",
            validate: check::<NoArguments>,
            handler: contexts,
            filter: None,
        },
        Function {
            path: "kubernetes.apiResources",
            tool_name: "kube_api_resources",
            summary: "Every kind the cluster serves, custom resources included",
            doc: "Lists the resources API discovery reports (preferred versions), custom resources included.",
            input_schema: schema::<ApiResourcesQuery>(),
            output_schema: array_of(schema::<ApiResource>()),
            returns: "{kind, name, group, version, namespaced, shortNames}[]",
            annotations: READ_ONLY,
            shape: Shape::Items,
            narrow_hint: "",
            validate: check::<ApiResourcesQuery>,
            handler: api_resources,
            filter: None,
        },
        Function {
            path: "helm.list",
            tool_name: "helm_list",
            summary: "Helm releases (latest revision of each) in a namespace or all, with status, chart and app version",
            doc: "Reads Helm 3 and 4 releases from their storage Secrets (and ConfigMaps); no helm binary is used. Looks in `namespace`, else the current context's namespace; `allNamespaces: true` looks in every namespace. Each release names its namespace. An empty list means no release there: storage the credentials may not read fails with Forbidden.",
            input_schema: schema::<HelmListQuery>(),
            output_schema: array_of(schema::<HelmReleaseSummary>()),
            returns: "HelmRelease[]",
            annotations: READ_ONLY,
            shape: Shape::ScopedItems,
            narrow_hint: "Pass namespace.",
            validate: check::<HelmListQuery>,
            handler: helm_list,
            filter: None,
        },
        Function {
            path: "helm.get",
            tool_name: "helm_get",
            summary: "One Helm release: values, rendered manifest, parsed objects, notes",
            doc: "Decodes a release revision (the latest by default): user-supplied values, the rendered manifest, the manifest parsed into objects (compare them with live objects to find drift) and the notes.",
            input_schema: schema::<HelmGetQuery>(),
            output_schema: schema::<HelmRelease>(),
            returns: "{name, namespace, revision, status, chart, values, manifest, objects: K8sObject[], notes?}",
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: "In a program, compare the release's objects with the live ones and return only the differences.",
            validate: check::<HelmGetQuery>,
            handler: helm_get,
            filter: None,
        },
        Function {
            path: "helm.history",
            tool_name: "helm_history",
            summary: "Every revision of one Helm release, oldest first",
            doc: "Lists a release's stored revisions with status, chart and description. Looks in `namespace`, else the current context's namespace; a release not there fails with NotFound.",
            input_schema: schema::<HelmHistoryQuery>(),
            output_schema: array_of(schema::<HelmReleaseSummary>()),
            returns: "HelmRelease[]",
            annotations: READ_ONLY,
            shape: Shape::Items,
            narrow_hint: "",
            validate: check::<HelmHistoryQuery>,
            handler: helm_history,
            filter: None,
        },
    ]
    .into_iter()
    .chain(std::iter::once(crate::changes::wait_function()))
    .chain(crate::diagnosis::functions())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_describe_the_parameters() {
        let s = schema::<ListQuery>();
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        let props = s["properties"].as_object().unwrap();
        for p in [
            "kind",
            "namespace",
            "allNamespaces",
            "labelSelector",
            "fieldSelector",
            "limit",
            "context",
        ] {
            assert!(props.contains_key(p), "{p} missing: {s}");
        }
        assert_eq!(s["required"], json!(["kind"]));
        let events = schema::<EventsQuery>();
        assert_eq!(
            events["properties"]["type"]["enum"],
            json!(["Normal", "Warning"]),
            "{events}"
        );
        assert_eq!(
            events["properties"]["namespace"]["type"], "string",
            "optional, not nullable"
        );
        assert!(events.get("$defs").is_none(), "inlined: {events}");
        let logs = schema::<LogsQuery>();
        assert!(logs.get("$defs").is_none(), "inlined: {logs}");
        assert_eq!(logs["additionalProperties"], false, "{logs}");
        assert_eq!(
            logs["properties"]["context"]["type"],
            json!(["string", "integer"]),
            "a kubeconfig context or lines around matches: {logs}"
        );
        for p in ["name", "labelSelector", "head", "grep", "tailLines"] {
            assert!(logs["properties"].get(p).is_some(), "{p}: {logs}");
        }
        assert!(
            logs.get("required").is_none(),
            "name or labelSelector: {logs}"
        );
        assert!(
            logs["properties"]["grep"]["description"]
                .as_str()
                .unwrap()
                .contains("no look-around"),
            "{logs}"
        );
    }

    #[test]
    fn helm_list_and_history_document_their_own_parameters() {
        let all = all();
        let by = |path: &str| all.iter().find(|f| f.path == path).unwrap();
        let list = &by("helm.list").input_schema;
        assert!(list["properties"].get("name").is_none(), "{list}");
        assert!(!list.to_string().contains("history"), "{list}");
        let history = &by("helm.history").input_schema;
        assert_eq!(history["required"], json!(["name"]), "{history}");
        assert!(
            history["properties"].get("allNamespaces").is_none(),
            "{history}"
        );
        assert!(by("helm.list").doc.contains("current context's namespace"));
        let out = by("helm.list").scoped_result(json!([]), Some("shop"));
        assert_eq!(out, json!({"items": [], "count": 0, "namespace": "shop"}));
        let out = by("helm.list").scoped_result(json!([]), None);
        assert_eq!(out, json!({"items": [], "count": 0, "allNamespaces": true}));
        let out = by("kubernetes.list").scoped_result(json!([]), None);
        assert_eq!(
            out,
            json!({"items": [], "count": 0}),
            "only scoped shapes say it"
        );
    }

    #[test]
    fn bad_arguments_name_the_parameter() {
        let e = parse::<ListQuery>("kubernetes.list", json!({"kind": "Pod", "namspace": "x"}))
            .unwrap_err();
        assert!(
            e.message.contains("unknown parameter `namspace`"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("`namespace`"),
            "lists the valid ones: {}",
            e.message
        );
        let e = parse::<ListQuery>("kubernetes.list", json!({"kind": "Pod", "limit": "ten"}))
            .unwrap_err();
        assert!(
            e.message
                .starts_with("invalid arguments for kubernetes.list: limit: invalid type"),
            "{}",
            e.message
        );
        assert!(matches!(e.kind, cluster::ErrorKind::BadInput { ref field } if field == "limit"));
        let e = parse::<ListQuery>("kubernetes.list", json!({})).unwrap_err();
        assert!(
            e.message.contains("missing parameter `kind`"),
            "{}",
            e.message
        );
        let e = parse::<EventsQuery>("kubernetes.events", json!({"type": "Bad"})).unwrap_err();
        assert!(
            e.message.contains("Normal") && e.message.contains("Warning"),
            "{}",
            e.message
        );
    }
}
