//! Output size limits: the one routine that fits a JSON value into the limit while keeping
//! its shape. A list keeps whole items, an object keeps every key and cuts its largest
//! values, a string keeps its end (where a log's crash is) behind a marker; notes say what
//! was cut, so the caller can tell the model how many there were and how to ask for less.
//!
//! It works on the JSON text with borrowed raw values, so a result far over the limit is
//! never parsed whole: only what is kept is.

use serde_json::Value;
use serde_json::value::RawValue;

/// Characters of output a model receives by default (CONTRACT §3.4).
pub const DEFAULT_OUTPUT_LIMIT: usize = 24_000;

/// A value that fits.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// The value, cut where it had to be.
    pub value: Value,
    /// Whether anything was cut.
    pub truncated: bool,
    /// What was cut, one note per place (`result: 12 of 3000 items kept`).
    pub notes: Vec<String>,
}

impl Fitted {
    /// The notes as one sentence, followed by `hint` (how to ask for less).
    pub fn note(&self, hint: &str) -> String {
        let mut note = format!("Output cut to fit the limit ({}).", self.notes.join("; "));
        if !hint.is_empty() {
            note.push(' ');
            note.push_str(hint);
        }
        note
    }
}

impl Fitted {
    /// The value, and when it was cut and is an object, with `truncated: true` and a
    /// `note` (what was cut, then `hint`) added to it.
    pub fn into_noted(self, hint: &str) -> Value {
        let note = self.truncated.then(|| self.note(hint));
        let mut value = self.value;
        if let (Some(note), Value::Object(m)) = (note, &mut value) {
            m.insert("truncated".into(), Value::Bool(true));
            m.insert("note".into(), Value::String(note));
        }
        value
    }
}

/// Fits a value whose JSON text is at most `limit` bytes (so at most `limit` characters).
/// `root` names the value in the notes.
pub fn fit_value(value: Value, limit: usize, root: &str) -> Fitted {
    let text = value.to_string();
    if text.len() <= limit {
        return Fitted {
            value,
            truncated: false,
            notes: Vec::new(),
        };
    }
    drop(value);
    fit(&text, limit, root)
}

/// Fits JSON text into `limit` bytes of JSON. Text that is not JSON becomes `null`.
pub fn fit(json: &str, limit: usize, root: &str) -> Fitted {
    let mut notes = Vec::new();
    let value = fit_raw(json, limit, root, &mut notes);
    Fitted {
        value,
        truncated: !notes.is_empty(),
        notes,
    }
}

fn parse(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

fn fit_raw(raw: &str, budget: usize, path: &str, notes: &mut Vec<String>) -> Value {
    if raw.len() <= budget {
        return parse(raw);
    }
    match raw.trim_start().as_bytes().first() {
        Some(b'[') => fit_array(raw, budget, path, notes),
        Some(b'{') => fit_object(raw, budget, path, notes),
        Some(b'"') => fit_string(raw, budget, path, notes),
        // A number or a literal cannot be cut.
        _ => parse(raw),
    }
}

fn fit_array(raw: &str, budget: usize, path: &str, notes: &mut Vec<String>) -> Value {
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw) else {
        return Value::Null;
    };
    let total = items.len();
    let mut used = 2;
    let mut kept = Vec::new();
    for item in &items {
        let size = item.get().len() + 1;
        if used + size > budget {
            break;
        }
        used += size;
        kept.push(parse(item.get()));
    }
    if kept.is_empty()
        && let Some(first) = items.first()
    {
        // Not even one whole item fits: keep the first, cut.
        let mut inner = Vec::new();
        kept.push(fit_raw(
            first.get(),
            budget.saturating_sub(2),
            &format!("{path}[0]"),
            &mut inner,
        ));
        notes.push(format!(
            "{path}: 1 of {total} items kept, and cut ({})",
            inner.join("; ")
        ));
        return Value::Array(kept);
    }
    notes.push(format!("{path}: {} of {total} items kept", kept.len()));
    Value::Array(kept)
}

/// What a value too large for even a short cut version becomes: an empty value of its type.
fn emptied(raw: &str) -> Value {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => Value::Object(Default::default()),
        Some(b'[') => Value::Array(Vec::new()),
        Some(b'"') => Value::String("[cut]".into()),
        _ => Value::Null,
    }
}

