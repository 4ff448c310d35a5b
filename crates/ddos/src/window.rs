//! One window's counters for a target, the thresholds they are held against, and the
//! classification of what crossed them.

use crate::attack::{Metric, ThresholdCrossed, Vector};
use crate::config::{ConfigError, Thresholds, VectorConfig};

/// IP protocol numbers.
pub(crate) const ICMP: u8 = 1;
pub(crate) const TCP: u8 = 6;
pub(crate) const UDP: u8 = 17;
pub(crate) const ICMPV6: u8 = 58;

/// TCP flags (RFC 9293 section 3.1).
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// What one flow record adds to a target, sampling applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub packets: u64,
    pub bytes: u64,
    pub udp: bool,
    pub syn: bool,
    pub icmp: bool,
    pub fragment: bool,
    /// Index of the amplification vector, for UDP from a vector's port.
    pub vector: Option<usize>,
    pub unknown_sampling: bool,
}

impl Sample {
    /// Classifies a record. A fragment is a record the exporter marks as one, or a UDP or TCP
    /// record with both ports 0 when the exporter says nothing (non-first fragments carry no
    /// transport header, so NetFlow reports their ports as 0).
    pub fn new(rec: &bawaba_flow::FlowRecord, ports: &PortVectors) -> Sample {
        let scale = rec.sampling.rate.map_or(1, u64::from);
        let udp = rec.protocol == UDP;
        let fragment = rec.fragment.unwrap_or((udp || rec.protocol == TCP) && rec.src_port == 0 && rec.dst_port == 0);
        let vector = if udp { ports.get(rec.src_port) } else { None };
        Sample {
            packets: rec.packets.saturating_mul(scale),
            bytes: rec.bytes.saturating_mul(scale),
            udp,
            syn: rec.protocol == TCP && rec.tcp_flags & (SYN | ACK) == SYN,
            icmp: rec.protocol == ICMP || rec.protocol == ICMPV6,
            fragment,
            vector,
            unknown_sampling: rec.sampling.rate.is_none(),
        }
    }
}

/// The amplification vector of each UDP source port: a bitmap of the ports that have one (8
/// KiB, which stays in cache while every UDP record asks it), and their vector indices.
#[derive(Debug)]
pub(crate) struct PortVectors {
    any: Box<[u64]>,
    /// Port -> 1 + vector index, 0 for none.
    index: Box<[u8]>,
}

impl PortVectors {
    /// The ports of `vectors`; at most 255 vectors, each port at most once.
    pub fn new(vectors: &[VectorConfig]) -> Result<PortVectors, ConfigError> {
        if vectors.len() > usize::from(u8::MAX) {
            return Err(ConfigError::TooMany { what: "vectors", max: usize::from(u8::MAX) });
        }
        let mut any = vec![0u64; 65_536 / 64];
        let mut index = vec![0u8; 65_536];
        for (i, v) in vectors.iter().enumerate() {
            let port = usize::from(v.port);
            if index[port] != 0 {
                return Err(ConfigError::DuplicateVector { port: v.port });
            }
            // At most 255 vectors, checked above.
            index[port] = u8::try_from(i + 1).unwrap_or(u8::MAX);
            any[port / 64] |= 1 << (port % 64);
        }
        Ok(PortVectors { any: any.into_boxed_slice(), index: index.into_boxed_slice() })
    }

    /// The vector index of UDP source port `port`, if it has one.
    #[inline]
    pub fn get(&self, port: u16) -> Option<usize> {
        let port = usize::from(port);
        if self.any.get(port / 64).is_none_or(|w| w & (1 << (port % 64)) == 0) {
            return None;
        }
        match self.index.get(port) {
            Some(&v) if v > 0 => Some(usize::from(v) - 1),
            _ => None,
        }
    }
}

/// The per-window counts every target has, compact: with a few more bytes a host's counts
/// fit one cache line (see the detector's `HostHot`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub packets: u64,
    pub bytes: u64,
    pub udp: u64,
    pub syn: u64,
    pub icmp: u64,
    pub fragments: u64,
    /// Records (saturating: four billion in one window is beyond any collector).
    pub flows: u32,
    pub unknown_sampling: bool,
}

impl Tally {
    /// Adds a sample's packets and bytes to the counts its kind goes to.
    #[inline]
    pub fn add(&mut self, s: &Sample) {
        let p = s.packets;
        self.packets = self.packets.saturating_add(p);
        self.bytes = self.bytes.saturating_add(s.bytes);
        self.flows = self.flows.saturating_add(1);
        if s.udp {
            self.udp = self.udp.saturating_add(p);
        }
        if s.syn {
            self.syn = self.syn.saturating_add(p);
        }
        if s.icmp {
            self.icmp = self.icmp.saturating_add(p);
        }
        if s.fragment {
            self.fragments = self.fragments.saturating_add(p);
        }
        self.unknown_sampling |= s.unknown_sampling;
    }
}

