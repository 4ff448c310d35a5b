//! The packet engine never panics on hostile packet sequences: the flow table (with eviction and
//! expiry), TCP reassembly, TLS/HTTP/QUIC/DNS recognition and the ruleset hot swap.
//!
//! Input: the first byte is a control byte (low 6 bits: most packets to feed; bit 6: do not judge
//! flows again on a ruleset swap), then chunks, each a big-endian u16 length and that many bytes
//! (a short last chunk takes what is left). A chunk whose first byte is 0x40..=0x7f is a bare IP
//! packet as it is (the version nibble of IPv4 and IPv6). Otherwise the first byte `k` crafts a
//! packet between fixed endpoints, so that the deep paths are reached:
//! - bit 0: 0 TCP, 1 UDP; bit 1: from the server; bit 2: IPv6; bit 3: to the server address an IP
//!   rule blocks; bits 4-5: time since the last packet (1 ms, 1 s, 15 s, 70 s); bit 7: swap the
//!   ruleset before this packet.
//! - TCP: `[k, flags, seq_hi, seq_lo, ports, payload..]`: the sequence number is 1000 plus the
//!   16-bit offset (so a SYN at offset 0 starts the stream at offset 1); `ports` bits 0-1 choose
//!   server port 443, 80, 53 or 8443, bits 2-3 the client port.
//! - UDP: `[k, ports, pn, payload..]`: `ports` bit 0 chooses server port 443 or 53, bits 1-2 the
//!   client port; bit 3 (to 443) seals the payload as the frames of a QUIC Initial (bit 4: v2),
//!   padded to 1200 bytes, with packet number `pn`, so that CRYPTO reassembly sees
//!   authenticated input.
#![no_main]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use bawaba_engine::{Engine, EngineConfig, Ignore, Timeouts};
use bawaba_policy::{
    Action, AllowEntry, AllowId, Category, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId, Ruleset,
};
use bawaba_wire::build::{ip_packet, Header};
use bawaba_wire::packet::dissect_ip;
use bawaba_wire::quic::{InitialHeader, InitialKeys, Version};
use libfuzzer_sys::fuzz_target;

fn order(id: i64, category: Category) -> Order {
    Order {
        id: OrderId(id),
        authority: "Court".into(),
        reference: format!("REF-{id}"),
        issued_at: 0,
        effective_from: 0,
        expires_at: i64::MAX / 2,
        category,
        summary: "fuzz".into(),
        publishable: true,
        appeal_contact: "appeals@cmc.example".into(),
        status: OrderStatus::Approved,
        proposed_by: "alice".into(),
        approved_by: Some("bob".into()),
        revoked: None,
    }
}

fn ruleset(version: u64, rules: &[(&str, Action, i64)]) -> Arc<Ruleset> {
    let snapshot = PolicySnapshot {
        version,
        taken_at: 0,
        orders: vec![order(1, Category::CourtOrder), order(2, Category::Malware)],
        rules: rules
            .iter()
            .enumerate()
            .map(|(i, (s, a, o))| Rule {
                id: RuleId(i as i64 + 1),
                order: OrderId(*o),
                selector: s.parse().expect("a valid selector"),
                action: *a,
                forced: None,
            })
            .collect(),
        allow: vec![AllowEntry {
            id: AllowId(1),
            selector: "exact:ok.blocked.test".parse().expect("a valid selector"),
            reason: "portal".into(),
        }],
    };
    Arc::new(snapshot.compile())
}

/// Two policies to swap between.
fn rulesets() -> &'static [Arc<Ruleset>; 2] {
    static RULESETS: OnceLock<[Arc<Ruleset>; 2]> = OnceLock::new();
    RULESETS.get_or_init(|| {
        [
            ruleset(
                1,
                &[
                    ("blocked.test", Action::Reset, 1),
                    ("page.test", Action::BlockPage, 1),
                    ("quic-blocked.test", Action::Drop, 2),
                    ("dropped.test", Action::Nxdomain, 2),
                    ("198.18.66.0/24", Action::Nxdomain, 2),
                    ("2001:db8:66::/48", Action::Reset, 1),
                ],
            ),
            ruleset(
                2,
                &[
                    ("blocked.test", Action::Drop, 2),
                    ("*.page.test", Action::Reset, 1),
                    ("allowed.test", Action::BlockPage, 1),
                    ("198.18.2.0/24", Action::Reset, 1),
                    ("2001:db8:66::/48", Action::BlockPage, 1),
                ],
            ),
        ]
    })
}

const MS: u64 = 1_000_000;
/// Longest crafted payload (a built packet must fit in 65,535 bytes).
const MAX_PAYLOAD: usize = 16384;

