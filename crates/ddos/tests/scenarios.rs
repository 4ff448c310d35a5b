//! Attack scenarios end to end: flow records into the detector, its events into the
//! mitigation planner, routes out.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::net::{IpAddr, Ipv4Addr};

use bawaba_bgp::{FlowSpec, NumericMatch, Prefix, Route, BLACKHOLE};
use bawaba_ddos::config::{
    BaselineConfig, BaselineScope, DetectorConfig, GroupConfig, MitigationMode, MitigatorConfig, Thresholds,
};
use bawaba_ddos::{Decision, Detector, Event, Metric, Mitigator, Protected, Refusal, Vector};
use bawaba_flow::{FlowProtocol, FlowRecord, Sampling, SamplingSource};

/// Monday 2024-01-01 00:00 UTC.
const T0: u64 = 1_704_067_200_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

fn record(src: IpAddr, dst: IpAddr, protocol: u8, src_port: u16, packets: u64, rate: Option<u32>) -> FlowRecord {
    let mut r = FlowRecord::empty(FlowProtocol::NetflowV9, ip("192.0.2.1"), 0);
    r.src = src;
    r.dst = dst;
    r.protocol = protocol;
    r.src_port = src_port;
    r.dst_port = 33_000;
    r.tcp_flags = if protocol == 6 { 0x18 } else { 0 }; // PSH ACK: established traffic
    r.packets = packets;
    r.bytes = packets * 500;
    r.sampling = rate.map_or(Sampling::UNKNOWN, |n| Sampling::known(n, SamplingSource::OptionsTemplate));
    r
}

fn group(name: &str, prefixes: &[&str]) -> GroupConfig {
    GroupConfig {
        name: name.into(),
        prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        thresholds: Thresholds::default(),
        total: Thresholds::default(),
    }
}

fn detection() -> DetectorConfig {
    DetectorConfig {
        hold_down_ms: 3000,
        groups: vec![group("isp-a", &["198.18.0.0/16", "2001:db8::/32"]), group("isp-b", &["198.19.0.0/16"])],
        ..DetectorConfig::default()
    }
}

fn mitigation(mode: MitigationMode) -> MitigatorConfig {
    MitigatorConfig { mode, dry_run: false, ..MitigatorConfig::default() }
}

/// One window of ordinary traffic: 500 hosts of 198.18.0.0/16, each a few TCP and UDP flows
/// from a few clients, sampled 1 in 100: 100 to 1,600 pps a host, far under every threshold.
fn background(d: &mut Detector, second: u64, seed: &mut u32) {
    for host in 0..500u32 {
        for flow in 0..4u32 {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            let dst = v4(0xc612_0000 + host);
            let src = v4(0x0a00_0000 + (*seed % 5000));
            let protocol = if flow % 2 == 0 { 6 } else { 17 };
            let rec = record(src, dst, protocol, 443, 1 + u64::from(*seed % 4), Some(100));
            d.record(&rec, T0 + second * 1000 + u64::from(host + flow) % 1000);
        }
    }
}

#[test]
fn background_traffic_under_the_thresholds_triggers_nothing() {
    let mut d = Detector::new(&detection()).unwrap();
    let mut seed = 7;
    for second in 0..60 {
        background(&mut d, second, &mut seed);
        assert_eq!(d.tick(T0 + (second + 1) * 1000), vec![], "second {second}");
    }
    let s = d.stats();
    assert_eq!((s.records_counted, s.hosts_tracked, s.windows_closed, s.attacks_started), (120_000, 500, 60, 0));
}

