//! OpenAPI documents against real clients: `kubectl explain` of built-in and custom kinds,
//! kubectl's server-side field validation, and kube-rs reading `/openapi/v3`.

mod common;
#[path = "support/kubectl.rs"]
mod kubectl;

use kubectl::Kubectl;
use kubesim::snapshot::SourcedObject;
use kubesim::{ServerConfig, Snapshot};
use serde_json::{Value, json};

/// The demo cluster plus a CRD whose schema documents its fields.
fn demo_with_crd() -> Snapshot {
    let mut snapshot = kubesim::demo::snapshot();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
          "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
          "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
            "type": "object", "description": "A Widget is a thing the shop sells.",
            "properties": {"spec": {"type": "object", "description": "What the widget is.",
              "properties": {
                "size": {"type": "integer", "description": "Edge length of the widget in millimetres."},
                "colour": {"type": "string", "enum": ["red", "blue"], "description": "Paint colour."}}}}}}}]}
    });
    snapshot.objects.push(SourcedObject {
        object: crd,
        source: "test:1".into(),
    });
    snapshot
}

#[tokio::test]
async fn kubectl_explains_builtin_kinds() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let containers = k.ok(&["explain", "pods.spec.containers"]).await;
    assert!(containers.contains("KIND:       Pod"), "{containers}");
    assert!(
        containers.contains("FIELD: containers <[]Container>"),
        "{containers}"
    );
    // Field list with the upstream descriptions.
    assert!(
        containers.contains("imagePullPolicy\t<string>"),
        "{containers}"
    );
    assert!(
        containers.contains("List of containers belonging to the pod."),
        "{containers}"
    );
    let deployment = k.ok(&["explain", "deployment"]).await;
    assert!(deployment.contains("GROUP:      apps"), "{deployment}");
    assert!(
        deployment.contains("KIND:       Deployment"),
        "{deployment}"
    );
    assert!(
        deployment.contains("Deployment enables declarative updates for Pods and ReplicaSets."),
        "{deployment}"
    );
    assert!(
        deployment.contains("spec\t<DeploymentSpec>"),
        "{deployment}"
    );
    let (ok, _, err) = k.run(&["explain", "pods.spec.nosuchfield"]).await;
    assert!(
        !ok && err.contains("field \"nosuchfield\" does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn kubectl_explains_a_custom_kind_from_its_crd_schema() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(demo_with_crd(), ServerConfig::default()).await;
    let widget = k.ok(&["explain", "widgets"]).await;
    assert!(widget.contains("GROUP:      example.com"), "{widget}");
    assert!(
        widget.contains("A Widget is a thing the shop sells."),
        "{widget}"
    );
    let spec = k.ok(&["explain", "widgets.spec"]).await;
    assert!(spec.contains("size\t<integer>"), "{spec}");
    assert!(
        spec.contains("Edge length of the widget in millimetres."),
        "{spec}"
    );
    assert!(spec.contains("enum: red, blue"), "{spec}");
}

#[tokio::test]
async fn kubectl_apply_validates_fields_on_the_server() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let good = k.dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flags\n  namespace: shop\ndata:\n  beta: \"on\"\n",
    )
    .unwrap();
    let out = k.ok(&["apply", "-f", good.to_str().unwrap()]).await;
    assert!(out.contains("configmap/flags created"), "{out}");
    let bad = k.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: shop\ndatta:\n  beta: \"on\"\n",
    )
    .unwrap();
    let (ok, _, err) = k.run(&["apply", "-f", bad.to_str().unwrap()]).await;
    assert!(
        !ok && err.contains("unknown field \"datta\""),
        "kubectl sends fieldValidation=Strict and kubesim refuses the typo: {err}"
    );
    // With --validate=warn the object is created and the typo reported as a warning.
    let (ok, _, err) = k
        .run(&["apply", "--validate=warn", "-f", bad.to_str().unwrap()])
        .await;
    assert!(ok && err.contains("unknown field \"datta\""), "{err}");
}