/// Counts of one window: the tally and the packets per amplification vector.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub tally: Tally,
    /// Packets per amplification vector.
    pub vectors: Box<[u64]>,
}

impl Counters {
    pub fn new(vectors: usize) -> Counters {
        Counters { tally: Tally::default(), vectors: vec![0; vectors].into_boxed_slice() }
    }

    /// Adds a sample; returns its vector's count after it (0 when it has none).
    #[inline]
    pub fn add(&mut self, s: &Sample) -> u64 {
        self.tally.add(s);
        self.add_vector(s)
    }

    /// Adds a sample to its vector's count only; returns the count after it (0 when the sample
    /// has no vector).
    #[inline]
    pub fn add_vector(&mut self, s: &Sample) -> u64 {
        match s.vector.and_then(|v| self.vectors.get_mut(v)) {
            Some(slot) => {
                *slot = slot.saturating_add(s.packets);
                *slot
            }
            None => 0,
        }
    }

    pub fn clear(&mut self) {
        self.tally = Tally::default();
        self.vectors.fill(0);
    }

    /// Packets per second over a window of `window_ms`.
    pub fn pps(&self, window_ms: u64) -> u64 {
        per_second(self.tally.packets, window_ms)
    }

    /// Bits per second over a window of `window_ms`.
    pub fn bps(&self, window_ms: u64) -> u64 {
        per_second(self.tally.bytes.saturating_mul(8), window_ms)
    }
}

/// A count over `window_ms` as a rate per second.
pub(crate) fn per_second(count: u64, window_ms: u64) -> u64 {
    let rate = u128::from(count) * 1000 / u128::from(window_ms.max(1));
    u64::try_from(rate).unwrap_or(u64::MAX)
}

/// See [`Limits::hot_floor`]: each counter's floor, as a count in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HotFloor {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub udp: u64,
    pub syn: u64,
    pub icmp: u64,
    pub fragments: u64,
    /// Per amplification vector.
    pub vectors: Box<[u64]>,
}

impl HotFloor {
    /// Whether `s`, just added to `t` (its vector's count now `vector_count`), took one of the
    /// counts it touched to its floor. Counts only grow within a window, so asking this after
    /// every sample catches the first record that reaches any floor.
    #[inline]
    pub fn reached_by(&self, t: &Tally, s: &Sample, vector_count: u64) -> bool {
        t.packets >= self.packets
            || t.bytes >= self.bytes
            || u64::from(t.flows) >= self.flows
            || (s.udp && t.udp >= self.udp)
            || (s.syn && t.syn >= self.syn)
            || (s.icmp && t.icmp >= self.icmp)
            || (s.fragment && t.fragments >= self.fragments)
            || s.vector.and_then(|v| self.vectors.get(v)).is_some_and(|&f| vector_count >= f)
    }
}

/// Resolved thresholds of one kind of target; `u64::MAX` is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    pps: u64,
    bps: u64,
    flows: u64,
    udp: u64,
    syn: u64,
    icmp: u64,
    fragments: u64,
    /// Per amplification vector.
    vectors: Vec<u64>,
}

impl Limits {
    /// Resolves thresholds field by field from the first of `layers` that sets each one; a
    /// field set to 0, or set nowhere, is off.
    pub fn resolve(layers: &[&Thresholds], vectors: &[VectorConfig]) -> Result<Limits, ConfigError> {
        for layer in layers {
            if let Some(name) = layer.vector_pps.keys().find(|n| !vectors.iter().any(|v| &v.name == *n)) {
                return Err(ConfigError::UnknownVector { name: name.clone() });
            }
        }
        let pick = |f: fn(&Thresholds) -> Option<u64>| match layers.iter().find_map(|t| f(t)) {
            Some(0) | None => u64::MAX,
            Some(x) => x,
        };
        Ok(Limits {
            pps: pick(|t| t.pps),
            bps: pick(|t| t.bps),
            flows: pick(|t| t.flows),
            udp: pick(|t| t.udp_pps),
            syn: pick(|t| t.syn_pps),
            icmp: pick(|t| t.icmp_pps),
            fragments: pick(|t| t.fragment_pps),
            vectors: vectors
                .iter()
                .map(|v| {
                    let specific = layers.iter().find_map(|t| t.vector_pps.get(&v.name).copied());
                    match specific.or_else(|| layers.iter().find_map(|t| t.amplification_pps)) {
                        Some(0) | None => u64::MAX,
                        Some(x) => x,
                    }
                })
                .collect(),
        })
    }

