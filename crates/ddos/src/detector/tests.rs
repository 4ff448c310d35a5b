use std::net::IpAddr;

use bawaba_flow::{FlowProtocol, FlowRecord, Sampling, SamplingSource};

use super::*;
use crate::config::{BaselineConfig, GroupConfig, Thresholds};
use crate::Vector;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rec(src: &str, dst: &str, protocol: u8, src_port: u16, packets: u64, rate: Option<u32>) -> FlowRecord {
    let mut r = FlowRecord::empty(FlowProtocol::Ipfix, ip("192.0.2.1"), 0);
    r.src = ip(src);
    r.dst = ip(dst);
    r.protocol = protocol;
    r.src_port = src_port;
    r.dst_port = 40_000;
    r.packets = packets;
    r.bytes = packets * 100;
    r.sampling = rate.map_or(Sampling::UNKNOWN, |n| Sampling::known(n, SamplingSource::PacketHeader));
    r
}

fn config() -> DetectorConfig {
    DetectorConfig {
        hold_down_ms: 2000,
        groups: vec![GroupConfig {
            name: "isp-a".into(),
            prefixes: vec!["198.18.0.0/16".into(), "2001:db8::/32".into()],
            thresholds: Thresholds { pps: Some(1000), ..Thresholds::default() },
            total: Thresholds { pps: Some(5000), ..Thresholds::default() },
        }],
        baseline: BaselineConfig { enabled: false, ..BaselineConfig::default() },
        ..DetectorConfig::default()
    }
}

const T0: u64 = 1_704_067_200_000;

#[test]
fn sampling_scales_and_unknown_sampling_is_counted_unscaled() {
    let mut d = Detector::new(&config()).unwrap();
    d.record(&rec("203.0.113.1", "198.18.0.1", 6, 443, 1, Some(1000)), T0);
    assert!(d.tick(T0 + 1000).is_empty(), "1000 pps is not over a limit of 1000");
    let mut d = Detector::new(&config()).unwrap();
    d.record(&rec("203.0.113.1", "198.18.0.1", 6, 443, 2, Some(1000)), T0);
    let events = d.tick(T0 + 1000);
    assert_eq!(events.len(), 1);
    let a = events[0].attack();
    assert_eq!((a.last_pps, a.last_bps, a.unknown_sampling), (2000, 2000 * 800, false));
    assert_eq!(a.top_sources, vec![(ip("203.0.113.1"), 2000)]);
    assert_eq!(a.top_source_ports, vec![(443, 2000)]);

    let mut d = Detector::new(&config()).unwrap();
    d.record(&rec("203.0.113.1", "198.18.0.1", 6, 443, 900, None), T0);
    d.record(&rec("203.0.113.1", "198.18.0.1", 6, 443, 900, None), T0 + 1);
    d.record(&rec("203.0.113.1", "203.0.113.9", 6, 443, 900, None), T0 + 2);
    let s = d.stats();
    assert_eq!((s.records, s.records_counted, s.records_outside, s.unknown_sampling), (3, 2, 1, 2));
    let events = d.tick(T0 + 1000);
    let a = events[0].attack();
    assert_eq!((a.last_pps, a.unknown_sampling), (1800, true));
}

#[test]
fn windows_follow_arrival_time_and_late_records_count_in_the_open_window() {
    let mut d = Detector::new(&config()).unwrap();
    let mut r = rec("203.0.113.1", "198.18.0.1", 17, 5000, 600, Some(1));
    r.start_ms = Some(T0 - 120_000); // an active timeout's worth behind
    r.end_ms = Some(T0 - 60_000);
    d.record(&r, T0 + 100);
    d.record(&r, T0 + 999);
    assert!(d.tick(T0 + 999).is_empty(), "the window has not ended");
    // A record arriving in the next window closes this one; the event waits for tick.
    d.record(&r, T0 + 1000);
    d.record(&r, T0 + 500); // late: counted in the open window
    assert_eq!(d.stats().late_records, 1);
    let events = d.tick(T0 + 1000);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind(), events[0].attack().last_pps), ("started", 1200));
    let events = d.tick(T0 + 2000);
    assert_eq!((events[0].kind(), events[0].attack().last_pps), ("updated", 1200));
}

#[test]
fn an_attack_ends_after_the_hold_down_and_empty_windows_are_skipped_when_idle() {
    let mut d = Detector::new(&config()).unwrap();
    d.record(&rec("203.0.113.1", "198.18.0.1", 1, 0, 5000, Some(1)), T0);
    let started = d.tick(T0 + 1000);
    assert_eq!(started[0].attack().vector, Vector::IcmpFlood);
    assert_eq!(started[0].attack().started_ms, T0);
    // Silence: windows ending T0+2000 (1000 ms below) and T0+3000 (2000 ms: hold-down reached).
    let events = d.tick(T0 + 60_000);
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds, ["updated", "ended"]);
    let ended = events[1].attack();
    assert_eq!((ended.ended_ms, ended.peak_pps, ended.last_pps), (Some(T0 + 3000), 5000, 0));
    assert!(d.attacks().is_empty());
    let s = d.stats();
    assert_eq!((s.attacks_started, s.attacks_ended, s.windows_closed), (1, 1, 60));
    // A day without records costs nothing per window.
    assert!(d.tick(T0 + 86_400_000).is_empty());
    assert_eq!(d.stats().windows_closed, 86_400);
}

