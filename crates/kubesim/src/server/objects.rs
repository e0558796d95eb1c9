//! Resource requests: list, get, create, update, patch, delete, and the `status` and
//! `scale` subresources. Watches and pod logs have modules of their own.

use std::sync::Arc;

use base64::Engine;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::http::{Body, Req, error, json as json_body, json_value};
use super::route::ResourcePath;
use super::{App, openapi, pod_logs, watch};
use crate::openapi::validate;
use crate::patch::{self, PatchType};
use crate::resources::{Registry, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Page, StoredObject};
use crate::table::{self, IncludeObject};

/// How an answer is rendered, from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// Plain JSON objects and lists.
    Json,
    /// A `meta.k8s.io/v1` Table.
    Table(IncludeObject),
    /// `PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata,
}

/// Picks the first media type of `Accept` kubesim can answer.
pub fn negotiate(req: &Req) -> Result<Format, ApiError> {
    let accept = req.accept();
    if accept.trim().is_empty() {
        return Ok(Format::Json);
    }
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("");
        let params: Vec<&str> = parts.collect();
        if !matches!(mime, "application/json" | "*/*" | "application/*") {
            continue;
        }
        if params.contains(&"as=Table") {
            return Ok(Format::Table(IncludeObject::parse(
                req.param("includeObject"),
            )));
        }
        if params
            .iter()
            .any(|p| *p == "as=PartialObjectMetadataList" || *p == "as=PartialObjectMetadata")
        {
            return Ok(Format::Metadata);
        }
        if !params.iter().any(|p| p.starts_with("as=")) {
            return Ok(Format::Json);
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io (got {accept:?})"
    )))
}

/// The verb a request is, as RBAC and discovery name them.
fn verb_of(method: &Method, path: &ResourcePath, watch: bool) -> Option<&'static str> {
    Some(match (method, &path.name, &path.subresource) {
        (&Method::GET, None, _) if watch => "watch",
        (&Method::GET, None, _) => "list",
        (&Method::POST, None, _) => "create",
        (&Method::DELETE, None, _) => "deletecollection",
        (&Method::GET, Some(_), _) => "get",
        (&Method::PUT, Some(_), _) => "update",
        (&Method::PATCH, Some(_), _) => "patch",
        (&Method::DELETE, Some(_), None) => "delete",
        (&Method::POST, Some(_), Some(sub)) if sub == "eviction" || sub == "binding" => "create",
        _ => return None,
    })
}

