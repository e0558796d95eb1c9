//! Cluster snapshots: the objects and container logs a server starts from.
//!
//! Two on-disk layouts are read by one loader (CONTRACT §4): every `*.json`, `*.yaml` and
//! `*.yml` file outside `logs/` holds objects (single objects, multi-document YAML, `List`
//! documents, which is also what `kubectl cluster-info dump` writes), container logs come from
//! `logs/NS/POD/CONTAINER[.previous].log` and from the framed `NS/POD/logs.txt` of a dump.

mod clock;
mod logs;
mod parse;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use clock::{format_time, newest_timestamp, parse_time};
pub use logs::{ContainerLog, LogKey, LogLine, LogQuery, Logs};

/// Why a snapshot could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The path could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file holds something that is not a set of Kubernetes objects.
    #[error("{path}:{line}: {reason}")]
    Malformed {
        /// The file, relative to the snapshot directory.
        path: String,
        /// 1-based line where the problem was found.
        line: u64,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The directory holds no object at all.
    #[error(
        "{0} holds no Kubernetes objects: expected *.yaml/*.json manifests or the output of `kubectl cluster-info dump --output-directory`"
    )]
    Empty(PathBuf),
}

/// How strictly a snapshot is read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Skip malformed documents with a warning instead of refusing the snapshot.
    pub lenient: bool,
    /// The snapshot's clock; by default the newest timestamp found in it.
    pub now: Option<DateTime<Utc>>,
}

/// An object read from a file, with where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct SourcedObject {
    /// The object, with `apiVersion`, `kind` and `metadata.name` present.
    pub object: Value,
    /// `file:line` it came from.
    pub source: String,
}

/// A loaded cluster snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every object, in file order.
    pub objects: Vec<SourcedObject>,
    /// Container logs.
    pub logs: Logs,
    /// The snapshot's clock: ages and `sinceSeconds` are measured from it.
    pub now: DateTime<Utc>,
    /// Problems skipped under `lenient`.
    pub warnings: Vec<String>,
}

/// One file of a snapshot, already read into memory.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    /// Path relative to the snapshot root, with `/` separators.
    pub path: String,
    /// Contents.
    pub contents: Vec<u8>,
}

impl Snapshot {
    /// Reads a snapshot directory.
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Snapshot, SnapshotError> {
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let snapshot = Snapshot::from_files(&files, options)?;
        if snapshot.objects.is_empty() {
            return Err(SnapshotError::Empty(dir.to_path_buf()));
        }
        Ok(snapshot)
    }

    /// Builds a snapshot from files held in memory (the embedded demo uses this).
    pub fn from_files(
        files: &[SnapshotFile],
        options: &LoadOptions,
    ) -> Result<Snapshot, SnapshotError> {
        let mut objects = Vec::new();
        let mut logs = Logs::default();
        let mut warnings = Vec::new();
        let mut seen = HashSet::new();
        for file in files {
            let outcome = if file.path.starts_with("logs/") {
                logs.add_log_file(&file.path, &file.contents)
                    .map(|()| Vec::new())
            } else if file.path.ends_with("/logs.txt") || file.path == "logs.txt" {
                logs.add_dump_file(&file.path, &file.contents)
                    .map(|()| Vec::new())
            } else if is_manifest(&file.path) {
                parse::objects_in_file(&file.path, &file.contents)
            } else {
                Ok(Vec::new())
            };
            let (found, errors) = match outcome {
                Ok(found) => (found, Vec::new()),
                Err(e) => (Vec::new(), vec![e]),
            };
            let mut problems = errors;
            for sourced in found {
                match sourced {
                    Ok(o) => {
                        let id = object_identity(&o.object);
                        if seen.insert(id.clone()) {
                            objects.push(o);
                        } else {
                            problems.push(SnapshotError::Malformed {
                                path: file.path.clone(),
                                line: line_of(&o.source),
                                reason: format!("{} is defined twice; keep one definition", id),
                            });
                        }
                    }
                    Err(e) => problems.push(e),
                }
            }
            for problem in problems {
                if options.lenient {
                    warnings.push(format!("skipped: {problem}"));
                } else {
                    return Err(problem);
                }
            }
        }
        let now = options.now.unwrap_or_else(|| {
            let from_objects = objects
                .iter()
                .filter_map(|o| newest_timestamp(&o.object))
                .max();
            [from_objects, logs.newest_timestamp()]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or_else(Utc::now)
        });
        Ok(Snapshot {
            objects,
            logs,
            now,
            warnings,
        })
    }
}

fn line_of(source: &str) -> u64 {
    source
        .rsplit(':')
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(1)
}

/// `apiVersion/kind namespace/name`: what makes an object unique in a snapshot.
fn object_identity(o: &Value) -> String {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or("");
    let ns = s("/metadata/namespace");
    let name = s("/metadata/name");
    let api_version = s("/apiVersion");
    let kind = s("/kind");
    if ns.is_empty() {
        format!("{api_version} {kind} {name}")
    } else {
        format!("{api_version} {kind} {ns}/{name}")
    }
}

fn is_manifest(path: &str) -> bool {
    path.ends_with(".json") || path.ends_with(".yaml") || path.ends_with(".yml")
}

fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<SnapshotFile>,
) -> Result<(), SnapshotError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(io(&path))?;
        if file_type.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let wanted = rel.starts_with("logs/") || rel.ends_with("logs.txt") || is_manifest(&rel);
            if wanted {
                let contents = std::fs::read(&path).map_err(io(&path))?;
                out.push(SnapshotFile {
                    path: rel,
                    contents,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &str) -> SnapshotFile {
        SnapshotFile {
            path: path.into(),
            contents: contents.as_bytes().to_vec(),
        }
    }

    #[test]
    fn duplicate_objects_are_refused_with_their_file() {
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n";
        let err = Snapshot::from_files(
            &[file("a.yaml", doc), file("b.yaml", doc)],
            &LoadOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("b.yaml:1:"), "{err}");
        assert!(err.to_string().contains("defined twice"), "{err}");
    }

    #[test]
    fn lenient_keeps_the_good_documents() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n";
        let opts = LoadOptions {
            lenient: true,
            ..Default::default()
        };
        let s = Snapshot::from_files(&[file("m.yaml", text)], &opts).unwrap();
        assert_eq!(s.objects.len(), 1);
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("m.yaml:5"), "{:?}", s.warnings);
    }

    #[test]
    fn clock_is_the_newest_timestamp() {
        let text = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","creationTimestamp":"2024-01-01T00:00:00Z"},
          "status":{"startTime":"2024-01-02T03:04:05Z"}}"#;
        let s = Snapshot::from_files(&[file("p.json", text)], &LoadOptions::default()).unwrap();
        assert_eq!(format_time(s.now), "2024-01-02T03:04:05Z");
    }
}
