//! Code mode: `run_code` runs the model's program in the sandbox, `search_tools` finds
//! functions. The sandbox reaches the catalog through [`CatalogHost`], which turns Secret
//! values into tokens and scrubs credentials before anything enters the sandbox.

use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam, Tool, ToolAnnotations};
use rmcp::service::RequestContext;
use serde_json::{Map, Value, json};

use crate::Shared;

/// The sandbox's view of the catalog for one session.
pub struct CatalogHost {
    shared: Arc<Shared>,
    vault: shaping::Vault,
}

impl CatalogHost {
    /// A host for a session's vault.
    pub fn new(shared: Arc<Shared>, vault: shaping::Vault) -> CatalogHost {
        CatalogHost { shared, vault }
    }
}

impl sandbox::Host for CatalogHost {
    fn functions(&self) -> Vec<String> {
        self.shared
            .catalog
            .functions()
            .iter()
            .map(|f| f.path.to_string())
            .collect()
    }

    fn call(&self, path: &str, args: Value) -> sandbox::CallFuture {
        let shared = self.shared.clone();
        let vault = self.vault.clone();
        let path = path.to_string();
        Box::pin(async move {
            let Some(f) = shared.catalog.by_path(&path) else {
                return Err(("NotFound".into(), format!("no function {path}")));
            };
            let args = match args {
                Value::Object(m) => Some(m),
                Value::Null => None,
                _ => {
                    return Err((
                        "BadInput".into(),
                        format!("{path} takes one object of arguments"),
                    ));
                }
            };
            let failed = |e: cluster::ClusterError| {
                (
                    e.kind.code().to_string(),
                    shaping::scrub(&e.message).into_owned(),
                )
            };
            if path == "kubernetes.list" {
                // Lists can be large: shape each object as its page arrives and keep it as JSON
                // text, so that the whole list is never held as JSON values.
                let arguments = Value::Object(args.unwrap_or_default());
                let q: cluster::ListQuery =
                    catalog::parse_arguments(&path, arguments).map_err(failed)?;
                let mut items = Vec::new();
                let mut sink = |mut item: Value| {
                    vault.tokenize(&mut item);
                    shaping::scrub_value(&mut item);
                    items.push(item.to_string());
                };
                shared
                    .cluster
                    .list_each(&q, &mut sink)
                    .await
                    .map_err(failed)?;
                return Ok(sandbox::HostValue::Items(items));
            }
            match shared.catalog.call(&shared.cluster, f, args).await {
                Ok(mut value) => {
                    vault.tokenize(&mut value);
                    shaping::scrub_value(&mut value);
                    Ok(value.into())
                }
                Err(e) => Err(failed(e)),
            }
        })
    }

    fn search(&self, query: &str, limit: usize) -> Value {
        serde_json::to_value(self.shared.catalog.search(query, limit))
            .unwrap_or(Value::Array(Vec::new()))
    }

    fn describe(&self, path: &str) -> Option<String> {
        self.shared.catalog.describe(path)
    }
}

const RUN_CODE: &str = "Run a TypeScript/JavaScript program next to the cluster and get only what it returns. \
The body runs as an async function: use top-level await and return. Every tools.* call is async (await it; \
Promise.all for parallel calls). Globals: tools, console, sleep(ms), state (get/set/keys/delete, kept per session) \
and ECMAScript built-ins; no require, import, fetch or timers. Filter, join and summarize in the program and \
return a small JSON value. Errors from calls carry e.code (NotFound, Forbidden, BadInput, ...). Secret values are \
[secret:FINGERPRINT] tokens. Functions (tools.describe(path) gives full types):\n";

const SEARCH_TOOLS: &str = "Find sandbox functions by keywords (e.g. \"logs crash\", \"helm values\"); returns \
their paths, summaries, signatures and TypeScript declarations.";

fn object(v: Value) -> Arc<Map<String, Value>> {
    Arc::new(match v {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}

/// The two code-mode tools, their descriptions carrying the index of every function.
pub fn definitions(shared: &Shared) -> Vec<Tool> {
    let read_only = ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(false)
        .open_world(true);
    let run = Tool::new(
        "run_code",
        format!("{RUN_CODE}{}", shared.catalog.index()),
        object(json!({"type": "object", "properties": {
            "code": {"type": "string", "description": "The program (TypeScript or JavaScript; Markdown fences are removed)"},
            "timeoutMs": {"type": "integer", "minimum": 1, "description": "Wall-clock limit in ms (at most the server's)"}},
            "required": ["code"], "additionalProperties": false})),
    )
    .with_raw_output_schema(object(json!({"type": "object", "properties": {
        "ok": {"type": "boolean"}, "result": {}, "logs": {"type": "array", "items": {"type": "string"}},
        "calls": {"type": "array"}, "truncated": {"type": "boolean"}, "error": {"type": "object"}, "stats": {"type": "object"}},
        "required": ["ok", "result", "logs", "calls", "truncated", "stats"]})))
    .with_annotations(read_only.clone());
    let search = Tool::new(
        "search_tools",
        SEARCH_TOOLS,
        object(json!({"type": "object", "properties": {
            "query": {"type": "string", "description": "Keywords"},
            "limit": {"type": "integer", "minimum": 1, "description": "Most results (default 5)"}},
            "required": ["query"], "additionalProperties": false})),
    )
    .with_raw_output_schema(object(json!({"type": "object", "properties": {"results": {"type": "array"}}, "required": ["results"]})))
    .with_annotations(read_only.idempotent(true));
    vec![run, search]
}

fn bad_input(message: String) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("BadInput: {message}"))]);
    r.structured_content = Some(json!({"error": {"code": "BadInput", "message": message}}));
    r
}

