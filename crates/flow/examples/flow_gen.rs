//! A flow export generator for benchmarks: sends IPFIX, NetFlow v9 or NetFlow v5 over UDP from
//! one socket to one collector at a target rate of flow records per second, for a duration, and
//! reports what it sent. `scripts/bench-flow.sh` (collector throughput) and
//! `scripts/bench-ddos.sh` (time to mitigate) drive it.
//!
//! ```text
//! cargo run --release -p bawaba-flow --example flow_gen -- --target 127.0.0.1:2055 \
//!     [--format ipfix|v9|v5] [--rate RECORDS_PER_S] [--duration S] [--records N] \
//!     [--template-every N] [--domain N] [--sampling N] [--dst CIDR] [--hosts N] [--src CIDR] \
//!     [--proto mix|tcp|udp|icmp] [--src-port N] [--dst-port N] [--packets N] [--packet-bytes N] \
//!     [--seed N] [--pool N]
//! ```
//!
//! - IPFIX messages come from [`bawaba_flow::export::IpfixExporter`] (IPv4 template 256: addresses,
//!   ports, protocol, TCP flags, 8-byte packet and octet counters, flowStart/EndMilliseconds;
//!   46 bytes a record, so 30 records make a 1,400-byte datagram). NetFlow v9 (RFC 3954) and v5
//!   are built here: v9 with a template of the same fields (4-byte uptime-relative
//!   FIRST/LAST_SWITCHED, plus input and output interface: also 46 bytes a record), v5 in its
//!   fixed 48-byte format (at most 30 records a datagram).
//! - `--records` records per datagram (default 30). Templates (and, with `--sampling`, the
//!   sampling options template and record; for v5 the header's sampling field) are sent first
//!   and then before every `--template-every` data datagrams (default 64; 0: only at the start).
//! - Records are drawn once (xorshift64*, `--seed`) into a pool of `--pool` datagrams (default
//!   1,024) that is sent round and round; only the header (export time, uptime, sequence
//!   number) is rewritten per datagram, so the generator's cost per datagram is one `send(2)`.
//!   Destinations: the first `--hosts` addresses of `--dst` (default 16,384 of 198.18.0.0/16),
//!   sources random in `--src` (198.19.0.0/16). Defaults: 70% TCP to 443/80, 25% UDP, 5% ICMP;
//!   1-20 packets of 64-1,500 bytes a record. Every pool datagram is decoded once with
//!   [`bawaba_flow::decode`] before sending, and the generator refuses to run if a record is
//!   missing or a problem is reported.
//! - Pacing: the number of datagrams due is computed from the monotonic clock; the generator
//!   sends what is due in bursts of at most 64, sleeps when more than 200 us ahead, and spins
//!   closer than that. `--rate 0` sends as fast as it can. When the sender cannot keep up, it
//!   stops at the end of the duration and reports the rate it reached.
//!
//! Standard output, `key value` lines: `start_unix_ms` (printed and flushed as the first
//! datagram leaves, so a script can read it during the run), then at the end `end_unix_ms`,
//! `format`, `target_rate`, `records` (in data datagrams the kernel accepted), `datagrams` (data
//! datagrams attempted), `template_datagrams`, `bytes`,
//! `datagram_bytes` (average data datagram), `seconds`, `records_per_second`,
//! `datagrams_per_second`, `send_errors`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: a panic is the failure report

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bawaba_flow::export::{ExportFlow, IpfixExporter};
use bawaba_flow::{decode, FlowRecord, TemplateCache, Visitor};

const USAGE: &str = "usage: flow_gen --target ADDR [--format ipfix|v9|v5] [--rate RECORDS_PER_S] [--duration S] \
[--records N] [--template-every N] [--domain N] [--sampling N] [--dst CIDR] [--hosts N] [--src CIDR] \
[--proto mix|tcp|udp|icmp] [--src-port N] [--dst-port N] [--packets N] [--packet-bytes N] [--seed N] [--pool N]";

