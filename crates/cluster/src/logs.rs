//! Container logs, with kubectl's container defaulting, and the `grep` filter the call path runs on them.

use serde::Deserialize;
use serde_json::Value;

use crate::Cluster;
use crate::error::{ClusterError, ErrorKind, Result};
use crate::reads::GetQuery;

/// Arguments of `kubernetes.logs`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsQuery {
    /// Pod name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Container; may be omitted when the pod has one, or names a default one.
    pub container: Option<String>,
    /// The previous, terminated instance.
    #[serde(default)]
    pub previous: bool,
    /// Last N lines (of the matching lines when `grep` is set).
    pub tail_lines: Option<u64>,
    /// Only lines from the last N seconds.
    pub since_seconds: Option<u64>,
    /// A regular expression; only matching lines are returned.
    pub grep: Option<String>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// The annotation kubectl reads to pick a container.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Picks the container as kubectl does: the one named, the annotated default, or the only one.
fn choose_container(pod: &Value, asked: Option<&str>, pod_name: &str) -> Result<String> {
    let containers = names(pod, "containers");
    let inits = names(pod, "initContainers");
    if let Some(c) = asked.filter(|c| !c.is_empty()) {
        if containers.iter().chain(&inits).any(|x| x == c)
            || names(pod, "ephemeralContainers").iter().any(|x| x == c)
        {
            return Ok(c.to_string());
        }
        return Err(ClusterError::bad_input(
            "container",
            format!(
                "pod {pod_name:?} has no container {c:?}; its containers: {}",
                containers.join(", ")
            ),
        ));
    }
    if let Some(d) = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DEFAULT_CONTAINER))
        .and_then(Value::as_str)
        && containers.iter().any(|c| c == d)
    {
        return Ok(d.to_string());
    }
    match containers.as_slice() {
        [only] => Ok(only.clone()),
        _ => {
            let mut message = format!(
                "pod {pod_name:?} has {} containers: pass `container`, one of: {}",
                containers.len(),
                containers.join(", ")
            );
            if !inits.is_empty() {
                message.push_str(&format!(" (init containers: {})", inits.join(", ")));
            }
            Err(ClusterError::bad_input("container", message))
        }
    }
}

fn grep_pattern(grep: &str) -> Result<regex::Regex> {
    regex::Regex::new(grep).map_err(|e| {
        ClusterError::bad_input(
            "grep",
            format!("`grep` is not a valid regular expression: {e}"),
        )
    })
}

/// `grep` and, with it, `tailLines`: the matching lines of a log, the last `tailLines` of
/// them. The caller runs it on the log as the model would see it (redacted), never on the
/// raw log, so that whether a line matches reveals nothing more than the line itself.
pub fn grep_lines(text: &str, q: &LogsQuery) -> Result<String> {
    let Some(grep) = &q.grep else {
        return Ok(text.to_string());
    };
    let re = grep_pattern(grep)?;
    let matching: Vec<&str> = text.lines().filter(|l| re.is_match(l)).collect();
    let skip = q
        .tail_lines
        .map_or(0, |n| matching.len().saturating_sub(n as usize));
    let mut out = matching[skip..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

impl Cluster {
    /// A container's log text. With `grep`, the whole log (up to the byte cap) is read and
    /// no line is filtered here: see [`grep_lines`].
    pub async fn logs(&self, q: &LogsQuery) -> Result<String> {
        // A bad pattern fails before any request.
        let grep = q.grep.as_deref().map(grep_pattern).transpose()?;
        let pod = self
            .get(&GetQuery {
                kind: "pods".into(),
                name: q.name.clone(),
                namespace: q.namespace.clone(),
                context: q.context.clone(),
                ..GetQuery::default()
            })
            .await?;
        let container = choose_container(&pod, q.container.as_deref(), &q.name)?;
        let ctx = self.context(q.context.as_deref()).await?;
        let namespace = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| ctx.namespace.clone());
        // Built in its own scope: the serializer is not Send and must not live across an await.
        let query = {
            let mut params = form_urlencoded::Serializer::new(String::new());
            params.append_pair("container", &container);
            if q.previous {
                params.append_pair("previous", "true");
            }
            if let (Some(n), None) = (q.tail_lines, &grep) {
                params.append_pair("tailLines", &n.to_string());
            }
            if let Some(s) = q.since_seconds {
                params.append_pair("sinceSeconds", &s.max(1).to_string());
            }
            params.append_pair("limitBytes", &ctx.transport.limits().log_bytes.to_string());
            params.finish()
        };
        let path = format!("/api/v1/namespaces/{namespace}/pods/{}/log?{query}", q.name);
        let body = ctx.transport.get(&path).await.map_err(|e| match e.kind {
            // The API server answers 400 for logs that do not exist (yet): nothing was wrong
            // with the arguments, so it is no input error; say where to look instead.
            ErrorKind::BadInput { .. } if no_logs_yet(&e.message) => ClusterError::not_found(format!(
                "{}: the container has no logs to read; its pod's events say why (the events of kind Pod, name {}, namespace {namespace})",
                e.message, q.name
            )),
            ErrorKind::BadInput { .. } => ClusterError::bad_input("container", e.message),
            _ => e,
        })?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// Whether an API server's 400 on a log read says the log does not exist: a pod not
/// scheduled yet, a container not started, or no earlier container to read `previous` of.
fn no_logs_yet(message: &str) -> bool {
    message.contains("does not have a host assigned")
        || message.contains("is waiting to start")
        || (message.contains("previous terminated container") && message.contains("not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_default_like_kubectl() {
        let one = json!({"spec": {"containers": [{"name": "app"}]}});
        assert_eq!(choose_container(&one, None, "p").unwrap(), "app");
        let two = json!({"metadata": {}, "spec": {"containers": [{"name": "app"}, {"name": "proxy"}], "initContainers": [{"name": "init"}]}});
        let e = choose_container(&two, None, "p").unwrap_err();
        assert!(
            e.message.contains("app, proxy") && e.message.contains("init"),
            "{}",
            e.message
        );
        assert_eq!(choose_container(&two, Some("init"), "p").unwrap(), "init");
        let annotated = json!({"metadata": {"annotations": {DEFAULT_CONTAINER: "proxy"}},
                               "spec": {"containers": [{"name": "app"}, {"name": "proxy"}]}});
        assert_eq!(choose_container(&annotated, None, "p").unwrap(), "proxy");
        assert!(choose_container(&one, Some("nope"), "p").is_err());
    }
}
