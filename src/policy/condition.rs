//! Our wrapper around the `cel` crate: a condition is compiled and checked once when policies
//! load, then evaluated against each request's facts.

use std::fmt;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr, IdedExpr, LiteralValue};
use cel::{ExecutionError, Program, Value};

use super::activation::{Activation, FIELDS, Reads};
use super::facts::{Facts, VARIABLES};
use super::fast::Fast;
use super::model::Trigger;

/// A compiled CEL condition.
#[derive(Clone)]
pub struct Condition {
    source: Arc<str>,
    program: Arc<Program>,
    reads: Reads,
    /// The regexes of its `matches('...')` calls, compiled at load and kept while it lives.
    _patterns: Arc<[Arc<regex::Regex>]>,
    /// The same condition for the direct evaluator, when it is written in the shapes that knows.
    fast: Option<Arc<Fast>>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({})", self.source)
    }
}

/// Functions and operators a condition may call: the CEL standard library as the `cel` crate
/// implements it. Anything else is a typo caught at load time.
const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "string",
    "int",
    "uint",
    "double",
    "bytes",
    "bool",
    "dyn",
    "type",
    "max",
    "min",
];

/// Why a condition could not be used or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// Not valid CEL.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// Names a variable that no trigger provides.
    #[error("unknown variable `{0}` (known: agent, request, destination, llm, tool, data, body)")]
    UnknownVariable(String),
    /// Calls a function CEL does not have.
    #[error("unknown function `{0}`")]
    UnknownFunction(String),
    /// Reads a section the rule's trigger never provides.
    #[error(
        "`{section}` is not set for {trigger} rules; write the rule for a trigger that provides it (llm: llm.request, llm.response; tool: tool.call; data: data.access; response: http.response, llm.response)"
    )]
    Unavailable {
        section: String,
        /// The rule's trigger.
        trigger: String,
    },
    /// Reads a field its object does not have: it would fail on every request.
    #[error("`{object}` has no field `{field}` (its fields: {known})")]
    UnknownField {
        /// The variable, or `response.body` / `response.pii`.
        object: String,
        /// The name read.
        field: String,
        /// The object's fields, comma-separated.
        known: String,
    },
    /// Uses a name that is neither a fact nor a function.
    #[error("`{0}` is not declared")]
    Undeclared(String),
    /// Evaluates to something other than a boolean.
    #[error("must evaluate to a boolean, got {0}")]
    NotBoolean(String),
    /// A `matches()` pattern that does not compile (or is too large).
    #[error("matches(): {0}")]
    Pattern(String),
    /// Failed while evaluating.
    #[error("evaluation failed: {0}")]
    Evaluation(String),
}

impl Condition {
    /// Compiles `source` and checks it: syntax, variables, functions, and that it yields a
    /// boolean on sample facts for `trigger`.
    pub fn compile(source: &str, trigger: Trigger) -> Result<Condition, ConditionError> {
        let program = Program::compile(source)
            .map_err(|e| ConditionError::Syntax(one_line(&e.to_string())))?;
        let references = program.references();
        let bound = comprehension_variables(program.expression());
        if let Some(var) = references
            .variables()
            .into_iter()
            .find(|v| !VARIABLES.contains(v) && !bound.iter().any(|b| b == v))
        {
            return Err(ConditionError::UnknownVariable(var.to_string()));
        }
        if let Some(function) = references
            .functions()
            .into_iter()
            .find(|f| !is_operator(f) && !FUNCTIONS.contains(f))
        {
            return Err(ConditionError::UnknownFunction(function.to_string()));
        }
        if let Some((object, field, known)) = unknown_field(program.expression(), &bound) {
            return Err(ConditionError::UnknownField {
                object,
                field,
                known: known.join(", "),
            });
        }
        for section in ["llm", "tool", "data", "response"] {
            if references.variables().contains(&section)
                && !Facts::sections(trigger).contains(&section)
            {
                return Err(ConditionError::Unavailable {
                    section: section.to_string(),
                    trigger: trigger.name().to_string(),
                });
            }
        }
        let reads = Reads::of(references.variables());
        let patterns = constant_patterns(program.expression())
            .into_iter()
            .map(|pattern| super::matches::hold(pattern).map_err(ConditionError::Pattern))
            .collect::<Result<Vec<_>, _>>()?;
        let condition = Condition {
            source: source.into(),
            fast: Fast::compile(program.expression()).map(Arc::new),
            program: Arc::new(program),
            reads,
            _patterns: patterns.into(),
        };
        let sample = Activation::new(&Facts::sample(trigger), Reads::ALL);
        match condition.program.execute(sample.context()) {
            Ok(Value::Bool(_)) => Ok(condition),
            Ok(other) => Err(ConditionError::NotBoolean(format!("{:?}", other.type_of()))),
            Err(ExecutionError::NoSuchKey(_)) => Ok(condition),
            Err(ExecutionError::UndeclaredReference(name)) => {
                Err(ConditionError::Undeclared(name.to_string()))
            }
            Err(e) => Err(ConditionError::Evaluation(e.to_string())),
        }
    }

