//! One request from arrival to answer: faults, authentication, routing, and the request log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use serde_json::Value;

use super::identity::{self, Subject};
use super::route::{self, Route};
use super::{App, discovery, objects, openapi, request_log, reviews};
use crate::faults::FaultKind;
use crate::status::ApiError;

/// Response bodies: whole JSON documents or a watch stream.
pub type Body = BoxBody<Bytes, Infallible>;

/// The error that makes hyper close a connection without answering (the `drop` fault).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// The biggest request body accepted, as the API server's 3 MiB limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// What a handler receives.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// Who is asking (after impersonation).
    pub subject: Subject,
}

impl Req {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A boolean query parameter (`true`/`1`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    /// An integer query parameter; a malformed one is a 400.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.param(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {name}: {v:?} is not an integer"))
            }),
        }
    }

    /// The `Accept` header.
    pub fn accept(&self) -> &str {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Whether `dryRun=All` was asked for.
    pub fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }
}

/// A whole JSON answer.
pub fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON value answer.
pub fn json_value(status: StatusCode, v: &Value) -> Response<Body> {
    json(status, serde_json::to_vec(v).unwrap_or_default())
}

/// A plain-text answer.
pub fn text(body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// An error answered as a `metav1.Status`.
pub fn error(e: &ApiError) -> Response<Body> {
    let mut r = json_value(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    );
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Serves one request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (impersonate_user, impersonate_groups) = identity::impersonation(&parts.headers);
    let route = route::parse(&path);
    let public = matches!(route, Route::Version | Route::Health);
    let subject = match identity::authenticate(&app, &parts.headers) {
        Ok(s) => Ok(s),
        // The version and health need no credentials, as on a real API server.
        Err(_) if public => Ok(Subject {
            user: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }),
        Err(e) => Err(e),
    };
    let user = subject.as_ref().map(|s| s.user.clone()).unwrap_or_default();
    let log = |verb: &str, status: u16| {
        if let Some(l) = &app.request_log {
            l.record(&request_log::Entry {
                method: parts.method.as_str(),
                path: &path,
                query: &raw_query,
                user_agent: &user_agent,
                user: &user,
                impersonate_user: impersonate_user.as_deref(),
                impersonate_groups: &impersonate_groups,
                verb,
                status,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            });
        }
    };

    let faults = app.faults.read().unwrap_or_else(|e| e.into_inner()).clone();
    let mut injected = None;
    for fault in faults.decide(&path) {
        match fault {
            FaultKind::Latency(d) => tokio::time::sleep(d).await,
            FaultKind::Drop => {
                log("", 0);
                return Err(Dropped);
            }
            FaultKind::Error { status } => {
                injected.get_or_insert(ApiError::with_code(
                    status,
                    if status == 503 { "ServiceUnavailable" } else { "InternalError" },
                    "an error on the server (\"injected fault\") has prevented the request from succeeding",
                ));
            }
            FaultKind::Throttle { retry_after } => {
                injected.get_or_insert(ApiError::too_many_requests(retry_after));
            }
        }
    }

    let (verb, response) = match (injected, subject) {
        (Some(e), _) => ("", error(&e)),
        (None, Err(e)) => ("", error(&e)),
        (None, Ok(subject)) => {
            let body = match read_body(body).await {
                Ok(b) => b,
                Err(e) => {
                    let r = error(&e);
                    log("", r.status().as_u16());
                    return Ok(r);
                }
            };
            let query = form_urlencoded::parse(raw_query.as_bytes())
                .into_owned()
                .collect();
            let req = Req {
                method: parts.method.clone(),
                path: path.clone(),
                query,
                headers: parts.headers.clone(),
                body,
                subject,
            };
            dispatch(&app, route, req).await
        }
    };
    log(verb, response.status().as_u16());
    let mut response = response;
    // The Date header carries the snapshot's clock, so clients can measure ages against it.
    let date = app
        .store
        .now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(header::DATE, v);
    }
    Ok(response)
}

async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::with_code(
            413,
            "RequestEntityTooLarge",
            format!("the request body is larger than {MAX_BODY} bytes"),
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

async fn dispatch(app: &App, route: Route, req: Req) -> (&'static str, Response<Body>) {
    let read_only = |verb: &'static str, v: Value| {
        if req.method == Method::GET {
            (verb, json_value(StatusCode::OK, &v))
        } else {
            (
                verb,
                error(&ApiError::method_not_allowed(
                    req.method.as_str(),
                    &req.path,
                )),
            )
        }
    };
    let registry = app.store.registry();
    match route {
        Route::Health => (
            "get",
            if req.method == Method::GET {
                text("ok".into())
            } else {
                error(&ApiError::method_not_allowed(
                    req.method.as_str(),
                    &req.path,
                ))
            },
        ),
        Route::Version => read_only("get", discovery::version()),
        Route::Api => read_only("get", discovery::api_versions(&app.url)),
        Route::Apis => read_only("get", discovery::group_list(&registry)),
        Route::Group(g) => match discovery::group(&registry, &g) {
            Some(v) => read_only("get", v),
            None => ("get", error(&ApiError::no_route(&req.path))),
        },
        Route::GroupVersion { group, version } => {
            match discovery::resource_list(&registry, &group, &version) {
                Some(v) => read_only("get", v),
                None => ("get", error(&ApiError::no_route(&req.path))),
            }
        }
        Route::OpenApi(which) => ("get", openapi::serve(app, which, &req)),
        Route::Resource(path) if reviews::handles(&path) => {
            ("create", reviews::serve(app, &registry, &path, &req))
        }
        Route::Resource(path) => objects::serve(app, &registry, path, req).await,
        Route::Unknown => ("", error(&ApiError::no_route(&req.path))),
    }
}
