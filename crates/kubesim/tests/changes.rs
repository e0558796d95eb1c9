//! Mutations kept in memory, watches that report them, CRDs, the request log and faults.

mod common;

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kubesim::{FaultRule, ServerConfig};
use serde_json::json;

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"team": "a"}}, "data": {"k": value}}))
    .unwrap()
}

#[tokio::test]
async fn create_update_patch_delete_in_memory() {
    let (_server, client) = common::demo().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    let created = cms
        .create(&PostParams::default(), &config_map("settings", "1"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let e = common::api_error(
        cms.create(&PostParams::default(), &config_map("settings", "1"))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));

    // Replace with a stale resourceVersion conflicts; with the current one it succeeds.
    let mut stale = created.clone();
    stale.metadata.resource_version = Some("1".into());
    let e = common::api_error(
        cms.replace("settings", &PostParams::default(), &stale)
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_string(), "2".to_string())].into());
    let replaced = cms
        .replace("settings", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "2");

    let merged = cms
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data.as_ref().unwrap().len(), 2);
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/data/extra"}])).unwrap();
    let patched = cms
        .patch("settings", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap().len(), 1);

    // Strategic merge keeps other containers and merges the named one.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "cart", "image": "ghcr.io/acme/cart:2.0.0"}]}}}});
    let d = deploys
        .patch("cart", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let containers = d.spec.template.spec.unwrap().containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0].image.as_deref(),
        Some("ghcr.io/acme/cart:2.0.0")
    );
    assert!(
        containers[0].ports.is_some(),
        "strategic merge kept the other fields"
    );
    assert_eq!(d.metadata.generation, Some(2));

    // Scale subresource.
    let scaled = deploys
        .patch_scale(
            "cart",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    assert_eq!(deploys.get("cart").await.unwrap().spec.replicas, Some(5));
    assert_eq!(
        deploys
            .get_scale("cart")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(5)
    );
    let e = common::api_error(
        deploys
            .patch_scale(
                "cart",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": -1}})),
            )
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));

    cms.delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(common::api_error(cms.get("settings").await).code, 404);
    let e = common::api_error(cms.delete("settings", &DeleteParams::default()).await);
    assert_eq!(e.code, 404);

    // Creating in a namespace that does not exist, or without a name, fails as it should.
    let nowhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let e = common::api_error(
        nowhere
            .create(&PostParams::default(), &config_map("x", "1"))
            .await,
    );
    assert_eq!(e.message, "namespaces \"nowhere\" not found");
    let unnamed: ConfigMap = serde_json::from_value(json!({"metadata": {}})).unwrap();
    let e = common::api_error(cms.create(&PostParams::default(), &unnamed).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));

    // Dry runs change nothing.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(&dry, &config_map("ghost", "1")).await.unwrap();
    assert_eq!(common::api_error(cms.get("ghost").await).code, 404);
}

#[tokio::test]
async fn watch_reports_existing_objects_then_changes() {
    let (_server, client) = common::demo().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    cms.create(&PostParams::default(), &config_map("before", "1"))
        .await
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().labels("team=a").timeout(20), "0")
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, WatchEvent::Added(ref c) if c.metadata.name.as_deref() == Some("before")),
        "{first:?}"
    );

    cms.create(&PostParams::default(), &config_map("during", "1"))
        .await
        .unwrap();
    cms.patch(
        "during",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("during", &DeleteParams::default())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(match ev {
            WatchEvent::Added(c) => format!("ADDED {}", c.metadata.name.unwrap()),
            WatchEvent::Modified(c) => format!("MODIFIED {}", c.data.unwrap()["k"]),
            WatchEvent::Deleted(c) => format!("DELETED {}", c.metadata.name.unwrap()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["ADDED during", "MODIFIED 2", "DELETED during"]);

    // Resuming from a resourceVersion replays only what came after it.
    let list = cms.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    cms.create(&PostParams::default(), &config_map("after", "1"))
        .await
        .unwrap();
    let mut resumed = cms
        .watch(&WatchParams::default().timeout(20), &rv)
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(5), resumed.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, WatchEvent::Added(ref c) if c.metadata.name.as_deref() == Some("after")),
        "{ev:?}"
    );
}

