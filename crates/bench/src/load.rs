//! `kubecode bench load`: many concurrent MCP sessions over Streamable HTTP, each running
//! cluster scans for a while against a generated cluster; reports errors, latency, memory and
//! whether every session got the right answer. Loopback only, bounded in sessions and time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cluster;
use crate::http_session::{HttpServer, HttpSession};
use crate::proxy;
use crate::session::memory_mib;
use crate::speed::Figure;

/// The scan each session runs: every pod, the broken ones by name.
const SCAN: &str = r#"
const pods = await tools.kubernetes.list({ kind: "Pod", allNamespaces: true });
const broken = pods.filter((p) => p.status.phase !== "Running" || (p.status.containerStatuses ?? []).some((c) => !c.ready));
return { pods: pods.length, broken: broken.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort() };
"#;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kubecode binary.
    pub binary: PathBuf,
    /// Concurrent sessions.
    pub sessions: usize,
    /// How long each session keeps scanning.
    pub duration: Duration,
    /// The generated cluster (`pods=3000,namespaces=30,broken=10`).
    pub cluster: String,
    /// Programs the server runs at once (`--max-concurrent-runs`).
    pub concurrent_runs: usize,
}

/// The load test's findings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Server processes answering (behind a round-robin proxy when more than one).
    pub replicas: usize,
    /// Sessions opened.
    pub sessions: usize,
    /// Seconds each session scanned.
    pub seconds: f64,
    /// The cluster.
    pub cluster: String,
    /// Programs the server ran at once.
    pub concurrent_runs: usize,
    /// Scans answered.
    pub scans: usize,
    /// Scans whose answer matched the cluster.
    pub correct: usize,
    /// Scans with a wrong answer.
    pub wrong: usize,
    /// Correct answers per second of the whole load (throughput).
    pub correct_per_second: f64,
    /// Errors by code (`LimitExceeded` is a configured limit; anything else is a failure).
    pub errors: BTreeMap<String, usize>,
    /// Latency of answered scans (ms).
    pub latency_ms: Figure,
    /// 95th percentile latency (ms).
    pub latency_p95_ms: f64,
    /// The server's resident memory before the load (MiB).
    pub rss_before_mib: f64,
    /// The server's peak resident memory (MiB).
    pub rss_peak_mib: f64,
    /// The server's resident memory after the sessions ended (MiB).
    pub rss_after_mib: f64,
    /// No error other than configured limits and every answer right.
    pub passed: bool,
}

/// Runs the load test against one server.
pub async fn run(o: &Options) -> anyhow::Result<Report> {
    let spec = kubesim::GenerateSpec::parse(&o.cluster, 7).map_err(anyhow::Error::msg)?;
    let snapshot = kubesim::generate::generate(&spec);
    let expected = expected_broken(&snapshot);
    let served = cluster::serve(snapshot).await?;
    let runs = o.concurrent_runs.to_string();
    let server = HttpServer::start_with(
        &o.binary,
        &served.kubeconfig,
        &["--max-concurrent-runs", &runs],
    )
    .await?;
    let pid = server.pid().context("the server's pid")?;
    measure(o, server.addr, &[pid], 1, expected).await
}

/// One replica against two behind a round-robin proxy, in one run on one cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// One server, as `run` measures it.
    pub one: Report,
    /// Two replicas sharing a key and a Redis, every request sent to the next replica.
    pub two: Report,
}

