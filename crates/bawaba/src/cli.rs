//! The command line: every subcommand, its arguments and `--help` examples.

use std::path::PathBuf;

use bawaba_policy::{Action, Category};
use clap::{Args, Parser, Subcommand};

/// bawaba: lawful, transparent blocking for a national internet gateway.
#[derive(Debug, Parser)]
#[command(name = "bawaba", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults apply (data dir ./data).
    #[arg(long, short, global = true, env = "BAWABA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Who is acting, as recorded in the audit log. Defaults to $BAWABA_ACTOR, then $USER.
    #[arg(long, global = true)]
    pub actor: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  bawaba --config etc/bawaba.example.toml init
  bawaba order add --authority 'Court of First Instance, Baghdad' --reference CFI-2026-0042 \\
      --category phishing --expires +90d --summary 'Fake bank login pages' --appeal-contact appeals@cmc.example
  bawaba rule add --order 1 --action block-page bank-login.example
  bawaba --actor bob order approve 1
  bawaba policy check www.bank-login.example
  bawaba policy publish && bawaba audit verify";

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start every component the config enables (the DNS server, metrics), on the newest bundle.
    #[command(
        after_help = "Example:\n  bawaba serve --config etc/bawaba.example.toml\n  dig @127.0.0.1 -p 5353 www.bank-login.example"
    )]
    Serve,
    /// Create the data directory, the database and the bundle signing key pair.
    #[command(after_help = "Example:\n  bawaba --config etc/bawaba.example.toml init")]
    Init,
    /// Record, approve, revoke and inspect legal orders.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Add, remove and list blocking rules (each belongs to one order).
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Manage the allowlist: names and prefixes that must never be blocked.
    #[command(subcommand)]
    Allow(AllowCommand),
    /// Import, export, compile, publish, verify and query the policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Read and verify the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run a capture file through the packet engine: each flow's names, verdict and order.
    #[command(after_help = "Examples:
  bawaba inspect trace.pcap
  bawaba inspect --json --bundle data/bundles/latest.bundle trace.pcapng > flows.json
  bawaba inspect --summary big.pcap")]
    Inspect(InspectArgs),
    /// Attacks detected by `bawaba serve` (config sections flow and ddos) and what was done about them.
    #[command(subcommand)]
    Attack(AttackCommand),
    /// Console users (roles: admin, legal, approver, operator, auditor, viewer) and API tokens.
    #[command(
        subcommand,
        after_help = "Examples:
  bawaba user add amal --role legal
  bawaba user token ci-publisher --label \"nightly publish\"
  bawaba user list"
    )]
    User(UserCommand),
    /// Manual BGP mitigations on the running `bawaba serve` (through its API; audited).
    #[command(
        subcommand,
        after_help = "Examples:
  export BAWABA_TOKEN=bwb_...        # bawaba user token noc --label cli
  bawaba mitigation announce 198.18.5.5 --reason 'NOC ticket 4711'
  bawaba mitigation announce 198.18.5.5 --kind flowspec --protocol udp --source-port 123 --reason 'NTP reflection'
  bawaba mitigation withdraw 198.18.5.5
  bawaba mitigation list"
    )]
    Mitigation(MitigationCommand),
    /// Flow exporters seen by the running `bawaba serve` (through its API).
    #[command(subcommand)]
    Exporter(ExporterCommand),
}

