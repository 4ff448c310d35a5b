//! Black-box: a real Unbound (`rpz:` with `primary:`) and a real BIND (`type secondary` zone in
//! `response-policy`) subscribe to the RPZ zone bawaba serves, enforce it, and pick up a new
//! policy version by IXFR after bawaba's NOTIFY; `dig AXFR` and `dig IXFR=N` read the same zone.
//!
//! The BIND secondary transfers with TSIG (hmac-sha256), and `dig -y` verifies the signatures
//! of a 10-message AXFR.
//!
//! BIND applies a new version of a policy zone at most once per `min-update-interval` (60 s by
//! default, "new zone version came too soon, deferring update" in its log); the test sets 0.
//!
//! bawaba's DNS server runs in-process on loopback. Unbound serves the test names from an
//! `auth-zone` (`for-upstream: yes`, `for-downstream: no`, `local-zone: "test." nodefault`, as
//! `crates/formats/tests/unbound.rs` found necessary) and transfers the policy zone from bawaba
//! (Unbound 1.17.1: `primary:` and `allow-notify:` in the `rpz:` clause).
//!
//! Needs `unbound`, `named` and `dig` (scripts/install-test-deps.sh). Without them a test prints a
//! loud SKIPPED line, or fails when the environment variable `CI` is `true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bawaba_testkit::{find_tool, free_port, ChildGuard};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bawaba_dns::metrics::DnsMetrics;
use bawaba_dns::xfr::{serial_of_version, TsigKey, WireZone, ZoneTransfer};
use bawaba_dns::DnsConfig;
use bawaba_formats::{rpz_records, write_rpz, ExportOptions};
use bawaba_policy::{
    Action, AllowEntry, AllowId, Category, DomainName, IpPrefix, Order, OrderId, OrderStatus, PolicySnapshot, Rule,
    RuleId,
};
use bawaba_wire::dns::{build_query, Message, Rcode, Type};

const ORIGIN: &str = "rpz.gateway.example";

const TEST_ZONE: &str = "\
$ORIGIN example.test.
$TTL 60
@            IN SOA ns.example.test. hostmaster.example.test. ( 1 3600 600 86400 60 )
@            IN NS  ns.example.test.
ns           IN A   127.0.0.1
blocked      IN A   198.18.20.1
www.blocked  IN A   198.18.20.2
ok.blocked   IN A   198.18.20.3
other        IN A   198.18.20.5
newly        IN A   198.18.20.6
";

fn snapshot(version: u64, extra: &[&str]) -> PolicySnapshot {
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
    let rules = ["blocked.example.test"].iter().chain(extra).enumerate().map(|(i, s)| Rule {
        id: RuleId(i as i64 + 1),
        order: OrderId(1),
        selector: s.parse().unwrap(),
        action: Action::Nxdomain,
        forced: Some("covers an allowlisted host on purpose".into()),
    });
    PolicySnapshot {
        version,
        taken_at: 1_795_883_000,
        orders: vec![order],
        rules: rules.collect(),
        allow: vec![AllowEntry {
            id: AllowId(1),
            selector: "exact:ok.blocked.example.test".parse().unwrap(),
            reason: "test allowlist".into(),
        }],
    }
}

fn options(version: u64) -> ExportOptions {
    ExportOptions::new(DomainName::parse(ORIGIN).unwrap(), serial_of_version(version))
}

fn wire_zone(snapshot: &PolicySnapshot) -> WireZone {
    let records = rpz_records(snapshot, &options(snapshot.version));
    WireZone::new(&DomainName::parse(ORIGIN).unwrap(), &records.records).unwrap()
}

/// The Unbound child process; killed (by its PID) when dropped.
struct Unbound {
    /// Kills the server when this value is dropped.
    _child: ChildGuard,
    port: u16,
    log: PathBuf,
}

