//! The network guard (SSRF): non-global destinations are refused unless a CIDR allows them; the
//! proxy's own address is refused always.

use crate::support::{ProxySpec, TestPki, TestProxy, connect_tunnel, origin};

#[tokio::test]
async fn non_global_destinations_are_refused_with_403_and_a_reason() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            allow_cidrs: vec![],
            ..Default::default()
        },
    )
    .await;
    let table = [
        (format!("localhost:{}", origin.port()), "loopback"),
        (format!("127.0.0.1:{}", origin.port()), "loopback"),
        ("169.254.169.254:80".to_string(), "cloud metadata"),
        ("10.0.0.1:443".to_string(), "private"),
        ("100.64.1.1:443".to_string(), "CGNAT"),
        // An IPv4-mapped literal is the IPv4 address it maps.
        ("[::ffff:127.0.0.1]:443".to_string(), "loopback"),
        ("[fd00::1]:443".to_string(), "unique-local"),
        ("[fe80::1]:443".to_string(), "link-local"),
        ("224.0.0.1:443".to_string(), "multicast"),
    ];
    for (target, reason) in table {
        let (status, head, _) = connect_tunnel(proxy.addr, &target, None).await;
        assert_eq!(status, 403, "{target}: {head}");
        assert!(
            head.contains(reason),
            "{target}: reason should mention {reason}: {head}"
        );
    }
    let plain = proxy.get("http://169.254.169.254/latest/meta-data/").await;
    assert_eq!(plain.status(), 403);
}

#[tokio::test]
async fn an_allowed_cidr_opens_exactly_that_range() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        allow_cidrs: vec!["127.0.0.1/32"],
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let (ok, _, _) =
        connect_tunnel(proxy.addr, &format!("127.0.0.1:{}", origin.port()), None).await;
    assert_eq!(ok, 200);
    let (refused, head, _) = connect_tunnel(proxy.addr, "127.0.0.2:443", None).await;
    assert_eq!(refused, 403, "{head}");
}

#[tokio::test]
async fn the_proxys_own_address_is_refused_even_when_loopback_is_allowed() {
    let pki = TestPki::new();
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let (status, head, _) = connect_tunnel(proxy.addr, &proxy.addr.to_string(), None).await;
    assert_eq!(status, 403);
    assert!(head.contains("own listening address"), "{head}");
    let looped = proxy.get(format!("http://{}/", proxy.addr)).await;
    assert_eq!(looped.status(), 403);
}

#[tokio::test]
async fn guard_refusals_are_in_the_audit_trail() {
    let pki = TestPki::new();
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            allow_cidrs: vec![],
            ..Default::default()
        },
    )
    .await;
    let (status, _, _) = connect_tunnel(proxy.addr, "169.254.169.254:443", None).await;
    assert_eq!(status, 403);
    let plain = proxy.get("http://10.0.0.1/x").await;
    assert_eq!(plain.status(), 403);
    let audit = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
    let refusals: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["effect"] == "deny")
        .collect();
    assert_eq!(refusals.len(), 2, "{audit}");
    assert!(
        refusals[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cloud metadata")
    );
    assert_eq!(refusals[0]["trigger"], "connect");
    assert!(refusals[1]["reason"].as_str().unwrap().contains("private"));
    assert_eq!(refusals[1]["host"], "10.0.0.1");
}
