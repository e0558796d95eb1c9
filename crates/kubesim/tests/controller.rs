//! The controller loop: writes have the consequences a cluster gives them (scaling,
//! rollouts, rollbacks, scheduling around cordoned nodes, replaced pods), checked with
//! kube-rs and the real kubectl.

mod common;
#[path = "support/kubectl.rs"]
mod kubectl;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kubesim::ServerConfig;
use serde_json::{Value, json};

use kubectl::Kubectl;

/// Polls `check` every 20 ms until it returns Some, for at most 15 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(ready_after_ms: u64) -> ServerConfig {
    ServerConfig {
        ready_after: Some(Duration::from_millis(ready_after_ms)),
        ..Default::default()
    }
}

fn ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn phase(p: &Value) -> &str {
    s(p, "/status/phase")
}

fn node_of(p: &Value) -> &str {
    s(p, "/spec/nodeName")
}

fn name(o: &Value) -> String {
    s(o, "/metadata/name").to_string()
}

fn annotation(o: &Value, key: &str) -> String {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn replicas(o: &Value) -> Option<i64> {
    o.pointer("/spec/replicas").and_then(Value::as_i64)
}

fn values<T: serde::Serialize>(items: Vec<T>) -> Vec<Value> {
    items
        .into_iter()
        .map(|i| serde_json::to_value(i).unwrap())
        .collect()
}

async fn pods(client: &Client, ns: &str, selector: &str) -> Vec<Value> {
    values(
        Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items,
    )
}

async fn replica_sets(client: &Client, ns: &str, selector: &str) -> Vec<Value> {
    values(
        Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items,
    )
}

async fn events(client: &Client, ns: &str, reason: &str) -> Vec<Value> {
    values(
        Api::<Event>::namespaced(client.clone(), ns)
            .list(&ListParams::default().fields(&format!("reason={reason}")))
            .await
            .unwrap()
            .items,
    )
}

/// The ScalingReplicaSet messages about a deployment, in the order they were written.
async fn scaling_events(client: &Client, ns: &str, deployment: &str) -> Vec<String> {
    let selector = format!("involvedObject.name={deployment},reason=ScalingReplicaSet");
    let mut events = values(
        Api::<Event>::namespaced(client.clone(), ns)
            .list(&ListParams::default().fields(&selector))
            .await
            .unwrap()
            .items,
    );
    // Event names end in a hex counter of the same width: their order is the writing order.
    events.sort_by_key(name);
    events
        .iter()
        .map(|e| s(e, "/message").to_string())
        .collect()
}

async fn get<K>(api: &Api<K>, name: &str) -> Value
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

/// Waits until `selector` picks exactly `n` pods, all Running and Ready.
async fn ready_pods(client: &Client, ns: &str, selector: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} ready pods {selector}"), || async {
        let p = pods(client, ns, selector).await;
        (p.len() == n && p.iter().all(|p| ready(p) && phase(p) == "Running")).then_some(p)
    })
    .await
}

