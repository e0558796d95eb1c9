//! The protocol versions (2025-06-18, 2025-11-25 and 2026-07-28, which has no `initialize`),
//! what a session keeps and a stateless request does not (`state`, stable Secret tokens),
//! `--stateless`, log messages (`logging/setLevel`), completion and the resource template,
//! through rmcp's client over stdio and raw Streamable HTTP, against the demo cluster.
#![allow(deprecated)] // logging is deprecated by SEP-2577 but part of 2025-06-18 and 2025-11-25

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ErrorCode, Implementation,
    LoggingLevel, LoggingMessageNotificationParam, ProtocolVersion, ReadResourceRequestParams,
    SetLevelRequestParams,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceError, ServiceExt};
use serde_json::{Value, json};

/// A client that asks for one protocol version and keeps the log messages it receives.
struct Recorder {
    config: ClientConfig,
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }
}

type Logs = Arc<Mutex<Vec<LoggingMessageNotificationParam>>>;

fn recorder(version: ProtocolVersion) -> (Recorder, Logs) {
    let logs = Logs::default();
    let config = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("protocol-test", "0"),
    )
    .with_protocol_version(version);
    (
        Recorder {
            config,
            logs: logs.clone(),
        },
        logs,
    )
}

fn child() -> TokioChildProcess {
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubecode")).configure(|cmd| {
        cmd.args(["serve", "--demo"]);
    });
    TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .expect("kubecode starts")
        .0
}

async fn run(s: &RunningService<RoleClient, Recorder>, code: &str) -> Value {
    let args = json!({ "code": code });
    let Value::Object(map) = args else {
        unreachable!()
    };
    let r = s
        .call_tool(CallToolRequestParams::new("run_code").with_arguments(map))
        .await
        .expect("run_code answers");
    let out = r.structured_content.expect("structured result");
    assert_eq!(out["ok"], true, "{out}");
    out["result"].clone()
}

/// Returns the value `state` held under "k" before this run, and stores "v".
const STATE_PROGRAM: &str =
    r#"const before = state.get("k") ?? null; state.set("k", "v"); return before;"#;

/// The first Secret token of the demo cluster.
const TOKEN_PROGRAM: &str = r#"const s = await tools.kubernetes.list({kind: "Secret", allNamespaces: true});
const m = JSON.stringify(s).match(/\[secret:[0-9a-f]+\]/); return m ? m[0] : null;"#;

