//! Builders for the hand-made datagrams of the unit tests, and a visitor that keeps everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use crate::{CounterRecord, FlowError, FlowRecord, Visitor};

/// Everything a datagram handed over.
#[derive(Debug, Default)]
pub(crate) struct Collect {
    pub(crate) flows: Vec<FlowRecord>,
    pub(crate) counters: Vec<CounterRecord>,
    pub(crate) problems: Vec<FlowError>,
}

impl Visitor for Collect {
    fn flow(&mut self, record: &FlowRecord) {
        self.flows.push(*record);
    }
    fn counters(&mut self, record: &CounterRecord) {
        self.counters.push(*record);
    }
    fn problem(&mut self, problem: &FlowError) {
        self.problems.push(problem.clone());
    }
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A set (or flowset): id, length, body.
pub(crate) fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut s = id.to_be_bytes().to_vec();
    s.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// A template record without enterprise fields: id, count, (type, length)...
pub(crate) fn template(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut t = id.to_be_bytes().to_vec();
    t.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (ie, len) in fields {
        t.extend_from_slice(&ie.to_be_bytes());
        t.extend_from_slice(&len.to_be_bytes());
    }
    t
}

/// An IPFIX message of `sets`.
pub(crate) fn ipfix(domain: u32, export_secs: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    let mut m = vec![0, 10];
    m.extend_from_slice(&((16 + body.len()) as u16).to_be_bytes());
    m.extend_from_slice(&export_secs.to_be_bytes());
    m.extend_from_slice(&7u32.to_be_bytes());
    m.extend_from_slice(&domain.to_be_bytes());
    m.extend_from_slice(&body);
    m
}

/// A NetFlow v9 packet of `sets`.
pub(crate) fn v9(uptime_ms: u32, unix_secs: u32, source_id: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![0, 9, 0, sets.len() as u8];
    m.extend_from_slice(&uptime_ms.to_be_bytes());
    m.extend_from_slice(&unix_secs.to_be_bytes());
    m.extend_from_slice(&1u32.to_be_bytes());
    m.extend_from_slice(&source_id.to_be_bytes());
    m.extend_from_slice(&sets.concat());
    m
}

/// Concatenates big-endian pieces: each `(value, width)`.
pub(crate) fn be(pieces: &[(u64, usize)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(v, w) in pieces {
        out.extend_from_slice(&v.to_be_bytes()[8 - w..]);
    }
    out
}
