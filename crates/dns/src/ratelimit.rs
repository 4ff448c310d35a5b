//! Response rate limiting per client prefix, so the server is useless as a reflection amplifier
//! (the idea of BIND's RRL): UDP answers to one /24 (IPv4) or /56 (IPv6) are limited to `rate`
//! per second with a burst of one second's worth; past it, every `slip`-th answer is sent
//! truncated (TC set, so a real client retries over TCP, which cannot be spoofed) and the rest
//! are dropped. Exempt prefixes (by default loopback) are never limited. Memory is bounded: the
//! table holds at most `max_clients` prefixes and forgets idle ones first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use bawaba_policy::IpPrefix;

/// What to do with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Send it.
    Send,
    /// Send a truncated answer instead.
    Slip,
    /// Send nothing.
    Drop,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    limited: u32,
}

/// The limiter.
pub struct RateLimiter {
    rate: f64,
    slip: u32,
    exempt: Vec<IpPrefix>,
    max_clients: usize,
    table: Mutex<HashMap<u128, Bucket>>,
}

impl RateLimiter {
    /// `rate` answers per second per prefix (0 disables limiting), every `slip`-th limited
    /// answer truncated (0: never), `exempt` prefixes never limited.
    pub fn new(rate: u32, slip: u32, exempt: Vec<IpPrefix>, max_clients: usize) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate),
            slip,
            exempt,
            max_clients: max_clients.max(16),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// True when limiting is on.
    pub fn is_enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Decides for one answer to `client` at `now`.
    pub fn check(&self, client: IpAddr, now: Instant) -> Limit {
        if !self.is_enabled() || self.exempt.iter().any(|p| p.contains(client)) {
            return Limit::Send;
        }
        let key = match client {
            IpAddr::V4(a) => u128::from(u32::from(a) & 0xffff_ff00),
            IpAddr::V6(a) => (u128::from(a) & !((1u128 << 72) - 1)) | 1,
        };
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= self.max_clients && !table.contains_key(&key) {
            // Forget prefixes whose bucket is full again (idle for a second or more).
            table.retain(|_, b| now.saturating_duration_since(b.last).as_secs_f64() < 1.0);
            if table.len() >= self.max_clients {
                table.clear();
            }
        }
        let bucket = table.entry(key).or_insert(Bucket { tokens: self.rate, last: now, limited: 0 });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Limit::Send;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.slip > 0 && bucket.limited.is_multiple_of(self.slip) {
            Limit::Slip
        } else {
            Limit::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_a_prefix_then_refills() {
        let rl = RateLimiter::new(10, 2, vec![], 1000);
        let t0 = Instant::now();
        let a: IpAddr = "198.18.5.1".parse().unwrap();
        let b: IpAddr = "198.18.5.200".parse().unwrap(); // same /24
        let sent = (0..10).filter(|i| rl.check(if i % 2 == 0 { a } else { b }, t0) == Limit::Send).count();
        assert_eq!(sent, 10);
        let over: Vec<Limit> = (0..4).map(|_| rl.check(a, t0)).collect();
        assert_eq!(over, vec![Limit::Drop, Limit::Slip, Limit::Drop, Limit::Slip]);
        // Another /24 is unaffected.
        assert_eq!(rl.check("198.18.6.1".parse().unwrap(), t0), Limit::Send);
        // Half a second refills five.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..6).filter(|_| rl.check(a, t1) == Limit::Send).count(), 5);
    }

    #[test]
    fn exempt_and_disabled() {
        let rl = RateLimiter::new(1, 0, vec!["127.0.0.0/8".parse().unwrap()], 1000);
        let t0 = Instant::now();
        assert!((0..100).all(|_| rl.check("127.0.0.1".parse().unwrap(), t0) == Limit::Send));
        assert_eq!(rl.check("2001:db8::1".parse().unwrap(), t0), Limit::Send);
        assert_eq!(rl.check("2001:db8::2".parse().unwrap(), t0), Limit::Drop, "same /56");
        assert_eq!(rl.check("2001:db8:0:100::1".parse().unwrap(), t0), Limit::Send, "another /56");
        let off = RateLimiter::new(0, 0, vec![], 1000);
        assert!((0..100).all(|_| off.check("198.18.0.1".parse().unwrap(), t0) == Limit::Send));
    }

    #[test]
    fn a_spoofed_flood_from_many_prefixes_stays_bounded() {
        let rl = RateLimiter::new(5, 2, vec![], 64);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            rl.check(IpAddr::from(std::net::Ipv4Addr::from(i << 8)), t0);
        }
        assert!(rl.table.lock().unwrap().len() <= 64);
    }
}