#[test]
fn the_host_table_is_bounded_and_hosts_under_attack_stay() {
    let mut d = Detector::new(&DetectorConfig { max_hosts: 100, ..config() }).unwrap();
    d.record(&rec("203.0.113.1", "198.18.0.1", 17, 9, 5000, Some(1)), T0);
    assert_eq!(d.tick(T0 + 1000).len(), 1);
    for i in 0..10_000u32 {
        let dst = format!("198.18.{}.{}", 1 + i / 250, i % 250);
        d.record(&rec("203.0.113.1", &dst, 17, 9, 1, Some(1)), T0 + 1000 + u64::from(i % 1000));
    }
    let s = d.stats();
    assert_eq!(s.hosts_tracked, 100);
    assert!(s.hosts_evicted >= 9_900, "{s:?}");
    assert!(d.index.contains_key(&ip("198.18.0.1")), "the attacked host was not evicted");
    assert_eq!(d.index.len(), d.hosts.len());
    for (i, t) in d.hosts.iter().enumerate() {
        assert_eq!(d.index[&t.addr] as usize, i);
    }
}

#[test]
fn idle_hosts_are_forgotten() {
    let mut d = Detector::new(&DetectorConfig { host_idle_ms: 5000, ..config() }).unwrap();
    d.record(&rec("203.0.113.1", "198.18.0.1", 6, 443, 1, Some(1)), T0);
    d.record(&rec("203.0.113.1", "198.18.0.2", 6, 443, 1, Some(1)), T0);
    for s in 1..10 {
        d.record(&rec("203.0.113.1", "198.18.0.2", 6, 443, 1, Some(1)), T0 + s * 1000);
    }
    d.tick(T0 + 10_000);
    let s = d.stats();
    assert_eq!((s.hosts_tracked, s.hosts_expired), (1, 1));
    assert_eq!(d.hosts[0].addr, ip("198.18.0.2"));
}

#[test]
fn carpet_bombing_is_an_attack_on_the_prefix() {
    let mut d = Detector::new(&config()).unwrap();
    // 200 hosts at 500 pps each: no host over 1000, the /16 at 100,000 over 5000.
    for i in 0..200u64 {
        let dst = format!("198.18.3.{i}");
        d.record(&rec("203.0.113.7", &dst, 17, 123, 500, Some(1)), T0 + i);
    }
    let events = d.tick(T0 + 1000);
    assert_eq!(events.len(), 1, "{events:?}");
    let a = events[0].attack();
    assert_eq!((a.target, a.prefix_len, a.group.as_str()), (ip("198.18.0.0"), 16, "isp-a"));
    assert_eq!(a.vector, Vector::Amplification { port: 123, name: "ntp".into() });
    assert_eq!(a.top_sources, vec![(ip("203.0.113.7"), 100_000)]);
    assert!(!a.is_host());
}

#[test]
fn ipv6_targets_are_tracked() {
    let mut d = Detector::new(&config()).unwrap();
    let mut r = rec("2001:db8:ffff::1", "2001:db8::5", 6, 1234, 3000, Some(1));
    r.tcp_flags = 0x02;
    d.record(&r, T0);
    let events = d.tick(T0 + 1000);
    let a = events[0].attack();
    assert_eq!((a.target, a.prefix_len, a.vector.clone()), (ip("2001:db8::5"), 128, Vector::SynFlood));
    assert_eq!(a.top_sources[0].0, ip("2001:db8:ffff::1"));
}

#[test]
fn bad_configs_are_refused() {
    assert_eq!(Detector::new(&DetectorConfig { window_ms: 0, ..config() }).unwrap_err(), ConfigError::ZeroWindow);
    assert!(matches!(
        Detector::new(&DetectorConfig { top_sources: 0, ..config() }),
        Err(ConfigError::ZeroLimit { field: "top_sources" })
    ));
    let mut dup = config();
    dup.vectors.push(VectorConfig { port: 53, name: "dns2".into() });
    assert_eq!(Detector::new(&dup).unwrap_err(), ConfigError::DuplicateVector { port: 53 });
    let alpha = BaselineConfig { alpha: 1.5, ..BaselineConfig::default() };
    assert!(matches!(
        Detector::new(&DetectorConfig { baseline: alpha, ..config() }),
        Err(ConfigError::Baseline { field: "alpha" })
    ));
}

