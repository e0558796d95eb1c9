//! kubecode's MCP server on rmcp: the modes (`code`, `tools`, `all`), the registry of each
//! mode's tools, the one call path every function call takes, and the stdio and Streamable
//! HTTP transports.
//!
//! Every call of a catalog function, from any route, goes through [`Session::invoke`]:
//! validate → policy → learn → handler → shape → filter → record (see `call.rs`). Runs of
//! programs are shaped and fitted at one place, [`Session::run_program`].

mod apply;
mod approval;
pub mod approval_page;
mod audit;
mod auth;
mod call;
mod code;
mod guide;
mod http;
mod memory;
mod metrics;
mod plan;
mod registry;
mod replicas;
mod state;
mod stdio;
pub mod telemetry;
mod tools;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, CompletionInfo,
    DiscoverResult, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    Reference, ServerCapabilities, ServerConfig, Tool,
};
#[allow(deprecated)]
// logging/setLevel: deprecated by SEP-2577, still part of 2025-06-18 and 2025-11-25
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam, SetLevelRequestParams};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use tracing::Instrument;

pub use approval::Decision;
pub use approval_page::{
    ApprovalPages, PageDecision, PageError, PendingApproval, Review, ReviewChange,
};
pub use audit::AuditLog;
pub use auth::{OAuthConfig, Verifier};
pub use call::{CallError, Caller, Identity, Session, Shaped};
pub use code::{CatalogHost, RunReport};
pub use plan::{Plan, ReviewItem};
pub use registry::CallEnv;
pub use sandbox::Isolation;
pub use state::{CallCount, Options, Records, ServerState};

/// The built-in health scan program (`kubecode demo`, and the prompt's first example).
pub const HEALTH_SCAN: &str = guide::EXAMPLES[0].1;
pub use http::{HttpOptions, HttpSecurityError, serve_http};
pub use replicas::{
    MIN_SHARED_KEY_BYTES, RedisSessionStore, Replicas, ReplicasError, SESSION_TTL, SealedSessions,
    SharedKey,
};

/// Which tools the server exposes (CONTRACT §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `run_code` and `search_tools`.
    Code,
    /// One tool per catalog function.
    Tools,
    /// Both sets.
    All,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "code" => Ok(Mode::Code),
            "tools" => Ok(Mode::Tools),
            "all" => Ok(Mode::All),
            other => Err(format!("unknown mode {other:?}: use code, tools or all")),
        }
    }
}

/// The MCP protocol versions kubecode speaks (CONTRACT §2): the current one, which has no
/// `initialize` (each request names its version in `_meta`), and the two before it.
pub const PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// How a handler's client reaches it, which decides whether its [`Session`] outlives a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// One connection, one session, whatever the protocol version.
    Stdio,
    /// Streamable HTTP with sessions (`Mcp-Session-Id`) for 2025-06-18 and 2025-11-25 clients.
    /// 2026-07-28 has no sessions: rmcp serves each of its requests on its own, with a
    /// handler (and so a [`Session`]) made for that request alone.
    Http,
    /// Streamable HTTP without sessions (`--stateless`): every request is served on its own.
    HttpStateless,
}

/// Appended to the instructions and to `run_code`'s description where there is no session, so
/// that a model does not count on what only a session keeps.
const STATELESS_NOTE: &str = " Stateless: no MCP session; every call starts with an empty state and its \
own [secret:…] tokens.";

/// The MCP handler of one session.
#[derive(Clone)]
pub struct KubecodeServer {
    session: Session,
    route: Route,
    /// What replicas share, when they do: binds the session to its sealed handle.
    replicas: Option<Arc<Replicas>>,
    /// The level `logging/setLevel` asked for; no log messages until a client asks.
    #[allow(deprecated)]
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

impl KubecodeServer {
    /// A handler for a new session of a caller, over stdio.
    pub fn new(server: &Arc<ServerState>, caller: Caller) -> KubecodeServer {
        KubecodeServer::on(server, caller, Route::Stdio)
    }

    /// A handler for a new session of a caller reached by `route`.
    pub fn on(server: &Arc<ServerState>, caller: Caller, route: Route) -> KubecodeServer {
        KubecodeServer {
            session: server.session(caller),
            route,
            replicas: None,
            log_level: Arc::new(Mutex::new(None)),
        }
    }

    /// The same handler, on one of replicas sharing `replicas` (none: a lone server).
    pub fn with_replicas(mut self, replicas: Option<Arc<Replicas>>) -> KubecodeServer {
        self.replicas = replicas;
        self
    }

    /// Binds the session to the sealed handle its HTTP request names, on replicas.
    fn bind(&self, context: &RequestContext<RoleServer>) {
        if let Some(replicas) = &self.replicas
            && let Some(parts) = context.extensions.get::<axum::http::request::Parts>()
            && let Some(handle) = parts
                .headers
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
        {
            self.session.bind(replicas, handle);
        }
    }

