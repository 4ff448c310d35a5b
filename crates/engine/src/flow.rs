//! The flow table: one entry per canonical 5-tuple, bounded in count, with idle timeouts per
//! protocol state and eviction of the least recently seen flow when full.
//!
//! Entries live in a slab (`Vec<Flow>`) indexed by `index`, a hash table of 8-byte slots: a slab
//! position and 32 bits of the key's hash (the key is not stored twice: a lookup compares against
//! the slab entry's key). Every flow sits
//! on one of a few recency lists, one per timeout class, threaded through the slab by index; a
//! touch moves the flow to the head of its list. Within a list all flows share one timeout, so the
//! tail is always the next to expire: expiry looks at the tails only, and eviction takes the
//! oldest tail. Nothing is allocated per packet once the slab has grown to its working size.

use std::hash::{BuildHasher, Hash, Hasher};

mod index;

use index::Index;
use std::net::IpAddr;

use bawaba_wire::packet::Packet;

/// Index of a flow in the table's slab: valid until the table's next insert, expire or drain.
pub type FlowId = u32;

const NONE: u32 = u32::MAX;

/// Both directions of a connection map to one key: the (address, port) pair that sorts lower
/// comes first. IPv4 addresses are stored IPv4-mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// The lower endpoint's address.
    pub lo_addr: [u8; 16],
    /// The higher endpoint's address.
    pub hi_addr: [u8; 16],
    /// The lower endpoint's port (0 for protocols without ports).
    pub lo_port: u16,
    /// The higher endpoint's port.
    pub hi_port: u16,
    /// IP protocol number.
    pub protocol: u8,
}

/// Every field, in three words: the key is hashed for every packet, and the derived form makes
/// seven writes (each address with a length prefix).
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_ne_bytes(self.lo_addr));
        state.write_u128(u128::from_ne_bytes(self.hi_addr));
        state.write_u64(u64::from(self.lo_port) | (u64::from(self.hi_port) << 16) | (u64::from(self.protocol) << 32));
    }
}

/// An address as a big-endian number, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`). The same
/// number as `u128::from(v4.to_ipv6_mapped())` (a test checks it), which goes through the byte
/// array and made the capture loop 2% slower (paired, 7 of 8 runs).
fn addr_number(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => 0xffff_0000_0000 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl FlowKey {
    /// The key of a packet's flow, and whether the packet travels from the lower endpoint to the
    /// higher one.
    pub fn of(packet: &Packet<'_>) -> (FlowKey, bool) {
        // Addresses as big-endian numbers order as their bytes do, so this is the order of the
        // stored keys, with two word compares instead of a byte-array compare.
        let src = (addr_number(packet.src), packet.src_port().unwrap_or(0));
        let dst = (addr_number(packet.dst), packet.dst_port().unwrap_or(0));
        let from_lo = src <= dst;
        let (lo, hi) = if from_lo { (src, dst) } else { (dst, src) };
        let key = FlowKey {
            lo_addr: lo.0.to_be_bytes(),
            hi_addr: hi.0.to_be_bytes(),
            lo_port: lo.1,
            hi_port: hi.1,
            protocol: packet.protocol,
        };
        (key, from_lo)
    }

    /// The lower endpoint.
    pub fn lo(&self) -> (IpAddr, u16) {
        (unmap(self.lo_addr), self.lo_port)
    }

    /// The higher endpoint.
    pub fn hi(&self) -> (IpAddr, u16) {
        (unmap(self.hi_addr), self.hi_port)
    }
}

fn unmap(a: [u8; 16]) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(a);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Timeout classes: flows in one class share an idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TimeoutClass {
    /// TCP that has not seen FIN or RST.
    TcpOpen = 0,
    /// TCP after FIN or RST.
    TcpClosing = 1,
    /// UDP (QUIC, DNS, the rest).
    Udp = 2,
    /// Other protocols and fragments.
    Other = 3,
}

const CLASSES: usize = 4;

/// Idle timeouts per class, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP before FIN/RST.
    pub tcp_open_ns: u64,
    /// TCP after FIN/RST.
    pub tcp_closing_ns: u64,
    /// UDP.
    pub udp_ns: u64,
    /// Anything else.
    pub other_ns: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        const S: u64 = 1_000_000_000;
        Timeouts { tcp_open_ns: 300 * S, tcp_closing_ns: 10 * S, udp_ns: 60 * S, other_ns: 30 * S }
    }
}

