//! The engine core shared by every back end: packets in, a verdict per packet out.
//!
//! Per packet: find or create the flow; a decided flow returns its cached verdict at once. An
//! undecided flow is judged first on the server address (IP prefix rules), then on the name its
//! client's first bytes carry: TLS ClientHello SNI on any TCP port, HTTP Host, the ClientHello
//! inside QUIC Initials, DNS query names on port 53 (judged per query, never cached). A flow with
//! nothing recognisable within the inspection budget is allowed. Only client-to-server packets
//! are inspected; the server's replies follow the flow's verdict.

use std::net::IpAddr;
use std::sync::Arc;

use bawaba_policy::{Match, Order, Ruleset, Verdict};
use bawaba_wire::packet::{tcp_flags, Packet, Transport};
use bawaba_wire::{dns, http, quic, tls};

use crate::counters::Counters;
use crate::flow::{Flow, FlowEnd, FlowId, FlowKey, FlowTable, FlowTableStats, TimeoutClass, Timeouts};
use crate::stream::{self, Added, StreamBuf, STREAM_CAPACITY};
use crate::verdict::{reset_flags, AppProtocol, Basis, FlowAction, FlowState};

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Most flows tracked; the least recently seen is evicted beyond it.
    pub max_flows: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Client packets with data inspected before an unrecognised flow is allowed.
    pub inspect_packets: u8,
    /// Reassembly buffers (4 KiB each) for flows whose first bytes span several packets.
    pub reassembly_buffers: usize,
    /// When a new ruleset is loaded, judge decided flows again (a flow allowed before is cut if
    /// the new policy blocks it).
    pub rejudge_on_reload: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_flows: 1_000_000,
            timeouts: Timeouts::default(),
            inspect_packets: 8,
            reassembly_buffers: 4096,
            rejudge_on_reload: true,
        }
    }
}

/// A packet's flow key and its hash, from [`Engine::prepare`].
#[derive(Debug, Clone, Copy)]
pub struct Prepared {
    key: FlowKey,
    from_lo: bool,
    hash: u64,
}

/// What the back end does with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketVerdict {
    /// Pass it.
    Accept,
    /// Drop it.
    Drop,
    /// Drop it and reset the connection in both directions; `first` is false when resets were
    /// already sent for this flow (a passive back end sends them again, an inline one need not).
    Reset {
        /// First reset for this flow.
        first: bool,
    },
    /// Drop it, answer the client with a redirect to the block page and reset the server side.
    Redirect,
}

/// A connection as the kernel's connection tracking names it (original direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Server address and port.
    pub server: (IpAddr, u16),
    /// IP protocol number.
    pub protocol: u8,
}

/// A flow's decision, as handed to an [`Observer`].
#[derive(Debug, Clone, Copy)]
pub struct Decided<'a> {
    /// The flow.
    pub key: &'a FlowKey,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Server address and port.
    pub server: (IpAddr, u16),
    /// Its state, with the decision.
    pub state: &'a FlowState,
    /// The order behind a block.
    pub order: Option<&'a Order>,
}

/// Receives what the engine decides and which flows end. Both methods default to nothing.
pub trait Observer {
    /// A flow was decided (or decided again after a reload).
    fn decided(&mut self, _decided: &Decided<'_>) {}
    /// A flow left the table.
    fn ended(&mut self, _flow: &Flow<FlowState>, _why: FlowEnd) {}
}

/// An observer that ignores everything.
pub struct Ignore;
impl Observer for Ignore {}

/// The enforcement engine: one per worker thread.
pub struct Engine {
    ruleset: Arc<Ruleset>,
    generation: u32,
    config: EngineConfig,
    flows: FlowTable<FlowState>,
    streams: stream::Pool<StreamBuf>,
    quic: stream::Pool<Box<quic::CryptoReassembly>>,
    scratch: Box<[u8]>,
    counters: Counters,
    settled: bool,
    reset_round: u8,
    reset_done: bool,
}

/// Client packets let through, at most, while waiting for a server packet to reset a connection a
/// new policy blocked mid-stream.
const MIDSTREAM_WAIT: u8 = 8;

/// Scratch space: a decrypted QUIC Initial, or a ClientHello joined from several TLS records.
const SCRATCH: usize = 1 << 16;

/// Flows whose server addresses and names [`Engine::set_ruleset_and_rejudge`] looks up in one
/// batch.
const REJUDGE_BATCH: usize = 256;

impl Engine {
    /// An engine enforcing `ruleset`.
    pub fn new(ruleset: Arc<Ruleset>, config: EngineConfig) -> Self {
        Engine {
            ruleset,
            generation: 0,
            flows: FlowTable::new(config.max_flows, config.timeouts),
            streams: stream::Pool::new(config.reassembly_buffers),
            quic: stream::Pool::new(config.reassembly_buffers),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            counters: Counters::default(),
            settled: false,
            reset_round: 0,
            reset_done: false,
            config,
        }
    }

