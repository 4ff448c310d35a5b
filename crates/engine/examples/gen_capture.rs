//! Writes the synthetic capture and the ruleset that `scripts/bench-engine.sh` runs through
//! `bawaba inspect` and `ndpiReader`.
//!
//! ```text
//! cargo run --release -p bawaba-engine --example gen_capture -- OUT.pcap RULES_DIR [FLOWS] [WINDOW]
//! ```
//!
//! - `OUT.pcap`: classic pcap, Ethernet, microsecond timestamps, starting 2026-11-28 12:00 UTC.
//! - `RULES_DIR/domains.txt`: 1,000,000 domain selectors (`--format domains`), among them the
//!   blocked names of the name pool; `RULES_DIR/prefixes.txt`: 500,000 CIDR lines
//!   (`--format cidr`), 120,000 IPv4 in 198.19.0.0/16 (/25-/32) and 380,000 IPv6 in
//!   2001:db8:ff00::/40 (/52-/128). No prefix covers a server of an unblocked flow.
//! - `FLOWS` (default 120,000) flows, of which `WINDOW` (default 5,000) are open at any time: each
//!   packet comes from a flow picked at random among the open ones, so flows interleave as on a
//!   real link. Mix by flows: 40% TLS over TCP, 15% QUIC, 10% HTTP/1.1, 15% DNS over UDP, 20% bulk
//!   TCP (half SSH-like, half opaque bytes on a high port); 20% of flows are IPv6.
//! - Server names come from a pool of 50,000 (log-uniform popularity, so a few names are very
//!   common); 5% of the named flows use one of the pool's 2,500 blocked names, and 5% of the bulk
//!   flows go to a server address the prefix list blocks.
//!
//! Addresses: clients in 198.18.128.0/17 and 2001:db8:c::/48, servers in 198.18.0.0/17 and
//! 2001:db8:5::/48 (resolvers 198.18.0.53, 198.18.1.53, 2001:db8:53::53). Everything is drawn
//! from a fixed-seed xorshift64*, so the same arguments give the same bytes. The summary goes to
//! standard output as `key value` lines.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: a panic is the failure report

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use bawaba_wire::build::{ethernet_frame, Header};
use bawaba_wire::dns::{build_query, Builder, Message, Rcode, Section, Type};
use bawaba_wire::packet::tcp_flags::{ACK, FIN, PSH, SYN};
use bawaba_wire::pcap::{LinkType, PcapWriter};
use bawaba_wire::quic::{InitialHeader, InitialKeys, Version};
use bawaba_wire::tls::{build_client_hello, wrap_records};

const POOL_NAMES: usize = 50_000;
const BLOCKED_NAMES: usize = 2_500;
const DOMAIN_RULES: usize = 1_000_000;
const V4_PREFIXES: usize = 120_000;
const V6_PREFIXES: usize = 380_000;
const MSS: usize = 1448;
/// 2026-11-28 12:00:00 UTC.
const START_NS: u64 = 1_795_867_200 * 1_000_000_000;

/// xorshift64*, fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(1000) < percent * 10
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.bytes(N));
        a
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Tls,
    Quic,
    Http,
    Dns,
    Bulk,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Tls => "tls",
            Kind::Quic => "quic",
            Kind::Http => "http",
            Kind::Dns => "dns",
            Kind::Bulk => "bulk",
        }
    }
}

/// A packet's payload: built bytes, or that many bytes from the shared random block (chosen
/// when the packet is written).
enum Payload {
    Bytes(Vec<u8>),
    Random(usize),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Bytes(b) => b.len(),
            Payload::Random(n) => *n,
        }
    }
}

struct Pkt {
    from_client: bool,
    header: Header,
    payload: Payload,
}

/// One flow's packets, in order, and where it is.
struct Script {
    kind: Kind,
    client: IpAddr,
    server: IpAddr,
    pkts: Vec<Pkt>,
    next: usize,
}

/// Builds a TCP conversation with consistent sequence and acknowledgment numbers.
struct Tcp {
    cport: u16,
    sport: u16,
    seq: [u32; 2],
    pkts: Vec<Pkt>,
}

