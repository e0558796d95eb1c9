//! The diagnosis building blocks against kubesim over HTTPS: a cluster with the bench
//! scenarios' planted failures (crash loop, OOM, liveness kill, image pull, unschedulable,
//! missing ConfigMap volume, PVC without its storage class, quota-blocked rollout, Service
//! selecting nothing, missing Secret, Helm drift, NotReady and pressured nodes) and healthy
//! distractors (a liveness kill that also exits 137 next to an OOM, completed Job pods, a
//! startup probe that failed once long ago, a pod that restarted days ago, a matching
//! Service, a healthy node).

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use cluster::{Cluster, Limits};
use diagnose::{
    Finding, HelmDriftQuery, NodesQuery, PodsQuery, Report, ServiceQuery, WorkloadQuery,
};
use kubesim::builder::{ClusterBuilder, Failure, Workload};
use kubesim::snapshot::SourcedObject;
use kubesim::{LoadOptions, RunningServer, ServerConfig, Snapshot};
use serde_json::{Value, json};

fn clock() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

fn ts(ago: Duration) -> String {
    (clock() - ago).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn scenario_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/scenarios")
        .join(name)
        .join("snapshot")
}

/// Lays a bench scenario's snapshot directory over the built cluster (same identity replaces).
fn overlay(snapshot: &mut Snapshot, scenario: &str) {
    let options = LoadOptions {
        lenient: false,
        now: Some(clock()),
    };
    let extra = Snapshot::load(&scenario_dir(scenario), &options).unwrap();
    let id = |o: &Value| {
        format!(
            "{}/{}/{}/{}",
            o["apiVersion"], o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]
        )
    };
    let index: HashMap<String, usize> = snapshot
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| (id(&o.object), i))
        .collect();
    for o in extra.objects {
        match index.get(&id(&o.object)) {
            Some(&i) => snapshot.objects[i] = o,
            None => snapshot.objects.push(o),
        }
    }
    for (k, v) in extra.logs.iter() {
        snapshot.logs.insert(k.clone(), v.clone());
    }
}

fn add(snapshot: &mut Snapshot, object: Value) {
    let n = snapshot.objects.len();
    snapshot.objects.push(SourcedObject {
        object,
        source: format!("test:{n}"),
    });
}

fn find_mut<'a>(snapshot: &'a mut Snapshot, kind: &str, name_prefix: &str) -> Vec<&'a mut Value> {
    snapshot
        .objects
        .iter_mut()
        .map(|o| &mut o.object)
        .filter(|o| {
            o["kind"] == kind
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name_prefix))
        })
        .collect()
}

fn deployment(ns: &str, name: &str, image: &str, replicas: u32, port: Option<u16>) -> Workload {
    let mut w = Workload::deployment(ns, name, image);
    w.replicas = replicas;
    w.port = port;
    w.service = port.is_some();
    w.healthy_log = vec![format!("{name} listening")];
    w
}

const CART_MANIFEST: &str = r#"---
# Source: cart/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cart-config
data:
  mode: production
---
# Source: cart/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: cart
  labels:
    app: cart
spec:
  type: ClusterIP
  ports:
    - name: http
      port: 8080
      targetPort: 8080
  selector:
    app: cart
---
# Source: cart/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  labels:
    app: cart
spec:
  replicas: 3
  selector:
    matchLabels:
      app: cart
  template:
    metadata:
      labels:
        app: cart
    spec:
      containers:
        - name: cart
          image: ghcr.io/acme/cart:1.9.3
          ports:
            - containerPort: 8080
              name: http
          resources:
            requests:
              cpu: "0.1"
              memory: 128Mi
"#;

/// Helm's storage Secret for a release revision (Secret base64 around Helm's base64 JSON).
fn helm_release_secret(name: &str, ns: &str, revision: u32, manifest: &str) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let release = json!({"name": name, "namespace": ns, "version": revision,
        "info": {"status": "deployed", "description": "Upgrade complete", "last_deployed": ts(Duration::days(3))},
        "chart": {"metadata": {"name": name, "version": "1.4.0", "appVersion": "1.9.3"}},
        "config": {}, "manifest": manifest});
    let helm = b64.encode(release.to_string());
    json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{name}.v{revision}"), "namespace": ns,
                     "creationTimestamp": ts(Duration::days(3)),
                     "labels": {"name": name, "owner": "helm", "status": "deployed", "version": revision.to_string()}},
        "data": {"release": b64.encode(helm)}})
}

