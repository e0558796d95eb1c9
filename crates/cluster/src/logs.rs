//! Container logs, with kubectl's container defaulting: one pod's, or those of every pod a
//! label selector matches; and the line selection (`grep`, `context`, `head`, `tailLines`)
//! the call path runs on them once they are shaped.

use std::fmt;

use futures_util::StreamExt;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Cluster;
use crate::error::{ClusterError, ErrorKind, Result};
use crate::reads::{GetQuery, ListQuery};

/// Arguments of `kubernetes.logs`, as a caller passes them (`context` is a kubeconfig
/// context when a string and lines around each match when a number).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogsArgs {
    /// Pod name (or pass labelSelector).
    #[serde(default)]
    name: Option<String>,
    /// Instead of name: every pod this label selector (e.g. app=web) matches, at most 20, a block each.
    label_selector: Option<String>,
    /// Namespace (default: the context's).
    namespace: Option<String>,
    /// Container; may be omitted when the pod has one, or names a default one.
    container: Option<String>,
    /// The previous, terminated instance.
    #[serde(default)]
    previous: bool,
    /// Last N lines (of the matching lines when grep is set).
    tail_lines: Option<u64>,
    /// First N lines (of the matching lines when grep is set); not with tailLines.
    head: Option<u64>,
    /// Only lines from the last N seconds.
    since_seconds: Option<u64>,
    /// Regular expression (Rust regex syntax: no look-around or backreferences); only matching lines are returned.
    grep: Option<String>,
    /// A number with grep: lines shown before and after each match (groups split by `--`). A string: the kubeconfig context.
    context: Option<ContextArg>,
}

/// `context`: a kubeconfig context's name, or a number of lines around each grep match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ContextArg {
    Name(String),
    Lines(u64),
}

