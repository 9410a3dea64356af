//! Bytes → facts: the only module that parses request bodies. Decodes the body, then recognises
//! LLM calls and MCP tool calls from the traffic itself.

mod body;
mod charset;
mod form;
mod llm;
mod mcp;
mod postgrest;
mod sql;
mod sql_dialects;
mod sql_effects;
mod sql_reading;
mod usage_chunk;

use bytes::Bytes;
use globset::GlobMatcher;
use serde_json::Value;

pub use body::{BodyError, decode, json_footprint};
pub use llm::{Dialect, free_endpoint, operation_of, provider_of_host};
pub use usage_chunk::{UsageChunkFilter, ask_for_usage, with_output_limit};

use crate::policy::HostPattern;
use crate::policy::{BodyFacts, DataFacts, LlmFacts, ToolFacts, Trigger};

/// What a request body turned out to be.
#[derive(Debug, Clone, Default)]
pub struct Recognised {
    /// A recognised LLM call.
    pub llm: Option<LlmFacts>,
    /// A recognised tool call.
    pub tool: Option<ToolFacts>,
    /// A recognised data access (SQL, PostgREST).
    pub data: Option<DataFacts>,
    /// The JSON-RPC id of an MCP call (for a JSON-RPC refusal).
    pub jsonrpc_id: Option<Value>,
    /// The body parsed as a JSON object, when it is one (parsed once, for recognition and for
    /// the `body.json` fact).
    pub json: Option<Value>,
    /// Set when the body claims a structure it does not have (invalid JSON, batched tool calls):
    /// such a request cannot be judged and is refused.
    pub unreadable: Option<String>,
    /// The `Content-Type` the body is forwarded under when [`examine`] read it from another
    /// charset into UTF-8 (`...; charset=utf-8`).
    pub content_type: Option<String>,
}

impl Recognised {
    /// The most specific trigger this request fires.
    pub fn trigger(&self) -> Trigger {
        if self.tool.is_some() {
            Trigger::ToolCall
        } else if self.data.is_some() {
            Trigger::DataAccess
        } else if self.llm.is_some() {
            Trigger::LlmRequest
        } else {
            Trigger::HttpRequest
        }
    }
}

/// A REST endpoint that config names as a tool (`POST api.stripe.com/v1/refunds` → `refund`).
#[derive(Debug, Clone)]
pub struct RestTool {
    /// The tool name rules see.
    pub name: String,
    /// Host pattern.
    pub host: HostPattern,
    /// Upper-case method; empty for any.
    pub method: String,
    /// Path glob.
    pub path: GlobMatcher,
}

/// What recognition is told by config.
#[derive(Debug, Clone, Default)]
pub struct InspectConfig {
    /// JSON fields (top-level, or tool arguments) whose string values are SQL.
    pub sql_fields: Vec<String>,
    /// Those of `sql_fields` that also carry natural language (a search tool's `query`): text
    /// there that does not parse is taken for SQL only when it shows SQL's punctuation.
    pub prose_fields: Vec<String>,
    /// REST endpoints named as tools.
    pub rest_tools: Vec<RestTool>,
}

/// Where a request is going and what it carries, as recognition needs it.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// Lower-case host.
    pub host: &'a str,
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Raw query string.
    pub query: Option<&'a str>,
    /// `Content-Type`, if any.
    pub content_type: Option<&'a str>,
    /// `Prefer` (every field of it, joined), if any: PostgREST reads the kind of write from it.
    pub prefer: Option<&'a str>,
    /// The body: decoded for [`recognise`], as sent for [`examine`].
    pub body: &'a Bytes,
}

/// Decodes the body of `sent` (sent with `encoding`, at most `limit` bytes decoded; text in another
/// charset read into UTF-8) and recognises what it carries; `Err` says why the body cannot be
/// inspected (undecodable, not valid in its charset, a multipart body that does not parse or has a
/// part that is not text, JSON that does not parse, batched tool calls, several SQL statements).
pub fn examine(
    sent: Request<'_>,
    encoding: Option<&str>,
    limit: usize,
    config: &InspectConfig,
) -> Result<(Bytes, Recognised), String> {
    let decoded = decode(sent.body.clone(), encoding, limit).map_err(|e| e.to_string())?;
    let (decoded, content_type) = match charset::transcode(sent.content_type, &decoded)? {
        // Read into UTF-8, text may grow (one windows-1252 byte is three): still within `limit`.
        Some((text, _)) if text.len() > limit => {
            return Err(BodyError::TooLarge(limit).to_string());
        }
        Some((text, content_type)) => (Bytes::from(text), Some(content_type)),
        None => (decoded, None),
    };
    let request = Request {
        body: &decoded,
        content_type: content_type.as_deref().or(sent.content_type),
        ..sent
    };
    form::parse(request.content_type.unwrap_or_default(), &decoded)?;
    let mut recognised = recognise(&request, config);
    recognised.content_type = content_type;
    match recognised.unreadable.take() {
        Some(problem) => Err(problem),
        None => Ok((decoded, recognised)),
    }
}

