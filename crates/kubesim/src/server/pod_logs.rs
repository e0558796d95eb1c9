//! `GET .../pods/NAME/log`: container logs from the snapshot, with the kubelet's options and
//! the API server's errors.

use chrono::{DateTime, Utc};
use http::Response;
use serde_json::Value;

use super::App;
use super::http::{Body, Req, text};
use crate::resources::ResourceType;
use crate::snapshot::{ContainerLog, LogKey, LogQuery, parse_time};
use crate::status::ApiError;

fn names<'a>(pod: &'a Value, field: &str) -> Vec<&'a str> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|f| {
        pod.pointer(&format!("/status/{f}"))
            .and_then(Value::as_array)
    })
    .flatten()
    .find(|s| s.get("name").and_then(Value::as_str) == Some(container))
}

fn time_at(v: Option<&Value>, path: &str) -> Option<DateTime<Utc>> {
    v.and_then(|v| v.pointer(path))
        .and_then(Value::as_str)
        .and_then(parse_time)
}

/// Serves a pod's log.
pub fn serve(
    app: &App,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &Req,
) -> Result<Response<Body>, ApiError> {
    let pod = app
        .store
        .get(&rt.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    let pod = &pod.value;
    let containers = names(pod, "containers");
    let inits = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    let container = match req.param("container").filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None if containers.len() == 1 => containers[0].to_string(),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !inits.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    inits.join(" ")
                ));
            }
            return Err(ApiError::bad_request(message));
        }
    };
    if !containers.contains(&container.as_str())
        && !inits.contains(&container.as_str())
        && !ephemeral.contains(&container.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let query = log_query(app, req)?;
    let previous = req.flag("previous");
    let key = LogKey {
        namespace: ns.to_string(),
        pod: name.to_string(),
        container: container.clone(),
        previous,
    };
    let status = container_status(pod, &container);
    let started = if previous {
        time_at(status, "/lastState/terminated/startedAt")
    } else {
        time_at(status, "/state/running/startedAt")
            .or(time_at(status, "/state/terminated/startedAt"))
    }
    .or_else(|| time_at(Some(pod), "/status/startTime"))
    .or_else(|| time_at(Some(pod), "/metadata/creationTimestamp"))
    .unwrap_or_else(|| app.store.now());
    match app.store.logs().get(&key) {
        Some(ContainerLog::Lines(lines)) => Ok(text(ContainerLog::render(lines, &query, started))),
        Some(ContainerLog::Unavailable(reason)) => Err(ApiError::internal(format!(
            "the snapshot holds no log for container {container}: the capture recorded this error instead: {reason}"
        ))),
        None if previous => Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        ))),
        None => {
            if pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                return Err(ApiError::bad_request(format!(
                    "pod {name} does not have a host assigned"
                )));
            }
            let restarted = status
                .and_then(|s| s.get("restartCount"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0;
            let waiting = status
                .and_then(|s| s.pointer("/state/waiting/reason"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| status.is_none().then(|| "ContainerCreating".to_string()));
            match waiting {
                Some(reason) if !restarted => Err(ApiError::bad_request(format!(
                    "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
                ))),
                // A started container whose log the snapshot did not capture: nothing written.
                _ => Ok(text(String::new())),
            }
        }
    }
}

fn log_query(app: &App, req: &Req) -> Result<LogQuery, ApiError> {
    let positive = |name: &str, min: i64| -> Result<Option<u64>, ApiError> {
        match req.int(name)? {
            Some(n) if n < min => Err(ApiError::invalid(
                "PodLogOptions",
                "",
                name,
                &format!("Invalid value: {n}: must be greater than or equal to {min}"),
            )),
            other => Ok(other.map(|n| n as u64)),
        }
    };
    let since_seconds = positive("sinceSeconds", 1)?;
    let since_time = match req.param("sinceTime") {
        Some(t) if !t.is_empty() => Some(parse_time(t).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid sinceTime {t:?}: expected an RFC 3339 time such as 2024-01-02T03:04:05Z"
            ))
        })?),
        _ => None,
    };
    if since_seconds.is_some() && since_time.is_some() {
        return Err(ApiError::invalid(
            "PodLogOptions",
            "",
            "sinceSeconds",
            "Forbidden: at most one of sinceTime or sinceSeconds may be specified",
        ));
    }
    let since = since_time
        .or_else(|| since_seconds.map(|s| app.store.now() - chrono::Duration::seconds(s as i64)));
    Ok(LogQuery {
        tail_lines: positive("tailLines", 0)?,
        since,
        timestamps: req.flag("timestamps"),
        limit_bytes: positive("limitBytes", 1)?,
    })
}
