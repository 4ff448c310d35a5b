//! Counters for everything that moves, rendered in the Prometheus text format. Labels come from
//! bounded sets only (transport, rcode, action, category, reason): never a client address.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bawaba_policy::{Action, Category};

use crate::policy::{Hit, Trigger};

/// Why a query got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not parseable even as a header, or a response sent to us.
    Malformed,
    /// The bounded in-flight limit was reached.
    Overload,
    /// A DROP policy action.
    Policy,
    /// The answer could not be sent.
    SendError,
    /// Response rate limiting withheld the answer.
    RateLimited,
}

const DROP_REASONS: [(&str, DropReason); 5] = [
    ("malformed", DropReason::Malformed),
    ("overload", DropReason::Overload),
    ("policy", DropReason::Policy),
    ("send_error", DropReason::SendError),
    ("rate_limited", DropReason::RateLimited),
];

const LATENCY_BUCKETS_MS: [u64; 11] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];

/// The DNS server's counters.
#[derive(Debug, Default)]
pub struct DnsMetrics {
    queries_udp: AtomicU64,
    queries_tcp: AtomicU64,
    rcodes: [AtomicU64; 16],
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    stale_answers: AtomicU64,
    dedup_joins: AtomicU64,
    hits: [[AtomicU64; 7]; 5],
    triggers: [AtomicU64; 3],
    drops: [AtomicU64; 5],
    slipped: AtomicU64,
    upstream_ok: AtomicU64,
    upstream_failures: AtomicU64,
    upstream_latency: [AtomicU64; 12],
    upstream_latency_sum_us: AtomicU64,
    policy_reloads: AtomicU64,
    policy_version: AtomicU64,
    xfr_answers: [AtomicU64; 4],
    notifies: [AtomicU64; 2],
    by_order: std::sync::Mutex<std::collections::BTreeMap<i64, u64>>,
    loaded_at: std::sync::atomic::AtomicI64,
}

const XFR_KINDS: [&str; 4] = ["axfr", "ixfr", "soa", "query"];

impl DnsMetrics {
    /// A query arrived.
    pub fn query(&self, tcp: bool) {
        if tcp { &self.queries_tcp } else { &self.queries_udp }.fetch_add(1, Relaxed);
    }

    /// An answer with this rcode was sent.
    pub fn answer(&self, rcode: u8) {
        self.rcodes[usize::from(rcode & 0xf)].fetch_add(1, Relaxed);
    }

    /// Cache lookup outcome.
    pub fn cache(&self, hit: bool) {
        if hit { &self.cache_hits } else { &self.cache_misses }.fetch_add(1, Relaxed);
    }

    /// A stale answer was served (RFC 8767).
    pub fn stale(&self) {
        self.stale_answers.fetch_add(1, Relaxed);
    }

    /// A query joined an identical one already in flight upstream.
    pub fn dedup_join(&self) {
        self.dedup_joins.fetch_add(1, Relaxed);
    }

    /// A policy rule decided the answer.
    pub fn policy_hit(&self, hit: &Hit) {
        let a = Action::ALL.iter().position(|x| *x == hit.action).unwrap_or(0);
        let c = hit.category.and_then(|c| Category::ALL.iter().position(|x| *x == c)).map_or(6, |i| i.min(5));
        self.hits[a][c].fetch_add(1, Relaxed);
        let t = match hit.trigger {
            Trigger::Qname => 0,
            Trigger::Cname => 1,
            Trigger::ResponseIp => 2,
        };
        self.triggers[t].fetch_add(1, Relaxed);
        if let Some(order) = hit.order {
            // Bounded: one entry per order in the policy.
            *self.by_order.lock().unwrap_or_else(|e| e.into_inner()).entry(order.0).or_default() += 1;
        }
    }

    /// Policy answers so far by the order's category (all actions).
    pub fn blocked_by_category(&self) -> Vec<(&'static str, u64)> {
        (0..Category::ALL.len())
            .map(|k| (Category::ALL[k].as_str(), self.hits.iter().map(|row| row[k].load(Relaxed)).sum()))
            .collect()
    }

