//! Hosts, domain and CIDR list imports never panic on any bytes, account for every line, and
//! yield only unique selectors whose text form re-parses to themselves.
#![no_main]
use std::collections::HashSet;

use bawaba_formats::{import, Format};
use bawaba_policy::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector_byte, input)) = data.split_first() else { return };
    let format = [Format::Hosts, Format::Domains, Format::Cidr][usize::from(selector_byte) % 3];
    let mut last = 0;
    let result = import(format, input, |p| {
        assert!(p.lines >= last, "progress never goes back");
        last = p.lines;
    })
    .expect("reading a byte slice cannot fail");
    let report = &result.report;
    assert_eq!(report.bytes, input.len() as u64);
    assert!(result.passthru.is_empty(), "lists have no passthru");
    assert_eq!(report.added, result.entries.len());
    let mut seen = HashSet::new();
    for entry in &result.entries {
        assert!(entry.line >= 1 && entry.line <= report.lines);
        assert!(entry.action.is_none(), "lists state no action");
        assert!(seen.insert(entry.selector.clone()), "duplicate selector {}", entry.selector);
        let again = Selector::parse(&entry.selector.to_string()).expect("a displayed selector re-parses");
        assert_eq!(again, entry.selector);
    }
    for rejected in &report.rejected {
        assert!(rejected.line >= 1 && rejected.line <= report.lines);
        assert!(rejected.text.len() <= bawaba_formats::MAX_EXCERPT_LEN + 3);
    }
});
