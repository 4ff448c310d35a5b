//! The compiled, immutable [`Ruleset`]: "is this name or address blocked, and under which order?"
//!
//! A [`PolicySnapshot`] (or a [`RulesetBuilder`]) compiles into three structures that share one
//! table of compiled entries (a rule or an allow entry, its order and its action):
//! - a domain suffix set (`domain_set`): the label suffixes of a query are hashed in one
//!   right-to-left pass (case-folded, eight bytes at a time) and walked from the shortest; a small
//!   filter over every selector name and its ancestors stops the walk at the first suffix that
//!   cannot lead to a match, and a flat open-addressing table holds the outcomes beside the name
//!   itself (up to 24 bytes; a longer name as a 32-bit fingerprint, verified against a string
//!   arena on a fingerprint hit), so a hash collision can never produce a false match;
//! - two longest-prefix-match maps, IPv4 and IPv6, flattened into sorted non-overlapping intervals
//!   that each carry their most specific entry (`ip_map`). An IPv4 map keeps each bucket's starts
//!   and entries in one cache line (`line_map`); the IPv6 map, and an IPv4 one whose prefixes are
//!   too few for their spread (or too tightly clustered, or whose entry numbers reach 2^23), is
//!   indexed by a direct table instead.
//!
//! # Which entry wins
//! The most specific selector wins. For names that is the longest matching suffix (most labels): at
//! the query name itself an `Exact` selector is more specific than a `Subtree`; a `Subtree` or
//! `Subdomains` (`*.n`) selector at a proper ancestor ranks by the ancestor's depth. For addresses it
//! is the longest prefix. At equal specificity an allow entry beats a block; two blocks (or two
//! allows) of equal specificity resolve to the lowest id. The slow, obvious twin in [`naive`] states
//! the same rules as a sort key; property tests hold the two together.
//!
//! The ruleset is `Send + Sync` and never changes after [`RulesetBuilder::build`]: enforcement points
//! share it behind an `Arc` and swap in a new one when the policy changes.

use std::collections::HashMap;
use std::fmt;
use std::mem::size_of;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::model::{Action, AllowEntry, AllowId, Order, OrderId, PolicyError, Rule, RuleId, Selector};
use crate::name::{DomainName, NameError};
use crate::prefix::IpPrefix;
use crate::snapshot::PolicySnapshot;

pub(crate) mod domain_set;
pub(crate) mod ip_map;
mod line_map;
#[doc(hidden)]
pub mod naive;
mod table;

pub use table::release_freed_memory;

use domain_set::{DomainSet, DomainSetBuilder, Dropped, NameKind, Rank, NAME_LANES};
use ip_map::{IntervalMap, LANES};
use line_map::Ipv4Map;

/// The decision for a name or address that some rule or allow entry selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// An allow entry protects it: never block.
    Allow {
        /// The allow entry that matched.
        allow: AllowId,
    },
    /// A rule blocks it.
    Block {
        /// The rule that matched.
        rule: RuleId,
        /// What enforcement does.
        action: Action,
    },
}

impl Verdict {
    /// True for [`Verdict::Block`].
    pub fn is_block(&self) -> bool {
        matches!(self, Verdict::Block { .. })
    }
}

/// Counts and memory of a compiled ruleset, for logs, metrics and the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RulesetStats {
    /// Orders known to the ruleset.
    pub orders: usize,
    /// Rules with a name selector, after removing duplicates.
    pub domain_rules: usize,
    /// Rules with an IPv4 prefix, after removing duplicates.
    pub ipv4_rules: usize,
    /// Rules with an IPv6 prefix, after removing duplicates.
    pub ipv6_rules: usize,
    /// Allow entries, after removing duplicates.
    pub allow_entries: usize,
    /// Rules or allow entries whose selector was already given by another one of the same kind; the
    /// one with the lowest id is kept.
    pub duplicates: usize,
    /// Rules skipped because their order is not in the ruleset (not in force).
    pub skipped: usize,
    /// Estimated heap memory of the compiled structure, in bytes (orders included).
    pub heap_bytes: usize,
}

/// Sentinel for "no entry".
pub(crate) const NO_ENTRY: u32 = u32::MAX;

