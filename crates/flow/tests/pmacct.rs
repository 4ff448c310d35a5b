//! Interop with real sFlow: pmacct's probe exports a capture as sFlow v5, and bawaba's decode of
//! the datagrams must agree with pmacct's own collector (nfdump has no sFlow collector, so
//! `sfacctd` is the reference here, as `nfcapd` is for NetFlow in `softflowd.rs`).
//!
//! The test writes a capture (TCP conversations, one-way and two-way UDP, ICMP and ICMPv6 echo,
//! IPv4 fragments and options, an IPv6 hop-by-hop header and IPv6 fragments; addresses in
//! 198.18.0.0/15 and 2001:db8::/32). `pmacctd` reads it with the `sfprobe` plugin, which sends
//! one flow sample per packet (`sampled_header`: the frame's first 128 bytes) to a relay socket
//! of the test. The relay keeps every datagram and forwards it to `sfacctd`, whose `print`
//! plugin writes packets and bytes per (source, destination, protocol) as CSV. The same
//! datagrams are decoded with [`bawaba_flow::decode`], and:
//!
//! - bawaba's packets and bytes per (source, destination, protocol), and so per protocol, must
//!   equal what went into the capture;
//! - sfacctd's must equal bawaba's, key by key and protocol by protocol, once the byte counts
//!   are aligned (below).
//!
//! Bytes. bawaba counts the IP packet, as NetFlow's octets do: the IP total length, or, when
//! the sampled header is cut short, `frame_length - stripped` less the Ethernet header.
//! sfacctd counts the sample's `frame_length` as reported (pmacct's `SF_counters_new_handler`:
//! `pkt_len = sampledPacketSize`), and `sfprobe` in `pmacctd` reports the captured frame plus a
//! 4-byte FCS (`stripped = 4`). The capture's frames are untagged Ethernet without padding, so
//! for every sampled packet sfacctd's bytes are bawaba's plus 14 (Ethernet header) plus 4 (FCS).
//! A padded runt frame would differ by more: bawaba does not count Ethernet padding.
//!
//! Sampling. `unsampled` has the probe sample 1 in 1 (`sampling_rate: 1`): totals are exact.
//! `rate_reported` keeps every packet but has the probe say 1 in 16
//! (`pmacctd_ext_sampling_rate`), sfacctd renormalizes (`sfacctd_renormalize`), and bawaba,
//! which reports sampling and never applies it, must carry rate 16 from the sample on every
//! record; its totals scaled by that rate must equal sfacctd's.
//!
//! Why (source, destination, protocol) and no ports: pmacct reads layer-4 ports right after an
//! IPv6 extension header two bytes early (its `decodeIPV6` skips `length - 2`), and reads
//! "ports" out of non-first IPv6 fragments. The protocol behind one extension header it does
//! find, and so must bawaba.
//!
//! pmacct quirks the test works around:
//! - The probe sends a datagram when it is full or on its once-a-second tick, and the tick runs
//!   only when packets arrive; at the end of the capture the last, partly filled datagram is
//!   never sent. The capture therefore ends with [`TRAILER`] small UDP packets between two
//!   addresses of their own: the unsent datagram holds only some of these, bawaba and sfacctd
//!   must still agree on the ones that came, and the capture comparison leaves them out.
//! - `pcap_savefile_wait` is not used: on SIGINT pmacctd flushes its pipe buffer a second time
//!   and the plugin replays stale packets. Without it pmacctd exits by itself after the capture
//!   (it sleeps 2 s before reading and 2 s before stopping its plugins).
//! - Default pipe buffers lose records: `plugin_pipe_size: 268435456`,
//!   `plugin_buffer_size: 65536`. The daemons ignore SIGTERM: sfacctd is stopped with SIGINT,
//!   when its print plugin writes what it holds. The plugin also writes on its refresh timer
//!   (aligned to the clock), so the file is appended to and rows of one key are summed.
//!
//! The daemons run in process groups of their own; [`Daemon`] kills every process of the group
//! by PID when the test ends early.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bawaba_flow::{decode, FlowProtocol, FlowRecord, SamplingSource, TemplateCache};
use bawaba_testkit::{free_port, require_tools};
use bawaba_wire::build::{ip_packet, Header};
use bawaba_wire::packet::{internet_checksum, protocol, pseudo_header_sum, tcp_flags};
use bawaba_wire::pcap::{LinkType, PcapWriter};

