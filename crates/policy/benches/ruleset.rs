//! Benchmarks of the compiled `Ruleset` against the naive baseline, at production scale:
//! 1,000,000 domain rules, 500,000 IPv4 prefixes, 100,000 IPv6 prefixes and a few hundred allow
//! entries, generated deterministically (xorshift64*, fixed seed).
//!
//! Measures compile time, domain lookups (90% misses from a large pool of random names, 10% hits),
//! IPv4 and IPv6 longest-prefix match, each for bawaba and the naive twin, and prints the memory of
//! the compiled structure (`heap_bytes` and the RSS delta around `compile`, also once the freed
//! heap is returned with `malloc_trim`, as `bawaba serve` does) before the timings.
//!
//! Run: `cargo bench -p bawaba-policy --bench ruleset`. `RULESET_BENCH_HIT_PERCENT` (default 10) sets
//! the share of name queries that a rule selects, to measure misses (0) and hits (100) apart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use bawaba_policy::ruleset::naive::NaiveRuleset;
use bawaba_policy::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};

const DOMAIN_RULES: usize = 1_000_000;
const V4_RULES: usize = 500_000;
const V6_RULES: usize = 100_000;
const DOMAIN_ALLOWS: usize = 300;
const V4_ALLOWS: usize = 100;
const V6_ALLOWS: usize = 50;
const ORDERS: usize = 500;
/// Distinct queries per pool: far more than fit in the caches together with the ruleset.
const POOL: usize = 1 << 20;
/// Lookups per timed iteration.
const BATCH: usize = 4096;

/// xorshift64*: small, fast, deterministic; plenty for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const TLDS: &[&str] = &[
    "com", "net", "org", "info", "biz", "io", "xyz", "online", "site", "top", "ru", "de", "uk", "iq", "me", "co", "cc",
    "tv", "app", "shop", "club", "live", "store", "tk", "ml",
];
const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "st", "tr", "pl", "sh",
    "ch", "br", "cr", "gr",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ea"];
const CODAS: &[&str] = &["", "", "", "n", "r", "s", "t", "x", "ck", "ng"];
const WORDS: &[&str] = &[
    "www", "mail", "api", "cdn", "login", "secure", "bank", "pay", "shop", "app", "m", "static", "img", "auth",
    "account", "update", "support", "free", "bet", "stream", "news", "vpn", "proxy", "cloud", "my",
];

/// A label that looks like a real one: a few syllables, digits or a hyphen. Labels below the
/// registered one (`words`) are sometimes a common word such as `www`; registered labels have at
/// least two syllables, so random names rarely hit a rule by chance.
fn label(rng: &mut Rng, out: &mut String, words: bool) {
    if words && rng.chance(30) {
        out.push_str(WORDS[rng.below(WORDS.len())]);
        if rng.chance(30) {
            out.push_str(&rng.below(100).to_string());
        }
        return;
    }
    let syllables = if words { 1 + rng.below(3) } else { 2 + rng.below(2) };
    for _ in 0..syllables {
        out.push_str(ONSETS[rng.below(ONSETS.len())]);
        out.push_str(VOWELS[rng.below(VOWELS.len())]);
        out.push_str(CODAS[rng.below(CODAS.len())]);
    }
    if rng.chance(10) {
        out.push('-');
        out.push_str(ONSETS[rng.below(ONSETS.len())]);
        out.push_str(VOWELS[rng.below(VOWELS.len())]);
    }
    if rng.chance(10) {
        out.push_str(&rng.below(1000).to_string());
    }
}

/// A name of `labels` labels, the last one a TLD; the registered label is never a common word.
fn domain(rng: &mut Rng, labels: usize) -> String {
    let mut out = String::with_capacity(32);
    for i in 0..labels - 1 {
        label(rng, &mut out, i + 2 < labels);
        out.push('.');
    }
    out.push_str(TLDS[rng.below(TLDS.len())]);
    out
}

/// 2-5 labels: 40% 2, 35% 3, 20% 4, 5% 5.
fn rule_labels(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..40 => 2,
        40..75 => 3,
        75..95 => 4,
        _ => 5,
    }
}

