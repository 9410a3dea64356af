//! The command line's grammar: commands, their arguments and help texts (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Egress proxy that puts policy-as-code between AI agents and everything they call"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Agent to run as (default: anonymous if admitted, else the only declared agent).
        #[arg(long)]
        agent: Option<String>,
        /// Run the program as this OS user (when started as root), so it cannot read the proxy's
        /// keys, tokens, stores or audit trail (keep the policy folder the proxy user's alone).
        #[arg(long)]
        user: Option<String>,
        /// Say which variables were kept from the program.
        #[arg(long, short)]
        verbose: bool,
        /// How the program reaches Gatehouse: proxy variables, or SDK base URLs at the gateway.
        #[arg(long, value_enum, default_value_t = LaunchMode::Proxy)]
        mode: LaunchMode,
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print the nftables ruleset for transparent mode: the agent users' TCP 80/443 goes to the
    /// transparent listener, they reach the proxy on loopback and DNS at the resolvers named,
    /// and every other packet of theirs is dropped (`gatehouse firewall | nft -f -`).
    Firewall {
        /// The config file (its `transparent:` section and listeners).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// An agent OS user (name or uid), besides those of `transparent.agents`; repeatable.
        #[arg(long = "agent-user")]
        agent_users: Vec<String>,
        /// A DNS resolver the agent users may query (repeatable; none: no DNS for them).
        #[arg(long)]
        dns: Vec<std::net::IpAddr>,
    },
    /// Validate the config and the policies it points at; exit non-zero with precise errors.
    Check {
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
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
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
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
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
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
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Agent to run as.
        #[arg(long)]
        agent: Option<String>,
        /// How the program reaches Gatehouse: proxy variables, or SDK base URLs at the gateway.
        #[arg(long, value_enum, default_value_t = LaunchMode::Proxy)]
        mode: LaunchMode,
    },
}

/// How `exec` and `env` point a program at Gatehouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LaunchMode {
    /// `HTTPS_PROXY` and friends, with the agent's proxy credentials.
    Proxy,
    /// `OPENAI_BASE_URL` and friends at the base-URL gateway, with the agent's gateway key.
    BaseUrl,
}

impl LaunchMode {
    /// The environment for `agent` in this mode.
    pub(crate) fn env(
        self,
        config: &gatehouse::Config,
        agent: Option<&str>,
    ) -> Result<gatehouse::launch::AgentEnv, gatehouse::launch::LaunchError> {
        match self {
            LaunchMode::Proxy => gatehouse::launch::agent_env(config, agent),
            LaunchMode::BaseUrl => gatehouse::launch::base_url_env(config, agent),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum BudgetAction {
    /// Each budget's limit, spend, reservations and what is left in its current window.
    Status {
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Refuse every request of an agent or a team until resumed (survives restarts).
    Pause {
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
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
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Subcommand)]
pub(crate) enum ApprovalsAction {
    /// Approvals waiting for a decision (or with another status), newest first, as JSON lines.
    List {
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// pending, approved, denied, expired or used.
        #[arg(long, default_value = "pending")]
        status: String,
    },
    /// Approve a held request: the agent's request (or its retry) goes on, once.
    Approve {
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
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
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
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
pub(crate) enum SpendGrouping {
    Agent,
    Team,
    Model,
}

/// An agent, a team, or (for `resume`) a budget whose breaker tripped.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Who {
    /// The agent.
    #[arg(long)]
    pub(crate) agent: Option<String>,
    /// The team.
    #[arg(long)]
    pub(crate) team: Option<String>,
    /// The budget whose breaker to reset (resume only).
    #[arg(long)]
    pub(crate) budget: Option<String>,
}

impl Who {
    pub(crate) fn scope(&self) -> String {
        match (&self.agent, &self.team) {
            (Some(agent), _) => format!("agent:{agent}"),
            (_, Some(team)) => format!("team:{team}"),
            _ => String::new(),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum AuditAction {
    /// Check that no record of an audit file was removed, reordered or edited, that it was not
    /// rewritten without the chain key nor cut short of its signed checkpoints, and that its
    /// index agrees with it. Exits 1 when it does not hold.
    Verify {
        /// The audit file (JSON Lines); by default the one the config names.
        file: Option<PathBuf>,
        /// Config file: names the audit file, its index, the store of its checkpoints and the CA
        /// folder holding the public key (and the chain key, when this user can read it).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The chain key file (`audit-key` in the CA folder): checks every record's mac.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The checkpoint public key (`audit-signing.pub` beside the CA certificate).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// The store holding the checkpoints: an SQLite file or a postgres:// URL.
        #[arg(long)]
        store: Option<String>,
        /// The audit index (SQLite) to check against the file.
        #[arg(long)]
        index: Option<PathBuf>,
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
pub(crate) struct QueryArgs {
    /// Only this agent.
    #[arg(long)]
    pub(crate) agent: Option<String>,
    /// Only this effect (allow, deny, hold).
    #[arg(long)]
    pub(crate) effect: Option<String>,
    /// Only decisions this rule decided.
    #[arg(long)]
    pub(crate) rule: Option<String>,
    /// Only this trigger.
    #[arg(long)]
    pub(crate) trigger: Option<String>,
    /// From this time on (RFC 3339).
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Most records printed.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
}

#[derive(Subcommand)]
pub(crate) enum CaAction {
    /// Create the CA if it does not exist yet, and print its certificate's path.
    Init {
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the path of the CA certificate agents must trust.
    Path {
        /// The config file (default: config/gatehouse.yaml when it exists, else the built-in one).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}
