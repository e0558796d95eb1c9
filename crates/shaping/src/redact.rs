//! The redaction invariant (CONTRACT §3.5): no Secret value leaves kubecode, by any route.
//!
//! One [`Redactor`] per session does all of it, in one walk over a result:
//! - every Secret object, wherever it sits in the result, has its `data`/`stringData` replaced
//!   by tokens (and the `last-applied-configuration` copy dropped);
//! - Secret documents written as text (a Helm manifest's YAML, the JSON of an annotation) are
//!   parsed and get the same tokens;
//! - env entries whose name says credential (`DB_PASSWORD`) get their `value` tokenized;
//! - every value of the Secrets the session has learned ([`Redactor::learn`]) is replaced by
//!   its token wherever it appears in a string, as plaintext, base64, URL encoding or JSON
//!   escaping;
//! - credential-shaped strings are scrubbed ([`crate::scrub`]) and strings under
//!   credential-named keys are replaced, booleans and numbers excepted.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::manifest;
use crate::scrub::{credential_key, is_placeholder, redact_under_key, scrub};
use crate::vault::{Vault, is_secret};

/// Secret values shorter than this many characters are not searched for in other strings:
/// a short value (`admin`, `5432`, `true`) would match everywhere. They are still tokens
/// inside their Secret.
pub const MIN_SECRET_LEN: usize = 8;

/// Values longer than this are not searched for either (certificates bundles, Helm release
/// blobs): they do not appear inside other strings, and would cost memory per session.
const MAX_SECRET_LEN: usize = 64 * 1024;

/// Strings longer than this are not parsed for embedded Secret documents.
const MAX_EMBEDDED_LEN: usize = 8 * 1024 * 1024;

/// `encodeURIComponent`'s set: everything but letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Redacts everything a model receives in one session: Secret tokens with the session's
/// key, the learned Secret values, credential scrubbing. Cheap to clone (shared inside).
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    vault: Vault,
    known: RwLock<Known>,
}

/// The learned values: every searched-for form of each, and the token it becomes.
#[derive(Default)]
struct Known {
    tokens: HashMap<String, String>,
    finder: Option<Finder>,
}

struct Finder {
    automaton: AhoCorasick,
    replacements: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("known_forms", &self.known_forms())
            .finish_non_exhaustive()
    }
}

