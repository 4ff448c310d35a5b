//! sFlow version 5 (sflow.org, "sFlow Version 5", July 2004; its XDR definitions are quoted by
//! name below). Everything is XDR: big-endian 32-bit words, `opaque<>` data as a length and the
//! bytes padded to 4.
//!
//! ```text
//! datagram:  version(4)=5 agent_address(type(4): 1 IPv4 | 2 IPv6, then 4 or 16 bytes)
//!            sub_agent_id(4) sequence_number(4) uptime(4, ms) samples<>
//! sample:    data_format(4: enterprise << 12 | format) length(4) sample_data
//! ```
//!
//! Read here: `flow_sample` (0:1) and `flow_sample_expanded` (0:3), with their flow records
//! `sampled_header` (0:1, header protocols Ethernet, IPv4 and IPv6, dissected with
//! [`bawaba_wire::packet`]), `sampled_ipv4` (0:3), `sampled_ipv6` (0:4), `extended_router`
//! (0:1002, prefix lengths) and `extended_gateway` (0:1003, AS numbers); `counters_sample`
//! (0:2) and `counters_sample_expanded` (0:4) with `if_counters` (0:1). Other sample and record
//! formats are skipped by their length.
//!
//! A flow sample becomes one [`FlowRecord`] with `packets = 1`, `bytes` the IP packet's length
//! (like NetFlow's octet counts: from the IP header's length field when the sampled header
//! holds the whole IP header, else `frame_length - stripped` less the link-layer header) and
//! the sample's sampling rate. Samples of non-IP packets are counted as skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bawaba_wire::packet::{self, PacketError};

use crate::cursor::Cursor;
use crate::record::Emitter;
use crate::{
    CounterRecord, DatagramSummary, FlowError, FlowProtocol, FlowRecord, Sampling, SamplingSource, TemplateCache,
    Visitor,
};

/// `header_protocol` values of `sampled_header` this module dissects.
mod header_protocol {
    pub(super) const ETHERNET: u32 = 1;
    pub(super) const IPV4: u32 = 11;
    pub(super) const IPV6: u32 = 12;
}

/// What the datagram header says, for the records of its samples.
struct Datagram {
    exporter: IpAddr,
    agent: IpAddr,
    sub_agent: u32,
    uptime_ms: u32,
    configured: Option<u32>,
}

pub(crate) fn decode<V: Visitor>(
    exporter: IpAddr,
    datagram: &[u8],
    cache: &TemplateCache,
    visitor: &mut V,
) -> Result<DatagramSummary, FlowError> {
    let mut c = Cursor::new(datagram);
    c.skip(4, "version")?;
    let agent = address(&mut c, "agent address type")?;
    let sub_agent = c.u32("sub_agent_id")?;
    let sequence = c.u32("sequence_number")?;
    let uptime_ms = c.u32("uptime")?;
    let samples = c.u32("sample count")?;

    let mut summary = DatagramSummary::new(FlowProtocol::SflowV5);
    summary.observation_domain = sub_agent;
    summary.sequence = sequence;
    summary.agent = Some(agent);
    let mut out = Emitter { visitor, summary };
    let configured = cache.configured_sampling(exporter);
    let dg = Datagram { exporter, agent, sub_agent, uptime_ms, configured };
    for _ in 0..samples {
        let format = c.u32("sample data_format")?;
        let body = opaque(&mut c, "sample")?;
        let result = match format {
            1 => flow_sample(&dg, body, false, &mut out),
            3 => flow_sample(&dg, body, true, &mut out),
            2 => counters_sample(&dg, body, false, &mut out),
            4 => counters_sample(&dg, body, true, &mut out),
            _ => {
                out.summary.skipped += 1;
                Ok(())
            }
        };
        if let Err(e) = result {
            out.problem(&e);
        }
    }
    Ok(out.summary)
}

/// An `address`: type 0 (unknown, no bytes), 1 (IPv4), 2 (IPv6).
fn address(c: &mut Cursor<'_>, what: &'static str) -> Result<IpAddr, FlowError> {
    let offset = c.offset();
    match c.u32(what)? {
        0 => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        1 => Ok(IpAddr::V4(Ipv4Addr::from(c.array::<4>("IPv4 address")?))),
        2 => Ok(IpAddr::V6(Ipv6Addr::from(c.array::<16>("IPv6 address")?))),
        value => Err(FlowError::BadValue { offset, what, value }),
    }
}