/// Small UDP packets at the end of the capture, some of which the probe never sends.
const TRAILER: u64 = 32;
const TRAILER_SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 1);
const TRAILER_DST: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 2);
/// What sfacctd counts per packet beyond the IP packet: Ethernet header and FCS.
const LINK_OVERHEAD: u64 = 14 + 4;

/// Packets and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    packets: u64,
    bytes: u64,
}

impl Counts {
    fn add(&mut self, packets: u64, bytes: u64) {
        self.packets += packets;
        self.bytes += bytes;
    }

    /// bawaba's IP bytes as sfacctd counts them: plus Ethernet header and FCS per packet.
    fn with_link_overhead(self) -> Counts {
        Counts { packets: self.packets, bytes: self.bytes + LINK_OVERHEAD * self.packets }
    }
}

/// Source, destination, IP protocol: what sfacctd aggregates by here.
type Key = (IpAddr, IpAddr, u8);
type ByKey = BTreeMap<Key, Counts>;

fn by_protocol(keys: &ByKey) -> BTreeMap<u8, Counts> {
    let mut t = BTreeMap::<u8, Counts>::new();
    for (k, c) in keys {
        t.entry(k.2).or_default().add(c.packets, c.bytes);
    }
    t
}

fn is_trailer(k: &Key) -> bool {
    (k.0, k.1) == (IpAddr::V4(TRAILER_SRC), IpAddr::V4(TRAILER_DST))
}

