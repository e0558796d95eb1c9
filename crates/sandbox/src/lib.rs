//! The sealed sandbox of code mode: the model's TypeScript is stripped of its types (oxc) and
//! run in a fresh QuickJS runtime and context (rquickjs) per run, on a blocking thread, with
//! only `tools`, `console`, `sleep`, `state` and the ECMAScript built-ins as globals. Tool
//! calls leave the sandbox through the [`Host`] trait; the sandbox knows nothing of
//! Kubernetes. Wall clock (after `await` too), memory, stack, call count, calls in flight and
//! output size are limited (CONTRACT §3.4).

mod confine;
mod lazy;
mod pool;
mod run;
mod state;
mod strip;
mod wire;
pub mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use confine::supported as seccomp_supported;
pub use pool::{Isolation, Pool, WorkerCommand, WorkerCounts, WorkerSlot};
pub use state::State;
pub use strip::{SyntaxError, strip};

/// What a tool call returns to the program.
#[derive(Debug, Clone, PartialEq)]
pub enum HostValue {
    /// A JSON value.
    Json(Value),
    /// JSON text, parsed inside the sandbox.
    Text(String),
    /// An array given as the JSON text of each element: large lists cross without ever being
    /// held as JSON values, and each element is parsed on its own inside the sandbox.
    Items(Vec<String>),
}

impl From<Value> for HostValue {
    fn from(v: Value) -> HostValue {
        HostValue::Json(v)
    }
}

/// Receives a list's items ahead of the call's result, a batch at a time, as the host shapes
/// them: the program's side turns each batch into objects while the host fetches the next
/// page. The result then holds only the items not sent ahead; if the call fails, the batches
/// sent ahead are dropped.
pub type ItemBatches = Box<dyn FnMut(Vec<String>) + Send>;

/// The future of a tool call: the result, or `(code, message)`.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<HostValue, (String, String)>> + Send>>;

/// What the sandbox can reach: the functions of the catalog, and nothing else.
pub trait Host: Send + Sync + 'static {
    /// The dotted paths of every function (`kubernetes.list`).
    fn functions(&self) -> Vec<String>;
    /// Calls a function with JSON arguments. A host that returns [`HostValue::Items`] may
    /// send leading items to `ahead` first.
    fn call(&self, path: &str, args: Value, ahead: ItemBatches) -> CallFuture;
    /// `tools.search`: ranked `{path, summary, signature}` entries.
    fn search(&self, query: &str, limit: usize) -> Value;
    /// `tools.describe`: the TypeScript declaration of a function, if it exists.
    fn describe(&self, path: &str) -> Option<String>;
}

/// The limits of one run (CONTRACT §3.4 defaults).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall clock, awaits and sleeps included.
    pub wall: Duration,
    /// Memory of the JavaScript heap, in bytes.
    pub memory: usize,
    /// Stack, in bytes.
    pub stack: usize,
    /// Tool calls per run.
    pub calls: usize,
    /// Tool calls in flight at once.
    pub in_flight: usize,
    /// Characters of output the client receives; console output beyond it is not kept.
    pub output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(30),
            memory: 128 * 1024 * 1024,
            stack: 1024 * 1024,
            calls: 500,
            in_flight: 16,
            output: 24_000,
        }
    }
}

/// One tool call, as `calls` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The function.
    pub path: String,
    /// How long it took.
    pub ms: u64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Why a run failed, with the position in the model's own source when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    /// `TypeError`, `ToolError`, `LimitExceeded`, `SyntaxError`, ...
    pub name: String,
    /// What went wrong and, where it helps, what to do instead.
    pub message: String,
    /// 1-based line in the model's program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// A machine-readable code (`NotFound`, `Forbidden`, `LimitExceeded`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The failing line of the program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl RunError {
    /// A `LimitExceeded` error (name and code) with this message.
    pub fn limit_exceeded(message: impl Into<String>) -> RunError {
        RunError {
            code: Some("LimitExceeded".into()),
            ..RunError::simple("LimitExceeded", &message.into())
        }
    }

    /// An error with a name and a message only.
    pub(crate) fn simple(name: &str, message: &str) -> RunError {
        RunError {
            name: name.into(),
            message: message.into(),
            line: None,
            column: None,
            code: None,
            source: None,
        }
    }
}

/// Counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
    /// Tool calls made.
    pub tool_calls: usize,
}

/// What `run_code` returns (CONTRACT §3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    /// Whether the program succeeded.
    pub ok: bool,
    /// The returned value (deeply awaited).
    pub result: Value,
    /// Console output.
    pub logs: Vec<String>,
    /// Tool calls made.
    pub calls: Vec<CallRecord>,
    /// Whether the result was cut (the server fits it to the output limit).
    pub truncated: bool,
    /// The failure, when `ok` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// Counters.
    pub stats: Stats,
}

impl RunOutput {
    /// A failed run: no result, this error, and the logs and calls made so far.
    pub fn failed(error: RunError, logs: Vec<String>, calls: Vec<CallRecord>) -> RunOutput {
        RunOutput {
            ok: false,
            result: Value::Null,
            stats: Stats {
                wall_ms: 0,
                tool_calls: calls.len(),
            },
            logs,
            calls,
            truncated: false,
            error: Some(error),
        }
    }

