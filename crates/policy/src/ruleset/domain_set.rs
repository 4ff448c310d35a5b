//! The domain suffix set: every selector name in one flat open-addressing table.
//!
//! Each distinct selector name is a *node* carrying two precomputed outcomes: `at_self`, the entry
//! that decides for the name itself (`Exact` before `Subtree`, allow before block), and `below`, the
//! entry that decides for names strictly below it (`Subtree` and `Subdomains`, allow before block,
//! then lowest id). A lookup reads the query sixteen bytes at a time with SSE2 on x86-64, eight
//! elsewhere (names up to 64 bytes; longer ones a byte at a time): the bytes are checked for name
//! characters, case-folded into a small buffer and their dots noted in a bit mask, with no branch
//! per byte. It then hashes the label suffixes
//! right to left and walks them from the shortest; the deepest selector name found decides.
//!
//! The table holds 32-byte slots, two to a cache line: the name itself when it has at most
//! [`INLINE`] bytes (case-folded, zero-padded), and the two outcomes. The high bits of the hash
//! choose the slot, so the build, which has the names in hash order, fills the table front to back
//! with no wrap-around. A lookup compares the slot's name with the query's suffix, three words
//! at once: a hit costs one access to the table (sometimes two lines, when its probe runs into
//! the next one), with no second read in an arena, and a hash collision can never produce a false
//! match. A longer name is stored as a marker, a 32-bit fingerprint of its hash and
//! the offset of the name in a string arena, where a fingerprint match is verified.
//!
//! In front of the table sits a small filter (a blocked Bloom filter: two bits in one 64-bit word,
//! about 8 bits per entry) over every selector name *and every proper ancestor of one*. The walk
//! goes from the shortest suffix to the longest and stops at the first suffix the filter does not
//! know: nothing deeper can match. A random miss (`x.y.unknown-site.com`) thus stops at its
//! registered name, whatever its depth, usually without touching the table. The filter has no false
//! negatives, and a false positive only makes the walk go on. On the 2-vCPU VM we measured a random
//! access into tens of megabytes at 200-300 ns (TLB miss and page walk); the filter (2 MiB for a
//! million rules) is small enough to stay mostly in cache and within TLB reach.
//!
//! [`DomainSet::lookup_many`] walks many names side by side, round by round, with each memory
//! access prefetched a round before it is read.

use std::cmp::Ordering;

use bawaba_wire::hint::prefetch_value as prefetch;

use crate::name::{validate_ascii, CANONICAL, MAX_LABEL_LEN, MAX_NAME_LEN};
use crate::ruleset::table::Table;
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

const SEED: u64 = 0x243F_6A88_85A3_08D3;
const MUL: u64 = 0xA076_1D64_78BD_642F;

/// Mixes one word into the running hash.
#[inline(always)]
fn mix(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(MUL).rotate_left(26)
}

/// Spreads the running value over all 64 bits: one multiply, with the high half folded in before
/// it and after it (the table and the filter read both halves).
#[inline(always)]
fn finish(h: u64) -> u64 {
    let h = (h ^ (h >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// Mixes a label of `start..end` into the running hash, eight bytes at a time from its end:
/// `word_before(end, n)` gives the `n` (1 to 8) case-folded bytes before `end`, the first in the
/// lowest position, upper bytes zero. The builder and the lookup read their words differently
/// (see [`hash_label`], [`hash_folded_label`]); this is the one place that mixes them.
#[inline(always)]
fn mix_label(mut h: u64, start: usize, end: usize, word_before: impl Fn(usize, usize) -> u64) -> u64 {
    h = mix(h, (end - start) as u64);
    let mut end = end;
    while end > start {
        let n = (end - start).min(8);
        h = mix(h, word_before(end, n));
        end -= n;
    }
    h
}

/// Mixes the label `name[start..end]` into the running hash, ASCII-lowercased. The caller has
/// validated the name: on label characters `| 0x20` is a lowercase fold that keeps distinct
/// characters distinct (`_` becomes 0x7F, nothing else does).
#[inline(always)]
fn hash_label(h: u64, name: &[u8], start: usize, end: usize) -> u64 {
    mix_label(h, start, end, |end, n| {
        let shift = 64 - 8 * n as u32;
        let word = match end.checked_sub(8).and_then(|from| name.get(from..end)) {
            Some(eight) => {
                let mut buf = [0u8; 8];
                buf.copy_from_slice(eight);
                u64::from_le_bytes(buf) >> shift
            }
            None => name.get(end - n..end).unwrap_or_default().iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b)),
        };
        word | (0x2020_2020_2020_2020 >> shift)
    })
}

/// [`hash_label`] over a name already case-folded into `folded` from offset [`PAD`]: the label
/// `name[start..end]` is `folded[PAD + start..PAD + end]`, and a word ending at the label's end can
/// always be read whole.
#[inline(always)]
fn hash_folded_label(h: u64, folded: &[u8], start: usize, end: usize) -> u64 {
    mix_label(h, start, end, |end, n| {
        // `folded[end..end + 8]` is the eight name bytes before `end` (PAD is 8).
        let mut eight = [0u8; 8];
        if let Some(bytes) = folded.get(end..end + 8) {
            eight.copy_from_slice(bytes);
        }
        u64::from_le_bytes(eight) >> (64 - 8 * n as u32)
    })
}

/// Hash of a whole canonical name, equal to the suffix hash the lookup computes for it (a
/// canonical name always passes [`suffix_hashes`]' label checks).
fn name_hash(name: &[u8]) -> u64 {
    suffix_hashes(name, |_| {}).unwrap_or(SEED)
}

/// [`name_hash`] of a name [`CANONICAL`] has mapped, or `None` when it is not a valid name: a byte
/// that folds to 0 (not a label character), an empty label, or a label over 63 octets.
fn checked_name_hash(name: &[u8]) -> Option<u64> {
    // Short names: a folding scan beats `memchr`'s set-up.
    if name.is_empty() || name.iter().fold(false, |zero, &b| zero | (b == 0)) {
        return None;
    }
    suffix_hashes(name, |_| {})
}

/// Walks the label suffixes of `name` from the shortest, hashing as the lookup does: hands the
/// hash of each proper suffix to `ancestor` and returns the hash of the whole name, or `None` at
/// an empty label or one over 63 octets.
fn suffix_hashes(name: &[u8], mut ancestor: impl FnMut(u64)) -> Option<u64> {
    let mut h = SEED;
    let mut end = name.len();
    loop {
        let start = name.get(..end)?.iter().rposition(|&b| b == b'.').map_or(0, |dot| dot + 1);
        if !(1..=MAX_LABEL_LEN).contains(&(end - start)) {
            return None;
        }
        h = hash_label(h, name, start, end);
        if start == 0 {
            return Some(finish(h));
        }
        ancestor(finish(h));
        end = start - 1;
    }
}

/// Sorts `items` by `cmp`, which must order by `hash` first: one counting pass spreads the items
/// into at most 4,096 buckets by the top bits of their hash, then each bucket (a few hundred
/// items, in the first-level cache) is sorted alone. Few buckets keep the scatter's write heads in
/// cache; more (one per four items) made the scatter a cache miss per item.
fn sort_by_hash<T: Copy>(items: &mut Vec<T>, hash: impl Fn(&T) -> u64, cmp: impl Fn(&T, &T) -> Ordering) {
    let Some(&first) = items.first() else { return };
    if items.len() < 1 << 12 {
        items.sort_unstable_by(cmp);
        return;
    }
    let bits = (items.len().ilog2() - 8).clamp(4, 12);
    let shift = 64 - bits;
    let mut starts = vec![0usize; (1 << bits) + 1];
    for item in items.iter() {
        starts[(hash(item) >> shift) as usize + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut sorted = vec![first; items.len()];
    for item in items.iter() {
        let at = &mut next[(hash(item) >> shift) as usize];
        sorted[*at] = *item;
        *at += 1;
    }
    for bucket in starts.windows(2) {
        if let Some(run) = sorted.get_mut(bucket[0]..bucket[1]) {
            run.sort_unstable_by(&cmp);
        }
    }
    *items = sorted;
}

/// Names up to this long are stored in their table slot; longer ones in the arena.
const INLINE: usize = 24;

/// The first name word of a slot whose name is in the arena, below the name's fingerprint (the low
/// 32 bits of its hash) in the high half. A folded name has no byte 0xFF (nor 0).
const LONG: u64 = 0xFF;

/// One slot of the table: 32 bytes, two to a cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    /// A name of at most [`INLINE`] bytes: its bytes folded as [`fold_word`] folds them, then
    /// zeros. A fold never makes a zero byte, so the zeros also say where the name ends. A longer
    /// name: [`LONG`] and its fingerprint in word 0, its offset in the arena (a length byte, then
    /// the name) in word 1. An empty slot: all zero.
    name: [u64; 3],
    /// The outcomes.
    node: Node,
}

const EMPTY_SLOT: Slot = Slot { name: [0; 3], node: Node { at_self: NO_ENTRY, below: NO_ENTRY } };

impl Slot {
    /// The slot for a node named `name` (canonical: lowercase), with hash `hash`, at `offset` in
    /// the arena.
    fn new(name: &[u8], hash: u64, offset: u32, node: Node) -> Slot {
        if name.len() > INLINE {
            return Slot { name: [long_word(hash), u64::from(offset), 0], node };
        }
        // Folded and read as a long query's suffix is: the words a lookup compares with are made
        // by the same code.
        let mut folded = [0u8; PAD + INLINE];
        fold_bytes(name, &mut folded);
        Slot { name: inline_words(&folded, 0, name.len()), node }
    }

    /// Whether the slot holds the name whose [`inline_words`] are `want`: all three words
    /// compared, the differences or-ed together and tested once.
    #[inline(always)]
    fn holds(&self, want: &[u64; 3]) -> bool {
        let [a, b, c] = self.name;
        (a ^ want[0]) | (b ^ want[1]) | (c ^ want[2]) == 0
    }
}

/// Copies a validated name into `buf` from offset [`PAD`], case-folded a byte at a time as
/// [`fold_word`] folds eight (`| 0x20`: on name characters a lowercase fold that keeps distinct
/// characters distinct).
#[inline]
fn fold_bytes(name: &[u8], buf: &mut [u8]) {
    for (to, &b) in buf.iter_mut().skip(PAD).zip(name) {
        *to = b | 0x20;
    }
}

/// Word 0 of a slot whose name, with hash `hash`, is stored in the arena.
#[inline(always)]
fn long_word(hash: u64) -> u64 {
    LONG | ((hash & 0xFFFF_FFFF) << 32)
}

/// The words a slot holds for the query's suffix `folded[PAD + start..PAD + start + len]`, `len`
/// at most [`INLINE`]: read whole from the buffer (it has [`TAIL`] spare bytes), the bytes past
/// the name masked off.
#[inline(always)]
fn inline_words(folded: &[u8], start: usize, len: usize) -> [u64; 3] {
    let mut words = [0u64; 3];
    for (i, word) in words.iter_mut().enumerate() {
        if 8 * i < len {
            let mut eight = [0u8; 8];
            if let Some(bytes) = folded.get(PAD + start + 8 * i..PAD + start + 8 * i + 8) {
                eight.copy_from_slice(bytes);
            }
            *word = u64::from_le_bytes(eight) & (u64::MAX >> (64 - 8 * (len - 8 * i).min(8)));
        }
    }
    words
}

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
    /// Ends in at least one empty slot: a probe stops there, and never wraps around.
    slots: Table<Slot>,
    /// Home slots, from 0 to `homes - 1`; see [`home_slot`].
    homes: u64,
    /// Each selector name as a length byte followed by the name.
    arena: Table<u8>,
    /// Bit `d` set when some selector name has `d` labels (`d` < 128); other depths skip the table.
    node_depths: u128,
    /// Blocked Bloom filter over the hashes of every selector name and every proper ancestor.
    filter: Table<u64>,
    filter_mask: usize,
}

/// The home slot of a hash among `homes`: its top 32 bits scaled, so that names in hash order have
/// their homes in slot order.
#[inline(always)]
fn home_slot(hash: u64, homes: u64) -> usize {
    (((hash >> 32) * homes) >> 32) as usize
}

/// The filter word and the two bits of a hash.
#[inline(always)]
fn filter_bits(hash: u64, mask: usize) -> (usize, u64) {
    let word = (hash >> 20) as usize & mask;
    let bits = (1u64 << (hash >> 52 & 63)) | (1u64 << (hash >> 58));
    (word, bits)
}

/// Names that [`DomainSet::lookup_many`] walks side by side.
pub(crate) const NAME_LANES: usize = 64;

/// Table probes a name may note in [`DomainSet::lookup_many`], and a walk of
/// [`DomainSet::lookup_ascii`] before it probes them: one per suffix that passes the filter at a
/// depth where selector names exist. A random miss notes none or one.
const MAX_PROBES: usize = 4;

/// Where a lane of [`DomainSet::lookup_many`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaneState {
    /// Not a valid ASCII name (also an empty lane).
    Invalid,
    /// Walking its suffixes.
    Walking,
    /// The walk has stopped; the probes decide.
    Stopped,
    /// Looked up on its own, by [`DomainSet::lookup_ascii`]: too long, or too many probes.
    Alone,
}