    /// Swaps in a new ruleset. Flows decided under the old one are judged again on their next
    /// packet when [`EngineConfig::rejudge_on_reload`] is set, else they keep their verdict.
    pub fn set_ruleset(&mut self, ruleset: Arc<Ruleset>) {
        self.ruleset = ruleset;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Swaps in a new ruleset and judges every decided flow again at once, instead of on its
    /// next packet. Returns the flows whose verdict changed between allowed and blocked, either
    /// way, as (client, server, protocol), so an inline back end can make the kernel queue their
    /// next packet again: the kernel stops queueing a connection once it is decided, and drops a
    /// blocked one by itself. A newly blocked flow's next packet gets the block (a reset is sent
    /// again as if first); a newly allowed one's goes through. A flow blocked by its server's
    /// address from its first packet is inspected again, as a new flow to that server would be;
    /// a DNS flow is judged query by query again.
    pub fn set_ruleset_and_rejudge(&mut self, ruleset: Arc<Ruleset>) -> Vec<Connection> {
        self.set_ruleset(ruleset);
        let ruleset = Arc::clone(&self.ruleset);
        // The flows go through the ruleset in batches, server addresses first, then the names
        // still to judge: the lookups of a batch overlap their cache misses, so that a reload with
        // a million flows holds the packet path up for as short a time as it can.
        let mut due = Vec::with_capacity(REJUDGE_BATCH);
        let mut servers = Vec::with_capacity(REJUDGE_BATCH);
        let mut by_address = Vec::with_capacity(REJUDGE_BATCH);
        let mut by_name = Vec::with_capacity(REJUDGE_BATCH);
        let mut changed = Vec::new();
        let all = self.flows.ids();
        for first in all.clone().step_by(REJUDGE_BATCH) {
            due.clear();
            due.extend((first..all.end.min(first.saturating_add(REJUDGE_BATCH as FlowId))).filter(|&id| {
                let state = &self.flows.flow(id).state;
                state.is_decided() && state.generation != self.generation
            }));
            servers.clear();
            servers.extend(due.iter().map(|&id| server_address(self.flows.flow(id))));
            ruleset.lookup_ips(&servers, &mut by_address);
            let names = due.iter().zip(&by_address).filter_map(|(&id, m)| name_to_judge(&self.flows.flow(id).state, m));
            ruleset.lookup_domains(names, &mut by_name);
            let mut names_found = by_name.drain(..);
            for (&id, &address_match) in due.iter().zip(&by_address) {
                // One answer per name looked up above; an address literal is judged as that
                // address instead, as `lookup_name` does.
                let name_match = name_to_judge(&self.flows.flow(id).state, &address_match).map(|name| {
                    let found = names_found.next().and_then(Result::ok).flatten();
                    address_literal(name).map_or(found, |literal| ruleset.lookup_ip(literal))
                });
                let before = self.flows.flow(id).state.action;
                self.rejudge_with(id, address_match, name_match, &ruleset, &mut Ignore);
                let flow = self.flows.flow(id);
                if (before == FlowAction::Allow) != (flow.state.action == FlowAction::Allow) {
                    let (client, server) = endpoints(flow);
                    changed.push(Connection { client, server, protocol: flow.key.protocol });
                }
            }
        }
        changed
    }

    /// The ruleset in force.
    pub fn ruleset(&self) -> &Arc<Ruleset> {
        &self.ruleset
    }

    /// Whether the last packet processed belongs to a flow whose verdict is final (allowed or
    /// blocked, not a DNS flow judged query by query): an inline back end can stop sending that
    /// flow's packets (a connmark does it).
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// For a [`PacketVerdict::Reset`]: how many of the flow's packets were answered with resets
    /// before this one (0 for the first). An inline back end keeps a flow coming for a few
    /// rounds, since a later packet (often the peer's challenge ACK) names sequence numbers the
    /// first resets may have missed.
    pub fn reset_round(&self) -> u8 {
        self.reset_round
    }

    /// For a [`PacketVerdict::Reset`]: whether enough resets went out for this flow that a
    /// back end may let the kernel drop the rest (both ends' packets were answered, or a cap of
    /// rounds was reached).
    pub fn reset_done(&self) -> bool {
        self.reset_done
    }

    /// A tracked flow's state.
    pub fn flow_state(&self, key: &FlowKey) -> Option<&FlowState> {
        self.flows.get(key).map(|id| &self.flows.flow(id).state)
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Heap bytes the flow table holds (entries and index).
    pub fn flow_memory_bytes(&self) -> usize {
        self.flows.memory_bytes()
    }

    /// The flow table's counters.
    pub fn flow_stats(&self) -> FlowTableStats {
        self.flows.stats()
    }

    /// Ends flows idle at `now` (nanoseconds since the epoch). Back ends call it about once a
    /// second.
    pub fn expire(&mut self, now: u64, observer: &mut impl Observer) {
        let (streams, quic, counters) = (&mut self.streams, &mut self.quic, &mut self.counters);
        self.flows.expire(now, &mut |flow, why| end_flow(streams, quic, counters, observer, flow, why));
    }

    /// Ends every flow (end of a capture, shutdown).
    pub fn finish(&mut self, observer: &mut impl Observer) {
        let (streams, quic, counters) = (&mut self.streams, &mut self.quic, &mut self.counters);
        self.flows.drain(&mut |flow, why| end_flow(streams, quic, counters, observer, flow, why));
    }

    /// Judges one packet seen at `now` (nanoseconds since the epoch).
    pub fn process(&mut self, packet: &Packet<'_>, now: u64, observer: &mut impl Observer) -> PacketVerdict {
        self.process_prepared(packet, None, now, observer)
    }

    /// The first step of [`process`](Self::process), which a back end holding several packets
    /// can take a few packets ahead: computes the packet's flow key and its hash, and asks the
    /// CPU to start loading the flow table's index line for it. `None` for a non-first fragment,
    /// which has no flow. Then, a little later, [`prefetch_flow`](Self::prefetch_flow) asks for
    /// the flow entry itself, and [`process_prepared`](Self::process_prepared) judges the packet;
    /// the loads a lookup waits for one after the other thus overlap with judging earlier
    /// packets. The table may change in between: the prefetches are hints, the lookup is exact.
    #[inline]
    pub fn prepare(&self, packet: &Packet<'_>) -> Option<Prepared> {
        if packet.transport == Transport::Fragment {
            return None;
        }
        let prepared = self.flow_of(packet);
        self.flows.prefetch_index(prepared.hash);
        Some(prepared)
    }

    /// The flow key of a packet that is not a non-first fragment, and its hash.
    #[inline]
    fn flow_of(&self, packet: &Packet<'_>) -> Prepared {
        let (key, from_lo) = FlowKey::of(packet);
        Prepared { key, from_lo, hash: self.flows.hash(&key) }
    }

    /// Asks the CPU to start loading the flow entry of a [`prepare`](Self::prepare)d packet,
    /// once its index line has had time to arrive.
    #[inline]
    pub fn prefetch_flow(&self, prepared: &Prepared) {
        self.flows.prefetch_flow(prepared.hash);
    }

    /// [`process`](Self::process) for a packet [`prepare`](Self::prepare)d earlier (`prepared`
    /// is what `prepare` returned for this very packet, or `None` to work it out here).
    pub fn process_prepared(
        &mut self,
        packet: &Packet<'_>,
        prepared: Option<Prepared>,
        now: u64,
        observer: &mut impl Observer,
    ) -> PacketVerdict {
        self.counters.packets += 1;
        self.counters.bytes += packet.ip.len() as u64;
        let verdict = self.judge(packet, prepared, now, observer);
        match verdict {
            PacketVerdict::Accept => self.counters.packets_accepted += 1,
            PacketVerdict::Drop => self.counters.packets_dropped += 1,
            PacketVerdict::Reset { .. } => self.counters.packets_reset += 1,
            PacketVerdict::Redirect => self.counters.packets_redirected += 1,
        }
        verdict
    }

    /// The verdict on one packet; `process_prepared` counts it.
    fn judge(
        &mut self,
        packet: &Packet<'_>,
        flow: Option<Prepared>,
        now: u64,
        observer: &mut impl Observer,
    ) -> PacketVerdict {
        self.settled = false;
        if packet.transport == Transport::Fragment {
            // No ports: judged by address alone, either end.
            self.counters.fragments += 1;
            let blocked = |a| self.ruleset.lookup_ip(a).is_some_and(|m| m.verdict().is_block());
            return if blocked(packet.dst) || blocked(packet.src) {
                PacketVerdict::Drop
            } else {
                PacketVerdict::Accept
            };
        }
        let Prepared { key, from_lo, hash } = flow.unwrap_or_else(|| self.flow_of(packet));
        let id = match self.flows.get_hashed(hash, &key) {
            Some(id) => id,
            None => self.new_flow(key, from_lo, packet, now, observer),
        };
        let class = timeout_class(packet);
        let flow = self.flows.flow_mut(id);
        let dir = usize::from(!from_lo);
        flow.packets[dir] = flow.packets[dir].wrapping_add(1);
        flow.bytes[dir] += packet.ip.len() as u64;
        let from_client = from_lo == flow.state.client_is_lo;
        let class = if self.flows.class(id) == TimeoutClass::TcpClosing { TimeoutClass::TcpClosing } else { class };
        self.flows.touch(id, now, class);

        let state = &self.flows.flow(id).state;
        if state.is_decided() && state.generation != self.generation {
            if self.config.rejudge_on_reload {
                self.rejudge(id, observer);
            } else {
                self.flows.flow_mut(id).state.generation = self.generation;
            }
        }
        if from_client {
            let state = &self.flows.flow(id).state;
            if state.judged_per_query() {
                return self.dns_query(packet, Some(id));
            }
            if !state.is_decided() {
                self.inspect(id, packet, observer);
            }
        }
        let state = &mut self.flows.flow_mut(id).state;
        self.settled = state.is_decided() && !state.judged_per_query();
        match state.action {
            FlowAction::Allow => PacketVerdict::Accept,
            FlowAction::Drop => PacketVerdict::Drop,
            // A connection already under way when a new policy blocked it: the client's packets
            // carry an acknowledgment that may lag what the server has sent since, so a reset
            // built from them may miss the client's window. Let a few client packets through
            // until one from the server names the exact sequence numbers both ends expect.
            FlowAction::Reset
                if state.reset_flags & reset_flags::MIDSTREAM != 0
                    && state.reset_rounds == 0
                    && from_client
                    && state.inspected < MIDSTREAM_WAIT =>
            {
                state.inspected += 1;
                self.settled = false;
                PacketVerdict::Accept
            }
            FlowAction::Reset => {
                state.reset_flags |= if from_client { reset_flags::FROM_CLIENT } else { reset_flags::FROM_SERVER };
                let first = !state.answered;
                state.answered = true;
                self.reset_round = state.reset_rounds;
                state.reset_rounds = state.reset_rounds.saturating_add(1);
                // Done when both ends' packets were answered (each names the sequence number its
                // sender expects), or after enough rounds: few for a new connection, which the
                // kernel queues only for its first packets, more for one cut mid-stream.
                let both = reset_flags::FROM_CLIENT | reset_flags::FROM_SERVER;
                let cap = if state.reset_flags & reset_flags::MIDSTREAM != 0 { 64 } else { 4 };
                self.reset_done = state.reset_flags & both == both || state.reset_rounds >= cap;
                PacketVerdict::Reset { first }
            }
            FlowAction::Redirect if from_client && !state.answered => {
                state.answered = true;
                PacketVerdict::Redirect
            }
            FlowAction::Redirect => PacketVerdict::Drop,
        }
    }

    fn new_flow(
        &mut self,
        key: FlowKey,
        from_lo: bool,
        packet: &Packet<'_>,
        now: u64,
        observer: &mut impl Observer,
    ) -> FlowId {
        let sender_is_client = match (packet.tcp(), packet.src_port(), packet.dst_port()) {
            (Some(t), _, _) if t.has(tcp_flags::SYN) => !t.has(tcp_flags::ACK),
            // Picked up mid-stream: the side on a well-known port is the server.
            (_, Some(src), Some(dst)) => !(src < 1024 && dst >= 1024),
            _ => true,
        };
        let client_is_lo = from_lo == sender_is_client;
        let state = FlowState::new(client_is_lo, self.generation);
        let (streams, quic, counters) = (&mut self.streams, &mut self.quic, &mut self.counters);
        let id = self.flows.insert(key, now, timeout_class(packet), state, &mut |flow, why| {
            end_flow(streams, quic, counters, observer, flow, why)
        });
        if packet.dst_port() == Some(53) && sender_is_client {
            // DNS is judged query by query; the flow itself stays allowed unless its address
            // is blocked (below).
            let state = &mut self.flows.flow_mut(id).state;
            state.app = AppProtocol::Dns;
            state.basis = Basis::NoMatch;
        }
        // The server address first: an IP rule needs no inspection.
        let server = if client_is_lo { key.hi().0 } else { key.lo().0 };
        if let Some(m) = self.ruleset.lookup_ip(server) {
            if let Verdict::Block { action, .. } = m.verdict() {
                let tcp = key.protocol == bawaba_wire::packet::protocol::TCP;
                let flow_action = FlowAction::for_rule(action, AppProtocol::Unknown, tcp);
                decide(&mut self.flows, &mut self.counters, id, Basis::Address, flow_action, Some(m), observer);
            }
        }
        id
    }

    /// Reads a client packet of an undecided flow.
    fn inspect(&mut self, id: FlowId, packet: &Packet<'_>, observer: &mut impl Observer) {
        match packet.transport {
            Transport::Tcp(tcp) => {
                let state = &mut self.flows.flow_mut(id).state;
                if tcp.has(tcp_flags::SYN) {
                    state.stream_base = Some(tcp.seq.wrapping_add(1));
                    return;
                }
                if packet.payload.is_empty() {
                    return;
                }
                state.inspected = state.inspected.saturating_add(1);
                let base = *state.stream_base.get_or_insert(tcp.seq);
                let offset = tcp.seq.wrapping_sub(base) as usize;
                self.inspect_stream(id, offset, packet.payload, observer);
            }
            Transport::Udp { .. } if looks_like_quic_initial(packet.payload) => {
                self.flows.flow_mut(id).state.inspected += 1;
                self.inspect_quic(id, packet.payload, observer);
            }
            _ => {
                self.flows.flow_mut(id).state.inspected += 1;
                self.conclude(id, Basis::Unrecognised, FlowAction::Allow, None, observer);
            }
        }
    }

    fn inspect_stream(&mut self, id: FlowId, offset: usize, payload: &[u8], observer: &mut impl Observer) {
        let state = &self.flows.flow(id).state;
        let over_budget = state.inspected >= self.config.inspect_packets;
        let outcome = match state.slot {
            // The common case: the whole first message in the first segment, read in place.
            None if offset == 0 => recognise_stream(payload, &mut self.scratch),
            _ => Recognised::NeedMore,
        };
        let outcome = match outcome {
            Recognised::NeedMore => {
                let slot = slot_for(&mut self.flows, &mut self.streams, id);
                match slot {
                    None => {
                        self.counters.reassembly_exhausted += 1;
                        Recognised::Nothing
                    }
                    Some(slot) => {
                        let buf = self.streams.get_mut(slot);
                        if offset < STREAM_CAPACITY && buf.add(offset, payload) == Added::TooFragmented {
                            self.counters.reassembly_exhausted += 1;
                            Recognised::Nothing
                        } else {
                            let bytes = buf.contiguous();
                            let full = buf.is_full();
                            match recognise_stream(bytes, &mut self.scratch) {
                                Recognised::NeedMore if full || bytes.is_empty() && over_budget => Recognised::Nothing,
                                other => other,
                            }
                        }
                    }
                }
            }
            other => other,
        };
        self.act_on(id, outcome, over_budget, observer);
    }

    fn inspect_quic(&mut self, id: FlowId, datagram: &[u8], observer: &mut impl Observer) {
        let state = &self.flows.flow(id).state;
        let over_budget = state.inspected >= self.config.inspect_packets;
        let slot = slot_for(&mut self.flows, &mut self.quic, id);
        let Some(slot) = slot else {
            self.counters.reassembly_exhausted += 1;
            self.conclude(id, Basis::Unrecognised, FlowAction::Allow, None, observer);
            return;
        };
        let reassembly = self.quic.get_mut(slot);
        let mut opened = false;
        for packet in quic::packets(datagram) {
            let Ok(packet) = packet else { break };
            if packet.header.packet_type != quic::PacketType::Initial {
                continue;
            }
            match quic::decrypt_client_initial(packet.bytes, &mut self.scratch) {
                Ok(initial) => {
                    opened = true;
                    if reassembly.insert_packet(&initial).is_err() {
                        self.counters.quic_undecryptable += 1;
                    }
                }
                Err(_) => self.counters.quic_undecryptable += 1,
            }
        }
        let outcome = match reassembly.first_message() {
            quic::FirstMessage::Complete(msg) => match tls::parse_handshake(msg) {
                Ok(hello) => match hello.server_name.as_str() {
                    Some(name) => {
                        Recognised::Name { app: AppProtocol::Quic, name: NameBuf::from(name), ech: hello.ech }
                    }
                    None => Recognised::Nameless(AppProtocol::Quic),
                },
                Err(_) => Recognised::Nothing,
            },
            quic::FirstMessage::TooLarge { .. } => Recognised::Nothing,
            _ if !opened && self.flows.flow(id).state.inspected == 1 => Recognised::Nothing,
            _ => Recognised::NeedMore,
        };
        self.act_on(id, outcome, over_budget, observer);
    }

    /// Acts on what a client's first bytes turned out to be: judge the name, or allow a flow
    /// with nothing to judge, or wait for more within the inspection budget.
    fn act_on(&mut self, id: FlowId, outcome: Recognised, over_budget: bool, observer: &mut impl Observer) {
        match outcome {
            Recognised::Name { app, name, ech } => self.judge_name(id, app, name.as_str(), ech, observer),
            Recognised::Nameless(app) => {
                self.flows.flow_mut(id).state.app = app;
                self.conclude(id, Basis::NoMatch, FlowAction::Allow, None, observer);
            }
            Recognised::NeedMore if !over_budget => {}
            Recognised::NeedMore | Recognised::Nothing => {
                self.conclude(id, Basis::Unrecognised, FlowAction::Allow, None, observer);
            }
        }
    }

    fn judge_name(&mut self, id: FlowId, app: AppProtocol, name: &str, ech: bool, observer: &mut impl Observer) {
        let state = &mut self.flows.flow_mut(id).state;
        state.app = app;
        state.ech = ech;
        state.set_name(name);
        let tcp = self.flows.flow(id).key.protocol == bawaba_wire::packet::protocol::TCP;
        let ruleset = Arc::clone(&self.ruleset);
        let (basis, action, m) = name_verdict(&ruleset, name, app, tcp);
        self.conclude(id, basis, action, m, observer);
    }

    /// Records a decision, releases the flow's reassembly buffer and tells the observer.
    fn conclude(
        &mut self,
        id: FlowId,
        basis: Basis,
        action: FlowAction,
        m: Option<Match<'_>>,
        observer: &mut impl Observer,
    ) {
        let flow = self.flows.flow_mut(id);
        if let Some(slot) = flow.state.slot.take() {
            release_slot(&mut self.streams, &mut self.quic, &flow.key, slot);
        }
        decide(&mut self.flows, &mut self.counters, id, basis, action, m, observer);
    }

    /// Judges a decided flow again under the current ruleset.
    fn rejudge(&mut self, id: FlowId, observer: &mut impl Observer) {
        let ruleset = Arc::clone(&self.ruleset);
        let address_match = ruleset.lookup_ip(server_address(self.flows.flow(id)));
        self.rejudge_with(id, address_match, None, &ruleset, observer);
    }

    /// [`rejudge`](Self::rejudge) with the server address already looked up in `ruleset` (the
    /// current one), and the flow's name too when `name_match` is given.
    fn rejudge_with<'r>(
        &mut self,
        id: FlowId,
        address_match: Option<Match<'r>>,
        name_match: Option<Option<Match<'r>>>,
        ruleset: &'r Ruleset,
        observer: &mut impl Observer,
    ) {
        let flow = self.flows.flow(id);
        let state = &flow.state;
        let before = state.action;
        let tcp = flow.key.protocol == bawaba_wire::packet::protocol::TCP;
        let by_address = address_match.filter(|m| m.verdict().is_block());
        if state.judged_per_query() && by_address.is_none() {
            // Judged query by query, never as a flow, unless its server's address is blocked
            // now (as a new flow to it would be).
            self.flows.flow_mut(id).state.generation = self.generation;
            return;
        }
        let (basis, action, m) = if let Some(m) = by_address {
            let Verdict::Block { action, .. } = m.verdict() else { unreachable!("filtered to blocks") };
            (Basis::Address, FlowAction::for_rule(action, state.app, tcp), Some(m))
        } else if let Some(name) = judged_name(state) {
            let found = name_match.unwrap_or_else(|| lookup_name(ruleset, name));
            found_verdict(found, state.app, tcp)
        } else if state.basis == Basis::Address && state.app == AppProtocol::Unknown && state.stream_base.is_none() {
            // Blocked by its server's address from its first packet, which blocks no more: never
            // inspected, so inspected from its next packet, as a new flow to that server would be.
            (Basis::Pending, FlowAction::Allow, None)
        } else if state.basis == Basis::Address {
            // Blocked by its server's address after it was inspected (a DNS flow, judged query by
            // query again from now on, or one that showed no name): allowed again, as before.
            let basis = if state.app == AppProtocol::Unknown { Basis::Unrecognised } else { Basis::NoMatch };
            (basis, FlowAction::Allow, None)
        } else {
            // Nothing to judge again: keep the verdict.
            (state.basis, before, None)
        };
        let generation = self.generation;
        self.flows.flow_mut(id).state.generation = generation;
        if action == before {
            return;
        }
        self.counters.rejudged_changed += 1;
        let state = &mut self.flows.flow_mut(id).state;
        state.answered = false;
        state.reset_rounds = 0;
        state.reset_flags =
            if action == FlowAction::Reset && before == FlowAction::Allow { reset_flags::MIDSTREAM } else { 0 };
        state.inspected = 0;
        if basis == Basis::Pending {
            // Undecided again: no decision to record until it is inspected.
            (state.basis, state.action) = (basis, action);
            state.set_cause(None, None);
        } else {
            decide(&mut self.flows, &mut self.counters, id, basis, action, m, observer);
        }
    }

    /// A DNS query on port 53: judged on its own, whatever the flow's earlier queries asked.
    fn dns_query(&mut self, packet: &Packet<'_>, flow: Option<FlowId>) -> PacketVerdict {
        let bytes = match packet.transport {
            Transport::Tcp(_) => packet.payload.get(2..).unwrap_or(&[]),
            _ => packet.payload,
        };
        let Ok(msg) = dns::Message::parse(bytes) else { return PacketVerdict::Accept };
        if msg.header().is_response() {
            return PacketVerdict::Accept;
        }
        let Some(q) = msg.question() else { return PacketVerdict::Accept };
        self.counters.dns_queries += 1;
        let mut text = [0u8; 256];
        let Some(name) = q.name.to_text_lower(&mut text) else { return PacketVerdict::Accept };
        if let Some(id) = flow {
            let state = &mut self.flows.flow_mut(id).state;
            if state.name().is_none() {
                // The first query names the flow in reports; each query is judged on its own.
                state.set_name(name);
            }
        }
        let Ok(Some(m)) = self.ruleset.lookup_domain(name) else { return PacketVerdict::Accept };
        if !m.verdict().is_block() {
            return PacketVerdict::Accept;
        }
        self.counters.dns_queries_blocked += 1;
        if let Some(order) = m.order() {
            self.counters.blocked(order.id, order.category);
        }
        if let (Some(id), Verdict::Block { rule, .. }) = (flow, m.verdict()) {
            let state = &mut self.flows.flow_mut(id).state;
            state.blocked_queries = state.blocked_queries.saturating_add(1);
            state.set_cause(m.order().map(|o| o.id), Some(rule));
        }
        PacketVerdict::Drop
    }
}

fn name_verdict<'r>(
    ruleset: &'r Ruleset,
    name: &str,
    app: AppProtocol,
    tcp: bool,
) -> (Basis, FlowAction, Option<Match<'r>>) {
    found_verdict(lookup_name(ruleset, name), app, tcp)
}

/// What the ruleset says about a name read from a flow. A Host header or SNI holding an address
/// literal is judged as that address (an IPv4 literal is also a well-formed name, so the literal
/// goes first); other text that is not a name matches nothing.
fn lookup_name<'r>(ruleset: &'r Ruleset, name: &str) -> Option<Match<'r>> {
    match address_literal(name) {
        Some(literal) => ruleset.lookup_ip(literal),
        None => ruleset.lookup_domain(name).unwrap_or(None),
    }
}

