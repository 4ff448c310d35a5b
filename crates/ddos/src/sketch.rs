//! Space-saving heavy hitters (Metwally, Agrawal, El Abbadi, "Efficient Computation of
//! Frequent and Top-k Elements in Data Streams", ICDT 2005): a fixed number of counters
//! whatever the number of distinct keys. Any key with more than `total / capacity` of the
//! weight is guaranteed to hold a counter, and each counter knows how much it may overstate.

/// One counter, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counter<K> {
    /// The key.
    pub key: K,
    /// Weight counted for it; never less than its true weight.
    pub count: u64,
    /// How much of `count` may belong to keys it replaced: `count - error` is a lower bound.
    pub error: u64,
}

impl<K> Counter<K> {
    /// The weight the key certainly had.
    pub fn guaranteed(&self) -> u64 {
        self.count - self.error
    }
}

/// A key the sketch can hold: a 16-bit tag is compared first, the key only when tags match.
pub(crate) trait SketchKey: Copy + Eq + Ord {
    /// A cheap summary of the key; equal keys have equal tags.
    fn tag(self) -> u16;
}

impl SketchKey for u128 {
    #[inline]
    fn tag(self) -> u16 {
        let folded = (self as u64) ^ ((self >> 64) as u64);
        (folded ^ (folded >> 16) ^ (folded >> 32) ^ (folded >> 48)) as u16
    }
}

impl SketchKey for u16 {
    #[inline]
    fn tag(self) -> u16 {
        self
    }
}

/// A space-saving sketch with a fixed capacity: a column of 16-bit tags, scanned without
/// branches, and the counters. Linear scans: meant for a few dozen counters.
#[derive(Debug, Clone)]
pub(crate) struct SpaceSaving<K> {
    tags: Vec<u16>,
    slots: Vec<Counter<K>>,
    capacity: usize,
}

impl<K: SketchKey> SpaceSaving<K> {
    /// An empty sketch of `capacity` counters (at least 1). Allocates on first use.
    pub fn new(capacity: usize) -> SpaceSaving<K> {
        SpaceSaving { tags: Vec::new(), slots: Vec::new(), capacity: capacity.max(1) }
    }

    /// The counter of `key`, if it has one.
    #[inline]
    fn find(&self, key: K) -> Option<usize> {
        let tag = key.tag();
        for (c, chunk) in self.tags.chunks(32).enumerate() {
            // Branch-free over the chunk, then only the matching tags are checked.
            let mut mask = 0u32;
            for (i, &t) in chunk.iter().enumerate() {
                mask |= u32::from(t == tag) << i;
            }
            while mask != 0 {
                let i = c * 32 + mask.trailing_zeros() as usize;
                if self.slots.get(i).is_some_and(|s| s.key == key) {
                    return Some(i);
                }
                mask &= mask - 1;
            }
        }
        None
    }

    /// Counts `weight` for `key`: its counter if it has one, else a free counter, else the
    /// smallest counter is taken over (its count carried as the new key's error).
    #[inline]
    pub fn add(&mut self, key: K, weight: u64) {
        if let Some(slot) = self.find(key).and_then(|i| self.slots.get_mut(i)) {
            slot.count = slot.count.saturating_add(weight);
            return;
        }
        if self.slots.len() < self.capacity {
            if self.slots.capacity() == 0 {
                self.tags.reserve_exact(self.capacity);
                self.slots.reserve_exact(self.capacity);
            }
            self.tags.push(key.tag());
            self.slots.push(Counter { key, count: weight, error: 0 });
            return;
        }
        let mut min = 0;
        let mut min_count = u64::MAX;
        for (i, s) in self.slots.iter().enumerate() {
            if s.count < min_count {
                min_count = s.count;
                min = i;
            }
        }
        if let (Some(t), Some(s)) = (self.tags.get_mut(min), self.slots.get_mut(min)) {
            *t = key.tag();
            *s = Counter { key, count: min_count.saturating_add(weight), error: min_count };
        }
    }

    /// The counters.
    pub fn counters(&self) -> impl Iterator<Item = Counter<K>> + '_ {
        self.slots.iter().copied()
    }

    /// Adds every key another sketch is sure of, with its guaranteed weight.
    pub fn merge(&mut self, other: &SpaceSaving<K>) {
        for c in other.counters() {
            if c.guaranteed() > 0 {
                self.add(c.key, c.guaranteed());
            }
        }
    }

    /// Up to `n` keys with the largest guaranteed weight, largest first (ties by key), keys
    /// with none left out.
    pub fn top(&self, n: usize) -> Vec<(K, u64)> {
        let mut top: Vec<(K, u64)> =
            self.counters().filter(|c| c.guaranteed() > 0).map(|c| (c.key, c.guaranteed())).collect();
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(n);
        top
    }

    /// Forgets every key, keeping the allocation.
    pub fn clear(&mut self) {
        self.tags.clear();
        self.slots.clear();
    }

    /// Counters in use (never more than the capacity).
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn exact_while_under_capacity() {
        let mut s = SpaceSaving::new(4);
        for (k, w) in [(1u128, 5), (2, 3), (1, 1), (3, 9)] {
            s.add(k, w);
        }
        assert_eq!(s.top(10), vec![(3, 9), (1, 6), (2, 3)]);
        assert_eq!(s.top(1), vec![(3, 9)]);
        s.clear();
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn heavy_hitters_survive_a_million_distinct_keys_and_bounds_hold() {
        let mut s = SpaceSaving::new(20);
        let mut truth: HashMap<u128, u64> = HashMap::new();
        let mut x = 0x9e37_79b9u32;
        for i in 0..1_000_000u32 {
            // Three heavy keys take 15%, 10% and 8% of the records; the rest are distinct.
            let key = match i % 100 {
                0..=14 => 1,
                15..=24 => 2,
                25..=32 => 3,
                _ => {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x | 0x1000
                }
            };
            s.add(u128::from(key), 1);
            if key < 4 {
                *truth.entry(u128::from(key)).or_default() += 1;
            }
            assert!(s.len() <= 20);
        }
        let top = s.top(3);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(s.counters().all(|c| c.guaranteed() <= c.count));
        for c in s.counters() {
            if let Some(&t) = truth.get(&c.key) {
                assert!(c.guaranteed() <= t && t <= c.count, "{c:?} true {t}");
            }
        }
    }

    #[test]
    fn keys_with_equal_tags_stay_apart() {
        let mut s = SpaceSaving::new(40);
        // 40 keys, all with tag 0: the tag only narrows, the key decides.
        for i in 0..40u128 {
            let key = i << 64 | i | i << 16 | i << 80;
            assert_eq!(key.tag(), 0);
            s.add(key, i as u64 + 1);
            s.add(key, 1);
        }
        assert_eq!(s.len(), 40);
        assert_eq!(
            s.top(2),
            vec![(39 << 64 | 39 | 39 << 16 | 39 << 80, 41), (38 << 64 | 38 | 38 << 16 | 38 << 80, 40)]
        );
    }

    #[test]
    fn merge_adds_guaranteed_weights() {
        let mut a = SpaceSaving::new(2);
        a.add(7u16, 10);
        let mut b = SpaceSaving::new(2);
        b.add(7u16, 4);
        b.add(8, 1);
        b.add(9, 1); // takes over 8's counter: count 2, error 1, 1 guaranteed
        a.merge(&b);
        assert_eq!(a.top(5), vec![(7, 14), (9, 1)]);
    }
}
