//! `?watch=true`: a stream of `{"type": ..., "object": ...}` lines. ADDED for what exists
//! (unless the client resumes from a resourceVersion), then every change made through the API.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::App;
use super::http::{Body, Req};
use super::objects::{Format, negotiate, selectors};
use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::{ChangeType, StoredObject};
use crate::table;

/// The longest a watch stays open when the client sets no `timeoutSeconds`.
const DEFAULT_TIMEOUT: u64 = 1800;

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// Renders objects in the format the client asked for.
struct Renderer {
    format: Format,
    kind: String,
    now: chrono::DateTime<chrono::Utc>,
    columns_sent: bool,
}

impl Renderer {
    fn line(&mut self, kind: ChangeType, o: &StoredObject) -> Bytes {
        match self.format {
            Format::Json => event_line(kind.as_str(), &o.json),
            Format::Metadata => {
                let m = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.value["metadata"]});
                event_line(kind.as_str(), m.to_string().as_bytes())
            }
            Format::Table(include) => {
                // Column definitions go with the first event only, as the API server does.
                let mut t = table::table(
                    &self.kind,
                    [&o.value],
                    self.now,
                    include,
                    !self.columns_sent,
                );
                self.columns_sent = true;
                t["metadata"]["resourceVersion"] = o.value["metadata"]["resourceVersion"].clone();
                event_line(kind.as_str(), t.to_string().as_bytes())
            }
        }
    }
}

/// Starts a watch.
pub fn serve(
    app: &App,
    rt: &ResourceType,
    namespace: Option<&str>,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    let format = negotiate(req)?;
    let (labels, fields) = selectors(rt, req)?;
    let since = match req.param("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resourceVersion {v:?}: expected a resourceVersion from a list or get"
            ))
        })?),
    };
    let send_initial = since.is_none() || req.flag("sendInitialEvents");
    let initial_end_bookmark = req.flag("sendInitialEvents") && req.flag("allowWatchBookmarks");
    let timeout = match req.int("timeoutSeconds")? {
        Some(n) if n > 0 => n as u64,
        _ => DEFAULT_TIMEOUT,
    };
    let key = rt.key();
    let namespace = namespace.map(str::to_string);
    let matches = move |o: &StoredObject| {
        namespace.as_deref().is_none_or(|ns| ns == o.namespace())
            && labels.matches(&o.value)
            && fields.matches(&o.value)
    };
    let subscription = app
        .store
        .subscribe(if send_initial { None } else { since })?;
    let (initial, floor) = if send_initial {
        let page = app.store.list(&key, None, &|_| true, None, None);
        let rv = page.rv;
        (page.items, rv)
    } else {
        (Vec::new(), subscription.rv)
    };
    let mut renderer = Renderer {
        format,
        kind: rt.kind.clone(),
        now: app.store.now(),
        columns_sent: false,
    };
    let bookmark = json!({"kind": rt.kind, "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": floor.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut shutdown = app.shutdown.clone();
    let mut live = subscription.live;
    let backlog = subscription.backlog;
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut lines: Vec<Bytes> = Vec::new();
        for o in initial.iter().filter(|o| matches(o)) {
            lines.push(renderer.line(ChangeType::Added, o));
        }
        if initial_end_bookmark {
            lines.push(event_line("BOOKMARK", bookmark.to_string().as_bytes()));
        }
        for c in backlog
            .iter()
            .filter(|c| c.resource == key && matches(&c.object))
        {
            lines.push(renderer.line(c.kind, &c.object));
        }
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
                change = live.recv() => match change {
                    Ok(c) => {
                        if c.rv <= floor || c.resource != key || !matches(&c.object) {
                            continue;
                        }
                        if tx.send(renderer.line(c.kind, &c.object)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let status = ApiError::expired("the watch fell too far behind; list again and restart the watch").to_status();
                        let _ = tx.send(event_line("ERROR", status.to_string().as_bytes())).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
