//! JSON written byte-for-byte as Go's `json.NewEncoder(w).Encode(v)` writes it, for the files
//! Ollama writes that way (manifests, and the config, parameters and messages blobs of a model
//! it creates). A blob's name is the SHA-256 of its bytes and a model's ID the SHA-256 of its
//! manifest, so the same content gets the same names and ID in Ollama and ollmlx only if every
//! byte is the same:
//! - compact, with a trailing newline;
//! - `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c` ...; other control characters as
//!   `\u00XX` except `\n`, `\r`, `\t` (and `\b`, `\f`, which Go also writes short);
//! - floats in Go's shortest form (`4096`, not `4096.0`; `1e+21`, `1e-7`);
//! - objects in the order given: the caller sorts keys where Go encodes a map.

use serde_json::Value;
use std::fmt::Write;

/// `v` as Go's encoder writes it, with the trailing newline.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(&mut out, v);
    out.push('\n');
    out.into_bytes()
}

/// `v` with every object's keys sorted, as Go encodes a `map[string]any`.
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => write!(out, "{i}").unwrap(),
            (_, Some(u)) => write!(out, "{u}").unwrap(),
            _ => write_float(out, n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Go's `floatEncoder` for float64: the shortest digits that round-trip, in `%f` form for
/// 1e-6 <= |f| < 1e21 and `%e` form otherwise (with a two-digit exponent shortened to one:
/// `1e-07` becomes `1e-7`).
fn write_float(out: &mut String, f: f64) {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // Rust's Display is the shortest round-trip digits, never in exponent form.
        write!(out, "{f}").unwrap();
        return;
    }
    // `{:e}` is the shortest digits in exponent form: 1e21, 1.5e-7.
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    // Outside the fixed range the exponent has at least two digits, as Go writes it (after
    // shortening `e-07` to `e-7`, which `{:e}` already writes).
    write!(out, "{mantissa}e{sign}{digits}").unwrap();
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                write!(out, "\\u{:04x}", c as u32).unwrap()
            }
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Outputs of Go 1.26's `json.NewEncoder(&b).Encode(v)` for the same values.
    #[test]
    fn bytes_as_go_writes_them() {
        let cases: &[(Value, &str)] = &[
            (
                json!({"b": 1, "a": [true, null]}),
                r#"{"b":1,"a":[true,null]}"#,
            ),
            (
                json!("<a href=\"x\">&</a>"),
                r#""\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e""#,
            ),
            (
                json!("tab\tnl\ncr\r\u{1}\u{8}\u{c}\u{2028}é"),
                r#""tab\tnl\ncr\r\u0001\b\f\u2028é""#,
            ),
            (json!(4096.0), "4096"),
            (json!(0.7), "0.7"),
            (json!(1e21), "1e+21"),
            (json!(1.5e300), "1.5e+300"),
            (json!(1e-7), "1e-7"),
            (json!(0.000001), "0.000001"),
            (json!(-2.5), "-2.5"),
            (json!(123456789012345680000.0), "123456789012345680000"),
            (json!(-7), "-7"),
            (json!(u64::MAX), "18446744073709551615"),
        ];
        for (v, want) in cases {
            assert_eq!(
                String::from_utf8(encode(v)).unwrap(),
                format!("{want}\n"),
                "{v}"
            );
        }
    }

    #[test]
    fn maps_sort_their_keys() {
        let v = json!({"stop": ["<|eot|>"], "num_ctx": 4096, "temperature": 0.7});
        assert_eq!(
            String::from_utf8(encode(&sorted(&v))).unwrap(),
            "{\"num_ctx\":4096,\"stop\":[\"\\u003c|eot|\\u003e\"],\"temperature\":0.7}\n"
        );
    }
}
