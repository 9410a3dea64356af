use super::*;

fn request(agent: &str, method: &str, headers: &[(&str, &str)]) -> Facts {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let request = crate::policy::RequestFacts::new(
        (method, "https"),
        ("x".into(), 443),
        "/y",
        None,
        Some(&map),
    );
    let agent = crate::policy::AgentFacts {
        id: agent.into(),
        team: None,
        env: None,
        execution: None,
        labels: Default::default(),
    };
    Facts::new(crate::policy::Trigger::HttpRequest, agent, request)
}

#[test]
fn the_fingerprint_tells_requests_apart_by_each_part() {
    let reason = HoldReason {
        rules: vec!["r".into()],
        decision: "d".into(),
    };
    let print = |facts: &Facts, uri: &str, body: &[u8], replaced: &[&str]| {
        fingerprint(&HeldRequest {
            facts,
            url: uri.into(),
            uri: uri.into(),
            body,
            reason: &reason,
            replaced: replaced.iter().map(|s| s.to_string()).collect(),
        })
    };
    let plain = request("a", "POST", &[("content-type", "application/json")]);
    let base = print(&plain, "https://x/y?q=1", b"{}", &[]);
    assert_eq!(base, print(&plain, "https://x/y?q=1", b"{}", &[]));
    let retried = request(
        "a",
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-stainless-retry-count", "2"),
            ("traceparent", "00-abc-def-01"),
            ("content-length", "2"),
        ],
    );
    assert_eq!(
        base,
        print(&retried, "https://x/y?q=1", b"{}", &[]),
        "a retry is the same"
    );
    let keyed = request(
        "a",
        "POST",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer p"),
        ],
    );
    assert_eq!(
        base,
        print(&keyed, "https://x/y?q=1", b"{}", &["authorization"]),
        "a key the broker replaces is not bound"
    );
    let overridden = request(
        "a",
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-http-method-override", "DELETE"),
        ],
    );
    let other_agent = request("b", "POST", &[("content-type", "application/json")]);
    let put = request("a", "PUT", &[("content-type", "application/json")]);
    for other in [
        print(&other_agent, "https://x/y?q=1", b"{}", &[]),
        print(&put, "https://x/y?q=1", b"{}", &[]),
        print(&plain, "https://x/y?q=2", b"{}", &[]),
        print(&plain, "https://x/y?q=1", b"{ }", &[]),
        print(&overridden, "https://x/y?q=1", b"{}", &[]),
        print(&keyed, "https://x/y?q=1", b"{}", &[]),
    ] {
        assert_ne!(base, other);
    }
    let id = new_id().unwrap();
    assert!(id.starts_with("apv_") && id.len() == 20);
}
