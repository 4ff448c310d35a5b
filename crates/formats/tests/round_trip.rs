//! The property of `fuzz/fuzz_targets/rpz.rs`, run on stable over systematic mutations of the
//! realistic zone in `tests/data/national.rpz`: import never panics, accounts for every record,
//! and whatever it imports comes back unchanged after `write_rpz` and a second import (except
//! what the exporter reports in a warning).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use bawaba_formats::{
    import_str, import_with, write_rpz, BlockPageTarget, ExportOptions, ExportWarning, Format, ImportEntry,
    ImportOptions,
};
use bawaba_policy::{
    Action, AllowEntry, AllowId, Category, DomainName, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId,
    Selector,
};

const ZONE: &[u8] = include_bytes!("data/national.rpz");

fn order() -> Order {
    Order {
        id: OrderId(1),
        authority: "test court".into(),
        reference: "TEST-1".into(),
        issued_at: 0,
        effective_from: 0,
        expires_at: 86_400,
        category: Category::Other,
        summary: "round trip".into(),
        publishable: true,
        appeal_contact: "nobody@example.test".into(),
        status: OrderStatus::Approved,
        proposed_by: "a".into(),
        approved_by: Some("b".into()),
        revoked: None,
    }
}

fn pairs(entries: &[ImportEntry], skip: &BTreeSet<Selector>) -> BTreeSet<(Selector, Option<Action>)> {
    entries.iter().filter(|e| !skip.contains(&e.selector)).map(|e| (e.selector.clone(), e.action)).collect()
}

/// Returns the number of entries imported.
fn check(data: &[u8]) -> usize {
    let origin = DomainName::parse("rpz.fuzz.example").expect("valid");
    let first = import_with(&ImportOptions::new(Format::Rpz).with_origin(origin.clone()), data, |_| {})
        .expect("reading a byte slice cannot fail");
    let report = &first.report;
    assert_eq!(report.added, first.entries.len() + first.passthru.len());
    let outcomes = report.added + report.merged + report.duplicates.len() + report.ignored + report.rejected.len();
    assert!(outcomes <= report.lines, "{outcomes} outcomes from {} lines", report.lines);

    let snapshot = PolicySnapshot {
        version: 1,
        taken_at: 0,
        orders: vec![order()],
        rules: first
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| Rule {
                id: RuleId(i as i64),
                order: OrderId(1),
                selector: e.selector.clone(),
                action: e.action.expect("RPZ states every action"),
                forced: None,
            })
            .collect(),
        allow: first
            .passthru
            .iter()
            .enumerate()
            .map(|(i, e)| AllowEntry { id: AllowId(i as i64), selector: e.selector.clone(), reason: "rt".into() })
            .collect(),
    };
    let apex = report.origin.clone().unwrap_or(origin);
    let block_page = BlockPageTarget::Addresses(vec!["192.0.2.80".parse().expect("valid")]);
    let mut zone = Vec::new();
    let stats = write_rpz(&snapshot, &ExportOptions::new(apex, 1).with_block_page(block_page), &mut zone)
        .expect("writing to a Vec cannot fail");
    let warned: BTreeSet<Selector> = stats
        .warnings
        .iter()
        .filter_map(|w| match w {
            ExportWarning::InsideAllowlisted { selector, .. }
            | ExportWarning::OwnerTaken { selector, .. }
            | ExportWarning::OwnerTooLong { selector, .. }
            | ExportWarning::ReservedLabel { selector, .. }
            | ExportWarning::BlockPageHost { selector, .. }
            | ExportWarning::MissingOrder { selector, .. } => Some(selector.clone()),
            _ => None,
        })
        .collect();
    let text = String::from_utf8(zone).expect("the export is UTF-8");
    let second = import_str(Format::Rpz, &text, None);
    assert!(second.report.rejected.is_empty(), "{:?}\n{text}", second.report.rejected);
    assert_eq!(pairs(&first.entries, &warned), pairs(&second.entries, &warned), "{text}");
    assert_eq!(pairs(&first.passthru, &warned), pairs(&second.passthru, &warned), "{text}");
    first.entries.len()
}

#[test]
fn the_realistic_zone_round_trips() {
    assert_eq!(check(ZONE), 15);
}

#[test]
fn every_truncation_round_trips() {
    for end in 0..=ZONE.len() {
        check(&ZONE[..end]);
    }
}

#[test]
fn every_line_removed_or_repeated_round_trips() {
    let lines: Vec<&[u8]> = ZONE.split_inclusive(|&b| b == b'\n').collect();
    for i in 0..lines.len() {
        let removed: Vec<u8> =
            lines.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, l)| l.to_vec()).collect();
        check(&removed);
        let mut repeated: Vec<u8> = lines[..=i].concat();
        repeated.extend_from_slice(lines[i]);
        repeated.extend(lines[i + 1..].concat());
        check(&repeated);
    }
}

#[test]
fn byte_flips_round_trip() {
    let specials = [b'\n', b' ', b'(', b')', b';', b'"', b'\\', b'*', b'.', 0xFF, b'@', b'$'];
    for position in (0..ZONE.len()).step_by(4) {
        for &byte in &specials {
            let mut mutated = ZONE.to_vec();
            mutated[position] = byte;
            check(&mutated);
        }
    }
}

