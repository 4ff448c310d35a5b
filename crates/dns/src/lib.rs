//! bawaba's DNS server: a caching forwarder that enforces the lawful-blocking policy with
//! Response Policy Zone semantics and says why it blocked.
//!
//! Layers:
//! - [`policy`]: RPZ semantics over the compiled [`bawaba_policy::Ruleset`] (QNAME, CNAME-chain
//!   and response-IP triggers; NXDOMAIN, NODATA, block page, DROP, PASSTHRU), and the Extended DNS
//!   Error (RFC 8914) that names the order.
//! - [`cache`]: bounded answer cache with TTL rewriting, RFC 2308 negative caching and RFC 8767
//!   serve-stale.
//! - [`upstream`]: forwarding with per-server timeouts, TCP retry on truncation and in-flight
//!   de-duplication.
//! - [`server`]: UDP and TCP listeners; policy and cache answered inline, misses forwarded in
//!   bounded tasks.
//! - [`metrics`]: Prometheus counters.
//! - [`xfr`]: the policy in force as an RPZ zone for other resolvers: AXFR, IXFR, NOTIFY, and
//!   authoritative answers for names in the zone, to the clients of an ACL.
//!
//! The ruleset lives in an `ArcSwap`: a reload swaps the pointer and no query waits. The caller
//! loads the policy before [`server::bind`], so no query is ever answered unfiltered.

pub mod cache;
pub mod metrics;
pub mod policy;
pub mod ratelimit;
pub mod server;
pub mod upstream;
pub mod xfr;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bawaba_policy::{DomainName, IpPrefix};
use serde::Deserialize;

/// `[dns]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Start the DNS server with `bawaba serve`.
    pub enabled: bool,
    /// Addresses to answer on, UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers, tried in order. Empty: the nameservers of /etc/resolv.conf.
    pub upstreams: Vec<SocketAddr>,
    /// Per-upstream timeout, in milliseconds.
    pub upstream_timeout_ms: u64,
    /// Most cached answers.
    pub cache_entries: usize,
    /// Longest TTL honoured, in seconds.
    pub max_ttl: u64,
    /// Longest negative-caching TTL, in seconds (RFC 2308).
    pub max_negative_ttl: u64,
    /// Serve expired answers this many seconds past expiry when no upstream answers (RFC 8767); 0: off.
    pub serve_stale: u64,
    /// IPv4 address of the block page server, answered for block-page rules.
    pub block_page_ipv4: Option<Ipv4Addr>,
    /// IPv6 address of the block page server.
    pub block_page_ipv6: Option<Ipv6Addr>,
    /// TTL of policy answers, in seconds.
    pub policy_ttl: u32,
    /// Most queries waiting on upstreams at once; beyond it, queries are dropped and counted.
    pub max_inflight: usize,
    /// Most TCP connections at once.
    pub max_tcp_connections: usize,
    /// Idle TCP connections are closed after this many milliseconds.
    pub tcp_idle_timeout_ms: u64,
    /// Response rate limit: UDP answers per second to one client /24 (IPv4) or /56 (IPv6); 0 turns
    /// limiting off. Keeps the server useless as a reflection amplifier.
    pub rate_limit: u32,
    /// Every this-many-th answer over the limit is sent truncated (TC), so real clients retry over
    /// TCP; the others are dropped. 0: drop them all.
    pub rate_limit_slip: u32,
    /// Client prefixes never rate limited.
    pub rate_limit_exempt: Vec<bawaba_policy::IpPrefix>,
    /// `[dns.rpz]`: serving the policy as an RPZ zone to other resolvers.
    pub rpz: RpzConfig,
}

/// `[dns.rpz]`: the policy in force served as an RPZ zone over AXFR/IXFR (RFC 5936, RFC 1995),
/// with NOTIFY (RFC 1996), so existing resolvers (Unbound, BIND) can subscribe as secondaries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpzConfig {
    /// Serve the zone on the DNS listeners.
    pub enabled: bool,
    /// The zone's origin. Unset: `[policy] rpz_origin`, the origin `bawaba policy export` writes.
    pub origin: Option<DomainName>,
    /// Clients that may transfer the zone and query names in it; others get REFUSED.
    pub allow_transfer: Vec<IpPrefix>,
    /// Secondaries sent a NOTIFY whenever a new policy version is put in force.
    pub notify: Vec<SocketAddr>,
    /// Policy versions kept for IXFR; a secondary older than that gets the whole zone.
    pub history: usize,
    /// `[dns.rpz.tsig_key]`: when set, transfers must be signed with this key (TSIG, RFC 8945)
    /// in addition to coming from `allow_transfer`.
    pub tsig_key: Option<TsigKeyConfig>,
}

/// `[dns.rpz.tsig_key]`: a TSIG key shared with the secondaries (BIND's `key` statement).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    /// The key's name, the same on both sides.
    pub name: DomainName,
    /// The algorithm; only `hmac-sha256` is supported.
    pub algorithm: String,
    /// The shared secret, base64 (`tsig-keygen` prints one).
    pub secret: String,
}

impl TsigKeyConfig {
    /// The key, or why it cannot be used.
    pub fn key(&self) -> Result<xfr::TsigKey, xfr::XfrError> {
        if !self.algorithm.eq_ignore_ascii_case("hmac-sha256") {
            return Err(xfr::XfrError::BadKey { why: "only the hmac-sha256 algorithm is supported" });
        }
        xfr::TsigKey::new(&self.name, &self.secret)
    }
}

impl Default for RpzConfig {
    fn default() -> Self {
        RpzConfig {
            enabled: false,
            origin: None,
            allow_transfer: ["127.0.0.0/8", "::1/128"].iter().filter_map(|p| IpPrefix::parse(p).ok()).collect(),
            notify: Vec::new(),
            history: 10,
            tsig_key: None,
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            enabled: false,
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
            upstreams: Vec::new(),
            upstream_timeout_ms: 1500,
            cache_entries: 200_000,
            max_ttl: 86_400,
            max_negative_ttl: 3_600,
            serve_stale: 3_600,
            block_page_ipv4: None,
            block_page_ipv6: None,
            policy_ttl: 60,
            max_inflight: 10_000,
            max_tcp_connections: 256,
            tcp_idle_timeout_ms: 10_000,
            rate_limit: 1_000,
            rate_limit_slip: 2,
            rate_limit_exempt: vec![
                bawaba_policy::IpPrefix::V4 { addr: 0x7f00_0000, len: 8 },
                bawaba_policy::IpPrefix::V6 { addr: 1, len: 128 },
            ],
            rpz: RpzConfig::default(),
        }
    }
}

impl DnsConfig {
    /// The upstreams, from the config or from /etc/resolv.conf.
    pub fn upstream_addrs(&self) -> std::io::Result<Vec<SocketAddr>> {
        if !self.upstreams.is_empty() {
            return Ok(self.upstreams.clone());
        }
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Ok(resolv_conf_nameservers(&text))
    }
}

/// The `nameserver` lines of a resolv.conf, on port 53.
pub fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_resolv_conf() {
        let text =
            "# comment\nnameserver 198.18.0.53\nsearch example.test\nnameserver 2001:db8::53\nnameserver bogus\n";
        let got = super::resolv_conf_nameservers(text);
        assert_eq!(got, vec!["198.18.0.53:53".parse().unwrap(), "[2001:db8::53]:53".parse().unwrap()]);
    }
}
