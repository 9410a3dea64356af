//! Facts → CEL values, built by hand: a generic serde conversion costs tens of microseconds for a
//! 4 KB request, this costs a few. Optional values that are unknown are left out, so
//! `has(llm.max_tokens)` tells whether the request set one.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use cel::objects::Key;
use cel::{Context, Env, Value};

use super::facts::{
    AgentFacts, BodyFacts, DataFacts, DestinationFacts, Facts, LlmFacts, PiiFacts, RequestFacts,
    ResponseFacts, ToolFacts, VARIABLES,
};

/// The facts of one request as CEL variables, built once for every condition judged against them.
pub struct Activation {
    /// The variables, by their index in [`VARIABLES`]; read in place by the direct evaluator.
    values: [Option<Value>; VARIABLES.len()],
    /// The same, bound for the `cel` interpreter: built the first time a condition needs it.
    context: OnceCell<Context<'static, 'static>>,
}

/// Which CEL variables to build: bit `i` stands for `VARIABLES[i]`. Only what some condition reads
/// is built; the rest would cost microseconds per request for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reads(u16);

impl Reads {
    /// Every variable.
    pub const ALL: Reads = Reads(u16::MAX);

    /// The variables named in `names`.
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Reads {
        let mut bits = 0u16;
        for name in names {
            if let Some(i) = VARIABLES.iter().position(|v| *v == name) {
                bits |= 1 << i;
            }
        }
        Reads(bits)
    }

    /// Both sets.
    pub fn union(self, other: Reads) -> Reads {
        Reads(self.0 | other.0)
    }

    /// These without `name`.
    pub fn without(self, name: &str) -> Reads {
        let bit = VARIABLES
            .iter()
            .position(|v| *v == name)
            .map_or(0, |i| 1 << i);
        Reads(self.0 & !bit)
    }

    /// Whether `name` is among them.
    pub fn has(self, name: &str) -> bool {
        VARIABLES
            .iter()
            .position(|v| *v == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

impl Activation {
    /// Converts the facts the conditions read (`reads`) into CEL variables: `agent`, `request`,
    /// `destination`, `llm`, `tool`, `data`, `response` (`null` when the request has no such
    /// section), `body` and `pii`.
    pub fn new(facts: &Facts, reads: Reads) -> Activation {
        let build = |name: &str| -> Value {
            match name {
                "agent" => agent(&facts.agent),
                "request" => request(&facts.request),
                "destination" => destination(&facts.destination),
                "llm" => facts.llm.as_ref().map_or(Value::Null, llm),
                "tool" => facts.tool.as_ref().map_or(Value::Null, tool),
                "data" => facts.data.as_ref().map_or(Value::Null, data),
                "pii" => pii(&facts.pii),
                "response" => facts.response.as_ref().map_or(Value::Null, response),
                "body" => body(&facts.body),
                _ => Value::Null,
            }
        };
        Activation {
            values: VARIABLES.map(|name| reads.has(name).then(|| build(name))),
            context: OnceCell::new(),
        }
    }

    /// The variable `VARIABLES[index]`, if it was built.
    pub(super) fn value(&self, index: usize) -> Option<&Value> {
        self.values.get(index)?.as_ref()
    }

    /// The variables bound for the `cel` interpreter.
    pub(super) fn context(&self) -> &Context<'static, 'static> {
        self.context.get_or_init(|| {
            let mut context = Context::with_env(stdlib());
            for (name, value) in VARIABLES.iter().zip(&self.values) {
                if let Some(value) = value {
                    context.add_variable_from_value(name.to_string(), value.clone());
                }
            }
            context
        })
    }
}

/// The CEL standard environment, built once: building it registers every standard function and
/// costs far more than judging a request. `matches` is ours, with its patterns compiled once
/// (the `cel` crate's regex feature, which compiles on every call, is off).
fn stdlib() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Cannot clash: the crate's own `matches` is compiled out. Were it not, conditions
        // calling `matches` would fail their sample evaluation and the policy would not load.
        let _ = super::matches::register(&mut env);
        Arc::new(env)
    })
    .clone()
}

/// A CEL map from named fields; `None` values are left out.
fn object<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    let map: HashMap<Key, Value> = fields
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (Key::String(Arc::new(name.to_string())), v)))
        .collect();
    Value::Map(map.into())
}

fn text(s: &str) -> Option<Value> {
    Some(Value::String(Arc::new(s.to_string())))
}

fn optional_text(s: &Option<String>) -> Option<Value> {
    s.as_deref().and_then(text)
}

fn texts(list: &[String]) -> Option<Value> {
    let values: Vec<Value> = list
        .iter()
        .map(|s| Value::String(Arc::new(s.clone())))
        .collect();
    Some(Value::List(Arc::new(values)))
}

fn string_map(map: &BTreeMap<String, String>) -> Option<Value> {
    let entries: HashMap<Key, Value> = map
        .iter()
        .map(|(k, v)| {
            (
                Key::String(Arc::new(k.clone())),
                Value::String(Arc::new(v.clone())),
            )
        })
        .collect();
    Some(Value::Map(entries.into()))
}

