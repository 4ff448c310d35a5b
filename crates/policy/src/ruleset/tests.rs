//! Semantics of the compiled ruleset, one test per rule of precedence.

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::model::{Category, OrderStatus};

fn order(id: i64) -> Order {
    Order {
        id: OrderId(id),
        authority: "Court".into(),
        reference: format!("REF-{id}"),
        issued_at: 0,
        effective_from: 0,
        expires_at: 86_400,
        category: Category::Malware,
        summary: "test".into(),
        publishable: true,
        appeal_contact: "appeals@example.test".into(),
        status: OrderStatus::Approved,
        proposed_by: "alice".into(),
        approved_by: Some("bob".into()),
        revoked: None,
    }
}

fn rule(id: i64, selector: &str) -> Rule {
    Rule {
        id: RuleId(id),
        order: OrderId(1),
        selector: selector.parse().unwrap(),
        action: Action::Nxdomain,
        forced: None,
    }
}

fn allow(id: i64, selector: &str) -> AllowEntry {
    AllowEntry { id: AllowId(id), selector: selector.parse().unwrap(), reason: "test".into() }
}

fn compile(rules: Vec<Rule>, allows: Vec<AllowEntry>) -> Ruleset {
    PolicySnapshot { version: 1, taken_at: 0, orders: vec![order(1)], rules, allow: allows }.compile()
}

/// The verdict for a name: `Some(("block", rule id))`, `Some(("allow", allow id))` or `None`.
fn name(rs: &Ruleset, query: &str) -> Option<(&'static str, i64)> {
    rs.lookup_domain(query).unwrap().map(|m| match m.verdict() {
        Verdict::Allow { allow } => ("allow", allow.0),
        Verdict::Block { rule, .. } => ("block", rule.0),
    })
}

fn ip(rs: &Ruleset, query: &str) -> Option<(&'static str, i64)> {
    rs.lookup_ip(query.parse::<IpAddr>().unwrap()).map(|m| match m.verdict() {
        Verdict::Allow { allow } => ("allow", allow.0),
        Verdict::Block { rule, .. } => ("block", rule.0),
    })
}

#[test]
fn selector_kinds() {
    let rs = compile(vec![rule(1, "exact:e.test"), rule(2, "s.test"), rule(3, "*.w.test")], vec![]);
    assert_eq!(name(&rs, "e.test"), Some(("block", 1)));
    assert_eq!(name(&rs, "a.e.test"), None);
    assert_eq!(name(&rs, "s.test"), Some(("block", 2)));
    assert_eq!(name(&rs, "a.b.s.test"), Some(("block", 2)));
    assert_eq!(name(&rs, "w.test"), None);
    assert_eq!(name(&rs, "a.w.test"), Some(("block", 3)));
    assert_eq!(name(&rs, "a.b.w.test"), Some(("block", 3)));
    assert_eq!(name(&rs, "test"), None);
}

#[test]
fn case_trailing_dot_and_label_alignment() {
    let rs = compile(vec![rule(1, "example.test")], vec![]);
    assert_eq!(name(&rs, "WWW.EXAMPLE.Test."), Some(("block", 1)));
    assert_eq!(name(&rs, "example.test."), Some(("block", 1)));
    assert_eq!(name(&rs, "badexample.test"), None);
    assert_eq!(name(&rs, "example.test.evil"), None);
    assert_eq!(name(&rs, "xample.test"), None);
}

#[test]
fn most_specific_wins_and_allow_beats_block() {
    let rs = compile(
        vec![rule(1, "example.test"), rule(2, "deep.good.example.test")],
        vec![allow(10, "exact:www.example.test"), allow(11, "good.example.test")],
    );
    assert_eq!(name(&rs, "www.example.test"), Some(("allow", 10)));
    assert_eq!(name(&rs, "a.www.example.test"), Some(("block", 1)));
    assert_eq!(name(&rs, "good.example.test"), Some(("allow", 11)));
    assert_eq!(name(&rs, "x.y.good.example.test"), Some(("allow", 11)));
    // A forced rule below an allow entry is more specific and applies.
    assert_eq!(name(&rs, "deep.good.example.test"), Some(("block", 2)));
    assert_eq!(name(&rs, "other.example.test"), Some(("block", 1)));
}

