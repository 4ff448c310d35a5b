//! The mitigation planner: turns attacks (and operators' manual requests) into the routes the
//! BGP speaker should announce, behind safety rails.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use bawaba_bgp::{FlowAction, FlowSpec, NumericMatch, Prefix, Route, BLACKHOLE};
use serde::Serialize;

use crate::attack::{Attack, Event, Vector};
use crate::config::{parse_community, ConfigError, FlowSpecActionConfig, MitigationMode, MitigatorConfig};
use crate::protected::Protected;
use crate::window::{ICMP, ICMPV6, TCP, UDP};

/// Who asked for a mitigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "kebab-case")]
pub enum Origin {
    /// The detector, for the attack with this id.
    Attack(u64),
    /// An operator, through [`Mitigator::manual`].
    Manual,
}

/// Why a route was not announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The destination is not inside one protected prefix.
    OutsideProtected,
    /// The destination is inside, or covers, an allowlisted prefix.
    Allowlisted,
    /// The destination prefix is shorter than `min_prefix_v4` / `min_prefix_v6`.
    PrefixTooShort,
    /// `max_mitigations` are already active.
    TooMany,
    /// A blackhole's next hop is not of the destination's address family.
    NextHopFamily,
    /// A manual mitigation with this route is already active.
    Duplicate,
    /// No manual mitigation with this route is active (manual withdraw).
    NotFound,
}

impl Refusal {
    /// A snake_case name, usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::OutsideProtected => "outside_protected",
            Refusal::Allowlisted => "allowlisted",
            Refusal::PrefixTooShort => "prefix_too_short",
            Refusal::TooMany => "too_many",
            Refusal::NextHopFamily => "next_hop_family",
            Refusal::Duplicate => "duplicate",
            Refusal::NotFound => "not_found",
        }
    }
}

/// What the planner decided about one route. Decisions are a report: what to hand the BGP
/// speaker is [`Mitigator::routes`], the union of every active mitigation's routes.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The mitigation now holds this route.
    Announce {
        /// Who asked.
        origin: Origin,
        /// The route.
        route: Route,
    },
    /// The mitigation no longer holds this route (it leaves [`Mitigator::routes`] unless
    /// another mitigation holds it too).
    Withdraw {
        /// Who asked.
        origin: Origin,
        /// The route.
        route: Route,
    },
    /// The route was not announced.
    Refused {
        /// Who asked.
        origin: Origin,
        /// The route.
        route: Route,
        /// Why.
        reason: Refusal,
    },
    /// Dry run: the route would have been announced (or withdrawn) and was not.
    DryRun {
        /// Who asked.
        origin: Origin,
        /// The route.
        route: Route,
        /// A withdrawal rather than an announcement.
        withdraw: bool,
    },
}

impl Decision {
    /// The route decided about.
    pub fn route(&self) -> &Route {
        match self {
            Decision::Announce { route, .. }
            | Decision::Withdraw { route, .. }
            | Decision::Refused { route, .. }
            | Decision::DryRun { route, .. } => route,
        }
    }

    /// Who asked.
    pub fn origin(&self) -> Origin {
        match self {
            Decision::Announce { origin, .. }
            | Decision::Withdraw { origin, .. }
            | Decision::Refused { origin, .. }
            | Decision::DryRun { origin, .. } => *origin,
        }
    }
}

/// A route in one line, as logs, the CLI and the API show it.
pub fn route_text(route: &Route) -> String {
    RouteText(route).to_string()
}

/// `Route` has no text form; this one is for logs.
struct RouteText<'a>(&'a Route);

impl fmt::Display for RouteText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Route::Unicast { prefix, next_hop, .. } => write!(f, "blackhole {prefix} via {next_hop}"),
            Route::FlowSpec { rule, action, .. } => {
                write!(f, "flowspec dst {}", rule.destination)?;
                if !rule.protocols.is_empty() {
                    write!(f, " proto {:?}", rule.protocols)?;
                }
                if !rule.source_ports.is_empty() {
                    write!(f, " sport {:?}", rule.source_ports)?;
                }
                match action {
                    FlowAction::Discard => write!(f, " discard"),
                    FlowAction::RateLimit(r) => write!(f, " rate-limit {r} B/s"),
                }
            }
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match self.origin() {
            Origin::Attack(id) => format!("attack {id}"),
            Origin::Manual => "manual".into(),
        };
        match self {
            Decision::Announce { route, .. } => write!(f, "{origin}: announce {}", RouteText(route)),
            Decision::Withdraw { route, .. } => write!(f, "{origin}: withdraw {}", RouteText(route)),
            Decision::Refused { route, reason, .. } => {
                write!(f, "{origin}: refused {} ({})", RouteText(route), reason.as_str())
            }
            Decision::DryRun { route, withdraw, .. } => {
                write!(
                    f,
                    "{origin}: dry run, would {} {}",
                    if *withdraw { "withdraw" } else { "announce" },
                    RouteText(route)
                )
            }
        }
    }
}