/// Keys of Secrets whose values are public by design (a CA certificate, a service account
/// token's namespace): tokens inside their Secret, but not searched for elsewhere.
fn public_key(secret_type: &str, key: &str) -> bool {
    match key {
        "ca.crt" | "service-ca.crt" => true,
        "namespace" => secret_type == "kubernetes.io/service-account-token",
        "tls.crt" => secret_type == "kubernetes.io/tls",
        _ => false,
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

impl Redactor {
    /// A redactor with a fresh random key and nothing learned.
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// A redactor with a given key and nothing learned: the key of a session whose replicas
    /// must agree on its tokens (derived from the replicas' shared key and the session).
    pub fn with_key(key: [u8; 32]) -> Redactor {
        Redactor {
            inner: Arc::new(Inner {
                vault: Vault::with_key(key),
                known: RwLock::default(),
            }),
        }
    }

    /// The token of a plaintext value (`[secret:` + 12 hex digits + `]`).
    pub fn token(&self, plaintext: &[u8]) -> String {
        self.inner.vault.token(plaintext)
    }

    /// How many searched-for forms of learned values there are.
    pub fn known_forms(&self) -> usize {
        read(&self.inner.known).tokens.len()
    }

    /// Learns the values of Secret objects (anything else is ignored), so that each is
    /// replaced by its token wherever it appears from now on. Returns how many new forms
    /// were learned.
    pub fn learn<'a>(&self, secrets: impl IntoIterator<Item = &'a Value>) -> usize {
        let mut forms: Vec<(String, String)> = Vec::new();
        for secret in secrets {
            let Some(object) = secret.as_object().filter(|m| is_secret(m)) else {
                continue;
            };
            let secret_type = str_at(secret, "/type");
            // Helm's storage blobs are decoded and shaped by the Helm functions themselves.
            if secret_type == "helm.sh/release.v1" {
                continue;
            }
            let namespace = str_at(secret, "/metadata/namespace");
            let b64 = base64::engine::general_purpose::STANDARD;
            let data = object.get("data").and_then(Value::as_object);
            let string_data = object.get("stringData").and_then(Value::as_object);
            let values = data
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let raw = v.as_str().unwrap_or_default();
                    (
                        k,
                        b64.decode(raw).unwrap_or_else(|_| raw.as_bytes().to_vec()),
                    )
                })
                .chain(
                    string_data
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k, v.as_str().unwrap_or_default().as_bytes().to_vec())),
                );
            for (key, plaintext) in values {
                if public_key(secret_type, key) {
                    continue;
                }
                let token = self.token(&plaintext);
                for form in searched_forms(&plaintext, namespace) {
                    forms.push((form, token.clone()));
                }
            }
        }
        if forms.is_empty() {
            return 0;
        }
        let mut known = write(&self.inner.known);
        let before = known.tokens.len();
        known.tokens.extend(forms);
        let added = known.tokens.len() - before;
        if added > 0 {
            known.rebuild();
        }
        added
    }

    /// Applies the whole invariant to a JSON value in place.
    pub fn shape(&self, value: &mut Value) {
        let known = read(&self.inner.known);
        self.walk(value, &known);
    }

    /// Applies the whole invariant to one JSON document given as text (a list's object as
    /// the API server sent it). Most objects have nothing to redact: a scan of the text
    /// proves that without building a value, and the text passes as it is; otherwise the
    /// document is parsed, walked and written again. Text that is not JSON comes back as a
    /// JSON string, shaped.
    pub fn shape_json(&self, text: String) -> String {
        let known = read(&self.inner.known);
        if crate::json_text::unchanged(
            &text,
            &TextStage {
                redactor: self,
                known: &known,
            },
        ) {
            return text;
        }
        let mut value = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
        self.walk(&mut value, &known);
        value.to_string()
    }

    /// Applies the invariant to text (a log, a manifest, an error message).
    pub fn shape_text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let known = read(&self.inner.known);
        self.text(text, &known)
    }

    /// Shapes text that mixes cluster data with what the caller supplied (an error message
    /// that echoes an argument): learned values are replaced, except those the caller's own
    /// `supplied` text holds. Replacing those would confirm a guess (the caller learns its
    /// argument was a Secret value); keeping them tells it nothing it did not send.
    pub fn shape_echo<'t>(&self, text: &'t str, supplied: &str) -> Cow<'t, str> {
        let known = read(&self.inner.known);
        let mut out = Cow::Borrowed(text);
        if let Some(f) = &known.finder {
            let mut hidden = String::new();
            let mut last = 0;
            for m in f.automaton.find_iter(text) {
                let found = &text[m.start()..m.end()];
                if supplied.contains(found) {
                    continue;
                }
                hidden.push_str(&text[last..m.start()]);
                hidden.push_str(&f.replacements[m.pattern().as_usize()]);
                last = m.end();
            }
            if last > 0 {
                hidden.push_str(&text[last..]);
                out = Cow::Owned(hidden);
            }
        }
        match scrub(&out) {
            Cow::Owned(clean) => Cow::Owned(clean),
            Cow::Borrowed(_) => out,
        }
    }

    /// Returns whether anything changed.
    fn walk(&self, value: &mut Value, known: &Known) -> bool {
        match value {
            Value::Object(m) => self.object(m, known),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.walk(v, known) | changed),
            Value::String(s) => match self.text(s, known) {
                Cow::Owned(clean) => {
                    *s = clean;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            _ => false,
        }
    }

    fn object(&self, m: &mut Map<String, Value>, known: &Known) -> bool {
        let mut changed = false;
        if is_secret(m) {
            self.inner.vault.tokenize_secret(m);
            changed = true;
        }
        // An env entry `{name: DB_PASSWORD, value: ...}`: the value is a credential.
        let credential_env = m
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(credential_key);
        if credential_env
            && let Some(Value::String(v)) = m.get_mut("value")
            && !v.is_empty()
            && !is_placeholder(v)
        {
            *v = self.token(v.as_bytes());
            changed = true;
        }
        for (key, v) in m.iter_mut() {
            if let Value::String(s) = v
                && redact_under_key(key, s)
            {
                *s = "[redacted]".into();
                changed = true;
                continue;
            }
            changed |= self.walk(v, known);
        }
        changed
    }

    fn text<'t>(&self, text: &'t str, known: &Known) -> Cow<'t, str> {
        let mut out = match self.embedded(text, known) {
            Some(rewritten) => Cow::Owned(rewritten),
            None => Cow::Borrowed(text),
        };
        if let Some(f) = &known.finder
            && f.automaton.is_match(out.as_ref())
        {
            out = Cow::Owned(f.automaton.replace_all(&out, &f.replacements));
        }
        match scrub(&out) {
            Cow::Owned(clean) => Cow::Owned(clean),
            Cow::Borrowed(_) => out,
        }
    }

    /// Objects written as text inside a string: a JSON document (an annotation) or YAML
    /// documents (a manifest). Rewritten when the walk changed one of them.
    fn embedded(&self, text: &str, known: &Known) -> Option<String> {
        if text.len() > MAX_EMBEDDED_LEN {
            return None;
        }
        let t = text.trim();
        let json_like =
            (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'));
        if json_like && let Ok(mut v) = serde_json::from_str::<Value>(t) {
            return self.walk(&mut v, known).then(|| v.to_string());
        }
        if !(text.contains("kind:") && text.contains("apiVersion:")) {
            return None;
        }
        manifest::rewrite_documents(text, |doc| {
            let mut v = doc?;
            self.walk(&mut v, known).then_some(v)
        })
    }
}

