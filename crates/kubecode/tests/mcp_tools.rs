//! Tools mode through a real MCP client session (rmcp's client over stdio to the kubecode
//! binary), against kubesim over HTTPS: every tool, the errors, secrets, truncation, and
//! the proof that only GETs reach the cluster.

use std::path::Path;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

type Session = RunningService<RoleClient, ()>;

async fn session(args: &[&str]) -> Session {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubecode")).configure(|cmd| {
        cmd.arg("serve").arg("--mode").arg("tools").args(&args);
    });
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubecode starts");
    ().serve(transport).await.expect("MCP session")
}

async fn demo() -> Session {
    session(&["--demo"]).await
}

async fn call(s: &Session, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(map) = args.clone() else {
        panic!("arguments must be an object")
    };
    let r = s
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"));
    // What a strict client (the official Python SDK) checks: a result conforms to the
    // tool's own outputSchema, whatever the arguments asked for.
    if r.is_error != Some(true)
        && let Some(content) = &r.structured_content
    {
        let tools = s.list_all_tools().await.unwrap();
        let schema = tools
            .iter()
            .find(|t| t.name == tool)
            .and_then(|t| t.output_schema.clone())
            .unwrap_or_else(|| panic!("{tool} has no outputSchema"));
        let validator = jsonschema::validator_for(&Value::Object((*schema).clone()))
            .unwrap_or_else(|e| panic!("{tool}'s outputSchema does not compile: {e}"));
        if let Err(e) = validator.validate(content) {
            panic!("{tool} {args}: the result does not conform to the outputSchema: {e}");
        }
    }
    r
}

fn structured(r: &CallToolResult) -> &Value {
    assert_ne!(r.is_error, Some(true), "unexpected error: {:?}", r.content);
    r.structured_content.as_ref().expect("structuredContent")
}

fn error(r: &CallToolResult) -> (String, String) {
    assert_eq!(
        r.is_error,
        Some(true),
        "expected an error: {:?}",
        r.structured_content
    );
    let e = &r.structured_content.as_ref().expect("structured error")["error"];
    (
        e["code"].as_str().unwrap().to_string(),
        e["message"].as_str().unwrap().to_string(),
    )
}

/// The whole wire answer, for leak checks.
fn everything(r: &CallToolResult) -> String {
    serde_json::to_string(r).unwrap()
}

fn assert_no_secret(text: &str) {
    let plain = kubesim::demo::SECRET_PASSWORD;
    assert!(!text.contains(plain), "the Secret's plaintext leaked");
    for encoded in ["U3VwM3ItUzNjcmV0LVBhc3N3MHJkIQ==", "cGF5bWVudHM6U3VwM3Iy"] {
        assert!(!text.contains(encoded), "the Secret's base64 leaked");
    }
}

