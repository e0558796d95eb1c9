//! Replicas that scale out: two `kubecode serve --transport http` processes sharing a key and a
//! Redis (started here, on a free loopback port, without persistence) answer alternate
//! requests of one client session. Its `state` and its Secret tokens agree whichever replica
//! answers, another session's tokens differ, and a session id altered by one byte is refused
//! by both.
//!
//! Needs `redis-server` (Debian's package, installed by scripts/install-test-deps).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// A child process killed when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a Redis of our own; `None` (with the reason printed) when redis-server is missing.
fn start_redis() -> Option<(Killed, String)> {
    let port = free_port();
    let child = match Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => Killed(c),
        Err(e) => {
            eprintln!(
                "SKIPPED: redis-server cannot be started ({e}); install it with scripts/install-test-deps (Debian's redis-server package)"
            );
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.write_all(b"PING\r\n").unwrap();
            let mut buf = [0u8; 7];
            if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not answer PING"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((child, format!("redis://127.0.0.1:{port}/0")))
}

fn start_replica(
    key_file: &std::path::Path,
    redis_url: &str,
    audit: &std::path::Path,
) -> (Killed, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .args([
            "serve",
            "--demo",
            "--mode",
            "all",
            "--transport",
            "http",
            "--addr",
            "127.0.0.1:0",
            "--shared-key-file",
            key_file.to_str().unwrap(),
            "--redis-url",
            redis_url,
            "--audit-log",
            audit.to_str().unwrap(),
            "--allow-changes",
            "--plan-expiry",
            "3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubecode starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("the replica stopped before listening: {seen:#?}");
        };
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim_end_matches("/mcp").parse().expect("an address");
        }
        seen.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), addr)
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Answer {
    status: u16,
    session: Option<String>,
    body: String,
}

impl Answer {
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

async fn post(c: &Http, addr: SocketAddr, body: Value, session: Option<&str>) -> Answer {
    let mut req = http::Request::post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
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

/// Opens a session on one replica; its id.
async fn open_session(c: &Http, addr: SocketAddr) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "replicas-test", "version": "0"}}});
    let answer = post(c, addr, init, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let session = answer.session.expect("a session id");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let answer = post(c, addr, note, Some(&session)).await;
    assert!(answer.status < 300, "{} {}", answer.status, answer.body);
    session
}

/// Calls a tool in a session on one replica; its structured result.
async fn call(c: &Http, addr: SocketAddr, session: &str, tool: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}});
    let answer = post(c, addr, body, Some(session)).await;
    assert_eq!(answer.status, 200, "{tool} on {addr}: {}", answer.body);
    let message = answer.message();
    let result = &message["result"];
    assert_ne!(result["isError"], true, "{tool} on {addr}: {message}");
    result["structuredContent"].clone()
}

async fn run(c: &Http, addr: SocketAddr, session: &str, code: &str) -> Value {
    let doc = call(c, addr, session, "run_code", json!({"code": code})).await;
    assert_eq!(doc["ok"], true, "{code} on {addr}: {doc}");
    doc["result"].clone()
}

