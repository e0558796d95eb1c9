//! Access reviews against real clients: `kubectl auth can-i` answers from kubesim's forbid
//! rules, and kube-rs creates the reviews itself.

mod common;
#[path = "support/kubectl.rs"]
mod kubectl;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use kube::api::{Api, PostParams};
use kubectl::Kubectl;
use kubesim::{ForbidRule, ServerConfig};

fn forbidding(rules: &[&str]) -> ServerConfig {
    ServerConfig {
        forbid: rules
            .iter()
            .map(|r| ForbidRule::parse(r).unwrap())
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn kubectl_auth_can_i_follows_the_forbid_rules() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(
        kubesim::demo::snapshot(),
        forbidding(&["secrets:list", "pods/log"]),
    )
    .await;
    let (ok, out, _) = k
        .run(&["auth", "can-i", "list", "secrets", "-n", "shop"])
        .await;
    assert!(
        !ok && out.trim() == "no - kubesim refuses this by its rule --forbid secrets:list",
        "list secrets: {out}"
    );
    let (ok, out, _) = k
        .run(&["auth", "can-i", "get", "secrets", "-n", "shop"])
        .await;
    assert!(ok && out.trim() == "yes", "get secrets: {out}");
    let (ok, out, _) = k
        .run(&["auth", "can-i", "list", "pods", "-n", "shop"])
        .await;
    assert!(ok && out.trim() == "yes", "list pods: {out}");
    let (ok, out, _) = k
        .run(&[
            "auth",
            "can-i",
            "get",
            "pods",
            "--subresource=log",
            "-n",
            "shop",
        ])
        .await;
    assert!(!ok && out.starts_with("no"), "get pods/log: {out}");
    let (ok, out, _) = k.run(&["auth", "can-i", "get", "/healthz"]).await;
    assert!(ok && out.trim() == "yes", "non-resource URL: {out}");

    let list = k.ok(&["auth", "can-i", "--list", "-n", "shop"]).await;
    let secrets = list
        .lines()
        .find(|l| l.starts_with("secrets "))
        .unwrap_or_else(|| panic!("no secrets rule in\n{list}"));
    assert!(
        secrets.contains("[create delete deletecollection get patch update watch]"),
        "list is refused, the rest allowed: {secrets}"
    );
    assert!(
        !list.lines().any(|l| l.starts_with("pods/log ")),
        "pods/log is refused entirely:\n{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("deployments.apps ") && l.contains("[create delete")),
        "{list}"
    );
}

#[tokio::test]
async fn kubectl_auth_can_i_list_without_rules_allows_everything() {
    if !kubectl::available() {
        return;
    }
    let k = Kubectl::serve(kubesim::demo::snapshot(), ServerConfig::default()).await;
    let list = k.ok(&["auth", "can-i", "--list", "-n", "default"]).await;
    assert!(
        list.lines()
            .any(|l| l.starts_with("*.* ") && l.contains("[*]")),
        "{list}"
    );
    let (ok, out, _) = k.run(&["auth", "can-i", "*", "*"]).await;
    assert!(ok && out.trim() == "yes", "{out}");
}

#[tokio::test]
async fn kube_rs_creates_access_reviews() {
    let (_server, client) = common::serve_with(
        kubesim::demo::snapshot(),
        forbidding(&["deployments.apps:delete"]),
    )
    .await;
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let ask = |verb: &str, group: &str, resource: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                namespace: Some("shop".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let denied = reviews
        .create(
            &PostParams::default(),
            &ask("delete", "apps", "deployments"),
        )
        .await
        .unwrap();
    let status = denied.status.unwrap();
    assert!(!status.allowed && status.denied == Some(true));
    assert!(
        status
            .reason
            .unwrap()
            .contains("--forbid deployments.apps:delete")
    );
    let allowed = reviews
        .create(&PostParams::default(), &ask("get", "apps", "deployments"))
        .await
        .unwrap();
    assert!(allowed.status.unwrap().allowed);
    // `*` overlaps the refused delete: not everything on deployments is allowed.
    let any = reviews
        .create(&PostParams::default(), &ask("*", "apps", "deployments"))
        .await
        .unwrap();
    assert!(!any.status.unwrap().allowed);

    let rules: Api<SelfSubjectRulesReview> = Api::all(client);
    let review = rules
        .create(
            &PostParams::default(),
            &SelfSubjectRulesReview {
                spec: SelfSubjectRulesReviewSpec {
                    namespace: Some("shop".into()),
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let status = review.status.unwrap();
    let deployments = status
        .resource_rules
        .iter()
        .find(|r| {
            r.api_groups.as_deref() == Some(&["apps".to_string()][..])
                && r.resources
                    .as_ref()
                    .is_some_and(|rs| rs.contains(&"deployments".to_string()))
        })
        .expect("a rule for deployments");
    assert!(!deployments.verbs.contains(&"delete".to_string()));
    assert!(deployments.verbs.contains(&"list".to_string()));
    let pods = status
        .resource_rules
        .iter()
        .find(|r| {
            r.resources
                .as_ref()
                .is_some_and(|rs| rs.contains(&"pods".to_string()))
        })
        .expect("a rule for pods");
    assert!(pods.verbs.contains(&"delete".to_string()));
}
