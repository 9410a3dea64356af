//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver) opens
//! the admin listener's page, enters the token and a reviewer, sees the held request (with its
//! personal data masked), approves it, and the agent receives the upstream's answer. A screenshot
//! is kept in `target/test-artifacts/dashboard.png`. The page is pushed to over server-sent events:
//! a held request, a decision and a spend change appear while the page makes no request at all.

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

    /// Runs `script` in the page and returns what it returns.
    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The text of the first element matching `css`.
    async fn text_of(&self, css: &str) -> String {
        let element = self.find(css).await.remove(0);
        let text = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await;
        text.as_str().unwrap_or_default().to_string()
    }

    /// Waits up to 10 s until the text of `css` contains `needle`.
    async fn wait_text(&self, css: &str, needle: &str) {
        for _ in 0..200 {
            if self.text_of(css).await.contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{css} never showed {needle:?}: {}", self.text_of(css).await);
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

const PUSH_POLICY: &str = "rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: requests
    trigger: http.request
    effect: allow
  - id: llm-calls
    trigger: llm.request
    effect: allow
  - id: refunds-need-a-person
    trigger: http.request
    when: request.path == '/mirror'
    effect: hold
";

/// Counts the page's own requests from now on (`window.__fetches`).
const COUNT_FETCHES: &str = "window.__fetches = []; const original = window.fetch; \
    window.fetch = function (...args) { window.__fetches.push(String(args[0])); \
    return original.apply(this, args); }; return true;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_pushed_to_not_polled() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let state = tempfile::tempdir().unwrap();
    let token = state.path().join("admin.token");
    std::fs::write(&token, TOKEN).unwrap();
    let spec = ProxySpec {
        policy: PUSH_POLICY.into(),
        extra: format!(
            "admin:\n  listen: 127.0.0.1:0\n  token_file: {}\napprovals:\n  wait: 60s\n",
            token.display()
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let browser = Browser::start().await;
    browser.go(&format!("{}/", proxy.admin_url())).await;
    browser
        .type_into("#token", &format!("{TOKEN}\u{E007}"))
        .await;
    browser.type_into("#reviewer", "carol\u{E007}").await;
    browser.wait_text("#live", "live").await;
    // The load on `ready` ends with the spend table.
    browser.wait_text("#spend", "No spend today.").await;
    browser.script(COUNT_FETCHES).await;
    // The page used to ask every 2 s; now it waits to be told.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(browser.script("return window.__fetches").await, json!([]));

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
    browser
        .wait_text("#approvals", "refunds-need-a-person")
        .await;
    let held = browser.text_of("#approvals").await;
    assert!(held.contains("POST https://localhost:"), "{held}");
    assert!(!held.contains("jane.doe"), "no raw personal data: {held}");
    browser.wait_text("#decisions", "hold").await;

    let call = proxy
        .client(true)
        .post(format!(
            "https://localhost:{}/bench/v1/chat/completions",
            origin.port()
        ))
        .json(&json!({"model": "gpt-4o", "max_tokens": 100,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    assert!(!call.bytes().await.unwrap().is_empty());
    browser.wait_text("#spend", "anonymous").await;
    let spend = browser.text_of("#spend").await;
    assert!(
        spend.contains("0.00222"),
        "the call's cost is shown: {spend}"
    );
    assert_eq!(
        browser.script("return window.__fetches").await,
        json!([]),
        "the hold, the decisions and the spend arrived without a request from the page"
    );

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
    browser
        .wait_text("#approvals", "Nothing waits for a decision.")
        .await;
    let fetches = browser.script("return window.__fetches").await;
    let fetches = fetches.as_array().unwrap();
    assert_eq!(fetches.len(), 1, "only the approval itself: {fetches:?}");
    assert!(
        fetches[0].as_str().unwrap().ends_with("/approve"),
        "{fetches:?}"
    );
    browser.screenshot("dashboard-pushed.png").await;
}