/// The walk's text stage, as the JSON-text scan asks it.
struct TextStage<'a> {
    redactor: &'a Redactor,
    known: &'a Known,
}

impl crate::json_text::StringCheck for TextStage<'_> {
    fn changes(&self, s: &str) -> bool {
        matches!(self.redactor.text(s, self.known), Cow::Owned(_))
    }
}

/// Every form in which a value is searched for: plaintext, base64 (with and without its
/// padding), URL encodings and JSON escaping. Empty for values that
/// are too short, too long, or equal to their namespace's name (which every object shows).
fn searched_forms(plaintext: &[u8], namespace: &str) -> Vec<String> {
    if plaintext.len() > MAX_SECRET_LEN {
        return Vec::new();
    }
    let mut forms = Vec::new();
    match std::str::from_utf8(plaintext) {
        Ok(text) => {
            if text.chars().count() < MIN_SECRET_LEN || text == namespace {
                return Vec::new();
            }
            forms.push(text.to_string());
            forms.push(form_urlencoded::byte_serialize(plaintext).collect());
            forms.push(utf8_percent_encode(text, URI_COMPONENT).to_string());
            forms.push(utf8_percent_encode(text, NON_ALPHANUMERIC).to_string());
            if let Ok(quoted) = serde_json::to_string(text) {
                forms.push(quoted[1..quoted.len() - 1].to_string());
            }
        }
        Err(_) if plaintext.len() < MIN_SECRET_LEN => return Vec::new(),
        Err(_) => {}
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    for engine in engines {
        // Padded, so the token swallows the `=`s; unpadded, for copies without them.
        let encoded = engine.encode(plaintext);
        forms.push(encoded.trim_end_matches('=').to_string());
        forms.push(encoded);
    }
    forms.sort();
    forms.dedup();
    forms.retain(|f| f.chars().count() >= MIN_SECRET_LEN);
    forms
}

impl Known {
    fn rebuild(&mut self) {
        let (patterns, replacements): (Vec<&String>, Vec<String>) =
            self.tokens.iter().map(|(k, v)| (k, v.clone())).unzip();
        // Longest match first, so a URL holding a password becomes one token, not two.
        self.finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns)
            .ok()
            .map(|automaton| Finder {
                automaton,
                replacements,
            });
        if self.finder.is_none() {
            tracing::error!(
                "cannot build the Secret value finder: learned values are not searched"
            );
        }
    }
}