/// The test cluster: every planted failure and every distractor.
fn cluster() -> Snapshot {
    let mut b = ClusterBuilder::new(clock(), 11);
    b.add_node("control-plane", 4, 16, true);
    for n in 0..3 {
        b.add_node(&format!("worker-{n:03}"), 16, 64, false);
    }
    b.add_node("worker-small", 16, 64, false);
    for ns in ["payments", "data", "shop", "ml", "batch", "monitoring"] {
        b.add_namespace(ns, Duration::days(120));
    }
    // Planted: a crash loop (2 replicas), an OOM, a liveness kill, an image pull, unschedulable.
    let mut crash = deployment(
        "payments",
        "payments-api",
        "ghcr.io/acme/payments-api:3.2.1",
        2,
        Some(8080),
    );
    crash.restarts = 14;
    crash.failure = Some(Failure::CrashLoop {
        exit_code: 1,
        log: vec![
            "payments-api 3.2.1 starting".into(),
            "FATAL: PAYMENTS_DB_URL is not set".into(),
        ],
    });
    b.add_workload(&crash);
    let mut oom = deployment(
        "data",
        "etl-worker",
        "ghcr.io/acme/etl-worker:4.0.2",
        1,
        None,
    );
    oom.memory = "512Mi".into();
    oom.restarts = 9;
    oom.failure = Some(Failure::OutOfMemory {
        log: vec![
            "loaded 1,200,000 rows into memory".into(),
            "building dedup index...".into(),
        ],
    });
    b.add_workload(&oom);
    let mut probe = deployment(
        "data",
        "report-api",
        "ghcr.io/acme/report-api:1.8.0",
        1,
        Some(8080),
    );
    probe.restarts = 6;
    probe.failure = Some(Failure::LivenessKill {
        probe_message: "Liveness probe failed: Get \"http://10.244.0.31:8080/healthz\": context deadline exceeded".into(),
        log: vec!["report-api 1.8.0 ready".into(), "health check handler blocked behind report rendering".into()],
    });
    b.add_workload(&probe);
    let mut pull = deployment(
        "shop",
        "recommendations",
        "ghcr.io/acme/recommendations:2.7.0",
        1,
        None,
    );
    pull.failure = Some(Failure::ImagePull {
        error: "rpc error: code = NotFound desc = failed to pull and unpack image \"ghcr.io/acme/recommendations:2.7.0\": not found".into(),
    });
    b.add_workload(&pull);
    let mut trainer = deployment("ml", "model-trainer", "ghcr.io/acme/trainer:1.0.0", 1, None);
    trainer.cpu = "64".into();
    trainer.failure = Some(Failure::Unschedulable {
        message: "0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu.".into(),
    });
    b.add_workload(&trainer);
    // Healthy: cart (a Helm release) with its Service, web (the quota scenario's old
    // revision), checkout (whose Service selects other labels), search-api (a startup probe
    // failed once, long ago), inventory (restarted days ago), ledger (broken below).
    b.add_workload(&deployment(
        "shop",
        "cart",
        "ghcr.io/acme/cart:1.9.3",
        3,
        Some(8080),
    ));
    let mut web = deployment("shop", "web", "ghcr.io/acme/web:1.8.2", 4, Some(8080));
    web.cpu = "500m".into();
    web.memory = "512Mi".into();
    b.add_workload(&web);
    let mut checkout = deployment(
        "shop",
        "checkout",
        "ghcr.io/acme/checkout:3.0.0",
        2,
        Some(8080),
    );
    checkout.service = false;
    b.add_workload(&checkout);
    let search = b.add_workload(&deployment(
        "shop",
        "search-api",
        "ghcr.io/acme/search:5.1.0",
        1,
        Some(9200),
    ));
    let search_pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": search.pods[0], "namespace": "shop", "uid": "u-search"}});
    b.add_event(
        &search_pod,
        Some("spec.containers{search-api}"),
        "Warning",
        "Unhealthy",
        "Startup probe failed: Get \"http://10.244.0.9:9200/healthz\": connect: connection refused",
        1,
        Duration::days(3),
        Duration::days(3),
        "kubelet",
    );
    let inventory = b.add_workload(&deployment(
        "shop",
        "inventory",
        "ghcr.io/acme/inventory:2.2.0",
        1,
        None,
    ));
    b.add_workload(&deployment(
        "payments",
        "ledger",
        "ghcr.io/acme/ledger:1.0.0",
        1,
        None,
    ));
    b.add_completed_job(
        "batch",
        "nightly-report",
        "ghcr.io/acme/report:1.0",
        2,
        Duration::hours(8),
    );
    // notifier restarted ten minutes ago and is Ready again: a low-severity finding.
    let notifier = b.add_workload(&deployment(
        "shop",
        "notifier",
        "ghcr.io/acme/notifier:0.9.0",
        1,
        None,
    ));
    // node-exporter: a healthy DaemonSet rolled from v1.8.1 to v1.8.2.
    let mut exporter = deployment(
        "monitoring",
        "node-exporter",
        "quay.io/prometheus/node-exporter:v1.8.2",
        0,
        Some(9100),
    );
    exporter.kind = "DaemonSet";
    exporter.service = false;
    let exporter = b.add_workload(&exporter);
    let mut s = b.build();
    for pod in find_mut(&mut s, "Pod", &notifier.pods[0]) {
        pod["status"]["containerStatuses"][0]["restartCount"] = json!(1);
        pod["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 137,
            "reason": "OOMKilled", "startedAt": ts(Duration::hours(5)), "finishedAt": ts(Duration::minutes(10))}});
    }
    for (revision, image) in [(1, "v1.8.1"), (2, "v1.8.2")] {
        let mut template = exporter.workload["spec"]["template"].clone();
        template["spec"]["containers"][0]["image"] =
            json!(format!("quay.io/prometheus/node-exporter:{image}"));
        add(
            &mut s,
            json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": format!("node-exporter-{revision}a2b3c4d5"), "namespace": "monitoring",
                "uid": format!("u-cr-{revision}"), "creationTimestamp": ts(Duration::days(10 - revision)),
                "labels": {"app": "node-exporter"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "node-exporter",
                                     "uid": exporter.workload["metadata"]["uid"], "controller": true}]},
            "revision": revision, "data": {"spec": {"template": template}}}),
        );
    }
    // worker-small can allocate far less than its pods request.
    for n in find_mut(&mut s, "Node", "worker-small") {
        n["status"]["allocatable"]["cpu"] = json!("250m");
    }
    // payments-api's endpoints as EndpointSlices: both addresses not ready.
    let api_pods: Vec<String> = find_mut(&mut s, "Pod", "payments-api-")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let endpoints: Vec<Value> = api_pods
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"addresses": [format!("10.244.9.{i}")], "conditions": {"ready": false, "serving": false, "terminating": false},
                              "targetRef": {"kind": "Pod", "name": p, "namespace": "payments"}}))
        .collect();
    add(
        &mut s,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "payments-api-x7k2p", "namespace": "payments", "uid": "u-slice",
                     "creationTimestamp": ts(Duration::days(2)),
                     "labels": {"kubernetes.io/service-name": "payments-api", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4", "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
    );

    // inventory restarted six days ago (exit 137 OOMKilled) and has been stable since.
    for pod in find_mut(&mut s, "Pod", &inventory.pods[0]) {
        pod["status"]["containerStatuses"][0]["restartCount"] = json!(2);
        pod["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 137,
            "reason": "OOMKilled", "startedAt": ts(Duration::days(7)), "finishedAt": ts(Duration::days(6))}});
    }
    // ledger reads its database password from a Secret that does not exist.
    for pod in find_mut(&mut s, "Pod", "ledger-") {
        pod["spec"]["containers"][0]["env"] = json!([{"name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "ledger-db", "key": "password"}}}]);
        pod["status"]["phase"] = json!("Pending");
        pod["status"]["containerStatuses"][0]["ready"] = json!(false);
        pod["status"]["containerStatuses"][0]["state"] = json!({"waiting": {
            "reason": "CreateContainerConfigError", "message": "secret \"ledger-db\" not found"}});
    }
    // cart: the live image was changed by hand two hours ago.
    for d in find_mut(&mut s, "Deployment", "cart") {
        d["spec"]["template"]["spec"]["containers"][0]["image"] =
            json!("ghcr.io/acme/cart:1.9.4-debug");
        d["metadata"]["managedFields"] = json!([
            {"manager": "helm", "operation": "Update", "apiVersion": "apps/v1", "time": ts(Duration::days(3)),
             "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"cart\"}": {
                    ".": {}, "f:image": {}, "f:name": {}, "f:ports": {}, "f:resources": {}}}}}}}},
            {"manager": "kubectl-set", "operation": "Update", "apiVersion": "apps/v1", "time": ts(Duration::hours(2)),
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"cart\"}": {"f:image": {}}}}}}}}]);
    }
    add(
        &mut s,
        helm_release_secret("cart", "shop", 4, CART_MANIFEST),
    );
    // A Service whose named targetPort no pod declares.
    add(
        &mut s,
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "cart-admin", "namespace": "shop", "uid": "u-cart-admin", "creationTimestamp": ts(Duration::days(2))},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.7.7", "selector": {"app": "cart"},
                 "ports": [{"name": "admin", "port": 9000, "protocol": "TCP", "targetPort": "admin"}]}}),
    );
    // Nodes: worker-002 stopped reporting; worker-001 is short of disk; worker-000 is fine.
    for n in find_mut(&mut s, "Node", "worker-002") {
        for c in n["status"]["conditions"].as_array_mut().unwrap() {
            c["status"] = json!("Unknown");
            c["reason"] = json!("NodeStatusUnknown");
            c["message"] = json!("Kubelet stopped posting node status.");
            c["lastTransitionTime"] = json!(ts(Duration::minutes(25)));
            c["lastHeartbeatTime"] = json!(ts(Duration::minutes(26)));
        }
        n["spec"]["taints"] = json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": ts(Duration::minutes(25))},
                                     {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": ts(Duration::minutes(25))}]);
    }
    for n in find_mut(&mut s, "Node", "worker-001") {
        for c in n["status"]["conditions"].as_array_mut().unwrap() {
            if c["type"] == "DiskPressure" {
                c["status"] = json!("True");
                c["reason"] = json!("KubeletHasDiskPressure");
                c["message"] = json!("kubelet has disk pressure");
            }
        }
        n["spec"]["taints"] =
            json!([{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}]);
    }
    for scenario in [
        "crash-loop",
        "missing-configmap-volume",
        "pvc-no-storageclass",
        "quota-blocks-rollout",
        "service-no-endpoints",
    ] {
        overlay(&mut s, scenario);
    }
    s
}

