//! Shaping JSON text without building a value: a scan over the text that proves the
//! redaction walk would change nothing, so that the text can pass as it is.
//!
//! A list of thousands of objects is mostly objects with nothing to redact. Building a
//! `serde_json::Value` for each (maps, strings, allocations) cost more than everything else
//! the server did with a 10,000-pod list. The scan makes the same decisions as the walk
//! ([`Redactor::shape`](crate::Redactor::shape)) on borrowed slices of the text; it only
//! says "unchanged" when every one of them is negative, and answers "needs the walk" for
//! anything else, including text it does not understand.

use std::borrow::Cow;

use crate::scrub::{credential_key, is_placeholder, redact_under_key};

/// What the scan asks of each string value: would the walk rewrite it?
pub(crate) trait StringCheck {
    /// Whether the walk's text stage would change `s`.
    fn changes(&self, s: &str) -> bool;
}

/// One open object or array.
enum Frame<'t> {
    Object {
        /// The key whose value comes next (`None` while a key is expected).
        key: Option<Cow<'t, str>>,
        /// A `name` that names a credential (`DB_PASSWORD`): a sibling `value` is one.
        credential_name: bool,
        /// A non-empty string `value` that is not a token already.
        plain_value: bool,
    },
    Array,
}

/// Whether the walk would leave the JSON `text` unchanged. `false` means "run the walk":
/// something would change, or the text is not what the scan expects.
pub(crate) fn unchanged(text: &str, check: &impl StringCheck) -> bool {
    scan(text, check).unwrap_or(false)
}

/// `None` for text the scan does not follow (the walk decides then).
fn scan(text: &str, check: &impl StringCheck) -> Option<bool> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\n' | b'\r' | b'\t' | b':' | b',' => i += 1,
            b'{' => {
                stack.push(Frame::Object {
                    key: None,
                    credential_name: false,
                    plain_value: false,
                });
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array);
                i += 1;
            }
            b'}' | b']' => {
                stack.pop()?;
                end_value(&mut stack);
                i += 1;
            }
            b'"' => {
                let (s, next) = string_at(text, i)?;
                i = next;
                match stack.last_mut() {
                    Some(Frame::Object {
                        key: key @ None, ..
                    }) => *key = Some(s),
                    Some(Frame::Object {
                        key: Some(k),
                        credential_name,
                        plain_value,
                    }) => {
                        let k = k.as_ref();
                        if redact_under_key(k, &s) || (k == "kind" && s == "Secret") {
                            return Some(false);
                        }
                        if k == "name" && credential_key(&s) {
                            *credential_name = true;
                        }
                        if k == "value" && !s.is_empty() && !is_placeholder(&s) {
                            *plain_value = true;
                        }
                        if (*credential_name && *plain_value) || check.changes(&s) {
                            return Some(false);
                        }
                        end_value(&mut stack);
                    }
                    Some(Frame::Array) | None => {
                        if check.changes(&s) {
                            return Some(false);
                        }
                    }
                }
            }
            // A number, `true`, `false` or `null`: never changed.
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                while i < bytes.len()
                    && !matches!(bytes[i], b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t')
                {
                    i += 1;
                }
                end_value(&mut stack);
            }
            _ => return None,
        }
    }
    stack.is_empty().then_some(true)
}

/// A value of the innermost object is complete: the next string is a key.
fn end_value(stack: &mut [Frame<'_>]) {
    if let Some(Frame::Object { key, .. }) = stack.last_mut() {
        *key = None;
    }
}

/// The string starting at the quote at `start`, unescaped, and the index after its closing
/// quote.
fn string_at(text: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let bytes = text.as_bytes();
    let mut i = start + 1;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let raw = &text[start..=i];
                let s = if escaped {
                    Cow::Owned(serde_json::from_str::<String>(raw).ok()?)
                } else {
                    Cow::Borrowed(&text[start + 1..i])
                };
                return Some((s, i + 1));
            }
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mentions(&'static str);
    impl StringCheck for Mentions {
        fn changes(&self, s: &str) -> bool {
            s.contains(self.0)
        }
    }

    #[test]
    fn plain_objects_are_unchanged() {
        let text = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"x":"y"}},"spec":{"containers":[{"name":"c","env":[{"name":"MODE","value":"fast"}]}],"n":-1.5e3,"b":true,"z":null}}"#;
        assert!(unchanged(text, &Mentions("zzz")));
    }

    #[test]
    fn every_rule_of_the_walk_is_seen() {
        let cases = [
            r#"{"kind":"Secret","data":{}}"#,
            r#"{"env":[{"name":"DB_PASSWORD","value":"hunter22"}]}"#,
            r#"{"env":[{"value":"hunter22","name":"api-token"}]}"#,
            r#"{"spec":{"password":"hunter22"}}"#,
            r#"{"a":["x","has-needle"]}"#,
            r#"{"a":"esc\"aped needle"}"#,
            r#"{"k\u0069nd":"Secret"}"#,
        ];
        for text in cases {
            assert!(!unchanged(text, &Mentions("needle")), "{text}");
        }
    }

    #[test]
    fn credential_names_without_values_and_tokens_are_unchanged() {
        let cases = [
            r#"{"env":[{"name":"DB_PASSWORD","valueFrom":{"secretKeyRef":{"name":"db","key":"password"}}}]}"#,
            r#"{"env":[{"name":"DB_PASSWORD","value":""}]}"#,
            r#"{"env":[{"name":"DB_PASSWORD"},{"value":"x"}]}"#,
            r#"{"automountServiceAccountToken":true,"token":"true"}"#,
        ];
        for text in cases {
            assert!(unchanged(text, &Mentions("needle")), "{text}");
        }
    }

    #[test]
    fn text_it_does_not_follow_goes_to_the_walk() {
        for text in [r#"{"a":"unterminated}"#, r#"{"a":1"#, "x", r#"{"a":'q'}"#] {
            assert!(!unchanged(text, &Mentions("needle")), "{text}");
        }
    }
}