    /// Counts a window must reach before its target is worth following source by source: an
    /// eighth of each threshold, as a count in a window of `window_ms` (a counter whose check
    /// is off has no floor). Below every floor, a target cannot be near an attack by
    /// thresholds, and feeding its heavy-hitter sketches (several cache misses a record) would
    /// be wasted. Each counter is held against its own threshold: a host with much ordinary
    /// traffic is not followed because its few ICMP packets would be near the ICMP threshold
    /// if all its packets were ICMP.
    pub fn hot_floor(&self, window_ms: u64) -> HotFloor {
        let per_window = |rate: u64| {
            if rate == u64::MAX {
                u64::MAX
            } else {
                (u128::from(rate) * u128::from(window_ms) / 8_000).min(u128::from(u64::MAX)) as u64
            }
        };
        HotFloor {
            packets: per_window(self.pps),
            // bps is in bits, the window counts bytes.
            bytes: if self.bps == u64::MAX { u64::MAX } else { per_window(self.bps) / 8 },
            flows: per_window(self.flows),
            udp: per_window(self.udp),
            syn: per_window(self.syn),
            icmp: per_window(self.icmp),
            fragments: per_window(self.fragments),
            vectors: self.vectors.iter().map(|&v| per_window(v)).collect(),
        }
    }

    /// Whether every check is off.
    pub fn all_off(&self) -> bool {
        [self.pps, self.bps, self.flows, self.udp, self.syn, self.icmp, self.fragments].iter().all(|&x| x == u64::MAX)
            && self.vectors.iter().all(|&x| x == u64::MAX)
    }

    /// The thresholds the window's rates are over.
    pub fn check(&self, c: &Counters, window_ms: u64, vectors: &[VectorConfig], out: &mut Vec<ThresholdCrossed>) {
        let mut test = |metric: Metric, count: u64, limit: u64| {
            let value = per_second(count, window_ms);
            if value > limit {
                out.push(ThresholdCrossed { metric, value, limit });
            }
        };
        test(Metric::Pps, c.tally.packets, self.pps);
        test(Metric::Bps, c.tally.bytes.saturating_mul(8), self.bps);
        test(Metric::Flows, u64::from(c.tally.flows), self.flows);
        test(Metric::UdpPps, c.tally.udp, self.udp);
        test(Metric::SynPps, c.tally.syn, self.syn);
        test(Metric::IcmpPps, c.tally.icmp, self.icmp);
        test(Metric::FragmentPps, c.tally.fragments, self.fragments);
        for ((v, &count), &limit) in vectors.iter().zip(c.vectors.iter()).zip(&self.vectors) {
            if count > 0 {
                test(Metric::VectorPps { port: v.port, name: v.name.clone() }, count, limit);
            }
        }
    }
}

/// The crossing exceeded the most, relative to its limit.
pub(crate) fn worst(crossed: &[ThresholdCrossed]) -> Option<&ThresholdCrossed> {
    let ratio = |t: &ThresholdCrossed| t.value as f64 / t.limit.max(1) as f64;
    crossed.iter().max_by(|a, b| ratio(a).total_cmp(&ratio(b)))
}

