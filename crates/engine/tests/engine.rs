//! The engine core on synthetic packets: every recognition path, every action, the flow table's
//! bounds and the ruleset hot swap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::sync::Arc;

use bawaba_engine::flow::{Flow, FlowKey};
use bawaba_engine::{
    AppProtocol, Basis, Engine, EngineConfig, FlowAction, FlowEnd, FlowState, Observer, PacketVerdict, Timeouts,
};
use bawaba_policy::{Action, Category, Order, OrderId, Ruleset};
use bawaba_wire::build::{ip_packet, Header};
use bawaba_wire::packet::{dissect_ip, tcp_flags};
use bawaba_wire::quic::{InitialHeader, InitialKeys, Version};
use bawaba_wire::tls::{build_client_hello, wrap_records};

fn order(id: i64, reference: &str, category: Category) -> Order {
    bawaba_testkit::policy::order(id, reference, category, true)
}

fn ruleset(rules: &[(&str, Action, i64)]) -> Arc<Ruleset> {
    let orders = vec![order(1, "CFI-2026-0042", Category::CourtOrder), order(2, "CMC-2026-0007", Category::Malware)];
    let snapshot = bawaba_testkit::policy::snapshot(orders, rules, &["exact:ok.blocked.test"]);
    Arc::new(snapshot.compile())
}

fn policy() -> Arc<Ruleset> {
    ruleset(&[
        ("blocked.test", Action::Reset, 1),
        ("page.test", Action::BlockPage, 1),
        ("quic-blocked.test", Action::Drop, 2),
        ("dropped.test", Action::Nxdomain, 2),
        ("198.18.66.0/24", Action::Nxdomain, 2),
        ("2001:db8:66::/48", Action::Reset, 1),
    ])
}

const CLIENT: &str = "198.18.1.2";
const SERVER: &str = "198.18.2.2";

/// Records ended flows.
#[derive(Default)]
struct Ended(Vec<(FlowState, FlowEnd, [u32; 2])>);

impl Observer for Ended {
    fn ended(&mut self, flow: &Flow<FlowState>, why: FlowEnd) {
        self.0.push((flow.state.clone(), why, flow.packets));
    }
}

struct Conn {
    client: IpAddr,
    server: IpAddr,
    cport: u16,
    sport: u16,
    seq: u32,
}

impl Conn {
    fn new(client: &str, server: &str, cport: u16, sport: u16) -> Self {
        Conn { client: client.parse().unwrap(), server: server.parse().unwrap(), cport, sport, seq: 1000 }
    }

    fn tcp(&self, from_client: bool, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let (src, dst, sp, dp) = if from_client {
            (self.client, self.server, self.cport, self.sport)
        } else {
            (self.server, self.client, self.sport, self.cport)
        };
        let header = Header::Tcp { src_port: sp, dst_port: dp, seq, ack: 1, flags, window: 64240 };
        ip_packet(&mut buf, src, dst, header, payload);
        buf
    }

    fn udp(&self, from_client: bool, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let (src, dst, sp, dp) = if from_client {
            (self.client, self.server, self.cport, self.sport)
        } else {
            (self.server, self.client, self.sport, self.cport)
        };
        ip_packet(&mut buf, src, dst, Header::Udp { src_port: sp, dst_port: dp }, payload);
        buf
    }
}

fn run(engine: &mut Engine, packet: &[u8], now: u64, obs: &mut impl Observer) -> PacketVerdict {
    engine.process(&dissect_ip(packet).unwrap(), now, obs)
}

/// SYN, SYN-ACK, then the client's first data in the given segments (stream offset, bytes).
fn tcp_session(engine: &mut Engine, c: &Conn, segments: &[(usize, &[u8])]) -> Vec<PacketVerdict> {
    let mut obs = Ended::default();
    let mut out = vec![
        run(engine, &c.tcp(true, c.seq, tcp_flags::SYN, b""), 1, &mut obs),
        run(engine, &c.tcp(false, 5000, tcp_flags::SYN | tcp_flags::ACK, b""), 2, &mut obs),
    ];
    for (i, (offset, bytes)) in segments.iter().enumerate() {
        let seq = c.seq.wrapping_add(1).wrapping_add(*offset as u32);
        out.push(run(engine, &c.tcp(true, seq, tcp_flags::ACK | tcp_flags::PSH, bytes), 3 + i as u64, &mut obs));
    }
    out
}

