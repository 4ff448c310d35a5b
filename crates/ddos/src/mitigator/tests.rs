use std::net::IpAddr;

use super::*;
use crate::config::{GroupConfig, Thresholds};
use crate::{Metric, ThresholdCrossed};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn protected() -> Protected {
    Protected::new(&[GroupConfig {
        name: "isp-a".into(),
        prefixes: vec!["198.18.0.0/16".into(), "2001:db8::/32".into()],
        thresholds: Thresholds::default(),
        total: Thresholds::default(),
    }])
    .unwrap()
}

fn attack(id: u64, target: &str, vectors: Vec<Vector>) -> Attack {
    let target = ip(target);
    Attack {
        id,
        target,
        prefix_len: if target.is_ipv4() { 32 } else { 128 },
        group: "isp-a".into(),
        vector: vectors[0].clone(),
        vectors,
        threshold: ThresholdCrossed { metric: Metric::Pps, value: 2, limit: 1 },
        started_ms: 0,
        ended_ms: None,
        peak_pps: 2,
        peak_bps: 2,
        last_pps: 2,
        last_bps: 2,
        top_sources: Vec::new(),
        top_source_ports: Vec::new(),
        unknown_sampling: false,
    }
}

fn dns() -> Vector {
    Vector::Amplification { port: 53, name: "dns".into() }
}

fn live(mode: MitigationMode) -> Mitigator {
    let config = MitigatorConfig { mode, dry_run: false, ..MitigatorConfig::default() };
    Mitigator::new(&config, protected()).unwrap()
}

fn flowspec(route: &Route) -> &FlowSpec {
    match route {
        Route::FlowSpec { rule, .. } => rule,
        Route::Unicast { .. } => panic!("not flowspec: {route:?}"),
    }
}

#[test]
fn plans_fit_the_vector() {
    let m = live(MitigationMode::Flowspec);
    let rules = |vectors: Vec<Vector>, target: &str| {
        m.plan(&attack(1, target, vectors)).iter().map(|r| flowspec(r).clone()).collect::<Vec<_>>()
    };
    let ntp = Vector::Amplification { port: 123, name: "ntp".into() };
    let r = rules(vec![dns(), ntp], "198.18.1.1");
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].protocols.clone(), r[0].source_ports.clone()),
        (vec![17], vec![NumericMatch::Eq(53), NumericMatch::Eq(123)])
    );
    let r = rules(vec![dns(), Vector::UdpFlood, Vector::SynFlood], "198.18.1.1");
    assert_eq!(
        r.iter().map(|r| (r.protocols.clone(), r.source_ports.len())).collect::<Vec<_>>(),
        [(vec![17], 0), (vec![6], 0)]
    );
    assert_eq!(rules(vec![Vector::IcmpFlood], "2001:db8::1")[0].protocols, vec![58]);
    assert_eq!(rules(vec![Vector::Fragments], "198.18.1.1")[0].protocols, vec![17]);
    let all = rules(vec![Vector::SynFlood, Vector::Volumetric], "198.18.1.1");
    assert_eq!(all.len(), 1);
    assert!(all[0].protocols.is_empty());
    assert_eq!(all[0].destination.to_string(), "198.18.1.1/32");
}

#[test]
fn blackholes_carry_rfc7999_and_the_configured_communities() {
    let config = MitigatorConfig {
        dry_run: false,
        communities: vec!["65000:1".into(), "65535:666".into(), "no-export".into()],
        ..MitigatorConfig::default()
    };
    let m = Mitigator::new(&config, protected()).unwrap();
    let routes = m.plan(&attack(1, "2001:db8::7", vec![dns()]));
    assert_eq!(
        routes,
        vec![Route::Unicast {
            prefix: Prefix::parse("2001:db8::7/128").unwrap(),
            next_hop: ip("100::1"),
            communities: vec![BLACKHOLE, 0xfde8_0001, 0xffff_ff01],
        }]
    );
}

#[test]
fn vectors_gained_during_an_attack_are_replanned() {
    let mut m = live(MitigationMode::Flowspec);
    let mut a = attack(1, "198.18.1.1", vec![dns()]);
    let d = m.on_event(&Event::Started(a.clone()), 0);
    assert_eq!(d.len(), 1);
    assert!(m.on_event(&Event::Updated(a.clone()), 1000).is_empty(), "nothing changed");
    a.vectors.push(Vector::SynFlood);
    let d = m.on_event(&Event::Updated(a.clone()), 2000);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(matches!(&d[0], Decision::Announce { route, .. } if flowspec(route).protocols == vec![6]));
    a.vectors.push(Vector::UdpFlood);
    let d = m.on_event(&Event::Updated(a.clone()), 3000);
    let text: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        text,
        [
            "attack 1: withdraw flowspec dst 198.18.1.1/32 proto [17] sport [Eq(53)] discard",
            "attack 1: announce flowspec dst 198.18.1.1/32 proto [17] discard"
        ]
    );
    assert_eq!(m.routes().len(), 2);
    let d = m.on_event(&Event::Ended(a), 4000);
    assert_eq!(d.len(), 2);
    assert!(m.routes().is_empty());
}

