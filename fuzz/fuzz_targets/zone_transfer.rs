//! The RPZ zone-transfer answerer (SOA, AXFR, IXFR, TSIG checks) never panics on any query, from
//! an allowed peer, over UDP or TCP, with TSIG on; every message it produces parses.
#![no_main]
use std::net::IpAddr;
use std::sync::OnceLock;

use bawaba_dns::xfr::{TsigKey, WireZone, ZoneTransfer, ZoneAnswer};
use bawaba_formats::{rpz_records, ExportOptions};
use bawaba_policy::{Action, Category, DomainName, IpPrefix, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId};
use bawaba_wire::dns::Message;
use libfuzzer_sys::fuzz_target;

fn zone(version: u64, extra: bool) -> WireZone {
    let origin = DomainName::parse("rpz.fuzz.test").expect("valid origin");
    let mut rules = vec![("blocked.example.test", Action::Nxdomain), ("198.18.66.0/24", Action::Drop)];
    if extra {
        rules.push(("exact:new.example.test", Action::Nodata));
    }
    let snapshot = PolicySnapshot {
        version,
        taken_at: 0,
        orders: vec![Order {
            id: OrderId(1),
            authority: "Court".into(),
            reference: "FUZZ-1".into(),
            issued_at: 0,
            effective_from: 0,
            expires_at: i64::MAX / 2,
            category: Category::Malware,
            summary: "fuzz".into(),
            publishable: true,
            appeal_contact: "appeals@example.test".into(),
            status: OrderStatus::Approved,
            proposed_by: "a".into(),
            approved_by: Some("b".into()),
            revoked: None,
        }],
        rules: rules
            .iter()
            .enumerate()
            .map(|(i, (s, a))| Rule {
                id: RuleId(i as i64 + 1),
                order: OrderId(1),
                selector: s.parse().expect("valid selector"),
                action: *a,
                forced: None,
            })
            .collect(),
        allow: vec![],
    };
    let records = rpz_records(&snapshot, &ExportOptions::new(origin.clone(), version as u32));
    WireZone::new(&origin, &records.records).expect("a valid zone")
}

fn transfer(signed: bool) -> ZoneTransfer {
    let allow = vec![IpPrefix::parse("127.0.0.0/8").expect("valid prefix")];
    let zt = ZoneTransfer::new(zone(1, false), allow, vec![], 4);
    zt.install(zone(2, true));
    if signed {
        let key = TsigKey::new(&DomainName::parse("fuzz-key").expect("valid"), "c2VjcmV0LWtleS1mb3ItZnV6emluZw==")
            .expect("valid key");
        zt.with_tsig(key)
    } else {
        zt
    }
}

fuzz_target!(|data: &[u8]| {
    static PLAIN: OnceLock<ZoneTransfer> = OnceLock::new();
    static SIGNED: OnceLock<ZoneTransfer> = OnceLock::new();
    let Ok(query) = Message::parse(data) else { return };
    let peer: IpAddr = [127, 0, 0, 1].into();
    for zt in [PLAIN.get_or_init(|| transfer(false)), SIGNED.get_or_init(|| transfer(true))] {
        for tcp in [false, true] {
            match zt.answer(&query, peer, tcp) {
                None => {}
                Some(ZoneAnswer::Message(m)) => {
                    Message::parse(&m).expect("an answer parses");
                }
                Some(ZoneAnswer::Transfer(messages)) => {
                    for m in messages.take(64) {
                        Message::parse(&m).expect("a transfer message parses");
                    }
                }
            }
        }
    }
});
