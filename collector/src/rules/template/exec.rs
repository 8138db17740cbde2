//! The executor: Go's `text/template/exec.go` over [`Value`]s. It tracks the node being
//! executed the way Go does (`state.at`), so a render error names the same node and position
//! as Go's, and checks function arguments against Go's parameter types.

use std::borrow::Cow;

use super::funcs::{self, Param, Spec};
use super::parse::{Arg, Branch, Command, Node, Pipe, Tree};
use super::{Env, Library, TemplateError, Value, gofmt};

/// How deep lists and pipelines may nest while rendering, across `{{template}}` calls, so
/// that rendering fits the 2 MiB stacks of the runtime's threads (a level takes up to 10 KiB
/// of stack in debug builds). Go allows 100000 nested template calls.
const MAX_NESTING: usize = 100;
/// How many nodes and commands one render may execute, so a template cannot keep the rule
/// evaluation busy for long (Go has no limit; no sane template comes near it).
const MAX_STEPS: u64 = 10_000_000;
/// The most text one render may produce.
const MAX_OUTPUT: usize = 16 << 20;

/// The node being executed, for error messages (Go's `state.node`).
#[derive(Clone, Copy)]
enum At<'t> {
    Start,
    Action(usize, &'t Pipe),
    Pipe(&'t Pipe),
    Cmd(&'t Command),
    Arg(&'t Arg),
    Template {
        pos: usize,
        name: &'t str,
        pipe: Option<&'t Pipe>,
    },
}

impl At<'_> {
    /// The node's offset and Go's `String()` of it.
    fn describe(&self) -> Option<(usize, String)> {
        Some(match self {
            At::Start => return None,
            At::Action(pos, p) => (*pos, format!("{{{{{p}}}}}")),
            At::Pipe(p) => (p.pos, p.to_string()),
            At::Cmd(c) => (c.pos, c.to_string()),
            At::Arg(a) => (a.pos(), a.to_string()),
            At::Template { pos, name, pipe } => (
                *pos,
                match pipe {
                    Some(p) => format!("{{{{template {name:?} {p}}}}}"),
                    None => format!("{{{{template {name:?}}}}}"),
                },
            ),
        })
    }
}

/// What a list of nodes asks of the enclosing `range`.
enum Flow {
    Next,
    Break,
    Continue,
}

/// A function or a method being called.
enum Callee<'t> {
    Func(&'t str),
    Method(Value, &'t str),
}

struct State<'t, 'e> {
    tree: &'t Tree,
    library: Library,
    env: &'e Env<'e>,
    /// The variable stack; `$` is at the bottom.
    vars: Vec<(String, Value)>,
    at: At<'t>,
    /// Lists and pipelines being executed, one inside the other.
    nesting: usize,
    steps: u64,
    out: String,
}

type EResult<T> = Result<T, TemplateError>;

/// Renders `tree` with `dot` and the initial variables `vars` (`$` first).
pub(super) fn execute(
    tree: &Tree,
    library: Library,
    dot: &Value,
    vars: Vec<(String, Value)>,
    env: &Env<'_>,
) -> EResult<String> {
    let mut s = State {
        tree,
        library,
        env,
        vars,
        at: At::Start,
        nesting: 0,
        steps: 0,
        out: String::new(),
    };
    s.walk_list(dot, &tree.root)?;
    Ok(s.out)
}

impl<'t> State<'t, '_> {
    fn error(&self, message: impl Into<String>) -> TemplateError {
        let (offset, context) = match self.at.describe() {
            Some((offset, context)) => (offset, Some(context)),
            None => (0, None),
        };
        TemplateError {
            offset,
            context,
            message: message.into(),
        }
    }

    fn step(&mut self) -> EResult<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.error(format!("template execution exceeded {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> EResult<()> {
        self.out.push_str(s);
        if self.out.len() > MAX_OUTPUT {
            return Err(self.error(format!("template output exceeds {} MiB", MAX_OUTPUT >> 20)));
        }
        Ok(())
    }

    fn enter(&mut self) -> EResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error("max expression depth exceeded"));
        }
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &'t [Node]) -> EResult<Flow> {
        self.enter()?;
        let flow = self.walk_nodes(dot, list);
        self.nesting -= 1;
        flow
    }

    fn walk_nodes(&mut self, dot: &Value, list: &'t [Node]) -> EResult<Flow> {
        for node in list {
            self.step()?;
            match node {
                Node::Text(t) => self.write(t)?,
                Node::Action(pos, pipe) => {
                    self.at = At::Action(*pos, pipe);
                    let v = self.eval_pipeline(dot, pipe)?;
                    // An action that declares variables prints nothing.
                    if pipe.decl.is_empty() {
                        self.at = At::Action(*pos, pipe);
                        self.write(&gofmt::print_top(&v))?;
                    }
                }
                Node::If(b) => match self.walk_if_or_with(false, dot, b)? {
                    Flow::Next => {}
                    flow => return Ok(flow),
                },
                Node::With(b) => match self.walk_if_or_with(true, dot, b)? {
                    Flow::Next => {}
                    flow => return Ok(flow),
                },
                Node::Range(b) => self.walk_range(dot, b)?,
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
                Node::Template { pos, name, pipe } => {
                    self.walk_template(dot, *pos, name, pipe.as_ref())?
                }
            }
        }
        Ok(Flow::Next)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Value, b: &'t Branch) -> EResult<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if val.truthy() {
            self.walk_list(if with { &val } else { dot }, &b.list)?
        } else if let Some(list) = &b.else_list {
            self.walk_list(dot, list)?
        } else {
            Flow::Next
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, b: &'t Branch) -> EResult<()> {
        let outer = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.vars.len();
        // Elements are borrowed from the ranged value, not copied, unless a variable holds them.
        let items: Vec<(Value, Cow<'_, Value>)> = match &val {
            Value::List(l) | Value::ListWithFields(l, _) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), Cow::Borrowed(e)))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Cow::Borrowed(v)))
                .collect(),
            Value::Labels(m) | Value::Kv(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Cow::Owned(Value::Str(v.clone()))))
                .collect(),
            // A nil value ranges like an empty one.
            Value::Nil => Vec::new(),
            other => {
                return Err(self.error(format!(
                    "range can't iterate over {}",
                    gofmt::print_top(other)
                )));
            }
        };
        if items.is_empty() {
            if let Some(list) = &b.else_list {
                self.walk_list(dot, list)?;
            }
        } else {
            let decl = &b.pipe.decl;
            for (index, elem) in items {
                // The last declared variable is the element, a first of two the index.
                if b.pipe.is_assign {
                    if let Some(name) = decl.last() {
                        self.set_var(name, elem.as_ref().clone())?;
                    }
                    if decl.len() > 1 {
                        self.set_var(&decl[0], index)?;
                    }
                } else {
                    if !decl.is_empty() {
                        self.vars[mark - 1].1 = elem.as_ref().clone();
                    }
                    if decl.len() > 1 {
                        self.vars[mark - 2].1 = index;
                    }
                }
                let flow = self.walk_list(&elem, &b.list)?;
                self.vars.truncate(mark);
                if let Flow::Break = flow {
                    break;
                }
            }
        }
        self.vars.truncate(outer);
        Ok(())
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &'t str,
        pipe: Option<&'t Pipe>,
    ) -> EResult<()> {
        self.at = At::Template { pos, name, pipe };
        let tree = self.tree;
        let Some(list) = tree.defs.get(name) else {
            return Err(self.error(format!("template {name:?} not defined")));
        };
        // Variables the pipeline declares persist in the caller.
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        // No dynamic scoping: the called template sees only `$`.
        let saved = std::mem::replace(&mut self.vars, vec![("$".to_owned(), new_dot.clone())]);
        let result = self.walk_list(&new_dot, list);
        self.vars = saved;
        result.map(|_| ())
    }

    fn var_value(&self, name: &str) -> EResult<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.error(format!("undefined variable: {name}")))
    }

    fn set_var(&mut self, name: &str, value: Value) -> EResult<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t Pipe) -> EResult<Value> {
        self.enter()?;
        let value = self.eval_pipe(dot, pipe);
        self.nesting -= 1;
        value
    }

    fn eval_pipe(&mut self, dot: &Value, pipe: &'t Pipe) -> EResult<Value> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(var, value.clone())?;
            } else {
                self.vars.push((var.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, first: &Arg, args: &[Arg], fin: &Option<Value>) -> EResult<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(self.error(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &'t Command,
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.step()?;
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at = At::Arg(first);
                self.eval_field_chain(dot, dot.clone(), idents, &cmd.args, fin)
            }
            Arg::Chain { .. } => self.eval_chain(dot, first, &cmd.args, fin),
            Arg::Ident(_, name) => {
                self.eval_function(dot, first, name, At::Cmd(cmd), &cmd.args[1..], fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(first, &cmd.args, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable { .. } => self.eval_variable(dot, first, &cmd.args, fin),
            _ => {
                self.at = At::Arg(first);
                self.not_a_function(first, &cmd.args, &fin)?;
                match first {
                    Arg::Bool(_, b) => Ok(Value::Bool(*b)),
                    Arg::Dot(_) => Ok(dot.clone()),
                    Arg::Nil(_) => Err(self.error("nil is not a command")),
                    Arg::Number { value, .. } => value.clone().map_err(|m| self.error(m)),
                    Arg::Str { value, .. } => Ok(Value::Str(value.clone())),
                    other => Err(self.error(format!("can't evaluate command {other}"))),
                }
            }
        }
    }

    fn eval_variable(
        &mut self,
        dot: &Value,
        arg: &'t Arg,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at = At::Arg(arg);
        let Arg::Variable { name, idents, .. } = arg else {
            return Err(self.error("internal error: not a variable"));
        };
        let value = self.var_value(name)?;
        if idents.is_empty() {
            self.not_a_function(arg, args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, idents, args, fin)
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &'t Arg,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at = At::Arg(chain);
        let Arg::Chain { node, fields, .. } = chain else {
            return Err(self.error("internal error: not a chain"));
        };
        if let Arg::Nil(_) = node.as_ref() {
            return Err(self.error(format!("indirection through explicit nil in {chain}")));
        }
        let receiver = self.eval_arg(dot, Param::Any, node)?;
        self.eval_field_chain(dot, receiver, fields, args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        receiver: Value,
        idents: &'t [String],
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        let Some((last, init)) = idents.split_last() else {
            return Ok(receiver);
        };
        let mut receiver = receiver;
        for name in init {
            receiver = self.eval_field(dot, name, &[], None, receiver)?;
        }
        // Only the last element of a chain gets the arguments, if it is a method.
        self.eval_field(dot, last, args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &'t str,
        args: &'t [Arg],
        fin: Option<Value>,
        receiver: Value,
    ) -> EResult<Value> {
        if let Value::Nil = receiver {
            return Ok(Value::Nil);
        }
        if let Some(spec) = funcs::method(&receiver, name) {
            let at = self.at;
            let call_args = args.get(1..).unwrap_or(&[]);
            return self.eval_call(
                dot,
                Callee::Method(receiver, name),
                spec,
                at,
                call_args,
                fin,
            );
        }
        let has_args = args.len() > 1 || fin.is_some();
        let cant = |s: &Self, v: &Value| {
            s.error(format!(
                "can't evaluate field {name} in type {}",
                gofmt::type_name(v)
            ))
        };
        match &receiver {
            Value::Struct(s) => match s.field(name) {
                Some(v) => {
                    if has_args {
                        return Err(self.error(format!(
                            "{name} has arguments but cannot be invoked as function"
                        )));
                    }
                    Ok(v.clone())
                }
                None => Err(cant(self, &receiver)),
            },
            Value::Map(m) => {
                if has_args {
                    return Err(self.error(format!("{name} is not a method but has arguments")));
                }
                Ok(m.get(name).cloned().unwrap_or(Value::Nil))
            }
            Value::Labels(m) | Value::Kv(m) => {
                if has_args {
                    return Err(self.error(format!("{name} is not a method but has arguments")));
                }
                Ok(Value::Str(m.get(name).cloned().unwrap_or_default()))
            }
            Value::ListWithFields(_, fields) => match fields.get(name) {
                Some(v) => {
                    if has_args {
                        let n = args.len().saturating_sub(1) + usize::from(fin.is_some());
                        return Err(
                            self.error(format!("wrong number of args for {name}: want 0 got {n}"))
                        );
                    }
                    Ok(v.clone())
                }
                None => Err(cant(self, &receiver)),
            },
            other => Err(cant(self, other)),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'t Arg,
        name: &'t str,
        node: At<'t>,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at = At::Arg(ident);
        let Some(spec) = funcs::spec(self.library, name) else {
            return Err(self.error(format!("{name:?} is not a defined function")));
        };
        self.eval_call(dot, Callee::Func(name), spec, node, args, fin)
    }

    /// Go's `evalCall`: checks the number and types of the arguments, evaluates them, calls.
    fn eval_call(
        &mut self,
        dot: &Value,
        callee: Callee<'t>,
        spec: Spec,
        node: At<'t>,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> EResult<Value> {
        let name = match &callee {
            Callee::Func(n) | Callee::Method(_, n) => *n,
        };
        let num_in = args.len() + usize::from(fin.is_some());
        let fixed = spec.params.len();
        if spec.variadic.is_some() {
            if num_in < fixed {
                return Err(self.error(format!(
                    "wrong number of args for {name}: want at least {fixed} got {}",
                    args.len()
                )));
            }
        } else if num_in != fixed {
            return Err(self.error(format!(
                "wrong number of args for {name}: want {fixed} got {num_in}"
            )));
        }
        if spec.short_circuit {
            // `and` returns the first false argument or the last; `or` the first true one
            // or the last; later arguments are not evaluated.
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(dot, Param::Any, a)?;
                if v.truthy() == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let param = |i: usize| -> Param {
            spec.params
                .get(i)
                .copied()
                .or(spec.variadic)
                .unwrap_or(Param::Any)
        };
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, param(i), a)?);
        }
        if let Some(f) = fin {
            argv.push(self.validate(f, param(num_in - 1))?);
        }
        let result = match &callee {
            Callee::Func(n) => funcs::call(self.library, n, argv, self.env),
            Callee::Method(recv, n) => funcs::call_method(recv, n, argv),
        };
        result.map_err(|m| {
            self.at = node;
            self.error(format!("error calling {name}: {m}"))
        })
    }

    /// Go's `validateType` for a computed (non-literal) argument.
    fn validate(&self, value: Value, param: Param) -> EResult<Value> {
        if param.accepts(&value) {
            return Ok(value);
        }
        if let Value::Nil = value {
            if param.can_be_nil() {
                return Ok(Value::Nil);
            }
            return Err(self.error(format!("invalid value; expected {}", param.go_name())));
        }
        Err(self.error(format!(
            "wrong type for value; expected {}; got {}",
            param.go_name(),
            gofmt::type_name(&value)
        )))
    }

    /// Go's `evalArg`: an argument for a parameter of type `param`.
    fn eval_arg(&mut self, dot: &Value, param: Param, arg: &'t Arg) -> EResult<Value> {
        self.at = At::Arg(arg);
        let v = match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => {
                if param.can_be_nil() {
                    return Ok(Value::Nil);
                }
                return Err(self.error(format!("cannot assign nil to {}", param.go_name())));
            }
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), idents, std::slice::from_ref(arg), None)?
            }
            Arg::Variable { .. } => self.eval_variable(dot, arg, &[], None)?,
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Ident(_, name) => self.eval_function(dot, arg, name, At::Arg(arg), &[], None)?,
            Arg::Chain { .. } => self.eval_chain(dot, arg, &[], None)?,
            Arg::Bool(..) | Arg::Number { .. } | Arg::Str { .. } => {
                return match (param, arg) {
                    (Param::Any, Arg::Bool(_, b)) => Ok(Value::Bool(*b)),
                    (Param::Any, Arg::Number { value, .. }) => {
                        value.clone().map_err(|m| self.error(m))
                    }
                    (Param::Any | Param::Str, Arg::Str { value, .. }) => {
                        Ok(Value::Str(value.clone()))
                    }
                    (Param::Str, _) => Err(self.error(format!("expected string; found {arg}"))),
                    _ => Err(self.error(format!(
                        "can't handle {arg} for arg of type {}",
                        param.go_name()
                    ))),
                };
            }
        };
        self.validate(v, param)
    }
}
