//! Configuration: `[ddos.detection]` for the [`crate::Detector`] and `[ddos.mitigation]` for the
//! [`crate::Mitigator`]. Every field has a default; unknown fields are refused.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `[ddos]`: detection and mitigation together.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DdosConfig {
    /// What is protected and when traffic is an attack.
    pub detection: DetectorConfig,
    /// What to announce about an attack.
    pub mitigation: MitigatorConfig,
}

/// `[ddos.detection]`: protected networks, thresholds, the learned baseline.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Length of a counting window, in milliseconds of arrival time. Rates are per second over
    /// one window, and an attack is detected when the window it starts in closes.
    pub window_ms: u64,
    /// How long every rate of an attacked target must stay below all its thresholds before the
    /// attack ends, in milliseconds.
    pub hold_down_ms: u64,
    /// Most destination hosts tracked at once (the memory bound: about 3.6 KiB a host with the
    /// baseline on, 1.6 KiB without, at the default `top_sources`). Beyond it the least recently seen host not under attack
    /// is evicted, its learned baseline with it; the traffic still counts in its prefix.
    pub max_hosts: usize,
    /// A host not under attack that received nothing for this long is forgotten, in ms.
    pub host_idle_ms: u64,
    /// How many top sources and top source ports an attack reports. Each target keeps twice as
    /// many counters (space-saving sketch), whatever the number of distinct sources.
    pub top_sources: usize,
    /// Per-host thresholds for hosts whose group leaves a field unset. Fields left unset here
    /// take the built-in values of [`Thresholds::BUILT_IN`].
    pub defaults: Thresholds,
    /// The protected networks, one group per customer ISP. Traffic to anything else is only
    /// counted in the statistics.
    pub groups: Vec<GroupConfig>,
    /// Amplification vectors: UDP traffic from one of these source ports is counted under the
    /// vector's name. Setting the list replaces the built-in one ([`VectorConfig::built_in`]).
    pub vectors: Vec<VectorConfig>,
    /// The learned baseline of normal traffic.
    pub baseline: BaselineConfig,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            window_ms: 1000,
            hold_down_ms: 30_000,
            max_hosts: 65_536,
            host_idle_ms: 86_400_000,
            top_sources: 10,
            defaults: Thresholds::default(),
            groups: Vec::new(),
            vectors: VectorConfig::built_in(),
            baseline: BaselineConfig::default(),
        }
    }
}

/// `[[ddos.detection.groups]]`: the networks of one customer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The customer's name, carried by its attacks.
    pub name: String,
    /// Its prefixes, `"198.18.0.0/16"` or `"2001:db8::/32"`. A destination belongs to the
    /// longest prefix that covers it.
    pub prefixes: Vec<String>,
    /// Thresholds for each host of the group; unset fields fall back to `defaults`.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Thresholds on the sum of all traffic to one of the group's prefixes (carpet bombing
    /// spread over many hosts); the attack's target is then the prefix. Unset fields are off.
    #[serde(default)]
    pub total: Thresholds,
}

/// Rate thresholds, per second. A field left unset falls back as its place says; `0` turns
/// the check off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Packets per second, all protocols.
    pub pps: Option<u64>,
    /// Bits per second, all protocols.
    pub bps: Option<u64>,
    /// Flow records per second (not scaled by sampling: with sFlow, samples per second).
    pub flows: Option<u64>,
    /// UDP packets per second.
    pub udp_pps: Option<u64>,
    /// TCP packets per second in flows with SYN set and ACK not set.
    pub syn_pps: Option<u64>,
    /// ICMP and ICMPv6 packets per second.
    pub icmp_pps: Option<u64>,
    /// IP fragment packets per second.
    pub fragment_pps: Option<u64>,
    /// Packets per second of any one amplification vector.
    pub amplification_pps: Option<u64>,
    /// Per-vector overrides of `amplification_pps`, by vector name (`dns = 20000`).
    pub vector_pps: BTreeMap<String, u64>,
}

impl Thresholds {
    /// The per-host thresholds used when neither the group nor `defaults` sets a field.
    pub const BUILT_IN: Thresholds = Thresholds {
        pps: Some(100_000),
        bps: Some(1_000_000_000),
        flows: Some(50_000),
        udp_pps: Some(50_000),
        syn_pps: Some(20_000),
        icmp_pps: Some(10_000),
        fragment_pps: Some(10_000),
        amplification_pps: Some(10_000),
        vector_pps: BTreeMap::new(),
    };
}

/// One amplification vector: replies from a UDP service port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VectorConfig {
    /// The UDP source port of the reflected traffic.
    pub port: u16,
    /// A short name (`dns`), used in events and in `vector_pps`.
    pub name: String,
}

