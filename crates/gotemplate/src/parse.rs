//! Recursive-descent parser for Go `text/template`, a transcription of
//! `text/template/parse/parse.go`: the same grammar, the same scoping of `$variables` (visible to
//! the end of the enclosing `if`/`range`/`with`), the same checks at parse time (undefined
//! functions and variables, `break` outside `range`) and Go's error wording.

use std::collections::BTreeMap;

use super::ast::{Arg, Branch, Command, Node, Pipe};
use super::error::TemplateError;
use super::funcs::{self, Funcs};
use super::lex::{lex, Kw, Tok, Token};
use super::strconv::{number, unquote};

/// Deepest nesting of control structures and parentheses accepted. Go allows far more, but the
/// parser and executor recurse and must not overflow a thread stack on hostile input; real model
/// templates nest a handful of levels.
const MAX_DEPTH: usize = 200;

/// A parsed template: the main body and the bodies named by `{{ define }}` / `{{ block }}`.
pub(crate) struct Parsed {
    pub root: Vec<Node>,
    pub defines: BTreeMap<String, Vec<Node>>,
}

pub(crate) fn parse(src: &str, funcs: &Funcs) -> Result<Parsed, TemplateError> {
    let mut parser = Parser {
        funcs,
        toks: lex(src)?,
        i: 0,
        vars: vec!["$".to_owned()],
        range_depth: 0,
        depth: 0,
        defines: BTreeMap::new(),
    };
    let root = parser.root()?;
    Ok(Parsed {
        root,
        defines: parser.defines,
    })
}

/// What ended an item list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    End,
    Else,
}

impl Stop {
    fn describe(self) -> &'static str {
        match self {
            Stop::End => "{{end}}",
            Stop::Else => "{{else}}",
        }
    }
}

enum Item {
    Node(Node),
    Stop(Stop),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PipeEnd {
    Delim,
    Paren,
}

struct Parser<'f> {
    /// The caller's functions, besides Go's builtins.
    funcs: &'f Funcs,
    toks: Vec<Token>,
    i: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    defines: BTreeMap<String, Vec<Node>>,
}