#[test]
fn precedence_at_one_name() {
    // At the query name: exact beats subtree; at equal selector, allow beats block.
    let rs = compile(vec![rule(1, "a.test"), rule(2, "exact:a.test")], vec![]);
    assert_eq!(name(&rs, "a.test"), Some(("block", 2)));
    assert_eq!(name(&rs, "b.a.test"), Some(("block", 1)));
    let rs = compile(vec![rule(1, "exact:a.test")], vec![allow(5, "exact:a.test")]);
    assert_eq!(name(&rs, "a.test"), Some(("allow", 5)));
    let rs = compile(vec![rule(1, "exact:a.test")], vec![allow(5, "a.test")]);
    assert_eq!(name(&rs, "a.test"), Some(("block", 1)));
    // Below a name, subtree and `*.` are equally specific: allow first, then the lowest id.
    let rs = compile(vec![rule(7, "a.test"), rule(3, "*.a.test")], vec![]);
    assert_eq!(name(&rs, "b.a.test"), Some(("block", 3)));
    assert_eq!(name(&rs, "a.test"), Some(("block", 7)));
    let rs = compile(vec![rule(3, "*.a.test")], vec![allow(9, "a.test")]);
    assert_eq!(name(&rs, "b.a.test"), Some(("allow", 9)));
}

#[test]
fn duplicates_keep_the_lowest_id_and_missing_orders_are_skipped() {
    let mut orphan = rule(4, "c.test");
    orphan.order = OrderId(99);
    let rs = compile(
        vec![
            rule(9, "a.test"),
            rule(2, "a.test"),
            rule(5, "a.test"),
            orphan,
            rule(6, "198.18.0.0/24"),
            rule(1, "198.18.0.0/24"),
        ],
        vec![allow(3, "b.test"), allow(1, "b.test")],
    );
    assert_eq!(name(&rs, "a.test"), Some(("block", 2)));
    assert_eq!(name(&rs, "b.test"), Some(("allow", 1)));
    assert_eq!(name(&rs, "c.test"), None);
    assert_eq!(ip(&rs, "198.18.0.9"), Some(("block", 1)));
    let stats = rs.stats();
    assert_eq!((stats.domain_rules, stats.ipv4_rules, stats.allow_entries), (1, 1, 1));
    assert_eq!((stats.duplicates, stats.skipped, stats.orders), (4, 1, 1));
    assert!(stats.heap_bytes > 0);
}

#[test]
fn every_build_has_its_own_serial() {
    let a = compile(vec![rule(1, "a.test")], vec![]);
    let b = compile(vec![rule(1, "a.test")], vec![]);
    let empty = Ruleset::empty();
    assert_ne!(a.serial(), 0);
    assert_ne!(a.serial(), b.serial(), "same rules, built twice");
    assert_ne!(b.serial(), empty.serial());
}

#[test]
fn longest_prefix_and_allow_at_equal_length() {
    let rs = compile(
        vec![rule(1, "198.18.0.0/16"), rule(2, "198.18.1.0/24"), rule(3, "198.18.1.128/25"), rule(4, "2001:db8::/32")],
        vec![allow(7, "198.18.1.128/25"), allow(8, "2001:db8:1::/48")],
    );
    assert_eq!(ip(&rs, "198.18.0.1"), Some(("block", 1)));
    assert_eq!(ip(&rs, "198.18.1.1"), Some(("block", 2)));
    assert_eq!(ip(&rs, "198.18.1.200"), Some(("allow", 7)));
    assert_eq!(ip(&rs, "198.18.2.0"), Some(("block", 1)));
    assert_eq!(ip(&rs, "198.19.0.0"), None);
    assert_eq!(ip(&rs, "2001:db8:2::1"), Some(("block", 4)));
    assert_eq!(ip(&rs, "2001:db8:1::1"), Some(("allow", 8)));
    assert_eq!(ip(&rs, "2001:db9::1"), None);
    // IPv4-mapped IPv6 is looked up as IPv4.
    assert_eq!(ip(&rs, "::ffff:198.18.1.1"), Some(("block", 2)));
}

#[test]
fn match_reports_order_and_selector() {
    let rs =
        compile(vec![rule(1, "*.example.test"), rule(2, "2001:db8::/48")], vec![allow(3, "exact:ok.example.test")]);
    let hit = rs.lookup_domain("A.Example.Test").unwrap().unwrap();
    assert_eq!(hit.order().unwrap().reference, "REF-1");
    assert_eq!(hit.selector().to_string(), "*.example.test");
    assert_eq!(hit.verdict(), Verdict::Block { rule: RuleId(1), action: Action::Nxdomain });
    let ok = rs.lookup_domain("ok.example.test").unwrap().unwrap();
    assert!(ok.order().is_none());
    assert_eq!(ok.selector().to_string(), "exact:ok.example.test");
    let v6 = rs.lookup_ip("2001:db8::5".parse().unwrap()).unwrap();
    assert_eq!(v6.selector().to_string(), "2001:db8::/48");
}