impl Timeouts {
    fn of(&self, class: TimeoutClass) -> u64 {
        match class {
            TimeoutClass::TcpOpen => self.tcp_open_ns,
            TimeoutClass::TcpClosing => self.tcp_closing_ns,
            TimeoutClass::Udp => self.udp_ns,
            TimeoutClass::Other => self.other_ns,
        }
    }
}

/// Longest server name kept in a flow entry. A longer name is still judged when seen; it is not
/// kept for re-judging after a policy reload.
pub const NAME_CAPACITY: usize = 96;

/// What the engine keeps per flow, generic over the engine's per-flow state `S`.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Flow<S> {
    // Laid out hot first (`repr(C)`): what every packet reads or writes (key, last-seen time,
    // counters, list links) comes before what only a flow's first packets need.
    /// The canonical key.
    pub key: FlowKey,
    class: TimeoutClass,
    /// Last packet's time, nanoseconds since the epoch.
    pub last_seen: u64,
    /// Packets from the lower and the higher endpoint.
    pub packets: [u32; 2],
    prev: u32,
    next: u32,
    /// Bytes (IP length) from the lower and the higher endpoint.
    pub bytes: [u64; 2],
    /// The engine's state.
    pub state: S,
    /// First packet's time, nanoseconds since the epoch.
    pub first_seen: u64,
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// Idle past its class's timeout.
    Idle,
    /// Pushed out to make room for a new flow.
    Evicted,
    /// Removed when the table was drained (end of a capture, shutdown).
    Drained,
}

/// Counters of the table itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlowTableStats {
    /// Flows created.
    pub created: u64,
    /// Flows ended by idle timeout.
    pub expired: u64,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Flows in the table now.
    pub active: u64,
}

/// A bounded flow table.
pub struct FlowTable<S> {
    index: Index,
    hasher: foldhash::fast::RandomState,
    slab: Vec<Flow<S>>,
    heads: [u32; CLASSES],
    tails: [u32; CLASSES],
    max_flows: usize,
    timeouts: Timeouts,
    stats: FlowTableStats,
}

impl<S> FlowTable<S> {
    /// A table that holds at most `max_flows` flows (at least 1, at most 16,777,214).
    pub fn new(max_flows: usize, timeouts: Timeouts) -> Self {
        let max_flows = max_flows.clamp(1, index::MAX_ENTRIES - 1);
        let initial = max_flows.min(1 << 16);
        FlowTable {
            index: Index::with_capacity(initial),
            hasher: foldhash::fast::RandomState::default(),
            slab: Vec::with_capacity(initial),
            heads: [NONE; CLASSES],
            tails: [NONE; CLASSES],
            max_flows,
            timeouts,
            stats: FlowTableStats::default(),
        }
    }

