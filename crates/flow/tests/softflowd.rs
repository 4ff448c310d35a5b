//! Interop with a real exporter and a real collector. The test writes a capture of ~220 flows
//! (TCP conversations, one-way and two-way UDP, ICMP echo, in 198.18.0.0/15 plus a few IPv6
//! ones), has softflowd export it as NetFlow v5, v9 and IPFIX to a UDP socket of the test, and
//! decodes the datagrams with bawaba:
//!
//! - the per-protocol totals (flow records, packets, bytes) must equal what went into the
//!   capture, and the record and datagram counts what softflowd says it sent;
//! - replayed to nfdump's `nfcapd`, the same datagrams must give the same flows, one by one, in
//!   `nfdump -o csv` as in bawaba's decode.
//!
//! softflowd 1.1.0 reading a capture (`-r`) hangs unless its control socket is off (`-c none`);
//! it flushes every flow at the end of the capture and exits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bawaba_flow::{decode, FlowProtocol, FlowRecord, SamplingSource, TemplateCache};
use bawaba_testkit::{free_port, require_tools, ChildGuard};
use bawaba_wire::build::{ethernet_frame, Header};
use bawaba_wire::packet::{internet_checksum, tcp_flags};
use bawaba_wire::pcap::{LinkType, PcapWriter};

const V4_FLOWS: u32 = 200;
const V6_FLOWS: u32 = 24;

/// Flow records, packets and bytes (of IP packets, as NetFlow counts them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    flows: u64,
    packets: u64,
    bytes: u64,
}

/// Per IP protocol number.
type ByProtocol = BTreeMap<u8, Totals>;

/// One direction of a flow: what NetFlow exports one record for.
type Key = (IpAddr, IpAddr, u16, u16, u8);

struct Packet {
    nanos: u64,
    frame: Vec<u8>,
    key: Key,
    ip_len: u64,
}

struct Capture {
    path: PathBuf,
    /// IPv4 only (NetFlow v5 cannot carry IPv6; softflowd then ignores it).
    v4: ByProtocol,
    /// Everything.
    all: ByProtocol,
}

const MAC_CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_SERVER: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn tcp_or_udp(nanos: u64, src: IpAddr, dst: IpAddr, header: Header, payload_len: usize) -> Packet {
    let mut frame = Vec::new();
    ethernet_frame(&mut frame, MAC_CLIENT, MAC_SERVER, src, dst, header, &vec![0x61; payload_len]);
    let (proto, sp, dp) = match header {
        Header::Tcp { src_port, dst_port, .. } => (6, src_port, dst_port),
        Header::Udp { src_port, dst_port } => (17, src_port, dst_port),
    };
    Packet { nanos, ip_len: frame.len() as u64 - 14, frame, key: (src, dst, sp, dp, proto) }
}

/// An ICMP echo request (RFC 792) in an IPv4 packet in an Ethernet frame.
fn icmp_echo(nanos: u64, src: Ipv4Addr, dst: Ipv4Addr, seq: u16, payload_len: usize) -> Packet {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend(std::iter::repeat_n(0x62, payload_len));
    let sum = internet_checksum(&icmp, 0);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = internet_checksum(&ip, 0);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = [&MAC_SERVER[..], &MAC_CLIENT[..], &[0x08, 0x00]].concat();
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&icmp);
    Packet { nanos, ip_len: u64::from(total), frame, key: (src.into(), dst.into(), 0, 0, 1) }
}