/// Serves a resource request; returns the verb (for the request log) and the answer.
pub async fn serve(
    app: &App,
    registry: &Registry,
    path: ResourcePath,
    req: Req,
) -> (&'static str, Response<Body>) {
    let key = crate::resources::ResourceKey {
        group: path.group.clone(),
        version: path.version.clone(),
        plural: path.plural.clone(),
    };
    let Some(rt) = registry.by_key(&key) else {
        return ("", error(&ApiError::no_route(&req.path)));
    };
    let Some(verb) = verb_of(&req.method, &path, req.flag("watch")) else {
        return (
            "",
            error(&ApiError::method_not_allowed(
                req.method.as_str(),
                &req.path,
            )),
        );
    };
    let scope_ok = match (&path.namespace, rt.namespaced) {
        (Some(_), false) => false,
        (None, true) => path.name.is_none(),
        _ => true,
    };
    if !scope_ok {
        return (verb, error(&ApiError::no_route(&req.path)));
    }
    if let Some(sub) = &path.subresource
        && !rt.subresources.contains(sub)
    {
        return (verb, error(&ApiError::no_route(&req.path)));
    }
    if path.subresource.is_none() && !rt.allows(verb) {
        return (
            verb,
            error(&ApiError::method_not_allowed(
                req.method.as_str(),
                &req.path,
            )),
        );
    }
    let sub = path.subresource.as_deref();
    if app.forbid.iter().any(|f| f.forbids(rt, sub, verb))
        || !super::identity::allowed(app, &req.subject, verb, rt, sub, path.namespace.as_deref())
    {
        let e = ApiError::forbidden(
            &req.subject.user,
            verb,
            rt,
            path.name.as_deref(),
            path.namespace.as_deref(),
        );
        return (verb, error(&e));
    }
    let ns = path.namespace.clone().unwrap_or_default();
    let result = match (verb, path.name.as_deref(), sub) {
        ("watch", None, _) => watch::serve(app, rt, path.namespace.as_deref(), &req),
        ("list", None, _) => list(app, rt, path.namespace.as_deref(), &req),
        ("create", None, _) => create(app, rt, &ns, &req),
        ("deletecollection", None, _) => {
            delete_collection(app, rt, path.namespace.as_deref(), &req)
        }
        ("get", Some(name), Some("log")) => pod_logs::serve(app, rt, &ns, name, &req),
        ("get", Some(name), Some("scale")) => get_object(app, rt, &ns, name)
            .map(|o| scale_of(&o.value))
            .map(ok),
        (_, Some(name), Some("scale")) => update_scale(app, rt, &ns, name, &req),
        ("get", Some(name), _) => get(app, rt, &ns, name, &req),
        ("update", Some(name), Some("status")) => update_status(app, rt, &ns, name, &req, None),
        ("patch", Some(name), Some("status")) => match patch_type(rt, &req) {
            Ok(t) => update_status(app, rt, &ns, name, &req, Some(t)),
            Err(e) => Err(e),
        },
        ("update", Some(name), None) => update(app, rt, &ns, name, &req),
        ("patch", Some(name), None) => patch_object(app, rt, &ns, name, &req),
        ("delete", Some(name), None) => delete_preconditions(app, rt, &ns, name, &req)
            .and_then(|()| app.store.delete(rt, &ns, name, req.dry_run()))
            .map(|o| json_body(StatusCode::OK, o.json.to_vec())),
        _ => Err(ApiError::method_not_allowed(req.method.as_str(), &req.path)),
    };
    (verb, result.unwrap_or_else(|e| error(&e)))
}

fn ok(v: Value) -> Response<Body> {
    json_value(StatusCode::OK, &v)
}

/// A delete's `preconditions` (DeleteOptions in the body): the object's uid and
/// resourceVersion must still be those given, else 409 Conflict, as on the API server.
fn delete_preconditions(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &Req,
) -> Result<(), ApiError> {
    let Ok(options) = serde_json::from_slice::<Value>(&req.body) else {
        return Ok(());
    };
    let Some(pre) = options.get("preconditions") else {
        return Ok(());
    };
    let current = get_object(app, rt, ns, name)?;
    for (field, pointer) in [
        ("uid", "/metadata/uid"),
        ("resourceVersion", "/metadata/resourceVersion"),
    ] {
        if let Some(want) = pre.get(field).and_then(Value::as_str)
            && current.value.pointer(pointer).and_then(Value::as_str) != Some(want)
        {
            return Err(ApiError::conflict(rt, name));
        }
    }
    Ok(())
}

fn get_object(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<Arc<StoredObject>, ApiError> {
    app.store
        .get(&rt.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(rt, name))
}

fn metadata_only(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
           "metadata": o.get("metadata").cloned().unwrap_or_default()})
}

fn get(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    let format = negotiate(req)?;
    let o = get_object(app, rt, ns, name)?;
    Ok(match format {
        Format::Json => json_body(StatusCode::OK, o.json.to_vec()),
        Format::Metadata => ok(metadata_only(&o.value)),
        Format::Table(include) => {
            let mut t = table::table(&rt.kind, [&o.value], app.store.now(), include, true);
            t["metadata"]["resourceVersion"] = o.value["metadata"]["resourceVersion"].clone();
            ok(t)
        }
    })
}

