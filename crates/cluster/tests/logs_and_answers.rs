//! Logs (head, context lines, label selectors across pods, the regex syntax) and honest
//! answers (Forbidden instead of empty lists, the API's own codes for its refusals), against
//! kubesim over HTTPS.

use cluster::{
    Cluster, ErrorKind, EventsQuery, HelmHistoryQuery, HelmListQuery, Limits, ListQuery, LogsQuery,
    MetricsKind, MetricsQuery, PodLogs,
};
use kubesim::{FaultRule, ForbidRule, RunningServer, ServerConfig, Snapshot};
use serde_json::{Value, json};

async fn serve(snapshot: Snapshot, config: ServerConfig) -> (RunningServer, Cluster) {
    let server = kubesim::serve(snapshot, config)
        .await
        .expect("kubesim starts");
    let cluster = Cluster::from_kubeconfig_yaml(&server.kubeconfig(), None, Limits::default())
        .expect("kubeconfig");
    (server, cluster)
}

fn pod(name: &str, app: &str, node: Option<&str>) -> String {
    let node = node
        .map(|n| format!("  nodeName: {n}\n"))
        .unwrap_or_default();
    let status = if node.is_empty() {
        "status:\n  phase: Pending\n  conditions: [{type: PodScheduled, status: \"False\", reason: Unschedulable}]\n".to_string()
    } else {
        "status:\n  phase: Running\n  startTime: \"2026-11-30T10:00:00Z\"\n  containerStatuses:\n  - name: app\n    ready: true\n    restartCount: 0\n    image: web:1\n    state: {running: {startedAt: \"2026-11-30T10:00:00Z\"}}\n".to_string()
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\n  labels: {{app: {app}}}\n  creationTimestamp: \"2026-11-30T10:00:00Z\"\nspec:\n{node}  containers:\n  - name: app\n    image: web:1\n{status}---\n"
    )
}

