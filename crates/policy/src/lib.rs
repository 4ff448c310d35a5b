//! The policy core of bawaba: who may block what, by which legal order, and the compiled
//! structure that answers "is this name or address blocked, and why?".
//!
//! Layers, bottom up:
//! - [`name`] and [`prefix`]: canonical domain names (IDNA, case, trailing dot) and IP prefixes.
//! - [`model`]: [`Order`] (the legal instrument, with four-eyes approval and mandatory expiry),
//!   [`Rule`] (selector + action under one order), [`AllowEntry`] (never block), the
//!   collateral-damage [`Guard`] and the allowlist check.
//! - [`snapshot`]: a [`PolicySnapshot`] of what is in force, as carried by bundles.
//! - [`ruleset`]: the immutable, compiled [`Ruleset`] that enforcement points share behind an
//!   `Arc` and query on every packet or DNS question.
//!
//! This crate does no I/O: storage, bundles and file formats live in their own crates.
//!
//! ```
//! use bawaba_policy::*;
//! let order = Order {
//!     id: OrderId(1), authority: "Court".into(), reference: "CFI-1".into(),
//!     issued_at: 0, effective_from: 0, expires_at: 86_400, category: Category::Phishing,
//!     summary: "fake bank".into(), publishable: true, appeal_contact: "appeals@example.test".into(),
//!     status: OrderStatus::Approved, proposed_by: "alice".into(), approved_by: Some("bob".into()),
//!     revoked: None,
//! };
//! let rule = Rule { id: RuleId(1), order: OrderId(1), selector: "bank-login.test".parse().unwrap(),
//!                   action: Action::BlockPage, forced: None };
//! let snapshot = PolicySnapshot { version: 1, taken_at: 10, orders: vec![order], rules: vec![rule], allow: vec![] };
//! let ruleset = snapshot.compile();
//! let hit = ruleset.lookup_domain("WWW.Bank-Login.test.").unwrap().unwrap();
//! assert_eq!(hit.order().unwrap().reference, "CFI-1");
//! assert!(ruleset.lookup_domain("bank.test").unwrap().is_none());
//! ```

pub mod model;
pub mod name;
pub mod prefix;
pub mod ruleset;
pub mod snapshot;

pub use model::{
    check_allowlist, Action, AllowEntry, AllowId, Category, Guard, Order, OrderId, OrderStatus, PolicyError,
    Revocation, Rule, RuleId, Selector,
};
pub use name::{DomainName, NameError};
pub use prefix::{IpPrefix, PrefixError};
pub use ruleset::{Match, Ruleset, RulesetBuilder, RulesetStats, Verdict};

pub use snapshot::PolicySnapshot;