/// A suffix to look up in the table once the walk has stopped.
#[derive(Debug, Clone, Copy, Default)]
struct PendingProbe {
    hash: u64,
    /// Where the suffix starts in the name.
    start: usize,
}

/// One name in [`DomainSet::lookup_many`].
#[derive(Debug, Clone, Copy)]
struct Lane {
    state: LaneState,
    /// Dots of the labels not yet hashed.
    dots: u64,
    /// End of the next label to hash.
    end: usize,
    /// Running hash, and the finished hash of the current suffix (whose filter word was
    /// prefetched), its start and its depth in labels.
    h: u64,
    hash: u64,
    start: u8,
    depth: u8,
    probes: [PendingProbe; MAX_PROBES],
    probe_count: u8,
}

impl Default for Lane {
    fn default() -> Self {
        Lane {
            state: LaneState::Invalid,
            dots: 0,
            end: 0,
            h: SEED,
            hash: 0,
            start: 0,
            depth: 0,
            probes: [PendingProbe::default(); MAX_PROBES],
            probe_count: 0,
        }
    }
}

impl DomainSet {
    /// Looks up a name as given (any case, optional trailing dot).
    ///
    /// Returns `None` when the input is not a valid ASCII name (the caller falls back to
    /// `DomainName::parse`, which converts Unicode or reports the error), otherwise the deciding entry
    /// or [`NO_ENTRY`]. Does not allocate.
    #[inline]
    pub(crate) fn lookup_ascii(&self, input: &[u8]) -> Option<u32> {
        let name = strip_root(input);
        if name.len() > SHORT_NAME {
            return self.lookup_long(input);
        }
        let mut buf: FoldBuf = [0u8; PAD + SHORT_NAME + TAIL];
        let mut dots = fold_short(name, &mut buf)?;
        // Label starts from the last label's to 0.
        let mut done = false;
        let starts = std::iter::from_fn(move || {
            let start = (!done).then(|| pop_label_start(&mut dots))?;
            done = start == 0;
            Some(start)
        });
        Some(self.walk(name, &buf, starts))
    }