    fn server(&self) -> &Arc<ServerState> {
        self.session.server()
    }

    /// Whether this request's session ends with the request: always under `--stateless`, and
    /// over HTTP for the protocol versions without `initialize` (2026-07-28 on).
    fn stateless(&self, context: &RequestContext<RoleServer>) -> bool {
        match self.route {
            Route::Stdio => false,
            Route::HttpStateless => true,
            Route::Http => context
                .protocol_version()
                .is_some_and(|v| !v.has_initialize()),
        }
    }

    fn instructions(&self, stateless: bool) -> String {
        let mut text = INSTRUCTIONS.to_string();
        if self.server().allows_changes() {
            text.push(' ');
            text.push_str(CHANGES);
        }
        if stateless {
            text.push_str(STATELESS_NOTE);
        }
        text
    }

    /// Sends one `notifications/message` if the client asked for messages of `level`: per
    /// request (2026-07-28 `_meta` logLevel) or for the session (`logging/setLevel`).
    #[allow(deprecated)]
    async fn log(
        &self,
        context: &RequestContext<RoleServer>,
        level: LoggingLevel,
        data: serde_json::Value,
    ) {
        let wanted = context
            .meta
            .log_level()
            .or_else(|| *self.log_level.lock().unwrap_or_else(|e| e.into_inner()));
        let Some(wanted) = wanted else { return };
        if severity(level) < severity(wanted) {
            return;
        }
        let mut message = LoggingMessageNotificationParam::new(level, data);
        message.logger = Some("kubecode".to_string());
        let _ = context.peer.notify_logging_message(message).await;
    }

    /// Takes the verified caller of an HTTP request (OAuth puts it in the request's
    /// extensions) into the session; refuses another person's request.
    fn admit(&self, extensions: &rmcp::model::Extensions) -> Result<(), ErrorData> {
        let caller = extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>());
        match caller {
            Some(c) => self
                .session
                .admit(c.clone())
                .map_err(|m| ErrorData::invalid_request(m, None)),
            None => Ok(()),
        }
    }
}

/// Log levels in the order of RFC 5424 severity, least severe first.
#[allow(deprecated)]
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

const INSTRUCTIONS: &str = "kubecode diagnoses Kubernetes clusters read-only. In code mode write one program for \
run_code that calls tools.kubernetes.* and tools.helm.*, filters the data and returns only the answer. In tools \
mode each kube_* and helm_* tool wraps one API call; narrow calls with namespace, labelSelector, fieldSelector, \
limit, tailLines and grep. Secret values appear as [secret:FINGERPRINT] tokens wherever they appear (Secrets, env, \
logs, ConfigMaps, in any encoding): equal tokens mean equal values within one MCP session.";

const CHANGES: &str = "This server also plans changes (scale, restart, rollback, setImage, patch, cordon, uncordon, \
deletePod): they change nothing, return a dry-run diff and a plan; apply_plan({id}) asks the person to approve it, \
then sends it. Verify with kubernetes.waitFor.";

