//! Decoding speed of IPFIX data records: a typical 20-field template (addresses, ports,
//! protocol, flags, counters, interfaces, millisecond timestamps, prefix lengths, AS numbers,
//! next hop, direction, end reason; 71 bytes a record), 30 records per message, decoded with a
//! warm template cache and a visitor that sums the bytes. Criterion reports records per second.
//!
//! Run: `cargo bench -p bawaba-flow --bench decode`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;

use bawaba_flow::{decode, FlowRecord, TemplateCache};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const RECORDS: usize = 30;

/// (information element, length) of the template.
const FIELDS: [(u16, u16); 20] = [
    (8, 4),   // sourceIPv4Address
    (12, 4),  // destinationIPv4Address
    (7, 2),   // sourceTransportPort
    (11, 2),  // destinationTransportPort
    (4, 1),   // protocolIdentifier
    (6, 1),   // tcpControlBits
    (5, 1),   // ipClassOfService
    (1, 8),   // octetDeltaCount
    (2, 8),   // packetDeltaCount
    (10, 4),  // ingressInterface
    (14, 4),  // egressInterface
    (152, 8), // flowStartMilliseconds
    (153, 8), // flowEndMilliseconds
    (9, 1),   // sourceIPv4PrefixLength
    (13, 1),  // destinationIPv4PrefixLength
    (16, 4),  // bgpSourceAsNumber
    (17, 4),  // bgpDestinationAsNumber
    (15, 4),  // ipNextHopIPv4Address
    (61, 1),  // flowDirection
    (136, 1), // flowEndReason
];

fn set(out: &mut Vec<u8>, id: u16, body: &[u8]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn message(sets: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 10];
    m.extend_from_slice(&((16 + sets.len()) as u16).to_be_bytes());
    m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    m.extend_from_slice(sets);
    m
}

fn datagrams() -> (Vec<u8>, Vec<u8>) {
    let mut tpl = vec![1, 0];
    tpl.extend_from_slice(&(FIELDS.len() as u16).to_be_bytes());
    for (ie, len) in FIELDS {
        tpl.extend_from_slice(&ie.to_be_bytes());
        tpl.extend_from_slice(&len.to_be_bytes());
    }
    let mut sets = Vec::new();
    set(&mut sets, 2, &tpl);
    let template_msg = message(&sets);

    let mut records = Vec::new();
    for i in 0..RECORDS as u32 {
        let start = records.len();
        records.extend_from_slice(&[198, 18, (i >> 8) as u8, i as u8, 198, 19, 0, 1]);
        records.extend_from_slice(&(40000 + i as u16).to_be_bytes());
        records.extend_from_slice(&443u16.to_be_bytes());
        records.extend_from_slice(&[6, 0x1b, 0]);
        records.extend_from_slice(&(1500u64 * u64::from(i + 1)).to_be_bytes());
        records.extend_from_slice(&u64::from(i + 1).to_be_bytes());
        records.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 4]);
        records.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        records.extend_from_slice(&1_700_000_001_000u64.to_be_bytes());
        records.extend_from_slice(&[24, 16, 0, 0, 0xfd, 0xe8, 0, 0, 0xfd, 0xe9, 198, 18, 0, 254, 0, 3]);
        assert_eq!(records.len() - start, 71);
    }
    let mut sets = Vec::new();
    set(&mut sets, 256, &records);
    (template_msg, message(&sets))
}

fn ipfix(c: &mut Criterion) {
    let exporter: IpAddr = "192.0.2.1".parse().unwrap();
    let (template, data) = datagrams();
    let mut cache = TemplateCache::new();
    decode(exporter, &template, &mut cache, &mut |_: &FlowRecord| {}).unwrap();
    let mut bytes = 0u64;
    let summary = decode(exporter, &data, &mut cache, &mut |r: &FlowRecord| bytes += r.bytes).unwrap();
    assert_eq!(summary.flows as usize, RECORDS);

    let mut group = c.benchmark_group("ipfix");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("decode_20_fields_x30", |b| {
        b.iter(|| {
            let mut bytes = 0u64;
            let s = decode(exporter, black_box(&data), &mut cache, &mut |r: &FlowRecord| bytes += r.bytes).unwrap();
            black_box((s, bytes))
        })
    });
    group.finish();
}

criterion_group!(benches, ipfix);
criterion_main!(benches);
