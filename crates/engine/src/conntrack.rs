//! Connection marks set through ctnetlink, the kernel's conntrack interface
//! (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_CTNETLINK`).
//!
//! The inline back end marks a connection for another look when a reload changes its verdict
//! (see [`crate::nfqueue`]). One `IPCTNL_MSG_CT_NEW` message without `NLM_F_CREATE` updates the
//! connection its original-direction tuple names, setting the bits of `CTA_MARK` under
//! `CTA_MARK_MASK` (the kernel's `ctnetlink_change_mark`; `crates/engine/tests/conntrack.rs`
//! checks that the running kernel honours the mask, as old ones that overwrote the whole mark did
//! not), or fails with `ENOENT` when the connection is gone. Messages go to the kernel many per
//! `send`, and every one is acknowledged. The `conntrack -U` tool instead dumps the whole table
//! for each update and matches entries in user space, and took a process per connection.
//!
//! [`update_message`] and [`acknowledgements`] are pure (tested on bytes); [`Conntrack`] owns the
//! socket (a `socket2` one: no `unsafe` here).

use std::io::{self, Read};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::engine::Connection;

/// `NETLINK_NETFILTER` (linux/netlink.h).
const NETLINK_NETFILTER: libc::c_int = 12;
/// `NETLINK_CAP_ACK`: acknowledgements without a copy of the request.
const NETLINK_CAP_ACK: libc::c_int = 10;
/// Message type: `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW`.
const CT_NEW: u16 = 1 << 8;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
/// `enum ctattr_type`, `ctattr_tuple`, `ctattr_ip`, `ctattr_l4proto`
/// (linux/netfilter/nfnetlink_conntrack.h).
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_MARK: u16 = 8;
const CTA_MARK_MASK: u16 = 21;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;

/// Updates sent per `send`. Each acknowledgement takes a buffer of its own (about 1 KiB) in the
/// socket's receive queue: 64 of them stay well inside the default 208 KiB, where a few hundred
/// overflow it (`ENOBUFS`) and are lost.
const SEND_CHUNK: usize = 64;
/// Longest wait for the kernel's acknowledgements of one send.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// What became of a batch of updates.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Updated {
    /// Connections whose mark was set.
    pub marked: usize,
    /// Connections the kernel no longer tracks (closed or expired meanwhile).
    pub gone: usize,
    /// Updates the kernel refused for another reason, or never acknowledged.
    pub failed: usize,
    /// The first refusal's error number, if any.
    pub first_error: Option<i32>,
}