async fn serve(snapshot: Snapshot) -> (RunningServer, Cluster) {
    let server = kubesim::serve(snapshot, ServerConfig::default())
        .await
        .unwrap();
    let cluster =
        Cluster::from_kubeconfig_yaml(&server.kubeconfig(), None, Limits::default()).unwrap();
    (server, cluster)
}

fn about<'a>(r: &'a Report, kind: &str, name_prefix: &str) -> Vec<&'a Finding> {
    r.findings
        .iter()
        .filter(|f| f.object.kind == kind && f.object.name.starts_with(name_prefix))
        .collect()
}

fn one<'a>(r: &'a Report, kind: &str, name_prefix: &str) -> &'a Finding {
    let found = about(r, kind, name_prefix);
    assert_eq!(
        found.len(),
        1,
        "one finding about {kind} {name_prefix}*: {r:#?}"
    );
    found[0]
}

fn text(f: &Finding) -> String {
    format!(
        "{} | {} | {}",
        f.problem,
        f.evidence.join(" | "),
        f.hint.clone().unwrap_or_default()
    )
}

/// Every Secret value of the snapshot, base64 and decoded, for leak checks.
fn secret_values(s: &Snapshot) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for o in &s.objects {
        if o.object["kind"] != "Secret" {
            continue;
        }
        for v in o.object["data"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            let v = v.as_str().unwrap_or("");
            if v.len() >= 8 {
                out.push(v.to_string());
                // Short plaintexts ("payments") are words the cluster uses anyway.
                if let Ok(plain) = b64.decode(v)
                    && plain.len() >= 12
                {
                    out.push(String::from_utf8_lossy(&plain).into_owned());
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn pods_finds_every_planted_failure_and_no_distractor() {
    let snapshot = cluster();
    let secrets = secret_values(&snapshot);
    assert!(secrets.len() >= 4, "the cluster has Secret data to leak");
    let (_s, c) = serve(snapshot).await;
    let r = diagnose::pods(
        &c,
        &PodsQuery {
            all_namespaces: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let json = serde_json::to_string_pretty(&r).unwrap();
    eprintln!("{json}");
    for v in &secrets {
        assert!(
            !json.contains(v.as_str()),
            "a Secret value reached a finding: {v}"
        );
    }

    // The crash loop: two pods of one ReplicaSet, one finding, exit code and log tail.
    let crash = text(one(&r, "Pod", "payments-api-"));
    assert!(
        crash.contains("CrashLoopBackOff") && crash.contains("exits with code 1"),
        "{crash}"
    );
    assert!(
        crash.contains("14 restarts") && crash.contains("the same problem in 1 more pods"),
        "{crash}"
    );
    assert!(
        crash.contains("BackOff x") && crash.contains("PAYMENTS_DB_URL is not set"),
        "{crash}"
    );
    // OOM and the liveness kill both exit 137 and are told apart.
    let oom = text(one(&r, "Pod", "etl-worker-"));
    assert!(oom.contains("OOMKilled") && oom.contains("512Mi"), "{oom}");
    assert!(!oom.contains("liveness"), "{oom}");
    let probe = text(one(&r, "Pod", "report-api-"));
    assert!(
        probe.contains("killed by its liveness probe") && probe.contains("not OOM"),
        "{probe}"
    );
    assert!(
        probe.contains("Liveness probe failed") && !probe.contains("OOMKilled"),
        "{probe}"
    );
    // The image pull names the image and the registry's answer.
    let pull = text(one(&r, "Pod", "recommendations-"));
    assert!(
        pull.contains("cannot pull image ghcr.io/acme/recommendations:2.7.0"),
        "{pull}"
    );
    assert!(pull.contains("code = NotFound"), "{pull}");
    // Scheduling: the message, and the PVC that is not bound with its event.
    let trainer = text(one(&r, "Pod", "model-trainer-"));
    assert!(
        trainer.contains("cannot be scheduled") && trainer.contains("Insufficient cpu"),
        "{trainer}"
    );
    // 64 CPUs asked of nodes that allocate at most 16: no node is big enough, however empty.
    assert!(
        trainer.contains("no node is big enough (cpu 64000m > ")
            && trainer.contains("largest node allocatable"),
        "{trainer}"
    );
    let tsdb = text(one(&r, "Pod", "timescaledb-0"));
    assert!(
        tsdb.contains("PersistentVolumeClaim data-timescaledb-0 is Pending"),
        "{tsdb}"
    );
    assert!(
        tsdb.contains("fast-ssd") && tsdb.contains("ProvisioningFailed x214"),
        "{tsdb}"
    );
    // Missing references: the ConfigMap (with the similar name that exists) and the Secret.
    let importer = text(one(&r, "Pod", "catalog-importer-"));
    assert!(importer.contains("volume cannot be mounted"), "{importer}");
    assert!(
        importer.contains("ConfigMap catalog-importer-config does not exist in namespace shop"),
        "{importer}"
    );
    assert!(importer.contains("catalog-importer-settings"), "{importer}");
    let ledger = text(one(&r, "Pod", "ledger-"));
    assert!(ledger.contains("CreateContainerConfigError"), "{ledger}");
    assert!(
        ledger.contains("Secret ledger-db does not exist") && ledger.contains("env DB_PASSWORD"),
        "{ledger}"
    );

    // Distractors: completed Job pods, an old startup-probe failure, an old restart, healthy pods.
    for healthy in [
        "nightly-report-",
        "search-api-",
        "inventory-",
        "cart-",
        "web-",
        "checkout-",
        "node-exporter-",
    ] {
        assert!(
            about(&r, "Pod", healthy).is_empty(),
            "{healthy} is healthy: {json}"
        );
    }
    // A restart ten minutes ago of a pod that is Ready again: listed last, low severity.
    let notifier = one(&r, "Pod", "notifier-");
    assert!(
        notifier
            .problem
            .starts_with("restarted in the last hour, running and ready now (low severity)"),
        "{notifier:?}"
    );
    assert!(
        text(notifier).contains("OOMKilled") && text(notifier).contains("10m ago"),
        "{notifier:?}"
    );
    assert_eq!(r.findings.last(), Some(notifier));
    assert_eq!(r.findings.len(), 9, "{json}");
    let checked = r.checked.join("\n");
    assert!(
        checked.contains("pods in all namespaces") && checked.contains("2 completed"),
        "{checked}"
    );
    assert!(checked.contains("logs (last 20 lines"), "{checked}");
    assert!(
        checked.contains("1 missing") || checked.contains("2 missing"),
        "{checked}"
    );

    // One namespace, and a label selector: only what is asked for.
    let shop = diagnose::pods(
        &c,
        &PodsQuery {
            namespace: Some("shop".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let names: Vec<&str> = shop
        .findings
        .iter()
        .map(|f| f.object.name.as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        shop.checked[0].contains("in namespace shop"),
        "{:?}",
        shop.checked
    );
    let healthy = diagnose::pods(
        &c,
        &PodsQuery {
            namespace: Some("shop".into()),
            label_selector: Some("app=cart".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(healthy.findings.is_empty(), "{healthy:?}");
    assert_eq!(
        healthy.checked,
        ["3 pods in namespace shop with labels app=cart: 3 running and ready"]
    );
}

#[tokio::test]
async fn workload_explains_stuck_rollouts_and_leaves_healthy_ones_alone() {
    let (_s, c) = serve(cluster()).await;
    let q = |kind: &str, name: &str, ns: &str| WorkloadQuery {
        kind: kind.into(),
        name: name.into(),
        namespace: Some(ns.into()),
        ..Default::default()
    };
    // Quota blocks the new revision: replicas, conditions, the revision diff, the quota.
    let web = diagnose::workload(&c, &q("deploy", "web", "shop"))
        .await
        .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&web).unwrap());
    let rollout = text(one(&web, "Deployment", "web"));
    assert!(
        rollout.contains("rollout of revision 2 is stuck (ProgressDeadlineExceeded)"),
        "{rollout}"
    );
    assert!(rollout.contains("0 of 4 replicas updated"), "{rollout}");
    assert!(
        rollout.contains("ResourceQuota shop-compute is exceeded"),
        "{rollout}"
    );
    assert!(
        rollout.contains("requests.cpu used 3200m of 3500m"),
        "{rollout}"
    );
    assert!(rollout.contains("FailedCreate x38"), "{rollout}");
    assert!(
        rollout.contains("changed from revision 1 to 2: spec.containers[web].image: ghcr.io/acme/web:1.8.2 → ghcr.io/acme/web:1.9.0"),
        "{rollout}"
    );
    assert!(
        rollout.contains("change-cause: release web 1.9.0"),
        "{rollout}"
    );
    assert!(
        !rollout.contains("(not set)"),
        "defaults are no change: {rollout}"
    );
    assert!(
        web.findings[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("roll back to revision 1")
    );
    assert_eq!(web.findings.len(), 1, "the old pods are healthy");

    // A crash-looping Deployment: the rollout finding names its pods' problem, then the pods.
    let api = diagnose::workload(&c, &q("Deployment", "payments-api", "payments"))
        .await
        .unwrap();
    let rollout = text(&api.findings[0]);
    assert!(
        rollout.contains("only 0 of 2 replicas are available")
            && rollout.contains("CrashLoopBackOff"),
        "{rollout}"
    );
    assert_eq!(api.findings[1].object.kind, "Pod");
    assert!(
        text(&api.findings[1]).contains("BackOff x287"),
        "the pod's own events: {api:?}"
    );

    // A StatefulSet whose claim cannot be provisioned.
    let tsdb = diagnose::workload(&c, &q("sts", "timescaledb", "data"))
        .await
        .unwrap();
    assert!(
        text(&tsdb.findings[0]).contains("only 0 of 1 replicas are ready"),
        "{tsdb:?}"
    );
    assert!(text(&tsdb.findings[1]).contains("fast-ssd"), "{tsdb:?}");

    // Healthy: no finding, and `checked` says what was examined.
    let cart = diagnose::workload(&c, &q("deployments.apps", "cart", "shop"))
        .await
        .unwrap();
    assert!(cart.findings.is_empty(), "{cart:?}");
    assert!(
        cart.checked[0].contains("replicas desired 3, updated 3, ready 3, available 3"),
        "{cart:?}"
    );

    // A healthy DaemonSet: its ControllerRevisions say what the last rollout changed.
    let ds = diagnose::workload(&c, &q("ds", "node-exporter", "monitoring"))
        .await
        .unwrap();
    assert!(ds.findings.is_empty(), "{ds:?}");
    assert!(
        ds.checked.iter().any(|c| c.contains("changed from revision 1 to 2: spec.containers[node-exporter].image: quay.io/prometheus/node-exporter:v1.8.1 → quay.io/prometheus/node-exporter:v1.8.2")),
        "{ds:?}"
    );

    let e = diagnose::workload(&c, &q("Pod", "x", "shop"))
        .await
        .unwrap_err();
    assert!(e.message.contains("diagnose.pods"), "{}", e.message);
    let e = diagnose::workload(&c, &q("Deployment", "nope", "shop"))
        .await
        .unwrap_err();
    assert_eq!(e.kind.code(), "NotFound");
}

#[tokio::test]
async fn service_checks_selector_endpoints_and_ports() {
    let (_s, c) = serve(cluster()).await;
    let q = |name: &str, ns: &str| ServiceQuery {
        name: name.into(),
        namespace: Some(ns.into()),
        ..Default::default()
    };
    // The selector matches nothing: the closest pods are named with their labels.
    let checkout = diagnose::service(&c, &q("checkout", "shop")).await.unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&checkout).unwrap());
    let f = text(one(&checkout, "Service", "checkout"));
    assert!(f.contains("matches no pod in namespace shop"), "{f}");
    assert!(f.contains("closest: 2 pods labelled app=checkout"), "{f}");
    // Pods match, none ready.
    let api = diagnose::service(&c, &q("payments-api", "payments"))
        .await
        .unwrap();
    let f = text(one(&api, "Service", "payments-api"));
    assert!(
        f.contains("no ready endpoints: 2 pods match")
            && f.contains("not-ready endpoints: payments-api-"),
        "{f}"
    );
    assert!(
        api.checked
            .iter()
            .any(|c| c == "EndpointSlices: 0 ready and 2 not-ready addresses"),
        "{api:?}"
    );
    // A named targetPort no pod declares.
    let admin = diagnose::service(&c, &q("cart-admin", "shop"))
        .await
        .unwrap();
    let port: Vec<&Finding> = about(&admin, "Service", "cart-admin")
        .into_iter()
        .filter(|f| f.problem.contains("port"))
        .collect();
    assert_eq!(port.len(), 1, "{admin:?}");
    let f = text(port[0]);
    assert!(
        f.contains("named port \"admin\", which 0 of 3 selected pods declare"),
        "{f}"
    );
    assert!(f.contains("8080/http"), "{f}");
    // A healthy Service.
    let cart = diagnose::service(&c, &q("cart", "shop")).await.unwrap();
    assert!(cart.findings.is_empty(), "{cart:?}");
    let checked = cart.checked.join("\n");
    assert!(
        checked.contains("3 match, 3 of them ready") && checked.contains("3 ready and 0 not-ready"),
        "{checked}"
    );
    assert!(
        checked.contains("port http (8080) → 8080: declared by 3 pods"),
        "{checked}"
    );
}

#[tokio::test]
async fn helm_drift_compares_only_what_the_manifest_sets_and_names_who_changed_it() {
    let (_s, c) = serve(cluster()).await;
    let r = diagnose::helm_drift(
        &c,
        &HelmDriftQuery {
            name: "cart".into(),
            namespace: Some("shop".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    let missing = text(one(&r, "ConfigMap", "cart-config"));
    assert!(missing.contains("missing"), "{missing}");
    let d = one(&r, "Deployment", "cart");
    assert_eq!(
        d.evidence.len(),
        1,
        "cpu 0.1 = 100m, defaults ignored: {d:?}"
    );
    assert!(
        d.evidence[0].starts_with("spec.template.spec.containers[cart].image: release ghcr.io/acme/cart:1.9.3, live ghcr.io/acme/cart:1.9.4-debug (set by kubectl-set, Update, 2026-01-15T10:00:00Z (2h ago))"),
        "{d:?}"
    );
    assert!(
        about(&r, "Service", "cart").is_empty(),
        "the Service matches: {r:?}"
    );
    assert_eq!(r.findings.len(), 2);
    assert!(
        r.checked[1].contains("3 objects compared") && r.checked[1].contains("1 match"),
        "{:?}",
        r.checked
    );

    // The demo's storefront (the helm-drift bench scenario): replicas and image drifted.
    let (_d, demo) = serve(kubesim::demo::snapshot()).await;
    let r = diagnose::helm_drift(
        &demo,
        &HelmDriftQuery {
            name: "storefront".into(),
            namespace: Some("shop".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let f = text(one(&r, "Deployment", "storefront"));
    assert!(f.contains("spec.replicas: release 3, live 1"), "{f}");
    assert!(
        f.contains(
            "release ghcr.io/acme/storefront:2.4.0, live ghcr.io/acme/storefront:2.4.0-hotfix"
        ),
        "{f}"
    );
    assert!(about(&r, "Service", "storefront").is_empty(), "{r:?}");

    let e = diagnose::helm_drift(
        &demo,
        &HelmDriftQuery {
            name: "nope".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind.code(), "NotFound");
}

#[tokio::test]
async fn nodes_reports_not_ready_and_pressure_and_leaves_healthy_nodes_alone() {
    let (_s, c) = serve(cluster()).await;
    let r = diagnose::nodes(&c, &NodesQuery::default()).await.unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    let down = text(one(&r, "Node", "worker-002"));
    assert!(
        down.contains("NotReady: the kubelet stopped posting status"),
        "{down}"
    );
    assert!(
        down.contains("Kubelet stopped posting node status") && down.contains("25m ago"),
        "{down}"
    );
    assert!(
        down.contains("node.kubernetes.io/unreachable:NoExecute"),
        "{down}"
    );
    assert!(down.contains("pods on it:"), "{down}");
    let disk = text(one(&r, "Node", "worker-001"));
    assert!(disk.starts_with("DiskPressure"), "{disk}");
    assert!(disk.contains("requests: cpu"), "{disk}");
    assert!(
        about(&r, "Node", "worker-000").is_empty() && about(&r, "Node", "control-plane").is_empty(),
        "{r:?}"
    );
    let small = text(one(&r, "Node", "worker-small"));
    assert!(
        small.starts_with("over-committed") && small.contains("of 250m allocatable"),
        "{small}"
    );
    assert!(
        r.checked[0].starts_with("5 nodes: 4 Ready"),
        "{:?}",
        r.checked
    );
}
