//! The legal model: orders, the rules they authorise, and allowlist exceptions.
//!
//! Times are Unix seconds (UTC). An [`Order`] stores only what people decide (draft, approved,
//! revoked); whether it is *active* or *expired* is derived from the clock by
//! [`Order::status_at`], so an order stops applying at its expiry without anyone acting.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::name::{DomainName, NameError};
use crate::prefix::{IpPrefix, PrefixError};

/// Identifier of an order in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub i64);

/// Identifier of a rule in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleId(pub i64);

/// Identifier of an allowlist entry in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AllowId(pub i64);

macro_rules! id_display {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}
id_display!(OrderId, RuleId, AllowId);

/// Errors of the policy model: invalid input or a request the rules of the model forbid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A domain name does not parse.
    #[error("invalid domain name {input:?}: {source}")]
    Name {
        /// The text given.
        input: String,
        /// Why it was refused.
        source: NameError,
    },
    /// A prefix does not parse.
    #[error("invalid prefix: {0}")]
    Prefix(#[from] PrefixError),
    /// A keyword (action, category, status) is not one of the known values.
    #[error("unknown {what} {input:?}; expected one of: {expected}")]
    Keyword {
        /// Which kind of keyword.
        what: &'static str,
        /// The text given.
        input: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// A required field of an order is empty.
    #[error("order field {0} must not be empty")]
    MissingField(&'static str),
    /// Expiry is not after the effective date, or the order lasts longer than allowed.
    #[error("order validity: {0}")]
    Validity(String),
    /// The proposer tried to approve their own order (four-eyes principle).
    #[error("{actor} proposed order {order} and cannot approve it: a second person must approve")]
    SelfApproval {
        /// The order.
        order: OrderId,
        /// Who tried.
        actor: String,
    },
    /// The requested transition does not exist from the order's current status.
    #[error("order {order} is {status}; cannot {action} it")]
    Transition {
        /// The order.
        order: OrderId,
        /// Its status now.
        status: OrderStatus,
        /// What was asked.
        action: &'static str,
    },
    /// A prefix rule broader than the collateral-damage guard allows, without `force`.
    #[error(
        "{prefix} is broader than /{min} and could block unrelated services; \
         use --force with --reason to record why this is intended"
    )]
    TooBroad {
        /// The prefix.
        prefix: IpPrefix,
        /// The guard's minimum length for the family.
        min: u8,
    },
    /// The rule covers an allowlisted entry, without `force`.
    #[error(
        "rule {rule} covers allowlisted {allow} (allow entry {allow_id}); the allowlisted part would stay \
         reachable. Use --force with --reason to add it anyway"
    )]
    CoversAllowlisted {
        /// The rule selector.
        rule: Selector,
        /// The allowlisted selector.
        allow: Selector,
        /// Its id.
        allow_id: AllowId,
    },
    /// The rule lies entirely inside an allowlisted entry and could never take effect.
    #[error("rule {rule} is inside allowlisted {allow} (allow entry {allow_id}) and would never apply")]
    InsideAllowlisted {
        /// The rule selector.
        rule: Selector,
        /// The allowlisted selector.
        allow: Selector,
        /// Its id.
        allow_id: AllowId,
    },
    /// `force` was given without a reason.
    #[error("--force needs --reason: the audit log records why a guard was overridden")]
    ForceWithoutReason,
}

/// What a rule or allow entry matches.
///
/// Text forms: `example.test` is the domain and everything below it, `exact:example.test` only that
/// name, `*.example.test` everything below it but not the name itself (an RPZ wildcard trigger), and
/// `198.18.0.0/24` or `2001:db8::/48` a prefix (a bare address is a host prefix).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub enum Selector {
    /// Exactly this name.
    Exact(DomainName),
    /// This name and every name below it.
    Subtree(DomainName),
    /// Every name strictly below this one (RPZ `*.name`).
    Subdomains(DomainName),
    /// Every address in the prefix.
    Prefix(IpPrefix),
}

