//! Longest-prefix match as a lookup in sorted, non-overlapping intervals.
//!
//! Prefixes nest or are disjoint, so one sweep over them (sorted by network, shorter first) cuts the
//! key space into intervals that each carry the most specific prefix covering them: `bounds[i]` is
//! where interval `i` begins and its entry, side by side so that one cache line answers. A lookup
//! finds the last start not above the key. To make that cheap, a direct table over the top bits of
//! `key - lo` (the bits that vary between the first and last boundary) holds one word per bucket:
//! the answer itself when no interval starts inside the bucket (most buckets, so most lookups take
//! one cache miss), otherwise where the bucket's starts begin, which are then counted in a window
//! of four without branches (a crowded bucket is galloped through). One generic implementation
//! serves IPv6 (`u128`) and the IPv4 maps (`u32`) too sparse for `line_map`, which also reuses
//! [`intervals`].
//!
//! [`IntervalMap::lookup_many`] runs many lookups as a software pipeline, so that their cache
//! misses overlap.

use std::fmt::Debug;

use bawaba_wire::hint::prefetch_value as prefetch;

use crate::ruleset::table::Table;
use crate::ruleset::NO_ENTRY;

/// An unsigned address type.
pub(crate) trait Key: Copy + Ord + Debug + Default {
    /// Width in bits.
    const BITS: u32;
    /// log2 of the direct index's size relative to the number of bounds, measured on the 2-vCPU VM
    /// (29 Nov 2026, with direct words): IPv4 was fastest with two buckets per bound (8 MiB for
    /// 500,000 prefixes; a map that large now takes `line_map` instead, this serves the sparse
    /// ones), IPv6 with one (1 MiB for 100,000 prefixes; 2 was slower one by one).
    const INDEX_SCALE: i32;
    /// The last address of the prefix `network/len`.
    fn last(network: Self, len: u8) -> Self;
    /// `self + 1`, or `None` at the top of the key space.
    fn next(self) -> Option<Self>;
    /// Number of significant bits of `self - lo`.
    fn span_bits(self, lo: Self) -> u32;
    /// `(self - lo) >> shift`, for `self >= lo`, as a bucket number.
    fn bucket(self, lo: Self, shift: u32) -> usize;
    /// `lo + (bucket << shift)`, or `None` when it overflows.
    fn bucket_start(lo: Self, bucket: usize, shift: u32) -> Option<Self>;
}

macro_rules! impl_key {
    ($t:ty, $scale:expr) => {
        impl Key for $t {
            const BITS: u32 = <$t>::BITS;
            const INDEX_SCALE: i32 = $scale;
            #[inline(always)]
            fn last(network: Self, len: u8) -> Self {
                let host = <$t>::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                network | host
            }
            #[inline(always)]
            fn next(self) -> Option<Self> {
                self.checked_add(1)
            }
            #[inline(always)]
            fn span_bits(self, lo: Self) -> u32 {
                <$t>::BITS - (self - lo).leading_zeros()
            }
            #[inline(always)]
            fn bucket(self, lo: Self, shift: u32) -> usize {
                // The caller keeps the result below 2^22.
                ((self - lo) >> shift) as usize
            }
            #[inline(always)]
            fn bucket_start(lo: Self, bucket: usize, shift: u32) -> Option<Self> {
                let offset = <$t>::try_from(bucket).ok()?.checked_shl(shift)?;
                if shift > 0 && offset >> shift != <$t>::try_from(bucket).ok()? {
                    return None;
                }
                lo.checked_add(offset)
            }
        }
    };
}
impl_key!(u32, 1);
impl_key!(u128, 0);

/// Most buckets in the direct table (4M buckets, 16 MiB).
const MAX_INDEX_BITS: u32 = 22;

/// Addresses that `Ruleset::lookup_ips` sorts by family and hands to the family's map
/// (`Ipv4Map::lookup_many`, [`IntervalMap::lookup_many`]) at once.
pub(crate) const LANES: usize = 256;

