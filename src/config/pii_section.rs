//! The `pii` section: dictionaries (inline or from a file), named regexes, internal email
//! domains, the hash key, and the pseudonym vault's bounds.

use super::compile::{Compiler, positive};
use super::raw::{RawConfig, RawDictionary};
use super::{ConfigError, PiiConfig, Secret};
use crate::pii::{Dictionary, GROUPS, Kind, Pattern, PhoneRegions, ScannerConfig};

/// Headers that carry credentials on purpose besides the API key headers
/// ([`crate::credentials::KEY_HEADERS`]): never scanned for personal data.
const CREDENTIAL_HEADERS: [&str; 10] = [
    "proxy-authorization",
    "cookie",
    "x-auth-token",
    "x-access-token",
    "x-csrf-token",
    "x-amz-security-token",
    "ocp-apim-subscription-key",
    "private-token",
    "x-vault-token",
    "x-functions-key",
];

/// The headers header scanning leaves out: the provider key headers, the other credential
/// headers, every header a brokered credential goes in, and those `pii.unscanned_headers` names.
fn unscanned_headers(raw: &RawConfig) -> Vec<String> {
    let brokered = raw
        .credentials
        .iter()
        .filter_map(|c| c.header.as_ref())
        .map(|h| h.value.as_str());
    let mut names: Vec<String> = crate::credentials::KEY_HEADERS
        .iter()
        .chain(&CREDENTIAL_HEADERS)
        .copied()
        .chain(brokered)
        .chain(raw.pii.unscanned_headers.iter().map(String::as_str))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Internal email suffixes accepted when none are configured.
const DEFAULT_INTERNAL_DOMAINS: [&str; 5] = ["internal", "local", "localdomain", "lan", "corp"];

impl Compiler<'_> {
    pub(super) fn pii(&self, raw: &RawConfig) -> Result<PiiConfig, ConfigError> {
        let p = &raw.pii;
        let mut names: Vec<String> = Vec::new();
        let mut check_name = |name: &serde_saphyr::Spanned<String>, key: &str| {
            let value = name.value.trim().to_string();
            let shaped = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            let taken = Kind::builtin(&value).is_some()
                || GROUPS.contains(&value.as_str())
                || names.contains(&value);
            if !shaped || taken {
                return Err(self.invalid(
                    Some(&name.referenced),
                    key,
                    format!(
                        "`{value}` cannot name a detector: use lower-case letters, digits and `_`, \
                         and a name no built-in kind, group or other detector has"
                    ),
                ));
            }
            names.push(value.clone());
            Ok(value)
        };
        let mut dictionaries = Vec::new();
        for (i, d) in p.dictionaries.iter().enumerate() {
            let key = format!("pii.dictionaries[{i}]");
            let name = check_name(&d.name, &format!("{key}.name"))?;
            dictionaries.push(Dictionary {
                name,
                words: self.dictionary_words(d, &key)?,
            });
        }
        let mut patterns = Vec::new();
        for (i, pattern) in p.patterns.iter().enumerate() {
            let key = format!("pii.patterns[{i}]");
            let name = check_name(&pattern.name, &format!("{key}.name"))?;
            let regex = regex::RegexBuilder::new(&pattern.regex.value)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    self.invalid(
                        Some(&pattern.regex.referenced),
                        &format!("{key}.regex"),
                        e.to_string(),
                    )
                })?;
            patterns.push(Pattern { name, regex });
        }
        let internal_domains = p.internal_domains.clone().unwrap_or_else(|| {
            DEFAULT_INTERNAL_DOMAINS
                .iter()
                .map(|d| d.to_string())
                .collect()
        });
        let phone_regions = match &p.phone_regions {
            None => PhoneRegions::default(),
            Some(codes) => PhoneRegions::new(&codes.value).map_err(|e| {
                self.invalid(Some(&codes.referenced), "pii.phone_regions", e.to_string())
            })?,
        };
        let hash_key = self.secret(
            &p.hash_key_env,
            &p.hash_key_file,
            "pii",
            "hash_key",
            "PII hash key",
        )?;
        Ok(PiiConfig {
            scanner: ScannerConfig {
                internal_domains,
                dictionaries,
                patterns,
                phone_regions,
            },
            hash_key: hash_key.map(Secret::new),
            scan_headers: p.scan_headers.unwrap_or(true),
            unscanned_headers: unscanned_headers(raw),
            vault_max_executions: positive(
                self,
                &p.vault.max_executions,
                "pii.vault.max_executions",
                10_000,
            )?,
            vault_max_values: positive(self, &p.vault.max_values, "pii.vault.max_values", 1_000)?,
            vault_idle: self.duration(&p.vault.idle, "pii.vault.idle", 3600)?,
        })
    }

    fn dictionary_words(&self, d: &RawDictionary, key: &str) -> Result<Vec<String>, ConfigError> {
        let mut words: Vec<String> = d.words.iter().map(|w| w.trim().to_string()).collect();
        if let Some(file) = &d.file {
            let field = format!("{key}.file");
            let path = self.existing_file(file, &field)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| self.invalid(Some(&file.referenced), &field, e.to_string()))?;
            words.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        words.retain(|w| !w.is_empty());
        if words.is_empty() {
            return Err(self.invalid(
                Some(&d.name.referenced),
                key,
                "a dictionary needs `words` or a `file` with at least one entry",
            ));
        }
        Ok(words)
    }
}
