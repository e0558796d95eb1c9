//! Large generated clusters: `pods=10000,namespaces=50,broken=20`, mostly healthy with a
//! given number of pods broken in varied real ways.

use chrono::{Duration, TimeZone, Utc};

use crate::builder::{ClusterBuilder, Failure, Workload};
use crate::snapshot::Snapshot;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSpec {
    /// Total pods.
    pub pods: u32,
    /// Namespaces they are spread over.
    pub namespaces: u32,
    /// How many pods are broken.
    pub broken: u32,
    /// Worker nodes; by default one per 100 pods, at least 3.
    pub nodes: Option<u32>,
    /// Seed: the same spec and seed give the same cluster.
    pub seed: u64,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        GenerateSpec {
            pods: 1000,
            namespaces: 10,
            broken: 10,
            nodes: None,
            seed: 7,
        }
    }
}

impl GenerateSpec {
    /// Parses `pods=N,namespaces=N,broken=N[,nodes=N]`.
    pub fn parse(spec: &str, seed: u64) -> Result<GenerateSpec, String> {
        let mut out = GenerateSpec {
            seed,
            ..GenerateSpec::default()
        };
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("invalid generate spec {part:?}: expected KEY=NUMBER, e.g. pods=10000")
            })?;
            let n: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("invalid {key} {value:?}: expected a whole number"))?;
            match key.trim() {
                "pods" => out.pods = n,
                "namespaces" => out.namespaces = n.max(1),
                "broken" => out.broken = n,
                "nodes" => out.nodes = Some(n.max(1)),
                other => {
                    return Err(format!(
                        "unknown generate key {other:?}: use pods, namespaces, broken or nodes"
                    ));
                }
            }
        }
        if out.broken > out.pods {
            return Err(format!(
                "broken={} is more than pods={}",
                out.broken, out.pods
            ));
        }
        Ok(out)
    }
}

const SERVICES: &[&str] = &[
    "api",
    "web",
    "worker",
    "cache",
    "gateway",
    "auth",
    "search",
    "billing",
    "orders",
    "inventory",
    "notifier",
    "scheduler",
    "reporting",
    "ingest",
    "media",
];

/// The broken kinds, in the order they are handed out.
fn failure(i: u32, nodes: u32) -> (Failure, &'static str) {
    match i % 5 {
        0 => (
            Failure::CrashLoop {
                exit_code: 1,
                log: vec![
                    "starting service".into(),
                    "loading configuration from /etc/app/config.yaml".into(),
                    "FATAL: required environment variable DATABASE_URL is not set".into(),
                ],
            },
            "crashloop-config",
        ),
        1 => (
            Failure::ImagePull {
                error:
                    "rpc error: code = NotFound desc = failed to pull and unpack image: not found"
                        .into(),
            },
            "imagepull",
        ),
        2 => (
            Failure::Unschedulable {
                message: format!(
                    "0/{nodes} nodes are available: {nodes} Insufficient cpu. preemption: 0/{nodes} nodes are available: {nodes} No preemption victims found for incoming pod."
                ),
            },
            "pending-cpu",
        ),
        3 => (
            Failure::OutOfMemory {
                log: vec![
                    "worker started, batch size 50000".into(),
                    "loaded 1200000 records into memory".into(),
                    "building index...".into(),
                ],
            },
            "oomkilled",
        ),
        _ => (
            Failure::CrashLoop {
                exit_code: 2,
                log: vec![
                    "connecting to postgres at db:5432".into(),
                    "dial tcp 10.96.0.17:5432: connect: connection refused".into(),
                    "panic: could not connect to database after 5 attempts".into(),
                ],
            },
            "crashloop-dependency",
        ),
    }
}

/// Generates a cluster.
pub fn generate(spec: &GenerateSpec) -> Snapshot {
    let now = Utc
        .with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let mut b = ClusterBuilder::new(now, spec.seed);
    let nodes = spec.nodes.unwrap_or((spec.pods / 100).max(3));
    b.add_node("control-plane", 4, 16, true);
    for n in 0..nodes {
        b.add_node(&format!("worker-{n:03}"), 16, 64, false);
    }
    for n in 0..spec.namespaces {
        b.add_namespace(&format!("team-{n:02}"), Duration::days(90));
    }
    // Each broken pod is its own one-replica workload, spread over the namespaces.
    for i in 0..spec.broken {
        let (failure, tag) = failure(i, nodes);
        let ns = format!("team-{:02}", i % spec.namespaces);
        let mut w = Workload::deployment(
            &ns,
            &format!("{tag}-{i}"),
            &format!("registry.example.com/{tag}:1.{i}.0"),
        );
        w.restarts = 5 + i as i64 * 3;
        if matches!(failure, Failure::Unschedulable { .. }) {
            w.cpu = "64".into();
        }
        w.failure = Some(failure);
        b.add_workload(&w);
    }
    let mut remaining = spec.pods - spec.broken;
    let mut i = 0u32;
    while remaining > 0 {
        let ns = format!("team-{:02}", i % spec.namespaces);
        let name = format!(
            "{}-{}",
            SERVICES[i as usize % SERVICES.len()],
            i / SERVICES.len() as u32
        );
        let mut w = Workload::deployment(
            &ns,
            &name,
            &format!(
                "registry.example.com/{}:2.{}.1",
                SERVICES[i as usize % SERVICES.len()],
                i % 7
            ),
        );
        w.replicas = (2 + i % 4).min(remaining);
        w.port = Some(8080);
        w.service = i.is_multiple_of(3);
        w.healthy_log = vec![
            format!("{name} listening on :8080"),
            "GET /healthz 200 0.4ms".into(),
        ];
        remaining -= w.replicas;
        b.add_workload(&w);
        i += 1;
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_nonsense() {
        let s = GenerateSpec::parse("pods=100,namespaces=5,broken=7", 3).unwrap();
        assert_eq!((s.pods, s.namespaces, s.broken, s.seed), (100, 5, 7, 3));
        assert!(GenerateSpec::parse("pods=1,broken=2", 1).is_err());
        assert!(GenerateSpec::parse("pods=lots", 1).is_err());
        assert!(GenerateSpec::parse("sheep=3", 1).is_err());
    }

    #[test]
    fn generated_clusters_have_the_asked_pods() {
        let s = generate(&GenerateSpec::parse("pods=120,namespaces=4,broken=6", 1).unwrap());
        let pods: Vec<_> = s
            .objects
            .iter()
            .filter(|o| o.object["kind"] == "Pod")
            .collect();
        assert_eq!(pods.len(), 120);
        let broken = pods
            .iter()
            .filter(|p| {
                p.object.pointer("/status/conditions").is_some_and(|c| {
                    c.as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "False")
                    })
                }) || p.object["status"]["phase"] == "Pending"
            })
            .count();
        assert_eq!(broken, 6);
        assert!(pods[0].object.pointer("/metadata/managedFields").is_some());
        let again = generate(&GenerateSpec::parse("pods=120,namespaces=4,broken=6", 1).unwrap());
        assert_eq!(s.objects[5].object, again.objects[5].object);
    }
}
