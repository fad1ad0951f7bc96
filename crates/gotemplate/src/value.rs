//! The data a template runs on, modelled on what Go's reflection sees: nil interfaces, strings,
//! ints, float64s, slices, maps (Go maps iterate and marshal in sorted key order; ordered-map
//! types keep insertion order) and structs whose fields have Go names for field access and
//! `json` tags for `json.Marshal`. A value may also print as JSON, as Go types whose `String()`
//! method marshals themselves do (Ollama's tool types, for instance).

use std::sync::Arc;

/// A template value. Cloning is cheap: composite values are shared.
#[derive(Debug, Clone)]
pub enum Value {
    /// A nil interface, e.g. a key missing from a `map[string]any`. Printed by an action as
    /// `<no value>` (Go's rendering of it), inside composites as `<nil>`.
    Nil,
    Bool(bool),
    Int(i64),
    /// Go's float64; every JSON number decoded into `any` is one.
    Float(f64),
    String(Arc<str>),
    List(Arc<List>),
    Map(Arc<Map>),
    Struct(Arc<Struct>),
}

/// How `fmt` prints a composite value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Print {
    /// Go's default formatting: `[a b]`, `map[k:v]`, `{f1 f2}`.
    #[default]
    Go,
    /// A `String()` method returning `json.Marshal` of the value. A nil map prints `{}` (the
    /// special case Ollama's `templateArgs`/`templateProperties` types make).
    Json,
}

/// A slice. Slicing shares the elements.
#[derive(Debug, Clone, Default)]
pub struct List {
    items: Arc<[Value]>,
    start: usize,
    end: usize,
    nil: bool,
    print: Print,
}

impl List {
    pub fn new(items: Vec<Value>) -> List {
        let end = items.len();
        List {
            items: items.into(),
            start: 0,
            end,
            nil: false,
            print: Print::Go,
        }
    }

    /// A nil slice: empty, and `null` in JSON.
    pub fn nil() -> List {
        List {
            nil: true,
            ..List::new(Vec::new())
        }
    }

    pub fn with_print(mut self, print: Print) -> List {
        self.print = print;
        self
    }

    pub fn items(&self) -> &[Value] {
        &self.items[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_nil(&self) -> bool {
        self.nil
    }

    pub fn print(&self) -> Print {
        self.print
    }

    /// `items[i..j]` sharing storage; the bounds are checked by the caller.
    pub(crate) fn slice(&self, i: usize, j: usize) -> List {
        List {
            items: Arc::clone(&self.items),
            start: self.start + i,
            end: self.start + j,
            nil: false,
            print: self.print,
        }
    }
}

/// A map with string keys. Entries are kept in iteration order: sorted for a Go map, as given for
/// an ordered map.
#[derive(Debug, Clone, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
    nil: bool,
    print: Print,
}

impl Map {
    /// A Go `map[string]T`: ranged over and marshalled in sorted key order; a repeated key keeps
    /// its last value.
    pub fn sorted(mut entries: Vec<(String, Value)>) -> Map {
        entries.reverse();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        Map {
            entries,
            nil: false,
            print: Print::Go,
        }
    }

    /// An insertion-ordered map (a Go ordered-map type, such as Ollama's `orderedmap`).
    pub fn ordered(entries: Vec<(String, Value)>) -> Map {
        Map {
            entries,
            nil: false,
            print: Print::Go,
        }
    }

    /// A nil map: empty, and `null` in JSON.
    pub fn nil() -> Map {
        Map {
            nil: true,
            ..Map::default()
        }
    }

    pub fn with_print(mut self, print: Print) -> Map {
        self.print = print;
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_nil(&self) -> bool {
        self.nil
    }

    pub fn print(&self) -> Print {
        self.print
    }
}

/// How a struct field is named in `json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKey {
    /// No tag: the Go field name.
    GoName,
    /// `json:"key"`.
    Key(&'static str),
    /// `json:"key,omitempty"` on a string, number, bool, slice or map field: omitted when empty.
    OmitEmpty(&'static str),
    /// `json:"key,omitempty"` on an interface or pointer field: omitted only when nil.
    OmitNil(&'static str),
}

/// A struct field.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub json: JsonKey,
    pub value: Value,
}

/// A Go struct value. `type_name` is what Go error messages and `toTypeScriptType` see.
#[derive(Debug, Clone)]
pub struct Struct {
    pub type_name: &'static str,
    pub fields: Vec<Field>,
    pub print: Print,
}

impl Struct {
    pub fn new(type_name: &'static str) -> Struct {
        Struct {
            type_name,
            fields: Vec::new(),
            print: Print::Go,
        }
    }

    pub fn field(mut self, name: &'static str, json: JsonKey, value: Value) -> Struct {
        self.fields.push(Field { name, json, value });
        self
    }

    pub fn with_print(mut self, print: Print) -> Struct {
        self.print = print;
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    }
}

impl Value {
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::String(Arc::from(s.as_ref()))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(List::new(items)))
    }

    /// Converts JSON the way Go sees it after `json.Unmarshal` into `map[string]any`, except that
    /// integral numbers stay ints (so they compare with template literals like `1`): objects
    /// become sorted maps, arrays slices, `null` a nil interface.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Map(Arc::new(Map::sorted(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ))),
            other => Value::from_json_scalar(other),
        }
    }

    /// Like [`Value::from_json`] but exactly Go's `any` decoding: every number is a float64.
    pub fn from_json_any(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::Array(a) => {
                Value::list(a.iter().map(Value::from_json_any).collect())
            }
            serde_json::Value::Object(o) => Value::Map(Arc::new(Map::sorted(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json_any(v)))
                    .collect(),
            ))),
            other => Value::from_json_scalar(other),
        }
    }

    fn from_json_scalar(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::String(s) => Value::str(s),
            _ => Value::Nil,
        }
    }

    /// Go's `isTrue`: false, 0, nil and empty strings, slices and maps are false; structs are
    /// always true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// The Go type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "interface {}",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Struct(s) => s.type_name,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(Arc::from(s))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<Struct> for Value {
    fn from(s: Struct) -> Value {
        Value::Struct(Arc::new(s))
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Map(Arc::new(m))
    }
}

impl From<List> for Value {
    fn from(l: List) -> Value {
        Value::List(Arc::new(l))
    }
}
