//! The rules of the house, read off `src/`: which module may import which, which modules stay
//! pure, no import circles between modules, no unsafe code, and the sizes that keep files
//! readable. Test code (`#[cfg(test)]` modules and the files they name) is not held to them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that may not import these.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("proxy", &["policy", "pii", "budget", "pipeline", "config"]),
    ("policy", &["config", "store", "proxy"]),
    ("pii", &["config", "store", "proxy"]),
    ("inspect", &["config", "store", "proxy"]),
    ("geo", &["config", "store", "proxy"]),
    ("admin", &["pipeline"]),
    ("store", &["pipeline", "budget", "config"]),
    ("config", &["pipeline", "app", "admin"]),
    ("pipeline", &["config", "admin", "app"]),
    ("budget", &["pipeline", "config", "admin"]),
    ("approval", &["pipeline", "config", "admin"]),
    ("audit", &["pipeline", "config", "admin"]),
    ("stream", &["pipeline", "config"]),
    ("reload", &["pipeline", "admin"]),
    (
        "credentials",
        &["pipeline", "config", "admin", "budget", "store", "proxy"],
    ),
    ("socket", &["pipeline", "config", "admin"]),
    (
        "gateway",
        &[
            "pipeline", "config", "admin", "app", "policy", "pii", "budget", "store",
        ],
    ),
    (
        "telemetry",
        &["pipeline", "config", "admin", "app", "store", "approval"],
    ),
    ("firewall", &["pipeline", "admin", "app"]),
];

/// Modules that do no I/O: these may not appear in their code.
const PURE: &[&str] = &["policy", "pii", "inspect", "geo", "json_text"];
const IO: &[&str] = &[
    "std::fs",
    "tokio::fs",
    "tokio::net",
    "std::net::Tcp",
    "rusqlite",
];

/// The code of one source file, without comments and test modules.
struct Source {
    path: PathBuf,
    code: Vec<String>,
    lines: usize,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file under `src/`, by top-level module (`lib` and `main` for the roots).
fn modules() -> BTreeMap<String, Vec<Source>> {
    let mut modules: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    let mut files = Vec::new();
    collect(&src(), &mut files);
    let test_only = test_only_files(&files);
    for path in files {
        let relative = path.strip_prefix(src()).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a name")
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(&path).expect("readable");
        let lines = text.lines().count();
        let code = if test_only.contains(&path) {
            Vec::new()
        } else {
            without_tests(&text)
        };
        modules
            .entry(top)
            .or_default()
            .push(Source { path, code, lines });
    }
    modules
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Files that are test modules: declared right after `#[cfg(test)]` (`mod tests;`).
fn test_only_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(path).expect("readable");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            let declared = pair[1]
                .trim_start_matches("pub(crate) ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'));
            if let (true, Some(name)) = (pair[0] == "#[cfg(test)]", declared) {
                // `a/mod.rs` and `a.rs` declare their children in `a/`.
                let dir = match path.file_name().and_then(|n| n.to_str()) {
                    Some("mod.rs" | "lib.rs" | "main.rs") => path.parent().expect("dir").into(),
                    _ => path.with_extension(""),
                };
                found.insert(dir.join(format!("{name}.rs")));
                found.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    found
}

/// The lines of `text` that are code: comments dropped, and every `#[cfg(test)]` module body.
fn without_tests(text: &str) -> Vec<String> {
    let mut code = Vec::new();
    let mut skipping: Option<i64> = None;
    let mut test_attribute = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(depth) = skipping.as_mut() {
            *depth += braces(trimmed);
            if *depth <= 0 {
                skipping = None;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            test_attribute = true;
            continue;
        }
        if test_attribute && trimmed.contains("mod ") && trimmed.ends_with('{') {
            skipping = Some(braces(trimmed));
            test_attribute = false;
            continue;
        }
        test_attribute = false;
        code.push(line.to_string());
    }
    code
}

fn braces(line: &str) -> i64 {
    let open = line.matches('{').count() as i64;
    let close = line.matches('}').count() as i64;
    open - close
}

/// The top-level modules a file's code names as `crate::<module>`.
fn imports(code: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code {
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn modules_import_only_what_their_domain_allows() {
    let modules = modules();
    let mut broken = Vec::new();
    for (module, forbidden) in FORBIDDEN {
        for source in modules.get(*module).expect("module exists") {
            for import in imports(&source.code) {
                if forbidden.contains(&import.as_str()) {
                    broken.push(format!("{} imports {import}", source.path.display()));
                }
            }
        }
    }
    for module in PURE {
        for source in &modules[*module] {
            for line in &source.code {
                if let Some(io) = IO.iter().find(|io| line.contains(*io)) {
                    broken.push(format!("{} does I/O ({io})", source.path.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let modules = modules();
    let graph: BTreeMap<&str, BTreeSet<String>> = modules
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "lib" | "main"))
        .map(|(name, sources)| {
            let mut deps: BTreeSet<String> =
                sources.iter().flat_map(|s| imports(&s.code)).collect();
            deps.remove(name.as_str());
            (name.as_str(), deps)
        })
        .collect();
    for start in graph.keys() {
        // Every module reachable from `start`, with the path that reached it.
        let mut paths: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut queue = vec![(*start, vec![*start])];
        while let Some((at, path)) = queue.pop() {
            for next in graph.get(at).into_iter().flatten() {
                let next = next.as_str();
                let mut longer = path.clone();
                longer.push(next);
                assert!(next != *start, "import circle: {}", longer.join(" → "));
                if !paths.contains_key(next) && graph.contains_key(next) {
                    paths.insert(next, longer.clone());
                    queue.push((next, longer));
                }
            }
        }
    }
}

#[test]
fn no_unsafe_code_and_files_stay_small() {
    for root in ["lib.rs", "main.rs"] {
        let text = std::fs::read_to_string(src().join(root)).expect("root");
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{root} forbids unsafe code"
        );
    }
    let modules = modules();
    let long: Vec<String> = modules
        .values()
        .flatten()
        .filter(|s| s.lines > 500)
        .map(|s| format!("{} has {} lines", s.path.display(), s.lines))
        .collect();
    assert!(
        long.is_empty(),
        "split files past 500 lines:\n{}",
        long.join("\n")
    );
    let pipeline: usize = modules["pipeline"].iter().map(|s| s.lines).sum();
    assert!(
        pipeline <= 1330,
        "src/pipeline/ has {pipeline} lines: it only orders the steps, the domains own the logic"
    );
}
