//! Transparent mode, end to end, in a network namespace this test creates and removes: the
//! ruleset `gatehouse firewall` prints is loaded with the real `nft`, the proxy runs inside the
//! namespace, origins listen on addresses of its loopback (`10.77.0.1`, `10.77.0.2`, `fd77::1`),
//! `/etc/netns/<name>/hosts` names them for the proxy and the agents alike, and the agents are
//! real OS users running clients that ignore proxy variables (`curl --noproxy '*'`, Python with
//! an empty environment). Needs root, `ip` (iproute2) and `nft` (Debian's `nftables`).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::netns::{Netns, os_user, run};
use crate::support::{ProxySpec, TestPki, binary, origin};

/// The agent OS user the config maps to agent `coder`.
const AGENT_USER: &str = "gatehouse-test-agent";
/// An OS user the firewall redirects but no config entry maps.
const UNMAPPED_USER: &str = "nobody";
const PROXY_LISTEN: &str = "127.0.0.1:3128";
const TRANSPARENT_LISTEN: &str = "127.0.0.1:3129";
const TRANSPARENT_LISTEN_V6: &str = "[::1]:3129";
/// The transparent listener's address on the link to the container.
const CONTAINER_LISTEN: &str = "10.78.0.1:3129";
const ADMIN_LISTEN: &str = "127.0.0.1:3130";

const POLICY: &str = "rules:\n  - id: deny-denied\n    trigger: connect\n    match: { hosts: [denied.test] }\n    effect: deny\n  - id: allow-connect\n    trigger: connect\n    effect: allow\n  - id: allow-requests\n    trigger: http.request\n    effect: allow\n";

