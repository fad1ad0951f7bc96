//! Modelfiles: the parser of Ollama's `parser/parser.go`, rune for rune, and the conversion of a
//! parsed Modelfile into a [`CreateRequest`] (Ollama's `Modelfile.CreateRequest`).
//!
//! The grammar, as Ollama's state machine reads it:
//! - one command per line: a keyword (`FROM`, `PARAMETER`, `TEMPLATE`, `SYSTEM`, `ADAPTER`,
//!   `LICENSE`, `MESSAGE`, `REQUIRES`, `RENDERER`, `PARSER`, `DRAFT`; any case), whitespace, a value;
//! - `PARAMETER <name> <value>` (the name keeps its case, so `Temperature` is unknown) and
//!   `MESSAGE <role> <content>` (role `system`, `user` or `assistant`, lower case);
//! - a value runs to the end of the line and is trimmed; `"..."` keeps inner and outer spaces, and
//!   `"""..."""` (or `"..."`) may span lines: a newline ends the value only once its quotes are
//!   balanced;
//! - `#` starts a comment only where a command could start (`FROM x # y` has the value `x # y`);
//! - UTF-8, with or without a BOM, or UTF-16 with a BOM.
//!
//! Where this parser deliberately differs from Ollama's, it is only in its error messages, which
//! name the line and say what is missing, and in counting a CRLF as one line.

use crate::api::{CreateRequest, Message};
use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Component, Path, PathBuf};

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

const COMMANDS: &[&str] = &[
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
];

const ROLES: &[&str] = &["system", "user", "assistant"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Nil,
    Name,
    Value,
    Parameter,
    Message,
    Comment,
}

impl Modelfile {
    /// Parses a Modelfile's bytes (UTF-8, or UTF-16 with a BOM), as Ollama's `parser.ParseFile`.
    pub fn parse(input: &[u8]) -> Result<Modelfile, ParseError> {
        parse_text(&decode(input))
    }

    /// Parses a Modelfile held in a string.
    pub fn parse_str(input: &str) -> Result<Modelfile, ParseError> {
        parse_text(input)
    }
}

fn err(line: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { line, kind }
}

fn parse_text(text: &str) -> Result<Modelfile, ParseError> {
    let mut commands = Vec::new();
    let mut curr = State::Nil;
    let mut buf = String::new();
    // The command being read: Ollama's `cmd.Name`, the role of a MESSAGE, and how to name the
    // command in an error (`SYSTEM`, `PARAMETER stop`, `MESSAGE user`).
    let mut name = String::new();
    let mut role = String::new();
    let mut keyword = String::new();
    let mut line = 1;
    let mut cmd_line = 1;

    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        // A newline belongs to the line it ends; CRLF counts once.
        let at = line;
        if c == '\n' || (c == '\r' && chars.peek() != Some(&'\n')) {
            line += 1;
        }

        let Some((mut next, r)) = transition(c, curr) else {
            return Err(bad_char(curr, c, &buf, at));
        };

        if next != curr {
            match curr {
                State::Name => {
                    let lower = buf.to_lowercase();
                    if !COMMANDS.contains(&lower.as_str()) {
                        return Err(err(at, ParseErrorKind::InvalidCommand));
                    }
                    keyword = buf.to_uppercase();
                    match lower.as_str() {
                        "from" => name = "model".into(),
                        // The name is the parameter's, read next.
                        "parameter" => next = State::Parameter,
                        "message" => {
                            next = State::Message;
                            name = lower;
                        }
                        _ => name = lower,
                    }
                }
                State::Parameter => {
                    name.clone_from(&buf);
                    keyword = format!("PARAMETER {buf}");
                }
                State::Message => {
                    if !ROLES.contains(&buf.as_str()) {
                        return Err(err(at, ParseErrorKind::InvalidMessageRole));
                    }
                    role.clone_from(&buf);
                    keyword = format!("MESSAGE {buf}");
                }
                State::Nil | State::Comment => {}
                State::Value => match unquote(buf.trim()) {
                    // The value ends at a newline once its quotes are balanced; a space never
                    // ends it.
                    Some(value) if !is_space(c) => {
                        let args = if role.is_empty() {
                            value.to_owned()
                        } else {
                            format!("{}: {value}", std::mem::take(&mut role))
                        };
                        commands.push(Command {
                            name: name.clone(),
                            args,
                            line: cmd_line,
                        });
                    }
                    _ => {
                        buf.push(c);
                        continue;
                    }
                },
            }
            buf.clear();
            if curr == State::Nil && next == State::Name {
                cmd_line = at;
            }
            curr = next;
        }

        if let Some(r) = r {
            if is_print(r) {
                buf.push(r);
            }
        }
    }

    // Flush the last command.
    match curr {
        State::Nil | State::Comment => {}
        State::Value => match unquote(buf.trim()) {
            Some(value) => {
                let args = if role.is_empty() {
                    value.to_owned()
                } else {
                    format!("{role}: {value}")
                };
                commands.push(Command {
                    name,
                    args,
                    line: cmd_line,
                });
            }
            None => return Err(err(cmd_line, ParseErrorKind::UnterminatedQuote(keyword))),
        },
        State::Name => {
            let kind = if COMMANDS.contains(&buf.to_lowercase().as_str()) {
                ParseErrorKind::MissingValue(buf.to_uppercase())
            } else {
                ParseErrorKind::InvalidCommand
            };
            return Err(err(line, kind));
        }
        State::Parameter => {
            return Err(err(
                line,
                ParseErrorKind::MissingValue(format!("PARAMETER {buf}")),
            ))
        }
        State::Message => {
            return Err(err(
                line,
                ParseErrorKind::MissingValue(format!("MESSAGE {buf}")),
            ))
        }
    }

    if !commands.iter().any(|c| c.name == "model") {
        return Err(err(0, ParseErrorKind::MissingFrom));
    }
    Ok(Modelfile { commands })
}

