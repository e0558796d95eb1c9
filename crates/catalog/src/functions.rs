//! The declarations: one entry per function, with its handler.

use cluster::{
    ApiResource, Cluster, ClusterError, ContextInfo, EventsQuery, GetQuery, HelmGetQuery,
    HelmListQuery, HelmRelease, HelmReleaseSummary, ListQuery, LogsQuery, MetricsQuery,
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
        Ok(Reply::Value(Value::String(c.logs(&q).await?)))
    })
}

/// `grep` (and `tailLines` with it) on the shaped log: a match reveals nothing the model
/// could not read.
fn grep_logs(args: &Value, shaped: Value) -> Result<Value, ClusterError> {
    let q = parse::<LogsQuery>("kubernetes.logs", args.clone())?;
    match (&q.grep, shaped) {
        (Some(_), Value::String(text)) => Ok(Value::String(cluster::grep_lines(&text, &q)?)),
        (_, other) => Ok(other),
    }
}

fn events<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    // Returned as they are: serde_json::to_value would deep-copy every object.
    Box::pin(async move {
        let q = parse::<EventsQuery>("kubernetes.events", args)?;
        Ok(Reply::Value(Value::Array(c.events(&q).await?)))
    })
}

fn metrics<'a>(c: &'a Cluster, args: Value, _: ItemSink<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let q = parse::<MetricsQuery>("kubernetes.metrics", args)?;
        Ok(Reply::Value(Value::Array(c.metrics(&q).await?)))
    })
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
            c.helm_history(&parse::<HelmListQuery>("helm.history", args)?)
                .await?,
        )
    })
}

const NARROW_LIST: &str = "Narrow the call: pass namespace, labelSelector, fieldSelector or limit.";

/// Every function, in the order an index lists them.
pub fn all() -> Vec<Function> {
    vec![
        Function {
            path: "kubernetes.list",
            tool_name: "kube_list",
            summary: "List objects of a kind (Pod, deploy, svc, widgets.example.com) in a namespace or all, with label/field selectors",
            doc: "Lists objects of any kind the cluster serves, custom resources included. `kind` takes a Kind, plural, short name or plural.group. Without `namespace` the context's namespace is used; `allNamespaces: true` lists everywhere. Pages are followed up to `limit`; a list larger than the server's cap fails and asks for narrowing. Returns full objects with metadata.managedFields removed.",
            input_schema: schema::<ListQuery>(),
            output_schema: array_of(k8s_object()),
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
            summary: "Get one object by kind and name",
            doc: "Gets one object. A missing object fails with code NotFound.",
            input_schema: schema::<GetQuery>(),
            output_schema: k8s_object(),
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: "The object is large: in code mode return only the fields you need.",
            validate: check::<GetQuery>,
            handler: get,
            filter: None,
        },
        Function {
            path: "kubernetes.logs",
            tool_name: "kube_logs",
            summary: "Read a pod container's log (previous instance, tail, since, grep)",
            doc: "Reads a container's log. `container` may be omitted for single-container pods (or when the pod names a default container); otherwise the error lists the containers. `previous: true` reads the last terminated instance (why it crashed). `grep` is a regular expression applied to each line; with `tailLines` it keeps the last matching lines.",
            input_schema: schema::<LogsQuery>(),
            output_schema: json!({"type": "string"}),
            annotations: READ_ONLY,
            shape: Shape::Text,
            narrow_hint: "Pass tailLines, sinceSeconds or grep.",
            validate: check::<LogsQuery>,
            handler: logs,
            filter: Some(grep_logs),
        },
        Function {
            path: "kubernetes.events",
            tool_name: "kube_events",
            summary: "Events, newest last, filtered by involved object kind/name, type and age",
            doc: "Lists core/v1 events oldest first (newest last). Filter by the involved object (`kind`, `name`), `type` (Normal or Warning) and `sinceSeconds` (measured against the API server's clock).",
            input_schema: schema::<EventsQuery>(),
            output_schema: array_of(k8s_object()),
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
            summary: "CPU and memory usage of pods or nodes (metrics-server)",
            doc: "Reads PodMetrics or NodeMetrics from metrics.k8s.io. Fails with a clear error when metrics-server is not installed.",
            input_schema: schema::<MetricsQuery>(),
            output_schema: array_of(json!({"type": "object"})),
            annotations: READ_ONLY,
            shape: Shape::Items,
            narrow_hint: "Pass namespace or name.",
            validate: check::<MetricsQuery>,
            handler: metrics,
            filter: None,
        },
        Function {
            path: "kubernetes.contexts",
            tool_name: "kube_contexts",
            summary: "The kubeconfig contexts and which one is current",
            doc: "Lists the contexts kubecode can use; pass `context` to any other function to use one.",
            input_schema: schema::<NoArguments>(),
            output_schema: array_of(schema::<ContextInfo>()),
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
            summary: "Every kind the cluster serves: name, group, version, namespaced, short names",
            doc: "Lists the resources API discovery reports (preferred versions), custom resources included.",
            input_schema: schema::<ApiResourcesQuery>(),
            output_schema: array_of(schema::<ApiResource>()),
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
            summary: "Helm releases (latest revision of each) with status, chart and app version",
            doc: "Reads Helm 3 releases from their storage Secrets (and ConfigMaps); no helm binary is used.",
            input_schema: schema::<HelmListQuery>(),
            output_schema: array_of(schema::<HelmReleaseSummary>()),
            annotations: READ_ONLY,
            shape: Shape::Items,
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
            annotations: READ_ONLY,
            shape: Shape::Object,
            narrow_hint: "In code mode, compare the release's objects with the live ones and return only the differences.",
            validate: check::<HelmGetQuery>,
            handler: helm_get,
            filter: None,
        },
        Function {
            path: "helm.history",
            tool_name: "helm_history",
            summary: "Every revision of one Helm release, oldest first",
            doc: "Lists a release's stored revisions with status, chart and description.",
            input_schema: schema::<HelmListQuery>(),
            output_schema: array_of(schema::<HelmReleaseSummary>()),
            annotations: READ_ONLY,
            shape: Shape::Items,
            narrow_hint: "",
            validate: check::<HelmListQuery>,
            handler: helm_history,
            filter: None,
        },
    ]
    .into_iter()
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
