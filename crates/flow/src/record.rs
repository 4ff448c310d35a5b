//! The normalized records every decoder produces, and the visitor that receives them.

use std::net::{IpAddr, Ipv4Addr};

use crate::FlowError;

/// The export protocol of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FlowProtocol {
    /// Cisco NetFlow version 5 (fixed format).
    NetflowV5,
    /// NetFlow version 9 (RFC 3954).
    NetflowV9,
    /// IPFIX (RFC 7011), version number 10.
    Ipfix,
    /// sFlow version 5 (sflow.org, "sFlow Version 5", July 2004).
    SflowV5,
}

impl FlowProtocol {
    /// A snake_case name, usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowProtocol::NetflowV5 => "netflow_v5",
            FlowProtocol::NetflowV9 => "netflow_v9",
            FlowProtocol::Ipfix => "ipfix",
            FlowProtocol::SflowV5 => "sflow_v5",
        }
    }
}

/// Where a record's sampling rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SamplingSource {
    /// An options data record of the same exporter and observation domain (NetFlow v9
    /// sampler options, IPFIX selector/sampling options), matched by sampler or selector id
    /// when the flow record names one.
    OptionsTemplate,
    /// The datagram or sample header: NetFlow v5's sampling field, an sFlow flow sample's
    /// sampling rate.
    PacketHeader,
    /// The flow record itself carries a sampling interval (IE 34, 50, 305/306 or 309/310).
    Record,
    /// Nothing in the data said; the rate was configured with
    /// [`crate::TemplateCache::set_configured_sampling`].
    Config,
    /// Nothing said and nothing configured: the counters are as exported, unscaled.
    Unknown,
}

/// The packet sampling a record's counters are subject to: one packet in `rate` was looked at.
/// The decoders never scale counters; multiply by `rate` to estimate the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sampling {
    /// One in `rate` packets sampled (1 = unsampled); `None` when unknown.
    pub rate: Option<u32>,
    /// Where `rate` came from.
    pub source: SamplingSource,
}

impl Sampling {
    /// Nothing is known.
    pub const UNKNOWN: Sampling = Sampling { rate: None, source: SamplingSource::Unknown };

    /// A known rate from `source`; a rate of 0 means unknown.
    pub fn known(rate: u32, source: SamplingSource) -> Sampling {
        if rate == 0 {
            Sampling::UNKNOWN
        } else {
            Sampling { rate: Some(rate), source }
        }
    }

    /// True when the rate is known.
    pub fn is_known(&self) -> bool {
        self.rate.is_some()
    }
}

/// One flow (NetFlow, IPFIX) or one sampled packet (sFlow), normalized. Plain data, `Copy`,
/// built on the stack: decoding allocates nothing per record.
///
/// Fields the export did not carry keep the value of [`FlowRecord::empty`]: `0` for ports,
/// interfaces and flags, unspecified addresses, `None` for the optional ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord {
    /// Export protocol of the datagram.
    pub flow_protocol: FlowProtocol,
    /// The exporter's address, as passed to [`crate::decode`] (the datagram's source).
    pub exporter: IpAddr,
    /// IPFIX observation domain, NetFlow v9 source id, NetFlow v5 `engine_type << 8 |
    /// engine_id`, sFlow sub-agent id.
    pub observation_domain: u32,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source transport port.
    pub src_port: u16,
    /// Destination transport port; for ICMP, `type << 8 | code` when the export gave them as
    /// ICMP fields instead (as NetFlow v5 does in this field).
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// TCP flags seen in the flow (OR of all packets), low 8 bits.
    pub tcp_flags: u8,
    /// IPv4 type of service / IPv6 traffic class.
    pub tos: u8,
    /// Packets (as exported: not scaled by the sampling rate).
    pub packets: u64,
    /// Bytes of the IP packets, headers included (as exported: not scaled).
    pub bytes: u64,
    /// First packet, milliseconds since the Unix epoch, when known.
    pub start_ms: Option<u64>,
    /// Last packet, milliseconds since the Unix epoch, when known.
    pub end_ms: Option<u64>,
    /// Input interface index (0 = unknown).
    pub input_ifindex: u32,
    /// Output interface index (0 = unknown).
    pub output_ifindex: u32,
    /// Source prefix length from the exporter's routing table.
    pub src_prefix_len: Option<u8>,
    /// Destination prefix length.
    pub dst_prefix_len: Option<u8>,
    /// Source autonomous system.
    pub src_as: Option<u32>,
    /// Destination autonomous system.
    pub dst_as: Option<u32>,
    /// The sampling the counters are subject to.
    pub sampling: Sampling,
    /// Whether the flow's packets were IP fragments, when the export says.
    pub fragment: Option<bool>,
}

impl FlowRecord {
    /// A record with nothing known but where it came from.
    pub fn empty(flow_protocol: FlowProtocol, exporter: IpAddr, observation_domain: u32) -> FlowRecord {
        FlowRecord {
            flow_protocol,
            exporter,
            observation_domain,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            protocol: 0,
            tcp_flags: 0,
            tos: 0,
            packets: 0,
            bytes: 0,
            start_ms: None,
            end_ms: None,
            input_ifindex: 0,
            output_ifindex: 0,
            src_prefix_len: None,
            dst_prefix_len: None,
            src_as: None,
            dst_as: None,
            sampling: Sampling::UNKNOWN,
            fragment: None,
        }
    }
}