/// Runs the load test against one replica, then against two replicas (a shared key, a Redis
/// of its own on loopback, `redis-server` from PATH) behind a round-robin proxy that sends
/// each HTTP request to the next replica, so every session is served by both.
pub async fn run_replicas(o: &Options) -> anyhow::Result<Comparison> {
    let spec = kubesim::GenerateSpec::parse(&o.cluster, 7).map_err(anyhow::Error::msg)?;
    let snapshot = kubesim::generate::generate(&spec);
    let expected = expected_broken(&snapshot);
    let served = cluster::serve(snapshot).await?;
    let runs = o.concurrent_runs.to_string();
    let one = {
        let server = HttpServer::start_with(
            &o.binary,
            &served.kubeconfig,
            &["--max-concurrent-runs", &runs],
        )
        .await?;
        let pid = server.pid().context("the server's pid")?;
        measure(o, server.addr, &[pid], 1, expected.clone()).await?
    };
    let redis = Redis::start().await?;
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("shared-key");
    let key: [u8; 32] = rand::random();
    std::fs::write(&key_file, key)?;
    let key_path = key_file.to_string_lossy().into_owned();
    let flags = [
        "--max-concurrent-runs",
        &runs,
        "--shared-key-file",
        &key_path,
        "--redis-url",
        &redis.url,
    ];
    let a = HttpServer::start_with(&o.binary, &served.kubeconfig, &flags).await?;
    let b = HttpServer::start_with(&o.binary, &served.kubeconfig, &flags).await?;
    let pids = [
        a.pid().context("a replica's pid")?,
        b.pid().context("a replica's pid")?,
    ];
    let proxy = proxy::RoundRobin::start(vec![a.addr, b.addr]).await?;
    let two = measure(o, proxy.addr, &pids, 2, expected).await?;
    Ok(Comparison { one, two })
}

/// `redis-server` on a free loopback port, without persistence, stopped when dropped.
struct Redis {
    _child: tokio::process::Child,
    url: String,
}

impl Redis {
    async fn start() -> anyhow::Result<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server for the replicas: install Debian's redis-server package (scripts/install-test-deps does)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("redis-server did not listen on 127.0.0.1:{port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Redis {
            _child: child,
            url: format!("redis://127.0.0.1:{port}/0"),
        })
    }
}