    /// [`lookup_ascii`](Self::lookup_ascii) for many names: `out[i]` gets the answer for
    /// `inputs[i]` (`out` as long as `inputs`; extra names or slots are left alone).
    ///
    /// The names go in groups of [`NAME_LANES`] *lanes*, walked round by round: in each round
    /// every lane still walking checks the filter word of its current suffix, notes a table probe
    /// for it when selector names have its depth, and hashes its next suffix. Each memory access
    /// is asked for (prefetched) a round before it is read, so the cache misses of a group overlap
    /// with each other and with the hashing, instead of each lookup waiting for its own. A probe
    /// never changes where the walk goes (only the filter stops it), so the probes wait until
    /// every lane has stopped; their slots, then the arena names (of names longer than
    /// [`INLINE`]) that a fingerprint matches, are read after that, again prefetched a step
    /// ahead. A name that is long or needs more than [`MAX_PROBES`] probes takes
    /// [`lookup_ascii`](Self::lookup_ascii).
    pub(crate) fn lookup_many(&self, inputs: &[impl AsRef<[u8]>], out: &mut [Option<u32>]) {
        let mut bufs: [FoldBuf; NAME_LANES] = [[0u8; PAD + SHORT_NAME + TAIL]; NAME_LANES];
        for (inputs, out) in inputs.chunks(NAME_LANES).zip(out.chunks_mut(NAME_LANES)) {
            let mut lanes = [Lane::default(); NAME_LANES];
            // The lanes still walking, so that a round skips the ones that have stopped.
            let mut walking = [0u8; NAME_LANES];
            let mut still = 0;
            for (i, ((lane, buf), input)) in lanes.iter_mut().zip(&mut bufs).zip(inputs).enumerate() {
                let name = strip_root(input.as_ref());
                if name.len() > SHORT_NAME {
                    lane.state = LaneState::Alone;
                    continue;
                }
                let Some(dots) = fold_short(name, buf) else { continue };
                *lane = Lane { dots, end: name.len(), state: LaneState::Walking, ..Lane::default() };
                self.next_suffix(lane, buf);
                walking[still] = i as u8;
                still += 1;
            }
            while still > 0 {
                let mut kept = 0;
                for k in 0..still {
                    let i = usize::from(walking[k]);
                    let (Some(lane), Some(buf)) = (lanes.get_mut(i), bufs.get(i)) else { continue };
                    if self.step(lane) {
                        self.next_suffix(lane, buf);
                        walking[kept] = i as u8;
                        kept += 1;
                    }
                }
                still = kept;
            }
            for lane in &lanes {
                for probe in lane.probes.iter().take(usize::from(lane.probe_count)) {
                    let home = self.slots.get(home_slot(probe.hash, self.homes)).unwrap_or(&EMPTY_SLOT);
                    if home.name[0] == long_word(probe.hash) {
                        if let Some(stored) = self.arena.get(home.name[1] as usize) {
                            prefetch(stored);
                        }
                    }
                }
            }
            for (((out, input), lane), buf) in out.iter_mut().zip(inputs).zip(&lanes).zip(&bufs) {
                let input = input.as_ref();
                *out = match lane.state {
                    LaneState::Invalid => None,
                    LaneState::Alone => self.lookup_ascii(input),
                    LaneState::Walking | LaneState::Stopped => {
                        let probes = lane.probes.get(..usize::from(lane.probe_count)).unwrap_or_default();
                        let mut best = NO_ENTRY;
                        Some(self.decide(buf, strip_root(input).len(), probes, &mut best).unwrap_or(best))
                    }
                };
            }
        }
    }

    /// Hashes the lane's next suffix and prefetches its filter word.
    #[inline(always)]
    fn next_suffix(&self, lane: &mut Lane, buf: &FoldBuf) {
        let start = pop_label_start(&mut lane.dots);
        lane.h = hash_folded_label(lane.h, buf, start, lane.end);
        lane.hash = finish(lane.h);
        lane.start = start as u8;
        lane.depth += 1;
        if let Some(word) = self.filter.get(filter_bits(lane.hash, self.filter_mask).0) {
            prefetch(word);
        }
    }

    /// One round for a walking lane: checks the filter for its current suffix and notes a probe.
    /// True when the walk goes on to the next suffix.
    #[inline(always)]
    fn step(&self, lane: &mut Lane) -> bool {
        if !self.filter_has(lane.hash) {
            lane.state = LaneState::Stopped;
            return false;
        }
        if (self.node_depths >> lane.depth) & 1 != 0 {
            let Some(probe) = lane.probes.get_mut(usize::from(lane.probe_count)) else {
                lane.state = LaneState::Alone;
                return false;
            };
            *probe = PendingProbe { hash: lane.hash, start: usize::from(lane.start) };
            lane.probe_count += 1;
            self.prefetch_home(lane.hash);
        }
        if lane.start == 0 {
            lane.state = LaneState::Stopped;
            return false;
        }
        lane.end = usize::from(lane.start) - 1;
        true
    }

    /// [`lookup_ascii`](Self::lookup_ascii) for names longer than [`SHORT_NAME`]: checked by
    /// [`validate_ascii`], folded a byte at a time, labels found from the right.
    #[cold]
    fn lookup_long(&self, input: &[u8]) -> Option<u32> {
        let name = strip_root(input);
        validate_ascii(name).ok()?;
        let mut buf = [0u8; PAD + MAX_NAME_LEN + TAIL];
        fold_bytes(name, &mut buf);
        let mut end = Some(name.len());
        let starts = std::iter::from_fn(|| {
            let start = name.get(..end?)?.iter().rposition(|&b| b == b'.').map_or(0, |dot| dot + 1);
            end = start.checked_sub(1);
            Some(start)
        });
        Some(self.walk(name, &buf, starts))
    }

    /// Walks the suffixes of `name` from the shortest, in two passes. First the filter alone
    /// decides how far the walk goes (it stops at the first suffix the filter does not know),
    /// noting the suffixes the table may hold and asking for their slots; then the noted suffixes
    /// are probed, shortest first, and the deepest selector name decides. A hit thus waits for its
    /// table slots and stored names together, not depth after depth. A probe never changes where
    /// the walk goes, so when more than [`MAX_PROBES`] are noted, those are probed and the walk
    /// goes on.
    ///
    /// `folded` holds the name case-folded from offset [`PAD`]; `starts` yields the start of each
    /// label from the last to the first (0).
    #[inline(always)]
    fn walk(&self, name: &[u8], folded: &[u8], starts: impl Iterator<Item = usize>) -> u32 {
        let mut noted = [PendingProbe::default(); MAX_PROBES];
        let mut count = 0;
        let mut best = NO_ENTRY;
        let mut h = SEED;
        let mut end = name.len();
        for (depth, start) in starts.enumerate().map(|(i, start)| (i + 1, start)) {
            h = hash_folded_label(h, folded, start, end);
            let hash = finish(h);
            if !self.filter_has(hash) {
                break;
            }
            if (self.node_depths >> depth) & 1 != 0 {
                if count == MAX_PROBES {
                    // None of these is the whole name (the last suffix, still to come), so they
                    // only move `best`.
                    let decided = self.decide(folded, name.len(), &noted, &mut best);
                    debug_assert!(decided.is_none(), "only the whole name decides");
                    count = 0;
                }
                if let Some(note) = noted.get_mut(count) {
                    *note = PendingProbe { hash, start };
                    count += 1;
                }
                self.prefetch_home(hash);
            }
            end = start.saturating_sub(1);
        }
        self.decide(folded, name.len(), noted.get(..count).unwrap_or_default(), &mut best).unwrap_or(best)
    }

    /// Probes the `noted` suffixes of the name folded in `folded` (from [`PAD`], `len` bytes),
    /// shortest first, and folds what the table holds into `best`, the entry that decides from
    /// below: the deciding entry when the whole name is a selector name, else `None`.
    #[inline(always)]
    fn decide(&self, folded: &[u8], len: usize, noted: &[PendingProbe], best: &mut u32) -> Option<u32> {
        for probe in noted {
            let found = self.probe_table(probe.hash, folded, probe.start, len);
            if let Some(entry) = take_node(found, probe.start == 0, best) {
                return Some(entry);
            }
        }
        None
    }

    /// Asks for the home slot of `hash`.
    #[inline(always)]
    fn prefetch_home(&self, hash: u64) {
        if let Some(home) = self.slots.get(home_slot(hash, self.homes)) {
            prefetch(home);
        }
    }

    /// Whether the filter may know `hash`.
    #[inline(always)]
    fn filter_has(&self, hash: u64) -> bool {
        let (word, bits) = filter_bits(hash, self.filter_mask);
        self.filter.get(word).is_some_and(|&w| w & bits == bits)
    }