#[test]
fn a_host_costs_what_the_config_documents() {
    // The fixed part of a host; its sketches (20 + 20 counters at the default top_sources),
    // vector counters and baseline are allocated beside it.
    let fixed = std::mem::size_of::<Target>();
    let sketches = 20 * (2 + std::mem::size_of::<crate::sketch::Counter<u128>>())
        + 20 * (2 + std::mem::size_of::<crate::sketch::Counter<u16>>());
    let vectors = 8 * VectorConfig::built_in().len();
    let baseline = 168 * 12;
    let without = fixed + sketches + vectors;
    eprintln!("host: {fixed} fixed, {without} without baseline, {} with", without + baseline);
    assert!(without < 1700, "{without}");
    assert!(without + baseline < 3700);
}

#[test]
fn quiet_hosts_are_counted_but_not_followed_source_by_source() {
    // Background traffic far under every threshold feeds no sketch; a host that becomes busy is
    // followed from an eighth of its lowest threshold on.
    let mut d = Detector::new(&config()).expect("config");
    for i in 0..50u64 {
        d.record(&rec("198.19.0.1", "198.18.0.10", 6, 443, 1, Some(1)), T0 + i);
    }
    assert_eq!(d.stats().records_followed, 0);
    assert_eq!(d.stats().sketch_counters, 0);
    assert_eq!(d.stats().records_counted, 50);
    // 1,000 pps is the host threshold: past 125 packets in the window, sources are followed.
    for i in 0..200u64 {
        d.record(&rec("198.19.0.2", "198.18.0.10", 6, 443, 1, Some(1)), T0 + 100 + i);
    }
    let s = d.stats();
    assert!(s.records_followed >= 100 && s.records_followed < 200, "{s:?}");
    assert!(s.sketch_counters > 0);
}

#[test]
fn each_counter_is_held_against_its_own_floor() {
    // pps 100,000 (floor 12,500 packets a window) and ICMP 1,000 pps (floor 125): 2,000 TCP
    // packets and 100 ICMP packets reach neither, though 2,100 packets are past the ICMP floor.
    let mut config = config();
    config.groups[0].thresholds = Thresholds { pps: Some(100_000), icmp_pps: Some(1000), ..Thresholds::default() };
    config.groups[0].total = Thresholds { pps: Some(1_000_000), ..Thresholds::default() };
    let mut d = Detector::new(&config).expect("config");
    for i in 0..100u64 {
        d.record(&rec("198.19.0.1", "198.18.0.10", 6, 443, 20, Some(1)), T0 + i);
        d.record(&rec("198.19.0.1", "198.18.0.10", 1, 0, 1, Some(1)), T0 + i);
    }
    assert_eq!(d.stats().records_followed, 0);
    // ICMP reaches its floor at the 125th packet: from then on every record is followed, TCP too.
    for i in 0..30u64 {
        d.record(&rec("198.19.0.2", "198.18.0.10", 1, 0, 1, Some(1)), T0 + 200 + i);
    }
    assert_eq!(d.stats().records_followed, 6);
    d.record(&rec("198.19.0.3", "198.18.0.10", 6, 443, 20, Some(1)), T0 + 300);
    assert_eq!(d.stats().records_followed, 7);
    // A new window starts cold.
    d.tick(T0 + 1000);
    d.record(&rec("198.19.0.3", "198.18.0.10", 6, 443, 20, Some(1)), T0 + 1000);
    assert_eq!(d.stats().records_followed, 7);
}

#[test]
fn a_hosts_hot_line_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<HostHot>(), 64);
}

#[test]
fn record_all_counts_exactly_as_record_does() {
    // Many hosts over a small table (evictions mid-group), a few busy ones (attacks, followed
    // sources), windows closing between groups: both paths must end in the same state.
    let mut config = config();
    config.max_hosts = 40;
    let (mut one, mut all) = (Detector::new(&config).unwrap(), Detector::new(&config).unwrap());
    let (mut events_one, mut events_all) = (Vec::new(), Vec::new());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut batch = Vec::new();
    for step in 0..400u64 {
        let now = T0 + step * 10;
        batch.clear();
        for _ in 0..(next() % 20) {
            let r = next();
            let host = if r % 4 == 0 { r % 3 } else { r % 200 };
            let dst = format!("198.18.{}.{}", host / 250, host % 250 + 1);
            let src = format!("198.19.0.{}", r % 250 + 1);
            let protocol = [6, 17, 1][(r % 3) as usize];
            batch.push(rec(&src, &dst, protocol, (r % 1000) as u16, 1 + r % 40, Some(1)));
        }
        for r in &batch {
            one.record(r, now);
        }
        all.record_all(&batch, now);
        events_one.extend(one.tick(now));
        events_all.extend(all.tick(now));
    }
    assert_eq!(one.stats(), all.stats());
    assert!(one.stats().hosts_evicted > 0 && one.stats().attacks_started > 0, "{:?}", one.stats());
    let attacks = |events: &[Event]| events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>();
    assert_eq!(attacks(&events_one), attacks(&events_all));
}
