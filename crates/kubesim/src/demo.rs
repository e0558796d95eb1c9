//! The embedded demo cluster: three nodes, six namespaces, about forty pods, and the planted
//! failures a diagnosis should find, each with the event texts and logs a real cluster shows.
//!
//! | where | what is wrong |
//! | --- | --- |
//! | `payments/payments-api` | CrashLoopBackOff: `PAYMENTS_DB_URL` is not set |
//! | `shop/recommendations` | ImagePullBackOff: tag `v2.3.1-rc` does not exist |
//! | `ml/model-trainer` | Pending: requests 16 CPUs, no node has them |
//! | `data/analytics-worker` | OOMKilled at its 256Mi limit, restarting |
//! | `shop/checkout` Service | selector `tier=backend` matches no pod: no endpoints |
//! | Helm release `shop/storefront` | live Deployment drifted from the release manifest |
//! | `payments/payments-db` Secret | a password that must never reach a model (the `ledger` pod also logs it in a connection URL) |

use std::io::Write;

use base64::Engine;
use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};

use crate::builder::{ClusterBuilder, Failure, Workload};
use crate::snapshot::{Snapshot, format_time};

/// The plaintext of the demo Secret's password: tests assert it never reaches a client of kubecode.
pub const SECRET_PASSWORD: &str = "Sup3r-S3cret-Passw0rd!";

fn healthy(ns: &str, name: &str, image: &str, replicas: u32, port: u16, log: &[&str]) -> Workload {
    let mut w = Workload::deployment(ns, name, image);
    w.replicas = replicas;
    w.port = Some(port);
    w.service = true;
    w.healthy_log = log.iter().map(|s| s.to_string()).collect();
    w
}