impl VectorConfig {
    /// The built-in vectors: the reflection services seen in the wild (US-CERT TA14-017A and
    /// later additions).
    pub fn built_in() -> Vec<VectorConfig> {
        [
            (17, "qotd"),
            (19, "chargen"),
            (53, "dns"),
            (111, "portmap"),
            (123, "ntp"),
            (137, "netbios"),
            (161, "snmp"),
            (389, "cldap"),
            (520, "rip"),
            (1434, "mssql"),
            (1900, "ssdp"),
            (3283, "ard"),
            (3702, "ws-discovery"),
            (5353, "mdns"),
            (5683, "coap"),
            (10001, "ubiquiti"),
            (11211, "memcached"),
            (37810, "dvr"),
        ]
        .into_iter()
        .map(|(port, name)| VectorConfig { port, name: name.into() })
        .collect()
    }
}

/// What the baseline is learned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineScope {
    /// Each tracked host.
    Hosts,
    /// Each protected prefix (the sum of its hosts).
    Prefixes,
    /// Both.
    Both,
}

/// `[ddos.detection.baseline]`: an exponentially weighted moving average of each target's
/// packet rate and of its absolute deviation, one pair per hour of the week (UTC), updated
/// once a window while the target is not under attack. A window is flagged when its rate is
/// above `mean + k * deviation` and above `floor_pps`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Learn and flag at all.
    pub enabled: bool,
    /// Hosts, prefixes or both.
    pub scope: BaselineScope,
    /// Weight of the newest window, in (0, 1]. 0.01 remembers about the last 100 windows.
    pub alpha: f64,
    /// How many deviations above the mean a rate must be to be flagged.
    pub k: f64,
    /// Rates at or below this many packets per second are never flagged by the baseline.
    pub floor_pps: u64,
    /// Windows an hour-of-week bucket must have learned before it flags anything.
    pub min_samples: u32,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            enabled: true,
            scope: BaselineScope::Both,
            alpha: 0.01,
            k: 5.0,
            floor_pps: 10_000,
            min_samples: 300,
        }
    }
}

/// What a mitigation announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MitigationMode {
    /// A blackhole route (RFC 7999): all traffic to the target is dropped.
    Blackhole,
    /// FlowSpec rules (RFC 8955/8956) matching the attack vector.
    Flowspec,
    /// Both: blackhole for the routers that only do RTBH, FlowSpec for the others.
    Both,
}

/// The action of the FlowSpec rules bawaba announces.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowSpecActionConfig {
    /// Drop the matched traffic (`"discard"`).
    Discard,
    /// Police it to this many bytes per second (`{ rate-limit = 1250000.0 }`).
    RateLimit(f32),
}

/// `[ddos.mitigation]`: the mitigation planner and its safety rails.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MitigatorConfig {
    /// `blackhole`, `flowspec` or `both`.
    pub mode: MitigationMode,
    /// Plan and report mitigations but announce nothing: [`crate::Mitigator::routes`] stays
    /// empty. On by default, so a new deployment watches before it acts.
    pub dry_run: bool,
    /// Next hop of IPv4 blackhole routes (the routers' discard address).
    pub next_hop_v4: Ipv4Addr,
    /// Next hop of IPv6 blackhole routes.
    pub next_hop_v6: Ipv6Addr,
    /// Extra standard communities on every announced route, `"65000:666"` or `no-export`.
    /// Blackhole routes always carry 65535:666 (RFC 7999 section 5).
    pub communities: Vec<String>,
    /// What FlowSpec rules do: `"discard"` or `{ rate-limit = <bytes per second> }`.
    pub flowspec_action: FlowSpecActionConfig,
    /// Shortest IPv4 prefix ever announced (1 to 32).
    pub min_prefix_v4: u8,
    /// Shortest IPv6 prefix ever announced (1 to 128).
    pub min_prefix_v6: u8,
    /// Prefixes never mitigated: no route inside or covering one is announced.
    pub allowlist: Vec<String>,
    /// Most mitigations (attacks or manual routes) active at once; beyond, refused.
    pub max_mitigations: usize,
    /// Also drop the attack traffic in bawaba's own inline packet engine (`[engine] mode =
    /// "nfqueue"`) while a route is announced.
    pub engine_drop: bool,
}

impl Default for MitigatorConfig {
    fn default() -> Self {
        MitigatorConfig {
            mode: MitigationMode::Blackhole,
            dry_run: true,
            next_hop_v4: Ipv4Addr::new(192, 0, 2, 1),
            next_hop_v6: Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 1),
            communities: Vec::new(),
            flowspec_action: FlowSpecActionConfig::Discard,
            min_prefix_v4: 24,
            min_prefix_v6: 48,
            allowlist: Vec::new(),
            max_mitigations: 32,
            engine_drop: false,
        }
    }
}

