//! The compiled ruleset against its slow, obvious twin (`ruleset::naive`) on random policies.
//!
//! Names come from a tiny alphabet and few labels so that selectors overlap, nest and collide;
//! prefixes are drawn inside a few nested blocks so that longest-prefix match has work to do.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bawaba_policy::ruleset::naive::{NaiveMatch, NaiveRuleset};
use bawaba_policy::*;
use proptest::prelude::*;

fn order(id: i64) -> Order {
    Order {
        id: OrderId(id),
        authority: "Court".into(),
        reference: format!("REF-{id}"),
        issued_at: 0,
        effective_from: 0,
        expires_at: 86_400,
        category: Category::Other,
        summary: "property test".into(),
        publishable: false,
        appeal_contact: "appeals@example.test".into(),
        status: OrderStatus::Approved,
        proposed_by: "alice".into(),
        approved_by: Some("bob".into()),
        revoked: None,
    }
}

/// A name of 1-4 labels over `{a, b, c}` with labels of length 1-2, e.g. `ab.c.a`.
fn name() -> impl Strategy<Value = String> {
    prop::collection::vec("[abc]{1,2}", 1..=4).prop_map(|labels| labels.join("."))
}

/// The same name with random case and maybe a trailing dot, as a query arrives.
fn query_form(name: String, upper: u64, dot: bool) -> String {
    let mut out: String = name
        .chars()
        .enumerate()
        .map(|(i, c)| if upper >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
        .collect();
    if dot {
        out.push('.');
    }
    out
}

fn name_selector() -> impl Strategy<Value = Selector> {
    (0..3u8, name()).prop_map(|(kind, n)| {
        let n = DomainName::parse(&n).expect("generated names are valid");
        match kind {
            0 => Selector::Exact(n),
            1 => Selector::Subtree(n),
            _ => Selector::Subdomains(n),
        }
    })
}

/// IPv4 prefixes inside 10.0.0.0/8 (with some outside), nested: lengths 8..=32 over few networks.
fn v4_prefix() -> impl Strategy<Value = IpPrefix> {
    (0u32..4, 0u32..4, 0u32..4, 0u32..4, prop::sample::select(vec![0u8, 8, 12, 16, 20, 24, 26, 28, 30, 31, 32]))
        .prop_map(|(a, b, c, d, len)| {
            let addr = Ipv4Addr::new(10 + a as u8, (b * 64) as u8, (c * 64) as u8, (d * 64 + d) as u8);
            IpPrefix::new(IpAddr::V4(addr), len)
        })
}

fn v6_prefix() -> impl Strategy<Value = IpPrefix> {
    (0u16..3, 0u16..3, 0u16..3, 0u16..3, prop::sample::select(vec![0u8, 16, 32, 33, 48, 56, 64, 65, 80, 96, 127, 128]))
        .prop_map(|(a, b, c, d, len)| {
            let addr = Ipv6Addr::new(0x2001, 0x0db8 + a, b << 14, c, 0, 0, 0, d);
            IpPrefix::new(IpAddr::V6(addr), len)
        })
}

fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        4 => name_selector(),
        2 => v4_prefix().prop_map(Selector::Prefix),
        1 => v6_prefix().prop_map(Selector::Prefix),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop::sample::select(Action::ALL.to_vec())
}

/// A snapshot of orders 1..=3 with rules referring to orders 1..=4 (4 is missing) and allow entries.
fn snapshot() -> impl Strategy<Value = PolicySnapshot> {
    let rules = prop::collection::vec((1i64..60, 1i64..=4, selector(), action()), 0..40);
    let allows = prop::collection::vec((1i64..20, selector()), 0..8);
    (rules, allows).prop_map(|(rules, allows)| PolicySnapshot {
        version: 1,
        taken_at: 0,
        orders: (1..=3).map(order).collect(),
        rules: rules
            .into_iter()
            .map(|(id, o, selector, action)| Rule { id: RuleId(id), order: OrderId(o), selector, action, forced: None })
            .collect(),
        allow: allows
            .into_iter()
            .map(|(id, selector)| AllowEntry { id: AllowId(id), selector, reason: "test".into() })
            .collect(),
    })
}

fn fast(m: Option<Match<'_>>) -> Option<NaiveMatch> {
    m.map(|m| NaiveMatch { verdict: m.verdict(), selector: m.selector() })
}