/// Recognises what a request carries: an MCP tool call, a REST endpoint named as a tool, an LLM
/// call, SQL in named fields, a PostgREST request.
pub fn recognise(request: &Request<'_>, config: &InspectConfig) -> Recognised {
    let json = parse_json(request.body);
    // Configured REST tools first: what config names cannot be re-labelled by the body.
    let rest = config.rest_tools.iter().find(|t| {
        t.host.matches(request.host)
            && (t.method.is_empty() || t.method.eq_ignore_ascii_case(request.method))
            && t.path.is_match(request.path)
    });
    let (tool, jsonrpc_id) = match (rest, json.as_ref().and_then(mcp::recognise)) {
        (Some(rest), _) => {
            let arguments = json.clone().unwrap_or_else(|| form_fields(request));
            (
                Some(ToolFacts {
                    name: rest.name.clone(),
                    arguments,
                }),
                None,
            )
        }
        (None, Some(call)) => (Some(call.tool), Some(call.id)),
        (None, None) => (None, None),
    };
    let llm = json
        .as_ref()
        .and_then(|j| llm::recognise(request.host, request.path, j));
    let arguments = tool.as_ref().map(|t| &t.arguments);
    let (data, unreadable) = match sql_in([arguments, json.as_ref()], config) {
        Err(problem) => (None, Some(problem)),
        Ok(found) => {
            let data = found.or_else(|| {
                postgrest::postgrest(request.method, request.path, request.query, request.prefer)
            });
            let problem = beyond_judging(data.as_ref(), llm.as_ref())
                .or_else(|| unreadable(request, json.as_ref()))
                .or_else(|| {
                    llm.as_ref()
                        .zip(json.as_ref())
                        .and_then(|(l, j)| llm::loose_stream(l, j))
                });
            (data, problem)
        }
    };
    Recognised {
        llm,
        tool,
        data,
        jsonrpc_id,
        json,
        unreadable,
        content_type: None,
    }
}

/// Why recognised facts cannot be judged, if they cannot: several statements, SQL too long to
/// parse, or more names or tools than rules may iterate.
fn beyond_judging(data: Option<&DataFacts>, llm: Option<&LlmFacts>) -> Option<String> {
    match (data, llm) {
        (Some(d), _) if d.statement == sql::MULTIPLE => {
            Some("several SQL statements in one call cannot be judged one by one".to_string())
        }
        (Some(d), _) if d.statement == sql::TOO_LARGE => Some(format!(
            "SQL longer than {} bytes is not parsed, so it cannot be judged",
            sql::MAX_SQL
        )),
        (Some(d), _) if d.tables.len().max(d.columns.len()) > sql::MAX_NAMES => Some(format!(
            "SQL naming more than {} tables or columns cannot be judged",
            sql::MAX_NAMES
        )),
        (_, Some(l)) if l.tools.len() > sql::MAX_NAMES => Some(format!(
            "an LLM call declaring more than {} tools cannot be judged",
            sql::MAX_NAMES
        )),
        _ => None,
    }
}

/// Why a body that says it is JSON cannot be judged, if it cannot (a member named twice in one
/// object counts as such: the value the proxy would not see could be the one the upstream reads).
fn unreadable(request: &Request<'_>, json: Option<&Value>) -> Option<String> {
    let first = request
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    let says_json = request
        .content_type
        .is_some_and(|c| c.to_ascii_lowercase().contains("json"))
        || matches!(first, Some(b'{') | Some(b'['));
    if first.is_none() || !says_json {
        return None;
    }
    // A body read into `json` was read by a parse that fails on a member named twice.
    if json.is_none() && crate::pii::names_a_member_twice(request.body) {
        return Some(
            "the JSON body names a member twice in one object; servers disagree on which value \
             counts, so it cannot be judged"
                .to_string(),
        );
    }
    if json.is_some() {
        return None;
    }
    match serde_json::from_slice::<Value>(request.body) {
        Ok(Value::Array(items))
            if items
                .iter()
                .any(|i| i.get("method").and_then(Value::as_str) == Some("tools/call")) =>
        {
            Some("batched JSON-RPC tool calls cannot be judged one by one".to_string())
        }
        Ok(Value::Object(_)) | Ok(Value::Array(_)) => None,
        Ok(_) => None,
        Err(e) => Some(format!(
            "the body is declared as JSON but does not parse ({e})"
        )),
    }
}