/// Parsed selectors of a list or watch request.
pub fn selectors(rt: &ResourceType, req: &Req) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(req.param("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(req.param("fieldSelector").unwrap_or(""), &rt.kind)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    after: (String, String),
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "continue key is not valid: {token:?}; start the list again without `continue`"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let t: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    Ok(t.after)
}

fn encode_continue(rv: u64, after: (String, String)) -> String {
    let json = serde_json::to_vec(&ContinueToken { rv, after }).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn list_metadata(page: &Page) -> Value {
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(next) = &page.next {
        meta["continue"] = json!(encode_continue(page.rv, next.clone()));
        meta["remainingItemCount"] = json!(page.remaining);
    }
    meta
}

fn list(
    app: &App,
    rt: &ResourceType,
    namespace: Option<&str>,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    let format = negotiate(req)?;
    let (labels, fields) = selectors(rt, req)?;
    let limit = match req.int("limit")? {
        Some(n) if n < 0 => return Err(ApiError::bad_request("limit must not be negative")),
        Some(0) | None => None,
        Some(n) => Some(n as usize),
    };
    let after = match req.param("continue") {
        Some(t) if !t.is_empty() => Some(decode_continue(t)?),
        _ => None,
    };
    let filter = |v: &Value| labels.matches(v) && fields.matches(v);
    let page = app.store.list(&rt.key(), namespace, &filter, limit, after);
    let meta = list_metadata(&page);
    Ok(match format {
        Format::Table(include) => {
            let mut t = table::table(
                &rt.kind,
                page.items.iter().map(|o| &o.value),
                app.store.now(),
                include,
                true,
            );
            t["metadata"] = meta;
            ok(t)
        }
        Format::Metadata => ok(json!({
            "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "items": page.items.iter().map(|o| metadata_only(&o.value)).collect::<Vec<_>>(),
        })),
        Format::Json => {
            // Objects are kept serialized: a list is their concatenation.
            let size: usize = page.items.iter().map(|o| o.json.len() + 1).sum();
            let mut body = Vec::with_capacity(size + 256);
            body.extend_from_slice(
                format!(
                    "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
                    rt.kind,
                    rt.api_version(),
                    meta
                )
                .as_bytes(),
            );
            for (i, o) in page.items.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&o.json);
            }
            body.extend_from_slice(b"]}");
            json_body(StatusCode::OK, body)
        }
    })
}

/// Parses a request body as JSON (or YAML or protobuf, when the client says so).
pub fn body_object(req: &Req) -> Result<Value, ApiError> {
    let content_type = req.content_type().split(';').next().unwrap_or("").trim();
    let value: Value = match content_type {
        "" | "application/json" | "*/*" => serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        })?,
        "application/yaml" => {
            let text = std::str::from_utf8(&req.body)
                .map_err(|_| ApiError::bad_request("the request body is not UTF-8 text"))?;
            serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
            })?
        }
        super::protobuf::MEDIA_TYPE => super::protobuf::decode(&req.body)?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Checks the body's kind, apiVersion and namespace against the URL and fills them in.
