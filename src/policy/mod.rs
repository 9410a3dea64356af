//! Policy-as-code: rules over request facts, CEL conditions, and the resolution that turns the
//! rules that apply into one verdict. Pure: no I/O, testable with plain values. Files are read by
//! the caller and handed to [`parse_policy_file`].

mod activation;
mod condition;
mod facts;
mod fast;
mod handle;
mod host_pattern;
mod matches;
mod model;
mod parse;
mod prune;
mod resolve;
mod ruling;
mod testing;

pub use activation::{Activation, Reads};
pub use condition::{Condition, ConditionError};
pub use facts::{
    AgentFacts, BodyFacts, DataFacts, DestinationFacts, Facts, LlmFacts, PiiFacts, RequestFacts,
    ResponseFacts, ToolFacts, VARIABLES, fields_of, is_ip_literal, join_repeated,
};
pub use handle::{Policies, PolicyHandle};
pub use host_pattern::{HostPattern, HostPatterns};
pub use model::{
    Effect, MatchMiss, Matcher, Mode, Obligation, Origin, Rank, RedactStyle, Rule, Scope, Trigger,
};
pub use parse::{PolicyError, parse_policy_file};
pub use resolve::{Consideration, Considered, Decision, DuplicateRule, PolicySet, Verdict};
pub use ruling::{Refusal, Subject};
pub use testing::{
    CaseResult, Expectation, RequestSpec, TestCase, TestFile, parse_test_file, run_tests,
};

#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod located_tests;
#[cfg(test)]
mod prune_tests;
#[cfg(test)]
mod tests;
