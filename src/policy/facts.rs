//! The facts rules read. Each section is a CEL variable of the same name (`agent`, `request`,
//! `destination`, `llm`, `tool`, `data`); sections a request does not have are `null`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::geo::Location;

use super::model::Trigger;

/// Everything known about one request when a trigger fires. Optional values that are unknown are
/// left out, so `has(llm.max_tokens)` says whether the request set one.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// Which trigger is being evaluated.
    #[serde(skip)]
    pub trigger: Trigger,
    /// Who is calling.
    pub agent: AgentFacts,
    /// Where the request goes and what it looks like on the wire.
    pub request: RequestFacts,
    /// The address the proxy connects to.
    pub destination: DestinationFacts,
    /// A recognised LLM call.
    pub llm: Option<LlmFacts>,
    /// A recognised tool call.
    pub tool: Option<ToolFacts>,
    /// A recognised data access.
    pub data: Option<DataFacts>,
    /// The decoded request body.
    pub body: BodyFacts,
    /// Personal data and secrets found in the request.
    pub pii: PiiFacts,
    /// The upstream's answer (response triggers only).
    pub response: Option<ResponseFacts>,
    /// `METHOD path` of a request to an LLM provider's endpoint the proxy does not meter, while
    /// a budget covers the agent: only a rule with `allow_unmetered: true` lets it through.
    #[serde(skip)]
    pub unmetered: Option<String>,
}

/// The upstream's answer, judged by `http.response` and `llm.response` rules.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResponseFacts {
    /// Status code.
    pub status: u16,
    /// Lower-case header names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The decoded body.
    pub body: BodyFacts,
    /// Personal data and secrets found in the body.
    pub pii: PiiFacts,
}

/// Personal data and secrets found in the request (body, query, forms): kinds and counts, never
/// values.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PiiFacts {
    /// Kinds found (`email`, `credit_card`, ...), sorted.
    pub kinds: Vec<String>,
    /// Findings per kind.
    pub counts: BTreeMap<String, u64>,
    /// Findings in all.
    pub total: u64,
}

impl PiiFacts {
    /// Facts from findings counted by kind.
    pub fn from_counts(counts: BTreeMap<String, u64>) -> PiiFacts {
        PiiFacts {
            kinds: counts.keys().cloned().collect(),
            total: counts.values().sum(),
            counts,
        }
    }
}

/// The decoded request body, as far as it is text.
#[derive(Debug, Clone, Serialize)]
pub struct BodyFacts {
    /// Decoded size in bytes.
    pub size: u64,
    /// `Content-Type` without parameters, lower-case.
    pub content_type: String,
    /// The body as JSON (`null` when it is not JSON).
    pub json: serde_json::Value,
    /// Form fields: `application/x-www-form-urlencoded`, and the text fields of
    /// `multipart/form-data`.
    pub form: BTreeMap<String, String>,
    /// Text content: a `text/*` body, and the text parts of a multipart body.
    pub text: Vec<String>,
    /// The headers of each multipart part (field and file names): scanned for personal data,
    /// not a fact rules read.
    #[serde(skip)]
    pub part_heads: Vec<String>,
    /// For each of `text`, the byte range of the body it stands in as it is, when it does
    /// (multipart parts that redaction may rewrite); not a fact rules read.
    #[serde(skip)]
    pub part_spans: Vec<Option<(usize, usize)>>,
    /// Whether the proxy could read the body; when not, the other fields are empty and only a
    /// rule with `allow_uninspected: true` can let the request through.
    pub inspected: bool,
    /// Why the body could not be inspected (empty when it was).
    pub problem: String,
}