fn conform(rt: &ResourceType, ns: &str, mut object: Value) -> Result<Value, ApiError> {
    for (field, want) in [("kind", rt.kind.clone()), ("apiVersion", rt.api_version())] {
        match object.get(field).and_then(Value::as_str) {
            None | Some("") => object[field] = json!(want),
            Some(got) if got == want => {}
            Some(got) => {
                return Err(ApiError::bad_request(format!(
                    "the {field} of the object ({got}) does not match the {field} the URL addresses ({want})"
                )));
            }
        }
    }
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    if rt.namespaced {
        match object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
        {
            None | Some("") => object["metadata"]["namespace"] = json!(ns),
            Some(given) if given == ns => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    } else if let Some(m) = object["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    Ok(object)
}

fn create(app: &App, rt: &ResourceType, ns: &str, req: &Req) -> Result<Response<Body>, ApiError> {
    let mut object = conform(rt, ns, body_object(req)?)?;
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        let Some(prefix) = object
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return Err(ApiError::invalid(
                &rt.kind,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        };
        let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].to_string();
        object["metadata"]["name"] = json!(format!("{prefix}{suffix}"));
    }
    let warnings = validate_fields(app, rt, &object, None, req)?;
    let stored = app.store.create(rt, ns, object, req.dry_run())?;
    Ok(with_warnings(
        json_body(StatusCode::CREATED, stored.json.to_vec()),
        &warnings,
    ))
}

/// Server-side field validation (`fieldValidation`): fields the kind's schema does not
/// declare are an error under `Strict`, warnings under `Warn` (the default, as on the API
/// server) and nothing under `Ignore`. Fields `before` already had (a snapshot may hold
/// fields a newer schema dropped) are not the request's doing and are not reported.
fn validate_fields(
    app: &App,
    rt: &ResourceType,
    object: &Value,
    before: Option<&Value>,
    req: &Req,
) -> Result<Vec<String>, ApiError> {
    let strict = match req.param("fieldValidation").unwrap_or("Warn") {
        "Ignore" => return Ok(Vec::new()),
        "Warn" | "" => false,
        "Strict" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be Ignore, Warn or Strict, not {other:?}"
            )));
        }
    };
    let Some(schema) = openapi::catalog(app).kind_schema(&rt.group, &rt.version, &rt.kind) else {
        return Ok(Vec::new());
    };
    let mut unknown = validate::unknown_fields(&schema, object);
    if let Some(before) = before {
        let had = validate::unknown_fields(&schema, before);
        unknown.retain(|f| !had.contains(f));
    }
    let problems: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if strict && !problems.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            problems.join(", "),
            kind = rt.kind,
            version = rt.version,
        )));
    }
    Ok(problems)
}

/// Adds `Warning: 299 - "..."` headers, as the API server reports warnings.
fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            r.headers_mut().append(http::header::WARNING, v);
        }
    }
    r
}

fn check_name(rt: &ResourceType, name: &str, object: &Value) -> Result<(), ApiError> {
    match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(given) if given == name => Ok(()),
        None | Some("") => Err(ApiError::invalid(
            &rt.kind,
            name,
            "metadata.name",
            "Required value: name is required",
        )),
        Some(given) => Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        ))),
    }
}

fn update(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    let mut object = conform(rt, ns, body_object(req)?)?;
    check_name(rt, name, &object)?;
    let current = get_object(app, rt, ns, name)?;
    record_update(app, &current.value, &mut object, req);
    let warnings = validate_fields(app, rt, &object, Some(&current.value), req)?;
    let stored = app.store.update(rt, ns, name, object, req.dry_run())?;
    Ok(with_warnings(
        json_body(StatusCode::OK, stored.json.to_vec()),
        &warnings,
    ))
}

/// The patch type of a request. Custom kinds take no strategic merge patch (there are no
/// Go types to say how their lists merge), as on the API server.
fn patch_type(rt: &ResourceType, req: &Req) -> Result<PatchType, ApiError> {
    let content_type = req.content_type();
    if content_type.starts_with("application/apply-patch") {
        return Err(ApiError::with_code(
            415,
            "UnsupportedMediaType",
            "kubesim applies server-side only to whole objects, not to their status or scale subresources; send a merge patch",
        ));
    }
    let kind = PatchType::from_content_type(content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    if kind == PatchType::Strategic && !crate::openapi::is_builtin(rt) {
        return Err(ApiError::with_code(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml ({} is a custom kind, which takes no strategic merge patch)",
                crate::status::qualified(rt)
            ),
        ));
    }
    Ok(kind)
}

fn patched(
    rt: &ResourceType,
    current: &Value,
    req: &Req,
    kind: PatchType,
) -> Result<Value, ApiError> {
    let patch: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
    let name = current
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    patch::apply(current, &patch, kind).map_err(|e| ApiError::invalid(&rt.kind, name, "patch", &e))
}

