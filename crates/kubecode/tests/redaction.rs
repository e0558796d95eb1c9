//! The redaction invariant (CONTRACT §3.5), route by route: every catalog function × every
//! route (tools mode over stdio and HTTP, code mode over both, `kubecode run`, `kubecode demo`)
//! × every spelling of the Secret kind × every place a value can hide (Secret objects and
//! lists, Helm objects/manifest/values/notes, env values, annotations, another kind's
//! last-applied configuration, ConfigMaps, log lines, events, thrown errors). No plaintext,
//! base64 or URL-encoded form of any Secret value of the fixture may be in any byte a client
//! receives; equal values give equal tokens across routes within a session; and `grep`
//! answers a right guess of a password exactly as it answers a wrong one.
//!
//! The fixture, `tests/fixtures/redaction`, is laid over the demo cluster.

use std::path::Path;

use base64::Engine;
use bench::http_session::{HttpServer, HttpSession};
use bench::session::Session;
use serde_json::{Value, json};

/// The fixture's Secret values (`billing/db`, `billing/chart-db`).
const PASSWORD: &str = "Tr0ub4dor&3-horse-battery";
const API_KEY: &str = "ak_live_51HxYzQ8p2Lm";
const USERNAME: &str = "billing-svc";
const HELM_PASSWORD: &str = "h3lm-Rend3red-S3cret";

fn dsn() -> String {
    format!("postgresql://billing:{PASSWORD}@pg.billing.svc:5432/ledger")
}

/// Every value of the fixture's Secrets (and the demo's), in every form that must not appear.
fn forbidden() -> Vec<(String, String)> {
    let mut values: Vec<String> = [PASSWORD, API_KEY, USERNAME, HELM_PASSWORD]
        .iter()
        .map(|s| s.to_string())
        .collect();
    values.push(dsn());
    values.push(kubesim::demo::SECRET_PASSWORD.to_string());
    let mut forms = Vec::new();
    for v in values {
        let b = v.as_bytes();
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ];
        for e in engines {
            forms.push((v.clone(), e.encode(b).trim_end_matches('=').to_string()));
        }
        forms.push((v.clone(), form_url(&v)));
        forms.push((v.clone(), percent(&v)));
        forms.push((v.clone(), v.clone()));
    }
    forms
}