/// Refusals by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefusedCounts {
    /// [`Refusal::OutsideProtected`].
    pub outside_protected: u64,
    /// [`Refusal::Allowlisted`].
    pub allowlisted: u64,
    /// [`Refusal::PrefixTooShort`].
    pub prefix_too_short: u64,
    /// [`Refusal::TooMany`].
    pub too_many: u64,
    /// [`Refusal::NextHopFamily`].
    pub next_hop_family: u64,
    /// [`Refusal::Duplicate`].
    pub duplicate: u64,
    /// [`Refusal::NotFound`].
    pub not_found: u64,
}

impl RefusedCounts {
    fn count(&mut self, reason: Refusal) {
        let slot = match reason {
            Refusal::OutsideProtected => &mut self.outside_protected,
            Refusal::Allowlisted => &mut self.allowlisted,
            Refusal::PrefixTooShort => &mut self.prefix_too_short,
            Refusal::TooMany => &mut self.too_many,
            Refusal::NextHopFamily => &mut self.next_hop_family,
            Refusal::Duplicate => &mut self.duplicate,
            Refusal::NotFound => &mut self.not_found,
        };
        *slot += 1;
    }

    /// The count for one reason.
    pub fn get(&self, reason: Refusal) -> u64 {
        match reason {
            Refusal::OutsideProtected => self.outside_protected,
            Refusal::Allowlisted => self.allowlisted,
            Refusal::PrefixTooShort => self.prefix_too_short,
            Refusal::TooMany => self.too_many,
            Refusal::NextHopFamily => self.next_hop_family,
            Refusal::Duplicate => self.duplicate,
            Refusal::NotFound => self.not_found,
        }
    }
}

/// Counters of the planner's decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MitigatorStats {
    /// Announce decisions.
    pub announced: u64,
    /// Withdraw decisions.
    pub withdrawn: u64,
    /// Dry-run decisions (announce or withdraw).
    pub dry_run: u64,
    /// Refused decisions, one per route, by reason. An attack refused for
    /// [`Refusal::TooMany`] is retried on its updates but counted once.
    pub refused: RefusedCounts,
    /// Gauge: active mitigations.
    pub active: u64,
}

/// One active mitigation.
#[derive(Debug, Clone, PartialEq)]
pub struct Mitigation {
    /// Who asked.
    pub origin: Origin,
    /// Its routes (announced, or planned in a dry run).
    pub routes: Vec<Route>,
    /// When it began, ms.
    pub since_ms: u64,
    /// Why: the attack's vector, or the operator's reason.
    pub reason: String,
    /// The attack's vectors the routes were planned for.
    vectors: Vec<Vector>,
}

/// The mitigation planner. Feed it the detector's events with [`Mitigator::on_event`]; hand
/// [`Mitigator::routes`] to the BGP speaker.
///
/// The safety rails, checked for every route: the destination is inside one protected
/// prefix, neither inside nor covering an allowlisted prefix, no shorter than the minimum
/// length; at most `max_mitigations` at once. In a dry run everything is planned, checked
/// and reported, and nothing is announced.
#[derive(Debug)]
pub struct Mitigator {
    mode: MitigationMode,
    dry_run: bool,
    next_hop_v4: IpAddr,
    next_hop_v6: IpAddr,
    communities: Vec<u32>,
    action: FlowAction,
    min_v4: u8,
    min_v6: u8,
    allowlist: Vec<Prefix>,
    max: usize,
    protected: Protected,
    attacks: BTreeMap<u64, Mitigation>,
    manual: Vec<Mitigation>,
    /// Attacks refused for `TooMany`, tried again on their next update.
    waiting: BTreeSet<u64>,
    stats: MitigatorStats,
}