/// Marks an index word that holds the answer itself.
const DIRECT: u32 = 1 << 31;

/// The compiled map from keys to entry indexes.
#[derive(Debug)]
pub(crate) struct IntervalMap<K: Key> {
    /// Interval starts, ascending (`bounds[0].0` is 0), with the entry of each interval or
    /// [`NO_ENTRY`].
    bounds: Table<(K, u32)>,
    /// One word per bucket: when no start falls inside bucket `b`, [`DIRECT`] and the entry of the
    /// interval that covers the whole bucket (the answer, with no second load); otherwise the number
    /// of starts below the bucket's first key (at least 1, since `bounds[0]` starts at 0).
    index: Table<u32>,
    /// First start after 0 (keys below it are in interval 0).
    lo: K,
    /// Last start (keys from it on are in the last interval).
    hi: K,
    shift: u32,
}

impl<K: Key> IntervalMap<K> {
    /// Builds the map from `(network, len, entry)` items sorted by network then length. Of items with
    /// the same network and length, the first is kept.
    pub(crate) fn build(items: Vec<(K, u8, u32)>) -> Self {
        let (starts, values) = intervals(items);
        Self::from_intervals(starts, values)
    }

    /// Builds the map from [`intervals`]' output.
    pub(crate) fn from_intervals(starts: Vec<K>, values: Vec<u32>) -> Self {
        let (lo, hi) = match (starts.get(1), starts.last()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => {
                // Nothing but interval 0: every key is below `lo` or at `hi`.
                let max = K::last(K::default(), 0);
                let bounds = Table::new(starts.into_iter().zip(values).collect());
                return IntervalMap { bounds, index: Table::new(vec![NO_ENTRY]), lo: max, hi: max, shift: 0 };
            }
        };
        let bound_bits = usize::BITS - starts.len().leading_zeros();
        let wanted_bits = bound_bits.saturating_add_signed(K::INDEX_SCALE).clamp(1, MAX_INDEX_BITS);
        let span = hi.span_bits(lo);
        let shift = span.saturating_sub(wanted_bits);
        let buckets = hi.bucket(lo, shift) + 1;
        // The number of starts below a bucket's first key, bucket by bucket (all of them past the
        // last bucket).
        let mut below = 0usize;
        let mut starts_below = |bucket: usize| {
            match K::bucket_start(lo, bucket, shift) {
                Some(first) => {
                    while below < starts.len() && starts[below] < first {
                        below += 1;
                    }
                }
                None => below = starts.len(),
            }
            below
        };
        // A bucket without a start of its own lies inside one interval: store its entry, when the
        // entry has a direct form (all do below 2^31 - 1 entries, 48 GiB of them); otherwise the
        // count. Counts are below 2^31 as well: there are at most two bounds per prefix.
        debug_assert!(starts.len() < DIRECT as usize, "{} interval bounds", starts.len());
        let mut index = Table::filled(buckets, 0u32);
        let mut this = starts_below(0);
        for (b, word) in index.iter_mut().enumerate() {
            let next = starts_below(b + 1);
            let direct = (this == next).then(|| values[this - 1]).filter(|&e| e == NO_ENTRY || e < DIRECT - 1);
            *word = direct.map_or(this as u32, |entry| DIRECT | entry);
            this = next;
        }
        let mut bounds = Table::filled(starts.len(), (K::default(), NO_ENTRY));
        for (bound, (&start, &value)) in bounds.iter_mut().zip(starts.iter().zip(&values)) {
            *bound = (start, value);
        }
        IntervalMap { bounds, index, lo, hi, shift }
    }

    /// The entry of the most specific prefix containing `key`, or [`NO_ENTRY`].
    #[inline]
    pub(crate) fn lookup(&self, key: K) -> u32 {
        let word = self.index_word(key);
        if word & DIRECT != 0 {
            // Most lookups end here: no load of a first start that a direct word does not need,
            // so that more of them fit in the CPU's window at once.
            return direct_entry(word);
        }
        self.resolve(key, word, self.first_start(word))
    }

