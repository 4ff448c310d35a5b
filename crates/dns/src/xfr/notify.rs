//! NOTIFY (RFC 1996): telling secondaries that a new version is in force, so they refresh now
//! rather than at the SOA refresh interval.

use std::net::SocketAddr;
use std::time::Duration;

use bawaba_wire::dns::{flags, Class, Message, Opcode, Rcode, Type};
use tokio::net::UdpSocket;

use super::{WireZone, XfrError};

/// Sends one NOTIFY and waits for its acknowledgement, retrying `tries` times with a doubling
/// interval (RFC 1996 section 3.6).
pub(super) async fn notify_one(
    peer: SocketAddr,
    zone: &WireZone,
    tries: u32,
    first_wait: Duration,
) -> Result<(), XfrError> {
    let io = |e: std::io::Error| XfrError::NotifyIo { peer, message: e.to_string() };
    let local: SocketAddr = if peer.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    socket.connect(peer).await.map_err(io)?;
    let mut id = [0u8; 2];
    let _ = getrandom::getrandom(&mut id);
    let id = u16::from_be_bytes(id);
    let message = notify_message(id, zone);
    let mut wait = first_wait;
    let mut buf = [0u8; 4096];
    for _ in 0..tries {
        socket.send(&message).await.map_err(io)?;
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            let Ok(n) = received else { break };
            let Ok(reply) = Message::parse(&buf[..n]) else { continue };
            let h = reply.header();
            // RFC 1996 section 4.7: the response has QR set, the same id and opcode NOTIFY.
            if h.id == id && h.is_response() && h.opcode() == Opcode::NOTIFY {
                if h.rcode() != Rcode::NOERROR {
                    tracing::warn!(%peer, rcode = %h.rcode(), "secondary answered the NOTIFY with an error");
                }
                return Ok(());
            }
        }
        wait *= 2;
    }
    Err(XfrError::NotifyUnanswered { peer, tries })
}

/// A NOTIFY for the zone (RFC 1996 section 3.7): opcode NOTIFY, AA set, the SOA question for
/// the origin, and the new SOA in the answer section as a hint.
pub fn notify_message(id: u16, zone: &WireZone) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&id.to_be_bytes());
    let flags = (u16::from(Opcode::NOTIFY.0) << 11) | flags::AA;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(&zone.origin);
    out.extend_from_slice(&Type::SOA.0.to_be_bytes());
    out.extend_from_slice(&Class::IN.0.to_be_bytes());
    out.extend_from_slice(zone.soa().bytes());
    out
}
