//! Lexer for Go `text/template` source, following `text/template/parse/lex.go`: it separates text
//! from `{{ }}` actions, applies the trim markers (`{{- ` trims all whitespace before the action,
//! ` -}}` all whitespace after it, newlines included), drops `{{/* comments */}}` and tokenises
//! action bodies. Spaces inside actions are tokens because Go's grammar depends on them: `.A.B` is
//! one operand, `.A .B` two.

use super::error::TemplateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Nil,
    Template,
    With,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    /// `.Name`, stored without the dot.
    Field(String),
    /// `$` or `$name`, stored with the `$`.
    Variable(String),
    Dot,
    Ident(String),
    Keyword(Kw),
    Bool(bool),
    Number(String),
    /// A character constant, with its quotes.
    Char(String),
    /// A quoted string, with its quotes.
    Str(String),
    /// A raw string, with its backquotes.
    RawStr(String),
    LeftParen,
    RightParen,
    Pipe,
    Assign,
    Declare,
    /// Any other printable ASCII character inside an action (Go's `itemChar`), e.g. `,`.
    Punct(char),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
    pub line: usize,
}

impl Token {
    /// How Go's `item.String()` names a token in "unexpected ..." messages.
    pub fn describe(&self) -> String {
        let quoted = |s: &str| {
            if s.chars().count() > 10 {
                let head: String = s.chars().take(10).collect();
                format!("{head:?}...")
            } else {
                format!("{s:?}")
            }
        };
        match &self.tok {
            Tok::Eof => "EOF".to_owned(),
            Tok::Keyword(kw) => format!("<{}>", keyword_name(*kw)),
            Tok::Text(s) | Tok::Number(s) | Tok::Char(s) | Tok::Str(s) | Tok::RawStr(s) => {
                quoted(s)
            }
            Tok::Ident(s) | Tok::Variable(s) => quoted(s),
            Tok::Field(s) => quoted(&format!(".{s}")),
            Tok::Bool(b) => quoted(&b.to_string()),
            Tok::LeftDelim => quoted("{{"),
            Tok::RightDelim => quoted("}}"),
            Tok::Space => quoted(" "),
            Tok::Dot => quoted("."),
            Tok::LeftParen => quoted("("),
            Tok::RightParen => quoted(")"),
            Tok::Pipe => quoted("|"),
            Tok::Assign => quoted("="),
            Tok::Declare => quoted(":="),
            Tok::Punct(c) => quoted(&c.to_string()),
        }
    }
}

pub(crate) fn keyword_name(kw: Kw) -> &'static str {
    match kw {
        Kw::Block => "block",
        Kw::Break => "break",
        Kw::Continue => "continue",
        Kw::Define => "define",
        Kw::Else => "else",
        Kw::End => "end",
        Kw::If => "if",
        Kw::Range => "range",
        Kw::Nil => "nil",
        Kw::Template => "template",
        Kw::With => "with",
    }
}

fn keyword(word: &str) -> Option<Kw> {
    Some(match word {
        "block" => Kw::Block,
        "break" => Kw::Break,
        "continue" => Kw::Continue,
        "define" => Kw::Define,
        "else" => Kw::Else,
        "end" => Kw::End,
        "if" => Kw::If,
        "range" => Kw::Range,
        "nil" => Kw::Nil,
        "template" => Kw::Template,
        "with" => Kw::With,
        _ => return None,
    })
}

/// Go's `isSpace`: the whitespace that trim markers remove and that separates action words.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// Go's `%#U` rendering of a rune, used in lexer error messages.
fn rune_desc(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        line: 1,
        paren_depth: 0,
        toks: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.toks)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    paren_depth: i32,
    toks: Vec<Token>,
}