/// An XDR `opaque<>`: a length, the bytes, and padding to 4 (tolerated when missing at the
/// very end).
fn opaque<'a>(c: &mut Cursor<'a>, what: &'static str) -> Result<Cursor<'a>, FlowError> {
    let len_at = c.offset();
    let len = c.u32(what)? as usize;
    if len > c.remaining() {
        return Err(FlowError::BadLength { offset: len_at, what, length: len });
    }
    let body = c.sub(len, what)?;
    let pad = (4 - len % 4) % 4;
    c.skip(pad.min(c.remaining()), "XDR padding")?;
    Ok(body)
}

/// An `interface` of a compact flow sample: format in the top 2 bits; format 0 is an ifIndex,
/// 0x3fffffff meaning unknown.
fn if_index(format: u32, value: u32) -> u32 {
    if format == 0 && value != 0x3fff_ffff {
        value
    } else {
        0
    }
}

/// `flow_sample` or `flow_sample_expanded`.
fn flow_sample<V: Visitor>(
    dg: &Datagram,
    mut c: Cursor<'_>,
    expanded: bool,
    out: &mut Emitter<'_, V>,
) -> Result<(), FlowError> {
    c.skip(4, "sample sequence_number")?;
    c.skip(if expanded { 8 } else { 4 }, "source_id")?;
    let rate = c.u32("sampling_rate")?;
    let _pool = c.u32("sample_pool")?;
    let _drops = c.u32("drops")?;
    let (input, output) = if expanded {
        let (in_format, in_value) = (c.u32("input format")?, c.u32("input value")?);
        let (out_format, out_value) = (c.u32("output format")?, c.u32("output value")?);
        (if_index(in_format, in_value), if_index(out_format, out_value))
    } else {
        let (i, o) = (c.u32("input")?, c.u32("output")?);
        (if_index(i >> 30, i & 0x3fff_ffff), if_index(o >> 30, o & 0x3fff_ffff))
    };
    let records = c.u32("flow record count")?;

    let mut record = FlowRecord {
        packets: 1,
        input_ifindex: input,
        output_ifindex: output,
        // A rate of 0 says nothing; fall back to configuration.
        sampling: match (rate, dg.configured) {
            (0, Some(r)) => Sampling::known(r, SamplingSource::Config),
            _ => Sampling::known(rate, SamplingSource::PacketHeader),
        },
        ..FlowRecord::empty(FlowProtocol::SflowV5, dg.exporter, dg.sub_agent)
    };
    let mut have_ip = false;
    for _ in 0..records {
        let format = c.u32("flow record data_format")?;
        let mut r = opaque(&mut c, "flow record")?;
        match format {
            1 if !have_ip => have_ip = sampled_header(&mut r, &mut record)?,
            3 | 4 if !have_ip => {
                // sampled_ipv4 / sampled_ipv6
                record.bytes = u64::from(r.u32("sampled IP length")?);
                record.protocol = r.u32("sampled IP protocol")? as u8;
                if format == 3 {
                    record.src = IpAddr::V4(Ipv4Addr::from(r.array::<4>("src_ip")?));
                    record.dst = IpAddr::V4(Ipv4Addr::from(r.array::<4>("dst_ip")?));
                } else {
                    record.src = IpAddr::V6(Ipv6Addr::from(r.array::<16>("src_ip")?));
                    record.dst = IpAddr::V6(Ipv6Addr::from(r.array::<16>("dst_ip")?));
                }
                record.src_port = r.u32("src_port")? as u16;
                record.dst_port = r.u32("dst_port")? as u16;
                record.tcp_flags = r.u32("tcp_flags")? as u8;
                record.tos = r.u32("tos")? as u8;
                have_ip = true;
            }
            1002 => {
                // extended_router
                address(&mut r, "next hop address type")?;
                record.src_prefix_len = Some(r.u32("src_mask_len")? as u8);
                record.dst_prefix_len = Some(r.u32("dst_mask_len")? as u8);
            }
            1003 => extended_gateway(&mut r, &mut record)?,
            _ => {}
        }
    }
    if have_ip {
        out.flow(&record);
    } else {
        out.summary.skipped += 1;
    }
    Ok(())
}