/// Datagrams sent back to back at most before the clock is read again.
const BURST: u64 = 64;
/// NetFlow v9 template id of the data records, and of the sampling options.
const V9_TEMPLATE: u16 = 256;
const V9_OPTIONS_TEMPLATE: u16 = 257;
/// NetFlow v9 data template: (field type, length). RFC 3954 section 8: IPV4_SRC_ADDR, IPV4_DST_ADDR,
/// L4_SRC_PORT, L4_DST_PORT, PROTOCOL, TCP_FLAGS, IN_PKTS, IN_BYTES, FIRST_SWITCHED,
/// LAST_SWITCHED, INPUT_SNMP, OUTPUT_SNMP.
const V9_FIELDS: [(u16, u16); 12] =
    [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 8), (1, 8), (22, 4), (21, 4), (10, 4), (14, 4)];
/// The generator's sys_uptime at start (NetFlow v5/v9), ms: as if the router booted a day ago.
const UPTIME_BASE_MS: u64 = 86_400_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Ipfix,
    V9,
    V5,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Mix,
    Tcp,
    Udp,
    Icmp,
}

struct Args {
    target: SocketAddr,
    format: Format,
    rate: u64,
    duration: Duration,
    records: usize,
    template_every: u64,
    domain: u32,
    sampling: Option<u32>,
    dst: (Ipv4Addr, u8),
    hosts: u32,
    src: (Ipv4Addr, u8),
    proto: Proto,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    packets: Option<u64>,
    packet_bytes: Option<u64>,
    seed: u64,
    pool: usize,
}

fn fail(msg: &str) -> ! {
    eprintln!("flow_gen: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn cidr(s: &str) -> (Ipv4Addr, u8) {
    let (a, l) = s.split_once('/').unwrap_or((s, "32"));
    let addr: Ipv4Addr = a.parse().unwrap_or_else(|_| fail(&format!("not an IPv4 prefix: {s}")));
    let len: u8 = l.parse().ok().filter(|l| *l <= 32).unwrap_or_else(|| fail(&format!("bad prefix length: {s}")));
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (Ipv4Addr::from(u32::from(addr) & mask), len)
}

fn parse_args() -> Args {
    let mut a = Args {
        target: "127.0.0.1:2055".parse().unwrap(),
        format: Format::Ipfix,
        rate: 100_000,
        duration: Duration::from_secs(5),
        records: 30,
        template_every: 64,
        domain: 1,
        sampling: None,
        dst: cidr("198.18.0.0/16"),
        hosts: 16_384,
        src: cidr("198.19.0.0/16"),
        proto: Proto::Mix,
        src_port: None,
        dst_port: None,
        packets: None,
        packet_bytes: None,
        seed: 0x9e37_79b9_7f4a_7c15,
        pool: 1024,
    };
    let mut target = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        let num = |v: &str| -> u64 { v.parse().unwrap_or_else(|_| fail(&format!("{flag}: not a number: {v}"))) };
        match flag.as_str() {
            "--target" => {
                a.target = value.parse().unwrap_or_else(|_| fail(&format!("--target: not an address: {value}")));
                target = true;
            }
            "--format" => {
                a.format = match value.as_str() {
                    "ipfix" => Format::Ipfix,
                    "v9" | "netflow9" => Format::V9,
                    "v5" | "netflow5" => Format::V5,
                    _ => fail(&format!("--format: ipfix, v9 or v5, not {value}")),
                }
            }
            "--rate" => a.rate = num(&value),
            "--duration" => {
                let s: f64 =
                    value.parse().ok().filter(|s: &f64| *s > 0.0).unwrap_or_else(|| fail("--duration: seconds > 0"));
                a.duration = Duration::from_secs_f64(s);
            }
            "--records" => a.records = num(&value) as usize,
            "--template-every" => a.template_every = num(&value),
            "--domain" => a.domain = num(&value) as u32,
            "--sampling" => a.sampling = Some(num(&value).clamp(1, 16_383) as u32),
            "--dst" => a.dst = cidr(&value),
            "--hosts" => a.hosts = num(&value).max(1) as u32,
            "--src" => a.src = cidr(&value),
            "--proto" => {
                a.proto = match value.as_str() {
                    "mix" => Proto::Mix,
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    "icmp" => Proto::Icmp,
                    _ => fail(&format!("--proto: mix, tcp, udp or icmp, not {value}")),
                }
            }
            "--src-port" => a.src_port = Some(num(&value) as u16),
            "--dst-port" => a.dst_port = Some(num(&value) as u16),
            "--packets" => a.packets = Some(num(&value).max(1)),
            "--packet-bytes" => a.packet_bytes = Some(num(&value).max(20)),
            "--seed" => a.seed = num(&value) | 1,
            "--pool" => a.pool = num(&value).max(1) as usize,
            _ => fail(&format!("unknown option {flag}")),
        }
    }
    if !target {
        fail("--target is required");
    }
    if a.records == 0 || (a.format == Format::V5 && a.records > 30) {
        fail("--records: 1 to 30 for v5, at least 1 otherwise");
    }
    if a.records > 1400 {
        fail("--records: at most 1,400 (one datagram)");
    }
    let span = if a.dst.1 == 32 { 1 } else { 1u64 << (32 - a.dst.1) };
    a.hosts = a.hosts.min(span as u32).max(1);
    a
}

