//! What the engine sends when it blocks: TCP resets to both ends (RFC 9293 section 3.10.7.3:
//! a reset is accepted when its sequence number is the one the receiver expects) and, for plain
//! HTTP, a redirect to the block page. The builders are pure; [`RawSender`] puts the packets on
//! the wire through a raw IP socket with the header included.

use std::io;
use std::net::{IpAddr, SocketAddr};

use bawaba_wire::build::{ethernet_frame, ip_packet, Header};
use bawaba_wire::packet::{tcp_flags, Packet};

/// Builds the two resets for a client's TCP packet that is being dropped: one to the client,
/// as if from the server, with the sequence number the client expects (the packet's ack); one to
/// the server, as if from the client, with the packet's own sequence number (the server never
/// sees the dropped packet, so that is what it expects). Appends both to `out` and returns the
/// two lengths. `None` for a packet that is not TCP or is itself a reset.
pub fn resets(packet: &Packet<'_>, out: &mut Vec<u8>) -> Option<(usize, usize)> {
    let tcp = packet.tcp()?;
    if tcp.has(tcp_flags::RST) {
        return None;
    }
    let a = ip_packet(out, packet.dst, packet.src, rst(tcp.dst_port, tcp.src_port, tcp.ack), &[]);
    let b = ip_packet(out, packet.src, packet.dst, rst(tcp.src_port, tcp.dst_port, tcp.seq), &[]);
    Some((a, b))
}

/// A bare reset (no ACK, window 0) from `src_port` to `dst_port` with sequence number `seq`.
fn rst(src_port: u16, dst_port: u16, seq: u32) -> Header {
    Header::Tcp { src_port, dst_port, seq, ack: 0, flags: tcp_flags::RST, window: 0 }
}

/// A second reset to the packet's destination for a packet with payload, with the sequence
/// number after it: right when the dropped packet was a zero-window probe or a keepalive (one
/// old byte below what the destination expects), where [`resets`]'s is one too low. The wrong
/// one of the two only earns a challenge ACK (RFC 5961 section 3.2). Appends it to `out` and
/// returns its length.
pub fn reset_after(packet: &Packet<'_>, out: &mut Vec<u8>) -> Option<usize> {
    let tcp = packet.tcp()?;
    if tcp.has(tcp_flags::RST) || packet.payload.is_empty() {
        return None;
    }
    let header = rst(tcp.src_port, tcp.dst_port, tcp.seq.wrapping_add(packet.payload.len() as u32));
    Some(ip_packet(out, packet.src, packet.dst, header, &[]))
}

/// Builds the answer to a blocked plain-HTTP request: to the client, as if from the server, an
/// HTTP 302 to `location` with FIN (the response and the end of the connection in one segment);
/// to the server, a reset. Appends both to `out` and returns the two lengths.
pub fn redirect(packet: &Packet<'_>, location: &str, out: &mut Vec<u8>) -> Option<(usize, usize)> {
    let tcp = packet.tcp()?;
    let body = format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nCache-Control: no-store\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let to_client = Header::Tcp {
        src_port: tcp.dst_port,
        dst_port: tcp.src_port,
        seq: tcp.ack,
        ack: tcp.seq.wrapping_add(packet.payload.len() as u32),
        flags: tcp_flags::PSH | tcp_flags::ACK | tcp_flags::FIN,
        window: 0,
    };
    let a = ip_packet(out, packet.dst, packet.src, to_client, body.as_bytes());
    let to_server = rst(tcp.src_port, tcp.dst_port, tcp.seq);
    let b = ip_packet(out, packet.src, packet.dst, to_server, &[]);
    Some((a, b))
}

/// Builds the resets a passive sensor sends when it sees `packet` (from A to B) of a blocked
/// flow, as Ethernet frames (`a_mac`, `b_mac`: the frame's source and destination): to B, as
/// if from A, with the sequence number B expects after this packet (seq + payload length); to
/// A, as if from B, with the sequence number A expects (the packet's ack). Unlike [`resets`],
/// the packet itself was delivered. Appends both frames to `out`; returns the two lengths.
pub fn passive_resets(
    packet: &Packet<'_>,
    a_mac: [u8; 6],
    b_mac: [u8; 6],
    out: &mut Vec<u8>,
) -> Option<(usize, usize)> {
    let tcp = packet.tcp()?;
    if tcp.has(tcp_flags::RST) {
        return None;
    }
    let consumed =
        packet.payload.len() as u32 + u32::from(tcp.has(tcp_flags::SYN)) + u32::from(tcp.has(tcp_flags::FIN));
    let to_b = rst(tcp.src_port, tcp.dst_port, tcp.seq.wrapping_add(consumed));
    let first = ethernet_frame(out, a_mac, b_mac, packet.src, packet.dst, to_b, &[]);
    if !tcp.has(tcp_flags::ACK) {
        // A bare SYN acknowledges nothing: there is no sequence number A would accept.
        return Some((first, 0));
    }
    let to_a = rst(tcp.dst_port, tcp.src_port, tcp.ack);
    let second = ethernet_frame(out, b_mac, a_mac, packet.dst, packet.src, to_a, &[]);
    Some((first, second))
}

