//! `diagnose.helmDrift`: a Helm release's manifest against the live objects: objects that are
//! missing, and fields that differ. Only the paths the manifest sets are compared, so whatever
//! the API server defaults (or other controllers add) is no drift; quantities and numbers
//! written as strings compare by value. When the live object's managedFields say which
//! manager (other than Helm) last set a drifted field, the finding names it and when.

use base64::Engine;
use chrono::Utc;
use cluster::{Cluster, ClusterError, ErrorKind, GetQuery, HelmGetQuery};
use serde::Deserialize;
use serde_json::Value;

use crate::finding::{Finding, ObjectRef, Report};
use crate::util::{at, cut, item_key, quantity, s, show};

/// Arguments of `diagnose.helmDrift`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmDriftQuery {
    /// The Helm release's name.
    pub name: String,
    /// The release's namespace (default: the context's).
    pub namespace: Option<String>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Objects of one release compared at most.
const MAX_OBJECTS: usize = 60;
/// Differing fields listed per object.
const MAX_DRIFTS: usize = 10;

/// One field whose live value differs from the manifest's.
#[derive(Debug, Clone, PartialEq)]
struct Drift {
    path: String,
    want: String,
    live: String,
}

/// Diagnoses a Helm release's drift.
pub async fn helm_drift(c: &Cluster, q: &HelmDriftQuery) -> Result<Report, ClusterError> {
    let context = q.context.as_deref();
    let release = c
        .helm_get(&HelmGetQuery {
            name: q.name.clone(),
            namespace: q.namespace.clone(),
            context: q.context.clone(),
            ..Default::default()
        })
        .await?;
    let now = c.server_now(context).await.unwrap_or_else(|_| Utc::now());
    let r = &release.summary;
    let mut report = Report::default();
    report.check(format!(
        "Helm release {}/{} revision {} ({}, {}): {} objects in its manifest",
        r.namespace,
        r.name,
        r.revision,
        r.chart,
        r.status,
        release.objects.len()
    ));
    if r.status != "deployed" {
        let mut f = Finding::new(
            ObjectRef {
                kind: "HelmRelease".into(),
                name: r.name.clone(),
                namespace: Some(r.namespace.clone()),
            },
            format!(
                "the latest revision {} is {}, not deployed",
                r.revision, r.status
            ),
        );
        if let Some(d) = &r.description {
            f.evidence(format!("description: {}", cut(d, 200)));
        }
        report.findings.push(f.hint(
            "helm.history shows the revisions; a failed or pending upgrade explains differences with the live objects",
        ));
    }
    let mut compared = 0;
    let mut same = 0;
    for want in release.objects.iter().take(MAX_OBJECTS) {
        let kind = s(want, "/kind");
        let name = s(want, "/metadata/name");
        if kind.is_empty() || name.is_empty() {
            continue;
        }
        let namespace = match s(want, "/metadata/namespace") {
            "" => r.namespace.clone(),
            ns => ns.to_string(),
        };
        let get = GetQuery {
            kind: kind.into(),
            name: name.into(),
            namespace: Some(namespace.clone()),
            context: q.context.clone(),
            ..Default::default()
        };
        compared += 1;
        let live = match c.get(&get).await {
            Ok(l) => l,
            Err(e) if e.kind == ErrorKind::NotFound => {
                let mut f = Finding::new(
                    object_ref(kind, name, &live_namespace(&namespace, &e)),
                    format!(
                        "missing: in Helm release {} (revision {}) but not in the cluster",
                        r.name, r.revision
                    ),
                );
                f.evidence(cut(&e.message, 160));
                report.findings.push(f.hint(format!(
                    "It was deleted, or never created: `helm upgrade` or `helm rollback {} {}` recreates it",
                    r.name, r.revision
                )));
                continue;
            }
            Err(e) => {
                report.check(format!(
                    "{kind} {namespace}/{name} could not be read ({}): not compared",
                    e.kind.code()
                ));
                continue;
            }
        };
        let mut drifts = Vec::new();
        compare_object(want, &live, &mut drifts);
        if drifts.is_empty() {
            same += 1;
            continue;
        }
        let object = ObjectRef::of(&live, kind);
        let managers = match c.managed_fields(&get).await {
            Ok(m) => managers(&m),
            Err(_) => Vec::new(),
        };
        let mut f = Finding::new(
            object,
            format!(
                "drifted from Helm release {} revision {}: {} field{} differ{}",
                r.name,
                r.revision,
                drifts.len(),
                if drifts.len() == 1 { "" } else { "s" },
                if drifts.len() == 1 { "s" } else { "" }
            ),
        );
        let mut by_hand = Vec::new();
        for d in drifts.iter().take(MAX_DRIFTS) {
            let mut line = format!("{}: release {}, live {}", d.path, d.want, d.live);
            if let Some((manager, operation, time)) = owner_of(&managers, &d.path) {
                line.push_str(&format!(" (set by {manager}, {operation}"));
                if !time.is_empty() {
                    line.push_str(&format!(", {}", at(now, &time)));
                }
                line.push(')');
                if !by_hand.contains(&manager) {
                    by_hand.push(manager);
                }
            }
            f.evidence(line);
        }
        if managers.is_empty() {
            f.evidence(
                "the live object records no field managers (metadata.managedFields is empty): who changed it cannot be told from the cluster",
            );
        }
        if drifts.len() > MAX_DRIFTS {
            f.evidence(format!("and {} more fields", drifts.len() - MAX_DRIFTS));
        }
        let who = if by_hand.is_empty() {
            String::new()
        } else {
            format!(" by {}", by_hand.join(", "))
        };
        report.findings.push(f.hint(format!(
            "Changed outside Helm{who}: the next `helm upgrade` reverts it; to keep the change, put it in the chart's values"
        )));
    }
    report.check(format!(
        "{compared} objects compared with the live ones (only the fields the manifest sets; API defaults ignored): {same} match"
    ));
    if release.objects.len() > MAX_OBJECTS {
        report.check(format!(
            "{} more objects not compared (cap {MAX_OBJECTS})",
            release.objects.len() - MAX_OBJECTS
        ));
    }
    Ok(report.cap())
}

