//! The packet enforcement engine: it sees the first packets of every flow crossing a link,
//! recognises what the client asks for, and applies the same compiled [`Ruleset`] the DNS server
//! applies, so a user cannot step around DNS blocking with another resolver or DNS-over-HTTPS.
//!
//! Layers, bottom up:
//! - [`flow`]: the bounded flow table (canonical 5-tuple keys, idle timeouts per protocol state,
//!   eviction of the least recently seen flow, counted).
//! - [`stream`]: bounded reassembly of a client's first bytes when they span several segments.
//! - [`engine`]: the core every back end shares. Packets in (already dissected by
//!   [`bawaba_wire::packet`]), one [`PacketVerdict`] out; per flow a cached verdict once the
//!   server address or name has been judged.
//! - [`capture`]: the pcap/pcapng back end behind `bawaba inspect`.
//! - [`nfqueue`]: the inline back end (iptables NFQUEUE in a routed gateway), with [`inject`]
//!   building and sending the TCP resets and HTTP redirects; configured by [`config`].
//! - [`afpacket`]: the passive back end (AF_PACKET TPACKET_V3 ring with fanout) on a mirror port
//!   or bridge, cutting blocked TCP flows with injected resets.
//!
//! The engine never stores payload; per flow it keeps counters, the recognised name (for
//! re-judging after a policy reload) and the verdict.
//!
//! ```
//! use std::sync::Arc;
//! use bawaba_engine::{Engine, EngineConfig, Ignore, PacketVerdict};
//! use bawaba_policy::Ruleset;
//!
//! let mut engine = Engine::new(Arc::new(Ruleset::empty()), EngineConfig::default());
//! // An IPv4/UDP datagram to port 9 carrying nothing the engine reads.
//! let ip = [0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 1, 2, 198, 18, 2, 2,
//!           0x9c, 0x40, 0, 9, 0, 8, 0, 0];
//! let packet = bawaba_wire::packet::dissect_ip(&ip).unwrap();
//! assert_eq!(engine.process(&packet, 0, &mut Ignore), PacketVerdict::Accept);
//! ```
//!
//! [`Ruleset`]: bawaba_policy::Ruleset

pub mod afpacket;
pub mod capture;
pub mod config;
pub mod conntrack;
pub mod counters;
pub mod engine;
pub mod flow;
pub mod inject;
pub mod mitigation;
pub mod nfqueue;
pub mod stream;
pub mod verdict;

pub use counters::Counters;
pub use engine::{Decided, Engine, EngineConfig, Ignore, Observer, PacketVerdict, Prepared};
pub use flow::{FlowEnd, FlowKey, Timeouts};
pub use verdict::{AppProtocol, Basis, FlowAction, FlowState};