    /// [`lookup`](Self::lookup) for many keys: `out[i]` gets the entry of `keys[i]` (`out` as long
    /// as `keys`; extra keys or slots are left alone).
    ///
    /// A software pipeline: while key `i` is resolved, the index word of key `i + NEAR` is read
    /// and the line of its bucket's first start asked for, and the index line of key `i + FAR`
    /// is asked for. Each access thus has several keys' worth of time to arrive, the misses of
    /// many keys are in flight at once, and the branches that depend on loaded data run on
    /// cached lines, so a mispredicted one costs a pipeline refill, not a wait for memory.
    pub(crate) fn lookup_many(&self, keys: &[K], out: &mut [u32]) {
        const NEAR: usize = 16;
        const FAR: usize = 3 * NEAR;
        let keys = keys.get(..out.len()).unwrap_or(keys);
        for &key in keys.iter().take(FAR) {
            self.prefetch_index(key);
        }
        // The index words of keys `i..i + NEAR`, at `j % NEAR` for key `j`.
        let mut words = [0u32; NEAR];
        for (word, &key) in words.iter_mut().zip(keys) {
            *word = self.index_word(key);
            self.prefetch_first(*word);
        }
        for (i, (out, &key)) in out.iter_mut().zip(keys).enumerate() {
            if let Some(&far) = keys.get(i + FAR) {
                self.prefetch_index(far);
            }
            let ring = &mut words[i % NEAR];
            let word = *ring;
            if let Some(&near) = keys.get(i + NEAR) {
                *ring = self.index_word(near);
                self.prefetch_first(*ring);
            }
            *out = self.resolve(key, word, self.first_start(word));
        }
    }

    /// Asks for the index line of `key` (the load [`index_word`](Self::index_word) makes).
    #[inline(always)]
    fn prefetch_index(&self, key: K) {
        if key >= self.lo && key < self.hi {
            if let Some(word) = self.bucket_word(key) {
                prefetch(word);
            }
        }
    }

    /// Asks for the line of the first start that `word` leads to (the load
    /// [`first_start`](Self::first_start) makes).
    #[inline(always)]
    fn prefetch_first(&self, word: u32) {
        if let Some(bound) = self.first_bound(word) {
            prefetch(bound);
        }
    }

    /// The index word for `key` (see [`IntervalMap::index`]). Keys below `lo` or from `hi` on get a
    /// count that leads [`resolve`](Self::resolve) to the first or the last interval: counting from
    /// bound 0 (which starts at 0) a key below `lo` passes only bound 0, and counting from the last
    /// bound a key from `hi` on passes only that one.
    #[inline(always)]
    fn index_word(&self, key: K) -> u32 {
        if key < self.lo {
            return 0;
        }
        if key >= self.hi {
            return self.bounds.len().saturating_sub(1) as u32;
        }
        self.bucket_word(key).copied().unwrap_or(NO_ENTRY)
    }

    /// The index word of `key`'s bucket, for a key from `lo` up to (not including) `hi`.
    #[inline(always)]
    fn bucket_word(&self, key: K) -> Option<&u32> {
        self.index.get(key.bucket(self.lo, self.shift))
    }

    /// The first start of a bucket: the load that brings its bounds into cache. A direct word
    /// loads bound 0 (always cached) instead, without a branch.
    #[inline(always)]
    fn first_start(&self, word: u32) -> K {
        self.first_bound(word).map_or(K::default(), |b| b.0)
    }

    /// The bound `word` leads to: the bucket's first, or bound 0 for a direct word.
    #[inline(always)]
    fn first_bound(&self, word: u32) -> Option<&(K, u32)> {
        self.bounds.get(if word & DIRECT != 0 { 0 } else { word as usize })
    }