fn patch_object(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    if req.content_type().starts_with("application/apply-patch") {
        return apply_object(app, rt, ns, name, req);
    }
    if req.param("force").is_some() {
        return Err(ApiError::bad_request(
            "force may be given only with server-side apply (Content-Type application/apply-patch+yaml)",
        ));
    }
    let kind = patch_type(rt, req)?;
    let current = get_object(app, rt, ns, name)?;
    let mut object = conform(rt, ns, patched(rt, &current.value, req, kind)?)?;
    check_name(rt, name, &object)?;
    record_update(app, &current.value, &mut object, req);
    let warnings = validate_fields(app, rt, &object, Some(&current.value), req)?;
    let stored = app.store.update(rt, ns, name, object, req.dry_run())?;
    Ok(with_warnings(
        json_body(StatusCode::OK, stored.json.to_vec()),
        &warnings,
    ))
}

/// The manager a write is recorded under: `fieldManager`, or the client's name from its
/// User-Agent (`kubectl` of `kubectl/v1.32.4 (linux/amd64) ...`), as the API server does.
fn manager(req: &Req) -> String {
    match req.param("fieldManager").filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => {
            let agent = req
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let name: String = agent
                .split('/')
                .next()
                .unwrap_or("")
                .chars()
                .take(128)
                .collect();
            if name.is_empty() {
                "unknown".into()
            } else {
                name
            }
        }
    }
}

/// Keeps `metadata.managedFields` across a write that is not an apply, giving the writer
/// the fields it changed (see `crate::apply`).
fn record_update(app: &App, old: &Value, new: &mut Value, req: &Req) {
    let time = crate::snapshot::format_time(app.store.now());
    crate::apply::record_update(old, new, &manager(req), &time);
}

/// Server-side apply: creates the object if it does not exist, otherwise merges the
/// configuration as `crate::apply` describes.
fn apply_object(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    let Some(manager) = req.param("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError::bad_request(
            "PATCH with application/apply-patch+yaml requires the fieldManager query parameter (?fieldManager=NAME)",
        ));
    };
    let force = match req.param("force") {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid value for force: {other:?}; use true or false"
            )));
        }
    };
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::bad_request("the apply configuration is not UTF-8 text"))?;
    // YAML 1.2 reads JSON too, which is what most clients send.
    let config: Value = serde_saphyr::from_str(text).map_err(|e| {
        ApiError::bad_request(format!(
            "the apply configuration is not valid YAML or JSON: {e}"
        ))
    })?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    let config = conform(rt, ns, config)?;
    check_name(rt, name, &config)?;
    let current = app.store.get(&rt.key(), ns, name);
    let time = crate::snapshot::format_time(app.store.now());
    let object = crate::apply::apply(
        current.as_ref().map(|o| &o.value),
        &config,
        manager,
        force,
        &time,
    )
    .map_err(|e| match e {
        crate::apply::ApplyError::Invalid(m) => ApiError::bad_request(m),
        crate::apply::ApplyError::Conflicts(c) => apply_conflict(rt, name, &c),
    })?;
    let warnings = validate_fields(app, rt, &object, current.as_ref().map(|o| &o.value), req)?;
    let (status, stored) = match current {
        None => (
            StatusCode::CREATED,
            app.store.create(rt, ns, object, req.dry_run())?,
        ),
        Some(_) => (
            StatusCode::OK,
            app.store.update(rt, ns, name, object, req.dry_run())?,
        ),
    };
    Ok(with_warnings(
        json_body(status, stored.json.to_vec()),
        &warnings,
    ))
}

