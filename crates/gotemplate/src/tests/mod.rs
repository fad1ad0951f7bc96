//! Tests for the engine: syntax and execution (`engine`), functions and formatting
//! (`functions`), errors and limits (`robust`).

mod engine;
mod functions;
mod robust;

use serde_json::Value as Json;

use super::{Template, TemplateError};

/// Parses and renders with JSON data, failing the test on any error.
fn render(src: &str, data: Json) -> String {
    let template = Template::parse(src).unwrap_or_else(|e| panic!("parse {src:?}: {e}"));
    template
        .render(&data)
        .unwrap_or_else(|e| panic!("render {src:?}: {e}"))
}

/// The error of parsing, or else of rendering.
fn render_err(src: &str, data: Json) -> TemplateError {
    match Template::parse(src) {
        Err(e) => e,
        Ok(template) => match template.render(&data) {
            Err(e) => e,
            Ok(out) => panic!("expected an error from {src:?}, got {out:?}"),
        },
    }
}
