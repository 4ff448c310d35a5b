//! Link, network and transport headers: Ethernet II with 802.1Q/802.1ad VLAN tags, IPv4 (with
//! options and fragments), IPv6 (walking the extension-header chain), TCP and UDP.
//!
//! [`dissect_ethernet`] and [`dissect_ip`] read a frame once and return a [`Packet`]: the
//! addresses, the transport header fields the packet engine needs, and the transport payload as a
//! slice of the input. Nothing is copied or allocated. A frame cut short by the capture's snap
//! length is not an error: the payload is what was captured and [`Packet::truncated`] says so.
//! Headers that do not fit, or that contradict their own lengths, are errors that carry the byte
//! offset.
//!
//! Checksums are not verified on the fast path (captures from interfaces with offloads carry
//! placeholders there); [`Packet::ipv4_header_checksum_ok`] and [`l4_checksum_ok`] check them on
//! demand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Ethertypes this module reads (IEEE 802.3, IANA "ETHER TYPES").
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still sent by some switches.
    pub const QINQ_OLD: u16 = 0x9100;
}

/// IP protocol numbers this module reads (IANA "Assigned Internet Protocol Numbers").
pub mod protocol {
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating security payload.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NO_NEXT: u8 = 59;
    /// IPv6 destination options.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility header.
    pub const MOBILITY: u8 = 135;
    /// Host identity protocol.
    pub const HIP: u8 = 139;
    /// Shim6.
    pub const SHIM6: u8 = 140;
}

/// Most VLAN tags read in front of the IP header (QinQ is two; a few more are tolerated).
pub const MAX_VLAN_TAGS: usize = 4;
/// Most IPv6 extension headers walked before giving up.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Why bytes are not a packet this module can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The frame ends inside a header.
    #[error("truncated {what} header at byte {offset}")]
    Truncated {
        /// Where the header starts.
        offset: usize,
        /// Which header.
        what: &'static str,
    },
    /// An ethertype other than IPv4, IPv6 or a VLAN tag.
    #[error("ethertype 0x{ethertype:04x} at byte {offset} is not IP")]
    NotIp {
        /// Where the ethertype field is.
        offset: usize,
        /// Its value.
        ethertype: u16,
    },
    /// More VLAN tags than [`MAX_VLAN_TAGS`].
    #[error("more than {MAX_VLAN_TAGS} VLAN tags")]
    TooManyTags,
    /// The IP version nibble disagrees with the ethertype or is neither 4 nor 6.
    #[error("IP version {version} at byte {offset}")]
    Version {
        /// Where the IP header starts.
        offset: usize,
        /// The nibble.
        version: u8,
    },
    /// A length field that contradicts the header (IPv4 IHL < 5, total length < IHL, TCP data
    /// offset < 5, UDP length < 8, an extension header running past the packet).
    #[error("bad {what} length at byte {offset}")]
    BadLength {
        /// Where the field's header starts.
        offset: usize,
        /// Which field.
        what: &'static str,
    },
    /// An IPv6 extension-header chain longer than [`MAX_EXTENSION_HEADERS`].
    #[error("IPv6 extension-header chain longer than {MAX_EXTENSION_HEADERS} at byte {offset}")]
    ExtensionChain {
        /// Where the last header read starts.
        offset: usize,
    },
}

/// The transport layer as far as it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A TCP segment.
    Tcp(TcpHeader),
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// A non-first IP fragment: no transport header, not inspected.
    Fragment,
    /// Another protocol (ICMP, ESP, GRE, ...): only addresses and the protocol number are known.
    Other,
}

/// The TCP header fields the engine uses (RFC 9293 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// The flag bits (low 8 bits of the 16-bit data-offset/flags word).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
}

/// TCP flag bits.
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
}

impl TcpHeader {
    /// True when `flag` (a [`tcp_flags`] bit) is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// One dissected packet: everything borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// VLAN ids, outermost first; `vlan_count` of them are valid.
    pub vlans: [u16; MAX_VLAN_TAGS],
    /// How many VLAN tags were read.
    pub vlan_count: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol number (after IPv6 extension headers).
    pub protocol: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Transport header, if read.
    pub transport: Transport,
    /// Transport payload (the bytes after the TCP/UDP header), as captured.
    pub payload: &'a [u8],
    /// The IP packet, from its first header byte to the end of what was captured (and no further
    /// than its own length field says: Ethernet padding is cut off).
    pub ip: &'a [u8],
    /// Offset of the transport header within [`Packet::ip`].
    pub transport_offset: usize,
    /// The capture ended before the end the IP length field announces.
    pub truncated: bool,
    /// The packet is a fragment (first or not) of a larger datagram.
    pub fragmented: bool,
}

