//! `kubecode serve`: the MCP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use server::{HttpOptions, Mode};

use super::connect::{Connection, LimitArgs, Target};

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
    /// Also accept this name (or NAME:PORT) in the HTTP Host header, for instance the
    /// Service's DNS name in a cluster (repeatable; loopback names are always accepted).
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Append one JSON line per tool call, run, plan and decision to FILE (`-`: standard
    /// output, HTTP transport only).
    #[arg(long, value_name = "FILE|-")]
    audit_log: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Runs the server until the client (stdio) or the process (HTTP) stops.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mode: Mode = args.mode.parse().map_err(anyhow::Error::msg)?;
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
    let target = Target {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        demo: args.demo,
    };
    // The demo cluster (if any) runs in this process and lives as long as `connection`.
    let warm = (args.limits.max_concurrent_runs as usize).min(2);
    let audit = match &args.audit_log {
        Some(path) if path.as_os_str() == "-" => {
            if args.transport == Transport::Stdio {
                bail!(
                    "--audit-log - would write into the protocol channel: under --transport stdio standard output carries MCP; give a file instead"
                );
            }
            Some(std::sync::Arc::new(server::AuditLog::to_stdout()))
        }
        Some(path) => Some(std::sync::Arc::new(
            server::AuditLog::to_file(path)
                .with_context(|| format!("cannot open the audit log {}", path.display()))?,
        )),
        None => None,
    };
    let options = server::Options {
        audit,
        mode,
        limits: args.limits.limits(),
        max_concurrent_runs: args.limits.max_concurrent_runs as usize,
        isolation: args.limits.isolation(warm)?,
    };
    let connection = Connection::open(&target, options).await?;
    let shared = connection.server.clone();
    match args.transport {
        Transport::Stdio => server::serve_stdio(shared).await?,
        Transport::Http => {
            let options = HttpOptions {
                addr: args.addr,
                token,
                allow_unauthenticated: args.allow_unauthenticated,
                allowed_hosts: args.allowed_hosts.clone(),
            };
            server::serve_http(shared, options, |addr| {
                tracing::info!("kubecode MCP server listening on http://{addr}/mcp");
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