/// xorshift64*.
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
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One random flow as the arguments describe it; times `now_ms - 1000 ..= now_ms`.
fn flow(a: &Args, rng: &mut Rng, now_ms: u64) -> ExportFlow {
    let host = rng.below(u64::from(a.hosts)) as u32;
    let dst = Ipv4Addr::from(u32::from(a.dst.0).wrapping_add(if a.dst.1 == 32 { 0 } else { host }));
    let src_span = if a.src.1 == 32 { 1 } else { 1u64 << (32 - a.src.1) };
    let src = Ipv4Addr::from(u32::from(a.src.0).wrapping_add(rng.below(src_span) as u32));
    let protocol = match a.proto {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Icmp => 1,
        Proto::Mix => match rng.below(100) {
            0..70 => 6,
            70..95 => 17,
            _ => 1,
        },
    };
    let (src_port, dst_port, tcp_flags) = match protocol {
        6 => (1024 + rng.below(64_000) as u16, if rng.below(4) == 0 { 80 } else { 443 }, 0x1b),
        17 => (1024 + rng.below(64_000) as u16, [53u16, 443, 123, 4500][rng.below(4) as usize], 0),
        _ => (0, 0x0800, 0),
    };
    let packets = a.packets.unwrap_or_else(|| 1 + rng.below(20));
    let per_packet = a.packet_bytes.unwrap_or_else(|| 64 + rng.below(1437));
    let start_ms = now_ms - 1000 + rng.below(500);
    ExportFlow {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        src_port: a.src_port.unwrap_or(src_port),
        dst_port: a.dst_port.unwrap_or(dst_port),
        protocol,
        tcp_flags,
        packets,
        bytes: packets * per_packet,
        start_ms,
        end_ms: start_ms + rng.below(500),
    }
}

fn v4(ip: IpAddr) -> [u8; 4] {
    match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [0; 4],
    }
}

/// Builds the datagrams of one format. Headers are written with zero times and sequence
/// numbers; [`Builder::stamp`] fills them in before each send.
struct Builder {
    format: Format,
    domain: u32,
    sampling: Option<u32>,
    ipfix: IpfixExporter,
}

