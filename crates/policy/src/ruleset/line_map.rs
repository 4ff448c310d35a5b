//! IPv4 longest-prefix match in one cache line per lookup (two or more in a crowded bucket).
//!
//! [`IntervalMap`] answers a lookup from its index word when no interval starts inside the key's
//! bucket. Otherwise the word sends it on to the bucket's starts: a second cache line, whose address
//! is known only once the first has arrived, behind a branch on that word that no predictor can
//! learn. With 500,000 random prefixes two buckets in five are such. One lookup at a time, each
//! mispredicted branch throws away the other lookups the CPU had in flight.
//!
//! For IPv4 a bucket can carry its own starts. A [`Line`] is one 64-byte cache line that covers
//! `2^shift` consecutive addresses (`shift` at most 16), starting on a multiple of `2^shift`. It
//! holds up to twelve interval starts as their low 16 bits, and thirteen 24-bit entries: the one in
//! force at the bucket's first address, then one from each start on. Inside an aligned bucket the
//! low 16 bits of the addresses ascend without wrapping, so a lookup reads its line, counts the
//! starts at or below the key's low 16 bits without a branch, and takes that entry: one cache line,
//! no branch on loaded data. (A map whose entry numbers reach 2^23 keeps the interval map; a
//! ruleset numbers its name entries first.)
//!
//! A bucket with more than twelve starts is crowded. It is split into up to 16 equal parts, each
//! with a nested line of its own (split again if it is still crowded), and its line marks it and
//! says where the parts are. A lookup that lands there reads a second line, after a branch it
//! cannot predict. Where prefixes crowd into one range, more buckets are crowded; the answers are
//! the same.
//!
//! Lines cost memory where the bucket width is capped: a few prefixes spread over the whole address
//! space would need 65,536 lines (4 MiB) to keep every offset within 16 bits, and prefixes that
//! cluster tightly need many nested lines. [`Ipv4Map`] takes lines when there are no more of them,
//! nested ones included, than interval starts (or 4,096), and the interval map otherwise.

use std::mem::size_of;
use std::ops::Range;

use bawaba_wire::hint::prefetch_value as prefetch;

use crate::ruleset::ip_map::{intervals, IntervalMap};
use crate::ruleset::table::Table;
use crate::ruleset::NO_ENTRY;

/// Starts one line holds.
const PER_LINE: usize = 12;
/// Most offset bits a 16-bit start holds: buckets are at most 2^16 addresses wide.
const MAX_SHIFT: u32 = 16;
/// Most lines (2^22, 256 MiB), far beyond any real ruleset.
const MAX_LINE_BITS: u32 = 22;
/// Interval starts per line wanted on average, at most. The buckets are the widest (a power of
/// two, at most 2^16 addresses) that give at least the power of two at or above `starts / LOAD`
/// lines over the starts' span, so the average lands between about `LOAD / 4` and `LOAD` (or
/// lower, where the width cap holds). With random prefixes a /32 brings two starts a step apart,
/// so starts come in pairs.
///
/// On the bench's million starts, 8 gives 2^17 lines (8 MiB) of 7.6 starts on average, of which
/// 9.5% are crowded (12,480, with 26,918 nested lines). With ten starts to a line, 4 gave 2^18
/// lines (16 MiB), about 1% crowded, and 8 gave 19% crowded. The smaller table stays in a cache
/// that the larger one overflows; see docs/BENCHMARKS.md for what each step measured.
const LOAD: usize = 8;
/// Below this many lines, [`Ipv4Map`] takes lines whatever the number of starts (256 KiB).
const FEW_LINES: usize = 4096;
/// A line stores entries in 24 bits, read back sign-extended: real entries are below this,
/// [`NO_ENTRY`] is all ones, and the values from [`SPILL`] on are crowded buckets' markers.
const REAL_ENTRIES: u32 = 1 << 23;
/// Marks the entries of a crowded line, whose bucket is split among nested lines. Below the mark:
/// how many bits the bucket is split by (from [`SPLIT_BITS`]) and the first nested line's index
/// ([`NESTED_INDEX`]).
const SPILL: u32 = 0xFF80_0000;
/// A crowded bucket is split into at most 2^4 parts at a time.
const MAX_SPLIT_BITS: u32 = 4;
/// Where the marker keeps how many bits the bucket is split by (3 bits).
const SPLIT_BITS: u32 = 20;
/// The marker's low bits: the first nested line's index.
const NESTED_INDEX: u32 = (1 << SPLIT_BITS) - 1;

