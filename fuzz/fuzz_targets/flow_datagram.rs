//! Flow export decoding never panics, whatever the datagram: NetFlow v5/v9, IPFIX and sFlow v5.
//! The template cache persists across inputs (templates one input teaches apply to the next, as
//! from a real exporter), within small limits so it stays bounded. The summary agrees with what
//! the visitor was handed, and error offsets lie within the datagram.
//!
//! Input: the whole input is one datagram from one of four exporters, chosen by the input's
//! length, so that a NetFlow v9/IPFIX stream can build up state for one of them.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, OnceLock};

use bawaba_flow::{decode, CacheLimits, CounterRecord, FlowError, FlowRecord, TemplateCache, Visitor};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Count {
    flows: u32,
    unknown: u32,
    counters: u32,
    problems: u32,
    len: usize,
}

impl Visitor for Count {
    fn flow(&mut self, r: &FlowRecord) {
        self.flows += 1;
        if r.sampling.rate.is_none() {
            self.unknown += 1;
        }
        assert!(r.sampling.rate != Some(0), "a rate of 0 is reported as unknown");
    }
    fn counters(&mut self, _: &CounterRecord) {
        self.counters += 1;
    }
    fn problem(&mut self, p: &FlowError) {
        self.problems += 1;
        assert!(p.offset() <= self.len, "problem offset {} beyond {} bytes", p.offset(), self.len);
    }
}

fn cache() -> &'static Mutex<TemplateCache> {
    static CACHE: OnceLock<Mutex<TemplateCache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        let limits = CacheLimits {
            max_domains: 64,
            max_templates_per_domain: 64,
            max_fields: 128,
            max_samplers_per_domain: 16,
            max_total_fields: 1 << 16,
        };
        Mutex::new(TemplateCache::with_limits(limits))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    let exporter = IpAddr::V4(Ipv4Addr::new(192, 0, 2, (data.len() % 4) as u8 + 1));
    if data.len() % 97 == 0 {
        cache.set_configured_sampling(exporter, Some(data.len() as u32));
    }
    let mut count = Count { len: data.len(), ..Count::default() };
    match decode(exporter, data, &mut cache, &mut count) {
        Ok(s) => {
            assert_eq!((s.flows, s.sampling_unknown, s.counters, s.problems), (count.flows, count.unknown, count.counters, count.problems));
        }
        Err(e) => {
            assert!(e.offset() <= data.len(), "error offset {} beyond {} bytes", e.offset(), data.len());
            let _ = e.kind().as_str();
        }
    }
    let limits = cache.limits();
    assert!(cache.domain_count() <= limits.max_domains);
    assert!(cache.total_fields() <= limits.max_total_fields);
});
