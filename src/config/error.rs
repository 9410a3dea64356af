//! Errors found while reading or validating a config file. Each names the file, and where the
//! problem has a place in the YAML, its line and the key it sits under.

use std::fmt;

/// Where in a config file a problem sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file, as the operator named it (`<embedded>` for the built-in default).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// The dotted key path (`identity.agents[0].token_env`), or the key on that line.
    pub key: String,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: key `{}`", self.file, self.key),
            None => write!(f, "{}: key `{}`", self.file, self.key),
        }
    }
}

/// Why a config could not be used. The operator's side, always: the proxy does not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{file}: cannot read config: {source}")]
    Read {
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML or does not have the expected shape.
    #[error("{place}: {message}")]
    Syntax {
        /// Where.
        place: Place,
        /// What the parser said.
        message: String,
    },
    /// A policy file is invalid.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// Two policy rules share an id.
    #[error(transparent)]
    DuplicateRule(#[from] crate::policy::DuplicateRule),
    /// A value parsed but failed validation.
    #[error("{place}: {message}")]
    Invalid {
        /// Where.
        place: Place,
        /// What is wrong and what is expected.
        message: String,
    },
}