impl Parser<'_> {
    fn tok_at(&self, i: usize) -> &Token {
        // The token list always ends with `Eof`, which repeats forever.
        &self.toks[i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.tok_at(self.i).clone();
        self.i += 1;
        t
    }

    fn backup(&mut self) {
        self.i -= 1;
    }

    fn peek(&self) -> &Token {
        self.tok_at(self.i)
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, TemplateError> {
        let line = self.tok_at(self.i.saturating_sub(1)).line;
        Err(TemplateError::parse(line, message))
    }

    fn unexpected<T>(&self, token: &Token, context: &str) -> Result<T, TemplateError> {
        self.err(format!("unexpected {} in {context}", token.describe()))
    }

    fn expect(&mut self, want: &Tok, context: &str) -> Result<Token, TemplateError> {
        let t = self.next_non_space();
        if &t.tok != want {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn enter(&mut self) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("max expression depth exceeded");
        }
        Ok(())
    }

    fn root(&mut self) -> Result<Vec<Node>, TemplateError> {
        let mut root = Vec::new();
        while self.peek().tok != Tok::Eof {
            if self.peek().tok == Tok::LeftDelim {
                let save = self.i;
                self.next();
                if self.next_non_space().tok == Tok::Keyword(Kw::Define) {
                    self.definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Item::Node(node) => root.push(node),
                Item::Stop(stop) => return self.err(format!("unexpected {}", stop.describe())),
            }
        }
        Ok(root)
    }

    /// `{{ define "name" }} ... {{ end }}`, entered after the `define` keyword.
    fn definition(&mut self) -> Result<(), TemplateError> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        self.expect(&Tok::RightDelim, CONTEXT)?;
        let body = self.separate_tree(CONTEXT)?;
        self.add_define(name, body)
    }

    /// Parses a list that forms its own tree (a `define` or `block` body): fresh variable scope.
    fn separate_tree(&mut self, context: &str) -> Result<Vec<Node>, TemplateError> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let result = self.item_list();
        self.vars = vars;
        self.range_depth = range_depth;
        let (body, stop) = result?;
        if stop != Stop::End {
            return self.err(format!("unexpected {} in {context}", stop.describe()));
        }
        Ok(body)
    }

    /// Go's `Tree.add`: a definition may replace an empty one, never a non-empty one.
    fn add_define(&mut self, name: String, body: Vec<Node>) -> Result<(), TemplateError> {
        let is_empty = |nodes: &[Node]| {
            nodes
                .iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        match self.defines.get(&name) {
            Some(existing) if !is_empty(existing) => {
                if !is_empty(&body) {
                    return self.err(format!(
                        "template: multiple definition of template {name:?}"
                    ));
                }
            }
            _ => {
                self.defines.insert(name, body);
            }
        }
        Ok(())
    }

    fn template_name(&self, token: &Token, context: &str) -> Result<String, TemplateError> {
        match &token.tok {
            Tok::Str(q) | Tok::RawStr(q) => match unquote(q) {
                Some(name) => Ok(name),
                None => self.err("invalid syntax"),
            },
            _ => self.unexpected(token, context),
        }
    }

    fn text_or_action(&mut self) -> Result<Item, TemplateError> {
        let token = self.next_non_space();
        match token.tok {
            Tok::Text(text) => Ok(Item::Node(Node::Text(text))),
            Tok::LeftDelim => self.action(),
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> Result<Item, TemplateError> {
        let token = self.next_non_space();
        let node = match token.tok {
            Tok::Keyword(Kw::Block) => self.block_control()?,
            Tok::Keyword(Kw::Break) => self.break_control(token.pos, "break")?,
            Tok::Keyword(Kw::Continue) => self.break_control(token.pos, "continue")?,
            Tok::Keyword(Kw::Else) => {
                // `{{ else if ...` and `{{ else with ...` leave the keyword for the enclosing
                // control to pick up.
                let peek = self.peek_non_space();
                if !matches!(peek.tok, Tok::Keyword(Kw::If | Kw::With)) {
                    self.expect(&Tok::RightDelim, "else")?;
                }
                return Ok(Item::Stop(Stop::Else));
            }
            Tok::Keyword(Kw::End) => {
                self.expect(&Tok::RightDelim, "end")?;
                return Ok(Item::Stop(Stop::End));
            }
            Tok::Keyword(Kw::If) => Node::If(self.control("if")?),
            Tok::Keyword(Kw::Range) => Node::Range(self.control("range")?),
            Tok::Keyword(Kw::With) => Node::With(self.control("with")?),
            Tok::Keyword(Kw::Template) => self.template_control()?,
            _ => {
                self.backup();
                Node::Action(self.pipeline("command", PipeEnd::Delim)?)
            }
        };
        Ok(Item::Node(node))
    }

    fn break_control(&mut self, pos: usize, word: &str) -> Result<Node, TemplateError> {
        let token = self.next_non_space();
        if token.tok != Tok::RightDelim {
            return self.unexpected(&token, &format!("{{{{{word}}}}}"));
        }
        if self.range_depth == 0 {
            return self.err(format!("{{{{{word}}}}} outside {{{{range}}}}"));
        }
        Ok(if word == "break" {
            Node::Break(pos)
        } else {
            Node::Continue(pos)
        })
    }

    fn template_control(&mut self) -> Result<Node, TemplateError> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = if self.next_non_space().tok == Tok::RightDelim {
            None
        } else {
            self.backup();
            Some(self.pipeline(CONTEXT, PipeEnd::Delim)?)
        };
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    /// `{{ block "name" pipeline }} body {{ end }}` = define "name" + template "name" pipeline.
    fn block_control(&mut self) -> Result<Node, TemplateError> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, PipeEnd::Delim)?;
        let body = self.separate_tree(CONTEXT)?;
        self.add_define(name.clone(), body)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    /// `if`, `range`, `with`: pipeline, body, optional else. Variables declared anywhere inside
    /// go out of scope at the matching `{{ end }}`.
    fn control(&mut self, context: &str) -> Result<Branch, TemplateError> {
        self.enter()?;
        let vars = self.vars.len();
        let result = self.control_body(context);
        self.vars.truncate(vars);
        self.depth -= 1;
        result
    }

    fn control_body(&mut self, context: &str) -> Result<Branch, TemplateError> {
        let pipe = self.pipeline(context, PipeEnd::Delim)?;
        let is_range = context == "range";
        if is_range {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if is_range {
            self.range_depth -= 1;
        }
        let (list, stop) = listed?;
        let else_list = match stop {
            Stop::End => None,
            Stop::Else => {
                // `{{ else if }}` is `{{ else }}{{ if }}...{{ end }}{{ end }}` with the second end
                // implied: the nested control consumes the only `{{ end }}`.
                if context == "if" && self.peek().tok == Tok::Keyword(Kw::If) {
                    self.next();
                    Some(vec![Node::If(self.control("if")?)])
                } else if context == "with" && self.peek().tok == Tok::Keyword(Kw::With) {
                    self.next();
                    Some(vec![Node::With(self.control("with")?)])
                } else {
                    let (list, stop) = self.item_list()?;
                    if stop != Stop::End {
                        return self.err(format!("expected end; found {}", stop.describe()));
                    }
                    Some(list)
                }
            }
        };
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn item_list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut list = Vec::new();
        while self.peek_non_space().tok != Tok::Eof {
            match self.text_or_action()? {
                Item::Node(node) => list.push(node),
                Item::Stop(stop) => return Ok((list, stop)),
            }
        }
        self.err("unexpected EOF")
    }

    fn pipeline(&mut self, context: &str, end: PipeEnd) -> Result<Pipe, TemplateError> {
        let mut pipe = Pipe {
            pos: self.peek_non_space().pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let token = self.next_non_space();
            match token.tok {
                Tok::RightDelim if end == PipeEnd::Delim => break,
                Tok::RightParen if end == PipeEnd::Paren => break,
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Keyword(Kw::Nil)
                | Tok::RawStr(_)
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&token, context),
            }
        }
        if pipe.cmds.is_empty() {
            return self.err(format!("missing value for {context}"));
        }
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args[0],
                Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number { .. } | Arg::Str { .. }
            ) {
                return self.err(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(pipe)
    }

    /// `$x :=`, `$x =` and, for `range`, `$i, $e :=`.
    fn declarations(&mut self, pipe: &mut Pipe, context: &str) -> Result<(), TemplateError> {
        loop {
            let v = self.peek_non_space();
            let Tok::Variable(name) = v.tok else {
                return Ok(());
            };
            let save = self.i;
            self.next();
            let next = self.peek_non_space();
            match next.tok {
                Tok::Assign | Tok::Declare => {
                    pipe.is_assign = next.tok == Tok::Assign;
                    self.next_non_space();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    return Ok(());
                }
                Tok::Punct(',') => {
                    self.next_non_space();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().tok {
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return self.err("range can only initialize variables"),
                        }
                    }
                    return self.err(format!("too many declarations in {context}"));
                }
                _ => {
                    // `$x` is an operand, not a declaration.
                    self.i = save;
                    return Ok(());
                }
            }
        }
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let token = self.next();
            match token.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if args.is_empty() {
            return self.err("empty command");
        }
        Ok(Command { args })
    }

    /// A term followed by any number of `.Field` selectors (without spaces in between).
    fn operand(&mut self) -> Result<Option<Arg>, TemplateError> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if !matches!(self.peek().tok, Tok::Field(_)) {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while let Tok::Field(field) = &self.peek().tok {
            fields.push(field.clone());
            self.next();
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool(..) | Arg::Str { .. } | Arg::Number { .. } | Arg::Nil(_) | Arg::Dot(_) => {
                return self.err(format!("unexpected . after term {:?}", node.to_string()));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, TemplateError> {
        let token = self.next_non_space();
        let pos = token.pos;
        let arg = match token.tok {
            Tok::Ident(name) => {
                if !funcs::is_defined(&name, self.funcs) {
                    return self.err(format!("function {name:?} not defined"));
                }
                Arg::Ident { pos, name }
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Keyword(Kw::Nil) => Arg::Nil(pos),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.err(format!("undefined variable {name:?}"));
                }
                Arg::Variable {
                    pos,
                    idents: vec![name],
                }
            }
            Tok::Field(name) => Arg::Field {
                pos,
                idents: vec![name],
            },
            Tok::Bool(b) => Arg::Bool(pos, b),
            Tok::Number(text) | Tok::Char(text) => {
                let num = match number(&text) {
                    Ok(num) => num,
                    Err(message) => return self.err(message),
                };
                Arg::Number { pos, text, num }
            }
            Tok::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", PipeEnd::Paren)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe))
            }
            Tok::Str(quoted) | Tok::RawStr(quoted) => match unquote(&quoted) {
                Some(text) => Arg::Str { pos, quoted, text },
                None => return self.err("invalid syntax"),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(arg))
    }
}
