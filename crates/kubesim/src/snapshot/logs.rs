//! Container logs held by a snapshot, and the `/log` query options applied to them.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use regex::Regex;

use super::SnapshotError;
use super::clock::parse_time;

/// Which log: a container of a pod, current instance or the previous (terminated) one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogKey {
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// The previous, terminated instance rather than the current one.
    pub previous: bool,
}

/// One log line; `time` is set when the line started with an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When the line was written, if the snapshot says.
    pub time: Option<DateTime<Utc>>,
    /// The text, without its timestamp or newline.
    pub text: String,
}

/// What the snapshot holds for one container's log.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerLog {
    /// The captured lines.
    Lines(Vec<LogLine>),
    /// The capture failed; the text is the error the capturing tool recorded.
    Unavailable(String),
}

/// Options of a `/log` request that shape the text.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Keep only the last N lines.
    pub tail_lines: Option<u64>,
    /// Keep lines written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Cut the answer at this many bytes.
    pub limit_bytes: Option<u64>,
}

impl ContainerLog {
    /// Parses log text; lines may begin with an RFC 3339 timestamp and a space.
    pub fn parse(text: &str) -> ContainerLog {
        ContainerLog::Lines(text.lines().map(parse_line).collect())
    }

    /// Applies the query. Lines without a timestamp take the previous line's, or
    /// `started` for leading lines, so that `sinceSeconds` and `timestamps` work on them.
    pub fn render(lines: &[LogLine], query: &LogQuery, started: DateTime<Utc>) -> String {
        let mut last = started;
        let stamped: Vec<(DateTime<Utc>, &str)> = lines
            .iter()
            .map(|l| {
                if let Some(t) = l.time {
                    last = t;
                }
                (last, l.text.as_str())
            })
            .filter(|(t, _)| query.since.is_none_or(|since| *t >= since))
            .collect();
        let skip = match query.tail_lines {
            Some(n) => stamped.len().saturating_sub(n as usize),
            None => 0,
        };
        let mut out = String::new();
        for (t, text) in &stamped[skip..] {
            if query.timestamps {
                out.push_str(&t.to_rfc3339_opts(SecondsFormat::Nanos, true));
                out.push(' ');
            }
            out.push_str(text);
            out.push('\n');
        }
        if let Some(limit) = query.limit_bytes {
            let mut cut = (limit as usize).min(out.len());
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
        out
    }
}

fn parse_line(line: &str) -> LogLine {
    if let Some((head, rest)) = line.split_once(' ')
        && head.len() >= 20
        && head.as_bytes()[10] == b'T'
        && let Some(time) = parse_time(head)
    {
        return LogLine {
            time: Some(time),
            text: rest.to_string(),
        };
    }
    LogLine {
        time: None,
        text: line.to_string(),
    }
}

static START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^==== START logs for container (\S+) of pod ([^/\s]+)/(\S+) ====$")
        .expect("static regex")
});
static END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^==== END logs for container \S+ of pod \S+ ====$").expect("static regex")
});

/// The prefix kubectl writes instead of a log it could not read.
const CAPTURE_ERROR: &str = "Request log error: ";

/// All container logs of a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    map: HashMap<LogKey, ContainerLog>,
}

impl Logs {
    /// Stores a log.
    pub fn insert(&mut self, key: LogKey, log: ContainerLog) {
        self.map.insert(key, log);
    }

    /// The log for a container, if the snapshot has one.
    pub fn get(&self, key: &LogKey) -> Option<&ContainerLog> {
        self.map.get(key)
    }

    /// Number of container logs held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no log is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every log with its key.
    pub fn iter(&self) -> impl Iterator<Item = (&LogKey, &ContainerLog)> {
        self.map.iter()
    }

    /// The newest line timestamp of all logs.
    pub fn newest_timestamp(&self) -> Option<DateTime<Utc>> {
        self.map
            .values()
            .filter_map(|l| match l {
                ContainerLog::Lines(lines) => lines.iter().filter_map(|l| l.time).max(),
                ContainerLog::Unavailable(_) => None,
            })
            .max()
    }

