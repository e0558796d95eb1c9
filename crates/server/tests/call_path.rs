//! Every tool a mode lists answers through the call path: each call of a catalog function's
//! tool, and each `tools.*` call of a program, is recorded under the function's path by the
//! call path's record stage. A tool that bypassed the path (and so its shape stage) would
//! leave no record and fail here.

use serde_json::{Map, Value, json};
use server::{CallEnv, Caller, Mode, Options, ServerState};

fn args(v: Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

/// Arguments for each tool (a failing call is recorded too: what matters is the path).
fn arguments(tool: &str) -> Value {
    match tool {
        "run_code" => {
            json!({"code": "return [await tools.kubernetes.contexts(), (await tools.helm.list({allNamespaces: true})).length]"})
        }
        "search_tools" => json!({"query": "logs"}),
        "kube_list" => json!({"kind": "Pod", "namespace": "shop"}),
        "kube_get" => json!({"kind": "Namespace", "name": "shop"}),
        "kube_logs" => json!({"name": "no-such-pod", "namespace": "shop"}),
        "kube_events" => json!({"namespace": "shop"}),
        "kube_metrics" => json!({"kind": "pods", "namespace": "shop"}),
        "helm_get" | "helm_history" => json!({"name": "storefront", "namespace": "shop"}),
        _ => json!({}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_of_every_mode_takes_the_call_path() {
    let sim = kubesim::serve(kubesim::demo::snapshot(), kubesim::ServerConfig::default())
        .await
        .expect("kubesim");
    let modes = [Mode::Code, Mode::Tools, Mode::All];
    // With --allow-changes the change tools and apply_plan exist too, and take the path.
    for (mode, allow_changes) in modes
        .iter()
        .map(|m| (*m, false))
        .chain(modes.iter().map(|m| (*m, true)))
    {
        let cluster = cluster::Cluster::from_kubeconfig_yaml(
            &sim.kubeconfig(),
            None,
            cluster::Limits::default(),
        )
        .expect("cluster");
        let state = ServerState::new(
            cluster,
            Options {
                mode,
                allow_changes,
                ..Options::default()
            },
        );
        let session = state.session(Caller::local());
        let tools = state.tool_names();
        assert!(!tools.is_empty());
        assert_eq!(
            tools.iter().any(|t| t == "apply_plan"),
            allow_changes,
            "{tools:?}"
        );
        assert_eq!(
            tools.iter().any(|t| t == "kube_scale"),
            allow_changes && mode != Mode::Code,
            "{tools:?}"
        );
        for tool in tools {
            // A catalog function's tool is recorded under its path, by the call path.
            let key = match state.catalog().by_tool_name(&tool) {
                Some(f) => f.path.to_string(),
                None => tool.clone(),
            };
            let before = state.records().count(&key);
            let r = session
                .call_tool(&tool, args(arguments(&tool)), CallEnv::default())
                .await;
            let after = state.records().count(&key);
            assert_eq!(
                after.ok + after.failed,
                before.ok + before.failed + 1,
                "{mode:?}: {tool} left no record: {r:?}"
            );
        }
        if matches!(mode, Mode::Code | Mode::All) {
            // A program's calls each take the path.
            for path in ["kubernetes.contexts", "helm.list"] {
                assert!(state.records().count(path).ok >= 1, "{mode:?}: {path}");
            }
        }
        let unknown = session
            .call_tool("kube_delete", None, CallEnv::default())
            .await;
        assert_eq!(unknown.is_error, Some(true));
    }
}
