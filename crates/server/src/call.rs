//! The one call path. Every call of a catalog function — a tools-mode tool, a `tools.*` call
//! of a program under `run_code`, `kubecode run`, `kubecode demo` — goes through
//! [`Session::invoke`], whose stages run in this order:
//!
//! 1. **validate** the arguments against the function's own argument type;
//! 2. **policy**: changes are refused unless the server allows them;
//! 3. **learn** the Secrets of the namespaces the call touches (first touch only, where RBAC
//!    allows), so that their values are known before any result carries them;
//! 4. **handler**: the cluster call (a list streams its items through the shape stage);
//! 5. **shape**: the redaction invariant ([`shaping::Redactor`]) on everything that comes back;
//! 6. **filter**: host-side filters (`grep`) on the shaped result, never on raw data;
//! 7. **record**: the call's outcome and duration, with the caller.
//!
//! Nothing else in the server calls a handler, and nothing else shapes cluster data.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use catalog::{Function, Reply};
use cluster::{ClusterError, ErrorKind, ListQuery};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::plan::{MAX_CHANGES, Plan, Refusal};
use crate::replicas::Replicas;
use crate::state::ServerState;

/// The changes a run has planned so far (code mode): they become one plan when it ends.
pub(crate) type Draft = std::sync::Mutex<Vec<cluster::PlannedChange>>;

/// Where a change function's planned change goes.
#[derive(Clone, Copy)]
pub(crate) enum PlanInto<'a> {
    /// A new plan of its own, returned with the result (tools mode).
    New,
    /// An open plan of this session, by id (tools mode's `plan` argument).
    Open(&'a str),
    /// The run's draft, which becomes the run's plan when it ends (code mode).
    Draft(&'a Draft),
}

/// Items of a list sent ahead of the result at a time (half a page of the API server's).
const AHEAD_BATCH: usize = 250;

/// Who is calling: named in every record and the audit log; with OAuth, the person the
/// token names, whose identity the cluster's own checks see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    name: String,
    identity: Option<Identity>,
    may_change: bool,
    verified: bool,
}

/// A person as the cluster sees them (`Impersonate-User`, `Impersonate-Group`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The user name.
    pub user: String,
    /// The groups.
    pub groups: Vec<String>,
}

impl Caller {
    /// The person at this machine (stdio, `kubecode run`, `kubecode demo`).
    pub fn local() -> Caller {
        Caller::named("local")
    }

    /// A caller known by this name, acting with the server's own credentials; the policy
    /// alone decides about changes.
    pub fn named(name: impl Into<String>) -> Caller {
        Caller {
            name: name.into(),
            identity: None,
            may_change: true,
            verified: false,
        }
    }

    /// A person whose access token was verified: `identity` is sent to the cluster when the
    /// server impersonates; `may_change` says whether the token grants the change scope.
    pub fn verified(
        name: impl Into<String>,
        identity: Option<Identity>,
        may_change: bool,
    ) -> Caller {
        Caller {
            name: name.into(),
            identity,
            may_change,
            verified: true,
        }
    }

    /// The caller's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Who the cluster should see instead of the server's own account, if anyone.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Whether the caller's credentials allow changes (the change scope, with OAuth).
    pub fn may_change(&self) -> bool {
        self.may_change
    }

    /// Whether the caller was authenticated as a person (OAuth).
    pub fn is_verified(&self) -> bool {
        self.verified
    }
}

/// A function's result after the shape stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Shaped {
    /// A whole value.
    Value(Value),
    /// A list, as the JSON text of each shaped item (large lists never exist as one value).
    Items(Vec<String>),
}

/// A failed call. Its message went through the shape stage like any result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// `NotFound`, `Forbidden`, `BadInput`, `Cancelled`, ...
    pub code: String,
    /// What went wrong and what to do instead.
    pub message: String,
    /// The argument at fault, for `BadInput`.
    pub field: Option<String>,
}

/// The Secrets a session has read, per kubeconfig context.
#[derive(Debug, Default)]
struct Learned {
    everywhere: bool,
    namespaces: HashSet<String>,
}