/// Builds the demo snapshot.
pub fn snapshot() -> Snapshot {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 20, 9, 30, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let mut b = ClusterBuilder::new(now, 2026);
    b.add_node("demo-control-plane", 4, 8, true);
    b.add_node("demo-worker", 4, 16, false);
    b.add_node("demo-worker2", 4, 16, false);
    for ns in [
        "kube-system",
        "monitoring",
        "shop",
        "payments",
        "data",
        "ml",
    ] {
        b.add_namespace(ns, Duration::days(40));
    }

    // kube-system and monitoring: healthy infrastructure.
    let mut coredns = healthy(
        "kube-system",
        "coredns",
        "registry.k8s.io/coredns/coredns:v1.11.3",
        2,
        53,
        &[
            ".:53",
            "[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc490481273e738df59329c62c0b729d94e8b61db9961c2fa5",
            "CoreDNS-1.11.3",
            "linux/amd64, go1.21.11, a6338e9",
        ],
    );
    coredns.service = false;
    b.add_workload(&coredns);
    let mut proxy = healthy(
        "kube-system",
        "kube-proxy",
        "registry.k8s.io/kube-proxy:v1.31.0",
        0,
        10256,
        &[
            "I1120 06:12:01.000000       1 server_linux.go:66] \"Using iptables proxy\"",
            "I1120 06:12:01.100000       1 proxier.go:828] \"Syncing iptables rules\"",
        ],
    );
    proxy.kind = "DaemonSet";
    proxy.service = false;
    b.add_workload(&proxy);
    b.add_workload(&healthy("kube-system", "metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.2", 1, 10250, &[
        "I1120 06:12:05.000000       1 serving.go:374] Generated self-signed cert (/tmp/apiserver.crt, /tmp/apiserver.key)",
        "I1120 06:12:06.000000       1 secure_serving.go:213] Serving securely on [::]:10250",
    ]));
    b.add_workload(&healthy("monitoring", "prometheus", "quay.io/prometheus/prometheus:v2.54.1", 1, 9090, &[
        "ts=2026-11-20T06:12:10.000Z caller=main.go:1123 level=info msg=\"Server is ready to receive web requests.\"",
    ]));
    b.add_workload(&healthy("monitoring", "grafana", "grafana/grafana:11.2.0", 1, 3000, &[
        "logger=http.server t=2026-11-20T06:12:12Z level=info msg=\"HTTP Server Listen\" address=[::]:3000",
    ]));
    let mut exporter = healthy(
        "monitoring",
        "node-exporter",
        "quay.io/prometheus/node-exporter:v1.8.2",
        0,
        9100,
        &[
            "ts=2026-11-20T06:12:03.000Z caller=node_exporter.go:193 level=info msg=\"Listening on\" address=[::]:9100",
        ],
    );
    exporter.kind = "DaemonSet";
    exporter.service = false;
    b.add_workload(&exporter);

    // shop: the storefront Helm release (drifted), healthy services, a bad image tag, a broken Service.
    let mut storefront = healthy(
        "shop",
        "storefront",
        "ghcr.io/acme/storefront:2.4.0-hotfix",
        1,
        8080,
        &[
            "storefront 2.4.0-hotfix listening on :8080",
            "GET /healthz 200 0.3ms",
            "GET / 200 12.1ms",
        ],
    );
    storefront.labels = vec![("app.kubernetes.io/instance".into(), "storefront".into())];
    b.add_workload(&storefront);
    b.add_workload(&healthy(
        "shop",
        "cart",
        "ghcr.io/acme/cart:1.9.3",
        3,
        8080,
        &[
            "cart service ready on :8080 (redis: redis.data.svc:6379)",
            "POST /cart/items 201 4.2ms",
        ],
    ));
    b.add_workload(&healthy(
        "shop",
        "catalog",
        "ghcr.io/acme/catalog:3.1.0",
        4,
        8080,
        &[
            "catalog: loaded 18234 products",
            "GET /products?page=1 200 8.8ms",
        ],
    ));
    let mut recommendations = healthy(
        "shop",
        "recommendations",
        "ghcr.io/acme/recommendations:v2.3.1-rc",
        2,
        8080,
        &[],
    );
    recommendations.failure = Some(Failure::ImagePull {
        error: "rpc error: code = NotFound desc = failed to pull and unpack image \"ghcr.io/acme/recommendations:v2.3.1-rc\": failed to resolve reference \"ghcr.io/acme/recommendations:v2.3.1-rc\": ghcr.io/acme/recommendations:v2.3.1-rc: not found".into(),
    });
    b.add_workload(&recommendations);
    let mut checkout = healthy(
        "shop",
        "checkout",
        "ghcr.io/acme/checkout:4.0.2",
        2,
        8080,
        &["checkout listening on :8080", "GET /healthz 200 0.2ms"],
    );
    checkout.service = false;
    b.add_workload(&checkout);
    // The Service selects `tier: backend`, a label the checkout pods do not carry.
    b.add_service(
        "shop",
        "checkout",
        json!({"app": "checkout", "tier": "backend"}),
        8080,
        &[],
    );

    // payments: a crash loop from a missing environment variable, and the database Secret.
    let mut api = healthy(
        "payments",
        "payments-api",
        "ghcr.io/acme/payments-api:3.2.0",
        2,
        8443,
        &[],
    );
    api.env = vec![
        (
            "PAYMENTS_DB_HOST".into(),
            "postgres.data.svc.cluster.local".into(),
        ),
        ("LOG_FORMAT".into(), "json".into()),
    ];
    api.restarts = 23;
    api.failure = Some(Failure::CrashLoop {
        exit_code: 1,
        log: vec![
            r#"{"level":"info","ts":"2026-11-20T09:28:41Z","msg":"payments-api v3.2.0 starting","pid":1}"#.into(),
            r#"{"level":"info","ts":"2026-11-20T09:28:41Z","msg":"loading configuration from environment"}"#.into(),
            r#"{"level":"fatal","ts":"2026-11-20T09:28:41Z","msg":"required environment variable PAYMENTS_DB_URL is not set","hint":"set PAYMENTS_DB_URL, e.g. from the payments-db secret"}"#.into(),
        ],
    });
    b.add_workload(&api);
    b.add_workload(&healthy(
        "payments",
        "ledger",
        "ghcr.io/acme/ledger:1.4.7",
        1,
        8080,
        // An application that logs its connection string: the password must be scrubbed on the way to a model.
        &[
            "connecting to postgres://payments:Sup3r-S3cret-Passw0rd!@postgres.data.svc:5432/payments",
            "ledger ready; 0 pending reconciliations",
        ],
    ));
    b.add_workload(&healthy(
        "payments",
        "fraud-check",
        "ghcr.io/acme/fraud-check:0.9.12",
        3,
        8080,
        &[
            "model fraud-v7 loaded (412 features)",
            "POST /score 200 3.1ms",
        ],
    ));
    let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "payments-db", "namespace": "payments", "creationTimestamp": format_time(now - Duration::days(30)),
                     "labels": {"app": "payments-api"}},
        "data": {"username": b64("payments"), "password": b64(SECRET_PASSWORD),
                 "url": b64(&format!("postgres://payments:{SECRET_PASSWORD}@postgres.data.svc:5432/payments"))}});
    secret["metadata"]["uid"] = json!("6f1c2b1e-3c5d-4f7e-9a1b-2c3d4e5f6a7b");
    b.add_object(secret);

    // data: an OOM-killed worker beside healthy stores, and a finished backup job.
    let mut postgres = healthy(
        "data",
        "postgres",
        "docker.io/library/postgres:16.4",
        1,
        5432,
        &["LOG:  database system is ready to accept connections"],
    );
    postgres.kind = "StatefulSet";
    b.add_workload(&postgres);
    b.add_workload(&healthy(
        "data",
        "redis",
        "docker.io/library/redis:7.4.0",
        1,
        6379,
        &["1:M 20 Nov 2026 06:12:04.000 * Ready to accept connections tcp"],
    ));
    let mut worker = healthy(
        "data",
        "analytics-worker",
        "ghcr.io/acme/analytics-worker:5.0.1",
        1,
        9000,
        &[],
    );
    worker.memory = "256Mi".into();
    worker.service = false;
    worker.restarts = 14;
    worker.failure = Some(Failure::OutOfMemory {
        log: vec![
            "analytics-worker 5.0.1: processing partition 2026-11-19".into(),
            "loaded 2400000 events (estimated 1.9 GiB in memory)".into(),
            "aggregating by customer_id ...".into(),
        ],
    });
    b.add_workload(&worker);
    b.add_workload(&healthy(
        "data",
        "etl",
        "ghcr.io/acme/etl:2.2.0",
        3,
        8080,
        &["etl idle; next run 10:00"],
    ));

    // ml: a trainer that asks for more CPU than any node has.
    let mut trainer = healthy(
        "ml",
        "model-trainer",
        "ghcr.io/acme/trainer:1.0.0",
        1,
        8080,
        &[],
    );
    trainer.cpu = "16".into();
    trainer.service = false;
    trainer.failure = Some(Failure::Unschedulable {
        message: "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.".into(),
    });
    b.add_workload(&trainer);
    b.add_workload(&healthy("ml", "jupyter", "quay.io/jupyter/base-notebook:2024-10-07", 1, 8888, &[
        "[I 2026-11-20 06:12:30.000 ServerApp] Jupyter Server 2.14.2 is running at: http://jupyter:8888/lab",
    ]));
    b.add_workload(&healthy(
        "ml",
        "feature-store",
        "ghcr.io/acme/feature-store:0.12.0",
        2,
        6566,
        &["feature server listening on :6566"],
    ));

    add_helm_release(&mut b);
    let mut snapshot = b.build();
    add_metrics(&mut snapshot);
    snapshot
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn storefront_manifest(replicas: u32, image: &str) -> String {
    format!(
        r#"---
# Source: storefront/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: storefront
  labels:
    app: storefront
    app.kubernetes.io/instance: storefront
    app.kubernetes.io/managed-by: Helm
spec:
  type: ClusterIP
  ports:
    - name: http
      port: 8080
      targetPort: 8080
  selector:
    app: storefront
---
# Source: storefront/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: storefront
  labels:
    app: storefront
    app.kubernetes.io/instance: storefront
    app.kubernetes.io/managed-by: Helm
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: storefront
      app.kubernetes.io/instance: storefront
  template:
    metadata:
      labels:
        app: storefront
        app.kubernetes.io/instance: storefront
    spec:
      containers:
        - name: storefront
          image: {image}
          ports:
            - containerPort: 8080
              name: http
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
"#
    )
}

