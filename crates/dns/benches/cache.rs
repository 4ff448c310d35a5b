//! The answer cache on the DNS server's hit path: for each query, parse it, key it and take the
//! cached answer (id and TTLs rewritten), as `Resolver::fast_path` does before policy and
//! sending. 20,000 cached names, queried in turn.
//!
//! `cargo bench -p bawaba-dns --bench cache`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bawaba_dns::cache::{Cache, CacheKey, CacheLimits};
use bawaba_wire::dns::{build_query, Builder, Message, Rcode, Section, Type};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const NAMES: usize = 20_000;

fn benches(c: &mut Criterion) {
    let limits = CacheLimits {
        max_entries: 100_000,
        max_ttl: Duration::from_secs(86_400),
        max_negative_ttl: Duration::from_secs(3_600),
        stale_for: Duration::ZERO,
    };
    let cache = Cache::new(limits);
    let now = Instant::now();
    let queries: Vec<Vec<u8>> = (0..NAMES)
        .map(|i| {
            let name = format!("host{i}.zone{}.example.test", i % 5);
            let query = build_query(1, &name, Type::A, true, None);
            let parsed = Message::parse(&query).expect("built queries parse");
            let mut answer = Builder::response_to(&parsed, Rcode::NOERROR);
            answer.push_qname_record(Section::Answer, Type::A, 3600, &[198, 18, (i >> 8) as u8, i as u8]);
            let answer = answer.finish();
            let key = CacheKey::of(&parsed, true, false).expect("a question");
            cache.insert(key, &Message::parse(&answer).expect("built answers parse"), now);
            query
        })
        .collect();

    let mut group = c.benchmark_group("cache_hit");
    group.throughput(Throughput::Elements(NAMES as u64));
    // As the server does it: the key and the answer written into buffers kept across queries.
    let (mut key, mut answer) = (Vec::new(), Vec::new());
    group.bench_function("parse_key_get", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for (i, query) in queries.iter().enumerate() {
                let parsed = Message::parse(black_box(query)).expect("built queries parse");
                assert!(CacheKey::write(&parsed, true, false, &mut key), "a question");
                cache.get_into(&key[..], i as u16, now, false, &mut answer).expect("every name is cached");
                bytes += answer.len();
            }
            bytes
        })
    });
    // An owned key and a new answer per query, as the server did before 29 Nov 2026 except that
    // the key then also shrank its `Vec` into a `Box` (a miss still makes an owned key, which it
    // forwards).
    group.bench_function("parse_owned_key_get", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for (i, query) in queries.iter().enumerate() {
                let parsed = Message::parse(black_box(query)).expect("built queries parse");
                let key = CacheKey::of(&parsed, true, false).expect("a question");
                let hit = cache.get(&key, i as u16, now, false).expect("every name is cached");
                bytes += hit.bytes.len();
            }
            bytes
        })
    });
    group.finish();
}

criterion_group!(name = cache; config = Criterion::default().sample_size(20); targets = benches);
criterion_main!(cache);