    /// The entry for `key` from its index word and the bucket's first start.
    #[inline(always)]
    fn resolve(&self, key: K, word: u32, first: K) -> u32 {
        if word & DIRECT != 0 {
            return direct_entry(word);
        }
        // Starts from `word` on: those in this bucket (or the edge bound), then later ones, which
        // are above `key`.
        let from = word as usize;
        // Branch-free over a window of four: the bucket's length varies from key to key, and a
        // loop over it mispredicts its exit.
        let mut within = usize::from(first <= key);
        for j in 1..4 {
            within += usize::from(self.bounds.get(from + j).is_some_and(|b| b.0 <= key));
        }
        if within == 4 {
            // A crowded bucket (clustered prefixes): gallop, then search the last step.
            let mut step = 4;
            while self.bounds.get(from + 2 * step - 1).is_some_and(|b| b.0 <= key) {
                step *= 2;
            }
            let rest = self.bounds.get(from + step..(from + 2 * step).min(self.bounds.len())).unwrap_or_default();
            within = step + rest.partition_point(|b| b.0 <= key);
        }
        // A bucket's count is at least 1 (bound 0 starts at 0, below any bucket), and the edge
        // words count from a bound at or below the key, so `within` or `from` is at least 1.
        self.bounds.get((from + within).wrapping_sub(1)).map_or(NO_ENTRY, |b| b.1)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bounds.memory_bytes() + self.index.memory_bytes()
    }
}

/// Flattens `(network, len, entry)` items, sorted by network then length, into interval starts
/// (ascending, the first at 0) and the entry of each interval ([`NO_ENTRY`] where no prefix
/// covers it). Of items with the same network and length, the first is kept; neighbouring
/// intervals with the same entry are merged.
pub(crate) fn intervals<K: Key>(items: Vec<(K, u8, u32)>) -> (Vec<K>, Vec<u32>) {
    let mut starts: Vec<K> = vec![K::default()];
    let mut values: Vec<u32> = vec![NO_ENTRY];
    let mut emit = |at: K, value: u32| {
        if starts.last() == Some(&at) {
            if let Some(last) = values.last_mut() {
                *last = value;
            }
        } else {
            starts.push(at);
            values.push(value);
        }
    };
    // Enclosing prefixes of the current position: (last key, entry), innermost on top.
    let mut stack: Vec<(K, u32)> = Vec::with_capacity(K::BITS as usize + 1);
    let close_until = |stack: &mut Vec<(K, u32)>, emit: &mut dyn FnMut(K, u32), until: Option<K>| {
        while let Some(&(end, _)) = stack.last() {
            if until.is_some_and(|at| end >= at) {
                break;
            }
            stack.pop();
            let outer = stack.last().map_or(NO_ENTRY, |&(_, v)| v);
            if let Some(after) = end.next() {
                emit(after, outer);
            }
        }
    };
    let mut previous: Option<(K, u8)> = None;
    for (network, len, entry) in items {
        if previous == Some((network, len)) {
            continue;
        }
        previous = Some((network, len));
        close_until(&mut stack, &mut emit, Some(network));
        emit(network, entry);
        stack.push((K::last(network, len), entry));
    }
    close_until(&mut stack, &mut emit, None);

    // Merge neighbours with the same entry.
    let mut kept = 0;
    for i in 0..starts.len() {
        if i == 0 || values[i] != values[kept - 1] {
            starts[kept] = starts[i];
            values[kept] = values[i];
            kept += 1;
        }
    }
    starts.truncate(kept);
    values.truncate(kept);
    (starts, values)
}