/// The load itself: `o.sessions` sessions against `addr`, memory summed over `pids`.
async fn measure(
    o: &Options,
    addr: std::net::SocketAddr,
    pids: &[u32],
    replicas: usize,
    expected: (usize, Vec<String>),
) -> anyhow::Result<Report> {
    let rss = |pids: &[u32]| -> f64 {
        pids.iter()
            .map(|&p| memory_mib(p, "VmRSS").unwrap_or(0.0))
            .sum()
    };
    let rss_before = rss(pids);
    let mut sessions = Vec::new();
    for _ in 0..o.sessions {
        sessions.push(HttpSession::open(addr).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let pids = pids.to_vec();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss(&pids));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let deadline = started + o.duration;
    let expected = Arc::new(expected);
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            let expected = expected.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let r = s.call("run_code", json!({"code": SCAN})).await;
                    outcomes.push((started.elapsed(), classify(r, &expected)));
                }
                outcomes
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = BTreeMap::new();
    let (mut correct, mut wrong) = (0, 0);
    for t in tasks {
        for (took, outcome) in t.await.context("a session task failed")? {
            match outcome {
                Outcome::Correct => {
                    correct += 1;
                    latencies.push(took.as_secs_f64() * 1000.0);
                }
                Outcome::Wrong => wrong += 1,
                Outcome::Error(code) => *errors.entry(code).or_insert(0) += 1,
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss(pids);
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let p95 = sorted
        .get((sorted.len() * 95 / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    let unexpected = errors
        .iter()
        .filter(|(code, _)| code.as_str() != "LimitExceeded")
        .count();
    let scans = correct + wrong + errors.values().sum::<usize>();
    Ok(Report {
        replicas,
        sessions: o.sessions,
        seconds: o.duration.as_secs_f64(),
        cluster: o.cluster.clone(),
        concurrent_runs: o.concurrent_runs,
        scans,
        correct,
        wrong,
        correct_per_second: correct as f64 / elapsed.max(f64::EPSILON),
        passed: unexpected == 0 && wrong == 0 && correct > 0,
        errors,
        latency_ms: Figure::of(latencies),
        latency_p95_ms: p95,
        rss_before_mib: rss_before,
        rss_peak_mib: peak,
        rss_after_mib: rss_after,
    })
}

enum Outcome {
    Correct,
    Wrong,
    Error(String),
}

fn classify(r: anyhow::Result<Value>, expected: &(usize, Vec<String>)) -> Outcome {
    let r = match r {
        Ok(r) => r,
        Err(e) => return Outcome::Error(format!("transport: {e}")),
    };
    let out = &r["structuredContent"];
    if out["ok"] != true {
        let code = out["error"]["code"]
            .as_str()
            .or(out["error"]["name"].as_str())
            .unwrap_or("unknown");
        return Outcome::Error(code.to_string());
    }
    let broken: Vec<String> = out["result"]["broken"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if out["result"]["pods"] == expected.0 && broken == expected.1 {
        Outcome::Correct
    } else {
        Outcome::Wrong
    }
}

/// The pod count and the broken pods, read from the snapshot itself.
fn expected_broken(snapshot: &kubesim::Snapshot) -> (usize, Vec<String>) {
    let pods: Vec<&Value> = snapshot
        .objects
        .iter()
        .map(|o| &o.object)
        .filter(|o| o["kind"] == "Pod")
        .collect();
    let mut broken: Vec<String> = pods
        .iter()
        .filter(|p| {
            p["status"]["phase"] != "Running"
                || p["status"]["containerStatuses"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["ready"] != true))
        })
        .map(|p| {
            format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                p["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    broken.sort();
    (pods.len(), broken)
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let errors = if r.errors.is_empty() {
        "none".to_string()
    } else {
        r.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "| measurement | value |\n|---|---|\n\
         | servers | {} |\n\
         | sessions × duration | {} concurrent MCP sessions over HTTP × {:.0} s |\n\
         | cluster | generated `{}` |\n\
         | programs running at once (`--max-concurrent-runs`) | {} |\n\
         | scans answered | {} ({} correct, {} wrong; {:.2} correct/s) |\n\
         | errors | {} |\n\
         | scan latency | median {:.0} ms, p95 {:.0} ms, max {:.0} ms |\n\
         | server RSS | {:.0} MiB before, peak {:.0} MiB, {:.0} MiB after |\n\
         | verdict | {} |\n",
        if r.replicas == 1 {
            "one kubecode serve".to_string()
        } else {
            format!(
                "{} replicas (shared key, Redis) behind a round-robin proxy",
                r.replicas
            )
        },
        r.sessions,
        r.seconds,
        r.cluster,
        r.concurrent_runs,
        r.scans,
        r.correct,
        r.wrong,
        r.correct_per_second,
        errors,
        r.latency_ms.median,
        r.latency_p95_ms,
        r.latency_ms.max,
        r.rss_before_mib,
        r.rss_peak_mib,
        r.rss_after_mib,
        if r.passed {
            "passed: no errors other than configured limits, every answer right"
        } else {
            "FAILED"
        }
    )
}

/// The comparison as Markdown: both reports and the throughput ratio.
pub fn comparison_markdown(c: &Comparison) -> String {
    format!(
        "### One replica\n\n{}\n### Two replicas\n\n{}\nThroughput: {:.2} correct scans/s with two replicas against {:.2} with one ({:.2}×).\n",
        markdown(&c.one),
        markdown(&c.two),
        c.two.correct_per_second,
        c.one.correct_per_second,
        c.two.correct_per_second / c.one.correct_per_second.max(f64::EPSILON),
    )
}

/// Refuses options that would make this more than a bounded loopback test.
pub fn check(o: &Options) -> anyhow::Result<()> {
    if o.sessions == 0 || o.sessions > 200 {
        bail!("--sessions must be between 1 and 200");
    }
    if o.duration > Duration::from_secs(600) {
        bail!("--seconds must be at most 600");
    }
    Ok(())
}
