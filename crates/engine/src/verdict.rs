//! What the engine decides about a flow, and what it keeps per flow to get there.

use bawaba_policy::{Action, OrderId, RuleId};
use serde::Serialize;

use crate::flow::NAME_CAPACITY;

/// The application protocol recognised in a flow's first packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppProtocol {
    /// Nothing recognised (yet).
    Unknown,
    /// TLS over TCP (a ClientHello was read).
    Tls,
    /// QUIC (an Initial was decrypted).
    Quic,
    /// HTTP/1.x (a request head was read).
    Http,
    /// DNS on port 53.
    Dns,
}

impl AppProtocol {
    /// The name used in output and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            AppProtocol::Unknown => "unknown",
            AppProtocol::Tls => "tls",
            AppProtocol::Quic => "quic",
            AppProtocol::Http => "http",
            AppProtocol::Dns => "dns",
        }
    }
}

/// What happens to a flow's packets once it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowAction {
    /// Let it through.
    Allow,
    /// Drop its packets.
    Drop,
    /// Reset both directions (TCP), then drop what still comes.
    Reset,
    /// Answer the HTTP request with a redirect to the block page, reset the server side.
    Redirect,
}

impl FlowAction {
    /// The name used in output and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            FlowAction::Allow => "allow",
            FlowAction::Drop => "drop",
            FlowAction::Reset => "reset",
            FlowAction::Redirect => "redirect",
        }
    }

    /// How a rule's action is enforced on the packet path for this protocol (the policy's
    /// [`Action`] docs): a block page needs plain HTTP; TCP otherwise gets resets when the rule
    /// says reset or block-page; everything else is dropped.
    pub fn for_rule(action: Action, app: AppProtocol, tcp: bool) -> FlowAction {
        match action {
            Action::BlockPage if app == AppProtocol::Http => FlowAction::Redirect,
            Action::BlockPage | Action::Reset if tcp => FlowAction::Reset,
            _ => FlowAction::Drop,
        }
    }
}

/// Where a flow's verdict came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// Still being inspected.
    Pending,
    /// The server address matched an IP prefix rule.
    Address,
    /// The server name (SNI, QUIC SNI, Host) matched a rule.
    Name,
    /// The server name matched an allow entry.
    Allowlisted,
    /// No rule matched the name that was read.
    NoMatch,
    /// Nothing recognisable within the inspection budget; allowed.
    Unrecognised,
}

/// Bits of [`FlowState::reset_flags`].
pub mod reset_flags {
    /// Blocked by a new policy while under way: wait for a server packet before the first reset.
    pub const MIDSTREAM: u8 = 1;
    /// A client packet was answered with resets.
    pub const FROM_CLIENT: u8 = 2;
    /// A server packet was answered with resets.
    pub const FROM_SERVER: u8 = 4;
}

/// The stored id that stands for none.
const NO_ID: i64 = i64::MIN;

/// The per-flow state the engine keeps in the flow table; with the table's own fields an entry
/// stays within 256 bytes (tested).
#[derive(Debug, Clone)]
#[repr(C)]
pub struct FlowState {
    // Hot first (`repr(C)`): the fields a decided flow's packets read.
    /// The lower endpoint of the key is the client (sent the SYN or the first packet).
    pub client_is_lo: bool,
    /// Recognised protocol.
    pub app: AppProtocol,
    /// The decision; `Allow` while pending.
    pub action: FlowAction,
    /// Where the decision came from.
    pub basis: Basis,
    /// Resets or a redirect were already sent for this flow.
    pub answered: bool,
    /// The ClientHello carried an outer Encrypted Client Hello.
    pub ech: bool,
    /// Client packets carrying data inspected so far (after a mid-stream block: client packets
    /// let through while waiting for one from the server).
    pub inspected: u8,
    name_len: u8,
    /// The ruleset generation the decision was made under.
    pub generation: u32,
    /// DNS queries in this flow dropped because their name is blocked (each query is judged on
    /// its own; `order` and `rule` then name the last block).
    pub blocked_queries: u16,
    /// Reset bookkeeping, [`reset_flags`] bits.
    pub reset_flags: u8,
    /// Packets of this flow answered with resets so far (saturating).
    pub reset_rounds: u8,
    /// The client's first sequence number (SYN + 1), when known.
    pub stream_base: Option<u32>,
    /// Reassembly slot (TCP stream buffer or QUIC CRYPTO buffer), if one is held.
    pub slot: Option<u32>,
    /// The ids of the order and the rule behind a block ([`FlowState::order`],
    /// [`FlowState::rule`]), [`NO_ID`] for none: an `Option` of each takes 16 bytes. With the 16
    /// saved a flow entry is 232 bytes (it was 248), and every packet's flow entry is loaded.
    order: i64,
    rule: i64,
    name: [u8; NAME_CAPACITY],
}

impl FlowState {
    pub(crate) fn new(client_is_lo: bool, generation: u32) -> Self {
        FlowState {
            client_is_lo,
            app: AppProtocol::Unknown,
            ech: false,
            action: FlowAction::Allow,
            basis: Basis::Pending,
            order: NO_ID,
            rule: NO_ID,
            generation,
            stream_base: None,
            inspected: 0,
            slot: None,
            answered: false,
            blocked_queries: 0,
            reset_flags: 0,
            reset_rounds: 0,
            name_len: 0,
            name: [0; NAME_CAPACITY],
        }
    }

    /// The order behind a block.
    pub fn order(&self) -> Option<OrderId> {
        (self.order != NO_ID).then_some(OrderId(self.order))
    }

    /// The rule behind a block.
    pub fn rule(&self) -> Option<RuleId> {
        (self.rule != NO_ID).then_some(RuleId(self.rule))
    }

    /// Records the order and the rule behind a block (or none). An id of `i64::MIN` (which no
    /// store hands out: ids count up from 1) would read back as none.
    pub(crate) fn set_cause(&mut self, order: Option<OrderId>, rule: Option<RuleId>) {
        self.order = order.map_or(NO_ID, |o| o.0);
        self.rule = rule.map_or(NO_ID, |r| r.0);
    }

    /// True once a verdict is cached.
    pub fn is_decided(&self) -> bool {
        self.basis != Basis::Pending
    }

    /// True for a DNS flow judged query by query (not blocked as a whole by its server's address).
    pub fn judged_per_query(&self) -> bool {
        self.app == AppProtocol::Dns && self.basis != Basis::Address
    }

    /// The server name read, if any and if it fit ([`NAME_CAPACITY`]); [`FlowState::name_cut`]
    /// says when it did not.
    pub fn name(&self) -> Option<&str> {
        let n = &self.name[..usize::from(self.name_len.min(NAME_CAPACITY as u8))];
        (!n.is_empty()).then(|| std::str::from_utf8(n).ok()).flatten()
    }

    /// The name read was longer than [`NAME_CAPACITY`] and is not kept whole.
    pub fn name_cut(&self) -> bool {
        usize::from(self.name_len) > NAME_CAPACITY
    }

    pub(crate) fn set_name(&mut self, name: &str) {
        let bytes = name.as_bytes();
        let keep = bytes.len().min(NAME_CAPACITY);
        // Cut at a char boundary: names are ASCII by now, but be safe.
        let keep = (0..=keep).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
        self.name[..keep].copy_from_slice(&bytes[..keep]);
        self.name_len = if bytes.len() > NAME_CAPACITY { u8::MAX } else { keep as u8 };
    }
}