/// One bucket's interval starts and their entries, in one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Line {
    /// The low 16 bits of the interval starts inside the bucket, ascending, each [`biased`]. An
    /// unused slot holds `biased(u16::MAX)`.
    starts: [i16; PER_LINE],
    /// A spare byte, then `PER_LINE + 1` entries of 24 bits (see [`REAL_ENTRIES`]). Entry 0 is in
    /// force at the bucket's first address, entry `i` from `starts[i - 1]` on. An unused slot
    /// repeats the entry before it, so that counting an unused start (at `u16::MAX`, with a key
    /// whose low bits are that) changes nothing. In a crowded bucket's line every entry is the
    /// same [`SPILL`] marker.
    entries: [u8; 3 * (PER_LINE + 1) + 1],
}

const _: () = assert!(size_of::<Line>() == 64, "a line is one cache line");

impl Line {
    /// A line with no start, `entry` in force throughout.
    fn uniform(entry: u32) -> Self {
        let mut line = Line { starts: [biased(u16::MAX); PER_LINE], entries: [0; 3 * (PER_LINE + 1) + 1] };
        line.fill_from(0, entry);
        line
    }

    /// Sets entries `slot` to `PER_LINE` (the last) to `entry`: a real entry, [`NO_ENTRY`] or a
    /// marker.
    fn fill_from(&mut self, slot: usize, entry: u32) {
        for slot in slot..=PER_LINE {
            self.entries[1 + 3 * slot..4 + 3 * slot].copy_from_slice(&entry.to_le_bytes()[..3]);
        }
    }

    /// Entry `slot`, sign-extended from its 24 bits: the four bytes that end with the entry, with
    /// the byte before it shifted out.
    #[inline(always)]
    fn entry_at(&self, slot: usize) -> u32 {
        (self.four_bytes(3 * slot.min(PER_LINE)) as i32 >> 8) as u32
    }

    /// `entries[at..at + 4]` as a little-endian number (`at` at most `3 * PER_LINE`), read with
    /// one 4-byte load.
    ///
    /// Written plainly, the compiler sees that [`entry_at`](Self::entry_at) shifts the lowest
    /// byte out, and reads the other three as a byte and a word, then puts them together: five
    /// instructions more per lookup, in a window that lookups waiting on memory fill.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(unsafe_code)]
    fn four_bytes(&self, at: usize) -> u32 {
        assert!(at <= 3 * PER_LINE);
        let value: u32;
        // SAFETY: reads `entries[at..at + 4]`, inside the line (`at <= 3 * PER_LINE`, and
        // `entries` has `3 * PER_LINE + 4` bytes); x86-64 loads need no alignment. Writes only
        // `value`.
        unsafe {
            std::arch::asm!(
                "mov {value:e}, dword ptr [{line} + {at} + {entries}]",
                line = in(reg) std::ptr::from_ref(self),
                at = in(reg) at,
                entries = const std::mem::offset_of!(Line, entries),
                value = lateout(reg) value,
                options(pure, readonly, nostack, preserves_flags),
            );
        }
        value
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    fn four_bytes(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.entries[at..at + 4].try_into().expect("four bytes"))
    }

    /// The entry in force at the address of the bucket whose low 16 bits are `low` (or a crowded
    /// bucket's marker).
    #[inline(always)]
    fn entry(&self, low: u16) -> u32 {
        self.entry_at(passed(self, biased(low)))
    }
}

/// `offset` with its top bit flipped: offsets so stored order as signed 16-bit numbers as they do
/// unsigned, and SSE2 compares 16-bit lanes signed only.
#[inline(always)]
const fn biased(offset: u16) -> i16 {
    (offset ^ 0x8000) as i16
}

/// How many of `line`'s starts are at or below `offset` ([`biased`]).
///
/// With SSE2 (every x86-64 CPU): two 8-lane compares packed into one byte mask, and a bit scan;
/// eight instructions. Counting lane by lane instead took five times as many, and a lookup that
/// waits for its line holds all of them in the CPU's window, crowding out other lookups.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[allow(unsafe_code)]
fn passed(line: &Line, offset: i16) -> usize {
    // SAFETY: `sse2_passed` only needs SSE2, which this build enables (the `cfg` above; it is part
    // of the x86-64 baseline).
    unsafe { sse2_passed(line, offset) }
}