// ---------------------------------------------------------------------------------------------
// The capture

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// An IPv4 header (RFC 791 section 3.1) with `options` (a multiple of 4 bytes) in front of
/// `payload`, TTL 64, checksum filled in. `fragment` is the flags-and-offset word.
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, fragment: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let header_len = 20 + options.len();
    let total = u16::try_from(header_len + payload.len()).unwrap();
    let mut ip = vec![0x40 | (header_len / 4) as u8, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34]);
    ip.extend_from_slice(&fragment.to_be_bytes());
    ip.extend_from_slice(&[64, protocol, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(options);
    let sum = internet_checksum(&ip, 0);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

/// An IPv6 header (RFC 8200 section 3), hop limit 64, in front of `payload` (extension headers
/// included), whose first header is `next_header`.
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    ip.extend_from_slice(&[next_header, 64]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(payload);
    ip
}

/// A TCP or UDP segment with its checksum (taken from a packet built by `bawaba_wire`).
fn segment(src: IpAddr, dst: IpAddr, header: Header, payload_len: usize) -> Vec<u8> {
    let mut ip = Vec::new();
    ip_packet(&mut ip, src, dst, header, &vec![0x61; payload_len]);
    ip.split_off(if src.is_ipv4() { 20 } else { 40 })
}

/// An ICMP (RFC 792) or ICMPv6 (RFC 4443) echo request or reply.
fn echo(src: IpAddr, dst: IpAddr, reply: bool, seq: u16, payload_len: usize) -> (u8, Vec<u8>) {
    let (proto, kind) = match (src, reply) {
        (IpAddr::V4(_), false) => (protocol::ICMP, 8),
        (IpAddr::V4(_), true) => (protocol::ICMP, 0),
        (IpAddr::V6(_), false) => (protocol::ICMPV6, 128),
        (IpAddr::V6(_), true) => (protocol::ICMPV6, 129),
    };
    let mut icmp = vec![kind, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend(std::iter::repeat_n(0x62, payload_len));
    // ICMPv6's checksum covers a pseudo-header (RFC 4443 section 2.3); ICMP's does not.
    let pseudo = if src.is_ipv6() { pseudo_header_sum(src, dst, proto, icmp.len()) } else { 0 };
    let sum = internet_checksum(&icmp, pseudo);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    (proto, icmp)
}

/// Builds the capture packet by packet and counts what it holds per key.
struct CaptureBuilder {
    frames: Vec<Vec<u8>>,
    expected: ByKey,
}

impl CaptureBuilder {
    /// Adds an IP packet in an Ethernet frame, counted under (`src`, `dst`, `proto`).
    fn push(&mut self, src: IpAddr, dst: IpAddr, proto: u8, ip: Vec<u8>) {
        let ethertype: u16 = if ip[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
        let mut frame = [&MAC_B[..], &MAC_A[..], &ethertype.to_be_bytes()].concat();
        let ip_len = ip.len() as u64;
        frame.extend(ip);
        self.frames.push(frame);
        self.expected.entry((src, dst, proto)).or_default().add(1, ip_len);
    }

    /// A TCP or UDP packet, IPv4 or IPv6.
    fn transport(&mut self, src: IpAddr, dst: IpAddr, header: Header, payload_len: usize) {
        let proto = match header {
            Header::Tcp { .. } => protocol::TCP,
            Header::Udp { .. } => protocol::UDP,
        };
        let l4 = segment(src, dst, header, payload_len);
        self.push(src, dst, proto, ip(src, dst, proto, &l4));
    }

    fn echo(&mut self, src: IpAddr, dst: IpAddr, reply: bool, seq: u16, payload_len: usize) {
        let (proto, icmp) = echo(src, dst, reply, seq, payload_len);
        self.push(src, dst, proto, ip(src, dst, proto, &icmp));
    }

    /// A TCP conversation: handshake, `rounds` request/response pairs, FIN exchange.
    fn tcp_conversation(&mut self, client: IpAddr, server: IpAddr, port: u16, rounds: u32, size: usize) {
        let mut next = |to_server: bool, flags: u8, len: usize| {
            let (src, dst, sp, dp) = if to_server { (client, server, port, 443) } else { (server, client, 443, port) };
            let h = Header::Tcp { src_port: sp, dst_port: dp, seq: 1, ack: 1, flags, window: 65535 };
            self.transport(src, dst, h, len);
        };
        next(true, tcp_flags::SYN, 0);
        next(false, tcp_flags::SYN | tcp_flags::ACK, 0);
        next(true, tcp_flags::ACK, 0);
        for r in 0..rounds {
            next(true, tcp_flags::PSH | tcp_flags::ACK, 80 + r as usize);
            next(false, tcp_flags::PSH | tcp_flags::ACK, size);
        }
        next(true, tcp_flags::FIN | tcp_flags::ACK, 0);
        next(false, tcp_flags::FIN | tcp_flags::ACK, 0);
        next(true, tcp_flags::ACK, 0);
    }

    /// A UDP datagram of `payload_len` bytes sent as IP fragments of at most `chunk` bytes of
    /// the UDP segment each (a multiple of 8).
    fn fragmented_udp(&mut self, src: IpAddr, dst: IpAddr, port: u16, payload_len: usize, chunk: usize) {
        let l4 = segment(src, dst, Header::Udp { src_port: port, dst_port: 4500 }, payload_len);
        for (i, part) in l4.chunks(chunk).enumerate() {
            let offset = u16::try_from(i * chunk / 8).unwrap();
            let more = (i + 1) * chunk < l4.len();
            let ip = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    ipv4(s, d, protocol::UDP, offset | if more { 0x2000 } else { 0 }, &[], part)
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    // RFC 8200 section 4.5: next header, reserved, offset << 3 | M, identification.
                    let mut p = vec![protocol::UDP, 0];
                    p.extend_from_slice(&(offset << 3 | u16::from(more)).to_be_bytes());
                    p.extend_from_slice(&[0, 0, 0x56, 0x78]);
                    p.extend_from_slice(part);
                    ipv6(s, d, protocol::FRAGMENT, &p)
                }
                _ => unreachable!("one family"),
            };
            self.push(src, dst, protocol::UDP, ip);
        }
    }
}

/// An unfragmented IP packet carrying `l4`.
fn ip(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s, d, proto, 0x4000, &[], l4),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(s, d, proto, l4),
        _ => unreachable!("one family"),
    }
}

