//! Helm 3 releases, read from their storage objects (Secrets of type `helm.sh/release.v1`,
//! or ConfigMaps with the ConfigMap driver) and decoded as Helm does: base64, then gzip, then
//! JSON. No `helm` binary is involved.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Cluster;
use crate::error::{ClusterError, ErrorKind, Result};
use crate::reads::Selection;

/// Arguments of `helm.list`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmListQuery {
    /// Namespace to look in (default: the current context's).
    pub namespace: Option<String>,
    /// Look in every namespace instead.
    #[serde(default)]
    pub all_namespaces: bool,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `helm.history`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmHistoryQuery {
    /// Release name.
    pub name: String,
    /// The release's namespace (default: the current context's).
    pub namespace: Option<String>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// Arguments of `helm.get`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmGetQuery {
    /// Release name.
    pub name: String,
    /// Namespace (default: the context's).
    pub namespace: Option<String>,
    /// Revision (default: the latest).
    pub revision: Option<u64>,
    /// Kubeconfig context.
    pub context: Option<String>,
}

/// One revision of a release, as `helm list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseSummary {
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Revision number.
    pub revision: u64,
    /// `deployed`, `superseded`, `failed`, ...
    pub status: String,
    /// `CHART-VERSION`.
    pub chart: String,
    /// The chart's appVersion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// When this revision was deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Helm's description of the revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A whole release revision.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmRelease {
    /// Name, namespace, revision, status, chart and app version, as `helm list` shows them.
    #[serde(flatten)]
    pub summary: HelmReleaseSummary,
    /// The values the user supplied (`helm get values`).
    pub values: Value,
    /// The rendered manifest.
    pub manifest: String,
    /// The manifest parsed into objects.
    pub objects: Vec<Value>,
    /// The chart's NOTES.txt, rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// Decodes Helm's storage encoding: base64 of (optionally gzipped) JSON.
pub fn decode_release(encoded: &str) -> std::result::Result<Value, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = b64
        .decode(encoded.trim())
        .map_err(|e| format!("the release is not base64: {e}"))?;
    let json = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .take(256 * 1024 * 1024)
            .read_to_end(&mut out)
            .map_err(|e| format!("the release is not valid gzip: {e}"))?;
        out
    } else {
        bytes
    };
    serde_json::from_slice(&json).map_err(|e| format!("the release is not valid JSON: {e}"))
}

