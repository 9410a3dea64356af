//! Loading the policy folder: every `*.yaml` / `*.yml` file in it, in name order, parsed and checked
//! by [`crate::policy`], plus a content hash that every decision records as the policy version.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest::{Context, SHA256};
use serde_saphyr::Spanned;

use super::ConfigError;
use crate::policy::{Policies, PolicySet, parse_policy_file};

/// The starter policy compiled into the binary, used with the embedded config when no policy folder
/// exists where it points.
pub const EMBEDDED_POLICY: &str = include_str!("../../config/policies/default.yaml");

/// Where policies are looked for when the config does not say.
pub const DEFAULT_POLICY_DIR: &str = "config/policies";

/// Loads the policy folder named by `dir` (or the default one).
pub fn load(
    dir: Option<&Spanned<String>>,
    config_file: &str,
    embedded_config: bool,
    extras: &[(String, String)],
) -> Result<Policies, ConfigError> {
    let folder = PathBuf::from(dir.map_or(DEFAULT_POLICY_DIR, |d| d.value.trim()));
    if !folder.is_dir() {
        if dir.is_none() && embedded_config {
            let mut texts = vec![(
                "<embedded>/default.yaml".to_string(),
                EMBEDDED_POLICY.to_string(),
            )];
            texts.extend_from_slice(extras);
            return from_texts(texts, "<embedded>");
        }
        return Err(ConfigError::Invalid {
            place: super::Place {
                file: config_file.to_string(),
                line: dir.map(|d| d.referenced.line()),
                key: "policies.dir".to_string(),
            },
            message: format!("policy folder `{}` does not exist", folder.display()),
        });
    }
    let mut texts = read_folder(&folder)?;
    texts.extend_from_slice(extras);
    from_texts(texts, &folder.display().to_string())
}

fn read_folder(folder: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let io = |path: &Path, source| ConfigError::Read {
        file: path.display().to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| io(folder, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_policy_file(p))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}

/// Policy files are `*.yaml` / `*.yml`, except policy tests (`*.test.yaml`), which `gatehouse test`
/// runs.
pub fn is_policy_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !is_policy_test_file(path)
}

/// Policy test files: `*.test.yaml` / `*.test.yml`.
pub fn is_policy_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

/// Parses and checks policy texts named by file; hashes them into the version.
pub fn from_texts(texts: Vec<(String, String)>, source: &str) -> Result<Policies, ConfigError> {
    let mut rules = Vec::new();
    for (file, text) in &texts {
        rules.extend(parse_policy_file(text, file)?);
    }
    Ok(Policies {
        set: Arc::new(PolicySet::new(rules)?),
        version: version_of(&texts),
        source: source.to_string(),
        commit: git_commit(Path::new(source)),
    })
}

/// The policy version: the first 16 hex digits of SHA-256 over the files' names and contents.
fn version_of(texts: &[(String, String)]) -> String {
    let mut hash = Context::new(&SHA256);
    for (file, text) in texts {
        hash.update(file.rsplit('/').next().unwrap_or(file).as_bytes());
        hash.update(&[0]);
        hash.update(text.as_bytes());
        hash.update(&[0]);
    }
    hex::encode(&hash.finish().as_ref()[..8])
}

/// Loads the policies of `folder` (for `gatehouse replay`, which judges under other policies).
pub fn load_folder(folder: &Path) -> Result<Policies, ConfigError> {
    from_texts(read_folder(folder)?, &folder.display().to_string())
}

/// Reloads `folder` (with the config's `extras`: templates, residency rules) unless its content still hashes to `current_version`: `Ok(None)` when
/// unchanged, the new policies when changed and valid, the error when changed and invalid.
pub fn reload(
    folder: &Path,
    current_version: &str,
    extras: &[(String, String)],
) -> Result<Option<Policies>, ConfigError> {
    let mut texts = read_folder(folder)?;
    texts.extend_from_slice(extras);
    if version_of(&texts) == current_version {
        return Ok(None);
    }
    from_texts(texts, &folder.display().to_string()).map(Some)
}

/// The commit checked out in the git work tree holding `folder`, read from `.git` directly.
fn git_commit(folder: &Path) -> Option<String> {
    let start = std::path::absolute(folder).ok()?;
    let git = start
        .ancestors()
        .map(|dir| dir.join(".git"))
        .find(|g| g.is_dir())?;
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return Some(head.to_string());
    };
    if let Ok(commit) = std::fs::read_to_string(git.join(reference)) {
        return Some(commit.trim().to_string());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed
        .lines()
        .find_map(|line| line.strip_suffix(reference).map(|c| c.trim().to_string()))
}

/// Checks that every `redact.kinds` entry names a kind the scanner knows: a built-in kind, a group
/// (`any`, `pii`, `national_id`), or a configured detector. A typo would otherwise redact nothing.
pub fn check_redact_kinds(policies: &Policies, custom: &[String]) -> Result<(), ConfigError> {
    for rule in policies.set.rules() {
        for crate::policy::Obligation::Redact { kinds, .. } in &rule.obligations {
            let unknown = kinds.iter().find(|k| {
                crate::pii::Kind::builtin(k).is_none()
                    && !crate::pii::GROUPS.contains(&k.as_str())
                    && !custom.contains(k)
            });
            if let Some(kind) = unknown {
                return Err(ConfigError::Policy(crate::policy::PolicyError {
                    file: rule.origin.file.clone(),
                    line: Some(rule.origin.line),
                    rule: rule.id.clone(),
                    message: format!(
                        "redact names `{kind}`, which is no PII kind: use a built-in kind \
                         (see `gatehouse scan`), a group (any, pii, national_id) or a detector \
                         from the config's `pii` section"
                    ),
                }));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_of_a_git_checkout_is_found_from_head_or_packed_refs() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        let policies = dir.path().join("config/policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(
            git.join("packed-refs"),
            "# pack-refs\nabc123 refs/heads/main\n",
        )
        .unwrap();
        assert_eq!(git_commit(&policies).as_deref(), Some("abc123"));
        std::fs::write(git.join("refs/heads/main"), "def456\n").unwrap();
        assert_eq!(git_commit(&policies).as_deref(), Some("def456"));
        std::fs::write(git.join("HEAD"), "0123abcd\n").unwrap();
        assert_eq!(git_commit(&policies).as_deref(), Some("0123abcd"));
        assert_eq!(git_commit(Path::new("/")), None);
    }
}
