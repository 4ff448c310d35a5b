//! The detector: counts flow records per protected host and prefix in windows of arrival
//! time, and turns windows over thresholds into attacks.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use bawaba_flow::FlowRecord;
use serde::Serialize;

use crate::attack::{Attack, Event, Metric, ThresholdCrossed};
use crate::baseline::{self, Baseline};
use crate::config::{BaselineScope, ConfigError, DetectorConfig, Thresholds, VectorConfig};
use crate::protected::Protected;
use crate::sketch::SpaceSaving;
use crate::window::{classify, worst, Counters, HotFloor, Limits, PortVectors, Sample, Tally, TCP, UDP};

/// Hosts looked at to pick one to evict when the table is full (sampled least recently seen).
const EVICTION_SAMPLES: usize = 8;

/// Records whose hosts [`Detector::record_all`] looks up ahead of counting them.
const LOOKAHEAD: usize = 8;

/// Counters of everything the detector did. Totals since start unless marked as a gauge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DetectorStats {
    /// Flow records handed to [`Detector::record`].
    pub records: u64,
    /// Of those, records to a protected destination, counted.
    pub records_counted: u64,
    /// Records to a destination outside every protected prefix, not counted.
    pub records_outside: u64,
    /// Counted records whose sampling rate was unknown, counted unscaled.
    pub unknown_sampling: u64,
    /// Counted records that arrived (by the caller's clock) before the open window started;
    /// counted in the open window.
    pub late_records: u64,
    /// Counted records whose host could not be tracked (the table was full of hosts under
    /// attack); they still count in their prefix.
    pub records_untracked: u64,
    /// Counted records whose source and source port went to the heavy-hitter sketches (their
    /// host was near a threshold, under attack, or in a busy prefix).
    pub records_followed: u64,
    /// Windows closed.
    pub windows_closed: u64,
    /// Gauge: hosts tracked now.
    pub hosts_tracked: u64,
    /// Hosts evicted because the table was full.
    pub hosts_evicted: u64,
    /// Hosts forgotten after `host_idle_ms` without traffic.
    pub hosts_expired: u64,
    /// Gauge: heavy-hitter counters held by all sketches (top sources and source ports).
    pub sketch_counters: u64,
    /// Attacks started.
    pub attacks_started: u64,
    /// Attacks ended.
    pub attacks_ended: u64,
}

/// The checked configuration, shared by every target.
#[derive(Debug)]
struct Context {
    window_ms: u64,
    hold_down_ms: u64,
    max_hosts: usize,
    host_idle_ms: u64,
    top: usize,
    protected: Protected,
    vectors: Vec<VectorConfig>,
    /// UDP source port -> vector.
    port_vector: PortVectors,
    /// Per group: thresholds for each host.
    host_limits: Vec<Limits>,
    /// Per group: when a host's window is worth following source by source.
    host_hot: Vec<HotFloor>,
    /// Per group: the same for a whole prefix (then all its hosts are followed).
    prefix_hot: Vec<HotFloor>,
    /// Per group: thresholds for each prefix's total.
    prefix_limits: Vec<Limits>,
    baseline: Option<baseline::Params>,
    baseline_hosts: bool,
    baseline_prefixes: bool,
}

/// An ongoing attack on a target.
#[derive(Debug)]
struct Ongoing {
    attack: Attack,
    /// End of the last window over a threshold.
    last_over_end_ms: u64,
    sources: SpaceSaving<u128>,
    ports: SpaceSaving<u16>,
}

/// A host or a prefix being watched.
#[derive(Debug)]
struct Target {
    addr: IpAddr,
    prefix_len: u8,
    group: usize,
    /// Index of the protected prefix the target is in (or is).
    prefix: usize,
    /// Whether anything is checked for it (prefixes with no total thresholds and no baseline
    /// are not counted at all).
    watched: bool,
    window: Counters,
    touched: bool,
    /// The window reached its hot floor: sources and ports are followed until it closes.
    hot: bool,
    sources: SpaceSaving<u128>,
    ports: SpaceSaving<u16>,
    last_seen_ms: u64,
    attack: Option<Box<Ongoing>>,
    baseline: Option<Box<Baseline>>,
}