fn text(v: &Value, path: &str) -> String {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn summary(r: &Value) -> HelmReleaseSummary {
    let app_version = text(r, "/chart/metadata/appVersion");
    let updated = text(r, "/info/last_deployed");
    let description = text(r, "/info/description");
    HelmReleaseSummary {
        name: text(r, "/name"),
        namespace: text(r, "/namespace"),
        revision: r.get("version").and_then(Value::as_u64).unwrap_or(0),
        status: text(r, "/info/status"),
        chart: format!(
            "{}-{}",
            text(r, "/chart/metadata/name"),
            text(r, "/chart/metadata/version")
        ),
        app_version: (!app_version.is_empty()).then_some(app_version),
        updated: (!updated.is_empty()).then_some(updated),
        description: (!description.is_empty()).then_some(description),
    }
}

/// Parses a rendered manifest into objects, skipping empty documents.
fn manifest_objects(manifest: &str) -> Vec<Value> {
    match serde_saphyr::from_multiple::<Value>(manifest) {
        Ok(docs) => docs.into_iter().filter(|d| d.is_object()).collect(),
        Err(e) => {
            tracing::warn!("cannot parse a Helm manifest: {e}");
            Vec::new()
        }
    }
}

impl Cluster {
    /// Every stored revision, decoded, of the releases in a namespace (`None`: all), or of
    /// one release there.
    async fn releases(
        &self,
        context: Option<&str>,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<Value>> {
        let ctx = self.context(context).await?;
        let mut selector = "owner=helm".to_string();
        if let Some(n) = name {
            // The name goes into a label selector, where `,` or `=` would add terms.
            if !n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            {
                return Err(ClusterError::bad_input(
                    "name",
                    format!(
                        "{n:?} is not a Helm release name: release names use lowercase letters, digits, '-' and '.'"
                    ),
                ));
            }
            selector.push_str(&format!(",name={n}"));
        }
        let mut out = Vec::new();
        for (kind, helm_layer_only) in [("secrets", false), ("configmaps", true)] {
            let r = self.resolve(&ctx, kind).await?;
            let objects = match self
                .list_resource(
                    &ctx,
                    &r,
                    &Selection {
                        namespace,
                        labels: Some(selector.clone()),
                        ..Selection::default()
                    },
                )
                .await
            {
                Ok(o) => o,
                // Helm stores releases in Secrets unless told to use ConfigMaps: without access
                // to ConfigMaps, the Secret-stored releases are still all found.
                Err(e) if kind == "configmaps" && e.kind == ErrorKind::Forbidden => continue,
                Err(e) if e.kind == ErrorKind::Forbidden => {
                    let place = namespace.map_or("in any namespace".to_string(), |n| {
                        format!("in namespace {n}")
                    });
                    return Err(ClusterError::new(
                        ErrorKind::Forbidden,
                        format!(
                            "Helm keeps its releases in Secrets (type helm.sh/release.v1), and these credentials may not list Secrets {place}, so the releases cannot be read: {}",
                            e.message
                        ),
                    ));
                }
                Err(e) => return Err(e),
            };
            for o in objects {
                let Some(raw) = o.pointer("/data/release").and_then(Value::as_str) else {
                    continue;
                };
                // A Secret adds its own base64 layer around Helm's.
                let encoded = if helm_layer_only {
                    raw.to_string()
                } else {
                    match base64::engine::general_purpose::STANDARD.decode(raw) {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(_) => continue,
                    }
                };
                match decode_release(&encoded) {
                    Ok(release) => out.push(release),
                    Err(e) => tracing::warn!(
                        "skipping Helm storage object {}: {e}",
                        text(&o, "/metadata/name")
                    ),
                }
            }
        }
        Ok(out)
    }

    /// The namespace a Helm call reads: the one named, else the context's.
    async fn helm_namespace(
        &self,
        context: Option<&str>,
        named: &Option<String>,
    ) -> Result<String> {
        let namespace = match named.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => self.default_namespace(context).await?,
        };
        crate::reads::path_segment("namespace", &namespace)?;
        Ok(namespace)
    }

    /// The latest revision of each release.
    pub async fn helm_list(&self, q: &HelmListQuery) -> Result<Vec<HelmReleaseSummary>> {
        let context = q.context.as_deref();
        let namespace = match q.all_namespaces {
            true => None,
            false => Some(self.helm_namespace(context, &q.namespace).await?),
        };
        let mut latest: BTreeMap<(String, String), HelmReleaseSummary> = BTreeMap::new();
        for r in self.releases(context, namespace.as_deref(), None).await? {
            let s = summary(&r);
            let key = (s.namespace.clone(), s.name.clone());
            if latest.get(&key).is_none_or(|old| old.revision < s.revision) {
                latest.insert(key, s);
            }
        }
        Ok(latest.into_values().collect())
    }

    /// Every revision of one release, oldest first.
    pub async fn helm_history(&self, q: &HelmHistoryQuery) -> Result<Vec<HelmReleaseSummary>> {
        let name = q.name.as_str();
        if name.is_empty() {
            return Err(ClusterError::bad_input(
                "name",
                "`name` is required: the release whose history to read",
            ));
        }
        let context = q.context.as_deref();
        let namespace = self.helm_namespace(context, &q.namespace).await?;
        let mut all: Vec<HelmReleaseSummary> = self
            .releases(context, Some(&namespace), Some(name))
            .await?
            .iter()
            .map(summary)
            .collect();
        if all.is_empty() {
            return Err(ClusterError::not_found(format!(
                "no Helm release {name:?} in namespace {namespace}: list the releases with allNamespaces: true to find its namespace"
            )));
        }
        all.sort_by_key(|s| s.revision);
        Ok(all)
    }

    /// One revision (the latest by default) with its values, manifest, objects and notes.
    pub async fn helm_get(&self, q: &HelmGetQuery) -> Result<HelmRelease> {
        let context = q.context.as_deref();
        let namespace = self.helm_namespace(context, &q.namespace).await?;
        let mut releases = self
            .releases(context, Some(&namespace), Some(&q.name))
            .await?;
        if releases.is_empty() {
            return Err(ClusterError::not_found(format!(
                "no Helm release {:?} in namespace {namespace}: list the releases with allNamespaces: true to find its namespace",
                q.name
            )));
        }
        releases.sort_by_key(|r| r.get("version").and_then(Value::as_u64).unwrap_or(0));
        let chosen = match q.revision {
            Some(rev) => releases
                .iter()
                .find(|r| r.get("version").and_then(Value::as_u64) == Some(rev))
                .ok_or_else(|| {
                    let revs: Vec<String> = releases
                        .iter()
                        .filter_map(|r| r.get("version").and_then(Value::as_u64))
                        .map(|v| v.to_string())
                        .collect();
                    ClusterError::not_found(format!(
                        "release {:?} has no revision {rev}; it has {}",
                        q.name,
                        revs.join(", ")
                    ))
                })?,
            None => releases
                .last()
                .ok_or_else(|| ClusterError::not_found("no revision"))?,
        };
        let s = summary(chosen);
        let manifest = text(chosen, "/manifest");
        let notes = text(chosen, "/info/notes");
        Ok(HelmRelease {
            summary: s,
            values: chosen
                .get("config")
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or_else(|| Value::Object(Default::default())),
            objects: manifest_objects(&manifest),
            manifest,
            notes: (!notes.is_empty()).then_some(notes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_gzipped_releases_decode() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let plain = b64.encode(r#"{"name":"x","version":2}"#);
        assert_eq!(decode_release(&plain).unwrap()["version"], 2);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, br#"{"name":"y"}"#).unwrap();
        let zipped = b64.encode(gz.finish().unwrap());
        assert_eq!(decode_release(&zipped).unwrap()["name"], "y");
        assert!(decode_release("!!!").unwrap_err().contains("base64"));
    }

    #[test]
    fn manifests_parse_into_objects() {
        let m = "---\n# Source: a.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n---\n# empty\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n";
        let objects = manifest_objects(m);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1]["kind"], "Deployment");
    }
}
