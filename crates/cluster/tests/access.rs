//! Cluster access against kubesim over HTTPS: reads, kind resolution, paging, logs, events,
//! metrics, Helm, errors, retries, and the proof that only GETs are sent.

use std::time::Duration;

use cluster::{
    Cluster, ErrorKind, EventType, EventsQuery, GetQuery, HelmGetQuery, HelmHistoryQuery,
    HelmListQuery, Limits, ListQuery, LogsQuery, MetricsKind, MetricsQuery,
};
use kubesim::{FaultRule, ForbidRule, RunningServer, ServerConfig, Snapshot};
use serde_json::Value;

async fn serve(snapshot: Snapshot, config: ServerConfig) -> (RunningServer, Cluster) {
    serve_with_limits(snapshot, config, Limits::default()).await
}

async fn serve_with_limits(
    snapshot: Snapshot,
    config: ServerConfig,
    limits: Limits,
) -> (RunningServer, Cluster) {
    let server = kubesim::serve(snapshot, config)
        .await
        .expect("kubesim starts");
    let cluster =
        Cluster::from_kubeconfig_yaml(&server.kubeconfig(), None, limits).expect("kubeconfig");
    (server, cluster)
}

fn list(kind: &str, namespace: Option<&str>) -> ListQuery {
    ListQuery {
        kind: kind.into(),
        namespace: namespace.map(str::to_string),
        ..Default::default()
    }
}

fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn lists_and_gets_resolve_kinds_like_kubectl() {
    let (_s, c) = serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let pods = c
        .list(&ListQuery {
            all_namespaces: true,
            ..list("po", None)
        })
        .await
        .unwrap();
    assert_eq!(pods.len(), 37);
    assert!(
        pods.iter()
            .all(|p| p["kind"] == "Pod" && p["apiVersion"] == "v1")
    );
    assert!(
        pods.iter()
            .all(|p| p["metadata"].get("managedFields").is_none()),
        "managedFields are removed"
    );
    assert!(
        c.list(&list("pods", None)).await.unwrap().is_empty(),
        "the context's namespace is default"
    );
    for kind in [
        "Deployment",
        "deployments",
        "deploy",
        "deployments.apps",
        "deployment",
    ] {
        assert_eq!(
            c.list(&list(kind, Some("shop"))).await.unwrap().len(),
            5,
            "{kind}"
        );
    }
    let nodes = c
        .list(&list("no", Some("ignored-for-cluster-scoped")))
        .await
        .unwrap();
    assert_eq!(nodes.len(), 3);
    let labelled = c
        .list(&ListQuery {
            label_selector: Some("app=cart".into()),
            ..list("pods", Some("shop"))
        })
        .await
        .unwrap();
    assert_eq!(labelled.len(), 3);
    let limited = c
        .list(&ListQuery {
            limit: Some(2),
            all_namespaces: true,
            ..list("pods", None)
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);

    let d = c
        .get(&GetQuery {
            kind: "deploy".into(),
            name: "storefront".into(),
            namespace: Some("shop".into()),
            context: None,
            ..GetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 1);
    let e = c
        .get(&GetQuery {
            kind: "pods".into(),
            name: "nope".into(),
            namespace: Some("shop".into()),
            context: None,
            ..GetQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(
        e.message
            .contains("\"nope\" not found in namespace \"shop\""),
        "{}",
        e.message
    );
    let e = c.list(&list("Deploymnt", None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("closest: Deployment"), "{}", e.message);
    let e = c
        .list(&ListQuery {
            context: Some("elsewhere".into()),
            ..list("pods", None)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::BadInput { ref field } if field == "context"),
        "{e:?}"
    );

    let contexts = c.contexts();
    assert_eq!(contexts.len(), 1);
    assert!(contexts[0].current && contexts[0].name == "kubesim");
    let resources = c.api_resources(None).await.unwrap();
    let deploy = resources.iter().find(|r| r.kind == "Deployment").unwrap();
    assert_eq!(
        (deploy.group.as_str(), deploy.short_names.as_slice()),
        ("apps", &["deploy".to_string()][..])
    );
}

#[tokio::test]
async fn custom_resources_resolve_by_short_name_and_plural_group() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("crd.yaml"),
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}\n  versions: [{name: v1, served: true, storage: true}]\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: gear, namespace: default}\n",
    )
    .unwrap();
    let (_s, c) = serve(
        Snapshot::load(dir.path(), &Default::default()).unwrap(),
        ServerConfig::default(),
    )
    .await;
    for kind in ["wd", "widgets.example.com", "Widget", "widget"] {
        assert_eq!(
            names(&c.list(&list(kind, None)).await.unwrap()),
            ["gear"],
            "{kind}"
        );
    }
}

#[tokio::test]
async fn lists_page_past_500_and_stop_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let spec = kubesim::GenerateSpec::parse("pods=1234,namespaces=3,broken=5", 2).unwrap();
    let config = ServerConfig {
        request_log: Some(log.clone()),
        ..Default::default()
    };
    let (_s, c) = serve(kubesim::generate::generate(&spec), config).await;
    let all = c
        .list(&ListQuery {
            all_namespaces: true,
            ..list("pods", None)
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1234);
    let pages = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"path\":\"/api/v1/pods\""))
        .count();
    assert_eq!(pages, 3, "three pages of at most 500");
    let agent = format!("\"userAgent\":\"kubecode/{}\"", env!("CARGO_PKG_VERSION"));
    let requests = std::fs::read_to_string(&log).unwrap();
    assert!(
        requests.lines().all(|l| l.contains(&agent)),
        "every request names kubecode: {requests}"
    );

    let small = Limits {
        list_cap: 100,
        ..Limits::default()
    };
    let (_s2, c2) = serve_with_limits(
        kubesim::generate::generate(&spec),
        ServerConfig::default(),
        small,
    )
    .await;
    let e = c2
        .list(&ListQuery {
            all_namespaces: true,
            ..list("pods", None)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::LimitExceeded { ref limit, value: 100 } if limit == "listCap"),
        "{e:?}"
    );
    assert!(e.message.contains("labelSelector"), "{}", e.message);
}

