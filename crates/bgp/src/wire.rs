//! BGP-4 messages (RFC 4271 section 4) with the extensions an announce-only mitigation speaker
//! needs: 4-octet AS numbers (RFC 6793), multiprotocol reachability (RFC 4760), communities
//! (RFC 1997), extended communities (RFC 4360) and Flow Specification NLRI (RFC 8955 for IPv4,
//! RFC 8956 for IPv6).
//!
//! Parsing reads what a peer sends (OPEN, KEEPALIVE, NOTIFICATION, UPDATE headers): lengths are
//! checked, odd content is an error with the byte offset, nothing panics. Encoding builds what
//! bawaba sends.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// The 16-byte all-ones marker (RFC 4271 section 4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
/// Header length.
pub const HEADER_LEN: usize = 19;
/// Largest message (RFC 4271; extended messages, RFC 8654, are not offered).
pub const MAX_MESSAGE: usize = 4096;
/// AS_TRANS, put in the 2-byte OPEN field when the real AS needs 4 octets (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// Message types.
pub mod kind {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH (RFC 2918).
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Address family identifiers (IANA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);
impl Afi {
    /// IPv4.
    pub const IPV4: Afi = Afi(1);
    /// IPv6.
    pub const IPV6: Afi = Afi(2);
}

/// Subsequent address family identifiers (IANA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);
impl Safi {
    /// Unicast.
    pub const UNICAST: Safi = Safi(1);
    /// Flow Specification (RFC 8955).
    pub const FLOWSPEC: Safi = Safi(133);
}

/// Why bytes are not a BGP message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BgpError {
    /// Not all of the message is there yet.
    #[error("incomplete message: {needed} bytes needed")]
    Incomplete {
        /// Total bytes needed from the start of the buffer.
        needed: usize,
    },
    /// The marker is not all ones (RFC 4271 section 6.1: Connection Not Synchronized).
    #[error("bad marker")]
    Marker,
    /// The length field is below 19 or above 4096, or wrong for the type.
    #[error("bad message length {length}")]
    Length {
        /// The length field.
        length: u16,
    },
    /// An unknown message type.
    #[error("unknown message type {kind}")]
    Type {
        /// The type byte.
        kind: u8,
    },
    /// A field runs past its container.
    #[error("malformed {what} at byte {offset}")]
    Malformed {
        /// Where, from the start of the message.
        offset: usize,
        /// Which field.
        what: &'static str,
    },
}

/// An OPEN capability (RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol extensions (RFC 4760), code 1.
    MultiProtocol(Afi, Safi),
    /// Route refresh (RFC 2918), code 2.
    RouteRefresh,
    /// 4-octet AS number (RFC 6793), code 65.
    FourOctetAs(u32),
    /// Anything else, kept as sent.
    Other {
        /// Capability code.
        code: u8,
        /// Its value.
        value: Vec<u8>,
    },
}

/// An OPEN message (RFC 4271 section 4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The sender's AS: from the 4-octet capability when present, else the 2-byte field.
    pub asn: u32,
    /// Proposed hold time, seconds (0 or at least 3).
    pub hold_time: u16,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Capabilities.
    pub capabilities: Vec<Capability>,
}

/// A NOTIFICATION (RFC 4271 section 4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data.
    pub data: Vec<u8>,
}

impl Notification {
    /// A human-readable name for the code/subcode (RFC 4271 section 4.5, RFC 4486).
    pub fn describe(&self) -> String {
        let code = match self.code {
            1 => "message header error",
            2 => "OPEN message error",
            3 => "UPDATE message error",
            4 => "hold timer expired",
            5 => "finite state machine error",
            6 => "cease",
            _ => "unknown error",
        };
        let sub = match (self.code, self.subcode) {
            (2, 2) => " (bad peer AS)",
            (2, 3) => " (bad BGP identifier)",
            (2, 6) => " (unacceptable hold time)",
            (2, 7) => " (unsupported capability)",
            (6, 2) => " (administrative shutdown)",
            (6, 3) => " (peer de-configured)",
            (6, 4) => " (administrative reset)",
            (6, 5) => " (connection rejected)",
            (6, 7) => " (connection collision resolution)",
            _ => "",
        };
        format!("{code}{sub} [{}/{}]", self.code, self.subcode)
    }
}

/// A message read from a peer. UPDATEs are reported by size only: an announce-only speaker
/// ignores what it is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE (its body length).
    Update(usize),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads one message from the start of `buf`; returns it and its length.