/// `sampled_header`: dissects the packet header into `record`. `Ok(false)` for a header that
/// is not IP (ARP, LLDP, ...) or of a header protocol this module does not read.
fn sampled_header(r: &mut Cursor<'_>, record: &mut FlowRecord) -> Result<bool, FlowError> {
    let protocol = r.u32("header_protocol")?;
    let frame_length = u64::from(r.u32("frame_length")?);
    let stripped = u64::from(r.u32("stripped")?);
    let header_at = r.offset() + 4;
    let header = opaque(r, "sampled header")?.rest();
    let dissected = match protocol {
        header_protocol::ETHERNET => packet::dissect_ethernet(header),
        header_protocol::IPV4 | header_protocol::IPV6 => packet::dissect_ip(header),
        _ => return Ok(false),
    };
    let p = match dissected {
        Ok(p) => p,
        Err(PacketError::NotIp { .. }) => return Ok(false),
        Err(source) => return Err(FlowError::BadPacket { offset: header_at, source }),
    };
    record.src = p.src;
    record.dst = p.dst;
    record.protocol = p.protocol;
    record.src_port = p.src_port().unwrap_or(0);
    record.dst_port = p.dst_port().unwrap_or(0);
    record.tcp_flags = p.tcp().map_or(0, |t| t.flags);
    record.fragment = Some(p.fragmented);
    record.tos = match p.ip {
        [v, tos, ..] if v >> 4 == 4 => *tos,
        [a, b, ..] => (a << 4) | (b >> 4),
        _ => 0,
    };
    if matches!(p.protocol, packet::protocol::ICMP | packet::protocol::ICMPV6) {
        if let [t, code, ..] = p.ip.get(p.transport_offset..).unwrap_or(&[]) {
            record.dst_port = u16::from(*t) << 8 | u16::from(*code);
        }
    }
    record.bytes = if p.truncated {
        // The IP packet runs to the end of the sampled header; what came before it is the
        // link-layer header, which the frame length counts and NetFlow's octets do not.
        let link_header = (header.len() - p.ip.len()) as u64;
        frame_length.saturating_sub(stripped).saturating_sub(link_header)
    } else {
        p.ip.len() as u64
    };
    Ok(true)
}

/// `extended_gateway`: the source AS, and the destination AS as the last AS of the path (the
/// router's own AS when the path is empty: the destination is local).
fn extended_gateway(r: &mut Cursor<'_>, record: &mut FlowRecord) -> Result<(), FlowError> {
    address(r, "next hop address type")?;
    let own_as = r.u32("as")?;
    record.src_as = Some(r.u32("src_as")?);
    r.skip(4, "src_peer_as")?;
    let mut last = None;
    for _ in 0..r.u32("dst_as_path segment count")? {
        r.skip(4, "as_path_segment type")?;
        let n = r.u32("as_path_segment length")? as usize;
        if n.saturating_mul(4) > r.remaining() {
            return Err(r.truncated("as_path_segment"));
        }
        if n > 0 {
            r.skip((n - 1) * 4, "as_path_segment")?;
            last = Some(r.u32("as_path_segment")?);
        }
    }
    record.dst_as = Some(last.unwrap_or(own_as));
    Ok(())
}

