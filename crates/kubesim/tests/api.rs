//! kube-rs, typed and dynamic, against kubesim over HTTPS: reads, selectors, paging, errors.

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Secret, Service};
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Discovery;
use kubesim::{ForbidRule, ServerConfig};

#[tokio::test]
async fn typed_lists_and_gets_on_the_demo() {
    let (_server, client) = common::demo().await;
    let pods: Api<Pod> = Api::all(client.clone());
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert!(list.items.len() >= 30, "{} pods", list.items.len());
    assert!(list.metadata.resource_version.is_some());
    let nodes: Api<Node> = Api::all(client.clone());
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let storefront = deploys.get("storefront").await.unwrap();
    assert_eq!(storefront.spec.replicas, Some(1));
    let svc: Api<Service> = Api::namespaced(client.clone(), "shop");
    assert!(svc.get("checkout").await.is_ok());
    let ns: Api<Namespace> = Api::all(client);
    let names: Vec<String> = ns
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for want in [
        "default",
        "kube-system",
        "shop",
        "payments",
        "data",
        "ml",
        "monitoring",
    ] {
        assert!(names.contains(&want.to_string()), "{names:?}");
    }
}

#[tokio::test]
async fn every_label_selector_operator() {
    let (_server, client) = common::demo().await;
    let pods: Api<Pod> = Api::all(client);
    let count = |sel: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(sel))
                .await
                .unwrap()
                .items
                .len()
        }
    };
    let cart = count("app=cart").await;
    assert_eq!(cart, 3);
    assert_eq!(count("app==cart").await, cart);
    let all = count("").await;
    assert_eq!(count("app!=cart").await, all - cart);
    assert_eq!(count("app in (cart,catalog)").await, cart + 4);
    assert_eq!(count("app notin (cart,catalog)").await, all - cart - 4);
    let templated = count("pod-template-hash").await;
    assert!(templated > 0 && templated < all);
    assert_eq!(count("!pod-template-hash").await, all - templated);
}

#[tokio::test]
async fn field_selectors_for_pods_events_and_secrets() {
    let (_server, client) = common::demo().await;
    let pods: Api<Pod> = Api::all(client.clone());
    let pending = pods
        .list(&ListParams::default().fields("status.phase=Pending"))
        .await
        .unwrap();
    assert!(
        pending
            .items
            .iter()
            .all(|p| p.status.as_ref().unwrap().phase.as_deref() == Some("Pending"))
    );
    assert!(pending.items.iter().any(|p| {
        p.metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("model-trainer")
    }));
    let on_worker = pods
        .list(&ListParams::default().fields("spec.nodeName=demo-worker"))
        .await
        .unwrap();
    assert!(!on_worker.items.is_empty());
    assert!(
        on_worker
            .items
            .iter()
            .all(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("demo-worker"))
    );
    let ns_only = pods
        .list(&ListParams::default().fields("metadata.namespace=payments"))
        .await
        .unwrap();
    assert!(
        ns_only
            .items
            .iter()
            .all(|p| p.metadata.namespace.as_deref() == Some("payments"))
    );

    let target = pending.items[0].metadata.name.clone().unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), "ml");
    let sel = format!("involvedObject.kind=Pod,involvedObject.name={target},type=Warning");
    let evs = events
        .list(&ListParams::default().fields(&sel))
        .await
        .unwrap();
    assert_eq!(evs.items.len(), 1);
    assert_eq!(evs.items[0].reason.as_deref(), Some("FailedScheduling"));
    let uid = pending.items[0].metadata.uid.clone().unwrap();
    let by_uid = events
        .list(&ListParams::default().fields(&format!("involvedObject.uid={uid}")))
        .await
        .unwrap();
    assert_eq!(by_uid.items.len(), 1);

    let secrets: Api<Secret> = Api::namespaced(client, "shop");
    let helm = secrets
        .list(&ListParams::default().fields("type=helm.sh/release.v1"))
        .await
        .unwrap();
    assert_eq!(helm.items.len(), 2);
    let bad = common::api_error(
        secrets
            .list(&ListParams::default().fields("spec.nope=1"))
            .await,
    );
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    assert!(
        bad.message.contains("field label not supported: spec.nope"),
        "{}",
        bad.message
    );
}