/// The address a name read from a flow spells, if it is an address literal (with or without the
/// trailing dot that names may carry).
fn address_literal(name: &str) -> Option<IpAddr> {
    name.strip_suffix('.').unwrap_or(name).parse().ok()
}

/// The decision a name match makes.
fn found_verdict(found: Option<Match<'_>>, app: AppProtocol, tcp: bool) -> (Basis, FlowAction, Option<Match<'_>>) {
    match found {
        Some(m) => match m.verdict() {
            Verdict::Block { action, .. } => (Basis::Name, FlowAction::for_rule(action, app, tcp), Some(m)),
            Verdict::Allow { .. } => (Basis::Allowlisted, FlowAction::Allow, None),
        },
        None => (Basis::NoMatch, FlowAction::Allow, None),
    }
}

/// The name a flow is judged by again on a reload, as a whole: read whole, not cut, and not a DNS
/// flow's (its names are queries, judged one by one).
fn judged_name(state: &FlowState) -> Option<&str> {
    state.name().filter(|_| !state.name_cut() && state.app != AppProtocol::Dns)
}

/// The name a reload must look up for a flow: none when the server's address already blocks
/// (`rejudge_with` decides by the address then).
fn name_to_judge<'s>(state: &'s FlowState, address_match: &Option<Match<'_>>) -> Option<&'s str> {
    let address_blocks = address_match.is_some_and(|m| m.verdict().is_block());
    judged_name(state).filter(|_| !address_blocks)
}

