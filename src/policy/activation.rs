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
    /// What each variable is, by its index in [`VARIABLES`].
    built: [Built; VARIABLES.len()],
    /// The fields of each variable that is an object, in the order of [`FIELDS`] (empty for one
    /// that is `null` or not built): the direct evaluator reads `agent.team` without a lookup.
    fields: [Vec<Option<Value>>; VARIABLES.len()],
    /// Each object variable as a CEL map, made from its fields the first time a condition reads
    /// it whole (most read only fields, and a map costs a key and a hash a field).
    maps: [OnceCell<Value>; VARIABLES.len()],
    /// What a variable the request has no section for is: `null`.
    null: Value,
    /// The same, bound for the `cel` interpreter: built the first time a condition needs it.
    context: OnceCell<Context<'static, 'static>>,
}

/// What a variable of an [`Activation`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Built {
    /// No condition reads it.
    Unread,
    /// Read, and the request has no such section (`llm` of a call that is none).
    Null,
    /// Read, an object of [`FIELDS`].
    Object,
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
        let build = |name: &str| -> Option<Vec<Option<Value>>> {
            match name {
                "agent" => Some(agent(&facts.agent)),
                "request" => Some(request(&facts.request)),
                "destination" => Some(destination(&facts.destination)),
                "llm" => facts.llm.as_ref().map(llm),
                "tool" => facts.tool.as_ref().map(tool),
                "data" => facts.data.as_ref().map(data),
                "pii" => Some(pii(&facts.pii)),
                "response" => facts.response.as_ref().map(response),
                "body" => Some(body(&facts.body)),
                _ => None,
            }
        };
        let mut built = [Built::Unread; VARIABLES.len()];
        let mut fields = [const { Vec::new() }; VARIABLES.len()];
        for (i, name) in VARIABLES.iter().enumerate() {
            if reads.has(name) {
                (built[i], fields[i]) = match build(name) {
                    Some(object) => (Built::Object, object),
                    None => (Built::Null, Vec::new()),
                };
            }
        }
        Activation {
            built,
            fields,
            maps: [const { OnceCell::new() }; VARIABLES.len()],
            null: Value::Null,
            context: OnceCell::new(),
        }
    }

    /// Field `field` (its index in `FIELDS[variable]`) of the variable `VARIABLES[variable]`, if
    /// the variable was built as an object and the field is set.
    pub(super) fn field(&self, variable: usize, field: usize) -> Option<&Value> {
        self.fields.get(variable)?.get(field)?.as_ref()
    }

    /// The variable `VARIABLES[index]`, if it was built.
    pub(super) fn value(&self, index: usize) -> Option<&Value> {
        match self.built.get(index)? {
            Built::Unread => None,
            Built::Null => Some(&self.null),
            Built::Object => {
                let (names, fields) = (FIELDS.get(index)?, self.fields.get(index)?);
                Some(self.maps.get(index)?.get_or_init(|| map(names, fields)))
            }
        }
    }

    /// The variables bound for the `cel` interpreter.
    pub(super) fn context(&self) -> &Context<'static, 'static> {
        self.context.get_or_init(|| {
            let mut context = Context::with_env(stdlib());
            for (index, name) in VARIABLES.iter().enumerate() {
                if let Some(value) = self.value(index) {
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

/// The field names of each variable that is an object, by its index in [`VARIABLES`].
pub(super) const FIELDS: [&[&str]; VARIABLES.len()] = [
    &AGENT,
    &REQUEST,
    &DESTINATION,
    &LLM,
    &TOOL,
    &DATA,
    &BODY,
    &PII,
    &RESPONSE,
];
const AGENT: [&str; 5] = ["id", "team", "env", "execution", "labels"];
const REQUEST: [&str; 9] = [
    "method",
    "scheme",
    "host",
    "host_is_ip",
    "port",
    "path",
    "query",
    "headers",
    "websocket",
];
const DESTINATION: [&str; 8] = [
    "ip",
    "private",
    "country",
    "continent",
    "eu",
    "eea",
    "adequate",
    "known",
];
const LLM: [&str; 7] = [
    "provider",
    "model",
    "stream",
    "max_tokens",
    "messages",
    "message_count",
    "tools",
];
const TOOL: [&str; 2] = ["name", "arguments"];
const DATA: [&str; 6] = [
    "statement",
    "statements",
    "tables",
    "columns",
    "has_where",
    "limit",
];
const PII: [&str; 3] = ["kinds", "counts", "total"];
const RESPONSE: [&str; 4] = ["status", "headers", "body", "pii"];
const BODY: [&str; 7] = [
    "size",
    "content_type",
    "json",
    "form",
    "text",
    "inspected",
    "problem",
];

/// An object's fields in the order of its names (`names` fixes the count).
fn object<const N: usize>(_names: &[&str; N], values: [Option<Value>; N]) -> Vec<Option<Value>> {
    values.into()
}

/// The object of `names` and their `values` as CEL sees it, a map; `None` values are left out.
fn map(names: &[&str], values: &[Option<Value>]) -> Value {
    let map: HashMap<Key, Value> = names
        .iter()
        .zip(values)
        .filter_map(|(name, value)| {
            let value = value.clone()?;
            Some((Key::String(Arc::new(name.to_string())), value))
        })
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

fn agent(a: &AgentFacts) -> Vec<Option<Value>> {
    object(
        &AGENT,
        [
            text(&a.id),
            optional_text(&a.team),
            optional_text(&a.env),
            optional_text(&a.execution),
            string_map(&a.labels),
        ],
    )
}

fn request(r: &RequestFacts) -> Vec<Option<Value>> {
    object(
        &REQUEST,
        [
            text(&r.method),
            text(&r.scheme),
            text(&r.host),
            Some(Value::Bool(r.host_is_ip)),
            uint(u64::from(r.port)),
            text(&r.path),
            string_map(&r.query),
            string_map(&r.headers),
            Some(Value::Bool(r.websocket)),
        ],
    )
}

fn destination(d: &DestinationFacts) -> Vec<Option<Value>> {
    object(
        &DESTINATION,
        [
            text(&d.ip),
            Some(Value::Bool(d.private)),
            text(&d.country),
            text(&d.continent),
            Some(Value::Bool(d.eu)),
            Some(Value::Bool(d.eea)),
            Some(Value::Bool(d.adequate)),
            Some(Value::Bool(d.known)),
        ],
    )
}

fn llm(l: &LlmFacts) -> Vec<Option<Value>> {
    object(
        &LLM,
        [
            text(&l.provider),
            text(&l.model),
            Some(Value::Bool(l.stream)),
            l.max_tokens.and_then(uint),
            Some(listed(&l.messages)),
            uint(l.messages.len() as u64),
            texts(&l.tools),
        ],
    )
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

fn tool(t: &ToolFacts) -> Vec<Option<Value>> {
    object(&TOOL, [text(&t.name), Some(json(&t.arguments))])
}

fn data(d: &DataFacts) -> Vec<Option<Value>> {
    object(
        &DATA,
        [
            text(&d.statement),
            texts(&d.statements),
            texts(&d.tables),
            texts(&d.columns),
            Some(Value::Bool(d.has_where)),
            d.limit.and_then(uint),
        ],
    )
}

fn body(b: &BodyFacts) -> Vec<Option<Value>> {
    object(
        &BODY,
        [
            uint(b.size),
            text(&b.content_type),
            Some(json(&b.json)),
            string_map(&b.form),
            Some(listed(&b.text)),
            Some(Value::Bool(b.inspected)),
            text(&b.problem),
        ],
    )
}

fn response(r: &ResponseFacts) -> Vec<Option<Value>> {
    object(
        &RESPONSE,
        [
            uint(u64::from(r.status)),
            string_map(&r.headers),
            Some(map(&BODY, &body(&r.body))),
            Some(map(&PII, &pii(&r.pii))),
        ],
    )
}

fn pii(p: &PiiFacts) -> Vec<Option<Value>> {
    let counts: HashMap<Key, Value> = p
        .counts
        .iter()
        .filter_map(|(k, v)| Some((Key::String(Arc::new(k.clone())), uint(*v)?)))
        .collect();
    object(
        &PII,
        [
            texts(&p.kinds),
            Some(Value::Map(counts.into())),
            uint(p.total),
        ],
    )
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
    fn each_variable_has_its_own_field_names_at_its_index() {
        let own: [(&str, &[&str]); VARIABLES.len()] = [
            ("agent", &AGENT),
            ("request", &REQUEST),
            ("destination", &DESTINATION),
            ("llm", &LLM),
            ("tool", &TOOL),
            ("data", &DATA),
            ("body", &BODY),
            ("pii", &PII),
            ("response", &RESPONSE),
        ];
        for (name, names) in own {
            let index = VARIABLES.iter().position(|v| *v == name).expect(name);
            assert_eq!(FIELDS[index], names, "{name}");
        }
    }

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