impl Lexer<'_> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, TemplateError> {
        Err(TemplateError::parse(self.line, message))
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn emit(&mut self, tok: Tok, start: usize) {
        self.toks.push(Token {
            tok,
            pos: start,
            line: self.line,
        });
    }

    /// Moves to `to`, counting the newlines skipped over.
    fn advance_to(&mut self, to: usize) {
        self.line += self.src[self.pos..to].matches('\n').count();
        self.pos = to;
    }

    fn run(&mut self) -> Result<(), TemplateError> {
        loop {
            match self.rest().find("{{") {
                Some(offset) => {
                    let delim = self.pos + offset;
                    let text = &self.src[self.pos..delim];
                    // `{{- ` trims every trailing space, tab and newline of the text before it.
                    let kept = if has_left_trim_marker(&self.src[delim + 2..]) {
                        text.trim_end_matches(is_space)
                    } else {
                        text
                    };
                    if !kept.is_empty() {
                        let (tok, start) = (Tok::Text(kept.to_owned()), self.pos);
                        self.emit(tok, start);
                    }
                    self.advance_to(delim);
                    self.left_delim()?;
                }
                None => {
                    if self.pos < self.src.len() {
                        let (tok, start) = (Tok::Text(self.rest().to_owned()), self.pos);
                        self.emit(tok, start);
                        self.advance_to(self.src.len());
                    }
                    let end = self.pos;
                    self.emit(Tok::Eof, end);
                    return Ok(());
                }
            }
        }
    }

    /// At `{{`: a comment, or the start of an action.
    fn left_delim(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        self.pos += 2;
        let marker = if has_left_trim_marker(self.rest()) {
            2
        } else {
            0
        };
        if self.rest()[marker..].starts_with("/*") {
            self.pos += marker + 2;
            let Some(end) = self.rest().find("*/") else {
                return self.err("unclosed comment");
            };
            self.advance_to(self.pos + end + 2);
            let Some(trim) = self.at_right_delim() else {
                return self.err("comment ends before closing delimiter");
            };
            self.close_delim(trim);
            return Ok(());
        }
        self.emit(Tok::LeftDelim, start);
        self.pos += marker;
        self.paren_depth = 0;
        self.inside_action()
    }

    /// `Some(trim)` when the input continues with `}}` (`trim == false`) or ` -}}` (`true`).
    fn at_right_delim(&self) -> Option<bool> {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[2..].starts_with("}}") {
            Some(true)
        } else if rest.starts_with("}}") {
            Some(false)
        } else {
            None
        }
    }

    /// Consumes the closing delimiter; ` -}}` also consumes all whitespace after it.
    fn close_delim(&mut self, trim: bool) {
        self.advance_to(self.pos + if trim { 4 } else { 2 });
        if trim {
            let skipped = self.rest().len() - self.rest().trim_start_matches(is_space).len();
            self.advance_to(self.pos + skipped);
        }
    }

    fn inside_action(&mut self) -> Result<(), TemplateError> {
        loop {
            if let Some(trim) = self.at_right_delim() {
                if self.paren_depth != 0 {
                    return self.err("unclosed left paren");
                }
                let start = self.pos;
                self.emit(Tok::RightDelim, start);
                self.close_delim(trim);
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.peek() else {
                return self.err("unclosed action");
            };
            match c {
                c if is_space(c) => self.space(),
                '=' => self.single(Tok::Assign),
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.err("expected :=");
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start);
                }
                '|' => self.single(Tok::Pipe),
                '"' => self.quote()?,
                '`' => self.raw_quote()?,
                '\'' => self.char_constant()?,
                '$' => {
                    self.pos += 1;
                    let name = self.word()?;
                    self.emit(Tok::Variable(format!("${name}")), start);
                }
                '.' if !self.rest()[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                    self.pos += 1;
                    let name = self.word()?;
                    let tok = if name.is_empty() {
                        Tok::Dot
                    } else {
                        Tok::Field(name)
                    };
                    self.emit(tok, start);
                }
                '.' | '+' | '-' | '0'..='9' => self.number()?,
                c if is_alnum(c) => self.identifier()?,
                '(' => {
                    self.paren_depth += 1;
                    self.single(Tok::LeftParen);
                }
                ')' => {
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        return self.err("unexpected right paren");
                    }
                    self.single(Tok::RightParen);
                }
                c if c.is_ascii_graphic() => self.single(Tok::Punct(c)),
                c => {
                    return self.err(format!(
                        "unrecognized character in action: {}",
                        rune_desc(c)
                    ))
                }
            }
        }
    }

    fn single(&mut self, tok: Tok) {
        let start = self.pos;
        self.pos += 1;
        self.emit(tok, start);
    }

    /// A run of spaces. A single space right before ` -}}` belongs to the trim marker and makes no
    /// token; a longer run leaves its last space to the marker (Go's `lexSpace`).
    fn space(&mut self) {
        let start = self.pos;
        let run = self.rest().len() - self.rest().trim_start_matches(is_space).len();
        let mut end = start + run;
        if self.src[end..].starts_with("-}}") {
            end -= 1;
            if run == 1 {
                return;
            }
        }
        self.emit(Tok::Space, start);
        self.advance_to(end);
    }

    /// Go's `atTerminator`: what may follow a word.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with("}}"),
        }
    }

    /// The alphanumeric word after `.` or `$`, which must end at a terminator.
    fn word(&mut self) -> Result<String, TemplateError> {
        let len = self.rest().len() - self.rest().trim_start_matches(is_alnum).len();
        let word = self.rest()[..len].to_owned();
        self.pos += len;
        if !self.at_terminator() {
            let c = self.peek().unwrap_or('\0');
            return self.err(format!("bad character {}", rune_desc(c)));
        }
        Ok(word)
    }

    fn identifier(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        let word = self.word()?;
        let tok = match (keyword(&word), word.as_str()) {
            (Some(kw), _) => Tok::Keyword(kw),
            (None, "true") => Tok::Bool(true),
            (None, "false") => Tok::Bool(false),
            (None, _) => Tok::Ident(word),
        };
        self.emit(tok, start);
        Ok(())
    }

    fn quote(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1);
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) if c != '\n' => {}
                    _ => return self.err("unterminated quoted string"),
                },
                Some((_, '\n')) | None => return self.err("unterminated quoted string"),
                Some((i, '"')) => {
                    let text = self.rest()[..=i].to_owned();
                    self.pos += i + 1;
                    self.emit(Tok::Str(text), start);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    fn raw_quote(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        let Some(end) = self.rest()[1..].find('`') else {
            return self.err("unterminated raw quoted string");
        };
        let text = self.rest()[..end + 2].to_owned();
        let line = self.line;
        self.advance_to(self.pos + end + 2);
        self.toks.push(Token {
            tok: Tok::RawStr(text),
            pos: start,
            line,
        });
        Ok(())
    }

    fn char_constant(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1);
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) if c != '\n' => {}
                    _ => return self.err("unterminated character constant"),
                },
                Some((_, '\n')) | None => return self.err("unterminated character constant"),
                Some((i, '\'')) => {
                    let text = self.rest()[..=i].to_owned();
                    self.pos += i + 1;
                    self.emit(Tok::Char(text), start);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    /// Go's `scanNumber`: sign, base prefix, digits, fraction, exponent, imaginary suffix. The
    /// text is validated later by the parser, as Go does.
    fn number(&mut self) -> Result<(), TemplateError> {
        let start = self.pos;
        let ok = self.scan_number();
        if !ok {
            return self.err(format!(
                "bad number syntax: {:?}",
                &self.src[start..self.pos]
            ));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            // Go reads `1+2i` as a complex constant; anything else here is malformed.
            let ok = self.scan_number();
            let text = &self.src[start..self.pos];
            if !ok || !text.ends_with('i') {
                return self.err(format!("bad number syntax: {text:?}"));
            }
            return self.err(format!("complex constant {text} is not supported"));
        }
        let text = self.src[start..self.pos].to_owned();
        self.emit(Tok::Number(text), start);
        Ok(())
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alnum) {
            self.pos += self.peek().map_or(0, char::len_utf8);
            return false;
        }
        true
    }

    fn accept(&mut self, set: &str) -> bool {
        match self.peek() {
            Some(c) if set.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, set: &str) {
        while self.accept(set) {}
    }
}

/// `{{- ` needs whitespace after the dash: `{{-3}}` is the number -3, not a trim.
fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

/// ` -}}` needs whitespace before the dash.
fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}