    /// The table's node for the suffix `folded[PAD + start..PAD + end]` of a query, if it is a
    /// selector name.
    #[inline(always)]
    fn probe_table(&self, hash: u64, folded: &[u8], start: usize, end: usize) -> Option<Node> {
        // From the home slot to the first empty one (the table ends in one).
        let slots = self.slots.get(home_slot(hash, self.homes)..).unwrap_or_default();
        let mut run = slots.iter().take_while(|slot| slot.name[0] != 0);
        let found = if end - start <= INLINE {
            let want = inline_words(folded, start, end - start);
            run.find(|slot| slot.holds(&want))
        } else {
            let want = long_word(hash);
            run.find(|slot| {
                slot.name[0] == want && stored_name_is(&self.arena, slot.name[1] as u32, folded, start, end)
            })
        };
        found.map(|slot| slot.node)
    }

    /// The name of the node at `offset` (canonical: lowercase ASCII).
    pub(crate) fn node_name(&self, offset: u32) -> &str {
        std::str::from_utf8(arena_name(&self.arena, offset)).unwrap_or_default()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.memory_bytes() + self.filter.memory_bytes() + self.arena.memory_bytes()
    }
}

/// Folds the table's answer for one suffix into a walk: the deciding entry when the suffix is the
/// whole name and a node, else `None`, with `best` (the entry that decides from below) updated.
#[inline(always)]
fn take_node(found: Option<Node>, whole_name: bool, best: &mut u32) -> Option<u32> {
    let node = found?;
    if whole_name {
        return Some(if node.at_self != NO_ENTRY { node.at_self } else { *best });
    }
    if node.below != NO_ENTRY {
        *best = node.below;
    }
    None
}

/// Whether the name stored at `offset` in the arena (a name longer than [`INLINE`]) is the suffix
/// `folded[PAD + start..PAD + end]` of a query (folded as [`fold_word`] folds, which keeps
/// distinct name characters distinct): the length byte, then the name eight bytes at a time, all
/// differences or-ed together and tested once.
///
/// The stored name is a cache miss that a hit must wait for. A byte loop, or a length compare
/// that returns early, would end on a branch that depends on the stored bytes and mispredicts
/// (names differ in length), so the CPU would wait for the miss; here the loop runs on the
/// query's length, known before the stored name arrives, and the one branch on the stored bytes
/// goes the predicted way (a fingerprint match is nearly always the name). The arena ends in
/// [`TAIL`] spare bytes and `folded` has as many after the name, so every word can be read.
#[inline(always)]
fn stored_name_is(arena: &[u8], offset: u32, folded: &[u8], start: usize, end: usize) -> bool {
    let word = |bytes: &[u8], at: usize| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(bytes.get(at..at + 8)?);
        Some(u64::from_le_bytes(eight))
    };
    let len = end - start;
    let at_name = offset as usize + 1;
    let mut differ = u64::from(arena.get(at_name - 1).copied() != Some(len as u8));
    for at in (0..len).step_by(8) {
        let (Some(stored), Some(query)) = (word(arena, at_name + at), word(folded, PAD + start + at)) else {
            // Only a stored name shorter than the query, at the very end of the arena, runs out
            // (the spare bytes cover a word past the stored name's end, not past the query's):
            // the lengths differ.
            return false;
        };
        let keep = u64::MAX >> (64 - 8 * (len - at).min(8));
        differ |= (fold_word(stored) ^ query) & keep;
    }
    differ == 0
}

/// The name stored at `offset` (a length byte, then the name).
#[inline(always)]
fn arena_name(arena: &[u8], offset: u32) -> &[u8] {
    let offset = offset as usize;
    let len = arena.get(offset).map_or(0, |&l| usize::from(l));
    arena.get(offset + 1..offset + 1 + len).unwrap_or_default()
}

/// Names up to this long (without the trailing dot) are read a word at a time; their dots fit a
/// 64-bit mask.
const SHORT_NAME: usize = 64;
/// Bytes in front of the name in a folded buffer, so that the word before any label end exists.
const PAD: usize = 8;
/// Spare bytes after a folded name and at the end of the arena, so that the word-at-a-time compare
/// of a stored name ([`stored_name_is`]) can read whole words.
const TAIL: usize = 8;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// `c` in every byte.
#[inline(always)]
const fn splat(c: u8) -> u64 {
    ONES * c as u64
}

/// The high bit of each byte of `v` (seven-bit bytes) that is zero.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    !(((v & !HIGHS) + !HIGHS) | v) & HIGHS
}

/// The high bit of each byte of `v` (seven-bit bytes) in `lo..=hi`. No byte borrows from its
/// neighbour: `0x80 + v - lo` and `0x80 + hi - v` stay within one byte.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn in_range(v: u64, lo: u8, hi: u8) -> u64 {
    ((v | HIGHS) - splat(lo)) & (splat(hi) | HIGHS).wrapping_sub(v) & HIGHS
}

/// Bit `i` set where byte `i` of `high_bits` has its high bit set.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn byte_mask(high_bits: u64) -> u64 {
    ((high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Eight name bytes at once: the case-folded bytes, and the high bit of each byte that is a dot
/// or is not a name character (letters, digits, `-`, `_`, `.`). The word-at-a-time form behind
/// `classify_pair_by_words`.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn classify(word: u64) -> (u64, u64, u64) {
    let ascii = word & !HIGHS;
    let folded = ascii | splat(0x20);
    let dots = zero_bytes(ascii ^ splat(b'.'));
    let good = in_range(folded, b'a', b'z')
        | in_range(ascii, b'0', b'9')
        | dots
        | zero_bytes(ascii ^ splat(b'-'))
        | zero_bytes(ascii ^ splat(b'_'));
    let bad = (!good | word) & HIGHS;
    (folded, dots, bad)
}

/// The case-folded form of eight name bytes (`_` folds to 0x7F, as in [`hash_label`]).
#[inline(always)]
fn fold_word(word: u64) -> u64 {
    word & !HIGHS | splat(0x20)
}

/// Sixteen name bytes at once, the eight of `low` then the eight of `high`: bit `i` of the first
/// mask is set where byte `i` is a dot, of the second where it is not a name character (letters,
/// digits, `-`, `_`, `.`; any byte from 0x80 on is not).
///
/// With SSE2 (every x86-64 CPU), one comparison per character class for all sixteen bytes and one
/// instruction to gather each mask: half the instructions of the word-at-a-time form
/// (`classify_pair_by_words`, used elsewhere), and this is most of what a lookup that misses
/// computes.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[allow(unsafe_code)]
fn classify_pair(low: u64, high: u64) -> (u32, u32) {
    // SAFETY: `sse2_masks` only needs SSE2, which this build enables (the `cfg` above; it is part
    // of the x86-64 baseline). It touches no memory.
    unsafe { sse2_masks(low, high) }
}

/// The SSE2 body of [`classify_pair`].
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn sse2_masks(low: u64, high: u64) -> (u32, u32) {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    // Bytes compare as signed: one from 0x80 on is negative, below every bound, so no class takes it.
    let splat = |c: u8| _mm_set1_epi8(c as i8);
    let bytes = _mm_set_epi64x(high as i64, low as i64);
    let lower = _mm_or_si128(bytes, splat(0x20));
    let letter = _mm_and_si128(_mm_cmpgt_epi8(lower, splat(b'a' - 1)), _mm_cmplt_epi8(lower, splat(b'z' + 1)));
    let digit = _mm_and_si128(_mm_cmpgt_epi8(bytes, splat(b'0' - 1)), _mm_cmplt_epi8(bytes, splat(b'9' + 1)));
    let dot = _mm_cmpeq_epi8(bytes, splat(b'.'));
    let other = _mm_or_si128(_mm_cmpeq_epi8(bytes, splat(b'-')), _mm_cmpeq_epi8(bytes, splat(b'_')));
    let good = _mm_or_si128(_mm_or_si128(letter, digit), _mm_or_si128(dot, other));
    let dots = _mm_movemask_epi8(dot) as u32;
    let bad = !(_mm_movemask_epi8(good) as u32) & 0xFFFF;
    (dots, bad)
}

/// [`classify_pair`] where there is no SSE2.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn classify_pair(low: u64, high: u64) -> (u32, u32) {
    classify_pair_by_words(low, high)
}