#[test]
fn malformed_and_unicode_names() {
    let rs = compile(vec![rule(1, "xn--bcher-kva.example")], vec![]);
    assert_eq!(name(&rs, "www.bücher.example"), Some(("block", 1)));
    assert_eq!(name(&rs, "WWW.XN--BCHER-KVA.example."), Some(("block", 1)));
    assert_eq!(rs.lookup_domain("a..b").unwrap_err(), NameError::EmptyLabel { offset: 2 });
    assert_eq!(rs.lookup_domain("").unwrap_err(), NameError::Empty);
    assert_eq!(rs.lookup_domain(".").unwrap_err(), NameError::Empty);
    assert!(matches!(rs.lookup_domain("a b.example"), Err(NameError::InvalidChar { offset: 1, .. })));
    assert!(rs.lookup_domain(&"a.".repeat(200)).is_err());
    assert!(rs.lookup_domain(&format!("{}.example", "x".repeat(64))).is_err());
    assert_eq!(name(&rs, "_dmarc.xn--bcher-kva.example"), Some(("block", 1)));
}

#[test]
fn empty_ruleset_and_sharing() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ruleset>();
    let rs = Arc::new(Ruleset::empty());
    assert_eq!(name(&rs, "example.test"), None);
    assert_eq!(ip(&rs, "0.0.0.0"), None);
    assert_eq!(ip(&rs, "ffff::1"), None);
    assert_eq!(rs.stats().domain_rules, 0);
}

#[test]
fn builder_accepts_rules_before_their_order() {
    let mut b = RulesetBuilder::new();
    b.add_rule(&rule(1, "a.test"));
    b.add_allow(&allow(2, "b.a.test"));
    b.add_order(order(1));
    let rs = b.build();
    assert_eq!(name(&rs, "x.a.test"), Some(("block", 1)));
    assert_eq!(name(&rs, "b.a.test"), Some(("allow", 2)));
}

#[test]
fn hash_collisions_never_match() {
    // Many names in a small table: every miss must verify against the arena.
    let rules: Vec<Rule> = (0..2000).map(|i| rule(i, &format!("n{i}.test"))).collect();
    let rs = compile(rules, vec![]);
    for i in 0..2000 {
        assert_eq!(name(&rs, &format!("x.n{i}.test")), Some(("block", i)));
        assert_eq!(name(&rs, &format!("m{i}.test")), None);
    }
}

#[test]
fn rules_added_as_text_compile_as_parsed_rules_do() {
    let texts = [
        "exact:WWW.Example.TEST.",
        "example.test",
        "*.Wild.test",
        "مثال.إختبار",
        " padded.test ",
        "198.18.0.0/24",
        "2001:db8::/48",
        "198.18.9.9",
    ];
    let parsed: Vec<Rule> = texts.iter().enumerate().map(|(i, t)| rule(i as i64 + 1, t)).collect();
    let mut builder = RulesetBuilder::new();
    builder.add_order(order(1));
    for (i, text) in texts.iter().enumerate() {
        let (id, order) = (RuleId(i as i64 + 1), OrderId(1));
        if !builder.add_rule_ascii(id, order, text.as_bytes(), Action::Nxdomain) {
            builder.add_rule_text(id, order, text, Action::Nxdomain).unwrap();
        }
    }
    let (by_text, by_rule) = (builder.build(), compile(parsed, vec![]));
    for query in
        ["www.example.test", "a.example.test", "wild.test", "a.wild.test", "xn--mgbh0fb.xn--kgbechtv", "padded.test"]
    {
        assert_eq!(name(&by_text, query), name(&by_rule, query), "{query}");
        assert!(name(&by_text, query).is_some() || query == "wild.test", "{query}");
    }
    for query in ["198.18.0.7", "2001:db8::1", "198.18.9.9", "198.18.1.1"] {
        assert_eq!(ip(&by_text, query), ip(&by_rule, query), "{query}");
    }
    // Counts equal (the arenas' capacities may differ by a few bytes).
    let counts = |rs: &Ruleset| RulesetStats { heap_bytes: 0, ..rs.stats() };
    assert_eq!(counts(&by_text), counts(&by_rule));
    // The displayed selector is the canonical one.
    let m = by_text.lookup_domain("www.example.test").unwrap().unwrap();
    assert_eq!(m.selector().to_string(), "exact:www.example.test");

    // A bad selector is the same error `Selector::parse` gives, and adds nothing.
    let mut builder = RulesetBuilder::new();
    builder.add_order(order(1));
    for bad in ["a..b", "exact:", "bad name.test", "198.18.0.0/99"] {
        assert!(!builder.add_rule_ascii(RuleId(1), OrderId(1), bad.as_bytes(), Action::Drop), "{bad}");
        let err = builder.add_rule_text(RuleId(1), OrderId(1), bad, Action::Drop).unwrap_err();
        assert_eq!(err.to_string(), bad.parse::<Selector>().unwrap_err().to_string());
    }
    assert_eq!(builder.build().stats().domain_rules, 0);
}
