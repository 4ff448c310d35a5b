//! The domain suffix set: every selector name in one flat open-addressing table.
//!
//! Each distinct selector name is a *node* carrying two precomputed outcomes: `at_self`, the entry
//! that decides for the name itself (`Exact` before `Subtree`, allow before block), and `below`, the
//! entry that decides for names strictly below it (`Subtree` and `Subdomains`, allow before block,
//! then lowest id). A lookup validates the query in one branch-free pass, then hashes its label
//! suffixes right to left (eight bytes at a time, case-folded) and walks them from the shortest; the
//! deepest selector name found decides.
//!
//! The table holds 16-byte slots: the high 32 bits of the suffix hash as a fingerprint, the offset
//! of the name in a string arena, and the two outcomes. A fingerprint hit is verified against the
//! name in the arena, so a collision can only cost time, never produce a false match; since the
//! outcomes sit in the slot, the verification is off the critical path (the CPU predicts it).
//!
//! In front of the table sits a small filter (a blocked Bloom filter: two bits in one 64-bit word,
//! about 8 bits per entry) over every selector name *and every proper ancestor of one*. The walk
//! goes from the shortest suffix to the longest and stops at the first suffix the filter does not
//! know: nothing deeper can match. A random miss (`x.y.unknown-site.com`) thus stops at its
//! registered name, whatever its depth, usually without touching the table. The filter has no false
//! negatives, and a false positive only makes the walk go on. On the 2-vCPU VM we measured a random
//! access into tens of megabytes at 200-300 ns (TLB miss and page walk); the filter (2 MiB for a
//! million rules) is small enough to stay mostly in cache and within TLB reach.

use std::mem::size_of;

use crate::name::{MAX_LABEL_LEN, MAX_NAME_LEN};
use crate::ruleset::NO_ENTRY;

/// The kind of a name selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum NameKind {
    /// Only the name.
    Exact,
    /// The name and everything below.
    Subtree,
    /// Everything strictly below the name.
    Subdomains,
}

/// The `name` of an empty slot.
const EMPTY: u32 = u32::MAX;
const SEED: u64 = 0x243F_6A88_85A3_08D3;
const MUL: u64 = 0xA076_1D64_78BD_642F;

/// Byte classes of the ASCII hot path: a label character maps to its lowercase form, `.` to itself,
/// anything else (including every non-ASCII byte) to 0.
const FOLD: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'A'..=b'Z' => c + 32,
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => c,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Mixes one word into the running hash.
#[inline(always)]
fn mix(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(MUL).rotate_left(26)
}

/// Spreads the running value over all 64 bits (murmur3 `fmix64`).
#[inline(always)]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// Mixes the label `name[start..end]` into the running hash, eight bytes at a time from its end,
/// ASCII-lowercased. The caller has validated the name: on label characters `| 0x20` is a lowercase
/// fold that keeps distinct characters distinct (`_` becomes 0x7F, nothing else does).
#[inline(always)]
fn hash_label(mut h: u64, name: &[u8], start: usize, end: usize) -> u64 {
    h = mix(h, (end - start) as u64);
    let mut end = end;
    while end > start {
        let n = (end - start).min(8);
        let shift = 64 - 8 * n as u32;
        // The `n` bytes before `end`, the first in the lowest position, upper bytes zero.
        let word = match end.checked_sub(8).and_then(|from| name.get(from..end)) {
            Some(eight) => {
                let mut buf = [0u8; 8];
                buf.copy_from_slice(eight);
                u64::from_le_bytes(buf) >> shift
            }
            None => name.get(end - n..end).unwrap_or_default().iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b)),
        };
        h = mix(h, word | (0x2020_2020_2020_2020 >> shift));
        end -= n;
    }
    h
}

