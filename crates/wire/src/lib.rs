//! Zero-copy views of the protocols bawaba reads off the wire. No I/O, no async, no allocation on
//! the parse path: a view validates the bytes once in its `parse`, after which accessors cannot
//! fail. Odd input is a normal outcome, returned as an error carrying the byte offset.
//!
//! - [`dns`]: DNS messages (RFC 1035 section 4) with EDNS(0) (RFC 6891) and Extended DNS Errors
//!   (RFC 8914), plus a small builder for the answers bawaba synthesises.
//! - [`packet`]: Ethernet II, 802.1Q/802.1ad VLAN tags, IPv4, IPv6 extension headers, TCP, UDP.
//! - [`tls`]: the TLS ClientHello's server name, ALPN and Encrypted Client Hello flag.
//! - [`quic`]: QUIC v1/v2 Initial packets: header protection, decryption, CRYPTO reassembly.
//! - [`http`]: the HTTP/1.x request line and Host header.
//! - [`pcap`]: pcap and pcapng capture files.
//! - [`build`]: IP packets with correct checksums (injected resets, tests, benchmarks).
//! - [`hint`]: a cache prefetch hint for readers that know their next access early.
//!
//! ```
//! use bawaba_wire::dns::{Message, Type};
//! // A query for example.test/A with RD set.
//! let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x04test\x00\x00\x01\x00\x01";
//! let msg = Message::parse(query).unwrap();
//! let q = msg.question().unwrap();
//! assert_eq!(q.qtype, Type::A);
//! let mut text = [0u8; 256];
//! assert_eq!(q.name.to_text_lower(&mut text), Some("example.test"));
//! ```

pub mod build;
pub mod dns;
pub mod hint;
pub mod http;
pub mod packet;
pub mod pcap;
pub mod quic;
pub mod tls;
