//! Streamable HTTP: sessions, `/healthz`, Host and Origin checks, the bearer token, refusal
//! to listen beyond loopback without one, and several clients at once.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

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
            "--mode",
            "tools",
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
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

struct Answer {
    status: u16,
    session: Option<String>,
    body: String,
}

impl Answer {
    /// The JSON-RPC message in a JSON or SSE body.
    fn message(&self) -> Value {
        let json = self
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| d.starts_with('{'))
            .unwrap_or(self.body.trim());
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {}", self.body))
    }
}

async fn post(c: &Http, addr: SocketAddr, body: Value, headers: &[(&str, &str)]) -> Answer {
    let mut req = http::Request::post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
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

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "http-test", "version": "0"}}})
}

/// Opens a session and calls one tool; returns its structured result.
async fn session_call(
    c: &Http,
    addr: SocketAddr,
    auth: &[(&str, &str)],
    tool: &str,
    args: Value,
) -> Value {
    let init = post(c, addr, initialize(), auth).await;
    assert_eq!(init.status, 200, "{}", init.body);
    assert_eq!(init.message()["result"]["serverInfo"]["name"], "kubecode");
    let session = init.session.expect("a session id");
    let mut with_session = auth.to_vec();
    with_session.push(("mcp-session-id", &session));
    let note = post(
        c,
        addr,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        &with_session,
    )
    .await;
    assert!(note.status < 300, "{}", note.status);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}});
    let answer = post(c, addr, call, &with_session).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.message()["result"]["structuredContent"].clone()
}

#[tokio::test]
async fn sessions_health_and_concurrent_clients() {
    let s = start(&[]);
    let c = client();
    let health = c
        .get(format!("http://{}/healthz", s.addr).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let mut tasks = Vec::new();
    for ns in [
        "shop",
        "payments",
        "data",
        "ml",
        "monitoring",
        "kube-system",
    ] {
        let c = c.clone();
        let addr = s.addr;
        tasks.push(tokio::spawn(async move {
            let v = session_call(
                &c,
                addr,
                &[],
                "kube_list",
                json!({"kind": "pods", "namespace": ns}),
            )
            .await;
            (ns, v["count"].as_u64().unwrap())
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 37, "{counts:?}");
}

#[tokio::test]
async fn pods_logs_events_and_helm_over_http_without_secrets() {
    let s = start(&[]);
    let c = client();
    let pods = session_call(
        &c,
        s.addr,
        &[],
        "kube_list",
        json!({"kind": "pods", "namespace": "payments", "labelSelector": "app=ledger"}),
    )
    .await;
    let ledger = pods["items"][0]["name"].as_str().unwrap().to_string();
    let logs = session_call(
        &c,
        s.addr,
        &[],
        "kube_logs",
        json!({"name": ledger, "namespace": "payments"}),
    )
    .await;
    assert!(logs["text"].as_str().unwrap().contains("ledger ready"));
    let events = session_call(&c, s.addr, &[], "kube_events", json!({"namespace": "ml"})).await;
    assert!(events["count"].as_u64().unwrap() > 0);
    let release = session_call(
        &c,
        s.addr,
        &[],
        "helm_get",
        json!({"name": "storefront", "namespace": "shop"}),
    )
    .await;
    assert_eq!(release["revision"], 2);
    let secret = session_call(
        &c,
        s.addr,
        &[],
        "kube_get",
        json!({"kind": "secret", "name": "payments-db", "namespace": "payments"}),
    )
    .await;
    for answer in [&logs, &events, &release, &secret] {
        assert!(
            !answer.to_string().contains(kubesim::demo::SECRET_PASSWORD),
            "plaintext leaked over HTTP"
        );
    }
}

#[tokio::test]
async fn host_and_origin_checks_stop_dns_rebinding() {
    let s = start(&[]);
    let c = client();
    let bad_host = post(&c, s.addr, initialize(), &[("host", "evil.example.com")]).await;
    assert_eq!(bad_host.status, 403, "{}", bad_host.body);
    let bad_origin = post(
        &c,
        s.addr,
        initialize(),
        &[("origin", "https://evil.example.com")],
    )
    .await;
    assert_eq!(bad_origin.status, 403, "{}", bad_origin.body);
    let local_origin = post(
        &c,
        s.addr,
        initialize(),
        &[("origin", "http://localhost:3000")],
    )
    .await;
    assert_eq!(local_origin.status, 200, "{}", local_origin.body);
}

#[tokio::test]
async fn allowed_hosts_admit_a_services_names_and_nothing_else() {
    // What the Helm chart passes: the Service's DNS names, which clients in the cluster send.
    let s = start(&[
        "--allowed-host",
        "kubecode.tools.svc",
        "--allowed-host",
        "mcp.example.com:443",
    ]);
    let c = client();
    for host in [
        "kubecode.tools.svc:8080",
        "kubecode.tools.svc",
        "mcp.example.com:443",
        "localhost",
    ] {
        let answer = post(&c, s.addr, initialize(), &[("host", host)]).await;
        assert_eq!(answer.status, 200, "{host}: {}", answer.body);
    }
    // A name pinned to a port admits no other port; other names stay out.
    for host in [
        "mcp.example.com:8443",
        "kubecode.other.svc",
        "evil.example.com",
    ] {
        let answer = post(&c, s.addr, initialize(), &[("host", host)]).await;
        assert_eq!(answer.status, 403, "{host}: {}", answer.body);
    }
}

#[tokio::test]
async fn the_bearer_token_is_required_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token-0123456789abcdef\n").unwrap();
    let s = start(&["--auth-token-file", token_file.to_str().unwrap()]);
    let c = client();
    let none = post(&c, s.addr, initialize(), &[]).await;
    assert_eq!(none.status, 401);
    assert!(none.body.contains("bearer token"), "{}", none.body);
    let wrong = post(
        &c,
        s.addr,
        initialize(),
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let auth = [("authorization", "Bearer s3cret-token-0123456789abcdef")];
    let v = session_call(
        &c,
        s.addr,
        &auth,
        "kube_get",
        json!({"kind": "deploy", "name": "cart", "namespace": "shop"}),
    )
    .await;
    assert_eq!(v["metadata"]["name"], "cart");
    let health = c
        .get(format!("http://{}/healthz", s.addr).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "health checks need no token");
}

#[test]
fn no_token_no_listening_beyond_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args([
            "serve",
            "--demo",
            "--mode",
            "tools",
            "--transport",
            "http",
            "--addr",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0") && err.contains("--auth-token-file"),
        "{err}"
    );
}

#[test]
fn modes_and_logs_follow_the_contract() {
    // A client that closes stdin at once: the server stops, and nothing but the protocol
    // ever goes to stdout.
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args(["serve", "--demo"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "nothing but the protocol goes to stdout"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args(["serve", "--demo"])
        .env("MCP_MODE", "sideways")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("use code, tools or all"));
}
