//! Canonical JSON: object keys sorted, no insignificant whitespace, so the
//! same value always gives the same bytes and digest (the workspace's
//! serde_json keeps insertion order, which we must not depend on).

use serde_json::Value;

/// Serialises a value with sorted object keys and no whitespace.
pub fn to_canonical_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(&Value::String((*k).clone()), out);
                out.push(b':');
                write(&map[k.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        // Scalars: serde_json's compact form is already canonical.
        other => out.extend_from_slice(serde_json::to_string(other).expect("scalar serialises").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_and_compact() {
        let v = json!({"b": [1, {"z": null, "a": "x\"y"}], "a": true});
        assert_eq!(to_canonical_json(&v), br#"{"a":true,"b":[1,{"a":"x\"y","z":null}]}"#);
    }
}