impl Mitigator {
    /// A planner for `config`, never announcing outside `protected`
    /// ([`crate::Detector::protected`]).
    pub fn new(config: &MitigatorConfig, protected: Protected) -> Result<Mitigator, ConfigError> {
        for (field, value, max) in
            [("min_prefix_v4", config.min_prefix_v4, 32), ("min_prefix_v6", config.min_prefix_v6, 128)]
        {
            if value == 0 || value > max {
                return Err(ConfigError::MinPrefix { field, value, max });
            }
        }
        let action = match config.flowspec_action {
            FlowSpecActionConfig::Discard => FlowAction::Discard,
            FlowSpecActionConfig::RateLimit(r) if r.is_finite() && r >= 0.0 => FlowAction::RateLimit(r),
            FlowSpecActionConfig::RateLimit(_) => return Err(ConfigError::RateLimit),
        };
        let mut communities = Vec::new();
        for c in &config.communities {
            let c = parse_community(c)?;
            if !communities.contains(&c) {
                communities.push(c);
            }
        }
        let allowlist = config
            .allowlist
            .iter()
            .map(|p| {
                Prefix::parse(p.trim())
                    .ok_or_else(|| ConfigError::BadPrefix { place: "allowlist".into(), value: p.clone() })
            })
            .collect::<Result<_, _>>()?;
        Ok(Mitigator {
            mode: config.mode,
            dry_run: config.dry_run,
            next_hop_v4: IpAddr::V4(config.next_hop_v4),
            next_hop_v6: IpAddr::V6(config.next_hop_v6),
            communities,
            action,
            min_v4: config.min_prefix_v4,
            min_v6: config.min_prefix_v6,
            allowlist,
            max: config.max_mitigations,
            protected,
            attacks: BTreeMap::new(),
            manual: Vec::new(),
            waiting: BTreeSet::new(),
            stats: MitigatorStats::default(),
        })
    }

    /// Plans, announces and withdraws for one detector event: a started attack gets routes,
    /// an update whose attack gained a vector gets its routes re-planned (and an attack that
    /// was refused for [`Refusal::TooMany`] another try), an ended attack's routes are
    /// withdrawn.
    pub fn on_event(&mut self, event: &Event, now_ms: u64) -> Vec<Decision> {
        let mut out = Vec::new();
        match event {
            Event::Started(a) => self.start(a, now_ms, false, &mut out),
            Event::Updated(a) => {
                if self.attacks.contains_key(&a.id) {
                    self.replan(a, &mut out);
                } else if self.waiting.contains(&a.id) {
                    self.start(a, now_ms, true, &mut out);
                }
            }
            Event::Ended(a) => {
                self.waiting.remove(&a.id);
                if let Some(m) = self.attacks.remove(&a.id) {
                    for route in m.routes {
                        self.withdraw(Origin::Attack(a.id), route, &mut out);
                    }
                }
            }
        }
        out
    }

    /// Announces `route` for an operator, subject to the same rails. A blackhole route gets
    /// 65535:666 and the configured communities added, a FlowSpec route the configured ones.
    pub fn manual(&mut self, route: Route, now_ms: u64, reason: &str) -> Decision {
        let route = self.normalize(route);
        let origin = Origin::Manual;
        let refusal = self.check(&route).err().or_else(|| {
            if self.manual.iter().any(|m| m.routes.contains(&route)) {
                Some(Refusal::Duplicate)
            } else if self.active() >= self.max {
                Some(Refusal::TooMany)
            } else {
                None
            }
        });
        if let Some(reason) = refusal {
            return self.refuse(origin, route, reason);
        }
        self.manual.push(Mitigation {
            origin,
            routes: vec![route.clone()],
            since_ms: now_ms,
            reason: reason.into(),
            vectors: Vec::new(),
        });
        self.announce(origin, route)
    }

    /// Withdraws a route announced with [`Mitigator::manual`] (given as it was then).
    pub fn manual_withdraw(&mut self, route: &Route, _now_ms: u64) -> Decision {
        let route = self.normalize(route.clone());
        match self.manual.iter().position(|m| m.routes.contains(&route)) {
            Some(i) => {
                self.manual.remove(i);
                let mut out = Vec::new();
                self.withdraw(Origin::Manual, route.clone(), &mut out);
                out.pop().unwrap_or(Decision::Withdraw { origin: Origin::Manual, route })
            }
            None => self.refuse(Origin::Manual, route, Refusal::NotFound),
        }
    }

    /// The routes to announce: every active mitigation's, without duplicates. Empty in a dry
    /// run.
    pub fn routes(&self) -> Vec<Route> {
        if self.dry_run {
            Vec::new()
        } else {
            self.planned()
        }
    }

    /// The routes that are (or in a dry run, would be) announced.
    pub fn planned(&self) -> Vec<Route> {
        let mut routes: Vec<Route> = Vec::new();
        for r in self.attacks.values().chain(&self.manual).flat_map(|m| &m.routes) {
            if !routes.contains(r) {
                routes.push(r.clone());
            }
        }
        routes
    }

