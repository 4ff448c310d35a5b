//! Longest-prefix match as a lookup in sorted, non-overlapping intervals.
//!
//! Prefixes nest or are disjoint, so one sweep over them (sorted by network, shorter first) cuts the
//! key space into intervals that each carry the most specific prefix covering them: `bounds[i]` is
//! where interval `i` begins and its entry, side by side so that one cache line answers. A lookup
//! finds the last start not above the key. To make that cheap, a direct table over the top bits of
//! `key - lo` (the bits that vary between the first and last boundary) narrows the search to one
//! bucket of a few bounds (IPv4: half a bound per bucket on average, IPv6: four), counted without
//! branches; a bucket longer than 16 (clustered prefixes) is binary searched. One generic
//! implementation serves IPv4 (`u32`) and IPv6 (`u128`).

use std::fmt::Debug;
use std::mem::size_of;

use crate::ruleset::NO_ENTRY;

/// An unsigned address type.
pub(crate) trait Key: Copy + Ord + Debug + Default {
    /// Width in bits.
    const BITS: u32;
    /// log2 of the direct index's size relative to the number of bounds, measured on the 2-vCPU VM:
    /// IPv4 (8-byte bounds) is fastest with two buckets per bound (8 MiB for 500,000 prefixes),
    /// IPv6 (32-byte bounds) with four bounds per bucket.
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
impl_key!(u128, -2);

/// Most buckets in the direct table (4M buckets, 16 MiB).
const MAX_INDEX_BITS: u32 = 22;

/// The compiled map from keys to entry indexes.
#[derive(Debug)]
pub(crate) struct IntervalMap<K> {
    /// Interval starts, ascending (`bounds[0].0` is 0), with the entry of each interval or
    /// [`NO_ENTRY`].
    bounds: Vec<(K, u32)>,
    /// `index[b]` = number of starts below the first key of bucket `b`; one extra at the end.
    index: Vec<u32>,
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

        let (lo, hi) = match (starts.get(1), starts.last()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => {
                // Nothing but interval 0: every key is below `lo` or at `hi`.
                let max = K::last(K::default(), 0);
                let bounds = starts.into_iter().zip(values).collect();
                return IntervalMap { bounds, index: vec![0, 0], lo: max, hi: max, shift: 0 };
            }
        };
        let bound_bits = usize::BITS - starts.len().leading_zeros();
        let wanted_bits = bound_bits.saturating_add_signed(K::INDEX_SCALE).clamp(1, MAX_INDEX_BITS);
        let span = hi.span_bits(lo);
        let shift = span.saturating_sub(wanted_bits);
        let buckets = hi.bucket(lo, shift) + 1;
        let mut index = Vec::with_capacity(buckets + 1);
        let mut below = 0usize;
        for bucket in 0..=buckets {
            match K::bucket_start(lo, bucket, shift) {
                Some(first) => {
                    while below < starts.len() && starts[below] < first {
                        below += 1;
                    }
                }
                None => below = starts.len(),
            }
            index.push(below as u32);
        }
        let bounds = starts.into_iter().zip(values).collect();
        IntervalMap { bounds, index, lo, hi, shift }
    }

    /// The entry of the most specific prefix containing `key`, or [`NO_ENTRY`].
    #[inline]
    pub(crate) fn lookup(&self, key: K) -> u32 {
        if key < self.lo {
            return self.bounds.first().map_or(NO_ENTRY, |b| b.1);
        }
        if key >= self.hi {
            return self.bounds.last().map_or(NO_ENTRY, |b| b.1);
        }
        let bucket = key.bucket(self.lo, self.shift);
        let (Some(&from), Some(&to)) = (self.index.get(bucket), self.index.get(bucket + 1)) else {
            return NO_ENTRY;
        };
        let (from, to) = (from as usize, to as usize);
        let bucket = self.bounds.get(from..to).unwrap_or_default();
        let within = if bucket.len() <= 16 {
            bucket.iter().map(|b| usize::from(b.0 <= key)).sum()
        } else {
            bucket.partition_point(|b| b.0 <= key)
        };
        // `bounds[0].0 == 0 <= key`, so at least one start is at or below the key.
        self.bounds.get((from + within).wrapping_sub(1)).map_or(NO_ENTRY, |b| b.1)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bounds.capacity() * size_of::<(K, u32)>() + self.index.capacity() * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_prefixes_flatten_to_intervals() {
        // 10.0.0.0/8 -> 1, 10.1.0.0/16 -> 2, 10.1.2.0/24 -> 3, 10.255.255.255/32 -> 4.
        let items = vec![(0x0A00_0000u32, 8, 1), (0x0A01_0000, 16, 2), (0x0A01_0200, 24, 3), (0x0AFF_FFFF, 32, 4)];
        let map = IntervalMap::build(items);
        assert_eq!(map.lookup(0x09FF_FFFF), NO_ENTRY);
        assert_eq!(map.lookup(0x0A00_0000), 1);
        assert_eq!(map.lookup(0x0A01_0001), 2);
        assert_eq!(map.lookup(0x0A01_02FF), 3);
        assert_eq!(map.lookup(0x0A01_0300), 2);
        assert_eq!(map.lookup(0x0A02_0000), 1);
        assert_eq!(map.lookup(0x0AFF_FFFE), 1);
        assert_eq!(map.lookup(0x0AFF_FFFF), 4);
        assert_eq!(map.lookup(0x0B00_0000), NO_ENTRY);
        assert_eq!(map.lookup(u32::MAX), NO_ENTRY);
    }

    #[test]
    fn clustered_prefixes_make_long_buckets() {
        // 200 host routes in one /24 and one far away: the /24's bucket is binary searched.
        let mut items: Vec<(u32, u8, u32)> = (0..200).map(|i| (0x0A00_0000 + 2 * i, 32, i)).collect();
        items.push((0xF000_0000, 8, 999));
        let map = IntervalMap::build(items);
        for i in 0..200 {
            assert_eq!(map.lookup(0x0A00_0000 + 2 * i), i);
            assert_eq!(map.lookup(0x0A00_0000 + 2 * i + 1), NO_ENTRY);
        }
        assert_eq!(map.lookup(0xF0FF_FFFF), 999);
        assert_eq!(map.lookup(0x0900_0000), NO_ENTRY);
    }

    #[test]
    fn edges_of_the_key_space() {
        let map = IntervalMap::build(vec![(0u32, 0, 7), (0xFFFF_FFFF, 32, 8)]);
        assert_eq!(map.lookup(0), 7);
        assert_eq!(map.lookup(0xFFFF_FFFE), 7);
        assert_eq!(map.lookup(u32::MAX), 8);
        let empty = IntervalMap::<u128>::build(vec![]);
        assert_eq!(empty.lookup(0), NO_ENTRY);
        assert_eq!(empty.lookup(u128::MAX), NO_ENTRY);
        let top = IntervalMap::build(vec![(u128::MAX << 64, 64, 3)]);
        assert_eq!(top.lookup(u128::MAX), 3);
        assert_eq!(top.lookup((u128::MAX << 64) - 1), NO_ENTRY);
    }
}