impl Tcp {
    fn new(rng: &mut Rng, cport: u16, sport: u16) -> Self {
        let mut t = Tcp { cport, sport, seq: [rng.next() as u32, rng.next() as u32], pkts: Vec::new() };
        t.seg(true, SYN, Payload::Bytes(Vec::new()));
        t.seg(false, SYN | ACK, Payload::Bytes(Vec::new()));
        t.seg(true, ACK, Payload::Bytes(Vec::new()));
        t
    }

    fn seg(&mut self, from_client: bool, flags: u8, payload: Payload) {
        let (me, peer) = if from_client { (0, 1) } else { (1, 0) };
        let (src_port, dst_port) = if from_client { (self.cport, self.sport) } else { (self.sport, self.cport) };
        let ack = if flags & ACK != 0 { self.seq[peer] } else { 0 };
        let window = if flags & SYN != 0 { 64240 } else { 65535 };
        let header = Header::Tcp { src_port, dst_port, seq: self.seq[me], ack, flags, window };
        let advance = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        self.seq[me] = self.seq[me].wrapping_add(advance);
        self.pkts.push(Pkt { from_client, header, payload });
    }

    fn ack(&mut self, from_client: bool) {
        self.seg(from_client, ACK, Payload::Bytes(Vec::new()));
    }

    /// Sends `total` bytes starting with `head` (the rest random) in MSS-sized segments; the
    /// other side acknowledges every second segment and the last.
    fn send(&mut self, rng: &mut Rng, from_client: bool, head: &[u8], total: usize) {
        let total = total.max(head.len());
        let mut off = 0;
        let mut n_seg = 0;
        while off < total {
            let n = MSS.min(total - off);
            let payload = if off < head.len() {
                let mut v = head[off..head.len().min(off + n)].to_vec();
                let fill = n - v.len();
                v.extend_from_slice(&rng.bytes(fill));
                Payload::Bytes(v)
            } else {
                Payload::Random(n)
            };
            off += n;
            n_seg += 1;
            let last = off == total;
            self.seg(from_client, if last { PSH | ACK } else { ACK }, payload);
            if n_seg % 2 == 0 || last {
                self.ack(!from_client);
            }
        }
    }

    /// FIN from the client, FIN from the server, last ACK.
    fn close(&mut self) {
        self.seg(true, FIN | ACK, Payload::Bytes(Vec::new()));
        self.seg(false, FIN | ACK, Payload::Bytes(Vec::new()));
        self.ack(true);
    }
}

fn udp(from_client: bool, cport: u16, sport: u16, payload: Vec<u8>) -> Pkt {
    let (src_port, dst_port) = if from_client { (cport, sport) } else { (sport, cport) };
    Pkt { from_client, header: Header::Udp { src_port, dst_port }, payload: Payload::Bytes(payload) }
}

fn tls_record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// ServerHello (TLS 1.3 shape), ChangeCipherSpec, then the start of an application-data record
/// of `encrypted` bytes (the encrypted extensions and certificate chain).
fn server_flight_head(rng: &mut Rng, encrypted: usize) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&rng.bytes(32));
    body.push(32);
    body.extend_from_slice(&rng.bytes(32));
    body.extend_from_slice(&[0x13, 0x01, 0]);
    let mut ext = vec![0, 0x2b, 0, 2, 3, 4, 0, 0x33, 0, 36, 0, 0x1d, 0, 32];
    ext.extend_from_slice(&rng.bytes(32));
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut msg = vec![2, 0, (body.len() >> 8) as u8, body.len() as u8];
    msg.extend_from_slice(&body);
    let mut out = tls_record(0x16, &msg);
    out.extend_from_slice(&tls_record(0x14, &[1]));
    out.extend_from_slice(&[0x17, 3, 3]);
    out.extend_from_slice(&(encrypted as u16).to_be_bytes());
    out
}

fn app_data_head(len: usize) -> Vec<u8> {
    let mut v = vec![0x17, 3, 3];
    v.extend_from_slice(&(len.min(16_401) as u16).to_be_bytes());
    v
}

