//! A table of the exporters heard from: what they speak, when they were last heard, whether
//! their sampling is known, and counters. The caller feeds it each datagram's outcome.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::{DatagramSummary, ErrorKind, FlowError, FlowProtocol, TemplateCache};

/// What is known about one exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExporterStats {
    /// The protocol of its last datagram that had a known version.
    pub protocol: Option<FlowProtocol>,
    /// When it was first heard, in the caller's clock (milliseconds).
    pub first_seen_ms: u64,
    /// When it was last heard.
    pub last_seen_ms: u64,
    /// Templates and options templates it has in the cache (NetFlow v9 and IPFIX).
    pub templates: usize,
    /// Datagrams received.
    pub datagrams: u64,
    /// Datagrams that ended in an error.
    pub errors: u64,
    /// The kind of the last error.
    pub last_error: Option<ErrorKind>,
    /// Flow records decoded.
    pub flows: u64,
    /// Of those, how many had unknown sampling.
    pub flows_sampling_unknown: u64,
    /// Counter records decoded (sFlow).
    pub counters: u64,
    /// Data sets skipped for want of a template.
    pub sets_without_template: u64,
    /// Problems confined to one set or sample.
    pub problems: u64,
    /// Whether the last datagram with flow records had the sampling of all of them known.
    pub sampling_known: Option<bool>,
}

/// The exporter table, bounded: beyond `max_exporters` new addresses are only counted.
#[derive(Debug)]
pub struct Exporters {
    map: HashMap<IpAddr, ExporterStats>,
    max_exporters: usize,
    untracked: u64,
}

impl Exporters {
    /// An empty table that tracks at most `max_exporters` addresses.
    pub fn new(max_exporters: usize) -> Exporters {
        Exporters { map: HashMap::new(), max_exporters, untracked: 0 }
    }

    /// Records the outcome of [`crate::decode`] for a datagram from `exporter` at `now_ms`.
    pub fn observe(
        &mut self,
        exporter: IpAddr,
        now_ms: u64,
        result: &Result<DatagramSummary, FlowError>,
        cache: &TemplateCache,
    ) {
        if !self.map.contains_key(&exporter) && self.map.len() >= self.max_exporters {
            self.untracked += 1;
            return;
        }
        let e = self.map.entry(exporter).or_insert(ExporterStats {
            protocol: None,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            templates: 0,
            datagrams: 0,
            errors: 0,
            last_error: None,
            flows: 0,
            flows_sampling_unknown: 0,
            counters: 0,
            sets_without_template: 0,
            problems: 0,
            sampling_known: None,
        });
        e.last_seen_ms = now_ms;
        e.datagrams += 1;
        e.templates = cache.template_count(exporter);
        match result {
            Ok(s) => {
                e.protocol = Some(s.protocol);
                e.flows += u64::from(s.flows);
                e.flows_sampling_unknown += u64::from(s.sampling_unknown);
                e.counters += u64::from(s.counters);
                e.sets_without_template += u64::from(s.sets_without_template);
                e.problems += u64::from(s.problems);
                if s.flows > 0 {
                    e.sampling_known = Some(s.sampling_unknown == 0);
                }
            }
            Err(err) => {
                e.errors += 1;
                e.last_error = Some(err.kind());
            }
        }
    }

    /// The stats of one exporter.
    pub fn get(&self, exporter: IpAddr) -> Option<&ExporterStats> {
        self.map.get(&exporter)
    }

    /// All exporters, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &ExporterStats)> {
        self.map.iter().map(|(a, s)| (*a, s))
    }

    /// How many exporters are tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Datagrams from addresses not tracked because the table was full.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Forgets exporters not heard from since `before_ms`; returns how many.
    pub fn remove_idle(&mut self, before_ms: u64) -> usize {
        let n = self.map.len();
        self.map.retain(|_, s| s.last_seen_ms >= before_ms);
        n - self.map.len()
    }
}
