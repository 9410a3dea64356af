//! LLM calls recognised from the traffic itself: OpenAI (chat completions, responses, embeddings),
//! Azure OpenAI, Anthropic messages, Google Gemini `generateContent` / `streamGenerateContent`, and
//! any OpenAI-compatible API by its path.

use serde_json::Value;

use crate::policy::LlmFacts;

/// Recognises an LLM call from its host, path and JSON body.
pub fn recognise(host: &str, path: &str, body: &Value) -> Option<LlmFacts> {
    // The path decides first: providers also serve OpenAI-compatible endpoints on their own hosts.
    if let Some(endpoint) = [
        "/chat/completions",
        "/responses",
        "/embeddings",
        "/completions",
    ]
    .into_iter()
    .find(|e| path.ends_with(e))
    {
        let azure = provider_of_host(host) == Some("azure_openai");
        let provider = match host {
            _ if provider_of_host(host) == Some("openai") => "openai",
            _ if azure => "azure_openai",
            _ => "openai_compatible",
        };
        if provider == "openai_compatible" && body.get("model").is_none() {
            return None;
        }
        let mut facts = openai(endpoint, body);
        facts.provider = provider.to_string();
        // Azure bills the deployment's model whatever the body names: the deployment is the model.
        if let Some(deployment) = azure_deployment(path).filter(|_| azure) {
            facts.model = deployment;
        }
        return Some(facts);
    }
    if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
        return gemini(path, body);
    }
    let anthropic_host = host == "api.anthropic.com";
    if path.ends_with("/messages") && (anthropic_host || body.get("max_tokens").is_some()) {
        return Some(anthropic(body));
    }
    None
}

/// LLM providers by the hosts they serve their APIs on: every paid endpoint there is an LLM call
/// to meter, or is refused under a budget (see [`free_endpoint`] for the ones that cost nothing).
const PROVIDER_HOSTS: [(&str, &str); 18] = [
    ("api.openai.com", "openai"),
    ("eu.api.openai.com", "openai"),
    ("us.api.openai.com", "openai"),
    ("aiplatform.googleapis.com", "vertex"),
    ("-aiplatform.googleapis.com", "vertex"),
    (".services.ai.azure.com", "azure_openai"),
    ("api.together.xyz", "openai_compatible"),
    ("api.fireworks.ai", "openai_compatible"),
    ("api.cohere.com", "openai_compatible"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gemini"),
    (".openai.azure.com", "azure_openai"),
    (".cognitiveservices.azure.com", "azure_openai"),
    ("api.mistral.ai", "openai_compatible"),
    ("api.groq.com", "openai_compatible"),
    ("api.deepseek.com", "openai_compatible"),
    ("api.x.ai", "openai_compatible"),
    ("openrouter.ai", "openai_compatible"),
];

/// The provider serving its API on `host`, if it is one of the built-in providers.
pub fn provider_of_host(host: &str) -> Option<&'static str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    PROVIDER_HOSTS
        .iter()
        .find(|(known, _)| match known.strip_prefix(['.', '-']) {
            // `.suffix`: a name below it; `-suffix`: a regional name (`europe-west4-aiplatform…`).
            Some(suffix) => host.ends_with(known) && host.len() > suffix.len() + 1,
            None => host == *known,
        })
        .map(|(_, provider)| *provider)
        .or_else(|| {
            // Amazon Bedrock's runtime, in every region.
            (host.starts_with("bedrock-runtime.") && host.ends_with(".amazonaws.com"))
                .then_some("bedrock")
        })
}

/// The GenAI semantic conventions' operation (`gen_ai.operation.name`) of a recognised LLM call
/// at `path`: `embeddings`, `text_completion` (legacy completions), `generate_content` (Gemini),
/// otherwise `chat` (chat completions, responses, messages).
pub fn operation_of(path: &str) -> &'static str {
    if path.ends_with("/embeddings") || path.contains(":embedContent") {
        "embeddings"
    } else if path.ends_with("/completions") && !path.ends_with("/chat/completions") {
        "text_completion"
    } else if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
        "generate_content"
    } else {
        "chat"
    }
}

/// Provider endpoints that cost nothing: listing models and counting tokens.
pub fn free_endpoint(method: &str, path: &str) -> bool {
    let read = method.eq_ignore_ascii_case("GET");
    let path = path.trim_end_matches('/');
    let last = path.rsplit('/').next().unwrap_or_default();
    let models = (path.rsplit('/').nth(1) == Some("models") && !last.contains(':'))
        || path.ends_with("/models");
    (read && models) || path.ends_with("/messages/count_tokens") || path.ends_with(":countTokens")
}

