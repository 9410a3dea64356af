//! Tests of LLM call recognition: providers, endpoints, and the facts read from each dialect's body.

use serde_json::{Value, json};

use super::llm::*;

#[test]
fn a_stream_of_a_loose_type_cannot_be_judged() {
    let path = "/v1/chat/completions";
    for (body, refused) in [
        (json!({"model": "m", "stream": true}), false),
        (json!({"model": "m", "stream": false}), false),
        (json!({"model": "m", "stream": null}), false),
        (json!({"model": "m"}), false),
        (json!({"model": "m", "stream": 1}), true),
        (json!({"model": "m", "stream": "true"}), true),
        (json!({"model": "m", "stream": [true]}), true),
    ] {
        let facts = recognise("api.openai.com", path, &body).unwrap();
        assert_eq!(loose_stream(&facts, &body).is_some(), refused, "{body}");
    }
    let gemini = "/v1beta/models/gemini-2.5-flash:generateContent";
    let body = json!({"contents": [], "stream": 1});
    let facts = recognise("generativelanguage.googleapis.com", gemini, &body).unwrap();
    assert_eq!(loose_stream(&facts, &body), None);
}

#[test]
fn operations_are_named_as_the_conventions_name_them() {
    assert_eq!(operation_of("/v1/chat/completions"), "chat");
    assert_eq!(operation_of("/v1/responses"), "chat");
    assert_eq!(operation_of("/v1/messages"), "chat");
    assert_eq!(operation_of("/v1/completions"), "text_completion");
    assert_eq!(operation_of("/v1/embeddings"), "embeddings");
    assert_eq!(
        operation_of("/v1beta/models/gemini-2.0-flash:streamGenerateContent"),
        "generate_content"
    );
}

#[test]
fn provider_hosts_and_free_endpoints() {
    assert_eq!(provider_of_host("API.OpenAI.com."), Some("openai"));
    assert_eq!(
        provider_of_host("my.openai.azure.com"),
        Some("azure_openai")
    );
    assert_eq!(provider_of_host("openai.azure.com"), None);
    assert_eq!(
        provider_of_host("evilopenai.azure.com.attacker.example"),
        None
    );
    assert_eq!(provider_of_host("example.com"), None);
    assert_eq!(provider_of_host("eu.api.openai.com"), Some("openai"));
    assert_eq!(
        provider_of_host("europe-west4-aiplatform.googleapis.com"),
        Some("vertex")
    );
    assert_eq!(
        provider_of_host("bedrock-runtime.eu-west-1.amazonaws.com"),
        Some("bedrock")
    );
    assert_eq!(provider_of_host("bedrock-runtime.evil.example"), None);
    for (method, path, free) in [
        ("GET", "/v1/models", true),
        ("GET", "/v1/models/gpt-4o", true),
        ("DELETE", "/v1/models/ft:gpt-4o:me", false),
        ("POST", "/v1/messages/count_tokens", true),
        ("POST", "/v1beta/models/gemini-2.5-flash:countTokens", true),
        ("POST", "/v1/batches", false),
        ("GET", "/v1beta/models/imagen-4:predict", false),
        ("POST", "/v1/images/generations", false),
        (
            "POST",
            "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
            false,
        ),
    ] {
        assert_eq!(free_endpoint(method, path), free, "{method} {path}");
    }
}

struct Case {
    name: &'static str,
    host: &'static str,
    path: &'static str,
    body: Value,
    provider: Option<&'static str>,
    model: &'static str,
    stream: bool,
    max_tokens: Option<u64>,
    messages: &'static [&'static str],
    tools: &'static [&'static str],
}