#[tokio::test]
async fn paging_past_500_objects_with_continue() {
    let spec = kubesim::GenerateSpec::parse("pods=1234,namespaces=7,broken=9", 3).unwrap();
    let (_server, client) =
        common::serve_with(kubesim::generate::generate(&spec), ServerConfig::default()).await;
    let pods: Api<Pod> = Api::all(client);
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = pods.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 500);
        if pages == 1 {
            assert_eq!(page.metadata.remaining_item_count, Some(734));
        }
        names.extend(page.items.into_iter().filter_map(|p| p.metadata.name));
        token = page.metadata.continue_.filter(|c| !c.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 1234);
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1234, "pages overlap");
    let bad = common::api_error(
        pods.list(&ListParams::default().continue_token("garbage!"))
            .await,
    );
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn dynamic_client_discovers_and_lists_every_kind() {
    let (_server, client) = common::demo().await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut kinds = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(kube::discovery::verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let list = api
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", ar.plural));
            if !list.items.is_empty() {
                kinds.push(ar.kind.clone());
            }
        }
    }
    for want in [
        "Pod",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Service",
        "Endpoints",
        "Event",
        "Node",
        "Secret",
        "PodMetrics",
        "NodeMetrics",
    ] {
        assert!(
            kinds.contains(&want.to_string()),
            "{want} missing from {kinds:?}"
        );
    }
}

#[tokio::test]
async fn metrics_api_serves_pod_and_node_metrics() {
    let (_server, client) = common::demo().await;
    let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "pods");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "data", &ar);
    let list = api.list(&ListParams::default()).await.unwrap();
    let worker = list
        .items
        .iter()
        .find(|m| {
            m.metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("analytics-worker")
        })
        .expect("analytics-worker has metrics");
    assert_eq!(worker.data["containers"][0]["usage"]["memory"], "251Mi");
    let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "NodeMetrics");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "nodes");
    let nodes: Api<DynamicObject> = Api::all_with(client, &ar);
    assert!(nodes.get("demo-worker").await.is_ok());
}

