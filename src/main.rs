//! The `gatehouse` command line. Parsing and wiring only; everything else is in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gatehouse::audit::{AuditStore, Query, verify_file};
use gatehouse::budget::Window;
use gatehouse::config::{Config, LogFormat};
use gatehouse::launch::agent_env;
use gatehouse::policy::RequestSpec;
use gatehouse::proxy::tls::CertificateAuthority;
use gatehouse::store::SpendBy;
use gatehouse::toolchain;
use gatehouse::{Gatehouse, app::Drained};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Egress proxy that puts policy-as-code between AI agents and everything they call"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Run {
        /// Config file (default: config/gatehouse.yaml, else the embedded default).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen on this address instead of the config's `listen` (e.g. 0.0.0.0:8080 in a container).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Manage the local certificate authority.
    Ca {
        #[command(subcommand)]
        action: CaAction,
    },
    /// Run a program with everything it needs to go through the proxy.
    Exec {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Agent to run as (default: anonymous if admitted, else the only declared agent).
        #[arg(long)]
        agent: Option<String>,
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Validate the config and the policies it points at; exit non-zero with precise errors.
    Check {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run policy tests (`*.test.yaml`: requests and the verdict each must get).
    Test {
        /// Config file (its policies are tested).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Test files or folders (default: the policy folder).
        paths: Vec<PathBuf>,
    },
    /// Show how the policies judge one request: every rule considered and the verdict.
    Explain {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The request's absolute URL.
        #[arg(long)]
        url: String,
        /// Method (default GET; CONNECT for the connect trigger).
        #[arg(long, short = 'X')]
        method: Option<String>,
        /// Trigger (default http.request).
        #[arg(long)]
        trigger: Option<String>,
        /// Agent id (team and environment come from the config when it is declared there).
        #[arg(long)]
        agent: Option<String>,
        /// Team.
        #[arg(long)]
        team: Option<String>,
        /// Environment.
        #[arg(long)]
        env: Option<String>,
        /// Header, `Name: value`; repeatable.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// Request body, recognised like a live request's (set `-H 'content-type: ...'`).
        #[arg(long, short = 'd')]
        data: Option<String>,
        /// The address the proxy would connect to (located with the config's geo sources).
        #[arg(long)]
        destination: Option<String>,
        /// The destination's country (ISO 3166-1 alpha-2), instead of locating an address.
        #[arg(long)]
        country: Option<String>,
    },
    /// Judge the decisions of an audit file again under other policies and report what changes.
    Replay {
        /// The audit file (JSON Lines).
        #[arg(long)]
        audit: PathBuf,
        /// The policy folder to judge under.
        #[arg(long)]
        policies: PathBuf,
    },
    /// Show what the PII detectors find in a text or JSON file (stdin by default), as JSON lines,
    /// or the input redacted.
    Scan {
        /// Config file (its custom detectors and internal domains are used).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print the input redacted in this style: mask, hash or pseudonymize.
        #[arg(long)]
        redact: Option<String>,
        /// The file to scan (default: stdin).
        file: Option<PathBuf>,
    },
    /// Spend per agent, team or model, with each budget's remaining money and breaker.
    Spend {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Group spend by.
        #[arg(long, value_enum, default_value = "agent")]
        by: SpendGrouping,
        /// Sum spend over the current hour, day, month, or all time.
        #[arg(long, default_value = "day", value_parser = ["hour", "day", "month", "total"])]
        window: String,
        /// Print JSON (what the admin API serves) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Held requests: list them, approve or deny one.
    Approvals {
        #[command(subcommand)]
        action: ApprovalsAction,
    },
    /// Budgets: spend per window, and pausing an agent or team by hand.
    Budget {
        #[command(subcommand)]
        action: BudgetAction,
    },
    /// Work with the audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Print the variables `exec` would set, as shell exports.
    Env {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Agent to run as.
        #[arg(long)]
        agent: Option<String>,
    },
}

#[derive(Subcommand)]
enum BudgetAction {
    /// Each budget's limit, spend, reservations and what is left in its current window.
    Status {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Refuse every request of an agent or a team until resumed (survives restarts).
    Pause {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        who: Who,
        /// Why (shown to the agent).
        #[arg(long, default_value = "paused by an operator")]
        reason: String,
    },
    /// Lift a pause of an agent or team, or reset a budget's tripped breaker.
    Resume {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Subcommand)]
enum ApprovalsAction {
    /// Approvals waiting for a decision (or with another status), newest first, as JSON lines.
    List {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// pending, approved, denied, expired or used.
        #[arg(long, default_value = "pending")]
        status: String,
    },
    /// Approve a held request: the agent's request (or its retry) goes on, once.
    Approve {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The approval id (`apv_…`).
        id: String,
        /// Who approves.
        #[arg(long)]
        reviewer: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Deny a held request: the agent gets 403 with the reason.
    Deny {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The approval id (`apv_…`).
        id: String,
        /// Who denies.
        #[arg(long)]
        reviewer: String,
        /// Why (the agent is told).
        #[arg(long)]
        reason: String,
    },
}

/// What `gatehouse spend` groups by.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SpendGrouping {
    Agent,
    Team,
    Model,
}

/// An agent, a team, or (for `resume`) a budget whose breaker tripped.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct Who {
    /// The agent.
    #[arg(long)]
    agent: Option<String>,
    /// The team.
    #[arg(long)]
    team: Option<String>,
    /// The budget whose breaker to reset (resume only).
    #[arg(long)]
    budget: Option<String>,
}

impl Who {
    fn scope(&self) -> String {
        match (&self.agent, &self.team) {
            (Some(agent), _) => format!("agent:{agent}"),
            (_, Some(team)) => format!("team:{team}"),
            _ => String::new(),
        }
    }
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check that no record of an audit file was removed, reordered or edited.
    Verify {
        /// The audit file (JSON Lines).
        file: PathBuf,
    },
    /// Recorded decisions from the audit index, newest first, as JSON lines (the index catches up
    /// with the audit file first).
    Query {
        /// Config file (names the audit file and its index).
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        filter: QueryArgs,
    },
}

/// What `audit query` selects.
#[derive(clap::Args)]
struct QueryArgs {
    /// Only this agent.
    #[arg(long)]
    agent: Option<String>,
    /// Only this effect (allow, deny, hold).
    #[arg(long)]
    effect: Option<String>,
    /// Only decisions this rule decided.
    #[arg(long)]
    rule: Option<String>,
    /// Only this trigger.
    #[arg(long)]
    trigger: Option<String>,
    /// From this time on (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Most records printed.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

#[derive(Subcommand)]
enum CaAction {
    /// Create the CA if it does not exist yet, and print its certificate's path.
    Init {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the path of the CA certificate agents must trust.
    Path {
        /// Config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

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
            let mut config = load(config.as_deref())?;
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
            command,
        } => {
            let config = load(config.as_deref())?;
            let env = agent_env(&config, agent.as_deref())?;
            let (program, args) = command.split_first().context("no command given")?;
            let err = exec(program, args, &env.vars);
            anyhow::bail!("cannot run `{program}`: {err}")
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
            action: AuditAction::Verify { file },
        } => {
            let checked =
                verify_file(&file).with_context(|| format!("cannot read {}", file.display()))?;
            match checked {
                Ok(report) => {
                    println!(
                        "{}: {} records, chain intact",
                        file.display(),
                        report.records
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(broken) => {
                    println!("{}: {broken}", file.display());
                    Ok(ExitCode::from(1))
                }
            }
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
        Command::Env { config, agent } => {
            let config = load(config.as_deref())?;
            print!("{}", agent_env(&config, agent.as_deref())?.as_shell());
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

/// Replaces this process with `program`; returns only on failure.
fn exec(program: &str, args: &[String], vars: &[(String, String)]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(program)
        .args(args)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .exec()
}

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