    /// The active mitigations: attacks by id, then manual ones in order.
    pub fn mitigations(&self) -> Vec<Mitigation> {
        self.attacks.values().chain(&self.manual).cloned().collect()
    }

    /// Whether this planner only reports.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// The counters.
    pub fn stats(&self) -> MitigatorStats {
        MitigatorStats { active: self.active() as u64, ..self.stats.clone() }
    }

    /// The routes the configured mode calls for against `attack`, before the rails.
    ///
    /// FlowSpec rules by vector: amplification, UDP and the given source ports; UDP flood and
    /// fragments (bawaba-bgp has no fragment component), UDP; SYN flood, TCP (no TCP-flags
    /// component either); ICMP flood, ICMP or ICMPv6; volumetric and anomaly, everything to
    /// the target. A UDP rule makes amplification port rules redundant.
    pub fn plan(&self, attack: &Attack) -> Vec<Route> {
        let prefix = attack.prefix();
        let mut routes = Vec::new();
        if matches!(self.mode, MitigationMode::Blackhole | MitigationMode::Both) {
            routes.push(self.blackhole(prefix));
        }
        if matches!(self.mode, MitigationMode::Flowspec | MitigationMode::Both) {
            let rule = |protocols: Vec<u8>, source_ports: Vec<NumericMatch>| FlowSpec {
                destination: prefix,
                source: None,
                protocols,
                source_ports,
                destination_ports: Vec::new(),
                packet_lengths: Vec::new(),
            };
            let mut ports = BTreeSet::new();
            let (mut udp, mut tcp, mut icmp, mut all) = (false, false, false, false);
            for v in &attack.vectors {
                match v {
                    Vector::Amplification { port, .. } => {
                        ports.insert(*port);
                    }
                    Vector::UdpFlood | Vector::Fragments => udp = true,
                    Vector::SynFlood => tcp = true,
                    Vector::IcmpFlood => icmp = true,
                    Vector::Volumetric | Vector::Anomaly => all = true,
                }
            }
            let mut rules = Vec::new();
            if all {
                rules.push(rule(Vec::new(), Vec::new()));
            } else {
                if udp {
                    rules.push(rule(vec![UDP], Vec::new()));
                } else if !ports.is_empty() {
                    rules.push(rule(vec![UDP], ports.into_iter().map(NumericMatch::Eq).collect()));
                }
                if tcp {
                    rules.push(rule(vec![TCP], Vec::new()));
                }
                if icmp {
                    rules.push(rule(vec![if prefix.addr.is_ipv4() { ICMP } else { ICMPV6 }], Vec::new()));
                }
            }
            routes.extend(rules.into_iter().map(|rule| Route::FlowSpec {
                rule,
                action: self.action,
                communities: self.communities.clone(),
            }));
        }
        routes
    }

    /// The blackhole route for `prefix` as the planner builds it: the family's next hop,
    /// 65535:666 and the configured communities (for a manual mitigation).
    pub fn blackhole_route(&self, prefix: Prefix) -> Route {
        self.blackhole(prefix)
    }

    /// A FlowSpec route for traffic to `prefix` (optionally only these protocols and source
    /// ports) with the configured action and communities (for a manual mitigation).
    pub fn flowspec_route(&self, prefix: Prefix, protocols: Vec<u8>, source_ports: Vec<u16>) -> Route {
        let rule = FlowSpec {
            destination: prefix,
            source: None,
            protocols,
            source_ports: source_ports.into_iter().map(NumericMatch::Eq).collect(),
            destination_ports: Vec::new(),
            packet_lengths: Vec::new(),
        };
        Route::FlowSpec { rule, action: self.action, communities: self.communities.clone() }
    }

    fn blackhole(&self, prefix: Prefix) -> Route {
        let next_hop = if prefix.addr.is_ipv4() { self.next_hop_v4 } else { self.next_hop_v6 };
        let mut communities = vec![BLACKHOLE];
        communities.extend(self.communities.iter().filter(|&&c| c != BLACKHOLE));
        Route::Unicast { prefix, next_hop, communities }
    }

    /// Adds the communities the planner's own routes carry.
    fn normalize(&self, route: Route) -> Route {
        match route {
            Route::Unicast { prefix, next_hop, mut communities } => {
                for c in std::iter::once(BLACKHOLE).chain(self.communities.iter().copied()) {
                    if !communities.contains(&c) {
                        communities.push(c);
                    }
                }
                Route::Unicast { prefix, next_hop, communities }
            }
            Route::FlowSpec { rule, action, mut communities } => {
                for &c in &self.communities {
                    if !communities.contains(&c) {
                        communities.push(c);
                    }
                }
                Route::FlowSpec { rule, action, communities }
            }
        }
    }

