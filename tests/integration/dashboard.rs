//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver) opens
//! the admin listener's page, enters the token and a reviewer, sees the held request (with its
//! personal data masked), approves it, and the agent receives the upstream's answer. A screenshot
//! is kept in `target/test-artifacts/dashboard.png`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{ProxySpec, TestPki, TestProxy};

const TOKEN: &str = "dashboard-test-token";

const POLICY: &str = "rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: refunds-need-a-person
    trigger: http.request
    when: request.path == '/mirror'
    effect: hold
";

/// A chromedriver process and one browser session, ended on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) is installed; .ci/run installs it");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--disable-quic",
                         "--window-size=1366,900",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The elements matching `css`, waiting up to 10 s for at least one.
    async fn find(&self, css: &str) -> Vec<String> {
        for _ in 0..200 {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/elements",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            let ids: Vec<String> = found
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|e| e.as_object()?.values().next()?.as_str())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if !ids.is_empty() {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no element matches {css}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await.remove(0);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await.remove(0);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self) -> String {
        let body = self.find("body").await.remove(0);
        let text = self
            .call(reqwest::Method::GET, &format!("/element/{body}/text"), None)
            .await;
        text.as_str().unwrap_or_default().to_string()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_a_held_request_in_the_dashboard() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let state = tempfile::tempdir().unwrap();
    let token = state.path().join("admin.token");
    std::fs::write(&token, TOKEN).unwrap();
    let spec = ProxySpec {
        policy: POLICY.into(),
        extra: format!(
            "admin:\n  listen: 127.0.0.1:0\n  token_file: {}\napprovals:\n  wait: 60s\n  poll_interval: 100ms\n",
            token.display()
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let agent = tokio::spawn({
        let client = proxy.client(true);
        let url = format!("https://localhost:{}/mirror", origin.port());
        async move {
            client
                .post(url)
                .json(&json!({"refund": 1200, "customer": "jane.doe@example.com"}))
                .send()
                .await
                .unwrap()
        }
    });

    let browser = Browser::start().await;
    browser.go(&format!("{}/", proxy.admin_url())).await;
    browser
        .type_into("#token", &format!("{TOKEN}\u{E007}"))
        .await;
    browser.type_into("#reviewer", "carol\u{E007}").await;
    browser
        .find("[data-approval] button[data-action=approve]")
        .await;
    let page = browser.text().await;
    assert!(page.contains("POST https://localhost:"), "{page}");
    assert!(page.contains("refunds-need-a-person"), "{page}");
    assert!(
        page.contains("[EMAIL]"),
        "the preview masks personal data: {page}"
    );
    assert!(
        !page.contains("jane.doe"),
        "no raw personal data on the page: {page}"
    );
    browser.screenshot("dashboard.png").await;

    browser
        .type_into("[data-approval] input", "refund checked")
        .await;
    browser
        .click("[data-approval] button[data-action=approve]")
        .await;
    let response = tokio::time::timeout(Duration::from_secs(20), agent)
        .await
        .expect("the agent's request completed after the click")
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(
        echoed["refund"], 1200,
        "the upstream's answer reached the agent"
    );
    assert_eq!(origin.received.lock().unwrap().len(), 1);
    // The decision shows up in the live feed without a reload.
    browser.find("#decisions tr[data-decision]").await;
    browser.screenshot("dashboard-after-approval.png").await;
}