/// Builds the packet a crafted chunk describes into `out`; false if the chunk is too short.
fn craft(chunk: &[u8], out: &mut Vec<u8>) -> bool {
    let k = chunk[0];
    let v6 = k & 4 != 0;
    let blocked = k & 8 != 0;
    let (client, server): (IpAddr, IpAddr) = match (v6, blocked) {
        (false, false) => (Ipv4Addr::new(198, 18, 1, 2).into(), Ipv4Addr::new(198, 18, 2, 2).into()),
        (false, true) => (Ipv4Addr::new(198, 18, 1, 2).into(), Ipv4Addr::new(198, 18, 66, 7).into()),
        (true, false) => (
            Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2).into(),
            Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2).into(),
        ),
        (true, true) => (
            Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2).into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0x66, 0, 0, 0, 0, 7).into(),
        ),
    };
    let from_server = k & 2 != 0;
    let (src, dst) = if from_server { (server, client) } else { (client, server) };
    if k & 1 == 0 {
        let [_, flags, seq_hi, seq_lo, ports, ref payload @ ..] = *chunk else { return false };
        let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
        let sport = [443, 80, 53, 8443][usize::from(ports & 3)];
        let cport = 40000 + u16::from(ports >> 2 & 3);
        let seq = 1000u32.wrapping_add(u32::from(u16::from_be_bytes([seq_hi, seq_lo])));
        let (src_port, dst_port) = if from_server { (sport, cport) } else { (cport, sport) };
        let header = Header::Tcp { src_port, dst_port, seq, ack: 1, flags, window: 64240 };
        ip_packet(out, src, dst, header, payload);
    } else {
        let [_, ports, pn, ref payload @ ..] = *chunk else { return false };
        let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
        let sport = if ports & 1 == 0 { 443 } else { 53 };
        let cport = 50000 + u16::from(ports >> 1 & 3);
        let (src_port, dst_port) = if from_server { (sport, cport) } else { (cport, sport) };
        let header = Header::Udp { src_port, dst_port };
        if sport == 443 && ports & 8 != 0 {
            let version = if ports & 16 != 0 { Version::V2 } else { Version::V1 };
            let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, ports];
            let keys = InitialKeys::client(version, &dcid).expect("v1 and v2 have Initial keys");
            let mut frames = payload.to_vec();
            if frames.len() < 1162 {
                frames.resize(1162, 0); // PADDING frames
            }
            let initial = InitialHeader { dcid: &dcid, scid: &[1, 2, 3, 4], token: &[], packet_number: u32::from(pn) };
            let mut sealed = vec![0u8; frames.len() + 64];
            let n = keys.seal(&initial, &frames, &mut sealed).expect("64 spare bytes hold header and tag");
            ip_packet(out, src, dst, header, &sealed[..n]);
        } else {
            ip_packet(out, src, dst, header, payload);
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, mut rest)) = data.split_first() else { return };
    let max_packets = usize::from(control & 0x3f);
    let rulesets = rulesets();
    let config = EngineConfig {
        // Small bounds, so that eviction and pool exhaustion happen.
        max_flows: 6,
        timeouts: Timeouts::default(),
        inspect_packets: 4,
        reassembly_buffers: 2,
        rejudge_on_reload: control & 0x40 == 0,
    };
    let mut engine = Engine::new(Arc::clone(&rulesets[0]), config);
    let mut current = 0;
    let mut now = 1_700_000_000_000_000_000u64;
    let mut buf = Vec::with_capacity(2048);
    for _ in 0..max_packets {
        let [hi, lo, ref tail @ ..] = *rest else { break };
        let len = usize::from(u16::from_be_bytes([hi, lo])).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        rest = next;
        let Some(&k) = chunk.first() else { continue };
        buf.clear();
        let packet: &[u8] = if (0x40..=0x7f).contains(&k) {
            now += MS;
            chunk
        } else {
            if k & 0x80 != 0 {
                current ^= 1;
                engine.set_ruleset(Arc::clone(&rulesets[current]));
            }
            now += [MS, 1000 * MS, 15_000 * MS, 70_000 * MS][usize::from(k >> 4 & 3)];
            if !craft(chunk, &mut buf) {
                continue;
            }
            &buf
        };
        engine.expire(now, &mut Ignore);
        if let Ok(p) = dissect_ip(packet) {
            let _ = engine.process(&p, now, &mut Ignore);
            let _ = engine.settled();
        }
    }
    let _ = engine.flow_stats();
    engine.finish(&mut Ignore);
    assert_eq!(engine.flow_stats().active, 0, "finish ends every flow");
});