/// `bawaba exporter ...`
#[derive(Debug, Subcommand)]
pub enum ExporterCommand {
    /// List exporters: address, protocol, datagrams, records, last seen.
    List {
        /// API token (default: $BAWABA_TOKEN).
        #[arg(long)]
        token: Option<String>,
        /// Output JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `bawaba mitigation ...`
#[derive(Debug, Subcommand)]
pub enum MitigationCommand {
    /// Mitigations in force and the BGP sessions.
    List {
        /// API token (default: $BAWABA_TOKEN).
        #[arg(long)]
        token: Option<String>,
        /// Output JSON.
        #[arg(long)]
        json: bool,
    },
    /// Announce a blackhole (65535:666) or FlowSpec rule, within the safety rails.
    Announce(MitigationTarget),
    /// Withdraw a manual mitigation (give it as it was announced).
    Withdraw(MitigationTarget),
}

/// What a manual mitigation covers.
#[derive(Debug, Args)]
pub struct MitigationTarget {
    /// The attacked address (a /32 or /128) or a prefix inside the protected networks.
    pub prefix: String,
    /// blackhole or flowspec.
    #[arg(long, default_value = "blackhole")]
    pub kind: String,
    /// FlowSpec only: udp, tcp, icmp or a protocol number.
    #[arg(long)]
    pub protocol: Option<String>,
    /// FlowSpec only: the source port (53, 123, 389, ... for reflection).
    #[arg(long)]
    pub source_port: Option<i64>,
    /// Why (required to announce; audited).
    #[arg(long)]
    pub reason: Option<String>,
    /// API token (default: $BAWABA_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
}

/// `bawaba user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints a one-time password (there is no default password anywhere).
    Add {
        /// The user name (a-z, 0-9, dot, dash, underscore).
        name: String,
        /// admin, legal, approver, operator, auditor or viewer.
        #[arg(long)]
        role: String,
    },
    /// List users.
    List(Json),
    /// Set a new one-time password for a user (ends its sessions).
    Password {
        /// The user.
        name: String,
    },
    /// Change a user's role.
    Role {
        /// The user.
        name: String,
        /// The new role.
        role: String,
    },
    /// Disable a user: its sessions and API tokens stop working.
    Disable {
        /// The user.
        name: String,
    },
    /// Create an API token for a user; its secret is printed once and stored only hashed.
    Token {
        /// The user the token acts as.
        name: String,
        /// What the token is for.
        #[arg(long)]
        label: String,
    },
}

/// `bawaba attack ...`
#[derive(Debug, Subcommand)]
pub enum AttackCommand {
    /// List attacks from the attack log (data dir, attacks.jsonl), oldest first.
    #[command(after_help = "Example:\n  bawaba attack list\n  bawaba attack list --json")]
    List(Json),
}

/// `bawaba inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Judge against a signed bundle instead of the store's current policy.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Output JSON: `{"flows": [...], "totals": {...}}`.
    #[arg(long)]
    pub json: bool,
    /// Print only the totals, not a line per flow.
    #[arg(long)]
    pub summary: bool,
    /// Most flows tracked at once (least recently seen evicted beyond it).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_flows: usize,
    /// The capture: pcap or pcapng (any byte order, micro- or nanosecond timestamps).
    pub file: PathBuf,
}