#[test]
fn dns_amplification_is_detected_classified_mitigated_and_withdrawn() {
    let mut d = Detector::new(&detection()).unwrap();
    let mut m = Mitigator::new(&mitigation(MitigationMode::Both), d.protected().clone()).unwrap();
    let target = ip("198.18.5.5");
    let mut seed = 1;
    // Ten quiet seconds.
    for second in 0..10 {
        background(&mut d, second, &mut seed);
        assert!(d.tick(T0 + (second + 1) * 1000).is_empty());
    }
    // Then 40 open resolvers answer toward the target, sampled 1 in 1000: resolver i sends
    // i+1 records of 2 sampled packets each second: 820 records, 1.64 M pps.
    let flood = |d: &mut Detector, second: u64| {
        for i in 0..40u32 {
            for _ in 0..=i {
                let rec = record(v4(0xcb00_7100 + i), target, 17, 53, 2, Some(1000));
                d.record(&rec, T0 + second * 1000 + u64::from(i) * 20);
            }
        }
    };
    background(&mut d, 10, &mut seed);
    flood(&mut d, 10);
    // Detected when the flood's first window closes.
    let events = d.tick(T0 + 11_000);
    assert_eq!(events.len(), 1, "{events:?}");
    let Event::Started(attack) = &events[0] else { panic!("{events:?}") };
    assert_eq!((attack.target, attack.prefix_len, attack.group.as_str()), (target, 32, "isp-a"));
    assert_eq!(attack.vector, Vector::Amplification { port: 53, name: "dns".into() });
    assert_eq!(attack.threshold.metric, Metric::VectorPps { port: 53, name: "dns".into() });
    assert_eq!((attack.threshold.value, attack.threshold.limit), (1_640_000, 10_000));
    assert_eq!(attack.started_ms, T0 + 10_000);
    // Sampling 1:1000 scaled: 820 records x 2 packets x 1000, 500 bytes a packet.
    assert_eq!((attack.last_pps, attack.last_bps), (1_640_000, 1_640_000 * 500 * 8));
    // Top sources: the ten busiest resolvers, busiest first, exact.
    let want: Vec<(IpAddr, u64)> = (30..40u32).rev().map(|i| (v4(0xcb00_7100 + i), u64::from(i + 1) * 2000)).collect();
    assert_eq!(attack.top_sources, want);
    assert_eq!(attack.top_source_ports, vec![(53, 1_640_000)]);

    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["event"], "started");
    assert_eq!(json["attack"]["target"], "198.18.5.5");
    assert_eq!(json["attack"]["vector"], serde_json::json!({"kind": "amplification", "port": 53, "name": "dns"}));
    assert_eq!(json["attack"]["top_sources"][0], serde_json::json!(["203.0.113.39", 80_000]));
    assert_eq!(json["attack"]["ended_ms"], serde_json::Value::Null);

    let decisions = m.on_event(&events[0], T0 + 11_000);
    let blackhole = Route::Unicast {
        prefix: Prefix::parse("198.18.5.5/32").unwrap(),
        next_hop: ip("192.0.2.1"),
        communities: vec![BLACKHOLE],
    };
    let rule = FlowSpec {
        destination: Prefix::parse("198.18.5.5/32").unwrap(),
        source: None,
        protocols: vec![17],
        source_ports: vec![NumericMatch::Eq(53)],
        destination_ports: vec![],
        packet_lengths: vec![],
    };
    let flowspec = Route::FlowSpec { rule, action: bawaba_bgp::FlowAction::Discard, communities: vec![] };
    assert_eq!(
        decisions,
        vec![
            Decision::Announce { origin: bawaba_ddos::Origin::Attack(attack.id), route: blackhole.clone() },
            Decision::Announce { origin: bawaba_ddos::Origin::Attack(attack.id), route: flowspec.clone() },
        ]
    );
    assert_eq!(m.routes(), vec![blackhole.clone(), flowspec.clone()]);

    // Two more seconds of flood: updates with the same routes.
    for second in 11..13 {
        background(&mut d, second, &mut seed);
        flood(&mut d, second);
        let events = d.tick(T0 + (second + 1) * 1000);
        assert_eq!(events.iter().map(Event::kind).collect::<Vec<_>>(), ["updated"]);
        assert!(m.on_event(&events[0], T0 + (second + 1) * 1000).is_empty());
        assert_eq!(events[0].attack().top_sources[0], (v4(0xcb00_7100 + 39), 40 * 2000 * (second - 9)));
    }
    // The flood stops: two windows under, the third reaches the 3 s hold-down.
    let mut ended = None;
    for second in 13..20 {
        background(&mut d, second, &mut seed);
        for event in d.tick(T0 + (second + 1) * 1000) {
            let decisions = m.on_event(&event, T0 + (second + 1) * 1000);
            if let Event::Ended(a) = event {
                assert_eq!(a.ended_ms, Some(T0 + 16_000));
                assert_eq!((a.peak_pps, a.last_pps < 10_000), (1_640_000, true));
                assert_eq!(decisions.len(), 2);
                assert!(decisions.iter().all(|d| matches!(d, Decision::Withdraw { .. })));
                ended = Some(second);
            }
        }
    }
    assert_eq!(ended, Some(15));
    assert!(m.routes().is_empty());
    let s = d.stats();
    assert_eq!((s.attacks_started, s.attacks_ended), (1, 1));
    assert_eq!((m.stats().announced, m.stats().withdrawn, m.stats().active), (2, 2, 0));
}