fn text_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(parts) => parts.iter().flat_map(text_of).collect(),
        Value::Object(fields) => {
            let mut out = Vec::new();
            for key in ["text", "content", "input_text", "output"] {
                if let Some(inner) = fields.get(key) {
                    out.extend(text_of(inner));
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

fn str_field(body: &Value, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn u64_field(body: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
}

fn tool_names(tools: Option<&Value>, path: &[&str]) -> Vec<String> {
    let Some(Value::Array(tools)) = tools else {
        return Vec::new();
    };
    tools
        .iter()
        .filter_map(|tool| {
            let mut node = tool;
            for key in path {
                node = node.get(*key)?;
            }
            node.as_str().map(str::to_string)
        })
        .collect()
}

fn openai(endpoint: &str, body: &Value) -> LlmFacts {
    let mut messages = Vec::new();
    if let Some(instructions) = body.get("instructions") {
        messages.extend(text_of(instructions));
    }
    for key in ["messages", "input", "prompt"] {
        if let Some(value) = body.get(key) {
            messages.extend(text_of(value));
        }
    }
    let mut tools = tool_names(body.get("tools"), &["function", "name"]);
    tools.extend(tool_names(body.get("tools"), &["name"]));
    LlmFacts {
        provider: String::new(),
        model: str_field(body, "model"),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        max_tokens: match endpoint {
            "/responses" => u64_field(body, &["max_output_tokens"]),
            _ => u64_field(body, &["max_completion_tokens", "max_tokens"]),
        },
        messages,
        tools,
    }
}

/// Why an LLM call's `stream` member cannot be judged, if it cannot: it is neither `true`,
/// `false` nor `null`. A server that coerces loose types (`1`, `"true"`) streams the answer while
/// rules would read `llm.stream` as false (a rule on streaming dodged) and the proxy would not ask
/// for usage in the stream (the call charged at its worst case, not its cost). Gemini streams by
/// its method name, so its bodies are not asked.
pub fn loose_stream(facts: &LlmFacts, body: &Value) -> Option<String> {
    match body.get("stream") {
        None | Some(Value::Bool(_) | Value::Null) => None,
        Some(_) if facts.provider == "gemini" => None,
        Some(_) => Some(
            "an LLM call whose `stream` is not true or false cannot be judged: a server reading \
             it loosely may stream while rules read `llm.stream` as false"
                .to_string(),
        ),
    }
}

fn azure_deployment(path: &str) -> Option<String> {
    let rest = path.split("/deployments/").nth(1)?;
    rest.split('/').next().map(str::to_string)
}

fn anthropic(body: &Value) -> LlmFacts {
    let mut messages = Vec::new();
    if let Some(system) = body.get("system") {
        messages.extend(text_of(system));
    }
    if let Some(Value::Array(turns)) = body.get("messages") {
        for turn in turns {
            if let Some(content) = turn.get("content") {
                messages.extend(text_of(content));
            }
        }
    }
    LlmFacts {
        provider: "anthropic".to_string(),
        model: str_field(body, "model"),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        max_tokens: u64_field(body, &["max_tokens"]),
        messages,
        tools: tool_names(body.get("tools"), &["name"]),
    }
}

fn gemini(path: &str, body: &Value) -> Option<LlmFacts> {
    let (model_part, method) = path.rsplit('/').next()?.split_once(':')?;
    if method != "generateContent" && method != "streamGenerateContent" {
        return None;
    }
    let mut messages = Vec::new();
    if let Some(system) = body
        .get("systemInstruction")
        .or_else(|| body.get("system_instruction"))
    {
        messages.extend(text_of(system.get("parts").unwrap_or(system)));
    }
    if let Some(Value::Array(contents)) = body.get("contents") {
        for content in contents {
            if let Some(parts) = content.get("parts") {
                messages.extend(text_of(parts));
            }
        }
    }
    let mut tools = Vec::new();
    if let Some(Value::Array(groups)) = body.get("tools") {
        for group in groups {
            let declarations = group
                .get("functionDeclarations")
                .or_else(|| group.get("function_declarations"));
            tools.extend(tool_names(declarations, &["name"]));
        }
    }
    let config = body
        .get("generationConfig")
        .or_else(|| body.get("generation_config"));
    Some(LlmFacts {
        provider: "gemini".to_string(),
        model: model_part.to_string(),
        stream: method == "streamGenerateContent",
        max_tokens: config.and_then(|c| u64_field(c, &["maxOutputTokens", "max_output_tokens"])),
        messages,
        tools,
    })
}

/// The API family a recognised LLM call speaks, which decides the shape of its body and where
/// its answer reports usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI and everything speaking its format (Azure, compatible servers).
    OpenAi,
    /// Anthropic messages.
    Anthropic,
    /// Google Gemini.
    Gemini,
}

impl Dialect {
    /// The dialect of a recognised provider name.
    pub fn of(provider: &str) -> Dialect {
        match provider {
            "anthropic" => Dialect::Anthropic,
            "gemini" => Dialect::Gemini,
            _ => Dialect::OpenAi,
        }
    }
}