#[test]
fn too_many_is_retried_on_updates_and_counted_once() {
    let config = MitigatorConfig { dry_run: false, max_mitigations: 1, ..MitigatorConfig::default() };
    let mut m = Mitigator::new(&config, protected()).unwrap();
    let a = attack(1, "198.18.1.1", vec![dns()]);
    let b = attack(2, "198.18.1.2", vec![dns()]);
    m.on_event(&Event::Started(a.clone()), 0);
    let d = m.on_event(&Event::Started(b.clone()), 0);
    assert!(matches!(d[0], Decision::Refused { reason: Refusal::TooMany, .. }));
    assert!(m.on_event(&Event::Updated(b.clone()), 1000).is_empty());
    m.on_event(&Event::Ended(a), 2000);
    let d = m.on_event(&Event::Updated(b.clone()), 3000);
    assert!(matches!(&d[..], [Decision::Announce { origin: Origin::Attack(2), .. }]), "{d:?}");
    assert_eq!(m.stats().refused.get(Refusal::TooMany), 1);
    assert_eq!(m.stats().active, 1);
}

#[test]
fn manual_mitigations_follow_the_rails() {
    let config = MitigatorConfig {
        dry_run: false,
        allowlist: vec!["198.18.9.128/25".into()],
        max_mitigations: 2,
        ..MitigatorConfig::default()
    };
    let mut m = Mitigator::new(&config, protected()).unwrap();
    let hole = |p: &str, hop: &str| Route::Unicast {
        prefix: Prefix::parse(p).unwrap(),
        next_hop: ip(hop),
        communities: vec![],
    };
    let reason = |d: Decision| match d {
        Decision::Refused { reason, .. } => Some(reason),
        _ => None,
    };
    assert_eq!(reason(m.manual(hole("203.0.113.1/32", "192.0.2.1"), 0, "x")), Some(Refusal::OutsideProtected));
    assert_eq!(reason(m.manual(hole("198.18.9.200/32", "192.0.2.1"), 0, "x")), Some(Refusal::Allowlisted));
    assert_eq!(reason(m.manual(hole("198.18.9.0/24", "192.0.2.1"), 0, "x")), Some(Refusal::Allowlisted), "covers it");
    assert_eq!(reason(m.manual(hole("198.18.0.0/16", "192.0.2.1"), 0, "x")), Some(Refusal::PrefixTooShort));
    assert_eq!(reason(m.manual(hole("2001:db8::/32", "100::1"), 0, "x")), Some(Refusal::PrefixTooShort));
    assert_eq!(reason(m.manual(hole("198.18.1.1/32", "100::1"), 0, "x")), Some(Refusal::NextHopFamily));
    let d = m.manual(hole("198.18.1.0/24", "192.0.2.1"), 0, "customer asked");
    let Decision::Announce { route: Route::Unicast { communities, .. }, .. } = &d else { panic!("{d:?}") };
    assert_eq!(communities, &vec![BLACKHOLE]);
    assert_eq!(reason(m.manual(hole("198.18.1.0/24", "192.0.2.1"), 0, "x")), Some(Refusal::Duplicate));
    assert!(matches!(m.manual(hole("198.18.2.2/32", "192.0.2.1"), 0, "x"), Decision::Announce { .. }));
    assert_eq!(reason(m.manual(hole("198.18.3.3/32", "192.0.2.1"), 0, "x")), Some(Refusal::TooMany));
    assert_eq!(m.mitigations()[0].reason, "customer asked");
    assert!(matches!(m.manual_withdraw(&hole("198.18.1.0/24", "192.0.2.1"), 1), Decision::Withdraw { .. }));
    assert_eq!(reason(m.manual_withdraw(&hole("198.18.1.0/24", "192.0.2.1"), 1)), Some(Refusal::NotFound));
    assert_eq!(m.routes().len(), 1);
    let s = m.stats();
    assert_eq!((s.announced, s.withdrawn, s.refused.allowlisted, s.refused.prefix_too_short), (2, 1, 2, 2));
}

#[test]
fn bad_configs_are_refused() {
    let bad = |c: MitigatorConfig| Mitigator::new(&c, protected()).unwrap_err();
    let d = MitigatorConfig::default();
    assert_eq!(
        bad(MitigatorConfig { min_prefix_v4: 0, ..d.clone() }),
        ConfigError::MinPrefix { field: "min_prefix_v4", value: 0, max: 32 }
    );
    assert!(matches!(bad(MitigatorConfig { min_prefix_v6: 129, ..d.clone() }), ConfigError::MinPrefix { .. }));
    assert!(matches!(
        bad(MitigatorConfig { communities: vec!["x".into()], ..d.clone() }),
        ConfigError::BadCommunity { .. }
    ));
    assert!(matches!(
        bad(MitigatorConfig { allowlist: vec!["10/8".into()], ..d.clone() }),
        ConfigError::BadPrefix { .. }
    ));
    assert_eq!(
        bad(MitigatorConfig { flowspec_action: FlowSpecActionConfig::RateLimit(f32::NAN), ..d }),
        ConfigError::RateLimit
    );
}
