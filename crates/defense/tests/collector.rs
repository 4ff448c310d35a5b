//! The collector end to end on loopback: IPFIX from two exporters, NetFlow v5 garbage, and a
//! burst larger than the socket buffer; every record arrives or every loss is counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bawaba_defense::collector::{Collector, CollectorConfig, RecordSink};
use bawaba_flow::export::{ExportFlow, IpfixExporter};
use bawaba_flow::FlowRecord;

#[derive(Default)]
struct Seen {
    records: u64,
    packets: u64,
    sampled: u64,
    exporters: std::collections::BTreeSet<IpAddr>,
    ticks: u64,
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Seen>>);

impl RecordSink for Sink {
    fn record(&mut self, exporter: IpAddr, record: &FlowRecord, _now_ms: u64) {
        let mut s = self.0.lock().unwrap();
        s.records += 1;
        s.packets += record.packets;
        if record.sampling.rate == Some(100) {
            s.sampled += 1;
        }
        s.exporters.insert(exporter);
    }
    fn tick(&mut self, _now_ms: u64) {
        self.0.lock().unwrap().ticks += 1;
    }
}

fn flows(n: u16) -> Vec<ExportFlow> {
    (0..n)
        .map(|i| ExportFlow {
            src: format!("198.19.0.{}", i % 250 + 1).parse().unwrap(),
            dst: "198.18.5.5".parse().unwrap(),
            src_port: 53,
            dst_port: 1024 + i,
            protocol: 17,
            tcp_flags: 0,
            packets: 2,
            bytes: 1200,
            start_ms: 1_800_000_000_000,
            end_ms: 1_800_000_000_100,
        })
        .collect()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn records_from_two_exporters_and_counted_errors() {
    let sink = Sink::default();
    let config =
        CollectorConfig { enabled: true, listen: vec!["127.0.0.1:0".parse().unwrap()], ..CollectorConfig::default() };
    let collector = Collector::start(&config, sink.clone()).unwrap();
    let to = collector.local_addrs()[0];
    let stats = collector.stats();

    // Two exporters (two source sockets: 127.0.0.1 and 127.0.0.2), one sampled 1:100.
    let mut sent = 0u64;
    for (i, source) in ["127.0.0.1:0", "127.0.0.2:0"].into_iter().enumerate() {
        let socket = UdpSocket::bind(source).unwrap();
        let mut exporter = IpfixExporter::new(i as u32, (i == 1).then_some(100));
        let mut buf = Vec::new();
        exporter.templates(&mut buf, 1_800_000_000);
        socket.send_to(&buf, to).unwrap();
        for _ in 0..50 {
            buf.clear();
            exporter.data(&mut buf, 1_800_000_000, &flows(30));
            socket.send_to(&buf, to).unwrap();
            sent += 30;
        }
    }
    // Garbage: counted as decode errors, not fatal.
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    junk.send_to(&[0, 5, 0, 99, 1, 2, 3], to).unwrap();
    junk.send_to(b"not a flow datagram at all", to).unwrap();

    wait_for("all records decoded", || sink.0.lock().unwrap().records == sent);
    wait_for("both errors counted", || stats.errors.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>() >= 2);
    let seen = sink.0.lock().unwrap();
    assert_eq!(seen.packets, sent * 2);
    assert_eq!(seen.sampled, 1500, "exporter 2's sampling rate from its options template");
    assert_eq!(seen.exporters.len(), 2);
    drop(seen);
    assert_eq!(stats.records.load(Ordering::Relaxed), sent);
    assert_eq!(stats.unknown_sampling.load(Ordering::Relaxed), 1500, "exporter 1 announces no sampling");
    assert_eq!(stats.socket_drops.load(Ordering::Relaxed), 0);
    assert_eq!(stats.datagrams.load(Ordering::Relaxed), 2 + 100 + 2);
    let mut metrics = String::new();
    stats.render_prometheus(&mut metrics);
    assert!(metrics.contains("bawaba_flow_records_total 3000"), "{metrics}");
    collector.stop();
    assert!(sink.0.lock().unwrap().ticks >= 1);
}

/// A sink that holds the collector up: the socket buffer fills, the kernel drops the excess,
/// and the collector counts those drops; nothing is lost without a count.
#[test]
fn a_slow_decoder_costs_counted_socket_drops() {
    struct Slow(Arc<Mutex<u64>>);
    impl RecordSink for Slow {
        fn record(&mut self, _: IpAddr, _: &FlowRecord, _: u64) {
            std::thread::sleep(Duration::from_micros(200));
            *self.0.lock().unwrap() += 1;
        }
        fn tick(&mut self, _: u64) {}
    }
    let count = Arc::new(Mutex::new(0));
    let config = CollectorConfig {
        enabled: true,
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        // A few datagrams' worth (the kernel doubles it and counts its own overhead).
        socket_buffer_bytes: 16_384,
    };
    let collector = Collector::start(&config, Slow(Arc::clone(&count))).unwrap();
    let to = collector.local_addrs()[0];
    let stats = collector.stats();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut exporter = IpfixExporter::new(1, None);
    let mut buf = Vec::new();
    exporter.templates(&mut buf, 1_800_000_000);
    socket.send_to(&buf, to).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..500 {
        buf.clear();
        exporter.data(&mut buf, 1_800_000_000, &flows(10));
        socket.send_to(&buf, to).unwrap();
    }
    let records = || *count.lock().unwrap();
    let read = || stats.datagrams.load(Ordering::Relaxed);
    let drops = || stats.socket_drops.load(Ordering::Relaxed);
    wait_for("every datagram read or counted as dropped", || read() + drops() == 501);
    assert!(drops() > 0, "a 16 KiB buffer must overflow under 500 datagrams");
    let read = read();
    assert_eq!(records(), (read - 1) * 10, "every datagram read was decoded (the first is templates)");
    collector.stop();
}