/// The Helm storage Secret for one revision: `data.release` is base64 (by the Secret) of
/// base64 of gzip of the release JSON, exactly as Helm 3 writes it.
fn helm_secret(
    revision: u32,
    status: &str,
    replicas: u32,
    image: &str,
    deployed: chrono::DateTime<Utc>,
) -> Value {
    let tag = image.rsplit(':').next().unwrap_or("latest");
    let release = json!({
        "name": "storefront",
        "namespace": "shop",
        "version": revision,
        "info": {"first_deployed": "2026-10-21T10:00:00.000000000Z", "last_deployed": format_time(deployed),
                 "deleted": "", "description": if revision == 1 { "Install complete" } else { "Upgrade complete" },
                 "status": status,
                 "notes": "Storefront is available at http://storefront.shop.svc:8080\n"},
        "chart": {"metadata": {"name": "storefront", "version": format!("0.{}.0", revision + 3), "appVersion": tag,
                               "apiVersion": "v2", "description": "The Acme storefront", "type": "application"},
                  "lock": null, "templates": [], "values": {"replicaCount": 1, "image": {"repository": "ghcr.io/acme/storefront", "tag": ""}},
                  "schema": null, "files": []},
        "config": {"replicaCount": replicas, "image": {"tag": tag}},
        "manifest": storefront_manifest(replicas, image),
        "hooks": [],
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(release.to_string().as_bytes());
    let gzipped = gz.finish().unwrap_or_default();
    let helm_encoded = base64::engine::general_purpose::STANDARD.encode(gzipped);
    json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.storefront.v{revision}"), "namespace": "shop",
                     "creationTimestamp": format_time(deployed),
                     "labels": {"name": "storefront", "owner": "helm", "status": status, "version": revision.to_string(),
                                "modifiedAt": deployed.timestamp().to_string()}},
        "data": {"release": b64(&helm_encoded)}})
}

