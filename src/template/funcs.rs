//! The functions Ollama registers with its templates (`template/template.go`'s `funcs`): `json`,
//! `currentDate`, `yesterdayDate` and `toTypeScriptType`.

use std::sync::LazyLock;

use chrono::{Days, Local};
use gotemplate::{json, Func, Funcs, Param, Value};

/// Ollama's function map, built once.
pub(super) fn ollama() -> &'static Funcs {
    static FUNCS: LazyLock<Funcs> = LazyLock::new(|| {
        Funcs::new()
            .with("json", one_any(json_fn))
            .with("toTypeScriptType", one_any(typescript_type_fn))
            .with("currentDate", strings(current_date))
            .with("yesterdayDate", strings(yesterday_date))
    });
    &FUNCS
}

type Body = fn(&[Value]) -> Result<Value, String>;

/// Go's `func(any) string`.
fn one_any(call: Body) -> Func {
    Func {
        params: &[Param::Any],
        variadic: None,
        call,
    }
}

/// Go's `func(...string) string`: the date helpers take (and ignore) any number of strings.
fn strings(call: Body) -> Func {
    Func {
        params: &[],
        variadic: Some(Param::Str),
        call,
    }
}

/// `json`: Go's `json.Marshal`, printing an empty string where Go's encoder fails (NaN or
/// infinite floats).
fn json_fn(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(json::marshal(&args[0]).unwrap_or_default()))
}

fn current_date(_: &[Value]) -> Result<Value, String> {
    Ok(Value::from(Local::now().format("%Y-%m-%d").to_string()))
}

fn yesterday_date(_: &[Value]) -> Result<Value, String> {
    let today = Local::now().date_naive();
    let yesterday = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    Ok(Value::from(yesterday.format("%Y-%m-%d").to_string()))
}

fn typescript_type_fn(args: &[Value]) -> Result<Value, String> {
    Ok(Value::from(typescript_type(&args[0])))
}

/// Ollama's `toTypeScriptType`: the TypeScript type of an `api.ToolProperty` (`anyOf` members or
/// JSON-schema types joined with ` | `), `any` for anything else.
fn typescript_type(v: &Value) -> String {
    let Value::Struct(s) = v else {
        return "any".to_owned();
    };
    if s.type_name != "api.ToolProperty" {
        return "any".to_owned();
    }
    if let Some(Value::List(any_of)) = s.get("AnyOf") {
        if !any_of.is_empty() {
            let parts: Vec<String> = any_of.items().iter().map(typescript_type).collect();
            return parts.join(" | ");
        }
    }
    let types: Vec<&str> = match s.get("Type") {
        Some(Value::String(t)) if !t.is_empty() => vec![t],
        Some(Value::List(l)) => l.items().iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return "any".to_owned();
    }
    let mapped: Vec<&str> = types
        .iter()
        .map(|t| match *t {
            "string" => "string",
            "number" | "integer" => "number",
            "boolean" => "boolean",
            "array" => "any[]",
            "object" => "Record<string, any>",
            "null" => "null",
            _ => "any",
        })
        .collect();
    mapped.join(" | ")
}