/// What a compiled entry selects, enough to rebuild its [`Selector`] for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A name selector: the kind and the node (the offset of its name in the domain set's arena).
    Name(NameKind, u32),
    /// An IPv4 prefix.
    V4 { addr: u32, len: u8 },
    /// An IPv6 prefix: index into `Ruleset::v6_networks`, and its length.
    V6 { index: u32, len: u8 },
}

/// One compiled rule or allow entry. 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// `RuleId` or `AllowId`, depending on `order`.
    id: i64,
    /// Index into `Ruleset::orders`, or [`NO_ENTRY`] for an allow entry.
    order: u32,
    target: Target,
    action: Action,
}

impl Entry {
    fn verdict(&self) -> Verdict {
        if self.order == NO_ENTRY {
            Verdict::Allow { allow: AllowId(self.id) }
        } else {
            Verdict::Block { rule: RuleId(self.id), action: self.action }
        }
    }
}

/// A lookup result: the entry that decides, with access to its order and selector.
#[derive(Clone, Copy)]
pub struct Match<'a> {
    ruleset: &'a Ruleset,
    /// An index into the ruleset's entries. A lookup that only asks whether anything matched
    /// never reads the entry, nor the entries' length.
    entry: u32,
}

impl<'a> Match<'a> {
    fn entry(&self) -> &'a Entry {
        &self.ruleset.entries[self.entry as usize]
    }

    /// Allow or block, with the id of the deciding entry.
    pub fn verdict(&self) -> Verdict {
        self.entry().verdict()
    }

    /// The order behind a block (`None` for an allow match).
    pub fn order(&self) -> Option<&'a Order> {
        self.ruleset.orders.get(self.entry().order as usize)
    }

    /// The selector that matched, rebuilt for display (allocates).
    pub fn selector(&self) -> Selector {
        match self.entry().target {
            Target::Name(kind, node) => {
                let name = self.ruleset.domains.node_name(node);
                // The arena holds only names that were valid `DomainName`s when compiled.
                let name = DomainName::parse(name).expect("compiled names are canonical domain names");
                match kind {
                    NameKind::Exact => Selector::Exact(name),
                    NameKind::Subtree => Selector::Subtree(name),
                    NameKind::Subdomains => Selector::Subdomains(name),
                }
            }
            Target::V4 { addr, len } => Selector::Prefix(IpPrefix::V4 { addr, len }),
            Target::V6 { index, len } => {
                Selector::Prefix(IpPrefix::V6 { addr: self.ruleset.v6_networks[index as usize], len })
            }
        }
    }
}

impl fmt::Debug for Match<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Match")
            .field("verdict", &self.verdict())
            .field("selector", &self.selector().to_string())
            .field("order", &self.order().map(|o| o.id))
            .finish()
    }
}

/// The compiled policy. Immutable; cheap to query from many threads.
pub struct Ruleset {
    orders: Vec<Order>,
    entries: Vec<Entry>,
    domains: DomainSet,
    v4: Ipv4Map,
    v6: IntervalMap<u128>,
    v6_networks: Vec<u128>,
    stats: RulesetStats,
    serial: u64,
}

/// The serial the next [`RulesetBuilder::build`] hands out.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

impl fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ruleset").field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl Default for Ruleset {
    fn default() -> Self {
        Ruleset::empty()
    }
}

impl Ruleset {
    /// A ruleset that matches nothing.
    pub fn empty() -> Self {
        RulesetBuilder::new().build()
    }

