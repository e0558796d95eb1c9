//! kubecode's MCP server on rmcp: the modes (`code`, `tools`, `all`), the tools-mode tools
//! generated from the catalog, and the stdio and Streamable HTTP transports.
//!
//! Every result passes the shaping layer on its way out: Secret values become tokens first,
//! credential-shaped strings are scrubbed, and output over the limit is cut with a hint.

mod code;
mod guide;
mod http;
mod memory;
mod tools;

use std::sync::Arc;

use catalog::Catalog;
use cluster::Cluster;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

pub use code::CatalogHost;

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

/// What every session shares: the functions, the cluster, the limits.
pub struct Shared {
    /// The functions.
    pub catalog: Catalog,
    /// Cluster access.
    pub cluster: Cluster,
    /// The mode.
    pub mode: Mode,
    /// Characters of output a model receives at most (tools mode).
    pub output_limit: usize,
    /// The sandbox's limits (code mode).
    pub limits: sandbox::Limits,
    /// Programs that may run at once across all sessions; more wait for a slot (within their
    /// wall-clock limit), which bounds the server's memory under load.
    pub run_slots: tokio::sync::Semaphore,
    /// How many slots `run_slots` was made with.
    pub run_slot_count: usize,
}

/// The MCP handler of one session. Each session has its own secret vault, so tokens are
/// stable within a session and unrelated across sessions.
#[derive(Clone)]
pub struct KubecodeServer {
    shared: Arc<Shared>,
    vault: shaping::Vault,
    state: sandbox::State,
}

impl KubecodeServer {
    /// A handler for a new session.
    pub fn new(shared: Arc<Shared>) -> KubecodeServer {
        KubecodeServer {
            shared,
            vault: shaping::Vault::new(),
            state: sandbox::State::default(),
        }
    }
}

const INSTRUCTIONS: &str = "kubecode diagnoses Kubernetes clusters read-only. In code mode write one program for \
run_code that calls tools.kubernetes.* and tools.helm.*, filters the data and returns only the answer. In tools \
mode each kube_* and helm_* tool wraps one API call; narrow calls with namespace, labelSelector, fieldSelector, \
limit, tailLines and grep. Secret values appear as [secret:FINGERPRINT] tokens: equal tokens mean equal values.";

impl ServerHandler for KubecodeServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("kubecode", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut all = Vec::new();
        if matches!(self.shared.mode, Mode::Code | Mode::All) {
            all.extend(code::definitions(&self.shared));
        }
        all.extend(tools::definitions(&self.shared));
        Ok(ListToolsResult::with_all_items(all))
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
        Ok(guide::resources(&self.shared))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match guide::read(&self.shared, &request.uri) {
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
        match guide::prompt(&self.shared, &request.name) {
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
        let code_mode = matches!(self.shared.mode, Mode::Code | Mode::All);
        let result = match request.name.as_ref() {
            "run_code" if code_mode => {
                code::run(
                    &self.shared,
                    &self.vault,
                    &self.state,
                    request.arguments,
                    &context,
                )
                .await
            }
            "search_tools" if code_mode => code::search(&self.shared, request.arguments),
            _ => tools::call(&self.shared, &self.vault, request).await,
        };
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
pub async fn serve_stdio(shared: Arc<Shared>) -> Result<(), ServeError> {
    let running = KubecodeServer::new(shared)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Session(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| ServeError::Session(e.to_string()))?;
    Ok(())
}