async fn scale(client: &Client, ns: &str, deployment: &str, replicas: i32) {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch_scale(
            deployment,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn scaling_a_deployment_adds_and_removes_pods_that_start_after_the_delay() {
    let (server, client) = common::serve_with(kubesim::demo::snapshot(), config(300)).await;
    let before = replica_sets(&client, "shop", "app=cart").await;
    assert_eq!(before.len(), 1);
    let rs_name = name(&before[0]);
    let old: Vec<String> = pods(&client, "shop", "app=cart")
        .await
        .iter()
        .map(name)
        .collect();
    assert_eq!(old.len(), 3);

    let scaled_at = Instant::now();
    scale(&client, "shop", "cart", 5).await;
    // The new pods exist at once, bound to a worker, and are not ready yet.
    let fresh = eventually("two new pods", || async {
        let p = pods(&client, "shop", "app=cart").await;
        (p.len() == 5).then_some(p)
    })
    .await;
    let new: Vec<&Value> = fresh.iter().filter(|p| !old.contains(&name(p))).collect();
    assert_eq!(new.len(), 2);
    for p in &new {
        assert!(!ready(p) && phase(p) == "Pending", "{p:?}");
        assert!(node_of(p).starts_with("demo-worker"), "{p:?}");
        let pod_name = name(p);
        assert!(pod_name.starts_with(&format!("{rs_name}-")), "{pod_name}");
        assert_eq!(pod_name.len(), rs_name.len() + 6);
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(
            (s(owner, "/kind"), s(owner, "/name")),
            ("ReplicaSet", rs_name.as_str())
        );
        assert_eq!(s(owner, "/uid"), s(&before[0], "/metadata/uid"));
        assert_eq!(owner["controller"], true);
    }
    ready_pods(&client, "shop", "app=cart", 5).await;
    assert!(scaled_at.elapsed() >= Duration::from_millis(300));

    // Scaling reuses the ReplicaSet; status and events say what happened.
    let after = replica_sets(&client, "shop", "app=cart").await;
    assert_eq!(after.len(), 1);
    assert_eq!(replicas(&after[0]), Some(5));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let d = eventually("deployment status", || async {
        let d = get(&deployments, "cart").await;
        (d["status"]["availableReplicas"] == 5).then_some(d)
    })
    .await;
    let st = &d["status"];
    assert_eq!(st["observedGeneration"], d["metadata"]["generation"]);
    assert_eq!(
        (
            &st["replicas"],
            &st["updatedReplicas"],
            &st["readyReplicas"]
        ),
        (&json!(5), &json!(5), &json!(5))
    );
    let scaling = events(&client, "shop", "ScalingReplicaSet").await;
    assert!(
        scaling
            .iter()
            .any(|e| e["message"] == format!("Scaled up replica set {rs_name} from 3 to 5")),
        "{scaling:?}"
    );
    let created = events(&client, "shop", "SuccessfulCreate").await;
    for p in &new {
        let message = format!("Created pod: {}", name(p));
        assert!(created.iter().any(|e| e["message"] == message.as_str()));
    }
    let scheduled = events(&client, "shop", "Scheduled").await;
    assert!(scheduled.len() >= 2);
    // Controller events are stamped by the snapshot's clock run on, not before it.
    let snapshot_now = server.store().now();
    for e in &scheduled {
        let at = kubesim::snapshot::parse_time(s(e, "/lastTimestamp")).unwrap();
        assert!(at >= snapshot_now, "{e}");
    }

    scale(&client, "shop", "cart", 1).await;
    let left = ready_pods(&client, "shop", "app=cart", 1).await;
    // The newest pods go first.
    assert!(old.contains(&name(&left[0])), "{left:?}");
    let deleted = events(&client, "shop", "SuccessfulDelete").await;
    assert_eq!(deleted.len(), 4, "{deleted:?}");
    let d = eventually("scaled-down status", || async {
        let d = get(&deployments, "cart").await;
        (d["status"]["replicas"] == 1).then_some(d)
    })
    .await;
    assert_eq!(d["status"]["availableReplicas"], 1);
}

#[tokio::test]
async fn rollout_restart_then_status_then_undo_with_kubectl() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), config(50)).await;
    let client = common::client(&k.server).await;
    let first = replica_sets(&client, "shop", "app=cart").await;
    let first_name = name(&first[0]);

    k.ok(&["rollout", "restart", "deployment/cart", "-n", "shop"])
        .await;
    let out = k
        .ok(&[
            "rollout",
            "status",
            "deployment/cart",
            "-n",
            "shop",
            "--timeout=20s",
        ])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let sets = replica_sets(&client, "shop", "app=cart").await;
    assert_eq!(sets.len(), 2);
    let second = sets.iter().find(|rs| name(rs) != first_name).unwrap();
    let second_name = name(second);
    let hash = s(second, "/metadata/labels/pod-template-hash");
    assert_eq!(second_name, format!("cart-{hash}"));
    assert_eq!(annotation(second, "deployment.kubernetes.io/revision"), "2");
    assert!(
        second
            .pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
            .is_some()
    );
    let old = sets.iter().find(|rs| name(rs) == first_name).unwrap();
    assert_eq!(replicas(old), Some(0));
    // Every pod now belongs to the new ReplicaSet, and the old ones are gone.
    let now = ready_pods(&client, "shop", "app=cart", 3).await;
    assert!(
        now.iter()
            .all(|p| name(p).starts_with(&format!("{second_name}-")))
    );
    // A rolling update within maxSurge 1 and maxUnavailable 0 (25% of 3): one pod more, then
    // one old pod less once the new one is available, in turn.
    let f = &first_name;
    let n = &second_name;
    assert_eq!(
        scaling_events(&client, "shop", "cart").await,
        [
            format!("Scaled up replica set {n} from 0 to 1"),
            format!("Scaled down replica set {f} from 3 to 2"),
            format!("Scaled up replica set {n} from 1 to 2"),
            format!("Scaled down replica set {f} from 2 to 1"),
            format!("Scaled up replica set {n} from 2 to 3"),
            format!("Scaled down replica set {f} from 1 to 0"),
        ]
    );
    let history = k
        .ok(&["rollout", "history", "deployment/cart", "-n", "shop"])
        .await;
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Undo: kubectl patches the template back; the first ReplicaSet returns as revision 3.
    let out = k
        .ok(&["rollout", "undo", "deployment/cart", "-n", "shop"])
        .await;
    assert!(out.contains("rolled back"), "{out}");
    k.ok(&[
        "rollout",
        "status",
        "deployment/cart",
        "-n",
        "shop",
        "--timeout=20s",
    ])
    .await;
    let sets = replica_sets(&client, "shop", "app=cart").await;
    assert_eq!(sets.len(), 2, "a rollback reuses the old ReplicaSet");
    let back = sets.iter().find(|rs| name(rs) == first_name).unwrap();
    assert_eq!(annotation(back, "deployment.kubernetes.io/revision"), "3");
    assert_eq!(
        annotation(back, "deployment.kubernetes.io/revision-history"),
        "1"
    );
    assert_eq!(replicas(back), Some(3));
    let now = ready_pods(&client, "shop", "app=cart", 3).await;
    assert!(
        now.iter()
            .all(|p| name(p).starts_with(&format!("{first_name}-")))
    );
    let d = get(
        &Api::<Deployment>::namespaced(client.clone(), "shop"),
        "cart",
    )
    .await;
    assert_eq!(annotation(&d, "deployment.kubernetes.io/revision"), "3");
    let conditions = d["status"]["conditions"].as_array().unwrap();
    let p = conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap();
    assert_eq!(p["reason"], "NewReplicaSetAvailable");
}