#[tokio::test]
async fn kube_runtime_watcher_works() {
    let (_server, client) = common::demo().await;
    let pods: Api<Pod> = Api::namespaced(client, "payments");
    let stream = kube::runtime::watcher(pods, kube::runtime::watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    let mut init = 0;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match ev {
            kube::runtime::watcher::Event::InitApply(_) => init += 1,
            kube::runtime::watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert!(init >= 5, "{init}");
}

#[tokio::test]
async fn crds_make_their_kinds_servable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("crd.yaml"),
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: gear, namespace: factory}
spec: {teeth: 12}
"#,
    )
    .unwrap();
    let snapshot = kubesim::Snapshot::load(dir.path(), &Default::default()).unwrap();
    let (_server, client) = common::serve_with(snapshot, ServerConfig::default()).await;
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let (ar, _) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "Widget")
        .expect("Widget discovered");
    assert_eq!(ar.plural, "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "factory", &ar);
    assert_eq!(api.get("gear").await.unwrap().data["spec"]["teeth"], 12);
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let created: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "cog"}, "spec": {"teeth": 8}}))
        .unwrap();
    let api2: Api<DynamicObject> =
        Api::namespaced_with(client, "factory", &ApiResource::from_gvk(&gvk));
    api2.create(&PostParams::default(), &created).await.unwrap();
    assert_eq!(
        api2.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
}

#[tokio::test]
async fn the_request_log_records_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let config = ServerConfig {
        request_log: Some(log.clone()),
        ..Default::default()
    };
    let (_server, client) = common::serve_with(kubesim::demo::snapshot(), config).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    pods.list(&ListParams::default().labels("app=cart"))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "shop");
    cms.create(&PostParams::default(), &config_map("logged", "1"))
        .await
        .unwrap();
    let _ = pods.get("missing").await;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["method"], "GET");
    assert_eq!(lines[0]["path"], "/api/v1/namespaces/shop/pods");
    assert_eq!(lines[0]["query"], "&labelSelector=app%3Dcart");
    assert_eq!(lines[0]["verb"], "list");
    assert_eq!(lines[0]["status"], 200);
    assert!(lines[0]["userAgent"].is_string());
    assert_eq!(
        (lines[1]["method"].as_str(), lines[1]["status"].as_u64()),
        (Some("POST"), Some(201))
    );
    assert_eq!(lines[2]["status"], 404);
}

#[tokio::test]
async fn faults_latency_errors_throttling_and_drops() {
    let (server, client) = common::demo().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");

    server.set_faults(
        vec![FaultRule::parse("latency=300ms,path=/pods$").unwrap()],
        1,
    );
    let started = std::time::Instant::now();
    pods.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    let started = std::time::Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the path pattern limits the fault"
    );

    server.set_faults(
        vec![FaultRule::parse("error=1,status=503,count=1").unwrap()],
        1,
    );
    let e = common::api_error(pods.list(&ListParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (503, "ServiceUnavailable"));
    server.set_faults(vec![FaultRule::parse("error=1,count=1").unwrap()], 1);
    let req = http::Request::get("/api/v1/namespaces/shop/pods")
        .body(kube::client::Body::empty())
        .unwrap();
    assert_eq!(client.send(req).await.unwrap().status(), 500);
    pods.list(&ListParams::default())
        .await
        .expect("count=1 lets the next request through");

    server.set_faults(
        vec![FaultRule::parse("throttle=1,retry-after=7").unwrap()],
        1,
    );
    let req = http::Request::get("/api/v1/namespaces/shop/pods")
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(req).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    server.set_faults(vec![FaultRule::parse("drop=1,count=1").unwrap()], 1);
    match pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => panic!("a dropped connection is not an API answer: {s:?}"),
        Err(_) => {}
        Ok(_) => panic!("the connection should have been dropped"),
    }
    server.set_faults(Vec::new(), 1);
    pods.list(&ListParams::default())
        .await
        .expect("the server answers again");
}