impl Target {
    fn new(
        addr: IpAddr,
        prefix_len: u8,
        group: usize,
        prefix: usize,
        ctx: &Context,
        learn: bool,
        now_ms: u64,
    ) -> Target {
        Target {
            addr,
            prefix_len,
            group,
            prefix,
            watched: true,
            window: Counters::new(ctx.vectors.len()),
            touched: false,
            hot: false,
            sources: SpaceSaving::new(2 * ctx.top),
            ports: SpaceSaving::new(2 * ctx.top),
            last_seen_ms: now_ms,
            attack: None,
            baseline: (learn && ctx.baseline.is_some()).then(|| Box::new(Baseline::new())),
        }
    }

    /// Counts a record in the window's counters only, and notes when they reach `floor`.
    #[inline]
    fn count(&mut self, s: &Sample, arrival_ms: u64, floor: Option<&HotFloor>) {
        let vector_count = self.window.add(s);
        self.touched = true;
        self.hot = self.hot || floor.is_some_and(|f| f.reached_by(&self.window.tally, s, vector_count));
        self.last_seen_ms = self.last_seen_ms.max(arrival_ms);
    }

    /// Adds a counted record's source and source port to the heavy-hitter sketches.
    #[inline]
    fn follow(&mut self, s: &Sample, source: u128, source_port: Option<u16>) {
        self.sources.add(source, s.packets);
        if let Some(port) = source_port {
            self.ports.add(port, s.packets);
        }
    }

    fn sketch_counters(&self) -> usize {
        self.sources.len() + self.ports.len() + self.attack.as_ref().map_or(0, |o| o.sources.len() + o.ports.len())
    }
}

/// What a record to a tracked host touches, one cache line per host: its open window's tally
/// and flags. The rest of the host (vector counts, sketches, baseline, attack) is in its
/// [`Target`] at the same index, touched per record only by records that go there (a vector's
/// port, a followed host) and at the window's close, which moves this tally into the target.
/// With the index, tens of thousands of hosts' lines fit a core's L2 cache, where whole
/// targets (about 256 bytes each) did not.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct HostHot {
    tally: Tally,
    /// The host's protected prefix (index), as in its target.
    prefix: u32,
    /// Counted in the open window.
    touched: bool,
    /// Reached its hot floor in the open window.
    hot: bool,
    /// Under attack (as of the last closed window).
    attack: bool,
}

impl HostHot {
    fn new(prefix: usize) -> HostHot {
        // Prefixes fit a u32: `Protected` holds far fewer.
        HostHot { tally: Tally::default(), prefix: prefix as u32, touched: false, hot: false, attack: false }
    }
}

/// An address as a sketch key: IPv4 as its IPv4-mapped IPv6 address.
fn source_key(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn source_addr(key: u128) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(key)).to_canonical()
}

/// The window being closed.
#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: u64,
    end_ms: u64,
    /// Any record at all arrived in it (else the collector was probably not receiving, and
    /// nothing is learned from its zeros).
    alive: bool,
}

/// What closing a window writes to.
struct Sink<'a> {
    crossed: &'a mut Vec<ThresholdCrossed>,
    events: &'a mut Vec<Event>,
    next_id: &'a mut u64,
    stats: &'a mut DetectorStats,
}

/// The thresholds (and baseline) `t`'s window is over, into `out`.
fn crossings(
    t: &Target,
    limits: &Limits,
    params: Option<baseline::Params>,
    ctx: &Context,
    w: Window,
    out: &mut Vec<ThresholdCrossed>,
) {
    out.clear();
    limits.check(&t.window, ctx.window_ms, &ctx.vectors, out);
    if let (Some(p), Some(b)) = (params, t.baseline.as_ref()) {
        if let Some(limit) = b.limit(&p, w.start_ms) {
            let pps = t.window.pps(ctx.window_ms);
            if pps > limit {
                out.push(ThresholdCrossed { metric: Metric::Baseline, value: pps, limit });
            }
        }
    }
}

