//! Secret values become `[secret:FINGERPRINT]` tokens before anything else sees them.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Map, Value};
use sha2::Sha256;

/// How every token starts.
pub const TOKEN_PREFIX: &str = "[secret:";

/// The annotation `kubectl apply` writes, which holds a Secret's data in plaintext.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The keyed hash behind Secret tokens, with a key that lives as long as the vault (one per session).
#[derive(Clone)]
pub struct Vault {
    key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault { key: <hidden> }")
    }
}

impl Default for Vault {
    fn default() -> Self {
        Vault::new()
    }
}

impl Vault {
    /// A vault with a fresh random key.
    pub fn new() -> Vault {
        Vault {
            key: rand::rng().random(),
        }
    }

    /// A vault with a given key: replicas that derive the same key for a session give the
    /// same tokens for the same values.
    pub fn with_key(key: [u8; 32]) -> Vault {
        Vault { key }
    }

    /// The token for a plaintext value: `[secret:` + 12 hex digits of HMAC-SHA256 + `]`.
    pub fn token(&self, plaintext: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(plaintext);
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("{TOKEN_PREFIX}{hex}]")
    }

    /// Replaces the values of one Secret's `data` (base64, decoded first so that `data` and
    /// `stringData` of the same value give the same token) and `stringData` with tokens, and
    /// drops the plaintext copy `kubectl apply` keeps in an annotation. Finding the Secrets in
    /// a result is the caller's job ([`crate::Redactor::shape`] walks every value).
    pub fn tokenize_secret(&self, secret: &mut Map<String, Value>) {
        if let Some(data) = secret.get_mut("data").and_then(Value::as_object_mut) {
            for value in data.values_mut() {
                let raw = value.as_str().unwrap_or_default();
                let plaintext = base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .unwrap_or_else(|_| raw.as_bytes().to_vec());
                *value = Value::String(self.token(&plaintext));
            }
        }
        if let Some(data) = secret.get_mut("stringData").and_then(Value::as_object_mut) {
            for value in data.values_mut() {
                let token = match &*value {
                    Value::String(s) => self.token(s.as_bytes()),
                    other => self.token(other.to_string().as_bytes()),
                };
                *value = Value::String(token);
            }
        }
        if let Some(annotations) = secret
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(Value::as_object_mut)
            && annotations.contains_key(LAST_APPLIED)
        {
            annotations.insert(
                LAST_APPLIED.to_string(),
                Value::String("[removed: it holds the Secret's data]".into()),
            );
        }
    }
}

/// Whether a JSON object is a Secret (`kind: Secret`, any API version).
pub(crate) fn is_secret(object: &Map<String, Value>) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_stable_per_vault_and_hide_the_value() {
        let v = Vault::new();
        let t = v.token(b"hunter2");
        assert_eq!(t, v.token(b"hunter2"));
        assert_ne!(t, v.token(b"hunter3"));
        assert_ne!(
            t,
            Vault::new().token(b"hunter2"),
            "another session, another key"
        );
        assert_eq!(t.len(), "[secret:".len() + 12 + 1);
        assert!(!t.contains("hunter2"));
    }

    #[test]
    fn a_secret_becomes_tokens() {
        let v = Vault::new();
        let mut secret = json!({"kind": "Secret", "metadata": {"name": "s", "annotations": {LAST_APPLIED: "{\"data\":{\"p\":\"aHVudGVyMg==\"}}"}},
             "data": {"p": "aHVudGVyMg=="}, "stringData": {"q": "hunter2"}});
        let Value::Object(m) = &mut secret else {
            unreachable!()
        };
        assert!(is_secret(m));
        v.tokenize_secret(m);
        assert_eq!(
            secret["data"]["p"], secret["stringData"]["q"],
            "equal values, equal tokens"
        );
        assert!(
            secret["data"]["p"]
                .as_str()
                .unwrap()
                .starts_with(TOKEN_PREFIX)
        );
        assert!(
            !secret.to_string().contains("aHVudGVyMg==") && !secret.to_string().contains("hunter2")
        );
    }
}