impl Selector {
    /// Parses the text form (see the type's documentation).
    ///
    /// ```
    /// use bawaba_policy::Selector;
    /// assert!(matches!("Example.TEST.".parse::<Selector>().unwrap(), Selector::Subtree(_)));
    /// assert_eq!("*.example.test".parse::<Selector>().unwrap().to_string(), "*.example.test");
    /// assert_eq!("exact:www.example.test".parse::<Selector>().unwrap().to_string(), "exact:www.example.test");
    /// assert!(matches!("198.18.0.0/24".parse::<Selector>().unwrap(), Selector::Prefix(_)));
    /// ```
    pub fn parse(input: &str) -> Result<Self, PolicyError> {
        let input = input.trim();
        let name =
            |s: &str| DomainName::parse(s).map_err(|source| PolicyError::Name { input: input.to_string(), source });
        if let Some(rest) = input.strip_prefix("exact:") {
            return Ok(Selector::Exact(name(rest)?));
        }
        if let Some(rest) = input.strip_prefix("*.") {
            return Ok(Selector::Subdomains(name(rest)?));
        }
        // An IPv6 address has a colon; an IPv4 address starts with a digit (most names do not).
        let may_be_v4 = input.as_bytes().first().is_some_and(u8::is_ascii_digit);
        if input.contains(':') || input.contains('/') || (may_be_v4 && input.parse::<std::net::IpAddr>().is_ok()) {
            return Ok(Selector::Prefix(IpPrefix::parse(input)?));
        }
        Ok(Selector::Subtree(name(input)?))
    }

    /// The domain name, for the three name selectors.
    pub fn domain(&self) -> Option<&DomainName> {
        match self {
            Selector::Exact(n) | Selector::Subtree(n) | Selector::Subdomains(n) => Some(n),
            Selector::Prefix(_) => None,
        }
    }

    /// True when every name or address this selector matches is also matched by `other`.
    pub fn is_inside(&self, other: &Selector) -> bool {
        use Selector::*;
        match (self, other) {
            (Prefix(a), Prefix(b)) => b.covers(a),
            (Exact(a), Exact(b)) => a == b,
            (Exact(a), Subtree(b)) => a.is_within(b),
            (Exact(a), Subdomains(b)) => a != b && a.is_within(b),
            (Subtree(a) | Subdomains(a), Subtree(b)) => a.is_within(b),
            (Subtree(a), Subdomains(b)) => a != b && a.is_within(b),
            (Subdomains(a), Subdomains(b)) => a.is_within(b),
            _ => false,
        }
    }

    /// True when the two selectors match at least one common name or address.
    pub fn overlaps(&self, other: &Selector) -> bool {
        self.is_inside(other) || other.is_inside(self) || self.shares_names_with(other)
    }

    fn shares_names_with(&self, other: &Selector) -> bool {
        use Selector::*;
        // The only partial overlaps among name selectors: `*.a` and `a` (subtree) share everything
        // below `a`; both cases are covered by is_inside. Prefixes nest or are disjoint.
        matches!((self, other), (Subdomains(a), Subtree(b)) | (Subtree(b), Subdomains(a)) if a == b)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Exact(n) => write!(f, "exact:{n}"),
            Selector::Subtree(n) => write!(f, "{n}"),
            Selector::Subdomains(n) => write!(f, "*.{n}"),
            Selector::Prefix(p) => write!(f, "{p}"),
        }
    }
}

impl FromStr for Selector {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl TryFrom<String> for Selector {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Selector::parse(&s)
    }
}

/// Deserialised from the text form, borrowed from the input where the format allows (a bundle's
/// million selectors then cost no `String` each).
impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Selector;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a selector: a name, exact:name, *.name or a prefix")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Selector, E> {
                Selector::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl From<Selector> for String {
    fn from(s: Selector) -> String {
        s.to_string()
    }
}

