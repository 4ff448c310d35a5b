//! Black-box conformance: the zone `write_rpz` produces, loaded by a real Unbound and queried
//! with `dig`.
//!
//! Unbound serves a test zone `example.test` from an `auth-zone` and applies the exported RPZ to
//! it. What made RPZ apply (found by experiment with Unbound 1.17.1):
//! - `local-zone: "test." nodefault`: Unbound answers every `.test` name NXDOMAIN itself
//!   (RFC 6761 locally served zone) unless told not to, before RPZ or the auth-zone see it.
//! - `auth-zone` with `for-upstream: yes` and `for-downstream: no`: the answer then comes through
//!   the iterator, so both QNAME triggers and response-IP (rpz-ip, done by the `respip` module)
//!   apply. With `for-downstream: yes` Unbound answers from the auth-zone directly: QNAME
//!   triggers still apply but rpz-ip triggers are silently skipped.
//! - `module-config: "respip validator iterator"` for rpz-ip triggers.
//!
//! Needs `unbound` and `dig` (scripts/install-test-deps.sh). Without them the test prints a loud
//! SKIPPED line, or fails when the environment variable `CI` is `true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bawaba_testkit::{find_tool, free_port, ChildGuard};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use bawaba_formats::{write_rpz, BlockPageTarget, ExportOptions};
use bawaba_policy::{
    Action, AllowEntry, AllowId, Category, DomainName, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId,
};

const TEST_ZONE: &str = "\
$ORIGIN example.test.
$TTL 60
@            IN SOA ns.example.test. hostmaster.example.test. ( 1 3600 600 86400 60 )
@            IN NS  ns.example.test.
ns           IN A   127.0.0.1
blocked      IN A   192.0.2.1
www.blocked  IN A   192.0.2.2
ok.blocked   IN A   192.0.2.3
nodata       IN A   192.0.2.4
other        IN A   192.0.2.5
drop         IN A   192.0.2.6
bp           IN A   192.0.2.7
www.bp       IN A   192.0.2.8
inprefix     IN A   198.18.18.1
resolver-ip  IN A   198.18.18.53
portal       IN A   198.18.18.7
v6blocked    IN AAAA 2001:db8:bad::1
v6ok         IN AAAA 2001:db8:900d::1
";

fn snapshot() -> PolicySnapshot {
    let order = Order {
        id: OrderId(1),
        authority: "Court of First Instance".into(),
        reference: "CFI-2026-0042".into(),
        issued_at: 1_795_000_000,
        effective_from: 1_795_000_000,
        expires_at: 1_797_592_000,
        category: Category::Phishing,
        summary: "Phishing site imitating a bank".into(),
        publishable: true,
        appeal_contact: "appeals@regulator.example".into(),
        status: OrderStatus::Approved,
        proposed_by: "alice".into(),
        approved_by: Some("bob".into()),
        revoked: None,
    };
    let rule = |id: i64, selector: &str, action: Action| Rule {
        id: RuleId(id),
        order: OrderId(1),
        selector: selector.parse().expect("test selectors are valid"),
        action,
        forced: Some("covers an allowlisted host on purpose".into()),
    };
    let allow = |id: i64, selector: &str| AllowEntry {
        id: AllowId(id),
        selector: selector.parse().expect("test selectors are valid"),
        reason: "test allowlist".into(),
    };
    PolicySnapshot {
        version: 1,
        taken_at: 1_795_883_000,
        orders: vec![order],
        rules: vec![
            rule(1, "blocked.example.test", Action::Nxdomain),
            rule(2, "exact:nodata.example.test", Action::Nodata),
            rule(3, "198.18.18.0/24", Action::Nxdomain),
            rule(4, "exact:drop.example.test", Action::Drop),
            rule(5, "bp.example.test", Action::BlockPage),
            rule(6, "2001:db8:bad::/48", Action::Nxdomain),
        ],
        allow: vec![
            allow(1, "exact:ok.blocked.example.test"),
            allow(2, "198.18.18.53"),
            allow(3, "exact:portal.example.test"),
        ],
    }
}

/// The Unbound child process; killed (by its PID) when dropped.
struct Unbound {
    child: ChildGuard,
    port: u16,
    log: PathBuf,
    dig: PathBuf,
}

#[derive(Debug)]
struct Answer {
    /// `NOERROR`, `NXDOMAIN`, ...; `None` when no answer came (timeout).
    status: Option<String>,
    /// Answer records as (owner, type, data).
    records: Vec<(String, String, String)>,
}

