//! IPFIX (RFC 7011): a 16-byte message header, then sets; templates come from
//! [`crate::TemplateCache`].
//!
//! ```text
//! header (RFC 7011 section 3.1): version(2)=10 length(2) export_time(4, s) sequence(4)
//!                                observation_domain_id(4)
//! ```
//!
//! The message length must fit in the datagram; bytes after it are ignored (over UDP a
//! datagram carries one message, RFC 7011 section 10.3.3).

use std::net::IpAddr;

use crate::cursor::Cursor;
use crate::data::Clock;
use crate::record::Emitter;
use crate::sets::{decode_sets, Dialect, Message};
use crate::{DatagramSummary, FlowError, FlowProtocol, TemplateCache, Visitor};

/// Length of the message header.
pub const HEADER_LEN: usize = 16;

pub(crate) fn decode<V: Visitor>(
    exporter: IpAddr,
    datagram: &[u8],
    cache: &mut TemplateCache,
    visitor: &mut V,
) -> Result<DatagramSummary, FlowError> {
    let mut c = Cursor::new(datagram);
    c.skip(2, "version")?;
    let length = usize::from(c.u16("message length")?);
    let export_time = c.u32("export time")?;
    let sequence = c.u32("sequence")?;
    let domain = c.u32("observation domain")?;
    if length < HEADER_LEN {
        return Err(FlowError::BadLength { offset: 2, what: "message", length });
    }
    if length > datagram.len() {
        return Err(FlowError::Truncated { offset: datagram.len(), what: "message" });
    }
    let sets = c.sub(length - HEADER_LEN, "message")?;

    let mut summary = DatagramSummary::new(FlowProtocol::Ipfix);
    summary.observation_domain = domain;
    summary.sequence = sequence;
    let mut out = Emitter { visitor, summary };
    let msg = Message {
        dialect: Dialect::Ipfix,
        exporter,
        domain,
        clock: Clock { export_ms: u64::from(export_time) * 1000, uptime_ms: None },
    };
    decode_sets(&msg, sets, cache, &mut out)?;
    Ok(out.summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::{be, hex, ip, ipfix, set, template, Collect};
    use crate::{decode, CacheLimits, Sampling, SamplingSource};

    /// softflowd 1.1.0 `-v 10` reading the same capture as the v9 test: four data templates
    /// with flowStart/EndSysUpTime, an options template (scope meteringProcessId;
    /// systemInitTimeMilliseconds, samplingPacketInterval 1, samplingPacketSpace 0,
    /// selectorAlgorithm, interfaceName), its data, and five flows.
    pub(crate) const SOFTFLOWD_IPFIX: &str = "
        000a02446b0b23210000000500000000000200480400001000080004000c000400160004001500040001000400020004
        000a0004000e0004003d00010088000100070002000b00020004000100060001003c000100050001000200400401000e
        00080004000c000400160004001500040001000400020004000a0004000e0004003d0001008800010020000200040001
        003c0001000500010002004808000010001b0010001c001000160004001500040001000400020004000a0004000e0004
        003d00010088000100070002000b00020004000100060001003c000100050001000200400801000e001b0010001c0010
        00160004001500040001000400020004000a0004000e0004003d000100880001008b000200040001003c000100050001
        00030022010000060001008f000400a00008013100040132000401300002005200100100002a0000559a000001a22381
        3bac00000001000000000001742e7063617000000000000000000000040000d8c6120001c6130001ac642c53ac642c55
        00000072000000030000000000000000000103e8003511000400c6120002c6130001ac64303bac64303d000000720000
        00030000000000000000000103e9003511000400c6120003c6130001ac643423ac643425000000720000000300000000
        00000000000103ea003511000400c6120004c6130001ac64380bac64380d000000720000000300000000000000000001
        03eb003511000400c6120005c6130001ac643bf3ac643bf500000072000000030000000000000000000103ec00351100
        04000000";

    #[test]
    fn softflowd_message() {
        let d = hex(SOFTFLOWD_IPFIX);
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        let s = decode(ip("127.0.0.1"), &d, &mut cache, &mut v).unwrap();
        assert_eq!(
            (s.protocol, s.templates, s.options_records, s.flows, s.sequence),
            (FlowProtocol::Ipfix, 5, 1, 5, 5)
        );
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        let init = 0x0000_01a2_2381_3bacu64;
        for (i, r) in v.flows.iter().enumerate() {
            assert_eq!(r.src, ip(&format!("198.18.0.{}", i + 1)));
            assert_eq!((r.src_port, r.dst_port, r.protocol, r.packets, r.bytes), (1000 + i as u16, 53, 17, 3, 114));
            assert_eq!(r.sampling, Sampling { rate: Some(1), source: SamplingSource::OptionsTemplate });
        }
        // flowStartSysUpTime counts from the options' systemInitTimeMilliseconds.
        assert_eq!(v.flows[0].start_ms, Some(init + 0xac64_2c53));
        assert_eq!(v.flows[0].end_ms, Some(init + 0xac64_2c55));
    }

    const FLOW: [(u16, u16); 4] = [(8, 4), (12, 4), (2, 8), (1, 8)];

    fn flow(src: u8, packets: u64, bytes: u64) -> Vec<u8> {
        [vec![198, 18, 0, src, 198, 19, 0, 1], be(&[(packets, 8), (bytes, 8)])].concat()
    }

    #[test]
    fn withdrawal_and_withdraw_all() {
        let exporter = ip("192.0.2.5");
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        let tpls = set(2, &[template(256, &FLOW), template(257, &FLOW), template(258, &FLOW)].concat());
        let opts = set(3, &hex("0110 0002 0001 012e 0004 0131 0004"));
        let s = decode(exporter, &ipfix(1, 0, &[tpls, opts]), &mut cache, &mut v).unwrap();
        assert_eq!((s.templates, cache.total_fields()), (4, 14));

        // RFC 7011 section 8.1: field count 0 withdraws one template.
        let s = decode(exporter, &ipfix(1, 0, &[set(2, &hex("0100 0000"))]), &mut cache, &mut v).unwrap();
        assert_eq!(s.withdrawn, 1);
        let s = decode(exporter, &ipfix(1, 0, &[set(256, &flow(1, 1, 1))]), &mut cache, &mut v).unwrap();
        assert_eq!((s.flows, s.sets_without_template), (0, 1));
        let s = decode(exporter, &ipfix(1, 0, &[set(257, &flow(1, 1, 1))]), &mut cache, &mut v).unwrap();
        assert_eq!(s.flows, 1);

        // Template id 2 in a template set withdraws all data templates, not options templates.
        let s = decode(exporter, &ipfix(1, 0, &[set(2, &hex("0002 0000"))]), &mut cache, &mut v).unwrap();
        assert_eq!(s.withdrawn, 2);
        assert_eq!(cache.template_count(exporter), 1);
        assert!(cache.template(exporter, FlowProtocol::Ipfix, 1, 0x110).unwrap().is_options());
        // And 3 in an options template set withdraws the options templates.
        let s = decode(exporter, &ipfix(1, 0, &[set(3, &hex("0003 0000"))]), &mut cache, &mut v).unwrap();
        assert_eq!(s.withdrawn, 1);
        assert_eq!((cache.template_count(exporter), cache.total_fields()), (0, 0));
        // A reserved id other than the set's is a problem.
        let s = decode(exporter, &ipfix(1, 0, &[set(2, &hex("0005 0000"))]), &mut cache, &mut v).unwrap();
        assert_eq!(s.problems, 1);
    }

    #[test]
    fn variable_length_fields() {
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        // sourceIPv4Address, interfaceName (variable), protocolIdentifier, applicationName
        // (variable), destinationTransportPort.
        let tpl = set(2, &template(256, &[(8, 4), (82, 65535), (4, 1), (96, 65535), (11, 2)]));
        let long = vec![b'x'; 300];
        let mut records = hex("c6120001 03 657468 06 00 01bb");
        // RFC 7011 section 7: 255 then a 2-byte length for 255 bytes or more.
        records.extend_from_slice(&hex("c6120002 ff 012c"));
        records.extend_from_slice(&long);
        records.extend_from_slice(&hex("11 02 6e73 0035"));
        let s = decode(ip("192.0.2.5"), &ipfix(0, 0, &[tpl, set(256, &records)]), &mut cache, &mut v).unwrap();
        assert_eq!(s.flows, 2);
        assert_eq!((v.flows[0].src, v.flows[0].protocol, v.flows[0].dst_port), (ip("198.18.0.1"), 6, 443));
        assert_eq!((v.flows[1].src, v.flows[1].protocol, v.flows[1].dst_port), (ip("198.18.0.2"), 17, 53));
    }

    #[test]
    fn enterprise_fields_are_skipped() {
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        // sourceIPv4Address; enterprise 29305 element 1 (4 bytes, would be octetDeltaCount if
        // the enterprise bit were ignored); enterprise 9 element 8 variable; packetDeltaCount.
        let tpl = set(2, &hex("0100 0004 0008 0004 8001 0004 00007279 8008 ffff 00000009 0002 0004"));
        let data = set(256, &hex("c6120001 deadbeef 02 0a0b 00000005"));
        let s = decode(ip("192.0.2.5"), &ipfix(0, 0, &[tpl, data]), &mut cache, &mut v).unwrap();
        assert_eq!(s.flows, 1);
        assert_eq!((v.flows[0].src, v.flows[0].bytes, v.flows[0].packets), (ip("198.18.0.1"), 0, 5));
        let t = cache.template(ip("192.0.2.5"), FlowProtocol::Ipfix, 0, 256).unwrap();
        assert_eq!(t.fields()[1].enterprise, 29305);
        assert_eq!(t.min_record_len(), 13);
    }

    #[test]
    fn options_sampling_by_selector_id_and_in_the_record() {
        let exporter = ip("192.0.2.5");
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        // Options template: scope selectorId (8 bytes); samplingPacketInterval,
        // samplingPacketSpace (RFC 5477 section 8.2.1).
        let opts_tpl = set(3, &hex("0200 0003 0001 012e 0008 0131 0004 0132 0004"));
        let opts = set(0x200, &[be(&[(7, 8), (1, 4), (99, 4)]), be(&[(8, 8), (1, 4), (999, 4)])].concat());
        let tpl = set(2, &template(256, &[(8, 4), (302, 8), (2, 4)]));
        let tpl_interval = set(2, &template(257, &[(8, 4), (34, 4), (2, 4)]));
        let data = set(
            256,
            &[
                hex("c6120001"),
                be(&[(7, 8), (1, 4)]),
                hex("c6120002"),
                be(&[(8, 8), (1, 4)]),
                hex("c6120003"),
                be(&[(9, 8), (1, 4)]),
            ]
            .concat(),
        );
        let data_interval = set(257, &hex("c6120004 00000200 00000001"));
        let s = decode(
            exporter,
            &ipfix(0, 0, &[opts_tpl, opts, tpl, tpl_interval, data.clone(), data_interval]),
            &mut cache,
            &mut v,
        )
        .unwrap();
        assert_eq!((s.options_records, s.flows, s.sampling_unknown), (2, 4, 1));
        let opt = |r| Sampling { rate: Some(r), source: SamplingSource::OptionsTemplate };
        assert_eq!(v.flows[0].sampling, opt(100));
        assert_eq!(v.flows[1].sampling, opt(1000));
        assert_eq!(v.flows[2].sampling, Sampling::UNKNOWN);
        assert_eq!(v.flows[3].sampling, Sampling { rate: Some(512), source: SamplingSource::Record });
        // Counters are as exported, never scaled.
        assert!(v.flows.iter().all(|r| r.packets == 1));

        // Options data without a selector id covers the whole domain, including selector 9.
        let opts_tpl = set(3, &hex("0201 0002 0001 0090 0004 0022 0004"));
        let opts = set(0x201, &be(&[(1, 4), (64, 4)]));
        let mut v = Collect::default();
        decode(exporter, &ipfix(0, 0, &[opts_tpl, opts, data]), &mut cache, &mut v).unwrap();
        assert_eq!([v.flows[0].sampling, v.flows[2].sampling], [opt(100), opt(64)]);
    }

    #[test]
    fn ipv6_icmp_and_absolute_times() {
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        let tpl = set(2, &template(256, &[(27, 16), (28, 16), (4, 1), (139, 2), (152, 8), (153, 8), (29, 1), (30, 1)]));
        let mut rec = ip_octets("2001:db8:1::2");
        rec.extend(ip_octets("2001:db8:2::2"));
        rec.extend(hex("3a 8000"));
        rec.extend(be(&[(1_700_000_000_123, 8), (1_700_000_001_456, 8), (48, 1), (64, 1)]));
        decode(ip("2001:db8::1"), &ipfix(0, 0, &[tpl, set(256, &rec)]), &mut cache, &mut v).unwrap();
        let r = v.flows[0];
        assert_eq!((r.src, r.dst, r.protocol, r.dst_port), (ip("2001:db8:1::2"), ip("2001:db8:2::2"), 58, 0x8000));
        assert_eq!((r.start_ms, r.end_ms), (Some(1_700_000_000_123), Some(1_700_000_001_456)));
        assert_eq!((r.src_prefix_len, r.dst_prefix_len), (Some(48), Some(64)));
    }

    #[test]
    fn clocks_at_the_edge_do_not_overflow() {
        // Found by the fuzzer: a systemInitTimeMilliseconds near u64::MAX plus an uptime.
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        let tpl = set(2, &template(256, &[(160, 8), (22, 4), (159, 8), (155, 8)]));
        let rec = be(&[(u64::MAX, 8), (5, 4), (u64::MAX, 8), (u64::MAX, 8)]);
        decode(ip("192.0.2.5"), &ipfix(0, 0, &[tpl, set(256, &rec)]), &mut cache, &mut v).unwrap();
        assert_eq!(v.flows[0].start_ms, Some(u64::MAX));
        // NTP seconds 2^32 - 1 are in 2036, fraction almost 1.
        assert_eq!(v.flows[0].end_ms, Some((u64::from(u32::MAX) - 2_208_988_800) * 1000 + 999));
    }

    fn ip_octets(s: &str) -> Vec<u8> {
        match ip(s) {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    #[test]
    fn a_malformed_set_loses_only_itself() {
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        let tpl = set(2, &template(256, &[(8, 4), (82, 65535), (2, 4)]));
        let good = set(256, &hex("c6120001 01 41 00000001"));
        // The variable-length field claims 200 bytes in a 12-byte set.
        let bad = set(256, &hex("c6120002 c8 41 00000001 0000"));
        let later = set(256, &hex("c6120003 00 00000003"));
        let d = ipfix(0, 0, &[tpl, good, bad, later]);
        let s = decode(ip("192.0.2.5"), &d, &mut cache, &mut v).unwrap();
        assert_eq!((s.flows, s.problems), (2, 1));
        assert_eq!(v.problems[0], FlowError::Truncated { offset: 16 + 20 + 14 + 9, what: "data record field" });
        assert_eq!((v.flows[0].packets, v.flows[1].packets), (1, 3));
    }

    #[test]
    fn message_length_must_fit() {
        let mut cache = TemplateCache::new();
        let d = ipfix(0, 0, &[set(2, &template(256, &FLOW))]);
        let mut cut = d.clone();
        cut.truncate(d.len() - 1);
        let err = decode(ip("192.0.2.5"), &cut, &mut cache, &mut |_: &crate::FlowRecord| {}).unwrap_err();
        assert_eq!(err, FlowError::Truncated { offset: d.len() - 1, what: "message" });
        let mut short = d.clone();
        short[2..4].copy_from_slice(&8u16.to_be_bytes());
        let err = decode(ip("192.0.2.5"), &short, &mut cache, &mut |_: &crate::FlowRecord| {}).unwrap_err();
        assert_eq!(err, FlowError::BadLength { offset: 2, what: "message", length: 8 });
        // Bytes after the message are ignored.
        let mut long = d.clone();
        long.extend_from_slice(&[0xff; 7]);
        assert_eq!(decode(ip("192.0.2.5"), &long, &mut cache, &mut |_: &crate::FlowRecord| {}).unwrap().templates, 1);
    }

    #[test]
    fn limits_bound_the_cache() {
        let limits = CacheLimits {
            max_domains: 1,
            max_templates_per_domain: 1,
            max_fields: 3,
            max_samplers_per_domain: 1,
            max_total_fields: 2,
        };
        let mut cache = TemplateCache::with_limits(limits);
        let mut v = Collect::default();
        let two = set(2, &[template(256, &[(8, 4)]), template(257, &[(8, 4)]), template(258, &FLOW)].concat());
        let s = decode(ip("192.0.2.5"), &ipfix(0, 0, &[two]), &mut cache, &mut v).unwrap();
        assert_eq!((s.templates, s.problems), (1, 2));
        assert!(matches!(v.problems[0], FlowError::TemplateLimit { template_id: 257, .. }));
        // Refreshing the stored one is fine; a second domain is not.
        let s =
            decode(ip("192.0.2.5"), &ipfix(0, 0, &[set(2, &template(256, &[(12, 4)]))]), &mut cache, &mut v).unwrap();
        assert_eq!(s.templates, 1);
        let s =
            decode(ip("192.0.2.5"), &ipfix(1, 0, &[set(2, &template(256, &[(12, 4)]))]), &mut cache, &mut v).unwrap();
        assert_eq!((s.templates, s.problems), (0, 1));
        assert_eq!(cache.domain_count(), 1);
        // Nor is a refresh beyond the field budget.
        let s = decode(
            ip("192.0.2.5"),
            &ipfix(0, 0, &[set(2, &template(256, &[(8, 4), (12, 4), (4, 1)]))]),
            &mut cache,
            &mut v,
        )
        .unwrap();
        assert_eq!((s.templates, s.problems, cache.total_fields()), (0, 1, 1));
        cache.forget_exporter(ip("192.0.2.5"));
        assert_eq!((cache.domain_count(), cache.total_fields()), (0, 0));
    }
}