fn hello(name: &str) -> Vec<u8> {
    wrap_records(&build_client_hello(Some(name), &["h2", "http/1.1"], false, 0), 16384)
}

/// The basis and action of the flow `packet` belongs to, if the engine tracks it.
fn verdict_of(e: &Engine, packet: &[u8]) -> Option<(Basis, FlowAction)> {
    let key = FlowKey::of(&dissect_ip(packet).unwrap()).0;
    e.flow_state(&key).map(|s| (s.basis, s.action))
}

fn engine() -> Engine {
    Engine::new(policy(), EngineConfig::default())
}

#[test]
fn tls_sni_blocked_is_reset_and_allowed_passes() {
    let mut e = engine();
    let c = Conn::new(CLIENT, SERVER, 40000, 443);
    let v = tcp_session(&mut e, &c, &[(0, &hello("www.blocked.test"))]);
    assert_eq!(v, [PacketVerdict::Accept, PacketVerdict::Accept, PacketVerdict::Reset { first: true }]);
    // The server's reply after the verdict is dropped, resets are not sent twice.
    let reply = c.tcp(false, 5001, tcp_flags::ACK, b"x");
    assert_eq!(run(&mut e, &reply, 10, &mut Ended::default()), PacketVerdict::Reset { first: false });

    // An allowlisted name under the blocked one, and an unrelated name, pass.
    for (port, name) in [(40001, "ok.blocked.test"), (40002, "example.test")] {
        let c = Conn::new(CLIENT, SERVER, port, 443);
        let v = tcp_session(&mut e, &c, &[(0, &hello(name))]);
        assert_eq!(v[2], PacketVerdict::Accept, "{name}");
    }
    let counters = e.counters();
    assert_eq!(counters.flows_by_action.get("reset"), Some(&1));
    assert_eq!(counters.flows_by_action.get("allow"), Some(&2));
    assert_eq!(counters.blocked_by_category.get("court-order"), Some(&1));
    assert_eq!(counters.blocked_by_order.get(&1), Some(&1));

    let mut ended = Ended::default();
    e.finish(&mut ended);
    let blocked = ended.0.iter().find(|(s, ..)| s.name() == Some("www.blocked.test")).unwrap();
    assert_eq!((blocked.0.app, blocked.0.basis, blocked.0.order()), (AppProtocol::Tls, Basis::Name, Some(OrderId(1))));
    let allowed = ended.0.iter().find(|(s, ..)| s.name() == Some("ok.blocked.test")).unwrap();
    assert_eq!(allowed.0.basis, Basis::Allowlisted);
}

#[test]
fn tls_on_any_port_and_split_reordered_retransmitted() {
    let mut e = engine();
    let stream = wrap_records(&build_client_hello(Some("split.blocked.test"), &["h2"], false, 1500), 16384);
    assert!(stream.len() > 1500);
    let c = Conn::new(CLIENT, SERVER, 40010, 8443);
    // Third piece first, then the first, a retransmission of the first, then the middle.
    let (a, b, d) = (&stream[..600], &stream[600..1200], &stream[1200..]);
    let v = tcp_session(&mut e, &c, &[(1200, d), (0, a), (0, a), (600, b)]);
    assert_eq!(
        &v[2..],
        &[PacketVerdict::Accept, PacketVerdict::Accept, PacketVerdict::Accept, PacketVerdict::Reset { first: true }]
    );

    // A ClientHello fragmented over several TLS records in several segments.
    let records = wrap_records(&build_client_hello(Some("records.blocked.test"), &[], false, 400), 128);
    let c = Conn::new(CLIENT, SERVER, 40011, 443);
    let pieces: Vec<(usize, &[u8])> = records.chunks(200).enumerate().map(|(i, p)| (i * 200, p)).collect();
    let v = tcp_session(&mut e, &c, &pieces);
    assert_eq!(v.last(), Some(&PacketVerdict::Reset { first: true }));
    assert!(v[..v.len() - 1].iter().all(|v| *v == PacketVerdict::Accept));
}

