//! Speed of `Detector::record`: 10,000 protected hosts in one /16 receiving records from
//! random sources (TCP, UDP and DNS replies, sampled 1 in 100), with the default thresholds
//! and baseline. `record` counts within one window; `record+tick` also closes a window every
//! 100,000 records (every host evaluated, baselines learned, sketches reset). Criterion
//! reports records per second.
//!
//! Run: `cargo bench -p bawaba-ddos --bench detect`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a panic is the failure report

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bawaba_ddos::config::{DetectorConfig, GroupConfig, Thresholds};
use bawaba_ddos::Detector;
use bawaba_flow::{FlowProtocol, FlowRecord, Sampling, SamplingSource};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const HOSTS: u32 = 10_000;
const BATCH: usize = 100_000;
const T0: u64 = 1_704_067_200_000;

fn records() -> Vec<FlowRecord> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..BATCH)
        .map(|_| {
            let r = next();
            let mut rec = FlowRecord::empty(FlowProtocol::Ipfix, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 0);
            rec.src = IpAddr::V4(Ipv4Addr::from((r >> 32) as u32));
            rec.dst = IpAddr::V4(Ipv4Addr::from(0xc612_0000 + (r as u32 % HOSTS)));
            (rec.protocol, rec.src_port, rec.tcp_flags) = match r % 4 {
                0 => (17, 53, 0),
                1 => (17, (r >> 16) as u16, 0),
                _ => (6, (r >> 16) as u16, 0x18),
            };
            rec.dst_port = 443;
            rec.packets = 1 + (r >> 8) % 8;
            rec.bytes = rec.packets * 600;
            rec.sampling = Sampling::known(100, SamplingSource::OptionsTemplate);
            rec
        })
        .collect()
}

fn detector() -> Detector {
    let config = DetectorConfig {
        groups: vec![GroupConfig {
            name: "isp-a".into(),
            prefixes: vec!["198.18.0.0/16".into()],
            thresholds: Thresholds::default(),
            total: Thresholds { pps: Some(100_000_000), ..Thresholds::default() },
        }],
        max_hosts: 65_536,
        ..DetectorConfig::default()
    };
    Detector::new(&config).unwrap()
}

fn bench(c: &mut Criterion) {
    let records = records();
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(BATCH as u64));

    let mut d = detector();
    for rec in &records {
        d.record(rec, T0);
    }
    group.bench_function("record", |b| {
        b.iter(|| {
            for rec in &records {
                d.record(black_box(rec), T0 + 500);
            }
        })
    });

    let mut d = detector();
    let mut window = 0u64;
    group.bench_function("record+tick", |b| {
        b.iter(|| {
            let now = T0 + window * 1000;
            for rec in &records {
                d.record(black_box(rec), now);
            }
            window += 1;
            black_box(d.tick(now + 1000));
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