struct Capture {
    path: PathBuf,
    /// Packets and IP bytes per key, the trailer left out.
    expected: ByKey,
}

fn build_capture(dir: &Path) -> Capture {
    let mut b = CaptureBuilder { frames: Vec::new(), expected: ByKey::new() };
    for i in 0..96u32 {
        let client = IpAddr::V4(Ipv4Addr::new(198, 18, (i / 200) as u8, (i % 200 + 1) as u8));
        let server = IpAddr::V4(Ipv4Addr::new(198, 19, (i % 5) as u8, (i % 40 + 1) as u8));
        let port = 20_000 + i as u16;
        match i % 6 {
            0 => b.tcp_conversation(client, server, port, 1 + i % 4, 100 + (i as usize * 37) % 1300),
            1 => {
                for _ in 0..1 + i % 5 {
                    let h = Header::Udp { src_port: port, dst_port: 5000 };
                    b.transport(client, server, h, 30 + (i as usize * 53) % 1200);
                }
            }
            2 => {
                for seq in 0..1 + i % 3 {
                    b.echo(client, server, false, seq as u16, 56);
                    b.echo(server, client, true, seq as u16, 56);
                }
            }
            3 => {
                b.transport(client, server, Header::Udp { src_port: port, dst_port: 53 }, 40);
                b.transport(server, client, Header::Udp { src_port: 53, dst_port: port }, 120 + i as usize);
            }
            4 if i % 12 == 4 => b.fragmented_udp(client, server, port, 2000 + i as usize, 1480),
            4 => {
                // IPv4 options (Router Alert, RFC 2113) in front of a UDP datagram.
                let (IpAddr::V4(s), IpAddr::V4(d)) = (client, server) else { unreachable!() };
                let l4 = segment(client, server, Header::Udp { src_port: port, dst_port: 7000 }, 200);
                b.push(client, server, protocol::UDP, ipv4(s, d, protocol::UDP, 0x4000, &[0x94, 4, 0, 0], &l4));
            }
            _ => b.tcp_conversation(client, server, port, 1, 20),
        }
    }
    for j in 0..24u16 {
        let client = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, j + 1));
        let server = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, j % 3 + 1));
        let port = 30_000 + j;
        match j % 4 {
            0 => b.tcp_conversation(client, server, port, 2, 600 + usize::from(j) * 20),
            1 => {
                for _ in 0..3 {
                    b.transport(client, server, Header::Udp { src_port: port, dst_port: 443 }, 1200);
                }
            }
            2 => {
                for seq in 0..2 {
                    b.echo(client, server, false, seq, 32);
                    b.echo(server, client, true, seq, 32);
                }
            }
            _ if j % 8 == 3 => {
                // A hop-by-hop header (RFC 8200 section 4.3) with one PadN option before UDP.
                let (IpAddr::V6(s), IpAddr::V6(d)) = (client, server) else { unreachable!() };
                let mut p = vec![protocol::UDP, 0, 1, 4, 0, 0, 0, 0];
                p.extend(segment(client, server, Header::Udp { src_port: port, dst_port: 9000 }, 300));
                b.push(client, server, protocol::UDP, ipv6(s, d, protocol::HOP_BY_HOP, &p));
            }
            _ => b.fragmented_udp(client, server, port, 1600, 1448),
        }
    }
    let expected = b.expected.clone();
    for _ in 0..TRAILER {
        let h = Header::Udp { src_port: 9, dst_port: 9 };
        b.transport(TRAILER_SRC.into(), TRAILER_DST.into(), h, 0);
    }

    let path = dir.join("flows.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap(), LinkType::ETHERNET, 65535).unwrap();
    let base = 1_700_000_000u64 * 1_000_000_000;
    for (n, frame) in b.frames.iter().enumerate() {
        w.write_packet(base + n as u64 * 1_000_000, frame).unwrap();
    }
    w.into_inner().unwrap();
    Capture { path, expected }
}

