//! Bounded reassembly of the first bytes a client sends on a TCP connection.
//!
//! Most ClientHellos and request heads arrive in one segment and are parsed in place, without
//! this module. When one does not (split over several segments, reordered, retransmitted), the
//! engine takes a [`StreamBuf`] from a fixed-size [`Pool`] and copies segments into it at their
//! stream offsets. Bytes past the buffer's capacity are dropped and counted, never grown into;
//! when the pool is empty the flow is judged on what it has (the engine counts it).

/// Bytes of client stream kept per flow being reassembled.
pub const STREAM_CAPACITY: usize = 4096;

/// Most separate byte ranges tracked while holes remain.
const MAX_RANGES: usize = 8;

/// A stream prefix being reassembled: bytes `[0, STREAM_CAPACITY)` of the client's stream.
pub struct StreamBuf {
    data: Vec<u8>,
    /// Received ranges `[start, end)`, sorted, disjoint and not touching.
    ranges: [(u16, u16); MAX_RANGES],
    count: usize,
}

/// What adding a segment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Stored (possibly partly: bytes past the capacity are cut).
    Stored,
    /// Nothing new (a retransmission of stored bytes) or entirely past the capacity.
    Nothing,
    /// Too many holes to track; the segment was not stored.
    TooFragmented,
}

impl StreamBuf {
    fn new() -> Self {
        StreamBuf { data: vec![0; STREAM_CAPACITY], ranges: [(0, 0); MAX_RANGES], count: 0 }
    }

    fn clear(&mut self) {
        self.count = 0;
    }

    /// Copies `bytes` to stream offset `offset`. Overlaps keep the first copy's bytes
    /// (retransmissions carry the same bytes; a middlebox that rewrites them is not trusted more).
    pub fn add(&mut self, offset: usize, bytes: &[u8]) -> Added {
        if offset >= STREAM_CAPACITY || bytes.is_empty() {
            return Added::Nothing;
        }
        let end = (offset + bytes.len()).min(STREAM_CAPACITY);
        let (start, end) = (offset as u16, end as u16);
        // Copy only into the gaps, so earlier bytes win.
        let mut new_bytes = false;
        for i in 0..=self.count {
            // The gaps are [0, r0.start), [r0.end, r1.start), ..., [last.end, end).
            let gap_start = if i > 0 { self.ranges[i - 1].1 } else { 0 };
            let gap_end = if i < self.count { self.ranges[i].0 } else { end };
            let (a, b) = (gap_start.max(start), gap_end.min(end));
            if a < b {
                let (a, b) = (usize::from(a), usize::from(b));
                self.data[a..b].copy_from_slice(&bytes[a - offset..b - offset]);
                new_bytes = true;
            }
        }
        if !new_bytes {
            return Added::Nothing;
        }
        // Merge [start, end) into the range list.
        let mut merged = [(0u16, 0u16); MAX_RANGES + 1];
        let mut n = 0;
        let mut cur = (start, end);
        let mut placed = false;
        for &(a, b) in &self.ranges[..self.count] {
            if b < cur.0 {
                merged[n] = (a, b);
                n += 1;
            } else if a > cur.1 {
                if !placed {
                    merged[n] = cur;
                    n += 1;
                    placed = true;
                }
                merged[n] = (a, b);
                n += 1;
            } else {
                cur = (cur.0.min(a), cur.1.max(b));
            }
        }
        if !placed {
            merged[n] = cur;
            n += 1;
        }
        if n > MAX_RANGES {
            return Added::TooFragmented;
        }
        self.ranges[..n].copy_from_slice(&merged[..n]);
        self.count = n;
        Added::Stored
    }

    /// The bytes received contiguously from offset 0.
    pub fn contiguous(&self) -> &[u8] {
        match self.ranges[..self.count].first() {
            Some(&(0, end)) => &self.data[..usize::from(end)],
            _ => &[],
        }
    }

    /// True when the contiguous prefix fills the whole capacity.
    pub fn is_full(&self) -> bool {
        self.contiguous().len() == STREAM_CAPACITY
    }
}

/// What a [`Pool`] holds: made once, cleared for every reuse.
pub trait Reusable {
    /// A new, empty item.
    fn fresh() -> Self;
    /// Empties a returned item for its next flow.
    fn clear(&mut self);
}

impl Reusable for StreamBuf {
    fn fresh() -> Self {
        StreamBuf::new()
    }
    fn clear(&mut self) {
        StreamBuf::clear(self);
    }
}

