//! Refusing requests with 403 Forbidden, to stand in for RBAC in tests.

use crate::resources::ResourceType;

/// A rule `RESOURCE[:VERB]`: `secrets`, `pods/log`, `deployments.apps:delete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbidRule {
    resource: String,
    group: Option<String>,
    subresource: Option<String>,
    verb: Option<String>,
}

impl ForbidRule {
    /// Parses `RESOURCE[.GROUP][/SUBRESOURCE][:VERB]`.
    pub fn parse(spec: &str) -> Result<ForbidRule, String> {
        let (what, verb) = match spec.split_once(':') {
            Some((w, v)) => (w, Some(v.to_string())),
            None => (spec, None),
        };
        let (resource, subresource) = match what.split_once('/') {
            Some((r, s)) => (r, Some(s.to_string())),
            None => (what, None),
        };
        let (resource, group) = match resource.split_once('.') {
            Some((r, g)) => (r, Some(g.to_string())),
            None => (resource, None),
        };
        if resource.is_empty() || !resource.chars().all(|c| c.is_ascii_lowercase() || c == '*') {
            return Err(format!(
                "invalid forbid rule {spec:?}: expected RESOURCE[.GROUP][/SUBRESOURCE][:VERB], e.g. secrets or pods/log:get"
            ));
        }
        Ok(ForbidRule {
            resource: resource.to_string(),
            group,
            subresource,
            verb,
        })
    }

    /// Whether the rule refuses some of what an access review asks about: `verb` on
    /// `resource` (and `subresource`) of `group`, where `*` in the review stands for any.
    pub fn overlaps(&self, group: &str, resource: &str, subresource: &str, verb: &str) -> bool {
        let sub = (!subresource.is_empty()).then_some(subresource);
        (self.resource == "*" || resource == "*" || self.resource == resource)
            && self
                .group
                .as_deref()
                .is_none_or(|g| group == "*" || g == group)
            && self.subresource.as_deref() == sub
            && self
                .verb
                .as_deref()
                .is_none_or(|v| verb == "*" || v == verb)
    }

    /// Whether the rule refuses `verb` on `rt` (and `subresource`).
    pub fn forbids(&self, rt: &ResourceType, subresource: Option<&str>, verb: &str) -> bool {
        (self.resource == "*" || self.resource == rt.plural)
            && self.group.as_deref().is_none_or(|g| g == rt.group)
            && self.subresource.as_deref() == subresource
            && self.verb.as_deref().is_none_or(|v| v == verb)
    }
}

impl std::fmt::Display for ForbidRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.resource)?;
        if let Some(g) = &self.group {
            write!(f, ".{g}")?;
        }
        if let Some(s) = &self.subresource {
            write!(f, "/{s}")?;
        }
        if let Some(v) = &self.verb {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}