/// 409 for fields other managers own, worded as the API server words it.
fn apply_conflict(rt: &ResourceType, name: &str, conflicts: &[crate::apply::Conflict]) -> ApiError {
    let listed: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "conflict with \"{}\" using {}: {}",
                c.manager, c.api_version, c.field
            )
        })
        .collect();
    let message = if conflicts.len() == 1 {
        format!("Apply failed with 1 conflict: {}", listed.join(""))
    } else {
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            listed.join("\n")
        )
    };
    let mut e = ApiError::with_code(409, "Conflict", message);
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"reason": "FieldManagerConflict",
                        "message": format!("conflict with \"{}\"", c.manager), "field": c.field})
        })
        .collect();
    let mut details = json!({"name": name, "kind": rt.plural, "causes": causes});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    e.details = Some(Box::new(details));
    e
}

/// Replaces (PUT) or patches only the `status` of an object.
fn update_status(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &Req,
    patch_kind: Option<PatchType>,
) -> Result<Response<Body>, ApiError> {
    let current = get_object(app, rt, ns, name)?;
    let source = match patch_kind {
        Some(kind) => patched(rt, &current.value, req, kind)?,
        None => {
            let body = conform(rt, ns, body_object(req)?)?;
            check_name(rt, name, &body)?;
            body
        }
    };
    let mut object = current.value.clone();
    object["status"] = source.get("status").cloned().unwrap_or_else(|| json!({}));
    if let Some(rv) = source.pointer("/metadata/resourceVersion") {
        object["metadata"]["resourceVersion"] = rv.clone();
    }
    record_update(app, &current.value, &mut object, req);
    let stored = app.store.update(rt, ns, name, object, req.dry_run())?;
    Ok(json_body(StatusCode::OK, stored.json.to_vec()))
}

/// The `autoscaling/v1` Scale of a scalable object.
fn scale_of(o: &Value) -> Value {
    let selector = o.pointer("/spec/selector").map(|s| {
        let labels = s.get("matchLabels").unwrap_or(s);
        labels
            .as_object()
            .map(|m| {
                let mut parts: Vec<String> = m
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                    .collect();
                parts.sort();
                parts.join(",")
            })
            .unwrap_or_default()
    });
    let meta = &o["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                     "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {"replicas": o.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
                   "selector": selector.unwrap_or_default()},
    })
}

fn update_scale(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    let current = get_object(app, rt, ns, name)?;
    let scale = scale_of(&current.value);
    let new_scale = if req.method == Method::PATCH {
        patched(rt, &scale, req, patch_type(rt, req)?)?
    } else {
        body_object(req)?
    };
    let replicas = new_scale.pointer("/spec/replicas");
    let Some(replicas) = replicas.and_then(Value::as_i64).filter(|r| *r >= 0) else {
        return Err(ApiError::invalid(
            "Scale",
            name,
            "spec.replicas",
            &format!(
                "Invalid value: {}: must be a non-negative integer",
                replicas.cloned().unwrap_or(Value::Null)
            ),
        ));
    };
    let mut object = current.value.clone();
    object["spec"]["replicas"] = json!(replicas);
    if let Some(rv) = new_scale.pointer("/metadata/resourceVersion") {
        object["metadata"]["resourceVersion"] = rv.clone();
    }
    record_update(app, &current.value, &mut object, req);
    let stored = app.store.update(rt, ns, name, object, req.dry_run())?;
    Ok(ok(scale_of(&stored.value)))
}

fn delete_collection(
    app: &App,
    rt: &ResourceType,
    namespace: Option<&str>,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(rt, req)?;
    let filter = |v: &Value| labels.matches(v) && fields.matches(v);
    let page = app.store.list(&rt.key(), namespace, &filter, None, None);
    let mut deleted = Vec::new();
    for o in &page.items {
        // An object deleted meanwhile by another request is simply gone already.
        if let Ok(d) = app.store.delete(rt, o.namespace(), o.name(), req.dry_run()) {
            deleted.push(d.value.clone());
        }
    }
    Ok(ok(json!({
        "kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": app.store.resource_version().to_string()}, "items": deleted,
    })))
}