pub fn parse(buf: &[u8]) -> Result<(Message, usize), BgpError> {
    if buf.len() < HEADER_LEN {
        return Err(BgpError::Incomplete { needed: HEADER_LEN });
    }
    if buf[..16] != MARKER {
        return Err(BgpError::Marker);
    }
    let length = be16(buf, 16);
    let len = usize::from(length);
    if !(HEADER_LEN..=MAX_MESSAGE).contains(&len) {
        return Err(BgpError::Length { length });
    }
    if buf.len() < len {
        return Err(BgpError::Incomplete { needed: len });
    }
    let body = &buf[HEADER_LEN..len];
    let message = match buf[18] {
        kind::OPEN => Message::Open(parse_open(body)?),
        kind::UPDATE if len >= 23 => Message::Update(body.len()),
        kind::NOTIFICATION if len >= 21 => {
            Message::Notification(Notification { code: body[0], subcode: body[1], data: body[2..].to_vec() })
        }
        kind::KEEPALIVE if len == HEADER_LEN => Message::Keepalive,
        kind::ROUTE_REFRESH if len == 23 => Message::RouteRefresh,
        kind::UPDATE | kind::NOTIFICATION | kind::KEEPALIVE | kind::ROUTE_REFRESH => {
            return Err(BgpError::Length { length })
        }
        other => return Err(BgpError::Type { kind: other }),
    };
    Ok((message, len))
}

/// RFC 4271 section 4.2 and RFC 5492 (capabilities in optional parameter 2).
fn parse_open(b: &[u8]) -> Result<Open, BgpError> {
    let malformed = |offset: usize, what| BgpError::Malformed { offset: HEADER_LEN + offset, what };
    if b.len() < 10 {
        return Err(malformed(0, "OPEN"));
    }
    if b[0] != 4 {
        return Err(malformed(0, "OPEN version"));
    }
    let mut asn = u32::from(be16(b, 1));
    let hold_time = be16(b, 3);
    let router_id = Ipv4Addr::new(b[5], b[6], b[7], b[8]);
    let params_len = usize::from(b[9]);
    let params = b.get(10..10 + params_len).ok_or_else(|| malformed(9, "optional parameters length"))?;
    let mut capabilities = Vec::new();
    let mut at = 0;
    while at < params.len() {
        let (kind, len) = match params.get(at..at + 2) {
            Some(h) => (h[0], usize::from(h[1])),
            None => return Err(malformed(10 + at, "optional parameter")),
        };
        let value = params.get(at + 2..at + 2 + len).ok_or_else(|| malformed(10 + at, "optional parameter"))?;
        if kind == 2 {
            let mut c = 0;
            while c < value.len() {
                let (code, clen) = match value.get(c..c + 2) {
                    Some(h) => (h[0], usize::from(h[1])),
                    None => return Err(malformed(12 + at + c, "capability")),
                };
                let v = value.get(c + 2..c + 2 + clen).ok_or_else(|| malformed(12 + at + c, "capability"))?;
                capabilities.push(match (code, v.len()) {
                    (1, 4) => Capability::MultiProtocol(Afi(be16(v, 0)), Safi(v[3])),
                    (2, 0) => Capability::RouteRefresh,
                    (65, 4) => {
                        let four = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                        asn = four;
                        Capability::FourOctetAs(four)
                    }
                    _ => Capability::Other { code, value: v.to_vec() },
                });
                c += 2 + clen;
            }
        }
        at += 2 + len;
    }
    Ok(Open { asn, hold_time, router_id, capabilities })
}

fn header(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0, kind]);
    start
}

fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
}

/// Appends an OPEN.
pub fn encode_open(out: &mut Vec<u8>, open: &Open) {
    let start = header(out, kind::OPEN);
    out.push(4);
    let two = u16::try_from(open.asn).unwrap_or(AS_TRANS);
    out.extend_from_slice(&two.to_be_bytes());
    out.extend_from_slice(&open.hold_time.to_be_bytes());
    out.extend_from_slice(&open.router_id.octets());
    let mut caps = Vec::new();
    for c in &open.capabilities {
        match c {
            Capability::MultiProtocol(afi, safi) => {
                caps.extend_from_slice(&[1, 4]);
                caps.extend_from_slice(&afi.0.to_be_bytes());
                caps.extend_from_slice(&[0, safi.0]);
            }
            Capability::RouteRefresh => caps.extend_from_slice(&[2, 0]),
            Capability::FourOctetAs(asn) => {
                caps.extend_from_slice(&[65, 4]);
                caps.extend_from_slice(&asn.to_be_bytes());
            }
            Capability::Other { code, value } => {
                caps.extend_from_slice(&[*code, value.len() as u8]);
                caps.extend_from_slice(value);
            }
        }
    }
    out.push((caps.len() + 2) as u8);
    out.extend_from_slice(&[2, caps.len() as u8]);
    out.extend_from_slice(&caps);
    finish(out, start);
}