/// The decisions and refusals in the audit trail.
fn records(audit: &Path) -> Vec<Value> {
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The first record `matches` accepts, waiting for it a bounded time.
async fn record_where(audit: &Path, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        if let Some(found) = records(audit).into_iter().find(&matches) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all: Vec<String> = records(audit).iter().map(Value::to_string).collect();
    panic!("no record of {what} in\n{}", all.join("\n"));
}

/// A decision or refusal, not an outcome or tunnel record.
fn decision(record: &Value) -> bool {
    record.get("record").is_none()
}

fn text(record: &Value, field: &str) -> String {
    record[field].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_ignores_proxy_variables_is_judged_or_cut_off() {
    assert_eq!(
        run("id", &["-u"]).trim(),
        "0",
        "this test needs root (CI runs as root)"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let agent_uid = os_user(AGENT_USER);
    let unmapped_uid = os_user(UNMAPPED_USER);
    let hosts = "127.0.0.1 localhost\n::1 localhost\n10.77.0.1 origin.test denied.test\n\
                 10.77.0.2 other.test\nfd77::1 origin6.test\n";
    let netns = Netns::create(
        "gh-transparent",
        hosts,
        &[
            "10.77.0.1/32",
            "10.77.0.2/32",
            "10.77.0.53/32",
            "fd77::1/128",
        ],
    );
    let pki = TestPki::with_names(&["origin.test", "denied.test", "other.test", "origin6.test"]);
    // Origins inside the namespace: web ports on two addresses, a side door on another port,
    // and IPv6.
    let _https = origin::start_on_listener(Some(&pki), netns.listen("10.77.0.1:443")).await;
    let _http = origin::start_on_listener(None, netns.listen("10.77.0.1:80")).await;
    let _other = origin::start_on_listener(Some(&pki), netns.listen("10.77.0.2:443")).await;
    let _side = origin::start_on_listener(Some(&pki), netns.listen("10.77.0.1:8443")).await;
    let _v6 = origin::start_on_listener(Some(&pki), netns.listen("[fd77::1]:443")).await;
    let _v6_side = origin::start_on_listener(Some(&pki), netns.listen("[fd77::1]:8443")).await;
    let container = container_of(&netns);
    let udp = netns.within(|| std::net::UdpSocket::bind("10.77.0.1:9999").unwrap());
    // The resolver `--dns` names, and a name server it does not.
    let resolver = netns.within(|| std::net::UdpSocket::bind("10.77.0.53:53").unwrap());
    let other_dns = netns.within(|| std::net::UdpSocket::bind("10.77.0.1:53").unwrap());
    for socket in [&resolver, &other_dns] {
        socket
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
    }
    udp.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();

    // The proxy, inside the namespace, as root; the agent user is mapped to `coder`.
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("certs");
    let token = dir.path().join("coder.token");
    std::fs::write(&token, "transparent-test-token").unwrap();
    let spec = ProxySpec {
        allow_cidrs: vec!["10.77.0.0/24", "fd77::/64"],
        identity: format!(
            "identity:\n  agents:\n    - id: coder\n      token_file: {0}\n    - id: sandbox\n      token_file: {0}\n",
            token.display()
        ),
        policy: POLICY.into(),
        extra: format!(
            "transparent:\n  listen: {TRANSPARENT_LISTEN}, {TRANSPARENT_LISTEN_V6}, {CONTAINER_LISTEN}\n  agents:\n    - agent: coder\n      users: [{AGENT_USER}]\n    - agent: sandbox\n      sources: [10.78.0.0/24]\nadmin:\n  listen: {ADMIN_LISTEN}\n"
        ),
        ..Default::default()
    };
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(&config, spec.yaml(&pki, &ca_dir, PROXY_LISTEN)).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let log = std::fs::File::create(dir.path().join("proxy.log")).unwrap();
    let mut proxy = netns.command(&binary());
    proxy
        .args(["run", "--config"])
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut proxy = proxy.spawn().unwrap();
    let mut up = false;
    for _ in 0..100 {
        if netns.within(|| std::net::TcpStream::connect(TRANSPARENT_LISTEN).is_ok()) {
            up = true;
            break;
        }
        assert!(
            proxy.try_wait().unwrap().is_none(),
            "the proxy exited: {}",
            proxy_log(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "the transparent listener never came up: {}",
        proxy_log(dir.path())
    );

    // The firewall as printed, loaded with the real nft.
    let printed = run(
        &binary(),
        &[
            "firewall",
            "--config",
            config.to_str().unwrap(),
            "--agent-user",
            UNMAPPED_USER,
            "--dns",
            "10.77.0.53",
        ],
    );
    assert!(
        printed.contains(&agent_uid.to_string()) && printed.contains(&unmapped_uid.to_string()),
        "{printed}"
    );
    let rules = dir.path().join("firewall.nft");
    std::fs::write(&rules, &printed).unwrap();
    let loaded = netns
        .command("nft")
        .arg("-f")
        .arg(&rules)
        .output()
        .await
        .unwrap();
    assert!(
        loaded.status.success(),
        "nft -f: {}\n{printed}",
        String::from_utf8_lossy(&loaded.stderr)
    );

    // The CA bundles an agent may read.
    let bundles = tempfile::Builder::new()
        .prefix("gh-transparent-ca-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        bundles.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let gatehouse_ca = bundles.path().join("gatehouse-ca.pem");
    std::fs::copy(
        ca_dir.join(gatehouse::proxy::tls::CA_CERT_FILE),
        &gatehouse_ca,
    )
    .unwrap();
    let origin_ca = bundles.path().join("origin-ca.pem");
    std::fs::write(&origin_ca, &pki.ca_pem).unwrap();
    let (gatehouse_ca, origin_ca) = (gatehouse_ca.to_str().unwrap(), origin_ca.to_str().unwrap());
    let agent = Some(AGENT_USER);

    // HTTPS, redirected: intercepted with Gatehouse's CA and judged as agent `coder`.
    let (code, out) = netns
        .curl(
            agent,
            &["--cacert", gatehouse_ca, "https://origin.test/via-redirect"],
        )
        .await;
    assert_eq!(code, 0, "{out}\n{}", proxy_log(dir.path()));
    assert!(out.contains("\"path\":\"/via-redirect\""), "{out}");
    let judged = record_where(&audit, "the redirected HTTPS request", |r| {
        decision(r) && r["host"] == "origin.test" && r["port"] == 443 && r["method"] == "GET"
    })
    .await;
    assert_eq!(judged["agent"], "coder", "{judged}");
    assert_eq!(judged["effect"], "allow", "{judged}");
    // The origin's own certificate is not what the agent got: the connection was intercepted.
    let (code, out) = netns
        .curl(
            agent,
            &["--cacert", origin_ca, "https://origin.test/pinned"],
        )
        .await;
    assert_eq!(
        code, 60,
        "only Gatehouse's CA verifies what the agent is served: {out}"
    );

    // Plain HTTP, redirected: judged by its Host.
    let (code, out) = netns
        .curl(agent, &["http://origin.test/plain-redirect"])
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"path\":\"/plain-redirect\""), "{out}");
    let plain = record_where(&audit, "the plain HTTP request", |r| {
        decision(r) && r["host"] == "origin.test" && r["port"] == 80 && r["method"] == "GET"
    })
    .await;
    assert_eq!(plain["agent"], "coder", "{plain}");
    assert_eq!(plain["effect"], "allow", "{plain}");

    // A host the connect rules deny: HTTPS closed, plain HTTP told 403; both in the trail.
    let (code, out) = netns
        .curl(agent, &["--cacert", gatehouse_ca, "https://denied.test/"])
        .await;
    assert_ne!(code, 0, "{out}");
    let (code, out) = netns
        .curl(
            agent,
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://denied.test/",
            ],
        )
        .await;
    assert_eq!((code, out.as_str()), (0, "403"));
    let denied = record_where(&audit, "the denied host", |r| {
        r["host"] == "denied.test" && r["effect"] == "deny" && r["port"] == 443
    })
    .await;
    assert_eq!(denied["agent"], "coder", "{denied}");

    // An SNI that does not resolve to the address dialled (other.test is 10.77.0.2).
    let fronted = [
        "--cacert",
        gatehouse_ca,
        "--resolve",
        "other.test:443:10.77.0.1",
        "https://other.test/fronted",
    ];
    let (code, out) = netns.curl(agent, &fronted).await;
    assert_ne!(code, 0, "{out}");
    let misdirected = record_where(&audit, "the SNI that disagrees with the address", |r| {
        r["host"] == "other.test" && text(r, "reason").contains("the address the agent dialled")
    })
    .await;
    assert_eq!(misdirected["status"], 421, "{misdirected}");
    // other.test at its own address is served.
    let (code, out) = netns
        .curl(
            agent,
            &["--cacert", gatehouse_ca, "https://other.test/own-address"],
        )
        .await;
    assert_eq!(code, 0, "{out}");

    // No SNI (curl sends none for an address): refused.
    let (code, out) = netns.curl(agent, &["-k", "https://10.77.0.1/no-sni"]).await;
    assert_ne!(code, 0, "{out}");
    record_where(&audit, "the ClientHello without SNI", |r| {
        text(r, "reason").contains("without SNI")
    })
    .await;

    // A redirected user no config entry maps: refused and audited.
    let (code, out) = netns
        .curl(
            Some(UNMAPPED_USER),
            &["--cacert", gatehouse_ca, "https://origin.test/unmapped"],
        )
        .await;
    assert_ne!(code, 0, "{out}");
    let unmapped = record_where(&audit, "the unmapped user", |r| {
        text(r, "reason").contains(&format!("OS user {unmapped_uid} is not mapped"))
    })
    .await;
    assert_eq!(unmapped["host"], "origin.test", "{unmapped}");
    assert_eq!(unmapped["effect"], "deny", "{unmapped}");

    // IPv6, redirected to the IPv6 listener: judged the same way.
    let (code, out) = netns
        .curl(
            agent,
            &["--cacert", gatehouse_ca, "https://origin6.test/over-v6"],
        )
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"path\":\"/over-v6\""), "{out}");
    let v6 = record_where(&audit, "the IPv6 request", |r| {
        decision(r) && r["host"] == "origin6.test" && r["method"] == "GET"
    })
    .await;
    assert_eq!(v6["agent"], "coder", "{v6}");

    // The transparent listener dialled straight (it is reachable: the firewall lets agents reach
    // the proxy): nothing was redirected, so nothing names a destination.
    let straight = format!("https://{TRANSPARENT_LISTEN}/");
    let (code, out) = netns.curl(agent, &["-k", &straight]).await;
    assert_ne!(code, 0, "{out}");
    record_where(&audit, "the straight connection", |r| {
        text(r, "reason").contains("connected straight to the transparent listener")
    })
    .await;

    // An agent in a container (another namespace): its socket is not the proxy namespace's, so
    // it is known by its source network.
    let from_container = [
        "--cacert",
        gatehouse_ca,
        "https://origin.test/from-container",
    ];
    let (code, out) = container.curl(None, &from_container).await;
    assert_eq!(code, 0, "{out}");
    let contained = record_where(&audit, "the container's request", |r| {
        decision(r) && r["agent"] == "sandbox" && r["method"] == "GET"
    })
    .await;
    assert_eq!(contained["host"], "origin.test", "{contained}");

    // Around the proxy: another port, IPv6, UDP and the admin API are dropped for the agent...
    let (code, out) = netns
        .curl(
            agent,
            &["--cacert", origin_ca, "https://origin.test:8443/side-door"],
        )
        .await;
    assert_eq!(code, 28, "a dropped SYN times out: {out}");
    let (code, out) = netns
        .curl(
            agent,
            &[
                "--cacert",
                origin_ca,
                "https://origin6.test:8443/v6-side-door",
            ],
        )
        .await;
    assert_eq!(code, 28, "IPv6 too: {out}");
    let (code, out) = netns
        .curl(agent, &[&format!("http://{ADMIN_LISTEN}/")])
        .await;
    assert_eq!(code, 28, "the admin API is not the agent's: {out}");
    let udp_probe = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'leak', ('10.77.0.1', 9999))";
    let sent = netns
        .as_user(agent, "/usr/bin/python3", &["-c", udp_probe])
        .await;
    let mut buf = [0u8; 16];
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "the agent's UDP got through: {sent:?}"
    );
    // DNS: only to the resolver named.
    let dns_probe = "import socket\nfor ip in ('10.77.0.53', '10.77.0.1'):\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'query', (ip, 53))";
    let sent = netns
        .as_user(agent, "/usr/bin/python3", &["-c", dns_probe])
        .await;
    assert!(
        resolver.recv_from(&mut buf).is_ok(),
        "DNS to the named resolver is allowed: {sent:?}"
    );
    assert!(
        other_dns.recv_from(&mut buf).is_err(),
        "DNS elsewhere is dropped: {sent:?}"
    );
    // ...while root (not an agent user) reaches each, so the drops above are the firewall's.
    let (code, out) = netns
        .curl(
            None,
            &["--cacert", origin_ca, "https://origin.test:8443/side-door"],
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = netns
        .curl(
            None,
            &[
                "--cacert",
                origin_ca,
                "https://origin6.test:8443/v6-side-door",
            ],
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let sent = netns
        .as_user(None, "/usr/bin/python3", &["-c", udp_probe])
        .await;
    assert!(
        udp.recv_from(&mut buf).is_ok(),
        "root's UDP must arrive: {sent:?}"
    );
    // The forward proxy stays reachable for the agent (it answers 407 without credentials);
    // curl's `--noproxy` is left out here, or it would skip `-x` too.
    let proxy_url = format!("http://{PROXY_LISTEN}");
    let forward = [
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-x",
        &proxy_url,
        "http://origin.test/",
    ];
    let output = netns.as_user(agent, "curl", &forward).await;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "407", "{output:?}");

    let _ = proxy.kill().await;
    let _ = proxy.wait().await;
}