/// A configuration the detector or the mitigator cannot work with.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `window_ms` is 0.
    #[error("window_ms must be at least 1")]
    ZeroWindow,
    /// `top_sources` or `max_hosts` is 0.
    #[error("{field} must be at least 1")]
    ZeroLimit {
        /// The field.
        field: &'static str,
    },
    /// A group has no name, or two groups share one.
    #[error("group name {name:?} is empty or used twice")]
    GroupName {
        /// The name.
        name: String,
    },
    /// Too many groups or prefixes to index.
    #[error("too many {what} (at most {max})")]
    TooMany {
        /// Groups, prefixes or vectors.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A prefix does not parse.
    #[error("in {place}: {value:?} is not a prefix (address/length)")]
    BadPrefix {
        /// Where: the group's name, or `allowlist`.
        place: String,
        /// The text.
        value: String,
    },
    /// The same prefix is protected twice.
    #[error("prefix {prefix} is listed twice (groups {first:?} and {second:?})")]
    DuplicatePrefix {
        /// The prefix.
        prefix: String,
        /// The group that listed it first.
        first: String,
        /// The group that listed it again.
        second: String,
    },
    /// Two vectors share a port.
    #[error("vector port {port} is listed twice")]
    DuplicateVector {
        /// The port.
        port: u16,
    },
    /// `vector_pps` names a vector that is not configured.
    #[error("vector_pps names {name:?}, which is not a configured vector")]
    UnknownVector {
        /// The name.
        name: String,
    },
    /// A baseline parameter is out of range.
    #[error("baseline {field} is out of range")]
    Baseline {
        /// `alpha` or `k`.
        field: &'static str,
    },
    /// A community does not parse.
    #[error("community {value:?} is not `high:low` (two numbers up to 65535) or a well-known name")]
    BadCommunity {
        /// The text.
        value: String,
    },
    /// A minimum prefix length is 0 or longer than the family's addresses.
    #[error("{field} = {value} is out of range (1 to {max})")]
    MinPrefix {
        /// `min_prefix_v4` or `min_prefix_v6`.
        field: &'static str,
        /// The value.
        value: u8,
        /// 32 or 128.
        max: u8,
    },
    /// A FlowSpec rate limit is negative or not a number.
    #[error("flowspec rate-limit must be a non-negative number of bytes per second")]
    RateLimit,
}

/// Parses a standard community: `high:low`, or one of the RFC 1997 / RFC 7999 names
/// `no-export`, `no-advertise`, `no-export-subconfed`, `blackhole`.
pub fn parse_community(s: &str) -> Result<u32, ConfigError> {
    let bad = || ConfigError::BadCommunity { value: s.into() };
    match s.trim() {
        "no-export" => return Ok(0xffff_ff01),
        "no-advertise" => return Ok(0xffff_ff02),
        "no-export-subconfed" => return Ok(0xffff_ff03),
        "blackhole" => return Ok(bawaba_bgp::BLACKHOLE),
        _ => {}
    }
    let (high, low) = s.trim().split_once(':').ok_or_else(bad)?;
    let high: u16 = high.parse().map_err(|_| bad())?;
    let low: u16 = low.parse().map_err(|_| bad())?;
    Ok(u32::from(high) << 16 | u32::from(low))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn communities_parse() {
        assert_eq!(parse_community("65535:666"), Ok(bawaba_bgp::BLACKHOLE));
        assert_eq!(parse_community("65000:1"), Ok(0xfde8_0001));
        assert_eq!(parse_community("no-export"), Ok(0xffff_ff01));
        for bad in ["65536:1", "1", "a:b", "1:2:3", ""] {
            assert!(parse_community(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_example_config_loads_and_every_default_is_listed() {
        // The [ddos] sections of the one example configuration of the project.
        let text = include_str!("../../../etc/bawaba.example.toml");
        let value: toml::Value = toml::from_str(text).unwrap();
        let section = value.get("ddos").unwrap().clone();
        let config: DdosConfig = section.clone().try_into().unwrap();
        let detection = DetectorConfig { groups: config.detection.groups.clone(), ..DetectorConfig::default() };
        assert_eq!(config.detection, detection, "the example's detection settings are the defaults");
        let mitigation =
            MitigatorConfig { allowlist: config.mitigation.allowlist.clone(), ..MitigatorConfig::default() };
        assert_eq!(config.mitigation, mitigation, "the example's mitigation settings are the defaults");
        // Every field of the defaults appears in the example.
        let defaults = toml::Value::try_from(DdosConfig::default()).unwrap();
        for (table, fields) in defaults.as_table().unwrap() {
            for field in fields.as_table().unwrap().keys() {
                assert!(
                    section.get(table).and_then(|t| t.get(field)).is_some(),
                    "{table}.{field} missing from the example"
                );
            }
        }
    }

    #[test]
    fn unknown_fields_are_refused_and_partial_sections_keep_defaults() {
        assert!(toml::from_str::<DetectorConfig>("window = 5").is_err());
        assert!(toml::from_str::<DetectorConfig>("[defaults]\npps_limit = 5").is_err());
        let c: DetectorConfig = toml::from_str("hold_down_ms = 5\n[baseline]\nk = 2.0").unwrap();
        assert_eq!((c.hold_down_ms, c.window_ms, c.baseline.k, c.baseline.alpha), (5, 1000, 2.0, 0.01));
        let m: MitigatorConfig = toml::from_str("mode = \"both\"\nflowspec_action = { rate-limit = 1000.0 }").unwrap();
        assert_eq!((m.mode, m.flowspec_action), (MitigationMode::Both, FlowSpecActionConfig::RateLimit(1000.0)));
    }
}
