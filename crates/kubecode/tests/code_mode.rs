//! Code mode through real MCP sessions (rmcp's client over stdio) and through `kubecode run`,
//! against the demo cluster served by kubesim: worked examples, errors, limits, state and
//! secrets.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

type Session = RunningService<RoleClient, ()>;

async fn session(mode: &str) -> Session {
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubecode")).configure(|cmd| {
        cmd.args(["serve", "--demo", "--mode", mode]);
    });
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .expect("kubecode starts");
    ().serve(transport).await.expect("MCP session")
}

async fn run_code(s: &Session, code: &str) -> Value {
    let args = json!({"code": code, "timeoutMs": 10000});
    let Value::Object(map) = args else {
        unreachable!()
    };
    let r: CallToolResult = s
        .call_tool(CallToolRequestParams::new("run_code").with_arguments(map))
        .await
        .expect("run_code answered");
    r.structured_content.expect("structuredContent")
}

fn result(out: &Value) -> &Value {
    assert_eq!(out["ok"], true, "the program failed: {}", out["error"]);
    &out["result"]
}

#[tokio::test]
async fn code_mode_exposes_two_small_tools() {
    let s = session("code").await;
    let tools = s.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["run_code", "search_tools"]);
    let description: String = tools
        .iter()
        .filter_map(|t| t.description.as_deref())
        .collect();
    for path in [
        "kubernetes.list",
        "kubernetes.logs",
        "kubernetes.events",
        "helm.get",
        "kubernetes.apiResources",
    ] {
        assert!(description.contains(path), "the index names {path}");
    }
    let bpe = tiktoken_rs::o200k_base().expect("the o200k_base tokenizer loads");
    let tokens = bpe.encode_with_special_tokens(&description).len();
    eprintln!("run_code + search_tools descriptions: {tokens} o200k tokens");
    assert!(
        tokens < 1000,
        "the two descriptions are {tokens} o200k tokens"
    );
    let Value::Object(args) = json!({"query": "container logs crash"}) else {
        unreachable!()
    };
    let found = s
        .call_tool(CallToolRequestParams::new("search_tools").with_arguments(args))
        .await
        .unwrap();
    let first = &found.structured_content.unwrap()["results"][0];
    assert_eq!(first["path"], "kubernetes.logs");
    assert!(
        first["declaration"]
            .as_str()
            .unwrap()
            .contains("function logs(")
    );
    s.cancel().await.unwrap();
    let all = session("all").await;
    let functions = catalog::Catalog::new().functions().len();
    assert_eq!(all.list_all_tools().await.unwrap().len(), 2 + functions);
    all.cancel().await.unwrap();
}

const HEALTH_SCAN: &str = r#"
interface Finding { pod: string; problem: string }
const pods = await tools.kubernetes.list({ kind: "Pod", allNamespaces: true });
const findings: Finding[] = [];
for (const p of pods) {
  const id = `${p.metadata.namespace}/${p.metadata.name}`;
  if (p.status.phase === "Pending") findings.push({ pod: id, problem: "Pending" });
  for (const c of p.status.containerStatuses ?? []) {
    const reason = c.state?.waiting?.reason ?? c.lastState?.terminated?.reason;
    if (!c.ready && reason) findings.push({ pod: id, problem: reason });
  }
}
return findings;
"#;

