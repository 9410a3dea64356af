//! The `gatehouse` command line. Parsing and wiring only; everything else is in the library.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use gatehouse::audit::{AuditStore, Query};
use gatehouse::budget::Window;
use gatehouse::config::{Config, LogFormat};
use gatehouse::policy::RequestSpec;
use gatehouse::proxy::tls::CertificateAuthority;
use gatehouse::store::{SpendBy, StoreLocation};
use gatehouse::toolchain;
use gatehouse::{Gatehouse, app::Drained};
use tracing_subscriber::EnvFilter;

/// jemalloc: glibc spent a seventh of the proxy's CPU on its buffers of a few KiB (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod cli;
mod exec;

use cli::{ApprovalsAction, AuditAction, BudgetAction, CaAction, Cli, Command, SpendGrouping};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("gatehouse: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn load(config: Option<&Path>) -> anyhow::Result<Config> {
    Ok(Config::load(config)?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config, listen } => {
            // Everything the proxy creates (stores, audit trail, keys) is its user's alone.
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
            // Not dumpable: another process of the same user cannot read this one's memory or
            // /proc/<pid>/environ (the secrets it read from its environment).
            if let Err(e) = nix::sys::prctl::set_dumpable(false) {
                eprintln!("gatehouse: cannot mark the process non-dumpable: {e}");
            }
            let mut config = load(config.as_deref())?;
            if let Some(file) = config.admin.as_ref().and_then(|a| a.token_file.as_ref()) {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(file)
                    .with_context(|| format!("{}", file.display()))?
                    .permissions()
                    .mode();
                anyhow::ensure!(
                    mode & 0o077 == 0,
                    "{}: other users can read the admin token (they could approve their own held \
                     requests): `chmod 600` it",
                    file.display()
                );
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            init_logging(config.log.format, &config.log.level);
            serve(config)
        }
        Command::Ca {
            action: CaAction::Init { config },
        } => {
            let config = load(config.as_deref())?;
            let (_, created) = CertificateAuthority::load_or_create(&config.ca.dir)?;
            let path = CertificateAuthority::cert_path(&config.ca.dir);
            let state = if created { "created" } else { "already exists" };
            eprintln!("gatehouse: CA {state}");
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Ca {
            action: CaAction::Path { config },
        } => {
            let config = load(config.as_deref())?;
            println!(
                "{}",
                std::path::absolute(CertificateAuthority::cert_path(&config.ca.dir))?.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec {
            config,
            agent,
            user,
            verbose,
            mode,
            command,
        } => {
            anyhow::ensure!(
                user.is_none() || nix::unistd::geteuid().is_root(),
                "--user needs gatehouse exec to be started as root"
            );
            let config = load(config.as_deref())?;
            let env = mode.env(&config, agent.as_deref())?;
            if user.is_some() {
                exec::hand_back(&config.ca.dir)?;
            }
            let (program, args) = command.split_first().context("no command given")?;
            if verbose {
                let present: Vec<&str> = env
                    .removed
                    .iter()
                    .filter(|name| std::env::var_os(name).is_some())
                    .map(String::as_str)
                    .collect();
                eprintln!(
                    "gatehouse exec: agent {} execution {}; kept from the program: {}",
                    env.agent,
                    env.execution,
                    if present.is_empty() {
                        "nothing".to_string()
                    } else {
                        present.join(", ")
                    }
                );
            }
            let err = exec::exec(program, args, &env, user.as_deref())?;
            anyhow::bail!("cannot run `{program}`: {err}")
        }
        Command::Firewall {
            config,
            agent_users,
            dns,
        } => {
            let config = load(config.as_deref())?;
            let own = nix::unistd::geteuid().as_raw();
            let plan = gatehouse::firewall::plan(&config, &agent_users, &dns, own)?;
            print!("{}", gatehouse::firewall::ruleset(&plan));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => {
            let config = load(config.as_deref())?;
            let commit = config
                .policies
                .commit
                .as_deref()
                .map(|c| format!(", commit {c}"))
                .unwrap_or_default();
            println!(
                "{}: ok ({} rules from {}, policy version {}{commit})",
                config.source,
                config.policies.set.len(),
                config.policies.source,
                config.policies.version
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            config,
            redact,
            file,
        } => {
            let config = load(config.as_deref())?;
            let style = match redact.as_deref() {
                None => None,
                Some(name) => Some(gatehouse::pii::Style::parse(name).with_context(|| {
                    format!("unknown redaction style `{name}`: use mask, hash or pseudonymize")
                })?),
            };
            let input = match &file {
                Some(path) => std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                        .context("cannot read stdin")?;
                    buf
                }
            };
            let input = String::from_utf8(input)
                .context("the input is not UTF-8 text; the scanner reads text and JSON")?;
            print!("{}", toolchain::scan(&config, &input, style)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { audit, policies } => {
            let policies = gatehouse::config::policies::load_folder(&policies)?;
            print!("{}", toolchain::replay(&audit, &policies)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Test { config, paths } => {
            let config = load(config.as_deref())?;
            let paths = if paths.is_empty() {
                vec![toolchain::default_test_path(&config)]
            } else {
                paths
            };
            let run = toolchain::test(&config, &paths)?;
            print!("{}", run.report);
            Ok(if run.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Explain {
            config,
            url,
            method,
            trigger,
            agent,
            team,
            env,
            headers,
            data,
            destination,
            country,
        } => {
            let config = load(config.as_deref())?;
            let headers = headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .with_context(|| format!("header `{h}` is not `Name: value`"))
                })
                .collect::<anyhow::Result<_>>()?;
            let request = RequestSpec {
                agent,
                team,
                env,
                trigger,
                method,
                url,
                headers,
                destination,
                country,
                body: data,
            };
            print!("{}", toolchain::explain(&config, request)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            action:
                AuditAction::Verify {
                    file,
                    config,
                    key,
                    public_key,
                    store,
                    index,
                },
        } => {
            let mut args = match (&config, &file) {
                (None, Some(file)) => toolchain::VerifyArgs {
                    file: file.clone(),
                    ..Default::default()
                },
                _ => toolchain::VerifyArgs::of_config(&load(config.as_deref())?),
            };
            args.file = file.unwrap_or(args.file);
            args.key = key.or(args.key);
            args.public_key = public_key.or(args.public_key);
            args.store = store.as_deref().map(StoreLocation::parse).or(args.store);
            args.index = index.or(args.index);
            let checked = block_on(toolchain::verify_audit(&args))??;
            println!("{}", checked.report);
            Ok(match checked.holds {
                true => ExitCode::SUCCESS,
                false => ExitCode::from(1),
            })
        }
        Command::Audit {
            action: AuditAction::Query { config, filter },
        } => {
            let config = load(config.as_deref())?;
            let mut store = AuditStore::open(&config.audit_store)?;
            store.catch_up(&config.audit_file)?;
            let query = Query {
                agent: filter.agent,
                effect: filter.effect,
                rule: filter.rule,
                trigger: filter.trigger,
                since: filter.since,
                until: filter.until,
                limit: filter.limit,
            };
            for record in store.query(&query)? {
                println!("{record}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Approvals { action } => approvals(action),
        Command::Spend {
            config,
            by,
            window,
            json,
        } => {
            let config = load(config.as_deref())?;
            let by = match by {
                SpendGrouping::Agent => SpendBy::Agent,
                SpendGrouping::Team => SpendBy::Team,
                SpendGrouping::Model => SpendBy::Model,
            };
            let window = Window::parse(&window).context("unknown window")?;
            let report = block_on(async {
                let store = toolchain::open_store(&config).await?;
                toolchain::spend_report(&config, &store, by, window).await
            })??;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Budget { action } => match action {
            BudgetAction::Status { config } => {
                let config = load(config.as_deref())?;
                let report = block_on(async {
                    let store = toolchain::open_store(&config).await?;
                    toolchain::spend_report(&config, &store, SpendBy::Agent, Window::Day).await
                })??;
                print!("{}", report.render_budgets());
                Ok(ExitCode::SUCCESS)
            }
            BudgetAction::Pause {
                config,
                who,
                reason,
            } => {
                let config = load(config.as_deref())?;
                anyhow::ensure!(who.budget.is_none(), "pause names an --agent or a --team");
                block_on(async {
                    let store = toolchain::open_store(&config).await?;
                    toolchain::pause(&store, &who.scope(), &reason).await
                })??;
                println!("{} paused", who.scope());
                Ok(ExitCode::SUCCESS)
            }
            BudgetAction::Resume { config, who } => {
                let config = load(config.as_deref())?;
                let store = block_on(toolchain::open_store(&config))??;
                if let Some(budget) = &who.budget {
                    block_on(toolchain::reset_breaker(&config, &store, budget))??;
                    println!("breaker of budget {budget} reset");
                    return Ok(ExitCode::SUCCESS);
                }
                let was = block_on(store.resume(&who.scope()))??;
                println!(
                    "{} {}",
                    who.scope(),
                    if was { "resumed" } else { "was not paused" }
                );
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Env {
            config,
            agent,
            mode,
        } => {
            let config = load(config.as_deref())?;
            print!("{}", mode.env(&config, agent.as_deref())?.as_shell());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `gatehouse approvals`: straight on the store the proxies share (a decision reaches them through
/// PostgreSQL's notifications, or their next poll on SQLite).
fn approvals(action: ApprovalsAction) -> anyhow::Result<ExitCode> {
    use gatehouse::store::ApprovalStatus;
    match action {
        ApprovalsAction::List { config, status } => {
            let config = load(config.as_deref())?;
            let status = ApprovalStatus::parse(&status)
                .context("status is pending, approved, denied, expired or used")?;
            let list = block_on(async {
                let store = toolchain::open_store(&config).await?;
                anyhow::Ok(store.approvals(status, 1000).await?)
            })??;
            for approval in list {
                let mut line = serde_json::to_value(&approval)?;
                line["summary"] = serde_json::from_str(&approval.summary)?;
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsAction::Approve {
            config,
            id,
            reviewer,
            reason,
        } => decide_approval(config, &id, true, &reviewer, &reason),
        ApprovalsAction::Deny {
            config,
            id,
            reviewer,
            reason,
        } => {
            anyhow::ensure!(
                !reason.trim().is_empty(),
                "a denial needs a --reason: the agent is told it"
            );
            decide_approval(config, &id, false, &reviewer, &reason)
        }
    }
}

fn decide_approval(
    config: Option<PathBuf>,
    id: &str,
    approve: bool,
    reviewer: &str,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(!reviewer.trim().is_empty(), "--reviewer names who decides");
    let config = load(config.as_deref())?;
    let usable = i64::try_from(config.approvals.expire_after.as_secs()).unwrap_or(900);
    let decided = block_on(async {
        let store = toolchain::open_store(&config).await?;
        let now = gatehouse::store::now();
        anyhow::Ok(
            store
                .decide(&gatehouse::store::Decision {
                    id,
                    approve,
                    reviewer: reviewer.trim(),
                    reason: reason.trim(),
                    now,
                    usable_until: now + usable,
                })
                .await?,
        )
    })??;
    match decided {
        Ok(approval) => {
            println!("{} {}", approval.id, approval.status.name());
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("{why}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Runs `future` to completion on a small runtime (for commands that talk to the store).
fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// Runs the proxy until a shutdown signal, then drains it.
fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let gatehouse = Gatehouse::start(config).await?;
        wait_for_signal().await?;
        tracing::info!("shutdown signal received");
        match gatehouse.shutdown().await {
            Drained::Clean => Ok(ExitCode::SUCCESS),
            Drained::Cut => Ok(ExitCode::SUCCESS),
        }
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}