/// The dominant cause of a window over thresholds. A protocol- or vector-specific threshold
/// crossed names the vector, most specific first: amplification (the busiest vector), SYN,
/// fragments, ICMP, UDP. Otherwise the window's make-up decides: the first of those holding
/// at least half the packets; failing that, `Volumetric`, or `Anomaly` when only the baseline
/// was crossed.
pub(crate) fn classify(crossed: &[ThresholdCrossed], c: &Counters, vectors: &[VectorConfig]) -> Vector {
    let busiest = c
        .vectors
        .iter()
        .enumerate()
        .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
        .and_then(|(i, &n)| vectors.get(i).map(|v| (v, n)));
    let amplification = |v: &VectorConfig| Vector::Amplification { port: v.port, name: v.name.clone() };
    let has = |m: &Metric| crossed.iter().any(|t| &t.metric == m);
    let vector_crossed = crossed
        .iter()
        .filter_map(|t| match &t.metric {
            Metric::VectorPps { port, .. } => Some((*port, t.value)),
            _ => None,
        })
        .max_by_key(|&(port, value)| (value, std::cmp::Reverse(port)));
    if let Some((port, _)) = vector_crossed {
        if let Some(v) = vectors.iter().find(|v| v.port == port) {
            return amplification(v);
        }
    }
    for (metric, vector) in [
        (Metric::SynPps, Vector::SynFlood),
        (Metric::FragmentPps, Vector::Fragments),
        (Metric::IcmpPps, Vector::IcmpFlood),
        (Metric::UdpPps, Vector::UdpFlood),
    ] {
        if has(&metric) {
            return vector;
        }
    }
    let dominant = |n: u64| n > 0 && n.saturating_mul(2) >= c.tally.packets;
    if let Some((v, n)) = busiest {
        if dominant(n) {
            return amplification(v);
        }
    }
    for (n, vector) in [
        (c.tally.syn, Vector::SynFlood),
        (c.tally.fragments, Vector::Fragments),
        (c.tally.icmp, Vector::IcmpFlood),
        (c.tally.udp, Vector::UdpFlood),
    ] {
        if dominant(n) {
            return vector;
        }
    }
    if crossed.iter().all(|t| t.metric == Metric::Baseline) {
        Vector::Anomaly
    } else {
        Vector::Volumetric
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vectors() -> Vec<VectorConfig> {
        VectorConfig::built_in()
    }

    fn index(port: u16) -> usize {
        vectors().iter().position(|v| v.port == port).unwrap()
    }

    #[test]
    fn thresholds_resolve_field_by_field_and_zero_is_off() {
        let group = Thresholds { pps: Some(10), syn_pps: Some(0), ..Thresholds::default() };
        let defaults = Thresholds {
            pps: Some(20),
            udp_pps: Some(30),
            vector_pps: BTreeMap::from([("ntp".to_string(), 7)]),
            ..Thresholds::default()
        };
        let l = Limits::resolve(&[&group, &defaults, &Thresholds::BUILT_IN], &vectors()).unwrap();
        assert_eq!((l.pps, l.udp, l.syn, l.icmp), (10, 30, u64::MAX, 10_000));
        assert_eq!((l.vectors[index(123)], l.vectors[index(53)]), (7, 10_000));
        let total = Limits::resolve(&[&Thresholds::default()], &vectors()).unwrap();
        assert!(total.all_off());
        let bad = Thresholds { vector_pps: BTreeMap::from([("nope".to_string(), 1)]), ..Thresholds::default() };
        assert!(matches!(Limits::resolve(&[&bad], &vectors()), Err(ConfigError::UnknownVector { .. })));
    }

    #[test]
    fn classification_prefers_the_specific_cause() {
        let v = vectors();
        let limits = Limits::resolve(&[&Thresholds::BUILT_IN], &v).unwrap();
        let mut c = Counters::new(v.len());
        // 60k pps of DNS replies: over pps? no (100k); over udp (50k) and dns (10k).
        c.tally.packets = 60_000;
        c.tally.udp = 60_000;
        c.vectors[index(53)] = 60_000;
        let mut crossed = Vec::new();
        limits.check(&c, 1000, &v, &mut crossed);
        assert_eq!(crossed.len(), 2);
        assert_eq!(classify(&crossed, &c, &v), Vector::Amplification { port: 53, name: "dns".into() });
        assert_eq!(worst(&crossed).unwrap().metric, Metric::VectorPps { port: 53, name: "dns".into() });
        // Volumetric crossing, mostly SYN in make-up.
        let mut c = Counters::new(v.len());
        c.tally.packets = 200_000;
        c.tally.syn = 15_000;
        c.tally.icmp = 150_000;
        crossed.clear();
        limits.check(&c, 1000, &v, &mut crossed);
        assert_eq!(classify(&crossed, &c, &v), Vector::IcmpFlood, "ICMP crossed its own threshold");
        c.tally.icmp = 0;
        crossed.clear();
        limits.check(&c, 1000, &v, &mut crossed);
        assert_eq!(classify(&crossed, &c, &v), Vector::Volumetric);
        let baseline = [ThresholdCrossed { metric: Metric::Baseline, value: 5, limit: 1 }];
        assert_eq!(classify(&baseline, &c, &v), Vector::Anomaly);
        c.tally.udp = 150_000;
        assert_eq!(classify(&baseline, &c, &v), Vector::UdpFlood);
    }

    #[test]
    fn port_vectors_find_each_vector_and_refuse_a_port_twice() {
        let v = vectors();
        let ports = PortVectors::new(&v).unwrap();
        for (i, vector) in v.iter().enumerate() {
            assert_eq!(ports.get(vector.port), Some(i), "{}", vector.name);
        }
        assert_eq!(ports.get(443), None);
        assert_eq!(ports.get(65_535), None);
        let twice = [v[0].clone(), v[0].clone()];
        assert!(matches!(PortVectors::new(&twice), Err(ConfigError::DuplicateVector { .. })));
    }

    #[test]
    fn rates_scale_with_the_window() {
        let mut c = Counters::new(0);
        c.tally.packets = 500;
        c.tally.bytes = 1000;
        assert_eq!((c.pps(500), c.bps(500), c.pps(2000)), (1000, 16_000, 250));
        assert_eq!(per_second(u64::MAX, 1), u64::MAX);
    }
}
