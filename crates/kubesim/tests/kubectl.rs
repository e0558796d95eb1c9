//! kubectl against kubesim: what a person types must work on the demo and on the real dump.
//!
//! kubectl must be installed (`.ci/run` installs it); set KUBESIM_SKIP_KUBECTL=1 to skip
//! these tests on a machine without it.

mod common;

#[path = "support/kubectl.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use kubesim::{ServerConfig, Snapshot};
use support::{Kubectl, available as kubectl_available};

fn first_pod(table: &str, prefix: &str) -> String {
    table
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|n| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no pod {prefix}* in\n{table}"))
        .to_string()
}

#[tokio::test]
async fn kubectl_reads_the_demo_cluster() {
    if !kubectl_available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let all = k.ok(&["get", "pods", "-A"]).await;
    let header: Vec<&str> = all.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    for status in ["CrashLoopBackOff", "ImagePullBackOff", "Pending", "Running"] {
        assert!(all.contains(status), "{status} missing:\n{all}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "pods", "-n", "shop", "-o", "json"]).await).unwrap();
    assert!(json["items"].as_array().unwrap().len() >= 10);
    let wide = k.ok(&["get", "nodes", "-o", "wide"]).await;
    assert!(
        wide.contains("INTERNAL-IP") && wide.contains("demo-worker2"),
        "{wide}"
    );
    let deploys = k.ok(&["get", "deploy", "-n", "shop"]).await;
    assert!(deploys.contains("recommendations   0/2"), "{deploys}");
    let svc = k.ok(&["get", "svc", "-n", "shop", "checkout"]).await;
    assert!(svc.contains("8080/TCP"), "{svc}");

    let payments = k.ok(&["get", "pods", "-n", "payments"]).await;
    let api = first_pod(&payments, "payments-api");
    let logs = k.ok(&["logs", "-n", "payments", &api]).await;
    assert!(logs.contains("PAYMENTS_DB_URL is not set"), "{logs}");
    let previous = k
        .ok(&["logs", "-n", "payments", &api, "--previous", "--tail=1"])
        .await;
    assert_eq!(previous.lines().count(), 1);

    let events = k
        .ok(&[
            "get",
            "events",
            "-n",
            "ml",
            "--field-selector",
            "type=Warning",
        ])
        .await;
    assert!(
        events.contains("FailedScheduling") && events.contains("Insufficient cpu"),
        "{events}"
    );
    let ml = k.ok(&["get", "pods", "-n", "ml"]).await;
    let trainer = first_pod(&ml, "model-trainer");
    let described = k.ok(&["describe", "pod", "-n", "ml", &trainer]).await;
    assert!(
        described.contains("Status:           Pending") || described.contains("Pending"),
        "{described}"
    );
    assert!(
        described.contains("FailedScheduling"),
        "describe shows the pod's events:\n{described}"
    );
    let top = k.ok(&["top", "pods", "-n", "data"]).await;
    assert!(top.contains("251Mi"), "{top}");
}

#[tokio::test]
async fn kubectl_changes_objects_in_memory() {
    if !kubectl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let config = ServerConfig {
        request_log: Some(log.clone()),
        ..Default::default()
    };
    let k = Kubectl::serve(kubesim::demo::snapshot(), config).await;
    k.ok(&["scale", "deployment", "cart", "-n", "shop", "--replicas=5"])
        .await;
    let d = k
        .ok(&[
            "get",
            "deployment",
            "cart",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(d, "5");
    k.ok(&[
        "create",
        "configmap",
        "flags",
        "-n",
        "shop",
        "--from-literal=beta=on",
    ])
    .await;
    k.ok(&["label", "configmap", "flags", "-n", "shop", "tier=web"])
        .await;
    let labelled = k
        .ok(&["get", "cm", "-n", "shop", "-l", "tier=web", "-o", "name"])
        .await;
    assert_eq!(labelled.trim(), "configmap/flags");
    k.ok(&["delete", "configmap", "flags", "-n", "shop"]).await;
    let (ok, _, err) = k.run(&["get", "configmap", "flags", "-n", "shop"]).await;
    assert!(!ok && err.contains("NotFound"), "{err}");
    let requests = std::fs::read_to_string(&log).unwrap();
    let methods: Vec<String> = requests
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["method"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for m in ["GET", "PATCH", "POST", "DELETE"] {
        assert!(
            methods.iter().any(|x| x == m),
            "{m} not logged: {methods:?}"
        );
    }
    assert!(requests.contains("kubectl"), "the user agent is recorded");
}

#[tokio::test]
async fn kubectl_reads_the_real_dump() {
    if !kubectl_available() {
        return;
    }
    let dump: &Path = &common::real_dump();
    let k = Kubectl::serve(
        Snapshot::load(dump, &Default::default()).unwrap(),
        ServerConfig::default(),
    )
    .await;
    let pods = k.ok(&["get", "pods", "-n", "kube-system"]).await;
    let autoscaler = pods
        .lines()
        .find(|l| l.starts_with("coredns-autoscaler"))
        .expect("autoscaler listed");
    assert!(
        autoscaler.contains("CrashLoopBackOff") && autoscaler.contains("1569"),
        "{autoscaler}"
    );
    let tunnelfront = first_pod(&pods, "tunnelfront");
    let described = k
        .ok(&["describe", "pod", "-n", "kube-system", &tunnelfront])
        .await;
    assert!(described.contains("Exit Code:    137"), "{described}");
    assert!(described.contains("Reason:       Error"), "{described}");
    let (ok, _, err) = k
        .run(&[
            "logs",
            "-n",
            "kube-system",
            &first_pod(&pods, "coredns-698c77c5d7"),
        ])
        .await;
    assert!(
        !ok && err.contains("the capture recorded this error"),
        "{err}"
    );
    let events = k
        .ok(&[
            "get",
            "events",
            "-n",
            "kube-system",
            "--field-selector",
            "reason=Unhealthy",
        ])
        .await;
    assert!(events.contains("Liveness probe failed"), "{events}");
    let nodes = k.ok(&["get", "nodes"]).await;
    assert!(
        nodes.contains("aks-nodepool1-28869405-vmss000000"),
        "{nodes}"
    );
}

#[tokio::test]
async fn kubectl_watch_sees_changes() {
    if !kubectl_available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let kubeconfig = k.kubeconfig.clone();
    let watcher = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .args([
                "get",
                "configmaps",
                "-n",
                "shop",
                "--watch",
                "--request-timeout=4s",
            ])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("kubectl runs")
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    k.ok(&[
        "create",
        "configmap",
        "watched",
        "-n",
        "shop",
        "--from-literal=a=b",
    ])
    .await;
    let out = watcher.await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("watched"),
        "watch output: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