#[test]
fn unknown_sampling_is_counted_unscaled_and_flagged() {
    let mut d = Detector::new(&detection()).unwrap();
    let target = ip("198.18.7.7");
    for i in 0..30_000u32 {
        // 30,000 records of 4 packets with no sampling known: 120,000 pps as exported.
        d.record(&record(v4(0x0a00_0000 + i), target, 6, 443, 4, None), T0 + u64::from(i % 1000));
    }
    d.record(&record(ip("10.1.1.1"), target, 6, 443, 1, Some(10)), T0 + 999);
    let s = d.stats();
    assert_eq!((s.records_counted, s.unknown_sampling), (30_001, 30_000));
    let events = d.tick(T0 + 1000);
    let a = events[0].attack();
    assert_eq!((a.last_pps, a.unknown_sampling, a.vector.clone()), (120_010, true, Vector::Volumetric));
}

#[test]
fn safety_rails_refuse_with_a_reason() {
    let flood = |d: &mut Detector, dst: IpAddr, at: u64| {
        d.record(&record(ip("203.0.113.1"), dst, 17, 123, 200_000, Some(1)), at);
    };
    // Mitigation only for isp-a, and never for its resolver.
    let only_a = Protected::new(&[group("isp-a", &["198.18.0.0/16", "2001:db8::/32"])]).unwrap();
    let config = MitigatorConfig {
        allowlist: vec!["198.18.0.53/32".into()],
        max_mitigations: 2,
        ..mitigation(MitigationMode::Blackhole)
    };
    let mut m = Mitigator::new(&config, only_a).unwrap();
    let mut groups = detection().groups;
    groups[0].total = Thresholds { pps: Some(5_000_000), ..Thresholds::default() };
    let mut d = Detector::new(&DetectorConfig { groups, ..detection() }).unwrap();
    for (i, dst) in ["198.19.1.1", "198.18.0.53", "198.18.1.1", "198.18.1.2", "198.18.1.3"].iter().enumerate() {
        flood(&mut d, ip(dst), T0 + i as u64);
    }
    // Carpet bombing over isp-a's /16: 100 hosts x 90,000 pps of TCP, each under the host
    // limits.
    for h in 0..100u32 {
        d.record(&record(ip("203.0.113.2"), v4(0xc612_6400 + h), 6, 80, 90_000, Some(1)), T0 + 500);
    }
    let mut events = d.tick(T0 + 1000);
    events.sort_by_key(|e| (e.attack().target, e.attack().prefix_len));
    let reasons: Vec<(String, Option<Refusal>)> = events
        .iter()
        .flat_map(|e| {
            let target = format!("{}/{}", e.attack().target, e.attack().prefix_len);
            m.on_event(e, T0 + 1000).into_iter().map(move |d| {
                let reason = match d {
                    Decision::Refused { reason, .. } => Some(reason),
                    _ => None,
                };
                (target.clone(), reason)
            })
        })
        .collect();
    let mut reasons = reasons;
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            ("198.18.0.0/16".to_string(), Some(Refusal::PrefixTooShort)),
            ("198.18.0.53/32".to_string(), Some(Refusal::Allowlisted)),
            ("198.18.1.1/32".to_string(), None),
            ("198.18.1.2/32".to_string(), None),
            ("198.18.1.3/32".to_string(), Some(Refusal::TooMany)),
            ("198.19.1.1/32".to_string(), Some(Refusal::OutsideProtected)),
        ]
    );
    assert_eq!(m.routes().len(), 2);
    let refused = m.stats().refused;
    assert_eq!(
        (refused.outside_protected, refused.allowlisted, refused.prefix_too_short, refused.too_many),
        (1, 1, 1, 1)
    );

    // Dry run: the same decisions are reported, nothing is announced.
    let config = MitigatorConfig { dry_run: true, ..mitigation(MitigationMode::Flowspec) };
    let mut m = Mitigator::new(&config, d.protected().clone()).unwrap();
    let host = events.iter().find(|e| e.attack().target == ip("198.18.1.1")).unwrap();
    let decisions = m.on_event(host, T0 + 1000);
    assert!(matches!(&decisions[..], [Decision::DryRun { withdraw: false, .. }]), "{decisions:?}");
    assert_eq!(
        decisions[0].to_string(),
        format!(
            "attack {}: dry run, would announce flowspec dst 198.18.1.1/32 proto [17] sport [Eq(123)] discard",
            host.attack().id
        )
    );
    assert!(m.routes().is_empty());
    assert_eq!(m.planned().len(), 1);
    let mut ended = host.attack().clone();
    ended.ended_ms = Some(T0 + 5000);
    assert!(matches!(&m.on_event(&Event::Ended(ended), T0 + 5000)[..], [Decision::DryRun { withdraw: true, .. }]));
    assert!(m.planned().is_empty());
}