/// Defines a keyword enum with its text forms, parsing and display.
macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The text form.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $name {
            type Err = PolicyError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(PolicyError::Keyword {
                        what: $what,
                        input: s.to_string(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }
    };
}

keyword_enum!(
    /// What enforcement does when a rule matches.
    Action, "action" {
        /// Send the user to the block page (DNS: the block-page server's address; HTTP: a redirect).
        BlockPage = "block-page",
        /// DNS answers NXDOMAIN; the packet path drops.
        Nxdomain = "nxdomain",
        /// DNS answers NOERROR with no records; the packet path drops.
        Nodata = "nodata",
        /// Silently drop (DNS: no answer).
        Drop = "drop",
        /// TCP reset in both directions (DNS: treated as NXDOMAIN).
        Reset = "reset",
    }
);

keyword_enum!(
    /// The legal ground of an order, as shown in the transparency report.
    Category, "category" {
        /// Terrorist content.
        Terrorism = "terrorism",
        /// Child sexual abuse material.
        ChildAbuse = "child-abuse",
        /// Malware distribution or botnet command and control.
        Malware = "malware",
        /// Phishing and fraud.
        Phishing = "phishing",
        /// A court order on other grounds.
        CourtOrder = "court-order",
        /// Anything else the law allows; the summary must say what.
        Other = "other",
    }
);

keyword_enum!(
    /// An order's status as people set it, or as derived from the clock.
    OrderStatus, "status" {
        /// Recorded, not yet approved; never enforced.
        Draft = "draft",
        /// Approved, not yet effective.
        Approved = "approved",
        /// Approved and within its validity: enforced.
        Active = "active",
        /// Past its expiry: no longer enforced.
        Expired = "expired",
        /// Withdrawn: no longer enforced.
        Revoked = "revoked",
    }
);

/// A legal instrument that authorises blocking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Store identifier.
    pub id: OrderId,
    /// Who issued it (a court, the regulator, ...).
    pub authority: String,
    /// The instrument's own reference number.
    pub reference: String,
    /// Date of issue (Unix seconds).
    pub issued_at: i64,
    /// Enforcement starts here (Unix seconds).
    pub effective_from: i64,
    /// Enforcement ends here (Unix seconds). Every order expires.
    pub expires_at: i64,
    /// Legal ground.
    pub category: Category,
    /// A summary fit for the public.
    pub summary: String,
    /// Whether the transparency report lists this order.
    pub publishable: bool,
    /// Where an affected person appeals.
    pub appeal_contact: String,
    /// Stored status: draft, approved or revoked.
    pub status: OrderStatus,
    /// Who recorded it.
    pub proposed_by: String,
    /// Who approved it (never the proposer).
    pub approved_by: Option<String>,
    /// When it was revoked, and why.
    pub revoked: Option<Revocation>,
}

/// Who revoked an order, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Who.
    pub by: String,
    /// When (Unix seconds).
    pub at: i64,
    /// Why.
    pub reason: String,
}

impl Order {
    /// Checks the fields a proposer fills in: required text present, expiry after the effective
    /// date and no later than `max_days` after it.
    pub fn validate(&self, max_days: u32) -> Result<(), PolicyError> {
        for (name, value) in [
            ("authority", &self.authority),
            ("reference", &self.reference),
            ("summary", &self.summary),
            ("appeal_contact", &self.appeal_contact),
            ("proposed_by", &self.proposed_by),
        ] {
            if value.trim().is_empty() {
                return Err(PolicyError::MissingField(name));
            }
        }
        if self.expires_at <= self.effective_from {
            return Err(PolicyError::Validity("expires_at must be after effective_from".into()));
        }
        let max = i64::from(max_days) * 86_400;
        if self.expires_at - self.effective_from > max {
            return Err(PolicyError::Validity(format!(
                "the order lasts {} days; the configured maximum is {max_days} days",
                (self.expires_at - self.effective_from + 86_399) / 86_400
            )));
        }
        Ok(())
    }

    /// The status at time `now`: stored draft/revoked as is; approved orders are approved, active
    /// or expired depending on the clock.
    pub fn status_at(&self, now: i64) -> OrderStatus {
        match self.status {
            OrderStatus::Approved | OrderStatus::Active | OrderStatus::Expired => {
                if now >= self.expires_at {
                    OrderStatus::Expired
                } else if now >= self.effective_from {
                    OrderStatus::Active
                } else {
                    OrderStatus::Approved
                }
            }
            s => s,
        }
    }

    /// True when the order's rules are enforced at `now`.
    pub fn is_in_force(&self, now: i64) -> bool {
        self.status_at(now) == OrderStatus::Active
    }

    /// Approves a draft. The approver must not be the proposer.
    pub fn approve(&mut self, approver: &str) -> Result<(), PolicyError> {
        if self.status != OrderStatus::Draft {
            return Err(PolicyError::Transition { order: self.id, status: self.status, action: "approve" });
        }
        if approver.trim().is_empty() || approver == self.proposed_by {
            return Err(PolicyError::SelfApproval { order: self.id, actor: approver.to_string() });
        }
        self.status = OrderStatus::Approved;
        self.approved_by = Some(approver.to_string());
        Ok(())
    }