    /// Looks up a name as it arrives (a DNS question, an SNI, a Host header): any case, optional
    /// trailing dot; non-ASCII names are converted to A-labels first (IDNA).
    ///
    /// The ASCII path validates and case-folds a word at a time, then hashes, and does not
    /// allocate. A malformed name is an error, with the same detail as [`DomainName::parse`].
    #[inline]
    pub fn lookup_domain(&self, name: &str) -> Result<Option<Match<'_>>, NameError> {
        match self.domains.lookup_ascii(name.as_bytes()) {
            Some(entry) => Ok(self.to_match(entry)),
            None => {
                let name = DomainName::parse(name)?;
                Ok(self.lookup_name(&name))
            }
        }
    }

    /// [`lookup_domain`](Self::lookup_domain) for many names at once: `out` is cleared and gets
    /// one answer per name, in order.
    ///
    /// Faster per name than one call each on large rulesets: the lookups go side by side, so their
    /// cache misses overlap (see `DomainSet::lookup_many`).
    pub fn lookup_domains<'a, 'n>(
        &'a self,
        names: impl IntoIterator<Item = &'n str>,
        out: &mut Vec<Result<Option<Match<'a>>, NameError>>,
    ) {
        out.clear();
        let mut names = names.into_iter();
        loop {
            let mut chunk: [&str; NAME_LANES] = [""; NAME_LANES];
            let mut n = 0;
            for (slot, name) in chunk.iter_mut().zip(names.by_ref()) {
                *slot = name;
                n += 1;
            }
            let chunk = &chunk[..n];
            let mut found = [None; NAME_LANES];
            self.domains.lookup_many(chunk, &mut found[..n]);
            out.extend(chunk.iter().zip(found).map(|(name, found)| match found {
                Some(entry) => Ok(self.to_match(entry)),
                // Not ASCII, or not a name: convert (IDNA) or report as `lookup_domain` does.
                None => DomainName::parse(name).map(|name| self.lookup_name(&name)),
            }));
            if n < NAME_LANES {
                return;
            }
        }
    }

    /// Looks up a canonical name.
    pub fn lookup_name(&self, name: &DomainName) -> Option<Match<'_>> {
        // A canonical name always passes the ASCII path; `NO_ENTRY` is only a fallback.
        let found = self.domains.lookup_ascii(name.as_str().as_bytes());
        debug_assert!(found.is_some(), "the ASCII path refused the canonical name {name}");
        self.to_match(found.unwrap_or(NO_ENTRY))
    }

    /// Looks up an address: longest prefix match. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
    /// looked up as IPv4.
    #[inline]
    pub fn lookup_ip(&self, addr: IpAddr) -> Option<Match<'_>> {
        let entry = match v4_key(addr) {
            Ok(key) => self.v4.lookup(key),
            Err(key) => self.v6.lookup(key),
        };
        self.to_match(entry)
    }

    /// [`lookup_ip`](Self::lookup_ip) for many addresses at once: `out` is cleared and gets one
    /// answer per address, in order.
    ///
    /// Faster per address than one call each on large rulesets: the lookups go side by side, so
    /// their cache misses overlap (see `IntervalMap::lookup_many`).
    pub fn lookup_ips<'a>(&'a self, addrs: &[IpAddr], out: &mut Vec<Option<Match<'a>>>) {
        out.clear();
        out.reserve(addrs.len());
        for chunk in addrs.chunks(LANES) {
            // Split the chunk by family, look each family up side by side, then put the answers back
            // in order.
            let (mut v4, mut v4_at, mut n4) = ([0u32; LANES], [0usize; LANES], 0);
            let (mut v6, mut v6_at, mut n6) = ([0u128; LANES], [0usize; LANES], 0);
            for (i, addr) in chunk.iter().enumerate() {
                match v4_key(*addr) {
                    Ok(key) => {
                        v4[n4] = key;
                        v4_at[n4] = i;
                        n4 += 1;
                    }
                    Err(key) => {
                        v6[n6] = key;
                        v6_at[n6] = i;
                        n6 += 1;
                    }
                }
            }
            let mut found = [NO_ENTRY; LANES];
            let mut entries = [NO_ENTRY; LANES];
            self.v4.lookup_many(&v4[..n4], &mut entries[..n4]);
            for (&at, &entry) in v4_at[..n4].iter().zip(&entries) {
                found[at] = entry;
            }
            self.v6.lookup_many(&v6[..n6], &mut entries[..n6]);
            for (&at, &entry) in v6_at[..n6].iter().zip(&entries) {
                found[at] = entry;
            }
            out.extend(found[..chunk.len()].iter().map(|&entry| self.to_match(entry)));
        }
    }

    /// Counts and memory.
    pub fn stats(&self) -> RulesetStats {
        self.stats
    }

    /// A number no other ruleset built in this process has (never 0), so that a caller can
    /// remember "checked against this policy" and know when a reload makes the check stale.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The orders the ruleset enforces.
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    /// The match for a map's answer: [`NO_ENTRY`], or an index into `entries` (the maps hold
    /// nothing else).
    fn to_match(&self, entry: u32) -> Option<Match<'_>> {
        debug_assert!(entry == NO_ENTRY || (entry as usize) < self.entries.len());
        (entry != NO_ENTRY).then_some(Match { ruleset: self, entry })
    }

    fn heap_bytes(&self) -> usize {
        let orders: usize = self
            .orders
            .iter()
            .map(|o| {
                o.authority.capacity()
                    + o.reference.capacity()
                    + o.summary.capacity()
                    + o.appeal_contact.capacity()
                    + o.proposed_by.capacity()
                    + o.approved_by.as_ref().map_or(0, String::capacity)
                    + o.revoked.as_ref().map_or(0, |r| r.by.capacity() + r.reason.capacity())
            })
            .sum();
        self.orders.capacity() * size_of::<Order>()
            + orders
            + self.entries.capacity() * size_of::<Entry>()
            + self.domains.heap_bytes()
            + self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + self.v6_networks.capacity() * size_of::<u128>()
    }
}

