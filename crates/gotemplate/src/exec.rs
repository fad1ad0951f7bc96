//! Executes a parse tree against a [`Value`], following `text/template/exec.go`: `$` is the data,
//! `if`/`with`/`range` scope the variables they declare, `range` binds index and element, pipeline
//! values are passed as the last argument, `and`/`or` short-circuit, and errors carry Go's
//! wording and the position of the failing node. Execution is bounded (steps, output size,
//! nesting) so hostile templates fail instead of hanging or exhausting memory.

use std::collections::BTreeMap;
use std::fmt::Display;

use super::ast::{Arg, Branch, Node, Num, Pipe};
use super::error::{line_col, TemplateError};
use super::format::sprint_value;
use super::funcs::{self, Funcs, Param};
use super::value::Value;

/// Nodes evaluated per execution before giving up; real prompts need a few thousand per message.
const MAX_STEPS: u64 = 5_000_000;
/// Bytes of output per execution.
const MAX_OUTPUT: usize = 64 << 20;
/// Nested control structures and template calls.
const MAX_DEPTH: usize = 200;

pub(crate) fn execute(
    src: &str,
    root: &[Node],
    defines: &BTreeMap<String, Vec<Node>>,
    funcs: &Funcs,
    data: &Value,
) -> std::result::Result<String, TemplateError> {
    let mut state = State {
        src,
        defines,
        funcs,
        vars: vec![("$".to_owned(), data.clone())],
        out: String::new(),
        steps: 0,
        depth: 0,
    };
    state.walk(data, root)?;
    Ok(state.out)
}

/// How a list walk ended: normally, or at `{{ break }}` / `{{ continue }}` for the enclosing range.
enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    src: &'a str,
    defines: &'a BTreeMap<String, Vec<Node>>,
    funcs: &'a Funcs,
    vars: Vec<(String, Value)>,
    out: String,
    steps: u64,
    depth: usize,
}

type Result<T> = std::result::Result<T, TemplateError>;

