use std::net::IpAddr;

use super::*;

fn connection(client: &str, cport: u16, server: &str, sport: u16, protocol: u8) -> Connection {
    Connection { client: (client.parse().unwrap(), cport), server: (server.parse().unwrap(), sport), protocol }
}

/// Native-endian u16 and u32, as netlink headers and attribute headers are written.
fn n16(v: u16) -> [u8; 2] {
    v.to_ne_bytes()
}
fn n32(v: u32) -> [u8; 4] {
    v.to_ne_bytes()
}

#[test]
fn an_ipv4_update_is_the_message_ctnetlink_expects() {
    let mut out = Vec::new();
    update_message(&mut out, &connection("198.18.1.2", 5400, "198.18.2.2", 53, 17), 0x300, 0xf00, 7);
    let mut want = Vec::new();
    // nlmsghdr: 88 bytes, IPCTNL_MSG_CT_NEW of NFNL_SUBSYS_CTNETLINK, REQUEST|ACK, seq 7, port 0.
    want.extend(n32(88));
    want.extend(n16(0x0100));
    want.extend(n16(0x0005));
    want.extend(n32(7));
    want.extend(n32(0));
    // nfgenmsg: AF_INET, version 0, resource id 0.
    want.extend([2, 0, 0, 0]);
    // Attributes as (length, type, value and padding), nested ones with NLA_F_NESTED and no
    // value of their own: CTA_TUPLE_ORIG (52 bytes) { CTA_TUPLE_IP (20) { V4_SRC, V4_DST },
    // CTA_TUPLE_PROTO (28) { NUM 17, SRC_PORT 5400, DST_PORT 53 } }, then CTA_MARK and
    // CTA_MARK_MASK, big-endian.
    let attributes: [(u16, u16, &[u8]); 10] = [
        (52, 0x8001, &[]),
        (20, 0x8001, &[]),
        (8, 1, &[198, 18, 1, 2]),
        (8, 2, &[198, 18, 2, 2]),
        (28, 0x8002, &[]),
        (5, 1, &[17, 0, 0, 0]),
        (6, 2, &[0x15, 0x18, 0, 0]),
        (6, 3, &[0, 53, 0, 0]),
        (8, 8, &[0, 0, 3, 0]),
        (8, 21, &[0, 0, 0x0f, 0]),
    ];
    for (len, kind, value) in attributes {
        want.extend(n16(len));
        want.extend(n16(kind));
        want.extend(value);
    }
    assert_eq!(out, want);
}

#[test]
fn an_ipv6_update_carries_sixteen_byte_addresses_and_messages_append() {
    let mut out = vec![0xaa; 3];
    let c = connection("2001:db8::1", 40000, "2001:db8::2", 443, 6);
    update_message(&mut out, &c, 1, 1, 1);
    let message = &out[3..];
    // 16 + 4 + (4 + (4 + 20 + 20) + 28) + 8 + 8.
    assert_eq!(message.len(), 112);
    assert_eq!(u32::from_ne_bytes(message[..4].try_into().unwrap()), 112);
    assert_eq!(message[16], 10, "AF_INET6");
    let IpAddr::V6(src) = c.client.0 else { unreachable!() };
    // The source address follows ORIG (4), IP (4) and its own attribute header (4).
    assert_eq!(&message[32..48], &src.octets());
    update_message(&mut out, &c, 1, 1, 2);
    assert_eq!(out.len(), 3 + 2 * 112, "a second message follows the first whole");
    assert_eq!(&out[..3], &[0xaa; 3], "what was there is kept");
}

#[test]
fn acknowledgements_are_read_from_one_datagram_and_odd_messages_skipped() {
    let ack = |seq: u32, error: i32| {
        // NLMSG_ERROR with NETLINK_CAP_ACK: the error, then the request's header alone.
        let mut m = Vec::new();
        m.extend(n32(36));
        m.extend(n16(2));
        m.extend(n16(0x100));
        m.extend(n32(seq));
        m.extend(n32(0));
        m.extend(error.to_ne_bytes());
        m.extend([0u8; 16]);
        m
    };
    let mut datagram = ack(1, 0);
    // NLMSG_DONE (type 3) is not an acknowledgement.
    datagram.extend(n32(20));
    datagram.extend(n16(3));
    datagram.extend([0u8; 14]);
    datagram.extend(ack(2, -libc::ENOENT));
    datagram.extend(ack(3, -libc::EPERM));
    let all = vec![(1, 0), (2, -libc::ENOENT), (3, -libc::EPERM)];
    assert_eq!(acknowledgements(&datagram).collect::<Vec<_>>(), all);
    // A cut-off or nonsensical length ends the walk instead of reading past it.
    let cut = &datagram[..datagram.len() - 10];
    assert_eq!(acknowledgements(cut).collect::<Vec<_>>(), all[..2]);
    let mut zero = datagram.clone();
    zero[..4].copy_from_slice(&n32(0));
    assert_eq!(acknowledgements(&zero).count(), 0);
    assert_eq!(acknowledgements(&[]).count(), 0);
}
