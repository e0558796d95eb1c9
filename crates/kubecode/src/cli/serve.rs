//! `kubecode serve`: the MCP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use server::{HttpOptions, Mode, Shared};

/// The transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    /// JSON-RPC over stdin/stdout (one session).
    Stdio,
    /// Streamable HTTP at /mcp (many sessions).
    Http,
}

/// Arguments of `kubecode serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which tools to expose: code (run_code, search_tools), tools (one per function) or all.
    #[arg(long, env = "MCP_MODE", default_value = "code")]
    mode: String,
    /// stdio or http.
    #[arg(long, value_enum, default_value = "stdio")]
    transport: Transport,
    /// HTTP address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Serve the embedded demo cluster instead of a real one.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    demo: bool,
    /// File holding the bearer token HTTP clients must send.
    #[arg(long, value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// Listen beyond loopback without a token (only behind an authenticating proxy).
    #[arg(long)]
    allow_unauthenticated: bool,
    /// Characters of output a model receives at most per call.
    #[arg(long, default_value_t = shaping::DEFAULT_OUTPUT_LIMIT)]
    output_limit: usize,
}

/// Runs the server until the client (stdio) or the process (HTTP) stops.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mode: Mode = args.mode.parse().map_err(anyhow::Error::msg)?;
    if mode != Mode::Tools {
        bail!(
            "--mode {} needs code mode (run_code, search_tools), which is not built yet: run with --mode tools (or MCP_MODE=tools)",
            args.mode
        );
    }
    let token = match &args.auth_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            let token = text.trim().to_string();
            if token.len() < 16 {
                bail!(
                    "the token in {} is shorter than 16 characters: use a long random token",
                    path.display()
                );
            }
            Some(token)
        }
        None => None,
    };
    // The demo cluster runs in this process; keep it alive as long as the server.
    let (cluster, _demo) = if args.demo {
        let sim =
            kubesim::serve(kubesim::demo::snapshot(), kubesim::ServerConfig::default()).await?;
        let cluster = cluster::Cluster::from_kubeconfig_yaml(
            &sim.kubeconfig(),
            None,
            cluster::Limits::default(),
        )?;
        (cluster, Some(sim))
    } else {
        let cluster = cluster::Cluster::new(
            args.kubeconfig.as_deref(),
            args.context.as_deref(),
            cluster::Limits::default(),
        )?;
        (cluster, None)
    };
    let shared = Arc::new(Shared {
        catalog: catalog::Catalog::new(),
        cluster,
        mode,
        output_limit: args.output_limit,
    });
    match args.transport {
        Transport::Stdio => server::serve_stdio(shared).await?,
        Transport::Http => {
            let options = HttpOptions {
                addr: args.addr,
                token,
                allow_unauthenticated: args.allow_unauthenticated,
            };
            server::serve_http(shared, options, |addr| {
                tracing::info!("kubecode MCP server listening on http://{addr}/mcp");
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