impl ServerHandler for KubecodeServer {
    fn get_info(&self) -> ServerConfig {
        #[allow(deprecated)] // logging: see SetLevelRequestParams
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("kubecode", env!("CARGO_PKG_VERSION")))
            .with_instructions(self.instructions(self.route == Route::HttpStateless))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        let mut info = self.get_info();
        info.instructions = Some(self.instructions(self.stateless(&context)));
        Ok(DiscoverResult::from_server_info(
            PROTOCOL_VERSIONS.to_vec(),
            info,
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        // Lets rmcp check a 2026-07-28 request's Mcp-Param-* headers against the tool's schema.
        self.server()
            .registry()
            .tools()
            .iter()
            .find(|t| t.name == name)
            .cloned()
    }

    async fn initialize(
        &self,
        request: rmcp::model::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::InitializeResult, ErrorData> {
        // The person who opens the session owns it.
        self.admit(&context.extensions)?;
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let _span = telemetry::mcp_span("tools/list", &context.meta).entered();
        let mut tools = self.server().registry().tools().to_vec();
        if self.stateless(&context) {
            for tool in tools.iter_mut().filter(|t| t.name == "run_code") {
                if let Some(description) = &tool.description {
                    // `state` is not kept here: the note says so instead.
                    let description =
                        description.replace(" (get/set/keys/delete, kept per session)", "");
                    tool.description = Some(format!("{description}{STATELESS_NOTE}").into());
                }
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.log_level.lock().unwrap_or_else(|e| e.into_inner()) = Some(request.level);
        Ok(())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(guide::templates())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let values = match &request.r#ref {
            Reference::Resource(r)
                if r.uri == guide::TEMPLATE && request.argument.name == "name" =>
            {
                guide::template_names(self.server(), &request.argument.value)
            }
            Reference::Resource(r) => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "cannot complete argument {:?} of {}: the one template is {} (argument name)",
                        request.argument.name,
                        r.uri,
                        guide::TEMPLATE
                    ),
                    None,
                ));
            }
            // code-mode takes no arguments, so nothing completes them.
            Reference::Prompt(p) if p.name == "code-mode" => Vec::new(),
            Reference::Prompt(p) => {
                return Err(ErrorData::invalid_params(
                    format!("no prompt {:?}: the prompt is code-mode", p.name),
                    None,
                ));
            }
            _ => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "cannot complete this reference: completion covers the template {} (argument name) and the prompt code-mode",
                        guide::TEMPLATE
                    ),
                    None,
                ));
            }
        };
        let total = values.len();
        let mut values = values;
        values.truncate(CompletionInfo::MAX_VALUES);
        let info = CompletionInfo::with_pagination(
            values,
            Some(total as u32),
            total > CompletionInfo::MAX_VALUES,
        )
        .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }

    async fn on_initialized(&self, _context: rmcp::service::NotificationContext<RoleServer>) {
        // Once a client is connected, compile the scrubbing patterns and warm the TypeScript
        // stripper on another thread, so that neither `initialize` nor the first run_code pays.
        static WARM: std::sync::Once = std::sync::Once::new();
        WARM.call_once(|| {
            std::thread::spawn(|| {
                let _ = shaping::scrub("password=warm-up");
                let _ = sandbox::strip("const warm: number = 1; return warm;");
            });
        });
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let _span = telemetry::mcp_span("resources/list", &context.meta).entered();
        Ok(guide::resources(self.server()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let _span = telemetry::mcp_span("resources/read", &context.meta).entered();
        match guide::read(self.server(), &request.uri) {
            Some(r) => Ok(r.into()),
            None => Err(ErrorData::resource_not_found(
                format!(
                    "no resource {}: the resources are kubecode://types/index.d.ts, kubecode://types/kinds.d.ts and kubecode://types/NAMESPACE.d.ts (resources/list names them all)",
                    request.uri
                ),
                // The spec's resource-not-found error names the URI in its data.
                Some(serde_json::json!({ "uri": request.uri })),
            )),
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let _span = telemetry::mcp_span("prompts/list", &context.meta).entered();
        Ok(guide::prompts())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let _span = telemetry::mcp_span("prompts/get", &context.meta).entered();
        match guide::prompt(self.server(), &request.name) {
            Some(p) => Ok(p.into()),
            None => Err(ErrorData::invalid_params(
                format!("no prompt {:?}: the prompt is code-mode", request.name),
                None,
            )),
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.admit(&context.extensions)?;
        self.bind(&context);
        let mut env = CallEnv {
            cancel: context.ct.clone(),
            progress: None,
            peer: Some(context.peer.clone()),
        };
        if let Some(token) = context.meta.get_progress_token() {
            let peer = context.peer.clone();
            let handle = tokio::runtime::Handle::current();
            env.progress = Some(Arc::new(
                move |calls: usize, elapsed: std::time::Duration| {
                    let mut p = ProgressNotificationParam::new(token.clone(), calls as f64);
                    p.message = Some(format!("{calls} calls, {} ms", elapsed.as_millis()));
                    let peer = peer.clone();
                    handle.spawn(async move {
                        let _ = peer.notify_progress(p).await;
                    });
                },
            ));
        }
        let started = std::time::Instant::now();
        let span = telemetry::mcp_span("tools/call", &context.meta);
        let name: &str = request.name.as_ref();
        // Only a tool of the mode is named in the span (not whatever a client sent).
        if !span.is_disabled() && self.server().tool_names().iter().any(|t| t == name) {
            span.record("mcp.tool", name);
        }
        let result = self
            .session
            .call_tool(name, request.arguments, env)
            .instrument(span)
            .await;
        let failed = result.is_error == Some(true);
        #[allow(deprecated)]
        let level = if failed {
            LoggingLevel::Warning
        } else {
            LoggingLevel::Info
        };
        let data = serde_json::json!({
            "tool": name,
            "ok": !failed,
            "ms": started.elapsed().as_millis() as u64,
        });
        self.log(&context, level, data).await;
        Ok(result.into())
    }
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The MCP session could not start or failed.
    #[error("MCP session failed: {0}")]
    Session(String),
    /// The HTTP transport could not start.
    #[error(transparent)]
    Http(#[from] HttpSecurityError),
    /// The OAuth configuration is incomplete or wrong.
    #[error("{0}")]
    Auth(String),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Serves one session over stdin/stdout until the client closes it.
pub async fn serve_stdio(server: Arc<ServerState>) -> Result<(), ServeError> {
    let running = KubecodeServer::new(&server, Caller::local())
        .serve(stdio::transport())
        .await
        .map_err(|e| ServeError::Session(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| ServeError::Session(e.to_string()))?;
    Ok(())
}