fn tls_flow(rng: &mut Rng, name: &str, cport: u16, sport: u16) -> Vec<Pkt> {
    let mut t = Tcp::new(rng, cport, sport);
    // About 10% send a post-quantum-sized ClientHello that needs two segments.
    let split = rng.chance(10);
    let padding = if split { rng.range(1_450, 1_700) } else { rng.range(0, 400) };
    let hello = wrap_records(&build_client_hello(Some(name), &["h2", "http/1.1"], false, padding), 16384);
    for chunk in hello.chunks(MSS) {
        t.seg(true, PSH | ACK, Payload::Bytes(chunk.to_vec()));
    }
    let encrypted = rng.range(2_000, 5_500);
    let head = server_flight_head(rng, encrypted);
    let total = head.len() + encrypted;
    t.send(rng, false, &head, total);
    let mut finished = tls_record(0x14, &[1]);
    finished.extend_from_slice(&tls_record(0x17, &rng.bytes(53)));
    t.seg(true, PSH | ACK, Payload::Bytes(finished));
    for _ in 0..rng.range(1, 3) {
        let req = rng.range(60, 700);
        let head = app_data_head(req - 5);
        t.send(rng, true, &head, req);
        let resp = if rng.chance(70) { rng.range(200, 4_000) } else { rng.range(4_000, 14_000) };
        t.send(rng, false, &app_data_head(resp - 5), resp);
    }
    t.close();
    t.pkts
}

fn http_flow(rng: &mut Rng, name: &str, cport: u16, sport: u16) -> Vec<Pkt> {
    const PATHS: [&str; 6] = ["/", "/index.html", "/news/today", "/static/app.js", "/images/logo.png", "/api/v1/items"];
    let mut t = Tcp::new(rng, cport, sport);
    for _ in 0..if rng.chance(30) { 2 } else { 1 } {
        let path = PATHS[rng.below(PATHS.len() as u64) as usize];
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) \
             Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n\
             Connection: keep-alive\r\n\r\n"
        );
        t.seg(true, PSH | ACK, Payload::Bytes(req.into_bytes()));
        t.ack(false);
        let body = if rng.chance(70) { rng.range(300, 3_000) } else { rng.range(3_000, 12_000) };
        let head = format!(
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 28 Nov 2026 12:00:00 GMT\r\n\
             Content-Type: text/html; charset=utf-8\r\nContent-Encoding: gzip\r\nContent-Length: {body}\r\n\
             Connection: keep-alive\r\n\r\n"
        );
        let total = head.len() + body;
        t.send(rng, false, head.as_bytes(), total);
    }
    t.close();
    t.pkts
}

fn dns_flow(rng: &mut Rng, name: &str, cport: u16, answer: IpAddr) -> Vec<Pkt> {
    let qtype = match rng.below(100) {
        0..=69 => Type::A,
        70..=94 => Type::AAAA,
        _ => Type(65), // HTTPS
    };
    let query = build_query(rng.next() as u16, name, qtype, true, Some((1232, false)));
    let msg = Message::parse(&query).unwrap();
    let mut b = Builder::response_to(&msg, Rcode::NOERROR);
    match (qtype, answer) {
        (Type::A, _) => {
            let a = match answer {
                IpAddr::V4(a) => a,
                IpAddr::V6(a) => Ipv4Addr::new(198, 18, a.octets()[14] & 0x7f, a.octets()[15]),
            };
            b.push_qname_record(Section::Answer, Type::A, 300, &a.octets());
        }
        (Type::AAAA, _) => {
            let a = match answer {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => {
                    let o = a.octets();
                    Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, u16::from(o[2]), u16::from(o[3]))
                }
            };
            b.push_qname_record(Section::Answer, Type::AAAA, 300, &a.octets());
        }
        _ => {}
    }
    b.push_opt(1232, false, &[]);
    let response = b.finish();
    vec![udp(true, cport, 53, query), udp(false, cport, 53, response)]
}

/// A protected client Initial of exactly 1250 bytes carrying the given CRYPTO frames.
fn client_initial(keys: &InitialKeys, dcid: &[u8], scid: &[u8], pn: u32, frames: &[(usize, &[u8])]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(1204);
    for (offset, data) in frames {
        payload.push(0x06);
        payload.extend_from_slice(&(0x4000u16 | *offset as u16).to_be_bytes());
        payload.extend_from_slice(&(0x4000u16 | data.len() as u16).to_be_bytes());
        payload.extend_from_slice(data);
    }
    // 26 header bytes (8-byte connection ids, empty token, 2-byte length) + 4 (packet number)
    // + payload + 16 (tag) = 1250.
    assert!(payload.len() <= 1204, "CRYPTO data too long for one Initial");
    payload.resize(1204, 0);
    let header = InitialHeader { dcid, scid, token: &[], packet_number: pn };
    let mut out = vec![0u8; 1400];
    let n = keys.seal(&header, &payload, &mut out).unwrap();
    assert_eq!(n, 1250);
    out.truncate(n);
    out
}

