//! Logs and honest answers through the call path: `grep` with a label selector selects lines
//! per pod, on the shaped (redacted) text; Helm's list says where it looked; the API's own
//! refusal codes reach the client.

use base64::Engine;
use chrono::{Duration, TimeZone, Utc};
use kubesim::builder::{ClusterBuilder, Failure, Workload};
use serde_json::{Map, Value, json};
use server::{CallEnv, Caller, Mode, Options, ServerState};

/// What the Secret holds, and what the `web` pods print.
const PASSWORD: &str = "Sup3r-s3cret-passw0rd";

fn snapshot() -> kubesim::Snapshot {
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    let mut b = ClusterBuilder::new(now, 7);
    b.add_namespace("shop", Duration::days(30));
    b.add_node("node-1", 4, 16, false);
    let encoded = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    b.add_object(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db", "namespace": "shop"}, "data": {"password": encoded}}),
    );
    let mut web = Workload::deployment("shop", "web", "web:1");
    web.replicas = 3;
    web.healthy_log = vec![
        "request GET /".into(),
        format!("connecting to db with password {PASSWORD}"),
        "request GET /cart".into(),
        "request POST /pay".into(),
    ];
    b.add_workload(&web);
    let mut pending = Workload::deployment("shop", "web-canary", "web:2");
    pending.labels = vec![("tier".into(), "web".into())];
    pending.failure = Some(Failure::Unschedulable {
        message: "0/1 nodes are available: 1 Insufficient cpu.".into(),
    });
    b.add_workload(&pending);
    let mut other = Workload::deployment("shop", "worker", "worker:1");
    other.healthy_log = vec!["request from a queue".into()];
    b.add_workload(&other);
    b.build()
}

fn args(v: Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

async fn tools_session(snapshot: kubesim::Snapshot) -> (kubesim::RunningServer, server::Session) {
    let sim = kubesim::serve(snapshot, kubesim::ServerConfig::default())
        .await
        .expect("kubesim");
    let cluster =
        cluster::Cluster::from_kubeconfig_yaml(&sim.kubeconfig(), None, cluster::Limits::default())
            .expect("cluster");
    let state = ServerState::new(
        cluster,
        Options {
            mode: Mode::Tools,
            ..Options::default()
        },
    );
    let session = state.session(Caller::local());
    (sim, session)
}

async fn call(session: &server::Session, tool: &str, a: Value) -> (bool, Value) {
    let r = session.call_tool(tool, args(a), CallEnv::default()).await;
    (
        r.is_error == Some(true),
        r.structured_content.unwrap_or(Value::Null),
    )
}

async fn text(session: &server::Session, a: Value) -> String {
    let (failed, out) = call(session, "kube_logs", a).await;
    assert!(!failed, "{out}");
    out["text"].as_str().expect("text").to_string()
}

/// The lines of each pod's block, by pod name.
fn blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(pod) = line
            .strip_prefix("==> pod/")
            .and_then(|l| l.strip_suffix(" <=="))
        {
            out.push((pod.to_string(), Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line.to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grep_with_a_label_selector_selects_per_pod_on_shaped_text() {
    let (_sim, s) = tools_session(snapshot()).await;
    // Every pod with an `app` label in `web, web-canary`: three running, one Pending.
    let selector = "app in (web, web-canary)";

    // The plaintext is never there to match: grep runs after redaction.
    let out = text(
        &s,
        json!({"namespace": "shop", "labelSelector": selector, "grep": "Sup3r"}),
    )
    .await;
    assert!(!out.contains(PASSWORD), "{out}");
    let found = blocks(&out);
    assert_eq!(found.len(), 4, "{out}");
    for (pod, lines) in &found[..3] {
        assert_eq!(lines, &["(no matching lines)"], "{pod}: {out}");
    }
    assert!(
        found[3].0.starts_with("web-canary-")
            && found[3].1[0].starts_with("(no log: pod web-canary-")
            && found[3].1[0].contains("does not have a host assigned"),
        "{out}"
    );

    // What the model can read matches: the token that stands for the value.
    let out = text(
        &s,
        json!({"namespace": "shop", "labelSelector": "app=web", "grep": "password \\[secret:"}),
    )
    .await;
    let found = blocks(&out);
    assert_eq!(found.len(), 3, "{out}");
    for (pod, lines) in &found {
        assert!(
            lines.len() == 1 && lines[0].contains("connecting to db with password [secret:"),
            "{pod}: {out}"
        );
    }

    // head, tail and context count each pod's own matches, never another pod's lines.
    let out = text(
        &s,
        json!({"namespace": "shop", "labelSelector": "app=web", "grep": "^request", "head": 1}),
    )
    .await;
    for (pod, lines) in blocks(&out) {
        assert_eq!(lines, ["request GET /"], "{pod}: {out}");
    }
    let out = text(
        &s,
        json!({"namespace": "shop", "labelSelector": "app=web", "grep": "/cart", "context": 1}),
    )
    .await;
    for (pod, lines) in blocks(&out) {
        assert_eq!(lines.len(), 3, "{pod}: {out}");
        assert!(
            lines[0].contains("[secret:") && lines[2] == "request POST /pay",
            "{pod}: {out}"
        );
    }
    assert!(
        out.starts_with("# 3 pods match labelSelector \"app=web\" in namespace shop\n"),
        "{out}"
    );

    // The same arguments' conflicts fail before any request, naming both.
    let (failed, out) = call(
        &s,
        "kube_logs",
        json!({"namespace": "shop", "labelSelector": "app=web", "head": 1, "tailLines": 1}),
    )
    .await;
    assert!(failed);
    assert_eq!(out["error"]["field"], "head", "{out}");
    let (failed, out) = call(
        &s,
        "kube_logs",
        json!({"namespace": "shop", "labelSelector": "app=web", "grep": "(?<=GET )/"}),
    )
    .await;
    assert!(failed);
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no look-around"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_list_says_where_it_looked_and_refusals_keep_the_api_code() {
    let (_sim, s) = tools_session(kubesim::demo::snapshot()).await;
    let (_, out) = call(&s, "helm_list", json!({})).await;
    assert_eq!(
        out,
        json!({"items": [], "count": 0, "namespace": "default"}),
        "the context's namespace, named"
    );
    let (_, out) = call(&s, "helm_list", json!({"namespace": "shop"})).await;
    assert_eq!(
        (out["count"].clone(), out["namespace"].clone()),
        (json!(1), json!("shop"))
    );
    let (_, out) = call(&s, "helm_list", json!({"allNamespaces": true})).await;
    assert_eq!(out["allNamespaces"], true, "{out}");
    assert!(out.get("namespace").is_none(), "{out}");
    let (failed, out) = call(&s, "helm_list", json!({"name": "storefront"})).await;
    assert!(failed, "helm.list takes no name: {out}");

    let (failed, out) = call(
        &s,
        "kube_list",
        json!({"kind": "Pod", "namespace": "shop", "labelSelector": "app in (web"}),
    )
    .await;
    assert!(failed);
    assert_eq!(out["error"]["code"], "BadRequest", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("app in (web"),
        "{out}"
    );
}