impl Unbound {
    fn start(unbound: &Path, dir: &Path, port: u16, primary: SocketAddr) -> Unbound {
        let zone = dir.join("example.test.zone");
        fs::write(&zone, TEST_ZONE).unwrap();
        let log = dir.join("unbound.log");
        let conf = dir.join("unbound.conf");
        let server = bawaba_testkit::unbound_server_clause(dir, port, "unbound.pid", 2);
        fs::write(
            &conf,
            format!(
                r#"{server}  module-config: "respip validator iterator"
  local-zone: "test." nodefault
rpz:
  name: {ORIGIN}
  primary: {ip}@{bport}
  allow-notify: 127.0.0.1
  rpz-log: yes
auth-zone:
  name: example.test
  zonefile: "{zone}"
  for-upstream: yes
  for-downstream: no
  fallback-enabled: no
"#,
                zone = zone.display(),
                ip = primary.ip(),
                bport = primary.port(),
            ),
        )
        .unwrap();
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new(unbound)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start unbound");
        Unbound { _child: ChildGuard(child), port, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `dig` with `args` against 127.0.0.1:`port`; the whole output.
fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+tries=1", "+time=2"])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(text: &str) -> &str {
    text.split("status: ").nth(1).and_then(|s| s.split(',').next()).unwrap_or("NO ANSWER")
}

/// A resolver under test: where to ask, and its log for failure reports.
trait Resolver {
    fn port(&self) -> u16;
    fn log_path(&self) -> &Path;
}

impl Resolver for Unbound {
    fn port(&self) -> u16 {
        self.port
    }
    fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Resolver for Named {
    fn port(&self) -> u16 {
        self.port
    }
    fn log_path(&self) -> &Path {
        &self.log
    }
}

/// Polls `name A` until the status is `want`, for at most `within`.
async fn wait_for(resolver: &impl Resolver, name: &str, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let port = resolver.port();
        let name2 = name.to_string();
        let text = tokio::task::spawn_blocking(move || dig(port, &[&name2, "A"])).await.unwrap();
        if status(&text) == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{name}: wanted {want} within {within:?}, last answer:\n{text}\nlog:\n{}",
            fs::read_to_string(resolver.log_path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `bawaba_dns_rpz_answers_total{kind="<kind>"}`.
fn counter(metrics: &DnsMetrics, kind: &str) -> u64 {
    let prefix = format!("bawaba_dns_rpz_answers_total{{kind=\"{kind}\"}} ");
    metrics.render().lines().find_map(|l| l.strip_prefix(&prefix)?.parse().ok()).unwrap_or(0)
}

/// The record lines of a dig transfer output, whitespace-normalised.
fn records(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_follows_the_served_zone_through_notify() {
    let (Some(unbound), Some(_)) = (find_tool("unbound"), find_tool("dig")) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("unbound or dig not installed (CI=true): run scripts/install-test-deps.sh in the CI image");
        }
        eprintln!(
            "\n**********\nSKIPPED: unbound or dig not installed; run scripts/install-test-deps.sh\n**********\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unbound_port = free_port();

    // bawaba: policy version 1 in force, the zone served to loopback, NOTIFY to Unbound.
    let v1 = snapshot(1, &[]);
    let xfr = Arc::new(ZoneTransfer::new(
        wire_zone(&v1),
        vec![IpPrefix::parse("127.0.0.0/8").unwrap()],
        vec![SocketAddr::from(([127, 0, 0, 1], unbound_port))],
        10,
    ));
    let config = DnsConfig {
        enabled: true,
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        // Nothing listens there: this test never forwards.
        upstreams: vec!["127.0.0.1:9".parse().unwrap()],
        ..DnsConfig::default()
    };
    let ruleset = Arc::new(ArcSwap::from_pointee(v1.compile()));
    let metrics = Arc::new(DnsMetrics::default());
    let server = bawaba_dns::server::bind_with_zone(&config, ruleset, Arc::clone(&metrics), Some(Arc::clone(&xfr)))
        .await
        .unwrap();
    let primary = server.local_addrs()[0];
    tokio::spawn(server.run());

    // dig AXFR: exactly the records of the text zone, SOA first and last, serial = version.
    let axfr = tokio::task::spawn_blocking(move || dig(primary.port(), &["AXFR", ORIGIN])).await.unwrap();
    let got = records(&axfr);
    assert!(
        got.first().is_some_and(|l| l.contains("SOA localhost. hostmaster.localhost. 1 3600 600 604800 60")),
        "{axfr}"
    );
    assert_eq!(got.first(), got.last(), "{axfr}");
    let mut text = Vec::new();
    write_rpz(&v1, &options(1), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    for (owner, data) in [
        ("ok.blocked.example.test", "CNAME rpz-passthru."),
        ("blocked.example.test", "CNAME ."),
        ("*.blocked.example.test", "CNAME ."),
    ] {
        assert!(text.contains(&format!("{owner:<32} {data}")), "{text}");
        let line = format!("{owner}.{ORIGIN}. 60 IN {data}");
        assert!(got.contains(&line), "{line} missing from\n{axfr}");
    }
    assert_eq!(got.len(), 2 + 3 + 1, "SOA, NS, 3 policy records, SOA:\n{axfr}");

    // Unbound transfers the zone at start and enforces it.
    let unbound = Unbound::start(&unbound, dir.path(), unbound_port, primary);
    wait_for(&unbound, "other.example.test", "NOERROR", Duration::from_secs(15)).await;
    wait_for(&unbound, "blocked.example.test", "NXDOMAIN", Duration::from_secs(15)).await;
    wait_for(&unbound, "www.blocked.example.test", "NXDOMAIN", Duration::from_secs(2)).await;
    wait_for(&unbound, "ok.blocked.example.test", "NOERROR", Duration::from_secs(2)).await;

    // Version 2 blocks one more name; the NOTIFY is acknowledged and Unbound follows within 10 s.
    let ixfr_before = counter(&metrics, "ixfr");
    let axfr_before = counter(&metrics, "axfr");
    let v2 = snapshot(2, &["exact:newly.example.test"]);
    xfr.install(wire_zone(&v2));
    let notified = xfr.notify_secondaries().await;
    assert_eq!(notified.len(), 1);
    assert!(notified[0].1.is_ok(), "{notified:?}\nunbound log:\n{}", unbound.log());
    let took = wait_for(&unbound, "newly.example.test", "NXDOMAIN", Duration::from_secs(10)).await;
    eprintln!("unbound enforced version 2 {took:?} after the NOTIFY");
    wait_for(&unbound, "ok.blocked.example.test", "NOERROR", Duration::from_secs(2)).await;
    wait_for(&unbound, "other.example.test", "NOERROR", Duration::from_secs(2)).await;
    // Unbound asked for the difference (IXFR), not the whole zone again.
    assert_eq!(counter(&metrics, "ixfr"), ixfr_before + 1, "{}", metrics.render());
    assert_eq!(counter(&metrics, "axfr"), axfr_before, "{}", metrics.render());

    // dig IXFR=1: the incremental form, SOA 2, SOA 1, (nothing deleted), SOA 2, the new record, SOA 2.
    let ixfr = tokio::task::spawn_blocking(move || dig(primary.port(), &["IXFR=1", ORIGIN])).await.unwrap();
    let got = records(&ixfr);
    let serials: Vec<&str> =
        got.iter().filter(|l| l.contains(" SOA ")).map(|l| l.split_whitespace().nth(6).unwrap_or("")).collect();
    assert_eq!(serials, vec!["2", "1", "2", "2"], "{ixfr}");
    assert!(got.contains(&format!("newly.example.test.{ORIGIN}. 60 IN CNAME .")), "{ixfr}");
    assert_eq!(got.len(), 5, "{ixfr}");
    // dig IXFR=2 (up to date): the SOA alone.
    let current = tokio::task::spawn_blocking(move || dig(primary.port(), &["IXFR=2", ORIGIN])).await.unwrap();
    assert_eq!(records(&current).len(), 1, "{current}");
    // The SOA poll secondaries make: authoritative.
    let soa = tokio::task::spawn_blocking(move || dig(primary.port(), &["SOA", ORIGIN])).await.unwrap();
    assert!(soa.contains(" aa") && soa.contains("status: NOERROR"), "{soa}");
    // AXFR over UDP (dig always uses TCP for AXFR, so by hand): FORMERR.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&build_query(0x5151, ORIGIN, Type::AXFR, false, None), primary).await.unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await.unwrap().unwrap();
    let reply = Message::parse(&buf[..n]).unwrap();
    assert_eq!((reply.header().id, reply.header().rcode()), (0x5151, Rcode::FORMERR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_reads_a_large_zone_over_several_messages() {
    if find_tool("dig").is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("dig not installed (CI=true): run scripts/install-test-deps.sh in the CI image");
        }
        eprintln!("\n**********\nSKIPPED: dig not installed; run scripts/install-test-deps.sh\n**********\n");
        return;
    }
    let names: Vec<String> = (0..3000).map(|i| format!("exact:host{i}.example.test")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let big = snapshot(7, &names);
    // Signed: dig verifies every message's TSIG, each chained to the previous MAC (RFC 8945 5.3.1).
    let (key_name, secret) = ("bawaba-xfr", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==");
    let key = TsigKey::new(&DomainName::parse(key_name).unwrap(), secret).unwrap();
    let xfr = Arc::new(
        ZoneTransfer::new(wire_zone(&big), vec![IpPrefix::parse("127.0.0.0/8").unwrap()], vec![], 10).with_tsig(key),
    );
    let config = DnsConfig {
        enabled: true,
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstreams: vec!["127.0.0.1:9".parse().unwrap()],
        ..DnsConfig::default()
    };
    let ruleset = Arc::new(ArcSwap::from_pointee(big.compile()));
    let server =
        bawaba_dns::server::bind_with_zone(&config, ruleset, Arc::new(DnsMetrics::default()), Some(xfr)).await.unwrap();
    let primary = server.local_addrs()[0];
    tokio::spawn(server.run());
    let tsig = format!("hmac-sha256:{key_name}:{secret}");
    let axfr = tokio::task::spawn_blocking(move || dig(primary.port(), &["-y", &tsig, "AXFR", ORIGIN])).await.unwrap();
    assert!(!axfr.contains("verify") && !axfr.contains("failed"), "{}", &axfr[..axfr.len().min(2000)]);
    let axfr: String = axfr.lines().filter(|l| !l.contains("\tTSIG\t")).map(|l| format!("{l}\n")).collect();
    // SOA, NS, the passthru, the blocked subtree's 2 records, 3000 exact names, SOA.
    assert_eq!(records(&axfr).len(), 2 + 1 + 2 + 3000 + 1, "{}", &axfr[axfr.len().saturating_sub(400)..]);
    let messages: usize =
        axfr.split("messages ").nth(1).and_then(|s| s.split(',').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(messages > 3, "{}", &axfr[axfr.len().saturating_sub(400)..]);
    eprintln!("{}", axfr.lines().filter(|l| l.starts_with(";; XFR size")).collect::<String>());
}

/// BIND's `named` as a secondary of the policy zone (`type secondary`, `response-policy`), also
/// primary for the test names; killed (by its PID) when dropped.
struct Named {
    /// Kills the server when this value is dropped.
    _child: ChildGuard,
    port: u16,
    log: PathBuf,
}

impl Named {
    /// Starts named; transfers are signed with the TSIG key `(name, base64 secret)`.
    fn start(named: &Path, dir: &Path, port: u16, primary: SocketAddr, key: (&str, &str)) -> Named {
        let work = dir.join("named");
        fs::create_dir_all(&work).unwrap();
        let zone = work.join("example.test.zone");
        fs::write(&zone, TEST_ZONE).unwrap();
        let conf = work.join("named.conf");
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
  dnssec-validation no;
  notify no;
  // RPZ applies a new zone version at most once a minute by default.
  response-policy {{ zone "{ORIGIN}" min-update-interval 0; }};
}};
controls {{ }};
key "{key_name}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{ORIGIN}" {{
  type secondary;
  primaries {{ {ip} port {bport} key "{key_name}"; }};
  allow-notify {{ 127.0.0.1; }};
}};
zone "example.test" {{ type primary; file "{zone}"; }};
"#,
                work = work.display(),
                zone = zone.display(),
                ip = primary.ip(),
                bport = primary.port(),
                key_name = key.0,
                secret = key.1,
            ),
        )
        .unwrap();
        let log = dir.join("named.log");
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new(named)
            .args(["-g", "-4", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start named");
        Named { _child: ChildGuard(child), port, log }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_follows_the_served_zone_through_notify() {
    let (Some(named), Some(_)) = (find_tool("named"), find_tool("dig")) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("named or dig not installed (CI=true): run scripts/install-test-deps.sh in the CI image");
        }
        eprintln!("\n**********\nSKIPPED: named or dig not installed; run scripts/install-test-deps.sh\n**********\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let named_port = free_port();
    let v1 = snapshot(1, &[]);
    // Transfers signed with TSIG (RFC 8945), as BIND secondaries are usually configured.
    let (key_name, secret) = ("bawaba-xfr", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==");
    let key = TsigKey::new(&DomainName::parse(key_name).unwrap(), secret).unwrap();
    let xfr = Arc::new(
        ZoneTransfer::new(
            wire_zone(&v1),
            vec![IpPrefix::parse("127.0.0.0/8").unwrap()],
            vec![SocketAddr::from(([127, 0, 0, 1], named_port))],
            10,
        )
        .with_tsig(key),
    );
    let config = DnsConfig {
        enabled: true,
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstreams: vec!["127.0.0.1:9".parse().unwrap()],
        ..DnsConfig::default()
    };
    let metrics = Arc::new(DnsMetrics::default());
    let server = bawaba_dns::server::bind_with_zone(
        &config,
        Arc::new(ArcSwap::from_pointee(v1.compile())),
        Arc::clone(&metrics),
        Some(Arc::clone(&xfr)),
    )
    .await
    .unwrap();
    let primary = server.local_addrs()[0];
    tokio::spawn(server.run());

    // Unsigned: refused; signed with the key (dig -y): the zone, every message verified by dig.
    let unsigned = tokio::task::spawn_blocking(move || dig(primary.port(), &["AXFR", ORIGIN])).await.unwrap();
    assert!(unsigned.contains("Transfer failed") || unsigned.contains("REFUSED"), "{unsigned}");
    let tsig = format!("hmac-sha256:{key_name}:{secret}");
    let signed =
        tokio::task::spawn_blocking(move || dig(primary.port(), &["-y", &tsig, "AXFR", ORIGIN])).await.unwrap();
    assert_eq!(records(&signed).iter().filter(|l| !l.contains(" TSIG ")).count(), 6, "{signed}");
    assert!(!signed.contains("failure") && !signed.contains("Transfer failed"), "{signed}");
    let bad = format!("hmac-sha256:{key_name}:c2VjcmV0");
    let forged = tokio::task::spawn_blocking(move || dig(primary.port(), &["-y", &bad, "AXFR", ORIGIN])).await.unwrap();
    assert!(!forged.contains("CNAME"), "{forged}");

    let bind = Named::start(&named, dir.path(), named_port, primary, (key_name, secret));
    let log = || fs::read_to_string(&bind.log).unwrap_or_default();
    wait_for(&bind, "other.example.test", "NOERROR", Duration::from_secs(15)).await;
    wait_for(&bind, "blocked.example.test", "NXDOMAIN", Duration::from_secs(15)).await;
    wait_for(&bind, "ok.blocked.example.test", "NOERROR", Duration::from_secs(2)).await;

    let ixfr_before = counter(&metrics, "ixfr");
    xfr.install(wire_zone(&snapshot(2, &["exact:newly.example.test"])));
    let notified = xfr.notify_secondaries().await;
    assert!(notified[0].1.is_ok(), "{notified:?}\nnamed log:\n{}", log());
    let took = wait_for(&bind, "newly.example.test", "NXDOMAIN", Duration::from_secs(10)).await;
    eprintln!("named enforced version 2 {took:?} after the NOTIFY");
    assert_eq!(counter(&metrics, "ixfr"), ixfr_before + 1, "{}\nnamed log:\n{}", metrics.render(), log());
}
