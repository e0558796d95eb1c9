//! Tools mode: one MCP tool per catalog function. A call goes through the call path; the
//! shaped result is wrapped as an object and fitted into the output limit.

use std::borrow::Cow;
use std::sync::Arc;

use catalog::{Function, Shape};
use rmcp::model::{CallToolResult, Tool, ToolAnnotations};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::call::{PlanInto, Session, Shaped};
use crate::registry::error_result;

fn object(v: &Value) -> Arc<Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

/// Whether a tool answers with kubectl's columns unless asked for objects: a list, as
/// `kubectl get` prints one. (A program gets objects unless it asks for rows.)
fn rows_by_default(f: &Function) -> bool {
    f.input_schema.pointer("/properties/rows").is_some()
}

/// The arguments as a tool call means them: `rows: true` for a list unless the call asks
/// for objects (`rows: false`) or for some of their fields.
fn with_tool_defaults(
    f: &Function,
    arguments: Option<Map<String, Value>>,
) -> Option<Map<String, Value>> {
    if !rows_by_default(f) {
        return arguments;
    }
    let mut args = arguments.unwrap_or_default();
    if !["rows", "fields", "managers"]
        .iter()
        .any(|k| args.contains_key(*k))
    {
        args.insert("rows".into(), Value::Bool(true));
    }
    Some(args)
}

/// The MCP tool of a catalog function.
pub(crate) fn definition(f: &Function, output_limit: usize) -> Tool {
    let a = f.annotations;
    let annotations = ToolAnnotations::new()
        .read_only(a.read_only)
        .destructive(a.destructive)
        .idempotent(a.idempotent)
        .open_world(a.open_world);
    let rows = if rows_by_default(f) {
        " This tool returns rows (kubectl's columns) unless you pass `rows: false`, `fields` or `managers`."
    } else {
        ""
    };
    let description = format!(
        "{}. {}{rows} Answers over {output_limit} characters are cut: {}",
        f.summary,
        f.doc,
        if f.narrow_hint.is_empty() {
            "lists keep whole items and say how many there were."
        } else {
            f.narrow_hint
        }
    );
    let mut input = f.input_schema.clone();
    let mut description = description;
    if catalog::Catalog::plans_changes(f) {
        // Several tool calls build one plan: the first returns a plan, the next pass its id.
        if let Some(props) = input.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert(
                "plan".into(),
                serde_json::json!({"type": "string", "description": "Add this change to the open plan with this id (from an earlier change tool's result) instead of starting a new plan"}),
            );
        }
        description.push_str(" The result carries `plan` ({id, changes, expiresAt}); pass `plan: id` to the next change tool to add to the same plan, then call apply_plan with the id: a person approves it.");
    }
    Tool::new(f.tool_name, Cow::Owned(description), object(&input))
        .with_raw_output_schema(object(&f.tool_output_schema()))
        .with_annotations(annotations)
}

/// Room kept for the `truncated` flag and the note of a cut result.
const NOTE_ROOM: usize = 600;

/// Calls a function through the call path and fits its result into the output limit.
pub(crate) async fn call(
    session: &Session,
    f: &Function,
    arguments: Option<Map<String, Value>>,
    cancel: &CancellationToken,
) -> CallToolResult {
    let limit = session.server().output_limit();
    let budget = limit.saturating_sub(NOTE_ROOM).max(limit / 2);
    let mut arguments = with_tool_defaults(f, arguments);
    // `plan` is tools mode's own argument of the change tools, not the function's.
    let open_plan = match arguments.as_mut().and_then(|a| a.remove("plan")) {
        Some(Value::String(id)) if catalog::Catalog::plans_changes(f) => Some(id),
        Some(_) if catalog::Catalog::plans_changes(f) => {
            return error_result(
                "BadInput",
                "`plan` is the id of an open plan, a string (from an earlier change tool's result)",
                Some("plan"),
            );
        }
        Some(other) => {
            // Not a change tool: the function's own validation names the unknown parameter.
            arguments
                .get_or_insert_with(Map::new)
                .insert("plan".into(), other);
            None
        }
        None => None,
    };
    let into = match &open_plan {
        Some(id) => PlanInto::Open(id),
        None => PlanInto::New,
    };
    let scope = (f.shape == Shape::ScopedItems).then(|| arguments.clone().unwrap_or_default());
    let fitted = match session.invoke_into(f, arguments, cancel, None, into).await {
        Ok(Shaped::Value(v)) => {
            let wrapped = match &scope {
                Some(args) => match looked_in(session, args).await {
                    Some(namespace) => f.scoped_result(v, namespace.as_deref()),
                    None => f.tool_result(v),
                },
                None => f.tool_result(v),
            };
            shaping::fit_value(wrapped, budget, "result")
        }
        Ok(Shaped::Items(items)) => {
            // The wrapper of Shape::Items, written around the items' texts.
            let text = format!(
                "{{\"items\":[{}],\"count\":{}}}",
                items.join(","),
                items.len()
            );
            shaping::fit(&text, budget, "result")
        }
        Err(e) => return error_result(&e.code, &e.message, e.field.as_deref()),
    };
    CallToolResult::structured(fitted.into_noted(f.narrow_hint))
}

/// Where a call that reads one namespace or all of them looked: `Some(None)` for every
/// namespace, `Some(Some(name))` for one (the context's when the call named none).
async fn looked_in(session: &Session, args: &Map<String, Value>) -> Option<Option<String>> {
    if args.get("allNamespaces").and_then(Value::as_bool) == Some(true) {
        return Some(None);
    }
    if let Some(n) = args
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Some(Some(n.to_string()));
    }
    let context = args.get("context").and_then(Value::as_str);
    let cluster = session.cluster();
    cluster.default_namespace(context).await.ok().map(Some)
}