/// The SSE2 body of [`passed`].
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
#[allow(unsafe_code)]
fn sse2_passed(line: &Line, offset: i16) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpgt_epi16, _mm_load_si128, _mm_movemask_epi8, _mm_packs_epi16, _mm_set1_epi16,
    };
    const { assert!(PER_LINE > 8 && PER_LINE <= 16 && std::mem::offset_of!(Line, starts) == 0) };
    let key = _mm_set1_epi16(offset);
    // SAFETY: the two loads read the line's first 32 bytes (it has 64), aligned to 16 (it is
    // aligned to 64): the starts, then the entries' first bytes.
    let (low, high) = unsafe {
        let at = std::ptr::from_ref(line).cast::<__m128i>();
        (_mm_load_si128(at), _mm_load_si128(at.add(1)))
    };
    // A byte per lane, all ones where the lane is above `offset`: lanes 0..8, then 8..16.
    let above = _mm_packs_epi16(_mm_cmpgt_epi16(low, key), _mm_cmpgt_epi16(high, key));
    // Lanes past the starts hold entry bytes: count them as above. The starts ascend (unused ones
    // last), so those above `offset` are a run up to there, and the passed ones end where that
    // run begins.
    let mask = _mm_movemask_epi8(above) as u32 | u32::MAX << PER_LINE;
    mask.trailing_zeros() as usize
}

/// [`passed`] lane by lane, where there is no SSE2 (and in tests, against the SSE2 form).
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
fn passed_by_lanes(line: &Line, offset: i16) -> usize {
    line.starts.iter().map(|&start| usize::from(start <= offset)).sum()
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn passed(line: &Line, offset: i16) -> usize {
    passed_by_lanes(line, offset)
}

/// Whether a line's `entry` is a crowded bucket's marker.
#[inline(always)]
fn crowded(entry: u32) -> bool {
    entry >= SPILL && entry != NO_ENTRY
}

/// A bucket being built: `2^shift` addresses from `first` (a multiple of that), and the indexes
/// of the interval starts inside it. The entry in force at `first` is that of the start before
/// them (index 0, address 0, is never inside a bucket).
struct Bucket {
    first: u64,
    shift: u32,
    inside: Range<usize>,
}

/// `count` buckets side by side, `2^shift` addresses each from `first` on, whose starts begin at
/// index `from`.
fn buckets(starts: &[u32], from: usize, first: u64, shift: u32, count: u64) -> impl Iterator<Item = Bucket> + '_ {
    let mut next = from;
    (0..count).map(move |i| {
        let first = first + (i << shift);
        let from = next;
        while next < starts.len() && u64::from(starts[next]) < first + (1 << shift) {
            next += 1;
        }
        Bucket { first, shift, inside: from..next }
    })
}

impl Bucket {
    /// The bucket's line. A bucket with more than [`PER_LINE`] starts is split into 2^1 to
    /// 2^[`MAX_SPLIT_BITS`] parts (the fewest that leave no part crowded, or the most), whose lines
    /// go to the end of `nested`, each built the same way; its own line is then all marker. `None`
    /// if `nested` would outgrow `limit` lines.
    fn line(&self, starts: &[u32], values: &[u32], nested: &mut Vec<Line>, limit: usize) -> Option<Line> {
        if self.inside.len() <= PER_LINE {
            let mut line = Line::uniform(values[self.inside.start - 1]);
            for (slot, i) in self.inside.clone().enumerate() {
                line.starts[slot] = biased(starts[i] as u16);
                line.fill_from(slot + 1, values[i]);
            }
            return Some(line);
        }
        // At most 2^shift starts fit in the bucket, so a crowded one is at least 16 wide. The
        // parts tile the bucket, so they end where its starts end.
        let parts = |split: u32| buckets(starts, self.inside.start, self.first, self.shift - split, 1 << split);
        let most = MAX_SPLIT_BITS.min(self.shift);
        let split = (1..most).find(|&split| parts(split).all(|part| part.inside.len() <= PER_LINE)).unwrap_or(most);
        let at = nested.len();
        if at + (1 << split) > limit.min(NESTED_INDEX as usize + 1) {
            return None;
        }
        let index = u32::try_from(at).ok()?;
        nested.resize(at + (1 << split), Line::uniform(NO_ENTRY));
        for (i, part) in parts(split).enumerate() {
            nested[at + i] = part.line(starts, values, nested, limit)?;
        }
        Some(Line::uniform(SPILL | split << SPLIT_BITS | index))
    }
}

/// The compiled map from IPv4 keys to entry indexes, a line per bucket.
#[derive(Debug)]
pub(crate) struct LineMap {
    lines: Table<Line>,
    /// The lines of crowded buckets' parts, each crowded bucket's parts side by side.
    nested: Table<Line>,
    /// First address of line 0: the first interval start after address 0, rounded down to a
    /// multiple of the bucket width.
    lo: u32,
    /// The entry for keys below `lo`.
    below: u32,
    /// The entry for keys past the last line.
    above: u32,
    shift: u32,
}

