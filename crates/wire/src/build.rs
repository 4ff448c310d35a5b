//! Building IP packets: the TCP resets and HTTP redirects the packet engine injects, and the
//! synthetic traffic tests and benchmarks feed it. Checksums are always filled in.

use std::net::IpAddr;

use crate::packet::{ethertype, internet_checksum, protocol, pseudo_header_sum};

/// The transport header to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// TCP with these fields and no options.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Flag bits ([`crate::packet::tcp_flags`]).
        flags: u8,
        /// Window.
        window: u16,
    },
    /// UDP.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
}

/// Appends an IP packet (IPv4 if both addresses are IPv4, else IPv6) carrying `header` and
/// `payload` to `out`, with TTL/hop limit 64 and correct checksums. Returns the packet's length.
///
/// # Panics
/// If the packet would exceed 65,535 bytes, or one address is IPv4 and the other IPv6.
pub fn ip_packet(out: &mut Vec<u8>, src: IpAddr, dst: IpAddr, header: Header, payload: &[u8]) -> usize {
    let (proto, l4_len) = match header {
        Header::Tcp { .. } => (protocol::TCP, 20 + payload.len()),
        Header::Udp { .. } => (protocol::UDP, 8 + payload.len()),
    };
    let start = out.len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(20 + l4_len).expect("an IPv4 packet fits in 65,535 bytes");
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&total.to_be_bytes());
            // Identification 0, don't fragment, TTL 64.
            out.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let sum = internet_checksum(&out[start..start + 20], 0);
            out[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(l4_len).expect("an IPv6 payload fits in 65,535 bytes");
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&plen.to_be_bytes());
            out.extend_from_slice(&[proto, 64]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => panic!("source and destination must both be IPv4 or both IPv6"),
    }
    let l4 = out.len();
    match header {
        Header::Tcp { src_port, dst_port, seq, ack, flags, window } => {
            out.extend_from_slice(&src_port.to_be_bytes());
            out.extend_from_slice(&dst_port.to_be_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&ack.to_be_bytes());
            out.extend_from_slice(&[5 << 4, flags]);
            out.extend_from_slice(&window.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
        }
        Header::Udp { src_port, dst_port } => {
            out.extend_from_slice(&src_port.to_be_bytes());
            out.extend_from_slice(&dst_port.to_be_bytes());
            out.extend_from_slice(&(l4_len as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
    }
    out.extend_from_slice(payload);
    let sum = internet_checksum(&out[l4..], pseudo_header_sum(src, dst, proto, l4_len));
    let at = match header {
        Header::Tcp { .. } => l4 + 16,
        // RFC 768: a computed zero is sent as all ones.
        Header::Udp { .. } => l4 + 6,
    };
    let sum = if sum == 0 && proto == protocol::UDP { 0xffff } else { sum };
    out[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    out.len() - start
}

/// Appends an Ethernet II frame around an IP packet built by [`ip_packet`].
pub fn ethernet_frame(
    out: &mut Vec<u8>,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    header: Header,
    payload: &[u8],
) -> usize {
    let start = out.len();
    out.extend_from_slice(&dst_mac);
    out.extend_from_slice(&src_mac);
    let ethertype = if src.is_ipv4() { ethertype::IPV4 } else { ethertype::IPV6 };
    out.extend_from_slice(&ethertype.to_be_bytes());
    ip_packet(out, src, dst, header, payload);
    out.len() - start
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::packet::{dissect_ethernet, dissect_ip, l4_checksum_ok, tcp_flags};

    #[test]
    fn built_packets_dissect_with_good_checksums() {
        for (src, dst) in [("198.18.1.2", "198.18.2.2"), ("2001:db8:1::2", "2001:db8:2::2")] {
            let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
            let tcp = Header::Tcp {
                src_port: 40000,
                dst_port: 443,
                seq: 7,
                ack: 9,
                flags: tcp_flags::RST | tcp_flags::ACK,
                window: 0,
            };
            let mut buf = Vec::new();
            ip_packet(&mut buf, src, dst, tcp, b"");
            let p = dissect_ip(&buf).unwrap();
            assert_eq!(l4_checksum_ok(&p), Some(true));
            assert!(p.ipv4_header_checksum_ok().unwrap_or(true));
            assert!(p.tcp().unwrap().has(tcp_flags::RST));
            let mut frame = Vec::new();
            ethernet_frame(&mut frame, [2; 6], [4; 6], src, dst, Header::Udp { src_port: 5, dst_port: 53 }, b"xyz");
            let p = dissect_ethernet(&frame).unwrap();
            assert_eq!(p.payload, b"xyz");
            assert_eq!(l4_checksum_ok(&p), Some(true));
        }
    }
}