/// The IPv4 key of an address (IPv4-mapped IPv6 counts as IPv4), or else its IPv6 key.
#[inline(always)]
fn v4_key(addr: IpAddr) -> Result<u32, u128> {
    match addr {
        IpAddr::V4(a) => Ok(u32::from(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Ok(u32::from(v4)),
            None => Err(u128::from(a)),
        },
    }
}

impl PolicySnapshot {
    /// Compiles the snapshot into a [`Ruleset`]. Rules whose order is not in the snapshot are skipped
    /// and counted in [`RulesetStats::skipped`].
    pub fn compile(&self) -> Ruleset {
        let mut builder = RulesetBuilder::with_capacity(self.rules.len());
        for order in &self.orders {
            builder.add_order(order.clone());
        }
        for rule in &self.rules {
            builder.add_rule(rule);
        }
        for allow in &self.allow {
            builder.add_allow(allow);
        }
        builder.build()
    }
}

/// Who an item belongs to while building.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    /// An allow entry (sorts first: allow beats block).
    Allow,
    /// A rule of this order.
    Rule(OrderId),
}

/// A rule or allow entry waiting for [`RulesetBuilder::build`].
#[derive(Debug, Clone, Copy)]
struct Pending {
    owner: Owner,
    id: i64,
    action: Action,
}

/// Collects orders, rules and allow entries, then builds a [`Ruleset`].
///
/// Rules may be added before their order; a rule whose order is never added is skipped.
#[derive(Debug, Default)]
pub struct RulesetBuilder {
    orders: Vec<Order>,
    names: DomainSetBuilder<Pending>,
    v4: Vec<(u32, u8, Pending)>,
    v6: Vec<(u128, u8, Pending)>,
}