/// `bawaba order ...`
#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Record a new order as a draft (a second person approves it).
    #[command(after_help = "Example:\n  bawaba order add --authority 'Communications and Media Commission' \\
      --reference CMC-2026-118 --category malware --issued 2026-11-20 --effective-from 2026-11-21 \\
      --expires 2027-05-20 --summary 'Botnet command-and-control domains' --appeal-contact appeals@cmc.example")]
    Add(OrderAdd),
    /// Approve a draft order (four eyes: not by its proposer).
    #[command(after_help = "Example:\n  bawaba --actor bob order approve 3")]
    Approve {
        /// The order id.
        id: i64,
    },
    /// Revoke an order; its rules stop applying at the next compile.
    #[command(after_help = "Example:\n  bawaba order revoke 3 --reason 'quashed on appeal, ruling 2026/77'")]
    Revoke {
        /// The order id.
        id: i64,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// List orders with their current status.
    #[command(after_help = "Example:\n  bawaba order list --json")]
    List(Json),
    /// Show one order and its rules.
    #[command(after_help = "Example:\n  bawaba order show 3")]
    Show {
        /// The order id.
        id: i64,
        /// Output JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A `--json` switch.
#[derive(Debug, Args)]
pub struct Json {
    /// Output JSON.
    #[arg(long)]
    pub json: bool,
}

/// Fields of a new order.
#[derive(Debug, Args)]
pub struct OrderAdd {
    /// Issuing authority (court, regulator).
    #[arg(long)]
    pub authority: String,
    /// The instrument's own reference.
    #[arg(long)]
    pub reference: String,
    /// Legal ground: terrorism, child-abuse, malware, phishing, court-order, other.
    #[arg(long)]
    pub category: Category,
    /// Date of issue (YYYY-MM-DD, RFC 3339, `now` or `+Nd`). Default: now.
    #[arg(long, default_value = "now")]
    pub issued: String,
    /// Enforcement start. Default: now.
    #[arg(long, default_value = "now")]
    pub effective_from: String,
    /// Enforcement end (required; every order expires), e.g. 2027-05-20 or +90d.
    #[arg(long)]
    pub expires: String,
    /// Summary shown to the public and on the block page.
    #[arg(long)]
    pub summary: String,
    /// Keep the order out of the public transparency report.
    #[arg(long)]
    pub private: bool,
    /// Where an affected person appeals (address, URL or office).
    #[arg(long)]
    pub appeal_contact: String,
}

/// `bawaba rule ...`
#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Add rules to a draft order.
    ///
    /// Selector forms: `example.test` (the name and everything below it), `exact:example.test`
    /// (only that name), `*.example.test` (only names below it), `198.18.7.0/24`, `2001:db8:7::/48`.
    #[command(after_help = "Examples:\n  bawaba rule add --order 3 --action nxdomain c2.example exact:update.example
  bawaba rule add --order 3 --action drop 198.18.7.0/24
  bawaba rule add --order 3 --action drop 198.18.0.0/16 --force --reason 'annex 2 lists the whole range'")]
    Add {
        /// The draft order.
        #[arg(long)]
        order: i64,
        /// block-page, nxdomain, nodata, drop or reset.
        #[arg(long, default_value = "block-page")]
        action: Action,
        /// Override the prefix guard / allowlist overlap check (needs --reason).
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why the override is intended (recorded with the rule and in the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// One or more selectors.
        #[arg(required = true)]
        selectors: Vec<String>,
    },
    /// Remove a rule.
    #[command(after_help = "Example:\n  bawaba rule remove 17 --reason 'site taken down'")]
    Remove {
        /// The rule id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List rules.
    #[command(after_help = "Example:\n  bawaba rule list --order 3 --json")]
    List {
        /// Only this order's rules.
        #[arg(long)]
        order: Option<i64>,
        /// Output JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `bawaba allow ...`
#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// Add an allowlist entry.
    #[command(after_help = "Examples:\n  bawaba allow add gov.iq --reason 'government portals'
  bawaba allow add 198.18.53.0/24 --reason 'gateway resolvers'")]
    Add {
        /// The selector to protect.
        selector: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Remove an allowlist entry.
    #[command(after_help = "Example:\n  bawaba allow remove 2 --reason 'service decommissioned'")]
    Remove {
        /// The entry id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List the allowlist.
    #[command(after_help = "Example:\n  bawaba allow list")]
    List(Json),
}

/// `bawaba policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Import rules into a draft order from an RPZ zone, hosts file, domain list or CIDR list.
    #[command(after_help = "Examples:\n  bawaba policy import --order 3 --format domains phishing-domains.txt
  bawaba policy import --order 4 --format rpz --origin rpz.partner.example partner.rpz")]
    Import {
        /// The draft order the rules belong to.
        #[arg(long)]
        order: i64,
        /// rpz, hosts, domains or cidr. Default: guessed from the file.
        #[arg(long)]
        format: Option<String>,
        /// Action for entries whose format carries none. Default: block-page.
        #[arg(long, default_value = "block-page")]
        action: Action,
        /// RPZ zone origin, when the file has no $ORIGIN.
        #[arg(long)]
        origin: Option<String>,
        /// Output the report as JSON.
        #[arg(long)]
        json: bool,
        /// The file to import (`-` for standard input).
        file: PathBuf,
    },
    /// Export the policy in force as an RPZ zone file.
    #[command(after_help = "Example:\n  bawaba policy export --out /etc/unbound/bawaba.rpz")]
    Export {
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compile the policy in force and report its size and compile time.
    #[command(after_help = "Example:\n  bawaba policy compile --json")]
    Compile(Json),
    /// Sign and write a bundle of the policy in force for the enforcement points.
    #[command(after_help = "Example:\n  bawaba policy publish")]
    Publish(Json),
    /// Verify a bundle file's signature and integrity.
    #[command(
        after_help = "Examples:\n  bawaba policy verify data/bundles/bawaba-policy-v00000003-1f2e3d4c5b6a7980.bundle
  bawaba policy verify --key partner.pub bundle.bundle"
    )]
    Verify {
        /// Trusted public key file(s); default from the config.
        #[arg(long)]
        key: Vec<PathBuf>,
        /// Output JSON.
        #[arg(long)]
        json: bool,
        /// The bundle file.
        file: PathBuf,
    },
    /// Is this name or address blocked, and by which order?
    #[command(after_help = "Examples:\n  bawaba policy check www.example.test
  bawaba policy check 198.18.7.9 --json
  bawaba policy check --bundle data/bundles/latest.bundle mail.example.test")]
    Check {
        /// Check against a signed bundle instead of the store.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Output JSON.
        #[arg(long)]
        json: bool,
        /// A domain name or an IP address.
        target: String,
    },
}

/// `bawaba audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries.
    #[command(after_help = "Example:\n  bawaba audit list --since 100 --limit 20 --json")]
    List {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: i64,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Output JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the hash chain; exit status 1 names the first altered, deleted or moved entry.
    #[command(after_help = "Example:\n  bawaba audit verify")]
    Verify(Json),
}