impl LineMap {
    /// A map without lines: `entry` for every key.
    fn uniform(entry: u32) -> Self {
        let (lines, nested) = (Table::new(Vec::new()), Table::new(Vec::new()));
        LineMap { lines, nested, lo: u32::MAX, below: entry, above: entry, shift: 0 }
    }

    /// Builds the map from [`intervals`]' output, or `None` when it would take more than
    /// `max_lines` lines, nested ones included (or an entry does not fit in a line).
    fn from_intervals(starts: &[u32], values: &[u32], max_lines: usize) -> Option<Self> {
        if values.iter().any(|&v| v >= REAL_ENTRIES && v != NO_ENTRY) || starts.len() != values.len() {
            return None;
        }
        let below = *values.first()?;
        let (lo, hi) = match (starts.get(1), starts.last()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            // Nothing but interval 0: no line at all, every key is below `lo`.
            _ => return Some(LineMap::uniform(below)),
        };
        let inner = starts.len() - 1;
        let wanted = (inner / LOAD).max(1).next_power_of_two().min(1 << MAX_LINE_BITS);
        // The widest buckets that still give the wanted number of lines over the span.
        let shift = (0..=MAX_SHIFT).rev().find(|&shift| ((hi - lo) >> shift) as usize >= wanted - 1).unwrap_or(0);
        // Line 0 starts on a multiple of the bucket width, so that every bucket does: the low 16
        // bits of its addresses ascend from its first address to its last, and a key below `lo`
        // wraps around to an offset past the last line (see `line_of`).
        let lo = lo & !((1 << shift) - 1);
        let count = ((hi - lo) >> shift) as usize + 1;
        if count > max_lines {
            return None;
        }
        let mut lines = Table::filled(count, Line::uniform(NO_ENTRY));
        let mut nested = Vec::new();
        for (line, bucket) in lines.iter_mut().zip(buckets(starts, 1, u64::from(lo), shift, count as u64)) {
            *line = bucket.line(starts, values, &mut nested, max_lines - count)?;
        }
        let above = *values.last()?;
        Some(LineMap { lines, nested: Table::new(nested), lo, below, above, shift })
    }

    /// The entry of the most specific prefix containing `key`, or [`NO_ENTRY`].
    #[inline]
    pub(crate) fn lookup(&self, key: u32) -> u32 {
        self.covered(key).unwrap_or_else(|| self.outside(key))
    }

    /// [`lookup`](Self::lookup) for a key that a line covers, `None` for the others.
    #[inline(always)]
    fn covered(&self, key: u32) -> Option<u32> {
        let line = self.line_of(key)?;
        let entry = line.entry(key as u16);
        if crowded(entry) {
            return Some(self.nested(entry, key));
        }
        Some(entry)
    }

    /// The entry for `key`, which no line covers.
    fn outside(&self, key: u32) -> u32 {
        if key < self.lo {
            self.below
        } else {
            self.above
        }
    }

    /// The entry for `key` in the crowded bucket whose line holds `marker`: read from the nested
    /// line of its part, and so on while that is crowded too.
    #[inline(never)]
    fn nested(&self, mut marker: u32, key: u32) -> u32 {
        let mut shift = self.shift;
        while crowded(marker) {
            let Some((line, nested_shift)) = self.nested_line(marker, key, shift) else {
                return NO_ENTRY;
            };
            marker = line.entry(key as u16);
            shift = nested_shift;
        }
        marker
    }

    /// The nested line for `key` of the crowded bucket whose line holds `marker` and whose width
    /// is `2^shift`, with the nested lines' `shift`.
    #[inline(always)]
    fn nested_line(&self, marker: u32, key: u32, shift: u32) -> Option<(&Line, u32)> {
        let split = (marker & !SPILL) >> SPLIT_BITS;
        let shift = shift.checked_sub(split)?;
        let part = (key >> shift) & ((1 << split) - 1);
        Some((self.nested.get(((marker & NESTED_INDEX) + part) as usize)?, shift))
    }

    /// The line of `key`'s bucket, if there is one. A key below `lo` wraps to an offset of at
    /// least `2^32 - lo`, which is the end of the last line or past it (`lo` is a multiple of the
    /// bucket width), so one check finds the keys outside the lines on either side.
    #[inline(always)]
    fn line_of(&self, key: u32) -> Option<&Line> {
        self.lines.get((key.wrapping_sub(self.lo) >> self.shift) as usize)
    }