#[test]
fn a_million_distinct_sources_use_bounded_memory_and_the_heavy_hitter_is_found() {
    let mut d = Detector::new(&detection()).unwrap();
    let target = ip("198.18.9.9");
    let heavy = ip("203.0.113.66");
    let mut x = 0x1234_5678u32;
    for i in 0..1_000_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        // 1,000,000 spoofed sources of one packet each (distinct: i in the low bits) ...
        let src = v4(0x0100_0000 + (i << 4 | (x & 0xf)));
        d.record(&record(src, target, 17, (x % 60_000) as u16 + 1024, 1, Some(1)), T0 + u64::from(i / 1000));
        // ... and one heavy source every 16th record.
        if i % 16 == 0 {
            d.record(&record(heavy, target, 17, 65_000, 10, Some(1)), T0 + u64::from(i / 1000));
        }
    }
    let s = d.stats();
    assert_eq!(s.hosts_tracked, 1);
    // Host and prefix: 2 sketches of 20 sources and 20 ports each.
    assert!(s.sketch_counters <= 80, "{s:?}");
    let events = d.tick(T0 + 1000);
    assert_eq!(events.len(), 1);
    let a = events[0].attack();
    // Sources are followed from when the host reaches an eighth of its lowest threshold (here
    // after a few hundred records), so the heavy source's first few packets are not in its count.
    let exact = 62_500 * 10;
    assert_eq!(a.top_sources[0].0, heavy);
    assert!(a.top_sources[0].1 <= exact && a.top_sources[0].1 >= exact * 99 / 100, "{:?}", a.top_sources[0]);
    assert_eq!(a.top_source_ports[0].0, 65_000);
    assert!(a.top_source_ports[0].1 >= exact * 99 / 100, "{:?}", a.top_source_ports[0]);
    assert_eq!(a.vector, Vector::UdpFlood);
    assert!(d.stats().sketch_counters <= 80 + 80, "attack sketches are bounded too");
}

