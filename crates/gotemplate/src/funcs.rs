//! The functions a template can call: Go's builtins (`eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`,
//! `or`, `not`, `len`, `index`, `slice`, `print`, `printf`, `println`, `html`, `js`, `urlquery`,
//! `call`), and the caller's own, registered in a [`Funcs`] map as Go's `Template.Funcs` does.
//! Errors are returned bare; the executor adds "error calling NAME: ".

use std::collections::BTreeMap;

use super::format::{sprint, sprintf, sprintln};
use super::value::{List, Value};

/// How an argument is passed, which decides what Go accepts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `any`: anything, including a `nil` literal.
    Any,
    /// `reflect.Value` (the comparison and collection builtins): a `nil` literal is rejected.
    Reflect,
    /// `string`: only strings.
    Str,
}

/// A function the caller registers: its Go signature and its body.
#[derive(Debug, Clone, Copy)]
pub struct Func {
    /// The parameters every call passes, in order.
    pub params: &'static [Param],
    /// The type of a variadic tail (`...string`), if the function has one.
    pub variadic: Option<Param>,
    /// The body, called with arguments already checked against the signature. An `Err` is a Go
    /// function returning a non-nil error: execution stops with "error calling NAME: ERR".
    pub call: fn(&[Value]) -> Result<Value, String>,
}

/// Go's `FuncMap`: functions by name, given to [`Template::parse_with`](crate::Template). As in
/// Go, a registered function hides a builtin of the same name.
#[derive(Debug, Clone, Default)]
pub struct Funcs(BTreeMap<String, Func>);

impl Funcs {
    pub fn new() -> Funcs {
        Funcs::default()
    }

    /// Adds (or replaces) `name`.
    pub fn with(mut self, name: impl Into<String>, func: Func) -> Funcs {
        self.0.insert(name.into(), func);
        self
    }
}

/// A function's parameters: fixed ones, then optionally a variadic tail.
pub(crate) struct Sig {
    pub fixed: &'static [Param],
    pub variadic: Option<Param>,
}

const fn sig(fixed: &'static [Param], variadic: Option<Param>) -> Sig {
    Sig { fixed, variadic }
}

pub(crate) fn signature(name: &str, funcs: &Funcs) -> Option<Sig> {
    use Param::{Any, Reflect, Str};
    if let Some(f) = funcs.0.get(name) {
        return Some(sig(f.params, f.variadic));
    }
    Some(match name {
        "and" | "or" | "eq" | "index" | "slice" | "call" => sig(&[Reflect], Some(Reflect)),
        "ne" | "lt" | "le" | "gt" | "ge" => sig(&[Reflect, Reflect], None),
        "not" | "len" => sig(&[Reflect], None),
        "print" | "println" | "html" | "js" | "urlquery" => sig(&[], Some(Any)),
        "printf" => sig(&[Str], Some(Any)),
        _ => return None,
    })
}

pub(crate) fn is_defined(name: &str, funcs: &Funcs) -> bool {
    signature(name, funcs).is_some()
}

/// Whether `name` is the builtin `and` or `or`, which the executor evaluates lazily.
pub(crate) fn is_and_or(name: &str, funcs: &Funcs) -> bool {
    matches!(name, "and" | "or") && !funcs.0.contains_key(name)
}

/// Calls `name` (not the builtin `and`/`or`) with evaluated arguments whose count and types were
/// already checked against [`signature`].
pub(crate) fn call(name: &str, args: &[Value], funcs: &Funcs) -> Result<Value, String> {
    if let Some(f) = funcs.0.get(name) {
        return (f.call)(args);
    }
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
    Ok(match name {
        "eq" => Value::Bool(eq(&arg(0), args.get(1..).unwrap_or(&[]))?),
        "ne" => Value::Bool(!eq(&arg(0), &[arg(1)])?),
        "lt" => Value::Bool(lt(&arg(0), &arg(1))?),
        "le" => Value::Bool(le(&arg(0), &arg(1))?),
        "gt" => Value::Bool(!le(&arg(0), &arg(1))?),
        "ge" => Value::Bool(!lt(&arg(0), &arg(1))?),
        "not" => Value::Bool(!arg(0).truth()),
        "len" => Value::Int(length(&arg(0))?),
        "index" => index(&arg(0), args.get(1..).unwrap_or(&[]))?,
        "slice" => slice(&arg(0), args.get(1..).unwrap_or(&[]))?,
        "print" => Value::from(sprint(args)),
        "println" => Value::from(sprintln(args)),
        "printf" => Value::from(sprintf(
            arg(0).as_str().unwrap_or(""),
            args.get(1..).unwrap_or(&[]),
        )),
        "html" => Value::from(html_escape(&eval_args(args))),
        "js" => Value::from(js_escape(&eval_args(args))),
        "urlquery" => Value::from(query_escape(&eval_args(args))),
        "call" => {
            return Err(match arg(0) {
                Value::Nil => "call of nil".to_owned(),
                other => format!("non-function of type {}", other.type_name()),
            })
        }
        _ => return Err(format!("{name:?} is not a defined function")),
    })
}

