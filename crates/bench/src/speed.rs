//! `kubecode bench speed`: the sandbox's own costs measured in process, and the server's
//! measured through real MCP sessions (stdio, and Streamable HTTP for throughput).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cluster;
use crate::http_session::{HttpServer, HttpSession};
use crate::session::{Session, memory_mib};
use crate::tokens::median;

/// The model-style scan of the 10,000-pod cluster: every pod, then logs or events of the
/// broken ones, and their root causes.
pub const SCAN: &str = include_str!("../../../bench/programs/scan-10k.ts");

/// A small realistic program for the throughput test: one list, filtered in the sandbox.
const NAMESPACE_CHECK: &str = r#"
const pods = await tools.kubernetes.list({ kind: "Pod", namespace: "shop" });
return pods.filter((p) => (p.status.containerStatuses ?? []).some((c) => !c.ready)).map((p) => p.metadata.name);
"#;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kubecode binary.
    pub binary: PathBuf,
    /// Repetitions of the fast measurements.
    pub runs: usize,
    /// Repetitions of the 10,000-pod scan.
    pub scan_runs: usize,
    /// Concurrent HTTP sessions of the throughput test.
    pub sessions: usize,
    /// run_code calls per HTTP session.
    pub calls_per_session: usize,
}

/// A median with its spread.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Samples.
    pub runs: usize,
}

impl Figure {
    /// The median, minimum and maximum of samples.
    pub fn of(mut samples: Vec<f64>) -> Figure {
        samples.sort_by(f64::total_cmp);
        Figure {
            median: median(&samples),
            min: samples.first().copied().unwrap_or(0.0),
            max: samples.last().copied().unwrap_or(0.0),
            runs: samples.len(),
        }
    }
}

/// Every speed figure.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// A fresh sandbox running `return 1` (ms), in process.
    pub sandbox_cold_start_ms: Figure,
    /// One awaited tool call through the bridge to a host that answers at once (µs).
    pub bridge_call_us: Figure,
    /// Stripping the types of the scan program (µs).
    pub ts_strip_us: Figure,
    /// Process start to `initialize` answered, over stdio (ms).
    pub start_to_initialize_ms: Figure,
    /// Resident memory after initialize, tools/list and 1 s idle (MiB).
    pub idle_rss_mib: Figure,
    /// The first trivial run_code of a session over stdio (ms).
    pub run_code_first_ms: f64,
    /// Trivial run_code round trips after the first (ms).
    pub run_code_trivial_ms: Figure,
    /// The 10,000-pod scan through run_code (s).
    pub scan_10k_s: Figure,
    /// The server's peak resident memory over the scans (MiB).
    pub scan_10k_peak_rss_mib: f64,
    /// Characters the scan returned to the model.
    pub scan_10k_result_chars: usize,
    /// run_code calls answered per second over HTTP, all sessions together.
    pub http_run_code_per_s: f64,
    /// Latency of those calls (ms).
    pub http_run_code_ms: Figure,
    /// Concurrent HTTP sessions.
    pub http_sessions: usize,
    /// The server's peak resident memory over the HTTP test (MiB).
    pub http_peak_rss_mib: f64,
}

/// A host whose one function answers at once with its arguments: the bridge alone.
struct EchoHost;

impl sandbox::Host for EchoHost {
    fn functions(&self) -> Vec<String> {
        vec!["bench.echo".into()]
    }
    fn call(&self, _path: &str, args: Value, _ahead: sandbox::ItemBatches) -> sandbox::CallFuture {
        Box::pin(async move { Ok(sandbox::HostValue::Json(args)) })
    }
    fn search(&self, _query: &str, _limit: usize) -> Value {
        json!([])
    }
    fn describe(&self, _path: &str) -> Option<String> {
        None
    }
}

async fn sandbox_ms(program: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = sandbox::run(
        program,
        Arc::new(EchoHost),
        sandbox::State::default(),
        sandbox::Limits::default(),
        sandbox::Control::default(),
    )
    .await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !out.ok {
        bail!("the sandbox benchmark program failed: {:?}", out.error);
    }
    Ok(ms)
}

