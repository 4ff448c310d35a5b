//! A policy snapshot: the orders in force, their rules and the allowlist, as of one moment.
//!
//! The store produces a snapshot, a signed bundle carries one to every enforcement point, the RPZ
//! exporter writes one out, and [`PolicySnapshot::compile`] turns one into the [`crate::Ruleset`]
//! that lookups run against.

use serde::{Deserialize, Serialize};

use crate::model::{AllowEntry, Order, Rule};

/// Everything an enforcement point needs to enforce a policy version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    /// Monotonic policy version (the bundle version that carries it; 0 when not published).
    pub version: u64,
    /// When the snapshot was taken (Unix seconds); orders were filtered for being in force then.
    pub taken_at: i64,
    /// Orders in force at `taken_at`.
    pub orders: Vec<Order>,
    /// Rules of those orders.
    pub rules: Vec<Rule>,
    /// Allowlist exceptions.
    pub allow: Vec<AllowEntry>,
}

impl PolicySnapshot {
    /// Total number of rules and allow entries.
    pub fn len(&self) -> usize {
        self.rules.len() + self.allow.len()
    }

    /// True when there is nothing to enforce.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