/// Records a decision and tells the observer.
#[allow(clippy::too_many_arguments)]
fn decide(
    flows: &mut FlowTable<FlowState>,
    counters: &mut Counters,
    id: FlowId,
    basis: Basis,
    action: FlowAction,
    m: Option<Match<'_>>,
    observer: &mut impl Observer,
) {
    let order = m.and_then(|m| m.order());
    let rule = m.and_then(|m| match m.verdict() {
        Verdict::Block { rule, .. } => Some(rule),
        Verdict::Allow { .. } => None,
    });
    let flow = flows.flow_mut(id);
    let state = &mut flow.state;
    state.basis = basis;
    state.action = action;
    state.set_cause(order.map(|o| o.id), rule);
    counters.flow_decided(action, order.filter(|_| action != FlowAction::Allow).map(|o| (o.id, o.category)));
    let (client, server) = endpoints(flow);
    observer.decided(&Decided { key: &flow.key, client, server, state: &flow.state, order });
}

fn end_flow(
    streams: &mut stream::Pool<StreamBuf>,
    quic: &mut stream::Pool<Box<quic::CryptoReassembly>>,
    counters: &mut Counters,
    observer: &mut impl Observer,
    flow: Flow<FlowState>,
    why: FlowEnd,
) {
    if let Some(slot) = flow.state.slot {
        release_slot(streams, quic, &flow.key, slot);
    }
    counters.flow_protocol(flow.state.app);
    if flow.state.ech {
        counters.ech_flows += 1;
    }
    observer.ended(&flow, why);
}

