//! The policy toolchain behind `gatehouse test`, `gatehouse explain` and `gatehouse replay`: reads
//! test files and audit files, fills in declared agents' teams and environments, runs the pure
//! policy code, and renders the results.

mod audit;
mod budget;
mod replay;
mod scan;

pub use crate::budget::{BudgetLine, PausedLine, SpendLine, SpendReport};
pub use audit::{AuditCheck, VerifyArgs, verify_audit};
pub use budget::{open_store, pause, reset_breaker, spend_report};
pub use scan::scan;

pub use replay::replay;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::policies::{check_redact_kinds, from_texts, is_policy_test_file};
use crate::config::{Config, IdentityConfig};
use crate::geo::Geo;
use crate::inspect;
use crate::pii::Redactor;
use crate::pipeline::destination_facts;
use crate::policy::{
    Consideration, DestinationFacts, Facts, PiiFacts, Policies, RequestSpec, parse_test_file,
    run_tests,
};
use crate::reload::build_geo;

/// Why the toolchain could not run.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A test file is invalid.
    #[error(transparent)]
    Invalid(#[from] crate::policy::PolicyError),
    /// No test file was found.
    #[error("no policy test files (*.test.yaml) under {0}")]
    NoTests(String),
    /// The request to explain is invalid.
    #[error("{0}")]
    Request(String),
    /// The PII detectors of the config could not be built.
    #[error(transparent)]
    Pii(#[from] crate::pii::ScannerError),
    /// The policies a test file names are invalid.
    #[error(transparent)]
    Policies(#[from] crate::config::ConfigError),
    /// The budget ledger could not be used.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The ledger's report could not be made.
    #[error(transparent)]
    Report(#[from] crate::budget::ReportError),
    /// The geo database of the config could not be opened.
    #[error(transparent)]
    Geo(#[from] crate::geo::MmdbError),
    /// An audit key could not be read.
    #[error(transparent)]
    AuditKey(#[from] crate::audit::KeyError),
    /// The audit index could not be read.
    #[error(transparent)]
    AuditIndex(#[from] crate::audit::StoreError),
}

/// The output of `gatehouse test`, and whether every case passed.
pub struct TestRun {
    /// Lines to print.
    pub report: String,
    /// Whether all cases passed.
    pub passed: bool,
}

/// Runs the policy tests in `paths` (files, or folders searched for `*.test.yaml`) against the
/// config's policies.
pub fn test(config: &Config, paths: &[PathBuf]) -> Result<TestRun, ToolError> {
    let pii = Redactor::new(&config.pii)?;
    let (geo, _) = build_geo(&config.geo)?;
    let files = test_files(paths)?;
    if files.is_empty() {
        let searched: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ToolError::NoTests(searched.join(", ")));
    }
    let mut report = String::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ToolError::Read {
            path: file.clone(),
            source,
        })?;
        let parsed = parse_test_file(&text, &file.display().to_string())?;
        let mut cases = parsed.cases;
        for case in &mut cases {
            with_declared_identity(&mut case.request, &config.identity);
        }
        let own = own_policies(&file, &parsed.policies, config)?;
        let policies = own.as_ref().unwrap_or(&config.policies);
        let facts_of = |request: &RequestSpec| facts_with_body(config, (&pii, &geo), request);
        for result in run_tests(&policies.set, &cases, &facts_of) {
            if result.failures.is_empty() {
                passed += 1;
                let _ = writeln!(report, "PASS {} ({})", result.name, result.at);
            } else {
                failed += 1;
                let _ = writeln!(report, "FAIL {} ({})", result.name, result.at);
                for failure in &result.failures {
                    let _ = writeln!(report, "     {failure}");
                }
            }
        }
    }
    let _ = writeln!(report, "{passed} passed, {failed} failed");
    Ok(TestRun {
        report,
        passed: failed == 0,
    })
}

/// The policies a test file names (`policies: [...]`, relative to it), when it names any.
fn own_policies(
    test_file: &Path,
    names: &[String],
    config: &Config,
) -> Result<Option<Policies>, ToolError> {
    if names.is_empty() {
        return Ok(None);
    }
    let dir = test_file.parent().unwrap_or(Path::new("."));
    let mut texts = Vec::new();
    for name in names {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|source| ToolError::Read {
            path: path.clone(),
            source,
        })?;
        texts.push((path.display().to_string(), text));
    }
    let policies = from_texts(texts, &dir.display().to_string())?;
    check_redact_kinds(&policies, &config.pii.custom_kinds())?;
    Ok(Some(policies))
}

/// The test files among `paths`: files as named, and every `*.test.yaml` in a folder and its
/// subfolders, in name order.
fn test_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ToolError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            tests_under(path, &mut found)?;
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn tests_under(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), ToolError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ToolError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        // A linked folder is not followed: a link back up would never end.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            tests_under(&path, found)?;
        } else if path.is_file() && is_policy_test_file(&path) {
            found.push(path);
        }
    }
    Ok(())
}

/// Team and environment come from the config when the case names a declared agent and does not
/// set them itself.
fn with_declared_identity(request: &mut RequestSpec, identity: &IdentityConfig) {
    let declared = request
        .agent
        .as_deref()
        .and_then(|id| identity.agents.iter().find(|a| a.id == id));
    if let Some(agent) = declared {
        request.team = request.team.clone().or_else(|| agent.team.clone());
        request.env = request.env.clone().or_else(|| agent.env.clone());
    }
}