    /// [`lookup`](Self::lookup) for many keys: `out[i]` gets the entry of `keys[i]`. While key `i`
    /// is answered, the line of key `i + AHEAD` is asked for, and if the line of key `i + NEAR`
    /// (asked for earlier, in cache by now) is a crowded bucket's, its nested line is asked for:
    /// many lines are on their way at once.
    pub(crate) fn lookup_many(&self, keys: &[u32], out: &mut [u32]) {
        const AHEAD: usize = 32;
        const NEAR: usize = 16;
        for &key in keys.iter().take(AHEAD) {
            self.prefetch_line(key);
        }
        for (i, (out, &key)) in out.iter_mut().zip(keys).enumerate() {
            if let Some(&ahead) = keys.get(i + AHEAD) {
                self.prefetch_line(ahead);
            }
            if let Some(&near) = keys.get(i + NEAR) {
                self.prefetch_nested(near);
            }
            *out = self.lookup(key);
        }
    }

    #[inline(always)]
    fn prefetch_nested(&self, key: u32) {
        let Some(line) = self.line_of(key) else {
            return;
        };
        // A crowded bucket's line holds its marker in every entry.
        let marker = line.entry_at(0);
        if crowded(marker) {
            if let Some((nested, _)) = self.nested_line(marker, key, self.shift) {
                prefetch(nested);
            }
        }
    }

    #[inline(always)]
    fn prefetch_line(&self, key: u32) {
        if let Some(line) = self.line_of(key) {
            prefetch(line);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.lines.memory_bytes() + self.nested.memory_bytes()
    }
}

/// The IPv4 map: lines where they pay, the interval map otherwise (see the module doc).
///
/// A struct rather than an enum, so that a lookup goes straight to the lines without first
/// loading which kind of map this is: with lookups waiting on memory, every instruction and load
/// a lookup holds in the CPU's window keeps another lookup out of it.
#[derive(Debug)]
pub(crate) struct Ipv4Map {
    /// The lines; none when the interval map is taken.
    lines: LineMap,
    /// The interval map of a ruleset too sparse for lines.
    sparse: Option<IntervalMap<u32>>,
}

impl Ipv4Map {
    /// Builds the map from `(network, len, entry)` items sorted by network then length. Of items with
    /// the same network and length, the first is kept.
    pub(crate) fn build(items: Vec<(u32, u8, u32)>) -> Self {
        let (starts, values) = intervals(items);
        match LineMap::from_intervals(&starts, &values, starts.len().max(FEW_LINES)) {
            Some(lines) => Ipv4Map { lines, sparse: None },
            None => {
                Ipv4Map { lines: LineMap::uniform(NO_ENTRY), sparse: Some(IntervalMap::from_intervals(starts, values)) }
            }
        }
    }

    /// The entry of the most specific prefix containing `key`, or [`NO_ENTRY`].
    #[inline]
    pub(crate) fn lookup(&self, key: u32) -> u32 {
        match self.lines.covered(key) {
            Some(entry) => entry,
            None => self.uncovered(key),
        }
    }

    /// [`lookup`](Self::lookup) for a key that no line covers: every key of a sparse map.
    #[inline(never)]
    fn uncovered(&self, key: u32) -> u32 {
        match &self.sparse {
            Some(map) => map.lookup(key),
            None => self.lines.outside(key),
        }
    }

    /// `out[i]` gets the entry of `keys[i]` (`out` as long as `keys`; extra keys or slots are left
    /// alone).
    pub(crate) fn lookup_many(&self, keys: &[u32], out: &mut [u32]) {
        match &self.sparse {
            Some(map) => map.lookup_many(keys, out),
            None => self.lines.lookup_many(keys, out),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.lines.heap_bytes() + self.sparse.as_ref().map_or(0, IntervalMap::heap_bytes)
    }

    /// Whether the map took lines (for tests).
    #[cfg(test)]
    fn has_lines(&self) -> bool {
        self.sparse.is_none()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `items` in the order [`Ipv4Map::build`] wants: by network, then length.
    fn sorted(mut items: Vec<(u32, u8, u32)>) -> Vec<(u32, u8, u32)> {
        items.sort_unstable_by_key(|&(network, len, _)| (network, len));
        items
    }

    /// Lines built whatever their number, from `items` in any order.
    fn lines(items: Vec<(u32, u8, u32)>) -> LineMap {
        let (starts, values) = intervals(sorted(items));
        LineMap::from_intervals(&starts, &values, usize::MAX).expect("lines")
    }

    /// A deterministic stream of 32-bit numbers (xorshift64, low half).
    fn xorshift(mut state: u64) -> impl FnMut() -> u32 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u32
        }
    }

