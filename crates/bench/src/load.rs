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

/// Runs the load test.
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
    let rss_before = memory_mib(pid, "VmRSS").unwrap_or(0.0);
    let mut sessions = Vec::new();
    for _ in 0..o.sessions {
        sessions.push(HttpSession::open(server.addr).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(memory_mib(pid, "VmRSS").unwrap_or(0.0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let deadline = Instant::now() + o.duration;
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
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = memory_mib(pid, "VmRSS").unwrap_or(0.0);
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
        sessions: o.sessions,
        seconds: o.duration.as_secs_f64(),
        cluster: o.cluster.clone(),
        concurrent_runs: o.concurrent_runs,
        scans,
        correct,
        wrong,
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
         | sessions × duration | {} concurrent MCP sessions over HTTP × {:.0} s |\n\
         | cluster | generated `{}` |\n\
         | programs running at once (`--max-concurrent-runs`) | {} |\n\
         | scans answered | {} ({} correct, {} wrong) |\n\
         | errors | {} |\n\
         | scan latency | median {:.0} ms, p95 {:.0} ms, max {:.0} ms |\n\
         | server RSS | {:.0} MiB before, peak {:.0} MiB, {:.0} MiB after |\n\
         | verdict | {} |\n",
        r.sessions,
        r.seconds,
        r.cluster,
        r.concurrent_runs,
        r.scans,
        r.correct,
        r.wrong,
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
