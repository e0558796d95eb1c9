//! A kind's schema from the cluster's own OpenAPI v3 documents (custom resources included),
//! fetched once per group-version and context.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{ClusterError, ErrorKind, Result};
use crate::{Cluster, Context};

/// The schema of one kind, with every named schema of its group-version (which its
/// `$ref`s point into).
#[derive(Debug, Clone)]
pub struct KindSchema {
    /// The kind (`Deployment`).
    pub kind: String,
    /// Its `apiVersion` (`apps/v1`).
    pub api_version: String,
    /// The name of the kind's own schema (`io.k8s.api.apps.v1.Deployment`).
    pub root: String,
    /// `components.schemas` of the group-version's document: name → schema.
    pub schemas: Arc<Value>,
}

impl KindSchema {
    /// A named schema, by name or by a `$ref` (`#/components/schemas/NAME`,
    /// `#/definitions/NAME`).
    pub fn schema(&self, name_or_ref: &str) -> Option<&Value> {
        let name = name_or_ref.rsplit_once('/').map_or(name_or_ref, |(_, n)| n);
        self.schemas.get(name)
    }
}

/// Whether a schema says it is `group/version/kind`.
fn is_kind(schema: &Value, group: &str, version: &str, kind: &str) -> bool {
    schema
        .get("x-kubernetes-group-version-kind")
        .and_then(Value::as_array)
        .is_some_and(|gvks| {
            gvks.iter().any(|g| {
                g.get("group").and_then(Value::as_str).unwrap_or("") == group
                    && g.get("version").and_then(Value::as_str) == Some(version)
                    && g.get("kind").and_then(Value::as_str) == Some(kind)
            })
        })
}

impl Cluster {
    /// The OpenAPI v3 schema of a kind (any spelling), from the cluster's `/openapi/v3`.
    pub async fn kind_schema(&self, kind: &str, context: Option<&str>) -> Result<KindSchema> {
        let ctx = self.context(context).await?;
        let r = self.resolve(&ctx, kind).await?;
        let gv = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}/{}", r.group, r.version)
        };
        let doc = self.openapi_document(&ctx, &gv).await?;
        let schemas = doc
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or(Value::Null);
        let root = schemas
            .as_object()
            .and_then(|m| {
                m.iter()
                    .find(|(_, s)| is_kind(s, &r.group, &r.version, &r.kind))
                    .map(|(name, _)| name.clone())
            })
            .ok_or_else(|| {
                ClusterError::not_found(format!(
                    "the cluster's OpenAPI document for {gv} has no schema for {}: read an object with kubernetes.get to see its fields",
                    r.kind
                ))
            })?;
        Ok(KindSchema {
            kind: r.kind.clone(),
            api_version: r.api_version(),
            root,
            schemas: Arc::new(schemas),
        })
    }

    /// One group-version's OpenAPI v3 document (`api/v1`, `apis/apps/v1`), cached.
    async fn openapi_document(&self, ctx: &Context, gv: &str) -> Result<Arc<Value>> {
        if let Some(doc) = ctx.openapi.lock().await.get(gv) {
            return Ok(doc.clone());
        }
        let unpublished = |e: ClusterError| {
            if e.kind == ErrorKind::NotFound {
                ClusterError::new(
                    ErrorKind::Unavailable,
                    "this API server does not publish OpenAPI v3 schemas (/openapi/v3): read an object with kubernetes.get to see its fields",
                )
            } else {
                e
            }
        };
        let index = ctx
            .transport
            .get_json("/openapi/v3")
            .await
            .map_err(unpublished)?;
        let url = index
            .pointer(&format!(
                "/paths/{}/serverRelativeURL",
                gv.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("/openapi/v3/{gv}"));
        if !url.starts_with("/openapi/v3/") {
            return Err(ClusterError::new(
                ErrorKind::Unavailable,
                format!(
                    "the API server's OpenAPI index points {gv} at {url:?}, outside /openapi/v3"
                ),
            ));
        }
        let doc = Arc::new(ctx.transport.get_json(&url).await.map_err(unpublished)?);
        ctx.openapi.lock().await.insert(gv.to_string(), doc.clone());
        Ok(doc)
    }
}
