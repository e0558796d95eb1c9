//! API discovery and kind resolution: `Pod`, `pods`, `po`, `deployments.apps` and custom
//! resources all name a resource, as they do for kubectl.

use serde::Serialize;
use serde_json::Value;

use crate::error::{ClusterError, Result};
use crate::transport::Transport;

/// A resource the API server serves.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ApiResource {
    /// Kind (`Deployment`).
    pub kind: String,
    /// Plural name (`deployments`).
    pub name: String,
    /// Group; empty for core.
    pub group: String,
    /// The group's preferred version.
    pub version: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    #[serde(rename = "shortNames")]
    pub short_names: Vec<String>,
    /// Singular name, when the server reports one.
    #[serde(skip)]
    pub singular: String,
    /// Verbs served.
    #[serde(skip)]
    pub verbs: Vec<String>,
}

impl ApiResource {
    /// `apiVersion` of the objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The URL path of the collection, in a namespace or across all.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.name),
            _ => format!("{base}/{}", self.name),
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn resources_of(list: &Value, group: &str, version: &str, out: &mut Vec<ApiResource>) {
    for r in list
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || name.contains('/') {
            continue;
        }
        out.push(ApiResource {
            kind: r
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            name: name.to_string(),
            group: group.to_string(),
            version: version.to_string(),
            namespaced: r
                .get("namespaced")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            short_names: strings(r.get("shortNames")),
            singular: r
                .get("singularName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            verbs: strings(r.get("verbs")),
        });
    }
}

/// Reads every group's preferred version (as kubectl does) and its resources.
pub async fn discover(transport: &Transport) -> Result<Vec<ApiResource>> {
    let mut out = Vec::new();
    let core = transport.get_json("/api/v1").await?;
    resources_of(&core, "", "v1", &mut out);
    let groups = transport.get_json("/apis").await?;
    for g in groups
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = g.get("name").and_then(Value::as_str).unwrap_or("");
        let version = g
            .pointer("/preferredVersion/version")
            .or_else(|| g.pointer("/versions/0/version"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() || version.is_empty() {
            continue;
        }
        // A group that fails discovery (an aggregated API that is down) is skipped, as kubectl does.
        match transport.get_json(&format!("/apis/{name}/{version}")).await {
            Ok(list) => resources_of(&list, name, version, &mut out),
            Err(e) => tracing::warn!("skipping API group {name}/{version}: {e}"),
        }
    }
    Ok(out)
}

/// Finds the resource a kind string names. Returns `None` when nothing matches.
pub fn resolve<'a>(resources: &'a [ApiResource], kind: &str) -> Option<&'a ApiResource> {
    let wanted = kind.trim().to_ascii_lowercase();
    let (name, group) = match wanted.split_once('.') {
        Some((n, g)) => (n.to_string(), Some(g.to_string())),
        None => (wanted.clone(), None),
    };
    let matches = |r: &&ApiResource| {
        group.as_deref().is_none_or(|g| r.group == g)
            && (r.name == name
                || r.singular == name
                || r.kind.to_ascii_lowercase() == name
                || r.short_names.contains(&name))
    };
    // Core first, then the built-in groups kubectl prefers, then everything else in discovery order.
    let priority = |r: &ApiResource| match r.group.as_str() {
        "" => 0,
        "apps" => 1,
        g if g.ends_with(".k8s.io") || !g.contains('.') => 2,
        _ => 3,
    };
    resources.iter().filter(matches).min_by_key(|r| priority(r))
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The error for an unknown kind, naming the closest kinds the server has.
pub fn unknown_kind(resources: &[ApiResource], kind: &str) -> ClusterError {
    let wanted = kind.to_ascii_lowercase();
    let mut scored: Vec<(usize, &ApiResource)> = resources
        .iter()
        .map(|r| {
            let d = [r.name.as_str(), &r.kind.to_ascii_lowercase()]
                .iter()
                .map(|n| distance(&wanted, n))
                .min()
                .unwrap_or(usize::MAX);
            (d, r)
        })
        .collect();
    scored.sort_by_key(|(d, r)| (*d, r.name.clone()));
    let near: Vec<String> = scored.iter().take(5).map(|(_, r)| r.kind.clone()).collect();
    ClusterError::not_found(format!(
        "the cluster serves no kind {kind:?}; closest: {}. Call kubernetes.apiResources() to list every kind",
        near.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: &str, name: &str, group: &str, short: &[&str]) -> ApiResource {
        ApiResource {
            kind: kind.into(),
            name: name.into(),
            group: group.into(),
            version: "v1".into(),
            namespaced: true,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            singular: kind.to_lowercase(),
            verbs: vec![],
        }
    }

    #[test]
    fn kinds_resolve_like_kubectl() {
        let all = vec![
            r("Event", "events", "events.k8s.io", &["ev"]),
            r("Pod", "pods", "", &["po"]),
            r("Event", "events", "", &["ev"]),
            r("Deployment", "deployments", "apps", &["deploy"]),
            r("Widget", "widgets", "example.com", &["wd"]),
        ];
        for (input, want) in [
            ("Pod", "pods"),
            ("pods", "pods"),
            ("po", "pods"),
            ("pod", "pods"),
            ("deploy", "deployments"),
            ("deployments.apps", "deployments"),
            ("wd", "widgets"),
            ("widgets.example.com", "widgets"),
        ] {
            assert_eq!(
                resolve(&all, input).map(|r| r.name.as_str()),
                Some(want),
                "{input}"
            );
        }
        assert_eq!(
            resolve(&all, "ev").unwrap().group,
            "",
            "core wins over events.k8s.io"
        );
        assert_eq!(
            resolve(&all, "events.events.k8s.io").unwrap().group,
            "events.k8s.io"
        );
        assert!(resolve(&all, "deployments.example.com").is_none());
        let e = unknown_kind(&all, "Deploymnt");
        assert!(e.message.contains("closest: Deployment"), "{}", e.message);
    }
}
