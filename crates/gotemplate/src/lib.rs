//! Go's `text/template`, rendering byte for byte what Go renders.
//!
//! - [`Template`] is the engine: parse once, execute many times. It implements text and actions
//!   with `{{-`/`-}}` trimming, comments, fields, `$` and variables, `if`/`else if`/`else`,
//!   `range` (with `else`, `break`, `continue`, and over ints), `with` (with `else with`),
//!   `define`/`template`/`block`, pipelines, parentheses, all literals but complex ones, and Go's
//!   builtin functions. The caller adds its own functions with a [`Funcs`] map, as Go's
//!   `Template.Funcs` does.
//! - [`Value`] is the data model: what Go's reflection sees (nil interfaces, sorted maps, structs
//!   with JSON tags and an optional `String()` method). [`Template::render`] also takes plain
//!   JSON, seen as Go's `map[string]any`.
//! - [`ast`] is the parse tree (Go's `text/template/parse`), for callers that walk or rewrite it;
//!   [`json::marshal`] is Go's `json.Marshal` for values.
//!
//! Layout: `lex` → `parse` (into `ast`) → `exec` (with `funcs`, `format`, `json`, `strconv` over
//! `value`). Errors use Go's wording with an empty template name. The README lists where this
//! differs from Go.

pub mod ast;
mod error;
mod exec;
mod format;
mod funcs;
pub mod json;
mod lex;
mod parse;
mod strconv;
mod value;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use error::TemplateError;
pub use funcs::{Func, Funcs, Param};
pub use value::{Field, JsonKey, List, Map, Print, Struct, Value};

use ast::Node;

/// A parsed Go template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    root: Vec<Node>,
    defines: BTreeMap<String, Vec<Node>>,
    funcs: Funcs,
}

impl Template {
    /// Parses Go template source with Go's builtin functions only. Unknown functions and
    /// undefined variables are parse errors, as in Go.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Template::parse_with(source, &Funcs::default())
    }

    /// Parses with `funcs` besides the builtins: Go's `template.New("").Funcs(funcs).Parse(source)`.
    pub fn parse_with(source: &str, funcs: &Funcs) -> Result<Template, TemplateError> {
        let parsed = parse::parse(source, funcs)?;
        Ok(Template {
            source: source.to_owned(),
            root: parsed.root,
            defines: parsed.defines,
            funcs: funcs.clone(),
        })
    }

    /// The source text, as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The main body's parse tree (Go's `Tree.Root`).
    pub fn root(&self) -> &[Node] {
        &self.root
    }

    /// The bodies named by `{{ define }}` and `{{ block }}`, by name.
    pub fn defines(&self) -> &BTreeMap<String, Vec<Node>> {
        &self.defines
    }

    /// Executes with JSON data, seen as Go's `map[string]any`: objects are maps (ranged in
    /// sorted key order, a missing key is nil and prints `<no value>`), integral numbers are ints
    /// and other numbers float64s.
    pub fn render(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        self.execute(&Value::from_json(data))
    }

    /// Executes with typed data.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        self.execute_body(&self.root, data)
    }

    /// Executes `body` in place of the main body (a rewritten copy of [`Template::root`], say),
    /// with this template's definitions and functions. Go code does this by replacing
    /// `Tree.Root` on a copy of the template.
    pub fn execute_body(&self, body: &[Node], data: &Value) -> Result<String, TemplateError> {
        exec::execute(&self.source, body, &self.defines, &self.funcs, data)
    }
}
