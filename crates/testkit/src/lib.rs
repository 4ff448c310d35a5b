//! Helpers shared by the integration tests that drive real peers (Unbound, BIND, `dig`): finding
//! a tool, the CI rule for a missing one, and a free loopback port.
//!
//! The CI rule: under `CI=true` a missing peer fails the test (CI installs every peer through
//! `scripts/install-test-deps.sh`, so a missing one is a broken setup); elsewhere the test prints
//! a loud SKIPPED line and returns.
#![allow(clippy::expect_used)] // test support: a failure here is a broken test environment

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;

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

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1");
        let port = udp.local_addr().expect("a bound socket has an address").port();
        if port > 1024 && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
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
