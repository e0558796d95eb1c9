//! Tools mode: one MCP tool per catalog function, and the shaping of every result.

use std::borrow::Cow;
use std::sync::Arc;

use catalog::{Function, Shape};
use cluster::{ClusterError, ErrorKind};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};

use crate::{Mode, Shared};

fn object(v: &Value) -> Arc<Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

fn definition(f: &Function) -> Tool {
    let a = f.annotations;
    let annotations = ToolAnnotations::new()
        .read_only(a.read_only)
        .destructive(a.destructive)
        .idempotent(a.idempotent)
        .open_world(a.open_world);
    let description = format!("{} ({}). {}", f.summary, f.path, f.doc);
    Tool::new(
        f.tool_name,
        Cow::Owned(description),
        object(&f.input_schema),
    )
    .with_raw_output_schema(object(&f.tool_output_schema()))
    .with_annotations(annotations)
}

/// The tools the mode exposes.
pub fn definitions(shared: &Shared) -> Vec<Tool> {
    match shared.mode {
        Mode::Tools | Mode::All => shared.catalog.functions().iter().map(definition).collect(),
        // Code mode's run_code and search_tools arrive with the sandbox.
        Mode::Code => Vec::new(),
    }
}

/// An `isError` result a model can act on, with the error also as structured content.
fn error_result(code: &str, message: &str, field: Option<&str>) -> CallToolResult {
    let mut e = json!({"code": code, "message": message});
    if let Some(f) = field {
        e["field"] = json!(f);
    }
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))]);
    r.structured_content = Some(json!({"error": e}));
    r
}

fn cluster_error(e: &ClusterError) -> CallToolResult {
    let field = match &e.kind {
        ErrorKind::BadInput { field } => Some(field.as_str()),
        _ => None,
    };
    error_result(e.kind.code(), &e.message, field)
}

/// Fits a shaped result into the output limit: lists keep the items that fit, text is cut,
/// and an object too large to send whole is refused with advice.
fn fit(f: &Function, value: Value, limit: usize) -> CallToolResult {
    let text = value.to_string();
    if text.chars().count() <= limit {
        return CallToolResult::structured(value);
    }
    match (f.shape, value) {
        (Shape::Items, Value::Object(mut m)) => {
            let items = match m.remove("items") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            let total = items.len();
            let mut kept = Vec::new();
            let mut used = 200 + f.narrow_hint.len();
            for item in items {
                let size = item.to_string().chars().count() + 1;
                if used + size > limit {
                    break;
                }
                used += size;
                kept.push(item);
            }
            let note = format!(
                "Only {} of {total} items fit in the {limit}-character output limit. {}",
                kept.len(),
                f.narrow_hint
            );
            CallToolResult::structured(
                json!({"items": kept, "count": total, "truncated": true, "note": note}),
            )
        }
        (Shape::Text, Value::Object(m)) => {
            let full = m.get("text").and_then(Value::as_str).unwrap_or_default();
            // Keep the end of a log, where the crash is, rather than its beginning.
            let chars: Vec<char> = full.chars().collect();
            let keep = limit.saturating_sub(300);
            let tail: String = chars[chars.len().saturating_sub(keep)..].iter().collect();
            let note = format!(
                "[output truncated: the last {} of {} characters are shown. {}]\n",
                tail.chars().count(),
                chars.len(),
                f.narrow_hint
            );
            CallToolResult::structured(json!({"text": note + &tail, "truncated": true}))
        }
        (_, v) => {
            let size = v.to_string().chars().count();
            error_result(
                "LimitExceeded",
                &format!(
                    "the result is {size} characters, more than the {limit}-character output limit. {}",
                    f.narrow_hint
                ),
                None,
            )
        }
    }
}

/// Runs a tool call: validation, the cluster call, then shaping at the boundary.
pub async fn call(
    shared: &Shared,
    vault: &shaping::Vault,
    request: CallToolRequestParams,
) -> CallToolResult {
    let name = request.name.as_ref();
    let available = !matches!(shared.mode, Mode::Code);
    let Some(f) = shared.catalog.by_tool_name(name).filter(|_| available) else {
        let names: Vec<&str> = shared
            .catalog
            .functions()
            .iter()
            .map(|f| f.tool_name)
            .collect();
        return error_result(
            "NotFound",
            &format!("no tool {name:?}; the tools are: {}", names.join(", ")),
            None,
        );
    };
    match shared
        .catalog
        .call(&shared.cluster, f, request.arguments)
        .await
    {
        Ok(mut value) => {
            // Secrets become tokens before anything else looks at the value.
            vault.tokenize(&mut value);
            shaping::scrub_value(&mut value);
            fit(f, f.tool_result(value), shared.output_limit)
        }
        Err(e) => {
            let mut e = e;
            e.message = shaping::scrub(&e.message).into_owned();
            cluster_error(&e)
        }
    }
}
