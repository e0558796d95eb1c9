//! Identity in kubesim: impersonation honoured only for users who may impersonate, RBAC
//! rules from a file answered with the API server's 403, self-subject reviews per
//! impersonated user, and the request log naming who asked.

mod common;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubesim::{Rbac, RunningServer, ServerConfig};

const RULES: &str = r#"
tokenUser: kubecode
tokens:
  - token: eve-token-0123456789abcdef
    user: eve
rules:
  - subjects: [user:kubecode]
    verbs: [impersonate]
    resources: [users, groups]
  - subjects: [user:alice]
    verbs: [get, list, watch]
    resources: [pods, pods/log]
    namespaces: [shop]
  - subjects: [group:ops]
    verbs: [get, list, watch]
    resources: ["*"]
  - subjects: [user:eve]
    verbs: [list]
    resources: [pods]
    namespaces: [payments]
"#;

/// A client of the server as `token`'s user, impersonating `as_user` (and `groups`) if set.
async fn client_as(
    server: &RunningServer,
    token: Option<&str>,
    as_user: Option<&str>,
    groups: &[&str],
) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    config.default_retry = false;
    if let Some(t) = token {
        config.auth_info.token = Some(t.to_string().into());
    }
    config.auth_info.impersonate = as_user.map(str::to_string);
    if !groups.is_empty() {
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    kube::Client::try_from(config).unwrap()
}

async fn serve(rbac: Option<&str>, log: &std::path::Path) -> RunningServer {
    let config = ServerConfig {
        rbac: rbac.map(|r| Rbac::from_yaml(r).unwrap()),
        request_log: Some(log.to_path_buf()),
        ..Default::default()
    };
    kubesim::serve(kubesim::demo::snapshot(), config)
        .await
        .unwrap()
}

#[tokio::test]
async fn impersonated_users_get_what_their_rules_allow() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let server = serve(Some(RULES), &log).await;

    let alice = client_as(&server, None, Some("alice"), &[]).await;
    let shop: Api<Pod> = Api::namespaced(alice.clone(), "shop");
    assert!(
        !shop
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let payments: Api<Pod> = Api::namespaced(alice.clone(), "payments");
    let e = common::api_error(payments.list(&ListParams::default()).await);
    assert_eq!(e.code, 403);
    assert_eq!(e.reason, "Forbidden");
    assert_eq!(
        e.message,
        "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"payments\""
    );
    let secrets: Api<Secret> = Api::namespaced(alice.clone(), "shop");
    let e = common::api_error(secrets.list(&ListParams::default()).await);
    assert_eq!(
        e.message,
        "secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"shop\""
    );
    let all: Api<Pod> = Api::all(alice.clone());
    let e = common::api_error(all.list(&ListParams::default()).await);
    assert!(e.message.ends_with("at the cluster scope"), "{}", e.message);

    // A group rule: bob in ops reads everything, alice's own rules do not apply to him.
    let bob = client_as(&server, None, Some("bob"), &["ops"]).await;
    let secrets: Api<Secret> = Api::all(bob.clone());
    assert!(secrets.list(&ListParams::default()).await.is_ok());
    let pod_names = |l: Vec<Pod>| l.len();
    let bob_all: Api<Pod> = Api::all(bob);
    assert!(pod_names(bob_all.list(&ListParams::default()).await.unwrap().items) > 0);

    // The server's own user, not impersonating, may only impersonate.
    let own = client_as(&server, None, None, &[]).await;
    let e = common::api_error(
        Api::<Pod>::namespaced(own, "shop")
            .list(&ListParams::default())
            .await,
    );
    assert!(
        e.message.contains("User \"kubecode\" cannot list"),
        "{}",
        e.message
    );

    // Eve has a token but may not impersonate: her headers are refused, not honoured.
    let eve_as_alice = client_as(
        &server,
        Some("eve-token-0123456789abcdef"),
        Some("alice"),
        &[],
    )
    .await;
    let e = common::api_error(
        Api::<Pod>::namespaced(eve_as_alice, "shop")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "users \"alice\" is forbidden: User \"eve\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    let eve = client_as(&server, Some("eve-token-0123456789abcdef"), None, &[]).await;
    assert!(
        Api::<Pod>::namespaced(eve.clone(), "payments")
            .list(&ListParams::default())
            .await
            .is_ok()
    );
    assert!(
        Api::<Pod>::namespaced(eve, "shop")
            .list(&ListParams::default())
            .await
            .is_err()
    );

    // Self-subject reviews answer for the impersonated user.
    let reviews: Api<SelfSubjectAccessReview> = Api::all(alice.clone());
    let can = |ns: &str, resource: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some("list".into()),
                resource: Some(resource.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let pp = PostParams::default();
    let yes = reviews.create(&pp, &can("shop", "pods")).await.unwrap();
    assert!(yes.status.unwrap().allowed);
    let no = reviews.create(&pp, &can("payments", "pods")).await.unwrap();
    assert!(!no.status.unwrap().allowed);
    let rules: Api<SelfSubjectRulesReview> = Api::all(alice);
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some("shop".into()),
        },
        ..Default::default()
    };
    let answer = rules.create(&pp, &review).await.unwrap().status.unwrap();
    let resources: Vec<String> = answer
        .resource_rules
        .iter()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    assert_eq!(resources, vec!["pods", "pods/log"]);
    let elsewhere = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some("payments".into()),
        },
        ..Default::default()
    };
    let answer = rules.create(&pp, &elsewhere).await.unwrap().status.unwrap();
    assert!(
        answer.resource_rules.is_empty(),
        "{:?}",
        answer.resource_rules
    );

    // The request log shows who asked and the impersonation headers.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused = lines
        .iter()
        .find(|l| l["path"] == "/api/v1/namespaces/payments/pods" && l["user"] == "alice")
        .expect("alice's list in payments is logged");
    assert_eq!(refused["impersonateUser"], "alice");
    assert_eq!(refused["status"], 403);
    assert!(
        lines.iter().any(|l| l["impersonateUser"] == "bob"
            && l["impersonateGroups"] == serde_json::json!(["ops"]))
    );
    assert!(
        lines
            .iter()
            .any(|l| l["user"] == "eve" && l["impersonateUser"].is_null())
    );
}

#[tokio::test]
async fn without_rules_everything_is_allowed_and_impersonation_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let server = serve(None, &log).await;
    let carol = client_as(&server, None, Some("carol"), &[]).await;
    assert!(
        Api::<Secret>::all(carol)
            .list(&ListParams::default())
            .await
            .is_ok()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"user\":\"carol\""), "{text}");
    // A group without a user is a bad request, as on the API server.
    let groupless = client_as(&server, None, None, &["ops"]).await;
    let e = common::api_error(
        Api::<Pod>::namespaced(groupless, "shop")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(e.code, 400);
}