    /// Reads `logs/NAMESPACE/POD/CONTAINER.log` or `CONTAINER.previous.log`.
    pub fn add_log_file(&mut self, path: &str, contents: &[u8]) -> Result<(), SnapshotError> {
        let malformed = |reason: &str| SnapshotError::Malformed {
            path: path.to_string(),
            line: 1,
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let [_, namespace, pod, file] = parts[..] else {
            return Err(malformed(
                "a log file must be at logs/NAMESPACE/POD/CONTAINER.log",
            ));
        };
        let (container, previous) = if let Some(c) = file.strip_suffix(".previous.log") {
            (c, true)
        } else if let Some(c) = file.strip_suffix(".log") {
            (c, false)
        } else {
            return Err(malformed(
                "a log file name must end in .log or .previous.log",
            ));
        };
        let text =
            std::str::from_utf8(contents).map_err(|_| malformed("the log is not UTF-8 text"))?;
        self.insert(
            LogKey {
                namespace: namespace.into(),
                pod: pod.into(),
                container: container.into(),
                previous,
            },
            ContainerLog::parse(text),
        );
        Ok(())
    }

    /// Reads a `kubectl cluster-info dump` `logs.txt`, framed per container.
    pub fn add_dump_file(&mut self, path: &str, contents: &[u8]) -> Result<(), SnapshotError> {
        let text = String::from_utf8_lossy(contents);
        let mut current: Option<(LogKey, Vec<&str>)> = None;
        let mut found = 0;
        for (i, line) in text.lines().enumerate() {
            if let Some(c) = START.captures(line) {
                if current.is_some() {
                    return Err(SnapshotError::Malformed {
                        path: path.to_string(),
                        line: i as u64 + 1,
                        reason: "a START marker appears before the previous container's END marker"
                            .into(),
                    });
                }
                let key = LogKey {
                    container: c[1].to_string(),
                    namespace: c[2].to_string(),
                    pod: c[3].to_string(),
                    previous: false,
                };
                current = Some((key, Vec::new()));
            } else if END.is_match(line) {
                if let Some((key, lines)) = current.take() {
                    self.insert(key, dump_log(&lines));
                    found += 1;
                }
            } else if let Some((_, lines)) = current.as_mut() {
                lines.push(line);
            }
        }
        if let Some((key, lines)) = current.take() {
            self.insert(key, dump_log(&lines));
            found += 1;
        }
        if found == 0 && !text.trim().is_empty() {
            return Err(SnapshotError::Malformed {
                path: path.to_string(),
                line: 1,
                reason: "no `==== START logs for container C of pod NS/POD ====` framing found"
                    .into(),
            });
        }
        Ok(())
    }
}

fn dump_log(lines: &[&str]) -> ContainerLog {
    match lines {
        [only] if only.starts_with(CAPTURE_ERROR) => {
            ContainerLog::Unavailable(only[CAPTURE_ERROR.len()..].to_string())
        }
        _ => ContainerLog::parse(&lines.join("\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_framing_is_parsed_and_capture_errors_recognised() {
        let text = "==== START logs for container a of pod ns/p ====\nhello\nworld\n==== END logs for container a of pod ns/p ====\n==== START logs for container b of pod ns/p ====\nRequest log error: boom (get pods p)\n==== END logs for container b of pod ns/p ====\n";
        let mut logs = Logs::default();
        logs.add_dump_file("ns/p/logs.txt", text.as_bytes())
            .unwrap();
        let key = |c: &str| LogKey {
            namespace: "ns".into(),
            pod: "p".into(),
            container: c.into(),
            previous: false,
        };
        match logs.get(&key("a")).unwrap() {
            ContainerLog::Lines(l) => assert_eq!(l.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            logs.get(&key("b")),
            Some(&ContainerLog::Unavailable("boom (get pods p)".into()))
        );
    }

    #[test]
    fn query_options_apply_in_kubelet_order() {
        let ContainerLog::Lines(lines) = ContainerLog::parse(
            "2024-01-01T00:00:00Z one\n2024-01-01T00:01:00Z two\ncontinued\n2024-01-01T00:02:00Z three",
        ) else {
            unreachable!()
        };
        let start = parse_time("2023-12-31T23:00:00Z").unwrap();
        let q = LogQuery {
            since: parse_time("2024-01-01T00:01:00Z"),
            ..Default::default()
        };
        assert_eq!(
            ContainerLog::render(&lines, &q, start),
            "two\ncontinued\nthree\n"
        );
        let q = LogQuery {
            tail_lines: Some(1),
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            ContainerLog::render(&lines, &q, start),
            "2024-01-01T00:02:00.000000000Z three\n"
        );
        let q = LogQuery {
            limit_bytes: Some(5),
            ..Default::default()
        };
        assert_eq!(ContainerLog::render(&lines, &q, start), "one\nt");
    }
}
