//! Driving the real kubectl against a kubesim server (shared by the OpenAPI and access tests).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use kubesim::{RunningServer, ServerConfig, Snapshot};

/// A server with a kubeconfig file and a private kubectl cache.
pub struct Kubectl {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// Whether kubectl can be run; panics with what to do when it is missing, unless
/// KUBESIM_SKIP_KUBECTL is set.
pub fn available() -> bool {
    if std::env::var_os("KUBESIM_SKIP_KUBECTL").is_some() {
        return false;
    }
    match Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    {
        Ok(o) if o.status.success() => true,
        _ => panic!(
            "kubectl is not installed: run scripts/install-test-deps or set KUBESIM_SKIP_KUBECTL=1"
        ),
    }
}

impl Kubectl {
    pub async fn serve(snapshot: Snapshot, config: ServerConfig) -> Kubectl {
        let server = kubesim::serve(snapshot, config)
            .await
            .expect("server starts");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        Kubectl {
            server,
            dir,
            kubeconfig,
        }
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let kubeconfig = self.kubeconfig.clone();
        let cache = self.dir.path().join("cache");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("kubectl")
                .args(&args)
                .arg("--request-timeout=20s")
                .arg(format!("--cache-dir={}", cache.display()))
                .env("KUBECONFIG", &kubeconfig)
                .output()
                .expect("kubectl runs");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .await
        .unwrap()
    }

    /// Runs kubectl and expects success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }
}
