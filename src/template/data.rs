//! Ollama's template data model: the Go structs its `template.Execute` hands to `text/template`
//! (`templateMessage`, `templateToolCall`, `templateTool`, `api.ToolProperty`), built from
//! ollmlx's API values with Ollama's field names (`.Function.Name`, `.ToolCalls`, ...), its JSON
//! tags (tools print as `{"type":"function","function":{"name":...}}`), its map ordering
//! (arguments and top-level properties sorted, as Go maps are) and its `String()` methods (a
//! tool, a function, the tool list and arguments print as JSON).
//!
//! Unknown keys in tool definitions are dropped, as Go's decoding into these structs drops them.

use serde_json::Value as Json;

use crate::api::Message;

use gotemplate::{JsonKey, List, Map, Print, Struct, Value};

/// `.Messages`: `[]*templateMessage`, nil when there are none.
pub(crate) fn messages(msgs: &[Message]) -> Value {
    if msgs.is_empty() {
        return Value::from(List::nil());
    }
    Value::list(msgs.iter().map(message).collect())
}

fn message(m: &Message) -> Value {
    let images = strings_or_nil(m.images.iter().map(String::as_str));
    let tool_calls = if m.tool_calls.is_empty() {
        Value::from(List::nil())
    } else {
        Value::list(m.tool_calls.iter().map(tool_call).collect())
    };
    Struct::new("*template.templateMessage")
        .field("Role", JsonKey::GoName, Value::from(m.role.as_str()))
        .field("Content", JsonKey::GoName, Value::from(m.content.as_str()))
        .field(
            "Thinking",
            JsonKey::GoName,
            Value::from(m.thinking.as_str()),
        )
        .field("Images", JsonKey::GoName, images)
        .field("ToolCalls", JsonKey::GoName, tool_calls)
        .field(
            "ToolName",
            JsonKey::GoName,
            Value::from(m.tool_name.as_str()),
        )
        .field(
            "ToolCallID",
            JsonKey::GoName,
            Value::from(m.tool_call_id.as_str()),
        )
        .into()
}

/// `templateToolCall` from Ollama's wire shape `{"id", "function": {"index", "name",
/// "arguments"}}`.
fn tool_call(tc: &Json) -> Value {
    let function = &tc["function"];
    let index = function["index"].as_i64().unwrap_or(0);
    let call_function = Struct::new("template.templateToolCallFunction")
        .field("Index", JsonKey::GoName, Value::Int(index))
        .field("Name", JsonKey::GoName, string(&function["name"]))
        .field(
            "Arguments",
            JsonKey::GoName,
            arguments(&function["arguments"]),
        );
    Struct::new("template.templateToolCall")
        .field("ID", JsonKey::GoName, string(&tc["id"]))
        .field("Function", JsonKey::GoName, call_function.into())
        .into()
}

/// `templateArgs`: a Go map (sorted keys all the way down, numbers as float64) printing as JSON.
/// Arguments sent as a JSON string (OpenAI style) are decoded first.
fn arguments(v: &Json) -> Value {
    let decoded;
    let v = match v {
        Json::String(s) => match serde_json::from_str::<Json>(s) {
            Ok(parsed) => {
                decoded = parsed;
                &decoded
            }
            Err(_) => &Json::Null,
        },
        other => other,
    };
    let map = match v {
        Json::Object(o) => Map::sorted(
            o.iter()
                .map(|(k, v)| (k.clone(), Value::from_json_any(v)))
                .collect(),
        ),
        _ => Map::nil(),
    };
    map.with_print(Print::Json).into()
}

/// `.Tools`: `templateTools`, nil when there are none, printing as a JSON array.
pub(crate) fn tools(tools: &[Json]) -> Value {
    let list = if tools.is_empty() {
        List::nil()
    } else {
        List::new(tools.iter().map(tool).collect())
    };
    list.with_print(Print::Json).into()
}

