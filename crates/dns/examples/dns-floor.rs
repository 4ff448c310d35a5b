//! The floor under a UDP DNS server's CPU cost: a server that does no DNS work at all. It turns
//! each query into an NXDOMAIN answer in place (QR, RA and the RCODE set, nothing parsed) and
//! sends it back, sleeping in a blocking `recv_from` between queries: one receive and one send per
//! query, the least any server answering one datagram at a time can do.
//!
//! `scripts/bench-dns.sh` runs it at the same offered loads as bawaba and Unbound, to show how
//! much of their CPU per query is the kernel's (waking a sleeping thread, delivering a datagram)
//! rather than theirs.
//!
//! ```text
//! cargo run --release -p bawaba-dns --example dns-floor -- 127.0.0.1:5399
//! dig -p 5399 @127.0.0.1 example.com      # status: NXDOMAIN
//! ```

use std::net::UdpSocket;

fn main() -> std::io::Result<()> {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: dns-floor ADDRESS:PORT");
        std::process::exit(2);
    };
    let socket = UdpSocket::bind(&addr)?;
    let mut buf = [0u8; 4096];
    loop {
        let (len, peer) = socket.recv_from(&mut buf)?;
        // A datagram shorter than a DNS header is not a query: no answer.
        if len < 12 {
            continue;
        }
        buf[2] |= 0x80; // QR: a response
        buf[3] = (buf[3] & 0x70) | 0x80 | 3; // RA, Z and AD/CD kept, RCODE NXDOMAIN
        let _ = socket.send_to(&buf[..len], peer);
    }
}