impl Default for BodyFacts {
    /// An empty body, which the proxy read without trouble.
    fn default() -> Self {
        BodyFacts {
            size: 0,
            content_type: String::new(),
            json: serde_json::Value::Null,
            form: BTreeMap::new(),
            text: Vec::new(),
            part_heads: Vec::new(),
            part_spans: Vec::new(),
            inspected: true,
            problem: String::new(),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentFacts {
    /// Agent id.
    pub id: String,
    /// Team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Execution id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// Labels from config.
    pub labels: BTreeMap<String, String>,
}

/// The request line and headers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestFacts {
    /// Upper-case method.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Host, lower-case and without trailing dot (host patterns compare it as is); an IP
    /// address in its canonical form, however the agent spelled it.
    pub host: String,
    /// Whether the host is an IP address rather than a name (`0x08080808`, `134744072` and
    /// `[::ffff:8.8.8.8]` are all `8.8.8.8`).
    pub host_is_ip: bool,
    pub port: u16,
    /// Path without the query.
    pub path: String,
    /// Query parameters (last value wins).
    pub query: BTreeMap<String, String>,
    /// Lower-case header names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// A WebSocket upgrade (and, for `websocket.message`, a message of one).
    pub websocket: bool,
}

/// Where the bytes go.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DestinationFacts {
    /// The checked address the proxy connects to.
    pub ip: String,
    /// Whether it is in a non-global range (allowed by config).
    pub private: bool,
    /// ISO 3166-1 alpha-2 country, or `unknown`.
    pub country: String,
    /// Continent code (`EU`, `NA`, ...), or `unknown`.
    pub continent: String,
    /// In the EU.
    pub eu: bool,
    /// In the EEA (the EU included).
    pub eea: bool,
    /// Covered by a GDPR adequacy decision.
    pub adequate: bool,
    /// Whether the country is known; an unknown destination is outside every region.
    pub known: bool,
}

impl Facts {
    /// The facts of `request` by `agent` for `trigger`, before anything is recognised in its
    /// body, found in it, or known of its destination (unknown, so outside every region).
    pub fn new(trigger: Trigger, agent: AgentFacts, request: RequestFacts) -> Facts {
        Facts {
            trigger,
            agent,
            request,
            destination: DestinationFacts::new(String::new(), false, Location::unknown()),
            llm: None,
            tool: None,
            data: None,
            body: BodyFacts::default(),
            pii: PiiFacts::default(),
            response: None,
            unmetered: None,
        }
    }
}

impl RequestFacts {
    /// A request line: the query parsed into fields, `headers` by lower-case name with repeated
    /// ones joined.
    pub fn new(
        (method, scheme): (&str, &str),
        (host, port): (String, u16),
        path: &str,
        query: Option<&str>,
        headers: Option<&http::HeaderMap>,
    ) -> RequestFacts {
        let headers = headers.map(|headers| {
            join_repeated(headers.iter().map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            }))
        });
        let headers = headers.unwrap_or_default();
        let websocket = headers
            .get("upgrade")
            .is_some_and(|u| u.to_ascii_lowercase().contains("websocket"));
        RequestFacts {
            websocket,
            method: method.to_ascii_uppercase(),
            scheme: scheme.to_string(),
            host_is_ip: is_ip_literal(&host),
            host,
            port,
            path: path.to_string(),
            query: query.map(|q| fields_of(q.as_bytes())).unwrap_or_default(),
            headers,
        }
    }
}

impl BodyFacts {
    /// What the scanner reads of this body, `decoded`.
    pub fn scanned<'a>(&'a self, decoded: &'a [u8]) -> crate::pii::BodyParts<'a> {
        crate::pii::BodyParts {
            content_type: &self.content_type,
            json: &self.json,
            form: &self.form,
            text: &self.text,
            decoded,
            part_heads: &self.part_heads,
            part_spans: &self.part_spans,
        }
    }
}

impl DestinationFacts {
    /// The facts of a destination at `ip` (empty: not resolved yet), `private` when any of its
    /// checked addresses is in a non-global range, located at `location`.
    pub fn new(ip: String, private: bool, location: Location) -> DestinationFacts {
        DestinationFacts {
            ip,
            private,
            country: location.country,
            continent: location.continent,
            eu: location.eu,
            eea: location.eea,
            adequate: location.adequate,
            known: location.known,
        }
    }

    /// A destination in a country named outright (policy tests, `explain --country`).
    pub fn in_country(ip: String, country: &str) -> DestinationFacts {
        DestinationFacts::new(ip, false, Location::in_country(country))
    }
}

/// A recognised LLM call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LlmFacts {
    /// `openai`, `anthropic`, `gemini`, `azure_openai`, `openai_compatible`.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Whether the answer is streamed.
    pub stream: bool,
    /// Requested maximum output tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Message texts, in order.
    pub messages: Vec<String>,
    /// Names of the tools the request declares.
    pub tools: Vec<String>,
}

/// A recognised tool call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ToolFacts {
    /// Tool name.
    pub name: String,
    /// Arguments as JSON.
    pub arguments: serde_json::Value,
}

/// A recognised data access.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataFacts {
    /// Statement kind (`select`, `delete`, ...): the most consequential of `statements`.
    pub statement: String,
    /// Every statement kind the SQL contains, nested ones included (`EXPLAIN ANALYZE DELETE`:
    /// `explain`, `delete`), in order of appearance.
    pub statements: Vec<String>,
    /// Tables touched.
    pub tables: Vec<String>,
    /// Columns named.
    pub columns: Vec<String>,
    /// Whether the statement has a WHERE clause.
    pub has_where: bool,
    /// LIMIT, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Whether `host` (brackets allowed) is an IP address rather than a name.
