//! A list's objects reach the program lazily: each object's small members are values at once,
//! and its large ones (`spec`, `status`, a long `conditions` array) are parsed the first time
//! the program reads them. Building JavaScript objects is the dearest part of handing a list
//! to a program (QuickJS makes about 40 MB of them a second), and a scan reads a few fields
//! of each object: a 10,000-pod list is handed over as text and parsed where it is read.
//!
//! To the program the objects are ordinary: keys in the API server's order, `JSON.stringify`,
//! spreads, `Object.keys`/`entries` and assignment behave as on parsed JSON (a lazy member is
//! an enumerable accessor until first read, then a plain data property).

use rquickjs::{Array, Ctx, Function, Object, Value as JsValue};
use serde_json::value::RawValue;

/// Members whose JSON text is at most this long are parsed at once.
const LAZY_MIN: usize = 64;

/// The JavaScript half: `defineLazy(object, key, text)` and the accessors it installs.
/// `materialize` is the host function that parses a member's text (this module's
/// [`materialize`] again, so nested members are lazy too).
pub(crate) const LAZY_JS: &str = r#"
(function (global) {
  "use strict";
  const materialize = global.__materialize;
  delete global.__materialize;
  const data = (value) => ({ value, writable: true, enumerable: true, configurable: true });
  // Per key: the hidden symbol that holds a member's text, and its accessor.
  const accessors = new Map();
  function accessorFor(key) {
    let a = accessors.get(key);
    if (a === undefined) {
      const hidden = Symbol(key);
      a = {
        hidden,
        descriptor: {
          get() {
            const text = this[hidden];
            if (text === undefined) return undefined;
            const value = materialize(text);
            // Cached on the object that holds the text; an object that inherits it
            // (Object.create) or a frozen one parses again on each read instead.
            if (Object.prototype.hasOwnProperty.call(this, hidden) && Reflect.defineProperty(this, key, data(value))) {
              delete this[hidden];
            }
            return value;
          },
          set(value) {
            if (Object.prototype.hasOwnProperty.call(this, hidden)) delete this[hidden];
            Reflect.defineProperty(this, key, data(value));
          },
          enumerable: true,
          configurable: true,
        },
      };
      accessors.set(key, a);
    }
    return a;
  }
  global.__define_lazy = function defineLazy(object, key, text) {
    const a = accessorFor(key);
    Object.defineProperty(object, a.hidden, { value: text, configurable: true });
    Object.defineProperty(object, key, a.descriptor);
  };
})(globalThis);
"#;

/// The JavaScript value of one JSON text, with large members left to be parsed on first
/// read. `define` is the `defineLazy` of [`LAZY_JS`].
pub(crate) fn materialize<'js>(
    ctx: &Ctx<'js>,
    define: &Function<'js>,
    text: &str,
) -> rquickjs::Result<JsValue<'js>> {
    match text.as_bytes().first() {
        Some(b'{') if text.len() > LAZY_MIN => {
            let Ok(Members(members)) = serde_json::from_str::<Members<'_>>(text) else {
                return ctx.json_parse(text);
            };
            // `set` would take `__proto__` for the prototype: JSON.parse knows better.
            if members.iter().any(|(k, _)| *k == "__proto__") {
                return ctx.json_parse(text);
            }
            let object = Object::new(ctx.clone())?;
            for (key, value) in members {
                let raw = value.get();
                if raw.len() > LAZY_MIN && matches!(raw.as_bytes().first(), Some(b'{' | b'[')) {
                    define.call::<_, ()>((object.clone(), key, raw))?;
                } else {
                    object.set(key, scalar_or_parse(ctx, raw)?)?;
                }
            }
            Ok(object.into_value())
        }
        Some(b'[') if text.len() > LAZY_MIN => {
            let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) else {
                return ctx.json_parse(text);
            };
            let array = Array::new(ctx.clone())?;
            for (i, item) in items.iter().enumerate() {
                array.set(i, materialize(ctx, define, item.get())?)?;
            }
            Ok(array.into_value())
        }
        _ => scalar_or_parse(ctx, text),
    }
}

/// Strings without escapes, `true`, `false` and `null` made directly (the JSON parser's set-up
/// costs more than they do); anything else through JSON.parse.
fn scalar_or_parse<'js>(ctx: &Ctx<'js>, raw: &str) -> rquickjs::Result<JsValue<'js>> {
    let b = raw.as_bytes();
    match raw {
        "true" => return Ok(JsValue::new_bool(ctx.clone(), true)),
        "false" => return Ok(JsValue::new_bool(ctx.clone(), false)),
        "null" => return Ok(JsValue::new_null(ctx.clone())),
        _ => {}
    }
    if b.len() >= 2
        && b[0] == b'"'
        && b[b.len() - 1] == b'"'
        && !b[1..b.len() - 1].contains(&b'"')
        && !b.contains(&b'\\')
    {
        let s = rquickjs::String::from_str(ctx.clone(), &raw[1..raw.len() - 1])?;
        return Ok(s.into_value());
    }
    ctx.json_parse(raw)
}

/// An object's members in their order, values left as text; keys without escapes.
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}