/// A `Content-Type` without its parameters, lower-case (`Text/Plain; charset=x` → `text/plain`).
fn bare_type(content_type: &str) -> String {
    let bare = content_type.split(';').next().unwrap_or_default();
    bare.trim().to_ascii_lowercase()
}

/// The body facts every rule can read: size, content type, JSON, form fields and text parts.
/// `json` is the body already parsed by [`recognise`].
pub fn body_facts(decoded: &Bytes, content_type: Option<&str>, json: Option<Value>) -> BodyFacts {
    let content_type = content_type.unwrap_or_default();
    let bare = bare_type(content_type);
    // A multipart body that does not parse was not inspected (see `examine`); an answer's shows
    // no fields.
    let form = form::parse(content_type, decoded).unwrap_or_default();
    let mut text = form.texts;
    if bare.starts_with("text/") {
        text.push(String::from_utf8_lossy(decoded).into_owned());
    }
    BodyFacts {
        size: decoded.len() as u64,
        content_type: bare,
        json: json.unwrap_or(Value::Null),
        form: form.fields,
        text,
        part_heads: form.heads,
        part_spans: form.spans,
        inspected: true,
        problem: String::new(),
    }
}

/// The body facts of a request whose body could not be inspected for `problem`: its content type
/// and why, nothing else.
pub fn uninspected_body(content_type: Option<&str>, problem: String) -> BodyFacts {
    BodyFacts {
        content_type: content_type
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
        inspected: false,
        problem,
        ..BodyFacts::default()
    }
}

/// An upstream's answer (sent with `encoding`) decoded, and its body facts. A streamed answer
/// (server-sent events) is read as the text its events carry, so data split across tokens is
/// found.
pub fn answer(
    raw: Bytes,
    encoding: Option<&str>,
    content_type: Option<&str>,
    limit: usize,
) -> Result<(Bytes, BodyFacts), BodyError> {
    let decoded = decode(raw, encoding, limit)?;
    let body = answer_body(&decoded, content_type);
    Ok((decoded, body))
}

fn answer_body(decoded: &Bytes, content_type: Option<&str>) -> BodyFacts {
    let first = decoded.iter().find(|b| !b.is_ascii_whitespace());
    let json = matches!(first, Some(b'{' | b'['))
        .then(|| serde_json::from_slice(decoded).ok())
        .flatten();
    let mut body = body_facts(decoded, content_type, json);
    if body.content_type == "text/event-stream" {
        body.text = vec![crate::pii::stream_text(decoded)];
    }
    body
}

/// The body when it is one JSON object naming no member twice (such a body is refused by
/// [`unreadable`], whose own check then runs), read in one pass.
fn parse_json(body: &Bytes) -> Option<Value> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    crate::pii::parse_unique(body)
}

/// Form fields (`a=1&b=2`) as a JSON object of strings; empty when the body is not a form. A
/// repeated field keeps every value (servers disagree on which one counts), as in `body.form`.
fn form_fields(request: &Request<'_>) -> Value {
    let is_form = request.content_type.is_some_and(|c| {
        c.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let mut fields = serde_json::Map::new();
    if is_form {
        for (key, value) in crate::policy::fields_of(request.body) {
            fields.insert(key, Value::String(value));
        }
    }
    Value::Object(fields)
}

/// The SQL in the fields named `sql_fields` of `objects` (tool arguments, the body), each text
/// once: its facts, `None` when there is none, or why it cannot be judged (SQL the parser cannot
/// read). SQL in more than one field is several statements.
fn sql_in(
    objects: [Option<&Value>; 2],
    config: &InspectConfig,
) -> Result<Option<DataFacts>, String> {
    let mut texts: Vec<(&str, &str)> = Vec::new();
    for object in objects.into_iter().flatten() {
        for field in &config.sql_fields {
            if let Some(text) = object.get(field).and_then(Value::as_str)
                && !texts.iter().any(|(_, seen)| *seen == text)
            {
                texts.push((field, text));
            }
        }
    }
    let mut found: Option<DataFacts> = None;
    for (field, text) in texts {
        match sql::read(text) {
            sql::Reading::NotSql => {}
            sql::Reading::Unreadable
                if config.prose_fields.iter().any(|f| f == field) && !sql::shows_code(text) => {}
            sql::Reading::Unreadable => {
                return Err(format!(
                    "the SQL in field `{field}` cannot be parsed, so it cannot be judged"
                ));
            }
            sql::Reading::Parsed(facts) => {
                found = Some(match found {
                    None => facts,
                    Some(mut first) => {
                        first.statement = sql::MULTIPLE.to_string();
                        for kind in facts.statements {
                            sql::push_unique(&mut first.statements, kind);
                        }
                        first
                    }
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod llm_tests;
#[cfg(test)]
mod repeated_tests;