#[test]
fn provider_fixtures() {
    let cases = [
        Case {
            name: "openai chat",
            host: "api.openai.com",
            path: "/v1/chat/completions",
            body: json!({"model": "gpt-4o", "stream": true, "max_completion_tokens": 300,
                "messages": [{"role": "system", "content": "be brief"},
                             {"role": "user", "content": [{"type": "text", "text": "hi there"}]},
                             {"role": "tool", "tool_call_id": "c1", "content": "42"}],
                "tools": [{"type": "function", "function": {"name": "lookup"}}]}),
            provider: Some("openai"),
            model: "gpt-4o",
            stream: true,
            max_tokens: Some(300),
            messages: &["be brief", "hi there", "42"],
            tools: &["lookup"],
        },
        Case {
            name: "openai responses",
            host: "api.openai.com",
            path: "/v1/responses",
            body: json!({"model": "gpt-4.1", "instructions": "sys", "max_output_tokens": 50,
                "input": [{"role": "user", "content": [{"type": "input_text", "text": "q"}]}],
                "tools": [{"type": "function", "name": "search"}]}),
            provider: Some("openai"),
            model: "gpt-4.1",
            stream: false,
            max_tokens: Some(50),
            messages: &["sys", "q"],
            tools: &["search"],
        },
        Case {
            name: "openai embeddings",
            host: "api.openai.com",
            path: "/v1/embeddings",
            body: json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
            provider: Some("openai"),
            model: "text-embedding-3-small",
            stream: false,
            max_tokens: None,
            messages: &["a", "b"],
            tools: &[],
        },
        Case {
            name: "azure deployment",
            host: "contoso.openai.azure.com",
            path: "/openai/deployments/gpt4o-prod/chat/completions",
            // Azure bills the deployment, whatever model the body names.
            body: json!({"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10}),
            provider: Some("azure_openai"),
            model: "gpt4o-prod",
            stream: false,
            max_tokens: Some(10),
            messages: &["x"],
            tools: &[],
        },
        Case {
            name: "anthropic messages",
            host: "api.anthropic.com",
            path: "/v1/messages",
            body: json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
                "system": [{"type": "text", "text": "sys"}],
                "messages": [{"role": "user", "content": "hello"},
                             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "result"}]}]}],
                "tools": [{"name": "get_weather", "input_schema": {}}]}),
            provider: Some("anthropic"),
            model: "claude-sonnet-4-5",
            stream: true,
            max_tokens: Some(1024),
            messages: &["sys", "hello", "result"],
            tools: &["get_weather"],
        },
        Case {
            name: "gemini stream",
            host: "generativelanguage.googleapis.com",
            path: "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            body: json!({"contents": [{"role": "user", "parts": [{"text": "hola"}]}],
                "systemInstruction": {"parts": [{"text": "sys"}]},
                "generationConfig": {"maxOutputTokens": 64},
                "tools": [{"functionDeclarations": [{"name": "find"}]}]}),
            provider: Some("gemini"),
            model: "gemini-2.0-flash",
            stream: true,
            max_tokens: Some(64),
            messages: &["sys", "hola"],
            tools: &["find"],
        },
        Case {
            name: "openai-compatible by path",
            host: "llm.internal.example",
            path: "/v1/chat/completions",
            body: json!({"model": "llama-3-70b", "messages": [{"role": "user", "content": "q"}]}),
            provider: Some("openai_compatible"),
            model: "llama-3-70b",
            stream: false,
            max_tokens: None,
            messages: &["q"],
            tools: &[],
        },
        Case {
            name: "a provider's own OpenAI-compatible endpoint",
            host: "api.anthropic.com",
            path: "/v1/chat/completions",
            body: json!({"model": "claude-x", "messages": [{"role": "user", "content": "q"}]}),
            provider: Some("openai_compatible"),
            model: "claude-x",
            stream: false,
            max_tokens: None,
            messages: &["q"],
            tools: &[],
        },
        Case {
            name: "plain API is not an LLM call",
            host: "api.stripe.com",
            path: "/v1/refunds",
            body: json!({"amount": 10}),
            provider: None,
            model: "",
            stream: false,
            max_tokens: None,
            messages: &[],
            tools: &[],
        },
    ];
    for case in cases {
        let got = recognise(case.host, case.path, &case.body);
        match (got, case.provider) {
            (None, None) => {}
            (Some(facts), Some(provider)) => {
                assert_eq!(facts.provider, provider, "{}", case.name);
                assert_eq!(facts.model, case.model, "{}", case.name);
                assert_eq!(facts.stream, case.stream, "{}", case.name);
                assert_eq!(facts.max_tokens, case.max_tokens, "{}", case.name);
                assert_eq!(facts.messages, case.messages, "{}", case.name);
                assert_eq!(facts.tools, case.tools, "{}", case.name);
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
        }
    }
}