#[tokio::test]
async fn set_image_on_a_new_deployment_rolls_it_and_the_same_writes_give_the_same_names() {
    if !kubectl::available() {
        return;
    }
    let mut runs = Vec::new();
    for _ in 0..2 {
        let k = Kubectl::serve(kubesim::demo::snapshot(), config(0)).await;
        let client = common::client(&k.server).await;
        k.ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=2",
        ])
        .await;
        k.ok(&["rollout", "status", "deployment/web", "--timeout=20s"])
            .await;
        let first: Vec<String> = ready_pods(&client, "default", "app=web", 2)
            .await
            .iter()
            .map(name)
            .collect();
        k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.28"])
            .await;
        k.ok(&["rollout", "status", "deployment/web", "--timeout=20s"])
            .await;
        let second = ready_pods(&client, "default", "app=web", 2).await;
        for p in &second {
            assert_eq!(s(p, "/spec/containers/0/image"), "nginx:1.28");
            assert!(!first.contains(&name(p)));
        }
        let mut sets: Vec<(String, String, Option<i64>)> =
            replica_sets(&client, "default", "app=web")
                .await
                .iter()
                .map(|rs| {
                    (
                        name(rs),
                        annotation(rs, "deployment.kubernetes.io/revision"),
                        replicas(rs),
                    )
                })
                .collect();
        sets.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(sets.len(), 2);
        assert_eq!((sets[0].1.as_str(), sets[0].2), ("1", Some(0)));
        assert_eq!((sets[1].1.as_str(), sets[1].2), ("2", Some(2)));
        let mut names: Vec<String> = second.iter().map(name).collect();
        names.extend(first);
        names.sort();
        runs.push((sets, names));

        // Deleting the deployment takes its ReplicaSets and pods with it.
        k.ok(&["delete", "deployment", "web"]).await;
        eventually("garbage collection", || async {
            (pods(&client, "default", "app=web").await.is_empty()
                && replica_sets(&client, "default", "app=web").await.is_empty())
            .then_some(())
        })
        .await;
    }
    assert_eq!(runs[0], runs[1], "the same writes give the same names");
}

