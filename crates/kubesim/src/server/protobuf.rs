//! Request bodies in the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which client-go's typed clients send when a program asks for it (kubectl's and Helm's
//! do). Helm keeps its releases in Secrets (or ConfigMaps) written that way, and programs
//! built on client-go ask access reviews that way (kubernetes-mcp-server before listing
//! across namespaces), so kubesim reads those kinds; any other kind is refused with 415 and
//! the advice to send JSON.
//!
//! The envelope is the 4-byte magic `k8s\0` and a `runtime.Unknown` message whose `raw`
//! field holds the object, with the field numbers of Kubernetes' `generated.proto` files.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::snapshot::format_time;
use crate::status::ApiError;

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// One field of a message, as the wire format carries it.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "the protobuf request body is malformed ({what}); send the object as application/json"
    ))
}

fn varint(buf: &mut &[u8]) -> Result<u64, ApiError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf
            .split_first()
            .ok_or_else(|| malformed("truncated varint"))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed("varint longer than 64 bits"))
}

/// The fields of a message, in order.
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (number, wire_type) = (key >> 3, key & 7);
        let value = match wire_type {
            0 => Wire::Varint(varint(&mut buf)?),
            1 | 5 => {
                let n = if wire_type == 1 { 8 } else { 4 };
                if buf.len() < n {
                    return Err(malformed("truncated fixed-width field"));
                }
                buf = &buf[n..];
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)?)
                    .map_err(|_| malformed("length out of range"))?;
                if buf.len() < len {
                    return Err(malformed("truncated length-delimited field"));
                }
                let (bytes, rest) = buf.split_at(len);
                buf = rest;
                Wire::Bytes(bytes)
            }
            _ => return Err(malformed("unsupported wire type")),
        };
        out.push((number, value));
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a string field is not UTF-8"))
}

/// A `map<string, string>` (`as_base64`: `map<string, bytes>`, written base64 as JSON does)
/// entry added to `map`.
fn map_entry(entry: &[u8], as_base64: bool, map: &mut Map<String, Value>) -> Result<(), ApiError> {
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    for (n, w) in fields(entry)? {
        match (n, w) {
            (1, Wire::Bytes(b)) => key = text(b)?,
            (2, Wire::Bytes(b)) if as_base64 => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(b));
            }
            (2, Wire::Bytes(b)) => value = json!(text(b)?),
            _ => {}
        }
    }
    map.insert(key, value);
    Ok(())
}

fn time(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut seconds = 0i64;
    for (n, w) in fields(bytes)? {
        if let (1, Wire::Varint(v)) = (n, w) {
            seconds = v as i64;
        }
    }
    Ok(chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| json!(format_time(t)))
        .unwrap_or(Value::Null))
}

fn owner_reference(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut o = Map::new();
    for (n, w) in fields(bytes)? {
        let name = match n {
            1 => "kind",
            3 => "name",
            4 => "uid",
            5 => "apiVersion",
            6 => "controller",
            7 => "blockOwnerDeletion",
            _ => continue,
        };
        match w {
            Wire::Bytes(b) => o.insert(name.into(), json!(text(b)?)),
            Wire::Varint(v) => o.insert(name.into(), json!(v != 0)),
            Wire::Fixed => None,
        };
    }
    Ok(Value::Object(o))
}

/// `metav1.ObjectMeta` (managed fields are the server's to keep and are not read).
fn object_meta(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    let (mut labels, mut annotations) = (Map::new(), Map::new());
    let (mut owners, mut finalizers) = (Vec::new(), Vec::new());
    for (n, w) in fields(bytes)? {
        match (n, w) {
            (1, Wire::Bytes(b)) => _ = m.insert("name".into(), json!(text(b)?)),
            (2, Wire::Bytes(b)) => _ = m.insert("generateName".into(), json!(text(b)?)),
            (3, Wire::Bytes(b)) => _ = m.insert("namespace".into(), json!(text(b)?)),
            (5, Wire::Bytes(b)) => _ = m.insert("uid".into(), json!(text(b)?)),
            (6, Wire::Bytes(b)) => _ = m.insert("resourceVersion".into(), json!(text(b)?)),
            (7, Wire::Varint(v)) => _ = m.insert("generation".into(), json!(v as i64)),
            (8, Wire::Bytes(b)) => _ = m.insert("creationTimestamp".into(), time(b)?),
            (11, Wire::Bytes(b)) => map_entry(b, false, &mut labels)?,
            (12, Wire::Bytes(b)) => map_entry(b, false, &mut annotations)?,
            (13, Wire::Bytes(b)) => owners.push(owner_reference(b)?),
            (14, Wire::Bytes(b)) => finalizers.push(json!(text(b)?)),
            _ => {}
        }
    }
    // Empty strings are how protobuf writes unset optional fields of client-go's structs.
    m.retain(|_, v| v != "" && !v.is_null());
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !owners.is_empty() {
        m.insert("ownerReferences".into(), json!(owners));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), json!(finalizers));
    }
    Ok(Value::Object(m))
}