// ---------------------------------------------------------------------------------------------
// The daemons

/// A pmacct daemon started in a process group of its own (it forks a process per plugin). If
/// it is still running when dropped, every process of its group is killed by PID and the
/// daemon reaped.
struct Daemon {
    name: &'static str,
    child: Child,
    reaped: bool,
    log: PathBuf,
}

impl Daemon {
    fn start(name: &'static str, program: &Path, config: &Path, log: PathBuf) -> Daemon {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .arg("-f")
            .arg(config)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon { name, child, reaped: false, log }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().unwrap();
        self.reaped |= status.is_some();
        status
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit within {timeout:?}:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, which pmacct daemons take as "flush and stop" (they ignore SIGTERM).
    fn interrupt(&self) {
        assert!(Command::new("kill").args(["-INT", &self.pid()]).status().unwrap().success());
    }
}

/// Whether a pmacct daemon stopped as asked. Stopping, it signals its plugins and waits for
/// them; when a plugin's exit is noticed first, it exits 1 instead of 0, saying so.
fn stopped(status: ExitStatus, log: &str) -> bool {
    status.success() || (status.code() == Some(1) && log.contains("no more plugins active. Shutting down."))
}

/// The PIDs of the processes in process group `group`.
fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // "pid (comm) state ppid pgrp ...": the command may hold spaces and parentheses.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
            fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(group)
        })
        .collect()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // Not reaped yet, so the group's ID is still ours.
        for pid in group_members(self.child.id()) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line of `/proc/net/udp` for a socket bound to 127.0.0.1:`port`.
fn udp_socket_line(port: u16) -> Option<String> {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap()
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
        .map(str::to_owned)
}

const PIPE: &str = "plugin_pipe_size: 268435456\nplugin_buffer_size: 65536\n";