fn v4_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4_prefix().prop_map(|p| p.network()),
        (v4_prefix(), any::<u32>()).prop_map(|(p, noise)| match p {
            IpPrefix::V4 { addr, len } => {
                let host = if len == 32 { 0 } else { noise >> len };
                IpAddr::V4(Ipv4Addr::from(addr | host))
            }
            IpPrefix::V6 { .. } => unreachable!("v4_prefix yields IPv4"),
        }),
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
    ]
}

fn v6_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v6_prefix().prop_map(|p| p.network()),
        (v6_prefix(), any::<u128>()).prop_map(|(p, noise)| match p {
            IpPrefix::V6 { addr, len } => {
                let host = if len == 128 { 0 } else { noise >> len };
                IpAddr::V6(Ipv6Addr::from(addr | host))
            }
            IpPrefix::V4 { .. } => unreachable!("v6_prefix yields IPv6"),
        }),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn names_agree_with_naive(
        snapshot in snapshot(),
        queries in prop::collection::vec((name(), any::<u64>(), any::<bool>()), 1..40),
    ) {
        let ruleset = snapshot.compile();
        let naive = NaiveRuleset::from_snapshot(&snapshot);
        let mut forms = Vec::new();
        for (q, upper, dot) in queries {
            let q = query_form(q, upper, dot);
            let got = fast(ruleset.lookup_domain(&q).unwrap());
            let want = naive.lookup_domain(&q).unwrap();
            prop_assert_eq!(got, want, "query {}", q);
            forms.push(q);
        }
        let mut answers = Vec::new();
        ruleset.lookup_domains(forms.iter().map(String::as_str), &mut answers);
        prop_assert_eq!(answers.len(), forms.len());
        for (q, answer) in forms.iter().zip(answers) {
            prop_assert_eq!(fast(answer.unwrap()), naive.lookup_domain(q).unwrap(), "batched {}", q);
        }
    }

    #[test]
    fn addresses_agree_with_naive(
        snapshot in snapshot(),
        v4 in prop::collection::vec(v4_address(), 1..40),
        v6 in prop::collection::vec(v6_address(), 1..20),
    ) {
        let ruleset = snapshot.compile();
        let naive = NaiveRuleset::from_snapshot(&snapshot);
        // Both families and IPv4-mapped addresses, interleaved, for the batch lookup below.
        let mut all = Vec::new();
        for addr in v4.into_iter().chain(v6) {
            prop_assert_eq!(fast(ruleset.lookup_ip(addr)), naive.lookup_ip(addr), "address {}", addr);
            all.push(addr);
            if let IpAddr::V4(a) = addr {
                let mapped = IpAddr::V6(a.to_ipv6_mapped());
                prop_assert_eq!(fast(ruleset.lookup_ip(mapped)), naive.lookup_ip(addr), "mapped {}", mapped);
                all.insert(all.len() / 2, mapped);
            }
        }
        // Repeated past the batch's chunk of 256, in different alignments.
        let all: Vec<IpAddr> = all.iter().cycle().take(all.len() * 7).copied().collect();
        let mut answers = vec![None; 3];
        ruleset.lookup_ips(&all, &mut answers);
        prop_assert_eq!(answers.len(), all.len());
        for (&addr, answer) in all.iter().zip(answers) {
            prop_assert_eq!(fast(answer), naive.lookup_ip(addr), "batched {}", addr);
        }
    }

    #[test]
    fn counts_add_up(snapshot in snapshot()) {
        let stats = snapshot.compile().stats();
        let kept = stats.domain_rules + stats.ipv4_rules + stats.ipv6_rules + stats.allow_entries;
        prop_assert_eq!(kept + stats.duplicates + stats.skipped, snapshot.rules.len() + snapshot.allow.len());
        let orphans = snapshot.rules.iter().filter(|r| r.order == OrderId(4)).count();
        prop_assert_eq!(stats.skipped, orphans);
    }

    #[test]
    fn arbitrary_text_never_panics_and_agrees(snapshot in snapshot(), q in "[a-cA-C.\\-_ é]{0,12}") {
        let ruleset = snapshot.compile();
        let naive = NaiveRuleset::from_snapshot(&snapshot);
        let mut batched = Vec::new();
        ruleset.lookup_domains([q.as_str()], &mut batched);
        match (ruleset.lookup_domain(&q), naive.lookup_domain(&q)) {
            (Ok(got), Ok(want)) => prop_assert_eq!(fast(got), want),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (got, want) => prop_assert!(false, "query {:?}: {:?} vs {:?}", q, got.map(fast), want),
        }
        let batched = batched.pop().map(|answer| answer.map(fast));
        prop_assert_eq!(batched, Some(naive.lookup_domain(&q)));
    }
}
