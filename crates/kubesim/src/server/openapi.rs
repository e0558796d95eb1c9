//! `/openapi/v2` and `/openapi/v3[/GROUP-VERSION]`: the documents of `crate::openapi`, served
//! as JSON with the caching headers of the API server (a document addressed by its current
//! hash never changes).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::App;
use super::http::{Body, Req, error};
use crate::openapi::{Catalog, Doc};
use crate::resources::ResourceKey;
use crate::status::ApiError;

/// Which document a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// `/openapi/v2`.
    V2,
    /// `/openapi/v3`: the discovery document.
    V3Root,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`.
    V3(String),
}

/// The name and resourceVersion of every stored CustomResourceDefinition.
type CrdFingerprint = Vec<(String, String)>;

/// The server's catalog, rebuilt when the stored CustomResourceDefinitions change.
#[derive(Default)]
pub struct Cache {
    current: std::sync::Mutex<Option<(CrdFingerprint, Arc<Catalog>)>>,
}

fn crd_key() -> ResourceKey {
    ResourceKey {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        plural: "customresourcedefinitions".into(),
    }
}

/// The catalog for what the server serves now.
pub fn catalog(app: &App) -> Arc<Catalog> {
    let crds = app.store.list(&crd_key(), None, &|_| true, None, None);
    let fingerprint: CrdFingerprint = crds
        .items
        .iter()
        .map(|o| {
            let rv = o
                .value
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            (o.name().to_string(), rv.to_string())
        })
        .collect();
    let mut current = app
        .openapi
        .current
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((f, c)) = current.as_ref()
        && *f == fingerprint
    {
        return c.clone();
    }
    let values: Vec<Value> = crds.items.iter().map(|o| o.value.clone()).collect();
    let c = Arc::new(Catalog::new(&app.store.registry(), &values));
    *current = Some((fingerprint, c.clone()));
    c
}

/// Whether `Accept` admits JSON. Clients that ask only for the protobuf encoding are
/// answered 406, on which client-go falls back to what it can read.
fn accepts_json(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|media| {
            let mime = media.split(';').next().unwrap_or("").trim();
            matches!(mime, "application/json" | "application/*" | "*/*")
        })
}

fn respond(req: &Req, json: &Bytes, etag: &str, immutable: bool) -> Response<Body> {
    let etag = format!("\"{etag}\"");
    let not_modified = req
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut r = if not_modified {
        let mut r = Response::new(Full::new(Bytes::new()).boxed());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Full::new(json.clone()).boxed())
    };
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, immutable"
        } else {
            "no-cache, private"
        }),
    );
    if immutable {
        headers.insert(
            header::EXPIRES,
            HeaderValue::from_static("Sat, 01 Jan 2100 00:00:00 GMT"),
        );
    }
    r
}

fn doc_response(req: &Req, doc: &Doc, immutable: bool) -> Response<Body> {
    respond(req, &doc.json, &doc.hash, immutable)
}

/// Serves an OpenAPI request.
pub fn serve(app: &App, which: Which, req: &Req) -> Response<Body> {
    if req.method != Method::GET {
        return error(&ApiError::method_not_allowed(
            req.method.as_str(),
            &req.path,
        ));
    }
    if !accepts_json(req.accept()) {
        return error(&ApiError::not_acceptable(format!(
            "kubesim serves OpenAPI documents as application/json only, not as {:?}; ask for application/json",
            req.accept()
        )));
    }
    let catalog = catalog(app);
    match which {
        Which::V2 => doc_response(req, catalog.v2(), false),
        Which::V3Root => doc_response(req, catalog.root(), false),
        Which::V3(path) => {
            let Some(current) = catalog.hash(&path) else {
                return error(&ApiError::no_route(&req.path));
            };
            match req.param("hash") {
                Some(asked) if asked != current => {
                    // A stale hash: send the client to the document's current address, as
                    // the API server does.
                    let mut r = Response::new(Full::new(Bytes::new()).boxed());
                    *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
                    if let Ok(v) =
                        HeaderValue::from_str(&format!("/openapi/v3/{path}?hash={current}"))
                    {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    r
                }
                asked => match catalog.group_version(&path) {
                    Some(gv) => doc_response(req, &gv.doc, asked.is_some()),
                    None => error(&ApiError::no_route(&req.path)),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::accepts_json;

    #[test]
    fn protobuf_only_clients_are_refused() {
        assert!(accepts_json(""));
        assert!(accepts_json("application/json, */*"));
        assert!(accepts_json(
            "application/com.github.proto-openapi.spec.v3@v1.0+protobuf, application/json"
        ));
        assert!(!accepts_json(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        ));
    }
}