impl Reusable for Box<bawaba_wire::quic::CryptoReassembly> {
    fn fresh() -> Self {
        Box::new(bawaba_wire::quic::CryptoReassembly::new())
    }
    fn clear(&mut self) {
        bawaba_wire::quic::CryptoReassembly::clear(self);
    }
}

/// A fixed number of buffers, handed out by index and allocated on first use.
pub struct Pool<T> {
    bufs: Vec<T>,
    free: Vec<u32>,
    limit: usize,
}

impl<T: Reusable> Pool<T> {
    /// A pool of at most `limit` buffers.
    pub fn new(limit: usize) -> Self {
        Pool { bufs: Vec::new(), free: Vec::new(), limit }
    }

    /// Takes an empty buffer, or `None` if all are in use.
    pub fn take(&mut self) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            self.bufs[i as usize].clear();
            return Some(i);
        }
        if self.bufs.len() < self.limit {
            self.bufs.push(T::fresh());
            return Some((self.bufs.len() - 1) as u32);
        }
        None
    }

    /// Returns a buffer.
    pub fn give_back(&mut self, slot: u32) {
        debug_assert!(!self.free.contains(&slot), "slot returned twice");
        self.free.push(slot);
    }

    /// The buffer at `slot`.
    pub fn get(&self, slot: u32) -> &T {
        &self.bufs[slot as usize]
    }

    /// The buffer at `slot`, mutably.
    pub fn get_mut(&mut self, slot: u32) -> &mut T {
        &mut self.bufs[slot as usize]
    }

    /// Buffers in use.
    pub fn in_use(&self) -> usize {
        self.bufs.len() - self.free.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn in_order_reordered_and_retransmitted() {
        let data: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
        let mut b = StreamBuf::new();
        assert_eq!(b.add(200, &data[200..400]), Added::Stored);
        assert!(b.contiguous().is_empty());
        assert_eq!(b.add(0, &data[..100]), Added::Stored);
        assert_eq!(b.contiguous(), &data[..100]);
        assert_eq!(b.add(0, &data[..100]), Added::Nothing);
        assert_eq!(b.add(50, &data[50..250]), Added::Stored);
        assert_eq!(b.contiguous(), &data[..400]);
        assert_eq!(b.add(400, &data[400..600]), Added::Stored);
        assert_eq!(b.contiguous(), &data[..600]);
    }

    #[test]
    fn first_copy_wins_on_overlap() {
        let mut b = StreamBuf::new();
        b.add(0, b"abcd");
        b.add(2, b"XXYY");
        assert_eq!(b.contiguous(), b"abcdYY");
    }

    #[test]
    fn capacity_and_hole_limits() {
        let mut b = StreamBuf::new();
        assert_eq!(b.add(STREAM_CAPACITY, b"x"), Added::Nothing);
        assert_eq!(b.add(STREAM_CAPACITY - 2, b"xyz"), Added::Stored);
        for i in 0..7 {
            assert_eq!(b.add(100 * (i + 1), b"h"), Added::Stored);
        }
        assert_eq!(b.add(50, b"h"), Added::TooFragmented);
        assert_eq!(b.add(0, &vec![1; STREAM_CAPACITY]), Added::Stored);
        assert!(b.is_full());
    }

    #[test]
    fn against_a_naive_model() {
        // Every order of 6 overlapping segments gives the same stream as a byte-map model.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
        let segs = [(0, 50), (40, 90), (100, 160), (150, 220), (90, 101), (220, 300)];
        let mut order: Vec<usize> = (0..segs.len()).collect();
        for round in 0..720 {
            // Next permutation.
            let mut b = StreamBuf::new();
            let mut have = vec![false; 300];
            for &i in &order {
                let (s, e) = segs[i];
                b.add(s, &data[s..e]);
                have[s..e].iter_mut().for_each(|h| *h = true);
                let want = have.iter().position(|h| !h).unwrap_or(300);
                assert_eq!(b.contiguous(), &data[..want], "round {round} order {order:?}");
            }
            let k = order.windows(2).rposition(|w| w[0] < w[1]);
            let Some(k) = k else { break };
            let l = order.iter().rposition(|&x| x > order[k]).unwrap();
            order.swap(k, l);
            order[k + 1..].reverse();
        }
    }

    #[test]
    fn pool_is_bounded() {
        let mut p = Pool::<StreamBuf>::new(2);
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        assert!(p.take().is_none());
        p.get_mut(a).add(0, b"x");
        p.give_back(a);
        let c = p.take().unwrap();
        assert_eq!(c, a);
        assert!(p.get(c).contiguous().is_empty());
        assert_eq!(p.in_use(), 2);
        let _ = b;
    }
}