impl Builder {
    /// The template message (empty for v5, which has none).
    fn templates(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.format {
            Format::Ipfix => self.ipfix.templates(&mut out, 0),
            Format::V5 => {}
            Format::V9 => {
                // RFC 3954 section 5.2: template flowset, id 0.
                let mut body = Vec::new();
                body.extend_from_slice(&V9_TEMPLATE.to_be_bytes());
                body.extend_from_slice(&(V9_FIELDS.len() as u16).to_be_bytes());
                for (t, l) in V9_FIELDS {
                    body.extend_from_slice(&t.to_be_bytes());
                    body.extend_from_slice(&l.to_be_bytes());
                }
                let mut sets = flowset(0, &body);
                let mut count = 1;
                if let Some(interval) = self.sampling {
                    // Section 6.1: options template flowset, id 1: scope System (1, 4 bytes);
                    // options SAMPLING_INTERVAL (34, 4), SAMPLING_ALGORITHM (35, 1) = 1 deterministic.
                    let mut o = Vec::new();
                    o.extend_from_slice(&V9_OPTIONS_TEMPLATE.to_be_bytes());
                    o.extend_from_slice(&4u16.to_be_bytes()); // scope length, bytes
                    o.extend_from_slice(&8u16.to_be_bytes()); // option length, bytes
                    for (t, l) in [(1u16, 4u16), (34, 4), (35, 1)] {
                        o.extend_from_slice(&t.to_be_bytes());
                        o.extend_from_slice(&l.to_be_bytes());
                    }
                    sets.extend(flowset(1, &o));
                    let mut d = Vec::new();
                    d.extend_from_slice(&self.domain.to_be_bytes());
                    d.extend_from_slice(&interval.to_be_bytes());
                    d.push(1);
                    sets.extend(flowset(V9_OPTIONS_TEMPLATE, &d));
                    count += 2;
                }
                v9_header(&mut out, count, self.domain);
                out.extend(sets);
            }
        }
        out
    }

    /// One data datagram holding `flows`.
    fn data(&mut self, flows: &[ExportFlow], now_ms: u64) -> Vec<u8> {
        let mut out = Vec::new();
        match self.format {
            Format::Ipfix => self.ipfix.data(&mut out, 0, flows),
            Format::V9 => {
                let mut body = Vec::with_capacity(flows.len() * 46);
                for f in flows {
                    body.extend_from_slice(&v4(f.src));
                    body.extend_from_slice(&v4(f.dst));
                    body.extend_from_slice(&f.src_port.to_be_bytes());
                    body.extend_from_slice(&f.dst_port.to_be_bytes());
                    body.push(f.protocol);
                    body.push(f.tcp_flags);
                    body.extend_from_slice(&f.packets.to_be_bytes());
                    body.extend_from_slice(&f.bytes.to_be_bytes());
                    body.extend_from_slice(&uptime_of(f.start_ms, now_ms).to_be_bytes());
                    body.extend_from_slice(&uptime_of(f.end_ms, now_ms).to_be_bytes());
                    body.extend_from_slice(&1u32.to_be_bytes());
                    body.extend_from_slice(&2u32.to_be_bytes());
                }
                v9_header(&mut out, flows.len() as u16, self.domain);
                out.extend(flowset(V9_TEMPLATE, &body));
            }
            Format::V5 => {
                // Header (24 bytes): version, count, sys_uptime, unix_secs, unix_nsecs,
                // flow_sequence, engine_type, engine_id, sampling_interval (2 bits mode, 14 bits).
                out.extend_from_slice(&5u16.to_be_bytes());
                out.extend_from_slice(&(flows.len() as u16).to_be_bytes());
                out.extend_from_slice(&[0; 16]);
                out.push(0);
                out.push(self.domain as u8);
                let sampling = self.sampling.map_or(0u16, |n| 0x4000 | (n as u16 & 0x3fff));
                out.extend_from_slice(&sampling.to_be_bytes());
                for f in flows {
                    out.extend_from_slice(&v4(f.src));
                    out.extend_from_slice(&v4(f.dst));
                    out.extend_from_slice(&[0; 4]); // next hop
                    out.extend_from_slice(&1u16.to_be_bytes()); // input
                    out.extend_from_slice(&2u16.to_be_bytes()); // output
                    out.extend_from_slice(&(f.packets.min(u64::from(u32::MAX)) as u32).to_be_bytes());
                    out.extend_from_slice(&(f.bytes.min(u64::from(u32::MAX)) as u32).to_be_bytes());
                    out.extend_from_slice(&uptime_of(f.start_ms, now_ms).to_be_bytes());
                    out.extend_from_slice(&uptime_of(f.end_ms, now_ms).to_be_bytes());
                    out.extend_from_slice(&f.src_port.to_be_bytes());
                    out.extend_from_slice(&f.dst_port.to_be_bytes());
                    out.push(0); // pad1
                    out.push(f.tcp_flags);
                    out.push(f.protocol);
                    out.push(0); // tos
                    out.extend_from_slice(&[0; 4]); // src_as, dst_as
                    out.extend_from_slice(&[24, 24, 0, 0]); // masks, pad2
                }
            }
        }
        out
    }