/// Appends the netlink message that sets `mark` under `mask` on the connection whose original
/// direction is `c` (client to server), with sequence number `seq`.
pub fn update_message(out: &mut Vec<u8>, c: &Connection, mark: u32, mask: u32, seq: u32) {
    let start = out.len();
    // struct nlmsghdr: length (patched below), type, flags, sequence, port id (0: the kernel).
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&CT_NEW.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: family, version NFNETLINK_V0, resource id 0 (big-endian).
    let v4 = match (c.client.0, c.server.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some((s, d)),
        _ => None,
    };
    let family = if v4.is_some() { libc::AF_INET } else { libc::AF_INET6 };
    out.extend_from_slice(&[family as u8, 0, 0, 0]);
    let orig = open_nested(out, CTA_TUPLE_ORIG);
    let ip = open_nested(out, CTA_TUPLE_IP);
    match v4 {
        Some((s, d)) => {
            attribute(out, CTA_IP_V4_SRC, &s.octets());
            attribute(out, CTA_IP_V4_DST, &d.octets());
        }
        // Mixed families never name one connection; as IPv6 (v4-mapped), the kernel finds none.
        None => {
            attribute(out, CTA_IP_V6_SRC, &v6_octets(c.client.0));
            attribute(out, CTA_IP_V6_DST, &v6_octets(c.server.0));
        }
    }
    close_nested(out, ip);
    let proto = open_nested(out, CTA_TUPLE_PROTO);
    attribute(out, CTA_PROTO_NUM, &[c.protocol]);
    attribute(out, CTA_PROTO_SRC_PORT, &c.client.1.to_be_bytes());
    attribute(out, CTA_PROTO_DST_PORT, &c.server.1.to_be_bytes());
    close_nested(out, proto);
    close_nested(out, orig);
    attribute(out, CTA_MARK, &mark.to_be_bytes());
    attribute(out, CTA_MARK_MASK, &mask.to_be_bytes());
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn v6_octets(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

/// One attribute: `struct nlattr` (length, type), the value, padding to four bytes.
fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    // Padding counted from the attribute, so that a message starting anywhere stays whole.
    out.extend_from_slice(&[0; 3][..value.len().next_multiple_of(4) - value.len()]);
}

fn open_nested(out: &mut Vec<u8>, kind: u16) -> usize {
    let at = out.len();
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    at
}

fn close_nested(out: &mut [u8], at: usize) {
    let len = (out.len() - at) as u16;
    out[at..at + 2].copy_from_slice(&len.to_ne_bytes());
}

/// A ctnetlink socket (needs `CAP_NET_ADMIN` in the network namespace it is opened in).
pub struct Conntrack {
    socket: Socket,
    seq: u32,
    /// Where acknowledgements are read.
    buf: Vec<u8>,
}

impl Conntrack {
    /// Opens the socket. It is bound on its first send, and sends without an address go to the
    /// kernel.
    pub fn open() -> io::Result<Conntrack> {
        let socket = Socket::new(Domain::from(libc::AF_NETLINK), Type::RAW, Some(Protocol::from(NETLINK_NETFILTER)))?;
        // Short acknowledgements where the kernel knows the option (Linux 4.3 and later).
        bawaba_udp::set_int_option(socket.as_raw_fd(), libc::SOL_NETLINK, NETLINK_CAP_ACK, 1);
        socket.set_read_timeout(Some(ACK_TIMEOUT))?;
        Ok(Conntrack { socket, seq: 0, buf: vec![0; 64 * 1024] })
    }

    /// Sets `mark` under `mask` on every connection in `connections` (other IP protocols than
    /// TCP and UDP are skipped), many per system call, and counts what the kernel answered.
    ///
    /// The kernel computes `(old & !mask) ^ mark`, so bits of `mark` outside `mask` are dropped
    /// here rather than flipped there. A send the kernel refuses, or acknowledgements that do not
    /// come within two seconds, end the run: what is left is counted as failed, so that a
    /// refusal that would apply to every update (no `CAP_NET_ADMIN`, say) costs one wait, not one
    /// per batch.
    pub fn set_marks(&mut self, connections: &[Connection], mark: u32, mask: u32) -> Updated {
        let mut done = Updated::default();
        let mut batch = Vec::with_capacity(SEND_CHUNK * 128);
        let usable: Vec<&Connection> = connections
            .iter()
            .filter(|c| {
                matches!(c.protocol, bawaba_wire::packet::protocol::TCP | bawaba_wire::packet::protocol::UDP)
                    && c.client.0.is_ipv4() == c.server.0.is_ipv4()
            })
            .collect();
        for (k, chunk) in usable.chunks(SEND_CHUNK).enumerate() {
            batch.clear();
            for c in chunk {
                self.seq = self.seq.wrapping_add(1);
                update_message(&mut batch, c, mark & mask, mask, self.seq);
            }
            if self.send_and_count(&batch, chunk.len(), &mut done).is_err() {
                // The updates not sent failed too (`send_and_count` noted the error).
                done.failed += usable.len() - k * SEND_CHUNK - chunk.len();
                break;
            }
        }
        done
    }

    /// Sends `batch`, the `expected` messages numbered up to `self.seq`, and counts their
    /// acknowledgements (late ones of an earlier batch are ignored). An error means the run
    /// should stop: the send failed, or the kernel went quiet (what it did not answer is
    /// counted as failed). Acknowledgements lost to a full receive buffer (`ENOBUFS`) are counted
    /// as failed too, and the run goes on.
    fn send_and_count(&mut self, batch: &[u8], expected: usize, done: &mut Updated) -> io::Result<()> {
        let last = self.seq;
        let first = last.wrapping_sub(expected as u32 - 1);
        if let Err(e) = self.socket.send(batch) {
            done.failed += expected;
            done.first_error.get_or_insert(e.raw_os_error().unwrap_or(0));
            return Err(e);
        }
        let mut answered = 0;
        // After an overflow, the acknowledgements still queued are read without waiting.
        let mut overflowed = false;
        let result = loop {
            if answered >= expected {
                break Ok(());
            }
            let n = match (&self.socket).read(&mut self.buf) {
                Ok(n) => n,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) if !overflowed => {
                        overflowed = true;
                        done.first_error.get_or_insert(libc::ENOBUFS);
                        match self.socket.set_nonblocking(true) {
                            Ok(()) => continue,
                            Err(e) => break Err(e),
                        }
                    }
                    // Drained after an overflow: the rest were lost.
                    _ if overflowed => break Ok(()),
                    _ => break Err(e),
                },
            };
            for (seq, error) in acknowledgements(self.buf.get(..n).unwrap_or_default()) {
                if seq.wrapping_sub(first) > last.wrapping_sub(first) {
                    continue;
                }
                answered += 1;
                match error {
                    0 => done.marked += 1,
                    e if e == -libc::ENOENT => done.gone += 1,
                    e => {
                        done.failed += 1;
                        done.first_error.get_or_insert(-e);
                    }
                }
            }
        };
        // What the kernel did not answer, lost or never sent, failed.
        done.failed += expected.saturating_sub(answered);
        if let Err(e) = &result {
            done.first_error.get_or_insert(e.raw_os_error().unwrap_or(0));
        }
        if overflowed {
            self.socket.set_nonblocking(false)?;
        }
        result
    }
}

/// The sequence numbers and error numbers of the `NLMSG_ERROR` messages in one datagram (error 0
/// is an acknowledgement, a negative number a refusal); other messages and a cut-off tail are
/// skipped.
pub fn acknowledgements(datagram: &[u8]) -> impl Iterator<Item = (u32, i32)> + '_ {
    let mut rest = datagram;
    std::iter::from_fn(move || loop {
        let header = rest.get(..16)?;
        let len = u32::from_ne_bytes(header[..4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(header[4..6].try_into().ok()?);
        let seq = u32::from_ne_bytes(header[8..12].try_into().ok()?);
        if len < 16 || len > rest.len() {
            return None;
        }
        let message = &rest[..len];
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        if kind == NLMSG_ERROR {
            if let Some(code) = message.get(16..20) {
                return Some((seq, i32::from_ne_bytes(code.try_into().ok()?)));
            }
        }
    })
}

#[cfg(test)]
mod tests;