/// A snapshot with a `web` Deployment's pods: web-a (150 lines, errors at 10, 20, 21, 140),
/// web-b (3 lines), web-c (empty log), web-d (Pending, no node), and 22 `many` pods.
fn snapshot() -> (tempfile::TempDir, Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    let mut pods = String::new();
    for (name, node) in [
        ("web-a", Some("n1")),
        ("web-b", Some("n1")),
        ("web-c", Some("n1")),
        ("web-d", None),
    ] {
        pods.push_str(&pod(name, "web", node));
    }
    pods.push_str(&pod("other", "other", Some("n1")));
    for i in 0..22 {
        pods.push_str(&pod(&format!("many-{i:02}"), "many", Some("n1")));
    }
    std::fs::write(dir.path().join("pods.yaml"), pods).unwrap();
    std::fs::write(
        dir.path().join("ns.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
    )
    .unwrap();
    let logs = dir.path().join("logs/shop");
    let write = |pod: &str, text: String| {
        std::fs::create_dir_all(logs.join(pod)).unwrap();
        std::fs::write(logs.join(pod).join("app.log"), text).unwrap();
    };
    let a: String = (1..=150)
        .map(|i| {
            let level = if [10, 20, 21, 140].contains(&i) {
                "ERROR"
            } else {
                "info"
            };
            format!("a {level} line {i}\n")
        })
        .collect();
    write("web-a", a);
    write(
        "web-b",
        "b info start\nb ERROR payment refused\nb info done\n".into(),
    );
    write("web-c", String::new());
    write("other", "other ERROR not mine\n".into());
    for i in 0..22 {
        write(&format!("many-{i:02}"), format!("many {i}\n"));
    }
    let snapshot = Snapshot::load(dir.path(), &Default::default()).unwrap();
    (dir, snapshot)
}

fn logs_query(args: Value) -> LogsQuery {
    let mut all = json!({"namespace": "shop"});
    all.as_object_mut()
        .unwrap()
        .extend(args.as_object().unwrap().clone());
    serde_json::from_value(all).unwrap()
}

/// What the call path does: read, then select lines (here without the shape stage).
async fn one_pod(c: &Cluster, args: Value) -> String {
    let q = logs_query(args);
    cluster::filter_log(&c.logs(&q).await.unwrap(), &q).unwrap()
}

async fn selected(c: &Cluster, args: Value) -> (PodLogs, String) {
    let q = logs_query(args);
    let logs = c.selected_logs(&q).await.unwrap();
    let text = cluster::render_pod_logs(&logs, &q).unwrap();
    (logs, text)
}

fn field(e: &cluster::ClusterError) -> &str {
    match &e.kind {
        ErrorKind::BadInput { field } => field,
        other => panic!("not BadInput: {other:?}: {}", e.message),
    }
}

#[tokio::test]
async fn head_and_context_lines() {
    let (_dir, snap) = snapshot();
    let (_s, c) = serve(snap, ServerConfig::default()).await;
    assert_eq!(
        one_pod(&c, json!({"name": "web-a", "head": 2})).await,
        "a info line 1\na info line 2\n"
    );
    assert_eq!(
        one_pod(&c, json!({"name": "web-a", "grep": "ERROR", "head": 2})).await,
        "a ERROR line 10\na ERROR line 20\n",
        "head counts matching lines"
    );
    assert_eq!(
        one_pod(&c, json!({"name": "web-a", "tailLines": 2})).await,
        "a info line 149\na info line 150\n"
    );
    // Matches at 10, 20, 21 and 140: 20 and 21 share one group, the others stand apart.
    assert_eq!(
        one_pod(&c, json!({"name": "web-a", "grep": "ERROR", "context": 1})).await,
        "a info line 9\na ERROR line 10\na info line 11\n--\n\
         a info line 19\na ERROR line 20\na ERROR line 21\na info line 22\n--\n\
         a info line 139\na ERROR line 140\na info line 141\n"
    );
    assert_eq!(
        one_pod(
            &c,
            json!({"name": "web-a", "grep": "ERROR", "context": 1, "tailLines": 1})
        )
        .await,
        "a info line 139\na ERROR line 140\na info line 141\n"
    );

    let q = logs_query(json!({"name": "web-a", "head": 2, "tailLines": 3}));
    let e = c.logs(&q).await.unwrap_err();
    assert_eq!(field(&e), "head");
    assert!(
        e.message.contains("`head`") && e.message.contains("`tailLines`"),
        "{}",
        e.message
    );
    let e = c
        .logs(&logs_query(json!({"name": "web-a", "context": 2})))
        .await
        .unwrap_err();
    assert_eq!(field(&e), "context");
    assert!(e.message.contains("needs `grep`"), "{}", e.message);
    let e = c
        .logs(&logs_query(
            json!({"name": "web-a", "labelSelector": "app=web"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(field(&e), "labelSelector");
    let e = c.logs(&logs_query(json!({}))).await.unwrap_err();
    assert!(
        e.message.contains("`name`") && e.message.contains("`labelSelector`"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn look_around_fails_naming_the_syntax_and_an_alternative() {
    let (_dir, snap) = snapshot();
    let (_s, c) = serve(snap, ServerConfig::default()).await;
    for grep in ["ERROR(?! payment)", "(?<=b )ERROR"] {
        for args in [
            json!({"name": "web-b", "grep": grep}),
            json!({"labelSelector": "app=web", "grep": grep}),
        ] {
            let q = logs_query(args);
            let e = match q.name.is_empty() {
                true => c.selected_logs(&q).await.unwrap_err(),
                false => c.logs(&q).await.unwrap_err(),
            };
            assert_eq!(field(&e), "grep");
            assert!(
                e.message.contains("Rust regex syntax")
                    && e.message.contains("no look-around")
                    && e.message.contains("filter"),
                "{}",
                e.message
            );
        }
    }
}

#[tokio::test]
async fn a_label_selector_reads_every_pod_in_capped_blocks() {
    let (_dir, snap) = snapshot();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let config = ServerConfig {
        request_log: Some(log.clone()),
        ..Default::default()
    };
    let (_s, c) = serve(snap, config).await;
    let (logs, text) = selected(&c, json!({"labelSelector": "app=web"})).await;
    assert_eq!(logs.matched, 4);
    assert_eq!(
        logs.pods.iter().map(|p| p.pod.as_str()).collect::<Vec<_>>(),
        ["web-a", "web-b", "web-c", "web-d"]
    );
    assert!(
        text.starts_with("# 4 pods match labelSelector \"app=web\" in namespace shop\n==> pod/web-a <==\n(earlier lines not shown: pass tailLines or head to choose)\na info line 51\n"),
        "{text}"
    );
    assert!(
        text.contains("a info line 150\n==> pod/web-b <==\nb info start\n"),
        "{text}"
    );
    assert!(text.contains("==> pod/web-c <==\n(empty log)\n"), "{text}");
    assert!(
        text.contains("==> pod/web-d <==\n(no log: pod web-d does not have a host assigned; the pod's events say why)\n"),
        "{text}"
    );
    assert!(!text.contains("other"), "only the selected pods: {text}");
    // The API server cut each tail: one line over the default cap, to tell whether it cut.
    let requests = std::fs::read_to_string(&log).unwrap();
    let tails = requests
        .lines()
        .filter(|l| l.contains("/pods/web-a/log"))
        .collect::<Vec<_>>();
    assert!(
        tails.len() == 1 && tails[0].contains("tailLines=101"),
        "{tails:?}"
    );

    // tailLines and head apply per pod; grep and context per pod too.
    let (_, text) = selected(&c, json!({"labelSelector": "app=web", "tailLines": 1})).await;
    assert!(
        text.contains("==> pod/web-a <==\na info line 150\n==> pod/web-b <==\nb info done\n"),
        "{text}"
    );
    let (_, text) = selected(&c, json!({"labelSelector": "app=web", "head": 1})).await;
    assert!(
        text.contains("==> pod/web-a <==\na info line 1\n==> pod/web-b <==\nb info start\n"),
        "{text}"
    );
    let (_, text) = selected(
        &c,
        json!({"labelSelector": "app=web", "grep": "ERROR", "context": 1, "head": 1}),
    )
    .await;
    assert!(
        text.contains("==> pod/web-a <==\na info line 9\na ERROR line 10\na info line 11\n==> pod/web-b <==\nb info start\nb ERROR payment refused\nb info done\n==> pod/web-c <==\n(no matching lines)\n"),
        "the first match of each pod, with its context, never running into the next block: {text}"
    );

    // More pods than are read: the text says how many matched and how many were read.
    let (logs, text) = selected(&c, json!({"labelSelector": "app=many"})).await;
    assert_eq!((logs.matched, logs.pods.len()), (22, 20));
    assert!(
        text.starts_with("# 22 pods match labelSelector \"app=many\" in namespace shop; the first 20 by name are read"),
        "{text}"
    );
    assert!(text.contains("==> pod/many-19 <==\nmany 19\n") && !text.contains("many-20"));
    let (logs, text) = selected(&c, json!({"labelSelector": "app=none"})).await;
    assert!(logs.pods.is_empty());
    assert!(text.starts_with("# no pod matches"), "{text}");

    // previous: a pod without an earlier instance says so in its block.
    let (_, text) = selected(&c, json!({"labelSelector": "app=web", "previous": true})).await;
    assert!(
        text.contains("==> pod/web-b <==\n(no log: previous terminated container \"app\" in pod \"web-b\" not found"),
        "{text}"
    );
    // A container no pod has: every pod fails the same way, and the call says it once.
    let e = c
        .selected_logs(&logs_query(
            json!({"labelSelector": "app=web", "container": "sidecar"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(field(&e), "container");
}

#[tokio::test]
async fn the_pods_of_a_selector_are_read_a_few_at_a_time() {
    let (_dir, snap) = snapshot();
    let (server, c) = serve(snap, ServerConfig::default()).await;
    // Every log read takes 300 ms: 20 pods one by one would take 6 s, all at once 0.3 s.
    server.set_faults(
        vec![FaultRule::parse("latency=300ms,path=/log$").unwrap()],
        1,
    );
    let started = std::time::Instant::now();
    let (logs, _) = selected(&c, json!({"labelSelector": "app=many"})).await;
    let took = started.elapsed();
    assert_eq!(logs.pods.len(), 20);
    assert!(logs.pods.iter().all(|p| p.log.is_some()), "{:?}", logs.pods);
    // Four at a time: five rounds of 300 ms.
    assert!(
        took >= std::time::Duration::from_millis(1400),
        "more than four in flight: {took:?}"
    );
    assert!(
        took < std::time::Duration::from_millis(4500),
        "not concurrent: {took:?}"
    );
}

#[tokio::test]
async fn every_list_path_says_forbidden_rather_than_empty() {
    let (_dir, snap) = snapshot();
    let forbid = |rules: &[&str]| ServerConfig {
        forbid: rules
            .iter()
            .map(|r| ForbidRule::parse(r).unwrap())
            .collect(),
        ..Default::default()
    };
    let forbidden = |what: &str, r: Result<usize, cluster::ClusterError>| match r {
        Err(e) => assert_eq!(e.kind, ErrorKind::Forbidden, "{what}: {e:?}"),
        Ok(n) => panic!("{what}: {n} items instead of Forbidden"),
    };

    let (_s, c) = serve(snap.clone(), forbid(&["pods", "events"])).await;
    forbidden(
        "kubernetes.list",
        c.list(&ListQuery {
            kind: "pods".into(),
            namespace: Some("shop".into()),
            ..Default::default()
        })
        .await
        .map(|v| v.len()),
    );
    forbidden(
        "kubernetes.list across namespaces",
        c.list(&ListQuery {
            kind: "pods".into(),
            all_namespaces: true,
            ..Default::default()
        })
        .await
        .map(|v| v.len()),
    );
    forbidden(
        "kubernetes.events",
        c.events(&EventsQuery {
            namespace: Some("shop".into()),
            ..Default::default()
        })
        .await
        .map(|v| v.len()),
    );
    forbidden(
        "kubernetes.logs with labelSelector",
        c.selected_logs(&logs_query(json!({"labelSelector": "app=web"})))
            .await
            .map(|l| l.pods.len()),
    );
    let (_s, c) = serve(snap.clone(), forbid(&["pods/log"])).await;
    forbidden(
        "kubernetes.logs of every selected pod",
        c.selected_logs(&logs_query(json!({"labelSelector": "app=many"})))
            .await
            .map(|l| l.pods.len()),
    );

    let (_s, c) = serve(
        kubesim::demo::snapshot(),
        forbid(&["pods.metrics.k8s.io", "secrets"]),
    )
    .await;
    forbidden(
        "kubernetes.metrics",
        c.metrics(&MetricsQuery {
            kind: MetricsKind::Pods,
            namespace: Some("data".into()),
            ..Default::default()
        })
        .await
        .map(|v| v.len()),
    );
    for all_namespaces in [false, true] {
        let e = c
            .helm_list(&HelmListQuery {
                namespace: Some("shop".into()),
                all_namespaces,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden, "helm.list: {e:?}");
        assert!(
            e.message.contains("Helm keeps its releases in Secrets")
                && e.message.contains("is forbidden"),
            "{}",
            e.message
        );
    }
    forbidden(
        "helm.history",
        c.helm_history(&HelmHistoryQuery {
            name: "storefront".into(),
            namespace: Some("shop".into()),
            ..Default::default()
        })
        .await
        .map(|v| v.len()),
    );
    let e = c
        .helm_history(&HelmHistoryQuery {
            name: "storefront,owner!=helm".into(),
            namespace: Some("shop".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(&e), "name", "no selector terms through a name");
    // ConfigMaps are only Helm's second store: without them, the Secrets still answer.
    let (_s, c) = serve(kubesim::demo::snapshot(), forbid(&["configmaps"])).await;
    let releases = c
        .helm_list(&HelmListQuery {
            all_namespaces: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(releases.len(), 1);

    // Discovery refused: the kinds cannot be listed, and the call says why.
    let (server, c) = serve(snap, ServerConfig::default()).await;
    server.set_faults(
        vec![FaultRule::parse("error=1,status=403,path=^/api/v1$").unwrap()],
        1,
    );
    forbidden(
        "kubernetes.apiResources",
        c.api_resources(None).await.map(|v| v.len()),
    );
}

#[tokio::test]
async fn api_refusals_keep_their_own_code_and_message() {
    let (_dir, snap) = snapshot();
    let (_s, c) = serve(snap, ServerConfig::default()).await;
    let e = c
        .list(&ListQuery {
            kind: "pods".into(),
            namespace: Some("shop".into()),
            label_selector: Some("app in (web".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Api {
            status: 400,
            reason: "BadRequest".into()
        },
        "{}",
        e.message
    );
    assert_eq!(e.kind.code(), "BadRequest");
    assert!(
        e.message.contains("app in (web") && e.message.contains("change what the message names"),
        "the API's message and what to do: {}",
        e.message
    );
    // A Pending pod's log: no input error (and no TypeError in a program), but NotFound.
    let e = c
        .logs(&logs_query(json!({"name": "web-d"})))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    assert!(e.message.contains("does not have a host assigned"));
}
