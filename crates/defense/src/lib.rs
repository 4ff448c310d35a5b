//! The attack-defense service: what `bawaba serve` runs when `[flow]` is enabled.
//!
//! - [`collector`]: one thread that reads every socket and decodes each datagram in place; the
//!   socket buffer is the only queue, and every drop is counted. Records go to a
//!   [`collector::RecordSink`].
//! - [`service`]: the detector and mitigation planner as that sink, driving the BGP speaker;
//!   `[flow]`, `[ddos]` and `[bgp]` in the configuration.
//!
//! Batched receive lives in `bawaba-udp`, decoding in `bawaba-flow`, detection and mitigation
//! planning in `bawaba-ddos`, the BGP speaker in `bawaba-bgp`; this crate runs them.

pub mod collector;
pub mod service;
