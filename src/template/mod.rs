//! Go `text/template` for Ollama model templates, and Ollama's prompt construction on top of it.
//!
//! GGUF models pulled by Ollama carry a Go template (`TEMPLATE` in the Modelfile). This module
//! renders them byte for byte as Ollama does:
//! - [`Template`] is the engine: parse once, execute many times. It implements the subset of
//!   `text/template` model templates use (and a little more): text and actions with `{{-`/`-}}`
//!   trimming, comments, fields, `$` and variables, `if`/`else if`/`else`, `range` (with `else`,
//!   `break`, `continue`), `with`, `define`/`template`/`block`, pipelines, parentheses, all
//!   literals, Go's builtin functions and Ollama's `json`, `currentDate`, `yesterdayDate` and
//!   `toTypeScriptType`.
//! - [`Value`] is the data model (what Go's reflection sees: nil interfaces, sorted maps, structs
//!   with JSON tags); [`Template::render`] also takes plain JSON.
//! - [`prompt`] is Ollama's `template.Execute` and `chatPrompt`: messages-style vs legacy
//!   templates, message collation, the `.Response` cut, truncation, images, FIM and capabilities.
//!
//! Layout: `lex` → `parse` (into `ast`) → `exec` (with `funcs`, `format`, `json`, `strconv` over
//! `value`); `inspect` holds Ollama's tree walks and `data` its Go structs.
//!
//! Known differences from Go, none reachable by the templates Ollama ships: no complex or hex-float
//! literals, no methods on data (so `call` always fails), `printf` lacks `%p`, `%[n]` indexes and
//! `%#v`; slices of pointers print their elements rather than addresses; images print as their
//! base64 text. Execution is bounded (nesting depth 200, 5M steps, 64 MiB of output) where Go
//! would run until it exhausts memory.

mod ast;
mod data;
mod error;
mod exec;
mod format;
mod funcs;
mod inspect;
mod json;
mod lex;
mod parse;
pub mod prompt;
mod strconv;
mod value;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use error::TemplateError;
pub use value::{Field, JsonKey, List, Map, Print, Struct, Value};

use ast::Node;

/// A parsed Go template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    root: Vec<Node>,
    defines: BTreeMap<String, Vec<Node>>,
}

impl Template {
    /// Parses Go template source. Unknown functions and undefined variables are parse errors, as
    /// in Go. This is the plain Go parse; [`prompt::parse`] adds Ollama's extra checks.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let parsed = parse::parse(source)?;
        Ok(Template {
            source: source.to_owned(),
            root: parsed.root,
            defines: parsed.defines,
        })
    }

    /// The source text, as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Executes with JSON data, seen as Go's `map[string]any`: objects are maps (ranged in
    /// sorted key order, a missing key is nil and prints `<no value>`), integral numbers are ints
    /// and other numbers float64s.
    pub fn render(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        self.execute(&Value::from_json(data))
    }

    /// Executes with typed data.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        exec::execute(&self.source, &self.root, &self.defines, data)
    }

    /// Ollama's `Template.Vars()`: the lower-cased names of every field and variable the template
    /// references (`messages`, `tools`, `system`, `$i`, ...), sorted and de-duplicated.
    pub fn vars(&self) -> Vec<String> {
        inspect::vars(&self.root, &self.defines).0
    }

    /// Executes `nodes` (the main body, or a variant of it) with this template's definitions.
    fn run(&self, nodes: &[Node], data: &Value) -> Result<String, TemplateError> {
        exec::execute(&self.source, nodes, &self.defines, data)
    }
}
