//! Ollama's walks over a template's parse tree, transcribed node for node because their quirks
//! are observable:
//! - `Vars` (`template.Identifiers`): the lower-cased field and variable names a template uses;
//!   it decides messages-style vs legacy rendering and the `tools`/`insert` capabilities.
//! - `deleteNode` for the legacy final turn: everything after the first `.Response` field is cut.
//! - `thinking.InferTags`: the text around `{{ .Thinking }}` inside a `range .Messages`.

use std::collections::{BTreeMap, BTreeSet};

use gotemplate::ast::{Arg, Branch, Command, Node, Pipe};

/// Ollama's `Template.Vars()`: sorted, de-duplicated, lower-cased identifiers of the main body
/// and every `define`. Like Ollama's walk it stops at a `{{ template "name" }}` without a
/// pipeline, returning what it found so far and the error "undefined template specified".
pub(crate) fn vars(
    root: &[Node],
    defines: &BTreeMap<String, Vec<Node>>,
) -> (Vec<String>, Option<String>) {
    let mut set = BTreeSet::new();
    let mut error = None;
    for list in std::iter::once(root).chain(defines.values().map(Vec::as_slice)) {
        if let Err(e) = identifiers_list(list, &mut set) {
            error = Some(e);
            break;
        }
    }
    (set.into_iter().collect(), error)
}

fn identifiers_list(nodes: &[Node], set: &mut BTreeSet<String>) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Action(pipe) => identifiers_pipe(pipe, set),
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                identifiers_pipe(&b.pipe, set);
                identifiers_list(&b.list, set)?;
                if let Some(else_list) = &b.else_list {
                    identifiers_list(else_list, set)?;
                }
            }
            Node::Template {
                pipe: Some(pipe), ..
            } => identifiers_pipe(pipe, set),
            Node::Template { pipe: None, .. } => {
                return Err("undefined template specified".to_owned())
            }
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
    Ok(())
}

/// Field and variable names in a pipeline's commands, descending into parenthesised pipelines
/// but (as Ollama does) not into `(...).Field` chains or declarations.
fn identifiers_pipe(pipe: &Pipe, set: &mut BTreeSet<String>) {
    for arg in pipe.cmds.iter().flat_map(|c| &c.args) {
        match arg {
            Arg::Field { idents, .. } | Arg::Variable { idents, .. } => {
                set.extend(idents.iter().map(|i| i.to_lowercase()));
            }
            Arg::Pipe(inner) => identifiers_pipe(inner, set),
            _ => {}
        }
    }
}

/// The legacy final turn: Ollama's `deleteNode` keeps everything up to and including the first
/// `.Response` field (in document order, not looking into `if`/`range`/`with` conditions) and
/// drops what follows. `Err(())` where Ollama itself would panic: the cut happens inside a branch
/// that still has an `else` part to walk.
pub(crate) fn cut_after_response(root: &[Node]) -> Result<Vec<Node>, ()> {
    let mut cutter = Cutter { cut: false };
    cutter.list(root)?.ok_or(())
}

struct Cutter {
    cut: bool,
}

impl Cutter {
    fn list(&mut self, nodes: &[Node]) -> Result<Option<Vec<Node>>, ()> {
        if self.cut {
            return Ok(None);
        }
        let mut kept = Vec::new();
        for node in nodes {
            if let Some(node) = self.node(node)? {
                kept.push(node);
            }
        }
        Ok(Some(kept))
    }

    fn node(&mut self, node: &Node) -> Result<Option<Node>, ()> {
        if self.cut {
            return Ok(None);
        }
        Ok(Some(match node {
            Node::Action(pipe) => match self.pipe(pipe) {
                Some(pipe) => Node::Action(pipe),
                None => return Ok(None),
            },
            Node::If(b) => Node::If(self.branch(b)?),
            Node::With(b) => Node::With(self.branch(b)?),
            Node::Range(b) => Node::Range(self.branch(b)?),
            other => other.clone(),
        }))
    }

    fn branch(&mut self, b: &Branch) -> Result<Branch, ()> {
        let list = self.list(&b.list)?.ok_or(())?;
        let else_list = match &b.else_list {
            None => None,
            // Ollama type-asserts the walked else list and panics when it was cut away.
            Some(else_list) => Some(self.list(else_list)?.ok_or(())?),
        };
        Ok(Branch {
            pipe: b.pipe.clone(),
            list,
            else_list,
        })
    }

