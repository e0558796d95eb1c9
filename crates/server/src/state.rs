//! What every session of a server shares: the functions, the cluster, the limits, the
//! registry of the mode's tools (built once), the policy and the records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::{Catalog, Function};
use cluster::{Cluster, ClusterError, ErrorKind};

use crate::Mode;
use crate::audit::AuditLog;
use crate::call::{Caller, Session};
use crate::plan::Plans;
use crate::registry::Registry;

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which tools it exposes.
    pub mode: Mode,
    /// The sandbox's limits; `output` is also every route's output limit.
    pub limits: sandbox::Limits,
    /// Programs that may run at once across all sessions; more wait for a slot (within their
    /// wall-clock limit), which bounds the server's memory under load.
    pub max_concurrent_runs: usize,
    /// Where programs run.
    pub isolation: sandbox::Isolation,
    /// Where audit records go (`--audit-log`), if anywhere.
    pub audit: Option<Arc<AuditLog>>,
    /// Whether the change functions and `apply_plan` exist (`--allow-changes`).
    pub allow_changes: bool,
    /// How long a plan can be applied after it was made (or last added to).
    pub plan_ttl: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: Mode::Code,
            limits: sandbox::Limits::default(),
            max_concurrent_runs: 8,
            isolation: sandbox::Isolation::InProcess,
            audit: None,
            allow_changes: false,
            plan_ttl: Duration::from_secs(600),
        }
    }
}

/// The server's shared state. Sessions are made from it with [`ServerState::session`].
pub struct ServerState {
    catalog: Catalog,
    cluster: Cluster,
    mode: Mode,
    limits: sandbox::Limits,
    run_slots: tokio::sync::Semaphore,
    run_slot_count: usize,
    isolation: sandbox::Isolation,
    registry: Registry,
    policy: Policy,
    records: Records,
    audit: Option<Arc<AuditLog>>,
    plans: Plans,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ServerState {
    /// A server over a cluster. The mode's tools are registered here, once.
    pub fn new(cluster: Cluster, options: Options) -> Arc<ServerState> {
        // Without --allow-changes the change functions do not exist at all: not listed, not
        // callable, not in the types or the index.
        let catalog = if options.allow_changes {
            Catalog::with_changes()
        } else {
            Catalog::new()
        };
        let registry = Registry::build(
            options.mode,
            &catalog,
            options.limits.output,
            options.allow_changes,
        );
        let slots = options.max_concurrent_runs.max(1);
        Arc::new(ServerState {
            catalog,
            cluster,
            mode: options.mode,
            limits: options.limits,
            run_slots: tokio::sync::Semaphore::new(slots),
            run_slot_count: slots,
            isolation: options.isolation,
            registry,
            policy: Policy {
                allow_changes: options.allow_changes,
            },
            records: Records::default(),
            audit: options.audit,
            plans: Plans::new(options.plan_ttl),
        })
    }

    /// A new session for a caller.
    pub fn session(self: &Arc<ServerState>, caller: Caller) -> Session {
        Session::new(self.clone(), caller)
    }

    /// The functions.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Cluster access.
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The sandbox's limits.
    pub fn limits(&self) -> &sandbox::Limits {
        &self.limits
    }

    /// Characters of output a client receives at most per call or run.
    pub fn output_limit(&self) -> usize {
        self.limits.output
    }

    /// The names of the mode's tools, as `tools/list` shows them.
    pub fn tool_names(&self) -> Vec<String> {
        self.registry
            .tools()
            .iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The record stage's counters.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The audit log, when the server keeps one.
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_deref()
    }

    /// The change plans waiting for a decision.
    pub(crate) fn plans(&self) -> &Plans {
        &self.plans
    }

    /// Whether changes can be planned and applied (`--allow-changes`).
    pub fn allows_changes(&self) -> bool {
        self.policy.allow_changes
    }

    /// Where programs run.
    pub fn isolation(&self) -> &sandbox::Isolation {
        &self.isolation
    }

    pub(crate) fn run_slots(&self) -> &tokio::sync::Semaphore {
        &self.run_slots
    }

    /// Whether no program is running.
    pub(crate) fn idle(&self) -> bool {
        self.run_slots.available_permits() == self.run_slot_count
    }
}

/// The policy stage: what a call may do.
#[derive(Debug)]
pub(crate) struct Policy {
    allow_changes: bool,
}

impl Policy {
    /// Refuses a function that changes the cluster unless changes are allowed.
    pub(crate) fn check(&self, f: &Function) -> Result<(), ClusterError> {
        if f.annotations.read_only || self.allow_changes {
            return Ok(());
        }
        Err(ClusterError::new(
            ErrorKind::Forbidden,
            format!(
                "{} changes the cluster, and this server is read-only: changes need `kubecode serve --allow-changes`",
                f.path
            ),
        ))
    }
}

/// The record stage: how many calls of each function succeeded and failed.
#[derive(Debug, Default)]
pub struct Records {
    counts: Mutex<BTreeMap<String, CallCount>>,
}

/// Calls of one function.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCount {
    /// Calls that returned a result.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
}

impl Records {
    /// Records one call.
    pub(crate) fn record(&self, path: &str, caller: &Caller, took: Duration, ok: bool) {
        tracing::debug!(
            path,
            caller = caller.name(),
            ms = took.as_millis() as u64,
            ok,
            "call"
        );
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let c = counts.entry(path.to_string()).or_default();
        if ok {
            c.ok += 1;
        } else {
            c.failed += 1;
        }
    }

    /// The calls recorded for a function path (`kubernetes.list`) or a tool (`run_code`).
    pub fn count(&self, path: &str) -> CallCount {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(path).copied().unwrap_or_default()
    }
}