/// `search_tools`.
pub fn search(shared: &Shared, arguments: Option<Map<String, Value>>) -> CallToolResult {
    let args = arguments.unwrap_or_default();
    let Some(query) = args.get("query").and_then(Value::as_str) else {
        return bad_input("search_tools needs `query`, a string of keywords".into());
    };
    if let Some(unknown) = args.keys().find(|k| *k != "query" && *k != "limit") {
        return bad_input(format!(
            "unknown parameter `{unknown}`; search_tools takes `query` and `limit`"
        ));
    }
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(5)
        .clamp(1, 50) as usize;
    let results: Vec<Value> = shared
        .catalog
        .search(query, limit)
        .into_iter()
        .map(|h| {
            let declaration = shared
                .catalog
                .by_path(&h.path)
                .map(catalog::typescript::declaration)
                .unwrap_or_default();
            json!({"path": h.path, "summary": h.summary, "signature": h.signature, "declaration": declaration})
        })
        .collect();
    CallToolResult::structured(json!({ "results": results }))
}

/// `run_code`: runs the program with the session's state, reporting progress and stopping
/// when the client cancels.
pub async fn run(
    shared: &Arc<Shared>,
    vault: &shaping::Vault,
    state: &sandbox::State,
    arguments: Option<Map<String, Value>>,
    context: &RequestContext<RoleServer>,
) -> CallToolResult {
    let args = arguments.unwrap_or_default();
    let Some(code) = args.get("code").and_then(Value::as_str) else {
        return bad_input("run_code needs `code`, the program's text".into());
    };
    if let Some(unknown) = args.keys().find(|k| *k != "code" && *k != "timeoutMs") {
        return bad_input(format!(
            "unknown parameter `{unknown}`; run_code takes `code` and `timeoutMs`"
        ));
    }
    let mut limits = shared.limits.clone();
    if let Some(ms) = args.get("timeoutMs").and_then(Value::as_u64) {
        limits.wall = limits.wall.min(Duration::from_millis(ms.max(1)));
    }
    let waited = std::time::Instant::now();
    let slot = tokio::select! {
        slot = tokio::time::timeout(limits.wall, shared.run_slots.acquire()) => slot,
        () = context.ct.cancelled() => return bad_input("the client cancelled the run before it started".into()),
    };
    let slot = match slot {
        Ok(Ok(permit)) => permit,
        _ => {
            let e = sandbox::RunError::limit_exceeded(format!(
                "the server was running its maximum of programs at once for the whole wall-clock limit ({} ms); try again shortly",
                limits.wall.as_millis()
            ));
            return run_result(&sandbox::RunOutput::failed(e, Vec::new(), Vec::new()));
        }
    };
    // Time spent waiting for a slot counts against the run's wall clock, in whole milliseconds
    // so that a run that did not wait keeps its limit (and its error message) exact.
    let waited = Duration::from_millis(waited.elapsed().as_millis() as u64);
    limits.wall = limits
        .wall
        .saturating_sub(waited)
        .max(Duration::from_millis(1));
    let control = sandbox::Control::default();
    let cancel = control.cancel.clone();
    let ct = context.ct.clone();
    let watcher = tokio::spawn(async move {
        ct.cancelled().await;
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let mut control = control;
    if let Some(token) = context.meta.get_progress_token() {
        let peer = context.peer.clone();
        let handle = tokio::runtime::Handle::current();
        control.progress = Some(Arc::new(move |calls: usize, elapsed: Duration| {
            let mut p = ProgressNotificationParam::new(token.clone(), calls as f64);
            p.message = Some(format!("{calls} calls, {} ms", elapsed.as_millis()));
            let peer = peer.clone();
            handle.spawn(async move {
                let _ = peer.notify_progress(p).await;
            });
        }));
    }
    let host = Arc::new(CatalogHost::new(shared.clone(), vault.clone()));
    let mut out = sandbox::run(code, host, state.clone(), limits, control).await;
    watcher.abort();
    drop(slot);
    crate::memory::release_when_idle(shared);
    shaping::scrub_value(&mut out.result);
    for line in &mut out.logs {
        if let std::borrow::Cow::Owned(clean) = shaping::scrub(line) {
            *line = clean;
        }
    }
    run_result(&out)
}

/// A run's output as the tool result (`isError` when it failed).
fn run_result(out: &sandbox::RunOutput) -> CallToolResult {
    let value = serde_json::to_value(out).unwrap_or_else(|_| json!({"ok": false}));
    let mut r = CallToolResult::structured(value);
    r.is_error = Some(!out.ok);
    r
}