    /// Whether the condition reads the `destination` variable.
    pub fn reads_destination(&self) -> bool {
        self.reads.has("destination")
    }

    /// The variables the condition reads.
    pub fn reads(&self) -> Reads {
        self.reads
    }

    /// The source as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against one request's facts.
    pub fn eval(&self, activation: &Activation) -> Result<bool, ConditionError> {
        if let Some(answer) = self.fast.as_ref().and_then(|fast| fast.eval(activation)) {
            return Ok(answer);
        }
        self.interpret(activation)
    }

    /// Evaluates with the `cel` interpreter alone.
    pub(super) fn interpret(&self, activation: &Activation) -> Result<bool, ConditionError> {
        match self.program.execute(activation.context()) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(ConditionError::NotBoolean(format!("{:?}", other.type_of()))),
            Err(e) => Err(ConditionError::Evaluation(e.to_string())),
        }
    }
}

/// Names bound by macros (`list.exists(t, ...)`): they are variables only inside their macro.
fn comprehension_variables(expr: &IdedExpr) -> Vec<String> {
    let mut bound = Vec::new();
    for node in nodes(expr) {
        if let Expr::Comprehension(comp) = &node.expr {
            bound.push(comp.iter_var.clone());
            bound.extend(comp.iter_var2.clone());
            bound.push(comp.accu_var.clone());
        }
    }
    bound
}

/// The first `variable.field` (also `response.body.field`, `response.pii.field`, and within
/// `has()`) naming a field its object does not have, with the object's fields: the sample check
/// lets a missing key pass (a map's key may be absent), so such a typo would load and fail on
/// every request. A name a comprehension binds anywhere in `expr` is left alone.
fn unknown_field(
    expr: &IdedExpr,
    bound: &[String],
) -> Option<(String, String, &'static [&'static str])> {
    nodes(expr).into_iter().find_map(|node| {
        let Expr::Select(select) = &node.expr else {
            return None;
        };
        let (object, known) = object_of(&select.operand, bound)?;
        (!known.contains(&select.field.as_str())).then(|| (object, select.field.clone(), known))
    })
}

/// The object `operand` names and its fields: a variable, or `response.body` / `response.pii`
/// (the answer's own `body` and `pii` facts).
fn object_of(operand: &IdedExpr, bound: &[String]) -> Option<(String, &'static [&'static str])> {
    let fields_of = |name: &str| {
        let index = VARIABLES.iter().position(|v| *v == name)?;
        FIELDS.get(index).copied()
    };
    match &operand.expr {
        Expr::Ident(name) if !bound.contains(name) => Some((name.clone(), fields_of(name)?)),
        Expr::Select(inner) if !inner.test && matches!(inner.field.as_str(), "body" | "pii") => {
            let Expr::Ident(name) = &inner.operand.expr else {
                return None;
            };
            (name == "response" && !bound.contains(name)).then_some(())?;
            let object = format!("response.{}", inner.field);
            Some((object, fields_of(&inner.field)?))
        }
        _ => None,
    }
}