/// A long-header Handshake packet of `len` bytes whose protected part is random.
fn handshake_packet(rng: &mut Rng, dcid: &[u8], scid: &[u8], len: usize) -> Vec<u8> {
    let mut v = vec![0xe0 | (rng.next() as u8 & 0x0f)];
    v.extend_from_slice(&1u32.to_be_bytes());
    v.push(dcid.len() as u8);
    v.extend_from_slice(dcid);
    v.push(scid.len() as u8);
    v.extend_from_slice(scid);
    let rest = len - v.len() - 2;
    v.extend_from_slice(&(0x4000u16 | rest as u16).to_be_bytes());
    v.extend_from_slice(&rng.bytes(rest));
    v
}

/// A short-header (1-RTT) packet of `len` bytes.
fn short_packet(rng: &mut Rng, dcid: &[u8], len: usize) -> Vec<u8> {
    let mut v = vec![0x40 | (rng.next() as u8 & 0x3f)];
    v.extend_from_slice(dcid);
    v.extend_from_slice(&rng.bytes(len - v.len()));
    v
}

fn quic_flow(rng: &mut Rng, name: &str, cport: u16) -> Vec<Pkt> {
    let dcid: [u8; 8] = rng.array();
    let cscid: [u8; 8] = rng.array();
    let sscid: [u8; 8] = rng.array();
    let keys = InitialKeys::client(Version::V1, &dcid).unwrap();
    let mut pkts = Vec::new();
    // About 15% carry a post-quantum-sized ClientHello in two Initials.
    let two = rng.chance(15);
    let padding = if two { rng.range(1_300, 1_700) } else { rng.range(0, 500) };
    let hello = build_client_hello(Some(name), &["h3"], false, padding);
    if hello.len() <= 1199 {
        pkts.push(udp(true, cport, 443, client_initial(&keys, &dcid, &cscid, 0, &[(0, &hello)])));
    } else {
        let (a, b) = hello.split_at(1199);
        pkts.push(udp(true, cport, 443, client_initial(&keys, &dcid, &cscid, 0, &[(0, a)])));
        pkts.push(udp(true, cport, 443, client_initial(&keys, &dcid, &cscid, 1, &[(1199, b)])));
    }
    // The server: a coalesced Initial (ACK + ServerHello) and Handshake, then more Handshake.
    let server_keys = InitialKeys::server(Version::V1, &dcid).unwrap();
    let mut payload = vec![0x02, (pkts.len() - 1) as u8, 0, 0, 0, 0x06, 0, 0x40, 90];
    payload.extend_from_slice(&rng.bytes(90));
    let header = InitialHeader { dcid: &cscid, scid: &sscid, token: &[], packet_number: 0 };
    let mut first = vec![0u8; 1400];
    let n = server_keys.seal(&header, &payload, &mut first).unwrap();
    first.truncate(n);
    let fill = 1200 - first.len();
    first.extend_from_slice(&handshake_packet(rng, &cscid, &sscid, fill));
    pkts.push(udp(false, cport, 443, first));
    for _ in 0..rng.range(1, 3) {
        pkts.push(udp(false, cport, 443, handshake_packet(rng, &cscid, &sscid, 1200)));
    }
    let len = rng.range(80, 120);
    pkts.push(udp(true, cport, 443, handshake_packet(rng, &sscid, &cscid, len)));
    // 1-RTT: a request or two, the response, client ACKs every second packet.
    for _ in 0..rng.range(1, 2) {
        let len = rng.range(60, 400);
        pkts.push(udp(true, cport, 443, short_packet(rng, &sscid, len)));
        let n = rng.range(2, 24);
        for i in 0..n {
            let len = rng.range(1_200, 1_350);
            pkts.push(udp(false, cport, 443, short_packet(rng, &cscid, len)));
            if i % 2 == 1 || i == n - 1 {
                let len = rng.range(40, 60);
                pkts.push(udp(true, cport, 443, short_packet(rng, &sscid, len)));
            }
        }
    }
    pkts
}