    fn pipe(&mut self, pipe: &Pipe) -> Option<Pipe> {
        if self.cut {
            return None;
        }
        let mut cmds = Vec::new();
        for cmd in &pipe.cmds {
            let args: Vec<Arg> = cmd.args.iter().filter_map(|a| self.arg(a)).collect();
            if args.is_empty() {
                return None;
            }
            cmds.push(Command { args });
        }
        Some(Pipe {
            cmds,
            ..pipe.clone()
        })
    }

    fn arg(&mut self, arg: &Arg) -> Option<Arg> {
        match arg {
            Arg::Field { idents, .. } if idents.iter().any(|i| i == "Response") => {
                self.cut = true;
                Some(arg.clone())
            }
            _ if self.cut => None,
            Arg::Pipe(pipe) => self.pipe(pipe).map(|p| Arg::Pipe(Box::new(p))),
            other => Some(other.clone()),
        }
    }
}

/// Ollama's `thinking.InferTags`: for each `.Thinking` field whose nearest enclosing `range`
/// iterates `.Messages`, the first and last text of the nearest enclosing list (trimmed) are the
/// opening and closing tags; the last match wins. Empty strings when there is none.
pub(crate) fn infer_thinking_tags(root: &[Node]) -> (String, String) {
    let mut infer = Infer {
        ancestors: Vec::new(),
        open: String::new(),
        close: String::new(),
    };
    infer.list(root);
    (infer.open, infer.close)
}

enum Ancestor<'a> {
    List(&'a [Node]),
    Range(&'a Pipe),
    Other,
}

struct Infer<'a> {
    ancestors: Vec<Ancestor<'a>>,
    open: String,
    close: String,
}

impl<'a> Infer<'a> {
    fn list(&mut self, nodes: &'a [Node]) {
        self.ancestors.push(Ancestor::List(nodes));
        for node in nodes {
            self.node(node);
        }
        self.ancestors.pop();
    }

    fn node(&mut self, node: &'a Node) {
        match node {
            Node::Action(pipe)
            | Node::Template {
                pipe: Some(pipe), ..
            } => {
                self.ancestors.push(Ancestor::Other);
                self.pipe(pipe);
                self.ancestors.pop();
            }
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                let this = match node {
                    Node::Range(_) => Ancestor::Range(&b.pipe),
                    _ => Ancestor::Other,
                };
                self.ancestors.push(this);
                self.ancestors.push(Ancestor::Other);
                self.pipe(&b.pipe);
                self.list(&b.list);
                if let Some(else_list) = &b.else_list {
                    self.list(else_list);
                }
                self.ancestors.pop();
                self.ancestors.pop();
            }
            _ => {}
        }
    }

    fn pipe(&mut self, pipe: &'a Pipe) {
        self.ancestors.push(Ancestor::Other);
        for cmd in &pipe.cmds {
            self.ancestors.push(Ancestor::Other);
            for arg in &cmd.args {
                match arg {
                    Arg::Field { idents, .. }
                        if idents.first().is_some_and(|i| i == "Thinking") =>
                    {
                        self.found()
                    }
                    Arg::Pipe(inner) => self.pipe(inner),
                    _ => {}
                }
            }
            self.ancestors.pop();
        }
        self.ancestors.pop();
    }

    fn found(&mut self) {
        let range = self.ancestors.iter().rev().find_map(|a| match a {
            Ancestor::Range(pipe) => Some(*pipe),
            _ => None,
        });
        if !range.is_some_and(|pipe| uses_field(pipe, "Messages")) {
            return;
        }
        let list = self.ancestors.iter().rev().find_map(|a| match a {
            Ancestor::List(nodes) => Some(*nodes),
            _ => None,
        });
        if let Some(nodes) = list {
            if let Some(Node::Text(text)) = nodes.first() {
                self.open = text.trim().to_owned();
            }
            if let Some(Node::Text(text)) = nodes.last() {
                self.close = text.trim().to_owned();
            }
        }
    }
}

/// Whether a field starting with `name` appears in the pipeline (variables such as `$.Messages`
/// do not count, as in Ollama).
fn uses_field(pipe: &Pipe, name: &str) -> bool {
    pipe.cmds.iter().flat_map(|c| &c.args).any(|arg| match arg {
        Arg::Field { idents, .. } => idents.first().is_some_and(|i| i == name),
        Arg::Pipe(inner) => uses_field(inner, name),
        _ => false,
    })
}
