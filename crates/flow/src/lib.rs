//! Flow export decoding: NetFlow v5, NetFlow v9 (RFC 3954), IPFIX (RFC 7011) and sFlow v5,
//! from a UDP payload to normalized [`FlowRecord`]s. No I/O, no async, and no allocation per
//! record: records are built on the stack and handed to a [`Visitor`] (a closure will do).
//!
//! The layers:
//!
//! - [`decode`] detects the protocol from the first bytes ([`detect`]) and runs its decoder:
//!   [`netflow5`], [`netflow9`], [`ipfix`] or [`sflow`]. NetFlow v9 and IPFIX share the set walk
//!   and data record reading.
//! - [`TemplateCache`] holds what NetFlow v9 and IPFIX exporters said in earlier datagrams:
//!   templates, options templates, sampling rates from options data, the exporter's clock. The
//!   caller owns it and passes it in; there is no global state.
//! - [`Exporters`] is a small table of exporters and their counters, fed by the caller.
//!
//! Sampling is reported, never applied: each record carries a [`Sampling`] saying one in how
//! many packets was sampled and where that came from, or that it is unknown.
//!
//! Errors carry the byte offset in the datagram. A broken header, or a set or sample whose
//! length runs past the datagram, ends decoding with a [`FlowError`] (records before it have
//! already been handed over); a problem inside one set or sample goes to
//! [`Visitor::problem`] and decoding goes on.
//!
//! ```
//! use std::net::IpAddr;
//! use bawaba_flow::{decode, FlowProtocol, TemplateCache};
//!
//! // A NetFlow v5 datagram with one record: 198.18.0.1:1000 -> 198.19.0.1:53/UDP, 3 packets.
//! let mut datagram = vec![0, 5, 0, 1, 0, 0, 0x27, 0x10, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0];
//! datagram.extend_from_slice(&[198, 18, 0, 1, 198, 19, 0, 1, 0, 0, 0, 0, 0, 1, 0, 2]);
//! datagram.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 114, 0, 0, 0x23, 0x28, 0, 0, 0x27, 0x10]);
//! datagram.extend_from_slice(&[0x03, 0xe8, 0, 53, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
//!
//! let exporter: IpAddr = "192.0.2.1".parse().unwrap();
//! let mut cache = TemplateCache::new();
//! let mut bytes = 0;
//! let summary = decode(exporter, &datagram, &mut cache, &mut |r: &bawaba_flow::FlowRecord| {
//!     assert_eq!((r.src_port, r.dst_port, r.protocol), (1000, 53, 17));
//!     bytes += r.bytes;
//! })
//! .unwrap();
//! assert_eq!((summary.protocol, summary.flows, bytes), (FlowProtocol::NetflowV5, 1, 114));
//! ```

use std::net::IpAddr;

mod cursor;
mod data;
mod error;
pub mod export;
mod exporters;
pub mod ie;
pub mod ipfix;
pub mod netflow5;
pub mod netflow9;
mod record;
mod sets;
pub mod sflow;
mod template;
#[cfg(test)]
mod testutil;

pub use error::{ErrorKind, FlowError};
pub use exporters::{ExporterStats, Exporters};
pub use ie::InformationElement;
pub use record::{CounterRecord, DatagramSummary, FlowProtocol, FlowRecord, Sampling, SamplingSource, Visitor};
pub use template::{CacheLimits, FieldSpec, Template, TemplateCache, VARIABLE_LENGTH};

/// Tells the export protocol from the first bytes of a datagram.
///
/// NetFlow v5, v9 and IPFIX start with a 16-bit version: 5, 9 or 10. sFlow starts with a
/// 32-bit version, 5, so its first two bytes are zero. The two "version 5" formats therefore
/// never collide: `00 05 ..` is NetFlow v5 and `00 00 00 05` is sFlow v5. Anything else (sFlow
/// v2/v4, NetFlow v1/v7/v8) is [`FlowError::UnknownVersion`].
pub fn detect(datagram: &[u8]) -> Result<FlowProtocol, FlowError> {
    let truncated = FlowError::Truncated { offset: datagram.len(), what: "version" };
    let short =
        u16::from_be_bytes([*datagram.first().ok_or(truncated.clone())?, *datagram.get(1).ok_or(truncated.clone())?]);
    match short {
        5 => Ok(FlowProtocol::NetflowV5),
        9 => Ok(FlowProtocol::NetflowV9),
        10 => Ok(FlowProtocol::Ipfix),
        0 => {
            let Some(&[a, b, c, d]) = datagram.first_chunk::<4>() else { return Err(truncated) };
            match u32::from_be_bytes([a, b, c, d]) {
                5 => Ok(FlowProtocol::SflowV5),
                version => Err(FlowError::UnknownVersion { offset: 0, version }),
            }
        }
        version => Err(FlowError::UnknownVersion { offset: 0, version: u32::from(version) }),
    }
}