/// [`classify_pair`] a word at a time: its form where there is no SSE2, and the reference the SSE2
/// form is tested against.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn classify_pair_by_words(low: u64, high: u64) -> (u32, u32) {
    let (_, low_dots, low_bad) = classify(low);
    let (_, high_dots, high_bad) = classify(high);
    let mask = |low: u64, high: u64| (byte_mask(low) | byte_mask(high) << 8) as u32;
    (mask(low_dots, high_dots), mask(low_bad, high_bad))
}

/// `input` without its trailing dot (the root label), if it has one.
#[inline(always)]
fn strip_root(input: &[u8]) -> &[u8] {
    match input.split_last() {
        Some((b'.', rest)) => rest,
        _ => input,
    }
}

/// A buffer for a case-folded name of at most [`SHORT_NAME`] bytes, from offset [`PAD`], and
/// [`TAIL`] bytes after it.
type FoldBuf = [u8; PAD + SHORT_NAME + TAIL];

/// Validates `name` (1 to [`SHORT_NAME`] bytes, trailing dot removed) sixteen bytes at a time and
/// case-folds it into `buf` from offset [`PAD`] (`_` folds to 0x7F, as in [`hash_label`]); returns
/// the mask of its dots (bit `i` for byte `i`), or `None` unless it is a valid ASCII name: name
/// characters only, no empty label, no label over 63 octets.
#[inline(always)]
fn fold_short(name: &[u8], buf: &mut FoldBuf) -> Option<u64> {
    let len = name.len();
    let mut dots = 0u64;
    let mut bad = 0u64;
    let mut fold = |offset: usize, word: u64| {
        if let Some(to) = buf.get_mut(PAD + offset..PAD + offset + 8) {
            to.copy_from_slice(&fold_word(word).to_le_bytes());
        }
    };
    if len >= 8 {
        // Whole words, the last one ending at the end of the name (it may overlap the one before),
        // classified two by two.
        let word_at = |offset: usize| {
            let mut eight = [0u8; 8];
            if let Some(from) = name.get(offset..offset + 8) {
                eight.copy_from_slice(from);
            }
            u64::from_le_bytes(eight)
        };
        let pairs = if len <= 16 {
            1
        } else if len <= 32 {
            2
        } else {
            4
        };
        for i in 0..pairs {
            let (low_at, high_at) = ((16 * i).min(len - 8), (16 * i + 8).min(len - 8));
            let (low, high) = (word_at(low_at), word_at(high_at));
            fold(low_at, low);
            fold(high_at, high);
            let (dot, wrong) = classify_pair(low, high);
            dots |= u64::from(dot & 0xFF) << low_at | u64::from(dot >> 8) << high_at;
            bad |= u64::from(wrong);
        }
    } else if len > 0 {
        let mut word = 0u64;
        for (i, &b) in name.iter().enumerate() {
            word |= u64::from(b) << (8 * i);
        }
        fold(0, word);
        let (dot, wrong) = classify_pair(word, 0);
        dots = u64::from(dot);
        bad = u64::from(wrong) & ((1 << len) - 1);
    } else {
        return None;
    }
    // An empty label: a dot first, last, or next to another; a label of 64: no dot in 64 bytes.
    if bad != 0 || dots & 1 != 0 || (dots >> (len - 1)) & 1 != 0 || dots & (dots >> 1) != 0 {
        return None;
    }
    if len == SHORT_NAME && dots == 0 {
        return None;
    }
    Some(dots)
}

/// Takes the last label start out of a dot mask: one past the highest dot, or 0 when no dot is
/// left.
#[inline(always)]
fn pop_label_start(dots: &mut u64) -> usize {
    if *dots == 0 {
        return 0;
    }
    let top = 63 - dots.leading_zeros() as usize;
    *dots &= !(1 << top);
    top + 1
}

/// A name item waiting to be compiled.
#[derive(Debug, Clone, Copy)]
struct Item<P> {
    hash: u64,
    /// Offset of the canonical name in the arena (a length byte, then the name).
    offset: u32,
    kind: NameKind,
    payload: P,
}

/// Collects name selectors; [`DomainSetBuilder::build`] compiles them.
///
/// The names go into the arena the compiled set keeps, in the order given, so that the build reads
/// the arena front to back instead of gathering a million names in hash order (on the VM we
/// measured, that gather was a third of the compile).
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

/// A kept item as the build sorts it: everything the grouping needs, so that it never reads the
/// items themselves. 32 bytes.
#[derive(Debug, Clone, Copy)]
struct Key {
    hash: u64,
    id: i64,
    /// Offset of the item's name in the arena.
    offset: u32,
    /// Index of the item.
    item: u32,
    /// `kind * 2 + !allow`: the item's place among the six candidates of a name, in the order the
    /// group is sorted (kind, then allow first).
    class: u8,
}

impl<P: Copy> DomainSetBuilder<P> {
    pub(crate) fn with_capacity(items: usize) -> Self {
        DomainSetBuilder { arena: Vec::with_capacity(items.saturating_mul(17)), items: Vec::with_capacity(items) }
    }

    /// Makes room for about `items` more names.
    pub(crate) fn reserve(&mut self, items: usize) {
        self.arena.reserve(items.saturating_mul(17));
        self.items.reserve(items);
    }

    /// Adds a canonical name (lowercase, no trailing dot, at most 253 octets).
    pub(crate) fn push(&mut self, name: &str, kind: NameKind, payload: P) {
        let bytes = name.as_bytes();
        let Ok(len) = u8::try_from(bytes.len()) else { return };
        let Some(offset) = self.next_offset() else { return };
        self.arena.push(len);
        self.arena.extend_from_slice(bytes);
        self.items.push(Item { hash: name_hash(bytes), offset, kind, payload });
    }

    /// Adds a name as written (any case, optional trailing dot) when it is a well-formed ASCII name,
    /// validated and lowercased straight into the arena; false (nothing added) otherwise.
    pub(crate) fn push_ascii(&mut self, name: &[u8], kind: NameKind, payload: P) -> bool {
        let name = name.strip_suffix(b".").unwrap_or(name);
        let Some(offset) = self.next_offset().filter(|_| name.len() <= MAX_NAME_LEN) else { return false };
        // Lowercase into the arena first, then check and hash what was written in one pass.
        let at = offset as usize;
        self.arena.push(name.len() as u8);
        self.arena.extend(name.iter().map(|&b| CANONICAL[usize::from(b)]));
        let canonical = self.arena.get(at + 1..).unwrap_or_default();
        match checked_name_hash(canonical) {
            Some(hash) => {
                self.items.push(Item { hash, offset, kind, payload });
                true
            }
            None => {
                self.arena.truncate(at);
                false
            }
        }
    }

    /// Where the next name goes in the arena; `None` once arena offsets or item indexes would no
    /// longer fit their 32 bits.
    fn next_offset(&self) -> Option<u32> {
        u32::try_from(self.arena.len()).ok().filter(|&offset| offset < u32::MAX && self.items.len() < u32::MAX as usize)
    }

    /// Compiles the set. `rank` says whether an item is kept (`None`: skipped) and how it ranks;
    /// `make_entry` turns each kept item into an entry index, given its kind and the node (the
    /// offset of its name in the arena, see [`DomainSet::node_name`]). Entries are made in the
    /// order the items were pushed.
    pub(crate) fn build(
        self,
        rank: impl Fn(&P) -> Option<Rank>,
        mut make_entry: impl FnMut(&P, NameKind, u32) -> u32,
    ) -> (DomainSet, Dropped) {
        let DomainSetBuilder { arena, items } = self;
        let mut dropped = Dropped::default();
        let mut keys: Vec<Key> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match rank(&item.payload) {
                Some(r) => keys.push(Key {
                    hash: item.hash,
                    id: r.id,
                    offset: item.offset,
                    item: index as u32,
                    class: item.kind as u8 * 2 + u8::from(!r.allow),
                }),
                None => dropped.skipped += 1,
            }
        }
        // Hash order groups each name; within a name: kind, allow first, lowest id, first given.
        // Names are read only to break ties of hash.
        sort_by_hash(
            &mut keys,
            |key| key.hash,
            |a, b| {
                a.hash.cmp(&b.hash).then_with(|| {
                    arena_name(&arena, a.offset)
                        .cmp(arena_name(&arena, b.offset))
                        .then(a.class.cmp(&b.class))
                        .then(a.id.cmp(&b.id))
                        .then(a.item.cmp(&b.item))
                })
            },
        );

