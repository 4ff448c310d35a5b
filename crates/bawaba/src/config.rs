//! The configuration file (TOML). Every field has a default; `etc/bawaba.example.toml` lists them
//! all, and a test loads it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bawaba_policy::DomainName;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where state lives.
    pub store: StoreSection,
    /// Policy limits.
    pub policy: PolicySection,
    /// Signed bundles.
    pub bundle: BundleSection,
    /// `bawaba serve`: policy reloads and metrics.
    pub serve: ServeSection,
    /// The DNS server.
    pub dns: bawaba_dns::DnsConfig,
    /// The packet enforcement engine.
    pub engine: bawaba_engine::config::EngineSection,
    /// The flow collector.
    pub flow: bawaba_defense::collector::CollectorConfig,
    /// Attack detection and mitigation planning.
    pub ddos: bawaba_ddos::DdosConfig,
    /// The routers mitigation routes go to.
    pub bgp: bawaba_defense::service::BgpConfig,
    /// The web console, the API and the public pages.
    pub console: bawaba_console::ConsoleConfig,
}

/// `[serve]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSection {
    /// How often to look for a newer signed bundle in the bundle directory, in seconds.
    pub reload_interval_secs: u64,
    /// Where to serve Prometheus metrics (`GET /metrics`); unset: no metrics endpoint.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Worker threads; 0: one per core.
    pub threads: usize,
    /// This gateway site's name, as the central console lists it.
    pub site: String,
    /// The central console this site reports its enforcement points to (`https://HOST:PORT`
    /// or `http://HOST:PORT`); unset: no reports.
    pub report_to: Option<String>,
    /// The API token the reports authenticate with (a user with the operator role there).
    pub report_token: Option<String>,
    /// PEM file of the CA certificate(s) that signed the central console's certificate (HTTPS).
    pub report_ca: Option<PathBuf>,
    /// How often to report, in seconds.
    pub report_interval_secs: u64,
}

impl Default for ServeSection {
    fn default() -> Self {
        ServeSection {
            reload_interval_secs: 5,
            metrics_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9153))),
            threads: 0,
            site: "local".into(),
            report_to: None,
            report_token: None,
            report_ca: None,
            report_interval_secs: 30,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Data directory: SQLite database, keys, bundles. Relative paths are relative to the
    /// directory bawaba is started in.
    pub data_dir: PathBuf,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection { data_dir: PathBuf::from("data") }
    }
}

/// `[policy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Longest validity of an order, in days.
    pub max_order_days: u32,
    /// Shortest IPv4 prefix accepted without --force.
    pub min_ipv4_prefix: u8,
    /// Shortest IPv6 prefix accepted without --force.
    pub min_ipv6_prefix: u8,
    /// Origin of the exported RPZ zone.
    pub rpz_origin: DomainName,
    /// Name that block-page rules point to in the exported RPZ (CNAME target); empty for NXDOMAIN.
    pub rpz_block_page: Option<DomainName>,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            max_order_days: 365,
            min_ipv4_prefix: 24,
            min_ipv6_prefix: 48,
            rpz_origin: DomainName::parse("rpz.bawaba.invalid").expect("the default origin is a valid name"),
            rpz_block_page: None,
        }
    }
}

/// `[bundle]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BundleSection {
    /// Where bundles are written and read; default `<data_dir>/bundles`.
    pub dir: Option<PathBuf>,
    /// The ed25519 signing key; default `<data_dir>/keys/bundle-signing.key`.
    pub signing_key: Option<PathBuf>,
    /// Public keys whose bundles are trusted; default `[<data_dir>/keys/bundle-signing.pub]`.
    pub trusted_keys: Vec<PathBuf>,
}