/// Hash of a whole canonical name, equal to the suffix hash the lookup computes for it.
fn name_hash(name: &[u8]) -> u64 {
    let mut h = SEED;
    let mut end = name.len();
    for start in name.iter().enumerate().rev().filter(|&(_, &b)| b == b'.').map(|(i, _)| i + 1).chain([0]) {
        h = hash_label(h, name, start, end);
        end = start.saturating_sub(1);
    }
    finish(h)
}

/// One slot of the table. 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// High 32 bits of the name's hash.
    tag: u32,
    /// Offset of the name in the arena (a length byte, then the name), or [`EMPTY`].
    name: u32,
    /// The outcomes.
    node: Node,
}

const EMPTY_SLOT: Slot = Slot { tag: 0, name: EMPTY, node: Node { at_self: NO_ENTRY, below: NO_ENTRY } };

/// A selector name as stored: the two outcomes (entry indexes or [`NO_ENTRY`]).
#[derive(Debug, Clone, Copy)]
struct Node {
    /// The entry that decides for the name itself.
    at_self: u32,
    /// The entry that decides for names strictly below.
    below: u32,
}

/// The compiled set. Immutable.
#[derive(Debug)]
pub(crate) struct DomainSet {
    slots: Vec<Slot>,
    mask: usize,
    /// Each selector name as a length byte followed by the name.
    arena: Vec<u8>,
    /// Bit `d` set when some selector name has `d` labels (`d` < 128); other depths skip the table.
    node_depths: u128,
    /// Blocked Bloom filter over the hashes of every selector name and every proper ancestor.
    filter: Vec<u64>,
    filter_mask: usize,
}

/// The filter word and the two bits of a hash.
#[inline(always)]
fn filter_bits(hash: u64, mask: usize) -> (usize, u64) {
    let word = (hash >> 20) as usize & mask;
    let bits = (1u64 << (hash >> 52 & 63)) | (1u64 << (hash >> 58));
    (word, bits)
}

/// What the table holds for one suffix.
enum Probe {
    /// Neither a selector name nor an ancestor of one: the walk can stop.
    Absent,
    /// Not a selector name, perhaps an ancestor of one: the walk goes on.
    NotNode,
    /// A selector name.
    Node(Node),
}

impl DomainSet {
    /// Looks up a name as given (any case, optional trailing dot).
    ///
    /// Returns `None` when the input is not a valid ASCII name (the caller falls back to
    /// `DomainName::parse`, which converts Unicode or reports the error), otherwise the deciding entry
    /// or [`NO_ENTRY`]. Does not allocate.
    #[inline]
    pub(crate) fn lookup_ascii(&self, input: &[u8]) -> Option<u32> {
        let Labels { name, dots, count } = Labels::split(input)?;
        // Suffixes from the shortest; stop at the first the filter does not know.
        let mut h = SEED;
        let mut end = name.len();
        let mut best = NO_ENTRY;
        for k in (0..=count).rev() {
            let start = if k == 0 { 0 } else { usize::from(dots[k - 1]) + 1 };
            h = hash_label(h, name, start, end);
            let depth = count + 1 - k;
            let probe =
                self.find(finish(h), name.get(start..).unwrap_or_default(), (self.node_depths >> depth) & 1 != 0);
            match probe {
                Probe::Absent => return Some(best),
                Probe::NotNode => {}
                Probe::Node(node) if k == 0 => {
                    return Some(if node.at_self != NO_ENTRY { node.at_self } else { best });
                }
                Probe::Node(node) => {
                    if node.below != NO_ENTRY {
                        best = node.below;
                    }
                }
            }
            end = start.saturating_sub(1);
        }
        Some(best)
    }

