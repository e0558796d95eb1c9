//! Objects written as YAML text (a Helm manifest): split into documents, each parsed, and
//! the ones the caller changed written back, their leading comments (`# Source: ...`) kept.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// A document that says `kind: Secret` but cannot be parsed is removed whole.
static SECRET_KIND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)^\s*kind:\s*["']?Secret["']?\s*$"#)
        .unwrap_or_else(|e| panic!("Secret kind pattern is invalid: {e}"))
});

const UNPARSEABLE_SECRET: &str =
    "# [removed: a Secret document kubecode could not parse, so its values cannot be shown]\n";

/// Splits multi-document YAML into (separator line, document) pairs; the first separator
/// may be empty.
fn documents(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut separator = "";
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            out.push((separator, &text[start..pos]));
            separator = &text[pos..pos + line.len()];
            start = pos + line.len();
        }
        pos += line.len();
    }
    out.push((separator, &text[start..]));
    out
}

/// The comment lines a document starts with.
fn leading_comments(doc: &str) -> String {
    doc.split_inclusive('\n')
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        .collect()
}

/// Rewrites the documents of YAML text: `change` gets each parsed object and returns the
/// replacement when it changed it. A Secret document that does not parse is removed.
/// Returns `None` when nothing changed.
pub(crate) fn rewrite_documents(
    text: &str,
    mut change: impl FnMut(Option<Value>) -> Option<Value>,
) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    for (separator, doc) in documents(text) {
        out.push_str(separator);
        let replacement = match serde_saphyr::from_str::<Value>(doc) {
            Ok(v) if v.is_object() => change(Some(v)).map(|v| {
                let body =
                    serde_saphyr::to_string(&v).unwrap_or_else(|_| UNPARSEABLE_SECRET.to_string());
                let mut text = leading_comments(doc) + &body;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text
            }),
            Ok(_) => None,
            Err(_) if SECRET_KIND.is_match(doc) => {
                change(None);
                Some(UNPARSEABLE_SECRET.to_string())
            }
            Err(_) => None,
        };
        match replacement {
            Some(r) => {
                changed = true;
                out.push_str(&r);
            }
            None => out.push_str(doc),
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_and_join_back() {
        let text = "a: 1\n---\nb: 2\n--- \nc: 3";
        let docs = documents(text);
        assert_eq!(docs.len(), 3);
        let joined: String = docs.iter().map(|(s, d)| format!("{s}{d}")).collect();
        assert_eq!(joined, text);
        assert_eq!(rewrite_documents(text, |_| None), None);
    }

    #[test]
    fn unparseable_secret_documents_are_removed() {
        let text = "kind: Secret\ndata: {password: [unclosed\n---\nkind: ConfigMap\n";
        let out = rewrite_documents(text, |_| None).unwrap();
        assert!(out.starts_with("# [removed"), "{out}");
        assert!(out.ends_with("---\nkind: ConfigMap\n"), "{out}");
    }
}