#[tokio::test]
async fn logs_default_the_container_and_grep_host_side() {
    let (_s, c) = serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let api = names(
        &c.list(&ListQuery {
            label_selector: Some("app=payments-api".into()),
            ..list("pods", Some("payments"))
        })
        .await
        .unwrap(),
    )[0]
    .clone();
    let q = LogsQuery {
        name: api.clone(),
        namespace: Some("payments".into()),
        ..Default::default()
    };
    let all = c.logs(&q).await.unwrap();
    assert_eq!(all.lines().count(), 3);
    // With grep, the whole log comes back; the caller filters it once it is redacted.
    let grep_q = LogsQuery {
        grep: Some("(?i)fatal|error".into()),
        ..q.clone()
    };
    let unfiltered = c.logs(&grep_q).await.unwrap();
    assert_eq!(unfiltered, all);
    let grep = cluster::filter_log(&unfiltered, &grep_q).unwrap();
    assert_eq!(grep.lines().count(), 1);
    assert!(grep.contains("PAYMENTS_DB_URL"));
    let tail_q = LogsQuery {
        grep: Some("level".into()),
        tail_lines: Some(2),
        ..q.clone()
    };
    let tail_of_grep = cluster::filter_log(&c.logs(&tail_q).await.unwrap(), &tail_q).unwrap();
    assert_eq!(tail_of_grep.lines().count(), 2);
    assert!(
        c.logs(&LogsQuery {
            previous: true,
            ..q.clone()
        })
        .await
        .unwrap()
        .contains("fatal")
    );
    let e = c
        .logs(&LogsQuery {
            grep: Some("(".into()),
            ..q.clone()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::BadInput { ref field } if field == "grep"),
        "{e:?}"
    );
    let e = c
        .logs(&LogsQuery {
            container: Some("nope".into()),
            ..q.clone()
        })
        .await
        .unwrap_err();
    assert!(e.message.contains("no container \"nope\""), "{}", e.message);
}