    /// The rails for one route.
    fn check(&self, route: &Route) -> Result<(), Refusal> {
        let p = route.destination();
        if let Route::Unicast { next_hop, .. } = route {
            if next_hop.is_ipv4() != p.addr.is_ipv4() {
                return Err(Refusal::NextHopFamily);
            }
        }
        let min = if p.addr.is_ipv4() { self.min_v4 } else { self.min_v6 };
        if p.len < min {
            return Err(Refusal::PrefixTooShort);
        }
        if !self.protected.covers(&p) {
            return Err(Refusal::OutsideProtected);
        }
        if self.allowlist.iter().any(|a| p.within(a) || a.within(&p)) {
            return Err(Refusal::Allowlisted);
        }
        Ok(())
    }

    fn active(&self) -> usize {
        self.attacks.len() + self.manual.len()
    }

    /// Plans an attack's routes and announces those that pass the rails, if a mitigation is
    /// free. A `retry` (an update of an attack that found none free) reports nothing again.
    fn start(&mut self, attack: &Attack, now_ms: u64, retry: bool, out: &mut Vec<Decision>) {
        let origin = Origin::Attack(attack.id);
        let mut passed = Vec::new();
        for route in self.plan(attack) {
            match self.check(&route) {
                Ok(()) => passed.push(route),
                Err(reason) if !retry => out.push(self.refuse(origin, route, reason)),
                Err(_) => {}
            }
        }
        if passed.is_empty() {
            self.waiting.remove(&attack.id);
            return;
        }
        if self.active() >= self.max {
            if !retry {
                for route in passed {
                    out.push(self.refuse(origin, route, Refusal::TooMany));
                }
            }
            self.waiting.insert(attack.id);
            return;
        }
        self.waiting.remove(&attack.id);
        for route in &passed {
            out.push(self.announce(origin, route.clone()));
        }
        let reason = match &attack.vector {
            Vector::Amplification { name, .. } => format!("{name} amplification"),
            v => v.as_str().replace('_', " "),
        };
        let m = Mitigation { origin, routes: passed, since_ms: now_ms, reason, vectors: attack.vectors.clone() };
        self.attacks.insert(attack.id, m);
    }

    /// Re-plans an attack whose vectors changed: withdraws routes no longer called for,
    /// announces new ones.
    fn replan(&mut self, attack: &Attack, out: &mut Vec<Decision>) {
        let origin = Origin::Attack(attack.id);
        let unchanged = self.attacks.get(&attack.id).is_none_or(|m| m.vectors == attack.vectors);
        if unchanged {
            return;
        }
        let planned = self.plan(attack);
        let Some(m) = self.attacks.get_mut(&attack.id) else { return };
        m.vectors = attack.vectors.clone();
        let old = std::mem::take(&mut m.routes);
        let (kept, gone): (Vec<Route>, Vec<Route>) = old.into_iter().partition(|r| planned.contains(r));
        for route in gone {
            self.withdraw(origin, route, out);
        }
        let mut routes = kept;
        for route in planned {
            if routes.contains(&route) {
                continue;
            }
            match self.check(&route) {
                Ok(()) => {
                    out.push(self.announce(origin, route.clone()));
                    routes.push(route);
                }
                Err(reason) => out.push(self.refuse(origin, route, reason)),
            }
        }
        if let Some(m) = self.attacks.get_mut(&attack.id) {
            m.routes = routes;
        }
    }

    fn announce(&mut self, origin: Origin, route: Route) -> Decision {
        if self.dry_run {
            self.stats.dry_run += 1;
            Decision::DryRun { origin, route, withdraw: false }
        } else {
            self.stats.announced += 1;
            Decision::Announce { origin, route }
        }
    }

    fn withdraw(&mut self, origin: Origin, route: Route, out: &mut Vec<Decision>) {
        if self.dry_run {
            self.stats.dry_run += 1;
            out.push(Decision::DryRun { origin, route, withdraw: true });
        } else {
            self.stats.withdrawn += 1;
            out.push(Decision::Withdraw { origin, route });
        }
    }

    fn refuse(&mut self, origin: Origin, route: Route, reason: Refusal) -> Decision {
        self.stats.refused.count(reason);
        Decision::Refused { origin, route, reason }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