fn bulk_flow(rng: &mut Rng, ssh: bool, cport: u16, sport: u16) -> Vec<Pkt> {
    let mut t = Tcp::new(rng, cport, sport);
    if ssh {
        t.seg(false, PSH | ACK, Payload::Bytes(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".to_vec()));
        t.ack(true);
        t.seg(true, PSH | ACK, Payload::Bytes(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()));
        // Key exchange: binary packets (length, padding length, then message 20 KEXINIT).
        let kex = |rng: &mut Rng, len: usize| {
            let mut v = ((len - 4) as u32).to_be_bytes().to_vec();
            v.extend_from_slice(&[8, 20]);
            v.extend_from_slice(&rng.bytes(len - 6));
            v
        };
        let len = rng.range(1_200, 1_440);
        let c = kex(rng, len);
        t.seg(true, PSH | ACK, Payload::Bytes(c));
        let len = rng.range(900, 1_100);
        let s = kex(rng, len);
        t.seg(false, PSH | ACK, Payload::Bytes(s));
        let len = rng.range(40, 1_300);
        t.seg(true, PSH | ACK, Payload::Bytes(rng.bytes(len)));
        let len = rng.range(300, 1_400);
        t.seg(false, PSH | ACK, Payload::Bytes(rng.bytes(len)));
    } else {
        let len = rng.range(40, 400);
        t.seg(true, PSH | ACK, Payload::Bytes(rng.bytes(len)));
    }
    // The transfer: mostly downloads, some uploads.
    let total = rng.range(10, 60) * MSS;
    let upload = rng.chance(20);
    t.send(rng, upload, &[], total);
    t.close();
    t.pkts
}

struct Pool {
    names: Vec<String>,
    /// `names[..BLOCKED_NAMES]` are blocked.
    rules: Vec<String>,
}

const SYL: [&str; 24] = [
    "ka", "ro", "mi", "ta", "zen", "lo", "bar", "qi", "nu", "fa", "del", "so", "vik", "ha", "po", "ur", "an", "tel",
    "net", "sa", "mar", "ri", "om", "el",
];
const TLD: [&str; 12] = ["com", "net", "org", "iq", "info", "io", "xyz", "de", "tr", "co", "me", "app"];

fn label(rng: &mut Rng, min: usize, max: usize) -> String {
    (0..rng.range(min, max)).map(|_| SYL[rng.below(SYL.len() as u64) as usize]).collect()
}

/// The name pool and the domain rules.
fn names(rng: &mut Rng) -> Pool {
    const PREFIX: [&str; 8] = ["", "", "", "www.", "www.", "cdn.", "api.", "static."];
    let mut registered = HashSet::new();
    let mut names = Vec::with_capacity(POOL_NAMES);
    let mut taken: HashSet<String> = HashSet::new();
    while names.len() < POOL_NAMES {
        let mut reg = label(rng, 2, 3);
        if rng.chance(50) {
            reg.push_str(&rng.below(1000).to_string());
        }
        let reg = format!("{reg}.{}", TLD[rng.below(TLD.len() as u64) as usize]);
        if !registered.insert(reg.clone()) {
            continue;
        }
        let prefix = PREFIX[rng.below(PREFIX.len() as u64) as usize];
        let name = format!("{prefix}{reg}");
        taken.insert(name.clone());
        taken.insert(reg);
        names.push(name);
    }
    let mut rules = Vec::with_capacity(DOMAIN_RULES);
    // The blocked part of the pool: its registered domain (so its subtree) or the exact name.
    for name in &names[..BLOCKED_NAMES] {
        let reg = name.split_once('.').filter(|(_, rest)| rest.contains('.')).map_or(name.as_str(), |(_, r)| r);
        rules.push(if rng.chance(50) { reg.to_string() } else { format!("exact:{name}") });
    }
    // Filler: 55% subtree, 40% exact, 5% `*.`; never a pool name or an ancestor of one.
    let mut seen: HashSet<String> = HashSet::with_capacity(DOMAIN_RULES);
    while rules.len() < DOMAIN_RULES {
        let labels = match rng.below(100) {
            0..=44 => 2,
            45..=79 => 3,
            80..=94 => 4,
            _ => 5,
        };
        let mut parts = Vec::with_capacity(labels);
        for i in 0..labels - 1 {
            let mut l = label(rng, 2, 4);
            if i == labels - 2 {
                l.push_str(&rng.below(100_000).to_string());
            }
            parts.push(l);
        }
        parts.push(TLD[rng.below(TLD.len() as u64) as usize].to_string());
        let name = parts.join(".");
        if taken.contains(&name) || !seen.insert(name.clone()) {
            continue;
        }
        rules.push(match rng.below(100) {
            0..=54 => name,
            55..=94 => format!("exact:{name}"),
            _ => format!("*.{name}"),
        });
    }
    // Shuffle so the blocked names are spread through the file.
    for i in (1..rules.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        rules.swap(i, j);
    }
    Pool { names, rules }
}

/// The prefix rules; returns the lines and the blocked /32 and /128 addresses (servers of the
/// address-blocked flows).
fn prefixes(rng: &mut Rng) -> (Vec<String>, Vec<IpAddr>) {
    let mut lines = Vec::with_capacity(V4_PREFIXES + V6_PREFIXES);
    let mut hosts = Vec::new();
    // IPv4 in 198.19.0.0/16: (length, count); distinct blocks of each length.
    let v4: [(u32, usize); 8] =
        [(32, 62_500), (31, 30_000), (30, 14_000), (29, 7_000), (28, 3_500), (27, 1_800), (26, 800), (25, 400)];
    assert_eq!(v4.iter().map(|x| x.1).sum::<usize>(), V4_PREFIXES);
    for (len, count) in v4 {
        let blocks = 1usize << (len - 16);
        let mut idx: Vec<u32> = (0..blocks as u32).collect();
        for i in 0..count {
            let j = i + rng.below((blocks - i) as u64) as usize;
            idx.swap(i, j);
        }
        for &b in &idx[..count] {
            let addr = Ipv4Addr::from(0xc613_0000u32 | (b << (32 - len)));
            lines.push(format!("{addr}/{len}"));
            if len == 32 && hosts.len() < 2_000 {
                hosts.push(IpAddr::V4(addr));
            }
        }
    }
    // IPv6 in 2001:db8:ff00::/40.
    let mut seen = HashSet::with_capacity(V6_PREFIXES);
    let mut v6_hosts = 0;
    while seen.len() < V6_PREFIXES {
        let len: u32 = match rng.below(100) {
            0..=9 => 52,
            10..=39 => 56,
            40..=79 => 64,
            _ => 128,
        };
        let bits = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        let base = 0x2001_0db8_ff00u128 << 80;
        let host_mask = (1u128 << 88) - 1;
        let a = (base | (bits & host_mask)) & !((1u128 << (128 - len)) - 1);
        if !seen.insert((a, len)) {
            continue;
        }
        let addr = Ipv6Addr::from(a);
        lines.push(format!("{addr}/{len}"));
        if len == 128 && v6_hosts < 500 {
            hosts.push(IpAddr::V6(addr));
            v6_hosts += 1;
        }
    }
    for i in (1..lines.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        lines.swap(i, j);
    }
    (lines, hosts)
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    for l in lines {
        writeln!(w, "{l}").unwrap();
    }
    w.flush().unwrap();
}

fn client_addr(rng: &mut Rng, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from((0x2001_0db8_000c_0000u128 << 64) | u128::from(rng.next() | 1)))
    } else {
        let h = 0x8000 | (rng.below(0x7ffe) as u32 + 1);
        IpAddr::V4(Ipv4Addr::from(0xc612_0000 | h))
    }
}