    /// A successful run: the result arrives as the JSON text the program's value became.
    /// Text beyond [`MAX_RESULT_BYTES`] is cut here, so that a huge result is never parsed
    /// whole; fitting it to the output limit is the server's job, after shaping.
    fn succeeded(json: String, logs: Vec<String>, calls: Vec<CallRecord>) -> RunOutput {
        let fitted = shaping::fit(&json, MAX_RESULT_BYTES, "result");
        RunOutput {
            ok: true,
            result: fitted.value,
            stats: Stats {
                wall_ms: 0,
                tool_calls: calls.len(),
            },
            logs,
            calls,
            truncated: fitted.truncated,
            error: None,
        }
    }
}

/// The largest result the sandbox hands over whole (its JSON text, in bytes).
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;

/// How a run is driven from outside.
#[derive(Clone, Default)]
pub struct Control {
    /// Set to stop the program (a client's cancellation).
    pub cancel: Arc<AtomicBool>,
    /// Called with (calls made, elapsed) as the run progresses.
    pub progress: Option<Arc<dyn Fn(usize, Duration) + Send + Sync>>,
}

/// Runs a program. Never panics into the caller: a failure of the sandbox itself is a
/// failed [`RunOutput`].
pub async fn run(
    program: &str,
    host: Arc<dyn Host>,
    state: State,
    limits: Limits,
    control: Control,
) -> RunOutput {
    let stuck = RUNAWAY.load(Ordering::SeqCst);
    if stuck >= MAX_RUNAWAY {
        return RunOutput::failed(
            RunError::limit_exceeded(format!(
                "{stuck} earlier programs are still stuck in built-in functions past their time limit; try again in a few seconds"
            )),
            Vec::new(),
            Vec::new(),
        );
    }
    let stripped = match prepare(program) {
        Ok(s) => s,
        Err(failed) => return *failed,
    };
    let job = run::Job {
        stripped,
        host,
        state,
        limits,
        cancel: control.cancel,
        handle: tokio::runtime::Handle::current(),
        progress: control.progress,
    };
    let wall = job.limits.wall;
    let cancel = job.cancel.clone();
    let phase = Arc::new(AtomicU8::new(RUNNING));
    let thread_phase = phase.clone();
    let thread = tokio::task::spawn_blocking(move || {
        let out = run::execute(job);
        if thread_phase.swap(FINISHED, Ordering::SeqCst) == ABANDONED {
            RUNAWAY.fetch_sub(1, Ordering::SeqCst);
        }
        out
    });
    match tokio::time::timeout(wall + WATCHDOG_GRACE, thread).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => RunOutput::failed(
            RunError::simple("InternalError", &format!("the sandbox thread failed: {e}")),
            Vec::new(),
            Vec::new(),
        ),
        Err(_) => {
            // A built-in that never returns to the bytecode loop cannot be interrupted; answer
            // now and let the thread end when it does (the cancel flag stops it right then).
            cancel.store(true, Ordering::SeqCst);
            if phase
                .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                RUNAWAY.fetch_add(1, Ordering::SeqCst);
            }
            RunOutput::failed(runaway_error(wall), Vec::new(), Vec::new())
        }
    }
}

/// Strips a program's types, or says where its syntax is wrong.
fn prepare(program: &str) -> Result<strip::Stripped, Box<RunOutput>> {
    match std::panic::catch_unwind(|| strip(program)) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(Box::new(RunOutput::failed(
            RunError {
                name: "SyntaxError".into(),
                message: e.message,
                line: Some(e.line),
                column: Some(e.column),
                code: None,
                source: program
                    .lines()
                    .nth(e.line.saturating_sub(1) as usize)
                    .map(|s| s.trim().to_string()),
            },
            Vec::new(),
            Vec::new(),
        ))),
        Err(_) => Err(Box::new(RunOutput::failed(
            RunError::simple("SyntaxError", "the program could not be parsed"),
            Vec::new(),
            Vec::new(),
        ))),
    }
}

/// Runs a program on the calling thread in a prepared context, in a sandbox worker process
/// (which has no thread to spare and is killed from outside if it runs away). `handle`
/// drives tool calls. The spent context comes back with the output, to be freed after the
/// answer is sent.
pub(crate) fn run_prepared(
    context: run::Prepared,
    program: &str,
    host: Arc<dyn Host>,
    state: State,
    limits: Limits,
    control: Control,
    handle: tokio::runtime::Handle,
) -> (RunOutput, Option<run::Spent>) {
    let stripped = match prepare(program) {
        Ok(s) => s,
        Err(failed) => return (*failed, None),
    };
    let (out, spent) = context.run(run::Job {
        stripped,
        host,
        state,
        limits,
        cancel: control.cancel,
        handle,
        progress: control.progress,
    });
    (out, Some(spent))
}

/// Extra time a run gets past its wall-clock limit before the watchdog answers for it.
pub const WATCHDOG_GRACE: Duration = Duration::from_millis(1000);

/// Runs the watchdog gave up on whose threads are still inside a built-in.
static RUNAWAY: AtomicUsize = AtomicUsize::new(0);

/// At most this many abandoned runs may still hold a thread before new runs are refused.
const MAX_RUNAWAY: usize = 2;

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const ABANDONED: u8 = 2;

fn runaway_error(wall: Duration) -> RunError {
    RunError::limit_exceeded(format!(
        "the wall-clock limit ({} ms) was exceeded inside a built-in function that cannot be interrupted (a huge array or string operation): work on smaller data, or filter before transforming",
        wall.as_millis()
    ))
}
