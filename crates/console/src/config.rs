//! The `[console]` section of the configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Settings of the web console, the API and the public pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console and the API (off unless the config turns it on; the example config does).
    pub enabled: bool,
    /// Address of the console, the API (`/api/v1`) and the public pages.
    pub listen: SocketAddr,
    /// A second listener where every request gets the block page (point the DNS block-page
    /// answer, `[dns] block_page_ipv4`, at this address on port 80). Unset: none.
    pub block_page_listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS. With `tls_key`, the console listens with TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on an address that is not loopback (sessions then travel in clear text).
    pub allow_plain_http: bool,
    /// The operator named on the block page and in its `Link: rel="blocked-by"` header.
    pub operator_name: String,
    /// The operator's web address for that header.
    pub operator_url: String,
    /// How long a login session lasts, in seconds.
    pub session_ttl_secs: u64,
    /// Failed logins allowed per client address and per user name within `login_window_secs`.
    pub login_attempts: u32,
    /// The window of `login_attempts`, in seconds.
    pub login_window_secs: u64,
    /// Appeals accepted per client prefix (IPv4 /24, IPv6 /56) per hour.
    pub appeals_per_hour: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            block_page_listen: None,
            tls_cert: None,
            tls_key: None,
            allow_plain_http: false,
            operator_name: "Gateway operator".into(),
            operator_url: "https://gateway.example/".into(),
            session_ttl_secs: 8 * 3600,
            login_attempts: 5,
            login_window_secs: 900,
            appeals_per_hour: 5,
        }
    }
}

impl ConsoleConfig {
    /// Whether the listener uses TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Refuses settings that would expose sessions: plain HTTP beyond loopback without
    /// `allow_plain_http`, or a certificate without a key.
    pub fn check(&self) -> Result<(), String> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("[console] tls_cert and tls_key go together: set both or neither".into());
        }
        if !self.tls() && !self.listen.ip().is_loopback() && !self.allow_plain_http {
            return Err(format!(
                "[console] listen = \"{}\" is not loopback: set tls_cert and tls_key, or allow_plain_http = true",
                self.listen
            ));
        }
        if self.login_attempts == 0 || self.session_ttl_secs == 0 {
            return Err("[console] login_attempts and session_ttl_secs must be at least 1".into());
        }
        Ok(())
    }
}
