//! The slow, obvious twin of the compiled [`Ruleset`](super::Ruleset), for property tests and as the
//! benchmark baseline. Not for production use.
//!
//! Names: a `HashMap` from name to the selectors given for it, walked label by label. Addresses: one
//! `HashMap` per prefix length, probed from the longest length down. The winner among all matching
//! candidates is the maximum of an explicit sort key, which states the precedence rules once:
//! (depth of the matching name or prefix length, `Exact` at the query name, allow, lowest id).

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::{Action, AllowId, OrderId, RuleId, Selector};
use crate::name::{DomainName, NameError};
use crate::prefix::{mask4, mask6, IpPrefix};
use crate::ruleset::Verdict;
use crate::snapshot::PolicySnapshot;

/// A candidate: one rule or allow entry.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    allow: bool,
    id: i64,
    action: Action,
}

impl Candidate {
    fn verdict(&self) -> Verdict {
        if self.allow {
            Verdict::Allow { allow: AllowId(self.id) }
        } else {
            Verdict::Block { rule: RuleId(self.id), action: self.action }
        }
    }
}

/// Kinds of name selector, as stored per name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Subtree,
    Subdomains,
}

/// The naive ruleset.
#[derive(Debug, Default)]
pub struct NaiveRuleset {
    names: HashMap<String, Vec<(Kind, Candidate)>>,
    v4: Vec<(u8, HashMap<u32, Vec<Candidate>>)>,
    v6: Vec<(u8, HashMap<u128, Vec<Candidate>>)>,
}

/// What the naive lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaiveMatch {
    /// The decision.
    pub verdict: Verdict,
    /// The selector that matched.
    pub selector: Selector,
}

impl NaiveRuleset {
    /// Builds from a snapshot: rules whose order is missing are ignored.
    pub fn from_snapshot(snapshot: &PolicySnapshot) -> Self {
        let orders: std::collections::HashSet<OrderId> = snapshot.orders.iter().map(|o| o.id).collect();
        let mut naive = NaiveRuleset::default();
        let mut v4: HashMap<u8, HashMap<u32, Vec<Candidate>>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, Vec<Candidate>>> = HashMap::new();
        let rules = snapshot
            .rules
            .iter()
            .filter(|r| orders.contains(&r.order))
            .map(|r| (&r.selector, Candidate { allow: false, id: r.id.0, action: r.action }));
        let allows =
            snapshot.allow.iter().map(|a| (&a.selector, Candidate { allow: true, id: a.id.0, action: Action::Drop }));
        for (selector, candidate) in rules.chain(allows) {
            let (kind, name) = match selector {
                Selector::Exact(n) => (Kind::Exact, n),
                Selector::Subtree(n) => (Kind::Subtree, n),
                Selector::Subdomains(n) => (Kind::Subdomains, n),
                Selector::Prefix(IpPrefix::V4 { addr, len }) => {
                    v4.entry(*len).or_default().entry(*addr).or_default().push(candidate);
                    continue;
                }
                Selector::Prefix(IpPrefix::V6 { addr, len }) => {
                    v6.entry(*len).or_default().entry(*addr).or_default().push(candidate);
                    continue;
                }
            };
            naive.names.entry(name.as_str().to_string()).or_default().push((kind, candidate));
        }
        naive.v4 = v4.into_iter().collect();
        naive.v4.sort_by_key(|(len, _)| Reverse(*len));
        naive.v6 = v6.into_iter().collect();
        naive.v6.sort_by_key(|(len, _)| Reverse(*len));
        naive
    }

    /// Looks up a name (any case, optional trailing dot, Unicode converted).
    pub fn lookup_domain(&self, name: &str) -> Result<Option<NaiveMatch>, NameError> {
        let name = DomainName::parse(name)?;
        let depth = name.label_count();
        // (depth, exact at the query, allow, lowest id, subtree before `*.` for equal ids): the
        // maximum wins; of equal keys the first given.
        type Key = (usize, bool, bool, Reverse<i64>, bool);
        let mut best: Option<(Key, Kind, &str, Candidate)> = None;
        let mut suffix = name.as_str();
        let mut suffix_depth = depth;
        loop {
            let at_query = suffix_depth == depth;
            for &(kind, c) in self.names.get(suffix).map_or(&[][..], Vec::as_slice) {
                let matches = match kind {
                    Kind::Exact => at_query,
                    Kind::Subtree => true,
                    Kind::Subdomains => !at_query,
                };
                let key = (suffix_depth, kind == Kind::Exact, c.allow, Reverse(c.id), kind != Kind::Subdomains);
                if matches && best.as_ref().is_none_or(|(k, ..)| key > *k) {
                    best = Some((key, kind, suffix, c));
                }
            }
            match suffix.split_once('.') {
                Some((_, rest)) => {
                    suffix = rest;
                    suffix_depth -= 1;
                }
                None => break,
            }
        }
        Ok(best.map(|(_, kind, suffix, c)| {
            let n = DomainName::parse(suffix).unwrap_or_else(|_| name.clone());
            let selector = match kind {
                Kind::Exact => Selector::Exact(n),
                Kind::Subtree => Selector::Subtree(n),
                Kind::Subdomains => Selector::Subdomains(n),
            };
            NaiveMatch { verdict: c.verdict(), selector }
        }))
    }

    /// Looks up an address (IPv4-mapped IPv6 as IPv4).
    pub fn lookup_ip(&self, addr: IpAddr) -> Option<NaiveMatch> {
        let addr = match addr {
            IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().find_map(|(len, table)| {
                    let network = a & mask4(*len);
                    let winner = best(table.get(&network)?)?;
                    Some(NaiveMatch {
                        verdict: winner.verdict(),
                        selector: Selector::Prefix(IpPrefix::V4 { addr: network, len: *len }),
                    })
                })
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().find_map(|(len, table)| {
                    let network = a & mask6(*len);
                    let winner = best(table.get(&network)?)?;
                    Some(NaiveMatch {
                        verdict: winner.verdict(),
                        selector: Selector::Prefix(IpPrefix::V6 { addr: network, len: *len }),
                    })
                })
            }
        }
    }
}

/// Allow first, then the lowest id, then the first given.
fn best(candidates: &[Candidate]) -> Option<Candidate> {
    candidates.iter().copied().min_by_key(|c| (!c.allow, c.id))
}
