//! Differential test: bawaba's DNS server against Unbound enforcing the same policy.
//!
//! One policy snapshot is compiled for bawaba (in-process, [`bawaba_dns::server::bind`]) and
//! exported with [`bawaba_formats::write_rpz`] as the RPZ zone of a real Unbound. Both forward to
//! the same "internet": a second Unbound that serves the test zone `example.test` from an
//! `auth-zone` with `for-downstream: yes` (so it answers like an authoritative server). Every
//! case is asked of both with `dig`, and the RCODE and the answer RRsets (owner, type, rdata;
//! not TTLs, not EDE) must be equal.
//!
//! The cases cover every trigger and action: exact, subtree and `*.` wildcard QNAME triggers, an
//! allow entry inside a blocked subtree, CNAME (and a CNAME chain) into a blocked name,
//! response-IP triggers in blocked IPv4 and IPv6 prefixes (with an allowlisted address inside
//! one, and a QNAME passthru that exempts its addresses), NXDOMAIN from upstream, AAAA-only
//! names, NODATA, DROP, reset, and the block page with configured addresses (bawaba:
//! `block_page_ipv4`/`block_page_ipv6`; the export: `BlockPageTarget::Addresses`).
//!
//! Unbound setup (1.17.1), beyond what `crates/formats/tests/unbound.rs` found:
//! `do-not-query-localhost: no`, or Unbound refuses to forward to 127.0.0.1.
//!
//! BIND 9 (`named`, the reference implementation of RPZ) runs as a third server with the same
//! zone and upstream, and bawaba must equal it in every case. Where Unbound departs from BIND,
//! bawaba follows BIND and the case is listed in [`KNOWN_DIFFERENCES`] with the reason: those
//! cases are still asked of Unbound and the difference printed, but not asserted against it.
//! docs/ARCHITECTURE.md ("RPZ semantics: where Unbound differs") lists them too.
//!
//! Needs `unbound`, `named` and `dig` (scripts/install-test-deps.sh). Without unbound or dig the
//! test prints a loud SKIPPED line; without named it compares with Unbound only and says so.
//! When the environment variable `CI` is `true`, any of them missing fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bawaba_testkit::{find_tool, free_port, ChildGuard};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bawaba_dns::metrics::DnsMetrics;
use bawaba_dns::DnsConfig;
use bawaba_formats::{write_rpz, BlockPageTarget, ExportOptions};
use bawaba_policy::{
    Action, AllowEntry, AllowId, Category, DomainName, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId,
};

/// The "internet": the zone both resolvers reach through the authoritative Unbound.
const TEST_ZONE: &str = "\
$ORIGIN example.test.
$TTL 300
@             IN SOA   ns.example.test. hostmaster.example.test. ( 1 3600 600 86400 60 )
@             IN NS    ns.example.test.
ns            IN A     198.18.0.53
www           IN A     198.18.1.1
www           IN AAAA  2001:db8:1::1
blocked       IN A     198.18.1.2
www.blocked   IN A     198.18.1.3
ok.blocked    IN A     198.18.1.4
exact         IN A     198.18.1.5
sub.exact     IN A     198.18.1.6
wild          IN A     198.18.1.7
a.wild        IN A     198.18.1.8
b.a.wild      IN A     198.18.1.9
target        IN A     198.18.1.10
alias         IN CNAME target
alias2        IN CNAME alias
nodata        IN A     198.18.1.11
nodata        IN AAAA  2001:db8:1::11
page          IN A     198.18.1.12
www.page      IN A     198.18.1.13
www.page      IN AAAA  2001:db8:1::13
alias-page    IN CNAME www.page
drop          IN A     198.18.1.14
reset         IN A     198.18.1.15
inprefix      IN A     198.18.66.7
mixed         IN A     198.18.1.16
mixed         IN A     198.18.66.8
resolver      IN A     198.18.66.53
portal        IN A     198.18.66.9
alias-ip      IN CNAME inprefix
pagehost      IN A     198.18.67.1
v6in          IN AAAA  2001:db8:66::7
v6ok          IN AAAA  2001:db8:1::2
v6only        IN AAAA  2001:db8:1::3
";

/// The block page, as bawaba's `[dns] block_page_ipv4/ipv6` and the export's local data.
const BLOCK_PAGE_V4: &str = "198.18.0.80";
const BLOCK_PAGE_V6: &str = "2001:db8::80";

