//! NetFlow version 9 (RFC 3954): a 20-byte header, then flowsets; templates come from
//! [`crate::TemplateCache`].
//!
//! ```text
//! header (RFC 3954 section 5.1): version(2)=9 count(2) sys_uptime(4, ms) unix_secs(4)
//!                                sequence(4) source_id(4)
//! ```
//!
//! The header's count (records in the packet) is not trusted: exporters disagree on what it
//! counts, and the flowset lengths say where everything is.

use std::net::IpAddr;

use crate::cursor::Cursor;
use crate::data::Clock;
use crate::record::Emitter;
use crate::sets::{decode_sets, Dialect, Message};
use crate::{DatagramSummary, FlowError, FlowProtocol, TemplateCache, Visitor};

/// Length of the header.
pub const HEADER_LEN: usize = 20;

pub(crate) fn decode<V: Visitor>(
    exporter: IpAddr,
    datagram: &[u8],
    cache: &mut TemplateCache,
    visitor: &mut V,
) -> Result<DatagramSummary, FlowError> {
    let mut c = Cursor::new(datagram);
    c.skip(2, "version")?;
    let _count = c.u16("record count")?;
    let uptime = c.u32("sys_uptime")?;
    let secs = c.u32("unix_secs")?;
    let sequence = c.u32("sequence")?;
    let source_id = c.u32("source id")?;

    let mut summary = DatagramSummary::new(FlowProtocol::NetflowV9);
    summary.observation_domain = source_id;
    summary.sequence = sequence;
    let mut out = Emitter { visitor, summary };
    let msg = Message {
        dialect: Dialect::V9,
        exporter,
        domain: source_id,
        clock: Clock { export_ms: u64::from(secs) * 1000, uptime_ms: Some(uptime) },
    };
    decode_sets(&msg, c, cache, &mut out)?;
    Ok(out.summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::{be, hex, ip, set, template, v9, Collect};
    use crate::{decode, FlowRecord, Sampling, SamplingSource};

    /// softflowd 1.1.0 `-v 9` reading a capture of five UDP flows 198.18.0.N:100N -> 198.19.0.1:53
    /// (3 packets, 114 bytes each): four data templates, an options template (scope interface;
    /// samplingInterval, samplingAlgorithm, interfaceName), its data, and the flows.
    pub(crate) const SOFTFLOWD_V9: &str = "
        00090005000000006b0b231e0000000100000000000000480400001000080004000c0004001600040015000400010004
        00020004000a0004000e0004003d00010088000100070002000b00020004000100060001003c00010005000100000040
        0401000e00080004000c000400160004001500040001000400020004000a0004000e0004003d00010088000100200002
        00040001003c0001000500010000004808000010001b0010001c001000160004001500040001000400020004000a0004
        000e0004003d00010088000100070002000b00020004000100060001003c000100050001000000400801000e001b0010
        001c001000160004001500040001000400020004000a0004000e0004003d000100880001008b000200040001003c0001
        000500010001001a01000004000c000200040022000400230001005200100100001d000000000000000101742e706361
        7000000000000000000000040000d9c6120001c6130001ac643a2eac643a300000007200000003000000000000000000
        0103e8003511000400c6120002c6130001ac643e16ac643e1800000072000000030000000000000000000103e9003511
        000400c6120003c6130001ac6441feac64420000000072000000030000000000000000000103ea003511000400c61200
        04c6130001ac6445e6ac6445e800000072000000030000000000000000000103eb003511000400c6120005c6130001ac
        6449ceac6449d000000072000000030000000000000000000103ec003511000400000000";

    #[test]
    fn softflowd_datagram() {
        let d = hex(SOFTFLOWD_V9);
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        let s = decode(ip("127.0.0.1"), &d, &mut cache, &mut v).unwrap();
        assert_eq!((s.protocol, s.templates, s.options_records, s.flows), (FlowProtocol::NetflowV9, 5, 1, 5));
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        for (i, r) in v.flows.iter().enumerate() {
            assert_eq!(r.src, ip(&format!("198.18.0.{}", i + 1)));
            assert_eq!((r.src_port, r.dst_port, r.protocol, r.packets, r.bytes), (1000 + i as u16, 53, 17, 3, 114));
            // softflowd's options say samplingInterval 1: unsampled, and known to be.
            assert_eq!(r.sampling, Sampling { rate: Some(1), source: SamplingSource::OptionsTemplate });
            assert_eq!(r.end_ms.unwrap() - r.start_ms.unwrap(), 2);
        }
        assert_eq!(cache.template_count(ip("127.0.0.1")), 5);
        assert_eq!(cache.template(ip("127.0.0.1"), FlowProtocol::NetflowV9, 0, 1024).unwrap().fields().len(), 16);
    }

    const FLOW_TEMPLATE: [(u16, u16); 7] = [(8, 4), (12, 4), (1, 4), (2, 4), (48, 1), (22, 4), (21, 4)];

    fn flow(src: u8, bytes: u32, sampler: u8, first: u32, last: u32) -> Vec<u8> {
        let mut r = vec![198, 18, 0, src, 198, 19, 0, 1];
        r.extend(be(&[
            (u64::from(bytes), 4),
            (1, 4),
            (u64::from(sampler), 1),
            (u64::from(first), 4),
            (u64::from(last), 4),
        ]));
        r
    }

    #[test]
    fn data_before_its_template_is_counted_then_decoded() {
        let exporter = ip("192.0.2.9");
        let mut cache = TemplateCache::new();
        let data = set(256, &[flow(1, 100, 0, 4000, 9000), flow(2, 200, 0, 4000, 9000)].concat());
        let mut v = Collect::default();
        let s =
            decode(exporter, &v9(10_000, 1_700_000_000, 3, std::slice::from_ref(&data)), &mut cache, &mut v).unwrap();
        assert_eq!((s.flows, s.sets_without_template, s.problems), (0, 1, 1));
        assert_eq!(v.problems[0], FlowError::TemplateMissing { offset: 20, template_id: 256, domain: 3 });
        assert_eq!(v.problems[0].kind(), crate::ErrorKind::TemplateMissing);

        let tpl = set(0, &template(256, &FLOW_TEMPLATE));
        let s = decode(exporter, &v9(10_000, 1_700_000_000, 3, &[tpl, data.clone()]), &mut cache, &mut v).unwrap();
        assert_eq!((s.templates, s.flows, s.sampling_unknown), (1, 2, 2));
        let r = v.flows[1];
        assert_eq!((r.src, r.bytes, r.packets), (ip("198.18.0.2"), 200, 1));
        // Export at 1,700,000,000 s with uptime 10 s: first 4 s, last 9 s of uptime.
        assert_eq!((r.start_ms, r.end_ms), (Some(1_699_999_994_000), Some(1_699_999_999_000)));

        // Source id 4 of the same exporter, and the same source id of another exporter, have
        // their own templates.
        let s =
            decode(exporter, &v9(10_000, 1_700_000_000, 4, std::slice::from_ref(&data)), &mut cache, &mut v).unwrap();
        assert_eq!(s.sets_without_template, 1);
        let s = decode(ip("192.0.2.10"), &v9(10_000, 1_700_000_000, 3, &[data]), &mut cache, &mut v).unwrap();
        assert_eq!(s.sets_without_template, 1);
    }

    #[test]
    fn uptime_that_wrapped_still_gives_times_before_export() {
        let mut cache = TemplateCache::new();
        let tpl = set(0, &template(256, &FLOW_TEMPLATE));
        let data = set(256, &flow(1, 1, 0, 0xffff_ff00, 500));
        let mut v = Collect::default();
        decode(ip("192.0.2.9"), &v9(1000, 1_700_000_000, 0, &[tpl, data]), &mut cache, &mut v).unwrap();
        let export = 1_700_000_000_000u64;
        assert_eq!((v.flows[0].start_ms, v.flows[0].end_ms), (Some(export - 1256), Some(export - 500)));
    }

    #[test]
    fn sampler_options_apply_by_sampler_id() {
        let exporter = ip("192.0.2.9");
        let mut cache = TemplateCache::new();
        // RFC 3954 section 6.1: scope System (4 bytes); FLOW_SAMPLER_ID, SAMPLING_INTERVAL,
        // SAMPLING_ALGORITHM.
        let options_tpl = set(1, &hex("0101 0004 000c 0001 0004 0030 0001 0022 0004 0023 0001 0000"));
        let options = set(257, &hex("00000000 01 00000064 02  00000000 02 000003e8 01  000000"));
        let tpl = set(0, &template(256, &FLOW_TEMPLATE));
        let data = set(256, &[flow(1, 1, 1, 0, 0), flow(2, 1, 2, 0, 0), flow(3, 1, 3, 0, 0)].concat());
        let mut v = Collect::default();
        let s = decode(exporter, &v9(0, 0, 0, &[options_tpl, options, tpl, data.clone()]), &mut cache, &mut v).unwrap();
        assert_eq!((s.templates, s.options_records, s.flows), (2, 2, 3));
        let rates: Vec<Sampling> = v.flows.iter().map(|r| r.sampling).collect();
        let opt = |r| Sampling { rate: Some(r), source: SamplingSource::OptionsTemplate };
        // Sampler 3 was never described and no rate covers the whole domain: unknown.
        assert_eq!(rates, [opt(100), opt(1000), Sampling::UNKNOWN]);
        assert_eq!(cache.sampling_rate(exporter, FlowProtocol::NetflowV9, 0, Some(2)), Some(1000));

        // The same data from a domain without options stays unknown: rates never leak across.
        let mut v = Collect::default();
        decode(exporter, &v9(0, 0, 1, &[set(0, &template(256, &FLOW_TEMPLATE)), data]), &mut cache, &mut v).unwrap();
        assert!(v.flows.iter().all(|r| r.sampling == Sampling::UNKNOWN));
    }

    #[test]
    fn a_new_definition_replaces_the_old() {
        let exporter = ip("192.0.2.9");
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        let old = set(0, &template(256, &[(8, 4), (12, 4), (2, 4)]));
        let data = set(256, &hex("c6120001 c6130001 00000007"));
        decode(exporter, &v9(0, 0, 0, &[old, data.clone()]), &mut cache, &mut v).unwrap();
        let new = set(0, &template(256, &[(8, 4), (12, 4), (1, 4)]));
        decode(exporter, &v9(0, 0, 0, &[new, data]), &mut cache, &mut v).unwrap();
        assert_eq!((v.flows[0].packets, v.flows[0].bytes), (7, 0));
        assert_eq!((v.flows[1].packets, v.flows[1].bytes), (0, 7));
        assert_eq!(cache.template_count(exporter), 1);
    }

    #[test]
    fn padding_ends_sets_and_datagrams() {
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        // Template flowset padded with 2 zero bytes, data flowset with 3 (shorter than a
        // record), and 2 zero bytes after the last flowset.
        let tpl = set(0, &[template(256, &[(8, 4), (12, 4), (4, 1)]), vec![0, 0]].concat());
        let data = set(256, &hex("c6120001 c6130001 06 c6120002 c6130001 11 000000"));
        let mut d = v9(0, 0, 0, &[tpl, data]);
        d.extend_from_slice(&[0, 0]);
        let s = decode(ip("192.0.2.9"), &d, &mut cache, &mut v).unwrap();
        assert_eq!((s.templates, s.flows, s.problems), (1, 2, s.problems));
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!((v.flows[0].protocol, v.flows[1].protocol), (6, 17));
    }

    #[test]
    fn odd_templates_are_problems_not_failures() {
        let mut cache = TemplateCache::new();
        let mut v = Collect::default();
        let bad_id = set(0, &template(255, &[(8, 4)]));
        let variable = set(0, &template(300, &[(8, 4), (82, 65535)]));
        let good = set(0, &template(256, &[(8, 4)]));
        let s = decode(ip("192.0.2.9"), &v9(0, 0, 0, &[bad_id, variable, good]), &mut cache, &mut v).unwrap();
        assert_eq!((s.templates, s.problems), (1, 2));
        assert!(matches!(v.problems[0], FlowError::BadTemplate { template_id: 255, offset: 24, .. }));
        assert!(matches!(v.problems[1], FlowError::BadTemplate { template_id: 300, .. }));
    }

    #[test]
    fn broken_framing_keeps_what_came_before() {
        let mut cache = TemplateCache::new();
        let tpl = set(0, &template(256, &[(8, 4), (12, 4)]));
        let data = set(256, &hex("c6120001 c6130001"));
        let mut d = v9(0, 0, 0, &[tpl, data]);
        d.extend_from_slice(&hex("0100 0040 0000"));
        let mut flows = Vec::new();
        let err = decode(ip("192.0.2.9"), &d, &mut cache, &mut |r: &FlowRecord| flows.push(*r)).unwrap_err();
        assert_eq!(err, FlowError::Truncated { offset: d.len(), what: "set" });
        assert_eq!(flows.len(), 1);
        let short_set = [&d[..d.len() - 6], &hex("0100 0002")[..]].concat();
        let err = decode(ip("192.0.2.9"), &short_set, &mut cache, &mut |_: &FlowRecord| {}).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::BadLength);
    }
}