        // One node per name, in hash order. Its outcomes hold item indexes until the entries exist.
        let mut nodes: Vec<(u64, u32, Node)> = Vec::new();
        let mut winners = vec![0u64; items.len().div_ceil(64)];
        let mut start = 0;
        while start < keys.len() {
            let first = keys[start];
            // The names are compared (read) only on a tie of hash: reading each would cost a cache
            // miss per name. (Filling the slots reads each kept name once, in hash order, with the
            // names a few nodes ahead prefetched.)
            let same_name = |key: &Key| {
                key.hash == first.hash && arena_name(&arena, key.offset) == arena_name(&arena, first.offset)
            };
            let end = start + 1 + keys[start + 1..].iter().take_while(|key| same_name(key)).count();
            // The best item per class: the group is sorted so the first one is kept.
            let mut best: [Option<Key>; 6] = [None; 6];
            for key in &keys[start..end] {
                let slot = &mut best[usize::from(key.class)];
                if slot.is_some() {
                    dropped.duplicates += 1;
                } else {
                    *slot = Some(*key);
                    winners[key.item as usize / 64] |= 1 << (key.item % 64);
                }
            }
            let [exact_allow, exact_block, subtree_allow, subtree_block, subdomains_allow, subdomains_block] = best;
            let at_self = exact_allow.or(exact_block).or(subtree_allow).or(subtree_block).map_or(NO_ENTRY, |k| k.item);
            let lowest = |a: Option<Key>, b: Option<Key>| match (a, b) {
                (Some(x), Some(y)) => Some(if y.id < x.id { y } else { x }),
                (x, y) => x.or(y),
            };
            let below = lowest(subtree_allow, subdomains_allow)
                .or(lowest(subtree_block, subdomains_block))
                .map_or(NO_ENTRY, |k| k.item);
            nodes.push((first.hash, first.offset, Node { at_self, below }));
            start = end;
        }
        drop(keys);

        // Front to back over the items: the entries of the kept ones, and for the filter the hash of
        // every selector name and every proper ancestor of one.
        let mut entry_of = vec![NO_ENTRY; items.len()];
        let mut known: Vec<u64> = Vec::with_capacity(items.len() * 3);
        let mut node_depths = 0u128;
        for (index, item) in items.iter().enumerate() {
            if winners[index / 64] & (1 << (index % 64)) == 0 {
                continue;
            }
            entry_of[index] = make_entry(&item.payload, item.kind, item.offset);
            // Every name in the arena passed the label rules when it was pushed.
            let mut depth = 1;
            suffix_hashes(arena_name(&arena, item.offset), |ancestor| {
                known.push(ancestor);
                depth += 1;
            });
            known.push(item.hash);
            // At most 127 labels fit in 253 octets.
            node_depths |= 1u128 << depth.min(127);
        }
        drop(winners);
        let entry = |item: u32| entry_of.get(item as usize).copied().unwrap_or(NO_ENTRY);
        for (_, _, node) in &mut nodes {
            *node = Node { at_self: entry(node.at_self), below: entry(node.below) };
        }
        drop(entry_of);
        drop(items);

        sort_by_hash(&mut known, |&hash| hash, Ord::cmp);
        known.dedup();
        // About 8 filter bits per entry: with two bits per entry, 5% of unknown names pass.
        let words = (known.len() / 8).next_power_of_two().max(1);
        let filter_mask = words - 1;
        let mut filter = Table::filled(words, 0u64);
        for &hash in &known {
            let (word, bits) = filter_bits(hash, filter_mask);
            filter[word] |= bits;
        }
        drop(known);

        // Load factor 3/5: a hit probes 1.75 slots on average, a miss 3.6.
        let homes = (nodes.len() * 5 / 3).max(16) as u64;
        // Homes come in slot order: each node goes to its home or the slot after the one before,
        // whichever is later (linear probing, without a search). Then one empty slot at least.
        let end = nodes.iter().fold(0, |next: usize, &(hash, _, _)| next.max(home_slot(hash, homes)) + 1);
        let mut slots = Table::filled(end.max(homes as usize) + 1, EMPTY_SLOT);
        let mut next = 0;
        for (i, &(hash, offset, node)) in nodes.iter().enumerate() {
            // The names are read in hash order: ask for one a few nodes ahead.
            if let Some(&(_, ahead, _)) = nodes.get(i + 8) {
                if let Some(name) = arena.get(ahead as usize) {
                    prefetch(name);
                }
            }
            let pos = next.max(home_slot(hash, homes));
            slots[pos] = Slot::new(arena_name(&arena, offset), hash, offset, node);
            next = pos + 1;
        }
        drop(nodes);
        // The arena also holds the names of skipped and duplicate items: a few bytes each, against
        // a copy of every name. Then the spare bytes for whole-word reads.
        let mut arena = arena;
        arena.extend_from_slice(&[0; TAIL]);
        let arena = Table::new(arena);
        (DomainSet { slots, homes, arena, node_depths, filter, filter_mask }, dropped)
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

    proptest::proptest! {
        /// The builder's check-and-hash accepts what `DomainName::parse` accepts on ASCII input and
        /// hashes it as `name_hash` does.
        #[test]
        fn checked_hash_agrees_with_parse(name in "[a-zA-Z0-9_.~ -]{0,70}") {
            let folded: Vec<u8> = name.bytes().map(|b| CANONICAL[usize::from(b)]).collect();
            let parsed = crate::name::DomainName::parse(&name).ok().filter(|_| !name.ends_with('.'));
            let checked = checked_name_hash(&folded);
            proptest::prop_assert_eq!(checked.is_some(), parsed.is_some(), "{:?}", name);
            if let Some(parsed) = parsed {
                proptest::prop_assert_eq!(checked, Some(name_hash(parsed.as_str().as_bytes())));
            }
        }
    }

    proptest::proptest! {
        /// The word-at-a-time compare of a stored name with a query suffix agrees with a plain
        /// case-insensitive compare, whatever the lengths and wherever the suffix starts; the
        /// names share most of their bytes, so that a difference often falls in a masked word.
        #[test]
        fn stored_name_compare_agrees_with_bytes(
            stored in "[ab_-]{1,63}",
            upper in proptest::collection::vec(proptest::bool::ANY, 64),
            edit in 0usize..4,
            at in 0usize..64,
            before in 0usize..9,
        ) {
            // The query: the stored name in mixed case, then one byte changed, the last one
            // dropped or one more added (or none of these).
            let mut query: Vec<u8> = stored.bytes().zip(&upper).map(|(b, &up)| if up { b.to_ascii_uppercase() } else { b }).collect();
            match edit {
                1 => {
                    let at = at % query.len();
                    query[at] = if query[at] == b'_' { b'-' } else { b'_' };
                }
                2 if query.len() > 1 => {
                    query.pop();
                }
                3 => query.push(b'a'),
                _ => {}
            }
            let stored = stored.as_bytes();
            let start = before.min(SHORT_NAME - query.len());
            let mut arena = vec![0xEE, stored.len() as u8];
            arena.extend_from_slice(stored);
            arena.extend_from_slice(&[0; TAIL]);
            let mut folded: FoldBuf = [0xEE; PAD + SHORT_NAME + TAIL];
            for (to, &b) in folded.iter_mut().skip(PAD + start).zip(&query) {
                *to = b | 0x20;
            }
            let end = start + query.len();
            proptest::prop_assert_eq!(
                stored_name_is(&arena, 1, &folded, start, end),
                stored.eq_ignore_ascii_case(&query),
                "{:?} against {:?} at {}", stored, query, start
            );
        }
    }

    use proptest::strategy::Strategy;

