//! The answer cache: upstream responses stored as wire bytes, served with the id and TTLs
//! rewritten (RFC 1035 section 7.4), negative answers cached per RFC 2308 section 5.
//!
//! Policy is applied after the cache, so a policy change takes effect at once even for cached
//! names. A hit says which ruleset (by
//! [`Ruleset::serial`](bawaba_policy::ruleset::Ruleset::serial)) last let its answer through
//! unchanged ([`Cache::note_passed`]); while that ruleset is in force the server need not look the
//! answer's names and addresses up again, and a reload, which brings a new serial, makes every
//! such note stale at once.
//!
//! Memory is bounded: at most `max_entries`; when full, the cache drops the entries that expire
//! soonest (one sweep frees a tenth), never growing past the bound under a random-subdomain flood.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bawaba_wire::dns::{Message, Rcode, Type};
use hashbrown::HashTable;

/// What identifies a cacheable question: the DO and CD bits (answers differ with them), type and
/// class, then the lowercased wire name, in one byte string. A lookup can key the cache with the
/// bytes alone ([`CacheKey::write`]), so a hit allocates no key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(Box<[u8]>);

impl CacheKey {
    /// The key of a query's question, or `None` when it has none.
    pub fn of(query: &Message<'_>, dnssec_ok: bool, checking_disabled: bool) -> Option<CacheKey> {
        let mut bytes = Vec::with_capacity(64);
        CacheKey::write(query, dnssec_ok, checking_disabled, &mut bytes).then(|| CacheKey::from(&bytes[..]))
    }

    /// Writes the key bytes of a query's question into `out` (cleared first); false when it has
    /// none.
    pub fn write(query: &Message<'_>, dnssec_ok: bool, checking_disabled: bool, out: &mut Vec<u8>) -> bool {
        out.clear();
        let Some(q) = query.question() else { return false };
        out.push(u8::from(dnssec_ok) | (u8::from(checking_disabled) << 1));
        out.extend_from_slice(&q.qtype.0.to_be_bytes());
        out.extend_from_slice(&q.qclass.0.to_be_bytes());
        q.name.write_wire_lower(out);
        true
    }
}

/// An owned key from bytes [`CacheKey::write`] wrote.
impl From<&[u8]> for CacheKey {
    fn from(bytes: &[u8]) -> Self {
        CacheKey(bytes.into())
    }
}

impl AsRef<[u8]> for CacheKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// One cached answer. Its key, the answer and the offsets of the answer's TTL fields share one
/// allocation, so a hit reads one block besides the table slot.
struct Entry {
    /// The key, then the answer, then one little-endian `u16` per TTL field: its offset in the
    /// answer (a DNS message is at most 65,535 bytes).
    data: Box<[u8]>,
    key_len: u16,
    answer_len: u16,
    stored: Instant,
    expires: Instant,
    /// Where the additional section starts in the answer ([`Entry::answer`]).
    additional: u32,
    /// Unique in the cache, so that a note meant for this entry cannot land on its successor.
    number: u64,
    /// The ruleset serial given to [`Cache::note_passed`], 0 when none.
    passed: u64,
}

impl Entry {
    fn key(&self) -> &[u8] {
        &self.data[..usize::from(self.key_len)]
    }

    fn answer(&self) -> &[u8] {
        let start = usize::from(self.key_len);
        &self.data[start..start + usize::from(self.answer_len)]
    }

    fn ttl_offsets(&self) -> impl Iterator<Item = usize> + '_ {
        let start = usize::from(self.key_len) + usize::from(self.answer_len);
        self.data[start..].chunks_exact(2).map(|o| usize::from(u16::from_le_bytes([o[0], o[1]])))
    }
}

/// Cache limits.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Most entries held.
    pub max_entries: usize,
    /// Longest TTL honoured.
    pub max_ttl: Duration,
    /// Longest negative TTL honoured (RFC 2308 section 5 suggests 1-3 hours).
    pub max_negative_ttl: Duration,
    /// How long after expiry an answer may still be served when every upstream fails
    /// (RFC 8767); zero disables serve-stale.
    pub stale_for: Duration,
}

