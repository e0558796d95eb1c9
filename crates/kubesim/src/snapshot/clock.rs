//! Timestamps: parsing, formatting and finding a snapshot's "now".

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Parses an RFC 3339 timestamp as Kubernetes writes them.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Formats a time the way the API server does (`2024-01-02T03:04:05Z`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn looks_like_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[0].is_ascii_digit()
}

/// The newest RFC 3339 timestamp anywhere in a JSON value.
pub fn newest_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) if looks_like_time(s) => parse_time(s),
        Value::Array(a) => a.iter().filter_map(newest_timestamp).max(),
        Value::Object(m) => m.values().filter_map(newest_timestamp).max(),
        _ => None,
    }
}