/// A TCP conversation: handshake, `rounds` request/response pairs, FIN exchange.
fn tcp_conversation(
    out: &mut Vec<Packet>,
    t0: u64,
    client: IpAddr,
    server: IpAddr,
    port: u16,
    rounds: u32,
    size: usize,
) {
    let mut t = t0;
    let mut next = |out: &mut Vec<Packet>, to_server: bool, flags: u8, len: usize| {
        let (src, dst, sp, dp) = if to_server { (client, server, port, 443) } else { (server, client, 443, port) };
        let h = Header::Tcp { src_port: sp, dst_port: dp, seq: 1, ack: 1, flags, window: 65535 };
        out.push(tcp_or_udp(t, src, dst, h, len));
        t += 1_000_000;
    };
    next(out, true, tcp_flags::SYN, 0);
    next(out, false, tcp_flags::SYN | tcp_flags::ACK, 0);
    next(out, true, tcp_flags::ACK, 0);
    for r in 0..rounds {
        next(out, true, tcp_flags::PSH | tcp_flags::ACK, 80 + r as usize);
        next(out, false, tcp_flags::PSH | tcp_flags::ACK, size);
    }
    next(out, true, tcp_flags::FIN | tcp_flags::ACK, 0);
    next(out, false, tcp_flags::FIN | tcp_flags::ACK, 0);
    next(out, true, tcp_flags::ACK, 0);
}

fn build_capture(dir: &Path) -> Capture {
    let base = 1_700_000_000u64 * 1_000_000_000;
    let mut packets = Vec::new();
    for i in 0..V4_FLOWS {
        let t0 = base + u64::from(i) * 20_000_000;
        let client = Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8);
        let server = Ipv4Addr::new(198, 19, (i % 7) as u8, (i % 50 + 1) as u8);
        let port = 20_000 + i as u16;
        match i % 4 {
            0 => tcp_conversation(
                &mut packets,
                t0,
                client.into(),
                server.into(),
                port,
                1 + i % 5,
                100 + (i as usize * 37) % 1300,
            ),
            1 => {
                for k in 0..1 + i % 6 {
                    let h = Header::Udp { src_port: port, dst_port: 5000 + (i % 3) as u16 };
                    packets.push(tcp_or_udp(
                        t0 + u64::from(k) * 1_000_000,
                        client.into(),
                        server.into(),
                        h,
                        50 + (i as usize * 13) % 500,
                    ));
                }
            }
            2 => {
                for k in 0..1 + i % 4 {
                    packets.push(icmp_echo(t0 + u64::from(k) * 1_000_000, client, server, k as u16, 56));
                }
            }
            _ => {
                let q = Header::Udp { src_port: port, dst_port: 53 };
                let r = Header::Udp { src_port: 53, dst_port: port };
                packets.push(tcp_or_udp(t0, client.into(), server.into(), q, 40));
                packets.push(tcp_or_udp(t0 + 500_000, server.into(), client.into(), r, 120 + (i as usize % 200)));
            }
        }
    }
    for j in 0..V6_FLOWS {
        let t0 = base + u64::from(j) * 30_000_000 + 7_000_000;
        let client = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, j as u16 + 1));
        let server = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1));
        let port = 30_000 + j as u16;
        if j % 2 == 0 {
            tcp_conversation(&mut packets, t0, client, server, port, 2, 600);
        } else {
            let h = Header::Udp { src_port: port, dst_port: 443 };
            for k in 0..3 {
                packets.push(tcp_or_udp(t0 + k * 1_000_000, client, server, h, 1200));
            }
        }
    }
    packets.sort_by_key(|p| p.nanos);

    let path = dir.join("flows.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap(), LinkType::ETHERNET, 65535).unwrap();
    let mut per_key: HashMap<Key, (u64, u64)> = HashMap::new();
    for p in &packets {
        w.write_packet(p.nanos, &p.frame).unwrap();
        let e = per_key.entry(p.key).or_default();
        e.0 += 1;
        e.1 += p.ip_len;
    }
    w.into_inner().unwrap();
    let (mut v4, mut all) = (ByProtocol::new(), ByProtocol::new());
    for (key, (packets, bytes)) in per_key {
        let mut totals = vec![&mut all];
        if key.0.is_ipv4() {
            totals.push(&mut v4);
        }
        for t in totals {
            let e = t.entry(key.4).or_default();
            e.flows += 1;
            e.packets += packets;
            e.bytes += bytes;
        }
    }
    Capture { path, v4, all }
}