async fn password_token(c: &Http, addr: SocketAddr, session: &str) -> String {
    let secret = call(
        c,
        addr,
        session,
        "kube_get",
        json!({"kind": "secret", "name": "payments-db", "namespace": "payments"}),
    )
    .await;
    let token = secret["data"]["password"]
        .as_str()
        .unwrap_or_else(|| panic!("no password in {secret}"))
        .to_string();
    assert!(token.starts_with("[secret:"), "{token}");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_one_session() {
    let Some((_redis, redis_url)) = start_redis() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("shared-key");
    let mut key = [0u8; 48];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut key)
        .unwrap();
    std::fs::write(&key_file, key).unwrap();
    let (audit_a, audit_b) = (dir.path().join("audit-a"), dir.path().join("audit-b"));
    let (_a, a) = start_replica(&key_file, &redis_url, &audit_a);
    let (_b, b) = start_replica(&key_file, &redis_url, &audit_b);
    let c: Http = Client::builder(TokioExecutor::new()).build_http();

    // One session, opened on A; its requests alternate between A and B.
    let session = open_session(&c, a).await;
    run(
        &c,
        a,
        &session,
        "state.set('seen', {count: 1, by: 'A'}); return 'ok'",
    )
    .await;
    let on_b = run(
        &c,
        b,
        &session,
        "const s = state.get('seen'); state.set('seen', {count: s.count + 1, by: 'B'}); return s",
    )
    .await;
    assert_eq!(
        on_b,
        json!({"count": 1, "by": "A"}),
        "B reads what A stored"
    );
    let on_a = run(&c, a, &session, "return [state.get('seen'), state.keys()]").await;
    assert_eq!(
        on_a,
        json!([{"count": 2, "by": "B"}, ["seen"]]),
        "and A what B stored"
    );

    let token_a = password_token(&c, a, &session).await;
    let token_b = password_token(&c, b, &session).await;
    assert_eq!(
        token_a, token_b,
        "one Secret, one token, whichever replica answers"
    );
    let program = "const s = await tools.kubernetes.get({kind: 'Secret', name: 'payments-db', namespace: 'payments'}); return s.data.password";
    assert_eq!(
        run(&c, b, &session, program).await,
        json!(token_a),
        "code mode too"
    );

    // Another session (opened on B) has unrelated tokens and its own state.
    let other = open_session(&c, b).await;
    assert_ne!(other, session);
    let other_token = password_token(&c, a, &other).await;
    assert_ne!(other_token, token_a, "another session, another token");
    assert_eq!(password_token(&c, b, &other).await, other_token);
    assert_eq!(run(&c, a, &other, "return state.keys()").await, json!([]));

    // The audit records of one session name it alike on both replicas, and not by its handle.
    let sessions_in = |path: &std::path::Path| -> std::collections::BTreeSet<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event"] == "call")
            .map(|r| r["session"].as_str().unwrap().to_string())
            .collect()
    };
    let (on_a, on_b) = (sessions_in(&audit_a), sessions_in(&audit_b));
    assert_eq!(
        on_a.len(),
        2,
        "two sessions called functions on A: {on_a:?}"
    );
    assert_eq!(on_a, on_b, "the same ids on both replicas");
    assert!(!on_a.contains(&session) && !on_a.contains(&other));

    // A change plan made on A is extended on B (tools mode's `plan` argument) and decided on
    // once across the replicas: B takes it (nobody approves it here, so it expires), and A
    // refuses it (used, or expired by then) rather than applying it.
    let planned = call(
        &c,
        a,
        &session,
        "kube_cordon",
        json!({"name": "demo-worker"}),
    )
    .await;
    let id = planned["plan"]["id"].as_str().unwrap().to_string();
    let scale = json!({"kind": "deploy", "name": "grafana", "namespace": "monitoring", "replicas": 2, "plan": id});
    let extended = call(&c, b, &session, "kube_scale", scale).await;
    assert_eq!(extended["plan"]["id"], json!(id), "{extended}");
    assert_eq!(
        extended["plan"]["changes"].as_array().unwrap().len(),
        2,
        "{extended}"
    );
    let apply = |n: u64| json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "apply_plan", "arguments": {"id": id}}});
    let on_b = post(&c, b, apply(4), Some(&session)).await.message();
    assert_eq!(
        on_b["result"]["structuredContent"]["decision"], "expired",
        "{on_b}"
    );
    let on_a = post(&c, a, apply(5), Some(&session)).await.message();
    assert_eq!(on_a["result"]["isError"], true, "{on_a}");
    let code = on_a["result"]["structuredContent"]["error"]["code"].as_str();
    assert!(
        code == Some("Used") || code == Some("Expired"),
        "refused, nothing sent: {on_a}"
    );

    // A session id altered by one byte is refused (404, as unknown) by both replicas.
    let mut altered = session.clone().into_bytes();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    for addr in [a, b] {
        let answer = post(&c, addr, list.clone(), Some(&altered)).await;
        assert_eq!(answer.status, 404, "{addr}: {}", answer.body);
        let answer = post(&c, addr, list.clone(), Some("made-up-session-id")).await;
        assert_eq!(answer.status, 404, "{addr}: {}", answer.body);
        let answer = post(&c, addr, list.clone(), Some(&session)).await;
        assert_eq!(answer.status, 200, "the real one still works on {addr}");
    }
}

#[test]
fn replicas_need_both_flags_a_long_key_and_a_reachable_redis() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "too-short\n").unwrap();
    let long = dir.path().join("long");
    std::fs::write(&long, "0123456789abcdef0123456789abcdef").unwrap();
    let serve = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
            .args([
                "serve",
                "--demo",
                "--transport",
                "http",
                "--addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env_remove("KUBECODE_REDIS_URL")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra:?} must not start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = serve(&["--shared-key-file", long.to_str().unwrap()]);
    assert!(e.contains("--redis-url"), "{e}");
    let e = serve(&["--redis-url", "redis://127.0.0.1:1/0"]);
    assert!(e.contains("--shared-key-file"), "{e}");
    let closed = free_port();
    let unreachable = format!("redis://127.0.0.1:{closed}/0");
    let e = serve(&[
        "--shared-key-file",
        short.to_str().unwrap(),
        "--redis-url",
        &unreachable,
    ]);
    assert!(e.contains("fewer than 32"), "{e}");
    let e = serve(&[
        "--shared-key-file",
        long.to_str().unwrap(),
        "--redis-url",
        &unreachable,
    ]);
    assert!(
        e.contains("cannot reach Redis") && e.contains("--redis-url"),
        "{e}"
    );
}