/// Closes `t`'s window: checks thresholds and baseline, starts, updates or ends its attack,
/// learns, and clears the counters.
fn close_target(t: &mut Target, limits: &Limits, learn: bool, ctx: &Context, w: Window, sink: &mut Sink<'_>) {
    let params = ctx.baseline.filter(|_| learn);
    if !t.touched && t.attack.is_none() {
        if let (Some(p), Some(b), true) = (params, t.baseline.as_mut(), w.alive) {
            b.learn(&p, w.start_ms, 0);
        }
        return;
    }
    let pps = t.window.pps(ctx.window_ms);
    let bps = t.window.bps(ctx.window_ms);
    crossings(t, limits, params, ctx, w, sink.crossed);
    let over = worst(sink.crossed).cloned();
    let group = || ctx.protected.groups().get(t.group).cloned().unwrap_or_default();
    match (t.attack.as_mut(), over) {
        (None, Some(threshold)) => {
            *sink.next_id += 1;
            let vector = classify(sink.crossed, &t.window, &ctx.vectors);
            let mut ongoing = Ongoing {
                attack: Attack {
                    id: *sink.next_id,
                    target: t.addr,
                    prefix_len: t.prefix_len,
                    group: group(),
                    vector: vector.clone(),
                    vectors: vec![vector],
                    threshold,
                    started_ms: w.start_ms,
                    ended_ms: None,
                    peak_pps: pps,
                    peak_bps: bps,
                    last_pps: pps,
                    last_bps: bps,
                    top_sources: Vec::new(),
                    top_source_ports: Vec::new(),
                    unknown_sampling: t.window.tally.unknown_sampling,
                },
                last_over_end_ms: w.end_ms,
                sources: SpaceSaving::new(2 * ctx.top),
                ports: SpaceSaving::new(2 * ctx.top),
            };
            ongoing.sources.merge(&t.sources);
            ongoing.ports.merge(&t.ports);
            fill_tops(&mut ongoing, ctx.top);
            sink.events.push(Event::Started(ongoing.attack.clone()));
            sink.stats.attacks_started += 1;
            t.attack = Some(Box::new(ongoing));
        }
        (None, None) => {
            if let (Some(p), Some(b), true) = (params, t.baseline.as_mut(), w.alive) {
                b.learn(&p, w.start_ms, pps);
            }
        }
        (Some(o), over) => {
            let a = &mut o.attack;
            a.last_pps = pps;
            a.last_bps = bps;
            a.peak_pps = a.peak_pps.max(pps);
            a.peak_bps = a.peak_bps.max(bps);
            a.unknown_sampling |= t.window.tally.unknown_sampling;
            if over.is_some() {
                o.last_over_end_ms = w.end_ms;
                let vector = classify(sink.crossed, &t.window, &ctx.vectors);
                if !a.vectors.contains(&vector) {
                    a.vectors.push(vector);
                }
            }
            o.sources.merge(&t.sources);
            o.ports.merge(&t.ports);
            fill_tops(o, ctx.top);
            if over.is_none() && w.end_ms.saturating_sub(o.last_over_end_ms) >= ctx.hold_down_ms {
                o.attack.ended_ms = Some(w.end_ms);
                sink.events.push(Event::Ended(o.attack.clone()));
                sink.stats.attacks_ended += 1;
                t.attack = None;
            } else {
                sink.events.push(Event::Updated(o.attack.clone()));
            }
        }
    }
    t.window.clear();
    t.sources.clear();
    t.ports.clear();
    t.touched = false;
    t.hot = false;
}