#[test]
fn ech_is_recorded_with_the_outer_name() {
    let mut e = engine();
    let c = Conn::new(CLIENT, SERVER, 40020, 443);
    let stream = wrap_records(&build_client_hello(Some("public.example.test"), &["h2"], true, 0), 16384);
    tcp_session(&mut e, &c, &[(0, &stream)]);
    let mut ended = Ended::default();
    e.finish(&mut ended);
    assert!(ended.0[0].0.ech);
    assert_eq!(ended.0[0].0.name(), Some("public.example.test"));
    assert_eq!(e.counters().ech_flows, 1);
}

#[test]
fn http_host_block_page_redirects_and_other_hosts_pass() {
    let mut e = engine();
    let c = Conn::new(CLIENT, SERVER, 40030, 80);
    let req = b"GET /x HTTP/1.1\r\nHost: www.page.test\r\nUser-Agent: curl/7.88.1\r\n\r\n";
    let v = tcp_session(&mut e, &c, &[(0, &req[..20]), (20, &req[20..])]);
    assert_eq!(&v[2..], &[PacketVerdict::Accept, PacketVerdict::Redirect]);
    // Further client packets are dropped, not redirected again.
    let more = c.tcp(true, c.seq + 1 + req.len() as u32, tcp_flags::ACK, b"more");
    assert_eq!(run(&mut e, &more, 9, &mut Ended::default()), PacketVerdict::Drop);

    // A block-page rule over TLS can only reset; a reset rule over HTTP resets.
    let c = Conn::new(CLIENT, SERVER, 40031, 443);
    assert_eq!(tcp_session(&mut e, &c, &[(0, &hello("page.test"))])[2], PacketVerdict::Reset { first: true });
    let c = Conn::new(CLIENT, SERVER, 40032, 80);
    let req = b"GET / HTTP/1.1\r\nHost: blocked.test:80\r\n\r\n";
    assert_eq!(tcp_session(&mut e, &c, &[(0, req)])[2], PacketVerdict::Reset { first: true });
    let c = Conn::new(CLIENT, SERVER, 40033, 80);
    let req = b"GET / HTTP/1.1\r\nHost: fine.test\r\n\r\n";
    assert_eq!(tcp_session(&mut e, &c, &[(0, req)])[2], PacketVerdict::Accept);
    // An address literal in Host is judged as that address, IPv4 (also a well-formed name) as
    // IPv6: here inside the blocked 198.18.66.0/24 (drop) and 2001:db8:66::/48 (reset).
    for (port, host, verdict) in [
        (40034, "198.18.66.7", PacketVerdict::Drop),
        (40035, "198.18.66.7:8080", PacketVerdict::Drop),
        (40038, "198.18.66.7.", PacketVerdict::Drop),
        (40036, "[2001:db8:66::5]:80", PacketVerdict::Reset { first: true }),
        (40037, "198.18.67.7", PacketVerdict::Accept),
    ] {
        let c = Conn::new(CLIENT, SERVER, port, 80);
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(tcp_session(&mut e, &c, &[(0, req.as_bytes())])[2], verdict, "Host: {host}");
    }
}

