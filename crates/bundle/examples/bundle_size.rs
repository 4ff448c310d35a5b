//! Measures signing, verifying and decoding a bundle of a large synthetic snapshot.
//!
//! `cargo run --release -p bawaba-bundle --example bundle_size -- [rules]` (default 1,600,000).
//! Names are pseudo-random labels under a few hundred suffixes, so compression is not flattered
//! by repetition; one rule in eight is a prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Instant;

use bawaba_bundle::{generate_signing_key, verify, PayloadEncoding, SignOptions, SignedBundle};
use bawaba_policy::{Action, Category, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId, Selector};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1_600_000);
    let started = Instant::now();
    let snapshot = synthetic(count)?;
    println!("built {count} rules in {:.2?}", started.elapsed());
    let key = generate_signing_key()?;
    let trusted = [key.verifying_key()];
    for (encoding, level) in
        [(PayloadEncoding::POSTCARD, 0), (PayloadEncoding::POSTCARD_DEFLATE, 1), (PayloadEncoding::POSTCARD_DEFLATE, 6)]
    {
        let options = SignOptions { encoding, deflate_level: level, created_at: Some(0), audit_head: None };
        let t = Instant::now();
        let bundle = SignedBundle::sign_with(&snapshot, &key, &options)?;
        let sign = t.elapsed();
        let t = Instant::now();
        let verified = verify(bundle.bytes(), &trusted)?;
        let check = t.elapsed();
        let t = Instant::now();
        let decoded = verified.snapshot()?;
        let decode = t.elapsed();
        assert_eq!(decoded.rules.len(), count);
        println!(
            "{encoding:<17} level {level}: {:>6.1} MiB (decoded {:>6.1} MiB), sign {sign:>8.2?}, verify {check:>8.2?}, decode {decode:>8.2?}",
            bundle.bytes().len() as f64 / 1048576.0,
            bundle.header().decoded_len as f64 / 1048576.0,
        );
    }
    Ok(())
}

fn synthetic(count: usize) -> Result<PolicySnapshot, Box<dyn std::error::Error>> {
    let orders = (0..1_000)
        .map(|i| Order {
            id: OrderId(i),
            authority: "Communications and Media Commission".into(),
            reference: format!("CMC-2026-{i:05}"),
            issued_at: 1_800_000_000,
            effective_from: 1_800_000_000,
            expires_at: 1_800_000_000 + 180 * 86_400,
            category: Category::ALL[i as usize % Category::ALL.len()],
            summary: format!("Synthetic order {i} for size measurement"),
            publishable: true,
            appeal_contact: "appeals@regulator.example".into(),
            status: OrderStatus::Approved,
            proposed_by: "alice".into(),
            approved_by: Some("bob".into()),
            revoked: None,
        })
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut rules = Vec::with_capacity(count);
    for i in 0..count {
        let r = next();
        let selector: Selector = if i % 8 == 7 {
            let [a, b, c, _, ..] = r.to_be_bytes();
            format!("{}.{b}.{c}.0/24", 1 + a % 223).parse()?
        } else {
            let label: String = (0..6 + r % 10).map(|k| (b'a' + ((r >> (k * 5)) % 26) as u8) as char).collect();
            format!("{label}.site{}.test", (r >> 50) % 400).parse()?
        };
        rules.push(Rule {
            id: RuleId(i as i64),
            order: OrderId((r % 1_000) as i64),
            selector,
            action: Action::ALL[(r >> 20) as usize % Action::ALL.len()],
            forced: None,
        });
    }
    Ok(PolicySnapshot { version: 1, taken_at: 1_800_000_000, orders, rules, allow: vec![] })
}
