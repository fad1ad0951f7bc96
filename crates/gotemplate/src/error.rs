//! `TemplateError`: the single error type of the template engine, also used by callers for their
//! own checks on templates.

use thiserror::Error;

/// A template failed to parse or to execute.
///
/// Messages follow Go's `text/template` wording for a template with an empty name (as
/// `template.New("")` makes), so an error reads the same as Go's:
/// `template: :3: unexpected EOF` or
/// `template: :1:9: executing "" at <.Missing.Field>: nil pointer evaluating interface {}.Field`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// The source is not a valid template. `line` is 1-based.
    #[error("template: :{line}: {message}")]
    Parse { line: usize, message: String },
    /// Execution failed. `line` is 1-based, `col` is the 0-based byte offset in that line (as Go
    /// reports it) and `context` is the node being evaluated, as Go prints it.
    #[error("template: :{line}:{col}: executing \"\" at <{context}>: {message}")]
    Exec {
        line: usize,
        col: usize,
        context: String,
        message: String,
    },
    /// A failure outside `text/template` proper: this engine's execution limits, or a caller's
    /// own checks on a template.
    #[error("{0}")]
    Other(String),
}

impl TemplateError {
    pub(crate) fn parse(line: usize, message: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            line,
            message: message.into(),
        }
    }
}

/// 1-based line and 0-based column of byte offset `pos` in `src`, as Go's `ErrorContext` computes.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - nl - 1,
        None => pos,
    };
    (line, col)
}