    /// What the table holds for `name` (compared ignoring ASCII case).
    ///
    /// `nodes_here` is false when no selector name has as many labels as `name`: then only the
    /// filter is asked.
    #[inline(always)]
    fn find(&self, hash: u64, name: &[u8], nodes_here: bool) -> Probe {
        let (word, bits) = filter_bits(hash, self.filter_mask);
        if self.filter.get(word).is_none_or(|&w| w & bits != bits) {
            return Probe::Absent;
        }
        if !nodes_here {
            return Probe::NotNode;
        }
        let tag = (hash >> 32) as u32;
        let mut pos = hash as usize & self.mask;
        loop {
            let Some(slot) = self.slots.get(pos) else { return Probe::NotNode };
            if slot.name == EMPTY {
                return Probe::NotNode;
            }
            if slot.tag == tag && arena_name(&self.arena, slot.name).eq_ignore_ascii_case(name) {
                return Probe::Node(slot.node);
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// The name of the node at `offset` (canonical: lowercase ASCII).
    pub(crate) fn node_name(&self, offset: u32) -> &str {
        std::str::from_utf8(arena_name(&self.arena, offset)).unwrap_or_default()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>() + self.filter.capacity() * size_of::<u64>() + self.arena.capacity()
    }
}

/// The name stored at `offset` (a length byte, then the name).
#[inline(always)]
fn arena_name(arena: &[u8], offset: u32) -> &[u8] {
    let offset = offset as usize;
    let len = arena.get(offset).map_or(0, |&l| usize::from(l));
    arena.get(offset + 1..offset + 1 + len).unwrap_or_default()
}

/// A validated ASCII name (trailing dot removed) and the positions of its dots.
struct Labels<'a> {
    name: &'a [u8],
    dots: [u8; 128],
    count: usize,
}

impl<'a> Labels<'a> {
    /// Validates `input` as a name of any case with an optional trailing dot; `None` when it is not
    /// a valid ASCII name.
    #[inline(always)]
    fn split(input: &'a [u8]) -> Option<Self> {
        let name = match input.split_last() {
            Some((b'.', rest)) => rest,
            _ => input,
        };
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return None;
        }
        // Validate every byte and note where the dots are (branch-free).
        let mut dots = [0u8; 128];
        let mut count = 0usize;
        let mut bad = false;
        for (i, &b) in name.iter().enumerate() {
            let c = FOLD[b as usize];
            bad |= c == 0;
            dots[count & 127] = i as u8;
            count += usize::from(c == b'.');
        }
        // 127 dots in 253 octets leave an empty label.
        if bad || count > 126 {
            return None;
        }
        let mut start = 0usize;
        for &dot in &dots[..count] {
            let len = usize::from(dot) - start;
            if len == 0 || len > MAX_LABEL_LEN {
                return None;
            }
            start = usize::from(dot) + 1;
        }
        if name.len() == start || name.len() - start > MAX_LABEL_LEN {
            return None;
        }
        Some(Labels { name, dots, count })
    }
}

/// A name item waiting to be compiled.
#[derive(Debug, Clone, Copy)]
struct Item<P> {
    hash: u64,
    /// Offset and length of the canonical name in the builder's arena.
    offset: u32,
    len: u8,
    kind: NameKind,
    payload: P,
}

/// Collects name selectors; [`DomainSetBuilder::build`] compiles them.
#[derive(Debug)]
pub(crate) struct DomainSetBuilder<P> {
    arena: Vec<u8>,
    items: Vec<Item<P>>,
}

impl<P> Default for DomainSetBuilder<P> {
    fn default() -> Self {
        DomainSetBuilder { arena: Vec::new(), items: Vec::new() }
    }
}

/// How an item ranks among items of the same name and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rank {
    /// An allow entry.
    pub(crate) allow: bool,
    /// Its id (lower wins among equals).
    pub(crate) id: i64,
}

/// What [`DomainSetBuilder::build`] dropped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Dropped {
    /// Items whose `rank` returned `None`.
    pub(crate) skipped: usize,
    /// Items with the same name, kind and allow/block as a kept one of lower id.
    pub(crate) duplicates: usize,
}

impl<P: Copy> DomainSetBuilder<P> {
    pub(crate) fn with_capacity(items: usize) -> Self {
        DomainSetBuilder { arena: Vec::with_capacity(items * 16), items: Vec::with_capacity(items) }
    }