/// `core/v1` Secret: metadata 1, data 2 (bytes), type 3, stringData 4, immutable 5.
/// ConfigMap: metadata 1, data 2 (strings), binaryData 3 (bytes), immutable 4.
fn object(kind: &str, raw: &[u8]) -> Result<Value, ApiError> {
    let mut o = json!({"apiVersion": "v1", "kind": kind});
    let (mut data, mut second) = (Map::new(), Map::new());
    let secret = kind == "Secret";
    for (n, w) in fields(raw)? {
        match (n, w, secret) {
            (1, Wire::Bytes(b), _) => o["metadata"] = object_meta(b)?,
            (2, Wire::Bytes(b), _) => map_entry(b, secret, &mut data)?,
            (3, Wire::Bytes(b), true) => o["type"] = json!(text(b)?),
            (4, Wire::Bytes(b), true) => map_entry(b, false, &mut second)?,
            (3, Wire::Bytes(b), false) => map_entry(b, true, &mut second)?,
            (5, Wire::Varint(v), true) | (4, Wire::Varint(v), false) => {
                o["immutable"] = json!(v != 0)
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        o["data"] = Value::Object(data);
    }
    if !second.is_empty() {
        o[if secret { "stringData" } else { "binaryData" }] = Value::Object(second);
    }
    Ok(o)
}

/// The string fields of a message, by field number, as a JSON object with those names.
fn strings(bytes: &[u8], names: &[(u64, &str)]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    for (n, w) in fields(bytes)? {
        if let (Some((_, name)), Wire::Bytes(b)) = (names.iter().find(|(k, _)| *k == n), w) {
            m.insert(name.to_string(), json!(text(b)?));
        }
    }
    Ok(Value::Object(m))
}

/// `authorization/v1` SelfSubjectAccessReview (spec 2: resourceAttributes 1,
/// nonResourceAttributes 2) and SelfSubjectRulesReview (spec 2: namespace 1).
fn review(kind: &str, raw: &[u8]) -> Result<Value, ApiError> {
    let mut o = json!({"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": {}});
    for (n, w) in fields(raw)? {
        let (2, Wire::Bytes(spec)) = (n, w) else {
            continue;
        };
        if kind == "SelfSubjectRulesReview" {
            o["spec"] = strings(spec, &[(1, "namespace")])?;
            continue;
        }
        for (n, w) in fields(spec)? {
            match (n, w) {
                (1, Wire::Bytes(b)) => {
                    o["spec"]["resourceAttributes"] = strings(
                        b,
                        &[
                            (1, "namespace"),
                            (2, "verb"),
                            (3, "group"),
                            (4, "version"),
                            (5, "resource"),
                            (6, "subresource"),
                            (7, "name"),
                        ],
                    )?;
                }
                (2, Wire::Bytes(b)) => {
                    o["spec"]["nonResourceAttributes"] = strings(b, &[(1, "path"), (2, "verb")])?;
                }
                _ => {}
            }
        }
    }
    Ok(o)
}

/// Decodes a protobuf request body into the JSON object it encodes.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("it does not start with the k8s protobuf magic"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (n, w) in fields(envelope)? {
        match (n, w) {
            (1, Wire::Bytes(type_meta)) => {
                for (n, w) in fields(type_meta)? {
                    match (n, w) {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    let raw = raw.ok_or_else(|| malformed("no object in the envelope"))?;
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret" | "ConfigMap") => object(&kind, raw),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview" | "SelfSubjectRulesReview") => {
            review(&kind, raw)
        }
        _ => Err(ApiError::with_code(
            415,
            "UnsupportedMediaType",
            format!(
                "kubesim reads the protobuf encoding only for v1 Secrets and ConfigMaps and self access reviews, not {api_version} {kind}; send it as application/json"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_secret_decodes() {
        let meta = [
            field(1, b"sh.helm.release.v1.web.v1"),
            field(3, b"shop"),
            field(11, &[field(1, b"owner"), field(2, b"helm")].concat()),
        ]
        .concat();
        let secret = [
            field(1, &meta),
            field(2, &[field(1, b"release"), field(2, b"\x01\x02")].concat()),
            field(3, b"helm.sh/release.v1"),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC, &field(1, &type_meta), &field(2, &secret)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "sh.helm.release.v1.web.v1", "namespace": "shop", "labels": {"owner": "helm"}},
                   "data": {"release": "AQI="}, "type": "helm.sh/release.v1"})
        );
        let pod = [
            MAGIC,
            &field(1, &[field(1, b"v1"), field(2, b"Pod")].concat()),
            &field(2, b""),
        ]
        .concat();
        assert_eq!(decode(&pod).unwrap_err().code, 415);
    }
}