    /// Policy answers so far by order id.
    pub fn blocked_by_order(&self) -> std::collections::BTreeMap<i64, u64> {
        self.by_order.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The policy version in force and when it was loaded (Unix seconds).
    pub fn policy(&self) -> (u64, i64) {
        (self.policy_version.load(Relaxed), self.loaded_at.load(Relaxed))
    }

    /// A query got no answer.
    pub fn dropped(&self, reason: DropReason) {
        let i = DROP_REASONS.iter().position(|(_, r)| *r == reason).unwrap_or(0);
        self.drops[i].fetch_add(1, Relaxed);
    }

    /// Response rate limiting sent a truncated answer instead of the full one.
    pub fn slipped(&self) {
        self.slipped.fetch_add(1, Relaxed);
    }

    /// An upstream exchange finished.
    pub fn upstream(&self, ok: bool, took: Duration) {
        if !ok {
            self.upstream_failures.fetch_add(1, Relaxed);
            return;
        }
        self.upstream_ok.fetch_add(1, Relaxed);
        let ms = took.as_millis() as u64;
        let i = LATENCY_BUCKETS_MS.iter().position(|&b| ms <= b).unwrap_or(LATENCY_BUCKETS_MS.len());
        self.upstream_latency[i].fetch_add(1, Relaxed);
        self.upstream_latency_sum_us.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// A new policy version is in force.
    pub fn policy_loaded(&self, version: u64) {
        self.policy_reloads.fetch_add(1, Relaxed);
        self.policy_version.store(version, Relaxed);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        self.loaded_at.store(now, Relaxed);
    }

    /// A query for the RPZ zone (transfer, SOA poll or a name in it) was answered.
    pub fn xfr_answer(&self, qtype: bawaba_wire::dns::Type) {
        use bawaba_wire::dns::Type;
        let i = match qtype {
            Type::AXFR => 0,
            Type::IXFR => 1,
            Type::SOA => 2,
            _ => 3,
        };
        self.xfr_answers[i].fetch_add(1, Relaxed);
    }

    /// A NOTIFY to a secondary was acknowledged (`true`) or given up on.
    pub fn notify(&self, acknowledged: bool) {
        self.notifies[usize::from(!acknowledged)].fetch_add(1, Relaxed);
    }

    /// Total queries (both transports).
    pub fn queries(&self) -> u64 {
        self.queries_udp.load(Relaxed) + self.queries_tcp.load(Relaxed)
    }

    /// Renders the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let c = |o: &mut String, name: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        c(&mut o, "bawaba_dns_queries_total", "Queries received, by transport.");
        let _ = writeln!(o, "bawaba_dns_queries_total{{transport=\"udp\"}} {}", self.queries_udp.load(Relaxed));
        let _ = writeln!(o, "bawaba_dns_queries_total{{transport=\"tcp\"}} {}", self.queries_tcp.load(Relaxed));
        c(&mut o, "bawaba_dns_answers_total", "Answers sent, by rcode.");
        for (i, n) in self.rcodes.iter().enumerate() {
            let n = n.load(Relaxed);
            if n > 0 || i <= 5 {
                let _ = writeln!(o, "bawaba_dns_answers_total{{rcode=\"{}\"}} {n}", bawaba_wire::dns::Rcode(i as u8));
            }
        }
        c(&mut o, "bawaba_dns_cache_lookups_total", "Cache lookups, by result.");
        let _ = writeln!(o, "bawaba_dns_cache_lookups_total{{result=\"hit\"}} {}", self.cache_hits.load(Relaxed));
        let _ = writeln!(o, "bawaba_dns_cache_lookups_total{{result=\"miss\"}} {}", self.cache_misses.load(Relaxed));
        c(&mut o, "bawaba_dns_stale_answers_total", "Expired answers served because every upstream failed.");
        let _ = writeln!(o, "bawaba_dns_stale_answers_total {}", self.stale_answers.load(Relaxed));
        c(&mut o, "bawaba_dns_upstream_dedup_total", "Queries that joined an identical upstream query in flight.");
        let _ = writeln!(o, "bawaba_dns_upstream_dedup_total {}", self.dedup_joins.load(Relaxed));
        c(&mut o, "bawaba_dns_policy_hits_total", "Answers decided by a policy rule, by action and category.");
        for (a, row) in self.hits.iter().enumerate() {
            for (k, n) in row.iter().enumerate() {
                let n = n.load(Relaxed);
                if n == 0 {
                    continue;
                }
                let cat = Category::ALL.get(k).map_or("none", |c| c.as_str());
                let _ =
                    writeln!(o, "bawaba_dns_policy_hits_total{{action=\"{}\",category=\"{cat}\"}} {n}", Action::ALL[a]);
            }
        }
        c(&mut o, "bawaba_dns_policy_triggers_total", "Policy hits by trigger kind.");
        for (i, t) in ["qname", "cname", "response_ip"].iter().enumerate() {
            let _ =
                writeln!(o, "bawaba_dns_policy_triggers_total{{trigger=\"{t}\"}} {}", self.triggers[i].load(Relaxed));
        }
        c(&mut o, "bawaba_dns_dropped_total", "Queries that got no answer, by reason.");
        for (i, (name, _)) in DROP_REASONS.iter().enumerate() {
            let _ = writeln!(o, "bawaba_dns_dropped_total{{reason=\"{name}\"}} {}", self.drops[i].load(Relaxed));
        }
        c(&mut o, "bawaba_dns_rate_limit_slips_total", "Truncated answers sent instead of full ones by rate limiting.");
        let _ = writeln!(o, "bawaba_dns_rate_limit_slips_total {}", self.slipped.load(Relaxed));
        c(&mut o, "bawaba_dns_upstream_failures_total", "Upstream exchanges that failed on every server.");
        let _ = writeln!(o, "bawaba_dns_upstream_failures_total {}", self.upstream_failures.load(Relaxed));
        let _ = writeln!(
            o,
            "# HELP bawaba_dns_upstream_latency_seconds Upstream answer latency.\n\
             # TYPE bawaba_dns_upstream_latency_seconds histogram"
        );
        let mut cumulative = 0;
        for (i, b) in LATENCY_BUCKETS_MS.iter().enumerate() {
            cumulative += self.upstream_latency[i].load(Relaxed);
            let _ =
                writeln!(o, "bawaba_dns_upstream_latency_seconds_bucket{{le=\"{}\"}} {cumulative}", *b as f64 / 1000.0);
        }
        cumulative += self.upstream_latency[LATENCY_BUCKETS_MS.len()].load(Relaxed);
        let _ = writeln!(o, "bawaba_dns_upstream_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            o,
            "bawaba_dns_upstream_latency_seconds_sum {}",
            self.upstream_latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "bawaba_dns_upstream_latency_seconds_count {cumulative}");
        c(&mut o, "bawaba_dns_rpz_answers_total", "Answers for the served RPZ zone, by kind.");
        for (i, kind) in XFR_KINDS.iter().enumerate() {
            let _ =
                writeln!(o, "bawaba_dns_rpz_answers_total{{kind=\"{kind}\"}} {}", self.xfr_answers[i].load(Relaxed));
        }
        c(&mut o, "bawaba_dns_rpz_notifies_total", "NOTIFY messages to secondaries, by outcome.");
        for (i, outcome) in ["acknowledged", "unanswered"].iter().enumerate() {
            let _ = writeln!(
                o,
                "bawaba_dns_rpz_notifies_total{{outcome=\"{outcome}\"}} {}",
                self.notifies[i].load(Relaxed)
            );
        }
        c(&mut o, "bawaba_dns_policy_reloads_total", "Policy versions put in force.");
        let _ = writeln!(o, "bawaba_dns_policy_reloads_total {}", self.policy_reloads.load(Relaxed));
        let _ = writeln!(
            o,
            "# HELP bawaba_dns_policy_version The policy version in force.\n# TYPE bawaba_dns_policy_version gauge\n\
             bawaba_dns_policy_version {}",
            self.policy_version.load(Relaxed)
        );
        o
    }
}