/// Ollama's `parseRuneForState`: the next state, and the rune to keep (if any). `None` is an
/// error, reported by [`bad_char`].
fn transition(c: char, state: State) -> Option<(State, Option<char>)> {
    Some(match state {
        State::Nil if c == '#' => (State::Comment, None),
        State::Nil if is_space(c) || is_newline(c) => (State::Nil, None),
        State::Nil => (State::Name, Some(c)),
        State::Name if c.is_ascii_alphabetic() => (State::Name, Some(c)),
        State::Name if is_space(c) => (State::Value, None),
        State::Name => return None,
        State::Value if is_newline(c) || is_space(c) => (State::Nil, Some(c)),
        State::Value => (State::Value, Some(c)),
        State::Parameter if c.is_ascii_alphanumeric() || c == '_' => (State::Parameter, Some(c)),
        State::Parameter if is_space(c) => (State::Value, None),
        State::Parameter => return None,
        State::Message if c.is_ascii_alphabetic() => (State::Message, Some(c)),
        State::Message if is_space(c) => (State::Value, None),
        State::Message => return None,
        State::Comment if is_newline(c) => (State::Nil, None),
        State::Comment => (State::Comment, None),
    })
}

/// The error for a character [`transition`] refused.
fn bad_char(state: State, c: char, buf: &str, line: usize) -> ParseError {
    let kind = match state {
        State::Name if is_newline(c) && COMMANDS.contains(&buf.to_lowercase().as_str()) => {
            ParseErrorKind::MissingValue(buf.to_uppercase())
        }
        State::Parameter if is_newline(c) => {
            ParseErrorKind::MissingValue(format!("PARAMETER {buf}"))
        }
        State::Parameter => ParseErrorKind::InvalidParameterName(c),
        State::Message if is_newline(c) => ParseErrorKind::MissingValue(format!("MESSAGE {buf}")),
        State::Message => ParseErrorKind::InvalidMessageRole,
        _ => ParseErrorKind::InvalidCommand,
    };
    err(line, kind)
}

/// Ollama's `unquote`: strips `"""` or `"` from both ends; `None` while a quote is still open.
fn unquote(s: &str) -> Option<&str> {
    if s.starts_with("\"\"\"") {
        return (s.len() >= 6 && s.ends_with("\"\"\"")).then(|| &s[3..s.len() - 3]);
    }
    if s.starts_with('"') {
        return (s.len() >= 2 && s.ends_with('"')).then(|| &s[1..s.len() - 1]);
    }
    Some(s)
}

/// Ollama's `quote`, for printing a Modelfile back.
fn quote(s: &str) -> String {
    if s.contains('\n') || s.starts_with(' ') || s.ends_with(' ') {
        if s.contains('"') {
            return format!("\"\"\"{s}\"\"\"");
        }
        return format!("\"{s}\"");
    }
    s.to_owned()
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Go's `strconv.IsPrint`, which the parser uses to drop characters from values: letters, marks,
/// numbers, punctuation, symbols and the ASCII space are kept; control and format characters,
/// other spaces and private-use characters are dropped. (Tabs and newlines inside values are kept
/// by the parser itself, before this filter.)
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    !format && !private
}

/// Ollama reads Modelfiles through `unicode.BOMOverride(unicode.UTF8.NewDecoder())`: a UTF-16 BOM
/// switches to UTF-16, a UTF-8 BOM is dropped, invalid UTF-8 becomes U+FFFD.
fn decode(bytes: &[u8]) -> String {
    fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
        let chunks = bytes.chunks_exact(2);
        let odd = !chunks.remainder().is_empty();
        let units: Vec<u16> = chunks.map(|c| unit([c[0], c[1]])).collect();
        let mut s = String::from_utf16_lossy(&units);
        if odd {
            s.push(char::REPLACEMENT_CHARACTER);
        }
        s
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        utf16(rest, u16::from_le_bytes)
    } else if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        utf16(rest, u16::from_be_bytes)
    } else {
        let rest = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
        String::from_utf8_lossy(rest).into_owned()
    }
}

