//! Observability over real MCP sessions on the HTTP transport, against kubesim: `GET
//! /metrics` parsed by Prometheus' own OpenMetrics parser (Python `prometheus_client`,
//! installed by scripts/install-test-deps) with its counters moving as runs happen, the
//! bearer token rule on `/metrics`, and the audit log's `run` records holding each run and
//! no Secret value of the cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use bench::http_session::{HttpServer, HttpSession};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// The fixture's Secret values (`billing/db`, `billing/chart-db`), laid over the demo's.
const FIXTURE_VALUES: &[&str] = &[
    "Tr0ub4dor&3-horse-battery",
    "ak_live_51HxYzQ8p2Lm",
    "h3lm-Rend3red-S3cret",
];

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kubecode"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's Python with `prometheus_client` (scripts/install-test-deps puts it there).
fn parser_python() -> PathBuf {
    let venv = std::env::var_os("KUBESIM_HELM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/helm-venv"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} has no prometheus_client: run scripts/install-test-deps (it installs prometheus-client into the venv), or set KUBESIM_HELM_VENV",
        venv.display()
    );
    python
}

/// Every sample of an exposition, as `name{label="value",...}` → value, parsed by
/// `prometheus_client`'s strict OpenMetrics parser (which fails on any malformed line).
fn parse(python: &Path, text: &str) -> BTreeMap<String, f64> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;
    let output = Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::get(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let response = client
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn scrape(python: &Path, addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, content_type, text) = get(addr, "/metrics", None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse(python, &text)
}

fn sample(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

async fn run(session: &mut HttpSession, code: &str, extra: Value) -> Value {
    let mut args = json!({ "code": code });
    if let Value::Object(e) = extra {
        args.as_object_mut().unwrap().extend(e);
    }
    let result = session.call("run_code", args).await.unwrap();
    result["structuredContent"].clone()
}

async fn cluster(dir: &Path, faults: &[&str]) -> kubesim::RunningServer {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redaction");
    let snapshot = bench::cluster::demo_with(&fixtures).expect("the fixtures load");
    let config = kubesim::ServerConfig {
        faults: faults
            .iter()
            .map(|f| kubesim::FaultRule::parse(f).unwrap())
            .collect(),
        ..kubesim::ServerConfig::default()
    };
    let server = kubesim::serve(snapshot, config).await.expect("kubesim");
    server
        .write_kubeconfig(&dir.join("kubeconfig"))
        .expect("kubeconfig");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_as_runs_happen() {
    let python = parser_python();
    let dir = tempfile::tempdir().unwrap();
    // Two 429s on the first pod lists: the transport retries them.
    let _api = cluster(
        dir.path(),
        &["throttle=1,count=2,retry-after=0,path=^/api/v1/namespaces/default/pods$"],
    )
    .await;
    let server = HttpServer::start(binary(), &dir.path().join("kubeconfig"))
        .await
        .unwrap();
    let before = scrape(&python, server.addr).await;
    assert_eq!(sample(&before, "kubecode_active_sessions{}"), 0.0);
    assert_eq!(
        sample(&before, "kubecode_run_duration_seconds_count{}"),
        0.0
    );

    let mut session = HttpSession::open(server.addr).await.unwrap();
    let ok = run(
        &mut session,
        "const pods = await tools.kubernetes.list({kind: 'Pod', namespace: 'default'}); return pods.length;",
        json!({}),
    )
    .await;
    assert_eq!(ok["ok"], true, "{ok}");
    let failed = run(
        &mut session,
        "await tools.kubernetes.get({kind: 'Pod', namespace: 'default', name: 'no-such-pod'}); return 1;",
        json!({}),
    )
    .await;
    assert_eq!(failed["ok"], false, "{failed}");
    let limited = run(
        &mut session,
        "await sleep(5000); return 1;",
        json!({"timeoutMs": 200}),
    )
    .await;
    assert_eq!(limited["error"]["code"], "LimitExceeded", "{limited}");
    let thrown = run(&mut session, "throw new Error('mine');", json!({})).await;
    assert_eq!(thrown["ok"], false);

    let after = scrape(&python, server.addr).await;
    let moved = |key: &str| sample(&after, key) - sample(&before, key);
    assert_eq!(
        sample(&after, "kubecode_active_sessions{}"),
        1.0,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_runs_total{outcome="ok"}"#),
        1.0,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_runs_total{outcome="tool_error"}"#),
        1.0,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_runs_total{outcome="limit"}"#),
        1.0,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_runs_total{outcome="program_error"}"#),
        1.0,
        "{after:#?}"
    );
    assert_eq!(moved("kubecode_run_duration_seconds_count{}"), 4.0);
    // The limited run took at least its 200 ms.
    assert!(
        moved("kubecode_run_duration_seconds_sum{}") >= 0.2,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_limit_hits_total{limit="wall_clock"}"#),
        1.0,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_tool_calls_total{function="kubernetes.list",outcome="ok"}"#),
        1.0,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_tool_calls_total{function="kubernetes.get",outcome="NotFound"}"#),
        1.0,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_tool_calls_total{function="run_code",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"kubecode_api_requests_total{code="404",verb="GET"}"#),
        1.0,
        "{after:#?}"
    );
    assert!(
        sample(
            &after,
            r#"kubecode_api_requests_total{code="200",verb="GET"}"#
        ) >= 2.0
    );
    assert_eq!(
        moved(r#"kubecode_api_requests_total{code="429",verb="GET"}"#),
        2.0,
        "{after:#?}"
    );
    assert_eq!(
        moved(r#"kubecode_api_retries_total{code="429",verb="GET"}"#),
        2.0
    );
    assert_eq!(
        moved(r#"kubecode_api_throttles_total{code="429",verb="GET"}"#),
        2.0
    );
    // `serve` runs programs in worker processes: the pool is warm, none is running now, and
    // the session keeps its own.
    assert!(
        sample(&after, r#"kubecode_sandbox_workers{state="warm"}"#) >= 1.0,
        "{after:#?}"
    );
    assert_eq!(
        sample(&after, r#"kubecode_sandbox_workers{state="running"}"#),
        0.0
    );
    assert_eq!(
        sample(&after, r#"kubecode_sandbox_workers{state="kept"}"#),
        1.0,
        "{after:#?}"
    );
    assert_eq!(sample(&after, "kubecode_runs_in_progress{}"), 0.0);
    // No label carries a name or anything the client sent.
    for key in after.keys() {
        assert!(
            !key.contains("no-such-pod") && !key.contains("mine") && !key.contains("default"),
            "{key}"
        );
    }
    // A second session counts while it is open.
    let _second = HttpSession::open(server.addr).await.unwrap();
    let now = scrape(&python, server.addr).await;
    assert_eq!(sample(&now, "kubecode_active_sessions{}"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_take_the_bearer_token_when_the_server_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let _api = cluster(dir.path(), &[]).await;
    let token = "metrics-test-token-0123456789";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let server = HttpServer::start_with(
        binary(),
        &dir.path().join("kubeconfig"),
        &["--auth-token-file", token_file.to_str().unwrap()],
    )
    .await
    .unwrap();
    let (status, _, _) = get(server.addr, "/metrics", None).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(server.addr, "/metrics", Some("wrong-token-wrong-token")).await;
    assert_eq!(status, 401);
    let (status, _, body) = get(server.addr, "/metrics", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("kubecode_runs_total{outcome=\"ok\"} 0") && body.ends_with("# EOF\n"),
        "{body}"
    );
    let (status, _, _) = get(server.addr, "/healthz", None).await;
    assert_eq!(status, 200);
}

/// Every form of every Secret value of the cluster that must not be in the log.
fn forbidden(values: &[String]) -> Vec<(String, String)> {
    let mut forms = Vec::new();
    for v in values {
        for e in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ] {
            forms.push((v.clone(), e.encode(v).trim_end_matches('=').to_string()));
        }
        forms.push((v.clone(), v.clone()));
    }
    forms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_holds_each_run_and_no_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    let _api = cluster(dir.path(), &[]).await;
    let log = dir.path().join("audit.log");
    let server = HttpServer::start_with(
        binary(),
        &dir.path().join("kubeconfig"),
        &[
            "--audit-log",
            log.to_str().unwrap(),
            "--output-limit",
            "2000000",
        ],
    )
    .await
    .unwrap();
    let mut session = HttpSession::open(server.addr).await.unwrap();
    let secrets = "return await tools.kubernetes.list({kind: 'Secret', allNamespaces: true});";
    let env = "const pods = await tools.kubernetes.list({kind: 'Pod', allNamespaces: true});\n\
               return pods.map(p => p.spec.containers.map(c => c.env ?? []));";
    let logs = "const pods = await tools.kubernetes.list({kind: 'Pod', allNamespaces: true});\n\
                const out = [];\n\
                for (const p of pods) {\n\
                  try { out.push(await tools.kubernetes.logs({namespace: p.metadata.namespace, name: p.metadata.name})); } catch (e) { out.push(e.code); }\n\
                }\n\
                return out;";
    // A program that holds a Secret value itself (as if the model had guessed it) and a
    // credential shape: the log keeps neither.
    let guess = format!(
        "// password={}\nconst guess = '{}';\nconst s = await tools.kubernetes.get({{kind: 'Secret', namespace: 'payments', name: 'payments-db'}});\nreturn s.data.password === guess;",
        FIXTURE_VALUES[1],
        kubesim::demo::SECRET_PASSWORD
    );
    let mut secret_values: Vec<String> = FIXTURE_VALUES.iter().map(|s| s.to_string()).collect();
    secret_values.push(kubesim::demo::SECRET_PASSWORD.to_string());
    let mut results = Vec::new();
    for program in [secrets, env, logs, guess.as_str()] {
        let doc = run(&mut session, program, json!({})).await;
        assert_eq!(doc["ok"], true, "{doc}");
        results.push(doc);
    }
    // The runs did read the values (as tokens): the log is checked after real exposure.
    let secrets_text = results[0]["result"].to_string();
    assert!(secrets_text.contains("[secret:"), "{secrets_text}");
    let logs_text = results[2]["result"].to_string();
    assert!(logs_text.contains("[secret:"), "{logs_text}");
    let failed = run(
        &mut session,
        "await sleep(5000); return 1;",
        json!({"timeoutMs": 150}),
    )
    .await;
    assert_eq!(failed["ok"], false);

    let text = std::fs::read_to_string(&log).unwrap();
    for (value, form) in forbidden(&secret_values) {
        assert!(
            !text.contains(&form),
            "the audit log holds a form of the Secret value {value:?}: {form:?}\n{text}"
        );
    }
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let runs: Vec<&Value> = records.iter().filter(|r| r["event"] == "run").collect();
    assert_eq!(runs.len(), 5, "{text}");
    let calls = records.iter().filter(|r| r["event"] == "call").count();
    let listed: usize = runs
        .iter()
        .map(|r| r["calls"].as_array().unwrap().len())
        .sum();
    assert_eq!(calls, listed, "one call record per call a run made");
    for r in &runs {
        assert_eq!(r["tool"], "run_code");
        assert_eq!(r["caller"], "http");
        assert_eq!(r["session"], runs[0]["session"]);
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(r["sha256"].as_str().unwrap().len(), 64);
        assert!(r["resultChars"].as_u64().is_some() && r["ms"].as_u64().is_some());
    }
    // The program as sent, scrubbed: its hash is of the text the model sent.
    assert_eq!(runs[0]["program"], secrets);
    assert_eq!(runs[0]["sha256"], sha256_hex(secrets));
    assert_eq!(runs[0]["calls"], json!(["kubernetes.list"]));
    assert_eq!(runs[0]["outcome"], "ok");
    assert!(
        runs[0]["resultChars"].as_u64().unwrap() as usize
            >= results[0]["result"].to_string().chars().count()
    );
    let guessed = runs[3]["program"].as_str().unwrap();
    assert!(
        guessed.contains("tools.kubernetes.get") && guessed.contains("[secret:"),
        "{guessed}"
    );
    assert_eq!(runs[3]["sha256"], sha256_hex(&guess));
    assert_eq!(runs[4]["outcome"], "limit");
    assert_eq!(runs[4]["limit"], "wall_clock");
    assert_eq!(runs[4]["code"], "LimitExceeded");
    assert_eq!(runs[4]["calls"], json!([]));
}

fn sha256_hex(text: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// A loopback OTLP/HTTP receiver: every `POST /v1/traces` body, decoded.
#[derive(Clone, Default)]
struct Receiver {
    spans: std::sync::Arc<std::sync::Mutex<Vec<Span>>>,
}

type Span = opentelemetry_proto::tonic::trace::v1::Span;

impl Receiver {
    async fn start() -> (Receiver, SocketAddr) {
        use prost::Message;
        let receiver = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = receiver.spans.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let spans = spans.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let spans = spans.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let body = req.into_body().collect().await?.to_bytes();
                                assert_eq!(path, "/v1/traces");
                                let export = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body)
                                .expect("an OTLP protobuf export");
                                let mut all = spans.lock().unwrap();
                                for rs in export.resource_spans {
                                    let service = rs.resource.as_ref().and_then(|r| {
                                        r.attributes
                                            .iter()
                                            .find(|a| a.key == "service.name")
                                            .cloned()
                                    });
                                    assert!(
                                        format!("{service:?}").contains("kubecode"),
                                        "service.name: {service:?}"
                                    );
                                    for ss in rs.scope_spans {
                                        all.extend(ss.spans);
                                    }
                                }
                                Ok::<_, hyper::Error>(
                                    http::Response::builder()
                                        .header("content-type", "application/x-protobuf")
                                        .body(Full::new(Bytes::new()))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (receiver, addr)
    }

    /// The spans received once `done` holds for them, within 20 s.
    async fn wait_for(&self, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        for _ in 0..200 {
            {
                let spans = self.spans.lock().unwrap();
                if done(&spans) {
                    return spans.clone();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let spans = self.spans.lock().unwrap();
        panic!(
            "the expected spans did not arrive: {:#?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
}

/// `kubecode serve` over HTTP in code mode with these environment variables.
async fn serve_with_env(
    kubeconfig: &Path,
    env: &[(&str, String)],
) -> (tokio::process::Child, SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(binary())
        .args([
            "serve",
            "--transport",
            "http",
            "--addr",
            "127.0.0.1:0",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("kubecode serve said where it listens");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim_end_matches("/mcp").parse().unwrap();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_an_otlp_receiver_linked_to_the_clients_trace() {
    let dir = tempfile::tempdir().unwrap();
    let _api = cluster(dir.path(), &[]).await;
    let (receiver, otlp) = Receiver::start().await;
    let (_server, addr) = serve_with_env(
        &dir.path().join("kubeconfig"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ],
    )
    .await;
    let mut session = HttpSession::open(addr).await.unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let program = "const pods = await tools.kubernetes.list({kind: 'Pod', namespace: 'payments'});\n\
                   const p = await tools.kubernetes.get({kind: 'Pod', namespace: 'payments', name: pods[0].metadata.name});\n\
                   return p.metadata.name;";
    let result = session
        .request(
            "tools/call",
            json!({"name": "run_code", "arguments": {"code": program},
                   "_meta": {"traceparent": format!("00-{trace_id}-{client_span}-01")}}),
        )
        .await
        .unwrap();
    assert_eq!(result["structuredContent"]["ok"], true, "{result}");
    // A request without trace context starts a trace of its own.
    session.request("tools/list", json!({})).await.unwrap();

    let spans = receiver
        .wait_for(|spans| {
            spans.iter().any(|s| s.name == "MCP tools/list")
                && spans.iter().any(|s| s.name == "run_code")
                && spans
                    .iter()
                    .filter(|s| s.name.starts_with("kubernetes."))
                    .count()
                    >= 2
        })
        .await;
    let named = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    let one = |name: &str| -> &Span {
        let found = named(name);
        assert_eq!(
            found.len(),
            1,
            "one {name} span: {:#?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        found[0]
    };
    let call = one("MCP tools/call");
    assert_eq!(
        hex(&call.trace_id),
        trace_id,
        "the client's trace continues"
    );
    assert_eq!(
        hex(&call.parent_span_id),
        client_span,
        "under the client's span"
    );
    let tool = call
        .attributes
        .iter()
        .find(|a| a.key == "mcp.tool")
        .map(|a| format!("{:?}", a.value));
    assert!(tool.is_some_and(|t| t.contains("run_code")));
    let run = one("run_code");
    assert_eq!(
        run.parent_span_id, call.span_id,
        "the run is the request's child"
    );
    let list = one("kubernetes.list");
    let get = one("kubernetes.get");
    for tool_call in [list, get] {
        assert_eq!(
            tool_call.parent_span_id, run.span_id,
            "a tool call is the run's child"
        );
        let api: Vec<&Span> = spans
            .iter()
            .filter(|s| s.name == "GET" && s.parent_span_id == tool_call.span_id)
            .collect();
        assert!(
            !api.is_empty(),
            "{} made API requests: {spans:#?}",
            tool_call.name
        );
        for a in api {
            assert_eq!(
                a.kind,
                opentelemetry_proto::tonic::trace::v1::span::SpanKind::Client as i32
            );
        }
    }
    for s in [call, run, list, get] {
        assert_eq!(
            hex(&s.trace_id),
            trace_id,
            "{} is in the client's trace",
            s.name
        );
    }
    let listed = one("MCP tools/list");
    assert!(
        listed.parent_span_id.is_empty(),
        "a request without traceparent is a root"
    );
    assert_ne!(hex(&listed.trace_id), trace_id);
}
