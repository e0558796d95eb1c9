//! The audit log (`--audit-log FILE|-`): one JSON line per event an operator must be able to
//! see afterwards — every tool call and run, every change plan, decision and request sent —
//! with the time, the session and the caller.
//!
//! Records are written by the record stage of the call path and by the change path; their
//! text went through the shape stage first, so no Secret value reaches the log.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::call::Caller;

/// Where audit records go. Each record is one line, written whole and flushed at once, so a
/// reader (or a crash) never sees half a record.
pub struct AuditLog {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Appends to a file (created when missing, mode 0600: the log names people and programs).
    pub fn to_file(path: &Path) -> std::io::Result<AuditLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(AuditLog::to_writer(file))
    }

    /// Writes to standard output (only where stdout is not the protocol channel).
    pub fn to_stdout() -> AuditLog {
        AuditLog::to_writer(std::io::stdout())
    }

    /// Writes to any writer (tests read the log back from a buffer).
    pub fn to_writer(writer: impl Write + Send + 'static) -> AuditLog {
        AuditLog {
            sink: Mutex::new(Box::new(writer)),
        }
    }

    /// Writes one record: `{time, event, session, caller, ...fields}`. A record that cannot
    /// be written is reported on stderr (the log must not fail the call it records).
    pub fn write(&self, event: &str, session: &str, caller: &Caller, fields: Map<String, Value>) {
        let mut record = Map::new();
        record.insert(
            "time".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        record.insert("event".into(), Value::String(event.to_string()));
        record.insert("session".into(), Value::String(session.to_string()));
        record.insert("caller".into(), Value::String(caller.name().to_string()));
        for (k, v) in fields {
            record.entry(k).or_insert(v);
        }
        let mut line = Value::Object(record).to_string();
        line.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = sink.write_all(line.as_bytes()).and_then(|()| sink.flush()) {
            tracing::error!("cannot write the audit log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_record_is_one_json_line_with_time_session_and_caller() {
        let buffer = Buffer::default();
        let log = AuditLog::to_writer(buffer.clone());
        let mut fields = Map::new();
        fields.insert("tool".into(), "kube_list".into());
        fields.insert("session".into(), "forged".into());
        log.write("call", "s1", &Caller::named("alice"), fields);
        log.write("call", "s1", &Caller::named("bob"), Map::new());
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "call");
        assert_eq!(lines[0]["caller"], "alice");
        assert_eq!(lines[0]["tool"], "kube_list");
        // A field cannot overwrite the record's own keys.
        assert_eq!(lines[0]["session"], "s1");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["caller"], "bob");
    }
}