    /// Looks `keys` up one by one and side by side in `map`, and in the interval map of the same
    /// items; all must agree.
    fn check(map: &LineMap, items: &[(u32, u8, u32)], keys: &[u32]) -> Vec<u32> {
        let reference = IntervalMap::build(sorted(items.to_vec()));
        let one: Vec<u32> = keys.iter().map(|&k| map.lookup(k)).collect();
        let mut many = vec![0; keys.len()];
        map.lookup_many(keys, &mut many);
        assert_eq!(one, many, "lookup_many disagrees with lookup");
        let want: Vec<u32> = keys.iter().map(|&k| reference.lookup(k)).collect();
        assert_eq!(one, want, "lines disagree with the interval map");
        one
    }

    /// The network of `addr/len`.
    fn network(addr: u32, len: u8) -> u32 {
        addr & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
    }

    #[test]
    fn counting_starts_agrees_lane_by_lane() {
        // Every run length, at keys on, between and beyond the starts, up to u16::MAX.
        for used in 0..=PER_LINE {
            let mut starts = [u16::MAX; PER_LINE];
            for (i, start) in starts.iter_mut().take(used).enumerate() {
                *start = 100 * i as u16 + 7;
            }
            if used > 0 {
                starts[used - 1] = if used == PER_LINE { u16::MAX } else { u16::MAX - 1 };
            }
            // Entries whose bytes, read as lanes, are below every offset: the SSE2 count reads
            // them, and must not count them.
            let line = Line { starts: starts.map(biased), entries: [0x80; 3 * (PER_LINE + 1) + 1] };
            for offset in (0..=u16::MAX).step_by(50).chain([0, 6, 7, 8, 107, 907, u16::MAX - 1, u16::MAX]) {
                let (at, want) = (biased(offset), passed_by_lanes(&line, biased(offset)));
                assert_eq!(passed(&line, at), want, "{starts:?} at {offset}");
                let unbiased = starts.iter().filter(|&&s| s <= offset).count();
                assert_eq!(want, unbiased, "{starts:?} at {offset}: biasing changed the order");
            }
        }
    }

    #[test]
    fn nested_prefixes() {
        let items = vec![(0x0A00_0000, 8, 1), (0x0A01_0000, 16, 2), (0x0A01_0200, 24, 3), (0x0AFF_FFFF, 32, 4)];
        let map = lines(items.clone());
        let keys =
            [0x09FF_FFFF, 0x0A00_0000, 0x0A01_0001, 0x0A01_02FF, 0x0A01_0300, 0x0AFF_FFFE, 0x0AFF_FFFF, 0x0B00_0000];
        assert_eq!(check(&map, &items, &keys), [NO_ENTRY, 1, 2, 3, 2, 1, 4, NO_ENTRY]);
    }

    #[test]
    fn a_start_at_the_last_offset_of_a_wide_bucket() {
        // Prefixes far apart: the buckets are 2^16 wide from 10.0.0.0 on, and the host route sits
        // at offset 0xFFFF of the first, where the unused starts (at u16::MAX) are counted too.
        let items = vec![(0x0A00_0000, 8, 9), (0x0A00_FFFF, 32, 1), (0xC800_0000, 8, 2)];
        let map = lines(items.clone());
        assert_eq!((map.shift, map.lo), (MAX_SHIFT, 0x0A00_0000));
        let first = map.lines[0];
        assert_eq!(first.starts[..3], [biased(0), biased(0xFFFF), biased(u16::MAX)]);
        assert_eq!((0..4).map(|slot| first.entry_at(slot)).collect::<Vec<_>>(), [NO_ENTRY, 9, 1, 1]);
        let keys = [
            0x09FF_FFFF,
            0x0A00_0000,
            0x0A00_FFFE,
            0x0A00_FFFF,
            0x0A01_0000,
            0x0A01_FFFF,
            0xC7FF_FFFF,
            0xC800_0000,
            0xC8FF_FFFF,
            u32::MAX,
        ];
        assert_eq!(check(&map, &items, &keys), [NO_ENTRY, 9, 9, 1, 9, 9, NO_ENTRY, 2, 2, NO_ENTRY]);
    }

    #[test]
    fn a_crowded_bucket_is_split() {
        // 40 host routes a step apart inside a /16, under a /8: one bucket holds 80 starts.
        let mut items: Vec<(u32, u8, u32)> = (0..40).map(|i| (0x0A0B_0000 + 2 * i, 32, i)).collect();
        items.push((0x0A00_0000, 8, 100));
        items.push((0xF000_0000, 4, 200));
        let map = lines(items.clone());
        assert!(!map.nested.is_empty(), "no bucket was split");
        let keys: Vec<u32> = (0..90).map(|i| 0x0A0B_0000 + i).chain([0x0A0A_FFFF, 0x0A0C_0000, 0xF123_4567]).collect();
        let want: Vec<u32> =
            (0..90).map(|i| if i < 80 && i % 2 == 0 { i / 2 } else { 100 }).chain([100, 100, 200]).collect();
        assert_eq!(check(&map, &items, &keys), want);
    }

