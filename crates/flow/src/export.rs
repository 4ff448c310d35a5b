//! A small IPFIX exporter (RFC 7011): builds messages of flow records with one fixed template
//! (IPv4 and IPv6) and, optionally, an options template announcing the sampling interval
//! (RFC 7011 section 4.1 / IE 305 samplingPacketInterval). For tests, benchmarks and the attack
//! generator: what a border router would send.

use std::net::IpAddr;

/// Template ids used.
const TEMPLATE_V4: u16 = 256;
const TEMPLATE_V6: u16 = 257;
const OPTIONS_TEMPLATE: u16 = 258;

/// One flow to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportFlow {
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family as `src`).
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol.
    pub protocol: u8,
    /// TCP flags seen.
    pub tcp_flags: u8,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Start, Unix milliseconds.
    pub start_ms: u64,
    /// End, Unix milliseconds.
    pub end_ms: u64,
}

/// (IE id, length) of the data templates: addresses, ports, protocol, flags, counters, times.
fn fields(v6: bool) -> [(u16, u16); 9] {
    let (src, dst, len) = if v6 { (27, 28, 16) } else { (8, 12, 4) };
    [(src, len), (dst, len), (7, 2), (11, 2), (4, 1), (6, 1), (2, 8), (1, 8), (152, 8)]
}

fn record_len(v6: bool) -> usize {
    fields(v6).iter().map(|&(_, l)| usize::from(l)).sum::<usize>() + 8
}

/// Builds IPFIX messages for one exporter and observation domain.
#[derive(Debug, Clone)]
pub struct IpfixExporter {
    domain: u32,
    sequence: u32,
    sampling: Option<u32>,
}

impl IpfixExporter {
    /// An exporter for `domain`; with `sampling = Some(n)` it announces 1-in-n packet sampling
    /// in an options record with every template set.
    pub fn new(domain: u32, sampling: Option<u32>) -> Self {
        IpfixExporter { domain, sequence: 0, sampling }
    }

    fn header(&self, out: &mut Vec<u8>, export_secs: u32) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0, 10, 0, 0]);
        out.extend_from_slice(&export_secs.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.domain.to_be_bytes());
        start
    }

    fn finish(out: &mut [u8], start: usize) {
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Appends a message with the templates (and the sampling options template and record).
    pub fn templates(&mut self, out: &mut Vec<u8>, export_secs: u32) {
        let start = self.header(out, export_secs);
        let mut set = Vec::new();
        for (id, v6) in [(TEMPLATE_V4, false), (TEMPLATE_V6, true)] {
            set.extend_from_slice(&id.to_be_bytes());
            set.extend_from_slice(&(fields(v6).len() as u16 + 1).to_be_bytes());
            for (ie, len) in fields(v6) {
                set.extend_from_slice(&ie.to_be_bytes());
                set.extend_from_slice(&len.to_be_bytes());
            }
            // flowEndMilliseconds (153).
            set.extend_from_slice(&153u16.to_be_bytes());
            set.extend_from_slice(&8u16.to_be_bytes());
        }
        push_set(out, 2, &set);
        if let Some(interval) = self.sampling {
            // Options template: scope observationDomainId (149), then samplingPacketInterval (305)
            // and samplingPacketSpace (306) = 1 packet taken every `interval`.
            let mut t = Vec::new();
            t.extend_from_slice(&OPTIONS_TEMPLATE.to_be_bytes());
            t.extend_from_slice(&3u16.to_be_bytes());
            t.extend_from_slice(&1u16.to_be_bytes());
            for (ie, len) in [(149u16, 4u16), (305, 4), (306, 4)] {
                t.extend_from_slice(&ie.to_be_bytes());
                t.extend_from_slice(&len.to_be_bytes());
            }
            push_set(out, 3, &t);
            let mut d = Vec::new();
            d.extend_from_slice(&self.domain.to_be_bytes());
            d.extend_from_slice(&1u32.to_be_bytes());
            d.extend_from_slice(&(interval.saturating_sub(1)).to_be_bytes());
            push_set(out, OPTIONS_TEMPLATE, &d);
        }
        Self::finish(out, start);
    }

    /// Appends one message holding `flows` (all of one family, at most about 60 to stay under
    /// a 1500-byte MTU; more makes a larger datagram). The sequence number counts records.
    pub fn data(&mut self, out: &mut Vec<u8>, export_secs: u32, flows: &[ExportFlow]) {
        let start = self.header(out, export_secs);
        let v6 = flows.first().is_some_and(|f| f.src.is_ipv6());
        let mut set = Vec::with_capacity(flows.len() * record_len(v6));
        for f in flows {
            match (f.src, f.dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) if !v6 => {
                    set.extend_from_slice(&s.octets());
                    set.extend_from_slice(&d.octets());
                }
                (IpAddr::V6(s), IpAddr::V6(d)) if v6 => {
                    set.extend_from_slice(&s.octets());
                    set.extend_from_slice(&d.octets());
                }
                _ => continue,
            }
            set.extend_from_slice(&f.src_port.to_be_bytes());
            set.extend_from_slice(&f.dst_port.to_be_bytes());
            set.push(f.protocol);
            set.push(f.tcp_flags);
            set.extend_from_slice(&f.packets.to_be_bytes());
            set.extend_from_slice(&f.bytes.to_be_bytes());
            set.extend_from_slice(&f.start_ms.to_be_bytes());
            set.extend_from_slice(&f.end_ms.to_be_bytes());
        }
        push_set(out, if v6 { TEMPLATE_V6 } else { TEMPLATE_V4 }, &set);
        Self::finish(out, start);
        self.sequence = self.sequence.wrapping_add(flows.len() as u32);
    }
}

