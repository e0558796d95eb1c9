//! `--request-log`: one JSON line per request, so tests can prove what a client sent.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::json;

/// An append-only file of request records.
pub struct RequestLog {
    file: Mutex<std::fs::File>,
}

/// One request, as recorded.
pub struct Entry<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub user_agent: &'a str,
    /// The user the request acted as (after impersonation); empty when unauthenticated.
    pub user: &'a str,
    /// The `Impersonate-User` header, as sent.
    pub impersonate_user: Option<&'a str>,
    /// The `Impersonate-Group` headers, as sent.
    pub impersonate_groups: &'a [String],
    pub verb: &'a str,
    pub status: u16,
    pub duration_ms: f64,
}

impl RequestLog {
    /// Opens (creating or appending to) the file.
    pub fn open(path: &Path) -> std::io::Result<RequestLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(RequestLog {
            file: Mutex::new(file),
        })
    }

    /// Appends one line. A failed write is reported on stderr and does not fail the request.
    pub fn record(&self, e: &Entry<'_>) {
        let line = json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "method": e.method, "path": e.path, "query": e.query, "userAgent": e.user_agent,
            "user": e.user, "impersonateUser": e.impersonate_user, "impersonateGroups": e.impersonate_groups,
            "verb": e.verb, "status": e.status, "durationMs": (e.duration_ms * 1000.0).round() / 1000.0,
        });
        let mut text = line.to_string();
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = file.write_all(text.as_bytes()) {
            tracing::warn!("cannot write the request log: {err}");
        }
    }
}