/// Appends a KEEPALIVE.
pub fn encode_keepalive(out: &mut Vec<u8>) {
    let start = header(out, kind::KEEPALIVE);
    finish(out, start);
}

/// Appends a NOTIFICATION.
pub fn encode_notification(out: &mut Vec<u8>, n: &Notification) {
    let start = header(out, kind::NOTIFICATION);
    out.extend_from_slice(&[n.code, n.subcode]);
    out.extend_from_slice(&n.data);
    finish(out, start);
}

/// An IP prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// The network address (host bits zero).
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Prefix {
    /// A prefix; host bits are cleared. `None` if `len` is too long for the family.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        match addr {
            IpAddr::V4(a) if len <= 32 => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                Some(Prefix { addr: IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)), len })
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                Some(Prefix { addr: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)), len })
            }
            _ => None,
        }
    }

    /// `addr/len` text.
    pub fn parse(s: &str) -> Option<Prefix> {
        let (a, l) = s.split_once('/')?;
        Prefix::new(a.parse().ok()?, l.parse().ok()?)
    }

    /// Whether `self` lies inside `outer`.
    pub fn within(&self, outer: &Prefix) -> bool {
        self.len >= outer.len && Prefix::new(self.addr, outer.len).is_some_and(|p| p == *outer)
    }

    fn afi(&self) -> Afi {
        if self.addr.is_ipv4() {
            Afi::IPV4
        } else {
            Afi::IPV6
        }
    }

    /// The NLRI encoding: length in bits, then the significant bytes (RFC 4271 section 4.3).
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        let bytes = usize::from(self.len).div_ceil(8);
        match self.addr {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..bytes]),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..bytes]),
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A numeric match in a Flow Specification component (RFC 8955 section 4.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NumericMatch {
    /// Equal to.
    Eq(u16),
    /// Between, inclusive.
    Range(u16, u16),
}

/// A Flow Specification rule: the components bawaba uses (RFC 8955 section 4.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowSpec {
    /// Type 1: destination prefix (the attacked address).
    pub destination: Prefix,
    /// Type 2: source prefix.
    pub source: Option<Prefix>,
    /// Type 3 (IPv4) / next header (IPv6): IP protocols, any of.
    pub protocols: Vec<u8>,
    /// Type 6: source ports, any of (amplification vectors: 53, 123, 389, 1900, 11211 ...).
    pub source_ports: Vec<NumericMatch>,
    /// Type 5: destination ports, any of.
    pub destination_ports: Vec<NumericMatch>,
    /// Type 10: packet lengths, any of.
    pub packet_lengths: Vec<NumericMatch>,
}

/// What a FlowSpec rule does (RFC 8955 section 7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlowAction {
    /// traffic-rate 0: discard.
    Discard,
    /// traffic-rate limit, bytes per second.
    RateLimit(f32),
}

