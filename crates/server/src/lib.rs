//! kubecode's MCP server on rmcp: the modes (`code`, `tools`, `all`), the registry of each
//! mode's tools, the one call path every function call takes, and the stdio and Streamable
//! HTTP transports.
//!
//! Every call of a catalog function, from any route, goes through [`Session::invoke`]:
//! validate → policy → learn → handler → shape → filter → record (see `call.rs`). Runs of
//! programs are shaped and fitted at one place, [`Session::run_program`].

mod apply;
mod approval;
mod audit;
mod call;
mod code;
mod guide;
mod http;
mod memory;
mod plan;
mod registry;
mod state;
mod stdio;
mod tools;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

pub use approval::Decision;
pub use audit::AuditLog;
pub use call::{CallError, Caller, Session, Shaped};
pub use code::{CatalogHost, RunReport};
pub use plan::{Plan, ReviewItem};
pub use registry::CallEnv;
pub use sandbox::Isolation;
pub use state::{CallCount, Options, Records, ServerState};

/// The built-in health scan program (`kubecode demo`, and the prompt's first example).
pub const HEALTH_SCAN: &str = guide::EXAMPLES[0].1;
pub use http::{HttpOptions, HttpSecurityError, serve_http};

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

/// The MCP handler of one session.
#[derive(Clone)]
pub struct KubecodeServer {
    session: Session,
}

impl KubecodeServer {
    /// A handler for a new session of a caller.
    pub fn new(server: &Arc<ServerState>, caller: Caller) -> KubecodeServer {
        KubecodeServer {
            session: server.session(caller),
        }
    }

    fn server(&self) -> &Arc<ServerState> {
        self.session.server()
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
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("kubecode", env!("CARGO_PKG_VERSION")))
            .with_instructions(if self.server().allows_changes() {
                format!("{INSTRUCTIONS} {CHANGES}")
            } else {
                INSTRUCTIONS.to_string()
            })
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.server().registry().tools().to_vec(),
        ))
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
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(guide::resources(self.server()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match guide::read(self.server(), &request.uri) {
            Some(r) => Ok(r.into()),
            None => Err(ErrorData::resource_not_found(
                format!(
                    "no resource {}: the resources are kubecode://types/index.d.ts and kubecode://types/NAMESPACE.d.ts",
                    request.uri
                ),
                None,
            )),
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(guide::prompts())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
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
        let result = self
            .session
            .call_tool(request.name.as_ref(), request.arguments, env)
            .await;
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