impl Unbound {
    fn start(unbound: &Path, dig: &Path, dir: &Path, rpz: &Path, zone: &Path) -> Unbound {
        let port = free_port();
        let log = dir.join("unbound.log");
        let conf = dir.join("unbound.conf");
        let server = bawaba_testkit::unbound_server_clause(dir, port, "unbound.pid", 1);
        fs::write(
            &conf,
            format!(
                r#"{server}  module-config: "respip validator iterator"
  local-zone: "test." nodefault
rpz:
  name: rpz.gateway.example
  zonefile: "{rpz}"
  rpz-log: yes
auth-zone:
  name: example.test
  zonefile: "{zone}"
  for-upstream: yes
  for-downstream: no
  fallback-enabled: no
"#,
                rpz = rpz.display(),
                zone = zone.display(),
            ),
        )
        .expect("write unbound.conf");
        let log_file = fs::File::create(&log).expect("create the unbound log");
        let child = Command::new(unbound)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("duplicate the log file handle"))
            .stderr(log_file)
            .spawn()
            .expect("start unbound");
        let mut server = Unbound { child: ChildGuard(child), port, log, dig: dig.to_path_buf() };
        server.wait_ready();
        server
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                panic!("unbound exited with {status}; its log:\n{}", self.log());
            }
            if self.query("other.example.test", "A").status.as_deref() == Some("NOERROR") {
                return;
            }
            sleep(Duration::from_millis(200));
        }
        panic!("unbound did not answer within 15 s; its log:\n{}", self.log());
    }

    fn query(&self, name: &str, rtype: &str) -> Answer {
        let output = Command::new(&self.dig)
            .args(["@127.0.0.1", "-p", &self.port.to_string(), "+tries=1", "+time=1", name, rtype])
            .output()
            .expect("run dig");
        let text = String::from_utf8_lossy(&output.stdout);
        let status = text
            .lines()
            .find_map(|l| l.split_once("status: "))
            .and_then(|(_, rest)| rest.split(',').next())
            .map(str::to_string);
        let mut records = Vec::new();
        let mut in_answer = false;
        for line in text.lines() {
            if line.starts_with(";; ANSWER SECTION") {
                in_answer = true;
                continue;
            }
            if in_answer {
                if line.trim().is_empty() {
                    break;
                }
                let fields: Vec<&str> = line.split_whitespace().collect();
                if let [owner, _ttl, _class, rtype, data @ ..] = fields.as_slice() {
                    records.push((owner.to_string(), rtype.to_string(), data.join(" ")));
                }
            }
        }
        Answer { status, records }
    }

    /// Asserts the status and the data of the `rtype` answers.
    fn expect(&self, name: &str, rtype: &str, status: Option<&str>, data: &[&str]) {
        let answer = self.query(name, rtype);
        let got: Vec<&str> = answer.records.iter().filter(|r| r.1 == rtype).map(|r| r.2.as_str()).collect();
        assert!(
            answer.status.as_deref() == status && got == data,
            "{name} {rtype}: expected {status:?} {data:?}, got {answer:?}\nunbound log:\n{}",
            self.log()
        );
    }
}

#[test]
fn unbound_enforces_the_exported_zone() {
    let (Some(unbound), Some(dig)) = (find_tool("unbound"), find_tool("dig")) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("unbound or dig not installed (CI=true): run scripts/install-test-deps.sh in the CI image");
        }
        eprintln!("\n**********\nSKIPPED: unbound not installed; run scripts/install-test-deps.sh\n**********\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rpz = dir.path().join("rpz.gateway.example.zone");
    let zone = dir.path().join("example.test.zone");
    fs::write(&zone, TEST_ZONE).unwrap();

    let block_page = BlockPageTarget::Addresses(vec!["192.0.2.80".parse().unwrap()]);
    let options =
        ExportOptions::new(DomainName::parse("rpz.gateway.example").unwrap(), 2026112801).with_block_page(block_page);
    let mut file = fs::File::create(&rpz).unwrap();
    let stats = write_rpz(&snapshot(), &options, &mut file).unwrap();
    drop(file);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);

    let server = Unbound::start(&unbound, &dig, dir.path(), &rpz, &zone);
    // Subtree block: the name and its subdomains.
    server.expect("blocked.example.test", "A", Some("NXDOMAIN"), &[]);
    server.expect("www.blocked.example.test", "A", Some("NXDOMAIN"), &[]);
    // Allowlisted name inside the blocked subtree: the exact passthru beats the wildcard.
    server.expect("ok.blocked.example.test", "A", Some("NOERROR"), &["192.0.2.3"]);
    // Unrelated name.
    server.expect("other.example.test", "A", Some("NOERROR"), &["192.0.2.5"]);
    // Exact block with NODATA.
    server.expect("nodata.example.test", "A", Some("NOERROR"), &[]);
    // rpz-ip: the answer's address lies in the blocked prefix.
    server.expect("inprefix.example.test", "A", Some("NXDOMAIN"), &[]);
    // rpz-ip: a longer allowlisted prefix (passthru) beats the blocked /24.
    server.expect("resolver-ip.example.test", "A", Some("NOERROR"), &["198.18.18.53"]);
    // A QNAME passthru exempts the name even though its address is in the blocked prefix.
    server.expect("portal.example.test", "A", Some("NOERROR"), &["198.18.18.7"]);
    // IPv6 rpz-ip with the `zz` encoding.
    server.expect("v6blocked.example.test", "AAAA", Some("NXDOMAIN"), &[]);
    server.expect("v6ok.example.test", "AAAA", Some("NOERROR"), &["2001:db8:900d::1"]);
    // Block page as local data, for the name and (wildcard) its subdomains.
    server.expect("bp.example.test", "A", Some("NOERROR"), &["192.0.2.80"]);
    server.expect("www.bp.example.test", "A", Some("NOERROR"), &["192.0.2.80"]);
    // Drop: no answer at all.
    server.expect("drop.example.test", "A", None, &[]);
}