#[tokio::test]
async fn cordoned_nodes_get_no_new_pods_and_a_full_cluster_leaves_them_pending() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), config(0)).await;
    let client = common::client(&k.server).await;
    let nodes: Api<Node> = Api::all(client.clone());
    k.ok(&["cordon", "demo-worker"]).await;
    let node = eventually("the unschedulable taint", || async {
        let n = get(&nodes, "demo-worker").await;
        let tainted = n["spec"]["taints"].as_array().is_some_and(|t| {
            t.iter().any(|t| {
                t["key"] == "node.kubernetes.io/unschedulable" && t["effect"] == "NoSchedule"
            })
        });
        tainted.then_some(n)
    })
    .await;
    assert_eq!(node["spec"]["unschedulable"], true);

    let old: Vec<String> = pods(&client, "shop", "app=cart")
        .await
        .iter()
        .map(name)
        .collect();
    k.ok(&["scale", "deployment/cart", "-n", "shop", "--replicas=7"])
        .await;
    let all = ready_pods(&client, "shop", "app=cart", 7).await;
    let new: Vec<&Value> = all.iter().filter(|p| !old.contains(&name(p))).collect();
    assert_eq!(new.len(), 4);
    // demo-worker is cordoned and the control plane is tainted NoSchedule.
    assert!(new.iter().all(|p| node_of(p) == "demo-worker2"), "{new:?}");

    // With both workers cordoned a new pod has nowhere to go.
    k.ok(&["cordon", "demo-worker2"]).await;
    eventually("the second taint", || async {
        let n = get(&nodes, "demo-worker2").await;
        n["spec"]["taints"].is_array().then_some(())
    })
    .await;
    k.ok(&["scale", "deployment/cart", "-n", "shop", "--replicas=8"])
        .await;
    let pending = eventually("a pending pod", || async {
        let p = pods(&client, "shop", "app=cart").await;
        p.into_iter().find(|p| phase(p) == "Pending")
    })
    .await;
    assert_eq!(node_of(&pending), "");
    let failed = eventually("FailedScheduling", || async {
        let e = events(&client, "shop", "FailedScheduling").await;
        e.into_iter().next()
    })
    .await;
    let message = s(&failed, "/message").to_string();
    assert!(
        message.starts_with("0/3 nodes are available: ")
            && message.contains("2 node(s) were unschedulable")
            && message.contains(
                "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
            ),
        "{message}"
    );
    assert_eq!(failed["type"], "Warning");
    let out = k
        .ok(&["describe", "pod", &name(&pending), "-n", "shop"])
        .await;
    assert!(out.contains("FailedScheduling"), "{out}");

    // Uncordoning lets it in; the taint goes.
    k.ok(&["uncordon", "demo-worker"]).await;
    let all = ready_pods(&client, "shop", "app=cart", 8).await;
    let placed = all.iter().find(|p| name(p) == name(&pending)).unwrap();
    assert_eq!(node_of(placed), "demo-worker");
    let n = get(&nodes, "demo-worker").await;
    assert!(n["spec"].get("taints").is_none(), "{n}");
}

#[tokio::test]
async fn a_deleted_pod_is_replaced_and_replica_sets_and_stateful_sets_scale() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), config(0)).await;
    let client = common::client(&k.server).await;
    let before = pods(&client, "shop", "app=cart").await;
    let victim = name(&before[0]);
    k.ok(&["delete", "pod", &victim, "-n", "shop"]).await;
    let after = ready_pods(&client, "shop", "app=cart", 3).await;
    assert!(after.iter().all(|p| name(p) != victim));
    let replacement = after
        .iter()
        .find(|p| !before.iter().any(|b| name(b) == name(p)))
        .unwrap();
    let created = events(&client, "shop", "SuccessfulCreate").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0]["message"],
        format!("Created pod: {}", name(replacement))
    );

    // A ReplicaSet scaled on its own (its deployment then scales it back, as a cluster does).
    let rs = replica_sets(&client, "shop", "app=cart").await;
    let rs_name = name(&rs[0]);
    k.ok(&[
        "scale",
        "replicaset",
        &rs_name,
        "-n",
        "shop",
        "--replicas=4",
    ])
    .await;
    eventually("the deployment to restore three pods", || async {
        let rs = replica_sets(&client, "shop", "app=cart").await;
        let p = pods(&client, "shop", "app=cart").await;
        (replicas(&rs[0]) == Some(3) && p.len() == 3).then_some(())
    })
    .await;
    // A ReplicaSet without a deployment.
    let bare = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "solo", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "solo"}},
                 "template": {"metadata": {"labels": {"app": "solo"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(bare).unwrap(),
        )
        .await
        .unwrap();
    ready_pods(&client, "default", "app=solo", 2).await;
    k.ok(&["scale", "replicaset", "solo", "--replicas=1"]).await;
    ready_pods(&client, "default", "app=solo", 1).await;

    // StatefulSets scale by ordinal.
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "data");
    let replicas = replicas(&get(&sts, "postgres").await).unwrap_or(1) as usize;
    k.ok(&[
        "scale",
        "statefulset/postgres",
        "-n",
        "data",
        &format!("--replicas={}", replicas + 2),
    ])
    .await;
    let p = ready_pods(&client, "data", "app=postgres", replicas + 2).await;
    let mut names: Vec<String> = p.iter().map(name).collect();
    names.sort();
    let want: Vec<String> = (0..replicas + 2).map(|i| format!("postgres-{i}")).collect();
    assert_eq!(names, want);
    k.ok(&[
        "scale",
        "statefulset/postgres",
        "-n",
        "data",
        "--replicas=1",
    ])
    .await;
    let p = ready_pods(&client, "data", "app=postgres", 1).await;
    assert_eq!(name(&p[0]), "postgres-0");
}