/// `base` with `?order=<reference>&host=<host>` (or `&...` if `base` has a query), percent-encoded.
pub fn block_page_location(base: &str, reference: &str, host: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}order={}&host={}", percent_encode(reference), percent_encode(host))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Raw IPv4 and IPv6 sockets that send complete IP packets (IPPROTO_RAW implies the header is
/// included, RFC 3542 section 3.3 for IPv6 on Linux).
pub struct RawSender {
    v4: socket2::Socket,
    v6: Option<socket2::Socket>,
}

impl RawSender {
    /// Opens the sockets (needs CAP_NET_RAW). IPv6 is optional: without it IPv6 resets are
    /// counted as failed.
    pub fn open() -> io::Result<Self> {
        let raw = Some(socket2::Protocol::from(255));
        let v4 = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::RAW, raw)?;
        let v6 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::RAW, raw).ok();
        Ok(RawSender { v4, v6 })
    }

    /// Sends one IP packet to `dst`.
    pub fn send(&self, packet: &[u8], dst: IpAddr) -> io::Result<()> {
        let addr = socket2::SockAddr::from(SocketAddr::new(dst, 0));
        let socket = match dst {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => self.v6.as_ref().ok_or_else(|| io::Error::other("no IPv6 raw socket"))?,
        };
        socket.send_to(packet, &addr).map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use bawaba_wire::packet::{dissect_ip, l4_checksum_ok};

    fn client_packet(payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let h = Header::Tcp {
            src_port: 40000,
            dst_port: 80,
            seq: 1000,
            ack: 5000,
            flags: tcp_flags::ACK | tcp_flags::PSH,
            window: 500,
        };
        ip_packet(&mut buf, "198.18.1.2".parse().unwrap(), "198.18.2.2".parse().unwrap(), h, payload);
        buf
    }

    #[test]
    fn resets_carry_the_expected_sequence_numbers() {
        let pkt = client_packet(b"\x16\x03\x01");
        let p = dissect_ip(&pkt).unwrap();
        let mut out = Vec::new();
        let (a, b) = resets(&p, &mut out).unwrap();
        let to_client = dissect_ip(&out[..a]).unwrap();
        assert_eq!((to_client.src, to_client.dst), (p.dst, p.src));
        let t = to_client.tcp().unwrap();
        assert_eq!((t.src_port, t.dst_port, t.seq), (80, 40000, 5000));
        assert!(t.has(tcp_flags::RST));
        assert_eq!(l4_checksum_ok(&to_client), Some(true));
        let to_server = dissect_ip(&out[a..a + b]).unwrap();
        assert_eq!(to_server.tcp().unwrap().seq, 1000);
        assert_eq!((to_server.src, to_server.dst), (p.src, p.dst));
    }

    #[test]
    fn redirect_answers_the_request() {
        let req = b"GET / HTTP/1.1\r\nHost: page.test\r\n\r\n";
        let pkt = client_packet(req);
        let p = dissect_ip(&pkt).unwrap();
        let mut out = Vec::new();
        let location = block_page_location("http://198.18.2.9/blocked", "CFI 2026/42", "page.test");
        assert_eq!(location, "http://198.18.2.9/blocked?order=CFI%202026%2F42&host=page.test");
        let (a, _) = redirect(&p, &location, &mut out).unwrap();
        let answer = dissect_ip(&out[..a]).unwrap();
        let t = answer.tcp().unwrap();
        assert_eq!((t.seq, t.ack), (5000, 1000 + req.len() as u32));
        assert!(t.has(tcp_flags::FIN));
        let text = std::str::from_utf8(answer.payload).unwrap();
        assert!(text.starts_with("HTTP/1.1 302 Found\r\nLocation: http://198.18.2.9/blocked?order="), "{text}");
        assert_eq!(l4_checksum_ok(&answer), Some(true));
    }

    #[test]
    fn no_reset_for_a_reset() {
        let mut buf = Vec::new();
        let h = Header::Tcp { src_port: 1, dst_port: 2, seq: 3, ack: 0, flags: tcp_flags::RST, window: 0 };
        ip_packet(&mut buf, "198.18.1.2".parse().unwrap(), "198.18.2.2".parse().unwrap(), h, b"");
        assert!(resets(&dissect_ip(&buf).unwrap(), &mut Vec::new()).is_none());
    }
}