fn fill_tops(o: &mut Ongoing, n: usize) {
    o.attack.top_sources = o.sources.top(n).into_iter().map(|(k, c)| (source_addr(k), c)).collect();
    o.attack.top_source_ports = o.ports.top(n);
}

/// Attack detection over flow records: feed it records with [`Detector::record`] and the
/// clock with [`Detector::tick`]; it hands back [`Event`]s.
///
/// Windows are keyed by the time a record arrived, not by the flow's own timestamps, which
/// lag by up to the exporter's active timeout. Each protected host that receives traffic is
/// tracked (up to `max_hosts`), and each protected prefix counts the sum of its hosts.
#[derive(Debug)]
pub struct Detector {
    ctx: Context,
    /// Each tracked host's hot line, at the same index as its target in `hosts`.
    hot: Vec<HostHot>,
    /// Bumped whenever hosts may have moved in `hosts` (removals swap the last one in), so
    /// that [`Detector::record_all`] knows when an index it looked up went stale.
    moves: u64,
    hosts: Vec<Target>,
    index: HashMap<IpAddr, u32, foldhash::fast::RandomState>,
    prefixes: Vec<Target>,
    /// Index of the open window (arrival time / window length).
    open: Option<u64>,
    /// Records (counted or not) that arrived in the open window.
    window_records: u64,
    pending: Vec<Event>,
    next_id: u64,
    rng: u64,
    crossed: Vec<ThresholdCrossed>,
    stats: DetectorStats,
}