impl<'de> Deserialize<'de> for ContextArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ContextArg;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a kubeconfig context name (a string) or, with grep, a number of lines to show around each match",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<ContextArg, E> {
                Ok(ContextArg::Name(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<ContextArg, E> {
                Ok(ContextArg::Lines(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<ContextArg, E> {
                u64::try_from(v)
                    .map(ContextArg::Lines)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<ContextArg, E> {
                if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 {
                    Ok(ContextArg::Lines(v as u64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for ContextArg {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LogsContext".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["string", "integer"], "minimum": 0})
    }
}

/// Arguments of `kubernetes.logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(from = "LogsArgs")]
pub struct LogsQuery {
    /// Pod name; empty when `label_selector` chooses the pods.
    pub name: String,
    /// Every pod this label selector matches, instead of `name`.
    pub label_selector: Option<String>,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Container; may be omitted when the pod has one, or names a default one.
    pub container: Option<String>,
    /// The previous, terminated instance.
    pub previous: bool,
    /// Last N lines (of the matching lines when `grep` is set).
    pub tail_lines: Option<u64>,
    /// First N lines (of the matching lines when `grep` is set).
    pub head: Option<u64>,
    /// Only lines from the last N seconds.
    pub since_seconds: Option<u64>,
    /// A regular expression (Rust's `regex` syntax); only matching lines are returned.
    pub grep: Option<String>,
    /// Lines shown before and after each `grep` match.
    pub context_lines: Option<u64>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

impl From<LogsArgs> for LogsQuery {
    fn from(a: LogsArgs) -> LogsQuery {
        let (context, context_lines) = match a.context {
            Some(ContextArg::Name(n)) => (Some(n), None),
            Some(ContextArg::Lines(n)) => (None, Some(n)),
            None => (None, None),
        };
        LogsQuery {
            name: a.name.unwrap_or_default(),
            label_selector: a.label_selector,
            namespace: a.namespace,
            container: a.container,
            previous: a.previous,
            tail_lines: a.tail_lines,
            head: a.head,
            since_seconds: a.since_seconds,
            grep: a.grep,
            context_lines,
            context,
        }
    }
}

/// Pods read for one label selector, at most.
pub const MAX_SELECTED_PODS: usize = 20;

/// Lines kept per pod with a label selector when neither `tailLines` nor `head` is given.
pub const DEFAULT_LINES_PER_POD: u64 = 100;

/// Pods whose logs are read at the same time, with a label selector.
const PODS_IN_FLIGHT: usize = 4;

impl LogsQuery {
    /// The label selector, when one is given (an empty one is none).
    fn selector(&self) -> Option<&str> {
        self.label_selector
            .as_deref()
            .filter(|s| !s.trim().is_empty())
    }

    /// Checks the arguments against each other, before any request: exactly one of `name`
    /// and `labelSelector`, not both `head` and `tailLines`, `context` lines only with `grep`,
    /// and a `grep` pattern the regex engine accepts.
    pub fn check(&self) -> Result<()> {
        match (self.name.is_empty(), self.selector()) {
            (true, None) => {
                return Err(ClusterError::bad_input(
                    "name",
                    "pass `name` (one pod) or `labelSelector` (every pod it matches, e.g. \"app=web\")",
                ));
            }
            (false, Some(_)) => {
                return Err(ClusterError::bad_input(
                    "labelSelector",
                    "pass either `name` (one pod) or `labelSelector` (every pod it matches), not both",
                ));
            }
            _ => {}
        }
        if self.head.is_some() && self.tail_lines.is_some() {
            return Err(ClusterError::bad_input(
                "head",
                "`head` and `tailLines` cannot be combined: `head` keeps the first N lines, `tailLines` the last N; pass one of them",
            ));
        }
        if self.context_lines.is_some() && self.grep.is_none() {
            return Err(ClusterError::bad_input(
                "context",
                "`context` as a number (lines around each match) needs `grep`; without grep use tailLines or head (a kubeconfig context is passed as a string)",
            ));
        }
        if let Some(g) = &self.grep {
            grep_pattern(g)?;
        }
        Ok(())
    }
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
        let text = e.to_string();
        let unsupported = text.contains("look-around") || text.contains("backreference");
        let advice = if unsupported {
            "`grep` uses Rust regex syntax, which has no look-around ((?=, (?!, (?<=, (?<!) and no backreferences (\\1). Grep for the part you want and drop unwanted lines afterwards (in a program: lines.filter(l => !/unwanted/.test(l))), or use a character class or alternation instead"
        } else {
            "`grep` is not a valid regular expression (Rust regex syntax)"
        };
        ClusterError::bad_input("grep", format!("{advice}: {text}"))
    })
}

/// The lines a selection keeps, as text, and what it left out.
struct Picked {
    /// The kept lines (and their context), newline-terminated; `--` between separate groups.
    text: String,
    /// Lines that matched (every line without `grep`).
    matched: usize,
    /// Matching lines left out by `head` or `tailLines`.
    dropped: usize,
}

/// Selects lines: those matching `re` (all without it), the first `head` or the last `tail`
/// of them, each with `around` lines before and after; groups that are not adjacent are
/// separated by a `--` line, as grep does, and no line is repeated.
fn pick(
    text: &str,
    re: Option<&regex::Regex>,
    around: usize,
    head: Option<u64>,
    tail: Option<u64>,
) -> Picked {
    let lines: Vec<&str> = text.lines().collect();
    let hits: Vec<usize> = match re {
        Some(re) => (0..lines.len())
            .filter(|&i| re.is_match(lines[i]))
            .collect(),
        None => (0..lines.len()).collect(),
    };
    let n = hits.len();
    let clamp = |k: u64| usize::try_from(k).unwrap_or(usize::MAX).min(n);
    let kept: &[usize] = match (head, tail) {
        (Some(h), _) => &hits[..clamp(h)],
        (None, Some(t)) => &hits[n - clamp(t)..],
        (None, None) => &hits[..],
    };
    let mut out = String::new();
    let mut last_end: Option<usize> = None;
    for &i in kept {
        let start = i.saturating_sub(around);
        let end = i.saturating_add(around).min(lines.len().saturating_sub(1));
        let from = match last_end {
            // Overlaps or touches the previous group: continue it without repeating lines.
            Some(prev) if start <= prev + 1 => prev + 1,
            // A gap: grep marks it only when it shows context lines.
            Some(_) => {
                if around > 0 {
                    out.push_str("--\n");
                }
                start
            }
            None => start,
        };
        for line in lines.iter().take(end + 1).skip(from) {
            out.push_str(line);
            out.push('\n');
        }
        last_end = Some(last_end.map_or(end, |p| p.max(end)));
    }
    Picked {
        text: out,
        matched: n,
        dropped: n - kept.len(),
    }
}

/// One pod's log as a caller asked for it: `grep` (with `context` lines), then `head` or
/// `tailLines`. The call path runs it on the log as the model would see it (redacted),
/// never on the raw log, so that whether a line matches reveals nothing more than the line
/// itself. Without any of them the text comes back as it is.
pub fn filter_log(text: &str, q: &LogsQuery) -> Result<String> {
    let re = q.grep.as_deref().map(grep_pattern).transpose()?;
    if re.is_none() && q.head.is_none() && q.tail_lines.is_none() {
        return Ok(text.to_string());
    }
    let around = usize::try_from(q.context_lines.unwrap_or(0)).unwrap_or(usize::MAX);
    Ok(pick(text, re.as_ref(), around, q.head, q.tail_lines).text)
}

/// The logs of the pods a label selector matches, as read: each pod's text untouched, for
/// the call path to shape before [`render_pod_logs`] selects lines and makes the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodLogs {
    /// The label selector.
    pub selector: String,
    /// The namespace the pods were listed in.
    pub namespace: String,
    /// How many pods matched (more than were read when over [`MAX_SELECTED_PODS`]).
    pub matched: usize,
    /// The pods read, by name.
    pub pods: Vec<PodLog>,
}

/// One pod's block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodLog {
    /// Pod name.
    pub pod: String,
    /// The container read, named when the pod has more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The log text, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Why there is no log (not scheduled, waiting to start, no previous instance, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The text of a label selector's logs: a line saying how many pods matched and were read,
/// then a block per pod headed `==> pod/NAME <==` (and its container when it has several),
/// each with `grep`/`context`/`head`/`tailLines` applied to that pod's lines alone and capped
/// at the last [`DEFAULT_LINES_PER_POD`] lines when neither `head` nor `tailLines` is given.
pub fn render_pod_logs(logs: &PodLogs, q: &LogsQuery) -> Result<String> {
    let re = q.grep.as_deref().map(grep_pattern).transpose()?;
    let around = usize::try_from(q.context_lines.unwrap_or(0)).unwrap_or(usize::MAX);
    let capped_by_default = q.head.is_none() && q.tail_lines.is_none();
    let tail = if capped_by_default {
        Some(DEFAULT_LINES_PER_POD)
    } else {
        q.tail_lines
    };
    let (sel, ns) = (&logs.selector, &logs.namespace);
    let mut out = match (logs.matched, logs.pods.len()) {
        (0, _) => format!("# no pod matches labelSelector {sel:?} in namespace {ns}\n"),
        (m, read) if m > read => format!(
            "# {m} pods match labelSelector {sel:?} in namespace {ns}; the first {read} by name are read: narrow the selector to read the others\n"
        ),
        (1, _) => format!("# 1 pod matches labelSelector {sel:?} in namespace {ns}\n"),
        (m, _) => format!("# {m} pods match labelSelector {sel:?} in namespace {ns}\n"),
    };
    for p in &logs.pods {
        match &p.container {
            Some(c) => out.push_str(&format!("==> pod/{} (container {c}) <==\n", p.pod)),
            None => out.push_str(&format!("==> pod/{} <==\n", p.pod)),
        }
        let Some(log) = &p.log else {
            let why = p.error.as_deref().unwrap_or("the log could not be read");
            out.push_str(&format!("(no log: {why})\n"));
            continue;
        };
        let picked = pick(log, re.as_ref(), around, q.head, tail);
        if picked.matched == 0 {
            out.push_str(if re.is_some() {
                "(no matching lines)\n"
            } else {
                "(empty log)\n"
            });
            continue;
        }
        // Only the default cap is announced: a caller who chose tailLines or head knows.
        if capped_by_default && picked.dropped > 0 {
            if re.is_some() {
                out.push_str(&format!(
                    "({} earlier matching lines not shown: pass tailLines or head to choose)\n",
                    picked.dropped
                ));
            } else {
                out.push_str("(earlier lines not shown: pass tailLines or head to choose)\n");
            }
        }
        out.push_str(&picked.text);
    }
    Ok(out)
}

/// What reading one container's log gave: its text, or the API server's word that there is
/// no log (yet): a pod not scheduled, a container not started, no earlier instance.
enum Read {
    Log(String),
    NoLog(String),
}

impl Cluster {
    /// One pod's container log (`name`). With `grep` or `head`, the whole log (up to the
    /// byte cap) is read and no line is selected here: see [`filter_log`].
    pub async fn logs(&self, q: &LogsQuery) -> Result<String> {
        q.check()?;
        if q.selector().is_some() {
            return Err(ClusterError::bad_input(
                "labelSelector",
                "Cluster::logs reads one pod: use Cluster::selected_logs for a label selector",
            ));
        }
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
        let tail = q
            .tail_lines
            .filter(|_| q.grep.is_none() && q.head.is_none());
        let limit = ctx.transport.limits().log_bytes;
        match self
            .read_log(q, &namespace, &q.name, &container, tail, limit)
            .await?
        {
            Read::Log(text) => Ok(text),
            Read::NoLog(message) => Err(ClusterError::not_found(format!(
                "{message}: the container has no logs to read; its pod's events say why (the events of kind Pod, name {}, namespace {namespace})",
                q.name
            ))),
        }
    }

    /// The logs of every pod `labelSelector` matches (at most [`MAX_SELECTED_PODS`], by
    /// name), read a few at a time. A pod without a log gets the reason in its block; the call
    /// fails only when no pod could be read for another reason (all forbidden, say).
    pub async fn selected_logs(&self, q: &LogsQuery) -> Result<PodLogs> {
        q.check()?;
        let Some(selector) = q.selector() else {
            return Err(ClusterError::bad_input(
                "labelSelector",
                "Cluster::selected_logs needs `labelSelector`: use Cluster::logs for one pod",
            ));
        };
        let ctx = self.context(q.context.as_deref()).await?;
        let namespace = q
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| ctx.namespace.clone());
        let mut pods = self
            .list(&ListQuery {
                kind: "pods".into(),
                namespace: Some(namespace.clone()),
                label_selector: Some(selector.to_string()),
                context: q.context.clone(),
                ..ListQuery::default()
            })
            .await?;
        let matched = pods.len();
        let pod_name = |p: &Value| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        pods.sort_by_key(pod_name);
        pods.truncate(MAX_SELECTED_PODS);
        // Without grep or head, each pod's tail is cut by the API server; one line more than
        // the default cap tells whether the cap cut anything.
        let tail = match (&q.grep, q.head, q.tail_lines) {
            (None, None, Some(n)) => Some(n),
            (None, None, None) => Some(DEFAULT_LINES_PER_POD + 1),
            _ => None,
        };
        // The byte cap is shared out among the pods, with a floor that keeps grep useful.
        let all_bytes = ctx.transport.limits().log_bytes;
        let per_pod = (all_bytes / pods.len().max(1) as u64)
            .max(512 * 1024)
            .min(all_bytes);
        let read: Vec<(PodLog, Option<ClusterError>)> = futures_util::stream::iter(pods)
            .map(|pod| {
                let namespace = namespace.as_str();
                async move { self.read_pod(q, namespace, &pod, tail, per_pod).await }
            })
            .buffered(PODS_IN_FLIGHT)
            .collect()
            .await;
        let failures = read.iter().filter(|(_, e)| e.is_some()).count();
        let first_failure = read.iter().find_map(|(_, e)| e.clone());
        let blocks: Vec<PodLog> = read.into_iter().map(|(block, _)| block).collect();
        // Every pod failed the same way (forbidden, no such container): one error says it best.
        if failures > 0
            && failures == blocks.len()
            && let Some(e) = first_failure
        {
            return Err(e);
        }
        Ok(PodLogs {
            selector: selector.to_string(),
            namespace,
            matched,
            pods: blocks,
        })
    }

    /// Reads the log of one pod a label selector matched, as its block, with the error when
    /// reading failed for another reason than the log not existing.
    async fn read_pod(
        &self,
        q: &LogsQuery,
        namespace: &str,
        pod: &Value,
        tail: Option<u64>,
        limit: u64,
    ) -> (PodLog, Option<ClusterError>) {
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // The container is named in the header only when the pod has a choice of them.
        let several = names(pod, "containers").len() > 1;
        let mut block = PodLog {
            pod: name,
            container: None,
            log: None,
            error: None,
        };
        let container = match choose_container(pod, q.container.as_deref(), &block.pod) {
            Ok(c) => c,
            Err(e) => {
                block.error = Some(e.message.clone());
                return (block, Some(e));
            }
        };
        let read = self
            .read_log(q, namespace, &block.pod, &container, tail, limit)
            .await;
        block.container = several.then_some(container);
        match read {
            Ok(Read::Log(text)) => block.log = Some(text),
            Ok(Read::NoLog(message)) => {
                block.error = Some(format!("{message}; the pod's events say why"));
            }
            Err(e) => {
                block.error = Some(e.message.clone());
                return (block, Some(e));
            }
        }
        (block, None)
    }

    /// Reads one container's log: `tail` lines cut by the API server, at most `limit` bytes.
    async fn read_log(
        &self,
        q: &LogsQuery,
        namespace: &str,
        pod: &str,
        container: &str,
        tail: Option<u64>,
        limit: u64,
    ) -> Result<Read> {
        let ctx = self.context(q.context.as_deref()).await?;
        // Built in its own scope: the serializer is not Send and must not live across an await.
        let query = {
            let mut params = form_urlencoded::Serializer::new(String::new());
            params.append_pair("container", container);
            if q.previous {
                params.append_pair("previous", "true");
            }
            if let Some(n) = tail {
                params.append_pair("tailLines", &n.to_string());
            }
            if let Some(s) = q.since_seconds {
                params.append_pair("sinceSeconds", &s.max(1).to_string());
            }
            params.append_pair("limitBytes", &limit.max(1).to_string());
            params.finish()
        };
        let path = format!("/api/v1/namespaces/{namespace}/pods/{pod}/log?{query}");
        match ctx.transport.get(&path).await {
            Ok(body) => Ok(Read::Log(String::from_utf8_lossy(&body).into_owned())),
            // The API server answers 400 for logs that do not exist (yet): nothing was wrong
            // with the arguments, so it is no input error.
            Err(e) if is_bad_request(&e) && no_logs_yet(&e.message) => {
                Ok(Read::NoLog(api_message(&e.message)))
            }
            // Any other 400 of a log read is about the container the call chose.
            Err(e) if is_bad_request(&e) => Err(ClusterError::bad_input("container", e.message)),
            Err(e) => Err(e),
        }
    }
}

fn is_bad_request(e: &ClusterError) -> bool {
    matches!(e.kind, ErrorKind::Api { status: 400, .. })
}

/// The API server's own words, without the advice the transport appended to them.
fn api_message(message: &str) -> String {
    message
        .split(" (the API server refused")
        .next()
        .unwrap_or(message)
        .to_string()
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

    fn query(args: Value) -> LogsQuery {
        serde_json::from_value(args).unwrap()
    }

    #[test]
    fn context_is_a_kubeconfig_context_or_lines() {
        let q = query(json!({"name": "p", "context": "prod"}));
        assert_eq!(
            (q.context.as_deref(), q.context_lines),
            (Some("prod"), None)
        );
        let q = query(json!({"name": "p", "grep": "x", "context": 2}));
        assert_eq!((q.context.as_deref(), q.context_lines), (None, Some(2)));
        let e = serde_json::from_value::<LogsQuery>(json!({"name": "p", "context": true}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kubeconfig context name"), "{e}");
        assert!(serde_json::from_value::<LogsQuery>(json!({"name": "p", "context": -1})).is_err());
    }

    #[test]
    fn arguments_that_conflict_are_named() {
        let field = |args: Value| match query(args).check().unwrap_err().kind {
            ErrorKind::BadInput { field } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(json!({})), "name");
        assert_eq!(
            field(json!({"name": "p", "labelSelector": "app=x"})),
            "labelSelector"
        );
        assert_eq!(
            field(json!({"name": "p", "head": 1, "tailLines": 2})),
            "head"
        );
        assert_eq!(field(json!({"name": "p", "context": 3})), "context");
        let e = query(json!({"name": "p", "head": 1, "tailLines": 2}))
            .check()
            .unwrap_err();
        assert!(e.message.contains("`head`") && e.message.contains("`tailLines`"));
        assert!(
            query(json!({"labelSelector": "app=x", "head": 5}))
                .check()
                .is_ok()
        );
    }

    #[test]
    fn look_around_names_the_syntax_and_an_alternative() {
        for pattern in ["error(?!: retry)", "(?<=user=)\\w+", "(a)\\1"] {
            let e = grep_pattern(pattern).unwrap_err();
            assert!(
                e.message.contains("Rust regex syntax") && e.message.contains("filter"),
                "{pattern}: {}",
                e.message
            );
        }
        let e = grep_pattern("(").unwrap_err();
        assert!(
            e.message.contains("not a valid regular expression"),
            "{}",
            e.message
        );
    }

    #[test]
    fn context_groups_are_separated_and_never_repeat_a_line() {
        let text: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let q = |args: Value| {
            let mut a = json!({"name": "p"});
            a.as_object_mut()
                .unwrap()
                .extend(args.as_object().unwrap().clone());
            query(a)
        };
        // Matches at 3, 5 (overlapping groups merge) and 15 (a separate group).
        let out = filter_log(&text, &q(json!({"grep": "^line (3|5|15)$", "context": 1}))).unwrap();
        assert_eq!(
            out,
            "line 2\nline 3\nline 4\nline 5\nline 6\n--\nline 14\nline 15\nline 16\n"
        );
        // Adjacent groups (4's ends at 5, 6's starts at 5... and 8) join without a separator.
        let out = filter_log(&text, &q(json!({"grep": "^line (1|3)$", "context": 1}))).unwrap();
        assert_eq!(out, "line 1\nline 2\nline 3\nline 4\n");
        let out = filter_log(&text, &q(json!({"grep": "^line (1|4)$", "context": 1}))).unwrap();
        assert_eq!(
            out, "line 1\nline 2\nline 3\nline 4\nline 5\n",
            "touching groups"
        );
        // head and tailLines count matches; their context comes with them.
        let out = filter_log(
            &text,
            &q(json!({"grep": "^line 1[0-9]$", "head": 2, "context": 1})),
        )
        .unwrap();
        assert_eq!(out, "line 9\nline 10\nline 11\nline 12\n");
        let out = filter_log(&text, &q(json!({"grep": "^line 1", "tailLines": 1}))).unwrap();
        assert_eq!(out, "line 19\n");
        assert_eq!(
            filter_log(&text, &q(json!({"head": 2}))).unwrap(),
            "line 1\nline 2\n"
        );
        assert_eq!(filter_log(&text, &q(json!({}))).unwrap(), text);
        assert_eq!(
            filter_log(&text, &q(json!({"grep": "nothing"}))).unwrap(),
            ""
        );
        assert_eq!(
            filter_log(&text, &q(json!({"grep": "^line (2|9)$"}))).unwrap(),
            "line 2\nline 9\n",
            "no separators without context lines"
        );
    }

    #[test]
    fn selected_logs_render_a_block_per_pod() {
        let logs = PodLogs {
            selector: "app=web".into(),
            namespace: "shop".into(),
            matched: 25,
            pods: vec![
                PodLog {
                    pod: "web-a".into(),
                    container: None,
                    log: Some((1..=150).map(|i| format!("a {i}\n")).collect()),
                    error: None,
                },
                PodLog {
                    pod: "web-b".into(),
                    container: Some("app".into()),
                    log: None,
                    error: Some("pod web-b does not have a host assigned".into()),
                },
            ],
        };
        let text = render_pod_logs(&logs, &query(json!({"labelSelector": "app=web"}))).unwrap();
        assert!(
            text.starts_with("# 25 pods match labelSelector \"app=web\" in namespace shop; the first 2 by name are read"),
            "{text}"
        );
        assert!(
            text.contains("==> pod/web-a <==\n(earlier lines not shown"),
            "{text}"
        );
        assert!(
            text.contains("a 51\n") && !text.contains("a 50\n"),
            "the last 100 lines"
        );
        assert!(text.contains(
            "==> pod/web-b (container app) <==\n(no log: pod web-b does not have a host assigned)\n"
        ));
        let text = render_pod_logs(
            &logs,
            &query(json!({"labelSelector": "app=web", "grep": "^a 1[0-9]$", "head": 3})),
        )
        .unwrap();
        assert!(
            text.contains("==> pod/web-a <==\na 10\na 11\na 12\n==> pod/web-b"),
            "{text}"
        );
    }
}