/// The patterns of `x.matches('...')` and `matches(x, '...')` written as string literals.
fn constant_patterns(expr: &IdedExpr) -> Vec<&str> {
    nodes(expr)
        .into_iter()
        .filter_map(|node| match &node.expr {
            Expr::Call(call) if call.func_name == "matches" => {
                let at = if call.target.is_some() { 0 } else { 1 };
                match call.args.get(at).map(|arg| &arg.expr) {
                    Some(Expr::Literal(LiteralValue::String(pattern))) => Some(pattern.inner()),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

/// Every node of `expr`.
fn nodes(expr: &IdedExpr) -> Vec<&IdedExpr> {
    let mut all = Vec::new();
    let mut stack = vec![expr];
    while let Some(node) = stack.pop() {
        all.push(node);
        match &node.expr {
            Expr::Comprehension(comp) => stack.extend([
                &comp.iter_range,
                &comp.accu_init,
                &comp.loop_cond,
                &comp.loop_step,
                &comp.result,
            ]),
            Expr::Call(call) => {
                stack.extend(call.target.as_deref());
                stack.extend(call.args.iter());
            }
            Expr::Select(select) => stack.push(&select.operand),
            Expr::List(list) => stack.extend(list.elements.iter()),
            Expr::Map(map) => stack.extend(map.entries.iter().flat_map(entry_children)),
            Expr::Struct(st) => stack.extend(st.entries.iter().flat_map(entry_children)),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    all
}

fn entry_children(entry: &IdedEntryExpr) -> Vec<&IdedExpr> {
    match &entry.expr {
        EntryExpr::StructField(field) => vec![&field.value],
        EntryExpr::MapEntry(pair) => vec![&pair.key, &pair.value],
    }
}

fn is_operator(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('@') || name.ends_with('_')
}

fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_time_checks_table() {
        let table: &[(&str, Result<(), &str>)] = &[
            (
                "request.host.endsWith('.openai.com') && request.method == 'POST'",
                Ok(()),
            ),
            ("agent.team in ['finance', 'ops']", Ok(())),
            ("request.headers['x-env'] == 'prod'", Ok(())),
            ("has(llm.max_tokens) && llm.max_tokens > 1000", Ok(())),
            (
                "size(llm.messages) > 10 || llm.tools.exists(t, t == 'shell')",
                Ok(()),
            ),
            ("request.path.matches('^/v1/')", Ok(())),
            ("matches(request.path, '^/v1/')", Ok(())),
            (
                "request.path.matches('(v1')",
                Err("matches(): '(v1' is not a valid regex"),
            ),
            (
                "request.path.matches('(?:\\\\w{100}){100}')",
                Err("matches():"),
            ),
            ("request.host ==", Err("syntax error")),
            ("requets.host == 'x'", Err("unknown variable `requets`")),
            (
                "lower(request.host) == 'x'",
                Err("unknown function `lower`"),
            ),
            ("request.method + 1 == 2", Err("evaluation failed")),
            ("request.host", Err("must evaluate to a boolean")),
            ("request.port", Err("must evaluate to a boolean")),
            (
                "tool.name == 'x'",
                Err("`tool` is not set for llm.request rules"),
            ),
        ];
        for (source, expected) in table {
            let got = Condition::compile(source, Trigger::LlmRequest).map(|_| ());
            match (got, expected) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{source}: {e}"),
                (got, want) => panic!("{source}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn matches_keeps_cel_semantics_with_constant_and_dynamic_patterns() {
        let mut facts = Facts::sample(Trigger::HttpRequest);
        facts.request.path = "/v1/refunds/42".into();
        facts
            .request
            .headers
            .insert("x-pattern".into(), "refunds/[0-9]+$".into());
        facts.request.headers.insert("x-bad".into(), "(".into());
        let activation = Activation::new(&facts, Reads::ALL);
        let table: &[(&str, Result<bool, &str>)] = &[
            ("request.path.matches('^/v1/')", Ok(true)),
            ("request.path.matches('refunds')", Ok(true)),
            ("matches(request.path, '^/v2/')", Ok(false)),
            (
                "request.path.matches(request.headers['x-pattern'])",
                Ok(true),
            ),
            (
                "request.path.matches(request.headers['x-bad'])",
                Err("not a valid regex"),
            ),
        ];
        for (source, want) in table {
            let condition = Condition::compile(source, Trigger::HttpRequest).unwrap();
            match (condition.eval(&activation), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{source}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{source}: {e}"),
                (got, want) => panic!("{source}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn evaluates_against_request_facts() {
        let mut facts = Facts::sample(Trigger::HttpRequest);
        facts.request.host = "api.stripe.com".into();
        facts.request.method = "POST".into();
        facts.llm = None;
        let activation = Activation::new(&facts, Reads::ALL);
        let yes =
            Condition::compile("request.host == 'api.stripe.com'", Trigger::HttpRequest).unwrap();
        assert_eq!(yes.eval(&activation), Ok(true));
        let absent = Condition::compile("llm.model == 'gpt-4o'", Trigger::LlmRequest).unwrap();
        assert!(
            absent.eval(&activation).is_err(),
            "a missing section is an evaluation error"
        );
    }
}
