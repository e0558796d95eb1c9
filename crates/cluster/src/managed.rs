//! Two small reads the diagnosis building blocks need and the ordinary reads do not give:
//! an object's `managedFields` (who set which field, and when) and the API server's clock.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::Cluster;
use crate::error::{ClusterError, Result};
use crate::reads::{GetQuery, path_segment};

impl Cluster {
    /// The `metadata.managedFields` of one object, as the API server stores them (empty when
    /// it has none). The object itself is read with [`Cluster::get`], which drops them.
    pub async fn managed_fields(&self, q: &GetQuery) -> Result<Vec<Value>> {
        if q.name.is_empty() {
            return Err(ClusterError::bad_input(
                "name",
                "`name` is empty: pass the object's name",
            ));
        }
        path_segment("name", &q.name)?;
        let ctx = self.context(q.context.as_deref()).await?;
        let r = self.resolve(&ctx, &q.kind).await?;
        let namespace = Self::namespace_for(&ctx, &r, &q.namespace, false)?;
        let path = format!("{}/{}", r.collection_path(namespace.as_deref()), q.name);
        let object = ctx.transport.get_json(&path).await?;
        Ok(object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// The API server's clock (from its last answer's `Date` header; the local clock before
    /// any answer): what "recent" and "ago" are measured against, so that a snapshot served
    /// at another date reads as it did then.
    pub async fn server_now(&self, context: Option<&str>) -> Result<DateTime<Utc>> {
        Ok(self.context(context).await?.transport.now())
    }
}
