//! What every session of a server shares: the functions, the cluster, the limits, the
//! registry of the mode's tools (built once), the policy and the records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::{Catalog, Function};
use cluster::{Cluster, ClusterError, ErrorKind};

use crate::Mode;
use crate::approval_page::ApprovalPages;
use crate::audit::AuditLog;
use crate::call::{Caller, Identity, Session};
use crate::metrics::{Metrics, RunOutcome, SessionGauge};
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
    /// Where a person's browser reaches this server (`--public-url`), for approval pages;
    /// default: the HTTP listener's own address, or a loopback listener under stdio.
    pub public_url: Option<String>,
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
            public_url: None,
        }
    }
}

/// The server's shared state. Sessions are made from it with [`ServerState::session`].
pub struct ServerState {
    catalog: Catalog,
    cluster: Arc<Cluster>,
    /// Clusters seen as impersonated people, the least recently used dropped beyond a bound.
    people: Mutex<PeopleCache>,
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
    approval_pages: Arc<ApprovalPages>,
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
        let records = Records::default();
        cluster.observe(records.metrics.api_observer());
        Arc::new(ServerState {
            catalog,
            cluster: Arc::new(cluster),
            people: Mutex::new(PeopleCache::default()),
            mode: options.mode,
            limits: options.limits,
            run_slots: tokio::sync::Semaphore::new(slots),
            run_slot_count: slots,
            isolation: options.isolation,
            registry,
            policy: Policy {
                allow_changes: options.allow_changes,
            },
            records,
            audit: options.audit,
            plans: Plans::new(options.plan_ttl),
            approval_pages: Arc::new(ApprovalPages::new(options.public_url)),
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

    /// The cluster as a caller sees it: with an identity to impersonate, a client that sends
    /// it (one per identity, kept while it is among the most recently used); else the
    /// server's own.
    pub(crate) fn cluster_for(&self, caller: &Caller) -> Arc<Cluster> {
        match caller.identity() {
            None => self.cluster.clone(),
            Some(id) => {
                let mut people = self.people.lock().unwrap_or_else(|e| e.into_inner());
                people.get(id, &self.cluster)
            }
        }
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

    /// The one-time approval pages of this server's plans.
    pub fn approval_pages(&self) -> &Arc<ApprovalPages> {
        &self.approval_pages
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

    /// The metrics in the OpenMetrics text format (`GET /metrics`), gauges read now.
    pub fn metrics_text(&self) -> String {
        let running = self.run_slot_count - self.run_slots.available_permits();
        let workers = match &self.isolation {
            sandbox::Isolation::Process(pool) => pool.counts(),
            sandbox::Isolation::InProcess => sandbox::WorkerCounts::default(),
        };
        self.records.metrics.encode(running, workers)
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
    /// Refuses a function that changes the cluster unless changes are allowed, and the
    /// caller's credentials allow them too (with OAuth: the change scope).
    pub(crate) fn check(&self, f: &Function, caller: &Caller) -> Result<(), ClusterError> {
        self.decide(f.path, f.annotations.read_only, caller)
    }

    fn decide(&self, path: &str, read_only: bool, caller: &Caller) -> Result<(), ClusterError> {
        if read_only {
            return Ok(());
        }
        if !caller.may_change() {
            return Err(ClusterError::new(
                ErrorKind::Forbidden,
                format!(
                    "{path} changes the cluster, and your access token does not grant changes: ask the issuer for a token with the change scope (kubecode:change unless configured otherwise)"
                ),
            ));
        }
        if self.allow_changes {
            return Ok(());
        }
        Err(ClusterError::new(
            ErrorKind::Forbidden,
            format!(
                "{path} changes the cluster, and this server is read-only: changes need `kubecode serve --allow-changes`"
            ),
        ))
    }
}

/// The record stage: how many calls of each function succeeded and failed, and the
/// server's metrics.
#[derive(Debug, Default)]
pub struct Records {
    counts: Mutex<BTreeMap<String, CallCount>>,
    metrics: Metrics,
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
    /// Records one call; `code` is a failed call's error code.
    pub(crate) fn record(&self, path: &str, caller: &Caller, took: Duration, code: Option<&str>) {
        let ok = code.is_none();
        tracing::debug!(
            path,
            caller = caller.name(),
            ms = took.as_millis() as u64,
            ok,
            "call"
        );
        self.metrics.call(path, code);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let c = counts.entry(path.to_string()).or_default();
        if ok {
            c.ok += 1;
        } else {
            c.failed += 1;
        }
    }

    /// Records one run of a program (its calls were recorded one by one).
    pub(crate) fn record_run(&self, outcome: RunOutcome, took: Duration, cut: bool) {
        self.metrics.run(outcome, took, cut);
    }

    /// Counts a session as open until the guard is dropped.
    pub(crate) fn session_opened(&self) -> SessionGauge {
        self.metrics.session_opened()
    }

    /// The calls recorded for a function path (`kubernetes.list`) or a tool (`run_code`).
    pub fn count(&self, path: &str) -> CallCount {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(path).copied().unwrap_or_default()
    }
}

/// Most impersonating clients kept at once.
const PEOPLE_KEPT: usize = 256;

/// Clients per impersonated identity, bounded.
#[derive(Default)]
struct PeopleCache {
    clients: std::collections::HashMap<Identity, (Arc<Cluster>, u64)>,
    clock: u64,
}

impl PeopleCache {
    fn get(&mut self, id: &Identity, server: &Cluster) -> Arc<Cluster> {
        self.clock += 1;
        let now = self.clock;
        if let Some((c, used)) = self.clients.get_mut(id) {
            *used = now;
            return c.clone();
        }
        if self.clients.len() >= PEOPLE_KEPT
            && let Some(oldest) = self
                .clients
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            self.clients.remove(&oldest);
        }
        let c = Arc::new(server.impersonating(&id.user, &id.groups));
        self.clients.insert(id.clone(), (c.clone(), now));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_need_the_server_flag_and_the_callers_scope() {
        let open = Policy {
            allow_changes: true,
        };
        let closed = Policy {
            allow_changes: false,
        };
        let reader = Caller::verified("alice", None, false);
        let changer = Caller::verified("bob", None, true);
        assert!(open.decide("f", true, &reader).is_ok());
        let e = open.decide("f", false, &reader).unwrap_err();
        assert!(e.message.contains("change scope"), "{}", e.message);
        assert!(open.decide("f", false, &changer).is_ok());
        assert!(open.decide("f", false, &Caller::local()).is_ok());
        let e = closed.decide("f", false, &changer).unwrap_err();
        assert!(e.message.contains("--allow-changes"), "{}", e.message);
    }
}
