//! A network namespace a test creates and removes, with its own `/etc/hosts`, and ways to run
//! things inside it: commands (`ip netns exec`, as another OS user through `runuser`) and sockets
//! (bound from a thread that joined it).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// A network namespace of the test's own, removed (with its hosts file) when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A fresh namespace (`<prefix>-<pid>`) with loopback up, `addresses` added to it, and `hosts` as the
    /// `/etc/hosts` of whatever runs inside. Fails loudly when `ip` or `nft` is missing.
    pub fn create(prefix: &str, hosts: &str, addresses: &[&str]) -> Netns {
        for (tool, args, package) in [
            ("ip", &["netns", "list"][..], "iproute2"),
            ("nft", &["--version"][..], "nftables"),
        ] {
            let ran = std::process::Command::new(tool).args(args).output();
            assert!(
                ran.as_ref().is_ok_and(|o| o.status.success()),
                "transparent tests need `{tool}`: install Debian's `{package}` (apt-get install -y \
                 {package}) and run as root: {ran:?}"
            );
        }
        let name = format!("{prefix}-{}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let netns = Netns { name };
        std::fs::create_dir_all(netns.etc()).unwrap();
        std::fs::write(netns.etc().join("hosts"), hosts).unwrap();
        run("ip", &["-n", &netns.name, "link", "set", "lo", "up"]);
        for address in addresses {
            run(
                "ip",
                &["-n", &netns.name, "addr", "add", address, "dev", "lo"],
            );
        }
        netns
    }

    /// `/etc/netns/<name>`: `ip netns exec` puts its files over `/etc`'s.
    pub fn etc(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.name)
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command.kill_on_drop(true);
        command
    }

    /// Runs `f` on a thread that joined the namespace (sockets it makes live there).
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = Path::new("/run/netns").join(&self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    /// A TCP listener bound inside the namespace.
    pub fn listen(&self, addr: &'static str) -> std::net::TcpListener {
        self.within(move || std::net::TcpListener::bind(addr).unwrap())
    }

    /// Runs `program args` inside the namespace as `user` (root: `None`), with an environment
    /// that holds nothing but `PATH`: no proxy variable, and nothing inherited.
    pub async fn as_user(&self, user: Option<&str>, program: &str, args: &[&str]) -> Output {
        let mut command = self.command("runuser");
        command
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        command.args(["-u", user.unwrap_or("root"), "--", program]);
        command.args(args);
        tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("the client ends within 30 s")
            .unwrap()
    }

    /// `curl --noproxy '*'` as `user`, bounded in time; returns curl's exit code and its output.
    pub async fn curl(&self, user: Option<&str>, args: &[&str]) -> (i32, String) {
        let mut all = vec![
            "--noproxy",
            "*",
            "-sS",
            "--connect-timeout",
            "3",
            "--max-time",
            "8",
        ];
        all.extend_from_slice(args);
        let output = self.as_user(user, "curl", &all).await;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code().unwrap_or(-1), text)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(self.etc());
    }
}

/// Runs `program args` and returns its stdout; panics with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The uid of `user`, made a system user first if need be.
pub fn os_user(user: &str) -> u32 {
    let exists = std::process::Command::new("id").arg(user).output().unwrap();
    if !exists.status.success() {
        let added = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                user,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&added.stderr);
        // 9: made meanwhile by a concurrent run.
        assert!(
            added.status.success()
                || added.status.code() == Some(9)
                || stderr.contains("already exists"),
            "useradd: {stderr}"
        );
    }
    run("id", &["-u", user]).trim().parse().unwrap()
}
