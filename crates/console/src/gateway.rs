//! What the console needs from the rest of `bawaba serve`: the policy in force, publishing,
//! the enforcement points and their counters. The binary implements [`Gateway`]; tests use
//! small fakes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bawaba_policy::Ruleset;
use serde::Serialize;

/// A failure inside a gateway hook, as one line for the user.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Hooks into the running gateway.
pub trait Gateway: Send + Sync + 'static {
    /// The compiled policy the enforcement points apply now.
    fn ruleset(&self) -> Arc<Ruleset>;
    /// Signs and writes a bundle of the store's policy in force, and makes this process's
    /// enforcement points load it. Runs on a blocking thread.
    fn publish(&self, actor: &str) -> Result<Published, HookError>;
    /// The enforcement points and what they run.
    fn points(&self) -> Vec<EnforcementPoint>;
    /// Counters of every enabled component in the Prometheus text format.
    fn prometheus(&self) -> String;
    /// Verifies a bundle against the trusted keys; returns what it holds (version, rules, ...).
    fn verify_bundle(&self, bytes: &[u8]) -> Result<serde_json::Value, HookError>;
    /// The policy in force as an RPZ zone file (what `bawaba policy export` writes).
    fn export_rpz(&self) -> Result<String, HookError> {
        Err("RPZ export is not available here".into())
    }
    /// Attack defense as it stands: `attacks`, `mitigations`, `exporters`, `bgp` (sessions),
    /// `decisions`, `dry_run`; `None` when it is not running.
    fn defense(&self) -> Option<serde_json::Value> {
        None
    }
    /// Hands a manual mitigation to the planner (which applies the same rails as to its own
    /// routes) and returns its decision in one line. Runs on a blocking thread.
    fn mitigate(&self, request: &MitigationRequest) -> Result<Decided, HookError> {
        let _ = request;
        Err("attack defense is not running ([flow] enabled = false)".into())
    }
}

/// An operator's manual mitigation, as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MitigationRequest {
    /// Destination address or prefix.
    pub prefix: String,
    /// `blackhole` or `flowspec`.
    pub kind: String,
    /// FlowSpec only: IP protocol numbers (empty: all).
    pub protocols: Vec<u8>,
    /// FlowSpec only: source ports (empty: all).
    pub source_ports: Vec<u16>,
    /// Withdraw instead of announce.
    pub withdraw: bool,
    /// Why.
    pub reason: String,
}

/// The planner's answer to a [`MitigationRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decided {
    /// `announce`, `withdraw`, `dry-run` or `refused`.
    pub outcome: String,
    /// The decision in one line (route and reason).
    pub text: String,
}

/// The outcome of a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// Policy version.
    pub version: u64,
    /// The bundle's file name.
    pub file: String,
    /// Orders in the bundle.
    pub orders: usize,
    /// Rules in the bundle.
    pub rules: usize,
    /// Allowlist entries in the bundle.
    pub allow_entries: usize,
}

/// One enforcement point: a component that applies a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EnforcementPoint {
    /// The gateway site it runs at; `None` for this process's own components.
    #[serde(default)]
    pub site: Option<String>,
    /// When its site last reported it (Unix seconds); `None` for this process's own.
    #[serde(default)]
    pub reported_at: Option<i64>,
    /// Its name, such as `dns 127.0.0.1:5353` or `engine nfqueue 0`.
    pub name: String,
    /// `dns`, `engine` or `defense`.
    pub kind: String,
    /// The policy version it runs (none for components that apply no policy).
    pub bundle_version: Option<u64>,
    /// When it last loaded a bundle (Unix seconds).
    pub loaded_at: Option<i64>,
    /// Its counters: blocked queries or flows by category, and a few totals.
    pub counters: BTreeMap<String, u64>,
    /// Blocked queries or flows by order id.
    pub blocked_by_order: BTreeMap<i64, u64>,
}
