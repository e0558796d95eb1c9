//! Code mode: `run_code` runs the model's program in the sandbox, `search_tools` finds
//! functions. The sandbox reaches the catalog through [`CatalogHost`], whose every call
//! takes the call path; the run's output is shaped and fitted at one place, [`Session::run_program`].

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolResult, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::call::{Draft, PlanInto, Session, Shaped};
use crate::metrics::RunOutcome;
use crate::registry::{CallEnv, error_result};

/// The sandbox's view of the catalog for one run of one session.
pub struct CatalogHost {
    session: Session,
    cancel: CancellationToken,
    /// The run's span: each call's span is its child, wherever the sandbox polls the call.
    span: tracing::Span,
    /// The changes this run planned so far; they become the run's plan.
    draft: Arc<Draft>,
}

impl sandbox::Host for CatalogHost {
    fn functions(&self) -> Vec<String> {
        self.session
            .server()
            .catalog()
            .functions()
            .iter()
            .map(|f| f.path.to_string())
            .collect()
    }

    fn call(&self, path: &str, args: Value, ahead: sandbox::ItemBatches) -> sandbox::CallFuture {
        let session = self.session.clone();
        let cancel = self.cancel.clone();
        let draft = self.draft.clone();
        let path = path.to_string();
        let span = self.span.clone();
        let call = async move {
            let Some(f) = session.server().catalog().by_path(&path) else {
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
            let into = PlanInto::Draft(&draft);
            match session
                .invoke_into(f, args, &cancel, Some(ahead), into)
                .await
            {
                Ok(Shaped::Value(v)) => Ok(v.into()),
                Ok(Shaped::Items(items)) => Ok(sandbox::HostValue::Items(items)),
                Err(e) => Err((e.code, e.message)),
            }
        };
        Box::pin(call.instrument(span))
    }

    fn search(&self, query: &str, limit: usize) -> Value {
        serde_json::to_value(self.session.server().catalog().search(query, limit))
            .unwrap_or(Value::Array(Vec::new()))
    }

    fn describe(&self, path: &str) -> Option<String> {
        self.session.server().catalog().describe(path)
    }
}

const RUN_CODE: &str = "Run a TypeScript/JavaScript program next to the cluster and get only what it returns. \
The body is an async function: use top-level await and return; await every tools.* call (Promise.all for \
parallel calls). Globals: tools, console, sleep(ms), state (get/set/keys/delete, kept per session) \
and ECMAScript built-ins; no require, import, fetch or timers. Filter, join and summarize in the program and \
return a small JSON value (the answer is cut beyond {LIMIT} characters). Errors from calls carry e.code (NotFound, \
Forbidden, BadInput, ...). Secret values are [secret:FINGERPRINT] tokens wherever they appear (Secrets, env, logs, \
ConfigMaps, in any encoding): equal tokens mean equal values within one MCP session. Namespace defaults to the \
context's; every Kubernetes and Helm call also takes context. tools.describe(path or kind) gives full types \
(tools.describe(\"Pod\") a kind's fields). ";

const SEARCH_TOOLS: &str = "Find sandbox functions by keywords (e.g. \"logs crash\", \"helm values\"); returns \
their paths, summaries, signatures and TypeScript declarations.";

fn object(v: Value) -> Arc<Map<String, Value>> {
    Arc::new(match v {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}

/// The two code-mode tools, their descriptions carrying the index of every function.
pub(crate) fn definitions(catalog: &catalog::Catalog, output_limit: usize) -> [Tool; 2] {
    let read_only = ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(false)
        .open_world(true);
    let run = Tool::new(
        "run_code",
        format!(
            "{}{}\nFunctions:\n{}",
            RUN_CODE.replace("{LIMIT}", &output_limit.to_string()),
            catalog::typescript::TYPES_BRIEF,
            catalog.index()
        ),
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
    [run, search]
}

fn bad_input(message: &str) -> CallToolResult {
    error_result("BadInput", message, None)
}

/// `search_tools`.
pub(crate) fn search(session: &Session, arguments: Option<Map<String, Value>>) -> CallToolResult {
    let catalog = session.server().catalog();
    let args = arguments.unwrap_or_default();
    let Some(query) = args.get("query").and_then(Value::as_str) else {
        return bad_input("search_tools needs `query`, a string of keywords");
    };
    if let Some(unknown) = args.keys().find(|k| *k != "query" && *k != "limit") {
        return bad_input(&session.echo_message(&format!(
            "unknown parameter `{unknown}`; search_tools takes `query` and `limit`"
        )));
    }
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(5)
        .clamp(1, 50) as usize;
    let results: Vec<Value> = catalog
        .search(query, limit)
        .into_iter()
        .map(|h| {
            let declaration = catalog
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
pub(crate) async fn run_tool(
    session: &Session,
    arguments: Option<Map<String, Value>>,
    env: CallEnv,
) -> CallToolResult {
    let args = arguments.unwrap_or_default();
    let Some(code) = args.get("code").and_then(Value::as_str) else {
        return bad_input("run_code needs `code`, the program's text");
    };
    if let Some(unknown) = args.keys().find(|k| *k != "code" && *k != "timeoutMs") {
        return bad_input(&session.echo_message(&format!(
            "unknown parameter `{unknown}`; run_code takes `code` and `timeoutMs`"
        )));
    }
    let mut limits = session.server().limits().clone();
    if let Some(ms) = args.get("timeoutMs").and_then(Value::as_u64) {
        limits.wall = limits.wall.min(Duration::from_millis(ms.max(1)));
    }
    let report = session.run_program(code, limits, env).await;
    let mut r = CallToolResult::structured(report.document);
    r.is_error = Some(!report.ok);
    r
}

/// What a run returns to its client (CONTRACT §3.3), shaped and within the output limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// Whether the program succeeded.
    pub ok: bool,
    /// `{ok, result, logs, calls, truncated, error?, note?, stats}`.
    pub document: Value,
}

/// Room kept for the `truncated` flag and the note of a cut report.
const NOTE_ROOM: usize = 600;

const RETURN_LESS: &str = "Return less: filter, count or summarize in the program, and log less.";

/// A run's error about the shared `state` store.
fn state_error(name: &str, message: String) -> sandbox::RunError {
    sandbox::RunError {
        name: name.to_string(),
        message,
        line: None,
        column: None,
        code: Some("Unavailable".to_string()),
        source: None,
    }
}

impl Session {
    /// Runs a program in the sandbox with this session's state; its `tools.*` calls take
    /// the call path. Waits for a run slot within the wall-clock limit.
    pub async fn run_program(
        &self,
        code: &str,
        limits: sandbox::Limits,
        env: CallEnv,
    ) -> RunReport {
        let started = std::time::Instant::now();
        let span = tracing::debug_span!(
            "run",
            otel.name = "run_code",
            kubecode.outcome = tracing::field::Empty,
            kubecode.calls = tracing::field::Empty,
        );
        let (out, plan) = self
            .execute(code, limits, env)
            .instrument(span.clone())
            .await;
        let took = started.elapsed();
        let outcome = RunOutcome::of(out.error.as_ref());
        span.record("kubecode.outcome", outcome.label());
        span.record("kubecode.calls", out.calls.len());
        let error_code = out
            .error
            .as_ref()
            .map(|e| e.code.clone().unwrap_or_else(|| e.name.clone()));
        let calls: Vec<Value> = out
            .calls
            .iter()
            .map(|c| Value::String(c.path.clone()))
            .collect();
        let report = self.report_with(out, plan.as_ref());
        let cut = report.document["truncated"] == Value::Bool(true);
        self.server().records().record_run(outcome, took, cut);
        if let Some(audit) = self.server().audit() {
            let program = self.audit_text(code);
            let mut fields = Map::new();
            fields.insert("tool".into(), Value::String("run_code".into()));
            fields.insert("program".into(), Value::String(program));
            fields.insert(
                "sha256".into(),
                Value::String(format!("{:x}", Sha256::digest(code.as_bytes()))),
            );
            fields.insert("calls".into(), Value::Array(calls));
            fields.insert(
                "resultChars".into(),
                Value::from(report.document["result"].to_string().chars().count()),
            );
            fields.insert("truncated".into(), Value::Bool(cut));
            fields.insert("ms".into(), Value::from(took.as_millis() as u64));
            fields.insert("outcome".into(), Value::String(outcome.label().into()));
            if let RunOutcome::Limit(limit) = outcome {
                fields.insert("limit".into(), Value::String(limit.into()));
            }
            if let Some(code) = error_code {
                fields.insert("code".into(), Value::String(self.audit_text(&code)));
            }
            audit.write("run", self.id(), &self.caller(), fields);
        }
        report
    }

    /// The run itself: a slot, then the sandbox; with the plan of the changes it planned.
    async fn execute(
        &self,
        code: &str,
        mut limits: sandbox::Limits,
        env: CallEnv,
    ) -> (sandbox::RunOutput, Option<crate::plan::Plan>) {
        let waited = std::time::Instant::now();
        let slot = tokio::select! {
            slot = tokio::time::timeout(limits.wall, self.server().run_slots().acquire()) => slot,
            () = env.cancel.cancelled() => {
                let e = sandbox::RunError::limit_exceeded("the client cancelled the run before it started");
                return (sandbox::RunOutput::failed(e, Vec::new(), Vec::new()), None);
            }
        };
        let Ok(Ok(slot)) = slot else {
            let e = sandbox::RunError::limit_exceeded(format!(
                "the server was running its maximum of programs at once for the whole wall-clock limit ({} ms); try again shortly",
                limits.wall.as_millis()
            ));
            return (sandbox::RunOutput::failed(e, Vec::new(), Vec::new()), None);
        };
        // Time spent waiting for a slot counts against the run's wall clock, in whole
        // milliseconds so that a run that did not wait keeps its limit (and message) exact.
        let waited = Duration::from_millis(waited.elapsed().as_millis() as u64);
        limits.wall = limits
            .wall
            .saturating_sub(waited)
            .max(Duration::from_millis(1));
        let control = sandbox::Control {
            progress: env.progress,
            ..sandbox::Control::default()
        };
        let stop = control.cancel.clone();
        let cancel = env.cancel.child_token();
        let watched = cancel.clone();
        let watcher = tokio::spawn(async move {
            watched.cancelled().await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let draft = Arc::new(Draft::default());
        let host = Arc::new(CatalogHost {
            session: self.clone(),
            cancel: cancel.clone(),
            span: tracing::Span::current(),
            draft: draft.clone(),
        });
        // Replicas: the state is loaded from the shared store before the run and saved
        // after it when the run changed it; the in-memory state is this replica's copy.
        let shared = self.shared_state();
        let mut before = None;
        if let Some((replicas, name)) = shared {
            match replicas.load_state(name).await {
                Ok(entries) => {
                    self.state().replace(entries.clone());
                    before = Some(entries);
                }
                Err(message) => {
                    cancel.cancel();
                    watcher.abort();
                    let e = state_error("StateUnavailable", message);
                    return (sandbox::RunOutput::failed(e, Vec::new(), Vec::new()), None);
                }
            }
        }
        let state = self.state().clone();
        let isolation = self.server().isolation();
        let mut out = isolation
            .run(code, host, state, limits, control, self.worker_slot())
            .await;
        if let (Some((replicas, name)), Some(before)) = (shared, before) {
            let after = self.state().snapshot();
            if after != before
                && let Err(message) = replicas.store_state(name, &after).await
            {
                out.ok = false;
                out.error = Some(state_error("StateNotSaved", message));
            }
        }
        // Calls still in flight when the program ended are of no use to anyone.
        cancel.cancel();
        watcher.abort();
        drop(slot);
        crate::memory::release_when_idle(self.server());
        let plan = match self.close_draft(&draft).await {
            Ok(plan) => plan,
            Err(e) => {
                out.ok = false;
                out.error = Some(state_error(&e.code, e.message));
                None
            }
        };
        (out, plan)
    }

    /// The run's output as the client receives it: every field scrubbed, the whole document
    /// fitted into the output limit. Everything the program received was shaped on its way
    /// in, so a Secret value in its output can only be one the model wrote itself: searching
    /// for learned values (or tokenizing) here would tell the model which of its guesses
    /// were right, so only credential shapes are scrubbed.
    ///
    /// The plan of the changes the run planned (CONTRACT §3.6) is part of the document,
    /// within the same limit (its objects and diffs were shaped when planned).
    fn report_with(&self, out: sandbox::RunOutput, plan: Option<&crate::plan::Plan>) -> RunReport {
        let ok = out.ok;
        let was_cut = out.truncated;
        let mut document = serde_json::to_value(&out).unwrap_or_else(|_| json!({"ok": false}));
        if let Some(plan) = plan {
            document["plan"] = plan.view();
        }
        shaping::scrub_value(&mut document);
        let limit = self.server().output_limit();
        let budget = limit.saturating_sub(NOTE_ROOM).max(limit / 2);
        let mut document = shaping::fit_value(document, budget, "output").into_noted(RETURN_LESS);
        if was_cut {
            // The sandbox already cut a result too large to hand over.
            document["truncated"] = Value::Bool(true);
        }
        RunReport { ok, document }
    }
}