#[test]
fn ip_prefix_rules_decide_on_the_first_packet() {
    let mut e = engine();
    let c = Conn::new(CLIENT, "198.18.66.7", 40040, 443);
    let v = tcp_session(&mut e, &c, &[(0, &hello("anything.test"))]);
    assert!(v.iter().all(|v| *v == PacketVerdict::Drop), "{v:?}");
    let c = Conn::new("2001:db8:1::2", "2001:db8:66::1", 40041, 443);
    let v = tcp_session(&mut e, &c, &[]);
    assert_eq!(v[0], PacketVerdict::Reset { first: true });
    // Picked up mid-stream from the server side: still judged on the server address.
    let c = Conn::new(CLIENT, "198.18.66.9", 40042, 443);
    assert_eq!(run(&mut e, &c.tcp(false, 1, tcp_flags::ACK, b"data"), 1, &mut Ended::default()), PacketVerdict::Drop);
    let mut ended = Ended::default();
    e.finish(&mut ended);
    assert!(ended.0.iter().all(|(s, ..)| s.basis == Basis::Address));
}

#[test]
fn non_first_fragments_are_judged_by_address() {
    let mut e = engine();
    // An IPv4 packet with fragment offset 64: no transport header.
    let mut frag = Vec::new();
    ip_packet(
        &mut frag,
        CLIENT.parse().unwrap(),
        "198.18.66.1".parse().unwrap(),
        Header::Udp { src_port: 1, dst_port: 2 },
        &[0; 32],
    );
    frag[6] = 0;
    frag[7] = 8;
    let p = dissect_ip(&frag).unwrap();
    assert_eq!(e.process(&p, 1, &mut Ended::default()), PacketVerdict::Drop);
    assert_eq!(e.counters().fragments, 1);
}

