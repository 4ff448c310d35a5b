//! Golden files: each `tests/golden/NAME.bin` is one datagram (the NetFlow ones captured from
//! softflowd 1.1.0, the sFlow ones built to the sFlow v5 spec), decoded in name order with one
//! template cache; `NAME.expected` holds what bawaba-flow hands over, one line per item.
//! `OVERWRITE=1 cargo test -p bawaba-flow --test golden` rewrites the expected files; read the
//! diff before committing it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use bawaba_flow::{decode, CounterRecord, FlowError, FlowRecord, TemplateCache, Visitor};

struct Text(String);

impl Visitor for Text {
    fn flow(&mut self, r: &FlowRecord) {
        writeln!(self.0, "flow {r:?}").unwrap();
    }
    fn counters(&mut self, r: &CounterRecord) {
        writeln!(self.0, "counters {r:?}").unwrap();
    }
    fn problem(&mut self, p: &FlowError) {
        writeln!(self.0, "problem {p}").unwrap();
    }
}

#[test]
fn golden_datagrams() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 5);
    let overwrite = std::env::var_os("OVERWRITE").is_some_and(|v| v == "1");
    let exporter: IpAddr = "192.0.2.1".parse().unwrap();
    let mut cache = TemplateCache::new();
    let mut failures = Vec::new();
    for input in inputs {
        let datagram = std::fs::read(&input).unwrap();
        let mut text = Text(String::new());
        match decode(exporter, &datagram, &mut cache, &mut text) {
            Ok(summary) => writeln!(text.0, "summary {summary:?}").unwrap(),
            Err(e) => writeln!(text.0, "error {e}").unwrap(),
        }
        let expected_path = input.with_extension("expected");
        if overwrite {
            std::fs::write(&expected_path, &text.0).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} missing: run with OVERWRITE=1", expected_path.display()));
        if expected != text.0 {
            failures.push(format!("{}:\n--- expected\n{expected}--- got\n{}", input.display(), text.0));
        }
    }
    assert!(failures.is_empty(), "golden mismatch (OVERWRITE=1 regenerates):\n{}", failures.join("\n"));
}