fn order(id: i64) -> Order {
    Order {
        id: OrderId(id),
        authority: "Court of First Instance".into(),
        reference: format!("CFI-2026-{id:05}"),
        issued_at: 0,
        effective_from: 0,
        expires_at: 365 * 86_400,
        category: Category::ALL[id as usize % Category::ALL.len()],
        summary: "synthetic order for benchmarks".into(),
        publishable: true,
        appeal_contact: "appeals@regulator.example".into(),
        status: OrderStatus::Approved,
        proposed_by: "alice".into(),
        approved_by: Some("bob".into()),
        revoked: None,
    }
}

fn v4_prefix(rng: &mut Rng) -> IpPrefix {
    let len = match rng.below(10_000) {
        0..5 => 12 + rng.below(4),
        5..200 => 16 + rng.below(8),
        200..1000 => 25 + rng.below(7),
        1000..3500 => 24,
        _ => 32,
    };
    IpPrefix::new(IpAddr::V4(Ipv4Addr::from(rng.next() as u32)), len as u8)
}

/// Global unicast (2000::/3), as traffic is.
fn v6_global(rng: &mut Rng) -> u128 {
    let bits = u128::from(rng.next()) << 64 | u128::from(rng.next());
    (bits >> 3) | (1 << 125)
}

fn v6_prefix(rng: &mut Rng) -> IpPrefix {
    let len = match rng.below(100) {
        0..10 => 128,
        10..40 => 48,
        40..70 => 64,
        _ => 32 + rng.below(33),
    };
    IpPrefix::new(IpAddr::V6(Ipv6Addr::from(v6_global(rng))), len as u8)
}

fn snapshot(rng: &mut Rng) -> PolicySnapshot {
    let orders: Vec<Order> = (1..=ORDERS as i64).map(order).collect();
    let mut rules = Vec::with_capacity(DOMAIN_RULES + V4_RULES + V6_RULES);
    let mut id = 0i64;
    let mut push = |selector: Selector, rng: &mut Rng| {
        id += 1;
        let action = Action::ALL[rng.below(Action::ALL.len())];
        rules.push(Rule { id: RuleId(id), order: OrderId(1 + (id % ORDERS as i64)), selector, action, forced: None });
    };
    for _ in 0..DOMAIN_RULES {
        let labels = rule_labels(rng);
        let name = DomainName::parse(&domain(rng, labels)).expect("generated names are valid");
        let selector = match rng.below(100) {
            0..55 => Selector::Exact(name),
            55..95 => Selector::Subtree(name),
            _ => Selector::Subdomains(name),
        };
        push(selector, rng);
    }
    for _ in 0..V4_RULES {
        push(Selector::Prefix(v4_prefix(rng)), rng);
    }
    for _ in 0..V6_RULES {
        push(Selector::Prefix(v6_prefix(rng)), rng);
    }
    let mut allow = Vec::new();
    for i in 0..DOMAIN_ALLOWS + V4_ALLOWS + V6_ALLOWS {
        let selector = if i < DOMAIN_ALLOWS {
            // Half of them carve exceptions out of blocked subtrees.
            let base = &rules[rng.below(DOMAIN_RULES)].selector;
            match (base.domain(), rng.chance(50)) {
                (Some(n), true) => {
                    Selector::Exact(DomainName::parse(&format!("www.{n}")).expect("generated names are valid"))
                }
                _ => Selector::Subtree(DomainName::parse(&domain(rng, 2)).expect("generated names are valid")),
            }
        } else if i < DOMAIN_ALLOWS + V4_ALLOWS {
            Selector::Prefix(v4_prefix(rng))
        } else {
            Selector::Prefix(v6_prefix(rng))
        };
        allow.push(AllowEntry { id: AllowId(i as i64 + 1), selector, reason: "benchmark".into() });
    }
    PolicySnapshot { version: 1, taken_at: 0, orders, rules, allow }
}

/// Query names in one string, as offsets: by default 90% random names of 2-6 labels (misses), 10%
/// names a rule selects (the rule's name, or one label below it).
struct NamePool {
    text: String,
    spans: Vec<(u32, u32)>,
}