impl Packet<'_> {
    /// The VLAN ids read, outermost first.
    pub fn vlans(&self) -> &[u16] {
        &self.vlans[..usize::from(self.vlan_count)]
    }

    /// Source port, for TCP and UDP.
    pub fn src_port(&self) -> Option<u16> {
        match self.transport {
            Transport::Tcp(t) => Some(t.src_port),
            Transport::Udp { src_port, .. } => Some(src_port),
            _ => None,
        }
    }

    /// Destination port, for TCP and UDP.
    pub fn dst_port(&self) -> Option<u16> {
        match self.transport {
            Transport::Tcp(t) => Some(t.dst_port),
            Transport::Udp { dst_port, .. } => Some(dst_port),
            _ => None,
        }
    }

    /// The TCP header, if this is a TCP segment.
    pub fn tcp(&self) -> Option<&TcpHeader> {
        match &self.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// For IPv4, whether the header checksum is right (RFC 791 section 3.1); `None` for IPv6,
    /// which has none.
    pub fn ipv4_header_checksum_ok(&self) -> Option<bool> {
        if !self.src.is_ipv4() {
            return None;
        }
        let ihl = usize::from(self.ip[0] & 0x0f) * 4;
        Some(fold(sum_words(&self.ip[..ihl], 0)) == 0xffff)
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads an Ethernet II frame (IEEE 802.3 clause 3.2.6), skipping up to [`MAX_VLAN_TAGS`] VLAN
/// tags, then the IP packet inside.
#[inline]
pub fn dissect_ethernet(frame: &[u8]) -> Result<Packet<'_>, PacketError> {
    if frame.len() < 14 {
        return Err(PacketError::Truncated { offset: 0, what: "Ethernet" });
    }
    let mut vlans = [0u16; MAX_VLAN_TAGS];
    let mut vlan_count = 0usize;
    let mut at = 12;
    loop {
        let ethertype = be16(frame, at);
        match ethertype {
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                if vlan_count == MAX_VLAN_TAGS {
                    return Err(PacketError::TooManyTags);
                }
                if frame.len() < at + 6 {
                    return Err(PacketError::Truncated { offset: at, what: "VLAN tag" });
                }
                vlans[vlan_count] = be16(frame, at + 2) & 0x0fff;
                vlan_count += 1;
                at += 4;
            }
            ethertype::IPV4 | ethertype::IPV6 => {
                let mut packet = dissect_ip_at(frame, at + 2, Some(ethertype))?;
                packet.vlans = vlans;
                packet.vlan_count = vlan_count as u8;
                return Ok(packet);
            }
            other => return Err(PacketError::NotIp { offset: at, ethertype: other }),
        }
    }
}

/// Reads a bare IP packet (what NFQUEUE hands over, and link type RAW in captures); the version
/// nibble says IPv4 or IPv6.
pub fn dissect_ip(packet: &[u8]) -> Result<Packet<'_>, PacketError> {
    dissect_ip_at(packet, 0, None)
}

/// Reads the IP packet that starts at `start` in `buf`. Offsets in errors are relative to `buf`.
///
/// This and the functions it calls are inlined into the public entry points, so that the
/// `Packet` (about 120 bytes) is built where it is returned. Built in one function and handed
/// back through three, it was copied at each return: written field by field, then read back in
/// wider pieces, which the CPU cannot forward from those stores (the engine's captures ran 8%
/// slower).
#[inline(always)]
fn dissect_ip_at(buf: &[u8], start: usize, expect: Option<u16>) -> Result<Packet<'_>, PacketError> {
    let Some(&first) = buf.get(start) else {
        return Err(PacketError::Truncated { offset: start, what: "IP" });
    };
    let version = first >> 4;
    match (version, expect) {
        (4, None | Some(ethertype::IPV4)) => ipv4(buf, start),
        (6, None | Some(ethertype::IPV6)) => ipv6(buf, start),
        _ => Err(PacketError::Version { offset: start, version }),
    }
}