/// Runs every measurement.
pub async fn run(o: &Options) -> anyhow::Result<Report> {
    let runs = o.runs.max(3);
    let mut cold = Vec::new();
    let mut bridge = Vec::new();
    const CALLS: usize = 400;
    let calls =
        format!("for (let i = 0; i < {CALLS}; i++) await tools.bench.echo({{ i }}); return 1;");
    for _ in 0..runs {
        let empty = sandbox_ms("return 1").await?;
        cold.push(empty);
        let with_calls = sandbox_ms(&calls).await?;
        bridge.push((with_calls - empty).max(0.0) * 1000.0 / CALLS as f64);
    }
    let mut strip = Vec::new();
    for _ in 0..runs * 4 {
        let started = Instant::now();
        sandbox::strip(SCAN).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        strip.push(started.elapsed().as_secs_f64() * 1e6);
    }

    let demo = cluster::serve(kubesim::demo::snapshot()).await?;
    let mut start = Vec::new();
    let mut idle = Vec::new();
    for i in 0..runs {
        let started = Instant::now();
        let s = Session::start(&o.binary, "code", &demo.kubeconfig).await?;
        start.push(started.elapsed().as_secs_f64() * 1000.0);
        if i < 3 {
            s.tools().await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(rss) = s.pid.and_then(|p| memory_mib(p, "VmRSS")) {
                idle.push(rss);
            }
        }
        s.close().await?;
    }

    let s = Session::start(&o.binary, "code", &demo.kubeconfig).await?;
    s.tools().await?;
    let trivial = json!({"code": "return 1 + 1"});
    let first = s.call("run_code", &trivial).await?;
    check(&first.structured, "trivial run_code")?;
    let mut round_trips = Vec::new();
    for _ in 0..runs * 5 {
        let a = s.call("run_code", &trivial).await?;
        check(&a.structured, "trivial run_code")?;
        round_trips.push(a.elapsed.as_secs_f64() * 1000.0);
    }
    s.close().await?;

    let (http_per_s, http_latency, http_peak) =
        http_throughput(&o.binary, &demo.kubeconfig, o.sessions, o.calls_per_session).await?;
    demo.server.shutdown().await;

    let spec = kubesim::GenerateSpec::parse("pods=10000,namespaces=50,broken=20", 7)
        .map_err(anyhow::Error::msg)?;
    let big = cluster::serve(kubesim::generate::generate(&spec)).await?;
    let s = Session::start(&o.binary, "code", &big.kubeconfig).await?;
    let mut scans = Vec::new();
    let mut result_chars = 0;
    for _ in 0..o.scan_runs.max(1) {
        let a = s
            .call("run_code", &json!({"code": SCAN, "timeoutMs": 60000}))
            .await?;
        let out = check(&a.structured, "the 10,000-pod scan")?;
        if out["result"]["scanned"] != 10000 || out["result"]["broken"] != 20 {
            bail!("the 10,000-pod scan found {}", out["result"]);
        }
        result_chars = out["result"].to_string().chars().count();
        scans.push(a.elapsed.as_secs_f64());
    }
    let scan_peak = s.pid.and_then(|p| memory_mib(p, "VmHWM")).unwrap_or(0.0);
    s.close().await?;
    big.server.shutdown().await;

    Ok(Report {
        sandbox_cold_start_ms: Figure::of(cold),
        bridge_call_us: Figure::of(bridge),
        ts_strip_us: Figure::of(strip),
        start_to_initialize_ms: Figure::of(start),
        idle_rss_mib: Figure::of(idle),
        run_code_first_ms: first.elapsed.as_secs_f64() * 1000.0,
        run_code_trivial_ms: Figure::of(round_trips),
        scan_10k_s: Figure::of(scans),
        scan_10k_peak_rss_mib: scan_peak,
        scan_10k_result_chars: result_chars,
        http_run_code_per_s: http_per_s,
        http_run_code_ms: http_latency,
        http_sessions: o.sessions,
        http_peak_rss_mib: http_peak,
    })
}

fn check<'a>(structured: &'a Option<Value>, what: &str) -> anyhow::Result<&'a Value> {
    match structured {
        Some(out) if out["ok"] == true => Ok(out),
        other => bail!("{what} failed: {other:?}"),
    }
}

async fn http_throughput(
    binary: &Path,
    kubeconfig: &Path,
    sessions: usize,
    calls: usize,
) -> anyhow::Result<(f64, Figure, f64)> {
    let server = HttpServer::start(binary, kubeconfig).await?;
    let mut opened = Vec::new();
    for _ in 0..sessions.max(1) {
        opened.push(HttpSession::open(server.addr).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = opened
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for _ in 0..calls {
                    let t = Instant::now();
                    let r = s.call("run_code", json!({"code": NAMESPACE_CHECK})).await?;
                    if r["structuredContent"]["ok"] != true {
                        bail!("run_code over HTTP failed: {r}");
                    }
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.context("a session task panicked")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = server
        .pid()
        .and_then(|p| memory_mib(p, "VmHWM"))
        .unwrap_or(0.0);
    Ok((
        latencies.len() as f64 / elapsed,
        Figure::of(latencies),
        peak,
    ))
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let f = |x: &Figure, unit: &str| {
        format!(
            "{:.2} {unit} (min {:.2}, max {:.2}, {} runs)",
            x.median, x.min, x.max, x.runs
        )
    };
    [
        format!(
            "| sandbox cold start (`return 1`, in process) | {} |",
            f(&r.sandbox_cold_start_ms, "ms")
        ),
        format!(
            "| bridge cost per awaited tool call | {} |",
            f(&r.bridge_call_us, "µs")
        ),
        format!(
            "| TypeScript strip of the scan program | {} |",
            f(&r.ts_strip_us, "µs")
        ),
        format!(
            "| process start → `initialize` answered (stdio) | {} |",
            f(&r.start_to_initialize_ms, "ms")
        ),
        format!(
            "| idle RSS after initialize + tools/list + 1 s | {} |",
            f(&r.idle_rss_mib, "MiB")
        ),
        format!(
            "| first trivial `run_code` of a session (stdio) | {:.2} ms |",
            r.run_code_first_ms
        ),
        format!(
            "| trivial `run_code` round trip (stdio) | {} |",
            f(&r.run_code_trivial_ms, "ms")
        ),
        format!(
            "| 10,000-pod scan through `run_code` ({} characters back) | {} |",
            r.scan_10k_result_chars,
            f(&r.scan_10k_s, "s")
        ),
        format!(
            "| server peak RSS during the scans | {:.0} MiB |",
            r.scan_10k_peak_rss_mib
        ),
        format!(
            "| `run_code` throughput over HTTP, {} concurrent sessions | {:.0} calls/s |",
            r.http_sessions, r.http_run_code_per_s
        ),
        format!(
            "| latency of those calls | {} |",
            f(&r.http_run_code_ms, "ms")
        ),
        format!(
            "| server peak RSS during the HTTP test | {:.0} MiB |",
            r.http_peak_rss_mib
        ),
    ]
    .into_iter()
    .fold(
        String::from("| measurement | median |\n|---|---|\n"),
        |mut s, l| {
            s.push_str(&l);
            s.push('\n');
            s
        },
    )
}
