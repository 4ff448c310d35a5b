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
//!
//! The ruleset lives in an `ArcSwap`: a reload swaps the pointer and no query waits. The caller
//! loads the policy before [`server::bind`], so no query is ever answered unfiltered.

pub mod cache;
pub mod metrics;
pub mod policy;
pub mod server;
pub mod upstream;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

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