    /// Adds a canonical name (lowercase, no trailing dot, at most 253 octets).
    pub(crate) fn push(&mut self, name: &str, kind: NameKind, payload: P) {
        let bytes = name.as_bytes();
        let Ok(len) = u8::try_from(bytes.len()) else { return };
        let Ok(offset) = u32::try_from(self.arena.len()) else { return };
        self.arena.extend_from_slice(bytes);
        self.items.push(Item { hash: name_hash(bytes), offset, len, kind, payload });
    }

    /// Compiles the set. `rank` says whether an item is kept (`None`: skipped) and how it ranks;
    /// `make_entry` turns each kept item into an entry index, given its kind and the node (the
    /// offset of its name in the arena, see [`DomainSet::node_name`]).
    pub(crate) fn build(
        self,
        rank: impl Fn(&P) -> Option<Rank>,
        mut make_entry: impl FnMut(&P, NameKind, u32) -> u32,
    ) -> (DomainSet, Dropped) {
        let DomainSetBuilder { arena: source, items } = self;
        let mut dropped = Dropped::default();
        let name_of = |item: &Item<P>| {
            let start = item.offset as usize;
            source.get(start..start + usize::from(item.len)).unwrap_or_default()
        };
        let mut kept: Vec<(Item<P>, Rank)> = Vec::with_capacity(items.len());
        for item in items {
            match rank(&item.payload) {
                Some(r) => kept.push((item, r)),
                None => dropped.skipped += 1,
            }
        }
        // Sorted by (hash, index): 16 bytes an entry move, not the whole item; the rest of the
        // order (name, kind, allow first, lowest id, first given) only breaks ties of hash.
        let mut order: Vec<(u64, u32)> = kept.iter().enumerate().map(|(i, (item, _))| (item.hash, i as u32)).collect();
        order.sort_unstable_by(|&(ha, a), &(hb, b)| {
            ha.cmp(&hb).then_with(|| {
                let ((a, ra), (b, rb)) = (&kept[a as usize], &kept[b as usize]);
                name_of(a)
                    .cmp(name_of(b))
                    .then(a.kind.cmp(&b.kind))
                    .then(rb.allow.cmp(&ra.allow))
                    .then(ra.id.cmp(&rb.id))
                    // Of two items with the same id (a broken input), the first given is kept.
                    .then(a.offset.cmp(&b.offset))
            })
        });
        let ranked: Vec<&(Item<P>, Rank)> = order.iter().map(|&(_, i)| &kept[i as usize]).collect();
        drop(order);

        // Names in the arena, slots (not yet placed) in hash order.
        let mut nodes: Vec<(u64, Slot)> = Vec::new();
        let mut arena: Vec<u8> = Vec::with_capacity(source.len() / 2 + ranked.len());
        let mut start = 0;
        while start < ranked.len() {
            let first = &ranked[start].0;
            let name = name_of(first);
            let mut end = start + 1;
            while end < ranked.len() && ranked[end].0.hash == first.hash && name_of(&ranked[end].0) == name {
                end += 1;
            }
            let offset = match u32::try_from(arena.len()) {
                Ok(offset) if offset < EMPTY => offset,
                _ => break,
            };
            // Best item per (kind, allow): the group is sorted so the first one is kept.
            let mut best: [Option<(u32, Rank)>; 6] = [None; 6];
            for &(item, r) in &ranked[start..end] {
                let slot = item.kind as usize * 2 + usize::from(!r.allow);
                if best[slot].is_some() {
                    dropped.duplicates += 1;
                } else {
                    best[slot] = Some((make_entry(&item.payload, item.kind, offset), *r));
                }
            }
            let [exact_allow, exact_block, subtree_allow, subtree_block, subdomains_allow, subdomains_block] = best;
            let at_self = exact_allow.or(exact_block).or(subtree_allow).or(subtree_block).map_or(NO_ENTRY, |e| e.0);
            let lowest = |a: Option<(u32, Rank)>, b: Option<(u32, Rank)>| match (a, b) {
                (Some(x), Some(y)) => Some(if y.1.id < x.1.id { y } else { x }),
                (x, y) => x.or(y),
            };
            let below = lowest(subtree_allow, subdomains_allow)
                .or(lowest(subtree_block, subdomains_block))
                .map_or(NO_ENTRY, |e| e.0);
            arena.push(first.len);
            arena.extend_from_slice(name);
            let tag = (first.hash >> 32) as u32;
            nodes.push((first.hash, Slot { tag, name: offset, node: Node { at_self, below } }));
            start = end;
        }
        drop(ranked);
        drop(kept);

        // The filter knows every name and every proper ancestor of one.
        let mut known: Vec<u64> = Vec::with_capacity(nodes.len() * 2);
        let mut node_depths = 0u128;
        for (hash, slot) in &nodes {
            known.push(*hash);
            let name = arena_name(&arena, slot.name);
            // At most 127 labels fit in 253 octets.
            node_depths |= 1u128 << (name.iter().filter(|&&b| b == b'.').count() + 1).min(127);
            for (i, _) in name.iter().enumerate().filter(|&(_, &b)| b == b'.') {
                known.push(name_hash(&name[i + 1..]));
            }
        }
        known.sort_unstable();
        known.dedup();
        // About 8 filter bits per entry: with two bits per entry, 5% of unknown names pass.
        let words = (known.len() / 8).next_power_of_two().max(1);
        let filter_mask = words - 1;
        let mut filter = vec![0u64; words];
        for &hash in &known {
            let (word, bits) = filter_bits(hash, filter_mask);
            filter[word] |= bits;
        }
        drop(known);

        // Load factor at most 1/2: a miss probes about 2.5 slots, mostly in one cache line.
        let capacity = (nodes.len() * 2).next_power_of_two().max(16);
        let mask = capacity - 1;
        let mut slots = vec![EMPTY_SLOT; capacity];
        for (hash, slot) in nodes {
            let mut pos = hash as usize & mask;
            while slots[pos].name != EMPTY {
                pos = (pos + 1) & mask;
            }
            slots[pos] = slot;
        }
        arena.shrink_to_fit();
        (DomainSet { slots, mask, arena, node_depths, filter, filter_mask }, dropped)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_hashes_agree_with_whole_name_hashes() {
        // The lookup's running hash after each label equals the hash of that suffix, in any case.
        let name = b"WWW.Example.TEST";
        let mut h = SEED;
        let mut seen = Vec::new();
        for (start, end) in [(12, 16), (4, 11), (0, 3)] {
            h = hash_label(h, name, start, end);
            seen.push(finish(h));
        }
        assert_eq!(seen, vec![name_hash(b"test"), name_hash(b"example.test"), name_hash(b"www.example.test")]);
        // Long labels take the word-at-a-time path, short names the byte path.
        let long = b"a-very-long-label-with-many-words.Example.test";
        let lower = long.to_ascii_lowercase();
        assert_eq!(
            name_hash(&lower),
            finish(hash_label(hash_label(hash_label(SEED, long, 42, 46), long, 34, 41), long, 0, 33))
        );
        assert_ne!(name_hash(b"ab.c"), name_hash(b"a.bc"));
    }

    #[test]
    fn fold_table_is_injective_on_name_bytes() {
        let mut seen = std::collections::HashSet::new();
        for b in (b'a'..=b'z').chain(b'0'..=b'9').chain([b'-', b'_', b'.']) {
            assert!(seen.insert(FOLD[b as usize]));
        }
        assert_eq!(FOLD[b'Q' as usize], b'q');
        assert_eq!(FOLD[b' ' as usize], 0);
        assert_eq!(FOLD[0xC3], 0);
    }
}