fn push_set(out: &mut Vec<u8>, id: u16, body: &[u8]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{decode, FlowRecord, SamplingSource, TemplateCache};

    #[test]
    fn what_it_exports_decodes_back() {
        let mut e = IpfixExporter::new(7, Some(1000));
        let exporter: IpAddr = "198.18.0.1".parse().unwrap();
        let mut cache = TemplateCache::default();
        let mut buf = Vec::new();
        e.templates(&mut buf, 1_700_000_000);
        let mut got: Vec<FlowRecord> = Vec::new();
        decode(exporter, &buf, &mut cache, &mut |r: &FlowRecord| got.push(*r)).unwrap();
        let flows: Vec<ExportFlow> = (0..30u16)
            .map(|i| ExportFlow {
                src: format!("198.19.{}.{}", i / 250, i % 250).parse().unwrap(),
                dst: "198.18.5.5".parse().unwrap(),
                src_port: 53,
                dst_port: 40000 + i,
                protocol: 17,
                tcp_flags: 0,
                packets: 3,
                bytes: 3000,
                start_ms: 1_700_000_000_000,
                end_ms: 1_700_000_000_500,
            })
            .collect();
        buf.clear();
        e.data(&mut buf, 1_700_000_001, &flows);
        decode(exporter, &buf, &mut cache, &mut |r: &FlowRecord| got.push(*r)).unwrap();
        assert_eq!(got.len(), 30);
        assert_eq!(got[29].dst_port, 40029);
        assert_eq!((got[0].packets, got[0].bytes, got[0].protocol), (3, 3000, 17));
        assert_eq!(got[0].sampling.rate, Some(1000));
        assert_eq!(got[0].sampling.source, SamplingSource::OptionsTemplate);
        let v6 = ExportFlow { src: "2001:db8::1".parse().unwrap(), dst: "2001:db8::2".parse().unwrap(), ..flows[0] };
        buf.clear();
        e.data(&mut buf, 1_700_000_002, &[v6]);
        got.clear();
        decode(exporter, &buf, &mut cache, &mut |r: &FlowRecord| got.push(*r)).unwrap();
        assert_eq!(got[0].dst, v6.dst);
    }
}
