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

/// The functions and the cluster, plus the demo cluster's server when it runs in-process.
pub struct Connection {
    /// What every session shares.
    pub shared: Arc<server::Shared>,
    _demo: Option<kubesim::RunningServer>,
}

impl Connection {
    /// Connects (lazily: no request is sent until a call needs one).
    pub async fn open(target: &Target, mode: server::Mode) -> anyhow::Result<Connection> {
        Connection::open_with(target, mode, shaping::DEFAULT_OUTPUT_LIMIT).await
    }

    /// Same, with an output limit.
    pub async fn open_with(
        target: &Target,
        mode: server::Mode,
        output_limit: usize,
    ) -> anyhow::Result<Connection> {
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
        let shared = Arc::new(server::Shared {
            catalog: catalog::Catalog::new(),
            cluster,
            mode,
            output_limit,
            limits: sandbox::Limits {
                output: output_limit,
                ..sandbox::Limits::default()
            },
        });
        Ok(Connection {
            shared,
            _demo: demo,
        })
    }
}