impl NamePool {
    fn new(rng: &mut Rng, rules: &[Rule], hit_percent: usize) -> Self {
        let mut text = String::with_capacity(POOL * 20);
        let mut spans = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            let start = text.len() as u32;
            if rng.chance(hit_percent) {
                let rule = &rules[rng.below(DOMAIN_RULES)];
                let name = rule.selector.domain().map_or("example.test", |n| n.as_str());
                if !matches!(rule.selector, Selector::Exact(_)) && rng.chance(70) {
                    label(rng, &mut text, true);
                    text.push('.');
                }
                text.push_str(name);
            } else {
                let labels = 2 + rng.below(5);
                text.push_str(&domain(rng, labels));
            }
            spans.push((start, text.len() as u32));
        }
        NamePool { text, spans }
    }

    /// The names of `self` in the order `sequence` asks for them, laid out one after the other
    /// as a stream of queries is (a popular name appears many times).
    fn in_order(&self, sequence: &[u32]) -> Self {
        let mut text = String::with_capacity(self.text.len());
        let mut spans = Vec::with_capacity(sequence.len());
        for &i in sequence {
            let start = text.len() as u32;
            text.push_str(self.get(i as usize));
            spans.push((start, text.len() as u32));
        }
        NamePool { text, spans }
    }

    fn get(&self, i: usize) -> &str {
        let (start, end) = self.spans[i % self.spans.len()];
        &self.text[start as usize..end as usize]
    }
}

fn inside(rng: &mut Rng, prefix: &IpPrefix) -> IpAddr {
    match *prefix {
        IpPrefix::V4 { addr, len } => {
            IpAddr::V4(Ipv4Addr::from(addr | (rng.next() as u32).checked_shr(u32::from(len)).unwrap_or(0)))
        }
        IpPrefix::V6 { addr, len } => {
            let noise = u128::from(rng.next()) << 64 | u128::from(rng.next());
            IpAddr::V6(Ipv6Addr::from(addr | noise.checked_shr(u32::from(len)).unwrap_or(0)))
        }
    }
}

/// 90% random addresses, 10% inside a random rule prefix.
fn address_pool(rng: &mut Rng, rules: &[Rule], v6: bool) -> Vec<IpAddr> {
    (0..POOL)
        .map(|_| {
            if rng.chance(10) {
                let rule = if v6 {
                    &rules[DOMAIN_RULES + V4_RULES + rng.below(V6_RULES)]
                } else {
                    &rules[DOMAIN_RULES + rng.below(V4_RULES)]
                };
                match &rule.selector {
                    Selector::Prefix(p) => inside(rng, p),
                    _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                }
            } else if v6 {
                IpAddr::V6(Ipv6Addr::from(v6_global(rng)))
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            }
        })
        .collect()
}