#[tokio::test]
async fn pod_logs_with_kubelet_options() {
    let (_server, client) = common::demo().await;
    let pods: Api<Pod> = Api::namespaced(client, "payments");
    let api_pod = common::pod_named(&pods, "app=payments-api").await;
    let all = pods.logs(&api_pod, &LogParams::default()).await.unwrap();
    assert_eq!(all.lines().count(), 3);
    assert!(all.contains("PAYMENTS_DB_URL is not set"));
    let previous = pods
        .logs(
            &api_pod,
            &LogParams {
                previous: true,
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(previous.lines().count(), 1);
    assert!(previous.contains("fatal"));
    let stamped = pods
        .logs(
            &api_pod,
            &LogParams {
                timestamps: true,
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(stamped.starts_with("2026-11-20T09:"), "{stamped}");
    let limited = pods
        .logs(
            &api_pod,
            &LogParams {
                limit_bytes: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(limited.len(), 10);
    // The demo's clock is 09:30:00 and the lines were written about 41-43 s before it.
    let recent = pods
        .logs(
            &api_pod,
            &LogParams {
                since_seconds: Some(42),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(recent.lines().count(), 2, "{recent}");
    let wrong = common::api_error(
        pods.logs(
            &api_pod,
            &LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(wrong.code, 400);
    assert!(
        wrong.message.contains("container nope is not valid"),
        "{}",
        wrong.message
    );

    let ledger = common::pod_named(&pods, "app=ledger").await;
    let none = common::api_error(
        pods.logs(
            &ledger,
            &LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await,
    );
    assert!(
        none.message.contains("previous terminated container"),
        "{}",
        none.message
    );
    let missing = common::api_error(pods.logs("no-such-pod", &LogParams::default()).await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
}

#[tokio::test]
async fn pending_and_image_pull_pods_have_no_logs_yet() {
    let (_server, client) = common::demo().await;
    let ml: Api<Pod> = Api::namespaced(client.clone(), "ml");
    let trainer = common::pod_named(&ml, "app=model-trainer").await;
    let e = common::api_error(ml.logs(&trainer, &LogParams::default()).await);
    assert!(
        e.message.contains("does not have a host assigned"),
        "{}",
        e.message
    );
    let shop: Api<Pod> = Api::namespaced(client, "shop");
    let rec = common::pod_named(&shop, "app=recommendations").await;
    let e = common::api_error(shop.logs(&rec, &LogParams::default()).await);
    assert!(
        e.message.contains("is waiting to start: ImagePullBackOff"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn error_statuses_have_real_codes_and_reasons() {
    let snapshot = kubesim::demo::snapshot();
    let config = ServerConfig {
        forbid: vec![ForbidRule::parse("secrets").unwrap()],
        ..Default::default()
    };
    let (server, client) = common::serve_with(snapshot, config).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let e = common::api_error(pods.get("nope").await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "pods \"nope\" not found")
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "payments");
    let e = common::api_error(secrets.get("payments-db").await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert!(
        e.message.contains("cannot get resource \"secrets\""),
        "{}",
        e.message
    );
    let e = common::api_error(pods.list(&ListParams::default().labels("a in b")).await);
    assert_eq!(e.code, 400);

    // A wrong token gets 401 as a Status.
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&server.kubeconfig()).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    config.auth_info.token = Some("wrong".to_string().into());
    let stranger: Api<Pod> = Api::all(kube::Client::try_from(config).unwrap());
    let e = common::api_error(stranger.list(&ListParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));

    // 405 on a method the path does not take; 406 for protobuf only.
    let req = http::Request::post("/api/v1/namespaces/shop/pods/x/log")
        .body(Vec::new())
        .unwrap();
    let e = common::api_error(client.request_text(req).await);
    assert_eq!((e.code, e.reason.as_str()), (405, "MethodNotAllowed"));
    let req = http::Request::get("/api/v1/pods")
        .header("Accept", "application/vnd.kubernetes.protobuf")
        .body(Vec::new())
        .unwrap();
    assert_eq!(common::api_error(client.request_text(req).await).code, 406);
    let req = http::Request::get("/apis/nope.example.com/v1/widgets")
        .body(Vec::new())
        .unwrap();
    assert_eq!(common::api_error(client.request_text(req).await).code, 404);
}

#[tokio::test]
async fn tables_carry_kubectl_columns() {
    let (_server, client) = common::demo().await;
    let table = |path: &str| {
        http::Request::get(path)
            .header(
                "Accept",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            )
            .body(Vec::new())
            .unwrap()
    };
    let t: serde_json::Value = client
        .request(table("/api/v1/namespaces/payments/pods"))
        .await
        .unwrap();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&cols[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    let crash = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cells"][2] == "CrashLoopBackOff")
        .expect("a crash-looping row");
    assert_eq!(crash["cells"][1], "0/1");
    assert!(crash["cells"][3].as_str().unwrap().starts_with("23 ("));
    assert_eq!(crash["object"]["kind"], "PartialObjectMetadata");
    for (path, first) in [
        ("/apis/apps/v1/namespaces/shop/deployments", "Name"),
        ("/api/v1/namespaces/shop/services", "Name"),
        ("/api/v1/namespaces/shop/events", "Last Seen"),
        ("/api/v1/nodes", "Name"),
    ] {
        let t: serde_json::Value = client.request(table(path)).await.unwrap();
        assert_eq!(t["columnDefinitions"][0]["name"], first, "{path}");
        assert!(!t["rows"].as_array().unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn the_real_dump_loads_and_serves() {
    let snapshot = kubesim::Snapshot::load(&common::real_dump(), &Default::default()).unwrap();
    let (_server, client) = common::serve_with(snapshot, ServerConfig::default()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let list = pods.list(&ListParams::default()).await.unwrap();
    let autoscaler = list
        .items
        .iter()
        .find(|p| {
            p.metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("coredns-autoscaler")
        })
        .unwrap();
    let status = &autoscaler
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(status.restart_count, 1569);
    assert_eq!(
        status
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        2
    );
    // The capture could not read the logs: the server says so instead of inventing a log.
    let name = list.items[0].metadata.name.clone().unwrap();
    let e = common::api_error(pods.logs(&name, &LogParams::default()).await);
    assert_eq!(e.code, 500);
    assert!(
        e.message.contains("the capture recorded this error"),
        "{}",
        e.message
    );
    let events: Api<Event> = Api::namespaced(client, "kube-system");
    let unhealthy = events
        .list(&ListParams::default().fields("reason=Unhealthy"))
        .await
        .unwrap();
    assert!(unhealthy.items.iter().any(|e| {
        e.message
            .as_deref()
            .unwrap_or("")
            .contains("statuscode: 500")
    }));
}

#[tokio::test]
async fn manifest_snapshots_with_log_files_and_multi_container_pods() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("pod.yaml"),
        r#"apiVersion: v1
kind: Pod
metadata: {name: web, namespace: site, creationTimestamp: "2024-05-01T10:00:00Z"}
spec:
  nodeName: n1
  initContainers: [{name: init, image: busybox}]
  containers: [{name: app, image: nginx}, {name: sidecar, image: envoy}]
status:
  phase: Running
  containerStatuses:
    - {name: app, ready: true, restartCount: 1, state: {running: {startedAt: "2024-05-01T10:05:00Z"}}}
    - {name: sidecar, ready: true, restartCount: 0, state: {running: {startedAt: "2024-05-01T10:00:05Z"}}}
"#,
    )
    .unwrap();
    std::fs::create_dir_all(root.join("logs/site/web")).unwrap();
    std::fs::write(
        root.join("logs/site/web/app.log"),
        "2024-05-01T10:05:01Z started\n2024-05-01T10:20:00Z GET / 200\n2024-05-01T10:30:00Z GET /x 404\n",
    )
    .unwrap();
    std::fs::write(
        root.join("logs/site/web/app.previous.log"),
        "2024-05-01T10:04:59Z panic: nil map\n",
    )
    .unwrap();
    std::fs::write(root.join("logs/site/web/sidecar.log"), "envoy ready\n").unwrap();
    let snapshot = kubesim::Snapshot::load(root, &Default::default()).unwrap();
    assert_eq!(
        kubesim::snapshot::format_time(snapshot.now),
        "2024-05-01T10:30:00Z"
    );
    let (_server, client) = common::serve_with(snapshot, ServerConfig::default()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "site");
    let e = common::api_error(pods.logs("web", &LogParams::default()).await);
    assert_eq!(e.code, 400);
    assert_eq!(
        e.message,
        "a container name must be specified for pod web, choose one of: [app sidecar] or one of the init containers: [init]"
    );
    let lp = |c: &str| LogParams {
        container: Some(c.into()),
        ..Default::default()
    };
    assert_eq!(
        pods.logs("web", &lp("sidecar")).await.unwrap(),
        "envoy ready\n"
    );
    let previous = LogParams {
        previous: true,
        ..lp("app")
    };
    assert_eq!(
        pods.logs("web", &previous).await.unwrap(),
        "panic: nil map\n"
    );

    let raw = |query: &str| {
        http::Request::get(format!(
            "/api/v1/namespaces/site/pods/web/log?container=app&{query}"
        ))
        .body(Vec::new())
        .unwrap()
    };
    let since = client
        .request_text(raw("sinceTime=2024-05-01T10:10:00Z"))
        .await
        .unwrap();
    assert_eq!(since, "GET / 200\nGET /x 404\n");
    let since = client.request_text(raw("sinceSeconds=60")).await.unwrap();
    assert_eq!(
        since, "GET /x 404\n",
        "sinceSeconds counts back from the snapshot's clock"
    );
    let both = common::api_error(
        client
            .request_text(raw("sinceSeconds=5&sinceTime=2024-05-01T10:10:00Z"))
            .await,
    );
    assert_eq!((both.code, both.reason.as_str()), (422, "Invalid"));
    let negative = common::api_error(client.request_text(raw("tailLines=-1")).await);
    assert_eq!(negative.code, 422);
    let garbage = common::api_error(client.request_text(raw("tailLines=many")).await);
    assert_eq!(garbage.code, 400);
    // The namespace exists because the snapshot uses it.
    let ns: Api<Namespace> = Api::all(client);
    assert!(ns.get("site").await.is_ok());
}
