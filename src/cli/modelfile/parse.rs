//! The Modelfile parser: Ollama's `parser/parser.go` state machine, rune for rune.
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

use super::{Command, Modelfile, ParseError, ParseErrorKind};

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
fn err(line: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { line, kind }
}

pub(super) fn parse_text(text: &str) -> Result<Modelfile, ParseError> {
    let mut parser = Parser::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        parser.read(c, chars.peek() == Some(&'\n'))?;
    }
    parser.finish()
}

/// Ollama's parser state: where the machine is, the token being read, and the command so far.
struct Parser {
    commands: Vec<Command>,
    state: State,
    buf: String,
    /// The command being read: Ollama's `cmd.Name`, the role of a MESSAGE, and how to name the
    /// command in an error (`SYSTEM`, `PARAMETER stop`, `MESSAGE user`).
    name: String,
    role: String,
    keyword: String,
    /// The line being read, and the line the current command started on (1-based).
    line: usize,
    cmd_line: usize,
}

impl Parser {
    fn new() -> Parser {
        Parser {
            commands: Vec::new(),
            state: State::Nil,
            buf: String::new(),
            name: String::new(),
            role: String::new(),
            keyword: String::new(),
            line: 1,
            cmd_line: 1,
        }
    }

    /// One character; `before_lf` says whether a `\n` follows it.
    fn read(&mut self, c: char, before_lf: bool) -> Result<(), ParseError> {
        // A newline belongs to the line it ends; CRLF counts once.
        let at = self.line;
        if c == '\n' || (c == '\r' && !before_lf) {
            self.line += 1;
        }
        let Some((next, keep)) = transition(c, self.state) else {
            return Err(bad_char(self.state, c, &self.buf, at));
        };
        if next != self.state {
            let Some(next) = self.leave(next, c, at)? else {
                // The value goes on (a space, or quotes still open): the character is part of it.
                self.buf.push(c);
                return Ok(());
            };
            self.buf.clear();
            if self.state == State::Nil && next == State::Name {
                self.cmd_line = at;
            }
            self.state = next;
        }
        if let Some(r) = keep.filter(|r| is_print(*r)) {
            self.buf.push(r);
        }
        Ok(())
    }

    /// Ends the token of the current state on the way to `next`: a keyword names the command, a
    /// parameter name or role is checked, a value completes the command. Returns the state to
    /// enter (a keyword may redirect it), or `None` while a value continues.
    fn leave(&mut self, mut next: State, c: char, at: usize) -> Result<Option<State>, ParseError> {
        let buf = &self.buf;
        match self.state {
            State::Name => {
                let lower = buf.to_lowercase();
                if !COMMANDS.contains(&lower.as_str()) {
                    return Err(err(at, ParseErrorKind::InvalidCommand));
                }
                self.keyword = buf.to_uppercase();
                match lower.as_str() {
                    "from" => self.name = "model".into(),
                    // The name is the parameter's, read next.
                    "parameter" => next = State::Parameter,
                    "message" => {
                        next = State::Message;
                        self.name = lower;
                    }
                    _ => self.name = lower,
                }
            }
            State::Parameter => {
                self.name.clone_from(buf);
                self.keyword = format!("PARAMETER {buf}");
            }
            State::Message => {
                if !ROLES.contains(&buf.as_str()) {
                    return Err(err(at, ParseErrorKind::InvalidMessageRole));
                }
                self.role.clone_from(buf);
                self.keyword = format!("MESSAGE {buf}");
            }
            State::Nil | State::Comment => {}
            // The value ends at a newline once its quotes are balanced; a space never ends it.
            State::Value => match unquote(buf.trim()).map(str::to_owned) {
                Some(value) if !is_space(c) => self.push(&value),
                _ => return Ok(None),
            },
        }
        Ok(Some(next))
    }

    /// Completes the command with its value (a MESSAGE's is `role: content`).
    fn push(&mut self, value: &str) {
        let args = if self.role.is_empty() {
            value.to_owned()
        } else {
            format!("{}: {value}", std::mem::take(&mut self.role))
        };
        self.commands.push(Command {
            name: self.name.clone(),
            args,
            line: self.cmd_line,
        });
    }

    /// At the end of the text: flushes the last command, or says what it lacks.
    fn finish(mut self) -> Result<Modelfile, ParseError> {
        let buf = &self.buf;
        match self.state {
            State::Nil | State::Comment => {}
            State::Value => match unquote(buf.trim()).map(str::to_owned) {
                Some(value) => self.push(&value),
                None => {
                    let keyword = std::mem::take(&mut self.keyword);
                    return Err(err(
                        self.cmd_line,
                        ParseErrorKind::UnterminatedQuote(keyword),
                    ));
                }
            },
            State::Name => {
                let kind = if COMMANDS.contains(&buf.to_lowercase().as_str()) {
                    ParseErrorKind::MissingValue(buf.to_uppercase())
                } else {
                    ParseErrorKind::InvalidCommand
                };
                return Err(err(self.line, kind));
            }
            State::Parameter => {
                let kind = ParseErrorKind::MissingValue(format!("PARAMETER {buf}"));
                return Err(err(self.line, kind));
            }
            State::Message => {
                let kind = ParseErrorKind::MissingValue(format!("MESSAGE {buf}"));
                return Err(err(self.line, kind));
            }
        }
        if !self.commands.iter().any(|c| c.name == "model") {
            return Err(err(0, ParseErrorKind::MissingFrom));
        }
        Ok(Modelfile {
            commands: self.commands,
        })
    }
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
pub(super) fn decode(bytes: &[u8]) -> String {
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
