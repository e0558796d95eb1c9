//! The server's Prometheus metrics (`GET /metrics` on the HTTP transport), recorded by the
//! record stage ([`crate::Records`]) and, for the API traffic, by the cluster's observer
//! hook. Every label comes from a small fixed set (function paths, status codes, outcome
//! names), never from names or anything a client sent.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The media type of [`Metrics::encode`]'s text (OpenMetrics, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    function: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    verb: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    state: &'static str,
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    runs: Family<OutcomeLabels, Counter>,
    run_seconds: Histogram,
    tool_calls: Family<CallLabels, Counter>,
    limit_hits: Family<LimitLabels, Counter>,
    api: ApiCounters,
    sessions: Gauge,
    runs_in_progress: Gauge,
    workers: Family<WorkerLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The API traffic counters, shared with the cluster as its observer.
#[derive(Clone, Default)]
struct ApiCounters {
    requests: Family<ApiLabels, Counter>,
    retries: Family<ApiLabels, Counter>,
    throttles: Family<ApiLabels, Counter>,
}

/// Keeps a label from the cluster within a small set: HTTP verbs and status codes pass,
/// anything else is `other`.
fn bounded(value: &str) -> String {
    let known = value.len() <= 12
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_lowercase() || c.is_ascii_digit());
    if known {
        value.to_string()
    } else {
        "other".into()
    }
}

fn api_labels(verb: &str, code: &str) -> ApiLabels {
    ApiLabels {
        verb: bounded(verb),
        code: bounded(code),
    }
}

impl cluster::ApiObserver for ApiCounters {
    fn request(&self, verb: &str, code: &str) {
        self.requests.get_or_create(&api_labels(verb, code)).inc();
    }
    fn retry(&self, verb: &str, code: &str) {
        self.retries.get_or_create(&api_labels(verb, code)).inc();
    }
    fn throttle(&self, verb: &str, code: &str) {
        self.throttles.get_or_create(&api_labels(verb, code)).inc();
    }
}

/// The error codes a tool call's outcome label may carry; any other is `error`.
const CALL_CODES: &[&str] = &[
    "NotFound",
    "Forbidden",
    "Unauthorized",
    "BadInput",
    "Throttled",
    "Unavailable",
    "Timeout",
    "LimitExceeded",
    "Cancelled",
    "BadRequest",
    "Invalid",
    "Conflict",
    "AlreadyExists",
    "Expired",
    "Gone",
    "Rejected",
];

/// A tool call's outcome label: `ok`, a known error code, or `error`.
fn call_outcome(code: Option<&str>) -> &'static str {
    match code {
        None => "ok",
        Some(c) => CALL_CODES
            .iter()
            .find(|k| **k == c)
            .copied()
            .unwrap_or("error"),
    }
}

/// How a run ended, as the `outcome` label and the audit record say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The program returned.
    Ok,
    /// A limit stopped it (which one: [`RunOutcome::Limit`]'s name).
    Limit(&'static str),
    /// The client cancelled it.
    Cancelled,
    /// A tool call's error was not caught by the program (`code` names it).
    ToolError,
    /// The program itself failed (syntax, type, a thrown error).
    ProgramError,
    /// The sandbox was refused a system call, or failed itself.
    Internal,
}

impl RunOutcome {
    /// Classifies a run's error (`None`: it succeeded).
    pub fn of(error: Option<&sandbox::RunError>) -> RunOutcome {
        let Some(e) = error else {
            return RunOutcome::Ok;
        };
        if e.name == "Cancelled" || e.message.starts_with("the client cancelled") {
            return RunOutcome::Cancelled;
        }
        if e.code.as_deref() == Some("LimitExceeded") {
            return RunOutcome::Limit(limit_name(&e.message));
        }
        match e.name.as_str() {
            "SecurityError" | "InternalError" => RunOutcome::Internal,
            _ if e.code.is_some() => RunOutcome::ToolError,
            _ => RunOutcome::ProgramError,
        }
    }

    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Limit(_) => "limit",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::ToolError => "tool_error",
            RunOutcome::ProgramError => "program_error",
            RunOutcome::Internal => "internal_error",
        }
    }
}