/// A cached answer ready to send.
#[derive(Debug)]
pub struct Cached {
    /// The response with the caller's id and decremented TTLs.
    pub bytes: Vec<u8>,
    /// True when served past expiry (RFC 8767; TTLs are then 30 s as section 4 recommends).
    pub stale: bool,
}

/// What a hit found, besides the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// True when served past expiry (see [`Cached::stale`]).
    pub stale: bool,
    /// Where the answer's additional section starts, so that its OPT record can be cut without
    /// parsing the answer.
    pub additional: usize,
    /// The ruleset serial [`Cache::note_passed`] recorded for this entry, 0 when none.
    pub passed: u64,
    number: u64,
}

/// A bounded, thread-safe answer cache.
pub struct Cache {
    limits: CacheLimits,
    shards: Vec<Mutex<HashTable<Entry>>>,
    /// One keyed hash (SipHash: query names come from the network) picks the shard and the slot.
    hasher: RandomState,
    next_number: AtomicU64,
}

const SHARDS: usize = 16;

impl Cache {
    /// An empty cache.
    pub fn new(limits: CacheLimits) -> Cache {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect();
        Cache { limits, shards, hasher: RandomState::new(), next_number: AtomicU64::new(1) }
    }

    /// The key's hash and its shard. The table takes its slot from the low bits and a tag from
    /// the top seven, so the shard comes from bits in between (32 and up), which neither uses.
    fn shard(&self, key: &[u8]) -> (u64, &Mutex<HashTable<Entry>>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[(hash >> 32) as usize % SHARDS])
    }

    /// Looks up `key`; rewrites the id to `id`. With `allow_stale`, an expired answer within the
    /// stale window is returned (marked stale).
    pub fn get(&self, key: &(impl AsRef<[u8]> + ?Sized), id: u16, now: Instant, allow_stale: bool) -> Option<Cached> {
        let mut bytes = Vec::new();
        let hit = self.get_into(key, id, now, allow_stale, &mut bytes)?;
        Some(Cached { bytes, stale: hit.stale })
    }

    /// [`get`](Self::get) into a buffer the caller keeps (cleared first), so that a hit need not
    /// allocate.
    pub fn get_into(
        &self,
        key: &(impl AsRef<[u8]> + ?Sized),
        id: u16,
        now: Instant,
        allow_stale: bool,
        out: &mut Vec<u8>,
    ) -> Option<Hit> {
        let key = key.as_ref();
        let (hash, shard) = self.shard(key);
        let shard = shard.lock().ok()?;
        let entry = shard.find(hash, |e| e.key() == key)?;
        let stale = if now < entry.expires {
            false
        } else if allow_stale && now < entry.expires + self.limits.stale_for {
            true
        } else {
            return None;
        };
        let elapsed = u32::try_from(now.saturating_duration_since(entry.stored).as_secs()).unwrap_or(u32::MAX);
        out.clear();
        out.extend_from_slice(entry.answer());
        for off in entry.ttl_offsets() {
            let Some(field) = out.get_mut(off..off + 4) else { continue };
            let original = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
            let ttl = if stale { 30 } else { original.saturating_sub(elapsed) };
            field.copy_from_slice(&ttl.to_be_bytes());
        }
        let hit = Hit { stale, additional: entry.additional as usize, passed: entry.passed, number: entry.number };
        drop(shard);
        if let Some(header_id) = out.get_mut(0..2) {
            header_id.copy_from_slice(&id.to_be_bytes());
        }
        Some(hit)
    }

    /// Records that the answer of `hit` passed the ruleset with this `serial` unchanged, unless
    /// the entry has been replaced or dropped since.
    pub fn note_passed(&self, key: &(impl AsRef<[u8]> + ?Sized), hit: &Hit, serial: u64) {
        let key = key.as_ref();
        let (hash, shard) = self.shard(key);
        let Ok(mut shard) = shard.lock() else { return };
        if let Some(entry) = shard.find_mut(hash, |e| e.key() == key).filter(|e| e.number == hit.number) {
            entry.passed = serial;
        }
    }

    /// Stores a response for `key`, if it is cacheable: NOERROR with answers, or a negative
    /// answer (NXDOMAIN, or NOERROR without answers) whose authority section has an SOA.
    pub fn insert(&self, key: CacheKey, response: &Message<'_>, now: Instant) {
        let Some(ttl) = cache_ttl(response, &self.limits) else { return };
        if ttl.is_zero() {
            return;
        }
        let (key, answer) = (key.as_ref(), response.bytes());
        let (Ok(key_len), Ok(answer_len)) = (u16::try_from(key.len()), u16::try_from(answer.len())) else { return };
        let h = response.header();
        let records = usize::from(h.ancount) + usize::from(h.nscount) + usize::from(h.arcount);
        let mut data = Vec::with_capacity(key.len() + answer.len() + 2 * records);
        data.extend_from_slice(key);
        data.extend_from_slice(answer);
        for record in response.records().filter(|r| r.rtype != Type::OPT) {
            // Inside the answer, so below 65,535.
            data.extend_from_slice(&(record.ttl_offset as u16).to_le_bytes());
        }
        let (hash, shard) = self.shard(key);
        let entry = Entry {
            data: data.into_boxed_slice(),
            key_len,
            answer_len,
            stored: now,
            expires: now + ttl,
            additional: response.additional_offset() as u32,
            number: self.next_number.fetch_add(1, Ordering::Relaxed),
            passed: 0,
        };
        let Ok(mut shard) = shard.lock() else { return };
        if let Some(old) = shard.find_mut(hash, |e| e.key() == key) {
            *old = entry;
            return;
        }
        let per_shard = (self.limits.max_entries / SHARDS).max(1);
        if shard.len() >= per_shard {
            evict(&mut shard, per_shard / 10 + 1, now);
        }
        // Growing the table hashes the keys again (rare: tables grow until the bound, then stay).
        shard.insert_unique(hash, entry, |e| self.hasher.hash_one(e.key()));
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|s| s.len()).unwrap_or(0)).sum()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops at least `n` entries: the expired ones first, then those expiring soonest.
fn evict(shard: &mut HashTable<Entry>, n: usize, now: Instant) {
    let before = shard.len();
    shard.retain(|e| e.expires > now);
    let freed = before - shard.len();
    if freed >= n {
        return;
    }
    let mut expiries: Vec<Instant> = shard.iter().map(|e| e.expires).collect();
    let k = (n - freed).min(expiries.len());
    if k == 0 {
        return;
    }
    let (_, &mut cutoff, _) = expiries.select_nth_unstable(k - 1);
    let mut left = k;
    shard.retain(|e| {
        if left > 0 && e.expires <= cutoff {
            left -= 1;
            false
        } else {
            true
        }
    });
}