/// Decodes one datagram from `exporter` (its source address), handing each flow record, sFlow
/// counter record and confined problem to `visitor` as it goes, and returns what it held.
///
/// `cache` supplies and learns NetFlow v9 / IPFIX templates and sampling state for `exporter`;
/// NetFlow v5 and sFlow only read its configured sampling rates.
pub fn decode<V: Visitor>(
    exporter: IpAddr,
    datagram: &[u8],
    cache: &mut TemplateCache,
    visitor: &mut V,
) -> Result<DatagramSummary, FlowError> {
    match detect(datagram)? {
        FlowProtocol::NetflowV5 => netflow5::decode(exporter, datagram, cache, visitor),
        FlowProtocol::NetflowV9 => netflow9::decode(exporter, datagram, cache, visitor),
        FlowProtocol::Ipfix => ipfix::decode(exporter, datagram, cache, visitor),
        FlowProtocol::SflowV5 => sflow::decode(exporter, datagram, cache, visitor),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testutil::{hex, ip, ipfix, set, template, Collect};

    #[test]
    fn the_two_version_5_formats_do_not_collide() {
        assert_eq!(detect(&[0, 5, 0, 1]), Ok(FlowProtocol::NetflowV5));
        assert_eq!(detect(&[0, 0, 0, 5]), Ok(FlowProtocol::SflowV5));
        assert_eq!(detect(&[0, 9]), Ok(FlowProtocol::NetflowV9));
        assert_eq!(detect(&[0, 10]), Ok(FlowProtocol::Ipfix));
        assert_eq!(detect(&[0, 0, 0, 4]), Err(FlowError::UnknownVersion { offset: 0, version: 4 }));
        assert_eq!(detect(&[0, 7]), Err(FlowError::UnknownVersion { offset: 0, version: 7 }));
        assert_eq!(detect(&[0, 0, 0]), Err(FlowError::Truncated { offset: 3, what: "version" }));
        assert_eq!(detect(&[]).unwrap_err().kind(), ErrorKind::Truncated);
        assert_eq!(ErrorKind::ALL.map(ErrorKind::as_str).len(), 8);
    }

    /// Every datagram the tests know, softflowd's captures first.
    fn samples() -> Vec<Vec<u8>> {
        let var = set(2, &template(256, &[(8, 4), (82, 65535), (2, 4)]));
        let ent = set(2, &hex("0101 0003 0008 0004 8001 ffff 00007279 0002 0004"));
        let opts = set(3, &hex("0200 0003 0001 012e 0008 0131 0004 0132 0004"));
        let data = set(256, &hex("c6120001 ff 0003 414243 00000001 c6120002 00 00000002 00"));
        let data_ent = set(257, &hex("c6120001 02 4142 00000001"));
        let opts_data = set(0x200, &hex("0000000000000007 00000001 00000063"));
        let frame = sflow::tests::tcp_frame(100);
        let sflow = sflow::tests::datagram(sflow::tests::AGENT_V4, &[sflow::tests::raw_header_sample(&frame, 64, 256)]);
        vec![
            hex(netflow5::tests::SOFTFLOWD_V5),
            hex(netflow9::tests::SOFTFLOWD_V9),
            hex(ipfix::tests::SOFTFLOWD_IPFIX),
            ipfix(1, 0, &[var, ent, opts, data, data_ent, opts_data]),
            sflow,
        ]
    }

    #[test]
    fn every_prefix_and_every_byte_changed_is_an_outcome() {
        let exporter = ip("192.0.2.1");
        for d in samples() {
            let mut warm = TemplateCache::new();
            let mut v = Collect::default();
            decode(exporter, &d, &mut warm, &mut v).unwrap();
            assert!(v.problems.is_empty(), "{:?}", v.problems);
            assert!(!v.flows.is_empty());
            for n in 0..d.len() {
                let _ = decode(exporter, &d[..n], &mut TemplateCache::new(), &mut Collect::default());
                let _ = decode(exporter, &d[..n], &mut warm, &mut Collect::default());
            }
            for i in 0..d.len() {
                for b in [0x00, 0xff, d[i] ^ 0x80] {
                    let mut m = d.clone();
                    m[i] = b;
                    let _ = decode(exporter, &m, &mut warm, &mut Collect::default());
                }
            }
        }
    }

    #[test]
    fn errors_report_where_and_what() {
        let err = decode(ip("192.0.2.1"), &[0, 9, 0, 1, 0], &mut TemplateCache::new(), &mut Collect::default());
        let err = err.unwrap_err();
        assert_eq!((err.offset(), err.kind()), (4, ErrorKind::Truncated));
        assert_eq!(err.to_string(), "truncated at byte 4 while reading sys_uptime");
    }

    #[test]
    fn exporter_table() {
        let mut cache = TemplateCache::new();
        let mut table = Exporters::new(2);
        let mut v = Collect::default();
        let a = ip("192.0.2.1");
        for d in samples().iter().take(3) {
            let r = decode(a, d, &mut cache, &mut v);
            table.observe(a, 1000, &r, &cache);
        }
        let r = decode(a, &[0, 0, 0, 2], &mut cache, &mut v);
        table.observe(a, 2000, &r, &cache);
        let e = table.get(a).unwrap();
        assert_eq!((e.datagrams, e.flows, e.errors, e.templates), (4, 15, 1, 10));
        assert_eq!(
            (e.protocol, e.last_error, e.sampling_known),
            (Some(FlowProtocol::Ipfix), Some(ErrorKind::UnknownVersion), Some(true))
        );
        assert_eq!((e.first_seen_ms, e.last_seen_ms, e.flows_sampling_unknown), (1000, 2000, 5));
        table.observe(ip("192.0.2.2"), 3000, &r, &cache);
        table.observe(ip("192.0.2.3"), 3000, &r, &cache);
        assert_eq!((table.len(), table.untracked()), (2, 1));
        assert_eq!(table.remove_idle(2500), 1);
        assert_eq!(table.iter().count(), 1);
    }
}
