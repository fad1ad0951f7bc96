//! The body of a tool call, in each family's syntax, as `(name, arguments)` pairs:
//!
//! - JSON: `{"name": …, "arguments"|"parameters": {…} or "<json>"}`, a list of them, or nested
//!   under `function` (Hermes, Qwen, Llama 3.x, Mistral, DeepSeek's JSON block);
//! - Mistral's `name[ARGS]{…}`;
//! - Qwen3-Coder's `<function=name><parameter=k>v</parameter></function>`;
//! - GLM's `name<arg_key>k</arg_key><arg_value>v</arg_value>`;
//! - MiniMax's `<invoke name="n"><parameter name="k">v</parameter></invoke>`;
//! - Kimi K2's `<|tool_call_begin|>functions.name:0<|tool_call_argument_begin|>{…}<|tool_call_end|>`;
//! - DeepSeek's `<｜tool▁call▁begin｜>[function<｜tool▁sep｜>]name[\n```json]{…}[```]<｜tool▁call▁end｜>`;
//! - Gemma 4's `call:name{key:<|"|>text<|"|>,n:3}`;
//! - Pythonic calls, `[name(k="v", n=2), …]` (LFM2, Llama 3.2 small models).
//!
//! Values written as text (XML-style families) stay strings when the tool's schema says the
//! parameter is a string, and are read as JSON (else Python literals) otherwise, as mlx_lm and
//! vLLM do.

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

pub type Call = (String, Map<String, Value>);

/// Each tool's string-typed parameters, from the request's tool definitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StringParams(HashMap<String, HashSet<String>>);

impl StringParams {
    pub fn from_tools(tools: &[Value]) -> StringParams {
        let mut m = HashMap::new();
        for t in tools {
            let f = &t["function"];
            let Some(name) = f["name"].as_str() else {
                continue;
            };
            let props = f["parameters"]["properties"].as_object();
            let strings = props
                .into_iter()
                .flatten()
                .filter(|(_, s)| s["type"] == "string")
                .map(|(k, _)| k.clone())
                .collect();
            m.insert(name.to_owned(), strings);
        }
        StringParams(m)
    }

    fn is_string(&self, tool: &str, param: &str) -> bool {
        self.0.get(tool).is_some_and(|s| s.contains(param))
    }

    /// A value written as text: a string when the schema says so, else JSON or a Python literal.
    fn value(&self, tool: &str, param: &str, raw: &str) -> Value {
        let raw = raw.trim_matches('\n');
        if self.is_string(tool, param) {
            return Value::String(raw.to_owned());
        }
        serde_json::from_str(raw.trim())
            .ok()
            .or_else(|| python_literal(raw.trim()))
            .unwrap_or_else(|| Value::String(raw.to_owned()))
    }
}

/// Parses a call body in whichever syntax it is written; `None` when it is not a call.
pub fn parse(body: &str, strings: &StringParams) -> Option<Vec<Call>> {
    let body = body.trim();
    let calls = if body.starts_with("<function=") {
        xml_functions(body, strings)
    } else if body.contains("<invoke name=") {
        minimax(body, strings)
    } else if body.contains("<arg_key>") {
        glm(body, strings).map(|c| vec![c])
    } else if body.contains("<|tool_call_begin|>") {
        kimi(body)
    } else if body.contains("<｜tool▁call▁begin｜>") {
        deepseek(body)
    } else if body.starts_with("call:") {
        gemma(body)
    } else if let Some((name, args)) = body.split_once("[ARGS]") {
        Some(vec![(
            name.trim().to_owned(),
            object(serde_json::from_str(args.trim()).ok()?)?,
        )])
    } else {
        json_calls(body).or_else(|| pythonic(body))
    }?;
    (!calls.is_empty()).then_some(calls)
}

fn json_calls(body: &str) -> Option<Vec<Call>> {
    match serde_json::from_str::<Value>(body).ok()? {
        Value::Array(items) => items.into_iter().map(json_call).collect(),
        one => Some(vec![json_call(one)?]),
    }
}

