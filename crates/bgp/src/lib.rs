//! An announce-only BGP speaker for attack mitigation, in the spirit of ExaBGP: it tells the
//! gateway's border routers to blackhole an attacked address (RFC 7999, community 65535:666) or
//! to filter the attack with a Flow Specification rule (RFC 8955 IPv4, RFC 8956 IPv6), and
//! withdraws the route when the attack is over or bawaba stops.
//!
//! - [`wire`]: the messages (no I/O): OPEN with capabilities (multiprotocol, 4-octet AS, route
//!   refresh), KEEPALIVE, NOTIFICATION, UPDATE encoding for unicast and FlowSpec routes.
//! - [`speaker`]: one tokio task per router, following one desired route set.
//! - [`md5`]: TCP MD5 signatures (RFC 2385) for routers configured with a password; the one
//!   module with `unsafe` code (the Linux `TCP_MD5SIG` socket option).
//!
//! ```
//! use bawaba_bgp::wire::{self, Prefix, Route, BLACKHOLE};
//! let route = Route::Unicast {
//!     prefix: Prefix::parse("198.18.5.5/32").unwrap(),
//!     next_hop: "198.18.0.66".parse().unwrap(),
//!     communities: vec![BLACKHOLE],
//! };
//! let mut update = Vec::new();
//! wire::encode_announce(&mut update, &route, 65000, true);
//! assert_eq!(&update[update.len() - 5..], &[32, 198, 18, 5, 5]);
//! ```

pub mod md5;
pub mod speaker;
pub mod wire;

pub use speaker::{PeerConfig, PeerStatus, Speaker, State};
pub use wire::{FlowAction, FlowSpec, NumericMatch, Prefix, Route, BLACKHOLE};
