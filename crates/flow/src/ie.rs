//! Information elements (IANA "IPFIX Information Elements" registry; NetFlow v9 field types of
//! RFC 3954 section 8 share the numbers below 128) and what each feeds in a [`FlowRecord`].
//!
//! [`FlowRecord`]: crate::FlowRecord

use std::fmt;

/// An IANA information element id (enterprise 0), or a NetFlow v9 field type. Unknown values
/// survive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InformationElement(pub u16);

macro_rules! elements {
    ($($(#[$m:meta])* $konst:ident = $val:expr,)*) => {
        impl InformationElement {
            $($(#[$m])* pub const $konst: InformationElement = InformationElement($val);)*

            /// The element's IANA name, for the ones this crate reads.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($konst)),)*
                    _ => None,
                }
            }
        }
    };
}

elements! {
    /// octetDeltaCount (v9 IN_BYTES).
    OCTET_DELTA_COUNT = 1,
    /// packetDeltaCount (v9 IN_PKTS).
    PACKET_DELTA_COUNT = 2,
    /// protocolIdentifier.
    PROTOCOL_IDENTIFIER = 4,
    /// ipClassOfService (v9 SRC_TOS).
    IP_CLASS_OF_SERVICE = 5,
    /// tcpControlBits.
    TCP_CONTROL_BITS = 6,
    /// sourceTransportPort.
    SOURCE_TRANSPORT_PORT = 7,
    /// sourceIPv4Address.
    SOURCE_IPV4_ADDRESS = 8,
    /// sourceIPv4PrefixLength.
    SOURCE_IPV4_PREFIX_LENGTH = 9,
    /// ingressInterface.
    INGRESS_INTERFACE = 10,
    /// destinationTransportPort.
    DESTINATION_TRANSPORT_PORT = 11,
    /// destinationIPv4Address.
    DESTINATION_IPV4_ADDRESS = 12,
    /// destinationIPv4PrefixLength.
    DESTINATION_IPV4_PREFIX_LENGTH = 13,
    /// egressInterface.
    EGRESS_INTERFACE = 14,
    /// bgpSourceAsNumber.
    BGP_SOURCE_AS_NUMBER = 16,
    /// bgpDestinationAsNumber.
    BGP_DESTINATION_AS_NUMBER = 17,
    /// flowEndSysUpTime (v9 LAST_SWITCHED), milliseconds of exporter uptime.
    FLOW_END_SYS_UP_TIME = 21,
    /// flowStartSysUpTime (v9 FIRST_SWITCHED).
    FLOW_START_SYS_UP_TIME = 22,
    /// sourceIPv6Address.
    SOURCE_IPV6_ADDRESS = 27,
    /// destinationIPv6Address.
    DESTINATION_IPV6_ADDRESS = 28,
    /// sourceIPv6PrefixLength.
    SOURCE_IPV6_PREFIX_LENGTH = 29,
    /// destinationIPv6PrefixLength.
    DESTINATION_IPV6_PREFIX_LENGTH = 30,
    /// icmpTypeCodeIPv4.
    ICMP_TYPE_CODE_IPV4 = 32,
    /// samplingInterval (v9 SAMPLING_INTERVAL; deprecated in IPFIX, still sent).
    SAMPLING_INTERVAL = 34,
    /// samplingAlgorithm (v9 SAMPLING_ALGORITHM).
    SAMPLING_ALGORITHM = 35,
    /// samplerId (v9 FLOW_SAMPLER_ID).
    SAMPLER_ID = 48,
    /// samplerMode (v9 FLOW_SAMPLER_MODE).
    SAMPLER_MODE = 49,
    /// samplerRandomInterval (v9 FLOW_SAMPLER_RANDOM_INTERVAL).
    SAMPLER_RANDOM_INTERVAL = 50,
    /// octetTotalCount (v9 IN_PERMANENT_BYTES).
    OCTET_TOTAL_COUNT = 85,
    /// packetTotalCount (v9 IN_PERMANENT_PKTS).
    PACKET_TOTAL_COUNT = 86,
    /// fragmentOffset.
    FRAGMENT_OFFSET = 88,
    /// icmpTypeCodeIPv6.
    ICMP_TYPE_CODE_IPV6 = 139,
    /// flowStartSeconds.
    FLOW_START_SECONDS = 150,
    /// flowEndSeconds.
    FLOW_END_SECONDS = 151,
    /// flowStartMilliseconds.
    FLOW_START_MILLISECONDS = 152,
    /// flowEndMilliseconds.
    FLOW_END_MILLISECONDS = 153,
    /// flowStartMicroseconds (NTP timestamp format).
    FLOW_START_MICROSECONDS = 154,
    /// flowEndMicroseconds.
    FLOW_END_MICROSECONDS = 155,
    /// flowStartNanoseconds (NTP timestamp format).
    FLOW_START_NANOSECONDS = 156,
    /// flowEndNanoseconds.
    FLOW_END_NANOSECONDS = 157,
    /// flowStartDeltaMicroseconds, before the message's export time.
    FLOW_START_DELTA_MICROSECONDS = 158,
    /// flowEndDeltaMicroseconds.
    FLOW_END_DELTA_MICROSECONDS = 159,
    /// systemInitTimeMilliseconds: the Unix time the sysUpTime fields count from.
    SYSTEM_INIT_TIME_MILLISECONDS = 160,
    /// icmpTypeIPv4.
    ICMP_TYPE_IPV4 = 176,
    /// icmpCodeIPv4.
    ICMP_CODE_IPV4 = 177,
    /// icmpTypeIPv6.
    ICMP_TYPE_IPV6 = 178,
    /// icmpCodeIPv6.
    ICMP_CODE_IPV6 = 179,
    /// fragmentFlags.
    FRAGMENT_FLAGS = 197,
    /// selectorId (RFC 5477).
    SELECTOR_ID = 302,
    /// selectorAlgorithm.
    SELECTOR_ALGORITHM = 304,
    /// samplingPacketInterval: packets selected in a row.
    SAMPLING_PACKET_INTERVAL = 305,
    /// samplingPacketSpace: packets skipped between selections.
    SAMPLING_PACKET_SPACE = 306,
    /// samplingSize: packets selected out of samplingPopulation.
    SAMPLING_SIZE = 309,
    /// samplingPopulation.
    SAMPLING_POPULATION = 310,
}

impl fmt::Debug for InformationElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "InformationElement({})", self.0),
        }
    }
}