    /// Revokes a draft or approved order.
    pub fn revoke(&mut self, by: &str, at: i64, reason: &str) -> Result<(), PolicyError> {
        if self.status == OrderStatus::Revoked {
            return Err(PolicyError::Transition { order: self.id, status: self.status, action: "revoke" });
        }
        if reason.trim().is_empty() {
            return Err(PolicyError::MissingField("reason"));
        }
        self.status = OrderStatus::Revoked;
        self.revoked = Some(Revocation { by: by.to_string(), at, reason: reason.to_string() });
        Ok(())
    }
}

/// A blocking rule: one selector, one action, under exactly one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Store identifier.
    pub id: RuleId,
    /// The order that authorises it.
    pub order: OrderId,
    /// What it matches.
    pub selector: Selector,
    /// What enforcement does.
    pub action: Action,
    /// Set when a guard was overridden: the recorded reason.
    pub forced: Option<String>,
}

/// An exception that must never be blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowEntry {
    /// Store identifier.
    pub id: AllowId,
    /// What it protects (`Exact`, `Subtree` or `Prefix`; `Subdomains` is accepted too).
    pub selector: Selector,
    /// Why (e.g. "ministry portal", "gateway resolvers").
    pub reason: String,
}

/// The collateral-damage guard: the shortest prefixes accepted without `force`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// Shortest IPv4 prefix length accepted without force (default 24).
    pub min_ipv4_len: u8,
    /// Shortest IPv6 prefix length accepted without force (default 48).
    pub min_ipv6_len: u8,
}

impl Default for Guard {
    fn default() -> Self {
        Guard { min_ipv4_len: 24, min_ipv6_len: 48 }
    }
}

impl Guard {
    /// Refuses a prefix broader than the guard allows.
    pub fn check(&self, selector: &Selector) -> Result<(), PolicyError> {
        if let Selector::Prefix(prefix) = selector {
            let min = match prefix {
                IpPrefix::V4 { .. } => self.min_ipv4_len,
                IpPrefix::V6 { .. } => self.min_ipv6_len,
            };
            if prefix.len() < min {
                return Err(PolicyError::TooBroad { prefix: *prefix, min });
            }
        }
        Ok(())
    }
}

