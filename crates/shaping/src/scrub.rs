//! Removing credential-shaped strings from everything a model receives, logs included.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};
use serde_json::Value;

struct Rule {
    pattern: Regex,
    /// Replacement; `$name` refers to capture groups kept around the secret part.
    replacement: &'static str,
}

fn rule(pattern: &str, replacement: &'static str) -> Rule {
    Rule {
        pattern: Regex::new(pattern)
            .unwrap_or_else(|e| panic!("scrub rule {pattern:?} is invalid: {e}")),
        replacement,
    }
}

/// The rules, most specific first.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(
            r"-----BEGIN ([A-Z]+ )*PRIVATE KEY-----[\s\S]*?(-----END ([A-Z]+ )*PRIVATE KEY-----|\z)",
            "[redacted:private-key]",
        ),
        rule(
            r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
            "[redacted:jwt]",
        ),
        rule(
            r"(?i)\b(?P<k>bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*",
            "${k}[redacted:token]",
        ),
        rule(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", "[redacted:aws-access-key]"),
        rule(r"\bAIza[0-9A-Za-z_-]{35}\b", "[redacted:gcp-api-key]"),
        rule(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b", "[redacted:github-token]"),
        rule(r"\bxox[abprs]-[A-Za-z0-9-]{10,}", "[redacted:slack-token]"),
        rule(
            r"(?i)(?P<k>AccountKey=)[A-Za-z0-9+/=]{20,}",
            "${k}[redacted]",
        ),
        // user:password@host in URLs.
        rule(
            r"(?P<k>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:)(?P<v>[^\s@/]+)@",
            "${k}[redacted]@",
        ),
    ]
});

/// `password=...`, `api_key: ...`: the value after a credential-named key.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<k>\b[\w.-]*(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credentials?)["']?\s*[=:]\s*["']?)(?P<v>[^\s"',;&}]+)"#,
    )
    .unwrap_or_else(|e| panic!("assignment rule is invalid: {e}"))
});

/// A token or a mark left by an earlier pass: never redacted again.
pub(crate) fn is_placeholder(v: &str) -> bool {
    v.starts_with("[secret:") || v.starts_with("[redacted") || v.starts_with("[removed")
}

/// Booleans, numbers and null carry no secret (`automountServiceAccountToken: true`).
fn is_plain_scalar(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
    ) || v.parse::<f64>().is_ok()
}

/// Every rule and the assignment rule at once: most strings match none, and one pass over
/// them says so (a list of thousands of objects has hundreds of thousands of strings).
static ANY: LazyLock<RegexSet> = LazyLock::new(|| {
    let patterns = RULES
        .iter()
        .map(|r| r.pattern.as_str())
        .chain(std::iter::once(ASSIGNMENT.as_str()));
    RegexSet::new(patterns).unwrap_or_else(|e| panic!("scrub rules are invalid: {e}"))
});

/// Removes credential-shaped substrings from text.
pub fn scrub(text: &str) -> Cow<'_, str> {
    // Most strings match nothing, which `is_match` says sooner than `matches`.
    if !ANY.is_match(text) {
        return Cow::Borrowed(text);
    }
    let hits = ANY.matches(text);
    let mut out = Cow::Borrowed(text);
    for (i, r) in RULES.iter().enumerate() {
        if hits.matched(i) && r.pattern.is_match(&out) {
            let replaced = r.pattern.replace_all(&out, |c: &Captures| {
                // A value that is a token already (`user:[secret:…]@host`) stays one.
                if c.name("v").is_some_and(|v| is_placeholder(v.as_str())) {
                    return c[0].to_string();
                }
                let mut expanded = String::new();
                c.expand(r.replacement, &mut expanded);
                expanded
            });
            out = Cow::Owned(replaced.into_owned());
        }
    }
    if hits.matched(RULES.len()) && ASSIGNMENT.is_match(&out) {
        let source = out.clone();
        let replaced = ASSIGNMENT.replace_all(&source, |c: &Captures| {
            let value = &c["v"];
            let start = c.get(0).map_or(0, |m| m.start());
            // `[secret:abc]` is a token, not a key named "secret".
            let inside_token = source[..start].ends_with('[');
            if inside_token
                || is_placeholder(value)
                || is_plain_scalar(value)
                || value.starts_with('$')
                || value.starts_with('[')
            {
                c[0].to_string()
            } else {
                format!("{}[redacted]", &c["k"])
            }
        });
        out = Cow::Owned(replaced.into_owned());
    }
    out
}

/// What a credential's key or variable name ends with (lowercase, without `-` and `_`).
const CREDENTIAL_WORDS: [&str; 8] = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credentials",
];

