//! `state`: JSON values kept across the runs of one session, as JSON text, within caps on
//! key count, key length, value size and total size (each error names its cap).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Keys one session may hold.
pub const MAX_KEYS: usize = 1024;
/// Characters of one key.
pub const MAX_KEY_BYTES: usize = 256;
/// Bytes of one value's JSON text.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Bytes of all keys and values of one session.
pub const MAX_TOTAL_BYTES: usize = 8 * 1024 * 1024;

/// A session's `state`. Cheap to clone (shared inside).
#[derive(Debug, Clone, Default)]
pub struct State {
    entries: Arc<Mutex<BTreeMap<String, String>>>,
}

fn size(entries: &BTreeMap<String, String>) -> usize {
    entries.iter().map(|(k, v)| k.len() + v.len()).sum()
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The JSON text stored under `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().get(key).cloned()
    }

    /// Stores JSON text under `key`, or says which cap it would break.
    pub fn set(&self, key: &str, json: String) -> Result<(), String> {
        if key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "state.set: the key is {} bytes, over the {MAX_KEY_BYTES}-byte cap on a key",
                key.len()
            ));
        }
        if json.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "state.set: the value is {} bytes of JSON, over the {MAX_VALUE_BYTES}-byte cap on one value; store less (a summary, or ids)",
                json.len()
            ));
        }
        let mut entries = self.lock();
        if !entries.contains_key(key) && entries.len() >= MAX_KEYS {
            return Err(format!(
                "state.set: the session holds {MAX_KEYS} keys, the cap; delete some with state.delete"
            ));
        }
        let old = entries.get(key).map_or(0, |v| key.len() + v.len());
        let total = size(&entries) - old + key.len() + json.len();
        if total > MAX_TOTAL_BYTES {
            return Err(format!(
                "state.set: the session's state would hold {total} bytes, over the {MAX_TOTAL_BYTES}-byte cap; delete keys with state.delete or store less"
            ));
        }
        entries.insert(key.to_string(), json);
        Ok(())
    }

    /// Every key.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Removes a key; whether it was there.
    pub fn delete(&self, key: &str) -> bool {
        self.lock().remove(key).is_some()
    }

    /// Every entry, to hand to a sandbox process.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    /// Replaces every entry with what a sandbox process (or the shared store of replicas)
    /// handed back; entries that break a cap are not taken.
    pub fn replace(&self, entries: BTreeMap<String, String>) {
        let fits = entries.len() <= MAX_KEYS
            && size(&entries) <= MAX_TOTAL_BYTES
            && entries
                .iter()
                .all(|(k, v)| k.len() <= MAX_KEY_BYTES && v.len() <= MAX_VALUE_BYTES);
        if fits {
            *self.lock() = entries;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_has_its_error() {
        let s = State::default();
        assert!(s.set("a", "1".into()).is_ok());
        assert_eq!(s.get("a").as_deref(), Some("1"));
        let e = s.set(&"k".repeat(300), "1".into()).unwrap_err();
        assert!(e.contains("256-byte cap on a key"), "{e}");
        let e = s.set("big", "x".repeat(MAX_VALUE_BYTES + 1)).unwrap_err();
        assert!(e.contains("cap on one value"), "{e}");
        for i in 0..8 {
            s.set(&format!("v{i}"), "y".repeat(MAX_VALUE_BYTES - 10))
                .unwrap();
        }
        let e = s.set("v8", "y".repeat(MAX_VALUE_BYTES - 10)).unwrap_err();
        assert!(e.contains("8388608-byte cap"), "{e}");
        let many = State::default();
        for i in 0..MAX_KEYS {
            many.set(&i.to_string(), "0".into()).unwrap();
        }
        let e = many.set("one-more", "0".into()).unwrap_err();
        assert!(e.contains("1024 keys"), "{e}");
        assert!(many.delete("0") && many.set("one-more", "0".into()).is_ok());
    }
}
