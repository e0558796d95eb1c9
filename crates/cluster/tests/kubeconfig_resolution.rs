//! Credentials resolved as kubectl resolves them: the merged KUBECONFIG list (missing files
//! skipped, first value wins), `--kubeconfig`, contexts, and exec credential plugins.
//! One test per binary: it changes the process environment.

use cluster::{Cluster, ErrorKind, Limits, ListQuery};
use kubesim::ServerConfig;

fn kubeconfig_with(
    server: &str,
    ca: &str,
    user: &str,
    context: &str,
    current: Option<&str>,
) -> String {
    let current = current
        .map(|c| format!("current-context: {c}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\n{current}clusters:\n- name: sim\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: me\n  user:\n{user}\ncontexts:\n- name: {context}\n  context:\n    cluster: sim\n    user: me\n    namespace: shop\n"
    )
}

#[tokio::test]
async fn merged_kubeconfig_lists_and_exec_plugins() {
    let server = kubesim::serve(kubesim::demo::snapshot(), ServerConfig::default())
        .await
        .unwrap();
    let ca = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(server.ca_pem())
    };
    let dir = tempfile::tempdir().unwrap();
    // The first file names the current context; the second holds a token-based user under
    // the same name, which the first file's exec user shadows (first value wins).
    let exec_user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"-c\", \"echo '{{\\\"apiVersion\\\":\\\"client.authentication.k8s.io/v1\\\",\\\"kind\\\":\\\"ExecCredential\\\",\\\"status\\\":{{\\\"token\\\":\\\"{}\\\"}}}}'\"]\n      interactiveMode: Never\n",
        server.token()
    );
    let first = dir.path().join("first");
    std::fs::write(
        &first,
        kubeconfig_with(server.url(), &ca, &exec_user, "plugin", Some("plugin")),
    )
    .unwrap();
    let second = dir.path().join("second");
    std::fs::write(
        &second,
        kubeconfig_with(
            server.url(),
            &ca,
            "    token: wrong\n",
            "other",
            Some("other"),
        ),
    )
    .unwrap();
    let missing = dir.path().join("missing");
    let list = std::env::join_paths([&missing, &first, &second]).unwrap();
    // SAFETY: this test binary has this one test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("KUBECONFIG", &list);
        std::env::set_var("HOME", dir.path());
    }
    let c = Cluster::new(None, None, Limits::default()).unwrap();
    let mut names: Vec<(String, bool)> = c
        .contexts()
        .into_iter()
        .map(|x| (x.name, x.current))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [("other".to_string(), false), ("plugin".to_string(), true)]
    );
    // The exec plugin supplies the token; the context's namespace (shop) is the default.
    let pods = c
        .list(&ListQuery {
            kind: "pods".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pods.len(), 12);
    assert!(pods.iter().all(|p| p["metadata"]["namespace"] == "shop"));
    // `other` uses the shadowed user `me` too, so it also authenticates through the plugin.
    let other = ListQuery {
        kind: "pods".into(),
        context: Some("other".into()),
        ..Default::default()
    };
    assert_eq!(c.list(&other).await.unwrap().len(), 12);

    // --kubeconfig names one file and ignores KUBECONFIG.
    let only = Cluster::new(Some(&second), None, Limits::default()).unwrap();
    let e = only
        .list(&ListQuery {
            kind: "pods".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    let e = Cluster::new(Some(&missing), None, Limits::default())
        .err()
        .expect("a missing file is an error");
    assert!(
        e.message.contains("cannot read the kubeconfig"),
        "{}",
        e.message
    );
}
