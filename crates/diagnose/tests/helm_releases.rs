//! helmDrift on releases real Helm v4 wrote: the helm-python-sdk package (Helm's own Go SDK,
//! installed by scripts/install-test-deps) installs, upgrades and rolls back a chart in
//! kubesim; then a person changes the live objects with kubectl, and helmDrift names what
//! changed and who changed it, reading Helm's own release Secrets.
//!
//! Skips (with a message) only when Python is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use cluster::{Cluster, Limits};
use diagnose::HelmDriftQuery;
use kubesim::ServerConfig;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's interpreter (scripts/install-test-deps makes it), or None when there is no
/// Python at all.
fn helm_python() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 is not installed; this test needs helm-python-sdk");
        return None;
    }
    let venv = std::env::var_os("KUBESIM_HELM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/helm-venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps",
        python.display()
    );
    Some(python)
}

fn kubectl(kubeconfig: &Path, args: &[&str]) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs (scripts/install-test-deps installs it)");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// kubectl blocks its thread while kubesim answers it on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_drift_reads_the_releases_helm_wrote() {
    let Some(python) = helm_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = kubesim::serve(kubesim::demo::snapshot(), ServerConfig::default())
        .await
        .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let fixtures = repo().join("crates/kubesim/tests/fixtures/helm");
    let (kc, home) = (kubeconfig.clone(), dir.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(fixtures.join("helm_release.py"))
            .arg(&kc)
            .arg(fixtures.join("shop"))
            .args(["shop", "web"])
            .current_dir(std::env::temp_dir())
            .env("HOME", &home)
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "helm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = Cluster::from_kubeconfig_yaml(&server.kubeconfig(), None, Limits::default()).unwrap();
    let q = HelmDriftQuery {
        name: "web".into(),
        namespace: Some("shop".into()),
        ..Default::default()
    };

    // Right after Helm's rollback the live objects are what revision 3 says.
    let clean = diagnose::helm_drift(&c, &q).await.unwrap();
    assert!(clean.findings.is_empty(), "{clean:#?}");
    assert!(
        clean.checked.iter().any(|c| c.contains("revision 3")),
        "{:?}",
        clean.checked
    );

    // A person scales the Deployment by hand and deletes the ConfigMap.
    let kc = kubeconfig.as_path();
    kubectl(
        kc,
        &[
            "-n",
            "shop",
            "patch",
            "deployment",
            "web",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ],
    );
    kubectl(kc, &["-n", "shop", "delete", "configmap", "web-config"]);
    let drifted = diagnose::helm_drift(&c, &q).await.unwrap();
    let text = serde_json::to_string(&drifted).unwrap();
    let deployment = drifted
        .findings
        .iter()
        .find(|f| f.object.kind == "Deployment" && f.object.name == "web")
        .unwrap_or_else(|| panic!("no Deployment finding: {text}"));
    let evidence = deployment.evidence.join("\n");
    assert!(
        evidence.contains("spec.replicas: release 1, live 3 (set by kubectl-patch"),
        "{evidence}"
    );
    assert!(
        drifted
            .findings
            .iter()
            .any(|f| f.object.kind == "ConfigMap" && f.problem.starts_with("missing")),
        "{text}"
    );
    drop(server);
}