#[tokio::test]
async fn worked_examples_find_the_planted_failures() {
    let s = session("code").await;
    let scan = run_code(&s, HEALTH_SCAN).await;
    let text = result(&scan).to_string();
    for planted in [
        "payments-api",
        "CrashLoopBackOff",
        "recommendations",
        "ImagePullBackOff",
        "model-trainer",
        "Pending",
        "analytics-worker",
    ] {
        assert!(text.contains(planted), "{planted} missing from {text}");
    }
    assert_eq!(
        scan["calls"].as_array().unwrap().len(),
        1,
        "one call for the whole scan"
    );

    let root_cause = run_code(
        &s,
        r#"const pods = await tools.kubernetes.list({ kind: "pods", allNamespaces: true });
const looping = pods.filter(p => p.status.containerStatuses?.some(c => c.state?.waiting?.reason === "CrashLoopBackOff"));
const causes = await Promise.all(looping.map(async p => ({
  pod: p.metadata.name,
  last: (await tools.kubernetes.logs({ name: p.metadata.name, namespace: p.metadata.namespace, previous: true, tailLines: 1 })).trim(),
})));
return causes;"#,
    )
    .await;
    let causes = result(&root_cause).to_string();
    assert!(causes.contains("PAYMENTS_DB_URL is not set"), "{causes}");

    let drift = run_code(
        &s,
        r#"const release = await tools.helm.get({ name: "storefront", namespace: "shop" });
const want = release.objects.find(o => o.kind === "Deployment");
const live = await tools.kubernetes.get({ kind: "Deployment", name: want.metadata.name, namespace: "shop" });
const diff: Record<string, [unknown, unknown]> = {};
if (want.spec.replicas !== live.spec.replicas) diff.replicas = [want.spec.replicas, live.spec.replicas];
const wi = want.spec.template.spec.containers[0].image, li = live.spec.template.spec.containers[0].image;
if (wi !== li) diff.image = [wi, li];
return diff;"#,
    )
    .await;
    assert_eq!(
        result(&drift),
        &json!({"replicas": [3, 1], "image": ["ghcr.io/acme/storefront:2.4.0", "ghcr.io/acme/storefront:2.4.0-hotfix"]})
    );

    let polled = run_code(
        &s,
        r#"for (let attempt = 0; attempt < 5; attempt++) {
  const d = await tools.kubernetes.get({ kind: "deploy", name: "cart", namespace: "shop" });
  if ((d.status.readyReplicas ?? 0) >= d.spec.replicas) return { ready: true, attempt };
  await sleep(100);
}
return { ready: false };"#,
    )
    .await;
    assert_eq!(result(&polled)["ready"], true);
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn diagnose_composes_with_logs_in_one_program() {
    let s = session("code").await;
    let out = run_code(
        &s,
        r#"
const pods = await tools.diagnose.pods({ allNamespaces: true });
const crash = pods.findings.find(f => f.object.name.startsWith("payments-api"));
const log = await tools.kubernetes.logs({ name: crash.object.name, namespace: crash.object.namespace, previous: true, tailLines: 5 });
const svc = await tools.diagnose.service({ name: "checkout", namespace: "shop" });
return { crash: crash.object.name, problem: crash.problem, log, service: svc.findings.map(f => f.problem), checked: pods.checked.length };
"#,
    )
    .await;
    let r = result(&out);
    assert!(
        r["crash"].as_str().unwrap().starts_with("payments-api"),
        "{r}"
    );
    assert!(
        r["problem"].as_str().unwrap().contains("exits with code"),
        "{r}"
    );
    assert!(!r["log"].as_str().unwrap().is_empty(), "{r}");
    assert!(r["checked"].as_u64().unwrap() >= 2, "{r}");
    assert!(
        r["service"][0]
            .as_str()
            .unwrap()
            .contains("ready endpoints")
            || r["service"][0].as_str().unwrap().contains("matches no pod"),
        "{r}"
    );
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn errors_name_the_line_and_what_to_do() {
    let s = session("code").await;
    let out = run_code(&s, "const a: string = 'x';\nconst pod = await tools.kubernetes.get({ kind: 'pod', name: 'ghost', namespace: 'shop' });\nreturn pod;").await;
    assert_eq!(out["ok"], false);
    assert_eq!(out["error"]["code"], "NotFound");
    assert_eq!(out["error"]["line"], 2);
    assert!(
        out["error"]["source"]
            .as_str()
            .unwrap()
            .contains("tools.kubernetes.get")
    );
    let out = run_code(
        &s,
        "const pods = tools.kubernetes.list({ kind: 'pods' });\nreturn pods.length;",
    )
    .await;
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("add await"),
        "{}",
        out["error"]
    );
    let out = run_code(
        &s,
        "return await tools.kubernetes.list({ kind: 'pods', namspace: 'x' })",
    )
    .await;
    let message = out["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("unknown parameter `namspace`") && message.contains("`namespace`"),
        "{message}"
    );
    let out = run_code(&s, "return fetch('http://example.com')").await;
    assert_eq!(out["error"]["name"], "ReferenceError");
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn secrets_stay_tokens_inside_the_sandbox() {
    let s = session("code").await;
    let out = run_code(
        &s,
        r#"const s = await tools.kubernetes.get({ kind: "secret", name: "payments-db", namespace: "payments" });
const decoded = Object.values(s.data).map(v => { try { return atob(v) } catch { return v } });
const all = await tools.kubernetes.list({ kind: "secrets", allNamespaces: true });
const ledger = (await tools.kubernetes.list({ kind: "pods", namespace: "payments", labelSelector: "app=ledger" }))[0];
const logs = await tools.kubernetes.logs({ name: ledger.metadata.name, namespace: "payments" });
console.log(logs);
return { token: s.data.password, decoded, all, logs };"#,
    )
    .await;
    let text = out.to_string();
    assert!(
        !text.contains(kubesim::demo::SECRET_PASSWORD),
        "plaintext reached the model"
    );
    assert!(
        !text.contains("U3VwM3ItUzNjcmV0LVBhc3N3MHJkIQ=="),
        "base64 of the secret reached the model"
    );
    assert!(
        result(&out)["token"]
            .as_str()
            .unwrap()
            .starts_with("[secret:")
    );
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn state_persists_within_a_session_only() {
    let a = session("code").await;
    let b = session("code").await;
    result(&run_code(&a, "state.set('count', 41); return 1").await);
    assert_eq!(
        result(
            &run_code(
                &a,
                "state.set('count', state.get('count') + 1); return state.get('count')"
            )
            .await
        ),
        &json!(42)
    );
    assert_eq!(
        result(&run_code(&b, "return state.get('count') ?? null").await),
        &Value::Null
    );
    assert_eq!(
        result(&run_code(&a, "return typeof globalThis.leak").await),
        &json!("undefined")
    );
    result(&run_code(&a, "globalThis.leak = 1; return 1").await);
    assert_eq!(
        result(&run_code(&a, "return typeof globalThis.leak").await),
        &json!("undefined"),
        "a fresh context per run"
    );
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn a_runaway_program_stops_on_time_while_another_session_answers() {
    let busy = session("code").await;
    let other = session("code").await;
    let started = Instant::now();
    let runaway = tokio::spawn(async move {
        let Value::Object(args) = json!({"code": "await tools.kubernetes.contexts(); while (true) {}", "timeoutMs": 3000})
        else {
            unreachable!()
        };
        let r = busy
            .call_tool(CallToolRequestParams::new("run_code").with_arguments(args))
            .await
            .unwrap();
        (r.structured_content.unwrap(), busy)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let quick_started = Instant::now();
    assert_eq!(result(&run_code(&other, "return 1 + 1").await), &json!(2));
    assert!(
        quick_started.elapsed() < Duration::from_secs(2),
        "the other session waited {:?}",
        quick_started.elapsed()
    );
    let (out, busy) = runaway.await.unwrap();
    assert_eq!(out["error"]["code"], "LimitExceeded");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wall-clock limit (3000 ms)")
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(
        out["calls"][0]["path"], "kubernetes.contexts",
        "calls made before the limit are reported"
    );
    busy.cancel().await.unwrap();
    other.cancel().await.unwrap();
}

#[test]
fn kubecode_run_prints_the_run_code_document() {
    let run = |program: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubecode"))
            .args(["run", "-", "--demo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(program.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        )
    };
    let (code, doc) =
        run("const ns = await tools.kubernetes.list({kind: 'namespaces'}); return ns.length");
    assert_eq!(code, Some(0));
    assert_eq!(doc["result"], 7);
    assert_eq!(doc["stats"]["toolCalls"], 1);
    let (code, doc) = run("throw new Error('nope')");
    assert_eq!(code, Some(1));
    assert_eq!(doc["error"]["message"], "nope");
}

#[tokio::test]
async fn declarations_are_resources_and_the_prompt_teaches_by_example() {
    let s = session("code").await;
    let resources = s.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "kubecode://types/index.d.ts",
            "kubecode://types/kinds.d.ts",
            "kubecode://types/kubernetes.d.ts",
            "kubecode://types/helm.d.ts",
            "kubecode://types/diagnose.d.ts"
        ]
    );
    // The kinds a literal `kind` types list/get with.
    let kinds = s
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "kubecode://types/kinds.d.ts",
        ))
        .await
        .unwrap();
    let kinds = serde_json::to_string(&kinds).unwrap();
    assert!(
        kinds.contains("interface Kinds {") && kinds.contains("interface PodSpec {"),
        "{}",
        &kinds[..kinds.len().min(500)]
    );
    let read = s
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "kubecode://types/kubernetes.d.ts",
        ))
        .await
        .unwrap();
    let text = serde_json::to_string(&read).unwrap();
    assert!(
        text.contains("declare namespace tools.kubernetes") && !text.contains("tools.helm"),
        "{text}"
    );
    let prompts = s.list_all_prompts().await.unwrap();
    assert_eq!(prompts[0].name, "code-mode");
    let prompt = s
        .get_prompt(rmcp::model::GetPromptRequestParams::new("code-mode"))
        .await
        .unwrap();
    let text = serde_json::to_string(&prompt).unwrap();
    for needle in [
        "function logs(",
        "Example: Cluster health scan",
        "Example: Helm drift",
        "await sleep(",
    ] {
        assert!(text.contains(needle), "the prompt lacks {needle}");
    }
    s.cancel().await.unwrap();
}

