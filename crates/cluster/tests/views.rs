//! What a call keeps of objects, against kubesim over HTTPS: `fields`, `managers`, table
//! rows, compact events and metrics.

use cluster::{
    Cluster, EventType, EventsQuery, GetQuery, Limits, ListQuery, MetricsKind, MetricsQuery,
};
use kubesim::{RunningServer, ServerConfig};
use serde_json::{Value, json};

async fn demo() -> (RunningServer, Cluster) {
    let server = kubesim::serve(kubesim::demo::snapshot(), ServerConfig::default())
        .await
        .expect("kubesim starts");
    let cluster = Cluster::from_kubeconfig_yaml(&server.kubeconfig(), None, Limits::default())
        .expect("kubeconfig");
    (server, cluster)
}

fn pods(namespace: &str) -> ListQuery {
    ListQuery {
        kind: "Pod".into(),
        namespace: Some(namespace.into()),
        ..ListQuery::default()
    }
}

#[tokio::test]
async fn fields_keep_only_the_named_paths() {
    let (_s, c) = demo().await;
    let listed = c
        .list(&ListQuery {
            fields: Some(vec![
                "status.containerStatuses.restartCount".into(),
                "spec.nodeName".into(),
            ]),
            ..pods("payments")
        })
        .await
        .unwrap();
    assert!(!listed.is_empty());
    for p in &listed {
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["apiVersion", "kind", "metadata", "spec", "status"],
            "{p}"
        );
        let meta: Vec<&str> = p["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(meta, ["name", "namespace"], "{p}");
        assert!(p["spec"]["nodeName"].is_string(), "{p}");
        assert!(p["status"]["containerStatuses"][0]["restartCount"].is_u64());
    }
    let name = listed[0]["metadata"]["name"].as_str().unwrap().to_string();
    let one = c
        .get(&GetQuery {
            kind: "po".into(),
            name,
            namespace: Some("payments".into()),
            fields: Some(vec!["status.phase".into()]),
            ..GetQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(one["kind"], "Pod");
    assert!(one["status"]["phase"].is_string());
    assert!(one.get("spec").is_none());
    let e = c
        .list(&ListQuery {
            fields: Some(vec!["status.".into()]),
            ..pods("payments")
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind.code(), "BadInput");
}

#[tokio::test]
async fn managers_say_who_changed_which_fields() {
    let (_s, c) = demo().await;
    let listed = c
        .list(&ListQuery {
            managers: true,
            ..pods("payments")
        })
        .await
        .unwrap();
    let managers = &listed[0]["metadata"]["managers"];
    let all = managers.as_array().expect("a summary per manager");
    assert!(!all.is_empty(), "{managers}");
    for m in all {
        assert!(
            m["manager"].is_string() && m["operation"].is_string(),
            "{m}"
        );
        assert!(m["fields"].as_array().is_some_and(|f| !f.is_empty()), "{m}");
    }
    assert!(listed[0]["metadata"].get("managedFields").is_none());
    // With fields, the summary stays.
    let listed = c
        .list(&ListQuery {
            managers: true,
            fields: Some(vec!["spec.nodeName".into()]),
            ..pods("payments")
        })
        .await
        .unwrap();
    assert!(listed[0]["metadata"]["managers"].is_array());
}

#[tokio::test]
async fn rows_are_the_columns_kubectl_prints() {
    let (_s, c) = demo().await;
    let rows = c
        .list(&ListQuery {
            rows: true,
            all_namespaces: true,
            ..pods("payments")
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 37);
    let crashing = rows
        .iter()
        .find(|r| r["name"].as_str().unwrap().starts_with("payments-api"))
        .expect("the crash-looping pod");
    assert_eq!(crashing["namespace"], "payments");
    assert_eq!(crashing["status"], "CrashLoopBackOff", "{crashing}");
    for key in ["ready", "restarts", "age"] {
        assert!(crashing.get(key).is_some(), "{key}: {crashing}");
    }
    assert!(crashing.get("kind").is_none() && crashing.get("metadata").is_none());
    let e = c
        .list(&ListQuery {
            rows: true,
            fields: Some(vec!["status".into()]),
            ..pods("payments")
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind.code(), "BadInput");
    assert!(e.message.contains("rows"), "{}", e.message);
}

#[tokio::test]
async fn events_are_compact_unless_raw() {
    let (_s, c) = demo().await;
    let q = EventsQuery {
        namespace: Some("payments".into()),
        event_type: Some(EventType::Warning),
        ..EventsQuery::default()
    };
    let events = c.events_view(&q).await.unwrap();
    assert!(!events.is_empty());
    for e in &events {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.starts_with(&[
                "type", "reason", "message", "object", "count", "first", "last"
            ]),
            "{e}"
        );
        assert_eq!(e["type"], "Warning");
        assert!(e["object"]["name"].is_string() && e["object"]["kind"].is_string());
        assert!(e.get("metadata").is_none() && e.get("involvedObject").is_none());
        assert!(
            e["last"].as_str().unwrap() >= e["first"].as_str().unwrap(),
            "{e}"
        );
    }
    let raw = c
        .events_view(&EventsQuery {
            raw: true,
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(raw.len(), events.len());
    assert!(raw[0]["involvedObject"].is_object());
    let reasons = c
        .events_view(&EventsQuery {
            fields: Some(vec!["reason".into()]),
            ..q
        })
        .await
        .unwrap();
    assert_eq!(
        reasons[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["reason", "object"]
    );
}

#[tokio::test]
async fn metrics_are_millicores_and_bytes() {
    let (_s, c) = demo().await;
    let pods = c
        .metrics_view(&MetricsQuery {
            kind: MetricsKind::Pods,
            namespace: Some("payments".into()),
            name: None,
            raw: false,
            context: None,
        })
        .await
        .unwrap();
    assert!(!pods.is_empty());
    for p in &pods {
        let containers = p["containers"].as_array().unwrap();
        let sum: u64 = containers
            .iter()
            .map(|c| c["cpuMillicores"].as_u64().unwrap())
            .sum();
        assert_eq!(p["cpuMillicores"].as_u64(), Some(sum), "{p}");
        assert!(p["memoryBytes"].as_u64().unwrap() > 1024 * 1024, "{p}");
        assert!(p.get("metadata").is_none());
    }
    let nodes = c
        .metrics_view(&MetricsQuery {
            kind: MetricsKind::Nodes,
            namespace: None,
            name: None,
            raw: false,
            context: None,
        })
        .await
        .unwrap();
    assert_eq!(nodes.len(), 3);
    for n in &nodes {
        let cpu = n["cpuPercent"].as_u64().expect("percent of allocatable");
        assert!(cpu <= 100, "{n}");
        assert!(n["memoryPercent"].as_u64().is_some(), "{n}");
    }
    let raw = c
        .metrics_view(&MetricsQuery {
            kind: MetricsKind::Nodes,
            namespace: None,
            name: None,
            raw: true,
            context: None,
        })
        .await
        .unwrap();
    assert_eq!(raw[0]["kind"], json!("NodeMetrics"));
    let _: &Value = &raw[0]["usage"]["cpu"];
}

#[tokio::test]
async fn kinds_are_typed_from_the_clusters_own_openapi() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("crd.yaml"),
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            description: What the widget should be.\n            properties:\n              size: {type: integer, description: How big.}\n",
    )
    .unwrap();
    let server = kubesim::serve(
        kubesim::Snapshot::load(dir.path(), &Default::default()).unwrap(),
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let c = Cluster::from_kubeconfig_yaml(&server.kubeconfig(), None, Limits::default()).unwrap();
    let pod = c.kind_schema("po", None).await.unwrap();
    assert_eq!((pod.kind.as_str(), pod.api_version.as_str()), ("Pod", "v1"));
    let root = pod.schema(&pod.root).expect("the kind's own schema");
    assert!(root.pointer("/properties/spec").is_some(), "{root}");
    let deploy = c.kind_schema("deployments.apps", None).await.unwrap();
    assert_eq!(deploy.api_version, "apps/v1");
    let widget = c.kind_schema("wd", None).await.unwrap();
    assert_eq!(widget.api_version, "example.com/v1");
    let root = widget.schema(&widget.root).expect("the CRD's schema");
    assert_eq!(
        root.pointer("/properties/spec/properties/size/type"),
        Some(&json!("integer")),
        "{root}"
    );
    let e = c.kind_schema("Gadget", None).await.unwrap_err();
    assert_eq!(e.kind.code(), "NotFound");
}