    /// Heap bytes held: the slab and the index, at their current capacities.
    pub fn memory_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Flow<S>>() + self.index.memory_bytes()
    }

    /// The table's counters.
    pub fn stats(&self) -> FlowTableStats {
        FlowTableStats { active: self.index.len() as u64, ..self.stats }
    }

    /// Looks up a flow.
    pub fn get(&self, key: &FlowKey) -> Option<FlowId> {
        self.get_hashed(self.hash(key), key)
    }

    /// The hash under which `key` is filed, for [`get_hashed`](Self::get_hashed) and the
    /// prefetches.
    #[inline]
    #[allow(clippy::manual_hash_one, reason = "hash_one is not inlined here; written out, it is")]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        // `hash_one` written out: as a call of its own it took the key through memory.
        let mut state = self.hasher.build_hasher();
        key.hash(&mut state);
        state.finish()
    }

    /// [`get`](Self::get) with the key's [`hash`](Self::hash) already computed.
    #[inline]
    pub fn get_hashed(&self, hash: u64, key: &FlowKey) -> Option<FlowId> {
        self.index.find(hash, |id| self.slab.get(id as usize).is_some_and(|f| f.key == *key))
    }

    /// Asks the CPU to start loading the index line a lookup of `hash` reads first. A hint: the
    /// table may change before the lookup, which stays correct either way.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Asks the CPU to start loading the flow entry a lookup of `hash` will most likely compare
    /// (read from the index, which [`prefetch_index`](Self::prefetch_index) should have brought
    /// in by now). A hint, like that one.
    #[inline]
    pub fn prefetch_flow(&self, hash: u64) {
        // The first position under the hash's tag, its key unchecked.
        if let Some(flow) = self.index.find(hash, |_| true).and_then(|id| self.slab.get(id as usize)) {
            bawaba_wire::hint::prefetch_value(flow);
        }
    }

    /// The flow at `id`.
    ///
    /// # Panics
    /// If `id` is not a live flow id returned by this table.
    pub fn flow(&self, id: FlowId) -> &Flow<S> {
        &self.slab[id as usize]
    }

    /// The flow at `id`, mutably.
    pub fn flow_mut(&mut self, id: FlowId) -> &mut Flow<S> {
        &mut self.slab[id as usize]
    }

    /// Inserts a new flow, evicting the least recently seen one if the table is full; the
    /// evicted flow is handed to `ended`.
    pub fn insert(
        &mut self,
        key: FlowKey,
        now: u64,
        class: TimeoutClass,
        state: S,
        ended: &mut impl FnMut(Flow<S>, FlowEnd),
    ) -> FlowId {
        if self.index.len() >= self.max_flows {
            if let Some(victim) = self.oldest() {
                self.stats.evicted += 1;
                let flow = self.remove(victim);
                ended(flow, FlowEnd::Evicted);
            }
        }
        let flow = Flow {
            key,
            first_seen: now,
            last_seen: now,
            packets: [0; 2],
            bytes: [0; 2],
            state,
            class,
            prev: NONE,
            next: NONE,
        };
        self.slab.push(flow);
        let id = (self.slab.len() - 1) as FlowId;
        self.index.insert(self.hash(&key), id);
        self.push_head(id);
        self.stats.created += 1;
        id
    }

    /// Marks a flow as seen at `now` in `class`, moving it to the head of that class's list.
    ///
    /// Within one second of capture time the flow stays where it is: the lists are ordered by
    /// last-seen second, not nanosecond, which is all expiry needs and saves the list surgery
    /// (three entries touched, often cache misses) on most packets of a busy flow.
    pub fn touch(&mut self, id: FlowId, now: u64, class: TimeoutClass) {
        const SECOND: u64 = 1_000_000_000;
        let f = &mut self.slab[id as usize];
        if f.class == class && f.last_seen / SECOND == now / SECOND {
            f.last_seen = f.last_seen.max(now);
            return;
        }
        self.unlink(id);
        let f = &mut self.slab[id as usize];
        f.last_seen = f.last_seen.max(now);
        f.class = class;
        self.push_head(id);
    }

    /// The timeout class a flow is in.
    pub fn class(&self, id: FlowId) -> TimeoutClass {
        self.slab[id as usize].class
    }

    /// Ends every flow idle past its timeout at `now`.
    pub fn expire(&mut self, now: u64, ended: &mut impl FnMut(Flow<S>, FlowEnd)) {
        for class in 0..CLASSES {
            loop {
                let tail = self.tails[class];
                if tail == NONE {
                    break;
                }
                let f = &self.slab[tail as usize];
                if now.saturating_sub(f.last_seen) <= self.timeouts.of(f.class) {
                    break;
                }
                self.stats.expired += 1;
                let flow = self.remove(tail);
                ended(flow, FlowEnd::Idle);
            }
        }
    }

    /// Ends every flow, oldest first: each time the least recently seen of the class lists' tails.
    ///
    /// The whole table goes at once: the index and the lists are cleared, and the flows are moved
    /// out of the slab in list order as the walk reaches them, without the index and list upkeep
    /// (a few cache misses per flow) that removing them one by one costs. A panic in `ended`
    /// leaves the flows not yet ended in the slab, unindexed: the table is then only fit to drop.
    pub fn drain(&mut self, ended: &mut impl FnMut(Flow<S>, FlowEnd)) {
        self.index.clear();
        self.heads = [NONE; CLASSES];
        // Each list runs from its tail (its oldest flow) through `prev`; the list links keep the
        // ids flows had before the drain began. `place[id]` is where the flow that was at `id` is
        // now (a removal moves the last flow into the hole), `holder[p]` which one is at `p`.
        let mut ends = std::mem::replace(&mut self.tails, [NONE; CLASSES]);
        let mut place: Vec<FlowId> = self.ids().collect();
        let mut holder = place.clone();
        let at = |place: &[FlowId], id: FlowId| place[id as usize] as usize;
        // The oldest of the lists' ends goes first, the first class on a tie.
        while let Some(class) =
            (0..CLASSES).filter(|&c| ends[c] != NONE).min_by_key(|&c| self.slab[at(&place, ends[c])].last_seen)
        {
            let p = at(&place, ends[class]);
            let flow = self.slab.swap_remove(p);
            if let Some(&moved) = holder.get(self.slab.len()).filter(|_| p < self.slab.len()) {
                place[moved as usize] = p as FlowId;
                holder[p] = moved;
            }
            ends[class] = flow.prev;
            ended(flow, FlowEnd::Drained);
        }
        // Every flow is on a list, so none is left; if one were, it ends all the same.
        for flow in self.slab.drain(..) {
            ended(flow, FlowEnd::Drained);
        }
    }

    /// The ids of every flow (valid until the next insert, expire or drain).
    pub fn ids(&self) -> std::ops::Range<FlowId> {
        0..self.slab.len() as FlowId
    }

    fn oldest(&self) -> Option<FlowId> {
        self.tails.iter().filter(|&&t| t != NONE).min_by_key(|&&t| self.slab[t as usize].last_seen).copied()
    }

    /// Removes a flow. The slab stays dense: the last flow moves into the hole, so a
    /// [`FlowId`] is only valid until the next insert, expire or drain.
    fn remove(&mut self, id: FlowId) -> Flow<S> {
        self.unlink(id);
        let hash = self.hash(&self.slab[id as usize].key);
        self.index.remove(hash, id);
        let last = (self.slab.len() - 1) as FlowId;
        let flow = self.slab.swap_remove(id as usize);
        if id != last {
            self.relocate(last, id);
        }
        flow
    }

    /// The flow that was at `from` is now at `to`: fix the list links and the index.
    fn relocate(&mut self, from: FlowId, to: FlowId) {
        let (prev, next, class, key) = {
            let f = &self.slab[to as usize];
            (f.prev, f.next, f.class as usize, f.key)
        };
        if prev == NONE {
            if self.heads[class] == from {
                self.heads[class] = to;
            }
        } else {
            self.slab[prev as usize].next = to;
        }
        if next == NONE {
            if self.tails[class] == from {
                self.tails[class] = to;
            }
        } else {
            self.slab[next as usize].prev = to;
        }
        self.index.relocate(self.hash(&key), from, to);
    }

    fn push_head(&mut self, id: FlowId) {
        let class = self.slab[id as usize].class as usize;
        let head = self.heads[class];
        {
            let f = &mut self.slab[id as usize];
            f.prev = NONE;
            f.next = head;
        }
        if head != NONE {
            self.slab[head as usize].prev = id;
        } else {
            self.tails[class] = id;
        }
        self.heads[class] = id;
    }

    fn unlink(&mut self, id: FlowId) {
        let (prev, next, class) = {
            let f = &self.slab[id as usize];
            (f.prev, f.next, f.class as usize)
        };
        if prev != NONE {
            self.slab[prev as usize].next = next;
        } else if self.heads[class] == id {
            self.heads[class] = next;
        }
        if next != NONE {
            self.slab[next as usize].prev = prev;
        } else if self.tails[class] == id {
            self.tails[class] = prev;
        }
        let f = &mut self.slab[id as usize];
        f.prev = NONE;
        f.next = NONE;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(i: u32) -> FlowKey {
        FlowKey {
            lo_addr: Ipv4Addr::from(0xC612_0000 + i).to_ipv6_mapped().octets(),
            hi_addr: Ipv4Addr::new(198, 19, 0, 1).to_ipv6_mapped().octets(),
            lo_port: 1024 + i as u16,
            hi_port: 443,
            protocol: 6,
        }
    }

    /// A deterministic stream of pseudo-random numbers (xorshift64) from a nonzero `seed`.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// A table after churn: 400 keys seen in random classes, four packets a second (so that
    /// flows share their last-seen times), expired now and then. The same every call.
    fn churned() -> FlowTable<u32> {
        let mut table = FlowTable::new(1000, Timeouts::default());
        let classes = [TimeoutClass::TcpOpen, TimeoutClass::TcpClosing, TimeoutClass::Udp, TimeoutClass::Other];
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        for step in 0..3_000u64 {
            let now = step / 4 * 1_000_000_000;
            let i = (next() % 400) as u32;
            let class = classes[(next() % 4) as usize];
            match table.get(&key(i)) {
                Some(id) => table.touch(id, now, class),
                None => {
                    table.insert(key(i), now, class, i, &mut |_, _| {});
                }
            }
            if step % 50 == 0 {
                table.expire(now, &mut |_, _| {});
            }
        }
        table
    }

    #[test]
    fn address_numbers_are_the_stored_bytes_in_their_order() {
        let bytes = |a: IpAddr| match a {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        let mut addrs: Vec<IpAddr> = vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(std::net::Ipv6Addr::from(u128::MAX)),
            IpAddr::V6(std::net::Ipv6Addr::from(0xfffe_ffff_ffffu128)),
            IpAddr::V6(std::net::Ipv6Addr::from(0x1_0000_0000_0000u128)),
        ];
        for _ in 0..200 {
            addrs.push(IpAddr::V4(Ipv4Addr::from(next() as u32)));
            addrs.push(IpAddr::V6(std::net::Ipv6Addr::from(u128::from(next()) << 64 | u128::from(next()))));
            // Near the IPv4-mapped block, on both sides.
            addrs.push(IpAddr::V6(std::net::Ipv6Addr::from(
                0xffff_0000_0000u128 + u128::from(next() % 3) * (1 << 32) - 1,
            )));
        }
        for &a in &addrs {
            assert_eq!(addr_number(a).to_be_bytes(), bytes(a), "{a}");
            for &b in addrs.iter().step_by(7) {
                assert_eq!(addr_number(a).cmp(&addr_number(b)), bytes(a).cmp(&bytes(b)), "{a} against {b}");
            }
        }
    }

    #[test]
    fn draining_at_once_ends_flows_in_the_order_of_one_by_one() {
        let mut one_by_one = churned();
        let mut want = Vec::new();
        while let Some(id) = one_by_one.oldest() {
            want.push(one_by_one.remove(id).state);
        }
        let mut at_once = churned();
        let active = at_once.stats().active;
        assert!(active > 100, "{active} flows");
        let mut got = Vec::new();
        at_once.drain(&mut |flow, end| {
            assert_eq!(end, FlowEnd::Drained);
            got.push(flow.state);
        });
        assert_eq!(got.len() as u64, active);
        assert_eq!(got, want);
        // Empty, and in working order.
        assert_eq!(at_once.stats().active, 0);
        assert_eq!(at_once.get(&key(1)), None);
        let id = at_once.insert(key(1), 0, TimeoutClass::Udp, 7, &mut |_, _| {});
        assert_eq!(at_once.get(&key(1)), Some(id));
        at_once.drain(&mut |flow, _| assert_eq!(flow.state, 7));
    }
}
