//! Changes with a human in the loop (CONTRACT §3.6), through real MCP sessions: rmcp's client
//! over stdio to the kubecode binary (`serve --allow-changes`), answering elicitations as a
//! person would, against kubesim over HTTPS with its request log. The log proves that no
//! mutating request (a non-GET without `dryRun`) precedes the approval and that only the
//! planned requests follow it.
//!
//! `cargo test -p kubecode --test changes`

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, ProtocolVersion,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// How the client's person answers the approval form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Approve,
    /// Accepts the form but leaves `approve` false.
    AcceptUnticked,
    Decline,
    Cancel,
}

/// What the person saw, and what the API server had been sent when they were asked.
#[derive(Debug, Clone)]
struct Asked {
    message: String,
    /// The request log's lines at the moment of the question.
    log_before: Vec<Value>,
}

/// An MCP client that declares form elicitation and answers each request with `answer`.
#[derive(Clone)]
struct Person {
    answer: Arc<Mutex<Answer>>,
    asked: Arc<Mutex<Vec<Asked>>>,
    /// Approval links the server sent as log messages (for the person, not the model).
    links: Arc<Mutex<Vec<String>>>,
    request_log: PathBuf,
    elicits: bool,
}

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.elicits {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(capabilities, Implementation::new("changes-test", "0"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    #[allow(deprecated)] // logging (SEP-2577) is how the approval link reaches the person
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        if let Some(url) = params.data.get("url").and_then(Value::as_str) {
            self.links.lock().unwrap().push(url.to_string());
        }
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        self.asked.lock().unwrap().push(Asked {
            message,
            log_before: read_log(&self.request_log),
        });
        Ok(match *self.answer.lock().unwrap() {
            Answer::Approve => {
                ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": true}))
            }
            Answer::AcceptUnticked => {
                ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": false}))
            }
            Answer::Decline => ElicitResult::new(ElicitationAction::Decline),
            Answer::Cancel => ElicitResult::new(ElicitationAction::Cancel),
        })
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    _api: kubesim::RunningServer,
    kubeconfig_yaml: String,
    request_log: PathBuf,
    audit_log: PathBuf,
    person: Person,
    client: RunningService<RoleClient, Person>,
}

fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A request that changes the cluster: not a read, not a dry run.
fn mutating(r: &Value) -> bool {
    r["method"] != "GET" && !r["query"].as_str().unwrap_or("").contains("dryRun=All")
}

async fn setup(flags: &[&str], elicits: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let request_log = dir.path().join("requests.jsonl");
    let audit_log = dir.path().join("audit.jsonl");
    let config = kubesim::ServerConfig {
        request_log: Some(request_log.clone()),
        ..Default::default()
    };
    let api = kubesim::serve(kubesim::demo::snapshot(), config)
        .await
        .expect("kubesim");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let person = Person {
        answer: Arc::new(Mutex::new(Answer::Approve)),
        asked: Arc::new(Mutex::new(Vec::new())),
        links: Arc::new(Mutex::new(Vec::new())),
        request_log: request_log.clone(),
        elicits,
    };
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--mode".into(),
        "all".into(),
        "--sandbox".into(),
        "in-process".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--audit-log".into(),
        audit_log.display().to_string(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubecode")).configure(|cmd| {
        cmd.args(&args);
    });
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubecode starts");
    let client = person.clone().serve(transport).await.expect("MCP session");
    Setup {
        kubeconfig_yaml: api.kubeconfig(),
        _dir: dir,
        _api: api,
        request_log,
        audit_log,
        person,
        client,
    }
}

impl Setup {
    async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(map) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map))
            .await
            .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
    }

    async fn run(&self, code: &str) -> Value {
        let r = self.call("run_code", json!({ "code": code })).await;
        r.structured_content.expect("a run document")
    }

    fn answer(&self, a: Answer) {
        *self.person.answer.lock().unwrap() = a;
    }

    fn asked(&self) -> Vec<Asked> {
        self.person.asked.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<Value> {
        read_log(&self.request_log)
    }

    fn audit(&self) -> Vec<Value> {
        read_log(&self.audit_log)
    }

    async fn kube(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    async fn deployment(&self, ns: &str, name: &str) -> Value {
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            self.kube().await,
            ns,
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                "apps",
                "v1",
                "Deployment",
            )),
        );
        serde_json::to_value(api.get(name).await.unwrap()).unwrap()
    }
}