fn baseline_detector() -> Detector {
    let baseline = BaselineConfig {
        enabled: true,
        scope: BaselineScope::Hosts,
        alpha: 0.05,
        k: 4.0,
        floor_pps: 50,
        min_samples: 100,
    };
    Detector::new(&DetectorConfig { baseline, ..detection() }).unwrap()
}

/// 300 windows of 80 to 120 pps of TCP to the host.
fn learn(d: &mut Detector, target: IpAddr) -> u64 {
    let mut x = 99u32;
    for second in 0..300 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let pps = 80 + u64::from(x >> 16) % 41;
        d.record(&record(ip("10.9.9.9"), target, 6, 443, pps, Some(1)), T0 + second * 1000);
        assert!(d.tick(T0 + (second + 1) * 1000).is_empty(), "second {second}");
    }
    300
}

#[test]
fn the_baseline_flags_a_twentyfold_jump_but_not_a_rise_within_k_deviations() {
    let target = ip("198.18.4.4");
    let mut d = baseline_detector();
    let second = learn(&mut d, target);
    // Within k deviations: about 100 + 4 * 10.
    d.record(&record(ip("10.9.9.9"), target, 6, 443, 125, Some(1)), T0 + second * 1000);
    assert!(d.tick(T0 + (second + 1) * 1000).is_empty());
    // Twenty times normal: far under the 100,000 pps host threshold, but anomalous.
    d.record(&record(ip("10.9.9.9"), target, 6, 443, 2000, Some(1)), T0 + (second + 1) * 1000);
    let events = d.tick(T0 + (second + 2) * 1000);
    assert_eq!(events.len(), 1, "{events:?}");
    let a = events[0].attack();
    assert_eq!(
        (a.vector.clone(), a.threshold.metric.clone(), a.threshold.value),
        (Vector::Anomaly, Metric::Baseline, 2000)
    );
    assert!((120..=160).contains(&a.threshold.limit), "{:?}", a.threshold);
    // The attack does not teach the baseline: after it ends, a second jump is flagged again.
    let mut now = second + 2;
    loop {
        d.record(&record(ip("10.9.9.9"), target, 6, 443, 100, Some(1)), T0 + now * 1000);
        let events = d.tick(T0 + (now + 1) * 1000);
        now += 1;
        if events.iter().any(|e| e.kind() == "ended") {
            break;
        }
    }
    assert_eq!(now, second + 2 + 3, "ended after the 3 s hold-down");
    d.record(&record(ip("10.9.9.9"), target, 6, 443, 2000, Some(1)), T0 + now * 1000);
    assert_eq!(d.tick(T0 + (now + 1) * 1000)[0].kind(), "started");
}

#[test]
fn the_baseline_floor_and_the_off_switch_hold() {
    let target = ip("198.18.4.4");
    // Floor: a quiet host (1 pps) jumping to 40 pps stays under the 50 pps floor.
    let mut d = baseline_detector();
    for second in 0..200 {
        d.record(&record(ip("10.9.9.9"), target, 6, 443, 1, Some(1)), T0 + second * 1000);
        d.tick(T0 + (second + 1) * 1000);
    }
    d.record(&record(ip("10.9.9.9"), target, 6, 443, 40, Some(1)), T0 + 200_000);
    assert!(d.tick(T0 + 201_000).is_empty());
    // Off: nothing learned, nothing flagged.
    let off = BaselineConfig { enabled: false, ..BaselineConfig::default() };
    let mut d = Detector::new(&DetectorConfig { baseline: off, ..detection() }).unwrap();
    let second = learn(&mut d, target);
    d.record(&record(ip("10.9.9.9"), target, 6, 443, 2000, Some(1)), T0 + second * 1000);
    assert!(d.tick(T0 + (second + 1) * 1000).is_empty());
}