/// Every (name, type) asked of both servers, with what the case exercises.
const CASES: &[(&str, &str, &str)] = &[
    ("www.example.test", "A", "no rule: upstream answer"),
    ("www.example.test", "AAAA", "no rule, AAAA"),
    ("missing.example.test", "A", "NXDOMAIN from upstream"),
    ("v6only.example.test", "A", "AAAA-only name asked for A: NODATA from upstream"),
    ("v6only.example.test", "AAAA", "AAAA-only name"),
    ("blocked.example.test", "A", "subtree rule, the name itself"),
    ("www.blocked.example.test", "A", "subtree rule, below"),
    ("deep.www.blocked.example.test", "AAAA", "subtree rule, a name upstream does not have"),
    ("ok.blocked.example.test", "A", "exact allow entry inside a blocked subtree"),
    ("exact.example.test", "A", "exact rule"),
    ("sub.exact.example.test", "A", "exact rule does not cover names below"),
    ("wild.example.test", "A", "`*.` rule does not cover the name itself"),
    ("a.wild.example.test", "A", "`*.` rule, one label below"),
    ("b.a.wild.example.test", "A", "`*.` rule, two labels below"),
    ("alias.example.test", "A", "CNAME into a blocked name"),
    ("alias2.example.test", "A", "CNAME chain into a blocked name"),
    ("nodata.example.test", "A", "NODATA action"),
    ("nodata.example.test", "AAAA", "NODATA action, AAAA"),
    ("page.example.test", "A", "block page, A"),
    ("www.page.example.test", "A", "block page below a subtree rule"),
    ("www.page.example.test", "AAAA", "block page, AAAA"),
    ("www.page.example.test", "TXT", "block page, a type it has no address for"),
    ("alias-page.example.test", "A", "CNAME into a block-page name"),
    ("drop.example.test", "A", "DROP: no answer"),
    ("reset.example.test", "A", "reset: NXDOMAIN in DNS"),
    ("inprefix.example.test", "A", "response IP in a blocked IPv4 prefix"),
    ("mixed.example.test", "A", "one of two addresses in a blocked prefix"),
    ("resolver.example.test", "A", "allowlisted address inside a blocked prefix"),
    ("portal.example.test", "A", "QNAME passthru exempts its addresses"),
    ("alias-ip.example.test", "A", "CNAME to a name whose address is blocked"),
    ("pagehost.example.test", "A", "response IP with the block-page action"),
    ("v6in.example.test", "AAAA", "response IP in a blocked IPv6 prefix"),
    ("v6ok.example.test", "AAAA", "IPv6 address outside every prefix"),
];

/// Cases where Unbound 1.17.1 differs from BIND 9.18 and bawaba follows BIND: (name, type, reason).
///
/// Both concern QNAME triggers on CNAME targets when the upstream (here a forwarder) returns the
/// whole chain in one response. BIND applies the policy at every CNAME target and keeps the chain
/// so far in the answer (see `bawaba_dns::policy`); this test checks that BIND 9.18 answers
/// exactly as bawaba does in both cases.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "alias2.example.test",
        "A",
        "Unbound 1.17 checks only the first CNAME target of a forwarded chain, so a block on the \
         second target is not applied; BIND checks every target: bawaba answers the chain and NXDOMAIN",
    ),
    (
        "alias-page.example.test",
        "A",
        "Unbound 1.17 answers a CNAME target hit with local data (the block page) with the CNAME \
         alone and no address; BIND answers the chain plus the local data at the target: so does bawaba",
    ),
];

fn snapshot() -> PolicySnapshot {
    let order = Order {
        id: OrderId(1),
        authority: "Court of First Instance".into(),
        reference: "CFI-2026-0042".into(),
        issued_at: 1_795_000_000,
        effective_from: 1_795_000_000,
        expires_at: i64::MAX / 2,
        category: Category::CourtOrder,
        summary: "differential test".into(),
        publishable: true,
        appeal_contact: "appeals@regulator.example".into(),
        status: OrderStatus::Approved,
        proposed_by: "alice".into(),
        approved_by: Some("bob".into()),
        revoked: None,
    };
    let rules = [
        ("blocked.example.test", Action::Nxdomain),
        ("exact:exact.example.test", Action::Nxdomain),
        ("*.wild.example.test", Action::Nxdomain),
        ("exact:target.example.test", Action::Nxdomain),
        ("exact:nodata.example.test", Action::Nodata),
        ("page.example.test", Action::BlockPage),
        ("exact:drop.example.test", Action::Drop),
        ("exact:reset.example.test", Action::Reset),
        ("198.18.66.0/24", Action::Nxdomain),
        ("198.18.67.0/24", Action::BlockPage),
        ("2001:db8:66::/48", Action::Nxdomain),
    ];
    let allow = ["exact:ok.blocked.example.test", "198.18.66.53/32", "exact:portal.example.test"];
    PolicySnapshot {
        version: 1,
        taken_at: 1_795_883_000,
        orders: vec![order],
        rules: rules
            .iter()
            .enumerate()
            .map(|(i, (selector, action))| Rule {
                id: RuleId(i as i64 + 1),
                order: OrderId(1),
                selector: selector.parse().expect("test selectors are valid"),
                action: *action,
                forced: Some("test".into()),
            })
            .collect(),
        allow: allow
            .iter()
            .enumerate()
            .map(|(i, selector)| AllowEntry {
                id: AllowId(i as i64 + 1),
                selector: selector.parse().expect("test selectors are valid"),
                reason: "test allowlist".into(),
            })
            .collect(),
    }
}