#[tokio::test]
async fn the_captured_state_is_left_alone() {
    let (server, client) = common::serve_with(kubesim::demo::snapshot(), config(0)).await;
    let all_pods = || async {
        let mut p: Vec<String> = Api::<Pod>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        p.sort();
        p
    };
    let before = all_pods().await;
    let rv = server.store().resource_version();
    // The crashlooping and unschedulable pods are there to be diagnosed, not repaired.
    assert!(before.iter().any(|p| p.contains("CrashLoopBackOff")));
    assert!(
        before
            .iter()
            .any(|p| p.contains("model-trainer") && p.contains("Unschedulable"))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.store().resource_version(), rv);
    // Writes unrelated to workloads change nothing else.
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "x"}, "data": {"a": "b"}})).unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "payments")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "payments")
        .delete("x", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.store().resource_version(), rv + 2);
    assert_eq!(all_pods().await, before);
}

#[tokio::test]
async fn recreate_deletes_the_old_pods_before_it_makes_new_ones() {
    let (_server, client) = common::serve_with(kubesim::demo::snapshot(), config(30)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "batch"},
        "spec": {"replicas": 2, "strategy": {"type": "Recreate"},
                 "selector": {"matchLabels": {"app": "batch"}},
                 "template": {"metadata": {"labels": {"app": "batch"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}});
    deployments
        .create(&PostParams::default(), &serde_json::from_value(d).unwrap())
        .await
        .unwrap();
    ready_pods(&client, "default", "app=batch", 2).await;
    let first = name(&replica_sets(&client, "default", "app=batch").await[0]);
    deployments
        .patch(
            "batch",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "busybox:2"}]}}}})),
        )
        .await
        .unwrap();
    let now = eventually("the new pods", || async {
        let p = ready_pods(&client, "default", "app=batch", 2).await;
        p.iter()
            .all(|p| s(p, "/spec/containers/0/image") == "busybox:2")
            .then_some(p)
    })
    .await;
    let second = s(&now[0], "/metadata/labels/pod-template-hash").to_string();
    let second = format!("batch-{second}");
    assert_eq!(
        scaling_events(&client, "default", "batch").await,
        [
            format!("Scaled up replica set {first} from 0 to 2"),
            format!("Scaled down replica set {first} from 2 to 0"),
            format!("Scaled up replica set {second} from 0 to 2"),
        ]
    );
    let d = get(&deployments, "batch").await;
    assert_eq!(d["status"]["updatedReplicas"], 2);
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );

    // Paused, a template change rolls nothing out until the deployment is resumed.
    let set = |paused: bool, image: Option<&str>| {
        let mut patch = json!({"spec": {"paused": paused}});
        if let Some(image) = image {
            patch["spec"]["template"] =
                json!({"spec": {"containers": [{"name": "c", "image": image}]}});
        }
        Patch::Strategic(patch)
    };
    deployments
        .patch("batch", &PatchParams::default(), &set(true, None))
        .await
        .unwrap();
    deployments
        .patch(
            "batch",
            &PatchParams::default(),
            &set(true, Some("busybox:3")),
        )
        .await
        .unwrap();
    eventually("the change observed", || async {
        let d = get(&deployments, "batch").await;
        (d["status"]["observedGeneration"] == d["metadata"]["generation"]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(replica_sets(&client, "default", "app=batch").await.len(), 2);
    deployments
        .patch("batch", &PatchParams::default(), &set(false, None))
        .await
        .unwrap();
    eventually("the resumed rollout", || async {
        let p = ready_pods(&client, "default", "app=batch", 2).await;
        p.iter()
            .all(|p| s(p, "/spec/containers/0/image") == "busybox:3")
            .then_some(())
    })
    .await;
    assert_eq!(replica_sets(&client, "default", "app=batch").await.len(), 3);
}

#[tokio::test]
async fn new_pods_fail_as_their_workload_does_until_the_container_changes() {
    let (_server, client) = common::serve_with(kubesim::demo::snapshot(), config(0)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "payments");
    let old: Vec<String> = pods(&client, "payments", "app=payments-api")
        .await
        .iter()
        .map(name)
        .collect();
    assert_eq!(old.len(), 2);
    // A restart does not cure a crash loop: the surge pod crashes as the others do, and the
    // rollout stays where it is (maxUnavailable 0 keeps the old pods).
    deployments
        .patch(
            "payments-api",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-11-20T09:31:00Z"}}}}})),
        )
        .await
        .unwrap();
    let fresh = eventually("the surge pod", || async {
        let p = pods(&client, "payments", "app=payments-api").await;
        p.into_iter().find(|p| !old.contains(&name(p)))
    })
    .await;
    assert!(!ready(&fresh));
    assert_eq!(
        s(&fresh, "/status/containerStatuses/0/state/waiting/reason"),
        "CrashLoopBackOff",
        "{fresh}"
    );
    let message = s(&fresh, "/status/containerStatuses/0/state/waiting/message");
    assert!(message.contains(&name(&fresh)), "{message}");
    let backoff = events(&client, "payments", "BackOff").await;
    assert!(
        backoff
            .iter()
            .any(|e| s(e, "/involvedObject/name") == name(&fresh) && e["type"] == "Warning"),
        "{backoff:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pods(&client, "payments", "app=payments-api").await.len(), 3);
    let d = get(&deployments, "payments-api").await;
    assert_eq!(d["status"]["updatedReplicas"], 1);
    assert!(
        d["status"].get("availableReplicas").is_none_or(|a| a == 0),
        "{d}"
    );
    let progressing = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["reason"], "ReplicaSetUpdated");

    // A tag that exists fixes an image pull failure: the rollout completes with healthy pods.
    let shop: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    shop.patch(
        "recommendations",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "recommendations", "image": "ghcr.io/acme/recommendations:v2.3.0"}]}}}})),
    )
    .await
    .unwrap();
    let healthy = eventually("the fixed rollout", || async {
        let p = ready_pods(&client, "shop", "app=recommendations", 2).await;
        p.iter()
            .all(|p| s(p, "/spec/containers/0/image").ends_with(":v2.3.0"))
            .then_some(p)
    })
    .await;
    assert_eq!(healthy.len(), 2);
    let d = get(&shop, "recommendations").await;
    assert_eq!(d["status"]["availableReplicas"], 2);
}

#[tokio::test]
async fn a_huge_replica_count_does_not_stall_the_server() {
    let (_server, client) = common::serve_with(kubesim::demo::snapshot(), config(0)).await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "many"},
        "spec": {"replicas": i32::MAX, "selector": {"matchLabels": {"app": "many"}},
                 "template": {"metadata": {"labels": {"app": "many"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    sets.create(&PostParams::default(), &serde_json::from_value(rs).unwrap())
        .await
        .unwrap();
    // Pods come in bursts while requests keep being answered.
    let rs = eventually("a first burst of pods", || async {
        let rs = get(&sets, "many").await;
        (rs["status"]["replicas"].as_i64() >= Some(100)).then_some(rs)
    })
    .await;
    let asked = Instant::now();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert!(rs["status"]["replicas"].as_i64() < Some(i64::from(i32::MAX)));
    sets.patch_scale(
        "many",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    eventually("every pod gone", || async {
        let rs = get(&sets, "many").await;
        (rs["status"]["replicas"] == 0).then_some(())
    })
    .await;
    assert!(pods(&client, "default", "app=many").await.is_empty());
}
