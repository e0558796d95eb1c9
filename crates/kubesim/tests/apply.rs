//! Server-side apply against real clients: `kubectl apply --server-side` (creation, pruning
//! of dropped fields, conflicts with another manager and `--force-conflicts`), and kube-rs's
//! `Patch::Apply`.

mod common;
#[path = "support/kubectl.rs"]
mod kubectl;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kubectl::Kubectl;
use kubesim::ServerConfig;
use serde_json::json;

fn deployment(replicas: Option<u32>, label: Option<&str>) -> String {
    let mut d = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: shop\n  labels:\n    app: api\n".to_string();
    if let Some(l) = label {
        d.push_str(&format!("    tier: {l}\n"));
    }
    d.push_str("spec:\n");
    if let Some(r) = replicas {
        d.push_str(&format!("  replicas: {r}\n"));
    }
    d.push_str("  selector:\n    matchLabels:\n      app: api\n  template:\n    metadata:\n      labels:\n        app: api\n    spec:\n      containers:\n      - name: api\n        image: api:1\n");
    d
}

#[tokio::test]
async fn kubectl_applies_server_side() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let file = k.dir.path().join("api.yaml");
    let path = file.to_str().unwrap();
    std::fs::write(&file, deployment(Some(2), Some("web"))).unwrap();
    let out = k.ok(&["apply", "--server-side", "-f", path]).await;
    assert!(
        out.contains("deployment.apps/api serverside-applied"),
        "{out}"
    );
    let managed = k
        .ok(&[
            "get",
            "deploy",
            "api",
            "-n",
            "shop",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}/{.metadata.managedFields[*].operation}",
        ])
        .await;
    assert_eq!(managed, "kubectl/Apply");

    // Dropping the label from the configuration removes it: the applier owned it.
    std::fs::write(&file, deployment(Some(2), None)).unwrap();
    k.ok(&["apply", "--server-side", "-f", path]).await;
    let labels = k
        .ok(&[
            "get",
            "deploy",
            "api",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.labels}",
        ])
        .await;
    assert_eq!(labels, r#"{"app":"api"}"#);

    // Someone scales it: the replicas are theirs now, and applying another count conflicts.
    k.ok(&["scale", "deploy", "api", "-n", "shop", "--replicas=4"])
        .await;
    std::fs::write(&file, deployment(Some(3), None)).unwrap();
    let (ok, _, err) = k.run(&["apply", "--server-side", "-f", path]).await;
    assert!(
        !ok && err.contains("conflict with \"kubectl\" using apps/v1: .spec.replicas"),
        "{err}"
    );
    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", path])
        .await;
    let replicas = k
        .ok(&[
            "get",
            "deploy",
            "api",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(replicas, "3");
    // A configuration that leaves replicas out keeps the count someone else set.
    k.ok(&["scale", "deploy", "api", "-n", "shop", "--replicas=6"])
        .await;
    std::fs::write(&file, deployment(None, None)).unwrap();
    k.ok(&["apply", "--server-side", "-f", path]).await;
    let replicas = k
        .ok(&[
            "get",
            "deploy",
            "api",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(replicas, "6");
}

#[tokio::test]
async fn kube_rs_applies_server_side() {
    let (_server, client) = common::demo().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    let params = PatchParams::apply("tests");
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"}, "data": {"a": "1", "b": "2"}});
    let created = cms
        .patch("applied", &params, &Patch::Apply(&config))
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["a"], "1");
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"}, "data": {"a": "10"}});
    let updated = cms
        .patch("applied", &params, &Patch::Apply(&config))
        .await
        .unwrap();
    let data = updated.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("10"));
    assert!(
        !data.contains_key("b"),
        "b was dropped from the configuration"
    );
    // Without a field manager the API server refuses an apply, and so does kubesim.
    let err = common::api_error(
        cms.patch("applied", &PatchParams::default(), &Patch::Apply(&config))
            .await,
    );
    assert_eq!(err.code, 400);
    assert!(err.message.contains("fieldManager"), "{}", err.message);
    // Unknown fields are refused under Strict validation.
    let deployments: Api<Deployment> = Api::namespaced(client, "shop");
    let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"replicas": 1, "replicaz": 2}});
    let mut strict = PatchParams::apply("tests");
    strict.field_validation = Some(kube::api::ValidationDirective::Strict);
    let err = common::api_error(deployments.patch("x", &strict, &Patch::Apply(&bad)).await);
    assert!(
        err.message.contains("unknown field \"spec.replicaz\""),
        "{}",
        err.message
    );
}

/// Client-side `kubectl apply` computes its strategic merge patch from kubesim's OpenAPI
/// document: the merge keys published there must be the ones kubesim merges by, or an env
/// var dropped from the file would survive the apply.
#[tokio::test]
async fn kubectl_apply_client_side_merges_lists_by_the_published_keys() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let file = k.dir.path().join("api.yaml");
    let path = file.to_str().unwrap();
    let with_env = |image: &str, env: &[(&str, &str)]| {
        let mut d = deployment(Some(1), None).replace("image: api:1", &format!("image: {image}"));
        d.push_str("        env:\n");
        for (n, v) in env {
            d.push_str(&format!("        - name: {n}\n          value: \"{v}\"\n"));
        }
        d
    };
    std::fs::write(&file, with_env("api:1", &[("A", "1"), ("B", "2")])).unwrap();
    k.ok(&["apply", "-f", path]).await;
    // The sidecar someone else added is kept; B, dropped from the file, goes.
    k.ok(&[
        "patch",
        "deploy",
        "api",
        "-n",
        "shop",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"proxy:1"}]}}}}"#,
    ])
    .await;
    std::fs::write(&file, with_env("api:2", &[("A", "1")])).unwrap();
    k.ok(&["apply", "-f", path]).await;
    let containers = k
        .ok(&[
            "get", "deploy", "api", "-n", "shop", "-o",
            "jsonpath={range .spec.template.spec.containers[*]}{.name}={.image} {.env[*].name};{end}",
        ])
        .await;
    assert_eq!(containers, "api=api:2 A;sidecar=proxy:1 ;");
}

/// Custom resources take merge, JSON and apply patches but no strategic merge patch, as on
/// the API server (and as kubesim's OpenAPI documents say).
#[tokio::test]
async fn custom_resources_take_no_strategic_merge_patch() {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
    let mut snapshot = kubesim::demo::snapshot();
    snapshot.objects.push(kubesim::snapshot::SourcedObject {
        object: json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
              "names": {"kind": "Widget", "plural": "widgets"},
              "versions": [{"name": "v1", "served": true, "storage": true}]}}),
        source: "test:1".into(),
    });
    let (_server, client) = common::serve_with(snapshot, ServerConfig::default()).await;
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"));
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "shop", &resource);
    let mut widget = DynamicObject::new("w", &resource);
    widget.data = json!({"spec": {"size": 1}});
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    let merged = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data["spec"]["size"], 2);
    let err = common::api_error(
        widgets
            .patch(
                "w",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 3}})),
            )
            .await,
    );
    assert_eq!(err.code, 415, "{}", err.message);
    assert!(
        err.message.contains("application/merge-patch+json"),
        "{}",
        err.message
    );
}