/// A QUIC v1 client Initial of 1200+ bytes carrying the given CRYPTO frames.
fn quic_initial(version: Version, dcid: &[u8], pn: u32, frames: &[(usize, &[u8])]) -> Vec<u8> {
    let keys = InitialKeys::client(version, dcid).unwrap();
    let mut payload = Vec::new();
    for (offset, data) in frames {
        payload.push(0x06);
        payload.extend_from_slice(&(0x4000u16 | *offset as u16).to_be_bytes());
        payload.extend_from_slice(&(0x4000u16 | data.len() as u16).to_be_bytes());
        payload.extend_from_slice(data);
    }
    if payload.len() < 1162 {
        payload.resize(1162, 0);
    }
    let header = InitialHeader { dcid, scid: &[1, 2, 3, 4], token: &[], packet_number: pn };
    let mut out = vec![0u8; payload.len() + 200];
    let n = keys.seal(&header, &payload, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn quic_sni_single_and_two_packet_hellos() {
    let mut e = engine();
    let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
    let msg = build_client_hello(Some("www.quic-blocked.test"), &["h3"], false, 0);
    let c = Conn::new(CLIENT, SERVER, 50000, 443);
    let v = run(&mut e, &c.udp(true, &quic_initial(Version::V1, &dcid, 0, &[(0, &msg)])), 1, &mut Ended::default());
    assert_eq!(v, PacketVerdict::Drop);

    // A post-quantum-sized ClientHello (~1.7 KB) in two Initials, CRYPTO frames shuffled as
    // Chrome sends them: the second packet carries the start.
    let big = build_client_hello(Some("big.quic-blocked.test"), &["h3"], false, 1550);
    assert!(big.len() > 1600);
    let (head, tail) = big.split_at(900);
    let c = Conn::new(CLIENT, SERVER, 50001, 443);
    let first = quic_initial(Version::V2, &dcid, 0, &[(900 + 400, &tail[400..]), (900, &tail[..400])]);
    let second = quic_initial(Version::V2, &dcid, 1, &[(500, &head[500..]), (0, &head[..500])]);
    let mut obs = Ended::default();
    assert_eq!(run(&mut e, &c.udp(true, &first), 1, &mut obs), PacketVerdict::Accept);
    assert_eq!(run(&mut e, &c.udp(true, &second), 2, &mut obs), PacketVerdict::Drop);

    // An allowed name passes; the server's reply follows the flow.
    let c = Conn::new(CLIENT, SERVER, 50002, 443);
    let ok = build_client_hello(Some("fine.test"), &["h3"], false, 0);
    assert_eq!(
        run(&mut e, &c.udp(true, &quic_initial(Version::V1, &dcid, 0, &[(0, &ok)])), 1, &mut obs),
        PacketVerdict::Accept
    );
    assert_eq!(run(&mut e, &c.udp(false, &[0x40; 1200]), 2, &mut obs), PacketVerdict::Accept);
    e.finish(&mut obs);
    let quic: Vec<_> = obs.0.iter().filter(|(s, ..)| s.app == AppProtocol::Quic).collect();
    assert_eq!(quic.len(), 3);
    assert_eq!(e.counters().quic_undecryptable, 0);
}

fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[test]
fn dns_queries_are_judged_one_by_one() {
    let mut e = engine();
    let c = Conn::new(CLIENT, "198.18.9.9", 53000, 53);
    let mut obs = Ended::default();
    assert_eq!(run(&mut e, &c.udp(true, &dns_query("fine.test")), 1, &mut obs), PacketVerdict::Accept);
    assert_eq!(run(&mut e, &c.udp(true, &dns_query("www.Dropped.test")), 2, &mut obs), PacketVerdict::Drop);
    assert_eq!(run(&mut e, &c.udp(true, &dns_query("fine.test")), 3, &mut obs), PacketVerdict::Accept);
    let mut tcp_query = vec![0, 0];
    tcp_query.extend_from_slice(&dns_query("blocked.test"));
    let t = Conn::new(CLIENT, "198.18.9.9", 53001, 53);
    let v = tcp_session(&mut e, &t, &[(0, &tcp_query)]);
    assert_eq!(v[2], PacketVerdict::Drop);
    assert_eq!((e.counters().dns_queries, e.counters().dns_queries_blocked), (4, 2));
}

#[test]
fn a_reload_that_blocks_a_resolver_cuts_its_open_dns_flows() {
    // A DNS flow judged query by query, to a resolver whose address a reload then blocks: cut
    // like a new flow to it would be, on its next packet or at once.
    for at_once in [false, true] {
        let mut e = engine();
        let c = Conn::new(CLIENT, "198.18.77.53", 53002, 53);
        let mut obs = Ended::default();
        assert_eq!(run(&mut e, &c.udp(true, &dns_query("fine.test")), 1, &mut obs), PacketVerdict::Accept);
        let reloaded = ruleset(&[("blocked.test", Action::Reset, 1), ("198.18.77.0/24", Action::Drop, 2)]);
        if at_once {
            let cut = e.set_ruleset_and_rejudge(reloaded);
            let resolver: IpAddr = "198.18.77.53".parse().unwrap();
            assert_eq!(cut.iter().map(|c| c.server).collect::<Vec<_>>(), [(resolver, 53)]);
        } else {
            e.set_ruleset(reloaded);
        }
        assert_eq!(
            run(&mut e, &c.udp(true, &dns_query("fine.test")), 2, &mut obs),
            PacketVerdict::Drop,
            "at once: {at_once}"
        );
        assert_eq!(e.counters().rejudged_changed, 1);
        // A resolver the reload leaves alone keeps answering query by query.
        let other = Conn::new(CLIENT, "198.18.9.9", 53003, 53);
        assert_eq!(run(&mut e, &other.udp(true, &dns_query("fine.test")), 3, &mut obs), PacketVerdict::Accept);
        assert_eq!(run(&mut e, &other.udp(true, &dns_query("blocked.test")), 4, &mut obs), PacketVerdict::Drop);
    }
}

#[test]
fn a_reload_that_lifts_a_block_lets_the_flow_go_on() {
    // Three flows blocked under the first policy: TLS to an address in a blocked /24 (blocked by
    // the address alone, before any name), TLS naming a blocked name, and DNS to a resolver in
    // the /24. The reload lifts both rules and blocks another name.
    for at_once in [false, true] {
        let mut e = engine();
        let mut obs = Ended::default();
        let by_address = Conn::new(CLIENT, "198.18.66.7", 40070, 443);
        assert_eq!(tcp_session(&mut e, &by_address, &[])[0], PacketVerdict::Drop);
        let by_name = Conn::new(CLIENT, SERVER, 40071, 443);
        assert_eq!(
            tcp_session(&mut e, &by_name, &[(0, &hello("blocked.test"))])[2],
            PacketVerdict::Reset { first: true }
        );
        let resolver = Conn::new(CLIENT, "198.18.66.53", 53070, 53);
        assert_eq!(run(&mut e, &resolver.udp(true, &dns_query("fine.test")), 3, &mut obs), PacketVerdict::Drop);

        let reloaded = ruleset(&[("later.test", Action::Reset, 1)]);
        if at_once {
            let changed = e.set_ruleset_and_rejudge(reloaded);
            let mut servers: Vec<IpAddr> = changed.iter().map(|c| c.server.0).collect();
            servers.sort();
            assert_eq!(servers, [by_name.server, by_address.server, resolver.server]);
            let syn = |c: &Conn| c.tcp(true, c.seq, tcp_flags::SYN, b"");
            assert_eq!(verdict_of(&e, &syn(&by_address)), Some((Basis::Pending, FlowAction::Allow)));
            assert_eq!(verdict_of(&e, &syn(&by_name)), Some((Basis::NoMatch, FlowAction::Allow)));
            assert_eq!(verdict_of(&e, &resolver.udp(true, b"")), Some((Basis::NoMatch, FlowAction::Allow)));
        } else {
            e.set_ruleset(reloaded);
        }
        // The flow blocked by its address is inspected again, as a new flow would be: its
        // ClientHello (sent again) now names a blocked name.
        let again = by_address.tcp(true, by_address.seq + 1, tcp_flags::ACK | tcp_flags::PSH, &hello("later.test"));
        assert_eq!(run(&mut e, &again, 10, &mut obs), PacketVerdict::Reset { first: true }, "at once: {at_once}");
        let more = by_name.tcp(true, by_name.seq + 600, tcp_flags::ACK, b"more");
        assert_eq!(run(&mut e, &more, 11, &mut obs), PacketVerdict::Accept, "at once: {at_once}");
        // The resolver is judged query by query again.
        assert_eq!(run(&mut e, &resolver.udp(true, &dns_query("fine.test")), 12, &mut obs), PacketVerdict::Accept);
        assert_eq!(run(&mut e, &resolver.udp(true, &dns_query("later.test")), 13, &mut obs), PacketVerdict::Drop);
        assert_eq!(e.counters().rejudged_changed, 3, "at once: {at_once}");
    }
}

#[test]
fn a_flow_judged_before_its_address_was_blocked_is_allowed_as_before_when_the_block_is_lifted() {
    // SSH-like traffic, allowed as unrecognised; a reload blocks its server's /24, the next
    // lifts it: the flow is allowed again as it was, not inspected from scratch.
    let mut e = engine();
    let c = Conn::new(CLIENT, "198.18.70.5", 40080, 22);
    let v = tcp_session(&mut e, &c, &[(0, b"SSH-2.0-OpenSSH_9.2\r\n")]);
    assert_eq!(v[2], PacketVerdict::Accept);
    let syn = c.tcp(true, c.seq, tcp_flags::SYN, b"");
    let allowed_as = verdict_of(&e, &syn).unwrap();
    let blocked = e.set_ruleset_and_rejudge(ruleset(&[("198.18.70.0/24", Action::Drop, 1)]));
    assert_eq!(blocked.len(), 1);
    assert_eq!(verdict_of(&e, &syn), Some((Basis::Address, FlowAction::Drop)));
    let lifted = e.set_ruleset_and_rejudge(ruleset(&[("other.test", Action::Reset, 1)]));
    assert_eq!(lifted.len(), 1);
    assert_eq!(verdict_of(&e, &syn), Some(allowed_as));
    assert_eq!(allowed_as, (Basis::Unrecognised, FlowAction::Allow));
    let more = c.tcp(true, c.seq + 100, tcp_flags::ACK, b"more");
    assert_eq!(run(&mut e, &more, 20, &mut Ended::default()), PacketVerdict::Accept);
}

#[test]
fn unrecognised_traffic_is_allowed_within_the_budget() {
    let mut e = engine();
    let c = Conn::new(CLIENT, SERVER, 40050, 22);
    let v = tcp_session(&mut e, &c, &[(0, b"SSH-2.0-OpenSSH_9.2\r\n")]);
    assert_eq!(v[2], PacketVerdict::Accept);
    let u = Conn::new(CLIENT, SERVER, 40051, 9999);
    assert_eq!(run(&mut e, &u.udp(true, b"hello"), 1, &mut Ended::default()), PacketVerdict::Accept);
    let mut ended = Ended::default();
    e.finish(&mut ended);
    assert!(ended.0.iter().all(|(s, ..)| s.basis == Basis::Unrecognised && s.action == FlowAction::Allow));
}

#[test]
fn flow_entries_fit_in_256_bytes() {
    assert!(std::mem::size_of::<Flow<FlowState>>() <= 256, "{}", std::mem::size_of::<Flow<FlowState>>());
    // With the index: 65,536 flows (the slab's first size, so no growth slack) measured.
    let mut e = engine();
    let mut obs = Ended::default();
    for i in 0..65_536u32 {
        let c = Conn::new(CLIENT, SERVER, (i % 60_000) as u16 + 1024, 9 + (i / 60_000) as u16);
        run(&mut e, &c.udp(true, b"x"), 1, &mut obs);
    }
    assert_eq!(e.flow_stats().active, 65_536);
    let per_flow = e.flow_memory_bytes() / 65_536;
    assert!(per_flow <= 256, "{per_flow} bytes per tracked flow");
    eprintln!("{} bytes per flow entry, {per_flow} with the index", std::mem::size_of::<Flow<FlowState>>());
}

#[test]
fn the_table_is_bounded_and_flows_expire() {
    let timeouts = Timeouts { udp_ns: 5_000_000_000, ..Timeouts::default() };
    let mut e = Engine::new(policy(), EngineConfig { max_flows: 10, timeouts, ..EngineConfig::default() });
    let mut obs = Ended::default();
    for port in 0..25u16 {
        let c = Conn::new(CLIENT, SERVER, 10000 + port, 9);
        run(&mut e, &c.udp(true, b"x"), u64::from(port), &mut obs);
    }
    let stats = e.flow_stats();
    assert_eq!((stats.active, stats.evicted, stats.created), (10, 15, 25));
    assert!(obs.0.iter().all(|(_, why, _)| *why == FlowEnd::Evicted));
    e.expire(20_000_000_000, &mut obs);
    assert_eq!(e.flow_stats().active, 0);
    assert_eq!(e.flow_stats().expired, 10);
}

#[test]
fn rejudging_at_once_finds_every_newly_blocked_flow() {
    // 600 IPv4 and 60 IPv6 flows, allowed; the reload blocks a /24 of servers, one name and an
    // IPv6 /48. The server addresses are looked up in batches of 256, so the flows span several.
    let mut e = Engine::new(policy(), EngineConfig::default());
    let mut expected = Vec::new();
    // Two flows judged by an address literal, first in the first batch, so that the batch's name
    // results must line up with the flows after them.
    // TLS to an allowed server whose SNI is an address of the soon-blocked IPv6 /48 (not a valid
    // name): judged again as that address.
    let literal = Conn::new(CLIENT, "198.18.9.9", 21_000, 443);
    assert_eq!(tcp_session(&mut e, &literal, &[(0, &hello("2001:db8:77::99"))])[2], PacketVerdict::Accept);
    expected.push("198.18.9.9".parse().unwrap());
    // Plain HTTP naming an address of the soon-blocked /24 in its Host header (an IPv4 literal,
    // which is also a well-formed name).
    let literal = Conn::new(CLIENT, "198.18.9.10", 21_001, 80);
    let req = b"GET / HTTP/1.1\r\nHost: 198.19.1.77\r\n\r\n";
    assert_eq!(tcp_session(&mut e, &literal, &[(0, req)])[2], PacketVerdict::Accept);
    expected.push("198.18.9.10".parse().unwrap());
    for i in 0..660u32 {
        let (client, server) = if i < 600 {
            (CLIENT.to_string(), format!("198.19.{}.{}", i / 200, i % 200 + 1))
        } else {
            ("2001:db8:1::2".to_string(), format!("2001:db8:77::{:x}", i))
        };
        let c = Conn::new(&client, &server, 20_000 + i as u16, 443);
        let name = format!("site{i}.test");
        assert_eq!(tcp_session(&mut e, &c, &[(0, &hello(&name))])[2], PacketVerdict::Accept, "{name}");
        if (200..400).contains(&i) || i == 7 || i >= 600 {
            expected.push(server.parse::<IpAddr>().unwrap());
        }
    }
    let newly_blocked = e.set_ruleset_and_rejudge(ruleset(&[
        ("198.19.1.0/24", Action::Reset, 1),
        ("site7.test", Action::Reset, 2),
        ("2001:db8:77::/48", Action::Reset, 1),
    ]));
    let mut got: Vec<IpAddr> = newly_blocked.iter().map(|c| c.server.0).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert!(newly_blocked.iter().all(|c| c.protocol == 6));
    assert_eq!(e.counters().rejudged_changed, expected.len() as u64);
}

#[test]
fn hot_swap_rejudges_allowed_flows() {
    for rejudge in [true, false] {
        let mut e = Engine::new(policy(), EngineConfig { rejudge_on_reload: rejudge, ..EngineConfig::default() });
        let c = Conn::new(CLIENT, SERVER, 40060, 443);
        assert_eq!(tcp_session(&mut e, &c, &[(0, &hello("later.test"))])[2], PacketVerdict::Accept);
        e.set_ruleset(ruleset(&[("later.test", Action::Reset, 1)]));
        let next = c.tcp(true, c.seq + 600, tcp_flags::ACK, b"more");
        let v = run(&mut e, &next, 20, &mut Ended::default());
        // Blocked mid-stream: client packets pass until the server's next packet, whose sequence
        // numbers make exact resets for both ends.
        assert_eq!(v, PacketVerdict::Accept);
        let from_server = c.tcp(false, 9000, tcp_flags::ACK, b"data");
        let v = run(&mut e, &from_server, 21, &mut Ended::default());
        if rejudge {
            assert_eq!(v, PacketVerdict::Reset { first: true });
            assert_eq!(e.counters().rejudged_changed, 1);
        } else {
            assert_eq!(v, PacketVerdict::Accept);
        }
        // A server that stays silent: after a few client packets the reset goes out anyway.
        if rejudge {
            let c3 = Conn::new(CLIENT, SERVER, 40062, 443);
            let mut e = Engine::new(policy(), EngineConfig::default());
            tcp_session(&mut e, &c3, &[(0, &hello("later.test"))]);
            e.set_ruleset(ruleset(&[("later.test", Action::Reset, 1)]));
            let verdicts: Vec<_> = (0..10u32)
                .map(|i| run(&mut e, &c3.tcp(true, c3.seq + 600 + i, tcp_flags::ACK, b"x"), 30, &mut Ended::default()))
                .collect();
            assert_eq!(&verdicts[..8], &[PacketVerdict::Accept; 8]);
            assert_eq!(verdicts[8], PacketVerdict::Reset { first: true });
        }
        // A new flow to the same name is blocked either way.
        let c2 = Conn::new(CLIENT, SERVER, 40061, 443);
        assert_eq!(tcp_session(&mut e, &c2, &[(0, &hello("later.test"))])[2], PacketVerdict::Reset { first: true });
    }
}