fn uint(n: u64) -> Option<Value> {
    i64::try_from(n).ok().map(Value::Int)
}

fn agent(a: &AgentFacts) -> Value {
    object([
        ("id", text(&a.id)),
        ("team", optional_text(&a.team)),
        ("env", optional_text(&a.env)),
        ("execution", optional_text(&a.execution)),
        ("labels", string_map(&a.labels)),
    ])
}

fn request(r: &RequestFacts) -> Value {
    object([
        ("method", text(&r.method)),
        ("scheme", text(&r.scheme)),
        ("host", text(&r.host)),
        ("host_is_ip", Some(Value::Bool(r.host_is_ip))),
        ("port", uint(u64::from(r.port))),
        ("path", text(&r.path)),
        ("query", string_map(&r.query)),
        ("headers", string_map(&r.headers)),
        ("websocket", Some(Value::Bool(r.websocket))),
    ])
}

fn destination(d: &DestinationFacts) -> Value {
    object([
        ("ip", text(&d.ip)),
        ("private", Some(Value::Bool(d.private))),
        ("country", text(&d.country)),
        ("continent", text(&d.continent)),
        ("eu", Some(Value::Bool(d.eu))),
        ("eea", Some(Value::Bool(d.eea))),
        ("adequate", Some(Value::Bool(d.adequate))),
        ("known", Some(Value::Bool(d.known))),
    ])
}

fn llm(l: &LlmFacts) -> Value {
    object([
        ("provider", text(&l.provider)),
        ("model", text(&l.model)),
        ("stream", Some(Value::Bool(l.stream))),
        ("max_tokens", l.max_tokens.and_then(uint)),
        ("messages", Some(listed(&l.messages))),
        ("message_count", uint(l.messages.len() as u64)),
        ("tools", texts(&l.tools)),
    ])
}

/// Texts (`llm.messages`, `body.text`) a condition iterates one by one, at most: a macro nested
/// in another over such a list costs the square of its length, and the agent chooses the length.
pub const LISTED_TEXTS: usize = 256;

/// A list of texts as conditions see it: the first as they are, every one past
/// [`LISTED_TEXTS`] joined (by newlines) into the last element, so no text is hidden from
/// `exists(m, m.contains(...))`; `llm.message_count` is the real count of messages.
fn listed(messages: &[String]) -> Value {
    if messages.len() <= LISTED_TEXTS {
        return texts(messages).unwrap_or(Value::Null);
    }
    let (kept, rest) = messages.split_at(LISTED_TEXTS - 1);
    let mut values: Vec<Value> = kept
        .iter()
        .map(|s| Value::String(Arc::new(s.clone())))
        .collect();
    values.push(Value::String(Arc::new(rest.join("\n"))));
    Value::List(Arc::new(values))
}

fn tool(t: &ToolFacts) -> Value {
    object([
        ("name", text(&t.name)),
        ("arguments", Some(json(&t.arguments))),
    ])
}

fn data(d: &DataFacts) -> Value {
    object([
        ("statement", text(&d.statement)),
        ("statements", texts(&d.statements)),
        ("tables", texts(&d.tables)),
        ("columns", texts(&d.columns)),
        ("has_where", Some(Value::Bool(d.has_where))),
        ("limit", d.limit.and_then(uint)),
    ])
}

fn body(b: &BodyFacts) -> Value {
    object([
        ("size", uint(b.size)),
        ("content_type", text(&b.content_type)),
        ("json", Some(json(&b.json))),
        ("form", string_map(&b.form)),
        ("text", Some(listed(&b.text))),
        ("inspected", Some(Value::Bool(b.inspected))),
        ("problem", text(&b.problem)),
    ])
}

fn response(r: &ResponseFacts) -> Value {
    object([
        ("status", uint(u64::from(r.status))),
        ("headers", string_map(&r.headers)),
        ("body", Some(body(&r.body))),
        ("pii", Some(pii(&r.pii))),
    ])
}

fn pii(p: &PiiFacts) -> Value {
    let counts: HashMap<Key, Value> = p
        .counts
        .iter()
        .filter_map(|(k, v)| Some((Key::String(Arc::new(k.clone())), uint(*v)?)))
        .collect();
    object([
        ("kinds", texts(&p.kinds)),
        ("counts", Some(Value::Map(counts.into()))),
        ("total", uint(p.total)),
    ])
}

/// JSON (tool arguments) as CEL: objects become maps, numbers ints when integral, else doubles.
fn json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => Value::List(Arc::new(items.iter().map(json).collect())),
        serde_json::Value::Object(fields) => {
            let map: HashMap<Key, Value> = fields
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), json(v)))
                .collect();
            Value::Map(map.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_conversations_are_listed_bounded_with_every_text_kept() {
        let messages: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        let Value::List(list) = listed(&messages) else {
            panic!("a list");
        };
        assert_eq!(list.len(), LISTED_TEXTS);
        let Value::String(last) = &list[LISTED_TEXTS - 1] else {
            panic!("text");
        };
        assert!(last.starts_with("m255\n") && last.ends_with("\nm999"));
        let short = listed(&messages[..3]);
        assert_eq!(short, texts(&messages[..3]).unwrap());
    }
}