/// Which limit a `LimitExceeded` message names (the sandbox's messages say it first).
fn limit_name(message: &str) -> &'static str {
    const NAMES: &[(&str, &str)] = &[
        ("the wall-clock limit", "wall_clock"),
        ("the CPU time limit", "cpu_time"),
        ("the memory limit", "memory"),
        ("the stack limit", "stack"),
        ("the tool calls limit", "tool_calls"),
        ("the server was running its maximum", "concurrent_runs"),
    ];
    NAMES
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or(
            if message.contains("still stuck") {
                "stuck_runs"
            } else {
                "other"
            },
            |(_, name)| name,
        )
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `kubecode_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kubecode");
        let runs = Family::<OutcomeLabels, Counter>::default();
        // Every outcome shows from the start (at 0), so a rate over it exists before it happens.
        for outcome in [
            RunOutcome::Ok,
            RunOutcome::Limit("other"),
            RunOutcome::Cancelled,
            RunOutcome::ToolError,
            RunOutcome::ProgramError,
            RunOutcome::Internal,
        ] {
            let _ = runs.get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            });
        }
        registry.register(
            "runs",
            "run_code runs by outcome (ok, limit, cancelled, tool_error, program_error, internal_error)",
            runs.clone(),
        );
        // 5 ms to about 82 s: a run's wall-clock limit is 30 s by default.
        let run_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 15));
        registry.register(
            "run_duration_seconds",
            "Wall-clock time of run_code runs, waiting for a run slot included",
            run_seconds.clone(),
        );
        let tool_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Calls of catalog functions (and of run_code and search_tools as tools) by function and outcome (ok or the error code)",
            tool_calls.clone(),
        );
        let limit_hits = Family::<LimitLabels, Counter>::default();
        registry.register(
            "limit_hits",
            "Runs and calls stopped or cut by a limit, by limit",
            limit_hits.clone(),
        );
        let api = ApiCounters::default();
        registry.register(
            "api_requests",
            "Requests to the Kubernetes API server by verb and status code (every attempt)",
            api.requests.clone(),
        );
        registry.register(
            "api_retries",
            "Requests tried again after a failed attempt, by verb and the failed attempt's code",
            api.retries.clone(),
        );
        registry.register(
            "api_throttles",
            "Requests throttled by the API server (code 429) or the client-side rate limit (code client)",
            api.throttles.clone(),
        );
        let sessions = Gauge::default();
        registry.register("active_sessions", "MCP sessions open now", sessions.clone());
        let runs_in_progress = Gauge::default();
        registry.register(
            "runs_in_progress",
            "run_code runs holding a run slot now",
            runs_in_progress.clone(),
        );
        let workers = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "sandbox_workers",
            "Sandbox worker processes by state (warm: ready for any session; kept: a session's own; running: running a program)",
            workers.clone(),
        );
        Metrics {
            registry,
            runs,
            run_seconds,
            tool_calls,
            limit_hits,
            api,
            sessions,
            runs_in_progress,
            workers,
        }
    }

    /// The observer to give the cluster ([`cluster::Cluster::observe`]).
    pub fn api_observer(&self) -> Arc<dyn cluster::ApiObserver> {
        Arc::new(self.api.clone())
    }

    /// One call of a function or tool; `code` is the error code of a failed call.
    pub(crate) fn call(&self, function: &str, code: Option<&str>) {
        self.tool_calls
            .get_or_create(&CallLabels {
                function: function.to_string(),
                outcome: call_outcome(code),
            })
            .inc();
        if code == Some("LimitExceeded") {
            // The only cluster limit a call can hit is the list cap.
            self.limit_hits
                .get_or_create(&LimitLabels { limit: "list_cap" })
                .inc();
        }
    }

    /// One run: its outcome, its duration, and whether its output was cut.
    pub(crate) fn run(&self, outcome: RunOutcome, took: Duration, cut: bool) {
        self.runs
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
        self.run_seconds.observe(took.as_secs_f64());
        if let RunOutcome::Limit(limit) = outcome {
            self.limit_hits.get_or_create(&LimitLabels { limit }).inc();
        }
        if cut {
            self.limit_hits
                .get_or_create(&LimitLabels { limit: "output" })
                .inc();
        }
    }

    /// A session opened (the returned guard closes it when dropped).
    pub(crate) fn session_opened(&self) -> SessionGauge {
        self.sessions.inc();
        SessionGauge(self.sessions.clone())
    }

    /// The metrics as OpenMetrics text, the gauges read now.
    pub(crate) fn encode(&self, runs_in_progress: usize, workers: sandbox::WorkerCounts) -> String {
        self.runs_in_progress.set(runs_in_progress as i64);
        for (state, n) in [
            ("warm", workers.warm),
            ("kept", workers.kept),
            ("running", workers.running),
        ] {
            self.workers
                .get_or_create(&WorkerLabels { state })
                .set(n as i64);
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!("cannot encode the metrics: {e}");
        }
        text
    }
}

/// `GET /metrics`: the server's metrics, gauges read at the scrape.
pub(crate) fn route(server: Arc<crate::ServerState>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let server = server.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    server.metrics_text(),
                )
            }
        }),
    )
}

/// Counts one open session for as long as it lives.
pub(crate) struct SessionGauge(Gauge);

impl Drop for SessionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_within_fixed_sets() {
        assert_eq!(call_outcome(Some("NotFound")), "NotFound");
        assert_eq!(call_outcome(Some("my-own-code")), "error");
        assert_eq!(bounded("GET"), "GET");
        assert_eq!(bounded("429"), "429");
        assert_eq!(bounded("a/b c"), "other");
        assert_eq!(
            limit_name("the tool calls limit (3) was exceeded: fewer"),
            "tool_calls"
        );
        assert_eq!(limit_name("something else"), "other");
    }
}
