//! The flow table's index: an open-addressing hash table of 4-byte slots, linear probing,
//! deletion by backward shift (no tombstones, so probe chains stay short under churn).
//!
//! A slot holds a slab position (24 bits, plus one so that 0 means empty) and an 8-bit tag from
//! the hash; the key itself lives only in the slab entry, which a lookup reads anyway. A lookup
//! touches one slot line and, on a tag match, the flow entry: one cache miss fewer than an index
//! that keeps its control bytes and its buckets apart. At most 3/4 full: about 5.3 bytes a flow.

/// Most flows the index can address (24-bit positions).
pub const MAX_ENTRIES: usize = (1 << 24) - 1;

const EMPTY: u32 = 0;

/// Slots of (tag << 24) | (position + 1).
pub(super) struct Index {
    slots: Vec<u32>,
    mask: usize,
    len: usize,
}

#[inline]
fn tag(hash: u64) -> u32 {
    (hash >> 56) as u32
}

#[inline]
fn slot(hash: u64, position: u32) -> u32 {
    debug_assert!((position as usize) < MAX_ENTRIES);
    (tag(hash) << 24) | (position + 1)
}

#[inline]
fn position(slot: u32) -> u32 {
    (slot & 0x00ff_ffff) - 1
}

impl Index {
    /// An index for about `capacity` entries before it grows.
    pub(super) fn with_capacity(capacity: usize) -> Index {
        let buckets = (capacity.max(8) * 4 / 3).next_power_of_two();
        Index { slots: vec![EMPTY; buckets], mask: buckets - 1, len: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u32>()
    }

    /// The position whose entry `is_key` accepts, among those filed under `hash`.
    #[inline]
    pub(super) fn find(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mut i = hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if s >> 24 == t && is_key(position(s)) {
                return Some(position(s));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Asks the CPU to start loading the slot line where a lookup of `hash` begins.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(slot) = self.slots.get(hash as usize & self.mask) {
            bawaba_wire::hint::prefetch_value(slot);
        }
    }

    /// Files `position` under `hash` (the caller knows it is not there). `hash_of` gives the hash
    /// of any filed position, for growing.
    pub(super) fn insert(&mut self, hash: u64, position: u32, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow(&hash_of);
        }
        let mut i = hash as usize & self.mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = slot(hash, position);
        self.len += 1;
    }

    fn grow(&mut self, hash_of: &impl Fn(u32) -> u64) {
        let old = std::mem::take(&mut self.slots);
        let buckets = old.len() * 2;
        self.slots = vec![EMPTY; buckets];
        self.mask = buckets - 1;
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            let p = position(s);
            let mut i = hash_of(p) as usize & self.mask;
            while self.slots[i] != EMPTY {
                i = (i + 1) & self.mask;
            }
            self.slots[i] = s;
        }
    }

    /// Unfiles every entry.
    pub(super) fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.len = 0;
    }

    /// The slot index holding `position` filed under `hash`.
    fn locate(&self, hash: u64, position: u32) -> Option<usize> {
        let mut i = hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if self::position(s) == position {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Unfiles `position` (filed under `hash`). Later entries of the probe chain shift back into
    /// the hole, so lookups never need tombstones; `hash_of` gives their home slots.
    pub(super) fn remove(&mut self, hash: u64, position: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        let Some(mut hole) = self.locate(hash, position) else { return false };
        self.len -= 1;
        let mut j = hole;
        loop {
            self.slots[hole] = EMPTY;
            loop {
                j = (j + 1) & self.mask;
                let s = self.slots[j];
                if s == EMPTY {
                    return true;
                }
                let home = hash_of(self::position(s)) as usize & self.mask;
                // Entry j may move into the hole unless its home lies cyclically in (hole, j].
                let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
                if !stays {
                    self.slots[hole] = s;
                    hole = j;
                    break;
                }
            }
        }
    }

    /// The entry filed under `hash` at `from` is now at `to`.
    pub(super) fn relocate(&mut self, hash: u64, from: u32, to: u32) {
        if let Some(i) = self.locate(hash, from) {
            self.slots[i] = slot(hash, to);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A deliberately bad hash (many collisions in few home slots) against a HashMap model.
    #[test]
    fn matches_a_map_under_churn() {
        let hash = |k: u64| (k % 13).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (k << 56);
        let mut keys: Vec<u64> = Vec::new(); // position -> key
        let mut index = Index::with_capacity(4);
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut state = 12345u64;
        for step in 0..20_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let k = state % 500;
            if let Some(&p) = model.get(&k) {
                if step % 3 == 0 {
                    // Remove, moving the last position into the hole as the slab does.
                    let keys_ref = keys.clone();
                    assert!(index.remove(hash(k), p, |q| hash(keys_ref[q as usize])));
                    model.remove(&k);
                    let last = (keys.len() - 1) as u32;
                    keys.swap_remove(p as usize);
                    if p != last {
                        let moved = keys[p as usize];
                        index.relocate(hash(moved), last, p);
                        model.insert(moved, p);
                    }
                }
            } else {
                let p = keys.len() as u32;
                keys.push(k);
                let keys_ref = keys.clone();
                index.insert(hash(k), p, |q| hash(keys_ref[q as usize]));
                model.insert(k, p);
            }
            if step % 97 == 0 {
                for probe in 0..500u64 {
                    let found = index.find(hash(probe), |q| keys[q as usize] == probe);
                    assert_eq!(found, model.get(&probe).copied(), "step {step} key {probe}");
                }
                assert_eq!(index.len(), model.len());
            }
        }
    }
}