fn read(lock: &RwLock<Known>) -> std::sync::RwLockReadGuard<'_, Known> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write(lock: &RwLock<Known>) -> std::sync::RwLockWriteGuard<'_, Known> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PASSWORD: &str = "Sup3r-S3cret-Passw0rd!";

    #[test]
    fn a_given_key_gives_the_same_tokens_in_another_redactor() {
        let secret = json!({"kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "db", "namespace": "shop"},
            "data": {"password": base64::engine::general_purpose::STANDARD.encode(PASSWORD)}});
        let a = Redactor::with_key([7; 32]);
        let b = Redactor::with_key([7; 32]);
        let other = Redactor::with_key([8; 32]);
        a.learn([&secret]);
        b.learn([&secret]);
        let text = format!("connecting with {PASSWORD}");
        let (ta, tb) = (a.shape_text(&text), b.shape_text(&text));
        assert!(!ta.contains(PASSWORD), "{ta}");
        assert_eq!(ta, tb, "same key, same token");
        other.learn([&secret]);
        assert_ne!(ta, other.shape_text(&text), "another key, another token");
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn learned() -> Redactor {
        let r = Redactor::new();
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": "payments"},
            "data": {"password": b64(PASSWORD), "username": b64("payments"), "pin": b64("1234")}});
        assert!(r.learn([&secret]) > 0);
        r
    }

    fn leaks(text: &str) -> bool {
        let encoded: String = form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect();
        text.contains(PASSWORD)
            || text.contains(b64(PASSWORD).trim_end_matches('='))
            || text.contains(&encoded)
    }

    #[test]
    fn learned_values_are_tokens_everywhere() {
        let r = learned();
        let token = r.token(PASSWORD.as_bytes());
        let encoded: String = form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect();
        let mut v = json!({
            "log": format!("connecting to postgres://payments:{PASSWORD}@db:5432/x"),
            "annotation": format!("pw {}", b64(PASSWORD)),
            "url": format!("https://x/?p={encoded}"),
            "lastApplied": json!({"spec": {"x": PASSWORD}}).to_string(),
            "namespace": "payments",
            "short": "1234",
            "enabled": true,
        });
        r.shape(&mut v);
        let text = v.to_string();
        assert!(!leaks(&text), "{text}");
        assert!(v["log"].as_str().unwrap().contains(&token), "{v}");
        assert_eq!(
            v["annotation"],
            format!("pw {token}"),
            "the padding goes with the value"
        );
        assert_eq!(
            v["namespace"], "payments",
            "a value equal to its namespace is not hunted"
        );
        assert_eq!(v["short"], "1234", "too short to hunt");
        assert_eq!(v["enabled"], true);
    }

    #[test]
    fn echoed_arguments_are_not_an_oracle() {
        let r = learned();
        let message = format!("pods \"{PASSWORD}\" not found; the API said {PASSWORD}");
        assert_eq!(
            r.shape_echo(&message, &format!("{{\"name\":\"{PASSWORD}\"}}")),
            message,
            "the caller's own guess comes back as it sent it"
        );
        let hidden = r.shape_echo(&message, "{}");
        assert!(!leaks(&hidden), "{hidden}");
    }

    #[test]
    fn secrets_nested_anywhere_become_tokens() {
        let r = Redactor::new();
        let mut v = json!({"objects": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
            "stringData": {"password": "hunter2hunter2"}}],
            "items": [{"kind": "Secret", "data": {"k": b64("another-value")}}]});
        r.shape(&mut v);
        assert_eq!(
            v["objects"][0]["stringData"]["password"],
            r.token(b"hunter2hunter2")
        );
        assert_eq!(v["items"][0]["data"]["k"], r.token(b"another-value"));
    }

    #[test]
    fn secret_documents_in_manifest_text_become_tokens() {
        let r = Redactor::new();
        let manifest = "---\n# Source: app/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  password: \"hunter2hunter2\"\n---\n# Source: app/templates/sa.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\nautomountServiceAccountToken: true\n";
        let out = r.shape_text(manifest);
        assert!(!out.contains("hunter2hunter2"), "{out}");
        assert!(out.contains(&r.token(b"hunter2hunter2")), "{out}");
        assert!(out.contains("# Source: app/templates/secret.yaml"), "{out}");
        assert!(
            out.contains("automountServiceAccountToken: true"),
            "untouched documents keep their text: {out}"
        );
    }

    #[test]
    fn credential_env_values_become_tokens() {
        let r = Redactor::new();
        let mut pod = json!({"spec": {"containers": [{"env": [
            {"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "LOG_LEVEL", "value": "debug"}]}]}});
        r.shape(&mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["env"][0]["value"],
            r.token(b"hunter2")
        );
        assert_eq!(pod["spec"]["containers"][0]["env"][1]["value"], "debug");
    }

    #[test]
    fn public_values_and_helm_blobs_are_not_hunted() {
        let r = Redactor::new();
        let sa = json!({"kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"namespace": "kube-system"},
            "data": {"namespace": b64("kube-system"), "ca.crt": b64("-----BEGIN CERTIFICATE-----")}});
        let helm = json!({"kind": "Secret", "type": "helm.sh/release.v1", "metadata": {"namespace": "x"},
            "data": {"release": b64("H4sIAAAAAAAA-release-blob")}});
        assert_eq!(r.learn([&sa, &helm]), 0);
    }
}