#[tokio::test]
async fn stdio_answers_each_version_it_speaks_and_falls_back_for_others() {
    for (asked, answered) in [
        (ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_06_18),
        (ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2025_11_25),
        // Too old for kubecode: it offers its newest version with initialize.
        (ProtocolVersion::V_2024_11_05, ProtocolVersion::V_2025_11_25),
        // 2026-07-28 has no initialize; a client naming it there gets the newest that has one.
        (ProtocolVersion::V_2026_07_28, ProtocolVersion::V_2025_11_25),
    ] {
        let (client, _) = recorder(asked.clone());
        let s = client.serve(child()).await.expect("initialize");
        let info = s.peer_info().expect("server info");
        assert_eq!(info.protocol_version, answered, "asked {asked}");
        s.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn stdio_2026_07_28_without_initialize_keeps_the_connection_as_one_session() {
    let (client, _) = recorder(ProtocolVersion::V_2026_07_28);
    let s = client
        .serve_with_lifecycle(
            child(),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover");
    let info = s.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);
    // Over stdio the process is the session, whatever the version: state and tokens stay.
    assert_eq!(run(&s, STATE_PROGRAM).await, Value::Null);
    assert_eq!(run(&s, STATE_PROGRAM).await, "v");
    let first = run(&s, TOKEN_PROGRAM).await;
    assert!(
        first.as_str().is_some_and(|t| t.starts_with("[secret:")),
        "{first}"
    );
    assert_eq!(run(&s, TOKEN_PROGRAM).await, first);
    let tools = s.list_all_tools().await.unwrap();
    let run_code = tools.iter().find(|t| t.name == "run_code").unwrap();
    assert!(
        !run_code
            .description
            .as_deref()
            .unwrap_or("")
            .contains("no MCP session"),
        "stdio keeps a session: {:?}",
        run_code.description
    );
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn log_messages_follow_the_level_the_client_sets() {
    let (client, logs) = recorder(ProtocolVersion::V_2025_11_25);
    let s = client.serve(child()).await.expect("initialize");
    let caps = s.peer_info().unwrap().capabilities.clone();
    assert!(
        caps.logging.is_some() && caps.completions.is_some(),
        "{caps:?}"
    );
    // Nothing until the client asks.
    run(&s, "return 1").await;
    assert!(logs.lock().unwrap().is_empty());
    s.set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .unwrap();
    run(&s, "return 1").await;
    let args = json!({"code": "return 1"});
    let failed = s
        .call_tool(
            CallToolRequestParams::new("no_such_tool")
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(failed.is_error, Some(true));
    // Notifications arrive on their own; give them a moment.
    for _ in 0..50 {
        if logs.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    {
        let got = logs.lock().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].level, LoggingLevel::Info);
        assert_eq!(got[0].data["tool"], "run_code");
        assert_eq!(got[0].data["ok"], true);
        assert_eq!(got[1].level, LoggingLevel::Warning);
        assert_eq!(got[1].data["tool"], "no_such_tool");
        assert_eq!(got[1].data["ok"], false);
    }
    // At error, a successful call says nothing.
    s.set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await
        .unwrap();
    run(&s, "return 1").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(logs.lock().unwrap().len(), 2);
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn completion_and_the_types_template() {
    let (client, _) = recorder(ProtocolVersion::V_2025_06_18);
    let s = client.serve(child()).await.expect("initialize");
    let templates = s.list_all_resource_templates().await.unwrap();
    assert_eq!(templates.len(), 1, "{templates:?}");
    let template = templates[0].uri_template.clone();
    assert_eq!(template, "kubecode://types/{name}.d.ts");
    let all = s
        .complete_resource_argument(&template, "name", "", None)
        .await
        .unwrap();
    for name in ["index", "kinds", "kubernetes", "helm"] {
        assert!(all.values.iter().any(|v| v == name), "{name}: {all:?}");
    }
    // Every completed name reads as a resource.
    for name in &all.values {
        let uri = template.replace("{name}", name);
        let r = s
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await;
        assert!(r.is_ok(), "{uri}: {r:?}");
    }
    let ku = s
        .complete_resource_argument(&template, "name", "ku", None)
        .await
        .unwrap();
    assert_eq!(ku.values, vec!["kubernetes".to_string()]);
    let prompt = s
        .complete_prompt_argument("code-mode", "anything", "", None)
        .await
        .unwrap();
    assert!(prompt.values.is_empty(), "code-mode takes no arguments");
    match s.complete_prompt_argument("nope", "x", "", None).await {
        Err(ServiceError::McpError(e)) => {
            assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
            assert!(e.message.contains("code-mode"), "{}", e.message);
        }
        other => panic!("an unknown prompt is invalid params: {other:?}"),
    }
    match s
        .read_resource(ReadResourceRequestParams::new("kubecode://types/nope.d.ts"))
        .await
    {
        Err(ServiceError::McpError(e)) => {
            assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND);
            assert_eq!(
                e.data.as_ref().and_then(|d| d.get("uri")),
                Some(&json!("kubecode://types/nope.d.ts"))
            );
        }
        other => panic!("an unknown resource is not found: {other:?}"),
    }
    s.cancel().await.unwrap();
}

// --- Streamable HTTP ---

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args([
            "serve",
            "--demo",
            "--transport",
            "http",
            "--addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubecode starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server said where it listens")
            .expect("stderr line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim_end_matches("/mcp").parse().expect("an address");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Answer {
    status: u16,
    session: Option<String>,
    body: String,
}

impl Answer {
    /// The JSON-RPC response in a JSON or SSE body.
    fn message(&self) -> Value {
        let json = self
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| d.starts_with('{'))
            .find(|d| d.contains("\"result\"") || d.contains("\"error\""))
            .unwrap_or(self.body.trim());
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {}", self.body))
    }
}

async fn post(c: &Http, addr: SocketAddr, body: Value, headers: &[(&str, &str)]) -> Answer {
    let mut req = http::Request::post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = c
        .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes())
        .into_owned();
    Answer {
        status,
        session,
        body,
    }
}

/// A 2025-11-25 client over HTTP: `initialize`, then requests in its session (if it got one).
struct Legacy {
    headers: Vec<(String, String)>,
    session: Option<String>,
    instructions: String,
}

async fn legacy(c: &Http, addr: SocketAddr) -> Legacy {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "protocol-test", "version": "0"}}});
    let answer = post(c, addr, init, &[("mcp-protocol-version", "2025-11-25")]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let result = answer.message()["result"].clone();
    assert_eq!(result["protocolVersion"], "2025-11-25");
    let mut headers = vec![("mcp-protocol-version".to_string(), "2025-11-25".to_string())];
    if let Some(id) = &answer.session {
        headers.push(("mcp-session-id".to_string(), id.clone()));
    }
    let l = Legacy {
        headers,
        session: answer.session.clone(),
        instructions: result["instructions"].as_str().unwrap_or("").to_string(),
    };
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert!(l.post(c, addr, note).await.status < 300);
    l
}