fn error_of(r: &CallToolResult) -> (String, String) {
    assert_eq!(r.is_error, Some(true), "expected an error: {r:?}");
    let e = &r.structured_content.as_ref().expect("structured error")["error"];
    (
        e["code"].as_str().unwrap().to_string(),
        e["message"].as_str().unwrap().to_string(),
    )
}

/// The (method, path) of each mutating request, in order.
fn writes(log: &[Value]) -> Vec<(String, String)> {
    log.iter()
        .filter(|r| mutating(r))
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const PLAN_TWO: &str = r#"
const a = await tools.kubernetes.scale({ kind: "deploy", name: "grafana", namespace: "monitoring", replicas: 3 });
const b = await tools.kubernetes.cordon({ name: "demo-worker2" });
return { a: a.diff, b: b.diff, replicas: a.object.spec.replicas };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_plan_is_applied_and_only_after_the_approval() {
    let s = setup(&["--allow-changes"], true).await;
    let doc = s.run(PLAN_TWO).await;
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["result"]["replicas"], 3, "{doc}");
    let diff = doc["result"]["a"].as_str().unwrap();
    assert!(
        diff.contains("-  replicas: 1") && diff.contains("+  replicas: 3"),
        "{diff}"
    );
    assert!(
        !diff.contains("resourceVersion") && !diff.contains("managedFields"),
        "{diff}"
    );
    assert!(
        doc["result"]["b"]
            .as_str()
            .unwrap()
            .contains("+  unschedulable: true"),
        "{doc}"
    );
    let plan = &doc["plan"];
    let id = plan["id"].as_str().expect("the run returns a plan");
    assert_eq!(plan["changes"].as_array().unwrap().len(), 2, "{plan}");
    assert!(plan["changes"][0]["resourceVersion"].is_string(), "{plan}");
    assert_eq!(
        plan["changes"][0]["target"],
        "Deployment monitoring/grafana"
    );
    assert!(plan["expiresAt"].as_str().unwrap().ends_with('Z'));
    // Planning sent dry runs only.
    let planned = s.requests();
    assert!(
        planned.iter().filter(|r| r["method"] == "PATCH").count() == 2
            && writes(&planned).is_empty(),
        "planning must send only dry runs: {planned:?}"
    );
    // Still unchanged in the cluster.
    assert_eq!(
        s.deployment("monitoring", "grafana").await["spec"]["replicas"],
        1
    );

    let r = s.call("apply_plan", json!({ "id": id })).await;
    let out = r.structured_content.clone().unwrap();
    assert_ne!(r.is_error, Some(true), "{out}");
    assert_eq!(out["decision"], "approved", "{out}");
    assert_eq!(out["via"], "elicitation", "{out}");
    assert_eq!(out["applied"], 2, "{out}");
    assert_eq!(out["changes"][1]["status"], "applied", "{out}");

    // The person saw both objects and their diffs; nothing had been written when asked.
    let asked = s.asked();
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].message.contains("Deployment monitoring/grafana")
            && asked[0].message.contains("Node demo-worker2")
            && asked[0].message.contains("+  replicas: 3"),
        "{}",
        asked[0].message
    );
    assert!(
        writes(&asked[0].log_before).is_empty(),
        "a mutating request preceded the approval: {:?}",
        asked[0].log_before
    );
    // After it: exactly the planned requests, in order.
    let after = s.requests();
    assert_eq!(
        writes(&after),
        vec![
            (
                "PATCH".to_string(),
                "/apis/apps/v1/namespaces/monitoring/deployments/grafana".to_string()
            ),
            (
                "PATCH".to_string(),
                "/api/v1/nodes/demo-worker2".to_string()
            ),
        ]
    );
    assert_eq!(
        s.deployment("monitoring", "grafana").await["spec"]["replicas"],
        3
    );

    // A plan is used once.
    let again = s.call("apply_plan", json!({ "id": id })).await;
    let (code, message) = error_of(&again);
    assert_eq!(code, "AlreadyUsed", "{message}");
    assert_eq!(s.asked().len(), 1, "a used plan asks nobody");
    assert_eq!(writes(&s.requests()).len(), 2);

    // The audit log has the plan, the decision (how, by whom) and each request with its status.
    let audit = s.audit();
    let plan_record = audit.iter().find(|r| r["event"] == "plan").expect("plan");
    assert_eq!(plan_record["plan"], id);
    assert_eq!(plan_record["changes"].as_array().unwrap().len(), 2);
    let decision = audit
        .iter()
        .find(|r| r["event"] == "decision")
        .expect("decision");
    assert_eq!(
        (&decision["decision"], &decision["via"], &decision["by"]),
        (&json!("approved"), &json!("elicitation"), &json!("local"))
    );
    let sent: Vec<&Value> = audit.iter().filter(|r| r["event"] == "request").collect();
    assert_eq!(sent.len(), 2, "{audit:?}");
    assert_eq!(sent[0]["method"], "PATCH");
    assert_eq!(sent[0]["status"], 200);
    assert_eq!(sent[1]["path"], "/api/v1/nodes/demo-worker2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_cancelled_and_unticked_plans_send_nothing() {
    let s = setup(&["--allow-changes"], true).await;
    for answer in [Answer::Decline, Answer::Cancel, Answer::AcceptUnticked] {
        s.answer(answer);
        // Tools mode: the change tool returns the plan.
        let r = s
            .call(
                "kube_scale",
                json!({"kind": "Deployment", "name": "grafana", "namespace": "monitoring", "replicas": 0}),
            )
            .await;
        assert_ne!(r.is_error, Some(true), "{r:?}");
        let out = r.structured_content.unwrap();
        assert!(
            out["diff"].as_str().unwrap().contains("+  replicas: 0"),
            "{out}"
        );
        let id = out["plan"]["id"].as_str().unwrap().to_string();
        let r = s.call("apply_plan", json!({ "id": id })).await;
        let out = r.structured_content.unwrap();
        let want = if answer == Answer::Cancel {
            "cancelled"
        } else {
            "declined"
        };
        assert_eq!(out["decision"], want, "{answer:?}: {out}");
        assert_eq!(out["applied"], 0);
        assert_eq!(out["changes"][0]["status"], "not applied");
        // Used up: asking again is refused without a question.
        let (code, _) = error_of(&s.call("apply_plan", json!({ "id": id })).await);
        assert_eq!(code, "AlreadyUsed");
    }
    assert_eq!(s.asked().len(), 3);
    assert!(writes(&s.requests()).is_empty(), "{:?}", s.requests());
    assert_eq!(
        s.deployment("monitoring", "grafana").await["spec"]["replicas"],
        1
    );
    let decisions: Vec<Value> = s
        .audit()
        .into_iter()
        .filter(|r| r["event"] == "decision")
        .map(|r| r["decision"].clone())
        .collect();
    assert_eq!(
        decisions,
        vec![json!("declined"), json!("cancelled"), json!("declined")]
    );

    // Nothing the model sends approves a plan.
    let r = s.call("kube_cordon", json!({"name": "demo-worker"})).await;
    let id = r.structured_content.unwrap()["plan"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, message) = error_of(
        &s.call("apply_plan", json!({ "id": id, "confirm": true }))
            .await,
    );
    assert_eq!(code, "BadInput", "{message}");
    assert!(message.contains("never from an argument"), "{message}");
    let (code, _) = error_of(&s.call("apply_plan", json!({ "id": "made-up" })).await);
    assert_eq!(code, "NotFound");
    assert!(writes(&s.requests()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_plan_stops_at_the_change_whose_object_changed() {
    let s = setup(&["--allow-changes"], true).await;
    // Tools mode builds one plan over several calls with `plan`.
    let first = s
        .call(
            "kube_scale",
            json!({"kind": "deploy", "name": "grafana", "namespace": "monitoring", "replicas": 2}),
        )
        .await
        .structured_content
        .unwrap();
    let id = first["plan"]["id"].as_str().unwrap().to_string();
    let second = s
        .call(
            "kube_set_image",
            json!({"kind": "deploy", "name": "prometheus", "namespace": "monitoring",
                   "container": "prometheus", "image": "quay.io/prometheus/prometheus:v2.55.0", "plan": id}),
        )
        .await;
    let second = second.structured_content.unwrap();
    assert_eq!(second["plan"]["id"], id.as_str(), "{second}");
    assert!(
        second["diff"]
            .as_str()
            .unwrap()
            .contains("+        image: quay.io/prometheus/prometheus:v2.55.0"),
        "{second}"
    );
    let third = s
        .call(
            "kube_restart",
            json!({"kind": "deploy", "name": "grafana", "namespace": "monitoring", "plan": id}),
        )
        .await
        .structured_content
        .unwrap();
    assert_eq!(third["plan"]["changes"].as_array().unwrap().len(), 3);

    // Someone changes prometheus after planning.
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        s.kube().await,
        "monitoring",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "apps",
            "v1",
            "Deployment",
        )),
    );
    api.patch(
        "prometheus",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
    )
    .await
    .unwrap();
    let before = writes(&s.requests()).len();

    let r = s.call("apply_plan", json!({ "id": id })).await;
    let out = r.structured_content.clone().unwrap();
    assert_eq!(
        r.is_error,
        Some(true),
        "a failed change makes an error: {out}"
    );
    assert_eq!(out["decision"], "approved");
    assert_eq!(out["applied"], 1, "{out}");
    let statuses: Vec<&str> = out["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "failed", "not applied"], "{out}");
    let reason = out["changes"][1]["reason"].as_str().unwrap();
    assert!(
        reason.contains("Deployment monitoring/prometheus changed since it was planned"),
        "{reason}"
    );
    // Sent: grafana's scale, then prometheus' refused patch (409); the restart never went out.
    let sent = s.requests();
    let after: Vec<&Value> = sent.iter().filter(|r| mutating(r)).skip(before).collect();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1]["status"], 409);
    assert!(
        after
            .iter()
            .all(|r| !r["path"].as_str().unwrap().ends_with("grafana") || r["status"] == 200)
    );
    let prometheus = s.deployment("monitoring", "prometheus").await;
    assert_eq!(
        prometheus["spec"]["template"]["spec"]["containers"][0]["image"],
        "quay.io/prometheus/prometheus:v2.54.1"
    );
    let grafana = s.deployment("monitoring", "grafana").await;
    assert_eq!(grafana["spec"]["replicas"], 2);
    assert!(
        grafana["spec"]["template"]["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/restartedAt")
            .is_none(),
        "the restart after the conflict was not sent"
    );
    let statuses: Vec<Value> = s
        .audit()
        .into_iter()
        .filter(|r| r["event"] == "request")
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(200), json!(409)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_plan_is_refused() {
    let s = setup(&["--allow-changes", "--plan-expiry", "1"], true).await;
    let doc = s
        .run(r#"await tools.kubernetes.deletePod({ name: (await tools.kubernetes.list({ kind: "Pod", namespace: "monitoring" }))[0].metadata.name, namespace: "monitoring" }); return 1"#)
        .await;
    let id = doc["plan"]["id"].as_str().expect("a plan").to_string();
    assert!(
        doc["plan"]["changes"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("-kind: Pod"),
        "{doc}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, message) = error_of(&s.call("apply_plan", json!({ "id": id })).await);
    assert_eq!(code, "Expired", "{message}");
    assert!(message.contains("nothing was sent"), "{message}");
    assert!(s.asked().is_empty());
    assert!(writes(&s.requests()).is_empty());
}

/// A plain HTTP/1.1 exchange with the approval page: `(status, head, body)`.
async fn page(url: &str, method: &str, cookie: Option<&str>, body: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let slash = rest.find('/').unwrap();
    let (authority, path) = (&rest[..slash], &rest[slash..]);
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nHost: {authority}\r\n");
    if let Some(c) = cookie {
        request.push_str(&format!("Cookie: {c}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_elicitation_gets_the_approval_page_outside_the_models_view() {
    let s = setup(&["--allow-changes"], false).await;
    let r = s
        .call("kube_cordon", json!({"name": "demo-worker"}))
        .await
        .structured_content
        .unwrap();
    let id = r["plan"]["id"].as_str().unwrap().to_string();
    let apply = {
        let client = s.client.peer().clone();
        let id = id.clone();
        tokio::spawn(async move {
            let args = json!({ "id": id });
            let Value::Object(map) = args else {
                unreachable!()
            };
            client
                .call_tool(CallToolRequestParams::new("apply_plan").with_arguments(map))
                .await
                .unwrap()
        })
    };
    // The link reaches the person as a log message of the client, never as a tool result.
    let mut url = None;
    for _ in 0..100 {
        if let Some(u) = s.client.service().links.lock().unwrap().first().cloned() {
            url = Some(u);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = url.expect("the approval link was sent to the client's log");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        writes(&s.requests()).is_empty(),
        "nothing is sent before the approval"
    );
    // The person opens the page, reads the diff and approves.
    let (status, head, body) = page(&url, "GET", None, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("unschedulable"), "{body}");
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    let csrf = &body[start..start + body[start..].find('"').unwrap()];
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // A POST without the page's cookie approves nothing.
    let (forged, _, _) = page(&url, "POST", None, &format!("csrf={csrf}&decision=approve")).await;
    assert_eq!(forged, 403);
    let (status, _, _) = page(
        &url,
        "POST",
        Some(&cookie),
        &format!("csrf={csrf}&decision=approve"),
    )
    .await;
    assert!(status < 400, "approved: {status}");
    let result = tokio::time::timeout(Duration::from_secs(20), apply)
        .await
        .expect("apply_plan returns once the person decided")
        .unwrap();
    let out = result.structured_content.unwrap();
    assert_eq!(
        (
            out["decision"].as_str(),
            out["via"].as_str(),
            out["applied"].as_u64()
        ),
        (Some("approved"), Some("page"), Some(1)),
        "{out}"
    );
    assert!(
        !out.to_string().contains(&url),
        "the link is not in the model's result"
    );
    assert_eq!(writes(&s.requests()).len(), 1);
    assert!(s.asked().is_empty(), "no form was shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_changes_there_are_no_change_functions() {
    let s = setup(&[], true).await;
    let tools = s.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for absent in [
        "kube_scale",
        "kube_restart",
        "kube_patch",
        "kube_delete_pod",
        "apply_plan",
    ] {
        assert!(!names.contains(&absent), "{absent} listed: {names:?}");
    }
    assert!(
        names.contains(&"kube_wait_for"),
        "waitFor only reads: {names:?}"
    );
    let run_code = tools.iter().find(|t| t.name == "run_code").unwrap();
    let description = run_code.description.as_deref().unwrap_or("");
    assert!(!description.contains("kubernetes.scale"), "{description}");
    let (code, message) = error_of(
        &s.call(
            "kube_scale",
            json!({"kind": "deploy", "name": "grafana", "replicas": 0}),
        )
        .await,
    );
    assert_eq!(code, "NotFound", "{message}");
    let (code, _) = error_of(&s.call("apply_plan", json!({"id": "x"})).await);
    assert_eq!(code, "NotFound");
    let doc = s.run(r#"return typeof tools.kubernetes.waitFor"#).await;
    assert_eq!(doc["result"], "function", "{doc}");
    for f in ["scale", "patch", "deletePod"] {
        let doc = s
            .run(&format!(r#"return await tools.kubernetes.{f}({{kind: "deploy", name: "grafana", replicas: 0}})"#))
            .await;
        assert_eq!(doc["ok"], false, "{doc}");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("no member \"{f}\"")), "{message}");
    }
    let types = s
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "kubecode://types/index.d.ts",
        ))
        .await
        .unwrap();
    let text = serde_json::to_string(&types).unwrap();
    assert!(
        !text.contains("setImage") && text.contains("waitFor"),
        "types"
    );
    assert!(s.requests().iter().all(|r| r["method"] == "GET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_not_changed_and_wait_for_reports_what_it_saw() {
    let s = setup(&["--allow-changes"], true).await;
    let (code, message) = error_of(
        &s.call(
            "kube_patch",
            json!({"kind": "secret", "name": "x", "namespace": "shop", "patch": {"data": {}}}),
        )
        .await,
    );
    assert_eq!(code, "BadInput");
    assert!(message.contains("does not change Secrets"), "{message}");

    // A cordon, approved, then verified without reading the node again.
    let doc = s
        .run(r#"await tools.kubernetes.cordon({ name: "demo-worker" }); return 1"#)
        .await;
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    let r = s.call("apply_plan", json!({ "id": id })).await;
    assert_eq!(r.structured_content.unwrap()["applied"], 1);
    let doc = s
        .run(r#"return await tools.kubernetes.waitFor({ kind: "node", name: "demo-worker", condition: "unschedulable", timeoutSeconds: 5 })"#)
        .await;
    assert_eq!(doc["result"]["met"], true, "{doc}");
    assert_eq!(doc["result"]["observed"], "node is unschedulable");
    // Two changes of one object in one plan: the second's precondition is the version the
    // first made, so both apply.
    let doc = s
        .run(r#"await tools.kubernetes.scale({ kind: "deploy", name: "grafana", namespace: "monitoring", replicas: 2 });
await tools.kubernetes.restart({ kind: "deploy", name: "grafana", namespace: "monitoring" }); return 1"#)
        .await;
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    let r = s.call("apply_plan", json!({ "id": id })).await;
    let out = r.structured_content.unwrap();
    assert_eq!(out["applied"], 2, "{out}");
    let grafana = s.deployment("monitoring", "grafana").await;
    assert_eq!(grafana["spec"]["replicas"], 2);
    assert!(
        grafana["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{grafana}"
    );
    // A timeout says the last observed state.
    let doc = s
        .run(r#"return await tools.kubernetes.waitFor({ kind: "node", name: "demo-worker2", condition: "unschedulable", timeoutSeconds: 1 })"#)
        .await;
    assert_eq!(doc["ok"], false, "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("within 1 s") && message.contains("node is schedulable"),
        "{message}"
    );
    assert_eq!(doc["error"]["code"], "Timeout", "{doc}");
}

/// The MCP Python SDK's interpreter (the venv `scripts/install-test-deps` makes), or None,
/// with a message, when there is no Python at all.
fn mcp_python() -> Option<PathBuf> {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: python3 is not installed; the MCP Python SDK test needs it");
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::env::var_os("KUBECODE_MCP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/bench-venv"));
    let python = venv.join("bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} has no MCP Python SDK: run scripts/install-test-deps (it creates the venv), or set KUBECODE_MCP_VENV",
        venv.display()
    );
    Some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_elicitation_callback_approves_declines_and_cancels() {
    let Some(python) = mcp_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let request_log = dir.path().join("requests.jsonl");
    let config = kubesim::ServerConfig {
        request_log: Some(request_log.clone()),
        ..Default::default()
    };
    let api = kubesim::serve(kubesim::demo::snapshot(), config)
        .await
        .expect("kubesim");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/elicit_client.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_kubecode"))
        .arg(&kubeconfig)
        .arg(&request_log)
        .args(["decline", "cancel", "approve"])
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "the Python client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let runs: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let decisions: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"]["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["declined", "cancelled", "approved"], "{runs}");
    for run in runs.as_array().unwrap() {
        assert_eq!(
            run["mutatedBefore"], false,
            "written before the answer: {run}"
        );
        assert!(
            run["message"].as_str().unwrap().contains("+  replicas: 2"),
            "the form shows the diff: {run}"
        );
    }
    assert_eq!(runs[2]["result"]["changes"][0]["status"], "applied");
    // Only the approved plan's one request was sent.
    assert_eq!(
        writes(&read_log(&request_log)),
        vec![(
            "PATCH".to_string(),
            "/apis/apps/v1/namespaces/monitoring/deployments/grafana".to_string()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_plans_a_revisions_template() {
    let s = setup(&["--allow-changes"], true).await;
    let client = s.kube().await;
    let sets: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client,
        "monitoring",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "apps",
            "v1",
            "ReplicaSet",
        )),
    );
    let grafana = s.deployment("monitoring", "grafana").await;
    let uid = grafana["metadata"]["uid"].as_str().unwrap().to_string();
    let original = grafana["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    // Another revision of grafana, 2, running grafana 11.3.0 (the Deployment itself is left
    // as it is, so a controller has nothing to roll).
    let mut template = grafana["spec"]["template"].clone();
    template["spec"]["containers"][0]["image"] = json!("grafana/grafana:11.3.0");
    template["metadata"]["labels"]["pod-template-hash"] = json!("v2hash");
    let rs: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "grafana-v2hash", "namespace": "monitoring",
            "annotations": {"deployment.kubernetes.io/revision": "2"},
            "labels": template["metadata"]["labels"].clone(),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "grafana",
                "uid": uid, "controller": true}]},
        "spec": {"replicas": 0, "selector": grafana["spec"]["selector"].clone(), "template": template}}))
    .unwrap();
    sets.create(&kube::api::PostParams::default(), &rs)
        .await
        .unwrap();

    let doc = s
        .run(r#"const r = await tools.kubernetes.rollback({ kind: "deploy", name: "grafana", namespace: "monitoring", revision: 2 }); return r.diff"#)
        .await;
    assert_eq!(doc["ok"], true, "{doc}");
    let diff = doc["result"].as_str().unwrap();
    assert!(
        diff.contains("+        image: grafana/grafana:11.3.0")
            && diff.contains(&format!("-        image: {}", original.as_str().unwrap())),
        "{diff}"
    );
    assert!(!diff.contains("pod-template-hash"), "{diff}");
    assert!(
        doc["plan"]["changes"][0]["action"]
            .as_str()
            .unwrap()
            .contains("to revision 2"),
        "{doc}"
    );
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    let out = s
        .call("apply_plan", json!({ "id": id }))
        .await
        .structured_content
        .unwrap();
    assert_eq!(out["applied"], 1, "{out}");
    let after = s.deployment("monitoring", "grafana").await;
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0]["image"],
        "grafana/grafana:11.3.0"
    );
    assert!(
        after["spec"]["template"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none(),
        "{after}"
    );

    // A revision that does not exist is named, with the ones that do.
    let doc = s
        .run(r#"return await tools.kubernetes.rollback({ kind: "deploy", name: "grafana", namespace: "monitoring", revision: 7 })"#)
        .await;
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        // The controller gave the rolled-back ReplicaSet the next revision, as a cluster does.
        message.contains("no revision 7") && message.contains("its revisions: ["),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_changed_since_planning_is_not_deleted() {
    let s = setup(&["--allow-changes"], true).await;
    let doc = s
        .run(r#"const p = (await tools.kubernetes.list({ kind: "Pod", namespace: "monitoring" }))[0].metadata.name;
await tools.kubernetes.deletePod({ name: p, namespace: "monitoring" }); return p"#)
        .await;
    let pod = doc["result"].as_str().expect("a pod name").to_string();
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(s.kube().await, "monitoring");
    pods.patch(
        &pod,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
    )
    .await
    .unwrap();
    let r = s.call("apply_plan", json!({ "id": id })).await;
    let out = r.structured_content.unwrap();
    assert_eq!(out["changes"][0]["status"], "failed", "{out}");
    assert!(
        out["changes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("changed since it was planned"),
        "{out}"
    );
    assert!(pods.get(&pod).await.is_ok(), "the pod is still there");
    let deletes: Vec<Value> = s
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "DELETE")
        .collect();
    // The dry run, then the refused delete.
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert_eq!(deletes[1]["status"], 409);
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_verify_on_the_demo_cluster() {
    let s = setup(&["--allow-changes"], true).await;
    // 1. Plan: one short program.
    let doc = s
        .run(r#"const r = await tools.kubernetes.restart({ kind: "deploy", name: "grafana", namespace: "monitoring" }); return r.diff"#)
        .await;
    assert_eq!(doc["ok"], true, "{doc}");
    assert!(
        doc["result"]
            .as_str()
            .unwrap()
            .contains("+        kubectl.kubernetes.io/restartedAt:"),
        "{doc}"
    );
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    // 2. Approve and apply.
    let out = s
        .call("apply_plan", json!({ "id": id }))
        .await
        .structured_content
        .unwrap();
    assert_eq!(
        (out["decision"].as_str(), out["applied"].as_u64()),
        (Some("approved"), Some(1)),
        "{out}"
    );
    // 3. Verify: a second short program waits for the rollout, spending no tokens meanwhile.
    let doc = s
        .run(r#"const w = await tools.kubernetes.waitFor({ kind: "deploy", name: "grafana", namespace: "monitoring", condition: "rolledOut", timeoutSeconds: 25 });
const sets = await tools.kubernetes.list({ kind: "ReplicaSet", namespace: "monitoring", fields: ["metadata.annotations", "metadata.ownerReferences", "status.readyReplicas", "spec.template.metadata.annotations"] });
const mine = sets.filter(r => (r.metadata.ownerReferences || []).some(o => o.name === "grafana"));
return { w, sets: mine.map(r => ({ revision: r.metadata.annotations["deployment.kubernetes.io/revision"], ready: (r.status || {}).readyReplicas || 0,
  restarted: !!r.spec?.template?.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"] })) }"#)
        .await;
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["result"]["w"]["met"], true, "{doc}");
    let sets = doc["result"]["sets"].as_array().unwrap();
    let new = sets
        .iter()
        .find(|r| r["restarted"] == true)
        .unwrap_or_else(|| panic!("a new ReplicaSet with the restart: {doc}"));
    assert_eq!(new["revision"], "2", "{doc}");
    assert!(
        new["ready"].as_u64().unwrap() >= 1,
        "the new ReplicaSet is ready: {doc}"
    );
    assert!(
        sets.iter()
            .filter(|r| r["restarted"] != true)
            .all(|r| r["ready"] == 0),
        "the old ReplicaSet is scaled down: {doc}"
    );
    eprintln!(
        "restart and verify: waited {} ms, observed {}",
        doc["result"]["w"]["waitedMs"], doc["result"]["w"]["observed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_a_rollout_goes_to_the_previous_revision() {
    let s = setup(&["--allow-changes"], true).await;
    let original = s.deployment("monitoring", "grafana").await["spec"]["template"]["spec"]
        ["containers"][0]["image"]
        .clone();
    // Revision 2: a new image, rolled out by the controller.
    let doc = s
        .run(r#"await tools.kubernetes.setImage({ kind: "deploy", name: "grafana", namespace: "monitoring", container: "grafana", image: "grafana/grafana:11.3.0" }); return 1"#)
        .await;
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    let out = s
        .call("apply_plan", json!({ "id": id }))
        .await
        .structured_content
        .unwrap();
    assert_eq!(out["applied"], 1, "{out}");
    let doc = s
        .run(r#"return await tools.kubernetes.waitFor({ kind: "deploy", name: "grafana", namespace: "monitoring", condition: "rolledOut", timeoutSeconds: 25 })"#)
        .await;
    assert_eq!(doc["result"]["met"], true, "{doc}");

    let doc = s
        .run(r#"const r = await tools.kubernetes.rollback({ kind: "deploy", name: "grafana", namespace: "monitoring" }); return r.diff"#)
        .await;
    assert_eq!(doc["ok"], true, "{doc}");
    let diff = doc["result"].as_str().unwrap();
    assert!(
        diff.contains("-        image: grafana/grafana:11.3.0")
            && diff.contains(&format!("+        image: {}", original.as_str().unwrap())),
        "{diff}"
    );
    assert!(!diff.contains("pod-template-hash"), "{diff}");
    assert!(
        doc["plan"]["changes"][0]["action"]
            .as_str()
            .unwrap()
            .contains("from revision 2 to revision 1"),
        "{doc}"
    );
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    let out = s
        .call("apply_plan", json!({ "id": id }))
        .await
        .structured_content
        .unwrap();
    assert_eq!(out["applied"], 1, "{out}");
    let doc = s
        .run(r#"return await tools.kubernetes.waitFor({ kind: "deploy", name: "grafana", namespace: "monitoring", condition: "rolledOut", timeoutSeconds: 25 })"#)
        .await;
    assert_eq!(doc["result"]["met"], true, "{doc}");
    let after = s.deployment("monitoring", "grafana").await;
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0]["image"],
        original
    );

    // A revision that does not exist is named, with the ones that do.
    let doc = s
        .run(r#"return await tools.kubernetes.rollback({ kind: "deploy", name: "grafana", namespace: "monitoring", revision: 7 })"#)
        .await;
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("no revision 7"), "{message}");
}