async fn get(client: &kube::Client, uri: &str, accept: &str) -> http::Response<Vec<u8>> {
    let req = http::Request::get(uri)
        .header("Accept", accept)
        .body(Vec::new())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    http::Response::from_parts(parts, bytes)
}

#[tokio::test]
async fn kube_rs_reads_the_openapi_v3_documents() {
    let (server, client) = common::serve_with(demo_with_crd(), ServerConfig::default()).await;
    let root: Value = client
        .request(http::Request::get("/openapi/v3").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let paths = root["paths"].as_object().unwrap();
    for gv in [
        "api/v1",
        "apis/apps/v1",
        "apis/example.com/v1",
        "apis/authorization.k8s.io/v1",
    ] {
        assert!(paths.contains_key(gv), "{gv} missing from {paths:?}");
    }
    let url = paths["api/v1"]["serverRelativeURL"].as_str().unwrap();
    assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");
    let core = get(&client, url, "application/json").await;
    assert_eq!(core.status(), 200);
    assert_eq!(
        core.headers()["cache-control"].to_str().unwrap(),
        "public, immutable"
    );
    let doc: Value = serde_json::from_slice(core.body()).unwrap();
    assert_eq!(doc["openapi"], "3.0.0");
    let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(
        pod["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    // Every ref resolves inside the document.
    let text = String::from_utf8_lossy(core.body()).into_owned();
    for r in text.split("\"$ref\":\"").skip(1) {
        let name = r.split('"').next().unwrap();
        let name = name.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{name} does not resolve"
        );
    }
    // The same document without the hash; a stale hash is sent to the current address.
    let unhashed = get(&client, "/openapi/v3/api/v1", "application/json").await;
    assert_eq!(unhashed.body(), core.body());
    let stale = get(&client, "/openapi/v3/api/v1?hash=0000", "application/json").await;
    assert_eq!(stale.status(), 301);
    assert_eq!(stale.headers()["location"].to_str().unwrap(), url);
    // Conditional requests, as clients' HTTP caches make them.
    let etag = core.headers()["etag"].to_str().unwrap().to_string();
    let req = http::Request::get(url)
        .header("If-None-Match", &etag)
        .body(Vec::new())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);

    let widget_doc: Value = client
        .request(
            http::Request::get("/openapi/v3/apis/example.com/v1")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let widget = &widget_doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        widget["properties"]["spec"]["properties"]["size"]["type"],
        "integer"
    );

    // Swagger 2.0 with the same data; protobuf-only clients are told 406 and fall back.
    let v2 = get(&client, "/openapi/v2", "application/json").await;
    assert_eq!(v2.status(), 200);
    let v2: Value = serde_json::from_slice(v2.body()).unwrap();
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(v2["definitions"]["com.example.v1.Widget"].is_object());
    let pb = get(
        &client,
        "/openapi/v2",
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    )
    .await;
    assert_eq!(pb.status(), 406);
    let missing = get(&client, "/openapi/v3/apis/nosuch.io/v1", "application/json").await;
    assert_eq!(missing.status(), 404);
    drop(server);
}

#[tokio::test]
async fn openapi_documents_are_fast_once_built() {
    let (_server, client) = common::demo().await;
    let first = std::time::Instant::now();
    let _ = get(&client, "/openapi/v3/api/v1", "application/json").await;
    let first = first.elapsed();
    let again = std::time::Instant::now();
    for _ in 0..20 {
        let r = get(&client, "/openapi/v3/api/v1", "application/json").await;
        assert_eq!(r.status(), 200);
    }
    let per_request = again.elapsed() / 20;
    eprintln!("first /openapi/v3/api/v1: {first:?}; cached: {per_request:?} per request");
    assert!(
        per_request < std::time::Duration::from_millis(50),
        "a cached document must be served without rebuilding it ({per_request:?})"
    );
}