fn proxy_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default()
}

/// A container: a namespace of its own whose only way out is a veth link to `netns`, where a
/// `prerouting` DNAT rule (the operator's, not the printed ruleset's) sends its web traffic to
/// the transparent listener's address on that link.
fn container_of(netns: &Netns) -> Netns {
    let container = Netns::create("gh-container", "10.77.0.1 origin.test\n", &[]);
    let (host, inside) = (netns.name.as_str(), container.name.as_str());
    run(
        "ip",
        &[
            "-n", host, "link", "add", "gh-vh", "type", "veth", "peer", "name", "gh-vc", "netns",
            inside,
        ],
    );
    run(
        "ip",
        &["-n", host, "addr", "add", "10.78.0.1/24", "dev", "gh-vh"],
    );
    run("ip", &["-n", host, "link", "set", "gh-vh", "up"]);
    run(
        "ip",
        &["-n", inside, "addr", "add", "10.78.0.2/24", "dev", "gh-vc"],
    );
    run("ip", &["-n", inside, "link", "set", "gh-vc", "up"]);
    run(
        "ip",
        &["-n", inside, "route", "add", "default", "via", "10.78.0.1"],
    );
    let dnat = format!(
        "table ip gatehouse_containers {{\n  chain prerouting {{\n    type nat hook prerouting priority -100; policy accept;\n    iifname \"gh-vh\" tcp dport {{ 80, 443 }} dnat to {CONTAINER_LISTEN}\n  }}\n}}\n"
    );
    let rules = std::env::temp_dir().join(format!("{inside}.nft"));
    std::fs::write(&rules, dnat).unwrap();
    run(
        "ip",
        &["netns", "exec", host, "nft", "-f", rules.to_str().unwrap()],
    );
    let _ = std::fs::remove_file(rules);
    container
}
