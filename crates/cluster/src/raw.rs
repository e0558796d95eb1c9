//! A list page as JSON text: its objects are kept as the API server wrote them (validated,
//! not decoded into values), and tidied on the text, so that a 10,000-object list costs a
//! scan rather than hundreds of thousands of allocations.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::discovery::ApiResource;

/// One page of a list answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    #[serde(default)]
    items: Option<Vec<Box<RawValue>>>,
}

/// Only the page's metadata (the rest is skipped, not kept): its continue token, read before
/// the objects so that the next page can be requested at once.
#[derive(Debug, Deserialize)]
pub(crate) struct PageHead {
    #[serde(default)]
    metadata: PageMeta,
}

impl PageHead {
    /// The token of the next page, if there is one.
    pub(crate) fn continue_token(&self) -> Option<String> {
        self.metadata.next.clone().filter(|c| !c.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    next: Option<String>,
}

impl Page {
    /// The page's objects, as JSON text.
    pub(crate) fn into_items(self) -> Vec<Box<RawValue>> {
        self.items.unwrap_or_default()
    }
}

/// An object's members in their order, values left as text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    members.push((k, v));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

fn members(text: &str) -> Option<Members<'_>> {
    serde_json::from_str(text).ok()
}

fn push_key(out: &mut String, key: &str) {
    // A string always serializes.
    out.push_str(&serde_json::to_string(key).unwrap_or_default());
    out.push(':');
}

/// The object's text with `kind`/`apiVersion` filled in (lists omit them; they come first,
/// as kubectl prints them) and `metadata.managedFields` dropped. Unchanged text (already
/// tidy, or not an object) is returned as it is.
pub(crate) fn tidy_text(item: &RawValue, r: &ApiResource) -> String {
    let text = item.get();
    let Some(Members(top)) = members(text) else {
        return text.to_string();
    };
    let has = |name: &str| top.iter().any(|(k, _)| k == name);
    let (has_kind, has_version) = (has("kind"), has("apiVersion"));
    let metadata = top
        .iter()
        .find(|(k, _)| k == "metadata")
        .and_then(|(_, v)| members(v.get()))
        .filter(|Members(m)| m.iter().any(|(k, _)| k == "managedFields"));
    if has_kind && has_version && metadata.is_none() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 48);
    out.push('{');
    let mut first = true;
    let mut comma = |out: &mut String| {
        if !std::mem::replace(&mut first, false) {
            out.push(',');
        }
    };
    if !has_version {
        comma(&mut out);
        push_key(&mut out, "apiVersion");
        out.push_str(&serde_json::Value::String(r.api_version()).to_string());
    }
    if !has_kind {
        comma(&mut out);
        push_key(&mut out, "kind");
        out.push_str(&serde_json::Value::String(r.kind.clone()).to_string());
    }
    for (k, v) in &top {
        comma(&mut out);
        push_key(&mut out, k);
        match (&metadata, k.as_str()) {
            (Some(Members(meta)), "metadata") => {
                out.push('{');
                let mut first_member = true;
                for (mk, mv) in meta.iter().filter(|(mk, _)| mk != "managedFields") {
                    if !std::mem::replace(&mut first_member, false) {
                        out.push(',');
                    }
                    push_key(&mut out, mk);
                    out.push_str(mv.get());
                }
                out.push('}');
            }
            _ => out.push_str(v.get()),
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pods() -> ApiResource {
        ApiResource {
            kind: "Pod".into(),
            name: "pods".into(),
            group: String::new(),
            version: "v1".into(),
            namespaced: true,
            short_names: vec!["po".into()],
            singular: "pod".into(),
            verbs: Vec::new(),
        }
    }

    fn tidy(v: Value) -> Value {
        let raw = RawValue::from_string(v.to_string()).expect("valid JSON");
        serde_json::from_str(&tidy_text(&raw, &pods())).expect("tidy gives JSON")
    }

    #[test]
    fn list_items_get_their_kind_and_lose_managed_fields() {
        let item = json!({"metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}], "labels": {"x": "y"}}, "spec": {}});
        let tidied = tidy(item);
        assert_eq!(
            tidied,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {}})
        );
        let keys: Vec<&String> = tidied
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    }

    #[test]
    fn tidy_objects_pass_as_they_are() {
        let text = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a\"b"}}"#;
        let raw = RawValue::from_string(text.to_string()).expect("valid JSON");
        assert_eq!(tidy_text(&raw, &pods()), text);
    }

    #[test]
    fn pages_read_their_items_and_token() {
        let text = r#"{"kind":"PodList","metadata":{"continue":"abc","resourceVersion":"5"},"items":[{"a":1},{"b":[2]}]}"#;
        let head: PageHead = serde_json::from_str(text).expect("a page's head");
        assert_eq!(head.continue_token().as_deref(), Some("abc"));
        let page: Page = serde_json::from_str(text).expect("a page");
        let items: Vec<String> = page
            .into_items()
            .iter()
            .map(|i| i.get().to_string())
            .collect();
        assert_eq!(items, [r#"{"a":1}"#, r#"{"b":[2]}"#]);
        let text = r#"{"metadata":{"continue":""},"items":null}"#;
        let head: PageHead = serde_json::from_str(text).expect("a page's head");
        let empty: Page = serde_json::from_str(text).expect("a page");
        assert!(head.continue_token().is_none() && empty.into_items().is_empty());
    }
}