impl Legacy {
    async fn post(&self, c: &Http, addr: SocketAddr, body: Value) -> Answer {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        post(c, addr, body, &headers).await
    }

    async fn request(&self, c: &Http, addr: SocketAddr, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let answer = self.post(c, addr, body).await;
        assert_eq!(answer.status, 200, "{method}: {}", answer.body);
        answer.message()["result"].clone()
    }
}

/// One 2026-07-28 request: no session, the version and capabilities in `_meta`.
async fn current(c: &Http, addr: SocketAddr, method: &str, mut params: Value) -> (Answer, Value) {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(name) = params["name"].as_str() {
        headers.push(("mcp-name", name));
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer = post(c, addr, body, &headers).await;
    assert_eq!(answer.status, 200, "{method}: {}", answer.body);
    let result = answer.message()["result"].clone();
    (answer, result)
}

fn run_params(code: &str) -> Value {
    json!({"name": "run_code", "arguments": {"code": code}})
}

fn run_result(result: &Value) -> Value {
    assert_eq!(result["structuredContent"]["ok"], true, "{result}");
    result["structuredContent"]["result"].clone()
}

fn run_code_description(tools: &Value) -> String {
    tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "run_code")
        .and_then(|t| t["description"].as_str())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn http_sessions_keep_state_and_tokens_and_2026_07_28_requests_stand_alone() {
    let s = start(&[]);
    let c = Client::builder(TokioExecutor::new()).build_http();

    // A 2025-11-25 session: state and Secret tokens last across its calls.
    let l = legacy(&c, s.addr).await;
    assert!(l.session.is_some(), "a session id");
    assert!(
        !l.instructions.contains("no MCP session"),
        "{}",
        l.instructions
    );
    let tools = l.request(&c, s.addr, "tools/list", json!({})).await;
    assert!(!run_code_description(&tools).contains("no MCP session"));
    let call = |code: &str| l.request(&c, s.addr, "tools/call", run_params(code));
    assert_eq!(run_result(&call(STATE_PROGRAM).await), Value::Null);
    assert_eq!(run_result(&call(STATE_PROGRAM).await), "v");
    let token = run_result(&call(TOKEN_PROGRAM).await);
    assert!(
        token.as_str().is_some_and(|t| t.starts_with("[secret:")),
        "{token}"
    );
    assert_eq!(run_result(&call(TOKEN_PROGRAM).await), token);

    // 2026-07-28 on the same server: server/discover names the three versions, and each
    // request is a session of its own, which the descriptions say.
    let (answer, discover) = current(&c, s.addr, "server/discover", json!({})).await;
    assert!(answer.session.is_none());
    assert_eq!(
        discover["supportedVersions"],
        json!(["2025-06-18", "2025-11-25", "2026-07-28"])
    );
    assert!(
        discover["instructions"]
            .as_str()
            .unwrap()
            .contains("no MCP session"),
        "{discover}"
    );
    let (_, tools) = current(&c, s.addr, "tools/list", json!({})).await;
    let description = run_code_description(&tools);
    assert!(description.contains("no MCP session"), "{description}");
    assert!(description.contains("empty state"), "{description}");
    // The note keeps code mode's two descriptions within their budget (CONTRACT §2).
    let search = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "search_tools")
        .and_then(|t| t["description"].as_str())
        .unwrap();
    let bpe = tiktoken_rs::o200k_base().unwrap();
    let tokens = bpe
        .encode_with_special_tokens(&format!("{description}{search}"))
        .len();
    assert!(tokens < 1000, "{tokens} o200k tokens");
    for _ in 0..2 {
        let (answer, result) = current(&c, s.addr, "tools/call", run_params(STATE_PROGRAM)).await;
        assert!(answer.session.is_none());
        assert_eq!(
            run_result(&result),
            Value::Null,
            "state does not outlive a request"
        );
    }
    let (_, first) = current(&c, s.addr, "tools/call", run_params(TOKEN_PROGRAM)).await;
    let (_, second) = current(&c, s.addr, "tools/call", run_params(TOKEN_PROGRAM)).await;
    let (first, second) = (run_result(&first), run_result(&second));
    assert!(
        first.as_str().is_some_and(|t| t.starts_with("[secret:")),
        "{first}"
    );
    assert_ne!(first, second, "each request has its own redaction key");
    assert_ne!(first, token);

    // A version kubecode does not speak is refused with the ones it does.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2099-01-01",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let refused = post(
        &c,
        s.addr,
        body,
        &[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "tools/list"),
        ],
    )
    .await;
    assert!(refused.body.contains("2026-07-28"), "{}", refused.body);
    assert!(refused.body.contains("error"), "{}", refused.body);

    // A per-request log level (2026-07-28 has no logging/setLevel) brings the call's message.
    let mut params = run_params("return 1");
    let body = {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/logLevel": "info",
        });
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
    };
    let logged = post(
        &c,
        s.addr,
        body,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "run_code"),
        ],
    )
    .await;
    assert!(
        logged.body.contains("notifications/message"),
        "{}",
        logged.body
    );
    assert!(
        logged.body.contains("\"tool\":\"run_code\""),
        "{}",
        logged.body
    );
}

#[tokio::test]
async fn stateless_http_has_no_sessions_and_says_so() {
    let s = start(&["--stateless"]);
    let c = Client::builder(TokioExecutor::new()).build_http();
    let l = legacy(&c, s.addr).await;
    assert!(l.session.is_none(), "--stateless gives no session id");
    assert!(
        l.instructions.contains("no MCP session"),
        "{}",
        l.instructions
    );
    let tools = l.request(&c, s.addr, "tools/list", json!({})).await;
    assert!(run_code_description(&tools).contains("no MCP session"));
    for _ in 0..2 {
        let r = l
            .request(&c, s.addr, "tools/call", run_params(STATE_PROGRAM))
            .await;
        assert_eq!(run_result(&r), Value::Null);
    }
    // 2026-07-28 requests work the same way here.
    let (_, result) = current(&c, s.addr, "tools/call", run_params("return 6 * 7")).await;
    assert_eq!(run_result(&result), 42);
}

#[test]
fn stateless_needs_http() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args(["serve", "--demo", "--stateless"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--transport http"), "{err}");
}