/// What softflowd says it sent: "Flows exported: F (R records) in P packets (0 failures)".
#[derive(Debug)]
struct Exported {
    records: u64,
    packets: u64,
}

/// Runs softflowd over the capture, exporting `version` to a socket of the test, and returns
/// the datagrams received until it exits.
fn run_softflowd(softflowd: &Path, capture: &Path, dir: &Path, version: &str) -> (Vec<Vec<u8>>, Exported) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let target = format!("127.0.0.1:{}", socket.local_addr().unwrap().port());
    let pidfile = dir.join(format!("softflowd-{version}.pid"));
    let out_path = dir.join(format!("softflowd-{version}.out"));
    let out = std::fs::File::create(&out_path).unwrap();
    let child = Command::new(softflowd)
        .arg("-r")
        .arg(capture)
        .args(["-n", &target, "-v", version, "-c", "none", "-d", "-p"])
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start softflowd");
    let mut child = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut exited_at = None;
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => datagrams.push(buf[..n].to_vec()),
            Err(_) => {
                // Drained after exit: one more quiet timeout after softflowd ended.
                if exited_at.is_some() {
                    break;
                }
            }
        }
        if exited_at.is_none() {
            if let Some(status) = child.0.try_wait().unwrap() {
                assert!(status.success(), "softflowd failed: {}", std::fs::read_to_string(&out_path).unwrap());
                exited_at = Some(Instant::now());
            }
        }
        assert!(Instant::now() < deadline, "softflowd -v {version} did not finish within 60 s");
    }
    let text = std::fs::read_to_string(&out_path).unwrap();
    let line =
        text.lines().find(|l| l.starts_with("Flows exported:")).unwrap_or_else(|| panic!("no summary in:\n{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |w: &str| w.trim_start_matches('(').parse::<u64>().unwrap();
    let exported = Exported { records: number(words[3]), packets: number(words[6]) };
    (datagrams, exported)
}

/// Decodes the datagrams with bawaba; every one must decode cleanly.
fn decode_all(datagrams: &[Vec<u8>], protocol: FlowProtocol) -> Vec<FlowRecord> {
    let exporter: IpAddr = "127.0.0.1".parse().unwrap();
    let mut cache = TemplateCache::new();
    let mut records = Vec::new();
    for d in datagrams {
        let summary = decode(exporter, d, &mut cache, &mut |r: &FlowRecord| records.push(*r)).unwrap();
        assert_eq!(summary.protocol, protocol);
        assert_eq!((summary.problems, summary.sets_without_template), (0, 0), "{summary:?}");
    }
    records
}

fn totals(records: &[FlowRecord]) -> ByProtocol {
    let mut t = ByProtocol::new();
    for r in records {
        let e = t.entry(r.protocol).or_default();
        e.flows += 1;
        e.packets += r.packets;
        e.bytes += r.bytes;
    }
    t
}

/// A flow as both collectors can print it: addresses, ports (TCP/UDP only), protocol,
/// packets, bytes.
type Row = (IpAddr, IpAddr, u16, u16, u8, u64, u64);

fn rows(records: &[FlowRecord]) -> Vec<Row> {
    let mut rows: Vec<Row> = records
        .iter()
        .map(|r| {
            let ports = if matches!(r.protocol, 6 | 17) { (r.src_port, r.dst_port) } else { (0, 0) };
            (r.src, r.dst, ports.0, ports.1, r.protocol, r.packets, r.bytes)
        })
        .collect();
    rows.sort();
    rows
}

/// Replays the datagrams to nfcapd and reads its flows back with `nfdump -o csv`.
fn nfdump_rows(nfcapd: &Path, nfdump: &Path, datagrams: &[Vec<u8>], dir: &Path) -> Vec<Row> {
    let flows = dir.join("nfcapd");
    std::fs::create_dir_all(&flows).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("nfcapd.log")).unwrap();
    let child = Command::new(nfcapd)
        .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-t", "3600", "-w"])
        .arg(&flows)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start nfcapd");
    let mut child = ChildGuard(child);
    // nfcapd is listening once its socket shows in /proc/net/udp (binding the port to find
    // out could steal it from nfcapd).
    let local = format!("0100007F:{port:04X}");
    let listening = || {
        std::fs::read_to_string("/proc/net/udp")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening() {
        assert!(Instant::now() < deadline, "nfcapd did not bind port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams {
        sender.send_to(d, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SIGTERM makes nfcapd close its file; the guard's SIGKILL would lose it.
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "nfcapd: {}", std::fs::read_to_string(dir.join("nfcapd.log")).unwrap());

    let out = Command::new(nfdump).arg("-R").arg(&flows).args(["-o", "csv", "-q"]).output().unwrap();
    assert!(out.status.success(), "nfdump: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,...
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            let proto = match f[7] {
                "TCP" => 6,
                "UDP" => 17,
                "ICMP" => 1,
                "ICMP6" => 58,
                other => other.parse().unwrap_or_else(|_| panic!("protocol {other} in {l}")),
            };
            let ports = if matches!(proto, 6 | 17) { (f[5].parse().unwrap(), f[6].parse().unwrap()) } else { (0, 0) };
            (
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                ports.0,
                ports.1,
                proto,
                f[11].parse().unwrap(),
                f[12].parse().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn interop(name: &str, version: &str, protocol: FlowProtocol) {
    let Some(tools) = require_tools(name, &["softflowd"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let capture = build_capture(dir.path());
    let (datagrams, exported) = run_softflowd(&tools[0], &capture.path, dir.path(), version);
    assert_eq!(datagrams.len() as u64, exported.packets, "datagrams lost between softflowd and the test");

    let records = decode_all(&datagrams, protocol);
    assert_eq!(records.len() as u64, exported.records);
    let expected = if protocol == FlowProtocol::NetflowV5 { &capture.v4 } else { &capture.all };
    assert_eq!(&totals(&records), expected, "bawaba's totals per protocol vs the capture");
    assert_eq!(expected.keys().copied().collect::<Vec<u8>>(), [1, 6, 17]);
    for r in &records {
        if protocol == FlowProtocol::NetflowV5 {
            // softflowd leaves the v5 sampling field 0: not known, so not assumed.
            assert_eq!(r.sampling.rate, None);
        } else {
            // softflowd's options data says it samples 1 in 1.
            assert_eq!((r.sampling.rate, r.sampling.source), (Some(1), SamplingSource::OptionsTemplate));
        }
        assert!(r.start_ms.is_some() && r.end_ms >= r.start_ms, "{r:?}");
    }
    eprintln!("{name}: {} datagrams, {} records: {:?}", datagrams.len(), records.len(), totals(&records));

    let Some(tools) = require_tools(&format!("{name} (nfdump differential)"), &["nfcapd", "nfdump"]) else { return };
    let theirs = nfdump_rows(&tools[0], &tools[1], &datagrams, dir.path());
    let ours = rows(&records);
    assert_eq!(theirs.len(), ours.len(), "flow count: nfdump vs bawaba");
    assert_eq!(theirs, ours, "flows: nfdump vs bawaba");
    eprintln!("{name}: nfdump agrees on all {} flows", theirs.len());
}

#[test]
fn softflowd_netflow_v5() {
    interop("softflowd NetFlow v5 interop", "5", FlowProtocol::NetflowV5);
}

#[test]
fn softflowd_netflow_v9() {
    interop("softflowd NetFlow v9 interop", "9", FlowProtocol::NetflowV9);
}

#[test]
fn softflowd_ipfix() {
    interop("softflowd IPFIX interop", "10", FlowProtocol::Ipfix);
}
