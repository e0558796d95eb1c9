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
    #[arg(long, value_name = "FILE", conflicts_with_all = ["oauth_issuer", "auth_config"])]
    auth_token_file: Option<PathBuf>,
    /// OAuth: the authorization server whose JWT access tokens are accepted (their `iss`).
    #[arg(long, value_name = "URL")]
    oauth_issuer: Option<String>,
    /// OAuth: this server's resource URL, which tokens must name as audience
    /// (e.g. https://kubecode.example.com/mcp).
    #[arg(long, value_name = "URL")]
    oauth_audience: Option<String>,
    /// OAuth: the issuer's JWKS URL (default: the jwks_uri of its metadata).
    #[arg(long, value_name = "URL")]
    oauth_jwks_url: Option<String>,
    /// OAuth: the claim naming the person (default sub).
    #[arg(long, value_name = "CLAIM")]
    oauth_user_claim: Option<String>,
    /// OAuth: the claim listing the person's groups (default groups).
    #[arg(long, value_name = "CLAIM")]
    oauth_groups_claim: Option<String>,
    /// OAuth: act as the server's own account instead of impersonating each person.
    #[arg(long)]
    oauth_no_impersonation: bool,
    /// OAuth settings as YAML (`oauth:` with issuer, audience, jwks_url, user_claim,
    /// groups_claim, user_prefix, group_prefix, read_scope, change_scope, ...); flags override it.
    #[arg(long, value_name = "FILE")]
    auth_config: Option<PathBuf>,
    /// Listen beyond loopback without a token (only behind an authenticating proxy).
    #[arg(long)]
    allow_unauthenticated: bool,
    /// HTTP without sessions: every request is served on its own (no `state` or stable
    /// Secret tokens across calls). 2026-07-28 requests are served this way in any case.
    #[arg(long)]
    stateless: bool,
    /// Also accept this name (or NAME:PORT) in the HTTP Host header, for instance the
    /// Service's DNS name in a cluster (repeatable; loopback names are always accepted).
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Append one JSON line per tool call, run, plan and decision to FILE (`-`: standard
    /// output, HTTP transport only).
    #[arg(long, value_name = "FILE|-")]
    audit_log: Option<PathBuf>,
    /// Offer the change functions and apply_plan: changes are planned by dry run and sent
    /// only after a person approves the plan (MCP elicitation).
    #[arg(long)]
    allow_changes: bool,
    /// Seconds a change plan can be applied after it was made.
    #[arg(long, value_name = "SECONDS", default_value = "600", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    plan_expiry: u64,
    /// Where a person's browser reaches this server (for instance behind an Ingress), for
    /// the one-time approval pages of plans; default: the HTTP address, or a loopback
    /// listener under stdio.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Replicas: file holding the key every replica shares (at least 32 random bytes, from a
    /// Kubernetes Secret). Session ids are sealed with it and Secret tokens derived from it.
    /// Needs --redis-url.
    #[arg(long, value_name = "FILE", requires = "redis_url")]
    shared_key_file: Option<PathBuf>,
    /// Replicas: the Redis that holds sessions and their `state` (redis://HOST:PORT/DB, or
    /// rediss:// for TLS). Needs --shared-key-file.
    #[arg(
        long,
        env = "KUBECODE_REDIS_URL",
        value_name = "URL",
        requires = "shared_key_file"
    )]
    redis_url: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Runs the server until the client (stdio) or the process (HTTP) stops.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mode: Mode = args.mode.parse().map_err(anyhow::Error::msg)?;
    if args.stateless && args.transport != Transport::Http {
        bail!("--stateless is an HTTP mode: add --transport http (stdio is always one session)");
    }
    let replicas = match (&args.shared_key_file, &args.redis_url) {
        (Some(key_file), Some(url)) => {
            if args.transport != Transport::Http || args.stateless {
                bail!(
                    "--shared-key-file and --redis-url are for replicas of an HTTP server with sessions: add --transport http (and drop --stateless, which keeps no sessions to share)"
                );
            }
            let key = std::fs::read(key_file).with_context(|| {
                format!(
                    "cannot read the shared key file {} (replicas need the same key file, from one Kubernetes Secret, and --redis-url)",
                    key_file.display()
                )
            })?;
            Some(
                server::Replicas::connect(&key, url)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot start as a replica (key file {})",
                            key_file.display()
                        )
                    })?,
            )
        }
        (None, None) => None,
        // clap's `requires` refuses one without the other.
        _ => bail!(
            "replicas need both --shared-key-file FILE (the key they share) and --redis-url URL (the Redis that holds their sessions)"
        ),
    };
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
    let oauth = oauth_config(&args)?;
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
        isolation: args.limits.isolation(warm, args.allow_changes)?,
        allow_changes: args.allow_changes,
        plan_ttl: std::time::Duration::from_secs(args.plan_expiry),
        public_url: match &args.public_url {
            Some(url) => {
                server::ApprovalPages::check_base(url)
                    .map_err(|e| anyhow::anyhow!("--public-url {url}: {e}"))?;
                Some(url.clone())
            }
            None => None,
        },
    };
    let connection = Connection::open(&target, options).await?;
    let shared = connection.server.clone();
    match args.transport {
        Transport::Stdio => server::serve_stdio(shared).await?,
        Transport::Http => {
            let options = HttpOptions {
                addr: args.addr,
                token,
                oauth,
                allow_unauthenticated: args.allow_unauthenticated,
                stateless: args.stateless,
                allowed_hosts: args.allowed_hosts.clone(),
                replicas,
            };
            server::serve_http(shared, options, |addr| {
                tracing::info!("kubecode MCP server listening on http://{addr}/mcp");
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The OAuth settings from `--auth-config` and the `--oauth-*` flags (flags win); none when
/// neither asks for OAuth.
fn oauth_config(args: &ServeArgs) -> anyhow::Result<Option<server::OAuthConfig>> {
    let mut config = match &args.auth_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the auth config {}", path.display()))?;
            server::OAuthConfig::from_yaml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => None,
    };
    let flags = args.oauth_issuer.is_some()
        || args.oauth_audience.is_some()
        || args.oauth_jwks_url.is_some()
        || args.oauth_user_claim.is_some()
        || args.oauth_groups_claim.is_some()
        || args.oauth_no_impersonation;
    if config.is_none() && !flags {
        return Ok(None);
    }
    let c = config.get_or_insert_with(server::OAuthConfig::default);
    let set = |slot: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            *slot = v.clone();
        }
    };
    set(&mut c.issuer, &args.oauth_issuer);
    set(&mut c.audience, &args.oauth_audience);
    set(&mut c.user_claim, &args.oauth_user_claim);
    set(&mut c.groups_claim, &args.oauth_groups_claim);
    if args.oauth_jwks_url.is_some() {
        c.jwks_url = args.oauth_jwks_url.clone();
    }
    if args.oauth_no_impersonation {
        c.impersonate = false;
    }
    c.check().map_err(anyhow::Error::msg)?;
    if args.transport != Transport::Http {
        bail!("OAuth applies to --transport http; stdio has one local caller");
    }
    Ok(config)
}