/// RFC 791 section 3.1.
#[inline(always)]
fn ipv4(buf: &[u8], start: usize) -> Result<Packet<'_>, PacketError> {
    let b = &buf[start..];
    if b.len() < 20 {
        return Err(PacketError::Truncated { offset: start, what: "IPv4" });
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    let total = usize::from(be16(b, 2));
    if ihl < 20 || total < ihl {
        return Err(PacketError::BadLength { offset: start, what: "IPv4 header" });
    }
    if b.len() < ihl {
        return Err(PacketError::Truncated { offset: start, what: "IPv4 options" });
    }
    // Ethernet pads short frames: the IP total length decides where the packet ends.
    let truncated = b.len() < total;
    let ip = &b[..total.min(b.len())];
    let frag = be16(b, 6);
    let more_fragments = frag & 0x2000 != 0;
    let fragment_offset = frag & 0x1fff;
    let protocol = b[9];
    let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    let mut packet = Packet {
        vlans: [0; MAX_VLAN_TAGS],
        vlan_count: 0,
        src,
        dst,
        protocol,
        ttl: b[8],
        transport: Transport::Other,
        payload: &[],
        ip,
        transport_offset: ihl,
        truncated,
        fragmented: more_fragments || fragment_offset != 0,
    };
    if fragment_offset != 0 {
        packet.transport = Transport::Fragment;
        return Ok(packet);
    }
    transport(&mut packet, start)?;
    Ok(packet)
}

/// RFC 8200 sections 3 and 4.
#[inline(always)]
fn ipv6(buf: &[u8], start: usize) -> Result<Packet<'_>, PacketError> {
    let b = &buf[start..];
    if b.len() < 40 {
        return Err(PacketError::Truncated { offset: start, what: "IPv6" });
    }
    let total = 40 + usize::from(be16(b, 4));
    let truncated = b.len() < total;
    let ip = &b[..total.min(b.len())];
    let mut addr = [0u8; 16];
    addr.copy_from_slice(&b[8..24]);
    let src = IpAddr::V6(Ipv6Addr::from(addr));
    addr.copy_from_slice(&b[24..40]);
    let dst = IpAddr::V6(Ipv6Addr::from(addr));
    let mut next = b[6];
    let mut at = 40;
    let mut fragmented = false;
    let mut first_fragment = true;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        match next {
            protocol::HOP_BY_HOP
            | protocol::ROUTING
            | protocol::DEST_OPTS
            | protocol::MOBILITY
            | protocol::HIP
            | protocol::SHIM6
            | protocol::AH
            | protocol::FRAGMENT => {
                if ip.len() < at + 8 {
                    return Err(PacketError::Truncated { offset: start + at, what: "IPv6 extension" });
                }
                let len = match next {
                    protocol::FRAGMENT => {
                        let frag = be16(ip, at + 2);
                        fragmented = true;
                        first_fragment = frag & 0xfff8 == 0;
                        8
                    }
                    // RFC 4302 section 2.2: AH counts 4-octet units, minus 2.
                    protocol::AH => (usize::from(ip[at + 1]) + 2) * 4,
                    _ => (usize::from(ip[at + 1]) + 1) * 8,
                };
                if ip.len() < at + len {
                    return Err(PacketError::BadLength { offset: start + at, what: "IPv6 extension" });
                }
                next = ip[at];
                at += len;
                if !first_fragment {
                    break;
                }
            }
            _ => {
                let mut packet = Packet {
                    vlans: [0; MAX_VLAN_TAGS],
                    vlan_count: 0,
                    src,
                    dst,
                    protocol: next,
                    ttl: b[7],
                    transport: Transport::Other,
                    payload: &[],
                    ip,
                    transport_offset: at,
                    truncated,
                    fragmented,
                };
                transport(&mut packet, start)?;
                return Ok(packet);
            }
        }
    }
    if !first_fragment {
        return Ok(Packet {
            vlans: [0; MAX_VLAN_TAGS],
            vlan_count: 0,
            src,
            dst,
            protocol: next,
            ttl: b[7],
            transport: Transport::Fragment,
            payload: &[],
            ip,
            transport_offset: at,
            truncated,
            fragmented,
        });
    }
    Err(PacketError::ExtensionChain { offset: start + at })
}