/// `counters_sample` or `counters_sample_expanded`.
fn counters_sample<V: Visitor>(
    dg: &Datagram,
    mut c: Cursor<'_>,
    expanded: bool,
    out: &mut Emitter<'_, V>,
) -> Result<(), FlowError> {
    let sequence = c.u32("sample sequence_number")?;
    let source_id = if expanded {
        let kind = c.u32("source_id_type")?;
        let index = c.u32("source_id_index")?;
        kind << 24 | (index & 0x00ff_ffff)
    } else {
        c.u32("source_id")?
    };
    for _ in 0..c.u32("counter record count")? {
        let format = c.u32("counter record data_format")?;
        let mut r = opaque(&mut c, "counter record")?;
        if format != 1 {
            out.summary.skipped += 1;
            continue;
        }
        // if_counters
        let record = CounterRecord {
            exporter: dg.exporter,
            agent: dg.agent,
            sub_agent: dg.sub_agent,
            source_id,
            sequence,
            uptime_ms: dg.uptime_ms,
            if_index: r.u32("ifIndex")?,
            if_type: r.u32("ifType")?,
            if_speed: r.u64("ifSpeed")?,
            if_direction: r.u32("ifDirection")?,
            if_status: r.u32("ifStatus")?,
            in_octets: r.u64("ifInOctets")?,
            in_unicast: r.u32("ifInUcastPkts")?,
            in_multicast: r.u32("ifInMulticastPkts")?,
            in_broadcast: r.u32("ifInBroadcastPkts")?,
            in_discards: r.u32("ifInDiscards")?,
            in_errors: r.u32("ifInErrors")?,
            in_unknown_protos: r.u32("ifInUnknownProtos")?,
            out_octets: r.u64("ifOutOctets")?,
            out_unicast: r.u32("ifOutUcastPkts")?,
            out_multicast: r.u32("ifOutMulticastPkts")?,
            out_broadcast: r.u32("ifOutBroadcastPkts")?,
            out_discards: r.u32("ifOutDiscards")?,
            out_errors: r.u32("ifOutErrors")?,
            promiscuous: r.u32("ifPromiscuousMode")?,
        };
        out.counters(&record);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::{be, hex, ip, Collect};
    use crate::{decode, ErrorKind};
    use bawaba_wire::build::{ethernet_frame, Header};

    /// An XDR `opaque<>` with its format word: format, length, body, padding.
    fn record(format: u32, body: &[u8]) -> Vec<u8> {
        let mut r = be(&[(u64::from(format), 4), (body.len() as u64, 4)]);
        r.extend_from_slice(body);
        r.resize(r.len() + (4 - body.len() % 4) % 4, 0);
        r
    }

    pub(crate) fn datagram(agent: &[u8], samples: &[Vec<u8>]) -> Vec<u8> {
        let mut d = be(&[(5, 4)]);
        d.extend_from_slice(agent);
        d.extend(be(&[(3, 4), (77, 4), (123_456, 4), (samples.len() as u64, 4)]));
        d.extend(samples.concat());
        d
    }

    pub(crate) const AGENT_V4: &[u8] = &[0, 0, 0, 1, 10, 0, 0, 1];

    pub(crate) fn tcp_frame(payload: usize) -> Vec<u8> {
        let mut f = Vec::new();
        let tcp = Header::Tcp { src_port: 40000, dst_port: 443, seq: 1, ack: 2, flags: 0x18, window: 100 };
        ethernet_frame(&mut f, [2; 6], [4; 6], ip("198.18.0.7"), ip("198.19.0.9"), tcp, &vec![0; payload]);
        f
    }

    /// `flow_sample` (compact) with one `sampled_header` of the first `cut` bytes of `frame`.
    pub(crate) fn raw_header_sample(frame: &[u8], cut: usize, rate: u32) -> Vec<u8> {
        let header = &frame[..cut.min(frame.len())];
        let mut h = be(&[(1, 4), (frame.len() as u64 + 4, 4), (4, 4), (header.len() as u64, 4)]);
        h.extend_from_slice(header);
        h.resize(h.len() + (4 - header.len() % 4) % 4, 0);
        // sequence, source id, rate, pool, drops, input ifIndex 5, output 0x3fffffff
        // (unknown), one record.
        let mut s = be(&[(1, 4), (3, 4), (u64::from(rate), 4), (4000, 4), (0, 4), (5, 4), (0x3fff_ffff, 4), (1, 4)]);
        s.extend(record(1, &h));
        record(1, &s)
    }

    #[test]
    fn raw_ethernet_header_samples() {
        let small = tcp_frame(10);
        let big = tcp_frame(1400);
        let d = datagram(AGENT_V4, &[raw_header_sample(&small, 128, 512), raw_header_sample(&big, 128, 512)]);
        let mut v = Collect::default();
        let s = decode(ip("10.0.0.1"), &d, &mut TemplateCache::new(), &mut v).unwrap();
        assert_eq!((s.protocol, s.flows, s.sequence, s.observation_domain), (FlowProtocol::SflowV5, 2, 77, 3));
        assert_eq!(s.agent, Some(ip("10.0.0.1")));
        let r = v.flows[0];
        assert_eq!((r.src, r.dst, r.protocol), (ip("198.18.0.7"), ip("198.19.0.9"), 6));
        assert_eq!((r.src_port, r.dst_port, r.tcp_flags, r.fragment), (40000, 443, 0x18, Some(false)));
        assert_eq!((r.packets, r.bytes), (1, 50));
        assert_eq!((r.input_ifindex, r.output_ifindex), (5, 0));
        assert_eq!(r.sampling, Sampling { rate: Some(512), source: SamplingSource::PacketHeader });
        // The big frame's header was cut at 128 bytes: bytes come from frame_length less the
        // FCS (stripped) and the Ethernet header.
        assert_eq!(v.flows[1].bytes, 1440);
    }

    #[test]
    fn expanded_samples_with_sampled_ipv4_router_and_gateway() {
        let ipv4 = be(&[(60, 4), (17, 4), (0xc612_0001, 4), (0xc613_0001, 4), (5353, 4), (53, 4), (0, 4), (0x20, 4)]);
        let router = be(&[(1, 4), (0xc612_00fe, 4), (24, 4), (16, 4)]);
        // next hop, own AS 65000, src AS 64500, src peer AS, one AS_SEQUENCE 65001 65002,
        // no communities, localpref.
        let gateway = be(&[
            (1, 4),
            (0xc612_00fe, 4),
            (65000, 4),
            (64500, 4),
            (64501, 4),
            (1, 4),
            (2, 4),
            (2, 4),
            (65001, 4),
            (65002, 4),
            (0, 4),
            (100, 4),
        ]);
        let unknown = record((4413 << 12) | 7, &[1, 2, 3]);
        let mut s =
            be(&[(9, 4), (0, 4), (7, 4), (1000, 4), (2000, 4), (0, 4), (0, 4), (11, 4), (0, 4), (12, 4), (4, 4)]);
        s.extend([record(3, &ipv4), record(1002, &router), record(1003, &gateway), unknown].concat());
        let d = datagram(AGENT_V4, &[record(3, &s)]);
        let mut v = Collect::default();
        let sum = decode(ip("10.0.0.1"), &d, &mut TemplateCache::new(), &mut v).unwrap();
        assert_eq!(sum.flows, 1);
        let r = v.flows[0];
        assert_eq!(
            (r.src, r.dst, r.src_port, r.dst_port, r.protocol, r.tos),
            (ip("198.18.0.1"), ip("198.19.0.1"), 5353, 53, 17, 0x20)
        );
        assert_eq!((r.bytes, r.input_ifindex, r.output_ifindex), (60, 11, 12));
        assert_eq!(
            (r.src_prefix_len, r.dst_prefix_len, r.src_as, r.dst_as),
            (Some(24), Some(16), Some(64500), Some(65002))
        );
        assert_eq!(r.sampling.rate, Some(1000));
    }

    #[test]
    fn ipv6_agent_and_sampled_ipv6() {
        let mut ipv6 = be(&[(1280, 4), (6, 4)]);
        ipv6.extend(hex("20010db8000100000000000000000002 20010db8000200000000000000000002"));
        ipv6.extend(be(&[(1, 4), (2, 4), (0x12, 4), (0, 4)]));
        let mut s = be(&[(1, 4), (3, 4), (0, 4), (0, 4), (0, 4), (1, 4), (2, 4), (1, 4)]);
        s.extend(record(4, &ipv6));
        let agent = [be(&[(2, 4)]), hex("20010db8000000000000000000000001")].concat();
        let d = datagram(&agent, &[record(1, &s)]);
        let mut cache = TemplateCache::new();
        cache.set_configured_sampling(ip("2001:db8::1"), Some(4096));
        let mut v = Collect::default();
        let sum = decode(ip("2001:db8::1"), &d, &mut cache, &mut v).unwrap();
        assert_eq!(sum.agent, Some(ip("2001:db8::1")));
        let r = v.flows[0];
        assert_eq!(
            (r.src, r.dst, r.protocol, r.tcp_flags, r.bytes),
            (ip("2001:db8:1::2"), ip("2001:db8:2::2"), 6, 0x12, 1280)
        );
        // The sample said rate 0: configuration fills in.
        assert_eq!(r.sampling, Sampling { rate: Some(4096), source: SamplingSource::Config });
    }

    fn if_counters(index: u32) -> Vec<u8> {
        be(&[
            (u64::from(index), 4),
            (6, 4),
            (10_000_000_000, 8),
            (1, 4),
            (3, 4),
            (1_000_000, 8),
            (10, 4),
            (11, 4),
            (12, 4),
            (13, 4),
            (14, 4),
            (15, 4),
            (2_000_000, 8),
            (20, 4),
            (21, 4),
            (22, 4),
            (23, 4),
            (24, 4),
            (0, 4),
        ])
    }

    #[test]
    fn counter_samples_and_skipped_formats() {
        let mut compact = be(&[(5, 4), (7, 4), (1, 4)]);
        compact.extend(record(1, &if_counters(7)));
        let mut expanded = be(&[(6, 4), (0, 4), (8, 4), (2, 4)]);
        expanded.extend(record(2, &[0; 52]));
        expanded.extend(record(1, &if_counters(8)));
        let arp = {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&[2; 6]);
            f.extend_from_slice(&[0x08, 0x06]);
            f.extend_from_slice(&[0; 28]);
            f
        };
        let unknown_sample = record((4413 << 12) | 1, &[0; 8]);
        let d = datagram(
            AGENT_V4,
            &[record(2, &compact), unknown_sample, record(4, &expanded), raw_header_sample(&arp, 128, 1)],
        );
        let mut v = Collect::default();
        let s = decode(ip("10.0.0.1"), &d, &mut TemplateCache::new(), &mut v).unwrap();
        // Skipped: the unknown sample, the ethernet counters record, the ARP sample.
        assert_eq!((s.counters, s.flows, s.skipped, s.problems), (2, 0, 3, 0));
        let c = v.counters[1];
        assert_eq!((c.if_index, c.source_id, c.sequence, c.uptime_ms), (8, 8, 6, 123_456));
        assert_eq!(
            (c.if_speed, c.in_octets, c.out_octets, c.in_errors, c.out_errors),
            (10_000_000_000, 1_000_000, 2_000_000, 14, 24)
        );
        assert_eq!((c.agent, c.sub_agent, c.if_status), (ip("10.0.0.1"), 3, 3));
    }

    #[test]
    fn a_bad_sample_loses_only_itself() {
        // A compact flow sample whose record count promises more than it holds, between two
        // good samples.
        let good = raw_header_sample(&tcp_frame(0), 128, 10);
        let bad = record(1, &be(&[(1, 4), (3, 4), (1, 4), (1, 4), (0, 4), (0, 4), (0, 4), (2, 4)]));
        let d = datagram(AGENT_V4, &[good.clone(), bad, good]);
        let mut v = Collect::default();
        let s = decode(ip("10.0.0.1"), &d, &mut TemplateCache::new(), &mut v).unwrap();
        assert_eq!((s.flows, s.problems), (2, 1));
        assert_eq!(v.problems[0].kind(), ErrorKind::Truncated);

        let mut bad_agent = datagram(AGENT_V4, &[]);
        bad_agent[7] = 9;
        let err = decode(ip("10.0.0.1"), &bad_agent, &mut TemplateCache::new(), &mut v).unwrap_err();
        assert_eq!(err, FlowError::BadValue { offset: 4, what: "agent address type", value: 9 });

        // A sample count beyond the datagram: the samples present are kept.
        let mut more = datagram(AGENT_V4, &[raw_header_sample(&tcp_frame(0), 128, 10)]);
        more[27] = 3;
        let mut v = Collect::default();
        let err = decode(ip("10.0.0.1"), &more, &mut TemplateCache::new(), &mut v).unwrap_err();
        assert_eq!((err.kind(), v.flows.len()), (ErrorKind::Truncated, 1));
    }
}
