//! CEL's `matches()`, with every pattern compiled once. The `cel` crate compiles the regex on
//! every call, so a rule's `request.path.matches('...')` cost a regex build per request, and a
//! pattern taken from the request (`x.matches(request.headers['p'])`) let an agent choose how
//! much work the proxy does. Here a pattern written in a condition is compiled when the policy
//! loads (a bad or oversized one fails the load) and kept while a condition holds it; any other
//! pattern goes through a bounded LRU cache. Every pattern is compiled under size limits, and the
//! `regex` crate matches in linear time. The semantics are CEL's: RE2 syntax, a match anywhere.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use cel::Env;
use cel::ExecutionError;
use cel::common::types::{CelBool, CelString};
use regex::{Regex, RegexBuilder};

/// Largest compiled program of one pattern (the `regex` crate's default is 10 MiB).
const SIZE_LIMIT: usize = 1 << 20;
/// Largest lazy-DFA cache of one pattern.
const DFA_SIZE_LIMIT: usize = 1 << 20;
/// Longest pattern compiled.
const MAX_PATTERN: usize = 4096;
/// Patterns not written in a condition that stay compiled.
const CACHED: usize = 256;

/// Patterns compiled so far: those conditions hold (weakly, dropped with their policies) and a
/// bounded cache of the others.
struct Patterns {
    held: Mutex<HashMap<String, Weak<Regex>>>,
    recent: Mutex<lru::LruCache<String, Arc<Regex>>>,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        held: Mutex::new(HashMap::new()),
        recent: Mutex::new(lru::LruCache::new(
            NonZeroUsize::new(CACHED).unwrap_or(NonZeroUsize::MIN),
        )),
    })
}

/// Compiles `pattern` under the size limits.
fn build(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!(
            "a regex of {} bytes is longer than the {MAX_PATTERN} allowed",
            pattern.len()
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("'{pattern}' is not a valid regex: {e}"))
}

/// Compiles a pattern written in a condition, when its policy loads. The condition keeps the
/// returned handle; while it does, every call with this pattern uses it.
pub fn hold(pattern: &str) -> Result<Arc<Regex>, String> {
    let patterns = patterns();
    let mut held = patterns.held.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(regex) = held.get(pattern).and_then(Weak::upgrade) {
        return Ok(regex);
    }
    let regex = Arc::new(build(pattern)?);
    // Patterns of policies that were replaced are forgotten.
    held.retain(|_, weak| weak.strong_count() > 0);
    held.insert(pattern.to_string(), Arc::downgrade(&regex));
    Ok(regex)
}

/// The compiled `pattern`: held by a condition, cached, or compiled now and cached.
fn lookup(pattern: &str) -> Result<Arc<Regex>, String> {
    let patterns = patterns();
    if let Some(regex) = patterns
        .held
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(pattern)
        .and_then(Weak::upgrade)
    {
        return Ok(regex);
    }
    let mut recent = patterns.recent.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(regex) = recent.get(pattern) {
        return Ok(regex.clone());
    }
    let regex = Arc::new(build(pattern)?);
    recent.put(pattern.to_string(), regex.clone());
    Ok(regex)
}

fn matches(this: &CelString<'_>, pattern: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let regex = lookup(pattern.inner()).map_err(|message| ExecutionError::FunctionError {
        function: "matches".to_string(),
        message,
    })?;
    Ok(CelBool::from(regex.is_match(this.inner())))
}

/// Registers `matches` (global and member form) on `env`, which must not have the `cel` crate's.
pub fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    cel::add_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>, id = "matches")?;
    cel::add_member_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_pattern_is_shared_and_forgotten_with_its_last_holder() {
        let first = hold("^/held/[0-9]+$").unwrap();
        let second = hold("^/held/[0-9]+$").unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert!(Arc::ptr_eq(&lookup("^/held/[0-9]+$").unwrap(), &first));
        drop((first, second));
        hold("^/other$").unwrap();
        let held = patterns().held.lock().unwrap();
        assert!(!held.contains_key("^/held/[0-9]+$"));
    }

    #[test]
    fn dynamic_patterns_are_cached_within_bounds() {
        for i in 0..CACHED + 10 {
            lookup(&format!("^dynamic-{i}$")).unwrap();
        }
        let recent = patterns().recent.lock().unwrap();
        assert!(recent.len() <= CACHED);
    }

    #[test]
    fn oversized_and_invalid_patterns_are_refused() {
        assert!(build("(foo").unwrap_err().contains("not a valid regex"));
        assert!(build(&"a".repeat(MAX_PATTERN + 1)).is_err());
        // Counted repetitions blow up the compiled program past the size limit.
        assert!(build(r"(?:\w{100}){100}").is_err());
        assert!(build("^[a-z]+$").is_ok());
    }
}
