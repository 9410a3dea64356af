//! Policy tests, the way `opa test` users expect them: YAML files of requests with the verdict each
//! must get. Pure: the caller reads the files and prints the results.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::facts::{AgentFacts, BodyFacts, DestinationFacts, Facts, RequestFacts};
use super::model::{Obligation, Trigger};
use super::parse::{PolicyError, yaml_error};
use super::resolve::{Decision, PolicySet};

/// A request described by hand: what `gatehouse test` cases and `gatehouse explain` judge.
#[derive(Debug, Clone, Default)]
pub struct RequestSpec {
    /// Agent id (`anonymous` when absent).
    pub agent: Option<String>,
    /// Team (from config when the agent is declared there).
    pub team: Option<String>,
    /// Environment (from config when the agent is declared there).
    pub env: Option<String>,
    /// Trigger (`http.request` when absent).
    pub trigger: Option<String>,
    /// Method (`GET`, or `CONNECT` for the connect trigger, when absent).
    pub method: Option<String>,
    /// Absolute URL.
    pub url: String,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Destination IP the proxy would connect to.
    pub destination: Option<String>,
    /// The destination's country (ISO 3166-1 alpha-2), instead of locating the IP.
    pub country: Option<String>,
    /// Request body (recognised like a live request's by the caller).
    pub body: Option<String>,
}

impl RequestSpec {
    /// The facts this request presents to the policy.
    pub fn facts(&self) -> Result<Facts, String> {
        let trigger = match &self.trigger {
            None => Trigger::HttpRequest,
            Some(name) => {
                Trigger::parse(name).ok_or_else(|| format!("unknown trigger `{name}`"))?
            }
        };
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|e| format!("url `{}`: {e}", self.url))?;
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let authority = uri
            .authority()
            .ok_or_else(|| format!("url `{}` has no host", self.url))?;
        let default_port = if scheme == "http" { 80 } else { 443 };
        let method = match (&self.method, trigger) {
            (Some(m), _) => m.to_ascii_uppercase(),
            (None, Trigger::Connect) => "CONNECT".to_string(),
            (None, _) => "GET".to_string(),
        };
        let query = uri
            .query()
            .map(|q| super::facts::fields_of(q.as_bytes()))
            .unwrap_or_default();
        Ok(Facts {
            trigger,
            agent: AgentFacts {
                id: self
                    .agent
                    .clone()
                    .unwrap_or_else(|| "anonymous".to_string()),
                team: self.team.clone(),
                env: self.env.clone(),
                execution: None,
                labels: BTreeMap::new(),
            },
            request: RequestFacts {
                method,
                scheme,
                host: authority.host().trim_end_matches('.').to_ascii_lowercase(),
                host_is_ip: super::facts::is_ip_literal(authority.host()),
                port: authority.port_u16().unwrap_or(default_port),
                path: uri.path().to_string(),
                query,
                websocket: self.headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("upgrade") && v.eq_ignore_ascii_case("websocket")
                }),
                headers: self
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
            },
            destination: DestinationFacts {
                ip: self.destination.clone().unwrap_or_default(),
                country: "unknown".into(),
                continent: "unknown".into(),
                ..DestinationFacts::default()
            },
            llm: None,
            tool: None,
            data: None,
            body: BodyFacts::default(),
            pii: Default::default(),
            response: None,
            unmetered: None,
        })
    }
}

/// What a test case expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `allow`, `deny` or `hold`.
    pub effect: String,
    /// The deciding rules, when the case checks them (`[]`: the default deny).
    #[serde(default)]
    pub rules: Option<Vec<String>>,
    /// Kinds the verdict must redact, when the case checks them.
    #[serde(default)]
    pub redact: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Spanned<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    trigger: Option<String>,
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    body: Option<String>,
    /// A JSON body written as YAML (sent with `content-type: application/json`).
    #[serde(default)]
    json: Option<serde_json::Value>,
    expect: Expectation,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTests {
    /// Policy files (relative to the test file) the cases are judged by instead of the config's.
    #[serde(default)]
    policies: Vec<String>,
    tests: Vec<RawCase>,
}

/// A parsed test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// Policy files, relative to the test file, to judge by instead of the config's policies
    /// (templates are tested this way); empty: the config's.
    pub policies: Vec<String>,
    pub cases: Vec<TestCase>,
}

/// One test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    /// Where it is written (`file:line`).
    pub at: String,
    pub request: RequestSpec,
    /// What it must get.
    pub expect: Expectation,
}

fn with_json_type(mut headers: BTreeMap<String, String>, json: bool) -> BTreeMap<String, String> {
    if json
        && !headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
    {
        headers.insert("content-type".into(), "application/json".into());
    }
    headers
}

/// Parses a test file.
pub fn parse_test_file(text: &str, file: &str) -> Result<TestFile, PolicyError> {
    let raw: RawTests = serde_saphyr::from_str(text).map_err(|err| yaml_error(&err, text, file))?;
    let cases = raw
        .tests
        .into_iter()
        .map(|case| TestCase {
            at: format!("{file}:{}", case.name.referenced.line()),
            name: case.name.value,
            request: RequestSpec {
                agent: case.agent,
                team: case.team,
                env: case.env,
                trigger: case.trigger,
                method: case.method,
                url: case.url,
                headers: with_json_type(case.headers, case.json.is_some()),
                destination: case.destination,
                country: case.country,
                body: case.json.map(|j| j.to_string()).or(case.body),
            },
            expect: case.expect,
        })
        .collect();
    Ok(TestFile {
        policies: raw.policies,
        cases,
    })
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Where it is written.
    pub at: String,
    /// Empty when it passed; otherwise what differed.
    pub failures: Vec<String>,
}

/// Runs `cases` against `policy`; `facts_of` turns a case's request into facts (the caller adds
/// what recognising its body yields, as for a live request).
pub fn run_tests(
    policy: &PolicySet,
    cases: &[TestCase],
    facts_of: &dyn Fn(&RequestSpec) -> Result<Facts, String>,
) -> Vec<CaseResult> {
    cases
        .iter()
        .map(|case| CaseResult {
            name: case.name.clone(),
            at: case.at.clone(),
            failures: match facts_of(&case.request) {
                Ok(facts) => compare(&policy.evaluate(&facts), &case.expect),
                Err(e) => vec![e],
            },
        })
        .collect()
}

fn compare(verdict: &Decision, expect: &Expectation) -> Vec<String> {
    let mut failures = Vec::new();
    let effect = verdict.effect().name();
    if effect != expect.effect {
        failures.push(format!(
            "effect: expected {}, got {effect} (rules: {:?})",
            expect.effect, verdict.deciding
        ));
    }
    if let Some(rules) = &expect.rules
        && *rules != verdict.deciding
    {
        failures.push(format!(
            "deciding rules: expected {rules:?}, got {:?}",
            verdict.deciding
        ));
    }
    if let Some(kinds) = &expect.redact {
        let mut got: Vec<String> = verdict
            .obligations()
            .iter()
            .flat_map(|Obligation::Redact { kinds, .. }| kinds.iter().cloned())
            .collect();
        got.sort();
        got.dedup();
        let mut want = kinds.clone();
        want.sort();
        if got != want {
            failures.push(format!("redact: expected {want:?}, got {got:?}"));
        }
    }
    failures
}