/// Resident set size in bytes (Linux `/proc/self/statm`, 4 KiB pages), or 0 elsewhere.
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `len` indices into `0..n` with probability proportional to 1/(rank+1), ranks shuffled over
/// the pool so popular names are spread through memory (inverse-CDF sampling).
fn zipf_sequence(rng: &mut Rng, n: usize, len: usize) -> Vec<u32> {
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0f64;
    for k in 0..n {
        total += 1.0 / (k as f64 + 1.0);
        cdf.push(total);
    }
    let mut rank_to_index: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        rank_to_index.swap(i, rng.below(i + 1));
    }
    (0..len)
        .map(|_| {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = cdf.partition_point(|&c| c < u).min(n - 1);
            rank_to_index[rank]
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let mut rng = Rng(0x5EED_BA3A_BA00_0001);
    let started = Instant::now();
    let snapshot = snapshot(&mut rng);
    let hit_percent = std::env::var("RULESET_BENCH_HIT_PERCENT").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let names = NamePool::new(&mut rng, &snapshot.rules, hit_percent);
    let v4_pool = address_pool(&mut rng, &snapshot.rules, false);
    let v6_pool = address_pool(&mut rng, &snapshot.rules, true);
    let total = snapshot.len();
    println!("generated {total} rules and allow entries and the query pools in {:.2?}", started.elapsed());
    // The compiled table keeps names of up to 24 bytes in their slot, longer ones in its arena.
    let lengths: Vec<usize> =
        snapshot.rules.iter().filter_map(|r| r.selector.domain()).map(|n| n.as_str().len()).collect();
    let slotted = lengths.iter().filter(|&&len| len <= 24).count();
    println!(
        "rule names: {} bytes on average, {:.1}% of them 24 bytes or shorter",
        lengths.iter().sum::<usize>() / lengths.len().max(1),
        100.0 * slotted as f64 / lengths.len().max(1) as f64
    );

    // Memory: RSS delta around one compile, with the result kept alive, then heap_bytes.
    let rss_before = rss_bytes();
    let started = Instant::now();
    let ruleset = snapshot.compile();
    let compile_once = started.elapsed();
    let rss_delta = rss_bytes().saturating_sub(rss_before);
    // The compile's scratch, freed, may stay resident in the allocator's arenas.
    bawaba_policy::ruleset::release_freed_memory();
    let rss_trimmed = rss_bytes().saturating_sub(rss_before);
    let stats = ruleset.stats();
    println!("compile (one run): {compile_once:.2?}");
    println!("stats: {}", serde_json::to_string(&stats).unwrap_or_default());
    println!(
        "memory: heap_bytes {:.1} MiB = {:.1} B/rule; RSS delta around compile {:.1} MiB = {:.1} B/rule, \
         {:.1} MiB = {:.1} B/rule once freed heap is returned (malloc_trim)",
        mib(stats.heap_bytes),
        stats.heap_bytes as f64 / total as f64,
        mib(rss_delta),
        rss_delta as f64 / total as f64,
        mib(rss_trimmed),
        rss_trimmed as f64 / total as f64
    );
    let rss_before = rss_bytes();
    let started = Instant::now();
    let naive = NaiveRuleset::from_snapshot(&snapshot);
    let naive_once = started.elapsed();
    let naive_delta = rss_bytes().saturating_sub(rss_before);
    println!(
        "naive: build (one run) {naive_once:.2?}; RSS delta {:.1} MiB = {:.1} B/rule",
        mib(naive_delta),
        naive_delta as f64 / total as f64
    );
    let hits = (0..POOL).filter(|&i| matches!(ruleset.lookup_domain(names.get(i)), Ok(Some(_)))).count();
    let v4_hits = v4_pool.iter().filter(|&&a| ruleset.lookup_ip(a).is_some()).count();
    let v6_hits = v6_pool.iter().filter(|&&a| ruleset.lookup_ip(a).is_some()).count();
    println!(
        "query pools: {POOL} each; names {:.1}% match, IPv4 {:.1}% match, IPv6 {:.1}% match",
        100.0 * hits as f64 / POOL as f64,
        100.0 * v4_hits as f64 / POOL as f64,
        100.0 * v6_hits as f64 / POOL as f64
    );

    let mut group = c.benchmark_group("compile");
    group.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(100));
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(total as u64));
    group.bench_function("bawaba", |b| b.iter_batched(|| (), |()| snapshot.compile(), BatchSize::PerIteration));
    group.bench_function("naive", |b| {
        b.iter_batched(|| (), |()| NaiveRuleset::from_snapshot(&snapshot), BatchSize::PerIteration)
    });
    group.finish();

    let mut group = c.benchmark_group("lookup_domain");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut cursor = 0usize;
    group.bench_function("bawaba", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for i in cursor..cursor + BATCH {
                found += usize::from(matches!(ruleset.lookup_domain(black_box(names.get(i))), Ok(Some(_))));
            }
            cursor = (cursor + BATCH) % POOL;
            found
        })
    });
    let mut answers = Vec::with_capacity(BATCH);
    group.bench_function("bawaba_many", |b| {
        b.iter(|| {
            ruleset.lookup_domains((cursor..cursor + BATCH).map(|i| black_box(names.get(i))), &mut answers);
            cursor = (cursor + BATCH) % POOL;
            answers.iter().filter(|m| matches!(m, Ok(Some(_)))).count()
        })
    });
    group.bench_function("naive", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for i in cursor..cursor + BATCH {
                found += usize::from(matches!(naive.lookup_domain(black_box(names.get(i))), Ok(Some(_))));
            }
            cursor = (cursor + BATCH) % POOL;
            found
        })
    });
    group.finish();

    // The same pool queried with Zipf (s = 1) popularity, as DNS names are in real traffic (a few
    // names take most queries): the uniform run above is the worst case, this one the usual case.
    // The queries are laid out in the order they are asked, as they arrive in packets: reading
    // them at random from the pool instead cost the harness two cache misses per query (the
    // span, then the text), more than a lookup that misses.
    let zipf = names.in_order(&zipf_sequence(&mut rng, POOL, POOL));
    let zipf_hits = (0..POOL).filter(|&i| matches!(ruleset.lookup_domain(zipf.get(i)), Ok(Some(_)))).count();
    let distinct: std::collections::HashSet<&str> = (0..POOL).map(|i| zipf.get(i)).collect();
    println!(
        "zipf stream: {POOL} queries of {} distinct names; {:.1}% match",
        distinct.len(),
        100.0 * zipf_hits as f64 / POOL as f64
    );
    let mut group = c.benchmark_group("lookup_domain_zipf");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (label, naive_side) in [("bawaba", false), ("naive", true)] {
        let mut cursor = 0usize;
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut found = 0usize;
                for i in cursor..cursor + BATCH {
                    let name = black_box(zipf.get(i));
                    let hit = if naive_side {
                        matches!(naive.lookup_domain(name), Ok(Some(_)))
                    } else {
                        matches!(ruleset.lookup_domain(name), Ok(Some(_)))
                    };
                    found += usize::from(hit);
                }
                cursor = (cursor + BATCH) % POOL;
                found
            })
        });
    }
    let mut cursor = 0usize;
    let mut answers = Vec::with_capacity(BATCH);
    group.bench_function("bawaba_many", |b| {
        b.iter(|| {
            ruleset.lookup_domains((cursor..cursor + BATCH).map(|i| black_box(zipf.get(i))), &mut answers);
            cursor = (cursor + BATCH) % POOL;
            answers.iter().filter(|m| matches!(m, Ok(Some(_)))).count()
        })
    });
    group.finish();

    for (family, pool) in [("lookup_ipv4", &v4_pool), ("lookup_ipv6", &v6_pool)] {
        let mut group = c.benchmark_group(family);
        group.throughput(Throughput::Elements(BATCH as u64));
        // Each lookup reads its address from the pool, as a caller with the packet in memory does.
        // `black_box(a)` by value would instead make the harness write the 17-byte `IpAddr` to the
        // stack in pieces just before the lookup reads it back across them: a store-forwarding
        // stall of its own, which cost IPv6 (whose last address byte is the 17th) more than half
        // of its time. The same held for a call to `lookup_ip` that was not inlined, hence its
        // `#[inline]`.
        group.bench_function("bawaba", |b| {
            b.iter(|| {
                let found =
                    pool[cursor..cursor + BATCH].iter().filter(|a| ruleset.lookup_ip(*black_box(*a)).is_some()).count();
                cursor = (cursor + BATCH) % POOL;
                found
            })
        });
        let mut answers = Vec::with_capacity(BATCH);
        group.bench_function("bawaba_many", |b| {
            b.iter(|| {
                ruleset.lookup_ips(black_box(&pool[cursor..cursor + BATCH]), &mut answers);
                cursor = (cursor + BATCH) % POOL;
                answers.iter().filter(|m| m.is_some()).count()
            })
        });
        group.bench_function("naive", |b| {
            b.iter(|| {
                let found =
                    pool[cursor..cursor + BATCH].iter().filter(|a| naive.lookup_ip(*black_box(*a)).is_some()).count();
                cursor = (cursor + BATCH) % POOL;
                found
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = ruleset;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(ruleset);