fn add_helm_release(b: &mut ClusterBuilder) {
    let now = b.now();
    b.add_object(helm_secret(
        1,
        "superseded",
        2,
        "ghcr.io/acme/storefront:2.3.1",
        now - Duration::days(30),
    ));
    b.add_object(helm_secret(
        2,
        "deployed",
        3,
        "ghcr.io/acme/storefront:2.4.0",
        now - Duration::days(6),
    ));
}

/// Marks the storefront objects as Helm's and adds PodMetrics/NodeMetrics for running pods.
fn add_metrics(snapshot: &mut Snapshot) {
    let now = format_time(snapshot.now);
    let mut extra = Vec::new();
    for o in &mut snapshot.objects {
        let v = &mut o.object;
        let ns = v
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if ns == "shop"
            && name == "storefront"
            && (v["kind"] == "Deployment" || v["kind"] == "Service")
        {
            v["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
            v["metadata"]["labels"]["app.kubernetes.io/instance"] = json!("storefront");
            v["metadata"]["annotations"]["meta.helm.sh/release-name"] = json!("storefront");
            v["metadata"]["annotations"]["meta.helm.sh/release-namespace"] = json!("shop");
        }
        if v["kind"] == "Pod" && v["status"]["phase"] == "Running" {
            let container = v
                .pointer("/spec/containers/0/name")
                .cloned()
                .unwrap_or_default();
            let heavy = name.starts_with("analytics-worker");
            let memory = if heavy {
                "251Mi".to_string()
            } else {
                format!("{}Mi", 20 + name.len() * 3)
            };
            let cpu = format!("{}m", 2 + name.len() % 17);
            extra.push(json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": now, "labels": v["metadata"]["labels"]},
                "timestamp": now, "window": "15s",
                "containers": [{"name": container, "usage": {"cpu": cpu, "memory": memory}}]}));
        }
        if v["kind"] == "Node" {
            let usage = if name.contains("control") {
                ("310m", "1843Mi")
            } else {
                ("1270m", "6120Mi")
            };
            extra.push(json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics",
                "metadata": {"name": name, "creationTimestamp": now, "labels": v["metadata"]["labels"]},
                "timestamp": now, "window": "20s", "usage": {"cpu": usage.0, "memory": usage.1}}));
        }
    }
    let start = snapshot.objects.len();
    snapshot
        .objects
        .extend(
            extra
                .into_iter()
                .enumerate()
                .map(|(i, object)| crate::snapshot::SourcedObject {
                    object,
                    source: format!("demo-metrics:{}", start + i + 1),
                }),
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn find<'a>(s: &'a Snapshot, kind: &str, name_prefix: &str) -> Vec<&'a Value> {
        s.objects
            .iter()
            .map(|o| &o.object)
            .filter(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with(name_prefix)
            })
            .collect()
    }

    #[test]
    fn the_demo_has_its_planted_failures() {
        let s = snapshot();
        let pods = find(&s, "Pod", "");
        assert!((30..=45).contains(&pods.len()), "{} pods", pods.len());
        let api = find(&s, "Pod", "payments-api")[0];
        assert_eq!(
            api["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        let worker = find(&s, "Pod", "analytics-worker")[0];
        assert_eq!(
            worker["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"],
            "OOMKilled"
        );
        assert_eq!(
            find(&s, "Pod", "model-trainer")[0]["status"]["phase"],
            "Pending"
        );
        let checkout = find(&s, "Endpoints", "checkout")[0];
        assert!(checkout.get("subsets").is_none());
    }

    #[test]
    fn the_ledger_logs_the_secret_password() {
        let s = snapshot();
        let logged = s.logs.iter().any(|(k, l)| {
            k.pod.starts_with("ledger")
                && matches!(l, crate::snapshot::ContainerLog::Lines(lines) if lines.iter().any(|x| x.text.contains(SECRET_PASSWORD)))
        });
        assert!(logged, "the demo's credential-scrubbing case is in place");
    }

    #[test]
    fn the_helm_release_decodes_like_helm_stores_it() {
        let s = snapshot();
        let secret = find(&s, "Secret", "sh.helm.release.v1.storefront.v2")[0];
        let b64 = base64::engine::general_purpose::STANDARD;
        let outer = b64
            .decode(secret["data"]["release"].as_str().unwrap())
            .unwrap();
        let gz = b64.decode(outer).unwrap();
        let mut json = String::new();
        GzDecoder::new(&gz[..]).read_to_string(&mut json).unwrap();
        let release: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(release["info"]["status"], "deployed");
        assert!(
            release["manifest"]
                .as_str()
                .unwrap()
                .contains("replicas: 3")
        );
        let live = find(&s, "Deployment", "storefront")[0];
        assert_eq!(live["spec"]["replicas"], 1);
    }
}