fn fit_object(raw: &str, budget: usize, path: &str, notes: &mut Vec<String>) -> Value {
    let Ok(fields) = serde_json::from_str::<indexmap::IndexMap<String, &RawValue>>(raw) else {
        return Value::Null;
    };
    let mut total = raw.len();
    let mut replaced: Vec<Option<Value>> = vec![None; fields.len()];
    let mut by_size: Vec<usize> = (0..fields.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(fields[i].get().len()));
    for i in by_size {
        if total <= budget {
            break;
        }
        let (key, field) = (
            fields.get_index(i).map(|(k, _)| k.as_str()).unwrap_or(""),
            fields[i].get(),
        );
        let size = field.len();
        let target = size.saturating_sub(total - budget);
        let child_path = format!("{path}.{key}");
        let v = if target < 64 {
            notes.push(format!("{child_path}: removed ({size} characters)"));
            emptied(field)
        } else {
            fit_raw(field, target, &child_path, notes)
        };
        total = total - size + v.to_string().len();
        replaced[i] = Some(v);
    }
    let map = fields
        .iter()
        .zip(replaced)
        .map(|((k, raw), new)| (k.clone(), new.unwrap_or_else(|| parse(raw.get()))))
        .collect();
    Value::Object(map)
}

/// The length of a character inside a JSON string.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

fn fit_string(raw: &str, budget: usize, path: &str, notes: &mut Vec<String>) -> Value {
    let Ok(s) = serde_json::from_str::<String>(raw) else {
        return Value::Null;
    };
    let total = s.chars().count();
    let marker = |cut: usize| format!("[… {cut} of {total} characters cut] ");
    let room = budget.saturating_sub(2 + marker(total).len());
    let mut used = 0;
    let mut start = s.len();
    for (i, c) in s.char_indices().rev() {
        used += escaped_len(c);
        if used > room {
            break;
        }
        start = i;
    }
    let tail = &s[start..];
    let kept = tail.chars().count();
    notes.push(format!(
        "{path}: the last {kept} of {total} characters kept"
    ));
    Value::String(marker(total - kept) + tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_values_are_kept() {
        let f = fit_value(json!({"a": [1, 2]}), 100, "result");
        assert!(!f.truncated);
        assert_eq!(f.value, json!({"a": [1, 2]}));
    }

    #[test]
    fn lists_keep_whole_items_and_say_how_many_there_were() {
        let items: Vec<Value> = (0..1000)
            .map(|i| json!({"name": format!("pod-{i}")}))
            .collect();
        let f = fit_value(json!({"items": items, "count": 1000}), 500, "result");
        assert!(f.truncated);
        assert!(f.value.to_string().len() <= 500, "{}", f.value);
        assert_eq!(f.value["count"], 1000);
        let kept = f.value["items"].as_array().unwrap();
        assert!(!kept.is_empty() && kept.iter().all(|i| i["name"].is_string()));
        assert_eq!(
            f.notes,
            vec![format!("result.items: {} of 1000 items kept", kept.len())]
        );
    }

    #[test]
    fn strings_keep_their_end_behind_a_marker() {
        let log = format!("{}crash: exit 1", "line\n".repeat(10_000));
        let f = fit_value(json!(log), 200, "text");
        let s = f.value.as_str().unwrap();
        assert!(f.value.to_string().len() <= 200, "{}", f.value);
        assert!(s.starts_with("[… ") && s.ends_with("crash: exit 1"), "{s}");
        assert!(f.note("Pass tailLines.").ends_with("Pass tailLines."));
    }

    #[test]
    fn objects_keep_their_keys_and_cut_the_largest_value() {
        let v = json!({"name": "ValueError", "message": "x".repeat(50_000), "line": 3});
        let f = fit_value(v, 1_000, "error");
        assert!(f.value.to_string().len() <= 1_000, "{}", f.value);
        assert_eq!(f.value["name"], "ValueError");
        assert_eq!(f.value["line"], 3);
        assert!(f.value["message"].as_str().unwrap().starts_with("[… "));
    }

    #[test]
    fn one_huge_item_is_kept_cut() {
        let f = fit_value(json!([{"log": "y".repeat(10_000)}]), 300, "result");
        assert!(f.value.to_string().len() <= 300, "{}", f.value);
        assert!(f.value[0]["log"].as_str().unwrap().ends_with("yyy"));
    }
}