/// The server's address of a flow.
fn server_address(flow: &Flow<FlowState>) -> IpAddr {
    endpoints(flow).1 .0
}

/// The client's and the server's end (address, port) of a flow.
fn endpoints(flow: &Flow<FlowState>) -> ((IpAddr, u16), (IpAddr, u16)) {
    if flow.state.client_is_lo {
        (flow.key.lo(), flow.key.hi())
    } else {
        (flow.key.hi(), flow.key.lo())
    }
}

fn timeout_class(packet: &Packet<'_>) -> TimeoutClass {
    match packet.transport {
        Transport::Tcp(t) if t.flags & (tcp_flags::FIN | tcp_flags::RST) != 0 => TimeoutClass::TcpClosing,
        Transport::Tcp(_) => TimeoutClass::TcpOpen,
        Transport::Udp { .. } => TimeoutClass::Udp,
        _ => TimeoutClass::Other,
    }
}

/// A long-header packet of QUIC v1 or v2 (RFC 9000 section 17.2; the fixed bit may be greased
/// per RFC 9287, so only the form bit is checked).
fn looks_like_quic_initial(payload: &[u8]) -> bool {
    payload.len() >= 1200 - 8 && payload[0] & 0x80 != 0 && {
        let version = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
        quic::Version(version).is_supported()
    }
}