/// A server child process (Unbound or BIND); killed by its PID when dropped, so a failing
/// assertion does not leave it running.
struct Daemon {
    child: ChildGuard,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    /// Runs `program` with `args`, output to `<dir>/<role>.log`, and waits until it answers
    /// `www.example.test` on `port`.
    fn spawn(program: &Path, args: &[&str], dig: &Path, dir: &Path, role: &str, port: u16) -> Daemon {
        let log = dir.join(format!("{role}.log"));
        let log_file = fs::File::create(&log).expect("create the server log");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("duplicate the log file handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let mut server = Daemon { child: ChildGuard(child), port, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = server.child.0.try_wait() {
                panic!("{role} exited with {status}; its log:\n{}", server.log());
            }
            if query(dig, server.addr(), "www.example.test", "A").status.as_deref() == Some("NOERROR") {
                return server;
            }
            assert!(Instant::now() < deadline, "{role} did not answer within 15 s; its log:\n{}", server.log());
            sleep(Duration::from_millis(100));
        }
    }

    /// Starts Unbound with the common `server:` settings plus `extra`.
    fn unbound(unbound: &Path, dig: &Path, dir: &Path, role: &str, extra: &str) -> Daemon {
        let port = free_port();
        let conf = dir.join(format!("{role}.conf"));
        let server = bawaba_testkit::unbound_server_clause(dir, port, &format!("{role}.pid"), 1);
        fs::write(
            &conf,
            format!(
                r#"{server}  local-zone: "test." nodefault
  do-not-query-localhost: no
{extra}"#,
            ),
        )
        .expect("write unbound.conf");
        Daemon::spawn(unbound, &["-d", "-c", &conf.display().to_string()], dig, dir, role, port)
    }

    /// Starts BIND's `named` with the RPZ zone `rpz`, forwarding everything to `upstream`.
    fn named(named: &Path, dig: &Path, dir: &Path, rpz: &Path, upstream: SocketAddr) -> Daemon {
        let port = free_port();
        let work = dir.join("named");
        fs::create_dir_all(&work).expect("create the named directory");
        let conf = dir.join("named.conf");
        fs::write(
            &conf,
            format!(
                r#"options {{
  directory "{work}";
  pid-file "{work}/named.pid";
  session-keyfile "{work}/session.key";
  managed-keys-directory "{work}";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion yes;
  allow-query {{ 127.0.0.1; }};
  forwarders {{ {ip} port {up}; }};
  forward only;
  dnssec-validation no;
  response-policy {{ zone "rpz.gateway.example"; }};
}};
controls {{ }};
zone "rpz.gateway.example" {{ type primary; file "{rpz}"; }};
"#,
                work = work.display(),
                ip = upstream.ip(),
                up = upstream.port(),
                rpz = rpz.display(),
            ),
        )
        .expect("write named.conf");
        Daemon::spawn(named, &["-g", "-4", "-c", &conf.display().to_string()], dig, dir, "named", port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What a server answered, as compared: RCODE and the answer section without TTLs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    /// `NOERROR`, `NXDOMAIN`, ...; `None` when no answer came (timeout).
    status: Option<String>,
    /// Answer records as (lowercased owner, type, data), sorted.
    records: Vec<(String, String, String)>,
}

fn query(dig: &Path, server: SocketAddr, name: &str, rtype: &str) -> Answer {
    let output = Command::new(dig)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+tries=1", "+time=1", name, rtype])
        .output()
        .expect("run dig");
    let text = String::from_utf8_lossy(&output.stdout);
    let status = text
        .lines()
        .find_map(|l| l.split_once("status: "))
        .and_then(|(_, rest)| rest.split(',').next())
        .map(str::to_string);
    let mut records = Vec::new();
    if let Some(section) = text.split(";; ANSWER SECTION:\n").nth(1) {
        for line in section.lines().take_while(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [owner, _ttl, _class, rtype, data @ ..] = fields.as_slice() {
                records.push((owner.to_ascii_lowercase(), rtype.to_string(), data.join(" ").to_ascii_lowercase()));
            }
        }
    }
    records.sort();
    Answer { status, records }
}