fn object_ref(kind: &str, name: &str, namespace: &Option<String>) -> ObjectRef {
    ObjectRef {
        kind: kind.into(),
        name: name.into(),
        namespace: namespace.clone(),
    }
}

/// The namespace a missing object would have had (none for cluster-scoped kinds, which the
/// NotFound message then does not place in a namespace).
fn live_namespace(namespace: &str, e: &ClusterError) -> Option<String> {
    e.message
        .contains("in namespace")
        .then(|| namespace.to_string())
}

/// Compares the fields a manifest object sets (`spec`, `data`, labels, annotations, ...)
/// with the live object.
fn compare_object(want: &Value, live: &Value, out: &mut Vec<Drift>) {
    let Some(fields) = want.as_object() else {
        return;
    };
    for (k, v) in fields {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for m in ["labels", "annotations"] {
                    if let Some(w) = v.get(m) {
                        compare(
                            w,
                            live.pointer(&format!("/metadata/{m}")),
                            &format!("metadata.{m}"),
                            out,
                        );
                    }
                }
            }
            "data" | "stringData" if want.get("kind").and_then(Value::as_str) == Some("Secret") => {
                secret_keys(k, v, live, out)
            }
            _ => compare(v, live.get(k), k, out),
        }
    }
}

/// A Secret's `data` / `stringData` from the manifest against the live `data`, by key only:
/// whether each value is there and equal, never the values themselves.
fn secret_keys(field: &str, want: &Value, live: &Value, out: &mut Vec<Drift>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(keys) = want.as_object() else {
        return;
    };
    for (key, value) in keys {
        let live_value = live
            .pointer("/data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str);
        let wanted = value.as_str().unwrap_or("");
        let equal = match live_value {
            None => None,
            // stringData holds plain text; the live object keeps it base64-encoded in data.
            Some(l) if field == "stringData" => {
                Some(b64.decode(l).is_ok_and(|b| b == wanted.as_bytes()))
            }
            Some(l) => Some(l == wanted),
        };
        let live_text = match equal {
            None => "(not set)",
            Some(true) => continue,
            Some(false) => "a different value (Secret values are not shown)",
        };
        out.push(Drift {
            path: format!("{field}.{key}"),
            want: "a value".into(),
            live: live_text.into(),
        });
    }
}

fn compare(want: &Value, live: Option<&Value>, path: &str, out: &mut Vec<Drift>) {
    let drift = |out: &mut Vec<Drift>| {
        out.push(Drift {
            path: path.to_string(),
            want: show(Some(want)),
            live: show(live),
        })
    };
    match want {
        Value::Null => {}
        Value::Object(m) => {
            if m.is_empty() {
                return;
            }
            let Some(Value::Object(l)) = live else {
                return drift(out);
            };
            for (k, v) in m {
                // Label and annotation keys hold dots and slashes: bracket them.
                let p = if k.contains('.') || k.contains('/') {
                    format!("{path}[{k}]")
                } else {
                    format!("{path}.{k}")
                };
                compare(v, l.get(k), &p, out);
            }
        }
        Value::Array(items) => {
            let Some(Value::Array(l)) = live else {
                if items.is_empty() {
                    return;
                }
                return drift(out);
            };
            let keyed = !items.is_empty() && items.iter().all(|i| item_key(i).is_some());
            if keyed {
                for item in items {
                    let key = item_key(item);
                    let p = format!("{path}[{}]", key.clone().unwrap_or_default());
                    match l.iter().find(|i| item_key(i) == key) {
                        Some(found) => compare(item, Some(found), &p, out),
                        None => out.push(Drift {
                            path: p,
                            want: show(Some(item)),
                            live: "(not there)".into(),
                        }),
                    }
                }
            } else if items.iter().all(Value::is_object) && items.len() == l.len() {
                for (i, item) in items.iter().enumerate() {
                    compare(item, l.get(i), &format!("{path}[{i}]"), out);
                }
            } else if items.len() != l.len() || items.iter().zip(l).any(|(a, b)| !same_scalar(a, b))
            {
                drift(out);
            }
        }
        scalar => {
            if !live.is_some_and(|l| same_scalar(scalar, l)) {
                drift(out);
            }
        }
    }
}

/// Equal as Kubernetes means them: `8080` and `"8080"`, `"1"` and `"1000m"`, `"1Gi"` and
/// `"1024Mi"` are the same value.
fn same_scalar(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(t) => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match (text(a), text(b)) {
        (Some(x), Some(y)) if x == y => true,
        (Some(x), Some(y)) => match (quantity(&x), quantity(&y)) {
            (Some(p), Some(q)) => (p - q).abs() <= f64::EPSILON * p.abs().max(1.0),
            _ => false,
        },
        _ => false,
    }
}

/// One manager's entry of managedFields: (manager, operation, time, the paths it owns).
type Manager = (String, String, String, Vec<String>);

/// managedFields as paths in the notation drifts use (`spec.template.spec.containers[web].image`).
fn managers(managed: &[Value]) -> Vec<Manager> {
    managed
        .iter()
        .map(|m| {
            let paths = cluster::managed_paths(m)
                .iter()
                .map(|p| drift_notation(p))
                .collect();
            (
                s(m, "/manager").to_string(),
                s(m, "/operation").to_string(),
                s(m, "/time").to_string(),
                paths,
            )
        })
        .collect()
}

/// A managed path (`containers[name=web]`, `annotations["a.b/c"]`) in the notation of
/// drifts (`containers[web]`, `annotations[a.b/c]`): a keyed item by its key, as
/// [`item_key`] picks it.
fn drift_notation(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let inside = &rest[open + 1..close];
        let key = if let Some(quoted) = inside.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
            quoted.to_string()
        } else if inside.contains('=') {
            let pairs: serde_json::Map<String, Value> = inside
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            item_key(&Value::Object(pairs)).unwrap_or_else(|| inside.to_string())
        } else {
            inside.to_string()
        };
        out.push('[');
        out.push_str(&key);
        out.push(']');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The manager other than Helm that last set `path`, if any.
fn owner_of(managers: &[Manager], path: &str) -> Option<(String, String, String)> {
    // managedFields list every leaf a manager set, so a drifted leaf is owned by exact path.
    let owns = |paths: &[String]| paths.iter().any(|p| p == path);
    managers
        .iter()
        .filter(|(manager, ..)| !manager.to_ascii_lowercase().starts_with("helm"))
        .filter(|(.., paths)| owns(paths))
        .max_by(|a, b| a.2.cmp(&b.2))
        .map(|(m, op, t, _)| (m.clone(), op.clone(), t.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_fields_the_manifest_sets_are_compared() {
        let want = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:2", "ports": [{"containerPort": 8080}],
                 "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}}});
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web", "extra": "x"}, "uid": "u"},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 600, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:2-hotfix", "imagePullPolicy": "IfNotPresent",
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "resources": {"requests": {"cpu": "1000m", "memory": "1024Mi"}}}]}}},
            "status": {"replicas": 1}});
        let mut out = Vec::new();
        compare_object(&want, &live, &mut out);
        let paths: Vec<&str> = out.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.replicas", "spec.template.spec.containers[web].image"]
        );
        assert_eq!(out[0].want, "3");
        assert_eq!(out[0].live, "1");
    }

    #[test]
    fn secret_values_are_compared_but_never_shown() {
        let want = json!({"kind": "Secret", "metadata": {"name": "db"},
            "data": {"user": "YWRtaW4=", "password": "b2xkLXBhc3N3b3Jk"},
            "stringData": {"token": "plain-old-token", "host": "db.svc"}});
        let live = json!({"kind": "Secret", "metadata": {"name": "db"},
            "data": {"user": "YWRtaW4=", "password": "bmV3LXBhc3N3b3Jk", "host": "ZGIuc3Zj",
                     "token": "bmV3LXRva2Vu"}});
        let mut out = Vec::new();
        compare_object(&want, &live, &mut out);
        let paths: Vec<&str> = out.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["data.password", "stringData.token"]);
        let text = format!("{out:?}");
        for secret in [
            "b2xkLXBhc3N3b3Jk",
            "bmV3LXBhc3N3b3Jk",
            "plain-old-token",
            "bmV3LXRva2Vu",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn managed_fields_name_who_set_a_path() {
        let managed = vec![
            json!({"manager": "helm", "operation": "Update", "time": "2026-01-01T00:00:00Z",
                   "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                       "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}}}}),
            json!({"manager": "kubectl-edit", "operation": "Update", "time": "2026-01-10T00:00:00Z",
                   "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                       "k:{\"name\":\"web\"}": {"f:image": {}}}}}}}}),
        ];
        let m = managers(&managed);
        assert!(
            m[1].3
                .contains(&"spec.template.spec.containers[web].image".to_string())
        );
        assert_eq!(
            owner_of(&m, "spec.template.spec.containers[web].image").map(|o| o.0),
            Some("kubectl-edit".to_string())
        );
        assert_eq!(owner_of(&m, "spec.replicas"), None, "only helm set it");
    }
}