/// sFlow generic interface counters (counter record enterprise 0, format 1), with the sample's
/// context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterRecord {
    /// The datagram's source address, as passed to [`crate::decode`].
    pub exporter: IpAddr,
    /// The sFlow agent address from the datagram header.
    pub agent: IpAddr,
    /// The sFlow sub-agent id.
    pub sub_agent: u32,
    /// The counter sample's source id: `type << 24 | index` (type 0 = ifIndex).
    pub source_id: u32,
    /// The counter sample's sequence number.
    pub sequence: u32,
    /// The agent's uptime when the datagram was sent, milliseconds.
    pub uptime_ms: u32,
    /// ifIndex.
    pub if_index: u32,
    /// ifType.
    pub if_type: u32,
    /// ifSpeed, bits per second.
    pub if_speed: u64,
    /// 0 = unknown, 1 = full duplex, 2 = half duplex, 3 = in, 4 = out.
    pub if_direction: u32,
    /// Bit 0 admin up, bit 1 operationally up.
    pub if_status: u32,
    /// ifInOctets.
    pub in_octets: u64,
    /// ifInUcastPkts.
    pub in_unicast: u32,
    /// ifInMulticastPkts.
    pub in_multicast: u32,
    /// ifInBroadcastPkts.
    pub in_broadcast: u32,
    /// ifInDiscards.
    pub in_discards: u32,
    /// ifInErrors.
    pub in_errors: u32,
    /// ifInUnknownProtos.
    pub in_unknown_protos: u32,
    /// ifOutOctets.
    pub out_octets: u64,
    /// ifOutUcastPkts.
    pub out_unicast: u32,
    /// ifOutMulticastPkts.
    pub out_multicast: u32,
    /// ifOutBroadcastPkts.
    pub out_broadcast: u32,
    /// ifOutDiscards.
    pub out_discards: u32,
    /// ifOutErrors.
    pub out_errors: u32,
    /// ifPromiscuousMode (1 = true).
    pub promiscuous: u32,
}

/// Receives what a datagram holds, in order. Only [`Visitor::flow`] is required; a closure
/// `FnMut(&FlowRecord)` is a visitor too.
pub trait Visitor {
    /// One flow record.
    fn flow(&mut self, record: &FlowRecord);

    /// One sFlow interface counter record. Ignored by default.
    fn counters(&mut self, record: &CounterRecord) {
        let _ = record;
    }

    /// A problem confined to one set or sample, which was skipped; decoding went on. Ignored
    /// by default (each is also counted in [`DatagramSummary::problems`]).
    fn problem(&mut self, problem: &FlowError) {
        let _ = problem;
    }
}

impl<F: FnMut(&FlowRecord)> Visitor for F {
    fn flow(&mut self, record: &FlowRecord) {
        self(record)
    }
}

/// What one datagram held, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramSummary {
    /// The export protocol.
    pub protocol: FlowProtocol,
    /// IPFIX observation domain, NetFlow v9 source id, NetFlow v5 engine type and id, sFlow
    /// sub-agent id.
    pub observation_domain: u32,
    /// The header's sequence number (NetFlow v5/v9: flows or datagrams; IPFIX: data records;
    /// sFlow: datagrams).
    pub sequence: u32,
    /// The sFlow agent address; `None` for NetFlow and IPFIX.
    pub agent: Option<IpAddr>,
    /// Flow records handed to [`Visitor::flow`].
    pub flows: u32,
    /// Of those, how many had unknown sampling.
    pub sampling_unknown: u32,
    /// Counter records handed to [`Visitor::counters`].
    pub counters: u32,
    /// Templates and options templates learned or refreshed.
    pub templates: u32,
    /// Templates withdrawn (IPFIX), counting a withdraw-all as the number it removed.
    pub withdrawn: u32,
    /// Options data records read (sampler and system-init information).
    pub options_records: u32,
    /// Data sets skipped because their template is unknown.
    pub sets_without_template: u32,
    /// Sets, samples and records skipped as not relevant: reserved set ids, unknown sFlow
    /// sample and record formats, sFlow samples of non-IP packets.
    pub skipped: u32,
    /// Problems handed to [`Visitor::problem`].
    pub problems: u32,
}

impl DatagramSummary {
    pub(crate) fn new(protocol: FlowProtocol) -> DatagramSummary {
        DatagramSummary {
            protocol,
            observation_domain: 0,
            sequence: 0,
            agent: None,
            flows: 0,
            sampling_unknown: 0,
            counters: 0,
            templates: 0,
            withdrawn: 0,
            options_records: 0,
            sets_without_template: 0,
            skipped: 0,
            problems: 0,
        }
    }
}

/// Hands records to the visitor and keeps the summary's counts in step.
pub(crate) struct Emitter<'v, V: Visitor> {
    pub(crate) visitor: &'v mut V,
    pub(crate) summary: DatagramSummary,
}

impl<V: Visitor> Emitter<'_, V> {
    pub(crate) fn flow(&mut self, record: &FlowRecord) {
        self.summary.flows += 1;
        if !record.sampling.is_known() {
            self.summary.sampling_unknown += 1;
        }
        self.visitor.flow(record);
    }

    pub(crate) fn counters(&mut self, record: &CounterRecord) {
        self.summary.counters += 1;
        self.visitor.counters(record);
    }

    pub(crate) fn problem(&mut self, problem: &FlowError) {
        self.summary.problems += 1;
        self.visitor.problem(problem);
    }
}