#[tokio::test]
async fn the_server_announces_itself_and_its_tools() {
    let s = demo().await;
    let info = s.peer_info().expect("initialize result");
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "kubecode");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    let tools = s.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "diagnose_helm_drift",
            "diagnose_nodes",
            "diagnose_pods",
            "diagnose_service",
            "diagnose_workload",
            "helm_get",
            "helm_history",
            "helm_list",
            "kube_api_resources",
            "kube_contexts",
            "kube_events",
            "kube_explain",
            "kube_get",
            "kube_list",
            "kube_logs",
            "kube_metrics",
            "kube_wait_for"
        ]
    );
    for t in &tools {
        assert!(t.output_schema.is_some(), "{} has an outputSchema", t.name);
        let a = t.annotations.as_ref().expect("annotations");
        assert_eq!(
            (a.read_only_hint, a.destructive_hint),
            (Some(true), Some(false)),
            "{}",
            t.name
        );
        assert_eq!(t.input_schema.get("type"), Some(&json!("object")));
        let description = t.description.as_deref().unwrap_or("");
        assert!(
            description.contains("characters are cut"),
            "{} states the output cap: {description}",
            t.name
        );
        for internal in ["(kubernetes.", "(helm.", "for history"] {
            assert!(
                !description.contains(internal),
                "{} carries {internal:?}: {description}",
                t.name
            );
        }
    }
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn diagnose_tools_answer_with_findings_and_what_they_checked() {
    let s = demo().await;
    let r = call(&s, "diagnose_pods", json!({"allNamespaces": true})).await;
    assert_no_secret(&everything(&r));
    let v = structured(&r);
    let findings = v["findings"].as_array().expect("findings");
    let problem = |pod: &str| -> String {
        findings
            .iter()
            .filter(|f| f["object"]["kind"] == "Pod")
            .filter(|f| f["object"]["name"].as_str().unwrap().starts_with(pod))
            .map(|f| f["problem"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert!(problem("payments-api").contains("CrashLoopBackOff"), "{v}");
    assert!(problem("analytics-worker").contains("OOMKilled"), "{v}");
    assert!(
        problem("model-trainer").contains("cannot be scheduled"),
        "{v}"
    );
    assert!(
        problem("storefront").is_empty() && problem("coredns").is_empty(),
        "{v}"
    );
    assert!(
        v["checked"][0]
            .as_str()
            .unwrap()
            .contains("pods in all namespaces"),
        "{v}"
    );
    let r = call(
        &s,
        "diagnose_helm_drift",
        json!({"name": "storefront", "namespace": "shop"}),
    )
    .await;
    let drift = structured(&r).to_string();
    assert!(
        drift.contains("spec.replicas: release 3, live 1"),
        "{drift}"
    );
    let (code, message) =
        error(&call(&s, "diagnose_workload", json!({"kind": "Pod", "name": "x"})).await);
    assert_eq!(code, "BadInput");
    assert!(message.contains("diagnose.pods"), "{message}");
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn every_tool_answers_on_the_demo() {
    let s = demo().await;
    let pods = call(
        &s,
        "kube_list",
        json!({"kind": "po", "namespace": "payments"}),
    )
    .await;
    assert_eq!(structured(&pods)["count"], 6);
    assert!(
        pods.content[0].as_text().unwrap().text.starts_with('{'),
        "a compact JSON text copy"
    );
    // A list answers as kubectl prints it: one row per pod.
    let api_row = structured(&pods)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().starts_with("payments-api"))
        .unwrap()
        .clone();
    assert_eq!(api_row["status"], "CrashLoopBackOff", "{api_row}");
    assert!(api_row.get("metadata").is_none());
    let api_pod = api_row["name"].as_str().unwrap().to_string();
    // Objects when asked for: whole, or only some fields.
    let objects = call(
        &s,
        "kube_list",
        json!({"kind": "po", "namespace": "payments", "rows": false}),
    )
    .await;
    assert_eq!(structured(&objects)["items"][0]["kind"], "Pod");
    let restarts = call(
        &s,
        "kube_list",
        json!({"kind": "po", "namespace": "payments", "fields": ["status.containerStatuses.restartCount"]}),
    )
    .await;
    let first = &structured(&restarts)["items"][0];
    assert!(
        first["status"]["containerStatuses"][0]["restartCount"].is_u64(),
        "{first}"
    );
    assert!(first.get("spec").is_none(), "{first}");
    let d = call(
        &s,
        "kube_get",
        json!({"kind": "deploy", "name": "storefront", "namespace": "shop"}),
    )
    .await;
    assert_eq!(structured(&d)["spec"]["replicas"], 1);
    // Some fields only, and the API's own objects: still what the outputSchema says.
    let some = call(
        &s,
        "kube_get",
        json!({"kind": "deploy", "name": "storefront", "namespace": "shop", "fields": ["spec.replicas"], "managers": true}),
    )
    .await;
    assert_eq!(structured(&some)["spec"], json!({"replicas": 1}));
    let reasons = call(
        &s,
        "kube_events",
        json!({"namespace": "ml", "fields": ["reason"]}),
    )
    .await;
    assert!(structured(&reasons)["items"][0]["reason"].is_string());
    let raw = call(&s, "kube_metrics", json!({"kind": "Node", "raw": true})).await;
    assert_eq!(structured(&raw)["items"][0]["kind"], "NodeMetrics");
    let logs = call(
        &s,
        "kube_logs",
        json!({"name": api_pod, "namespace": "payments", "previous": true, "grep": "fatal"}),
    )
    .await;
    assert!(
        structured(&logs)["text"]
            .as_str()
            .unwrap()
            .contains("PAYMENTS_DB_URL is not set")
    );
    let events = call(
        &s,
        "kube_events",
        json!({"namespace": "ml", "type": "Warning"}),
    )
    .await;
    assert_eq!(
        structured(&events)["items"][0]["reason"],
        "FailedScheduling"
    );
    let metrics = call(
        &s,
        "kube_metrics",
        json!({"kind": "pods", "namespace": "data"}),
    )
    .await;
    assert!(structured(&metrics)["count"].as_u64().unwrap() >= 5);
    let contexts = call(&s, "kube_contexts", json!({})).await;
    assert_eq!(structured(&contexts)["items"][0]["current"], true);
    let resources = call(&s, "kube_api_resources", json!({})).await;
    assert!(structured(&resources)["count"].as_u64().unwrap() > 30);
    let releases = call(&s, "helm_list", json!({"allNamespaces": true})).await;
    assert_eq!(structured(&releases)["items"][0]["name"], "storefront");
    let release = call(
        &s,
        "helm_get",
        json!({"name": "storefront", "namespace": "shop"}),
    )
    .await;
    assert_eq!(structured(&release)["values"]["replicaCount"], 3);
    assert_eq!(structured(&release)["objects"].as_array().unwrap().len(), 2);
    let history = call(
        &s,
        "helm_history",
        json!({"name": "storefront", "namespace": "shop"}),
    )
    .await;
    assert_eq!(structured(&history)["count"], 2);
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn no_response_carries_a_secret_in_plaintext() {
    let s = demo().await;
    let one = call(
        &s,
        "kube_get",
        json!({"kind": "secret", "name": "payments-db", "namespace": "payments"}),
    )
    .await;
    assert!(
        structured(&one)["data"]["password"]
            .as_str()
            .unwrap()
            .starts_with("[secret:")
    );
    assert_no_secret(&everything(&one));
    let all = call(
        &s,
        "kube_list",
        json!({"kind": "secrets", "allNamespaces": true}),
    )
    .await;
    assert_no_secret(&everything(&all));
    let again = call(
        &s,
        "kube_get",
        json!({"kind": "secret", "name": "payments-db", "namespace": "payments"}),
    )
    .await;
    assert_eq!(
        structured(&one)["data"]["password"],
        structured(&again)["data"]["password"],
        "tokens are stable within a session"
    );
    // The ledger logs the connection URL that the Secret's `url` holds: the whole URL is
    // that value's token (the session read the namespace's Secrets before the log).
    let ledger = call(
        &s,
        "kube_list",
        json!({"kind": "pods", "namespace": "payments", "labelSelector": "app=ledger"}),
    )
    .await;
    let name = structured(&ledger)["items"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let logs = call(
        &s,
        "kube_logs",
        json!({"name": name, "namespace": "payments"}),
    )
    .await;
    let text = structured(&logs)["text"].as_str().unwrap().to_string();
    assert!(text.contains("connecting to [secret:"), "{text}");
    assert_no_secret(&everything(&logs));
    for tool in ["helm_get", "helm_history"] {
        let r = call(&s, tool, json!({"name": "storefront", "namespace": "shop"})).await;
        assert_no_secret(&everything(&r));
    }
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn errors_are_results_that_say_what_to_change() {
    let s = demo().await;
    let (code, message) = error(&call(&s, "kube_list", json!({"kind": "Deploymnt"})).await);
    assert_eq!(code, "NotFound");
    assert!(message.contains("closest: Deployment"), "{message}");
    let (code, message) = error(
        &call(
            &s,
            "kube_get",
            json!({"kind": "pod", "name": "ghost", "namespace": "shop"}),
        )
        .await,
    );
    assert_eq!(code, "NotFound");
    assert!(message.contains("kubernetes.list"), "{message}");
    let (code, message) =
        error(&call(&s, "kube_list", json!({"kind": "pods", "limit": "ten"})).await);
    assert_eq!(code, "BadInput");
    assert!(message.contains("limit"), "{message}");
    let (code, message) =
        error(&call(&s, "kube_logs", json!({"name": "x", "colour": "red"})).await);
    assert_eq!(code, "BadInput");
    assert!(
        message.contains("`colour`") && message.contains("`tailLines`"),
        "{message}"
    );
    let (code, message) = error(&call(&s, "kube_delete", json!({})).await);
    assert_eq!(code, "NotFound");
    assert!(message.contains("kube_list"), "{message}");
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn large_results_are_cut_with_a_hint() {
    let s = session(&["--demo", "--output-limit", "4000"]).await;
    let r = call(
        &s,
        "kube_list",
        json!({"kind": "pods", "allNamespaces": true}),
    )
    .await;
    let v = structured(&r);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["count"], 37);
    assert!(v["items"].as_array().unwrap().len() < 37);
    assert!(v["note"].as_str().unwrap().contains("labelSelector"), "{v}");
    assert!(everything(&r).len() < 9000);
    s.cancel().await.unwrap();
}

struct Cluster {
    server: kubesim::RunningServer,
    _dir: tempfile::TempDir,
    kubeconfig: String,
    log: std::path::PathBuf,
}

async fn cluster(snapshot: kubesim::Snapshot, mut config: kubesim::ServerConfig) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    config.request_log = Some(log.clone());
    let server = kubesim::serve(snapshot, config).await.unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    Cluster {
        server,
        kubeconfig: path.to_string_lossy().into_owned(),
        _dir: dir,
        log,
    }
}

#[tokio::test]
async fn the_real_dump_through_tools_mode() {
    let dump = std::env::var_os("KUBECODE_REAL_DUMP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/real-world/aks-2020-cluster-info-dump")
        });
    let c = cluster(
        kubesim::Snapshot::load(&dump, &Default::default()).unwrap(),
        Default::default(),
    )
    .await;
    let s = session(&["--kubeconfig", &c.kubeconfig]).await;
    let pods = call(
        &s,
        "kube_list",
        json!({"kind": "pods", "namespace": "kube-system", "rows": false}),
    )
    .await;
    let items = structured(&pods)["items"].as_array().unwrap().clone();
    let autoscaler = items
        .iter()
        .find(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("coredns-autoscaler")
        })
        .unwrap();
    assert_eq!(
        autoscaler["status"]["containerStatuses"][0]["restartCount"],
        1569
    );
    let name = autoscaler["metadata"]["name"].as_str().unwrap();
    let (code, message) = error(
        &call(
            &s,
            "kube_logs",
            json!({"name": name, "namespace": "kube-system"}),
        )
        .await,
    );
    assert_eq!(code, "Unavailable");
    assert!(
        message.contains("the capture recorded this error"),
        "{message}"
    );
    let (code, message) = error(&call(&s, "kube_metrics", json!({"kind": "nodes"})).await);
    assert_eq!(code, "Unavailable");
    assert!(message.contains("metrics-server"), "{message}");
    let events = call(
        &s,
        "kube_events",
        json!({"namespace": "kube-system", "type": "Warning"}),
    )
    .await;
    assert!(structured(&events)["count"].as_u64().unwrap() > 0);
    let node = call(
        &s,
        "kube_get",
        json!({"kind": "node", "name": "aks-nodepool1-28869405-vmss000000"}),
    )
    .await;
    assert_eq!(structured(&node)["kind"], "Node");
    assert_eq!(
        structured(&call(&s, "kube_contexts", json!({})).await)["count"],
        1
    );
    assert!(
        structured(&call(&s, "kube_api_resources", json!({})).await)["count"]
            .as_u64()
            .unwrap()
            > 30
    );
    assert_eq!(
        structured(&call(&s, "helm_list", json!({"allNamespaces": true})).await)["count"],
        0
    );
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn every_tool_sends_only_gets() {
    let c = cluster(kubesim::demo::snapshot(), Default::default()).await;
    let s = session(&["--kubeconfig", &c.kubeconfig]).await;
    let calls = [
        ("kube_list", json!({"kind": "pods", "allNamespaces": true})),
        (
            "kube_get",
            json!({"kind": "deploy", "name": "cart", "namespace": "shop"}),
        ),
        (
            "kube_logs",
            json!({"name": "postgres-0", "namespace": "data"}),
        ),
        ("kube_events", json!({"allNamespaces": true})),
        ("kube_metrics", json!({"kind": "nodes"})),
        ("kube_contexts", json!({})),
        ("kube_api_resources", json!({})),
        ("helm_list", json!({"allNamespaces": true})),
        (
            "helm_get",
            json!({"name": "storefront", "namespace": "shop"}),
        ),
        (
            "helm_history",
            json!({"name": "storefront", "namespace": "shop"}),
        ),
    ];
    for (tool, args) in calls {
        structured(&call(&s, tool, args).await);
    }
    let methods: Vec<String> = std::fs::read_to_string(&c.log)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["method"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(methods.len() >= 10);
    assert!(methods.iter().all(|m| m == "GET"), "{methods:?}");
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn forbidden_throttled_and_down_clusters() {
    let config = kubesim::ServerConfig {
        forbid: vec![kubesim::ForbidRule::parse("secrets").unwrap()],
        ..Default::default()
    };
    let c = cluster(kubesim::demo::snapshot(), config).await;
    let s = session(&["--kubeconfig", &c.kubeconfig]).await;
    let (code, message) = error(
        &call(
            &s,
            "kube_list",
            json!({"kind": "secrets", "namespace": "shop"}),
        )
        .await,
    );
    assert_eq!(code, "Forbidden");
    assert!(message.contains("forbidden"), "{message}");
    // A Retry-After longer than the retry budget: the call gives up at once and says why.
    c.server.set_faults(
        vec![kubesim::FaultRule::parse("throttle=1,retry-after=60").unwrap()],
        1,
    );
    let (code, _) = error(
        &call(
            &s,
            "kube_list",
            json!({"kind": "pods", "namespace": "shop"}),
        )
        .await,
    );
    assert_eq!(code, "Throttled");
    c.server.set_faults(Vec::new(), 1);
    let Cluster { server, .. } = c;
    server.shutdown().await;
    let (code, message) = error(
        &call(
            &s,
            "kube_list",
            json!({"kind": "pods", "namespace": "shop"}),
        )
        .await,
    );
    assert_eq!(code, "Unavailable");
    assert!(message.contains("cannot reach the API server"), "{message}");
    s.cancel().await.unwrap();
}