/// Prints the Modelfile back as Ollama's `Modelfile.String()` does; parsing the result gives the
/// same commands.
impl fmt::Display for Modelfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.commands {
            match c.name.as_str() {
                "model" => writeln!(f, "FROM {}", c.args)?,
                "license" | "template" | "system" | "adapter" | "renderer" | "parser"
                | "requires" | "draft" => {
                    writeln!(f, "{} {}", c.name.to_uppercase(), quote(&c.args))?
                }
                "message" => {
                    let (role, content) = c.args.split_once(": ").unwrap_or((&c.args, ""));
                    writeln!(f, "MESSAGE {role} {}", quote(content))?
                }
                _ => writeln!(f, "PARAMETER {} {}", c.name, quote(&c.args))?,
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------
// Conversion to a create request.

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

/// `PARAMETER`s whose values are integers (Ollama's `api.Options` and `api.Runner` int fields).
const INT_PARAMETERS: &[&str] = &[
    "num_keep",
    "seed",
    "num_predict",
    "top_k",
    "repeat_last_n",
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "draft_num_predict",
];

/// `PARAMETER`s whose values are floats (`float32` in Ollama).
const FLOAT_PARAMETERS: &[&str] = &[
    "top_p",
    "min_p",
    "typical_p",
    "temperature",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
];

const BOOL_PARAMETERS: &[&str] = &["use_mmap"];

/// Ollama's `deprecatedParameters`: a warning, and the parameter is left out.
const DEPRECATED_PARAMETERS: &[&str] = &[
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
];

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

    fn plan_with_home(&self, relative_dir: &Path, home: Option<&Path>) -> anyhow::Result<Plan> {
        let mut req = CreateRequest::default();
        let mut files = Vec::new();
        let mut adapters = Vec::new();
        let mut warnings = Vec::new();
        let mut parameters = Map::new();
        let mut licenses = Vec::new();
        let mut messages = Vec::new();
        let mut ignored: Vec<&str> = Vec::new();

        for c in &self.commands {
            match c.name.as_str() {
                "model" => {
                    let path = expand_path(&c.args, relative_dir, home)?;
                    match std::fs::metadata(&path) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            req.from = Some(c.args.clone());
                        }
                        Err(e) => return Err(anyhow!("{}: {e}", path.display())),
                        Ok(meta) => files.extend(local_files(&path, meta.is_dir())?),
                    }
                }
                "adapter" => {
                    let path = expand_path(&c.args, relative_dir, home)?;
                    let meta = std::fs::metadata(&path)
                        .with_context(|| format!("ADAPTER {}", path.display()))?;
                    // Each ADAPTER replaces the one before, as in Ollama.
                    adapters = local_files(&path, meta.is_dir())?;
                }
                "template" => req.template = Some(c.args.clone()).filter(|s| !s.is_empty()),
                "system" => req.system = Some(c.args.clone()).filter(|s| !s.is_empty()),
                "license" => licenses.push(Value::String(c.args.clone())),
                "message" => {
                    let (role, content) = c.args.split_once(": ").unwrap_or((&c.args, ""));
                    messages.push(Message::new(role, content));
                }
                "requires" | "renderer" | "parser" | "draft" => {
                    if c.name == "requires" {
                        let v = if c.args.starts_with('v') {
                            c.args.clone()
                        } else {
                            format!("v{}", c.args)
                        };
                        if !is_semver(&v) {
                            bail!("requires must be a valid semver (e.g. 0.14.0)");
                        }
                    }
                    if !ignored.contains(&c.name.as_str()) {
                        ignored.push(&c.name);
                    }
                }
                name if DEPRECATED_PARAMETERS.contains(&name) => {
                    warnings.push(format!("warning: parameter {name} is deprecated"))
                }
                name => {
                    let value = parameter_value(name, &c.args)?;
                    if name == "stop" {
                        let list = parameters
                            .entry("stop")
                            .or_insert_with(|| Value::Array(Vec::new()));
                        if let Value::Array(items) = list {
                            items.push(value);
                        }
                    } else {
                        parameters.insert(name.to_owned(), value);
                    }
                }
            }
        }

        for name in ignored {
            warnings.push(format!(
                "warning: {} is not supported by ollmlx yet and was ignored",
                name.to_uppercase()
            ));
        }
        if !parameters.is_empty() {
            req.parameters = Some(parameters);
        }
        if !licenses.is_empty() {
            req.license = Some(Value::Array(licenses));
        }
        if !messages.is_empty() {
            req.messages = Some(messages);
        }
        Ok(Plan {
            request: req,
            files,
            adapters,
            warnings,
        })
    }
}

/// A `PARAMETER` value typed as Ollama's `api.FormatParams` types it; errors use its words.
pub fn parameter_value(name: &str, value: &str) -> anyhow::Result<Value> {
    if name == "stop" {
        Ok(Value::String(value.to_owned()))
    } else if INT_PARAMETERS.contains(&name) {
        value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| anyhow!("invalid int value [{value}]"))
    } else if FLOAT_PARAMETERS.contains(&name) {
        parse_float32(value)
            .map(Value::from)
            .ok_or_else(|| anyhow!("invalid float value [{value}]"))
    } else if BOOL_PARAMETERS.contains(&name) {
        parse_go_bool(value)
            .map(Value::from)
            .ok_or_else(|| anyhow!("invalid bool value [{value}]"))
    } else {
        Err(anyhow!("unknown parameter '{name}'"))
    }
}

/// `strconv.ParseFloat(s, 32)`, as the shortest decimal that round-trips the `float32` (so `0.1`
/// is sent as `0.1`, not `0.10000000149011612`). Out of range, NaN and infinities are refused:
/// Go would refuse the first, and JSON cannot carry the others.
fn parse_float32(s: &str) -> Option<f64> {
    let f: f32 = s.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    f.to_string().parse().ok()
}

/// `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `golang.org/x/mod/semver.IsValid`: `vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`, numbers
/// without leading zeros; the short forms `v1` and `v1.2` take no suffix.
fn is_semver(v: &str) -> bool {
    fn number(s: &str) -> Option<(&str, &str)> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, rest) = s.split_at(end);
        (!n.is_empty() && (n == "0" || !n.starts_with('0'))).then_some((n, rest))
    }
    fn idents(s: &str, numeric_no_leading_zero: bool) -> bool {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !(numeric_no_leading_zero
                    && id.len() > 1
                    && id.starts_with('0')
                    && id.chars().all(|c| c.is_ascii_digit()))
        })
    }
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let Some((_, rest)) = number(rest) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some((_, rest)) = rest.strip_prefix('.').and_then(number) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some((_, rest)) = rest.strip_prefix('.').and_then(number) else {
        return false;
    };
    let (pre, build) = match rest.split_once('+') {
        Some((pre, build)) => (pre, Some(build)),
        None => (rest, None),
    };
    let pre_ok = match pre {
        "" => true,
        p => p.strip_prefix('-').is_some_and(|p| idents(p, true)),
    };
    pre_ok && build.is_none_or(|b| idents(b, false))
}