/// Where a field's value goes, decided once when the template is learned so that decoding a
/// record is one `match` per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Skip,
    Bytes,
    Packets,
    BytesTotal,
    PacketsTotal,
    Protocol,
    Tos,
    TcpFlags,
    SrcPort,
    DstPort,
    SrcV4,
    DstV4,
    SrcV6,
    DstV6,
    SrcPrefix,
    DstPrefix,
    InputIf,
    OutputIf,
    SrcAs,
    DstAs,
    StartUptime,
    EndUptime,
    StartSeconds,
    EndSeconds,
    StartMillis,
    EndMillis,
    StartNtp,
    EndNtp,
    StartDeltaMicros,
    EndDeltaMicros,
    SystemInit,
    IcmpTypeCode,
    IcmpType,
    IcmpCode,
    FragmentOffset,
    FragmentFlags,
    SamplingInterval,
    SamplerId,
    SamplerRandomInterval,
    PacketInterval,
    PacketSpace,
    SamplingSize,
    SamplingPopulation,
}

impl Slot {
    /// The slot of an IANA element (enterprise 0) of `length` bytes (65535 = variable). An
    /// element with a length its type cannot have is skipped rather than misread.
    pub(crate) fn of(ie: InformationElement, length: u16) -> Slot {
        type E = InformationElement;
        let variable = length == crate::template::VARIABLE_LENGTH;
        let slot = match ie {
            E::OCTET_DELTA_COUNT => Slot::Bytes,
            E::PACKET_DELTA_COUNT => Slot::Packets,
            E::OCTET_TOTAL_COUNT => Slot::BytesTotal,
            E::PACKET_TOTAL_COUNT => Slot::PacketsTotal,
            E::PROTOCOL_IDENTIFIER => Slot::Protocol,
            E::IP_CLASS_OF_SERVICE => Slot::Tos,
            E::TCP_CONTROL_BITS => Slot::TcpFlags,
            E::SOURCE_TRANSPORT_PORT => Slot::SrcPort,
            E::DESTINATION_TRANSPORT_PORT => Slot::DstPort,
            E::SOURCE_IPV4_ADDRESS if length == 4 => Slot::SrcV4,
            E::DESTINATION_IPV4_ADDRESS if length == 4 => Slot::DstV4,
            E::SOURCE_IPV6_ADDRESS if length == 16 => Slot::SrcV6,
            E::DESTINATION_IPV6_ADDRESS if length == 16 => Slot::DstV6,
            E::SOURCE_IPV4_PREFIX_LENGTH | E::SOURCE_IPV6_PREFIX_LENGTH => Slot::SrcPrefix,
            E::DESTINATION_IPV4_PREFIX_LENGTH | E::DESTINATION_IPV6_PREFIX_LENGTH => Slot::DstPrefix,
            E::INGRESS_INTERFACE => Slot::InputIf,
            E::EGRESS_INTERFACE => Slot::OutputIf,
            E::BGP_SOURCE_AS_NUMBER => Slot::SrcAs,
            E::BGP_DESTINATION_AS_NUMBER => Slot::DstAs,
            E::FLOW_START_SYS_UP_TIME => Slot::StartUptime,
            E::FLOW_END_SYS_UP_TIME => Slot::EndUptime,
            E::FLOW_START_SECONDS => Slot::StartSeconds,
            E::FLOW_END_SECONDS => Slot::EndSeconds,
            E::FLOW_START_MILLISECONDS => Slot::StartMillis,
            E::FLOW_END_MILLISECONDS => Slot::EndMillis,
            E::FLOW_START_MICROSECONDS | E::FLOW_START_NANOSECONDS if length == 8 => Slot::StartNtp,
            E::FLOW_END_MICROSECONDS | E::FLOW_END_NANOSECONDS if length == 8 => Slot::EndNtp,
            E::FLOW_START_DELTA_MICROSECONDS => Slot::StartDeltaMicros,
            E::FLOW_END_DELTA_MICROSECONDS => Slot::EndDeltaMicros,
            E::SYSTEM_INIT_TIME_MILLISECONDS => Slot::SystemInit,
            E::ICMP_TYPE_CODE_IPV4 | E::ICMP_TYPE_CODE_IPV6 => Slot::IcmpTypeCode,
            E::ICMP_TYPE_IPV4 | E::ICMP_TYPE_IPV6 => Slot::IcmpType,
            E::ICMP_CODE_IPV4 | E::ICMP_CODE_IPV6 => Slot::IcmpCode,
            E::FRAGMENT_OFFSET => Slot::FragmentOffset,
            E::FRAGMENT_FLAGS => Slot::FragmentFlags,
            E::SAMPLING_INTERVAL => Slot::SamplingInterval,
            E::SAMPLER_ID | E::SELECTOR_ID => Slot::SamplerId,
            E::SAMPLER_RANDOM_INTERVAL => Slot::SamplerRandomInterval,
            E::SAMPLING_PACKET_INTERVAL => Slot::PacketInterval,
            E::SAMPLING_PACKET_SPACE => Slot::PacketSpace,
            E::SAMPLING_SIZE => Slot::SamplingSize,
            E::SAMPLING_POPULATION => Slot::SamplingPopulation,
            _ => Slot::Skip,
        };
        // Addresses and NTP timestamps were matched on their exact length above; integers
        // accept reduced-size encoding (RFC 7011 section 6.2), up to 8 bytes, but not
        // variable length.
        match slot {
            Slot::SrcV4 | Slot::DstV4 | Slot::SrcV6 | Slot::DstV6 | Slot::StartNtp | Slot::EndNtp => slot,
            Slot::Skip => Slot::Skip,
            _ if variable || length == 0 || length > 8 => Slot::Skip,
            _ => slot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slots() {
        assert_eq!(format!("{:?}", InformationElement(8)), "SOURCE_IPV4_ADDRESS");
        assert_eq!(format!("{:?}", InformationElement(999)), "InformationElement(999)");
        assert_eq!(Slot::of(InformationElement::SOURCE_IPV4_ADDRESS, 4), Slot::SrcV4);
        assert_eq!(Slot::of(InformationElement::SOURCE_IPV4_ADDRESS, 16), Slot::Skip);
        assert_eq!(Slot::of(InformationElement::OCTET_DELTA_COUNT, 4), Slot::Bytes);
        assert_eq!(Slot::of(InformationElement::OCTET_DELTA_COUNT, 65535), Slot::Skip);
        assert_eq!(Slot::of(InformationElement::OCTET_DELTA_COUNT, 9), Slot::Skip);
        assert_eq!(Slot::of(InformationElement(82), 65535), Slot::Skip);
    }
}