fn numeric_ops(out: &mut Vec<u8>, values: &[NumericMatch]) {
    // Each value: one op (eq) or two ANDed ops (>= lo, <= hi); terms are ORed.
    let mut ops: Vec<(u8, u16)> = Vec::new();
    for v in values {
        match *v {
            NumericMatch::Eq(x) => ops.push((0x01, x)),
            NumericMatch::Range(lo, hi) => {
                ops.push((0x02 | 0x01, lo));
                ops.push((0x40 | 0x04 | 0x01, hi));
            }
        }
    }
    let n = ops.len();
    for (i, (bits, value)) in ops.into_iter().enumerate() {
        let end = if i + 1 == n { 0x80 } else { 0 };
        if value <= 0xff {
            out.push(end | bits);
            out.push(value as u8);
        } else {
            out.push(end | bits | 0x10);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

impl FlowSpec {
    /// The NLRI encoding, with its 1- or 2-byte length (RFC 8955 section 4.1; RFC 8956
    /// section 3 for the IPv6 prefix components, which carry an offset byte).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let v6 = self.destination.addr.is_ipv6();
        let prefix = |body: &mut Vec<u8>, kind: u8, p: &Prefix| {
            body.push(kind);
            body.push(p.len);
            if v6 {
                body.push(0);
            }
            let bytes = usize::from(p.len).div_ceil(8);
            match p.addr {
                IpAddr::V4(a) => body.extend_from_slice(&a.octets()[..bytes]),
                IpAddr::V6(a) => body.extend_from_slice(&a.octets()[..bytes]),
            }
        };
        prefix(&mut body, 1, &self.destination);
        if let Some(src) = &self.source {
            prefix(&mut body, 2, src);
        }
        if !self.protocols.is_empty() {
            body.push(3);
            let values: Vec<NumericMatch> = self.protocols.iter().map(|&p| NumericMatch::Eq(u16::from(p))).collect();
            numeric_ops(&mut body, &values);
        }
        if !self.destination_ports.is_empty() {
            body.push(5);
            numeric_ops(&mut body, &self.destination_ports);
        }
        if !self.source_ports.is_empty() {
            body.push(6);
            numeric_ops(&mut body, &self.source_ports);
        }
        if !self.packet_lengths.is_empty() {
            body.push(10);
            numeric_ops(&mut body, &self.packet_lengths);
        }
        if body.len() < 240 {
            out.push(body.len() as u8);
        } else {
            out.extend_from_slice(&(0xf000 | body.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&body);
    }
}

/// A route bawaba announces.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// A unicast route (blackhole: a /32 or /128 with the BLACKHOLE community).
    Unicast {
        /// The prefix.
        prefix: Prefix,
        /// Next hop (the operator's discard address).
        next_hop: IpAddr,
        /// Standard communities, e.g. 65535:666 (RFC 7999).
        communities: Vec<u32>,
    },
    /// A Flow Specification rule.
    FlowSpec {
        /// The match.
        rule: FlowSpec,
        /// The action.
        action: FlowAction,
        /// Standard communities.
        communities: Vec<u32>,
    },
}

/// The BLACKHOLE community 65535:666 (RFC 7999 section 5).
pub const BLACKHOLE: u32 = 0xffff_029a;

impl Route {
    /// The family this route is announced in.
    pub fn family(&self) -> (Afi, Safi) {
        match self {
            Route::Unicast { prefix, .. } => (prefix.afi(), Safi::UNICAST),
            Route::FlowSpec { rule, .. } => (rule.destination.afi(), Safi::FLOWSPEC),
        }
    }

    /// The destination the route is about.
    pub fn destination(&self) -> Prefix {
        match self {
            Route::Unicast { prefix, .. } => *prefix,
            Route::FlowSpec { rule, .. } => rule.destination,
        }
    }
}

fn attribute(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.extend_from_slice(&[flags | 0x10, code]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags, code, value.len() as u8]);
    }
    out.extend_from_slice(value);
}

const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;

/// Appends an UPDATE announcing `route` from `local_as` (eBGP: AS_PATH holds it; iBGP: empty,
/// with LOCAL_PREF 100).
pub fn encode_announce(out: &mut Vec<u8>, route: &Route, local_as: u32, ebgp: bool) {
    let start = header(out, kind::UPDATE);
    out.extend_from_slice(&[0, 0]); // no withdrawn routes
    let mut attrs = Vec::new();
    attribute(&mut attrs, TRANSITIVE, 1, &[0]); // ORIGIN IGP
    let as_path = if ebgp {
        let mut p = vec![2, 1]; // AS_SEQUENCE of one
        p.extend_from_slice(&local_as.to_be_bytes());
        p
    } else {
        Vec::new()
    };
    attribute(&mut attrs, TRANSITIVE, 2, &as_path);
    if !ebgp {
        attribute(&mut attrs, TRANSITIVE, 5, &100u32.to_be_bytes());
    }
    let communities = match route {
        Route::Unicast { communities, .. } | Route::FlowSpec { communities, .. } => communities,
    };
    if !communities.is_empty() {
        let v: Vec<u8> = communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        attribute(&mut attrs, OPTIONAL | TRANSITIVE, 8, &v);
    }
    let mut nlri = Vec::new();
    match route {
        Route::Unicast { prefix, next_hop: IpAddr::V4(nh), .. } if prefix.addr.is_ipv4() => {
            attribute(&mut attrs, TRANSITIVE, 3, &nh.octets());
            prefix.encode(&mut nlri);
        }
        Route::Unicast { prefix, next_hop, .. } => {
            let nh = match next_hop {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            let mut mp = Vec::new();
            mp.extend_from_slice(&Afi::IPV6.0.to_be_bytes());
            mp.push(Safi::UNICAST.0);
            mp.push(16);
            mp.extend_from_slice(&nh);
            mp.push(0);
            prefix.encode(&mut mp);
            attribute(&mut attrs, OPTIONAL, 14, &mp);
        }
        Route::FlowSpec { rule, action, .. } => {
            // traffic-rate (RFC 8955 section 7.3): type 0x80, subtype 0x06, 2-byte AS, float.
            let rate = match action {
                FlowAction::Discard => 0.0f32,
                FlowAction::RateLimit(r) => *r,
            };
            let mut ext = vec![0x80, 0x06];
            ext.extend_from_slice(&(u16::try_from(local_as).unwrap_or(AS_TRANS)).to_be_bytes());
            ext.extend_from_slice(&rate.to_be_bytes());
            attribute(&mut attrs, OPTIONAL | TRANSITIVE, 16, &ext);
            let mut mp = Vec::new();
            mp.extend_from_slice(&rule.destination.afi().0.to_be_bytes());
            mp.push(Safi::FLOWSPEC.0);
            mp.push(0); // no next hop
            mp.push(0); // reserved
            rule.encode(&mut mp);
            attribute(&mut attrs, OPTIONAL, 14, &mp);
        }
    }
    out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&attrs);
    out.extend_from_slice(&nlri);
    finish(out, start);
}

/// Appends an UPDATE withdrawing `route`.
pub fn encode_withdraw(out: &mut Vec<u8>, route: &Route) {
    let start = header(out, kind::UPDATE);
    match route {
        Route::Unicast { prefix, .. } if prefix.addr.is_ipv4() => {
            let mut w = Vec::new();
            prefix.encode(&mut w);
            out.extend_from_slice(&(w.len() as u16).to_be_bytes());
            out.extend_from_slice(&w);
            out.extend_from_slice(&[0, 0]);
        }
        _ => {
            out.extend_from_slice(&[0, 0]);
            let (afi, safi) = route.family();
            let mut mp = Vec::new();
            mp.extend_from_slice(&afi.0.to_be_bytes());
            mp.push(safi.0);
            match route {
                Route::Unicast { prefix, .. } => prefix.encode(&mut mp),
                Route::FlowSpec { rule, .. } => rule.encode(&mut mp),
            }
            let mut attrs = Vec::new();
            attribute(&mut attrs, OPTIONAL, 15, &mp);
            out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            out.extend_from_slice(&attrs);
        }
    }
    finish(out, start);
}

/// Appends an End-of-RIB marker for a family (RFC 4724 section 2).
pub fn encode_end_of_rib(out: &mut Vec<u8>, afi: Afi, safi: Safi) {
    let start = header(out, kind::UPDATE);
    if (afi, safi) == (Afi::IPV4, Safi::UNICAST) {
        out.extend_from_slice(&[0, 0, 0, 0]);
    } else {
        out.extend_from_slice(&[0, 0]);
        let mp = [&afi.0.to_be_bytes()[..], &[safi.0]].concat();
        let mut attrs = Vec::new();
        attribute(&mut attrs, OPTIONAL, 15, &mp);
        out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        out.extend_from_slice(&attrs);
    }
    finish(out, start);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn open_round_trip_with_four_octet_as() {
        let open = Open {
            asn: 4_200_000_001,
            hold_time: 90,
            router_id: Ipv4Addr::new(198, 18, 0, 1),
            capabilities: vec![
                Capability::MultiProtocol(Afi::IPV4, Safi::UNICAST),
                Capability::MultiProtocol(Afi::IPV4, Safi::FLOWSPEC),
                Capability::RouteRefresh,
                Capability::FourOctetAs(4_200_000_001),
            ],
        };
        let mut buf = Vec::new();
        encode_open(&mut buf, &open);
        assert_eq!(be16(&buf, 19 + 1), AS_TRANS);
        let (msg, len) = parse(&buf).unwrap();
        assert_eq!(len, buf.len());
        assert_eq!(msg, Message::Open(open));
    }

    #[test]
    fn keepalive_notification_and_errors() {
        let mut buf = Vec::new();
        encode_keepalive(&mut buf);
        assert_eq!(parse(&buf).unwrap(), (Message::Keepalive, 19));
        let n = Notification { code: 6, subcode: 2, data: vec![] };
        let mut nb = Vec::new();
        encode_notification(&mut nb, &n);
        assert_eq!(parse(&nb).unwrap().0, Message::Notification(n.clone()));
        assert_eq!(n.describe(), "cease (administrative shutdown) [6/2]");
        assert_eq!(parse(&buf[..10]), Err(BgpError::Incomplete { needed: 19 }));
        let mut bad = buf.clone();
        bad[0] = 0;
        assert_eq!(parse(&bad), Err(BgpError::Marker));
        let mut long = buf.clone();
        long[16..18].copy_from_slice(&5000u16.to_be_bytes());
        assert_eq!(parse(&long), Err(BgpError::Length { length: 5000 }));
        let mut ka_with_body = buf.clone();
        ka_with_body[17] = 20;
        ka_with_body.push(0);
        assert!(matches!(parse(&ka_with_body), Err(BgpError::Length { .. })));
        for n in 0..nb.len() {
            let _ = parse(&nb[..n]);
        }
    }

    #[test]
    fn blackhole_update_bytes() {
        let route = Route::Unicast {
            prefix: Prefix::parse("198.18.5.5/32").unwrap(),
            next_hop: "198.18.0.66".parse().unwrap(),
            communities: vec![BLACKHOLE],
        };
        let mut buf = Vec::new();
        encode_announce(&mut buf, &route, 65000, true);
        let (msg, len) = parse(&buf).unwrap();
        assert_eq!((msg, len), (Message::Update(len - 19), buf.len()));
        // NLRI at the end: /32 then four bytes.
        assert_eq!(&buf[buf.len() - 5..], &[32, 198, 18, 5, 5]);
        // The community attribute: optional transitive, code 8, 65535:666.
        assert!(buf.windows(7).any(|w| w == [0xc0, 8, 4, 0xff, 0xff, 0x02, 0x9a]));
        let mut w = Vec::new();
        encode_withdraw(&mut w, &route);
        assert_eq!(&w[19..], &[0, 5, 32, 198, 18, 5, 5, 0, 0]);
    }

    #[test]
    fn flowspec_nlri_matches_rfc_8955_examples() {
        // RFC 8955 section 4.2.2.3's shape: destination 198.18.5.5/32, UDP, source port 53.
        let rule = FlowSpec {
            destination: Prefix::parse("198.18.5.5/32").unwrap(),
            source: None,
            protocols: vec![17],
            source_ports: vec![NumericMatch::Eq(53)],
            destination_ports: vec![],
            packet_lengths: vec![],
        };
        let mut nlri = Vec::new();
        rule.encode(&mut nlri);
        assert_eq!(nlri, vec![12, 1, 32, 198, 18, 5, 5, 3, 0x81, 17, 6, 0x81, 53]);
        // Two-byte values and ranges: ports 1900 or 11211, lengths 1000..=1500.
        let rule = FlowSpec {
            source_ports: vec![NumericMatch::Eq(1900), NumericMatch::Eq(11211)],
            packet_lengths: vec![NumericMatch::Range(1000, 1500)],
            ..rule
        };
        let mut nlri = Vec::new();
        rule.encode(&mut nlri);
        assert_eq!(&nlri[10..], &[6, 0x11, 0x07, 0x6c, 0x91, 0x2b, 0xcb, 10, 0x13, 0x03, 0xe8, 0xd5, 0x05, 0xdc]);
        // IPv6 (RFC 8956): the prefix component carries an offset byte.
        let v6 = FlowSpec { destination: Prefix::parse("2001:db8::1/128").unwrap(), ..FlowSpec::default_for_test() };
        let mut nlri = Vec::new();
        v6.encode(&mut nlri);
        assert_eq!(&nlri[..4], &[19, 1, 128, 0]);
    }

    impl FlowSpec {
        fn default_for_test() -> FlowSpec {
            FlowSpec {
                destination: Prefix::parse("198.18.0.0/32").unwrap(),
                source: None,
                protocols: vec![],
                source_ports: vec![],
                destination_ports: vec![],
                packet_lengths: vec![],
            }
        }
    }

    #[test]
    fn prefixes() {
        let p = Prefix::parse("198.18.5.77/24").unwrap();
        assert_eq!(p.to_string(), "198.18.5.0/24");
        assert!(Prefix::parse("198.18.5.7/32").unwrap().within(&p));
        assert!(!Prefix::parse("198.18.0.0/16").unwrap().within(&p));
        assert!(Prefix::parse("198.18.0.0/33").is_none());
        assert!(Prefix::parse("2001:db8::/129").is_none());
    }
}
