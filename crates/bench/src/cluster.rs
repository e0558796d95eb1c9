//! A scenario's cluster: built, overlaid with its snapshot directory, and served by kubesim.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Duration, TimeZone, Utc};
use kubesim::builder::{ClusterBuilder, Workload};
use kubesim::{GenerateSpec, LoadOptions, RunningServer, ServerConfig, Snapshot};
use serde_json::Value;

use crate::scenario::{Background, Scenario, WorkloadSpec};

/// The clock of built clusters (the generator uses the same one), so hand-written overlay
/// timestamps line up with built objects.
pub fn clock() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// A served cluster and the kubeconfig that reaches it.
pub struct Served {
    /// The kubesim server; stops when dropped.
    pub server: RunningServer,
    /// Holds the kubeconfig file.
    _dir: tempfile::TempDir,
    /// The kubeconfig's path.
    pub kubeconfig: PathBuf,
}

/// Serves a snapshot and writes its kubeconfig.
pub async fn serve(snapshot: Snapshot) -> anyhow::Result<Served> {
    let server = kubesim::serve(snapshot, ServerConfig::default())
        .await
        .context("kubesim did not start")?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig())?;
    Ok(Served {
        server,
        _dir: dir,
        kubeconfig,
    })
}

/// Builds a scenario's snapshot.
pub fn snapshot(scenario: &Scenario, background: &Background) -> anyhow::Result<Snapshot> {
    let spec = &scenario.cluster;
    let mut snapshot = if spec.demo {
        kubesim::demo::snapshot()
    } else if let Some(generate) = &spec.generate {
        let g = GenerateSpec::parse(generate, spec.seed).map_err(anyhow::Error::msg)?;
        kubesim::generate::generate(&g)
    } else {
        let mut b = ClusterBuilder::new(clock(), spec.seed);
        b.add_node("control-plane", 4, 16, true);
        for n in 0..3 {
            b.add_node(&format!("worker-{n:03}"), 16, 64, false);
        }
        let background = if spec.background {
            background.workloads.as_slice()
        } else {
            &[]
        };
        let all: Vec<&WorkloadSpec> = background.iter().chain(&spec.workloads).collect();
        let mut namespaces: Vec<&str> = all.iter().map(|w| w.namespace.as_str()).collect();
        namespaces.sort();
        namespaces.dedup();
        for ns in namespaces {
            b.add_namespace(ns, Duration::days(120));
        }
        for w in all {
            b.add_workload(&workload(w));
        }
        b.build()
    };
    let overlay = scenario.cluster_dir.join("snapshot");
    if overlay.is_dir() {
        let options = LoadOptions {
            lenient: false,
            now: Some(snapshot.now),
        };
        let extra = Snapshot::load(&overlay, &options)?;
        lay_over(&mut snapshot, extra);
    }
    Ok(snapshot)
}

/// The demo cluster with the snapshot directory `fixtures` laid over it (at the demo's clock).
pub fn demo_with(fixtures: &std::path::Path) -> anyhow::Result<Snapshot> {
    let mut snapshot = kubesim::demo::snapshot();
    let options = LoadOptions {
        lenient: false,
        now: Some(snapshot.now),
    };
    lay_over(&mut snapshot, Snapshot::load(fixtures, &options)?);
    Ok(snapshot)
}

/// Adds `extra`'s objects and logs; an object with the same identity replaces the built one.
pub fn lay_over(base: &mut Snapshot, extra: Snapshot) {
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, o) in base.objects.iter().enumerate() {
        index.insert(identity(&o.object), i);
    }
    for o in extra.objects {
        match index.get(&identity(&o.object)) {
            Some(&i) => base.objects[i] = o,
            None => base.objects.push(o),
        }
    }
    for (key, log) in extra.logs.iter() {
        base.logs.insert(key.clone(), log.clone());
    }
}

fn identity(o: &Value) -> String {
    let group = o["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map_or("", |(g, _)| g);
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default();
    format!(
        "{group}/{}/{}/{}",
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name")
    )
}

fn workload(w: &WorkloadSpec) -> Workload {
    let mut out = Workload::deployment(&w.namespace, &w.name, &w.image);
    out.kind = match w.kind.as_deref() {
        Some("StatefulSet") => "StatefulSet",
        Some("DaemonSet") => "DaemonSet",
        _ => "Deployment",
    };
    out.replicas = w.replicas;
    out.port = w.port;
    out.service = w.service;
    out.env = w.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(cpu) = &w.cpu {
        out.cpu = cpu.clone();
    }
    if let Some(memory) = &w.memory {
        out.memory = memory.clone();
    }
    out.restarts = w.restarts;
    out.healthy_log = w.log.clone();
    out.failure = w.failure.clone();
    out
}

/// Serves one scenario's cluster.
pub async fn serve_scenario(
    scenario: &Scenario,
    background: &Background,
) -> anyhow::Result<Served> {
    serve(snapshot(scenario, background)?).await
}