/// Ollama's `expandPath`: absolute paths as they are, `~` and `~/x` under the home folder, `~user/x`
/// under that user's, anything else relative to the Modelfile's folder. The result is cleaned
/// (`.` and `..` resolved lexically) and absolute.
fn expand_path(path: &str, relative_dir: &Path, home: Option<&Path>) -> anyhow::Result<PathBuf> {
    let joined = if Path::new(path).is_absolute() || path.starts_with('\\') {
        PathBuf::from(path)
    } else if let Some(rest) = path.strip_prefix('~') {
        if rest.is_empty() || rest.starts_with('/') {
            let home =
                home.ok_or_else(|| anyhow!("failed to get current user: $HOME is not set"))?;
            home.join(rest.trim_start_matches('/'))
        } else {
            let (user, rest) = rest.split_once('/').unwrap_or((rest, ""));
            user_home(user)
                .ok_or_else(|| anyhow!("failed to find user '{user}'"))?
                .join(rest)
        }
    } else {
        relative_dir.join(path)
    };
    let absolute = if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir()?.join(joined)
    };
    Ok(clean(&absolute))
}

/// Go's `filepath.Clean` for an absolute path.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // `/..` is `/`.
                if out.parent().is_some() {
                    out.pop();
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The home folder of a named user, from the password database.
#[cfg(unix)]
fn user_home(user: &str) -> Option<PathBuf> {
    use std::ffi::{CStr, CString, OsStr};
    use std::os::unix::ffi::OsStrExt;
    let name = CString::new(user).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r writes into `pwd` and `buf` (of the length given) only, and sets
    // `result` to `&pwd` on success; `pw_dir` then points into `buf`, which outlives its use.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        let dir = CStr::from_ptr(pwd.pw_dir).to_bytes();
        Some(PathBuf::from(OsStr::from_bytes(dir)))
    }
}

#[cfg(not(unix))]
fn user_home(_user: &str) -> Option<PathBuf> {
    None
}

