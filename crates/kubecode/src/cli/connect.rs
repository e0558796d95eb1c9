//! Which cluster a command talks to: a kubeconfig and context, or the embedded demo cluster.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

/// `--kubeconfig`, `--context`, `--demo`.
#[derive(Debug, Args)]
pub struct Target {
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Use the embedded demo cluster instead of a real one.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    pub demo: bool,
}

/// The sandbox's limits (CONTRACT §3.4), each settable.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Wall-clock limit of one run_code, in milliseconds (awaits and sleeps included).
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// JavaScript heap of one run, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(4..=4096))]
    pub memory_mib: u64,
    /// Tool calls one run may make.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_calls: u64,
    /// Tool calls of one run in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub max_in_flight: u64,
    /// Characters of output a model receives at most per call (result and logs).
    #[arg(long, value_name = "N", default_value_t = shaping::DEFAULT_OUTPUT_LIMIT)]
    pub output_limit: usize,
    /// Programs running at once across all sessions (more wait, within their wall-clock limit).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_concurrent_runs: u64,
    /// Where programs run: `process` (a confined worker process per run, killed when it
    /// overruns; needs seccomp) or `in-process` (a thread of this process, without those).
    #[arg(long, value_enum, default_value = "process")]
    pub sandbox: SandboxKind,
}

/// Values of `--sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxKind {
    /// A confined worker process per run.
    Process,
    /// A thread of the server process.
    InProcess,
}

/// The isolation of a `--sandbox` choice: a process pool keeping `warm` workers ready (each
/// with a context prepared for the catalog's functions, confined for `limits`), which needs
/// seccomp (refused, with what the alternative gives up, where the kernel lacks it).
pub fn isolation(
    kind: SandboxKind,
    warm: usize,
    limits: &sandbox::Limits,
    allow_changes: bool,
) -> anyhow::Result<server::Isolation> {
    match kind {
        SandboxKind::InProcess => {
            tracing::warn!("{IN_PROCESS}");
            Ok(server::Isolation::InProcess)
        }
        SandboxKind::Process => {
            if !sandbox::seccomp_supported() {
                anyhow::bail!(
                    "this kernel does not offer seccomp, which sandbox processes need; pass --sandbox in-process to run programs inside the server process instead ({IN_PROCESS})"
                );
            }
            // The worker offers exactly the server's functions.
            let catalog = if allow_changes {
                catalog::Catalog::with_changes()
            } else {
                catalog::Catalog::new()
            };
            let options = sandbox::worker::Options {
                functions: catalog
                    .functions()
                    .iter()
                    .map(|f| f.path.to_string())
                    .collect(),
                memory: limits.memory,
                wall_ms: limits.wall.as_millis() as u64,
            };
            let mut args = vec![crate::WORKER_COMMAND.to_string()];
            args.extend(options.to_args());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let command = sandbox::WorkerCommand::current_exe(&args)?;
            let pool = sandbox::Pool::new(command, warm);
            pool.fill();
            Ok(server::Isolation::Process(pool))
        }
    }
}

/// What `--sandbox in-process` gives up, said when the server starts that way.
const IN_PROCESS: &str = "--sandbox in-process: programs run on threads of this process, with no system-call filter between an interpreter bug and the cluster credentials, and a program stuck in a built-in keeps its thread busy after its time limit";

impl LimitArgs {
    /// Where programs run, checked against this kernel; `warm` workers are kept ready.
    pub fn isolation(&self, warm: usize, allow_changes: bool) -> anyhow::Result<server::Isolation> {
        isolation(self.sandbox, warm, &self.limits(), allow_changes)
    }

    /// The limits these flags set.
    pub fn limits(&self) -> sandbox::Limits {
        sandbox::Limits {
            wall: std::time::Duration::from_millis(self.timeout_ms),
            memory: (self.memory_mib as usize) * 1024 * 1024,
            calls: self.max_calls as usize,
            in_flight: self.max_in_flight as usize,
            output: self.output_limit,
            ..sandbox::Limits::default()
        }
    }
}

/// The server's state, plus the demo cluster's server when it runs in-process.
pub struct Connection {
    /// What every session shares.
    pub server: Arc<server::ServerState>,
    _demo: Option<kubesim::RunningServer>,
}

impl Connection {
    /// Connects (lazily: no request is sent until a call needs one).
    pub async fn open(target: &Target, options: server::Options) -> anyhow::Result<Connection> {
        let limits = cluster::Limits::default();
        let (cluster, demo) = if target.demo {
            let sim =
                kubesim::serve(kubesim::demo::snapshot(), kubesim::ServerConfig::default()).await?;
            (
                cluster::Cluster::from_kubeconfig_yaml(&sim.kubeconfig(), None, limits)?,
                Some(sim),
            )
        } else {
            (
                cluster::Cluster::new(
                    target.kubeconfig.as_deref(),
                    target.context.as_deref(),
                    limits,
                )?,
                None,
            )
        };
        Ok(Connection {
            server: server::ServerState::new(cluster, options),
            _demo: demo,
        })
    }
}