/// Whether a key or variable name names a credential (`password`, `apiKey`,
/// `client_secret`, `DB_PASSWORD`, ...).
pub(crate) fn credential_key(key: &str) -> bool {
    // Compared from the end, case-insensitively, skipping `-` and `_`, without allocating:
    // this runs for every key and every `name` of a list of thousands of objects.
    CREDENTIAL_WORDS.iter().any(|w| {
        let mut key = key
            .bytes()
            .rev()
            .filter(|b| !matches!(b, b'-' | b'_'))
            .map(|b| b.to_ascii_lowercase());
        w.bytes().rev().all(|c| key.next() == Some(c))
    })
}

/// Scrubs every string of a JSON value, and replaces strings under credential-named keys.
/// No keyed token is computed: this is for what the caller wrote itself (a program's
/// result), where a token of a guessed value would confirm the guess.
pub fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = scrub(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if redact_under_key(key, s) => *s = "[redacted]".into(),
                    _ => scrub_value(v),
                }
            }
        }
        _ => {}
    }
}

/// Whether a string stored under a credential-named key is replaced outright.
pub(crate) fn redact_under_key(key: &str, value: &str) -> bool {
    credential_key(key) && !value.is_empty() && !is_placeholder(value) && !is_plain_scalar(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_keys_match_the_lowercased_suffix_rule() {
        let reference = |key: &str| {
            let k = key.to_ascii_lowercase().replace(['-', '_'], "");
            CREDENTIAL_WORDS.iter().any(|w| k.ends_with(w))
        };
        let keys = [
            "DB_PASSWORD",
            "password",
            "passwd",
            "clientSecret",
            "secrets",
            "api-key",
            "API_KEY",
            "apiKey",
            "access_key",
            "ACCESS-KEY",
            "privateKey",
            "private_key_id",
            "credentials",
            "credential",
            "token",
            "tokens",
            "serviceAccountToken",
            "name",
            "value",
            "",
            "_",
            "-token-",
            "t_o_k_e_n",
            "pässword",
            "PASSWORD\u{e9}",
            "ken",
            "automountServiceAccountToken",
        ];
        for key in keys {
            assert_eq!(credential_key(key), reference(key), "{key}");
        }
    }

    #[test]
    fn credential_shapes_are_removed() {
        let cases = [
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "[redacted:private-key]",
            ),
            (
                "Authorization: Bearer abcdefghijklmnop123",
                "Authorization: Bearer [redacted:token]",
            ),
            (
                "tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlX19f end",
                "tok [redacted:jwt] end",
            ),
            ("key AKIAIOSFODNN7EXAMPLE", "key [redacted:aws-access-key]"),
            (
                "postgres://app:s3cr3t@db:5432/x",
                "postgres://app:[redacted]@db:5432/x",
            ),
            ("login password=hunter2 ok", "login password=[redacted] ok"),
            ("DB_PASSWORD: \"hunter2\"", "DB_PASSWORD: \"[redacted]\""),
            ("api_key=abc123&x=1", "api_key=[redacted]&x=1"),
        ];
        for (input, want) in cases {
            assert_eq!(scrub(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_text_and_tokens_are_untouched() {
        for text in [
            "GET /healthz 200 0.4ms",
            "password: [secret:0123456789ab]",
            "token count exceeded",
            "the secret: ${DB_PASS}",
        ] {
            assert_eq!(scrub(text), text);
        }
    }

    #[test]
    fn json_values_are_scrubbed_by_key_and_content() {
        let mut v = serde_json::json!({"auth": {"password": "hunter2", "user": "app"}, "on": {"token": true},
                           "url": "https://u:p4ss@example.com", "ref": "[secret:0123456789ab]"});
        scrub_value(&mut v);
        assert_eq!(v["auth"]["password"], "[redacted]");
        assert_eq!(v["auth"]["user"], "app");
        assert_eq!(v["on"]["token"], true);
        assert_eq!(v["url"], "https://u:[redacted]@example.com");
        assert_eq!(v["ref"], "[secret:0123456789ab]");
    }

    #[test]
    fn booleans_numbers_and_tokens_are_not_credentials() {
        for text in [
            "automountServiceAccountToken: true",
            "token_ttl: 3600",
            "password: false",
            "postgres://app:[secret:0123456789ab]@db:5432/x",
        ] {
            assert_eq!(scrub(text), text);
        }
        assert!(!redact_under_key("automountServiceAccountToken", "true"));
        assert!(redact_under_key("clientSecret", "xyz"));
        assert!(!redact_under_key("user", "app"));
    }
}