/// Checks a proposed rule against the allowlist.
///
/// A rule inside an allow entry is always refused (it could never apply). A rule that covers or
/// overlaps an allow entry is refused unless forced; forced, the allowlisted part stays allowed,
/// because an allow entry beats a block at the same or greater specificity.
pub fn check_allowlist<'a>(
    rule: &Selector,
    allowlist: impl IntoIterator<Item = &'a AllowEntry>,
    forced: bool,
) -> Result<(), PolicyError> {
    for allow in allowlist {
        if rule.is_inside(&allow.selector) {
            return Err(PolicyError::InsideAllowlisted {
                rule: rule.clone(),
                allow: allow.selector.clone(),
                allow_id: allow.id,
            });
        }
        if !forced && rule.overlaps(&allow.selector) {
            return Err(PolicyError::CoversAllowlisted {
                rule: rule.clone(),
                allow: allow.selector.clone(),
                allow_id: allow.id,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order {
            id: OrderId(1),
            authority: "Court of First Instance, Baghdad".into(),
            reference: "CFI-2026-0042".into(),
            issued_at: 1_000,
            effective_from: 1_000,
            expires_at: 1_000 + 30 * 86_400,
            category: Category::Phishing,
            summary: "Phishing site imitating a bank".into(),
            publishable: true,
            appeal_contact: "appeals@regulator.example".into(),
            status: OrderStatus::Draft,
            proposed_by: "alice".into(),
            approved_by: None,
            revoked: None,
        }
    }

    fn sel(s: &str) -> Selector {
        s.parse().unwrap()
    }

    #[test]
    fn four_eyes() {
        let mut o = order();
        assert_eq!(o.approve("alice"), Err(PolicyError::SelfApproval { order: OrderId(1), actor: "alice".into() }));
        assert_eq!(o.status, OrderStatus::Draft);
        o.approve("bob").unwrap();
        assert_eq!(o.approved_by.as_deref(), Some("bob"));
        assert!(matches!(o.approve("carol"), Err(PolicyError::Transition { .. })));
    }

    #[test]
    fn status_follows_the_clock() {
        let mut o = order();
        assert_eq!(o.status_at(5_000), OrderStatus::Draft);
        assert!(!o.is_in_force(5_000));
        o.approve("bob").unwrap();
        assert_eq!(o.status_at(999), OrderStatus::Approved);
        assert_eq!(o.status_at(1_000), OrderStatus::Active);
        assert_eq!(o.status_at(o.expires_at - 1), OrderStatus::Active);
        assert_eq!(o.status_at(o.expires_at), OrderStatus::Expired);
        o.revoke("carol", 2_000, "order quashed on appeal").unwrap();
        assert_eq!(o.status_at(3_000), OrderStatus::Revoked);
        assert!(!o.is_in_force(3_000));
    }

    #[test]
    fn validity_limits() {
        let mut o = order();
        o.validate(365).unwrap();
        o.expires_at = o.effective_from + 400 * 86_400;
        assert!(matches!(o.validate(365), Err(PolicyError::Validity(_))));
        o.expires_at = o.effective_from;
        assert!(matches!(o.validate(365), Err(PolicyError::Validity(_))));
        let mut o = order();
        o.reference = "  ".into();
        assert_eq!(o.validate(365), Err(PolicyError::MissingField("reference")));
    }

    #[test]
    fn guard_refuses_broad_prefixes() {
        let g = Guard::default();
        g.check(&sel("198.18.0.0/24")).unwrap();
        g.check(&sel("2001:db8:1::/48")).unwrap();
        assert!(matches!(g.check(&sel("198.18.0.0/23")), Err(PolicyError::TooBroad { min: 24, .. })));
        assert!(matches!(g.check(&sel("2001:db8::/32")), Err(PolicyError::TooBroad { min: 48, .. })));
        g.check(&sel("example.test")).unwrap();
    }

    #[test]
    fn selector_containment() {
        assert!(sel("exact:www.a.test").is_inside(&sel("a.test")));
        assert!(sel("exact:a.test").is_inside(&sel("a.test")));
        assert!(!sel("exact:a.test").is_inside(&sel("*.a.test")));
        assert!(sel("*.a.test").is_inside(&sel("a.test")));
        assert!(!sel("a.test").is_inside(&sel("*.a.test")));
        assert!(sel("a.test").overlaps(&sel("*.a.test")));
        assert!(sel("b.a.test").is_inside(&sel("*.a.test")));
        assert!(!sel("ba.test").overlaps(&sel("a.test")));
        assert!(sel("198.18.1.0/24").is_inside(&sel("198.18.0.0/16")));
        assert!(!sel("198.18.0.0/16").is_inside(&sel("198.18.1.0/24")));
        assert!(!sel("198.18.0.0/16").overlaps(&sel("2001:db8::/32")));
    }

    #[test]
    fn allowlist_conflicts() {
        let allow = vec![
            AllowEntry { id: AllowId(7), selector: sel("gov.test"), reason: "government".into() },
            AllowEntry { id: AllowId(8), selector: sel("198.18.5.0/24"), reason: "resolvers".into() },
        ];
        // Inside an allow entry: never.
        let e = check_allowlist(&sel("portal.gov.test"), &allow, true).unwrap_err();
        assert!(matches!(e, PolicyError::InsideAllowlisted { allow_id: AllowId(7), .. }), "{e}");
        // Covering an allow entry: refused, naming it, unless forced.
        let e = check_allowlist(&sel("test"), &allow, false).unwrap_err();
        assert!(e.to_string().contains("gov.test"), "{e}");
        check_allowlist(&sel("test"), &allow, true).unwrap();
        assert!(matches!(
            check_allowlist(&sel("198.18.0.0/16"), &allow, false),
            Err(PolicyError::CoversAllowlisted { allow_id: AllowId(8), .. })
        ));
        check_allowlist(&sel("other.test"), &allow, false).unwrap();
    }

    #[test]
    fn keywords_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), *a);
        }
        for c in Category::ALL {
            assert_eq!(c.to_string().parse::<Category>().unwrap(), *c);
        }
        let e = "explode".parse::<Action>().unwrap_err();
        assert!(e.to_string().contains("block-page"), "{e}");
    }
}