#[tokio::test]
async fn logs_that_do_not_exist_yet_are_not_found_and_point_at_events() {
    let (_s, c) = serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    for (namespace, app, says) in [
        ("ml", "app=model-trainer", "does not have a host assigned"),
        ("shop", "app=recommendations", "is waiting to start"),
    ] {
        let pod = names(
            &c.list(&ListQuery {
                label_selector: Some(app.into()),
                ..list("pods", Some(namespace))
            })
            .await
            .unwrap(),
        )[0]
        .clone();
        let e = c
            .logs(&LogsQuery {
                name: pod.clone(),
                namespace: Some(namespace.into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
        assert!(e.message.contains(says), "{}", e.message);
        assert!(
            e.message.contains(&format!(
                "events of kind Pod, name {pod}, namespace {namespace}"
            )),
            "{}",
            e.message
        );
    }
}

#[tokio::test]
async fn events_come_newest_last_and_filter_by_object_type_and_age() {
    let (_s, c) = serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let all = c
        .events(&EventsQuery {
            all_namespaces: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let times: Vec<String> = all
        .iter()
        .map(|e| e["lastTimestamp"].as_str().unwrap_or("").to_string())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "newest last");
    let trainer = names(&c.list(&list("pods", Some("ml"))).await.unwrap())
        .into_iter()
        .find(|n| n.starts_with("model-trainer"))
        .unwrap();
    let ev = c
        .events(&EventsQuery {
            namespace: Some("ml".into()),
            kind: Some("pod".into()),
            name: Some(trainer),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["reason"], "FailedScheduling");
    let warnings = c
        .events(&EventsQuery {
            namespace: Some("shop".into()),
            event_type: Some(EventType::Warning),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!warnings.is_empty() && warnings.iter().all(|e| e["type"] == "Warning"));
    // Ages are measured against the API server's clock (kubesim's is the snapshot's).
    let recent = c
        .events(&EventsQuery {
            all_namespaces: true,
            since_seconds: Some(60),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        !recent.is_empty() && recent.len() < all.len(),
        "{} of {}",
        recent.len(),
        all.len()
    );
}

#[tokio::test]
async fn metrics_and_their_absence() {
    let (_s, c) = serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let pods = c
        .metrics(&MetricsQuery {
            kind: MetricsKind::Pods,
            namespace: Some("data".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        pods.iter()
            .any(|m| m["containers"][0]["usage"]["memory"] == "251Mi")
    );
    let node = c
        .metrics(&MetricsQuery {
            kind: MetricsKind::Nodes,
            name: Some("demo-worker".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(node.len(), 1);
    let dump = Snapshot::load(&real_dump(), &Default::default()).unwrap();
    let (_s2, c2) = serve(dump, ServerConfig::default()).await;
    let e = c2
        .metrics(&MetricsQuery {
            kind: MetricsKind::Pods,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(
        e.message.contains("metrics-server is not installed"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn helm_releases_decode_from_their_secrets() {
    let (_s, c) = serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let releases = c
        .helm_list(&HelmListQuery {
            all_namespaces: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(releases.len(), 1);
    let r = &releases[0];
    assert_eq!(
        (
            r.name.as_str(),
            r.namespace.as_str(),
            r.revision,
            r.status.as_str()
        ),
        ("storefront", "shop", 2, "deployed")
    );
    assert_eq!(r.chart, "storefront-0.5.0");
    let got = c
        .helm_get(&HelmGetQuery {
            name: "storefront".into(),
            namespace: Some("shop".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(got.values["replicaCount"], 3);
    assert_eq!(got.objects.len(), 2);
    let deployment = got
        .objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert!(got.notes.unwrap().contains("storefront.shop.svc"));
    let first = c
        .helm_get(&HelmGetQuery {
            name: "storefront".into(),
            namespace: Some("shop".into()),
            revision: Some(1),
            context: None,
        })
        .await
        .unwrap();
    assert_eq!(first.summary.status, "superseded");
    let history = c
        .helm_history(&HelmHistoryQuery {
            name: "storefront".into(),
            namespace: Some("shop".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|h| h.revision).collect::<Vec<_>>(),
        [1, 2]
    );
    let e = c
        .helm_get(&HelmGetQuery {
            name: "nope".into(),
            namespace: Some("shop".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn forbidden_throttled_and_unreachable_servers_give_actionable_errors() {
    let config = ServerConfig {
        forbid: vec![ForbidRule::parse("secrets").unwrap()],
        ..Default::default()
    };
    let fast = Limits {
        retry_budget: Duration::from_secs(3),
        ..Limits::default()
    };
    let (server, c) = serve_with_limits(kubesim::demo::snapshot(), config, fast).await;
    let e = c
        .list(&list("secrets", Some("payments")))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(
        e.message.contains("is forbidden") && e.message.contains("another namespace"),
        "{}",
        e.message
    );
    let e = c.helm_list(&HelmListQuery::default()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);

    // Two throttled answers, then success: retries absorb them.
    server.set_faults(
        vec![FaultRule::parse("throttle=1,retry-after=0,count=2").unwrap()],
        1,
    );
    assert_eq!(c.list(&list("pods", Some("shop"))).await.unwrap().len(), 12);
    // Throttled for good: the call gives up within its budget and says so.
    server.set_faults(
        vec![FaultRule::parse("throttle=1,retry-after=1").unwrap()],
        1,
    );
    let started = std::time::Instant::now();
    let e = c.list(&list("pods", Some("shop"))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Throttled);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(e.message.contains("gave up after"), "{}", e.message);
    server.set_faults(
        vec![FaultRule::parse("error=1,status=500,count=1").unwrap()],
        1,
    );
    assert!(
        c.list(&list("pods", Some("shop"))).await.is_ok(),
        "a 500 is retried"
    );

    server.shutdown().await;
    let started = std::time::Instant::now();
    let e = c.list(&list("pods", Some("shop"))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(
        e.message.contains("cannot reach the API server"),
        "{}",
        e.message
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn every_operation_sends_only_gets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let config = ServerConfig {
        request_log: Some(log.clone()),
        ..Default::default()
    };
    let (_s, c) = serve(kubesim::demo::snapshot(), config).await;
    let all = ListQuery {
        all_namespaces: true,
        ..list("pods", None)
    };
    let pod = names(
        &c.list(&ListQuery {
            label_selector: Some("app=ledger".into()),
            ..list("pods", Some("payments"))
        })
        .await
        .unwrap(),
    )[0]
    .clone();
    c.list(&all).await.unwrap();
    c.get(&GetQuery {
        kind: "pods".into(),
        name: pod.clone(),
        namespace: Some("payments".into()),
        context: None,
        ..GetQuery::default()
    })
    .await
    .unwrap();
    c.logs(&LogsQuery {
        name: pod,
        namespace: Some("payments".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    c.events(&EventsQuery {
        all_namespaces: true,
        ..Default::default()
    })
    .await
    .unwrap();
    c.metrics(&MetricsQuery {
        kind: MetricsKind::Nodes,
        ..Default::default()
    })
    .await
    .unwrap();
    c.api_resources(None).await.unwrap();
    c.helm_list(&HelmListQuery {
        all_namespaces: true,
        ..Default::default()
    })
    .await
    .unwrap();
    c.helm_get(&HelmGetQuery {
        name: "storefront".into(),
        namespace: Some("shop".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let requests = std::fs::read_to_string(&log).unwrap();
    let methods: Vec<String> = requests
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["method"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(methods.len() > 10);
    assert!(methods.iter().all(|m| m == "GET"), "{methods:?}");
}

fn real_dump() -> std::path::PathBuf {
    std::env::var_os("KUBECODE_REAL_DUMP")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/real-world/aks-2020-cluster-info-dump")
        })
}