/// `{"name": …, "arguments"|"parameters": …}`, also nested under `function`.
fn json_call(v: Value) -> Option<Call> {
    let mut m = object(v)?;
    if let Some(Value::Object(f)) = m.remove("function") {
        m = f;
    }
    let name = m.get("name")?.as_str()?.to_owned();
    let args = arguments(m.remove("arguments").or_else(|| m.remove("parameters")))?;
    Some((name, args))
}

/// Arguments as an object: absent or empty is `{}`, a string is decoded.
fn arguments(v: Option<Value>) -> Option<Map<String, Value>> {
    match v {
        None | Some(Value::Null) => Some(Map::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Some(Map::new()),
        Some(Value::String(s)) => object(serde_json::from_str(&s).ok()?),
        Some(other) => object(other),
    }
}

fn object(v: Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The text between `open` and `close` at the start of `s`, and the rest after `close`.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<(&'a str, &'a str)> {
    let at = s.find(open)?;
    let rest = &s[at + open.len()..];
    let end = rest.find(close)?;
    Some((&rest[..end], &rest[end + close.len()..]))
}

fn xml_functions(body: &str, strings: &StringParams) -> Option<Vec<Call>> {
    let mut calls = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("<function=") {
        let after = &rest[at + "<function=".len()..];
        let (name, after) = after.split_once('>')?;
        let end = after.find("</function>").unwrap_or(after.len());
        let name = name.trim().to_owned();
        let mut args = Map::new();
        let mut params = &after[..end];
        while let Some((key, value_and_rest)) = params
            .find("<parameter=")
            .map(|i| &params[i + "<parameter=".len()..])
            .and_then(|p| p.split_once('>'))
        {
            let stop = value_and_rest.find("</parameter>")?;
            let key = key.trim().to_owned();
            let value = strings.value(&name, &key, &value_and_rest[..stop]);
            args.insert(key, value);
            params = &value_and_rest[stop + "</parameter>".len()..];
        }
        calls.push((name, args));
        rest = after.get(end + "</function>".len()..).unwrap_or("");
    }
    Some(calls)
}

fn glm(body: &str, strings: &StringParams) -> Option<Call> {
    let at = body.find("<arg_key>")?;
    let name = body[..at].trim().to_owned();
    let mut args = Map::new();
    let mut rest = &body[at..];
    while let Some((key, after)) = between(rest, "<arg_key>", "</arg_key>") {
        let (value, after) = between(after, "<arg_value>", "</arg_value>")?;
        args.insert(
            key.trim().to_owned(),
            strings.value(&name, key.trim(), value),
        );
        rest = after;
    }
    Some((name, args))
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(s)
}

fn minimax(body: &str, strings: &StringParams) -> Option<Vec<Call>> {
    let mut calls = Vec::new();
    let mut rest = body;
    while let Some((invoke, after)) = between(rest, "<invoke name=", "</invoke>") {
        let (name, mut params) = invoke.split_once('>')?;
        let name = unquote(name).to_owned();
        let mut args = Map::new();
        while let Some((p, after_p)) = between(params, "<parameter name=", "</parameter>") {
            let (key, value) = p.split_once('>')?;
            let key = unquote(key);
            args.insert(key.to_owned(), strings.value(&name, key, value));
            params = after_p;
        }
        calls.push((name, args));
        rest = after;
    }
    Some(calls)
}

fn kimi(body: &str) -> Option<Vec<Call>> {
    let mut calls = Vec::new();
    let mut rest = body;
    while let Some((call, after)) = between(rest, "<|tool_call_begin|>", "<|tool_call_end|>") {
        let (id, args) = call.split_once("<|tool_call_argument_begin|>")?;
        // `functions.get_weather:0`
        let id = id.trim();
        let id = id.strip_prefix("functions.").unwrap_or(id);
        let name = id.rsplit_once(':').map_or(id, |(n, _)| n).to_owned();
        calls.push((name, object(serde_json::from_str(args.trim()).ok()?)?));
        rest = after;
    }
    Some(calls)
}

fn deepseek(body: &str) -> Option<Vec<Call>> {
    let mut calls = Vec::new();
    let mut rest = body;
    while let Some((call, after)) = between(rest, "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>")
    {
        let (head, args) = call.split_once("<｜tool▁sep｜>")?;
        // V3: `function<｜tool▁sep｜>name\n```json\n{…}\n````; V3.1: `name<｜tool▁sep｜>{…}`.
        let (name, args) = if head.trim() == "function" {
            args.split_once('\n')?
        } else {
            (head, args)
        };
        let args = args.trim();
        let args = args
            .strip_prefix("```json")
            .and_then(|a| a.strip_suffix("```"))
            .unwrap_or(args);
        calls.push((
            name.trim().to_owned(),
            object(serde_json::from_str(args.trim()).ok()?)?,
        ));
        rest = after;
    }
    Some(calls)
}

/// `call:name{…}` (Gemma 4): bare keys, strings between `<|"|>` delimiters.
fn gemma(body: &str) -> Option<Vec<Call>> {
    const Q: &str = "<|\"|>";
    let mut calls = Vec::new();
    for part in body.split("call:").filter(|p| !p.trim().is_empty()) {
        let (name, args) = part.split_once('{')?;
        let args = &args[..args.rfind('}')?];
        let mut json = String::from("{");
        let mut rest = args;
        let mut key_next = true;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix(Q) {
                let end = r.find(Q)?;
                json.push_str(&Value::String(r[..end].to_owned()).to_string());
                rest = &r[end + Q.len()..];
                key_next = false;
                continue;
            }
            if key_next {
                let n = rest.len()
                    - rest
                        .trim_start_matches(|c: char| c.is_alphanumeric() || c == '_')
                        .len();
                if n > 0 && rest[n..].starts_with(':') {
                    json.push_str(&Value::String(rest[..n].to_owned()).to_string());
                    rest = &rest[n..];
                }
            }
            let c = rest.chars().next()?;
            json.push(c);
            rest = &rest[c.len_utf8()..];
            key_next = matches!(c, '{' | ',');
        }
        json.push('}');
        calls.push((
            name.trim().to_owned(),
            object(serde_json::from_str(&json).ok()?)?,
        ));
    }
    Some(calls)
}

/// `[name(k=v, …), …]` with Python literal values.
fn pythonic(body: &str) -> Option<Vec<Call>> {
    let mut p = Py::new(body.trim());
    p.eat('[')?;
    let mut calls = Vec::new();
    loop {
        p.ws();
        let name = p.ident(true)?;
        p.eat('(')?;
        let mut args = Map::new();
        loop {
            p.ws();
            if p.eat(')').is_some() {
                break;
            }
            let key = p.ident(false)?;
            p.eat('=')?;
            args.insert(key, p.value()?);
            p.ws();
            if p.eat(',').is_none() {
                p.ws();
                p.eat(')')?;
                break;
            }
        }
        calls.push((name, args));
        p.ws();
        if p.eat(',').is_none() {
            p.eat(']')?;
            break;
        }
    }
    p.ws();
    p.done().then_some(calls)
}

/// A Python (or JSON) literal: strings in either quote, numbers, True/False/None and
/// true/false/null, lists, tuples and dicts.
fn python_literal(s: &str) -> Option<Value> {
    let mut p = Py::new(s);
    let v = p.value()?;
    p.ws();
    p.done().then_some(v)
}

struct Py<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Py<'a> {
    fn new(s: &'a str) -> Py<'a> {
        Py { s, at: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.s[self.at..].chars().next()
    }

    fn done(&self) -> bool {
        self.at == self.s.len()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: char) -> Option<()> {
        self.ws();
        (self.peek() == Some(c)).then(|| self.at += c.len_utf8())
    }

    fn ident(&mut self, dotted: bool) -> Option<String> {
        self.ws();
        let start = self.at;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || (dotted && (c == '.' || c == '-')) {
                self.at += c.len_utf8();
            } else {
                break;
            }
        }
        (self.at > start).then(|| self.s[start..self.at].to_owned())
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match self.peek()? {
            q @ ('"' | '\'') => self.string(q).map(Value::String),
            '[' | '(' => {
                let close = if self.peek()? == '[' { ']' } else { ')' };
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(close).is_some() {
                        return Some(Value::Array(items));
                    }
                    items.push(self.value()?);
                    if self.eat(',').is_none() {
                        self.eat(close)?;
                        return Some(Value::Array(items));
                    }
                }
            }
            '{' => {
                self.at += 1;
                let mut m = Map::new();
                loop {
                    if self.eat('}').is_some() {
                        return Some(Value::Object(m));
                    }
                    let Value::String(k) = self.value()? else {
                        return None;
                    };
                    self.eat(':')?;
                    m.insert(k, self.value()?);
                    if self.eat(',').is_none() {
                        self.eat('}')?;
                        return Some(Value::Object(m));
                    }
                }
            }
            _ => {
                let word = self.ident(true)?;
                match word.as_str() {
                    "True" | "true" => Some(Value::Bool(true)),
                    "False" | "false" => Some(Value::Bool(false)),
                    "None" | "null" => Some(Value::Null),
                    n => serde_json::from_str::<serde_json::Number>(n)
                        .ok()
                        .map(Value::Number),
                }
            }
        }
    }

    fn string(&mut self, quote: char) -> Option<String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.at += c.len_utf8();
            match c {
                '\\' => {
                    let e = self.peek()?;
                    self.at += e.len_utf8();
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                c if c == quote => return Some(out),
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn calls(body: &str, tools: Value) -> Vec<(String, Value)> {
        let strings = StringParams::from_tools(tools.as_array().unwrap());
        parse(body, &strings)
            .unwrap_or_else(|| panic!("no call in {body:?}"))
            .into_iter()
            .map(|(n, a)| (n, Value::Object(a)))
            .collect()
    }

    fn weather() -> Value {
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"},
            "days": {"type": "integer"}}}}}])
    }

    fn want() -> Vec<(String, Value)> {
        vec![(
            "get_weather".into(),
            json!({"city": "Paris", "zip": "75001", "days": 3}),
        )]
    }

    #[test]
    fn every_family_gives_the_same_call() {
        let bodies = [
            r#"{"name": "get_weather", "arguments": {"city": "Paris", "zip": "75001", "days": 3}}"#,
            r#"{"function": {"name": "get_weather", "parameters": "{\"city\": \"Paris\", \"zip\": \"75001\", \"days\": 3}"}}"#,
            r#"get_weather[ARGS]{"city": "Paris", "zip": "75001", "days": 3}"#,
            "<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=zip>\n75001\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>",
            "get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n<arg_key>zip</arg_key><arg_value>75001</arg_value><arg_key>days</arg_key><arg_value>3</arg_value>",
            "<invoke name=\"get_weather\">\n<parameter name=\"city\">Paris</parameter>\n<parameter name=\"zip\">75001</parameter>\n<parameter name=\"days\">3</parameter>\n</invoke>",
            r#"<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"city": "Paris", "zip": "75001", "days": 3}<|tool_call_end|>"#,
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\", \"zip\": \"75001\", \"days\": 3}\n```<｜tool▁call▁end｜>",
            "<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\", \"zip\": \"75001\", \"days\": 3}<｜tool▁call▁end｜>",
            r#"[get_weather(city="Paris", zip='75001', days=3)]"#,
            r#"call:get_weather{city:<|"|>Paris<|"|>,zip:<|"|>75001<|"|>,days:3}"#,
        ];
        for b in bodies {
            assert_eq!(calls(b, weather()), want(), "{b}");
        }
    }

    #[test]
    fn several_calls_and_python_literals() {
        let got = calls(r#"[a(x=[1, 2.5, None], y={'k': True}), b()]"#, json!([]));
        assert_eq!(
            got,
            vec![
                ("a".into(), json!({"x": [1, 2.5, null], "y": {"k": true}})),
                ("b".into(), json!({}))
            ]
        );
        let two = "<invoke name=\"a\"><parameter name=\"n\">1</parameter></invoke><invoke name=\"b\"></invoke>";
        assert_eq!(calls(two, json!([])).len(), 2);
    }

    #[test]
    fn not_calls() {
        for body in [
            "hello",
            "{\"a\": 1}",
            "[1, 2]",
            "[f(x=)]",
            "<function=f><parameter=a>1",
        ] {
            assert!(parse(body, &StringParams::default()).is_none(), "{body}");
        }
    }
}