/// Go's `eq`: true when `a` equals any of `rest`. Basic values of different kinds (an int and a
/// float, say) are an error, not false; a nil against anything else is false.
fn eq(a: &Value, rest: &[Value]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".to_owned());
    }
    for b in rest {
        let truth = match (a, b) {
            // Go fails here: comparing two untyped nils asks reflect for a type it does not have.
            (Value::Nil, Value::Nil) => {
                return Err("reflect: call of reflect.Value.Type on zero Value".to_owned())
            }
            (Value::Nil, _) | (_, Value::Nil) => false,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::String(x), Value::String(y)) => x == y,
            (x, y) if is_basic(x) || is_basic(y) => {
                return Err("incompatible types for comparison".to_owned())
            }
            (x, _) => return Err(format!("non-comparable type {}", x.type_name())),
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_basic(v: &Value) -> bool {
    matches!(
        v,
        Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::String(_)
    )
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let bad_type = || "invalid type for comparison".to_owned();
    if !is_basic(a) || !is_basic(b) {
        return Err(bad_type());
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::String(x), Value::String(y)) => Ok(x < y),
        (Value::Bool(_), Value::Bool(_)) => Err(bad_type()),
        _ => Err("incompatible types for comparison".to_owned()),
    }
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(lt(a, b)? || eq(a, std::slice::from_ref(b))?)
}

fn length(v: &Value) -> Result<i64, String> {
    let n = match v {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Nil => return Err("len of nil pointer".to_owned()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(n as i64)
}

/// An index argument, checked against `cap` as Go's `indexArg` does (`cap` itself is allowed
/// here; callers reject it where Go's reflect would panic).
fn index_arg(v: &Value, cap: usize) -> Result<usize, String> {
    match v {
        Value::Int(x) if *x < 0 || *x as u64 > cap as u64 => {
            Err(format!("index out of range: {x}"))
        }
        Value::Int(x) => Ok(*x as usize),
        Value::Nil => Err("cannot index slice/array with nil".to_owned()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        )),
    }
}

fn index(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".to_owned());
    }
    let mut item = item.clone();
    for idx in indexes {
        item = match &item {
            Value::Nil => return Err("index of nil pointer".to_owned()),
            Value::List(l) => {
                let x = index_arg(idx, l.len())?;
                match l.items().get(x) {
                    Some(v) => v.clone(),
                    None => return Err("reflect: slice index out of range".to_owned()),
                }
            }
            Value::String(s) => {
                let x = index_arg(idx, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Int(i64::from(*b)),
                    None => return Err("reflect: string index out of range".to_owned()),
                }
            }
            Value::Map(m) => match idx {
                Value::String(key) => m.get(key).cloned().unwrap_or(Value::Nil),
                Value::Nil => return Err("value is nil; should be of type string".to_owned()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ))
                }
            },
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if matches!(item, Value::Nil) {
        return Err("slice of untyped nil".to_owned());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let (len, cap) = match item {
        Value::String(_) if indexes.len() == 3 => {
            return Err("cannot 3-index slice a string".to_owned())
        }
        Value::String(s) => (s.len(), s.len()),
        Value::List(l) => (l.len(), l.len()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0, len, cap];
    for (i, x) in indexes.iter().enumerate() {
        idx[i] = index_arg(x, cap)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Value::String(s) => {
            Value::from(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        Value::List(l) => Value::from(l.slice(idx[0], idx[1])),
        _ => Value::from(List::nil()),
    })
}

/// Go's `evalArgs` for `html`, `js` and `urlquery`: a lone string as is, else `fmt.Sprint` with
/// nils shown as `<no value>`.
fn eval_args(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.to_string();
    }
    let shown: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Nil => Value::from("<no value>"),
            other => other.clone(),
        })
        .collect();
    sprint(&shown)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
