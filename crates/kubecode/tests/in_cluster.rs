//! In-cluster credentials, as a pod has them: `kubecode serve` runs in a private mount
//! namespace (`unshare --mount --map-root-user`) where a tmpfs over /run holds the service
//! account's token, CA certificate and namespace at the fixed path
//! /var/run/secrets/kubernetes.io/serviceaccount/, with `KUBERNETES_SERVICE_HOST`/`PORT`
//! pointing at kubesim, no kubeconfig and an empty HOME. kubecode's own resolution
//! (`cluster::kubeconfig::resolve`: no --kubeconfig, no KUBECONFIG, no ~/.kube/config, so the
//! service account) picks it, and kube-rs reads the files; kubesim accepts only the
//! service account's bearer token. The root file system is read-only, as in the chart's pod,
//! and the program runs in a sandbox worker process as usual. An MCP client session (rmcp over stdio) then reads the
//! cluster. A wrong token in the same place is refused, so the token is what authenticates.
//!
//! Skips with the reason when user namespaces are not available.

use std::path::Path;
use std::process::Stdio;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// A service-account token as the kubelet projects it: a JWT (kubesim compares bearer tokens
/// as strings; it does not check the signature).
const SA_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imt1YmVzaW0ifQ.eyJpc3MiOiJodHRwczovL2t1YmVybmV0ZXMuZGVmYXVsdC5zdmMiLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZWNvZGU6a3ViZWNvZGUifQ.c2lnbmF0dXJlLW5vdC1jaGVja2Vk";

/// Mounts a tmpfs over /run (/var/run points there), puts the service-account files at the
/// path kube-rs reads, makes the root file system read-only with a fresh tmpfs at /tmp (as
/// the chart's pod has it: readOnlyRootFilesystem and an emptyDir), and becomes kubecode.
const POD_SCRIPT: &str = r#"set -eu
run=$(readlink -f /var/run)
mount -t tmpfs -o mode=0755 tmpfs "$run"
sa=/var/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$sa"
cp "$SA_FILES/token" "$SA_FILES/ca.crt" "$SA_FILES/namespace" "$sa/"
# The binary may live under /tmp (a checkout there), which the pod's own /tmp hides below.
touch "$run/kubecode"
mount --bind "$KUBECODE" "$run/kubecode"
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777 tmpfs /tmp
if touch /kubecode-write-probe 2>/dev/null; then echo "the root file system is writable" >&2; exit 3; fi
exec "$run/kubecode" serve --mode code
"#;

/// Why user namespaces cannot be used here, if they cannot.
fn unshare_unavailable() -> Option<String> {
    match std::process::Command::new("unshare")
        .args(["--mount", "--map-root-user", "true"])
        .output()
    {
        Err(e) => Some(format!("unshare cannot run: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "unshare --mount --map-root-user fails: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

type Session = RunningService<RoleClient, ()>;

/// `kubecode serve` as a pod would run it, its service-account files taken from `files`.
async fn pod(files: &Path, home: &Path, server: &kubesim::RunningServer) -> Session {
    let command = tokio::process::Command::new("unshare").configure(|cmd| {
        cmd.args(["--mount", "--map-root-user", "sh", "-c", POD_SCRIPT])
            .env_remove("KUBECONFIG")
            .env("HOME", home)
            .env("KUBERNETES_SERVICE_HOST", server.addr().ip().to_string())
            .env("KUBERNETES_SERVICE_PORT", server.addr().port().to_string())
            .env("SA_FILES", files)
            .env("KUBECODE", env!("CARGO_BIN_EXE_kubecode"));
    });
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare starts");
    ().serve(transport).await.expect("MCP session")
}

async fn run_code(s: &Session, code: &str) -> Value {
    let Value::Object(args) = json!({"code": code, "timeoutMs": 20000}) else {
        unreachable!()
    };
    let r: CallToolResult = s
        .call_tool(CallToolRequestParams::new("run_code").with_arguments(args))
        .await
        .expect("run_code answered");
    r.structured_content.expect("structuredContent")
}

fn service_account_files(dir: &Path, token: &str, ca: &str) -> std::path::PathBuf {
    let files = dir.join("serviceaccount");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("token"), token).unwrap();
    std::fs::write(files.join("ca.crt"), ca).unwrap();
    // The pod's namespace: what calls that name none use.
    std::fs::write(files.join("namespace"), "payments").unwrap();
    files
}

const PROGRAM: &str = r#"
const contexts = await tools.kubernetes.contexts();
const pods = await tools.kubernetes.list({ kind: "Pod", fields: ["metadata.name"] });
return { contexts, pods: pods.map((p) => p.metadata.namespace + "/" + p.metadata.name).sort() };
"#;

// kubesim serves from this process while the session waits: more than one worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reaches_the_cluster_with_the_pods_service_account() {
    if let Some(why) = unshare_unavailable() {
        eprintln!("SKIPPED: {why}; the in-cluster test needs a private mount namespace");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let server = kubesim::serve(
        kubesim::demo::snapshot(),
        kubesim::ServerConfig {
            token: Some(SA_TOKEN.to_string()),
            request_log: Some(log.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let files = service_account_files(dir.path(), SA_TOKEN, server.ca_pem());

    // What kubesim holds in the pod's namespace, read with the test's own client.
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "payments");
    let mut expected: Vec<String> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| format!("payments/{}", p.metadata.name.unwrap()))
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    std::fs::write(&log, "").unwrap();

    let session = pod(&files, &home, &server).await;
    let out = run_code(&session, PROGRAM).await;
    session.cancel().await.unwrap();
    assert_eq!(out["ok"], true, "{out}");
    // kubecode chose the service account (its one context), and the pod's namespace.
    assert_eq!(
        out["result"]["contexts"],
        json!([{"name": "in-cluster", "cluster": "in-cluster", "current": true}])
    );
    assert_eq!(out["result"]["pods"], json!(expected));
    let requests: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed = requests
        .iter()
        .find(|r| r["path"] == "/api/v1/namespaces/payments/pods")
        .unwrap_or_else(|| panic!("kubecode never listed the pods: {requests:?}"));
    assert_eq!(listed["status"], 200);
    assert!(
        listed["userAgent"]
            .as_str()
            .unwrap()
            .starts_with("kubecode/"),
        "{listed}"
    );

    // The same pod with another token at the same path: kubesim refuses it, and the program
    // says so (so the token above is what let kubecode in).
    let wrong = dir.path().join("wrong");
    let files = service_account_files(&wrong, "not-the-service-account-token", server.ca_pem());
    let session = pod(&files, &home, &server).await;
    let out = run_code(&session, PROGRAM).await;
    session.cancel().await.unwrap();
    assert_eq!(out["ok"], false, "{out}");
    let error = out["error"].to_string();
    assert!(
        error.contains("401") || error.contains("Unauthorized"),
        "{error}"
    );
    drop(server);
}
