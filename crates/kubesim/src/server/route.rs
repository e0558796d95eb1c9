//! Turning a request path into what it addresses, as the API server's path layout has it.

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    Api,
    /// `/apis`.
    Apis,
    /// `/apis/GROUP`.
    Group(String),
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    GroupVersion {
        /// Group (empty for core).
        group: String,
        /// Version.
        version: String,
    },
    /// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/GROUP-VERSION-PATH`.
    OpenApi(super::openapi::Which),
    /// A resource collection, an object, or an object's subresource.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

/// A resource request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// Group (empty for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace from `/namespaces/NS/...`.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`log`, `status`, `scale`).
    pub subresource: Option<String>,
}

/// Parses a URL path.
pub fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["openapi", "v2"] => Route::OpenApi(super::openapi::Which::V2),
        ["openapi", "v3"] => Route::OpenApi(super::openapi::Which::V3Root),
        ["openapi", "v3", rest @ ..] => Route::OpenApi(super::openapi::Which::V3(rest.join("/"))),
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["api", version] => Route::GroupVersion {
            group: String::new(),
            version: version.to_string(),
        },
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let build = |namespace: Option<&str>, parts: &[&str]| {
        let (plural, name, subresource) = match parts {
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, Some(*name), None),
            [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
            _ => return Route::Unknown,
        };
        Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: subresource.map(str::to_string),
        })
    };
    match rest {
        // `namespaces/NAME/status` and `/finalize` are subresources of a namespace.
        ["namespaces", _, "status" | "finalize"] => build(None, rest),
        ["namespaces", ns, parts @ ..] if !parts.is_empty() => build(Some(ns), parts),
        parts => build(None, parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_parse_like_the_api_server() {
        let r = res("/api/v1/namespaces/kube-system/pods/coredns/log");
        assert_eq!(
            (
                r.plural.as_str(),
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("pods", Some("kube-system"), Some("coredns"), Some("log"))
        );
        let r = res("/apis/apps/v1/deployments");
        assert_eq!(
            (r.group.as_str(), r.namespace, r.name),
            ("apps", None, None)
        );
        let r = res("/api/v1/namespaces/default");
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref()),
            ("namespaces", Some("default"))
        );
        let r = res("/api/v1/namespaces/default/status");
        assert_eq!(
            (r.plural.as_str(), r.subresource.as_deref()),
            ("namespaces", Some("status"))
        );
        assert_eq!(parse("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(parse("/api/v1/a/b/c/d"), Route::Unknown);
    }
}
