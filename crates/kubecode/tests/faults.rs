//! Code mode under API-server faults (kubesim's latency, errors, 429 with Retry-After, dropped
//! connections, a server that stops mid-run), through real MCP sessions: calls retry within
//! bounds, a run reports its partial progress and which calls failed, nothing outlives the
//! wall limit, and the next run works.

use std::path::Path;
use std::time::{Duration, Instant};

use bench::cluster::{Served, serve};
use bench::session::Session;
use kubesim::{FaultKind, FaultRule};
use serde_json::{Value, json};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kubecode"))
}

async fn demo() -> Served {
    serve(kubesim::demo::snapshot()).await.expect("kubesim")
}

async fn run(s: &Session, code: &str, timeout_ms: u64) -> (Value, Duration) {
    let a = s
        .call("run_code", &json!({"code": code, "timeoutMs": timeout_ms}))
        .await
        .expect("run_code answered");
    (a.structured.expect("structuredContent"), a.elapsed)
}

const EVERY_NAMESPACE: &str = r#"
const namespaces = ["shop", "payments", "data", "ml", "monitoring", "kube-system", "default"];
const ok = [], failed = [];
for (const namespace of namespaces) {
  try { ok.push([namespace, (await tools.kubernetes.list({ kind: "Pod", namespace })).length]); }
  catch (e) { failed.push({ namespace, code: e.code }); }
}
return { ok, failed };
"#;

#[tokio::test]
async fn flaky_api_calls_are_retried_and_failures_reported() {
    let api = demo().await;
    api.server.set_faults(
        vec![
            FaultRule::new(FaultKind::Latency(Duration::from_millis(50)), 1.0),
            FaultRule::new(FaultKind::Error { status: 503 }, 0.3),
            FaultRule::new(FaultKind::Throttle { retry_after: 1 }, 0.15),
            FaultRule::new(FaultKind::Drop, 0.1),
        ],
        11,
    );
    let s = Session::start(binary(), "code", &api.kubeconfig)
        .await
        .unwrap();
    let (out, took) = run(&s, EVERY_NAMESPACE, 25_000).await;
    assert_eq!(out["ok"], true, "{out}");
    let ok = out["result"]["ok"].as_array().unwrap().len();
    let failed = out["result"]["failed"].as_array().unwrap();
    assert_eq!(ok + failed.len(), 7, "{out}");
    assert!(ok >= 5, "retries should absorb most faults: {out}");
    for f in failed {
        assert!(
            ["Unavailable", "Throttled", "Timeout"].contains(&f["code"].as_str().unwrap_or("")),
            "{f}"
        );
    }
    assert!(took < Duration::from_secs(26), "{took:?}");
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_failing_api_mid_run_gives_partial_progress_and_the_next_run_works() {
    let api = demo().await;
    let s = Session::start(binary(), "code", &api.kubeconfig)
        .await
        .unwrap();
    let program = r#"
const shop = await tools.kubernetes.list({ kind: "Pod", namespace: "shop" });
console.log(`shop has ${shop.length} pods`);
await sleep(800);
const payments = await tools.kubernetes.list({ kind: "Pod", namespace: "payments" });
return payments.length;
"#;
    let args = json!({"code": program, "timeoutMs": 25_000});
    let call = s.call("run_code", &args);
    let break_api = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        api.server.set_faults(
            vec![FaultRule::new(FaultKind::Error { status: 503 }, 1.0)],
            1,
        );
    };
    let (answer, ()) = tokio::join!(call, break_api);
    let answer = answer.unwrap();
    let out = answer.structured.unwrap();
    assert_eq!(out["ok"], false, "{out}");
    assert_eq!(out["error"]["code"], "Unavailable", "{out}");
    assert_eq!(
        out["error"]["line"], 5,
        "the error points at the failing call: {out}"
    );
    let calls = out["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{out}");
    assert_eq!(calls[0]["ok"], true);
    assert_eq!(calls[1]["ok"], false);
    assert!(
        out["logs"][0].as_str().unwrap().contains("shop has"),
        "{out}"
    );
    assert!(
        answer.elapsed < Duration::from_secs(25),
        "retries are bounded: {:?}",
        answer.elapsed
    );

    api.server.set_faults(Vec::new(), 1);
    let (next, _) = run(&s, EVERY_NAMESPACE, 10_000).await;
    assert_eq!(next["result"]["failed"], json!([]), "{next}");
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_hanging_api_never_holds_a_run_past_its_wall_limit() {
    let api = demo().await;
    api.server.set_faults(
        vec![
            FaultRule::new(FaultKind::Latency(Duration::from_secs(60)), 1.0)
                .on_path("payments")
                .unwrap(),
        ],
        1,
    );
    let s = Session::start(binary(), "code", &api.kubeconfig)
        .await
        .unwrap();
    let started = Instant::now();
    let (out, _) = run(
        &s,
        r#"await tools.kubernetes.list({ kind: "Pod", namespace: "shop" }); return await tools.kubernetes.list({ kind: "Pod", namespace: "payments" });"#,
        2_000,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out["error"]["code"], "LimitExceeded", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2000 ms"),
        "{out}"
    );
    assert_eq!(out["calls"][0]["ok"], true, "{out}");
    // The session is free again at once.
    let (next, took) = run(
        &s,
        r#"return (await tools.kubernetes.list({ kind: "Pod", namespace: "shop" })).length"#,
        5_000,
    )
    .await;
    assert_eq!(next["ok"], true, "{next}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    s.close().await.unwrap();
}

#[tokio::test]
async fn an_api_server_that_stops_mid_run_ends_the_run_cleanly() {
    let api = demo().await;
    let s = Session::start(binary(), "code", &api.kubeconfig)
        .await
        .unwrap();
    let program = r#"
const first = await tools.kubernetes.list({ kind: "Pod", namespace: "shop" });
await sleep(800);
return [first.length, (await tools.kubernetes.list({ kind: "Pod", namespace: "payments" })).length];
"#;
    let args = json!({"code": program, "timeoutMs": 25_000});
    let call = s.call("run_code", &args);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        api.server.shutdown().await;
    };
    let (answer, ()) = tokio::join!(call, stop);
    let answer = answer.unwrap();
    let out = answer.structured.unwrap();
    assert_eq!(out["ok"], false, "{out}");
    assert_eq!(out["error"]["code"], "Unavailable", "{out}");
    assert_eq!(out["calls"][0]["ok"], true, "{out}");
    assert!(
        answer.elapsed < Duration::from_secs(25),
        "{:?}",
        answer.elapsed
    );
    // The server keeps serving: a run that needs no API answers, one that does fails fast.
    let (plain, _) = run(&s, "return 6 * 7", 5_000).await;
    assert_eq!(plain["result"], 42);
    let (again, took) = run(&s, r#"return await tools.kubernetes.contexts()"#, 5_000).await;
    assert_eq!(again["ok"], true, "contexts need no API call: {again}");
    assert!(took < Duration::from_secs(1));
    s.close().await.unwrap();
}
