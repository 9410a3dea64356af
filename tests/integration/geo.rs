//! Geographic rules through the proxy: loopback origins placed in countries by the config table,
//! the GDPR template's transfer rule (refusing and redacting variants), per-agent residency, and
//! the destination country in the audit trail.

use serde_json::{Value, json};

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

/// 127.0.0.2 is in Germany, 127.0.0.3 in the US; 127.0.0.4 is in no table and no database.
const NETWORKS: &str = "geo:\n  networks:\n    - { cidr: 127.0.0.2/32, country: DE }\n    - { cidr: 127.0.0.3, country: us }\n";

struct World {
    pki: TestPki,
    de: origin::Origin,
    us: origin::Origin,
    nowhere: origin::Origin,
}

async fn world() -> (World, ProxySpec) {
    let pki = TestPki::new();
    let de = origin::start_tls_on(&pki, "127.0.0.2").await;
    let us = origin::start_tls_on(&pki, "127.0.0.3").await;
    let nowhere = origin::start_tls_on(&pki, "127.0.0.4").await;
    let spec = ProxySpec {
        extra: NETWORKS.into(),
        ..Default::default()
    };
    (
        World {
            pki,
            de,
            us,
            nowhere,
        },
        spec,
    )
}

fn url(ip: &str, origin: &origin::Origin) -> String {
    format!("https://{ip}:{}/mirror", origin.port())
}

/// A proxy over `w` with `templates` enabled.
async fn proxy_with(w: &World, mut spec: ProxySpec, templates: Vec<&'static str>) -> TestProxy {
    spec.templates = templates;
    TestProxy::start(&w.pki, spec).await
}

/// Posts `body` as JSON to `/mirror` at `ip`.
async fn post(
    client: &reqwest::Client,
    ip: &str,
    origin: &origin::Origin,
    body: &Value,
) -> reqwest::Response {
    client
        .post(url(ip, origin))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_gdpr_template_refuses_personal_data_outside_the_eea_and_unknown_destinations() {
    let (w, spec) = world().await;
    let proxy = proxy_with(&w, spec, vec!["gdpr"]).await;
    let client = proxy.client(true);
    let body = json!({"note": "please reply to jane.doe@example.com"});

    let to_us = post(&client, "127.0.0.3", &w.us, &body).await;
    assert_eq!(to_us.status(), 403);
    let refusal: Value = to_us.json().await.unwrap();
    assert_eq!(
        refusal["error"]["rules"],
        json!(["gdpr-art44-no-transfer-outside-eea"])
    );

    let to_nowhere = post(&client, "127.0.0.4", &w.nowhere, &body).await;
    assert_eq!(to_nowhere.status(), 403, "unknown counts as outside");

    let to_de = post(&client, "127.0.0.2", &w.de, &body).await;
    assert_eq!(to_de.status(), 200);
    let seen: Value = to_de.json().await.unwrap();
    assert_eq!(seen, body, "inside the EU the data may go as it is");

    let without_pii = client
        .post(url("127.0.0.3", &w.us))
        .json(&json!({"note": "status report"}))
        .send()
        .await
        .unwrap();
    assert_eq!(without_pii.status(), 200);

    let records = proxy.decisions();
    let countries: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["trigger"] == "http.request")
        .map(|r| {
            (
                r["country"].as_str().unwrap(),
                r["effect"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        countries,
        vec![
            ("US", "deny"),
            ("unknown", "deny"),
            ("DE", "allow"),
            ("US", "allow")
        ]
    );
    assert!(
        w.us.received.lock().unwrap().len() == 1 && w.nowhere.received.lock().unwrap().is_empty()
    );
}

#[tokio::test]
async fn the_redacting_variant_forwards_personal_data_to_the_us_masked() {
    let (w, spec) = world().await;
    let proxy = proxy_with(&w, spec, vec!["gdpr_redact"]).await;
    let client = proxy.client(true);
    let body = json!({"note": "please reply to jane.doe@example.com"});
    let to_us = post(&client, "127.0.0.3", &w.us, &body).await;
    assert_eq!(to_us.status(), 200);
    let seen: Value = to_us.json().await.unwrap();
    assert_eq!(seen["note"], "please reply to [EMAIL]");
    let to_de = post(&client, "127.0.0.2", &w.de, &body).await;
    let seen: Value = to_de.json().await.unwrap();
    assert_eq!(seen, body);
}

#[tokio::test]
async fn an_agent_with_eu_residency_reaches_only_eu_destinations() {
    let (w, mut spec) = world().await;
    let token_dir = tempfile::tempdir().unwrap().keep();
    let token_file = token_dir.join("eu-bot.token");
    std::fs::write(&token_file, "t0ken\n").unwrap();
    spec.identity = format!(
        "identity:\n  allow_anonymous: true\n  agents:\n    - id: eu-bot\n      residency: eu\n      token_file: {}\n",
        token_file.display()
    );
    let proxy = TestProxy::start(&w.pki, spec).await;
    let auth = reqwest::Proxy::all(proxy.url())
        .unwrap()
        .basic_auth("eu-bot", "t0ken");
    let eu_bot = proxy.client_with(auth, &proxy.ca_pem, true);
    let to_de = eu_bot
        .post(url("127.0.0.2", &w.de))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(to_de.status(), 200);
    for (ip, origin) in [("127.0.0.3", &w.us), ("127.0.0.4", &w.nowhere)] {
        let refused = eu_bot.post(url(ip, origin)).body("hi").send().await;
        let message = match refused {
            Ok(response) => response.text().await.unwrap(),
            Err(e) => format!("{e:?}"),
        };
        assert!(
            origin.received.lock().unwrap().is_empty(),
            "{ip} reached: {message}"
        );
    }
    let denied: Vec<Value> = proxy
        .decisions()
        .into_iter()
        .filter(|r| r["trigger"] == "connect" && r["effect"] == "deny")
        .collect();
    assert_eq!(denied.len(), 2);
    assert!(
        denied
            .iter()
            .all(|r| r["rules"] == json!(["residency-eu-bot"]))
    );
    assert_eq!(denied[0]["country"], "US");
    assert_eq!(denied[1]["country"], "unknown");

    let anonymous = proxy.client(true);
    let to_us = anonymous
        .post(url("127.0.0.3", &w.us))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(to_us.status(), 200, "residency binds only its agent");
}
