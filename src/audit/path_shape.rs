//! The shape of a request path as logs and the audit trail keep it: well-known API words and
//! version tags survive, every other segment (a name, an id, a secret) becomes `*`.

/// Path segments common in the APIs agents call. Only these (and version tags like `v1`,
/// `v1beta`) are logged; every other segment may be a name, an id or a secret and becomes `*`.
const PATH_WORDS: &[&str] = &[
    "api",
    "apis",
    "openai",
    "deployments",
    "chat",
    "completions",
    "embeddings",
    "responses",
    "messages",
    "models",
    "files",
    "uploads",
    "images",
    "generations",
    "edits",
    "variations",
    "audio",
    "speech",
    "transcriptions",
    "translations",
    "moderations",
    "batches",
    "threads",
    "runs",
    "steps",
    "assistants",
    "vector_stores",
    "fine_tuning",
    "jobs",
    "count_tokens",
    "complete",
    "mcp",
    "sse",
    "tools",
    "resources",
    "prompts",
    "rpc",
    "rest",
    "graphql",
    "query",
    "search",
    "sql",
    "data",
    "health",
    "status",
    "users",
    "accounts",
    "customers",
    "charges",
    "payments",
    "payment_intents",
    "refunds",
    "invoices",
    "orders",
    "items",
    "issues",
    "pulls",
    "repos",
    "projects",
    "records",
    "tables",
    "rows",
    "documents",
    "collections",
    "indexes",
    "objects",
    "buckets",
    "keys",
    "secrets",
    "tokens",
    "oauth",
    "token",
    "login",
    "auth",
    "web",
];

/// The path with every segment that could carry an identifier or a secret replaced by `*`.
pub fn path_shape(path: &str) -> String {
    let shaped: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let version = (2..=8).contains(&segment.len())
                && segment.starts_with('v')
                && segment[1..].starts_with(|c: char| c.is_ascii_digit())
                && segment[1..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
            if segment.is_empty() || version || PATH_WORDS.contains(&segment) {
                segment
            } else {
                "*"
            }
        })
        .collect();
    shaped.join("/")
}

#[cfg(test)]
mod tests {
    use super::path_shape;

    #[test]
    fn path_shape_hides_identifiers_and_secrets() {
        let table = [
            ("/v1/chat/completions", "/v1/chat/completions"),
            ("/v1beta/models/gemini:generateContent", "/v1beta/models/*"),
            (
                "/users/john.doe/files/maria-lopez-passport.pdf",
                "/users/*/files/*",
            ),
            ("/vault/very-secret", "/*/*"),
            ("/bot123456:AAH-secret/sendMessage", "/*/*"),
            ("/users/john@example.com/orders", "/users/*/orders"),
            ("/accounts/42", "/accounts/*"),
            ("/", "/"),
        ];
        for (path, expected) in table {
            assert_eq!(path_shape(path), expected, "{path}");
        }
    }
}