#[test]
fn every_worked_example_runs_on_the_demo() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src/examples");
    let mut ran = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
            .args(["run", path.to_str().unwrap(), "--demo"])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["ok"], true, "{}: {}", path.display(), doc["error"]);
        assert!(!doc["result"].is_null(), "{}", path.display());
        if path.ends_with("diagnose_then_logs.ts") {
            let text = doc["result"].to_string();
            assert!(
                text.contains("CrashLoopBackOff") && text.contains("PAYMENTS_DB_URL is not set"),
                "{text}"
            );
        }
        ran += 1;
    }
    assert_eq!(ran, 5);
}

#[test]
fn kubecode_demo_names_every_planted_failure() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .arg("demo")
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "OBJECT",
        "payments/payments-api",
        "PAYMENTS_DB_URL is not set",
        "ImagePullBackOff: ghcr.io/acme/recommendations:v2.3.1-rc",
        "ml/model-trainer",
        "Insufficient cpu",
        "OOMKilled",
        "service shop/checkout",
        "matches no pod",
        "helm shop/storefront",
        "replicas 3 -> 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(
        !text.trim_start().starts_with('{'),
        "a table for a person, not JSON"
    );
}

#[test]
fn kubecode_types_prints_declarations() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args(["types", "helm"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("declare namespace tools.helm") && text.contains("function get("),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args(["types", "kubernetes.lgs"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kubernetes.logs"));
}

/// A client that records the progress notifications it receives.
#[derive(Clone, Default)]
struct ProgressRecorder(std::sync::Arc<std::sync::Mutex<Vec<f64>>>);

impl rmcp::ClientHandler for ProgressRecorder {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params.progress);
    }
}

#[tokio::test]
async fn progress_is_notified_and_cancellation_stops_the_program() {
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubecode")).configure(|cmd| {
        cmd.args(["serve", "--demo"]);
    });
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = transport.id().expect("the server's pid");
    let recorder = ProgressRecorder::default();
    let client = recorder.clone().serve(transport).await.unwrap();

    let Value::Object(args) = json!({"code": "for (let i = 0; i < 3; i++) await tools.kubernetes.contexts(); return 'done'"})
    else {
        unreachable!()
    };
    let mut params = CallToolRequestParams::new("run_code").with_arguments(args);
    params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
        rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(7)),
    ));
    let r = client.call_tool(params).await.unwrap();
    assert_eq!(r.structured_content.unwrap()["result"], "done");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = recorder.0.lock().unwrap().clone();
    assert!(seen.contains(&3.0), "progress counts the calls: {seen:?}");

    // A busy program, cancelled by the client: the server stops burning CPU on it.
    let Value::Object(args) = json!({"code": "while (true) {}", "timeoutMs": 20000}) else {
        unreachable!()
    };
    let request = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
        CallToolRequestParams::new("run_code").with_arguments(args),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy_before = bench::session::tree_cpu_ticks(pid);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        bench::session::tree_cpu_ticks(pid).saturating_sub(busy_before) >= 20,
        "the program is running before the cancel"
    );
    handle.cancel(Some("test".into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_before = bench::session::tree_cpu_ticks(pid);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let used = bench::session::tree_cpu_ticks(pid).saturating_sub(idle_before);
    assert!(
        used < 20,
        "the cancelled program still runs: {used} ticks in 1 s"
    );
    assert_eq!(
        result(&run_code_on(&client, "return 5").await),
        &json!(5),
        "the session still answers"
    );
    client.cancel().await.unwrap();
}

async fn run_code_on(s: &RunningService<RoleClient, ProgressRecorder>, code: &str) -> Value {
    let Value::Object(map) = json!({"code": code}) else {
        unreachable!()
    };
    let r = s
        .call_tool(CallToolRequestParams::new("run_code").with_arguments(map))
        .await
        .unwrap();
    r.structured_content.unwrap()
}

#[tokio::test]
async fn describe_types_any_kind_from_the_clusters_schema() {
    let s = session("code").await;
    let out = run_code(
        &s,
        r#"return { pod: await tools.describe("Pod"), field: await tools.describe("deploy.spec.strategy"),
                   logs: await tools.describe("kubernetes.logs") }"#,
    )
    .await;
    let r = result(&out);
    let pod = r["pod"].as_str().unwrap();
    assert!(
        pod.starts_with("// Pod (v1), from the cluster's OpenAPI schema."),
        "{pod}"
    );
    assert!(
        pod.contains("interface Pod {") && pod.contains("spec?: PodSpec;"),
        "{pod}"
    );
    assert!(
        pod.contains("interface PodSpec {") && pod.contains("containers: Container[];"),
        "{pod}"
    );
    assert!(pod.len() < 20_000, "{} characters", pod.len());
    let field = r["field"].as_str().unwrap();
    assert!(field.contains("maxSurge?: number | string;"), "{field}");
    assert!(r["logs"].as_str().unwrap().contains("function logs("));
    let unknown = run_code(&s, r#"return await tools.describe("Gadget")"#).await;
    assert_eq!(unknown["ok"], false);
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no kind \"Gadget\""),
        "{}",
        unknown["error"]
    );
    s.cancel().await.unwrap();
}