/// One client's session: its redaction key and learned Secret values, its `state`, its
/// caller. Tokens are stable within a session and unrelated across sessions.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    /// Names the session in audit records (random: it says nothing about the caller).
    id: String,
    server: Arc<ServerState>,
    /// Set on first use: from the shared key and the session's handle when replicas share
    /// them ([`Session::bind`]), else a random key.
    redactor: OnceLock<shaping::Redactor>,
    /// Where the `state` lives between runs when replicas share it: the store and its key.
    shared: OnceLock<(Arc<Replicas>, String)>,
    /// The session's id in audit records when replicas share it (the same on every replica).
    shared_id: OnceLock<String>,
    state: sandbox::State,
    /// The caller of the latest request (with OAuth, each request's token names it again).
    caller: std::sync::RwLock<Caller>,
    learned: tokio::sync::Mutex<HashMap<String, Learned>>,
    /// The session's own sandbox process between its runs (none in-process).
    worker: sandbox::WorkerSlot,
    /// Counts the session in the `active_sessions` gauge while it lives.
    _open: crate::metrics::SessionGauge,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("caller", &self.inner.caller)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Where the session's sandbox process waits between its runs.
    pub(crate) fn worker_slot(&self) -> &sandbox::WorkerSlot {
        &self.inner.worker
    }

    pub(crate) fn new(server: Arc<ServerState>, caller: Caller) -> Session {
        Session {
            inner: Arc::new(SessionInner {
                id: uuid::Uuid::new_v4().simple().to_string(),
                _open: server.records().session_opened(),
                server,
                redactor: OnceLock::new(),
                shared: OnceLock::new(),
                shared_id: OnceLock::new(),
                state: sandbox::State::default(),
                caller: std::sync::RwLock::new(caller),
                learned: tokio::sync::Mutex::new(HashMap::new()),
                worker: sandbox::WorkerSlot::default(),
            }),
        }
    }

    /// Binds the session to its sealed handle (`Mcp-Session-Id`) when replicas share a key:
    /// its Secret tokens and its `state` then agree across replicas. Binds once, before the
    /// session's first call; a handle that does not open changes nothing (rmcp has refused
    /// its request already).
    pub(crate) fn bind(&self, replicas: &Arc<Replicas>, handle: &str) {
        if self.inner.shared.get().is_some() {
            return;
        }
        let (Some(key), Some(name)) = (
            replicas.redaction_key(handle),
            replicas.name("state", handle),
        ) else {
            return;
        };
        if self
            .inner
            .redactor
            .set(shaping::Redactor::with_key(key))
            .is_ok()
        {
            let _ = self.inner.shared.set((replicas.clone(), name));
            if let Some(audit) = replicas.name("audit", handle) {
                let id = audit.trim_start_matches("kubecode:audit:").to_string();
                let _ = self.inner.shared_id.set(id);
            }
        }
    }

    /// The store the session's `state` is loaded from and saved to around each run, with
    /// its key, when replicas share one.
    pub(crate) fn shared_state(&self) -> Option<(&Arc<Replicas>, &str)> {
        self.inner.shared.get().map(|(r, name)| (r, name.as_str()))
    }

    fn redactor(&self) -> &shaping::Redactor {
        self.inner.redactor.get_or_init(shaping::Redactor::new)
    }

    /// The server this session belongs to.
    pub fn server(&self) -> &Arc<ServerState> {
        &self.inner.server
    }

    /// The session's `state` (code mode).
    pub(crate) fn state(&self) -> &sandbox::State {
        &self.inner.state
    }

    /// The session's id, as audit records name it: random, or on replicas derived from the
    /// session's handle (the same whichever replica writes the record, and not the handle).
    pub fn id(&self) -> &str {
        self.inner.shared_id.get().unwrap_or(&self.inner.id)
    }

    /// Who is calling.
    pub fn caller(&self) -> Caller {
        self.inner
            .caller
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes the caller of a new request. A session belongs to the person who opened it: a
    /// request of another verified person is refused (its id must not open someone else's
    /// `state` and learned Secrets); the same person's newer token (other scopes) replaces
    /// the old one.
    pub fn admit(&self, caller: Caller) -> Result<(), String> {
        let mut current = self.inner.caller.write().unwrap_or_else(|e| e.into_inner());
        if current.is_verified() && current.name() != caller.name() {
            return Err(format!(
                "this MCP session belongs to another person: {} must open a session of their own (initialize without an Mcp-Session-Id)",
                caller.name()
            ));
        }
        *current = caller;
        Ok(())
    }

    /// The cluster as this session's caller sees it: the server's credentials, or, for a
    /// verified person when the server impersonates, theirs.
    pub(crate) fn cluster(&self) -> Arc<cluster::Cluster> {
        self.server().cluster_for(&self.caller())
    }

    /// Calls a catalog function through every stage of the call path.
    ///
    /// A list's shaped items go to `ahead` in batches as they are ready, when the caller
    /// gives one (a program turns them into objects while the next page is fetched); the
    /// result then holds the rest.
    pub async fn invoke(
        &self,
        f: &Function,
        arguments: Option<Map<String, Value>>,
        cancel: &CancellationToken,
        ahead: Option<sandbox::ItemBatches>,
    ) -> Result<Shaped, CallError> {
        self.invoke_into(f, arguments, cancel, ahead, PlanInto::New)
            .await
    }

    /// [`Session::invoke`], saying where a change function's planned change goes.
    pub(crate) async fn invoke_into(
        &self,
        f: &Function,
        arguments: Option<Map<String, Value>>,
        cancel: &CancellationToken,
        ahead: Option<sandbox::ItemBatches>,
        into: PlanInto<'_>,
    ) -> Result<Shaped, CallError> {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "tool.call",
            otel.name = f.path,
            kubecode.function = f.path,
            kubecode.code = tracing::field::Empty,
        );
        let stages = self
            .stages(f, Value::Object(arguments.unwrap_or_default()), ahead, into)
            .instrument(span.clone());
        let outcome = tokio::select! {
            outcome = stages => outcome,
            () = cancel.cancelled() => Err(CallError {
                code: "Cancelled".into(),
                message: format!("{} was cancelled before it finished", f.path),
                field: None,
            }),
        };
        if let Err(e) = &outcome {
            span.record("kubecode.code", e.code.as_str());
        }
        let took = started.elapsed();
        self.server().records().record(
            f.path,
            &self.caller(),
            took,
            outcome.as_ref().err().map(|e| e.code.as_str()),
        );
        if let Some(audit) = self.server().audit() {
            let mut fields = Map::new();
            fields.insert("function".into(), Value::String(f.path.to_string()));
            fields.insert("ms".into(), Value::from(took.as_millis() as u64));
            fields.insert("ok".into(), Value::Bool(outcome.is_ok()));
            if let Err(e) = &outcome {
                fields.insert("code".into(), Value::String(e.code.clone()));
            }
            audit.write("call", self.id(), &self.caller(), fields);
        }
        outcome
    }

    async fn stages(
        &self,
        f: &Function,
        args: Value,
        mut ahead: Option<sandbox::ItemBatches>,
        into: PlanInto<'_>,
    ) -> Result<Shaped, CallError> {
        let failed = |e: ClusterError| self.error(e, &args);
        f.validate(&args).map_err(failed)?;
        let caller = self.caller();
        self.server().policy().check(f, &caller).map_err(failed)?;
        let cluster = self.server().cluster_for(&caller);
        self.learn_scope(&cluster, f, &args).await;
        let redactor = self.redactor();
        let mut items = Vec::new();
        let mut shape_item = |item: String| {
            items.push(redactor.shape_json(item));
            if items.len() >= AHEAD_BATCH
                && let Some(ahead) = ahead.as_mut()
            {
                ahead(std::mem::take(&mut items));
            }
        };
        let reply = f
            .handle(&cluster, args.clone(), &mut shape_item)
            .await
            .map_err(failed)?;
        match reply {
            Reply::Streamed(_) => Ok(Shaped::Items(items)),
            Reply::Value(value) if catalog::Catalog::plans_changes(f) => {
                // The planned request leaves the result here, before anything is shaped or
                // seen: it is kept in a plan, and only what a reviewer reads is shaped.
                let (mut value, mut change) = catalog::planned(value).map_err(failed)?;
                redactor.shape(&mut value);
                change.object = value.get("object").cloned().unwrap_or(Value::Null);
                change.diff = value
                    .get("diff")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(plan) = self.keep_change(change, into).await? {
                    value["plan"] = plan.view();
                }
                Ok(Shaped::Value(value))
            }
            Reply::Value(mut value) => {
                redactor.shape(&mut value);
                let value = f.filter(&args, value).map_err(failed)?;
                Ok(Shaped::Value(value))
            }
        }
    }

    /// Keeps a planned change where `into` says; returns the plan when it is one already.
    async fn keep_change(
        &self,
        change: cluster::PlannedChange,
        into: PlanInto<'_>,
    ) -> Result<Option<Plan>, CallError> {
        let plans = self.server().plans();
        let refused = |id: &str, r: Refusal| CallError {
            code: r.code().to_string(),
            message: self.echo_message(&r.message(id)),
            field: Some("plan".into()),
        };
        match into {
            PlanInto::New => {
                let plan = plans.create(self.id(), vec![change]);
                self.share_plan(&plan).await?;
                self.audit_plan(&plan, "created");
                Ok(Some(plan))
            }
            PlanInto::Open(id) => {
                self.adopt_shared_plan(id).await?;
                let plan = plans
                    .add(id, self.id(), change)
                    .map_err(|r| refused(id, r))?;
                self.share_plan(&plan).await?;
                self.audit_plan(&plan, "extended");
                Ok(Some(plan))
            }
            PlanInto::Draft(draft) => {
                let mut draft = draft.lock().unwrap_or_else(|e| e.into_inner());
                if draft.len() >= MAX_CHANGES {
                    return Err(CallError {
                        code: "LimitExceeded".into(),
                        message: format!(
                            "this run planned {MAX_CHANGES} changes, the most one plan may hold: plan fewer changes per run"
                        ),
                        field: None,
                    });
                }
                draft.push(change);
                Ok(None)
            }
        }
    }

    /// Turns a run's draft into its plan (none when the run planned nothing).
    pub(crate) async fn close_draft(&self, draft: &Draft) -> Result<Option<Plan>, CallError> {
        let changes = std::mem::take(&mut *draft.lock().unwrap_or_else(|e| e.into_inner()));
        if changes.is_empty() {
            return Ok(None);
        }
        let plan = self.server().plans().create(self.id(), changes);
        self.share_plan(&plan).await?;
        self.audit_plan(&plan, "created");
        Ok(Some(plan))
    }

    /// Replicas: puts a plan in the shared store, so that any replica can extend or apply it.
    async fn share_plan(&self, plan: &Plan) -> Result<(), CallError> {
        let Some((replicas, _)) = self.shared_state() else {
            return Ok(());
        };
        replicas
            .store_plan(plan)
            .await
            .map_err(|message| CallError {
                code: "Unavailable".into(),
                message,
                field: None,
            })
    }

    /// Replicas: makes a plan another replica made known here (a no-op for a plan this
    /// replica knows, or without replicas).
    pub(crate) async fn adopt_shared_plan(&self, id: &str) -> Result<(), CallError> {
        let Some((replicas, _)) = self.shared_state() else {
            return Ok(());
        };
        if !matches!(
            self.server().plans().peek(id, self.id()),
            Err(Refusal::Unknown)
        ) {
            return Ok(());
        }
        match replicas.load_plan(id).await {
            Ok(Some(plan)) => {
                self.server().plans().adopt(plan);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(message) => Err(CallError {
                code: "Unavailable".into(),
                message,
                field: None,
            }),
        }
    }

    /// Replicas: takes a plan out of the shared store before deciding on it, so that one
    /// replica only ever decides on it; a plan another replica took is closed here.
    pub(crate) async fn take_shared_plan(&self, id: &str) -> Result<(), CallError> {
        let Some((replicas, _)) = self.shared_state() else {
            return Ok(());
        };
        match replicas.take_plan(id).await {
            Ok(Some(plan)) => self.server().plans().adopt(plan),
            Ok(None) => self.server().plans().close_if_open(id),
            Err(message) => {
                return Err(CallError {
                    code: "Unavailable".into(),
                    message,
                    field: None,
                });
            }
        }
        Ok(())
    }

    /// Writes a `plan` record: its id, expiry and each change's object, action and request.
    fn audit_plan(&self, plan: &Plan, how: &str) {
        let Some(audit) = self.server().audit() else {
            return;
        };
        let changes: Vec<Value> = plan
            .changes
            .iter()
            .map(|c| {
                serde_json::json!({"target": c.target.label(), "action": c.target.action,
                    "method": c.request.method, "path": c.request.path,
                    "resourceVersion": c.resource_version})
            })
            .collect();
        let mut fields = Map::new();
        fields.insert("plan".into(), Value::String(plan.id.clone()));
        fields.insert("how".into(), Value::String(how.to_string()));
        fields.insert("changes".into(), Value::Array(changes));
        fields.insert(
            "expiresAt".into(),
            Value::String(
                plan.expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        );
        audit.write("plan", self.id(), &self.caller(), fields);
    }

    /// Shapes a value for the client (Secret values the session knows become tokens).
    pub(crate) fn shape(&self, value: &mut Value) {
        self.redactor().shape(value);
    }

    /// A cluster error as the client sees it: shaped (the caller's own arguments, echoed,
    /// are left as it sent them) and within the output limit.
    fn error(&self, e: ClusterError, args: &Value) -> CallError {
        let field = match &e.kind {
            ErrorKind::BadInput { field } => Some(field.clone()),
            _ => None,
        };
        let supplied = args.to_string();
        let message = self.redactor().shape_echo(&e.message, &supplied);
        CallError {
            code: e.kind.code().to_string(),
            message: self.fit_message(&message),
            field,
        }
    }

    /// A message that echoes what the caller sent (an unknown tool's name): scrubbed of
    /// credential shapes, and within the output limit.
    pub(crate) fn echo_message(&self, text: &str) -> String {
        self.fit_message(&shaping::scrub(text))
    }

    /// Text the caller sent (a program), for the audit log: learned Secret values and
    /// credential shapes replaced. Only an operator reads the log, so replacing learned
    /// values there confirms nothing to the model.
    pub(crate) fn audit_text(&self, text: &str) -> String {
        shaping::scrub(&self.redactor().shape_text(text)).into_owned()
    }

    fn fit_message(&self, text: &str) -> String {
        let fitted = shaping::fit_value(
            Value::String(text.to_string()),
            self.server().output_limit(),
            "message",
        );
        match fitted.value {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    /// Learns the Secrets of the namespaces a call touches, once per session: the call's
    /// namespace (or the context's), or every namespace for `allNamespaces`.
    /// Secrets are read with the caller's own identity (`cluster` is theirs): a person learns
    /// tokens only for values they could read anyway.
    async fn learn_scope(&self, cluster: &cluster::Cluster, f: &Function, args: &Value) {
        if f.input_schema.pointer("/properties/namespace").is_none() {
            return;
        }
        let context = args.get("context").and_then(Value::as_str);
        let everywhere = args.get("allNamespaces").and_then(Value::as_bool) == Some(true);
        let named = args
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        let namespace = match (named, everywhere) {
            (Some(n), _) => Some(n.to_string()),
            (None, true) => None,
            (None, false) => match cluster.default_namespace(context).await {
                Ok(n) => Some(n),
                // The handler will fail the same way, and say why.
                Err(_) => return,
            },
        };
        let mut learned = self.inner.learned.lock().await;
        let seen = learned
            .entry(context.unwrap_or("").to_string())
            .or_default();
        if seen.everywhere
            || namespace
                .as_ref()
                .is_some_and(|n| seen.namespaces.contains(n))
        {
            return;
        }
        match namespace {
            Some(n) => {
                if self.read_secrets(cluster, context, Some(&n)).await {
                    seen.namespaces.insert(n);
                }
            }
            None => {
                if self.read_secrets(cluster, context, None).await {
                    seen.everywhere = true;
                    return;
                }
                // Not allowed cluster-wide: namespace by namespace, where allowed.
                let q = ListQuery {
                    kind: "namespaces".into(),
                    context: context.map(str::to_string),
                    ..ListQuery::default()
                };
                let Ok(namespaces) = cluster.list(&q).await else {
                    return;
                };
                for ns in namespaces {
                    let Some(n) = ns.pointer("/metadata/name").and_then(Value::as_str) else {
                        continue;
                    };
                    if !seen.namespaces.contains(n)
                        && self.read_secrets(cluster, context, Some(n)).await
                    {
                        seen.namespaces.insert(n.to_string());
                    }
                }
            }
        }
    }

    /// Reads the Secrets of a namespace (or all) into the redactor. True when the scope is
    /// settled: read, or not readable with these credentials (RBAC said no). False on a
    /// failure that may pass (the next call in the scope tries again).
    async fn read_secrets(
        &self,
        cluster: &cluster::Cluster,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> bool {
        let q = ListQuery {
            kind: "secrets".into(),
            namespace: namespace.map(str::to_string),
            all_namespaces: namespace.is_none(),
            context: context.map(str::to_string),
            ..ListQuery::default()
        };
        let mut secrets = Vec::new();
        let mut keep = |s: Value| {
            // Helm's storage blobs are large and decoded by the Helm functions themselves.
            if s.get("type").and_then(Value::as_str) != Some("helm.sh/release.v1") {
                secrets.push(s);
            }
        };
        match cluster.list_each(&q, &mut keep).await {
            Ok(_) => {
                self.redactor().learn(&secrets);
                true
            }
            Err(e) if matches!(e.kind, ErrorKind::Forbidden | ErrorKind::Unauthorized) => {
                // With namespace = None this is not final: the caller tries namespace by namespace.
                namespace.is_some()
            }
            Err(e) => {
                tracing::debug!(
                    "cannot read the Secrets of {}: {}",
                    namespace.unwrap_or("all namespaces"),
                    e.message
                );
                false
            }
        }
    }
}
