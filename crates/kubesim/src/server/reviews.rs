//! `authorization.k8s.io/v1` reviews a client makes about itself (`kubectl auth can-i`),
//! answered for the requester (the impersonated user, when impersonating) from the server's
//! forbid rules and, with `--rbac`, its RBAC rules.

use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::App;
use super::discovery::subresource_verbs;
use super::http::{Body, Req, error, json_value};
use super::identity::{Rbac, Subject, spec_parts};
use super::route::ResourcePath;
use crate::resources::Registry;
use crate::status::ApiError;

const GROUP: &str = "authorization.k8s.io";

/// Whether a path addresses one of the reviews.
pub fn handles(path: &ResourcePath) -> bool {
    path.group == GROUP
        && path.version == "v1"
        && matches!(
            path.plural.as_str(),
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
        )
}

/// Serves a review request.
pub fn serve(app: &App, registry: &Registry, path: &ResourcePath, req: &Req) -> Response<Body> {
    if req.method != Method::POST || path.name.is_some() || path.namespace.is_some() {
        return error(&ApiError::method_not_allowed(
            req.method.as_str(),
            &req.path,
        ));
    }
    let body = match super::objects::body_object(req) {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let (kind, status) = if path.plural == "selfsubjectaccessreviews" {
        match access_review(app, &req.subject, &spec) {
            Ok(s) => ("SelfSubjectAccessReview", s),
            Err(e) => return error(&e),
        }
    } else {
        let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
        let status = match &app.rbac {
            Some(rbac) => rbac_rules_review(rbac, &req.subject, namespace),
            None => rules_review(app, registry),
        };
        ("SelfSubjectRulesReview", status)
    };
    json_value(
        StatusCode::CREATED,
        &json!({"kind": kind, "apiVersion": format!("{GROUP}/v1"),
                "metadata": {"creationTimestamp": null}, "spec": spec, "status": status}),
    )
}

fn access_review(app: &App, who: &Subject, spec: &Value) -> Result<Value, ApiError> {
    let text = |v: &Value, field: &str| {
        v.get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if let Some(attrs) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let (group, resource, sub, verb) = (
            text(attrs, "group"),
            text(attrs, "resource"),
            text(attrs, "subresource"),
            text(attrs, "verb"),
        );
        let namespace = attrs
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        let full = if sub.is_empty() {
            resource.clone()
        } else {
            format!("{resource}/{sub}")
        };
        if let Some(rbac) = &app.rbac
            && !rbac.allows(who, &verb, &group, &full, namespace)
        {
            return Ok(json!({"allowed": false,
                "reason": format!("no rule of kubesim's --rbac file lets User \"{}\" {verb} {full}", who.user)}));
        }
        return Ok(
            match app
                .forbid
                .iter()
                .find(|r| r.overlaps(&group, &resource, &sub, &verb))
            {
                Some(rule) => json!({"allowed": false, "denied": true,
                    "reason": format!("kubesim refuses this by its rule --forbid {rule}")}),
                None => json!({"allowed": true,
                    "reason": "kubesim allows every request that no --forbid rule refuses"}),
            },
        );
    }
    if spec
        .get("nonResourceAttributes")
        .is_some_and(Value::is_object)
    {
        return Ok(json!({"allowed": true,
            "reason": "kubesim's --forbid rules apply to resources only; every non-resource URL is allowed"}));
    }
    Err(ApiError::invalid(
        "SelfSubjectAccessReview",
        "",
        "spec.resourceAttributes",
        "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
    ))
}

/// The rules of a rules review. With no forbid rule, everything (`*`) is allowed. Otherwise
/// RBAC rules cannot say "all but X", so the answer lists, for each resource the server
/// serves, the verbs no rule refuses; resources of one group with the same verbs share a rule.
fn rules_review(app: &App, registry: &Registry) -> Value {
    let non_resource = json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]);
    if app.forbid.is_empty() {
        return json!({"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                      "nonResourceRules": non_resource, "incomplete": false});
    }
    // (group, verbs) → resources, in discovery order.
    let mut rules: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |group: &str, resource: String, verbs: Vec<String>| {
        if verbs.is_empty() || !seen.insert((group.to_string(), resource.clone())) {
            return;
        }
        match rules.iter_mut().find(|(g, v, _)| g == group && *v == verbs) {
            Some((_, _, resources)) => resources.push(resource),
            None => rules.push((group.to_string(), verbs, vec![resource])),
        }
    };
    for t in registry.types() {
        let allowed: Vec<String> = t
            .verbs
            .iter()
            .filter(|v| !app.forbid.iter().any(|r| r.forbids(t, None, v)))
            .cloned()
            .collect();
        add(&t.group, t.plural.clone(), allowed);
        for sub in &t.subresources {
            let allowed: Vec<String> = subresource_verbs(sub)
                .iter()
                .filter(|v| !app.forbid.iter().any(|r| r.forbids(t, Some(sub), v)))
                .map(|v| v.to_string())
                .collect();
            add(&t.group, format!("{}/{sub}", t.plural), allowed);
        }
    }
    let resource_rules: Vec<Value> = rules
        .into_iter()
        .map(|(g, verbs, resources)| json!({"verbs": verbs, "apiGroups": [g], "resources": resources}))
        .collect();
    json!({"resourceRules": resource_rules, "nonResourceRules": non_resource, "incomplete": false})
}

/// The rules of a rules review under `--rbac`: the subject's rules that apply in the
/// namespace, one resource rule per resource they name.
fn rbac_rules_review(rbac: &Rbac, who: &Subject, namespace: &str) -> Value {
    let mut resource_rules = Vec::new();
    for rule in rbac.rules_for(who, namespace) {
        for spec in &rule.resources {
            let (group, resource) = spec_parts(spec);
            resource_rules
                .push(json!({"verbs": rule.verbs, "apiGroups": [group], "resources": [resource]}));
        }
    }
    json!({"resourceRules": resource_rules,
           "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi/*", "/version", "/healthz"]}],
           "incomplete": false})
}
