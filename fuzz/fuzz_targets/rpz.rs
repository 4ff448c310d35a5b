//! RPZ import never panics on any bytes, accounts for every entry, and whatever it imports
//! survives `write_rpz` and a second import unchanged, except entries the exporter reports as not
//! carried exactly (each such case is an `ExportWarning`).
#![no_main]
use std::collections::BTreeSet;

use bawaba_formats::{import_with, write_rpz, BlockPageTarget, ExportOptions, ExportWarning, Format, ImportOptions};
use bawaba_policy::{
    Action, AllowEntry, AllowId, Category, DomainName, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId,
    Selector,
};
use libfuzzer_sys::fuzz_target;

fn order() -> Order {
    Order {
        id: OrderId(1),
        authority: "fuzz court".into(),
        reference: "FUZZ-1".into(),
        issued_at: 0,
        effective_from: 0,
        expires_at: 86_400,
        category: Category::Other,
        summary: "fuzz".into(),
        publishable: true,
        appeal_contact: "nobody@example.test".into(),
        status: OrderStatus::Approved,
        proposed_by: "a".into(),
        approved_by: Some("b".into()),
        revoked: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let origin = DomainName::parse("rpz.fuzz.example").expect("a valid literal name");
    let options = ImportOptions::new(Format::Rpz).with_origin(origin.clone());
    let first = import_with(&options, data, |_| {}).expect("reading a byte slice cannot fail");
    let report = &first.report;
    assert_eq!(report.added, first.entries.len() + first.passthru.len());
    // One outcome per record, and a record spans at least one line (a merge joins two records).
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
            .map(|(i, e)| AllowEntry { id: AllowId(i as i64), selector: e.selector.clone(), reason: "fuzz".into() })
            .collect(),
    };
    let apex = report.origin.clone().unwrap_or(origin);
    let block_page = BlockPageTarget::Addresses(vec!["192.0.2.80".parse().expect("a valid literal address")]);
    let export = ExportOptions::new(apex, 1).with_block_page(block_page);
    let mut zone = Vec::new();
    let stats = write_rpz(&snapshot, &export, &mut zone).expect("writing to a Vec cannot fail");

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
    let second = import_with(&ImportOptions::new(Format::Rpz), zone.as_slice(), |_| {})
        .expect("reading a byte slice cannot fail");
    assert!(
        second.report.rejected.is_empty(),
        "the exported zone re-imports cleanly: {:?}\n{}",
        second.report.rejected,
        String::from_utf8_lossy(&zone)
    );
    let pairs = |entries: &[bawaba_formats::ImportEntry]| -> BTreeSet<(Selector, Option<Action>)> {
        entries.iter().filter(|e| !warned.contains(&e.selector)).map(|e| (e.selector.clone(), e.action)).collect()
    };
    assert_eq!(pairs(&first.entries), pairs(&second.entries));
    assert_eq!(pairs(&first.passthru), pairs(&second.passthru));
});