#[test]
fn subtree_passthru_precedence_survives() {
    // A passthru subtree inside a blocked subtree; an exact block inside the passthru subtree is
    // left out by the exporter (the allowlist wins in bawaba; in RPZ the exact block would).
    let zone = "$ORIGIN rpz.example.\n\
                a.test CNAME .\n*.a.test CNAME .\n\
                b.a.test CNAME rpz-passthru.\n*.b.a.test CNAME rpz-passthru.\n\
                c.b.a.test CNAME rpz-drop.\n";
    assert_eq!(check(zone.as_bytes()), 2);
}

/// A grammar-aware random search for round-trip failures, for stable Rust (the libFuzzer target
/// needs nightly): `cargo test --release -p bawaba-formats --test round_trip -- --ignored`
/// (`ROUND_TRIP_CASES` sets the number of inputs, default 200 000).
#[test]
#[ignore = "slow: a random search, run it on demand"]
fn random_zones_round_trip() {
    const TOKENS: &[&str] = &[
        "a",
        "b.a",
        "www",
        "x-y",
        "_srv",
        "test",
        "example",
        "rpz",
        "fuzz",
        "*",
        "*.",
        ".",
        "@",
        "$ORIGIN",
        "$TTL",
        "$INCLUDE",
        "IN",
        "CH",
        "60",
        "1h",
        "CNAME",
        "A",
        "AAAA",
        "TXT",
        "SOA",
        "NS",
        "TYPE5",
        "rpz-passthru.",
        "rpz-passthru",
        "rpz-drop.",
        "rpz-tcp-only.",
        "rpz-ip",
        "rpz-nsdname",
        "rpz-client-ip",
        "32",
        "24",
        "48",
        "128",
        "0",
        "1",
        "18",
        "198",
        "zz",
        "db8",
        "2001",
        "ffff",
        "256",
        "192.0.2.1",
        "2001:db8::1",
        "(",
        ")",
        ";",
        "\"",
        "\"q q\"",
        "\\",
        "\\.",
        "bücher",
        "مثال",
        "xn--bcher-kva",
        "rpz.fuzz.example.",
        "fuzz.example.",
        "other.",
        "a.test.",
        "-",
        "..",
        "\u{0}",
        "\u{FFFD}",
    ];
    let cases: usize = std::env::var("ROUND_TRIP_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let mut input = Vec::new();
    let mut imported = 0;
    for _ in 0..cases {
        input.clear();
        for _ in 0..1 + next(10) {
            if next(4) == 0 {
                input.push(b' ');
            }
            if next(3) == 0 {
                // Free-form tokens.
                for t in 0..next(7) {
                    if t > 0 {
                        input.extend_from_slice([" ", "\t", "", ".", " "][next(5)].as_bytes());
                    }
                    input.extend_from_slice(TOKENS[next(TOKENS.len())].as_bytes());
                }
            } else {
                // A plausible record: owner [ttl] [class] type rdata.
                let owner = match next(6) {
                    0 => format!(
                        "{}.{}.rpz-ip",
                        [32, 24, 16, 8, 0, 33][next(6)],
                        ["1.18.18.198", "0.0.18.198", "0.0.0.0"][next(3)]
                    ),
                    1 => format!(
                        "{}.{}.rpz-ip",
                        [128, 64, 48, 129][next(4)],
                        ["zz.db8.2001", "1.zz", "zz", "1.0.0.0.0.0.0.0"][next(4)]
                    ),
                    _ => {
                        let mut name = String::new();
                        if next(3) == 0 {
                            name.push_str("*.");
                        }
                        for l in 0..1 + next(3) {
                            if l > 0 {
                                name.push('.');
                            }
                            name.push_str(["a", "b", "www", "bücher", "x-y", "_s", "rpz", "test", "A"][next(9)]);
                        }
                        if next(5) == 0 {
                            name.push_str([".rpz.fuzz.example.", ".other.", "."][next(3)]);
                        }
                        name
                    }
                };
                input.extend_from_slice(owner.as_bytes());
                if next(3) == 0 {
                    input.extend_from_slice(b" 300");
                }
                if next(3) == 0 {
                    input.extend_from_slice(b" IN");
                }
                let record = match next(8) {
                    0 => " A 192.0.2.1",
                    1 => " AAAA 2001:db8::1",
                    2 => " TXT \"why\"",
                    3 => " CNAME *.",
                    4 => " CNAME rpz-passthru.",
                    5 => " CNAME rpz-drop.",
                    6 => " CNAME garden.example.",
                    _ => " CNAME .",
                };
                input.extend_from_slice(record.as_bytes());
            }
            if next(40) == 0 {
                input.push(0xFF);
            }
            input.extend_from_slice(if next(10) == 0 { b"\r\n" } else { b"\n" });
        }
        match std::panic::catch_unwind(|| check(&input)) {
            Ok(entries) => imported += entries,
            Err(_) => panic!("round trip failed on input:\n{}", String::from_utf8_lossy(&input)),
        }
    }
    eprintln!("{cases} random zones, {imported} entries imported and round-tripped");
    assert!(imported > cases / 10, "the generator should produce importable zones");
}