    /// Selector names made of the bytes the word reader must tell apart.
    const SMALL: [(&str, NameKind); 5] = [
        ("a-b.c_d", NameKind::Subtree),
        ("x.a-b.c_d", NameKind::Exact),
        ("0z.a", NameKind::Subdomains),
        ("abcdefghi.jk", NameKind::Subtree),
        ("q.abcdefghijklmnopqrstuvwxyz0123456789-_.long", NameKind::Exact),
    ];

    /// A set of these names, each its own entry.
    fn set_of<'n>(names: impl IntoIterator<Item = (&'n str, NameKind)>) -> DomainSet {
        let mut builder = DomainSetBuilder::with_capacity(16);
        for (i, (name, kind)) in names.into_iter().enumerate() {
            builder.push(name, kind, i as u32);
        }
        builder.build(|&i| Some(Rank { allow: false, id: i64::from(i) }), |&i, _, _| i).0
    }

    fn small_set() -> DomainSet {
        set_of(SMALL)
    }

    /// [`SMALL`] plus a chain of nested names, so that a walk notes more probes than a lane holds.
    fn deep_set() -> DomainSet {
        let labels = ["j", "i", "h", "g", "f", "e", "d", "c", "b", "a"];
        let chain: Vec<(String, NameKind)> = (1..=labels.len())
            .map(|depth| {
                let name = labels[..depth].iter().rev().copied().collect::<Vec<_>>().join(".");
                (name, if depth % 2 == 0 { NameKind::Subtree } else { NameKind::Exact })
            })
            .collect();
        set_of(
            SMALL
                .into_iter()
                .chain(chain.iter().map(|(name, kind)| (name.as_str(), *kind)))
                .chain([("w.v.a-b.c_d", NameKind::Subtree)]),
        )
    }

    proptest::proptest! {
        /// The word-at-a-time reader accepts exactly what the byte-at-a-time one does, and both
        /// answer alike: bytes at the edges of every character class, in any case, any length.
        #[test]
        fn word_reader_agrees_with_byte_reader(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(&[
                        "a-b", "c_d", "x", "0z", "a", "abcdefghi", "jk", "q", "long", "ABCDEFGHI", "C_D", "-",
                        "abcdefghijklmnopqrstuvwxyz0123456789-_", "Z", "9", "", ".",
                    ][..]).prop_map(|s| s.as_bytes().to_vec()),
                    proptest::sample::select(&[
                        b'@', b'[', b'`', b'{', b'/', b':', b'^', b'~', 0, 0x0D, 0x0E, 0x10, 0x1F, 0x20, 0x2C,
                        0x7F, 0x80, 0xAD, 0xC3, 0xFF, b'A', b'z',
                    ][..]).prop_map(|b| vec![b]),
                ],
                0..24,
            ),
            dots in proptest::collection::vec(proptest::bool::ANY, 24),
            trailing_dot in proptest::bool::ANY,
        ) {
            let set = small_set();
            let mut input = Vec::new();
            for (part, dot) in parts.iter().zip(&dots) {
                input.extend_from_slice(part);
                if *dot {
                    input.push(b'.');
                }
            }
            if trailing_dot {
                input.push(b'.');
            }
            proptest::prop_assert_eq!(set.lookup_ascii(&input), set.lookup_long(&input), "{:?}", String::from_utf8_lossy(&input));
        }

        /// The same on valid names of any case and length up to the long path (most random byte
        /// strings are not names), against the selectors above and their subdomains.
        #[test]
        fn word_reader_agrees_on_valid_names(
            labels in proptest::collection::vec("[a-zA-Z0-9_-]{1,20}", 1..6),
            base in proptest::sample::select(&SMALL[..]),
            below in proptest::bool::ANY,
            upper in proptest::bool::ANY,
            trailing_dot in proptest::bool::ANY,
        ) {
            let set = small_set();
            let mut name = labels.join(".");
            if below {
                name = format!("{name}.{}", base.0);
            }
            if upper {
                name = name.to_ascii_uppercase();
            }
            if trailing_dot {
                name.push('.');
            }
            let input = name.as_bytes();
            let by_word = set.lookup_ascii(input);
            proptest::prop_assert_eq!(by_word, set.lookup_long(input), "{}", name);
            let valid = crate::name::validate_ascii(strip_root(input)).is_ok();
            proptest::prop_assert_eq!(by_word.is_some(), valid, "{}", name);
        }

        /// The lanes of `lookup_many` answer as `lookup_ascii` does, whatever their neighbours:
        /// names that stop early, walk far, need many probes, are too long or are not names.
        #[test]
        fn lookup_many_agrees_with_lookup_ascii(
            names in proptest::collection::vec(
                proptest::sample::select(&[
                    "x.a-b.c_d", "X.A-B.C_D.", "y.x.a-b.c_d", "c_d", "0z.a", "w.0z.a", "www.abcdefghi.jk",
                    "q.abcdefghijklmnopqrstuvwxyz0123456789-_.long", "a.b.c.d.e.f.g.h.i.j", "", ".", "a..b",
                    "nope.example", "a@b.c_d", "\u{e9}.jk",
                    "b.q.abcdefghijklmnopqrstuvwxyz0123456789-_.long", "z.y.x.w.v.a-b.c_d",
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.www.abcdefghi.jk",
                ][..]),
                0..100,
            ),
        ) {
            let set = deep_set();
            let inputs: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
            let mut many = vec![Some(7); inputs.len()];
            set.lookup_many(&inputs, &mut many);
            let one: Vec<Option<u32>> = inputs.iter().map(|i| set.lookup_ascii(i)).collect();
            proptest::prop_assert_eq!(many, one);
        }
    }

    proptest::proptest! {
        /// A set of exact names finds each of its names, in any case, and no other name: names
        /// that share their first [`INLINE`] bytes or all but their last byte, names on either side
        /// of the slot's limit (stored in the slot or in the arena), `_` (folded to 0x7F), and sets
        /// dense enough that probes run past many slots.
        #[test]
        fn exact_names_are_found_and_only_they(
            stored in proptest::collection::vec(boundary_name(), 1..120),
            others in proptest::collection::vec(boundary_name(), 0..40),
            upper in proptest::bool::ANY,
        ) {
            let stored: std::collections::BTreeSet<String> = stored.into_iter().collect();
            let set = set_of(stored.iter().map(|name| (name.as_str(), NameKind::Exact)));
            let entries: Vec<&String> = stored.iter().collect();
            for name in stored.iter().chain(&others) {
                let query = if upper { name.to_ascii_uppercase() } else { name.clone() };
                let expected = entries.iter().position(|&s| s == name).map_or(NO_ENTRY, |i| i as u32);
                proptest::prop_assert_eq!(set.lookup_ascii(query.as_bytes()), Some(expected), "{}", name);
                let mut many = [None];
                set.lookup_many(&[query.as_bytes()], &mut many);
                proptest::prop_assert_eq!(many[0], Some(expected), "{}", name);
            }
        }
    }

    /// The slot compare on names that differ in their first, second or third word only (or in
    /// length, or in `_` against `-`), asked for whole and as the suffix of a longer query, whose
    /// bytes before the suffix and after it must not count.
    #[test]
    fn slot_compare_reads_every_word() {
        let names = [
            "a",
            "b",
            "abcdefgh",
            "abcdefghi",
            "bbcdefghijklmnop",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "abcdefghijklmnopq",
            "abcdefghijklmnopqrstuvw",
            "abcdefghijklmnopqrstuvwx",
            "abcdefghijklmnopqrstuvwy",
            "a_c.efghijklmnopqrstuvwx",
            "a-c.efghijklmnopqrstuvwx",
        ];
        let node = Node { at_self: 1, below: NO_ENTRY };
        for stored in names {
            let slot = Slot::new(stored.as_bytes(), 0, 0, node);
            for query in names {
                for prefix in ["", "zz.", "0123456789.abc."] {
                    let input = format!("{prefix}{query}");
                    let mut buf: FoldBuf = [0u8; PAD + SHORT_NAME + TAIL];
                    assert!(fold_short(input.to_ascii_uppercase().as_bytes(), &mut buf).is_some(), "{input}");
                    let want = inline_words(&buf, prefix.len(), query.len());
                    assert_eq!(slot.holds(&want), stored == query, "{stored} against {input}");
                }
            }
        }
    }

    /// A name of 1-4 labels, from labels that make names of 1 to about 60 bytes, many of them
    /// sharing long beginnings (`abcdefghijklmnopqrstuvw` is 23 bytes; with a dot and a label
    /// after it the name crosses [`INLINE`]).
    fn boundary_name() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::sample::select(
                &["a", "b_", "abcdefghijklmnopqrstuvw", "abcdefghijklmnopqrstuvwx", "x-0", "q"][..],
            ),
            1..=4,
        )
        .prop_map(|labels| labels.join("."))
    }

    /// Names with fewer and with more candidate suffixes than a walk notes before it probes them
    /// (the chain of `deep_set` has a selector name at every depth) answer alike through the
    /// word reader and the byte reader, and as the chain's selectors say.
    #[test]
    fn names_with_more_candidates_than_one_round_of_probes() {
        let set = deep_set();
        let labels = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let mut blocked = 0;
        for depth in 1..=labels.len() {
            let chain = labels[labels.len() - depth..].join(".");
            for name in [chain.clone(), format!("x.{chain}"), format!("y.x.{chain}"), format!("{chain}.zz")] {
                let answer = set.lookup_ascii(name.as_bytes());
                assert_eq!(answer, set.lookup_long(name.as_bytes()), "{name}");
                blocked += usize::from(answer.is_some_and(|e| e != NO_ENTRY));
            }
        }
        // Every chain name, and the names below the subtrees (even depths) and below them.
        assert_eq!(blocked, 10 + 2 * 9, "{blocked}");
        assert!(labels.len() > 2 * MAX_PROBES, "the chain no longer needs several rounds of probes");
    }

    #[test]
    fn word_reader_edges() {
        let set = small_set();
        for (input, expected) in [
            (&b"x.a-b.c_d"[..], Some(1)),
            (b"X.A-B.C_D.", Some(1)),
            (b"y.x.a-b.c_d", Some(0)),
            (b"c_d", Some(NO_ENTRY)),
            (b"0z.a", Some(NO_ENTRY)),
            (b"w.0z.a", Some(2)),
            (b"www.abcdefghi.jk", Some(3)),
            (b"q.abcdefghijklmnopqrstuvwxyz0123456789-_.long", Some(4)),
            (b"Q.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.LONG.", Some(4)),
            (b"", None),
            (b".", None),
            (b"a..b", None),
            (b".a", None),
            (b"a.b..", None),
            (b"a\rb.c_d", None),
            (b"ab\x0e.a", None),
            (b"abc@def.jk", None),
            (b"abcdefgh[.jk", None),
            (b"abcdefgh\xc3\xa9.jk", None),
        ] {
            assert_eq!(set.lookup_ascii(input), expected, "{:?}", String::from_utf8_lossy(input));
        }
        // Labels of 63 and 64 octets, names of 64 and 65 bytes (the long path).
        let l63 = "a".repeat(63);
        let l64 = "a".repeat(64);
        assert_eq!(set.lookup_ascii(l63.as_bytes()), Some(NO_ENTRY));
        assert_eq!(set.lookup_ascii(l64.as_bytes()), None);
        assert_eq!(set.lookup_ascii(format!("{l63}.").as_bytes()), Some(NO_ENTRY));
        assert_eq!(set.lookup_ascii(format!("{l63}.b").as_bytes()), Some(NO_ENTRY));
        assert_eq!(set.lookup_ascii(format!("{l64}.b").as_bytes()), None);
        assert_eq!(set.lookup_ascii(format!("q.{}.w.0z.a", "b".repeat(60)).as_bytes()), Some(2));

        // Stored names longer than a short name (the long path compares them word by word too),
        // one of them last in the arena: found in any case, not confused with a name one byte
        // longer or shorter, or differing in its last byte.
        let long = format!("{}.{}.long", "c".repeat(50), "d".repeat(40));
        let last = format!("x.{}.last", "e".repeat(60));
        let set =
            set_of([(long.as_str(), NameKind::Exact), ("s.long", NameKind::Exact), (last.as_str(), NameKind::Exact)]);
        assert_eq!(set.lookup_ascii(long.as_bytes()), Some(0));
        assert_eq!(set.lookup_ascii(long.to_uppercase().as_bytes()), Some(0));
        assert_eq!(set.lookup_ascii(last.as_bytes()), Some(2));
        assert_eq!(set.lookup_ascii(format!("c{long}").as_bytes()), Some(NO_ENTRY));
        assert_eq!(set.lookup_ascii(long.replacen('c', "", 1).as_bytes()), Some(NO_ENTRY));
        assert_eq!(set.lookup_ascii(long.replace(".long", ".lonh").as_bytes()), Some(NO_ENTRY));
        assert_eq!(set.lookup_ascii(format!("x{last}").as_bytes()), Some(NO_ENTRY));
    }

    #[test]
    fn bucket_sort_sorts_as_sort_does() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for len in [0, 1, 100, 5_000, 70_000] {
            // (hash, tie-breaker): some equal hashes, some hashes in the same bucket.
            let mut items: Vec<(u64, u32)> =
                (0..len).map(|i| (if i % 7 == 0 { 42 } else { next() >> (i % 3 * 20) }, next() as u32)).collect();
            let mut expected = items.clone();
            expected.sort_unstable();
            sort_by_hash(&mut items, |item| item.0, Ord::cmp);
            assert_eq!(items, expected, "{len} items");
        }
    }

    /// The sixteen-byte classifier (SSE2 on x86-64) agrees with the word-at-a-time one for every
    /// byte value at every position, among name bytes and among other bytes: on which bytes are
    /// not name characters always, and on the dots when all are.
    #[test]
    fn classify_pair_agrees_with_classify() {
        let words_of = |bytes: [u8; 16]| {
            let (low, high) = bytes.split_at(8);
            let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
            (word(low), word(high))
        };
        let mut names = 0;
        for background in [*b"ab.c-d_e9.fghi0z", [0x80; 16], [0; 16], *b"..............._"] {
            for at in 0..16 {
                for value in 0..=255u8 {
                    let mut bytes = background;
                    bytes[at] = value;
                    let (low, high) = words_of(bytes);
                    let (want_dots, want_bad) = classify_pair_by_words(low, high);
                    let (dots, bad) = classify_pair(low, high);
                    assert_eq!(bad, want_bad, "{bytes:02x?}");
                    // Where a byte is not a name character the name is refused, whatever its dots
                    // (the word form counts 0xAE as a dot, since it drops the high bits first).
                    if bad == 0 {
                        assert_eq!(dots, want_dots, "{bytes:02x?}");
                        names += 1;
                    }
                    // The word form itself, byte by byte.
                    let good = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
                    let by_bytes = |f: &dyn Fn(u8) -> bool| {
                        bytes.iter().enumerate().fold(0u32, |m, (i, &b)| m | u32::from(f(b)) << i)
                    };
                    assert_eq!(want_bad, by_bytes(&|b| !good(b)), "{bytes:02x?}");
                    if want_bad == 0 {
                        assert_eq!(want_dots, by_bytes(&|b| b == b'.'), "{bytes:02x?}");
                    }
                }
            }
        }
        assert!(names > 1000, "too few valid byte strings: {names}");
        // Case folding is the same too.
        assert_eq!(fold_word(u64::from_le_bytes(*b"AbZ-_.09")), classify(u64::from_le_bytes(*b"AbZ-_.09")).0);
    }

    #[test]
    fn fold_table_is_injective_on_name_bytes() {
        let mut seen = std::collections::HashSet::new();
        for b in (b'a'..=b'z').chain(b'0'..=b'9').chain([b'-', b'_', b'.']) {
            assert!(seen.insert(CANONICAL[b as usize]));
        }
        assert_eq!(CANONICAL[b'Q' as usize], b'q');
        assert_eq!(CANONICAL[b' ' as usize], 0);
        assert_eq!(CANONICAL[0xC3], 0);
    }
}