fn form_url(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Fails, naming the route and call, if `text` carries any forbidden form.
fn assert_clean(route: &str, call: &str, text: &str) {
    for (value, form) in forbidden() {
        assert!(
            !text.contains(&form),
            "{route}: {call} leaked a form ({form:?}) of the Secret value {value:?}:\n{}",
            text.chars().take(3000).collect::<String>()
        );
    }
}

/// The spellings of the Secret kind a model might use.
const SPELLINGS: [&str; 6] = [
    "Secret",
    "secret",
    "secrets",
    "SECRETS",
    " Secrets ",
    "secrets.",
];

/// Every tools-mode call of the table: (tool, arguments). Every tool a server lists must
/// appear here; a new tool fails the test until it is added.
fn tool_calls() -> Vec<(&'static str, Value)> {
    let mut calls = Vec::new();
    for kind in SPELLINGS {
        calls.push((
            "kube_get",
            json!({"kind": kind, "name": "db", "namespace": "billing"}),
        ));
        calls.push(("kube_list", json!({"kind": kind, "namespace": "billing"})));
        calls.push(("kube_list", json!({"kind": kind, "allNamespaces": true})));
    }
    calls.extend([
        ("kube_get", json!({"kind": "Secret", "name": "chart-db", "namespace": "billing"})),
        ("kube_get", json!({"kind": "Secret", "name": "sh.helm.release.v1.ledger.v1", "namespace": "billing"})),
        ("kube_get", json!({"kind": "Pod", "name": "api-0", "namespace": "billing"})),
        ("kube_list", json!({"kind": "pods", "namespace": "billing"})),
        ("kube_list", json!({"kind": "po", "allNamespaces": true, "labelSelector": "app=billing-api"})),
        ("kube_get", json!({"kind": "cm", "name": "app", "namespace": "billing"})),
        ("kube_list", json!({"kind": "ConfigMap", "namespace": "billing"})),
        ("kube_list", json!({"kind": "events", "namespace": "billing"})),
        ("kube_logs", json!({"name": "api-0", "namespace": "billing"})),
        ("kube_logs", json!({"name": "api-0", "namespace": "billing", "tailLines": 3})),
        ("kube_logs", json!({"name": "api-0", "namespace": "billing", "grep": "."})),
        ("kube_logs", json!({"name": "ledger-missing", "namespace": "payments"})),
        ("kube_events", json!({"namespace": "billing"})),
        ("kube_events", json!({"allNamespaces": true, "type": "Warning"})),
        ("kube_metrics", json!({"kind": "pods", "namespace": "billing"})),
        ("kube_contexts", json!({})),
        // waitFor's answer and its timeout message name the state it observed.
        ("kube_wait_for", json!({"kind": "Pod", "name": "api-0", "namespace": "billing", "condition": "ready", "timeoutSeconds": 1})),
        ("kube_wait_for", json!({"kind": "Secret", "name": "chart-db", "namespace": "billing", "condition": "deleted", "timeoutSeconds": 1})),
        ("kube_api_resources", json!({})),
        ("helm_list", json!({"namespace": "billing"})),
        ("helm_list", json!({"allNamespaces": true})),
        ("helm_get", json!({"name": "ledger", "namespace": "billing"})),
        ("helm_history", json!({"name": "ledger", "namespace": "billing"})),
        ("helm_get", json!({"name": "storefront", "namespace": "shop"})),
        // What a call may ask to keep: objects instead of rows, some fields, who manages what.
        ("kube_list", json!({"kind": "Secret", "namespace": "billing", "rows": false})),
        ("kube_list", json!({"kind": "Secret", "namespace": "billing", "fields": ["data", "stringData"]})),
        ("kube_list", json!({"kind": "Secret", "allNamespaces": true, "managers": true})),
        ("kube_get", json!({"kind": "Secret", "name": "chart-db", "namespace": "billing", "fields": ["data.password"], "managers": true})),
        ("kube_list", json!({"kind": "Pod", "namespace": "billing", "fields": ["spec.containers.env"]})),
        ("kube_events", json!({"namespace": "billing", "raw": true})),
        ("kube_events", json!({"namespace": "billing", "fields": ["message"]})),
        ("kube_metrics", json!({"kind": "Pod", "namespace": "billing", "raw": true})),
        ("kube_explain", json!({"kind": "Secret"})),
        ("diagnose_pods", json!({"allNamespaces": true})),
        ("diagnose_pods", json!({"namespace": "billing"})),
        ("diagnose_workload", json!({"kind": "deploy", "name": "payments-api", "namespace": "payments"})),
        ("diagnose_service", json!({"name": "checkout", "namespace": "shop"})),
        ("diagnose_helm_drift", json!({"name": "ledger", "namespace": "billing"})),
        ("diagnose_helm_drift", json!({"name": "storefront", "namespace": "shop"})),
        ("diagnose_nodes", json!({})),
    ]);
    calls
}

/// The program that makes every call of the table from the sandbox, logs part of what it
/// gets, and returns all of it.
fn everything_program() -> String {
    let calls: Vec<Value> = tool_calls()
        .into_iter()
        .map(|(tool, args)| json!([path_of(tool), args]))
        .collect();
    format!(
        r#"const calls = {};
const out = [];
for (const [path, args] of calls) {{
  const [ns, fn] = path.split(".");
  try {{ out.push(await tools[ns][fn](args)); }} catch (e) {{ out.push({{error: e.message, code: e.code}}); }}
}}
console.log(JSON.stringify(out[0]));
console.log(await tools.kubernetes.logs({{name: "api-0", namespace: "billing"}}));
return out;"#,
        Value::Array(calls)
    )
}

/// A program whose thrown error carries data read from the cluster, in every field.
const THROWING_PROGRAM: &str = r#"const s = await tools.kubernetes.get({kind: "Secret", name: "db", namespace: "billing"});
const log = await tools.kubernetes.logs({name: "api-0", namespace: "billing"});
const e = new Error(JSON.stringify(s) + log + "x".repeat(100000));
e.name = "Leak" + log;
e.code = JSON.stringify(s.data);
throw e;"#;

/// The grep oracle from inside a program: right and wrong guesses, whole and in part.
fn grep_program() -> String {
    format!(
        r#"const g = async (grep) => await tools.kubernetes.logs({{name: "api-0", namespace: "billing", grep}});
return {{right: await g({right:?}), wrong: await g({wrong:?}), prefix: await g({prefix:?}), wrongPrefix: await g({wrong_prefix:?})}};"#,
        right = regex_escape(PASSWORD),
        wrong = regex_escape("Tr0ub4dor&3-horse-batterx"),
        prefix = regex_escape("Tr0ub4d"),
        wrong_prefix = regex_escape("Xr0ub4d"),
    )
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

fn path_of(tool: &str) -> &'static str {
    catalog::Catalog::new()
        .functions()
        .iter()
        .find(|f| f.tool_name == tool)
        .map(|f| f.path)
        .unwrap_or_else(|| panic!("no catalog function has the tool {tool}"))
}

async fn cluster(dir: &Path) -> kubesim::RunningServer {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redaction");
    let snapshot = bench::cluster::demo_with(&fixtures).expect("the fixtures load");
    let server = kubesim::serve(snapshot, kubesim::ServerConfig::default())
        .await
        .expect("kubesim");
    server
        .write_kubeconfig(&dir.join("kubeconfig"))
        .expect("kubeconfig");
    server
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kubecode"))
}

/// The tokens of the fixture's values as one session shows them, found in its answers.
#[derive(Default)]
struct Tokens {
    password: Vec<String>,
}

impl Tokens {
    fn note(&mut self, v: &Value) {
        if let Some(t) = v.pointer("/data/password").and_then(Value::as_str)
            && v.pointer("/metadata/name").and_then(Value::as_str) == Some("db")
        {
            self.password.push(t.to_string());
        }
    }

    fn env_password(v: &Value) -> Option<String> {
        v.pointer("/spec/containers/0/env/0/value")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// Checks a run_code answer (as JSON text) and returns its document.
fn check_run(route: &str, name: &str, text: &str) -> Value {
    assert_clean(route, name, text);
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{route}: {name}: not JSON ({e}): {text}"))
}

fn check_grep(route: &str, grep: &Value) {
    assert_eq!(
        grep["right"], grep["wrong"],
        "{route}: grep answers a right guess differently: {grep}"
    );
    assert_eq!(
        grep["prefix"], grep["wrongPrefix"],
        "{route}: grep answers a right prefix differently: {grep}"
    );
}

fn check_everything(route: &str, doc: &Value) {
    assert_eq!(doc["ok"], true, "{route}: {doc}");
    assert_eq!(
        doc["truncated"], false,
        "{route}: raise the output limit: {doc}"
    );
    let out = doc["result"].as_array().expect("a list of answers");
    assert_eq!(out.len(), tool_calls().len());
    // The Secret as get returns it, and the env value of the pod carrying the same password.
    let secret = &out[0];
    let pod = out
        .iter()
        .find(|o| o.pointer("/metadata/name") == Some(&json!("api-0")) && o["kind"] == "Pod")
        .expect("the pod");
    let token = secret["data"]["password"].as_str().unwrap();
    assert!(token.starts_with("[secret:"), "{route}: {secret}");
    assert_eq!(
        Tokens::env_password(pod).as_deref(),
        Some(token),
        "{route}: env value and Secret differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_reaches_a_client_by_any_route() {
    let dir = tempfile::tempdir().unwrap();
    let _api = cluster(dir.path()).await;
    let kubeconfig = dir.path().join("kubeconfig");
    let big = ["--output-limit", "5000000"];

    // Every tool of both modes over stdio, in one session with run_code.
    let stdio = Session::start_with(binary(), "all", &kubeconfig, &big)
        .await
        .unwrap();
    let listed: Vec<String> = stdio
        .tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    let table = tool_calls();
    for tool in &listed {
        assert!(
            tool == "run_code" || tool == "search_tools" || table.iter().any(|(t, _)| t == tool),
            "the tool {tool} is not in the redaction table: add its calls to tool_calls()"
        );
    }
    let mut tokens = Tokens::default();
    for (tool, args) in &table {
        let a = stdio.call(tool, args).await.unwrap();
        let all = format!("{}\n{}", a.text, a.structured.clone().unwrap_or_default());
        assert_clean("tools/stdio", &format!("{tool} {args}"), &all);
        if let Some(s) = &a.structured {
            tokens.note(s);
            if *tool == "kube_get" && args["kind"] == "Pod" {
                tokens.password.extend(Tokens::env_password(s));
            }
        }
    }
    // The places the values hide were read, not skipped: each shows a token where the value was.
    let release = stdio
        .call(
            "helm_get",
            &json!({"name": "ledger", "namespace": "billing"}),
        )
        .await
        .unwrap()
        .structured
        .unwrap();
    assert_eq!(
        release["objects"].as_array().map(Vec::len),
        Some(3),
        "{release}"
    );
    for place in [
        "/manifest",
        "/notes",
        "/values/database/auth",
        "/objects/0/stringData/password",
    ] {
        let text = release
            .pointer(place)
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(text.contains("[secret:"), "helm_get {place}: {text}");
    }
    let manifest = release["manifest"].as_str().unwrap();
    assert!(
        manifest.contains("automountServiceAccountToken: true"),
        "{manifest}"
    );
    let log = stdio
        .call(
            "kube_logs",
            &json!({"name": "api-0", "namespace": "billing"}),
        )
        .await
        .unwrap()
        .structured
        .unwrap();
    let log = log["text"].as_str().unwrap();
    assert_eq!(log.lines().count(), 7, "{log}");
    assert_eq!(log.matches("[secret:").count(), 6, "{log}");
    let mut oracle = Vec::new();
    for grep in [PASSWORD, "Tr0ub4dor&3-horse-batterx", "Tr0ub4d", "Xr0ub4d"] {
        let a = stdio
            .call(
                "kube_logs",
                &json!({"name": "api-0", "namespace": "billing", "grep": regex_escape(grep)}),
            )
            .await
            .unwrap();
        oracle.push(a.structured.unwrap_or_default());
    }
    assert_eq!(
        oracle[0], oracle[1],
        "tools mode: grep answers a right guess differently"
    );
    assert_eq!(
        oracle[2], oracle[3],
        "tools mode: grep answers a right prefix differently"
    );
    let run = |code: String| json!({"code": code});
    let a = stdio
        .call("run_code", &run(everything_program()))
        .await
        .unwrap();
    let doc = check_run("code/stdio", "everything", &a.text);
    check_everything("code/stdio", &doc);
    tokens.password.push(
        doc["result"][0]["data"]["password"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let a = stdio
        .call("run_code", &run(THROWING_PROGRAM.into()))
        .await
        .unwrap();
    let doc = check_run("code/stdio", "thrown error", &a.text);
    assert_eq!(doc["ok"], false);
    assert!(a.text.len() < 5_100_000);
    let a = stdio.call("run_code", &run(grep_program())).await.unwrap();
    check_grep(
        "code/stdio",
        &check_run("code/stdio", "grep", &a.text)["result"],
    );
    tokens.password.sort();
    tokens.password.dedup();
    assert_eq!(
        tokens.password.len(),
        1,
        "one value, one token across routes in a session: {:?}",
        tokens.password
    );
    stdio.close().await.unwrap();

    // The same over Streamable HTTP.
    let http = HttpServer::start_mode(binary(), &kubeconfig, "all", &big)
        .await
        .unwrap();
    let mut s = HttpSession::open(http.addr).await.unwrap();
    for (tool, args) in &table {
        let r = s.call(tool, args.clone()).await.unwrap();
        assert_clean("tools/http", &format!("{tool} {args}"), &r.to_string());
    }
    for (name, code) in [
        ("everything", everything_program()),
        ("thrown error", THROWING_PROGRAM.into()),
        ("grep", grep_program()),
    ] {
        let r = s.call("run_code", run(code)).await.unwrap();
        let doc = r["structuredContent"].clone();
        assert_clean("code/http", name, &r.to_string());
        match name {
            "everything" => check_everything("code/http", &doc),
            "grep" => check_grep("code/http", &doc["result"]),
            _ => assert_eq!(doc["ok"], false),
        }
    }

    // kubecode run: the same programs from a terminal.
    for (name, code) in [
        ("everything", everything_program()),
        ("thrown error", THROWING_PROGRAM.into()),
        ("grep", grep_program()),
    ] {
        let file = dir.path().join("program.ts");
        std::fs::write(&file, code).unwrap();
        let out = std::process::Command::new(binary())
            .arg("run")
            .arg(&file)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(big)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let doc = check_run("kubecode run", name, &text);
        assert_clean(
            "kubecode run (stderr)",
            name,
            &String::from_utf8_lossy(&out.stderr),
        );
        match name {
            "everything" => check_everything("kubecode run", &doc),
            "grep" => check_grep("kubecode run", &doc["result"]),
            _ => assert_eq!(doc["ok"], false),
        }
    }

    // kubecode demo: the demo's own Secret, whose URL the ledger logs.
    let out = std::process::Command::new(binary())
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(
        "kubecode demo",
        "health scan",
        &String::from_utf8_lossy(&out.stdout),
    );
}