/// How long a response may be cached: the smallest TTL of its records for a positive answer; for
/// a negative one, min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5). `None`: not cacheable.
fn cache_ttl(response: &Message<'_>, limits: &CacheLimits) -> Option<Duration> {
    let header = response.header();
    if header.has(bawaba_wire::dns::flags::TC) {
        return None;
    }
    let rcode = header.rcode();
    let has_answer = response.answers().next().is_some();
    if rcode == Rcode::NOERROR && has_answer {
        let min = response.records().filter(|r| r.rtype != Type::OPT).map(|r| r.ttl).min()?;
        return Some(Duration::from_secs(u64::from(min)).min(limits.max_ttl));
    }
    if rcode == Rcode::NXDOMAIN || rcode == Rcode::NOERROR {
        let soa = response.authority().find(|r| r.rtype == Type::SOA)?;
        // SOA RDATA ends with five 32-bit fields; MINIMUM is the last (RFC 1035 section 3.3.13).
        let minimum = soa
            .rdata
            .len()
            .checked_sub(4)
            .and_then(|i| soa.rdata.get(i..))
            .map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]))?;
        let ttl = soa.ttl.min(minimum);
        return Some(Duration::from_secs(u64::from(ttl)).min(limits.max_negative_ttl));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bawaba_wire::dns::{build_query, Builder, Section};

    fn limits() -> CacheLimits {
        CacheLimits {
            max_entries: 160,
            max_ttl: Duration::from_secs(86_400),
            max_negative_ttl: Duration::from_secs(3_600),
            stale_for: Duration::from_secs(60),
        }
    }

    fn answer(name: &str, ttl: u32) -> Vec<u8> {
        let q = build_query(1, name, Type::A, true, None);
        let query = Message::parse(&q).unwrap();
        let mut b = Builder::response_to(&query, Rcode::NOERROR);
        b.push_qname_record(Section::Answer, Type::A, ttl, &[198, 18, 0, 1]);
        b.finish()
    }

    fn nxdomain(name: &str, soa_ttl: u32, minimum: u32) -> Vec<u8> {
        let q = build_query(1, name, Type::A, true, None);
        let query = Message::parse(&q).unwrap();
        let mut b = Builder::response_to(&query, Rcode::NXDOMAIN);
        let mut soa = b"\x00\x00".to_vec(); // MNAME and RNAME: the root, for brevity
        for v in [1u32, 3600, 600, 86400, minimum] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        b.push_record_raw(Section::Authority, b"\x04test\x00", Type::SOA, bawaba_wire::dns::Class::IN, soa_ttl, &soa);
        b.finish()
    }

    fn key(bytes: &[u8]) -> CacheKey {
        CacheKey::of(&Message::parse(bytes).unwrap(), false, false).unwrap()
    }

    #[test]
    fn serves_with_new_id_and_decremented_ttl_until_expiry() {
        let cache = Cache::new(limits());
        let t0 = Instant::now();
        let a = answer("www.example.test", 300);
        cache.insert(key(&a), &Message::parse(&a).unwrap(), t0);
        let hit = cache.get(&key(&a), 0xabcd, t0 + Duration::from_secs(100), false).unwrap();
        let m = Message::parse(&hit.bytes).unwrap();
        assert_eq!(m.header().id, 0xabcd);
        assert_eq!(m.answers().next().unwrap().ttl, 200);
        assert!(!hit.stale);
        assert!(cache.get(&key(&a), 1, t0 + Duration::from_secs(300), false).is_none());
        // Serve-stale within the window, with TTL 30 (RFC 8767 section 4).
        let stale = cache.get(&key(&a), 1, t0 + Duration::from_secs(330), true).unwrap();
        assert!(stale.stale);
        assert_eq!(Message::parse(&stale.bytes).unwrap().answers().next().unwrap().ttl, 30);
        assert!(cache.get(&key(&a), 1, t0 + Duration::from_secs(400), true).is_none());
    }

    #[test]
    fn written_key_bytes_find_what_the_owned_key_stored() {
        let cache = Cache::new(limits());
        let t0 = Instant::now();
        let a = answer("www.example.test", 300);
        let m = Message::parse(&a).unwrap();
        cache.insert(key(&a), &m, t0);
        let mut buf = vec![0xFF; 3];
        assert!(CacheKey::write(&m, false, false, &mut buf));
        assert_eq!(CacheKey::from(&buf[..]), key(&a));
        let mut out = b"an answer sent earlier".to_vec();
        let hit = cache.get_into(&buf[..], 7, t0, false, &mut out).unwrap();
        assert!(!hit.stale);
        assert_eq!(hit.additional, m.additional_offset());
        assert_eq!(Message::parse(&out).unwrap().header().id, 7);
        assert_eq!(out[2..], a[2..]);
        // The DO and CD bits are part of the key, and so are the type and the class.
        for (dnssec_ok, checking_disabled) in [(true, false), (false, true)] {
            assert!(CacheKey::write(&m, dnssec_ok, checking_disabled, &mut buf));
            assert!(cache.get(&buf[..], 1, t0, false).is_none());
        }
        let aaaa = build_query(1, "www.example.test", Type::AAAA, true, None);
        assert!(cache.get(&key(&aaaa), 1, t0, false).is_none());
        let mut chaos = build_query(1, "www.example.test", Type::A, true, None);
        let class_at = chaos.len() - 2;
        chaos[class_at..].copy_from_slice(&3u16.to_be_bytes());
        assert_ne!(key(&chaos), key(&a));
        assert!(cache.get(&key(&chaos), 1, t0, false).is_none());
    }

    #[test]
    fn every_ttl_counts_down_and_the_opt_record_is_left_alone() {
        let cache = Cache::new(limits());
        let t0 = Instant::now();
        let q = build_query(1, "two.example.test", Type::A, true, Some((1232, true)));
        let query = Message::parse(&q).unwrap();
        let mut b = Builder::response_to(&query, Rcode::NOERROR);
        b.push_qname_record(Section::Answer, Type::A, 300, &[198, 18, 0, 1]);
        b.push_qname_record(Section::Answer, Type::A, 600, &[198, 18, 0, 2]);
        b.push_opt(1232, true, &[]);
        let a = b.finish();
        let stored = Message::parse(&a).unwrap();
        cache.insert(key(&a), &stored, t0);
        let hit = cache.get(&key(&a), 9, t0 + Duration::from_secs(40), false).unwrap();
        let m = Message::parse(&hit.bytes).unwrap();
        assert_eq!(m.answers().map(|r| r.ttl).collect::<Vec<_>>(), [260, 560]);
        // The OPT "TTL" holds the extended rcode, version and DO bit (RFC 6891 6.1.3).
        assert!(m.edns().unwrap().dnssec_ok);
        assert_eq!(hit.bytes[stored.additional_offset()..], a[stored.additional_offset()..]);
    }

    #[test]
    fn a_pass_note_stays_with_its_entry() {
        let cache = Cache::new(limits());
        let t0 = Instant::now();
        let a = answer("www.example.test", 300);
        let mut out = Vec::new();
        cache.insert(key(&a), &Message::parse(&a).unwrap(), t0);
        let first = cache.get_into(&key(&a), 1, t0, false, &mut out).unwrap();
        assert_eq!(first.passed, 0, "a new entry has passed no policy");
        cache.note_passed(&key(&a), &first, 7);
        assert_eq!(cache.get_into(&key(&a), 1, t0, false, &mut out).unwrap().passed, 7);
        // A fresh answer for the same key replaces the entry and its note; a note taken on the
        // old entry does not carry over.
        cache.insert(key(&a), &Message::parse(&a).unwrap(), t0);
        cache.note_passed(&key(&a), &first, 8);
        assert_eq!(cache.get_into(&key(&a), 1, t0, false, &mut out).unwrap().passed, 0);
    }

    #[test]
    fn keys_ignore_case() {
        let cache = Cache::new(limits());
        let a = answer("WWW.Example.TEST", 300);
        cache.insert(key(&a), &Message::parse(&a).unwrap(), Instant::now());
        let b = answer("www.example.test", 300);
        assert!(cache.get(&key(&b), 1, Instant::now(), false).is_some());
    }

    #[test]
    fn negative_answers_use_the_soa_minimum() {
        let cache = Cache::new(limits());
        let t0 = Instant::now();
        let n = nxdomain("gone.example.test", 3600, 60);
        cache.insert(key(&n), &Message::parse(&n).unwrap(), t0);
        assert!(cache.get(&key(&n), 1, t0 + Duration::from_secs(59), false).is_some());
        assert!(cache.get(&key(&n), 1, t0 + Duration::from_secs(61), false).is_none());
        // Without an SOA a negative answer is not cached.
        let q = build_query(1, "x.test", Type::A, true, None);
        let bare = Builder::response_to(&Message::parse(&q).unwrap(), Rcode::NXDOMAIN).finish();
        cache.insert(key(&bare), &Message::parse(&bare).unwrap(), t0);
        assert!(cache.get(&key(&bare), 1, t0, false).is_none());
    }

    #[test]
    fn a_flood_of_random_names_stays_within_the_bound() {
        let cache = Cache::new(limits());
        let t0 = Instant::now();
        for i in 0..10_000 {
            let a = answer(&format!("r{i}.flood.test"), 300 + (i % 7));
            cache.insert(key(&a), &Message::parse(&a).unwrap(), t0);
        }
        assert!(cache.len() <= 160, "{}", cache.len());
        assert!(cache.len() >= 100, "{}", cache.len());
    }
}