/// The files to upload for a `FROM` or `ADAPTER` path: the file itself, or the one `.gguf` file of
/// a folder.
fn local_files(path: &Path, is_dir: bool) -> anyhow::Result<Vec<LocalFile>> {
    if !is_dir {
        let name = path
            .file_name()
            .ok_or_else(|| anyhow!("{}: not a file", path.display()))?
            .to_string_lossy()
            .into_owned();
        return Ok(vec![LocalFile {
            path: path.to_owned(),
            name,
        }]);
    }
    let mut ggufs = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| path.display().to_string())? {
        let entry = entry.with_context(|| path.display().to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Symbolic links are followed, as Ollama's glob does.
        if name.ends_with(".gguf") && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            ggufs.push(LocalFile {
                path: entry.path(),
                name,
            });
        }
    }
    ggufs.sort_by(|a, b| a.name.cmp(&b.name));
    match ggufs.len() {
        1 => Ok(ggufs),
        0 => bail!(
            "no .gguf file found in {} (importing safetensors folders is not supported yet)",
            path.display()
        ),
        n => bail!(
            "{} holds {n} .gguf files ({}); name the one to use",
            path.display(),
            ggufs
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<Modelfile, ParseError> {
        Modelfile::parse_str(s)
    }

    fn cmds(s: &str) -> Vec<(String, String)> {
        pairs(&parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}")))
    }

    fn pairs(m: &Modelfile) -> Vec<(String, String)> {
        m.commands
            .iter()
            .map(|c| (c.name.clone(), c.args.clone()))
            .collect()
    }

    fn c(name: &str, args: &str) -> (String, String) {
        (name.to_owned(), args.to_owned())
    }

    fn kind(s: &str) -> ParseErrorKind {
        parse(s).unwrap_err().kind
    }

    const LLAMA3_TEMPLATE: &str = "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>";

    // Ollama: TestParseFileFile.
    #[test]
    fn parses_every_command_and_a_multiline_template() {
        let input = format!(
            "\nFROM model1\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE \"\"\"{LLAMA3_TEMPLATE}\"\"\"    \n"
        );
        assert_eq!(
            cmds(&input),
            [
                c("model", "model1"),
                c("adapter", "adapter1"),
                c("license", "MIT"),
                c("param1", "value1"),
                c("param2", "value2"),
                c("template", LLAMA3_TEMPLATE),
            ]
        );
        let lines: Vec<usize> = parse(&input)
            .unwrap()
            .commands
            .iter()
            .map(|c| c.line)
            .collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
    }

    // Ollama: TestParseFileDraft, TestParseFileRenderer, TestParseFileParser.
    #[test]
    fn draft_renderer_parser_and_requires_are_commands() {
        let m = parse("\nFROM base\nDRAFT ./assistant\nRENDERER r1\nPARSER p1\nREQUIRES 0.14.0\n")
            .unwrap();
        assert_eq!(
            pairs(&m),
            [
                c("model", "base"),
                c("draft", "./assistant"),
                c("renderer", "r1"),
                c("parser", "p1"),
                c("requires", "0.14.0"),
            ]
        );
        assert!(m.to_string().contains("DRAFT ./assistant\n"));
    }

    // Ollama: TestParseFileTrimSpace.
    #[test]
    fn values_are_trimmed_unless_quoted() {
        let input = format!(
            "\nFROM \"     model 1\"\nADAPTER      adapter3\nLICENSE \"MIT       \"\nPARAMETER param1        value1\nPARAMETER param2    value2\nTEMPLATE \"\"\"   {LLAMA3_TEMPLATE}   \"\"\"    \n"
        );
        assert_eq!(
            cmds(&input),
            [
                c("model", "     model 1"),
                c("adapter", "adapter3"),
                c("license", "MIT       "),
                c("param1", "value1"),
                c("param2", "value2"),
                c("template", &format!("   {LLAMA3_TEMPLATE}   ")),
            ]
        );
    }

    // Ollama: TestParseFileFrom.
    #[test]
    fn from_lines() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("FROM \"FOO  BAR  \"", &[("model", "FOO  BAR  ")]),
            (
                "FROM \"FOO BAR\"\nPARAMETER param1 value1",
                &[("model", "FOO BAR"), ("param1", "value1")],
            ),
            ("FROM     FOOO BAR    ", &[("model", "FOOO BAR")]),
            ("FROM /what/is/the path ", &[("model", "/what/is/the path")]),
            ("FROM foo", &[("model", "foo")]),
            ("FROM /path/to/model", &[("model", "/path/to/model")]),
            (
                "FROM /path/to/model/fp16.bin",
                &[("model", "/path/to/model/fp16.bin")],
            ),
            ("FROM llama3:latest", &[("model", "llama3:latest")]),
            (
                "FROM llama3:7b-instruct-q4_K_M",
                &[("model", "llama3:7b-instruct-q4_K_M")],
            ),
            (
                "PARAMETER param1 value1\nFROM foo",
                &[("param1", "value1"), ("model", "foo")],
            ),
            (
                "PARAMETER what the \nFROM lemons make lemonade ",
                &[("what", "the"), ("model", "lemons make lemonade")],
            ),
        ];
        for (input, want) in cases {
            let want: Vec<_> = want.iter().map(|(n, a)| c(n, a)).collect();
            assert_eq!(cmds(input), want, "{input:?}");
        }
        for input in ["", "PARAMETER param1 value1", "# only a comment\n"] {
            let e = parse(input).unwrap_err();
            assert_eq!(e.kind, ParseErrorKind::MissingFrom, "{input:?}");
            assert_eq!(e.to_string(), "no FROM line");
        }
    }

    // Ollama: TestParseFileParametersMissingValue, TestParseFileBadCommand.
    #[test]
    fn errors_name_the_line() {
        let e = parse("\nFROM foo\nPARAMETER param1\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(
            e.to_string(),
            "(line 3): missing value after PARAMETER param1"
        );
        assert_eq!(
            kind("FROM foo\nPARAMETER param1"),
            ParseErrorKind::MissingValue("PARAMETER param1".into())
        );

        let e = parse("\nFROM foo\nBADCOMMAND param1 value1\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.kind, ParseErrorKind::InvalidCommand);
        assert!(e
            .to_string()
            .starts_with("(line 3): command must be one of \"from\""));

        // A known keyword with nothing after it, mid-file and at the end.
        let e = parse("FROM foo\nSYSTEM\nLICENSE x\n").unwrap_err();
        assert_eq!(
            (e.line, e.kind),
            (2, ParseErrorKind::MissingValue("SYSTEM".into()))
        );
        let e = parse("FROM foo\n\n\nsystem").unwrap_err();
        assert_eq!(
            (e.line, e.kind),
            (4, ParseErrorKind::MissingValue("SYSTEM".into()))
        );
        // Keywords are letters only.
        let e = parse("FROM foo\nFROM2 bar\n").unwrap_err();
        assert_eq!((e.line, e.kind), (2, ParseErrorKind::InvalidCommand));
        assert_eq!(kind("FROM foo\nBOGUS"), ParseErrorKind::InvalidCommand);
        // Parameter names are letters, digits and underscores.
        let e = parse("FROM foo\nPARAMETER num-ctx 1\n").unwrap_err();
        assert_eq!(
            (e.line, e.kind),
            (2, ParseErrorKind::InvalidParameterName('-'))
        );
        // CRLF counts as one line.
        let e = parse("FROM foo\r\n\r\nBAD x\r\n").unwrap_err();
        assert_eq!(e.line, 3);
    }

    // Ollama: TestParseFileMessages.
    #[test]
    fn messages() {
        assert_eq!(
            cmds("\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\n"),
            [
                c("model", "foo"),
                c(
                    "message",
                    "system: You are a file parser. Always parse things."
                )
            ]
        );
        assert_eq!(
            cmds("\nFROM foo\nMESSAGE system You are a file parser. Always parse things."),
            [
                c("model", "foo"),
                c(
                    "message",
                    "system: You are a file parser. Always parse things."
                )
            ]
        );
        assert_eq!(
            cmds("\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n"),
            [
                c("model", "foo"),
                c("message", "system: You are a file parser. Always parse things."),
                c("message", "user: Hey there!"),
                c("message", "assistant: Hello, I want to parse all the things!"),
            ]
        );
        assert_eq!(
            cmds("\nFROM foo\nMESSAGE system \"\"\"\nYou are a multiline file parser. Always parse things.\n\"\"\"\n\t\t\t"),
            [
                c("model", "foo"),
                c(
                    "message",
                    "system: \nYou are a multiline file parser. Always parse things.\n"
                ),
            ]
        );
        let e = parse("\nFROM foo\nMESSAGE badguy I'm a bad guy!\n").unwrap_err();
        assert_eq!((e.line, e.kind), (3, ParseErrorKind::InvalidMessageRole));
        // Roles are lower case.
        assert_eq!(
            kind("FROM foo\nMESSAGE User hi\n"),
            ParseErrorKind::InvalidMessageRole
        );
        assert_eq!(
            kind("\nFROM foo\nMESSAGE system\n"),
            ParseErrorKind::MissingValue("MESSAGE system".into())
        );
        assert_eq!(
            kind("\nFROM foo\nMESSAGE system"),
            ParseErrorKind::MissingValue("MESSAGE system".into())
        );
    }

    // Ollama: TestParseFileQuoted.
    #[test]
    fn quoted_and_multiline_values() {
        let ok: &[(&str, &str, &str)] = &[
            (
                "\nFROM foo\nSYSTEM \"\"\"\nThis is a\nmultiline system.\n\"\"\"\n\t\t\t",
                "system",
                "\nThis is a\nmultiline system.\n",
            ),
            (
                "\nFROM foo\nSYSTEM \"\"\"\nThis is a\nmultiline system.\"\"\"\n\t\t\t",
                "system",
                "\nThis is a\nmultiline system.",
            ),
            (
                "\nFROM foo\nSYSTEM \"\"\"This is a\nmultiline system.\"\"\"\n\t\t\t",
                "system",
                "This is a\nmultiline system.",
            ),
            (
                "\nFROM foo\nSYSTEM \"\"\"This is a multiline system.\"\"\"\n\t\t\t",
                "system",
                "This is a multiline system.",
            ),
            (
                "\nFROM foo\nSYSTEM \"\"\"\nThis is a multiline system with \"quotes\".\n\"\"\"\n",
                "system",
                "\nThis is a multiline system with \"quotes\".\n",
            ),
            ("\nFROM foo\nSYSTEM \"\"\"\"\"\"\n", "system", ""),
            ("\nFROM foo\nSYSTEM \"\"\n", "system", ""),
            ("\nFROM foo\nSYSTEM \"'\"\n", "system", "'"),
            (
                "\nFROM foo\nSYSTEM \"\"\"''\"'\"\"'\"\"'\"'''''\"\"'\"\"'\"\"\"\n",
                "system",
                "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'",
            ),
            (
                "\nFROM foo\nTEMPLATE \"\"\"\n{{ .Prompt }}\n\"\"\"",
                "template",
                "\n{{ .Prompt }}\n",
            ),
            // A single `"` may span lines too.
            ("FROM foo\nSYSTEM \"a\nb\"\n", "system", "a\nb"),
            // Tabs inside values are kept.
            ("FROM foo\nSYSTEM a\tb\n", "system", "a\tb"),
        ];
        for (input, name, value) in ok {
            assert_eq!(
                cmds(input),
                [c("model", "foo"), c(name, value)],
                "{input:?}"
            );
        }
        let e =
            parse("\nFROM foo\nSYSTEM \"\"\"This is a multiline system.\"\"\n\t\t\t").unwrap_err();
        assert_eq!(
            (e.line, e.kind.clone()),
            (3, ParseErrorKind::UnterminatedQuote("SYSTEM".into()))
        );
        assert_eq!(
            e.to_string(),
            "(line 3): unexpected EOF: the quoted value of SYSTEM is never closed"
        );
        assert_eq!(
            kind("\nFROM foo\nSYSTEM \"\n\t\t\t"),
            ParseErrorKind::UnterminatedQuote("SYSTEM".into())
        );
    }

    // Ollama: TestParseFileParameters (names are not checked while parsing).
    #[test]
    fn parameter_lines() {
        let cases = [
            ("numa true", "numa", "true"),
            ("num_ctx 1", "num_ctx", "1"),
            ("num_batch 1", "num_batch", "1"),
            ("num_gqa 1", "num_gqa", "1"),
            ("num_gpu 1", "num_gpu", "1"),
            ("main_gpu 1", "main_gpu", "1"),
            ("use_mmap true", "use_mmap", "true"),
            ("num_thread 1", "num_thread", "1"),
            ("num_keep 1", "num_keep", "1"),
            ("seed 1", "seed", "1"),
            ("num_predict 1", "num_predict", "1"),
            ("top_k 1", "top_k", "1"),
            ("top_p 1.0", "top_p", "1.0"),
            ("min_p 0.05", "min_p", "0.05"),
            ("typical_p 1.0", "typical_p", "1.0"),
            ("repeat_last_n 1", "repeat_last_n", "1"),
            ("temperature 1.0", "temperature", "1.0"),
            ("repeat_penalty 1.0", "repeat_penalty", "1.0"),
            ("presence_penalty 1.0", "presence_penalty", "1.0"),
            ("frequency_penalty 1.0", "frequency_penalty", "1.0"),
            ("penalize_newline true", "penalize_newline", "true"),
            ("stop ### User:", "stop", "### User:"),
            ("stop ### User: ", "stop", "### User:"),
            ("stop \"### User:\"", "stop", "### User:"),
            ("stop \"### User: \"", "stop", "### User: "),
            ("stop \"\"\"### User:\"\"\"", "stop", "### User:"),
            ("stop \"\"\"### User:\n\"\"\"", "stop", "### User:\n"),
            ("stop <|endoftext|>", "stop", "<|endoftext|>"),
            ("stop <|eot_id|>", "stop", "<|eot_id|>"),
            ("stop </s>", "stop", "</s>"),
        ];
        for (line, name, value) in cases {
            let input = format!("FROM foo\nPARAMETER {line}\n");
            assert_eq!(
                cmds(&input),
                [c("model", "foo"), c(name, value)],
                "{line:?}"
            );
        }
    }

    // Ollama: TestParseFileComments, plus keyword case and comment placement.
    #[test]
    fn comments_and_keyword_case() {
        assert_eq!(cmds("\n# comment\nFROM foo\n\t"), [c("model", "foo")]);
        assert_eq!(
            cmds("from foo\n  # indented comment\nSyStEm hi\nparameter Temperature 1\n"),
            [
                c("model", "foo"),
                c("system", "hi"),
                // The parameter name keeps its case.
                c("Temperature", "1"),
            ]
        );
        // A `#` after a command is part of its value.
        assert_eq!(
            cmds("FROM foo # not a comment"),
            [c("model", "foo # not a comment")]
        );
    }

    // Ollama: TestParseFileFormatParseFile.
    #[test]
    fn printing_and_parsing_again_gives_the_same_commands() {
        let cases = [
            "\nFROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
            "\nFROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system \"\"\"\nYou are a store greeter. Always respond with \"Hello!\".\n\"\"\"\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
            "\nFROM foo\nADAPTER adapter1\nLICENSE \"\"\"\nVery long and boring legal text.\nBlah blah blah.\n\"Oh look, a quote!\"\n\"\"\"\n\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system \"\"\"\nYou are a store greeter. Always respond with \"Hello!\".\n\"\"\"\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
            "\nFROM foo\nSYSTEM \"\"\n",
        ];
        for input in cases {
            let first = parse(input).unwrap();
            let second = parse(&first.to_string()).unwrap();
            assert_eq!(pairs(&first), pairs(&second), "{input:?}");
        }
    }

    // Ollama: TestParseFileUTF16ParseFile, TestParseMultiByte.
    #[test]
    fn encodings() {
        let data =
            "FROM bob\nPARAMETER param1 1\nPARAMETER param2 4096\nSYSTEM You are a utf16 file.\n";
        let want = [
            c("model", "bob"),
            c("param1", "1"),
            c("param2", "4096"),
            c("system", "You are a utf16 file."),
        ];
        let utf16: Vec<u16> = data.encode_utf16().collect();
        let mut le = vec![0xFF, 0xFE];
        le.extend(utf16.iter().flat_map(|u| u.to_le_bytes()));
        let mut be = vec![0xFE, 0xFF];
        be.extend(utf16.iter().flat_map(|u| u.to_be_bytes()));
        let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
        utf8_bom.extend(data.as_bytes());
        for bytes in [le, be, utf8_bom] {
            assert_eq!(pairs(&Modelfile::parse(&bytes).unwrap()), want);
        }

        let input = "FROM test\n\tSYSTEM 你好👋";
        let want = [c("model", "test"), c("system", "你好👋")];
        assert_eq!(cmds(input), want);
        let mut le = vec![0xFF, 0xFE];
        le.extend(input.encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(pairs(&Modelfile::parse(&le).unwrap()), want);
    }

    #[test]
    fn non_printing_characters_are_dropped_as_go_drops_them() {
        // A zero-width space, a no-break space and a control character vanish; CRLF inside a
        // quoted value is kept.
        assert_eq!(
            cmds("FROM foo\r\nSYSTEM a\u{200B}b\u{A0}c\u{7}d\r\nTEMPLATE \"x\r\ny\"\r\n"),
            [
                c("model", "foo"),
                c("system", "abcd"),
                c("template", "x\r\ny")
            ]
        );
    }

    fn plan(s: &str, dir: &Path) -> anyhow::Result<Plan> {
        parse(s)
            .unwrap()
            .plan_with_home(dir, Some(Path::new("/nonexistent-home")))
    }

    fn request_json(s: &str) -> Value {
        let p = plan(s, Path::new("/nonexistent-dir")).unwrap();
        assert!(p.files.is_empty() && p.adapters.is_empty());
        serde_json::to_value(&p.request).unwrap()
    }

    // Ollama: TestCreateRequest.
    #[test]
    fn create_request_fields() {
        assert_eq!(request_json("FROM test"), json!({"from": "test"}));
        assert_eq!(
            request_json("FROM test\nTEMPLATE some template\n"),
            json!({"from": "test", "template": "some template"})
        );
        assert_eq!(
            request_json(
                "FROM test\nLICENSE single license\nPARAMETER temperature 0.5\nMESSAGE user Hello\n"
            ),
            json!({"from": "test", "license": ["single license"],
                   "parameters": {"temperature": 0.5},
                   "messages": [{"role": "user", "content": "Hello"}]})
        );
        assert_eq!(
            request_json("FROM test\nPARAMETER temperature 0.5\nPARAMETER top_k 1\nSYSTEM You are a bot.\nLICENSE license1\nLICENSE license2\nMESSAGE user Hello there!\nMESSAGE assistant Hi! How are you?\n"),
            json!({"from": "test", "license": ["license1", "license2"], "system": "You are a bot.",
                   "parameters": {"temperature": 0.5, "top_k": 1},
                   "messages": [{"role": "user", "content": "Hello there!"},
                                {"role": "assistant", "content": "Hi! How are you?"}]})
        );
        // The last TEMPLATE and SYSTEM win; empty ones are not sent (Go's `omitempty`).
        assert_eq!(
            request_json("FROM t\nSYSTEM a\nSYSTEM b\nTEMPLATE \"\"\n"),
            json!({"from": "t", "system": "b"})
        );
    }

    #[test]
    fn parameters_are_typed_and_stop_repeats() {
        let v = request_json(
            "FROM m\nPARAMETER num_ctx 4096\nPARAMETER seed -1\nPARAMETER temperature 0.1\n\
             PARAMETER top_p 1\nPARAMETER use_mmap F\nPARAMETER stop <|im_start|>\n\
             PARAMETER stop \"<|im_end|>\"\nPARAMETER num_ctx 8192\n",
        );
        assert_eq!(
            v["parameters"],
            json!({"num_ctx": 8192, "seed": -1, "temperature": 0.1, "top_p": 1.0,
                   "use_mmap": false, "stop": ["<|im_start|>", "<|im_end|>"]})
        );
        // 0.1 is sent as 0.1, not as the float32's exact value.
        assert_eq!(v["parameters"]["temperature"].to_string(), "0.1");

        let p = plan("FROM m\nPARAMETER mirostat 2\n", Path::new("/")).unwrap();
        assert_eq!(p.warnings, ["warning: parameter mirostat is deprecated"]);
        assert!(p.request.parameters.is_none());

        let fail = |s: &str| plan(s, Path::new("/")).unwrap_err().to_string();
        assert_eq!(
            fail("FROM m\nPARAMETER bogus 1"),
            "unknown parameter 'bogus'"
        );
        assert_eq!(
            fail("FROM m\nPARAMETER Temperature 1"),
            "unknown parameter 'Temperature'"
        );
        assert_eq!(
            fail("FROM m\nPARAMETER numa true"),
            "unknown parameter 'numa'"
        );
        assert_eq!(
            fail("FROM m\nPARAMETER num_ctx 1.5"),
            "invalid int value [1.5]"
        );
        assert_eq!(
            fail("FROM m\nPARAMETER temperature hot"),
            "invalid float value [hot]"
        );
        assert_eq!(
            fail("FROM m\nPARAMETER temperature 1e39"),
            "invalid float value [1e39]"
        );
        assert_eq!(
            fail("FROM m\nPARAMETER temperature NaN"),
            "invalid float value [NaN]"
        );
        assert_eq!(
            fail("FROM m\nPARAMETER use_mmap yes"),
            "invalid bool value [yes]"
        );
    }

    #[test]
    fn requires_must_be_a_version_and_unsupported_commands_warn() {
        let p = plan(
            "FROM m\nREQUIRES 0.14.0\nRENDERER x\nPARSER y\nDRAFT ./d\nDRAFT ./e\n",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(
            p.warnings,
            [
                "warning: REQUIRES is not supported by ollmlx yet and was ignored",
                "warning: RENDERER is not supported by ollmlx yet and was ignored",
                "warning: PARSER is not supported by ollmlx yet and was ignored",
                "warning: DRAFT is not supported by ollmlx yet and was ignored",
            ]
        );
        for ok in ["v1", "1.2", "0.14.0", "1.2.3-rc.1+build.5", "v1.0.0-alpha"] {
            assert!(
                is_semver(&format!("v{}", ok.trim_start_matches('v'))),
                "{ok}"
            );
        }
        for bad in [
            "v",
            "v01.2.3",
            "v1.2-pre",
            "v1.2.3-01",
            "v1.2.3.4",
            "vx",
            "v1.2.3+",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
        assert_eq!(
            plan("FROM m\nREQUIRES latest\n", Path::new("/"))
                .unwrap_err()
                .to_string(),
            "requires must be a valid semver (e.g. 0.14.0)"
        );
    }

    #[test]
    fn local_paths_become_files_and_names_become_from() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("model.gguf"), b"GGUF").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/lora.gguf"), b"lora").unwrap();
        std::fs::write(d.join("sub/notes.txt"), b"x").unwrap();

        // Relative to the Modelfile's folder, not the working directory.
        let p = plan("FROM ./model.gguf\nADAPTER sub\n", d).unwrap();
        assert_eq!(
            p.files,
            [LocalFile {
                path: d.join("model.gguf"),
                name: "model.gguf".into()
            }]
        );
        assert_eq!(
            p.adapters,
            [LocalFile {
                path: d.join("sub/lora.gguf"),
                name: "lora.gguf".into()
            }]
        );
        assert!(p.request.from.is_none());

        // Absolute paths, `..`, and a folder holding one .gguf.
        let abs = format!("FROM {}\n", d.join("sub/../model.gguf").display());
        assert_eq!(
            plan(&abs, Path::new("/")).unwrap().files[0].path,
            d.join("model.gguf")
        );
        let p = plan("FROM .\n", d).unwrap();
        assert_eq!(p.files[0].name, "model.gguf");

        // `~` is the home folder.
        let p = parse("FROM ~/model.gguf\n")
            .unwrap()
            .plan_with_home(Path::new("/elsewhere"), Some(d))
            .unwrap();
        assert_eq!(p.files[0].path, d.join("model.gguf"));
        assert_eq!(
            expand_path("~", Path::new("/x"), Some(Path::new("/home/u"))).unwrap(),
            Path::new("/home/u")
        );
        assert_eq!(
            expand_path("~root/a", Path::new("/x"), None).unwrap(),
            user_home("root").unwrap().join("a")
        );
        assert!(expand_path("~no-such-user-xyz/a", Path::new("/x"), None).is_err());

        // A path that does not exist is a model name, kept as written.
        let p = plan("FROM ./missing.gguf\n", d).unwrap();
        assert_eq!(p.request.from.as_deref(), Some("./missing.gguf"));
        assert!(p.files.is_empty());

        // ADAPTER must exist.
        let e = plan("FROM m\nADAPTER ./nope.gguf\n", d).unwrap_err();
        assert!(format!("{e:#}").starts_with("ADAPTER "), "{e:#}");

        // Folders must hold exactly one .gguf.
        std::fs::create_dir(d.join("empty")).unwrap();
        let e = plan("FROM ./empty\n", d).unwrap_err().to_string();
        assert!(e.starts_with("no .gguf file found in "), "{e}");
        std::fs::write(d.join("second.gguf"), b"GGUF").unwrap();
        let e = plan("FROM .\n", d).unwrap_err().to_string();
        assert!(
            e.ends_with("holds 2 .gguf files (model.gguf, second.gguf); name the one to use"),
            "{e}"
        );
    }
}