/// Reads the TCP (RFC 9293 section 3.1) or UDP (RFC 768) header at `packet.transport_offset`.
/// A first fragment or a snap-length cut may leave the payload short; that is not an error.
#[inline(always)]
fn transport(packet: &mut Packet<'_>, start: usize) -> Result<(), PacketError> {
    let at = packet.transport_offset;
    let l4 = &packet.ip[at..];
    match packet.protocol {
        protocol::TCP => {
            if l4.len() < 20 {
                return Err(PacketError::Truncated { offset: start + at, what: "TCP" });
            }
            let data_offset = usize::from(l4[12] >> 4) * 4;
            if data_offset < 20 {
                return Err(PacketError::BadLength { offset: start + at, what: "TCP data offset" });
            }
            if l4.len() < data_offset {
                if !packet.truncated && !packet.fragmented {
                    return Err(PacketError::BadLength { offset: start + at, what: "TCP data offset" });
                }
                return Err(PacketError::Truncated { offset: start + at, what: "TCP options" });
            }
            packet.transport = Transport::Tcp(TcpHeader {
                src_port: be16(l4, 0),
                dst_port: be16(l4, 2),
                seq: be32(l4, 4),
                ack: be32(l4, 8),
                flags: l4[13],
                window: be16(l4, 14),
            });
            packet.payload = &l4[data_offset..];
        }
        protocol::UDP => {
            if l4.len() < 8 {
                return Err(PacketError::Truncated { offset: start + at, what: "UDP" });
            }
            let len = usize::from(be16(l4, 4));
            // RFC 2675 jumbograms set 0; anything else below 8 is wrong.
            let end = if len == 0 {
                l4.len()
            } else if len < 8 || (len > l4.len() && !packet.truncated && !packet.fragmented) {
                return Err(PacketError::BadLength { offset: start + at, what: "UDP" });
            } else {
                len.min(l4.len())
            };
            packet.transport = Transport::Udp { src_port: be16(l4, 0), dst_port: be16(l4, 2) };
            packet.payload = &l4[8..end];
        }
        _ => {}
    }
    Ok(())
}

fn sum_words(bytes: &[u8], mut sum: u32) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum (RFC 1071) over `bytes` plus a pseudo-header sum: ones' complement of
/// the ones' complement sum.
pub fn internet_checksum(bytes: &[u8], pseudo: u32) -> u16 {
    !fold(sum_words(bytes, pseudo))
}

/// The pseudo-header sum for a TCP/UDP checksum (RFC 9293 section 3.1, RFC 8200 section 8.1).
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, protocol: u8, length: usize) -> u32 {
    let mut sum = 0u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = sum_words(&s.octets(), sum);
            sum = sum_words(&d.octets(), sum);
        }
        _ => {
            let s = match src {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            let d = match dst {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            sum = sum_words(&s.octets(), sum);
            sum = sum_words(&d.octets(), sum);
        }
    }
    sum + u32::from(protocol) + (length as u32 & 0xffff) + ((length as u32) >> 16)
}

