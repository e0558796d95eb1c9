//! Real Helm v4 against kubesim: the helm-python-sdk package embeds Helm's own Go SDK
//! (`libhelm_c`), installed by `scripts/install-test-deps` into a venv under `target/`.
//! Helm lints and renders a small chart, installs it (server-side apply, Helm v4's default),
//! upgrades it with a changed value and rolls it back; the test then reads back what kubesim
//! holds: the release Secrets and the objects.
//!
//! Skips (with a message) only when Python is missing; a missing venv is an error that says
//! to run scripts/install-test-deps.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, ListParams};
use kubesim::ServerConfig;
use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/helm")
}

/// The venv's interpreter, or None (with a message) when there is no Python at all.
fn helm_python() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 is not installed; the Helm v4 test needs it (helm-python-sdk)");
        return None;
    }
    let venv = std::env::var_os("KUBESIM_HELM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/helm-venv"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} has no helm-python-sdk: run scripts/install-test-deps (it creates the venv), or set KUBESIM_HELM_VENV",
        venv.display()
    );
    Some(python)
}

#[tokio::test]
async fn helm_installs_upgrades_and_rolls_back_a_chart() {
    let Some(python) = helm_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let config = ServerConfig {
        request_log: Some(log.clone()),
        ..Default::default()
    };
    let (server, client) = common::serve_with(kubesim::demo::snapshot(), config).await;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let started = std::time::Instant::now();
    let home = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(fixtures().join("helm_release.py"))
            .arg(&kubeconfig)
            .arg(fixtures().join("shop"))
            .args(["shop", "web"])
            .current_dir(std::env::temp_dir())
            .env("HOME", &home)
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helm failed:\n{stdout}\n{stderr}");
    eprintln!(
        "helm lint, render, install, upgrade, rollback: {:?}",
        started.elapsed()
    );
    let steps: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no {name} step in\n{stdout}"))
            .clone()
    };
    assert!(step("versions")["sdk"].as_str().unwrap().starts_with("v4."));
    assert_eq!(step("lint")["result"]["errors"], serde_json::json!([]));
    assert!(
        step("render")["configmap"]
            .as_str()
            .unwrap()
            .contains("greeting: \"rendered\"")
    );
    assert_eq!(step("install")["status"], "deployed");
    assert_eq!(step("upgrade")["revision"], 2);
    let rollback = step("rollback");
    assert_eq!(
        rollback["history"],
        serde_json::json!([[1, "superseded"], [2, "superseded"], [3, "deployed"]])
    );
    assert_eq!(rollback["values"], serde_json::json!({"greeting": "hello"}));

    // What Helm wrote, read back from kubesim.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "shop");
    let releases = secrets
        .list(&ListParams::default().labels("owner=helm,name=web"))
        .await
        .unwrap();
    let mut names: Vec<String> = releases
        .items
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "sh.helm.release.v1.web.v1",
            "sh.helm.release.v1.web.v2",
            "sh.helm.release.v1.web.v3"
        ]
    );
    let v2 = secrets.get("sh.helm.release.v1.web.v2").await.unwrap();
    assert_eq!(v2.type_.as_deref(), Some("helm.sh/release.v1"));
    let label = |s: &Secret, k: &str| s.metadata.labels.as_ref().unwrap()[k].clone();
    assert_eq!(label(&v2, "status"), "superseded");
    let v3 = secrets.get("sh.helm.release.v1.web.v3").await.unwrap();
    assert_eq!(label(&v3, "status"), "deployed");
    // The release record (gzip'd JSON, base64'd inside the Secret's data) of revision 2
    // holds the upgrade's values and manifest.
    let record = release_record(&v2);
    assert_eq!(record["config"]["greeting"], "upgraded");
    assert!(
        record["manifest"]
            .as_str()
            .unwrap()
            .contains("greeting: \"upgraded\"")
    );

    // The objects are back at revision 1's values after the rollback; each went through
    // three applies (generation counts spec changes of the Deployment: 1, 2 replicas, 1).
    let cm: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    let cm = cm.get("web-config").await.unwrap();
    assert_eq!(cm.data.as_ref().unwrap()["greeting"], "hello");
    let managed = cm.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.spec.replicas, Some(1));
    assert_eq!(d.metadata.generation, Some(3));
    // Helm v4 applied server-side (PATCH with a field manager) and kept its releases in
    // Secrets it wrote with client-go's protobuf encoding.
    let requests = std::fs::read_to_string(&log).unwrap();
    assert!(
        requests.lines().any(|l| l.contains("\"PATCH\"")
            && l.contains("/deployments/web")
            && l.contains("fieldManager=")),
        "{requests}"
    );
    let services: Api<Service> = Api::namespaced(client, "shop");
    let svc = services.get("web").await.unwrap();
    let port = &svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!(port.port, 80);
    drop(server);
}

/// Decodes Helm's release record: base64 (the Secret's encoding of the value), of base64
/// (Helm's), of gzip, of JSON.
fn release_record(secret: &Secret) -> Value {
    use base64::Engine;
    use std::io::Read;
    let data = &secret.data.as_ref().unwrap()["release"].0;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut json)
        .unwrap();
    serde_json::from_str(&json).unwrap()
}
