//! The JSON-text path of the redactor (`Redactor::shape_json`) gives exactly what the walk
//! over a parsed value gives, for every object of the real-world fixture, the redaction
//! fixture, and hand-made objects aimed at each rule.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use shaping::Redactor;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every object of a JSON file: a list's items, or the document itself.
fn objects_of(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(mut m) if m.get("items").is_some_and(Value::is_array) => {
            if let Some(Value::Array(items)) = m.remove("items") {
                out.extend(items);
            }
        }
        other => out.push(other),
    }
}

fn fixture_objects() -> Vec<Value> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("fixtures/real-world/aks-2020-cluster-info-dump")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("the fixture is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("a fixture file");
                if let Ok(v) = serde_json::from_str(&text) {
                    objects_of(v, &mut out);
                }
            }
        }
    }
    let redaction = std::fs::read_to_string(
        root().join("crates/kubecode/tests/fixtures/redaction/objects.yaml"),
    )
    .expect("the redaction fixture");
    for doc in redaction.split("\n---") {
        let doc: String = doc
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        if let Ok(v) = serde_json::from_str(doc.trim()) {
            out.push(v);
        }
    }
    out
}

fn hand_made() -> Vec<Value> {
    vec![
        json!({"kind": "Pod", "spec": {"containers": [{"name": "c", "env": [
            {"name": "DB_PASSWORD", "value": "pa55word-plain"},
            {"name": "MODE", "value": "fast"},
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}}
        ]}]}}),
        json!({"metadata": {"annotations": {
            "config": "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"data\":{\"k\":\"dmFsdWUtb25l\"}}",
            "manifest": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  k: value-two\n",
            "flow": "{kind: Secret, apiVersion: v1, stringData: {k: value-three}}",
            "url": "postgres://app:s3cr3t-pass@db:5432/x",
            "auth": "Authorization: Bearer abcdefghijklmnop123"
        }}}),
        json!({"spec": {"password": "hunter2-secret", "apiKey": "true", "token": ""}}),
        json!({"status": {"message": "learned value sup3r-s3cret-value inside"}}),
        json!({"items": ["sup3r-s3cret-value", "c3VwM3ItczNjcmV0LXZhbHVl", {"nested": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlX19f"}]}),
        json!({"esc\"aped": "line\nbreak \u{e9} \\ done", "n": [1, -2.5e-3, true, false, null]}),
        json!({"kind": "Secret", "apiVersion": "v1", "data": {"a": "YWJjZGVmZ2hpams="}}),
        json!("a bare string"),
        json!(42),
    ]
}

#[test]
fn the_text_path_agrees_with_the_walk() {
    let objects: Vec<Value> = fixture_objects().into_iter().chain(hand_made()).collect();
    assert!(
        objects.len() > 50,
        "the fixtures hold {} objects",
        objects.len()
    );
    let redactor = Redactor::new();
    let learned_secret = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "namespace": "default"},
        "data": {"v": "c3VwM3ItczNjcmV0LXZhbHVl"}});
    let secrets: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .chain(std::iter::once(&learned_secret))
        .collect();
    assert!(redactor.learn(secrets) > 0);
    let mut passed_as_is = 0;
    for object in &objects {
        let text = object.to_string();
        let mut walked = object.clone();
        redactor.shape(&mut walked);
        let shaped = redactor.shape_json(text.clone());
        if shaped == text {
            passed_as_is += 1;
        }
        let shaped: Value = serde_json::from_str(&shaped).expect("shape_json gives JSON");
        assert_eq!(shaped, walked, "the two paths differ on {text}");
    }
    // The point of the text path: most objects pass unparsed.
    assert!(
        passed_as_is * 2 > objects.len(),
        "only {passed_as_is} of {} objects passed as they were",
        objects.len()
    );
}

#[test]
fn text_that_is_not_json_is_shaped_as_a_string() {
    let redactor = Redactor::new();
    let shaped = redactor.shape_json("password=hunter2-secret not json".into());
    assert_eq!(
        serde_json::from_str::<Value>(&shaped).expect("a JSON string"),
        json!("password=[redacted] not json")
    );
}
