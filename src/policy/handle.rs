//! The policies in force: a validated rule set with its version, and the handle every reader
//! shares (the judge, the reloader, the admin API). A reload swaps the whole set at once, so each
//! decision is made under one version.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::PolicySet;

/// The validated policies in force.
#[derive(Debug, Clone)]
pub struct Policies {
    /// The rules, indexed.
    pub set: Arc<PolicySet>,
    /// Content hash of the policy files (first 16 hex digits of SHA-256).
    pub version: String,
    /// The folder they came from (`<embedded>` for the starter policy).
    pub source: String,
    /// The git commit checked out, when the folder is in a git checkout.
    pub commit: Option<String>,
}

/// The policies in force, shared; swapped whole when they are reloaded.
pub struct PolicyHandle(ArcSwap<Policies>);

impl PolicyHandle {
    /// A handle with `policies` in force.
    pub fn new(policies: Policies) -> PolicyHandle {
        PolicyHandle(ArcSwap::from_pointee(policies))
    }

    /// The policies in force now; one decision reads one version through this.
    pub fn load(&self) -> Guard<Arc<Policies>> {
        self.0.load()
    }

    /// The version in force.
    pub fn version(&self) -> String {
        self.0.load().version.clone()
    }

    /// Puts `policies` in force for every decision from now on.
    pub fn replace(&self, policies: Policies) {
        self.0.store(Arc::new(policies));
    }
}
