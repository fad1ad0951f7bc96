//! Which JSON-schema keywords llama.cpp's grammar conversion enforces. It ignores the others
//! silently (a `multipleOf` or a `number` range would simply not hold), so a schema that uses one
//! is refused before generation instead of answered with output that does not validate.

use serde_json::Value;

/// Keywords llama.cpp's `json_schema_to_grammar` drops without a word (checked against this
/// llama-server: each one's output ignored it).
const IGNORED: [&str; 16] = [
    "multipleOf",
    "uniqueItems",
    "not",
    "if",
    "then",
    "else",
    "minProperties",
    "maxProperties",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedProperties",
];

/// String formats it turns into grammar rules; others are plain strings.
const FORMATS: [&str; 4] = ["date", "time", "date-time", "uuid"];

/// The first keyword of `schema` (at any depth) that llama.cpp would not enforce, as a message.
pub(super) fn unenforced(schema: &Value) -> Option<String> {
    let Value::Object(m) = schema else {
        return None;
    };
    if let Some(k) = IGNORED.iter().find(|k| m.contains_key(**k)) {
        return Some(format!("\"{k}\""));
    }
    if let Some(f) = m.get("format").and_then(Value::as_str) {
        if !FORMATS.contains(&f) {
            return Some(format!("\"format\": \"{f}\""));
        }
    }
    let is_number = match &m.get("type") {
        Some(Value::String(t)) => t == "number",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "number"),
        _ => false,
    };
    let ranges = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];
    if let Some(k) = ranges.iter().find(|k| is_number && m.contains_key(**k)) {
        return Some(format!("\"{k}\" on a number (integers are fine)"));
    }
    let nested = ["properties", "$defs", "definitions"]
        .iter()
        .filter_map(|k| m.get(*k)?.as_object())
        .flat_map(|o| o.values());
    let lists = ["anyOf", "oneOf", "allOf", "prefixItems"]
        .iter()
        .filter_map(|k| m.get(*k)?.as_array())
        .flatten();
    let single = ["items", "additionalProperties"]
        .iter()
        .filter_map(|k| m.get(*k));
    nested.chain(lists).chain(single).find_map(unenforced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_llama_cpp_would_silently_ignore() {
        let ok = json!({"type": "object", "properties": {
            "n": {"type": "integer", "minimum": 0, "maximum": 9},
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3}},
            "$defs": {"p": {"type": "string", "pattern": "^[a-z]+$"}},
            "title": "fine", "description": "annotations are fine"});
        assert_eq!(unenforced(&ok), None);
        for (schema, word) in [
            (json!({"type": "integer", "multipleOf": 3}), "multipleOf"),
            (
                json!({"type": "number", "minimum": 0, "maximum": 1}),
                "minimum",
            ),
            (
                json!({"properties": {"a": {"type": "array", "uniqueItems": true}}}),
                "uniqueItems",
            ),
            (
                json!({"anyOf": [{"type": "string", "format": "email"}]}),
                "email",
            ),
            (json!({"$defs": {"x": {"not": {"type": "null"}}}}), "not"),
            (
                json!({"items": {"type": ["number", "null"], "exclusiveMaximum": 5}}),
                "exclusiveMaximum",
            ),
            (
                json!({"type": "object", "minProperties": 2}),
                "minProperties",
            ),
        ] {
            let got = unenforced(&schema).unwrap_or_default();
            assert!(got.contains(word), "{schema}: {got}");
        }
    }
}
