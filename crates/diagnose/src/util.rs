//! Small helpers shared by the diagnoses: JSON access, times, quantities, events, selectors.

use chrono::{DateTime, Utc};
use cluster::{Cluster, EventsQuery};
use serde_json::Value;

/// The string at a JSON pointer, or "".
pub(crate) fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The array at a JSON pointer, or an empty slice.
pub(crate) fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The integer at a JSON pointer (numbers, or numbers written as strings).
pub(crate) fn int(v: &Value, pointer: &str) -> Option<i64> {
    match v.pointer(pointer)? {
        Value::Number(n) => n.as_i64(),
        Value::String(t) => t.parse().ok(),
        _ => None,
    }
}

/// Cuts a text to `max` characters (on a character boundary), marking the cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

pub(crate) fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// "5m ago", "3h ago", "12d ago" for a time before `now`.
pub(crate) fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 2 * 86400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86400),
    }
}

/// A timestamp with its age: "2026-01-15T11:59:30Z (30s ago)".
pub(crate) fn at(now: DateTime<Utc>, text: &str) -> String {
    match time(text) {
        Some(t) => format!("{text} ({})", ago(now, t)),
        None => text.to_string(),
    }
}

/// A Kubernetes quantity ("500m", "2", "128Mi", "1.5Gi", "1e3") as a number of units
/// (cores for CPU, bytes for memory).
pub(crate) fn quantity(q: &str) -> Option<f64> {
    cluster::compact::quantity(q.trim())
}

/// Bytes as a person reads them ("512Mi", "1.5Gi").
pub(crate) fn bytes(b: f64) -> String {
    let units = [
        ("Gi", 1024f64.powi(3)),
        ("Mi", 1024f64.powi(2)),
        ("Ki", 1024.0),
    ];
    for (unit, size) in units {
        if b >= size {
            let v = b / size;
            return if (v - v.round()).abs() < 0.05 {
                format!("{}{unit}", v.round())
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    format!("{b}")
}

/// CPU cores as millicores ("250m").
pub(crate) fn millicores(cores: f64) -> String {
    format!("{}m", (cores * 1000.0).round())
}

/// One event, read from the raw API object.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub name: String,
    pub namespace: String,
    /// The part of the object (`spec.containers{web}`), when the event names one.
    pub field_path: String,
    pub event_type: String,
    pub reason: String,
    pub message: String,
    pub count: i64,
    pub last: Option<DateTime<Utc>>,
}

impl Event {
    pub(crate) fn from_raw(e: &Value) -> Event {
        let last = [
            "/series/lastObservedTime",
            "/lastTimestamp",
            "/eventTime",
            "/firstTimestamp",
            "/metadata/creationTimestamp",
        ]
        .iter()
        .find_map(|p| time(s(e, p)));
        let count = int(e, "/series/count")
            .or_else(|| int(e, "/count"))
            .unwrap_or(1)
            .max(1);
        Event {
            name: s(e, "/involvedObject/name").to_string(),
            namespace: s(e, "/involvedObject/namespace").to_string(),
            field_path: s(e, "/involvedObject/fieldPath").to_string(),
            event_type: s(e, "/type").to_string(),
            reason: s(e, "/reason").to_string(),
            message: s(e, "/message").to_string(),
            count,
            last,
        }
    }

    /// "BackOff x14 (last 12s ago): Back-off restarting failed container ...".
    pub(crate) fn line(&self, now: DateTime<Utc>) -> String {
        let count = if self.count > 1 {
            format!(" x{}", self.count)
        } else {
            String::new()
        };
        let when = self
            .last
            .map(|t| format!(" (last {})", ago(now, t)))
            .unwrap_or_default();
        format!("{}{count}{when}: {}", self.reason, cut(&self.message, 240))
    }
}

/// The events of one namespace (or all) about objects of a kind, newest last. A failure to
/// read them is said in `checked` and yields no events: a diagnosis goes on without them.
pub(crate) async fn events(
    c: &Cluster,
    namespace: Option<&str>,
    kind: &str,
    name: Option<&str>,
    context: Option<&str>,
    checked: &mut Vec<String>,
) -> Vec<Event> {
    let q = EventsQuery {
        namespace: namespace.map(str::to_string),
        all_namespaces: namespace.is_none(),
        kind: Some(kind.to_string()),
        name: name.map(str::to_string),
        context: context.map(str::to_string),
        ..Default::default()
    };
    match c.events(&q).await {
        Ok(raw) => raw.iter().map(Event::from_raw).collect(),
        Err(e) => {
            let place = namespace.unwrap_or("all namespaces");
            checked.push(format!(
                "events of {kind}s in {place} could not be read ({}): {}",
                e.kind.code(),
                cut(&e.message, 160)
            ));
            Vec::new()
        }
    }
}

/// A label selector (`matchLabels` and `matchExpressions`) as the query string the API takes.
pub(crate) fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    for e in arr(selector, "/matchExpressions") {
        let key = s(e, "/key");
        let values: Vec<&str> = arr(e, "/values").iter().filter_map(Value::as_str).collect();
        match s(e, "/operator") {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// A map of labels as `k=v,k2=v2` (sorted by the map's order).
pub(crate) fn labels_string(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The key a list item is matched by across two versions of a list (Kubernetes' merge keys):
/// its `name`, else its port, key, type, IP or mount path. `None` for scalars.
pub(crate) fn item_key(item: &Value) -> Option<String> {
    let o = item.as_object()?;
    for k in [
        "name",
        "containerPort",
        "port",
        "key",
        "type",
        "ip",
        "mountPath",
        "devicePath",
        "topologyKey",
    ] {
        match o.get(k) {
            Some(Value::String(v)) => return Some(v.clone()),
            Some(Value::Number(n)) => return Some(n.to_string()),
            _ => {}
        }
    }
    None
}

/// A value as a short text for evidence: strings as they are, others as compact JSON.
pub(crate) fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(not set)".to_string(),
        Some(Value::String(t)) => cut(t, 80),
        Some(other) => cut(&other.to_string(), 80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("1G"), Some(1e9));
        assert_eq!(quantity("lots"), None);
        assert_eq!(bytes(512.0 * 1024.0 * 1024.0), "512Mi");
        assert_eq!(millicores(0.25), "250m");
    }

    #[test]
    fn selectors_become_query_strings() {
        let sel = json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]});
        assert_eq!(selector_string(&sel), "app=web,tier in (a,b),!canary");
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("abc", 3), "abc");
    }
}
