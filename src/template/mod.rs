//! Ollama's side of model templates: the functions it registers with Go's `text/template`, its
//! walks over the parse tree, and its prompt construction. The engine itself is the
//! `gotemplate` crate (`crates/gotemplate`), a general Go `text/template`.
//!
//! - [`parse`] is Go's parse with Ollama's functions (`json`, `currentDate`, `yesterdayDate`,
//!   `toTypeScriptType`); [`prompt::parse`] adds Ollama's own checks on top.
//! - [`prompt`] is Ollama's `template.Execute` and `chatPrompt`: messages-style vs legacy
//!   templates, message collation, the `.Response` cut, truncation, images, FIM and capabilities.
//! - `data` turns our wire types into the Go structs Ollama executes templates with (what
//!   `.Messages` and `.Tools` look like to a template); `inspect` holds Ollama's tree walks.

mod data;
mod funcs;
mod inspect;
pub mod prompt;

#[cfg(test)]
mod tests;

pub use gotemplate::{Template, TemplateError, Value};

/// Go's parse with the functions Ollama registers: `template.New("").Funcs(funcs).Parse(source)`.
/// Unknown functions and undefined variables are parse errors, as in Go.
pub fn parse(source: &str) -> Result<Template, TemplateError> {
    Template::parse_with(source, funcs::ollama())
}
