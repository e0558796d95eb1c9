//! Reading Kubernetes objects out of JSON and YAML files, with line numbers for errors.

use serde_json::Value;

use super::{SnapshotError, SourcedObject};

type Found = Vec<Result<SourcedObject, SnapshotError>>;

/// Parses every object in one manifest file. A syntax error fails the file (or, for YAML,
/// the document it is in); an object-level problem fails only that object.
pub fn objects_in_file(path: &str, contents: &[u8]) -> Result<Found, SnapshotError> {
    let text = std::str::from_utf8(contents).map_err(|e| SnapshotError::Malformed {
        path: path.to_string(),
        line: line_at(contents, e.valid_up_to()),
        reason: "the file is not UTF-8 text".into(),
    })?;
    if path.ends_with(".json") {
        json_objects(path, text)
    } else {
        Ok(yaml_objects(path, text))
    }
}

fn line_at(bytes: &[u8], offset: usize) -> u64 {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

fn json_objects(path: &str, text: &str) -> Result<Found, SnapshotError> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(v)) => {
                let skipped = text[start..].len() - text[start..].trim_start().len();
                let line = line_at(text.as_bytes(), start + skipped);
                out.extend(expand(path, line, v));
            }
            Some(Err(e)) => {
                return Err(SnapshotError::Malformed {
                    path: path.to_string(),
                    line: e.line() as u64,
                    reason: format!("invalid JSON: {e}"),
                });
            }
        }
    }
    Ok(out)
}

/// Splits multi-document YAML at `---` lines, keeping each document's first line number.
fn yaml_documents(text: &str) -> Vec<(u64, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1u64;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let is_separator =
            line.starts_with("---") && line[3..].chars().next().is_none_or(|c| c.is_whitespace());
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = i as u64 + 1;
            // Keep the line (blanked) so that line numbers inside the document stay right.
            current.push_str(&" ".repeat(3));
            current.push_str(&line[3..]);
        } else {
            current.push_str(line);
        }
    }
    docs.push((start, current));
    docs
}

fn yaml_objects(path: &str, text: &str) -> Found {
    let mut out = Vec::new();
    for (start, doc) in yaml_documents(text) {
        let has_content = doc
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if !has_content {
            continue;
        }
        match serde_saphyr::from_str::<Value>(&doc) {
            Ok(v) => {
                let first = doc
                    .lines()
                    .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .unwrap_or(0) as u64;
                out.extend(expand(path, start + first, v));
            }
            Err(e) => {
                let line = e.location().map(|l| l.line()).unwrap_or(1);
                out.push(Err(SnapshotError::Malformed {
                    path: path.to_string(),
                    line: start + line.saturating_sub(1),
                    reason: format!("invalid YAML: {}", first_line(&e.to_string())),
                }));
            }
        }
    }
    out
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Turns one parsed document into objects: a `List` becomes its items, whose missing
/// `kind`/`apiVersion` come from the list (as `kubectl get -o json` omits them).
fn expand(path: &str, line: u64, doc: Value) -> Found {
    let malformed = |reason: String| SnapshotError::Malformed {
        path: path.to_string(),
        line,
        reason,
    };
    let Value::Object(map) = doc else {
        if doc.is_null() {
            return Vec::new();
        }
        return vec![Err(malformed(format!(
            "expected a Kubernetes object (a mapping with apiVersion, kind and metadata), found {}",
            type_name(&doc)
        )))];
    };
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let items = map.get("items").and_then(Value::as_array);
    if let (true, Some(items)) = (kind.ends_with("List"), items) {
        let item_kind = kind.trim_end_matches("List").to_string();
        let list_api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut item = item.clone();
                if let Value::Object(m) = &mut item {
                    if !item_kind.is_empty() && !m.contains_key("kind") {
                        m.insert("kind".into(), Value::String(item_kind.clone()));
                    }
                    if !list_api_version.is_empty() && !m.contains_key("apiVersion") {
                        m.insert(
                            "apiVersion".into(),
                            Value::String(list_api_version.to_string()),
                        );
                    }
                }
                validate(item)
                    .map_err(|reason| malformed(format!("item {i} of the {kind}: {reason}")))
            })
            .map(|r| {
                r.map(|object| SourcedObject {
                    object,
                    source: format!("{path}:{line}"),
                })
            })
            .collect();
    }
    vec![
        validate(Value::Object(map))
            .map(|object| SourcedObject {
                object,
                source: format!("{path}:{line}"),
            })
            .map_err(malformed),
    ]
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn validate(object: Value) -> Result<Value, String> {
    let Value::Object(map) = &object else {
        return Err(format!("expected a mapping, found {}", type_name(&object)));
    };
    for field in ["apiVersion", "kind"] {
        match map.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => return Err(format!("`{field}` must be a non-empty string")),
            None => {
                return Err(format!(
                    "the object has no `{field}`; add it (for example `apiVersion: v1`, `kind: Pod`)"
                ));
            }
        }
    }
    match map.get("metadata").and_then(|m| m.get("name")) {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => {
            return Err(
                "the object has no `metadata.name`; every object in a snapshot needs one".into(),
            );
        }
    }
    if let Some(ns) = map.get("metadata").and_then(|m| m.get("namespace"))
        && !ns.is_string()
    {
        return Err("`metadata.namespace` must be a string".into());
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(found: &Found) -> Vec<String> {
        found
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn yaml_errors_carry_the_file_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n";
        let found = yaml_objects("cm.yaml", text);
        let errs = errors(&found);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("cm.yaml:"), "{errs:?}");
        let line: u64 = errs[0].split(':').nth(1).unwrap().parse().unwrap();
        assert!((9..=10).contains(&line), "{errs:?}");
        assert!(found[0].is_ok());
    }

    #[test]
    fn json_syntax_errors_carry_the_line() {
        let err = objects_in_file("x.json", b"{\n \"kind\": \"Pod\",\n oops\n}").unwrap_err();
        assert!(err.to_string().starts_with("x.json:3:"), "{err}");
    }

    #[test]
    fn list_items_inherit_kind_and_api_version() {
        let text = r#"{"kind":"PodList","apiVersion":"v1","items":[{"metadata":{"name":"a","namespace":"n"}}]}"#;
        let found = objects_in_file("pods.json", text.as_bytes()).unwrap();
        let o = &found[0].as_ref().unwrap().object;
        assert_eq!(o["kind"], "Pod");
        assert_eq!(o["apiVersion"], "v1");
    }

    #[test]
    fn missing_fields_are_named() {
        let found = yaml_objects("a.yaml", "\n\napiVersion: v1\nmetadata: {name: x}\n");
        let errs = errors(&found);
        assert!(
            errs[0].starts_with("a.yaml:3:") && errs[0].contains("`kind`"),
            "{errs:?}"
        );
        let found = yaml_objects("b.yaml", "- 1\n- 2\n");
        assert!(errors(&found)[0].contains("found a list"));
    }
}