pub fn is_ip_literal(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok()
}

/// `a=1&b=2` (a query or a form) as a map. A repeated name keeps every value, joined with `, `:
/// servers disagree on which one counts, so a rule comparing it must not see just one of them (and
/// a number parsed from it fails, which never helps the agent).
pub fn fields_of(encoded: &[u8]) -> BTreeMap<String, String> {
    join_repeated(form_urlencoded::parse(encoded).into_owned())
}

/// Name/value pairs as a map, the values of a repeated name joined with `, ` (as HTTP joins
/// repeated header fields).
pub fn join_repeated(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in pairs {
        joined
            .entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    joined
}

/// The CEL variables a condition may use.
pub const VARIABLES: [&str; 9] = [
    "agent",
    "request",
    "destination",
    "llm",
    "tool",
    "data",
    "body",
    "pii",
    "response",
];

impl Facts {
    /// The triggers whose rules judge these facts: the trigger itself, its parent, and on the
    /// request side every recognised section (so adding a section can add rules, never skip them).
    pub fn triggers(&self) -> Vec<Trigger> {
        let mut triggers = vec![self.trigger];
        triggers.extend(self.trigger.parent());
        let request_side = matches!(
            self.trigger,
            Trigger::HttpRequest | Trigger::LlmRequest | Trigger::ToolCall | Trigger::DataAccess
        );
        if request_side {
            let sections = [
                (self.llm.is_some(), Trigger::LlmRequest),
                (self.tool.is_some(), Trigger::ToolCall),
                (self.data.is_some(), Trigger::DataAccess),
            ];
            triggers.extend(
                sections
                    .into_iter()
                    .filter(|(present, _)| *present)
                    .map(|(_, t)| t),
            );
            triggers.push(Trigger::HttpRequest);
        } else if matches!(self.trigger, Trigger::Connect | Trigger::WebsocketMessage) {
            // Nothing else judges a CONNECT or a WebSocket message.
        } else {
            // The response side: an LLM answer is an HTTP response too.
            if self.llm.is_some() {
                triggers.push(Trigger::LlmResponse);
            }
            triggers.push(Trigger::HttpResponse);
        }
        let mut unique = Vec::with_capacity(triggers.len());
        for trigger in triggers {
            if !unique.contains(&trigger) {
                unique.push(trigger);
            }
        }
        unique
    }

    /// The sections a rule of `trigger` can rely on: `llm` for `llm.request`, `tool` for
    /// `tool.call`, `data` for `data.access`, `response` (and `llm`) for the response triggers;
    /// none for `connect` and `http.request`.
    pub fn sections(trigger: Trigger) -> &'static [&'static str] {
        match trigger {
            Trigger::LlmRequest => &["llm"],
            Trigger::ToolCall => &["tool"],
            Trigger::DataAccess => &["data"],
            Trigger::LlmResponse => &["llm", "response"],
            Trigger::HttpResponse => &["response"],
            _ => &[],
        }
    }

    /// Facts for `trigger` with every value empty and the sections it provides present: what
    /// load-time checks evaluate conditions against, so a condition that cannot produce a boolean
    /// is caught before use.
    pub fn sample(trigger: Trigger) -> Facts {
        let present = Some(String::new());
        let has = |section: &str| Facts::sections(trigger).contains(&section);
        Facts {
            trigger,
            agent: AgentFacts {
                team: present.clone(),
                env: present.clone(),
                execution: present,
                ..AgentFacts::default()
            },
            request: RequestFacts::default(),
            destination: DestinationFacts::default(),
            llm: has("llm").then(|| LlmFacts {
                max_tokens: Some(0),
                ..LlmFacts::default()
            }),
            tool: has("tool").then(|| ToolFacts {
                arguments: serde_json::Value::Object(serde_json::Map::new()),
                ..ToolFacts::default()
            }),
            data: has("data").then(|| DataFacts {
                limit: Some(0),
                ..DataFacts::default()
            }),
            body: BodyFacts {
                json: serde_json::Value::Object(serde_json::Map::new()),
                ..BodyFacts::default()
            },
            pii: PiiFacts::default(),
            response: has("response").then(|| ResponseFacts {
                body: BodyFacts {
                    json: serde_json::Value::Object(serde_json::Map::new()),
                    ..BodyFacts::default()
                },
                ..ResponseFacts::default()
            }),
            unmetered: None,
        }
    }
}