#[test]
fn bawaba_answers_like_unbound_with_the_same_policy() {
    let (Some(unbound), Some(dig)) = (find_tool("unbound"), find_tool("dig")) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("unbound or dig not installed (CI=true): run scripts/install-test-deps.sh in the CI image");
        }
        eprintln!(
            "\n**********\nSKIPPED: unbound or dig not installed; run scripts/install-test-deps.sh\n**********\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("example.test.zone");
    fs::write(&zone, TEST_ZONE).unwrap();
    let rpz = dir.path().join("rpz.gateway.example.zone");
    let block_page = BlockPageTarget::Addresses(vec![BLOCK_PAGE_V4.parse().unwrap(), BLOCK_PAGE_V6.parse().unwrap()]);
    let options =
        ExportOptions::new(DomainName::parse("rpz.gateway.example").unwrap(), 2026112801).with_block_page(block_page);
    let mut file = fs::File::create(&rpz).unwrap();
    let stats = write_rpz(&snapshot(), &options, &mut file).unwrap();
    drop(file);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);

    // The internet: an authoritative answer for example.test, nothing else.
    let internet = Daemon::unbound(
        &unbound,
        &dig,
        dir.path(),
        "internet",
        &format!(
            "auth-zone:\n  name: example.test\n  zonefile: \"{}\"\n  for-downstream: yes\n  for-upstream: no\n",
            zone.display()
        ),
    );
    // The anchor: Unbound with the exported RPZ, forwarding everything to the internet.
    let anchor = Daemon::unbound(
        &unbound,
        &dig,
        dir.path(),
        "rpz",
        &format!(
            "  module-config: \"respip validator iterator\"\nrpz:\n  name: rpz.gateway.example\n  zonefile: \"{}\"\n  rpz-log: yes\nforward-zone:\n  name: \".\"\n  forward-addr: 127.0.0.1@{}\n",
            rpz.display(),
            internet.port
        ),
    );

    // bawaba, in-process, with the same policy and the same upstream.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let config = DnsConfig {
        enabled: true,
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstreams: vec![internet.addr()],
        upstream_timeout_ms: 1000,
        block_page_ipv4: Some(BLOCK_PAGE_V4.parse().unwrap()),
        block_page_ipv6: Some(BLOCK_PAGE_V6.parse().unwrap()),
        ..DnsConfig::default()
    };
    let ruleset = Arc::new(ArcSwap::from_pointee(snapshot().compile()));
    let server = runtime
        .block_on(bawaba_dns::server::bind(&config, ruleset, Arc::new(DnsMetrics::default())))
        .expect("bind bawaba's DNS server on loopback");
    let bawaba = server.local_addrs()[0];
    runtime.spawn(server.run());

    // BIND, when installed: the reference for the cases where Unbound differs.
    let bind = match find_tool("named") {
        Some(named) => Some(Daemon::named(&named, &dig, dir.path(), &rpz, internet.addr())),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("BIND (named) not installed (CI=true): run scripts/install-test-deps.sh in the CI image")
        }
        None => {
            eprintln!("\n**********\nPARTLY SKIPPED: BIND (named) not installed, compared with Unbound only; run scripts/install-test-deps.sh\n**********\n");
            None
        }
    };

    let mut failures = Vec::new();
    for &(name, rtype, what) in CASES {
        let theirs = query(&dig, anchor.addr(), name, rtype);
        let ours = query(&dig, bawaba, name, rtype);
        if let Some(bind) = &bind {
            let reference = query(&dig, bind.addr(), name, rtype);
            if reference != ours {
                failures.push(format!("{name} {rtype} ({what}):\n  BIND:    {reference:?}\n  bawaba:  {ours:?}"));
            }
        }
        let known = KNOWN_DIFFERENCES.iter().find(|(n, t, _)| *n == name && *t == rtype);
        match known {
            Some((_, _, reason)) => {
                eprintln!("known difference, not asserted: {name} {rtype} ({what}): {reason}");
                eprintln!("  unbound: {theirs:?}\n  bawaba:  {ours:?}");
            }
            None if theirs != ours => {
                failures.push(format!("{name} {rtype} ({what}):\n  unbound: {theirs:?}\n  bawaba:  {ours:?}"))
            }
            None => {}
        }
    }
    assert!(
        failures.is_empty(),
        "bawaba differs from Unbound (or BIND) in {} of {} cases:\n{}\nunbound (rpz) log:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n"),
        anchor.log()
    );
}