impl RulesetBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        RulesetBuilder::default()
    }

    /// An empty builder sized for about `rules` rules.
    pub fn with_capacity(rules: usize) -> Self {
        RulesetBuilder { names: DomainSetBuilder::with_capacity(rules), ..RulesetBuilder::default() }
    }

    /// Makes room for about `rules` more rules (a decoder that learns the count late calls this).
    pub fn reserve(&mut self, rules: usize) {
        self.names.reserve(rules);
    }

    /// Adds an order. A second order with the same id is ignored.
    pub fn add_order(&mut self, order: Order) {
        self.orders.push(order);
    }

    /// Adds a rule.
    pub fn add_rule(&mut self, rule: &Rule) {
        let pending = Pending { owner: Owner::Rule(rule.order), id: rule.id.0, action: rule.action };
        self.add(&rule.selector, pending);
    }

    /// Adds a rule given by its parts, the selector in its text form, through [`Selector::parse`]:
    /// whose error is returned for a bad selector, and then nothing is added. A caller that holds
    /// many rules as text (a bundle) tries [`add_rule_ascii`](Self::add_rule_ascii) first.
    pub fn add_rule_text(
        &mut self,
        id: RuleId,
        order: OrderId,
        selector: &str,
        action: Action,
    ) -> Result<(), PolicyError> {
        let pending = Pending { owner: Owner::Rule(order), id: id.0, action };
        self.add(&Selector::parse(selector)?, pending);
        Ok(())
    }

    /// Adds a rule whose selector text is a name selector written in ASCII (any case, optional
    /// trailing dot), validated and lowercased straight into the builder: no allocation, and the
    /// same rule [`add_rule_text`](Self::add_rule_text) would add. Returns false, having added
    /// nothing, for anything that needs the full parser: prefixes, names that start with a digit
    /// (they may be IPv4 addresses), Unicode, and errors.
    pub fn add_rule_ascii(&mut self, id: RuleId, order: OrderId, selector: &[u8], action: Action) -> bool {
        let text = selector.trim_ascii();
        let (kind, name) = if let Some(rest) = text.strip_prefix(b"exact:") {
            (NameKind::Exact, rest)
        } else if let Some(rest) = text.strip_prefix(b"*.") {
            (NameKind::Subdomains, rest)
        } else if text.first().is_some_and(u8::is_ascii_digit) {
            return false;
        } else {
            (NameKind::Subtree, text)
        };
        self.names.push_ascii(name, kind, Pending { owner: Owner::Rule(order), id: id.0, action })
    }

    /// Adds an allow entry.
    pub fn add_allow(&mut self, allow: &AllowEntry) {
        // The action of an allow entry is never read.
        let pending = Pending { owner: Owner::Allow, id: allow.id.0, action: Action::Drop };
        self.add(&allow.selector, pending);
    }

    fn add(&mut self, selector: &Selector, pending: Pending) {
        match selector {
            Selector::Exact(n) => self.names.push(n.as_str(), NameKind::Exact, pending),
            Selector::Subtree(n) => self.names.push(n.as_str(), NameKind::Subtree, pending),
            Selector::Subdomains(n) => self.names.push(n.as_str(), NameKind::Subdomains, pending),
            Selector::Prefix(IpPrefix::V4 { addr, len }) => self.v4.push((*addr, *len, pending)),
            Selector::Prefix(IpPrefix::V6 { addr, len }) => self.v6.push((*addr, *len, pending)),
        }
    }

    /// Compiles everything added so far.
    pub fn build(self) -> Ruleset {
        let RulesetBuilder { orders: all_orders, names, v4, v6 } = self;
        let mut stats = RulesetStats::default();

        // Orders: the first one of each id is kept.
        let mut order_index: HashMap<OrderId, u32> = HashMap::with_capacity(all_orders.len());
        let mut orders = Vec::with_capacity(all_orders.len());
        for order in all_orders {
            if let std::collections::hash_map::Entry::Vacant(slot) = order_index.entry(order.id) {
                slot.insert(orders.len() as u32);
                orders.push(order);
            }
        }
        stats.orders = orders.len();
        let order_index = OrderIndex::new(order_index);
        // The order index of a pending item: `Some(NO_ENTRY)` for an allow entry, `None` when the
        // rule's order is missing.
        let order_of = |p: &Pending| match p.owner {
            Owner::Allow => Some(NO_ENTRY),
            Owner::Rule(id) => order_index.get(id),
        };

        let mut entries: Vec<Entry> = Vec::with_capacity(names.len() + v4.len() + v6.len());
        let mut push_entry = |p: &Pending, order: u32, target: Target, stats: &mut RulesetStats| -> u32 {
            match target {
                _ if order == NO_ENTRY => stats.allow_entries += 1,
                Target::Name(..) => stats.domain_rules += 1,
                Target::V4 { .. } => stats.ipv4_rules += 1,
                Target::V6 { .. } => stats.ipv6_rules += 1,
            }
            let index = entries.len() as u32;
            entries.push(Entry { id: p.id, order, target, action: p.action });
            index
        };

        // Names.
        let (domains, dropped) = names.build(
            |p| order_of(p).map(|order| Rank { allow: order == NO_ENTRY, id: p.id }),
            |p, kind, node| {
                // Only items `rank` kept get here, so their order is known.
                let order = order_of(p).unwrap_or(NO_ENTRY);
                push_entry(p, order, Target::Name(kind, node), &mut stats)
            },
        );
        stats.skipped += dropped.skipped;
        stats.duplicates += dropped.duplicates;

        // Prefixes: per (prefix, allow or block) the lowest id is kept; at equal prefix an allow
        // entry sorts first and the interval map keeps the first item.
        let (v4_items, v4_dropped) = resolve_prefixes(v4, &order_of, |p, order, addr, len| {
            push_entry(p, order, Target::V4 { addr, len }, &mut stats)
        });
        let mut v6_networks = Vec::new();
        let (v6_items, v6_dropped) = resolve_prefixes(v6, &order_of, |p, order, addr, len| {
            let target = Target::V6 { index: v6_networks.len() as u32, len };
            v6_networks.push(addr);
            push_entry(p, order, target, &mut stats)
        });
        stats.skipped += v4_dropped.skipped + v6_dropped.skipped;
        stats.duplicates += v4_dropped.duplicates + v6_dropped.duplicates;
        let v4 = Ipv4Map::build(v4_items);
        let v6 = IntervalMap::build(v6_items);
        v6_networks.shrink_to_fit();
        entries.shrink_to_fit();

        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut ruleset = Ruleset { orders, entries, domains, v4, v6, v6_networks, stats, serial };
        ruleset.stats.heap_bytes = ruleset.heap_bytes();
        ruleset
    }
}