impl State<'_> {
    fn fail<T>(&self, pos: usize, context: &dyn Display, message: impl Into<String>) -> Result<T> {
        let (line, col) = line_col(self.src, pos);
        let mut context = context.to_string();
        // Go abbreviates long node texts in error messages.
        if context.chars().count() > 20 {
            context = format!("{}...", context.chars().take(20).collect::<String>());
        }
        Err(TemplateError::Exec {
            line,
            col,
            context,
            message: message.into(),
        })
    }

    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(TemplateError::Other(format!(
                "template: execution exceeded {MAX_STEPS} steps"
            )));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(TemplateError::Other(format!(
                "template: output exceeded {MAX_OUTPUT} bytes"
            )));
        }
        Ok(())
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(TemplateError::Other(format!(
                "template: exceeded maximum template depth ({MAX_DEPTH})"
            )));
        }
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow> {
        for node in nodes {
            self.step()?;
            let flow = match node {
                Node::Text(text) => {
                    self.out.push_str(text);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let value = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print(&value);
                    }
                    Flow::Normal
                }
                Node::If(b) => self.nested(|s| s.walk_if_with(dot, b, false))?,
                Node::With(b) => self.nested(|s| s.walk_if_with(dot, b, true))?,
                Node::Range(b) => self.nested(|s| s.walk_range(dot, b))?,
                Node::Template { pos, name, pipe } => {
                    self.nested(|s| s.walk_template(dot, *pos, name, pipe.as_ref()))?
                }
                Node::Break(_) => Flow::Break,
                Node::Continue(_) => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// An action's value: a nil interface prints as Go's `<no value>`.
    fn print(&mut self, value: &Value) {
        match value {
            Value::Nil => self.out.push_str("<no value>"),
            other => self.out.push_str(&sprint_value(other)),
        }
    }

    fn walk_if_with(&mut self, dot: &Value, b: &Branch, with: bool) -> Result<Flow> {
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if value.truth() {
            let dot = if with { &value } else { dot };
            self.walk(dot, &b.list)?
        } else if let Some(else_list) = &b.else_list {
            self.walk(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, b: &Branch) -> Result<Flow> {
        let outer = self.vars.len();
        // Declared variables are pushed here, holding the whole collection until the first
        // iteration sets them.
        let value = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.vars.len();
        let ran = match &value {
            Value::List(l) if !l.is_empty() => {
                for (i, elem) in l.items().iter().enumerate() {
                    if let Flow::Break = self.iteration(b, mark, Value::Int(i as i64), elem)? {
                        break;
                    }
                }
                true
            }
            Value::Map(m) if !m.is_empty() => {
                for (key, elem) in m.entries() {
                    if let Flow::Break = self.iteration(b, mark, Value::from(key.as_str()), elem)? {
                        break;
                    }
                }
                true
            }
            Value::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return self.fail(
                        b.pipe.pos,
                        &b.pipe,
                        format!("can't use {n} to iterate over more than one variable"),
                    );
                }
                for i in 0..*n {
                    if let Flow::Break = self.iteration(b, mark, Value::Nil, &Value::Int(i))? {
                        break;
                    }
                }
                *n > 0
            }
            Value::Nil | Value::List(_) | Value::Map(_) => false,
            other => {
                let shown = sprint_value(other);
                return self.fail(
                    b.pipe.pos,
                    &b.pipe,
                    format!("range can't iterate over {shown}"),
                );
            }
        };
        if !ran {
            if let Some(else_list) = &b.else_list {
                self.walk(dot, else_list)?;
            }
        }
        self.vars.truncate(outer);
        Ok(Flow::Normal)
    }

    /// One range iteration: binds `$e` or `$i, $e`, walks the body with the element as dot and
    /// drops the variables the body declared.
    fn iteration(&mut self, b: &Branch, mark: usize, index: Value, elem: &Value) -> Result<Flow> {
        // Counted even when the body is empty, so `range 1000000000` cannot spin.
        self.step()?;
        let pipe = &b.pipe;
        match (pipe.decl.len(), pipe.is_assign) {
            (0, _) => {}
            (1, false) => self.vars[mark - 1].1 = elem.clone(),
            (_, false) => {
                self.vars[mark - 1].1 = elem.clone();
                self.vars[mark - 2].1 = index;
            }
            (1, true) => self.set_var(pipe, &pipe.decl[0], elem.clone())?,
            (_, true) => {
                self.set_var(pipe, &pipe.decl[0], index)?;
                self.set_var(pipe, &pipe.decl[1], elem.clone())?;
            }
        }
        let flow = self.walk(elem, &b.list)?;
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        pipe: Option<&Pipe>,
    ) -> Result<Flow> {
        let Some(body) = self.defines.get(name) else {
            return self.fail(
                pos,
                &format!("template {name:?}"),
                format!("no such template {name:?}"),
            );
        };
        let data = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Nil,
        };
        let saved = std::mem::replace(&mut self.vars, vec![("$".to_owned(), data.clone())]);
        let result = self.walk(&data, body);
        self.vars = saved;
        result.map(|_| Flow::Normal)
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(pipe, name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn set_var(&mut self, pipe: &Pipe, name: &str, value: Value) -> Result<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => self.fail(pipe.pos, pipe, format!("undefined variable: {name}")),
        }
    }

    fn var_value(&self, node: &Arg, name: &str) -> Result<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => self.fail(node.pos(), node, format!("undefined variable: {name}")),
        }
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &super::ast::Command,
        last: Option<Value>,
    ) -> Result<Value> {
        let first = &cmd.args[0];
        let has_args = cmd.args.len() > 1 || last.is_some();
        match first {
            Arg::Field { idents, .. } => self.field_chain(first, dot.clone(), idents, has_args),
            Arg::Chain { node, fields, .. } => {
                let receiver = self.chain_receiver(dot, first, node)?;
                self.field_chain(first, receiver, fields, has_args)
            }
            Arg::Ident { pos, name } => {
                self.call(dot, *pos, name, first, cmd, &cmd.args[1..], last)
            }
            Arg::Variable { idents, .. } => {
                let value = self.var_value(first, &idents[0])?;
                if idents.len() == 1 {
                    self.not_a_function(first, has_args)?;
                    return Ok(value);
                }
                self.field_chain(first, value, &idents[1..], has_args)
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(first, has_args)?;
                self.eval_pipeline(dot, pipe)
            }
            literal => {
                self.not_a_function(literal, has_args)?;
                match literal {
                    Arg::Nil(pos) => self.fail(*pos, literal, "nil is not a command"),
                    _ => self.literal(dot, literal),
                }
            }
        }
    }

    fn not_a_function(&self, node: &Arg, has_args: bool) -> Result<()> {
        if has_args {
            return self.fail(
                node.pos(),
                node,
                format!("can't give argument to non-function {node}"),
            );
        }
        Ok(())
    }

    fn literal(&self, dot: &Value, node: &Arg) -> Result<Value> {
        Ok(match node {
            Arg::Dot(_) => dot.clone(),
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::Str { text, .. } => Value::from(text.as_str()),
            Arg::Number { pos, text, num } => match num {
                Num::Int(i) => Value::Int(*i),
                Num::Float(f) => Value::Float(*f),
                Num::Overflow => return self.fail(*pos, node, format!("{text} overflows int")),
            },
            _ => Value::Nil,
        })
    }

    fn chain_receiver(&mut self, dot: &Value, chain: &Arg, node: &Arg) -> Result<Value> {
        if let Arg::Nil(_) = node {
            return self.fail(
                chain.pos(),
                chain,
                format!("indirection through explicit nil in {chain}"),
            );
        }
        self.eval_arg(dot, node, Param::Any)
    }

    /// `.A.B.C` on `receiver`: every step must be a struct field or a map key. Only the last one
    /// could take arguments, and none of ours can.
    fn field_chain(
        &mut self,
        node: &Arg,
        receiver: Value,
        idents: &[String],
        has_args: bool,
    ) -> Result<Value> {
        let mut value = receiver;
        for (i, name) in idents.iter().enumerate() {
            let last = i + 1 == idents.len();
            value = self.field(node, name, value, has_args && last)?;
        }
        Ok(value)
    }

    fn field(&self, node: &Arg, name: &str, receiver: Value, has_args: bool) -> Result<Value> {
        let fail = |message: String| self.fail(node.pos(), node, message);
        match &receiver {
            Value::Nil => fail(format!("nil pointer evaluating interface {{}}.{name}")),
            Value::Struct(s) => match s.get(name) {
                Some(_) if has_args => fail(format!(
                    "{name} has arguments but cannot be invoked as function"
                )),
                Some(v) => Ok(v.clone()),
                None => fail(format!(
                    "can't evaluate field {name} in type {}",
                    s.type_name
                )),
            },
            // missingkey=zero on a map[string]any yields a nil interface.
            Value::Map(_) if has_args => fail(format!("{name} is not a method but has arguments")),
            Value::Map(m) => Ok(m.get(name).cloned().unwrap_or(Value::Nil)),
            other => fail(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }

    /// A function call. `ident` is the name node (context for arity errors), `cmd` the whole
    /// command (context for errors the function returns), `args` the arguments after the name and
    /// `last` the value piped in.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        ident: &Arg,
        cmd: &dyn Display,
        args: &[Arg],
        last: Option<Value>,
    ) -> Result<Value> {
        let Some(sig) = funcs::signature(name, self.funcs) else {
            return self.fail(pos, ident, format!("{name:?} is not a defined function"));
        };
        let given = args.len() + usize::from(last.is_some());
        let fixed = sig.fixed.len();
        if sig.variadic.is_some() && given < fixed {
            return self.fail(
                pos,
                ident,
                format!(
                    "wrong number of args for {name}: want at least {fixed} got {}",
                    args.len()
                ),
            );
        }
        if sig.variadic.is_none() && given != fixed {
            return self.fail(
                pos,
                ident,
                format!("wrong number of args for {name}: want {fixed} got {given}"),
            );
        }
        let param = |i: usize| {
            sig.fixed
                .get(i)
                .copied()
                .or(sig.variadic)
                .unwrap_or(Param::Any)
        };
        if funcs::is_and_or(name, self.funcs) {
            let mut value = Value::Nil;
            for arg in args {
                value = self.eval_arg(dot, arg, Param::Reflect)?;
                if value.truth() == (name == "or") {
                    return Ok(value);
                }
            }
            return Ok(last.unwrap_or(value));
        }
        let mut values = Vec::with_capacity(given);
        for (i, arg) in args.iter().enumerate() {
            values.push(self.eval_arg(dot, arg, param(i))?);
        }
        if let Some(last) = last {
            if param(args.len()) == Param::Str && !matches!(last, Value::String(_)) {
                return self.fail(
                    pos,
                    ident,
                    format!(
                        "wrong type for value; expected string; got {}",
                        last.type_name()
                    ),
                );
            }
            values.push(last);
        }
        match funcs::call(name, &values, self.funcs) {
            Ok(v) => Ok(v),
            Err(e) => self.fail(pos, cmd, format!("error calling {name}: {e}")),
        }
    }

    /// An argument, checked against the parameter kind as Go's `evalArg` does.
    fn eval_arg(&mut self, dot: &Value, arg: &Arg, param: Param) -> Result<Value> {
        let value = match arg {
            Arg::Nil(pos) => {
                return match param {
                    Param::Any => Ok(Value::Nil),
                    Param::Reflect => self.fail(*pos, arg, "cannot assign nil to reflect.Value"),
                    Param::Str => self.fail(*pos, arg, "cannot assign nil to string"),
                }
            }
            Arg::Bool(..) | Arg::Number { .. } if param == Param::Str => {
                return self.fail(arg.pos(), arg, format!("expected string; found {arg}"));
            }
            Arg::Field { idents, .. } => self.field_chain(arg, dot.clone(), idents, false)?,
            Arg::Variable { idents, .. } => {
                let value = self.var_value(arg, &idents[0])?;
                self.field_chain(arg, value, &idents[1..], false)?
            }
            Arg::Chain { node, fields, .. } => {
                let receiver = self.chain_receiver(dot, arg, node)?;
                self.field_chain(arg, receiver, fields, false)?
            }
            Arg::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
            Arg::Ident { pos, name } => self.call(dot, *pos, name, arg, arg, &[], None)?,
            literal => self.literal(dot, literal)?,
        };
        if param == Param::Str && !matches!(value, Value::String(_)) {
            return self.fail(
                arg.pos(),
                arg,
                format!(
                    "wrong type for value; expected string; got {}",
                    value.type_name()
                ),
            );
        }
        Ok(value)
    }
}