/// Whether the TCP or UDP checksum of a complete, unfragmented packet is right. `None` when it
/// cannot be checked (truncated, fragmented, not TCP/UDP, or a UDP/IPv4 datagram sent without a
/// checksum).
pub fn l4_checksum_ok(packet: &Packet<'_>) -> Option<bool> {
    if packet.truncated || packet.fragmented {
        return None;
    }
    let l4 = &packet.ip[packet.transport_offset..];
    match packet.transport {
        Transport::Udp { .. } if packet.src.is_ipv4() && be16(l4, 6) == 0 => None,
        Transport::Tcp(_) | Transport::Udp { .. } => {
            let pseudo = pseudo_header_sum(packet.src, packet.dst, packet.protocol, l4.len());
            Some(internet_checksum(l4, pseudo) == 0)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Builds an IPv4 header + payload with a correct header checksum.
    pub(crate) fn ipv4_packet(protocol: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let total = 20 + l4.len();
        let mut p =
            vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, (frag >> 8) as u8, frag as u8, 64, protocol, 0, 0];
        p.extend_from_slice(&[198, 18, 1, 2, 198, 18, 2, 2]);
        let c = internet_checksum(&p, 0);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(l4);
        p
    }

    fn tcp_segment(src: u16, dst: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&src.to_be_bytes());
        t[2..4].copy_from_slice(&dst.to_be_bytes());
        t[4..8].copy_from_slice(&1000u32.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&64240u16.to_be_bytes());
        t.extend_from_slice(payload);
        t
    }

    fn ethernet(tags: &[(u16, u16)], ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        for (tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn tcp_over_ipv4_over_qinq() {
        let ip = ipv4_packet(protocol::TCP, 0, &tcp_segment(40000, 443, tcp_flags::PSH | tcp_flags::ACK, b"hello"));
        let frame = ethernet(&[(ethertype::QINQ, 100), (ethertype::VLAN, 0x2000 | 42)], ethertype::IPV4, &ip);
        let p = dissect_ethernet(&frame).unwrap();
        assert_eq!(p.vlans(), &[100, 42]);
        assert_eq!(p.src, "198.18.1.2".parse::<IpAddr>().unwrap());
        assert_eq!(p.dst, "198.18.2.2".parse::<IpAddr>().unwrap());
        assert_eq!((p.src_port(), p.dst_port()), (Some(40000), Some(443)));
        assert!(p.tcp().unwrap().has(tcp_flags::ACK));
        assert_eq!(p.payload, b"hello");
        assert_eq!(p.ipv4_header_checksum_ok(), Some(true));
        assert!(!p.truncated && !p.fragmented);
    }

    #[test]
    fn ethernet_padding_is_cut_off_by_the_ip_length() {
        let ip = ipv4_packet(protocol::TCP, 0, &tcp_segment(1, 2, tcp_flags::SYN, b""));
        let mut frame = ethernet(&[], ethertype::IPV4, &ip);
        frame.extend_from_slice(&[0; 6]);
        let p = dissect_ethernet(&frame).unwrap();
        assert!(p.payload.is_empty());
        assert_eq!(p.ip.len(), 40);
    }

    #[test]
    fn snap_length_cut_is_marked_not_rejected() {
        let ip = ipv4_packet(protocol::TCP, 0, &tcp_segment(1, 2, tcp_flags::ACK, &[7; 100]));
        let p = dissect_ip(&ip[..70]).unwrap();
        assert!(p.truncated);
        assert_eq!(p.payload.len(), 30);
        assert_eq!(l4_checksum_ok(&p), None);
    }

    #[test]
    fn ipv4_fragments() {
        let first = ipv4_packet(protocol::UDP, 0x2000, &[0, 53, 0, 53, 0, 200, 0, 0, 1, 2, 3]);
        let p = dissect_ip(&first).unwrap();
        assert!(p.fragmented);
        assert_eq!(p.dst_port(), Some(53));
        assert_eq!(p.payload, &[1, 2, 3]);
        let later = ipv4_packet(protocol::UDP, 0x0010, &[9; 16]);
        let p = dissect_ip(&later).unwrap();
        assert_eq!(p.transport, Transport::Fragment);
        assert!(p.payload.is_empty());
    }

    #[test]
    fn ipv4_options_are_skipped() {
        let l4 = tcp_segment(5, 80, tcp_flags::ACK, b"GET");
        let total = 24 + l4.len();
        let mut p = vec![0x46, 0, 0, total as u8, 0, 0, 0, 0, 64, 6, 0, 0, 198, 18, 1, 2, 198, 18, 2, 2, 1, 1, 1, 0];
        p.extend_from_slice(&l4);
        let d = dissect_ip(&p).unwrap();
        assert_eq!(d.transport_offset, 24);
        assert_eq!(d.payload, b"GET");
        assert_eq!(d.ipv4_header_checksum_ok(), Some(false));
    }

    fn ipv6_packet(chain: &[u8], next: u8, l4: &[u8]) -> Vec<u8> {
        let plen = chain.len() + l4.len();
        let mut p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, next, 64];
        p.extend_from_slice(&"2001:db8:1::2".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&"2001:db8:2::2".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(chain);
        p.extend_from_slice(l4);
        p
    }

    #[test]
    fn ipv6_extension_chain_is_walked() {
        let udp = [0x12, 0x34, 0x01, 0xbb, 0, 11, 0, 0, b'a', b'b', b'c'];
        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> UDP
        let mut chain = vec![protocol::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        chain.extend_from_slice(&[protocol::UDP, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let ip = ipv6_packet(&chain, protocol::HOP_BY_HOP, &udp);
        let frame = ethernet(&[], ethertype::IPV6, &ip);
        let p = dissect_ethernet(&frame).unwrap();
        assert_eq!(p.protocol, protocol::UDP);
        assert_eq!(p.dst_port(), Some(443));
        assert_eq!(p.payload, b"abc");
        assert_eq!(p.dst, "2001:db8:2::2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv6_fragments() {
        let tcp = tcp_segment(1, 443, tcp_flags::ACK, b"x");
        let first = ipv6_packet(&[protocol::TCP, 0, 0, 1, 0, 0, 0, 9], protocol::FRAGMENT, &tcp);
        let p = dissect_ip(&first).unwrap();
        assert!(p.fragmented);
        assert_eq!(p.dst_port(), Some(443));
        let later = ipv6_packet(&[protocol::TCP, 0, 0, 0x10, 0, 0, 0, 9], protocol::FRAGMENT, &[0; 24]);
        let p = dissect_ip(&later).unwrap();
        assert_eq!(p.transport, Transport::Fragment);
    }

    #[test]
    fn checksums_are_checked_on_demand() {
        let ip = ipv4_packet(protocol::TCP, 0, &tcp_segment(1, 2, tcp_flags::SYN, b""));
        let mut good = ip.clone();
        let p = dissect_ip(&good).unwrap();
        let l4 = &p.ip[20..];
        let c = internet_checksum(l4, pseudo_header_sum(p.src, p.dst, protocol::TCP, l4.len()));
        good[36..38].copy_from_slice(&c.to_be_bytes());
        assert_eq!(l4_checksum_ok(&dissect_ip(&good).unwrap()), Some(true));
        good[30] ^= 1;
        assert_eq!(l4_checksum_ok(&dissect_ip(&good).unwrap()), Some(false));
    }

    #[test]
    fn bad_input_is_an_error_with_an_offset() {
        assert_eq!(dissect_ethernet(&[0; 10]), Err(PacketError::Truncated { offset: 0, what: "Ethernet" }));
        let arp = ethernet(&[], 0x0806, &[0; 28]);
        assert_eq!(dissect_ethernet(&arp), Err(PacketError::NotIp { offset: 12, ethertype: 0x0806 }));
        let v6_in_v4 = ethernet(&[], ethertype::IPV4, &ipv6_packet(&[], protocol::UDP, &[0; 8]));
        assert_eq!(dissect_ethernet(&v6_in_v4), Err(PacketError::Version { offset: 14, version: 6 }));
        let mut short_ihl = ipv4_packet(protocol::TCP, 0, &[0; 20]);
        short_ihl[0] = 0x44;
        assert!(matches!(dissect_ip(&short_ihl), Err(PacketError::BadLength { .. })));
        let mut bad_offset = ipv4_packet(protocol::TCP, 0, &tcp_segment(1, 2, 0, b""));
        bad_offset[32] = 0x40;
        assert!(matches!(dissect_ip(&bad_offset), Err(PacketError::BadLength { offset: 20, .. })));
        let bad_udp = ipv4_packet(protocol::UDP, 0, &[0, 1, 0, 2, 0, 4, 0, 0]);
        assert!(matches!(dissect_ip(&bad_udp), Err(PacketError::BadLength { what: "UDP", .. })));
        let too_many: Vec<(u16, u16)> = (0..5).map(|i| (ethertype::VLAN, i)).collect();
        assert_eq!(dissect_ethernet(&ethernet(&too_many, ethertype::IPV4, &[0; 40])), Err(PacketError::TooManyTags));
        let looping = ipv6_packet(&[protocol::DEST_OPTS, 200, 0, 0, 0, 0, 0, 0], protocol::DEST_OPTS, &[]);
        assert!(matches!(dissect_ip(&looping), Err(PacketError::BadLength { .. })));
    }

    #[test]
    fn every_prefix_of_a_frame_is_an_outcome() {
        let ip = ipv6_packet(&[protocol::TCP, 0, 0, 1, 0, 0, 0, 9], protocol::FRAGMENT, &tcp_segment(1, 2, 0, b"abc"));
        let frame = ethernet(&[(ethertype::VLAN, 7)], ethertype::IPV6, &ip);
        for n in 0..=frame.len() {
            let _ = dissect_ethernet(&frame[..n]);
            let _ = dissect_ip(&ip[..n.min(ip.len())]);
        }
    }
}
