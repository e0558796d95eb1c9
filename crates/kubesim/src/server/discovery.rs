//! Legacy (non-aggregated) API discovery: `/version`, `/api`, `/apis`, and resource lists.
//! Clients that ask for aggregated discovery fall back to it, as the `Content-Type` says.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceType};

/// The Kubernetes version kubesim reports.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "31");

/// `/version`.
pub fn version() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({
        "major": major, "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-kubesim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22.0", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn api_versions(url: &str) -> Value {
    let address = url.trim_start_matches("https://");
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]})
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": entries, "preferredVersion": entries.first().cloned().unwrap_or_default()})
}

/// `/apis`.
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, versions)| group_entry(g, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (g, versions) = registry.groups().into_iter().find(|(g, _)| g == name)?;
    let mut v = group_entry(&g, &versions);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

fn resource_entry(t: &ResourceType) -> Value {
    let mut v = json!({
        "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
        "kind": t.kind, "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        v["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        v["categories"] = json!(t.categories);
    }
    v
}

/// The verbs a subresource answers.
pub fn subresource_verbs(sub: &str) -> &'static [&'static str] {
    match sub {
        "log" => &["get"],
        _ => &["get", "patch", "update"],
    }
}

fn subresource_entry(t: &ResourceType, sub: &str) -> Value {
    let name = format!("{}/{sub}", t.plural);
    let verbs = subresource_verbs(sub);
    match sub {
        "scale" => {
            json!({"name": name, "singularName": "", "namespaced": t.namespaced, "group": "autoscaling",
                          "version": "v1", "kind": "Scale", "verbs": verbs})
        }
        _ => json!({"name": name, "singularName": "", "namespaced": t.namespaced, "kind": t.kind,
                    "verbs": verbs}),
    }
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in types {
        resources.push(resource_entry(t));
        resources.extend(t.subresources.iter().map(|s| subresource_entry(t, s)));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}
