//! The flow table's index: an open-addressing hash table of 8-byte slots, linear probing,
//! deletion by backward shift (no tombstones, so probe chains stay short under churn).
//!
//! A slot holds a slab position (plus one, so that 0 means empty) and the low 32 bits of the
//! flow's hash; the key itself lives only in the slab entry, which a lookup reads anyway. A lookup
//! touches one slot line and, on a hash match, the flow entry. Since a slot carries the bits its
//! home slot comes from, moving entries (the backward shift after a removal, growing) never reads
//! the slab: with a one-byte tag instead, every entry shifted after an expired flow cost a read of
//! its flow entry, a cache miss, to rehash its key. At most 3/4 full: 10.7 to 21.3 bytes a flow.

/// Most flows the index holds. It keeps the table within 2^25 slots, so that the hash bits a
/// slot keeps (32) always cover its home slot.
pub const MAX_ENTRIES: usize = (1 << 24) - 1;

const EMPTY: u64 = 0;

/// Slots of (low 32 bits of the hash) << 32 | (position + 1).
pub(super) struct Index {
    slots: Vec<u64>,
    mask: usize,
    len: usize,
}

/// The bits of `hash` a slot keeps: its home slot and its tag.
#[inline]
fn kept(hash: u64) -> u32 {
    hash as u32
}

#[inline]
fn slot(hash: u64, position: u32) -> u64 {
    debug_assert!((position as usize) < MAX_ENTRIES);
    (u64::from(kept(hash)) << 32) | (u64::from(position) + 1)
}

#[inline]
fn position(slot: u64) -> u32 {
    (slot as u32).wrapping_sub(1)
}

/// The hash bits a filled slot keeps.
#[inline]
fn kept_of(slot: u64) -> u32 {
    (slot >> 32) as u32
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
        self.slots.capacity() * std::mem::size_of::<u64>()
    }

    /// The home slot of an entry whose kept hash bits are `kept` (the table is at most 2^25
    /// slots, so they hold every bit of it).
    #[inline]
    fn home(&self, kept: u32) -> usize {
        kept as usize & self.mask
    }

    /// The position whose entry `is_key` accepts, among those filed under `hash`.
    #[inline]
    pub(super) fn find(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        let k = kept(hash);
        let mut i = self.home(k);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if kept_of(s) == k && is_key(position(s)) {
                return Some(position(s));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Asks the CPU to start loading the slot line where a lookup of `hash` begins.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(kept(hash))) {
            bawaba_wire::hint::prefetch_value(slot);
        }
    }

    /// Files `position` under `hash` (the caller knows it is not there).
    pub(super) fn insert(&mut self, hash: u64, position: u32) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(slot(hash, position));
        self.len += 1;
    }

    /// Puts the filled slot `s` in the first empty slot from its home on.
    fn place(&mut self, s: u64) {
        let mut i = self.home(kept_of(s));
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = s;
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        let buckets = old.len() * 2;
        self.slots = vec![EMPTY; buckets];
        self.mask = buckets - 1;
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            self.place(s);
        }
    }

    /// Unfiles every entry.
    pub(super) fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.len = 0;
    }

    /// The slot index holding `position` filed under `hash`.
    fn locate(&self, hash: u64, position: u32) -> Option<usize> {
        let mut i = self.home(kept(hash));
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
    /// the hole, so lookups never need tombstones; their slots give their home slots.
    pub(super) fn remove(&mut self, hash: u64, position: u32) -> bool {
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
                let home = self.home(kept_of(s));
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
                    assert!(index.remove(hash(k), p));
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
                index.insert(hash(k), p);
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
