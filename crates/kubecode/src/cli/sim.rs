//! `kubecode sim`: serve a snapshot over HTTPS as a Kubernetes API server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use kubesim::{FaultRule, ForbidRule, GenerateSpec, LoadOptions, ServerConfig, Snapshot};

/// Arguments of `kubecode sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Snapshot directory: manifests (*.yaml, *.json, logs/NS/POD/CONTAINER.log) or a
    /// `kubectl cluster-info dump --output-directory`.
    #[arg(required_unless_present_any = ["demo", "generate"], conflicts_with_all = ["demo", "generate"])]
    snapshot: Option<PathBuf>,
    /// Serve the embedded demo cluster.
    #[arg(long, conflicts_with = "generate")]
    demo: bool,
    /// Serve a generated cluster, e.g. `pods=10000,namespaces=50,broken=20`.
    #[arg(long, value_name = "SPEC")]
    generate: Option<String>,
    /// Seed for `--generate` (same seed, same cluster).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Write a kubeconfig for the server here once it answers.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Append one JSON line per request (method, path, query, userAgent, status) to FILE.
    #[arg(long, value_name = "FILE")]
    request_log: Option<PathBuf>,
    /// The snapshot's clock (RFC 3339); by default its newest timestamp.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// Skip malformed snapshot files with a warning instead of refusing to start.
    #[arg(long)]
    lenient: bool,
    /// Inject a fault: latency=250ms | error=RATE[,status=503] | throttle=RATE[,retry-after=S] |
    /// drop=RATE; options count=N and path=REGEX (last). Repeatable.
    #[arg(long, value_name = "RULE")]
    fault: Vec<String>,
    /// Seed deciding which requests faults hit.
    #[arg(long, default_value_t = 1)]
    fault_seed: u64,
    /// Answer 403 Forbidden for RESOURCE[.GROUP][/SUBRESOURCE][:VERB], e.g. `secrets`. Repeatable.
    #[arg(long, value_name = "RULE")]
    forbid: Vec<String>,
    /// Users, tokens and RBAC rules (YAML: tokenUser, tokens, rules of subjects, verbs,
    /// resources, namespaces); requests no rule allows get 403. Without it all is allowed.
    #[arg(long, value_name = "FILE")]
    rbac: Option<PathBuf>,
    /// Milliseconds before pods the simulated controllers create are Running and Ready
    /// (0: at once).
    #[arg(long, value_name = "MS", default_value_t = 500)]
    ready_after_ms: u64,
    /// Bearer token clients must send (random by default).
    #[arg(long, env = "KUBESIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn load(args: &SimArgs) -> anyhow::Result<Snapshot> {
    let now = match &args.now {
        Some(s) => Some(kubesim::snapshot::parse_time(s).with_context(|| {
            format!("--now {s:?} is not an RFC 3339 time such as 2024-01-02T03:04:05Z")
        })?),
        None => None,
    };
    let mut snapshot = if args.demo {
        kubesim::demo::snapshot()
    } else if let Some(spec) = &args.generate {
        let spec = GenerateSpec::parse(spec, args.seed).map_err(anyhow::Error::msg)?;
        kubesim::generate::generate(&spec)
    } else {
        let Some(dir) = &args.snapshot else {
            bail!("name a snapshot directory, or use --demo or --generate");
        };
        let options = LoadOptions {
            lenient: args.lenient,
            now,
        };
        Snapshot::load(dir, &options).map_err(|e| {
            anyhow::anyhow!(
                "{e}\n(the snapshot was not served; fix the file, or pass --lenient to skip it)"
            )
        })?
    };
    if let Some(now) = now {
        snapshot.now = now;
    }
    for warning in &snapshot.warnings {
        tracing::warn!("{warning}");
    }
    Ok(snapshot)
}

/// Runs the server until interrupted.
pub async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let faults = args
        .fault
        .iter()
        .map(|f| FaultRule::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let forbid = args
        .forbid
        .iter()
        .map(|f| ForbidRule::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let rbac = match &args.rbac {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the RBAC file {}", path.display()))?;
            Some(
                kubesim::Rbac::from_yaml(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let snapshot = load(&args)?;
    let objects = snapshot.objects.len();
    let config = ServerConfig {
        addr: Some(args.addr),
        token: args.token.clone(),
        request_log: args.request_log.clone(),
        faults,
        fault_seed: args.fault_seed,
        forbid,
        rbac,
        ready_after: Some(std::time::Duration::from_millis(args.ready_after_ms)),
    };
    let server = kubesim::serve(snapshot, config).await?;
    if let Some(path) = &args.kubeconfig {
        server
            .write_kubeconfig(path)
            .with_context(|| format!("cannot write the kubeconfig to {}", path.display()))?;
    }
    tracing::info!(
        "kubesim serving {objects} objects at {}{}",
        server.url(),
        args.kubeconfig
            .as_ref()
            .map(|p| format!("; kubeconfig: {}", p.display()))
            .unwrap_or_default()
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await
}