/// The entry a [`DIRECT`] index word holds.
#[inline(always)]
fn direct_entry(word: u32) -> u32 {
    if word == NO_ENTRY {
        NO_ENTRY
    } else {
        word & !DIRECT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Looks `keys` up one by one and side by side; both must agree.
    fn lookup_all<K: Key>(map: &IntervalMap<K>, keys: &[K]) -> Vec<u32> {
        let one: Vec<u32> = keys.iter().map(|&k| map.lookup(k)).collect();
        let mut many = vec![0; keys.len()];
        map.lookup_many(keys, &mut many);
        assert_eq!(one, many, "lookup_many disagrees with lookup");
        one
    }

    #[test]
    fn nested_prefixes_flatten_to_intervals() {
        // 10.0.0.0/8 -> 1, 10.1.0.0/16 -> 2, 10.1.2.0/24 -> 3, 10.255.255.255/32 -> 4.
        let items = vec![(0x0A00_0000u32, 8, 1), (0x0A01_0000, 16, 2), (0x0A01_0200, 24, 3), (0x0AFF_FFFF, 32, 4)];
        let map = IntervalMap::build(items);
        let keys = [
            0x09FF_FFFF,
            0x0A00_0000,
            0x0A01_0001,
            0x0A01_02FF,
            0x0A01_0300,
            0x0A02_0000,
            0x0AFF_FFFE,
            0x0AFF_FFFF,
            0x0B00_0000,
            u32::MAX,
        ];
        assert_eq!(lookup_all(&map, &keys), [NO_ENTRY, 1, 2, 3, 2, 1, 1, 4, NO_ENTRY, NO_ENTRY]);
    }

    #[test]
    fn clustered_prefixes_make_long_buckets() {
        // 200 host routes in one /24 and one far away: the /24's bucket is galloped through.
        let mut items: Vec<(u32, u8, u32)> = (0..200).map(|i| (0x0A00_0000 + 2 * i, 32, i)).collect();
        items.push((0xF000_0000, 8, 999));
        let map = IntervalMap::build(items);
        let keys: Vec<u32> = (0..200).flat_map(|i| [0x0A00_0000 + 2 * i, 0x0A00_0000 + 2 * i + 1]).collect();
        let want: Vec<u32> = (0..200).flat_map(|i| [i, NO_ENTRY]).collect();
        assert_eq!(lookup_all(&map, &keys), want);
        assert_eq!(lookup_all(&map, &[0xF0FF_FFFF, 0x0900_0000]), [999, NO_ENTRY]);
    }

    #[test]
    fn buckets_without_a_start_hold_their_answer() {
        // A /8 with one /24 inside: most buckets lie wholly inside the /8 or outside it, and
        // answer from the index alone; the buckets around the /24's edges count starts.
        let map = IntervalMap::build(vec![(0x0A00_0000u32, 8, 1), (0x0A80_0000, 24, 2)]);
        assert!(map.index.iter().any(|&w| w & DIRECT != 0 && w != NO_ENTRY), "no direct word for the /8");
        assert!(map.index.iter().any(|&w| w & DIRECT == 0), "no counted bucket");
        let keys: Vec<u32> =
            (0..=0xFFu32).flat_map(|hi| [hi << 24, hi << 24 | 0x80_00FF, hi << 24 | 0xFF_FFFF]).collect();
        let want: Vec<u32> = (0..=0xFFu32)
            .flat_map(|hi| match hi {
                0x0A => [1, 2, 1],
                _ => [NO_ENTRY; 3],
            })
            .collect();
        assert_eq!(lookup_all(&map, &keys), want);
    }

    #[test]
    fn edges_of_the_key_space() {
        let map = IntervalMap::build(vec![(0u32, 0, 7), (0xFFFF_FFFF, 32, 8)]);
        assert_eq!(lookup_all(&map, &[0, 0xFFFF_FFFE, u32::MAX]), [7, 7, 8]);
        let empty = IntervalMap::<u128>::build(vec![]);
        assert_eq!(lookup_all(&empty, &[0, u128::MAX]), [NO_ENTRY, NO_ENTRY]);
        let top = IntervalMap::build(vec![(u128::MAX << 64, 64, 3)]);
        assert_eq!(lookup_all(&top, &[u128::MAX, (u128::MAX << 64) - 1]), [3, NO_ENTRY]);
    }
}
