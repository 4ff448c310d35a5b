//! Measures "compile from the store": 1,000,000 domain rules, 500,000 IPv4 and 100,000 IPv6
//! prefixes in a SQLite store (WAL, on disk), then `snapshot()` (read) and `compile()` timed.
//!
//! ```text
//! cargo run --release -p bawaba-store --example compile_from_store
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use std::time::Instant;

use bawaba_policy::{Action, Category, IpPrefix, Selector};
use bawaba_store::{NewOrder, Store, StoreConfig};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn name(rng: &mut Rng) -> String {
    const SYL: [&str; 16] =
        ["ka", "ro", "mi", "ta", "zen", "lo", "bar", "qi", "nu", "fa", "del", "so", "vik", "ha", "po", "ur"];
    const TLD: [&str; 8] = ["com", "net", "org", "iq", "info", "xyz", "io", "biz"];
    let labels = 2 + rng.below(4) as usize;
    let mut parts: Vec<String> = Vec::with_capacity(labels);
    for i in 0..labels - 1 {
        let n = 2 + rng.below(3);
        let mut label: String = (0..n).map(|_| SYL[rng.below(16) as usize]).collect();
        if i == labels - 2 {
            // The registered label: syllables and a number, so a million names rarely collide.
            label.push_str(&rng.below(10_000).to_string());
        }
        parts.push(label);
    }
    parts.push(TLD[rng.below(8) as usize].to_string());
    parts.join(".")
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("bawaba.db"), StoreConfig::default()).unwrap();
    let order = store
        .add_order(
            "alice",
            NewOrder {
                authority: "Benchmark court".into(),
                reference: "BENCH-1".into(),
                issued_at: 0,
                effective_from: 0,
                expires_at: 300 * 86_400,
                category: Category::Malware,
                summary: "synthetic".into(),
                publishable: true,
                appeal_contact: "appeals@example.test".into(),
            },
            0,
        )
        .unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut entries: Vec<(usize, Selector, Action)> = Vec::with_capacity(1_600_000);
    for i in 0..1_000_000 {
        let n = name(&mut rng);
        let s = if i % 2 == 0 { format!("exact:{n}") } else { n };
        entries.push((i, s.parse().unwrap(), Action::Nxdomain));
    }
    for i in 0..500_000 {
        let len = [24u8, 32, 32, 28][rng.below(4) as usize];
        let addr = std::net::Ipv4Addr::from(rng.next() as u32);
        entries.push((i, Selector::Prefix(IpPrefix::new(addr.into(), len)), Action::Drop));
    }
    for i in 0..100_000 {
        let len = [48u8, 56, 64, 128][rng.below(4) as usize];
        let addr = std::net::Ipv6Addr::from(
            (0x2001_0db8u128 << 96) | u128::from(rng.next()) << 32 | u128::from(rng.next() as u32),
        );
        entries.push((i, Selector::Prefix(IpPrefix::new(addr.into(), len)), Action::Drop));
    }
    let t = Instant::now();
    let report = store.import_rules("alice", order.id, "synthetic", entries, 0, |_| {}).unwrap();
    println!("stored {} rules ({} duplicates) in {:.1} s", report.added, report.duplicates, t.elapsed().as_secs_f64());
    store.approve_order("bob", order.id, 0).unwrap();
    drop(store);

    // What `bawaba serve`/`policy compile` do: open the store, read the snapshot, compile.
    let mut reads = Vec::new();
    let mut compiles = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        drop(last.take());
        let store = Store::open(&dir.path().join("bawaba.db"), StoreConfig::default()).unwrap();
        let t = Instant::now();
        let snapshot = store.snapshot(86_400).unwrap();
        reads.push(t.elapsed().as_secs_f64());
        let before = rss_mib();
        let t = Instant::now();
        let ruleset = snapshot.compile();
        compiles.push(t.elapsed().as_secs_f64());
        let stats = ruleset.stats();
        println!(
            "read {} rules in {:.2} s, compiled in {:.2} s; heap {:.1} MiB ({:.1} B/rule), RSS +{:.1} MiB across compile",
            snapshot.rules.len(),
            reads.last().unwrap(),
            compiles.last().unwrap(),
            stats.heap_bytes as f64 / 1_048_576.0,
            stats.heap_bytes as f64 / snapshot.rules.len() as f64,
            rss_mib() - before,
        );
        last = Some((snapshot, ruleset));
    }
    reads.sort_by(f64::total_cmp);
    compiles.sort_by(f64::total_cmp);
    println!(
        "median: read {:.2} s + compile {:.2} s = {:.2} s (target <= 3 s)",
        reads[1],
        compiles[1],
        reads[1] + compiles[1]
    );
}
