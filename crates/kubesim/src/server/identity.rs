//! Who a request is: its bearer token's user, or the user it impersonates
//! (`Impersonate-User` / `Impersonate-Group`, honoured only when the token's user may
//! impersonate), and simple RBAC rules from `--rbac FILE` deciding what each may do.
//! Without a rules file every authenticated user may do everything, impersonation included.

use serde::Deserialize;

use super::App;
use crate::resources::ResourceType;
use crate::status::ApiError;

/// The user kubesim's own token authenticates as, unless the rules file names another.
pub const DEFAULT_USER: &str = "kubesim";

/// The requester as authorization sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// User name (the impersonated one, when impersonating).
    pub user: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
}

/// One more bearer token and the user it authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenUser {
    /// The bearer token.
    pub token: String,
    /// Its user.
    pub user: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A rule: its subjects may use these verbs on these resources in these namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `user:NAME` or `group:NAME`.
    pub subjects: Vec<String>,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `impersonate`, or `*`.
    pub verbs: Vec<String>,
    /// `PLURAL[.GROUP][/SUBRESOURCE]` (`pods`, `pods/log`, `deployments.apps`), or `*`.
    pub resources: Vec<String>,
    /// Namespaces the rule applies in; absent or `*`: every namespace and cluster-scoped
    /// resources too (as a ClusterRoleBinding).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// The rules file of `kubecode sim --rbac FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rbac {
    /// The user kubesim's own token (the kubeconfig's) authenticates as.
    #[serde(default)]
    pub token_user: Option<String>,
    /// More tokens, each a user.
    #[serde(default)]
    pub tokens: Vec<TokenUser>,
    /// What each subject may do; anything no rule allows is refused.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl Rbac {
    /// Parses and checks a rules file.
    pub fn from_yaml(text: &str) -> Result<Rbac, String> {
        let rbac: Rbac = serde_saphyr::from_str(text).map_err(|e| {
            format!(
                "invalid RBAC file: {e}; expected tokenUser, tokens (token, user, groups) and rules (subjects, verbs, resources, namespaces)"
            )
        })?;
        for r in &rbac.rules {
            for s in &r.subjects {
                if !(s.starts_with("user:") || s.starts_with("group:")) {
                    return Err(format!(
                        "invalid RBAC subject {s:?}: write user:NAME or group:NAME"
                    ));
                }
            }
        }
        Ok(rbac)
    }

    fn binds(rule: &Rule, who: &Subject) -> bool {
        rule.subjects.iter().any(|s| {
            s.strip_prefix("user:") == Some(who.user.as_str())
                || s.strip_prefix("group:")
                    .is_some_and(|g| who.groups.iter().any(|x| x == g))
        })
    }

    /// Whether `who` may `verb` `resource` (plural, `plural/sub`) of `group` in `namespace`
    /// (`None`: cluster-scoped, or every namespace).
    pub fn allows(
        &self,
        who: &Subject,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> bool {
        self.rules.iter().any(|r| {
            Self::binds(r, who)
                && r.verbs.iter().any(|v| v == "*" || v == verb)
                && r.resources
                    .iter()
                    .any(|spec| resource_matches(spec, group, resource))
                && (r.namespaces.is_empty()
                    || r.namespaces.iter().any(|n| n == "*")
                    || namespace.is_some_and(|ns| r.namespaces.iter().any(|n| n == ns)))
        })
    }

    /// The rules that bind `who` in `namespace` (for a rules review).
    pub fn rules_for<'a>(
        &'a self,
        who: &'a Subject,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Rule> {
        self.rules.iter().filter(move |r| {
            Self::binds(r, who)
                && (r.namespaces.is_empty()
                    || r.namespaces.iter().any(|n| n == "*" || n == namespace))
        })
    }
}

/// `PLURAL[.GROUP][/SUB]` or `*` against a request's group and resource (`plural/sub`).
fn resource_matches(spec: &str, group: &str, resource: &str) -> bool {
    if spec == "*" {
        return true;
    }
    let (what, sub) = match spec.split_once('/') {
        Some((w, s)) => (w, Some(s)),
        None => (spec, None),
    };
    let (plural, g) = what.split_once('.').unwrap_or((what, ""));
    let (want_plural, want_sub) = match resource.split_once('/') {
        Some((p, s)) => (p, Some(s)),
        None => (resource, None),
    };
    (plural == "*" || plural == want_plural)
        && (g == "*" || g == group)
        && (sub == Some("*") || sub == want_sub)
}

/// The parts of a rule spec as a rules review writes them: (group, resource).
pub fn spec_parts(spec: &str) -> (String, String) {
    if spec == "*" {
        return ("*".into(), "*".into());
    }
    let (what, sub) = match spec.split_once('/') {
        Some((w, s)) => (w, Some(s)),
        None => (spec, None),
    };
    let (plural, group) = what.split_once('.').unwrap_or((what, ""));
    let resource = match sub {
        Some(s) => format!("{plural}/{s}"),
        None => plural.to_string(),
    };
    (group.to_string(), resource)
}