impl Detector {
    /// A detector for `config`, or what is wrong with it.
    pub fn new(config: &DetectorConfig) -> Result<Detector, ConfigError> {
        if config.window_ms == 0 {
            return Err(ConfigError::ZeroWindow);
        }
        for (field, value) in [("top_sources", config.top_sources), ("max_hosts", config.max_hosts)] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit { field });
            }
        }
        if config.max_hosts > u32::MAX as usize {
            return Err(ConfigError::TooMany { what: "max_hosts", max: u32::MAX as usize });
        }
        let port_vector = PortVectors::new(&config.vectors)?;
        let protected = Protected::new(&config.groups)?;
        let mut host_limits = Vec::new();
        let mut prefix_limits = Vec::new();
        for g in &config.groups {
            host_limits
                .push(Limits::resolve(&[&g.thresholds, &config.defaults, &Thresholds::BUILT_IN], &config.vectors)?);
            prefix_limits.push(Limits::resolve(&[&g.total], &config.vectors)?);
        }
        let b = &config.baseline;
        let baseline = if b.enabled {
            if !(b.alpha > 0.0 && b.alpha <= 1.0) {
                return Err(ConfigError::Baseline { field: "alpha" });
            }
            Some(baseline::Params::new(b).ok_or(ConfigError::Baseline { field: "k" })?)
        } else {
            None
        };
        let ctx = Context {
            window_ms: config.window_ms,
            hold_down_ms: config.hold_down_ms,
            max_hosts: config.max_hosts,
            host_idle_ms: config.host_idle_ms,
            top: config.top_sources,
            vectors: config.vectors.clone(),
            port_vector,
            host_hot: host_limits.iter().map(|l| l.hot_floor(config.window_ms)).collect(),
            prefix_hot: prefix_limits.iter().map(|l| l.hot_floor(config.window_ms)).collect(),
            host_limits,
            prefix_limits,
            baseline,
            baseline_hosts: matches!(b.scope, BaselineScope::Hosts | BaselineScope::Both),
            baseline_prefixes: matches!(b.scope, BaselineScope::Prefixes | BaselineScope::Both),
            protected,
        };
        let prefixes = ctx
            .protected
            .prefixes()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut t = Target::new(p.prefix.addr, p.prefix.len, p.group, i, &ctx, ctx.baseline_prefixes, 0);
                t.watched = !ctx.prefix_limits[p.group].all_off() || t.baseline.is_some();
                t
            })
            .collect();
        Ok(Detector {
            ctx,
            hot: Vec::new(),
            moves: 0,
            hosts: Vec::new(),
            index: HashMap::default(),
            prefixes,
            open: None,
            window_records: 0,
            pending: Vec::new(),
            next_id: 0,
            rng: 0x2545_f491_4f6c_dd1d,
            crossed: Vec::new(),
            stats: DetectorStats::default(),
        })
    }

    /// Counts one flow record that arrived at `arrival_ms`. Records to unprotected
    /// destinations are only counted in the statistics. Packets and bytes are multiplied by
    /// the record's sampling rate when it is known; otherwise they count as exported, and the
    /// record is counted in [`DetectorStats::unknown_sampling`]. A record arriving after the
    /// open window ended closes it first (its events wait for the next [`Detector::tick`]).
    pub fn record(&mut self, rec: &FlowRecord, arrival_ms: u64) {
        self.advance(arrival_ms);
        self.stats.records += 1;
        self.window_records += 1;
        if let Some(i) = self.locate(rec, arrival_ms) {
            self.count_at(i, rec, arrival_ms);
        }
    }

    /// [`Detector::record`] for records that arrived together, faster: the hosts of a few
    /// records are looked up, and their lines loaded, before the first of them is counted, so
    /// the memory latencies overlap instead of adding up.
    pub fn record_all(&mut self, recs: &[FlowRecord], arrival_ms: u64) {
        self.advance(arrival_ms);
        for group in recs.chunks(LOOKAHEAD) {
            let moves = self.moves;
            let mut found = [None::<u32>; LOOKAHEAD];
            for (slot, rec) in found.iter_mut().zip(group) {
                *slot = self.index.get(&rec.dst).copied();
                if let Some(h) = slot.and_then(|i| self.hot.get(i as usize)) {
                    bawaba_wire::hint::prefetch_value(h);
                }
            }
            for (slot, rec) in found.iter().zip(group) {
                match *slot {
                    // No host moved since the lookup (an eviction would have): it still holds.
                    Some(i) if self.moves == moves => {
                        self.stats.records += 1;
                        self.window_records += 1;
                        self.count_at(i as usize, rec, arrival_ms);
                    }
                    _ => self.record(rec, arrival_ms),
                }
            }
        }
    }

    /// The index of `rec`'s host, tracking it if it is new; `None` (counted) when it is not
    /// protected or cannot be tracked.
    fn locate(&mut self, rec: &FlowRecord, arrival_ms: u64) -> Option<usize> {
        Some(match self.index.get(&rec.dst) {
            Some(&i) => i as usize,
            None => match self.ctx.protected.lookup(rec.dst) {
                None => {
                    self.stats.records_outside += 1;
                    return None;
                }
                Some(p) => match self.insert_host(rec.dst, p, arrival_ms) {
                    Some(i) => i,
                    None => {
                        self.count_untracked(rec, p, arrival_ms);
                        return None;
                    }
                },
            },
        })
    }

    /// Counts `rec` for tracked host `i`.
    #[inline]
    fn count_at(&mut self, i: usize, rec: &FlowRecord, arrival_ms: u64) {
        let Some(h) = self.hot.get_mut(i) else { return };
        self.stats.records_counted += 1;
        let sample = Sample::new(rec, &self.ctx.port_vector);
        if sample.unknown_sampling {
            self.stats.unknown_sampling += 1;
        }
        // A prefix's sources come from its hosts' sketches when its window closes, so a busy
        // prefix (a carpet bombing spreads over many quiet hosts) has all its hosts followed.
        let prefix_hot = match self.prefixes.get_mut(h.prefix as usize).filter(|t| t.watched) {
            Some(t) => {
                t.count(&sample, arrival_ms, self.ctx.prefix_hot.get(t.group));
                t.hot || t.attack.is_some()
            }
            None => false,
        };
        h.tally.add(&sample);
        let first = !h.touched;
        h.touched = true;
        // The target itself only for what the hot line does not hold.
        let cold = (first || sample.vector.is_some()).then(|| self.hosts.get_mut(i)).flatten();
        let mut vector_count = 0;
        if let Some(t) = cold {
            vector_count = t.window.add_vector(&sample);
            // The first record of the host's window stands for its last sighting: eviction
            // and idle expiry need no finer time than the window.
            t.last_seen_ms = t.last_seen_ms.max(arrival_ms);
        }
        let group = self.prefixes.get(h.prefix as usize).map_or(0, |p| p.group);
        h.hot = h.hot || self.ctx.host_hot.get(group).is_some_and(|f| f.reached_by(&h.tally, &sample, vector_count));
        // Sources and ports only for a target near a threshold or under attack (or in a busy
        // prefix): the sketches are what costs, and a quiet host's top sources are never
        // reported.
        if prefix_hot || h.hot || h.attack {
            let port = (rec.protocol == TCP || rec.protocol == UDP).then_some(rec.src_port);
            if let Some(t) = self.hosts.get_mut(i) {
                t.follow(&sample, source_key(rec.src), port);
                self.stats.records_followed += 1;
            }
        }
    }

    /// A record to a protected host that could not be tracked (the table is full of hosts
    /// under attack): it still counts in its prefix.
    fn count_untracked(&mut self, rec: &FlowRecord, prefix: usize, arrival_ms: u64) {
        self.stats.records_counted += 1;
        self.stats.records_untracked += 1;
        let sample = Sample::new(rec, &self.ctx.port_vector);
        if sample.unknown_sampling {
            self.stats.unknown_sampling += 1;
        }
        if let Some(t) = self.prefixes.get_mut(prefix).filter(|t| t.watched) {
            t.count(&sample, arrival_ms, self.ctx.prefix_hot.get(t.group));
        }
    }

    /// Closes every window that ended at or before `now_ms` and returns what happened, in
    /// order: events of windows closed by late-arriving records first.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Event> {
        let index = now_ms / self.ctx.window_ms;
        if self.open.is_none() {
            self.open = Some(index);
        }
        self.close_until(index);
        std::mem::take(&mut self.pending)
    }

    /// Every ongoing attack, as of the last closed window.
    pub fn attacks(&self) -> Vec<Attack> {
        self.hosts.iter().chain(&self.prefixes).filter_map(|t| t.attack.as_ref().map(|o| o.attack.clone())).collect()
    }

    /// The protected networks (for [`crate::Mitigator::new`]).
    pub fn protected(&self) -> &Protected {
        &self.ctx.protected
    }

    /// The counters, with the gauges computed now (this walks every tracked host).
    pub fn stats(&self) -> DetectorStats {
        let mut s = self.stats.clone();
        s.hosts_tracked = self.hosts.len() as u64;
        s.sketch_counters = self.hosts.iter().chain(&self.prefixes).map(|t| t.sketch_counters() as u64).sum();
        s
    }

    fn advance(&mut self, arrival_ms: u64) {
        let index = arrival_ms / self.ctx.window_ms;
        match self.open {
            None => self.open = Some(index),
            Some(open) if index > open => self.close_until(index),
            Some(open) if index < open => self.stats.late_records += 1,
            Some(_) => {}
        }
    }

    /// Closes windows until `index` is the open one.
    fn close_until(&mut self, index: u64) {
        while let Some(open) = self.open.filter(|&o| o < index) {
            if self.window_records == 0 && self.stats.attacks_started == self.stats.attacks_ended {
                // Nothing to count, learn or end: skip the empty windows at once.
                self.stats.windows_closed += index - open;
                self.open = Some(index);
                break;
            }
            self.close(open);
            self.open = Some(open + 1);
        }
    }

    fn close(&mut self, index: u64) {
        let start_ms = index.saturating_mul(self.ctx.window_ms);
        let w =
            Window { start_ms, end_ms: start_ms.saturating_add(self.ctx.window_ms), alive: self.window_records > 0 };
        let Detector { ctx, hot, hosts, index: map, prefixes, pending, next_id, crossed, stats, .. } = self;
        // Prefixes over a threshold, or under attack, collect their hosts' top sources.
        let mut collect = Vec::with_capacity(prefixes.len());
        for t in prefixes.iter() {
            let params = ctx.baseline.filter(|_| ctx.baseline_prefixes);
            let wanted = t.watched && t.touched && {
                crossings(t, &ctx.prefix_limits[t.group], params, ctx, w, crossed);
                t.attack.is_some() || !crossed.is_empty()
            };
            collect.push(wanted);
        }
        let mut sink = Sink { crossed, events: pending, next_id, stats };
        // Backwards, so that a removal (swap with the last) only moves a host already closed.
        let mut i = hosts.len();
        while i > 0 {
            i -= 1;
            let t = &mut hosts[i];
            // The host's tally moves into its target, which the checks read.
            if let Some(h) = hot.get(i).filter(|h| h.touched) {
                t.window.tally = h.tally;
                t.touched = true;
            }
            let touched = t.touched;
            if touched && collect.get(t.prefix).copied().unwrap_or(false) {
                if let Some(p) = prefixes.get_mut(t.prefix) {
                    p.sources.merge(&t.sources);
                    p.ports.merge(&t.ports);
                }
            }
            close_target(t, &ctx.host_limits[t.group], ctx.baseline_hosts, ctx, w, &mut sink);
            let attack = t.attack.is_some();
            if let Some(h) = hot.get_mut(i) {
                *h = HostHot { attack, ..HostHot::new(t.prefix) };
            }
            if !touched && !attack && w.end_ms.saturating_sub(t.last_seen_ms) > ctx.host_idle_ms {
                remove_host(hot, hosts, map, i);
                sink.stats.hosts_expired += 1;
            }
        }
        for t in prefixes.iter_mut().filter(|t| t.watched) {
            close_target(t, &ctx.prefix_limits[t.group], ctx.baseline_prefixes, ctx, w, &mut sink);
        }
        self.window_records = 0;
        self.stats.windows_closed += 1;
        self.moves += 1;
    }

    /// Starts tracking `addr`, evicting the least recently seen of a few sampled hosts not
    /// under attack when the table is full. `None` when no host could be evicted.
    fn insert_host(&mut self, addr: IpAddr, prefix: usize, now_ms: u64) -> Option<usize> {
        if self.hosts.len() >= self.ctx.max_hosts {
            let mut victim: Option<(usize, u64)> = None;
            for _ in 0..EVICTION_SAMPLES {
                // xorshift64: a cheap, deterministic spread over the table.
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                let i = (self.rng % self.hosts.len() as u64) as usize;
                let t = &self.hosts[i];
                if t.attack.is_none() && victim.is_none_or(|(_, seen)| t.last_seen_ms < seen) {
                    victim = Some((i, t.last_seen_ms));
                }
            }
            let (i, _) = victim?;
            remove_host(&mut self.hot, &mut self.hosts, &mut self.index, i);
            self.moves += 1;
            self.stats.hosts_evicted += 1;
        }
        let group = self.ctx.protected.prefixes()[prefix].group;
        let len = if addr.is_ipv4() { 32 } else { 128 };
        let i = self.hosts.len();
        self.hosts.push(Target::new(addr, len, group, prefix, &self.ctx, self.ctx.baseline_hosts, now_ms));
        self.hot.push(HostHot::new(prefix));
        // `max_hosts` fits in a u32, checked in `new`.
        self.index.insert(addr, i as u32);
        Some(i)
    }
}

fn remove_host(
    hot: &mut Vec<HostHot>,
    hosts: &mut Vec<Target>,
    index: &mut HashMap<IpAddr, u32, foldhash::fast::RandomState>,
    i: usize,
) {
    hot.swap_remove(i);
    let gone = hosts.swap_remove(i);
    index.remove(&gone.addr);
    if let Some(moved) = hosts.get(i) {
        index.insert(moved.addr, i as u32);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