/// Order ids to their index in the ruleset, asked once or twice per rule while building. Order ids
/// are store row ids, small and dense, so a plain table usually serves (a hash per rule was 7% of a
/// million-rule compile); sparse or negative ids keep the map.
enum OrderIndex {
    Dense(Vec<u32>),
    Map(HashMap<OrderId, u32>),
}

impl OrderIndex {
    fn new(map: HashMap<OrderId, u32>) -> Self {
        let max = map.keys().map(|id| id.0).max().unwrap_or(0);
        let dense_enough = usize::try_from(max).is_ok_and(|max| max <= 16 * map.len() + 4096);
        if !dense_enough || map.keys().any(|id| id.0 < 0) {
            return OrderIndex::Map(map);
        }
        let mut table = vec![NO_ENTRY; max as usize + 1];
        for (id, index) in map {
            table[id.0 as usize] = index;
        }
        OrderIndex::Dense(table)
    }

    fn get(&self, id: OrderId) -> Option<u32> {
        match self {
            OrderIndex::Dense(table) => {
                usize::try_from(id.0).ok().and_then(|i| table.get(i).copied()).filter(|&index| index != NO_ENTRY)
            }
            OrderIndex::Map(map) => map.get(&id).copied(),
        }
    }
}

/// Sorts prefix items, drops those without an order and duplicates, and makes entries for the rest:
/// returns `(network, len, entry)` sorted by network then length, allow first at equal prefix.
fn resolve_prefixes<K: Ord + Copy>(
    mut items: Vec<(K, u8, Pending)>,
    order_of: &impl Fn(&Pending) -> Option<u32>,
    mut make_entry: impl FnMut(&Pending, u32, K, u8) -> u32,
) -> (Vec<(K, u8, u32)>, Dropped) {
    let mut dropped = Dropped::default();
    let mut resolved: Vec<(K, u8, u32, Pending)> = Vec::with_capacity(items.len());
    for (addr, len, p) in items.drain(..) {
        match order_of(&p) {
            Some(order) => resolved.push((addr, len, order, p)),
            None => dropped.skipped += 1,
        }
    }
    drop(items);
    // Stable: of two items with the same id (a broken input), the first given is kept.
    resolved.sort_by_key(|&(addr, len, order, p)| (addr, len, order != NO_ENTRY, p.id));
    let mut out = Vec::with_capacity(resolved.len());
    let mut previous: Option<(K, u8, bool)> = None;
    for (addr, len, order, p) in resolved {
        let key = (addr, len, order == NO_ENTRY);
        if previous == Some(key) {
            dropped.duplicates += 1;
            continue;
        }
        previous = Some(key);
        out.push((addr, len, make_entry(&p, order, addr, len)));
    }
    (out, dropped)
}

#[cfg(test)]
mod tests;