/// A name copied out of a packet, so the packet's buffers can be released.
struct NameBuf {
    len: u8,
    bytes: [u8; 255],
}

impl NameBuf {
    fn from(name: &str) -> Self {
        let mut bytes = [0u8; 255];
        let n = name.len().min(255);
        bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
        NameBuf { len: n as u8, bytes }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

/// What a client's first bytes turned out to be. Lives on the stack for one packet; boxing the
/// name would allocate per recognised flow.
#[allow(clippy::large_enum_variant)]
enum Recognised {
    /// A name to judge.
    Name { app: AppProtocol, name: NameBuf, ech: bool },
    /// The protocol, but no name in it.
    Nameless(AppProtocol),
    /// Could still become something.
    NeedMore,
    /// Not a protocol the engine reads.
    Nothing,
}

/// TLS or HTTP at the start of a TCP stream.
fn recognise_stream(bytes: &[u8], scratch: &mut [u8]) -> Recognised {
    match bytes.first() {
        None => Recognised::NeedMore,
        Some(&tls::CONTENT_HANDSHAKE) => match tls::parse_records(bytes, scratch) {
            Ok(hello) => match hello.server_name.as_str() {
                Some(name) => Recognised::Name { app: AppProtocol::Tls, name: NameBuf::from(name), ech: hello.ech },
                None => Recognised::Nameless(AppProtocol::Tls),
            },
            Err(tls::TlsError::Incomplete { .. }) => Recognised::NeedMore,
            Err(_) => Recognised::Nothing,
        },
        Some(_) => match http::parse_request(bytes) {
            Ok(req) => Recognised::Name { app: AppProtocol::Http, name: NameBuf::from(req.host), ech: false },
            Err(http::HttpError::Incomplete) => Recognised::NeedMore,
            Err(http::HttpError::NoHost) => Recognised::Nameless(AppProtocol::Http),
            Err(_) => Recognised::Nothing,
        },
    }
}

/// The flow's reassembly slot, taken from `pool` if it has none yet (`None`: the pool is empty).
fn slot_for<T: stream::Reusable>(
    flows: &mut FlowTable<FlowState>,
    pool: &mut stream::Pool<T>,
    id: FlowId,
) -> Option<u32> {
    let state = &mut flows.flow_mut(id).state;
    if state.slot.is_none() {
        state.slot = pool.take();
    }
    state.slot
}

/// Returns a flow's reassembly slot to its pool: UDP flows hold QUIC CRYPTO buffers, TCP flows
/// stream buffers.
fn release_slot(
    streams: &mut stream::Pool<StreamBuf>,
    quic: &mut stream::Pool<Box<quic::CryptoReassembly>>,
    key: &FlowKey,
    slot: u32,
) {
    if key.protocol == bawaba_wire::packet::protocol::UDP {
        quic.give_back(slot);
    } else {
        streams.give_back(slot);
    }
}