fn tool(t: &Json) -> Value {
    let f = &t["function"];
    let function = Struct::new("template.templateToolFunction")
        .field("Name", JsonKey::Key("name"), string(&f["name"]))
        .field(
            "Description",
            JsonKey::Key("description"),
            string(&f["description"]),
        )
        .field(
            "Parameters",
            JsonKey::Key("parameters"),
            parameters(&f["parameters"]),
        )
        .with_print(Print::Json);
    Struct::new("template.templateTool")
        .field("Type", JsonKey::Key("type"), string(&t["type"]))
        .field("Items", JsonKey::OmitNil("items"), any(&t["items"]))
        .field("Function", JsonKey::Key("function"), function.into())
        .with_print(Print::Json)
        .into()
}

fn parameters(p: &Json) -> Value {
    let properties = match &p["properties"] {
        Json::Object(o) => Map::sorted(
            o.iter()
                .map(|(k, v)| (k.clone(), tool_property(v)))
                .collect(),
        ),
        _ => Map::nil(),
    };
    Struct::new("template.templateToolFunctionParameters")
        .field("Type", JsonKey::Key("type"), string(&p["type"]))
        .field("Defs", JsonKey::OmitNil("$defs"), any(&p["$defs"]))
        .field("Items", JsonKey::OmitNil("items"), any(&p["items"]))
        .field(
            "Required",
            JsonKey::OmitEmpty("required"),
            string_list(&p["required"]),
        )
        .field(
            "Properties",
            JsonKey::Key("properties"),
            properties.with_print(Print::Json).into(),
        )
        .with_print(Print::Json)
        .into()
}

/// `api.ToolProperty`. `Type` is Go's `PropertyType`: one type prints and marshals as a plain
/// string, several as a list.
fn tool_property(v: &Json) -> Value {
    let any_of = match &v["anyOf"] {
        Json::Array(a) => Value::list(a.iter().map(tool_property).collect()),
        _ => Value::from(List::nil()),
    };
    let kind = match &v["type"] {
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) if a.len() == 1 => string(&a[0]),
        Json::Array(a) => Value::list(a.iter().map(string).collect()),
        _ => Value::from(""),
    };
    let enum_values = match &v["enum"] {
        Json::Array(a) => Value::list(a.iter().map(Value::from_json_any).collect()),
        _ => Value::from(List::nil()),
    };
    // Nested properties keep their order (Ollama stores them in an ordered map).
    let properties = match &v["properties"] {
        Json::Object(o) => Value::from(Map::ordered(
            o.iter()
                .map(|(k, v)| (k.clone(), tool_property(v)))
                .collect(),
        )),
        _ => Value::Nil,
    };
    Struct::new("api.ToolProperty")
        .field("AnyOf", JsonKey::OmitEmpty("anyOf"), any_of)
        .field("Type", JsonKey::OmitEmpty("type"), kind)
        .field("Items", JsonKey::OmitNil("items"), any(&v["items"]))
        .field(
            "Description",
            JsonKey::OmitEmpty("description"),
            string(&v["description"]),
        )
        .field("Enum", JsonKey::OmitEmpty("enum"), enum_values)
        .field("Properties", JsonKey::OmitNil("properties"), properties)
        .field(
            "Required",
            JsonKey::OmitEmpty("required"),
            string_list(&v["required"]),
        )
        .into()
}

/// A Go string field: non-strings (which Go would have rejected when decoding) read as "".
fn string(v: &Json) -> Value {
    Value::from(v.as_str().unwrap_or(""))
}

/// A Go `any` field.
fn any(v: &Json) -> Value {
    Value::from_json_any(v)
}

/// A Go `[]string` field: nil when absent.
fn string_list(v: &Json) -> Value {
    match v {
        Json::Array(a) => strings_or_nil(a.iter().filter_map(Json::as_str)),
        _ => Value::from(List::nil()),
    }
}

fn strings_or_nil<'a>(items: impl Iterator<Item = &'a str>) -> Value {
    let items: Vec<Value> = items.map(Value::from).collect();
    if items.is_empty() {
        Value::from(List::nil())
    } else {
        Value::list(items)
    }
}