    /// Writes the export time, uptime and sequence number into a built datagram. `records`:
    /// data records sent before it; `datagrams`: datagrams (of any kind) sent before it.
    fn stamp(&self, d: &mut [u8], unix_ms: u64, uptime_ms: u64, records: u64, datagrams: u64) {
        let secs = ((unix_ms / 1000) as u32).to_be_bytes();
        match self.format {
            // RFC 7011 section 3.1: export time, then the sequence number counts data records.
            Format::Ipfix => {
                d[4..8].copy_from_slice(&secs);
                d[8..12].copy_from_slice(&(records as u32).to_be_bytes());
            }
            // RFC 3954 section 5.1: sys_uptime, unix_secs, then the export packet count.
            Format::V9 => {
                d[4..8].copy_from_slice(&(uptime_ms as u32).to_be_bytes());
                d[8..12].copy_from_slice(&secs);
                d[12..16].copy_from_slice(&(datagrams as u32).to_be_bytes());
            }
            // v5: sys_uptime, unix_secs, unix_nsecs, then flows seen before this packet.
            Format::V5 => {
                d[4..8].copy_from_slice(&(uptime_ms as u32).to_be_bytes());
                d[8..12].copy_from_slice(&secs);
                d[12..16].copy_from_slice(&(((unix_ms % 1000) * 1_000_000) as u32).to_be_bytes());
                d[16..20].copy_from_slice(&(records as u32).to_be_bytes());
            }
        }
    }
}

/// A flow time as the router's uptime, for a router that booted `UPTIME_BASE_MS` before `now_ms`.
fn uptime_of(t_ms: u64, now_ms: u64) -> u32 {
    (UPTIME_BASE_MS - (now_ms - t_ms).min(UPTIME_BASE_MS)) as u32
}

fn v9_header(out: &mut Vec<u8>, count: u16, source_id: u32) {
    out.extend_from_slice(&9u16.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&source_id.to_be_bytes());
}

/// A v9 flowset: id, length (header included), body padded to 4 bytes (RFC 3954 section 5.3).
fn flowset(id: u16, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let mut out = Vec::with_capacity(body.len() + 4 + pad);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&((body.len() + 4 + pad) as u16).to_be_bytes());
    out.extend_from_slice(body);
    out.extend(std::iter::repeat_n(0, pad));
    out
}

/// Counts what bawaba's decoder finds, to check the datagrams before sending them.
#[derive(Default)]
struct Check {
    records: usize,
    problems: Vec<String>,
}

impl Visitor for Check {
    fn flow(&mut self, _record: &FlowRecord) {
        self.records += 1;
    }
    fn problem(&mut self, error: &bawaba_flow::FlowError) {
        self.problems.push(error.to_string());
    }
}

