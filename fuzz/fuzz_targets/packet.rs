//! Packet dissection never panics, on an Ethernet frame or a bare IP packet, and neither do the
//! checksum checks and accessors on what it returns. What it returns stays inside the input, and
//! a frame without VLAN tags dissects like the IP packet inside it. And a packet built by
//! `build::ip_packet` from input-chosen fields dissects back to those fields with good checksums.
#![no_main]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bawaba_wire::build::{ip_packet, Header};
use bawaba_wire::packet::{dissect_ethernet, dissect_ip, l4_checksum_ok, Packet, Transport, MAX_VLAN_TAGS};
use libfuzzer_sys::fuzz_target;

/// `inner` lies within `outer`.
fn within(inner: &[u8], outer: &[u8]) -> bool {
    let (i, o) = (inner.as_ptr() as usize, outer.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn touch(p: &Packet<'_>, input: &[u8]) {
    let _ = l4_checksum_ok(p);
    let _ = p.ipv4_header_checksum_ok();
    assert!(p.vlans().len() <= MAX_VLAN_TAGS);
    assert!(within(p.ip, input), "the IP packet is borrowed from the input");
    assert!(within(p.payload, p.ip), "the payload lies within the IP packet");
    assert!(p.transport_offset <= p.ip.len());
    let ports = p.src_port().is_some();
    assert_eq!(ports, p.dst_port().is_some());
    assert_eq!(ports, matches!(p.transport, Transport::Tcp(_) | Transport::Udp { .. }));
    if let Some(t) = p.tcp() {
        let _ = t.has(bawaba_wire::packet::tcp_flags::SYN);
        assert_eq!(Some(t.src_port), p.src_port());
    }
    assert_eq!(p.src.is_ipv4(), p.dst.is_ipv4());
}

fn round_trip(data: &[u8]) {
    if data.len() < 12 {
        return;
    }
    let (h, payload) = data.split_at(12);
    let payload = &payload[..payload.len().min(2000)];
    let (src, dst): (IpAddr, IpAddr) = if h[0] & 1 == 0 {
        (Ipv4Addr::new(198, 18, h[1], h[2]).into(), Ipv4Addr::new(198, 19, h[3], h[4]).into())
    } else {
        let a = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, u16::from(h[1]), u16::from(h[2]));
        let b = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, u16::from(h[3]), u16::from(h[4]));
        (a.into(), b.into())
    };
    let (sp, dp) = (u16::from_be_bytes([h[5], h[6]]), u16::from_be_bytes([h[7], h[8]]));
    let header = if h[0] & 2 == 0 {
        let seq = u32::from_be_bytes([h[9], h[10], h[11], h[0]]);
        Header::Tcp { src_port: sp, dst_port: dp, seq, ack: seq ^ 0x5555, flags: h[9], window: 1024 }
    } else {
        Header::Udp { src_port: sp, dst_port: dp }
    };
    let mut out = Vec::new();
    let len = ip_packet(&mut out, src, dst, header, payload);
    assert_eq!(len, out.len());
    let p = dissect_ip(&out).expect("a built packet dissects");
    assert_eq!((p.src, p.dst, p.src_port(), p.dst_port()), (src, dst, Some(sp), Some(dp)));
    assert_eq!(p.payload, payload);
    assert!(!p.truncated && !p.fragmented);
    assert_eq!(l4_checksum_ok(&p), Some(true), "built checksums are right");
    assert_eq!(p.ipv4_header_checksum_ok(), src.is_ipv4().then_some(true));
    if let Header::Tcp { seq, flags, .. } = header {
        let t = p.tcp().expect("TCP");
        assert_eq!((t.seq, t.flags), (seq, flags));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = dissect_ethernet(data) {
        touch(&p, data);
        if p.vlans().is_empty() {
            let bare = dissect_ip(&data[14..]).expect("the IP packet in a frame dissects on its own");
            assert_eq!(Packet { vlans: p.vlans, vlan_count: 0, ..bare }, p);
        }
    }
    if let Ok(p) = dissect_ip(data) {
        touch(&p, data);
    }
    round_trip(data);
});