fn same(a: &[u8], b: &[u8]) -> bool {
    // Constant time: tokens are the only credentials.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user a bearer token authenticates, if any.
fn token_user(app: &App, headers: &http::HeaderMap) -> Option<Subject> {
    let token = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    let with = |user: &str, groups: &[String]| {
        let mut groups = groups.to_vec();
        groups.push("system:authenticated".into());
        Subject {
            user: user.to_string(),
            groups,
        }
    };
    if same(token.as_bytes(), app.token.as_bytes()) {
        let user = app
            .rbac
            .as_ref()
            .and_then(|r| r.token_user.clone())
            .unwrap_or_else(|| DEFAULT_USER.to_string());
        return Some(with(&user, &[]));
    }
    let rbac = app.rbac.as_ref()?;
    rbac.tokens
        .iter()
        .find(|t| same(token.as_bytes(), t.token.as_bytes()))
        .map(|t| with(&t.user, &t.groups))
}

/// The impersonation headers of a request: the user, and the groups.
pub fn impersonation(headers: &http::HeaderMap) -> (Option<String>, Vec<String>) {
    let user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let groups = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    (user, groups)
}

/// Authenticates a request and applies its impersonation headers: 401 without a known
/// token; 403 when the token's user may not impersonate whom the headers name.
pub fn authenticate(app: &App, headers: &http::HeaderMap) -> Result<Subject, ApiError> {
    let who = token_user(app, headers).ok_or_else(ApiError::unauthorized)?;
    let (user, groups) = impersonation(headers);
    let Some(user) = user else {
        if groups.is_empty() {
            return Ok(who);
        }
        return Err(ApiError::bad_request(format!(
            "requested {groups:?} without impersonating a user"
        )));
    };
    if let Some(rbac) = &app.rbac {
        let refuse = |resource: &str, name: &str| {
            ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{resource} \"{name}\" is forbidden: User \"{}\" cannot impersonate resource \"{resource}\" in API group \"\" at the cluster scope",
                    who.user
                ),
            )
        };
        if !rbac.allows(&who, "impersonate", "", "users", None) {
            return Err(refuse("users", &user));
        }
        if let Some(g) = groups.first()
            && !rbac.allows(&who, "impersonate", "", "groups", None)
        {
            return Err(refuse("groups", g));
        }
    }
    let mut groups = groups;
    groups.push("system:authenticated".into());
    Ok(Subject { user, groups })
}

/// Whether the subject may `verb` a resource (and subresource) in `namespace`: always
/// without a rules file.
pub fn allowed(
    app: &App,
    who: &Subject,
    verb: &str,
    rt: &ResourceType,
    subresource: Option<&str>,
    namespace: Option<&str>,
) -> bool {
    let Some(rbac) = &app.rbac else {
        return true;
    };
    let resource = match subresource {
        Some(s) => format!("{}/{s}", rt.plural),
        None => rt.plural.clone(),
    };
    rbac.allows(who, verb, &rt.group, &resource, namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_verbs_resources_and_namespaces() {
        let rbac = Rbac::from_yaml(
            "rules:\n  - subjects: [user:alice]\n    verbs: [get, list]\n    resources: [pods, pods/log, deployments.apps]\n    namespaces: [shop]\n  - subjects: [group:ops]\n    verbs: ['*']\n    resources: ['*']\n",
        )
        .unwrap();
        let alice = Subject {
            user: "alice".into(),
            groups: vec!["system:authenticated".into()],
        };
        assert!(rbac.allows(&alice, "list", "", "pods", Some("shop")));
        assert!(rbac.allows(&alice, "get", "", "pods/log", Some("shop")));
        assert!(rbac.allows(&alice, "get", "apps", "deployments", Some("shop")));
        assert!(!rbac.allows(&alice, "list", "", "pods", Some("payments")));
        assert!(!rbac.allows(&alice, "list", "", "pods", None));
        assert!(!rbac.allows(&alice, "delete", "", "pods", Some("shop")));
        assert!(!rbac.allows(&alice, "list", "", "secrets", Some("shop")));
        assert!(!rbac.allows(&alice, "get", "", "deployments", Some("shop")));
        let ops = Subject {
            user: "bob".into(),
            groups: vec!["ops".into()],
        };
        assert!(rbac.allows(&ops, "delete", "apps", "deployments", None));
        assert!(
            Rbac::from_yaml(
                "rules:\n  - subjects: [alice]\n    verbs: [get]\n    resources: [pods]\n"
            )
            .is_err()
        );
    }
}