    #[test]
    fn entries_keep_their_24_bits() {
        let marker = SPILL | MAX_SPLIT_BITS << SPLIT_BITS | NESTED_INDEX;
        let mut line = Line::uniform(NO_ENTRY);
        line.fill_from(1, REAL_ENTRIES - 1);
        line.fill_from(2, 0);
        line.fill_from(PER_LINE, marker);
        let read: Vec<u32> = (0..=PER_LINE).map(|slot| line.entry_at(slot)).collect();
        assert_eq!(read[..3], [NO_ENTRY, REAL_ENTRIES - 1, 0]);
        assert_eq!(read[PER_LINE], marker);
        assert!(crowded(marker) && !crowded(NO_ENTRY) && !crowded(REAL_ENTRIES - 1));
        // A map with an entry that does not fit in 24 bits takes the interval map instead.
        let fits = sorted(vec![(0x0A00_0000, 8, REAL_ENTRIES - 1), (0x0A0A_0000, 16, 3)]);
        let map = Ipv4Map::build(fits);
        assert!(map.has_lines());
        assert_eq!([0x0A00_0001, 0x0A0A_0001, 0x0B00_0000].map(|k| map.lookup(k)), [REAL_ENTRIES - 1, 3, NO_ENTRY]);
        let too_big = sorted(vec![(0x0A00_0000, 8, REAL_ENTRIES), (0x0A0A_0000, 16, 3)]);
        let map = Ipv4Map::build(too_big);
        assert!(!map.has_lines());
        assert_eq!([0x0A00_0001, 0x0A0A_0001, 0x0B00_0000].map(|k| map.lookup(k)), [REAL_ENTRIES, 3, NO_ENTRY]);
    }

    #[test]
    fn the_four_byte_load_reads_what_the_bytes_say() {
        let mut line = Line::uniform(0);
        for (i, byte) in line.entries.iter_mut().enumerate() {
            *byte = 0x11 * (i as u8 % 15) + 1;
        }
        for at in 0..=3 * PER_LINE {
            let plain = u32::from_le_bytes(line.entries[at..at + 4].try_into().unwrap());
            assert_eq!(line.four_bytes(at), plain, "at {at}");
        }
    }

    #[test]
    fn the_parts_of_a_crowded_bucket_know_the_entry_in_force() {
        // Under a /8 and a /17, seven host routes a step apart: the bucket 10.0.0.0/16 has 16
        // starts, all but one in its first 16 addresses. It is split four levels deep; the
        // first level's parts 1 to 7 hold no start, and are inside the /17.
        let mut items = vec![(0x0A00_0000, 8, 100), (0x0A00_0000, 17, 7), (0xC800_0000, 8, 200)];
        items.extend((0..7).map(|i| (0x0A00_0001 + 2 * i, 32, i)));
        let map = lines(items.clone());
        assert_eq!(map.shift, MAX_SHIFT);
        assert!(crowded(map.lines[0].entry_at(0)), "the first bucket is not crowded");
        let keys = [
            0x09FF_FFFF,
            0x0A00_0000,
            0x0A00_0001,
            0x0A00_000D,
            0x0A00_000E,
            0x0A00_0010,
            0x0A00_0100,
            0x0A00_1000,
            0x0A00_7FFF,
            0x0A00_8000,
            0x0A01_0000,
            0xC800_0001,
        ];
        let want = [NO_ENTRY, 7, 0, 6, 7, 7, 7, 7, 7, 100, 100, 200];
        assert_eq!(check(&map, &items, &keys), want);
    }

    #[test]
    fn nested_lines_count_against_the_memory_bound() {
        // 4,096 clusters of seven host routes a step apart, 64 Ki addresses apart: each bucket
        // with a cluster would split three levels deep, 48 nested lines for 14 starts. Lines would
        // outnumber the starts, so the map takes the interval map.
        let items: Vec<(u32, u8, u32)> =
            (0..4096u32).flat_map(|g| (0..7).map(move |i| (0x1000_0000 + (g << 16) + 2 * i, 32, g * 7 + i))).collect();
        let items = sorted(items);
        let map = Ipv4Map::build(items.clone());
        assert!(!map.has_lines(), "{} nested lines", map.lines.nested.len());
        let keys: Vec<u32> = items.iter().step_by(5).flat_map(|&(a, _, _)| [a - 1, a, a + 1]).collect();
        let reference = IntervalMap::build(items.clone());
        for key in keys {
            assert_eq!(map.lookup(key), reference.lookup(key), "at {key:#x}");
        }
    }

