//! NetFlow version 5: a 24-byte header and up to 30 fixed 48-byte records, all IPv4 (Cisco,
//! "NetFlow Export Datagram Format", version 5).
//!
//! ```text
//! header:  version(2)=5 count(2) sys_uptime(4) unix_secs(4) unix_nsecs(4) flow_sequence(4)
//!          engine_type(1) engine_id(1) sampling_interval(2: mode in the top 2 bits,
//!          interval in the low 14)
//! record:  srcaddr(4) dstaddr(4) nexthop(4) input(2) output(2) dPkts(4) dOctets(4)
//!          first(4) last(4) srcport(2) dstport(2) pad1(1) tcp_flags(1) prot(1) tos(1)
//!          src_as(2) dst_as(2) src_mask(1) dst_mask(1) pad2(2)
//! ```

use std::net::{IpAddr, Ipv4Addr};

use crate::cursor::Cursor;
use crate::record::Emitter;
use crate::{DatagramSummary, FlowError, FlowProtocol, FlowRecord, Sampling, SamplingSource, TemplateCache, Visitor};

/// Length of the header.
pub const HEADER_LEN: usize = 24;
/// Length of one record.
pub const RECORD_LEN: usize = 48;

/// Decodes a NetFlow v5 datagram. Records that fit are handed over even when the datagram is
/// shorter than its count says; the shortfall is then the error.
pub(crate) fn decode<V: Visitor>(
    exporter: IpAddr,
    datagram: &[u8],
    cache: &TemplateCache,
    visitor: &mut V,
) -> Result<DatagramSummary, FlowError> {
    let mut c = Cursor::new(datagram);
    c.skip(2, "version")?;
    let count = c.u16("record count")?;
    let uptime = c.u32("sys_uptime")?;
    let secs = c.u32("unix_secs")?;
    let nsecs = c.u32("unix_nsecs")?;
    let sequence = c.u32("flow_sequence")?;
    let engine_type = c.u8("engine_type")?;
    let engine_id = c.u8("engine_id")?;
    let sampling_field = c.u16("sampling_interval")?;

    let domain = u32::from(engine_type) << 8 | u32::from(engine_id);
    let export_ms = u64::from(secs) * 1000 + u64::from(nsecs / 1_000_000);
    // The low 14 bits are the interval whatever the mode bits say; 0 is what exporters send
    // when they do not sample and also when they do not say, so it means unknown here.
    let sampling = match sampling_field & 0x3fff {
        0 => cache
            .configured_sampling(exporter)
            .map_or(Sampling::UNKNOWN, |r| Sampling::known(r, SamplingSource::Config)),
        interval => Sampling::known(u32::from(interval), SamplingSource::PacketHeader),
    };
    let since_export = |t: u32| Some(export_ms.saturating_sub(u64::from(uptime.wrapping_sub(t))));

    let mut summary = DatagramSummary::new(FlowProtocol::NetflowV5);
    summary.observation_domain = domain;
    summary.sequence = sequence;
    let mut out = Emitter { visitor, summary };
    for _ in 0..count {
        let r: [u8; RECORD_LEN] = c.array("flow record")?;
        let be16 = |at: usize| u16::from_be_bytes([r[at], r[at + 1]]);
        let be32 = |at: usize| u32::from_be_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        let record = FlowRecord {
            src: IpAddr::V4(Ipv4Addr::new(r[0], r[1], r[2], r[3])),
            dst: IpAddr::V4(Ipv4Addr::new(r[4], r[5], r[6], r[7])),
            input_ifindex: u32::from(be16(12)),
            output_ifindex: u32::from(be16(14)),
            packets: u64::from(be32(16)),
            bytes: u64::from(be32(20)),
            start_ms: since_export(be32(24)),
            end_ms: since_export(be32(28)),
            src_port: be16(32),
            dst_port: be16(34),
            tcp_flags: r[37],
            protocol: r[38],
            tos: r[39],
            // 0 is what exporters send when they do not look these up (AS 0 is reserved,
            // RFC 7607), so it means absent.
            src_as: Some(u32::from(be16(40))).filter(|&a| a != 0),
            dst_as: Some(u32::from(be16(42))).filter(|&a| a != 0),
            src_prefix_len: Some(r[44]).filter(|&m| m != 0),
            dst_prefix_len: Some(r[45]).filter(|&m| m != 0),
            sampling,
            ..FlowRecord::empty(FlowProtocol::NetflowV5, exporter, domain)
        };
        out.flow(&record);
    }
    Ok(out.summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::decode;
    use crate::testutil::{hex, ip, Collect};

    /// softflowd 1.1.0 `-v 5` reading a capture of five UDP flows 198.18.0.N:100N -> 198.19.0.1:53,
    /// 3 packets of 38 bytes each.
    pub(crate) const SOFTFLOWD_V5: &str = "
        00050005000000006b0b24913b90a8400000000000000000c6120001c613000100000000000000000000000300000072
        ac5e8db0ac5e8db203e80035000011000000000000000000c6120002c613000100000000000000000000000300000072
        ac5e9198ac5e919a03e90035000011000000000000000000c6120003c613000100000000000000000000000300000072
        ac5e9580ac5e958203ea0035000011000000000000000000c6120004c613000100000000000000000000000300000072
        ac5e9968ac5e996a03eb0035000011000000000000000000c6120005c613000100000000000000000000000300000072
        ac5e9d50ac5e9d5203ec0035000011000000000000000000";

    #[test]
    fn softflowd_datagram() {
        let d = hex(SOFTFLOWD_V5);
        let mut v = Collect::default();
        let s = decode(ip("127.0.0.1"), &d, &mut TemplateCache::new(), &mut v).unwrap();
        assert_eq!((s.protocol, s.flows, s.sampling_unknown, s.sequence), (FlowProtocol::NetflowV5, 5, 5, 0));
        for (i, r) in v.flows.iter().enumerate() {
            assert_eq!(r.src, ip(&format!("198.18.0.{}", i + 1)));
            assert_eq!(r.dst, ip("198.19.0.1"));
            assert_eq!((r.src_port, r.dst_port, r.protocol), (1000 + i as u16, 53, 17));
            assert_eq!((r.packets, r.bytes), (3, 114));
            // Last switched 2 ms after first switched.
            assert_eq!(r.end_ms.unwrap() - r.start_ms.unwrap(), 2);
            assert_eq!((r.src_as, r.src_prefix_len, r.fragment), (None, None, None));
            assert_eq!(r.sampling, Sampling::UNKNOWN);
        }
    }

    fn datagram(sampling: u16, records: u16) -> Vec<u8> {
        let mut d = hex("0005 0000 00002710 65000000 001e8480 0000002a 0102");
        d[2..4].copy_from_slice(&records.to_be_bytes());
        d.extend_from_slice(&sampling.to_be_bytes());
        for i in 0..records {
            let mut r = hex("c6120001 c6130001 c6120001 0003 0004 00000002 00000050 00002328 00002710 9c40 01bb 00 1b 06 10 fde8 fde9 18 10 0000");
            r[3] += i as u8;
            d.extend_from_slice(&r);
        }
        d
    }

    #[test]
    fn fields_times_and_header_sampling() {
        let d = datagram(0x4000 | 100, 2);
        let mut v = Collect::default();
        let s = decode(ip("192.0.2.1"), &d, &mut TemplateCache::new(), &mut v).unwrap();
        assert_eq!((s.observation_domain, s.sequence, s.flows), (0x0102, 42, 2));
        let r = v.flows[1];
        assert_eq!(r.src, ip("198.18.0.2"));
        assert_eq!((r.input_ifindex, r.output_ifindex, r.packets, r.bytes), (3, 4, 2, 80));
        assert_eq!((r.src_port, r.dst_port, r.tcp_flags, r.protocol, r.tos), (40000, 443, 0x1b, 6, 0x10));
        assert_eq!(
            (r.src_as, r.dst_as, r.src_prefix_len, r.dst_prefix_len),
            (Some(65000), Some(65001), Some(24), Some(16))
        );
        // Export at unix 0x65000000 s + 2 ms, uptime 10000 ms; first 9000, last 10000.
        let export = 0x6500_0000u64 * 1000 + 2;
        assert_eq!((r.start_ms, r.end_ms), (Some(export - 1000), Some(export)));
        assert_eq!(r.sampling, Sampling { rate: Some(100), source: SamplingSource::PacketHeader });
    }

    #[test]
    fn unknown_sampling_is_not_guessed_but_configuration_fills_it() {
        let d = datagram(0, 1);
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        decode(ip("192.0.2.1"), &d, &mut cache, &mut v).unwrap();
        assert_eq!(v.flows[0].sampling, Sampling::UNKNOWN);
        cache.set_configured_sampling(ip("192.0.2.1"), Some(2048));
        decode(ip("192.0.2.1"), &d, &mut cache, &mut v).unwrap();
        assert_eq!(v.flows[1].sampling, Sampling { rate: Some(2048), source: SamplingSource::Config });
        // Another exporter is not configured.
        decode(ip("192.0.2.2"), &d, &mut cache, &mut v).unwrap();
        assert_eq!(v.flows[2].sampling, Sampling::UNKNOWN);
    }

    #[test]
    fn short_datagram_keeps_the_records_that_fit() {
        let d = datagram(0, 3);
        let mut v = Collect::default();
        let err = decode(ip("192.0.2.1"), &d[..HEADER_LEN + RECORD_LEN * 2 + 10], &mut TemplateCache::new(), &mut v);
        assert_eq!(err, Err(FlowError::Truncated { offset: HEADER_LEN + RECORD_LEN * 2, what: "flow record" }));
        assert_eq!(v.flows.len(), 2);
    }
}
