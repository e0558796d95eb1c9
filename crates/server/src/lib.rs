//! kubecode's MCP server on rmcp: the modes (`code`, `tools`, `all`), the tools-mode tools
//! generated from the catalog, and the stdio and Streamable HTTP transports.
//!
//! Every result passes the shaping layer on its way out: Secret values become tokens first,
//! credential-shaped strings are scrubbed, and output over the limit is cut with a hint.

mod code;
mod http;
mod tools;

use std::sync::Arc;

use catalog::Catalog;
use cluster::Cluster;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

pub use code::CatalogHost;
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
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
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
