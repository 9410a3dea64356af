//! Facts → CEL values, built by hand: a generic serde conversion costs tens of microseconds for a
//! 4 KB request, this costs a few. Optional values that are unknown are left out, so
//! `has(llm.max_tokens)` tells whether the request set one.

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
    pub(super) context: Context<'static, 'static>,
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
        let mut context = Context::with_env(stdlib());
        let mut add = |name: &str, build: &dyn Fn() -> Value| {
            if reads.has(name) {
                context.add_variable_from_value(name.to_string(), build());
            }
        };
        add("agent", &|| agent(&facts.agent));
        add("request", &|| request(&facts.request));
        add("destination", &|| destination(&facts.destination));
        add("llm", &|| facts.llm.as_ref().map_or(Value::Null, llm));
        add("tool", &|| facts.tool.as_ref().map_or(Value::Null, tool));
        add("data", &|| facts.data.as_ref().map_or(Value::Null, data));
        add("pii", &|| pii(&facts.pii));
        add("response", &|| {
            facts.response.as_ref().map_or(Value::Null, response)
        });
        add("body", &|| body(&facts.body));
        Activation { context }
    }
}

/// The CEL standard environment, built once: building it registers every standard function and
/// costs far more than judging a request.
fn stdlib() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib())).clone()
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
        ("messages", texts(&l.messages)),
        ("tools", texts(&l.tools)),
    ])
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
        ("text", texts(&b.text)),
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