/// Starts sfacctd on 127.0.0.1:`port` with the print plugin writing `csv`.
fn start_sfacctd(sfacctd: &Path, dir: &Path, port: u16, csv: &Path, renormalize: bool) -> Daemon {
    let config = dir.join("sfacctd.conf");
    let text = format!(
        "daemonize: false\n\
         sfacctd_ip: 127.0.0.1\n\
         sfacctd_port: {port}\n\
         sfacctd_renormalize: {renormalize}\n\
         plugins: print[totals]\n\
         aggregate[totals]: src_host, dst_host, proto\n\
         print_output[totals]: csv\n\
         print_output_file[totals]: {csv}\n\
         print_output_file_append[totals]: true\n\
         print_num_protos[totals]: true\n\
         print_refresh_time[totals]: 3600\n\
         {PIPE}",
        csv = csv.display()
    );
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start("sfacctd", sfacctd, &config, dir.join("sfacctd.log"));
    // Listening once its socket shows in /proc/net/udp (binding the port to find out could
    // steal it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while udp_socket_line(port).is_none() {
        if let Some(status) = daemon.exited() {
            panic!("sfacctd exited ({status}):\n{}", daemon.log());
        }
        assert!(Instant::now() < deadline, "sfacctd did not bind port {port}:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// Runs pmacctd over the capture with the sfprobe plugin sending to a socket of the test,
/// forwards each datagram to sfacctd on `sfacctd_port`, and returns them all once pmacctd has
/// exited and its socket gone quiet.
fn run_probe(pmacctd: &Path, dir: &Path, capture: &Path, sampling: &str, sfacctd_port: u16) -> Vec<Vec<u8>> {
    let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
    relay.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let config = dir.join("pmacctd.conf");
    let text = format!(
        "daemonize: false\n\
         pcap_savefile: {capture}\n\
         {sampling}\n\
         plugins: sfprobe[probe]\n\
         sfprobe_receiver[probe]: 127.0.0.1:{relay}\n\
         sfprobe_agentip[probe]: 127.0.0.1\n\
         sfprobe_agentsubid[probe]: 7\n\
         {PIPE}",
        capture = capture.display(),
        relay = relay.local_addr().unwrap().port(),
    );
    std::fs::write(&config, text).unwrap();
    let mut probe = Daemon::start("pmacctd", pmacctd, &config, dir.join("pmacctd.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut exited = false;
    loop {
        match relay.recv(&mut buf) {
            Ok(n) => {
                datagrams.push(buf[..n].to_vec());
                relay.send_to(&buf[..n], ("127.0.0.1", sfacctd_port)).unwrap();
            }
            // Drained after exit: one more quiet timeout after pmacctd ended.
            Err(_) if exited => break,
            Err(_) => {}
        }
        if !exited {
            if let Some(status) = probe.exited() {
                assert!(stopped(status, &probe.log()), "pmacctd failed ({status}):\n{}", probe.log());
                exited = true;
            }
        }
        assert!(Instant::now() < deadline, "pmacctd did not finish within 30 s:\n{}", probe.log());
    }
    datagrams
}

/// sfacctd's CSV: `SRC_IP,DST_IP,PROTOCOL,PACKETS,BYTES`, the title once, and rows of one key
/// once per purge.
fn read_sfacctd_csv(path: &Path) -> ByKey {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = ByKey::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("SRC_IP")) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        assert_eq!(f.len(), 5, "unexpected sfacctd row: {line}");
        let key = (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap());
        rows.entry(key).or_default().add(f[3].parse().unwrap(), f[4].parse().unwrap());
    }
    rows
}

/// What bawaba made of the datagrams: its records' packets and bytes per key, as sampled and
/// scaled by each record's sampling rate.
struct Decoded {
    sampled: ByKey,
    scaled: ByKey,
    records: Vec<FlowRecord>,
}

/// Decodes the datagrams with bawaba; every one must be a clean sFlow v5 datagram from the
/// probe's agent, in sequence.
fn decode_all(datagrams: &[Vec<u8>]) -> Decoded {
    let exporter: IpAddr = "127.0.0.1".parse().unwrap();
    let mut cache = TemplateCache::new();
    let mut records = Vec::new();
    let mut sequences = Vec::new();
    for d in datagrams {
        let summary = decode(exporter, d, &mut cache, &mut |r: &FlowRecord| records.push(*r)).unwrap();
        assert_eq!(summary.protocol, FlowProtocol::SflowV5);
        assert_eq!((summary.agent, summary.observation_domain), (Some(exporter), 7), "{summary:?}");
        assert_eq!((summary.problems, summary.skipped), (0, 0), "{summary:?}");
        sequences.push(summary.sequence);
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=datagrams.len() as u32).collect::<Vec<_>>(), "datagrams lost or repeated");
    let (mut sampled, mut scaled) = (ByKey::new(), ByKey::new());
    for r in &records {
        let rate = u64::from(r.sampling.rate.expect("sfprobe says its sampling rate"));
        sampled.entry((r.src, r.dst, r.protocol)).or_default().add(r.packets, r.bytes);
        scaled.entry((r.src, r.dst, r.protocol)).or_default().add(r.packets * rate, r.bytes * rate);
    }
    Decoded { sampled, scaled, records }
}

fn without_trailer(keys: &ByKey) -> ByKey {
    keys.iter().filter(|(k, _)| !is_trailer(k)).map(|(k, c)| (*k, *c)).collect()
}

/// `sampling` is pmacctd's sampling line, `rate` the rate the probe then reports.
fn interop(name: &str, sampling: &str, rate: u32) {
    let Some(tools) = require_tools(name, &["pmacctd", "sfacctd"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let capture = build_capture(dir.path());
    // pmacctd stops its sfprobe plugin when it reaches the end of the file. On a busy machine the
    // plugin can still hold samples then, and they are never sent (seen once in CI: 60% of the
    // capture missing, every datagram sent accounted for). That is the probe's loss, not
    // bawaba's: the probe runs again, up to three times in all, when it sent fewer samples than
    // the capture has packets. The checks below stay exact on the run that is kept.
    let expected_packets: u64 = capture.expected.values().map(|c| c.packets).sum();
    let mut attempt = 0;
    let (theirs, ours, datagrams) = loop {
        attempt += 1;
        let port = free_port();
        let csv = dir.path().join(format!("sfacctd-{attempt}.csv"));
        let mut collector = start_sfacctd(&tools[1], dir.path(), port, &csv, rate > 1);
        let datagrams = run_probe(&tools[0], dir.path(), &capture.path, sampling, port);

        // Give sfacctd a moment for the last datagrams, check its socket dropped none, and stop it.
        std::thread::sleep(Duration::from_millis(200));
        let line = udp_socket_line(port).expect("sfacctd's socket");
        let drops = line.split_whitespace().last().unwrap();
        assert_eq!(drops, "0", "sfacctd's socket dropped datagrams: {line}");
        collector.interrupt();
        let status = collector.wait(Duration::from_secs(15));
        assert!(stopped(status, &collector.log()), "sfacctd failed ({status}):\n{}", collector.log());
        let theirs = read_sfacctd_csv(&csv);
        let ours = decode_all(&datagrams);
        let sent: u64 = without_trailer(&ours.sampled).values().map(|c| c.packets).sum();
        if sent < expected_packets && attempt < 3 {
            eprintln!("{name}: pmacctd sent {sent} of {expected_packets} packets; running the probe again");
            continue;
        }
        break (theirs, ours, datagrams.len());
    };
    for r in &ours.records {
        assert_eq!((r.sampling.rate, r.sampling.source), (Some(rate), SamplingSource::PacketHeader), "{r:?}");
        // sfprobe says "unknown" (0x3fffffff) for both interfaces: 0 in a FlowRecord.
        assert_eq!((r.packets, r.input_ifindex, r.output_ifindex), (1, 0, 0), "{r:?}");
    }

    // bawaba vs the capture: every packet but the trailer's, with its IP length.
    assert_eq!(without_trailer(&ours.sampled), capture.expected, "bawaba's packets and bytes per key vs the capture");
    let protocols = by_protocol(&capture.expected);
    assert_eq!(protocols.keys().copied().collect::<Vec<u8>>(), [1, 6, 17, 58]);
    assert!(capture.expected.keys().any(|k| k.0.is_ipv4()) && capture.expected.keys().any(|k| k.0.is_ipv6()));
    let trailer = ours.sampled.iter().find(|(k, _)| is_trailer(k)).map_or(0, |(_, c)| c.packets);
    assert!(trailer <= TRAILER);

    // sfacctd vs bawaba, on the same datagrams: the same keys, the same packets, and bytes
    // that differ by the Ethernet header and FCS of each packet (times the rate).
    let aligned: ByKey = ours.scaled.iter().map(|(k, c)| (*k, c.with_link_overhead())).collect();
    assert_eq!(theirs, aligned, "sfacctd vs bawaba per key (bawaba's bytes + 18 per packet)");
    let (ours_by_protocol, theirs_by_protocol) = (by_protocol(&ours.scaled), by_protocol(&theirs));
    let aligned_by_protocol: BTreeMap<u8, Counts> =
        ours_by_protocol.iter().map(|(p, c)| (*p, c.with_link_overhead())).collect();
    assert_eq!(theirs_by_protocol, aligned_by_protocol, "sfacctd vs bawaba per protocol");
    eprintln!(
        "{name}: {} datagrams, {} flow samples ({} of {TRAILER} trailer packets sent)\n  \
         bawaba per protocol (IP bytes, x{rate}):   {ours_by_protocol:?}\n  \
         sfacctd per protocol (frame bytes, x{rate}): {theirs_by_protocol:?}",
        datagrams,
        ours.records.len(),
        trailer,
    );
}

#[test]
fn pmacct_sflow_unsampled() {
    interop("pmacct sFlow interop (1 in 1)", "sampling_rate[probe]: 1", 1);
}

#[test]
fn pmacct_sflow_rate_reported() {
    interop("pmacct sFlow interop (rate 16 reported)", "pmacctd_ext_sampling_rate: 16", 16);
}
