//! Helpers shared by the integration tests that drive real peers (Unbound, BIND, `dig`,
//! Chromium): finding a tool, the CI rule for a missing one, and a free loopback port; an HTTP
//! client for the console and its API ([`http`]); a WebDriver client for headless Chromium
//! ([`webdriver`]).
//!
//! The CI rule: under `CI=true` a missing peer fails the test (CI installs every peer through
//! `scripts/install-test-deps.sh`, so a missing one is a broken setup); elsewhere the test prints
//! a loud SKIPPED line and returns.
#![allow(clippy::expect_used)] // test support: a failure here is a broken test environment

pub mod http;
pub mod webdriver;

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A tool on the PATH or in the sbin directories (unbound and named live in /usr/sbin).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Finds every tool in `names`; when one is missing, panics under `CI=true` and otherwise prints
/// a SKIPPED banner naming `test` and returns `None`.
pub fn require_tools(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    let found: Vec<Option<PathBuf>> = names.iter().map(|n| find_tool(n)).collect();
    let missing: Vec<&str> = names.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(n, _)| *n).collect();
    if missing.is_empty() {
        return Some(found.into_iter().flatten().collect());
    }
    let what = missing.join(", ");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {what} not installed (CI=true): scripts/install-test-deps.sh must install it");
    }
    eprintln!("\n**********\nSKIPPED {test}: {what} not installed; run scripts/install-test-deps.sh\n**********\n");
    None
}

/// A port free for both UDP and TCP on 127.0.0.1 right now, and never the same twice in one
/// process.
///
/// The ports come from 20000-31999, below the kernel's ephemeral range (32768-60999 by default):
/// a port taken from that range by binding port 0 could be handed out again, to another test's
/// client or probe, before the test that asked for it has started its server. Tests within one
/// binary run in parallel threads and share the counter; each process starts at its own place in
/// the range, so that two suites run at once on one machine rarely meet (a taken port is skipped).
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % 600 * 20;
    for _ in 0..SPAN {
        let port = (FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {FIRST}-{}", FIRST + SPAN - 1);
}

/// A child process (a peer server) that is killed by its PID and reaped when dropped, so a
/// failing assertion never leaves it running.
#[derive(Debug)]
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `server:` clause every test Unbound starts with: loopback on `port`, IPv4 only, one
/// thread, in the foreground, no chroot and no privilege drop, files in `dir`, logging to stderr.
/// Test-specific settings (modules, local zones, forwarding) follow it.
pub fn unbound_server_clause(dir: &std::path::Path, port: u16, pidfile: &str, verbosity: u8) -> String {
    let dir = dir.display();
    format!(
        r#"server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  num-threads: 1
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "{dir}"
  pidfile: "{dir}/{pidfile}"
  use-syslog: no
  logfile: ""
  verbosity: {verbosity}
  access-control: 127.0.0.0/8 allow
"#
    )
}

/// Policy fixtures: an approved order in force, and a snapshot of rules and allow entries, as
/// the engine and DNS tests build them.
pub mod policy {
    use bawaba_policy::{
        Action, AllowEntry, AllowId, Category, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId,
    };

    /// An approved order in force from the epoch for ever, publishable or not.
    pub fn order(id: i64, reference: &str, category: Category, publishable: bool) -> Order {
        Order {
            id: OrderId(id),
            authority: "Court of First Instance, Baghdad".into(),
            reference: reference.into(),
            issued_at: 0,
            effective_from: 0,
            expires_at: i64::MAX / 2,
            category,
            summary: "test".into(),
            publishable,
            appeal_contact: "appeals@cmc.example".into(),
            status: OrderStatus::Approved,
            proposed_by: "alice".into(),
            approved_by: Some("bob".into()),
            revoked: None,
        }
    }

    /// A snapshot of `orders`, rules given as (selector, action, order id) with ids 1, 2, ...,
    /// and allow entries given as selectors.
    ///
    /// # Panics
    /// On a selector that does not parse (a broken test).
    pub fn snapshot(orders: Vec<Order>, rules: &[(&str, Action, i64)], allow: &[&str]) -> PolicySnapshot {
        PolicySnapshot {
            version: 1,
            taken_at: 0,
            orders,
            rules: rules
                .iter()
                .enumerate()
                .map(|(i, (s, a, o))| Rule {
                    id: RuleId(i as i64 + 1),
                    order: OrderId(*o),
                    selector: s.parse().expect("test selectors parse"),
                    action: *a,
                    forced: None,
                })
                .collect(),
            allow: allow
                .iter()
                .enumerate()
                .map(|(i, s)| AllowEntry {
                    id: AllowId(i as i64 + 1),
                    selector: s.parse().expect("test selectors parse"),
                    reason: "test".into(),
                })
                .collect(),
        }
    }
}

/// A GoBGP configuration: AS 65001 on 127.0.0.1:`port`, passive toward one neighbor 127.0.0.1
/// with AS `peer_as`, IPv4/IPv6 unicast and FlowSpec.
pub fn gobgpd_config(port: u16, peer_as: u32) -> String {
    gobgpd_config_with(port, peer_as, "")
}

/// As [`gobgpd_config`], with TCP MD5 signatures (RFC 2385) toward the neighbor:
/// `auth-password` set to `password` (written as a TOML string, `"` and `\` escaped).
pub fn gobgpd_config_md5(port: u16, peer_as: u32, password: &str) -> String {
    let escaped = password.replace('\\', "\\\\").replace('"', "\\\"");
    gobgpd_config_with(port, peer_as, &format!("    auth-password = \"{escaped}\"\n"))
}

/// The GoBGP configuration, with `neighbor_extra` (whole lines) added to `[neighbors.config]`.
fn gobgpd_config_with(port: u16, peer_as: u32, neighbor_extra: &str) -> String {
    let mut text = format!(
        "[global.config]\n  as = 65001\n  router-id = \"198.18.0.2\"\n  port = {port}\n  local-address-list = [\"127.0.0.1\"]\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"127.0.0.1\"\n    peer-as = {peer_as}\n\
         {neighbor_extra}\
         [neighbors.transport.config]\n    passive-mode = true\n"
    );
    for family in ["ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec"] {
        text.push_str(&format!(
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\"\n"
        ));
    }
    text
}

/// Sends a DNS query for `name`/A over UDP to `server` and returns the answer's rcode, or `None`
/// when nothing answers within 2 s.
pub fn dns_rcode(server: std::net::SocketAddr, name: &str) -> Option<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1");
    socket.set_read_timeout(Some(std::time::Duration::from_secs(2))).expect("set a read timeout");
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send_to(&q, server).expect("send a query");
    let mut buf = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    (n >= 12 && buf[..2] == [0x12, 0x34]).then_some(buf[3] & 0xf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_distinct_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| super::free_port()).collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports.iter().all(|p| (20_000..32_000).contains(p)), "{ports:?}");
    }
}
