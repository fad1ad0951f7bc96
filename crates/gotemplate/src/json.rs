//! Go's `json.Marshal` for template values: compact output, struct fields in declaration order
//! under their `json` tags (with `omitempty`), Go maps in sorted key order, and Go's string
//! escaping, which turns `<`, `>` and `&` into `\u003c`, `\u003e`, `\u0026`.

use super::strconv::format_float_json;
use super::value::{JsonKey, Value};

/// Go's `json.Marshal(v)`. `Err` where Go's encoder fails (NaN or infinite floats).
pub fn marshal(v: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_value(&mut out, v)?;
    Ok(out)
}

fn write_value(out: &mut String, v: &Value) -> Result<(), String> {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => match format_float_json(*f) {
            Some(s) => out.push_str(&s),
            None => return Err(format!("json: unsupported value: {f}")),
        },
        Value::String(s) => write_string(out, s),
        Value::List(l) if l.is_nil() => out.push_str("null"),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Map(m) if m.is_nil() => out.push_str("null"),
        Value::Map(m) => {
            out.push('{');
            for (i, (k, v)) in m.entries().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v)?;
            }
            out.push('}');
        }
        Value::Struct(s) => {
            out.push('{');
            let mut first = true;
            for field in &s.fields {
                let key = match field.json {
                    JsonKey::GoName => field.name,
                    JsonKey::Key(k) => k,
                    JsonKey::OmitEmpty(_) if is_empty(&field.value) => continue,
                    JsonKey::OmitNil(_) if matches!(field.value, Value::Nil) => continue,
                    JsonKey::OmitEmpty(k) | JsonKey::OmitNil(k) => k,
                };
                if !first {
                    out.push(',');
                }
                first = false;
                write_string(out, key);
                out.push(':');
                write_value(out, &field.value)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Go's `isEmptyValue` for the field kinds `omitempty` applies to by value.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Struct(_) => false,
    }
}

/// A JSON string with Go's escaping (HTML-safe, `\u2028`/`\u2029` escaped, `\b`/`\f` short).
pub(crate) fn write_string(out: &mut String, s: &str) {
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
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
