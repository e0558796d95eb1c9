// Tests of changes that need kubesim's controller loop (the sim-controller branch): "restart and
// verify" end to end and a rollback to the default (previous) revision after a real rollout.
// Not compiled here: once sim-controller is merged, append this file to
// crates/kubecode/tests/changes.rs (it uses that file's setup helpers) and delete it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_verify_on_the_demo_cluster() {
    let s = setup(&["--allow-changes"], true).await;
    // 1. Plan: one short program.
    let doc = s
        .run(r#"const r = await tools.kubernetes.restart({ kind: "deploy", name: "grafana", namespace: "monitoring" }); return r.diff"#)
        .await;
    assert_eq!(doc["ok"], true, "{doc}");
    assert!(
        doc["result"]
            .as_str()
            .unwrap()
            .contains("+        kubectl.kubernetes.io/restartedAt:"),
        "{doc}"
    );
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    // 2. Approve and apply.
    let out = s
        .call("apply_plan", json!({ "id": id }))
        .await
        .structured_content
        .unwrap();
    assert_eq!((out["decision"].as_str(), out["applied"].as_u64()), (Some("approved"), Some(1)), "{out}");
    // 3. Verify: a second short program waits for the rollout, spending no tokens meanwhile.
    let doc = s
        .run(r#"const w = await tools.kubernetes.waitFor({ kind: "deploy", name: "grafana", namespace: "monitoring", condition: "rolledOut", timeoutSeconds: 25 });
const sets = await tools.kubernetes.list({ kind: "ReplicaSet", namespace: "monitoring", fields: ["metadata.annotations", "metadata.ownerReferences", "status.readyReplicas", "spec.template.metadata.annotations"] });
const mine = sets.filter(r => (r.metadata.ownerReferences || []).some(o => o.name === "grafana"));
return { w, sets: mine.map(r => ({ revision: r.metadata.annotations["deployment.kubernetes.io/revision"], ready: r.status.readyReplicas || 0,
  restarted: !!((r.spec.template.metadata.annotations || {})["kubectl.kubernetes.io/restartedAt"]) })) }"#)
        .await;
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["result"]["w"]["met"], true, "{doc}");
    let sets = doc["result"]["sets"].as_array().unwrap();
    let new = sets
        .iter()
        .find(|r| r["restarted"] == true)
        .unwrap_or_else(|| panic!("a new ReplicaSet with the restart: {doc}"));
    assert_eq!(new["revision"], "2", "{doc}");
    assert!(new["ready"].as_u64().unwrap() >= 1, "the new ReplicaSet is ready: {doc}");
    assert!(
        sets.iter().filter(|r| r["restarted"] != true).all(|r| r["ready"] == 0),
        "the old ReplicaSet is scaled down: {doc}"
    );
    eprintln!(
        "restart and verify: waited {} ms, observed {}",
        doc["result"]["w"]["waitedMs"], doc["result"]["w"]["observed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_a_rollout_goes_to_the_previous_revision() {
    let s = setup(&["--allow-changes"], true).await;
    let original = s.deployment("monitoring", "grafana").await["spec"]["template"]["spec"]
        ["containers"][0]["image"]
        .clone();
    // Revision 2: a new image, rolled out by the controller.
    let doc = s
        .run(r#"await tools.kubernetes.setImage({ kind: "deploy", name: "grafana", namespace: "monitoring", container: "grafana", image: "grafana/grafana:11.3.0" }); return 1"#)
        .await;
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    let out = s
        .call("apply_plan", json!({ "id": id }))
        .await
        .structured_content
        .unwrap();
    assert_eq!(out["applied"], 1, "{out}");
    let doc = s
        .run(r#"return await tools.kubernetes.waitFor({ kind: "deploy", name: "grafana", namespace: "monitoring", condition: "rolledOut", timeoutSeconds: 25 })"#)
        .await;
    assert_eq!(doc["result"]["met"], true, "{doc}");

    let doc = s
        .run(r#"const r = await tools.kubernetes.rollback({ kind: "deploy", name: "grafana", namespace: "monitoring" }); return r.diff"#)
        .await;
    assert_eq!(doc["ok"], true, "{doc}");
    let diff = doc["result"].as_str().unwrap();
    assert!(
        diff.contains("-        image: grafana/grafana:11.3.0")
            && diff.contains(&format!("+        image: {}", original.as_str().unwrap())),
        "{diff}"
    );
    assert!(!diff.contains("pod-template-hash"), "{diff}");
    assert!(
        doc["plan"]["changes"][0]["action"]
            .as_str()
            .unwrap()
            .contains("from revision 2 to revision 1"),
        "{doc}"
    );
    let id = doc["plan"]["id"].as_str().unwrap().to_string();
    let out = s
        .call("apply_plan", json!({ "id": id }))
        .await
        .structured_content
        .unwrap();
    assert_eq!(out["applied"], 1, "{out}");
    let doc = s
        .run(r#"return await tools.kubernetes.waitFor({ kind: "deploy", name: "grafana", namespace: "monitoring", condition: "rolledOut", timeoutSeconds: 25 })"#)
        .await;
    assert_eq!(doc["result"]["met"], true, "{doc}");
    let after = s.deployment("monitoring", "grafana").await;
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0]["image"],
        original
    );

    // A revision that does not exist is named, with the ones that do.
    let doc = s
        .run(r#"return await tools.kubernetes.rollback({ kind: "deploy", name: "grafana", namespace: "monitoring", revision: 7 })"#)
        .await;
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("no revision 7"), "{message}");
}
