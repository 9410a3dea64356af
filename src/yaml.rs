//! Where a YAML error is, as every file error of ours names it: the line, the key on that line,
//! and the message without serde-saphyr's location suffix. Shared by the config and policy files.

/// A YAML error as (line, the key written on that line, message without the location suffix):
/// the parts every file error of ours names.
pub fn yaml_error_parts(err: &serde_saphyr::Error, text: &str) -> (Option<u64>, String, String) {
    let line = err.location().map(|l| l.line()).filter(|l| *l > 0);
    let key = line
        .and_then(|l| text.lines().nth((l - 1) as usize))
        .map(key_on_line)
        .unwrap_or_default();
    let options = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let rendered = err.render_with_options(options);
    let first_line = rendered.lines().next().unwrap_or_default();
    let message = match first_line.rsplit_once(" at line ") {
        Some((head, _)) => head.to_string(),
        None => first_line.to_string(),
    };
    (line, key, message)
}

/// The mapping key written on a YAML line (`  - id: x` → `id`), or the line itself when it has none.
fn key_on_line(line: &str) -> String {
    let trimmed = line.trim_start().trim_start_matches("- ").trim();
    match trimmed.split_once(':') {
        Some((key, _)) => key.trim().trim_matches(['"', '\'']).to_string(),
        None => trimmed.to_string(),
    }
}
