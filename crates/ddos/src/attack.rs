//! What the detector reports: attacks and their start, updates and end.

use std::net::IpAddr;

use bawaba_bgp::Prefix;
use serde::Serialize;

/// The dominant cause of an attack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Vector {
    /// Reflected UDP from one service port (DNS, NTP, memcached ...).
    Amplification {
        /// The UDP source port.
        port: u16,
        /// The vector's configured name.
        name: String,
    },
    /// UDP without one dominant amplification port.
    UdpFlood,
    /// TCP SYN without ACK.
    SynFlood,
    /// ICMP or ICMPv6.
    IcmpFlood,
    /// IP fragments.
    Fragments,
    /// Too many packets, bits or flows, with no one protocol dominant.
    Volumetric,
    /// Above the learned baseline, with no one protocol dominant.
    Anomaly,
}

impl Vector {
    /// A snake_case name, usable as a metric label (the amplification port is left out).
    pub fn as_str(&self) -> &'static str {
        match self {
            Vector::Amplification { .. } => "amplification",
            Vector::UdpFlood => "udp_flood",
            Vector::SynFlood => "syn_flood",
            Vector::IcmpFlood => "icmp_flood",
            Vector::Fragments => "fragments",
            Vector::Volumetric => "volumetric",
            Vector::Anomaly => "anomaly",
        }
    }
}

/// A measured rate that can cross a threshold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Metric {
    /// Packets per second.
    Pps,
    /// Bits per second.
    Bps,
    /// Flow records per second.
    Flows,
    /// UDP packets per second.
    UdpPps,
    /// TCP SYN (without ACK) packets per second.
    SynPps,
    /// ICMP packets per second.
    IcmpPps,
    /// Fragment packets per second.
    FragmentPps,
    /// Packets per second of one amplification vector.
    VectorPps {
        /// Its UDP source port.
        port: u16,
        /// Its name.
        name: String,
    },
    /// Packets per second above the learned baseline (the limit is `mean + k * deviation`,
    /// or the floor).
    Baseline,
}

/// A threshold a window's rate went over.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ThresholdCrossed {
    /// What was measured.
    pub metric: Metric,
    /// The window's rate, per second.
    pub value: u64,
    /// The threshold.
    pub limit: u64,
}

/// One attack on a host, or on a whole protected prefix (traffic spread over its hosts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attack {
    /// Unique within one detector, counting from 1.
    pub id: u64,
    /// The attacked host, or the network address of the attacked prefix.
    pub target: IpAddr,
    /// 32 or 128 for a host; the prefix length for a prefix.
    pub prefix_len: u8,
    /// The protected group the target belongs to.
    pub group: String,
    /// The dominant cause in the window the attack was detected in.
    pub vector: Vector,
    /// Every dominant cause seen in the windows over a threshold so far, `vector` first.
    pub vectors: Vec<Vector>,
    /// The threshold that started the attack (the one exceeded the most, relatively).
    pub threshold: ThresholdCrossed,
    /// Start of the window it was detected in, ms.
    pub started_ms: u64,
    /// End of the window in which the hold-down ran out, once ended.
    pub ended_ms: Option<u64>,
    /// Highest packet rate of a window of the attack.
    pub peak_pps: u64,
    /// Highest bit rate of a window of the attack.
    pub peak_bps: u64,
    /// Packet rate of the latest window.
    pub last_pps: u64,
    /// Bit rate of the latest window.
    pub last_bps: u64,
    /// The heaviest sources over the attack so far, with packets certainly counted for each
    /// (scaled by sampling). Sources of a spread-out flood may not appear at all.
    pub top_sources: Vec<(IpAddr, u64)>,
    /// The heaviest source ports (TCP and UDP) over the attack so far, with packets.
    pub top_source_ports: Vec<(u16, u64)>,
    /// Some of the attack's records had an unknown sampling rate and were counted unscaled:
    /// the rates may be understated.
    pub unknown_sampling: bool,
}

impl Attack {
    /// The target as a prefix (a /32 or /128 for a host).
    pub fn prefix(&self) -> Prefix {
        // `prefix_len` is set by the detector from the address family or a parsed prefix.
        Prefix::new(self.target, self.prefix_len).unwrap_or(Prefix { addr: self.target, len: self.prefix_len })
    }

    /// Whether the target is one host.
    pub fn is_host(&self) -> bool {
        self.prefix_len == if self.target.is_ipv4() { 32 } else { 128 }
    }
}

/// A change in an attack, from [`crate::Detector::tick`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", content = "attack", rename_all = "kebab-case")]
pub enum Event {
    /// The first window over a threshold closed.
    Started(Attack),
    /// Another window of an ongoing attack closed (over or under its thresholds).
    Updated(Attack),
    /// The rates stayed below every threshold for the hold-down time; `ended_ms` is set.
    Ended(Attack),
}

impl Event {
    /// The attack the event is about.
    pub fn attack(&self) -> &Attack {
        match self {
            Event::Started(a) | Event::Updated(a) | Event::Ended(a) => a,
        }
    }

    /// `started`, `updated` or `ended`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Started(_) => "started",
            Event::Updated(_) => "updated",
            Event::Ended(_) => "ended",
        }
    }
}
