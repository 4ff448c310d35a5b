//! Measures import throughput on generated inputs of one million lines.
//!
//! `cargo run --release -p bawaba-formats --example throughput [LINES]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use bawaba_formats::{import, Format};

/// Writes line `i` of a generated input.
type LineMaker = fn(usize) -> String;

fn main() -> std::io::Result<()> {
    let lines: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let dir = std::env::temp_dir();
    let cases: [(Format, &str, LineMaker); 4] = [
        (Format::Domains, "domains.txt", |i| format!("host-{i}.category{}.example.test\n", i % 97)),
        (Format::Hosts, "hosts", |i| format!("0.0.0.0 ads-{i}.tracker{}.example.test\n", i % 97)),
        (Format::Cidr, "list.cidr", |i| format!("{}.{}.{}.0/24\n", 10 + i / 65_536 % 200, i / 256 % 256, i % 256)),
        (Format::Rpz, "zone.rpz", |i| {
            if i == 0 {
                "$ORIGIN rpz.example.\n".to_string()
            } else {
                format!("host-{i}.category{}.example.test CNAME .\n", i % 97)
            }
        }),
    ];
    for (format, name, line) in cases {
        let path = dir.join(format!("bawaba-throughput-{name}"));
        let mut out = BufWriter::new(File::create(&path)?);
        for i in 0..lines {
            out.write_all(line(i).as_bytes())?;
        }
        out.flush()?;
        drop(out);
        let start = Instant::now();
        let result = import(format, BufReader::with_capacity(1 << 16, File::open(&path)?), |_| {})
            .map_err(std::io::Error::other)?;
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "{format:>8}: {} lines, {} entries, {} rejected in {elapsed:.3} s = {:.2} M lines/s",
            result.report.lines,
            result.entries.len(),
            result.report.rejected.len(),
            result.report.lines as f64 / elapsed / 1e6
        );
        std::fs::remove_file(&path)?;
    }
    Ok(())
}
