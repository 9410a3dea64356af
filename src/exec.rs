//! `gatehouse exec`: the agent process, started without the proxy's secrets and, with `--user`, as
//! another OS user.

use anyhow::Context;

/// Files `exec` created as root in the CA folder (the CA, the execution key, the bundle) go to the
/// folder's owner, the proxy's user, who must keep reading them.
pub fn hand_back(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let owner = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    if owner.uid() == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        if std::fs::metadata(&path)?.uid() == 0 {
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))
                .with_context(|| format!("cannot give {} to its folder's owner", path.display()))?;
        }
    }
    Ok(())
}

/// Replaces this process with the agent: its variables set, the secrets it must not inherit
/// removed, and with `user` its OS user (root only; supplementary groups are dropped).
pub fn exec(
    program: &str,
    args: &[String],
    env: &gatehouse::launch::AgentEnv,
    user: Option<&str>,
) -> anyhow::Result<std::io::Error> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(program);
    command.args(args);
    for name in &env.removed {
        command.env_remove(name);
    }
    command.envs(env.vars.iter().map(|(k, v)| (k, v)));
    // Whether this process may change user was checked before anything was written.
    if let Some(name) = user {
        let account = nix::unistd::User::from_name(name)
            .with_context(|| format!("cannot look up user `{name}`"))?
            .with_context(|| format!("no such user `{name}`"))?;
        anyhow::ensure!(
            !account.uid.is_root(),
            "--user must name a user other than root"
        );
        command
            .uid(account.uid.as_raw())
            .gid(account.gid.as_raw())
            .env("HOME", &account.dir)
            .env("USER", name)
            .env("LOGNAME", name);
    }
    Ok(command.exec())
}
