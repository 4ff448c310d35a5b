//! Golden file: the RPZ export of a fixed snapshot, as a reviewer (or a lawyer) reads it.
//!
//! `OVERWRITE=1 cargo test -p bawaba-formats --test golden` regenerates
//! `tests/data/export.golden.rpz`; review the diff before committing it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::Path;

use bawaba_formats::{import_str, write_rpz, BlockPageTarget, ExportOptions, Format};
use bawaba_policy::{
    Action, AllowEntry, AllowId, Category, DomainName, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId,
};

fn snapshot() -> PolicySnapshot {
    let court = Order {
        id: OrderId(1),
        authority: "Court of First Instance, Baghdad".into(),
        reference: "CFI-2026-0042".into(),
        issued_at: 1_795_000_000,
        effective_from: 1_795_046_400,
        expires_at: 1_797_638_400,
        category: Category::Phishing,
        summary: "Phishing site imitating the National Bank login page".into(),
        publishable: true,
        appeal_contact: "appeals@regulator.example".into(),
        status: OrderStatus::Approved,
        proposed_by: "alice".into(),
        approved_by: Some("bob".into()),
        revoked: None,
    };
    let regulator = Order {
        id: OrderId(2),
        authority: "Communications Regulator".into(),
        reference: "REG-2026-7".into(),
        category: Category::Malware,
        summary: "botnet command and control (details withheld)".into(),
        publishable: false,
        ..court.clone()
    };
    let rule = |id: i64, order: i64, selector: &str, action: Action| Rule {
        id: RuleId(id),
        order: OrderId(order),
        selector: selector.parse().expect("valid selector"),
        action,
        forced: None,
    };
    PolicySnapshot {
        version: 42,
        taken_at: 1_795_883_000,
        orders: vec![court, regulator],
        rules: vec![
            rule(10, 1, "bank-login.test", Action::BlockPage),
            rule(11, 1, "exact:nationalbank-secure.test", Action::Nxdomain),
            rule(12, 1, "198.18.18.0/24", Action::Nxdomain),
            rule(20, 2, "*.c2.test", Action::Drop),
            rule(21, 2, "exact:beacon.test", Action::Nodata),
            rule(22, 2, "2001:db8:bad::/48", Action::Reset),
        ],
        allow: vec![
            AllowEntry {
                id: AllowId(1),
                selector: "exact:www.bank-login.test".parse().expect("valid selector"),
                reason: "the real bank's host shares the name".into(),
            },
            AllowEntry {
                id: AllowId(2),
                selector: "198.18.18.53".parse().expect("valid selector"),
                reason: "gateway resolver".into(),
            },
        ],
    }
}

#[test]
fn export_matches_the_golden_file() {
    let options = ExportOptions::new(DomainName::parse("rpz.gateway.example").expect("valid"), 2026112801)
        .with_block_page(BlockPageTarget::Name(DomainName::parse("blocked.gateway.example").expect("valid")));
    let mut out = Vec::new();
    let stats = write_rpz(&snapshot(), &options, &mut out).expect("write to a Vec");
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    let text = String::from_utf8(out).expect("UTF-8");

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/export.golden.rpz");
    if std::env::var_os("OVERWRITE").is_some() {
        std::fs::write(&path, &text).expect("write the golden file");
    }
    let golden = std::fs::read_to_string(&path).expect("tests/data/export.golden.rpz exists (OVERWRITE=1 makes it)");
    assert_eq!(text, golden, "export changed; rerun with OVERWRITE=1 and review the diff");

    let import = import_str(Format::Rpz, &golden, None);
    assert!(import.report.rejected.is_empty());
    assert_eq!(import.entries.len(), 6);
    assert_eq!(import.passthru.len(), 2);
}