impl Config {
    /// Loads `path`, or the defaults when `path` is None.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in config {}", path.display()))
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config> {
        Ok(toml::from_str(text)?)
    }

    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.store.data_dir.join("bawaba.db")
    }

    /// The directory of key files.
    pub fn key_dir(&self) -> PathBuf {
        self.store.data_dir.join("keys")
    }

    /// The bundle directory.
    pub fn bundle_dir(&self) -> PathBuf {
        self.bundle.dir.clone().unwrap_or_else(|| self.store.data_dir.join("bundles"))
    }

    /// The signing key file.
    pub fn signing_key(&self) -> PathBuf {
        self.bundle.signing_key.clone().unwrap_or_else(|| self.key_dir().join("bundle-signing.key"))
    }

    /// The trusted public key files.
    pub fn trusted_keys(&self) -> Vec<PathBuf> {
        if self.bundle.trusted_keys.is_empty() {
            vec![self.key_dir().join("bundle-signing.pub")]
        } else {
            self.bundle.trusted_keys.clone()
        }
    }

    /// The origin of the RPZ zone `bawaba serve` transfers: `[dns.rpz] origin`, else
    /// `[policy] rpz_origin`.
    pub fn served_rpz_origin(&self) -> DomainName {
        self.dns.rpz.origin.clone().unwrap_or_else(|| self.policy.rpz_origin.clone())
    }

    /// How the RPZ zone is written, both by `bawaba policy export` and for zone transfers: the
    /// block page from `[policy] rpz_block_page`, the default TTL.
    pub fn rpz_export_options(&self, origin: DomainName, serial: u32) -> bawaba_formats::ExportOptions {
        let options = bawaba_formats::ExportOptions::new(origin, serial);
        match &self.policy.rpz_block_page {
            Some(name) => options.with_block_page(bawaba_formats::BlockPageTarget::Name(name.clone())),
            None => options,
        }
    }

    /// The store's limits.
    pub fn store_config(&self) -> bawaba_store::StoreConfig {
        bawaba_store::StoreConfig {
            max_order_days: self.policy.max_order_days,
            guard: bawaba_policy::Guard {
                min_ipv4_len: self.policy.min_ipv4_prefix,
                min_ipv6_len: self.policy.min_ipv6_prefix,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_loads_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/bawaba.example.toml");
        let cfg = Config::load(Some(&path)).unwrap();
        let def = Config::default();
        assert_eq!(cfg.store.data_dir, def.store.data_dir);
        assert_eq!(cfg.policy.max_order_days, def.policy.max_order_days);
        assert_eq!(cfg.policy.min_ipv4_prefix, def.policy.min_ipv4_prefix);
        assert_eq!(cfg.policy.min_ipv6_prefix, def.policy.min_ipv6_prefix);
        assert_eq!(cfg.policy.rpz_origin, def.policy.rpz_origin);
        assert_eq!(cfg.serve.reload_interval_secs, def.serve.reload_interval_secs);
        assert_eq!(cfg.serve.metrics_listen, def.serve.metrics_listen);
        assert_eq!(cfg.serve.threads, def.serve.threads);
        // The example enables DNS; every other DNS setting is the default.
        assert!(cfg.dns.enabled);
        let d = bawaba_dns::DnsConfig::default();
        assert_eq!(cfg.dns.listen, d.listen);
        assert_eq!(cfg.dns.upstreams, d.upstreams);
        assert_eq!(cfg.dns.upstream_timeout_ms, d.upstream_timeout_ms);
        assert_eq!(cfg.dns.cache_entries, d.cache_entries);
        assert_eq!(cfg.dns.max_ttl, d.max_ttl);
        assert_eq!(cfg.dns.max_negative_ttl, d.max_negative_ttl);
        assert_eq!(cfg.dns.serve_stale, d.serve_stale);
        assert_eq!(cfg.dns.block_page_ipv4, d.block_page_ipv4);
        assert_eq!(cfg.dns.policy_ttl, d.policy_ttl);
        assert_eq!(cfg.dns.max_inflight, d.max_inflight);
        assert_eq!(cfg.dns.max_tcp_connections, d.max_tcp_connections);
        assert_eq!(cfg.dns.tcp_idle_timeout_ms, d.tcp_idle_timeout_ms);
        assert_eq!(cfg.dns.rate_limit, d.rate_limit);
        assert_eq!(cfg.dns.rate_limit_slip, d.rate_limit_slip);
        assert_eq!(cfg.dns.rate_limit_exempt, d.rate_limit_exempt);
        assert_eq!(cfg.dns.rpz.enabled, d.rpz.enabled);
        assert_eq!(cfg.dns.rpz.origin, d.rpz.origin);
        assert_eq!(cfg.dns.rpz.allow_transfer, d.rpz.allow_transfer);
        assert_eq!(cfg.dns.rpz.notify, d.rpz.notify);
        assert_eq!(cfg.dns.rpz.history, d.rpz.history);
        assert!(cfg.dns.rpz.tsig_key.is_none() && d.rpz.tsig_key.is_none());
        assert_eq!(cfg.served_rpz_origin(), cfg.policy.rpz_origin);
        // The engine section is all defaults (off).
        let e = bawaba_engine::config::EngineSection::default();
        assert_eq!(cfg.engine.mode, e.mode);
        assert_eq!(cfg.engine.queue, e.queue);
        assert_eq!((&cfg.engine.interface, cfg.engine.fanout_group), (&e.interface, e.fanout_group));
        assert_eq!(cfg.engine.fail_open, e.fail_open);
        assert_eq!(cfg.engine.queued_packets, e.queued_packets);
        assert_eq!(cfg.engine.install_rules, e.install_rules);
        assert_eq!(cfg.engine.chain, e.chain);
        assert_eq!(
            (cfg.engine.mark_allow, cfg.engine.mark_block, cfg.engine.mark_mask),
            (e.mark_allow, e.mark_block, e.mark_mask)
        );
        assert_eq!(cfg.engine.block_page_url, e.block_page_url);
        assert_eq!(cfg.engine.max_flows, e.max_flows);
        assert_eq!(cfg.engine.inspect_packets, e.inspect_packets);
        assert_eq!(cfg.engine.reassembly_buffers, e.reassembly_buffers);
        assert_eq!(cfg.engine.rejudge_on_reload, e.rejudge_on_reload);
        assert_eq!(cfg.engine.tcp_timeout_secs, e.tcp_timeout_secs);
        assert_eq!(cfg.engine.udp_timeout_secs, e.udp_timeout_secs);
        // Flow collection, detection and BGP: the example's values.
        let f = bawaba_defense::collector::CollectorConfig::default();
        assert_eq!((cfg.flow.enabled, &cfg.flow.listen), (f.enabled, &f.listen));
        assert_eq!(cfg.flow.socket_buffer_bytes, f.socket_buffer_bytes);
        let d = bawaba_ddos::DdosConfig::default();
        assert_eq!(cfg.ddos.detection.window_ms, d.detection.window_ms);
        assert_eq!(cfg.ddos.detection.hold_down_ms, d.detection.hold_down_ms);
        assert_eq!(cfg.ddos.detection.vectors, d.detection.vectors);
        assert_eq!(cfg.ddos.mitigation.dry_run, d.mitigation.dry_run);
        assert_eq!(cfg.ddos.detection.groups.len(), 1, "the example shows one customer group");
        assert!(cfg.bgp.peers.is_empty());
        assert_eq!(cfg.bgp.local_as, bawaba_defense::service::BgpConfig::default().local_as);
    }

    #[test]
    fn rpz_section_with_a_tsig_key() {
        let text = "[dns.rpz]\nenabled = true\norigin = \"rpz.gateway.example\"\nnotify = [\"198.18.0.53:53\"]\n\
                    [dns.rpz.tsig_key]\nname = \"bawaba-xfr\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0\"\n";
        let cfg = Config::parse(text).unwrap();
        assert_eq!(cfg.served_rpz_origin().as_str(), "rpz.gateway.example");
        assert_eq!(cfg.dns.rpz.notify, vec!["198.18.0.53:53".parse().unwrap()]);
        assert!(cfg.dns.rpz.tsig_key.as_ref().unwrap().key().is_ok());
        let md5 = Config::parse(&text.replace("hmac-sha256", "hmac-md5")).unwrap();
        assert!(md5.dns.rpz.tsig_key.unwrap().key().is_err());
        assert!(Config::parse("[dns.rpz]\nhistroy = 3\n").is_err());
    }

    #[test]
    fn unknown_settings_are_refused() {
        let err = Config::parse("[store]\ndata_dri = \"x\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("data_dri"), "{err:#}");
    }
}