/// Explains the verdict on one request: every rule considered, why it did or did not apply, and
/// the result.
pub fn explain(config: &Config, mut request: RequestSpec) -> Result<String, ToolError> {
    with_declared_identity(&mut request, &config.identity);
    let pii = Redactor::new(&config.pii)?;
    let (geo, _) = build_geo(&config.geo)?;
    let facts = facts_with_body(config, (&pii, &geo), &request).map_err(ToolError::Request)?;
    let verdict = config.policies.set.explain(&facts);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} {} as agent `{}` (team {}, env {}) — policy version {}",
        facts.trigger,
        facts.request.method,
        request.url,
        facts.agent.id,
        facts.agent.team.as_deref().unwrap_or("-"),
        facts.agent.env.as_deref().unwrap_or("-"),
        config.policies.version
    );
    for considered in &verdict.considered {
        let outcome = match &considered.outcome {
            Consideration::OutOfScope => "skipped: agent outside the rule's scope".to_string(),
            Consideration::NoMatch(miss) => {
                format!("skipped: {miss:?} does not match").to_lowercase()
            }
            Consideration::ConditionFalse => "skipped: condition is false".to_string(),
            Consideration::ConditionError(e) => {
                format!("condition failed ({e}); counts against the agent")
            }
            Consideration::Applies => "applies".to_string(),
        };
        let monitor = if considered.monitor { " [monitor]" } else { "" };
        let _ = writeln!(
            out,
            "  {:<32} rank {:<11} {outcome}{monitor}",
            considered.rule,
            format!("{:?}", considered.rank).to_lowercase()
        );
    }
    let decided = if verdict.is_default_deny() {
        "no rule applies: denied by default".to_string()
    } else {
        format!("decided by {}", verdict.deciding.join(", "))
    };
    let _ = writeln!(out, "verdict: {} ({decided})", verdict.effect().name());
    for (rule, effect) in &verdict.monitored {
        let _ = writeln!(out, "monitor: {rule} would have said {}", effect.name());
    }
    Ok(out)
}

/// A hand-written request's facts, with its body recognised exactly as the proxy recognises a live
/// one (LLM, tool and data calls, form and text fields). Without an explicit trigger, the trigger is
/// the one recognition finds.
/// The facts the proxy would judge `request` by: recognised, with its body and the personal data
/// in it (query included).
fn facts_with_body(
    config: &Config,
    (pii, geo): (&Redactor, &Geo),
    request: &RequestSpec,
) -> Result<Facts, String> {
    let mut facts = request.facts()?;
    facts.destination = match (&request.country, &request.destination) {
        (Some(country), ip) => {
            DestinationFacts::in_country(ip.clone().unwrap_or_default(), country)
        }
        (None, Some(ip)) => {
            let ip: std::net::IpAddr = ip
                .parse()
                .map_err(|_| format!("destination `{ip}` is not an IP address"))?;
            destination_facts(&[std::net::SocketAddr::new(ip, 0)], geo)
        }
        (None, None) => facts.destination,
    };
    let Some(body) = &request.body else {
        facts.pii = PiiFacts::from_counts(detect(pii, &facts, &[]));
        return Ok(facts);
    };
    let body = bytes::Bytes::from(body.clone());
    let content_type = request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    let prefer: Vec<&str> = request
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("prefer"))
        .map(|(_, v)| v.as_str())
        .collect();
    let prefer = (!prefer.is_empty()).then(|| prefer.join(", "));
    let query = request.url.split_once('?').map(|(_, q)| q);
    let recognised = inspect::recognise(
        &inspect::Request {
            host: &facts.request.host,
            method: &facts.request.method,
            path: &facts.request.path,
            query,
            content_type,
            prefer: prefer.as_deref(),
            body: &body,
        },
        &config.inspect,
    );
    if let Some(reason) = recognised.unreadable {
        return Err(format!("the proxy would refuse this request: {reason}"));
    }
    if request.trigger.is_none() {
        facts.trigger = recognised.trigger();
    }
    facts.body = inspect::body_facts(&body, content_type, recognised.json);
    facts.llm = recognised.llm;
    facts.tool = recognised.tool;
    facts.data = recognised.data;
    facts.pii = PiiFacts::from_counts(detect(pii, &facts, &body));
    Ok(facts)
}

/// What the proxy's scanner finds in the request of `facts` carrying `body`.
fn detect(pii: &Redactor, facts: &Facts, body: &[u8]) -> std::collections::BTreeMap<String, u64> {
    let parts = facts.body.scanned(body);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&facts.request.query)
        .finish();
    let headers: Vec<(String, String)> = facts.request.headers.clone().into_iter().collect();
    let head = crate::pii::RequestHead {
        path: &facts.request.path,
        query: Some(query.as_str()).filter(|q| !q.is_empty()),
        headers: &headers,
    };
    pii.detect_request(&parts, &head)
}

/// The default place to look for policy tests: the policy folder.
pub fn default_test_path(config: &Config) -> PathBuf {
    Path::new(&config.policies.source).to_path_buf()
}
