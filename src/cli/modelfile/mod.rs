//! Modelfiles: the types of a parsed Modelfile and its public API. Parsing follows Ollama's
//! `parser/parser.go` rune for rune, printing back follows its `Modelfile.String()`, and
//! [`Modelfile::plan`] converts a parsed Modelfile into a [`CreateRequest`] (Ollama's
//! `Modelfile.CreateRequest`).

mod parse;
mod paths;
mod plan;
mod render;
#[cfg(test)]
mod tests;

pub use plan::parameter_value;

use crate::api::CreateRequest;
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed Modelfile: its commands in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Modelfile {
    pub commands: Vec<Command>,
}

/// One command, named as Ollama names it: `model` for `FROM`, the parameter's own name for
/// `PARAMETER`, `message` (with `args` = `"<role>: <content>"`) for `MESSAGE`, and the lower-cased
/// keyword otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub args: String,
    /// The line the command starts on (1-based).
    pub line: usize,
}

/// A syntax error. Displays as Ollama's `ParserError`: `(line N): message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based; 0 when the error is not about one line (`no FROM line`).
    pub line: usize,
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "(line {}): {}", self.line, self.kind)
        } else {
            write!(f, "{}", self.kind)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// Ollama's `errInvalidCommand`.
    #[error("command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"")]
    InvalidCommand,
    /// Ollama's `errInvalidMessageRole`.
    #[error("message role must be one of \"system\", \"user\", or \"assistant\"")]
    InvalidMessageRole,
    #[error("invalid character {0:?} in a PARAMETER name")]
    InvalidParameterName(char),
    /// The line (or the file) ended before the command's value: `PARAMETER stop`, `SYSTEM`.
    #[error("missing value after {0}")]
    MissingValue(String),
    /// The file ended inside a `"` or `"""` quoted value.
    #[error("unexpected EOF: the quoted value of {0} is never closed")]
    UnterminatedQuote(String),
    /// Ollama's `errMissingFrom`.
    #[error("no FROM line")]
    MissingFrom,
}

impl Modelfile {
    /// Parses a Modelfile's bytes (UTF-8, or UTF-16 with a BOM), as Ollama's `parser.ParseFile`.
    pub fn parse(input: &[u8]) -> Result<Modelfile, ParseError> {
        parse::parse_text(&parse::decode(input))
    }

    /// Parses a Modelfile held in a string.
    pub fn parse_str(input: &str) -> Result<Modelfile, ParseError> {
        parse::parse_text(input)
    }
}

/// What `ollmlx create` sends, before its local files are uploaded: the request (without `files`
/// and `adapters`), the local files that become them, and warnings for the user.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// `model` is left empty: the command line names the model.
    pub request: CreateRequest,
    /// Local model files from `FROM` lines, uploaded as blobs into `files`.
    pub files: Vec<LocalFile>,
    /// Local adapter files from the last `ADAPTER` line, uploaded into `adapters`.
    pub adapters: Vec<LocalFile>,
    /// `warning: ...` lines (deprecated parameters, commands this server cannot take).
    pub warnings: Vec<String>,
}

/// A local file to upload: its path, and the name it has in the request (its base name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub path: PathBuf,
    pub name: String,
}

impl Modelfile {
    /// Builds the create request, as Ollama's `Modelfile.CreateRequest(relativeDir)`:
    /// - `FROM` a path that exists (relative to `relative_dir`, the Modelfile's folder; `~`
    ///   expanded) is a local file to upload; `FROM` anything else is a model name (`from`);
    /// - `ADAPTER` must be a local file;
    /// - a folder given to either must hold exactly one `.gguf` file (safetensors folders are not
    ///   supported yet);
    /// - `PARAMETER` values are typed; `stop` repeats into a list; an unknown name is an error;
    /// - `LICENSE` repeats into a list; `MESSAGE`s are kept in order; the last `TEMPLATE` and
    ///   `SYSTEM` win;
    /// - `REQUIRES` must be a valid version; it, `RENDERER`, `PARSER` and `DRAFT` are not sent
    ///   (a warning says so).
    pub fn plan(&self, relative_dir: &Path) -> anyhow::Result<Plan> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        self.plan_with_home(relative_dir, home.as_deref())
    }
}