fn main() {
    let a = parse_args();
    let now = unix_ms();
    let mut builder = Builder {
        format: a.format,
        domain: a.domain,
        sampling: a.sampling,
        ipfix: IpfixExporter::new(a.domain, a.sampling),
    };
    let mut templates = builder.templates();
    let mut rng = Rng(a.seed);
    let mut pool: Vec<Vec<u8>> = (0..a.pool)
        .map(|_| {
            let flows: Vec<ExportFlow> = (0..a.records).map(|_| flow(&a, &mut rng, now)).collect();
            builder.data(&flows, now)
        })
        .collect();

    // Everything we send must decode to every record, or the benchmark measures nothing.
    let exporter = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut cache = TemplateCache::default();
    let mut check = Check::default();
    if !templates.is_empty() {
        builder.stamp(&mut templates, now, UPTIME_BASE_MS, 0, 0);
        decode(exporter, &templates, &mut cache, &mut check).expect("the template message decodes");
    }
    for d in &mut pool {
        builder.stamp(d, now, UPTIME_BASE_MS, 0, 0);
        decode(exporter, d, &mut cache, &mut check).expect("a generated datagram decodes");
    }
    assert!(check.problems.is_empty(), "decoding problems: {:?}", check.problems);
    assert_eq!(check.records, a.pool * a.records, "records lost in decoding the pool");

    let bind: SocketAddr = if a.target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap();
    let socket = UdpSocket::bind(bind).unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let _ = socket.connect(a.target).map_err(|e| fail(&format!("connect {}: {e}", a.target)));

    // Datagrams due in the run, and the time between two of them.
    let per_datagram = a.records as u64;
    let total = if a.rate == 0 {
        u64::MAX
    } else {
        ((a.rate as f64 * a.duration.as_secs_f64() / per_datagram as f64).round() as u64).max(1)
    };
    let interval_ns = if a.rate == 0 { 0.0 } else { 1e9 * per_datagram as f64 / a.rate as f64 };

    let (mut sent, mut template_sent, mut records, mut bytes, mut errors) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut since_templates = 0u64;
    let mut next = 0usize;
    let start = Instant::now();
    let start_unix = unix_ms();
    let send = |d: &[u8], errors: &mut u64| -> bool {
        match socket.send(d) {
            Ok(_) => true,
            Err(_) => {
                *errors += 1;
                false
            }
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "start_unix_ms {start_unix}");
    let _ = out.flush();
    let mut last = start;
    'run: while sent < total {
        let elapsed = start.elapsed();
        if elapsed >= a.duration {
            break;
        }
        let due =
            if a.rate == 0 { sent + BURST } else { ((elapsed.as_nanos() as f64 / interval_ns) as u64 + 1).min(total) };
        if due <= sent {
            let wait_ns = (sent as f64 * interval_ns - elapsed.as_nanos() as f64).max(0.0);
            if wait_ns > 200_000.0 {
                std::thread::sleep(Duration::from_nanos(wait_ns as u64 - 100_000));
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        let unix = start_unix + elapsed.as_millis() as u64;
        let uptime = UPTIME_BASE_MS + elapsed.as_millis() as u64;
        for _ in 0..(due - sent).min(BURST) {
            if !templates.is_empty() && (sent == 0 || (a.template_every > 0 && since_templates >= a.template_every)) {
                builder.stamp(&mut templates, unix, uptime, records, sent + template_sent);
                if send(&templates, &mut errors) {
                    bytes += templates.len() as u64;
                }
                template_sent += 1;
                since_templates = 0;
            }
            let pool_len = pool.len();
            let d = &mut pool[next];
            next = (next + 1) % pool_len;
            builder.stamp(d, unix, uptime, records, sent + template_sent);
            if send(d, &mut errors) {
                bytes += d.len() as u64;
                records += per_datagram;
            }
            sent += 1;
            since_templates += 1;
            if sent >= total {
                last = Instant::now();
                break 'run;
            }
        }
        last = Instant::now();
    }
    // The run lasts until the next datagram would have been due: n datagrams take n intervals.
    let secs = (last.duration_since(start).as_secs_f64() + interval_ns / 1e9).max(1e-9);
    let data_bytes = pool.iter().map(Vec::len).sum::<usize>() / pool.len();
    let _ = writeln!(out, "end_unix_ms {}", start_unix + (secs * 1000.0) as u64);
    let _ = writeln!(out, "format {}", format!("{:?}", a.format).to_lowercase());
    let _ = writeln!(out, "target_rate {}", a.rate);
    let _ = writeln!(out, "records {records}");
    let _ = writeln!(out, "datagrams {sent}");
    let _ = writeln!(out, "template_datagrams {template_sent}");
    let _ = writeln!(out, "bytes {bytes}");
    let _ = writeln!(out, "datagram_bytes {data_bytes}");
    let _ = writeln!(out, "seconds {secs:.3}");
    let _ = writeln!(out, "records_per_second {:.0}", records as f64 / secs);
    let _ = writeln!(out, "datagrams_per_second {:.0}", sent as f64 / secs);
    let _ = writeln!(out, "send_errors {errors}");
}