    #[test]
    fn lines_are_sized_to_the_starts_whatever_their_span() {
        // 40,000 host routes over a span just past 2^24: at least starts / LOAD lines, so that
        // buckets are not crowded on average. (Bucket widths from the span's bit length alone
        // gave half as many.)
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        let items = sorted((0..40_000).map(|i| (0x0A00_0000 + next() % 0x0100_1000, 32, i)).collect());
        let map = lines(items.clone());
        let starts = 2 * items.len();
        assert!(map.lines.len() * LOAD >= starts - 100, "{} lines for {starts} starts", map.lines.len());
        assert!(map.lines.len() * LOAD / 4 <= starts, "{} lines for {starts} starts", map.lines.len());
        let keys: Vec<u32> = items.iter().step_by(7).flat_map(|&(a, _, _)| [a, a + 1]).collect();
        check(&map, &items, &keys);
    }

    #[test]
    fn edges_of_the_key_space() {
        let items = vec![(0, 0, 7), (0xFFFF_FFFF, 32, 8), (0, 32, 9)];
        let map = lines(items.clone());
        assert_eq!(check(&map, &items, &[0, 1, 0xFFFF_FFFE, u32::MAX]), [9, 7, 7, 8]);
        let empty = lines(vec![]);
        assert_eq!(check(&empty, &[], &[0, u32::MAX]), [NO_ENTRY, NO_ENTRY]);
        let everything = lines(vec![(0, 0, 5)]);
        assert_eq!(check(&everything, &[(0, 0, 5)], &[0, 0x8000_0000, u32::MAX]), [5, 5, 5]);
    }

    #[test]
    fn the_map_takes_lines_only_where_they_pay() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
        // 100,000 host routes over the whole space: 65,536 lines for about 200,000 starts.
        let many = sorted((0..100_000).map(|i| (next(), 32, i)).collect());
        assert!(Ipv4Map::build(many.clone()).has_lines());
        // A thousand would need as many lines as well: the interval map is smaller.
        let few: Vec<(u32, u8, u32)> = many.iter().step_by(100).copied().collect();
        assert!(!Ipv4Map::build(few).has_lines());
        // The same thousand inside one /16 fit a handful of lines.
        let near = sorted(many.iter().step_by(100).map(|&(a, l, e)| (0x0A0A_0000 | a >> 16, l, e)).collect());
        assert!(Ipv4Map::build(near).has_lines());
        // And the big map's answers agree with the interval map's.
        let map = Ipv4Map::build(many.clone()).lines;
        let keys: Vec<u32> = (0..20_000).map(|_| next()).chain(many.iter().map(|&(a, _, _)| a)).collect();
        check(&map, &many, &keys);
    }

    /// Prefixes inside a block of `2^span` addresses at `base`, with keys in and around them.
    fn prefixes_and_keys() -> impl Strategy<Value = (Vec<(u32, u8, u32)>, Vec<u32>)> {
        (any::<u32>(), 8u32..=32).prop_flat_map(|(base, span)| {
            let block = move |x: u32| network(base, (32 - span) as u8) | x.checked_shr(32 - span).unwrap_or(0);
            let item = (any::<u32>(), prop::sample::select(vec![0u8, 8, 12, 16, 20, 23, 24, 25, 28, 31, 32]), 0u32..50)
                .prop_map(move |(x, len, entry)| (network(block(x), len), len, entry));
            let items = prop::collection::vec(item, 0..300);
            let keys = prop::collection::vec(any::<u32>(), 1..200);
            (items, keys).prop_map(move |(items, keys)| {
                // Keys: random, inside the block, and around each prefix's edges.
                let mut all: Vec<u32> = keys.iter().flat_map(|&k| [k, block(k)]).collect();
                for &(network, len, _) in &items {
                    let last = network | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                    all.extend([network.wrapping_sub(1), network, last, last.wrapping_add(1)]);
                }
                (items, all)
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn lines_agree_with_the_interval_map((items, keys) in prefixes_and_keys()) {
            let map = lines(items.clone());
            check(&map, &items, &keys);
            let either = Ipv4Map::build(sorted(items.clone()));
            let mut out = vec![0; keys.len()];
            either.lookup_many(&keys, &mut out);
            for (&key, &entry) in keys.iter().zip(&out) {
                prop_assert_eq!(entry, map.lookup(key));
                prop_assert_eq!(either.lookup(key), entry);
            }
        }
    }
}