/// The server a name resolves to: a hash of its pool index, in 198.18.0.0/17 or 2001:db8:5::/48.
fn server_addr(index: usize, v6: bool) -> IpAddr {
    let h = (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    if v6 {
        IpAddr::V6(Ipv6Addr::from((0x2001_0db8_0005_0000u128 << 64) | u128::from(h | 1)))
    } else {
        let low = (h as u32 % 0x7ffe) + 1;
        IpAddr::V4(Ipv4Addr::from(0xc612_0000 | low))
    }
}

#[derive(Default)]
struct Tally {
    flows: u64,
    packets: u64,
    bytes: u64,
    v6: u64,
    blocked_name: u64,
    blocked_addr: u64,
}

struct Gen {
    rng: Rng,
    pool: Vec<String>,
    blocked_hosts: Vec<IpAddr>,
    tuples: HashSet<(IpAddr, u16, IpAddr, u16, bool)>,
    tally: BTreeMap<Kind, Tally>,
    names_used: HashSet<usize>,
}

impl Gen {
    /// A pool index: 5% blocked, otherwise log-uniform over the unblocked part (index 0 is the
    /// most popular).
    fn pick_name(&mut self) -> (usize, bool) {
        if self.rng.chance(5) {
            (self.rng.below(BLOCKED_NAMES as u64) as usize, true)
        } else {
            let n = (POOL_NAMES - BLOCKED_NAMES) as f64;
            let i = (n.powf(self.rng.unit()) as usize).saturating_sub(1).min(POOL_NAMES - BLOCKED_NAMES - 1);
            (BLOCKED_NAMES + i, false)
        }
    }

    /// A client address and port not used before with this server, port and transport.
    fn client(&mut self, v6: bool, server: IpAddr, sport: u16, tcp: bool) -> (IpAddr, u16) {
        loop {
            let c = client_addr(&mut self.rng, v6);
            let p = 32768 + self.rng.below(28_232) as u16;
            if self.tuples.insert((c, p, server, sport, tcp)) {
                return (c, p);
            }
        }
    }

    fn flow(&mut self) -> Script {
        let kind = match self.rng.below(100) {
            0..=39 => Kind::Tls,
            40..=54 => Kind::Quic,
            55..=64 => Kind::Http,
            65..=79 => Kind::Dns,
            _ => Kind::Bulk,
        };
        let v6 = self.rng.chance(20);
        let t = self.tally.entry(kind).or_default();
        t.flows += 1;
        t.v6 += u64::from(v6);
        let (name, blocked) = self.pick_name();
        if kind != Kind::Bulk {
            self.names_used.insert(name);
            if blocked {
                self.tally.get_mut(&kind).unwrap().blocked_name += 1;
            }
        }
        let name_text = self.pool[name].clone();
        let rng = &mut self.rng;
        let (server, sport) = match kind {
            Kind::Tls => (server_addr(name, v6), if rng.chance(97) { 443 } else { 8443 }),
            Kind::Quic => (server_addr(name, v6), 443),
            Kind::Http => (server_addr(name, v6), if rng.chance(90) { 80 } else { 8080 }),
            Kind::Dns => {
                let r = if v6 {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x53, 0, 0, 0, 0, 0x53))
                } else {
                    IpAddr::V4(Ipv4Addr::new(198, 18, rng.below(2) as u8, 53))
                };
                (r, 53)
            }
            Kind::Bulk => {
                let sport = if rng.chance(50) { 22 } else { 5001 + rng.below(2000) as u16 };
                if rng.chance(5) {
                    let candidates: Vec<&IpAddr> = self.blocked_hosts.iter().filter(|a| a.is_ipv6() == v6).collect();
                    let a = *candidates[rng.below(candidates.len() as u64) as usize];
                    self.tally.get_mut(&kind).unwrap().blocked_addr += 1;
                    (a, sport)
                } else {
                    (server_addr(POOL_NAMES + rng.below(1 << 20) as usize, v6), sport)
                }
            }
        };
        let (client, cport) = self.client(v6, server, sport, kind != Kind::Quic && kind != Kind::Dns);
        let rng = &mut self.rng;
        let pkts = match kind {
            Kind::Tls => tls_flow(rng, &name_text, cport, sport),
            Kind::Quic => quic_flow(rng, &name_text, cport),
            Kind::Http => http_flow(rng, &name_text, cport, sport),
            Kind::Dns => dns_flow(rng, &name_text, cport, server_addr(name, v6)),
            Kind::Bulk => bulk_flow(rng, sport == 22, cport, sport),
        };
        Script { kind, client, server, pkts, next: 0 }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen_capture OUT.pcap RULES_DIR [FLOWS (120000)] [WINDOW (5000)]");
        std::process::exit(2);
    }
    let out = Path::new(&args[1]);
    let rules_dir = Path::new(&args[2]);
    let flows: usize = args.get(3).map_or(120_000, |s| s.parse().expect("FLOWS is a number"));
    let window: usize = args.get(4).map_or(5_000, |s| s.parse().expect("WINDOW is a number"));
    let started = std::time::Instant::now();

    let mut rng = Rng(0x5eed_ba3a_ba00_2026);
    std::fs::create_dir_all(rules_dir).unwrap();
    let pool = names(&mut rng);
    write_lines(&rules_dir.join("domains.txt"), &pool.rules);
    let (prefix_lines, blocked_hosts) = prefixes(&mut rng);
    write_lines(&rules_dir.join("prefixes.txt"), &prefix_lines);
    let rules_secs = started.elapsed().as_secs_f64();

    let mut gen = Gen {
        rng,
        pool: pool.names,
        blocked_hosts,
        tuples: HashSet::with_capacity(flows * 2),
        tally: BTreeMap::new(),
        names_used: HashSet::new(),
    };
    // A random block that `Payload::Random` slices from.
    let random = gen.rng.bytes(1 << 20);
    let mut writer =
        PcapWriter::new(BufWriter::with_capacity(1 << 22, File::create(out).unwrap()), LinkType::ETHERNET, 65535)
            .unwrap();
    let (mac_c, mac_s) = ([0x02, 0x42, 0xc6, 0x12, 0x80, 0x01], [0x02, 0x42, 0xc6, 0x12, 0x00, 0x01]);
    let mut active: Vec<Script> = Vec::with_capacity(window);
    let mut started_flows = 0;
    let mut now = START_NS;
    let mut frame = Vec::with_capacity(2048);
    let (mut packets, mut bytes) = (0u64, 0u64);
    while started_flows < flows.min(window) {
        active.push(gen.flow());
        started_flows += 1;
    }
    while !active.is_empty() {
        let slot = gen.rng.below(active.len() as u64) as usize;
        let s = &mut active[slot];
        let p = &s.pkts[s.next];
        s.next += 1;
        let (src, dst, smac, dmac) =
            if p.from_client { (s.client, s.server, mac_c, mac_s) } else { (s.server, s.client, mac_s, mac_c) };
        let payload: &[u8] = match &p.payload {
            Payload::Bytes(b) => b,
            Payload::Random(n) => {
                let at = gen.rng.below((random.len() - n) as u64) as usize;
                &random[at..at + n]
            }
        };
        frame.clear();
        ethernet_frame(&mut frame, smac, dmac, src, dst, p.header, payload);
        now += 1_000 * gen.rng.range(1, 9) as u64;
        writer.write_packet(now, &frame).unwrap();
        packets += 1;
        bytes += frame.len() as u64;
        let t = gen.tally.get_mut(&s.kind).unwrap();
        t.packets += 1;
        t.bytes += frame.len() as u64;
        if s.next == s.pkts.len() {
            if started_flows < flows {
                active[slot] = gen.flow();
                started_flows += 1;
            } else {
                active.swap_remove(slot);
            }
        }
    }
    writer.into_inner().unwrap().flush().unwrap();

    let duration = (now - START_NS) as f64 / 1e9;
    let blocked_name: u64 = gen.tally.values().map(|t| t.blocked_name).sum();
    let blocked_addr: u64 = gen.tally.values().map(|t| t.blocked_addr).sum();
    let v6: u64 = gen.tally.values().map(|t| t.v6).sum();
    println!("packets {packets}");
    println!("flows {flows}");
    println!("bytes {bytes}");
    println!("capture_seconds {duration:.3}");
    println!("ipv6_flows {v6}");
    println!("blocked_name_flows {blocked_name}");
    println!("blocked_address_flows {blocked_addr}");
    println!("names_used {}", gen.names_used.len());
    println!("window {window}");
    for (kind, t) in &gen.tally {
        println!(
            "kind {} flows {} packets {} bytes {} ipv6_flows {} blocked_name {} blocked_address {}",
            kind.as_str(),
            t.flows,
            t.packets,
            t.bytes,
            t.v6,
            t.blocked_name,
            t.blocked_addr
        );
    }
    println!("domain_rules {}", pool.rules.len());
    println!("prefix_rules {}", prefix_lines.len());
    println!("rules_seconds {rules_secs:.1}");
    println!("generate_seconds {:.1}", started.elapsed().as_secs_f64());
}
