//! End-to-end: the `bawaba` binary driven as a user drives it, on a fresh data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bawaba_testkit::ChildGuard;

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bawaba.toml");
        let data = dir.path().join("data");
        std::fs::write(&config, format!("[store]\ndata_dir = {:?}\n", data.to_str().unwrap())).unwrap();
        let env = Env { dir, config };
        env.ok("admin", &["init"]);
        env
    }

    fn run(&self, actor: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bawaba"))
            .arg("--config")
            .arg(&self.config)
            .arg("--actor")
            .arg(actor)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, actor: &str, args: &[&str]) -> String {
        let out = self.run(actor, args);
        assert!(
            out.status.success(),
            "bawaba {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and requires failure; returns stdout + stderr.
    fn fails(&self, actor: &str, args: &[&str]) -> String {
        let out = self.run(actor, args);
        assert!(!out.status.success(), "bawaba {args:?} should have failed");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    fn json(&self, actor: &str, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(actor, args)).unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Records an order as alice and returns its id.
    fn order(&self, reference: &str) -> String {
        self.ok(
            "alice",
            &[
                "order",
                "add",
                "--authority",
                "Court of First Instance, Baghdad",
                "--reference",
                reference,
                "--category",
                "phishing",
                "--expires",
                "+30d",
                "--summary",
                "Fake bank login pages",
                "--appeal-contact",
                "appeals@cmc.example",
            ],
        );
        let list = self.json("alice", &["order", "list", "--json"]);
        list.as_array().unwrap().last().unwrap()["id"].to_string()
    }
}

fn newest_bundle(dir: &Path) -> PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.pop().expect("a bundle was written")
}

#[test]
fn order_lifecycle_check_publish_verify() {
    let env = Env::new();
    let id = env.order("CFI-2026-0042");
    env.ok("alice", &["rule", "add", "--order", &id, "--action", "block-page", "bank-login.example", "198.18.66.0/24"]);

    // Not enforced before approval, and the proposer cannot approve.
    assert!(env.ok("x", &["policy", "check", "www.bank-login.example"]).contains("not blocked"));
    let err = env.fails("alice", &["order", "approve", &id]);
    assert!(err.contains("cannot approve"), "{err}");
    env.ok("bob", &["order", "approve", &id]);

    let out = env.ok("x", &["policy", "check", "WWW.Bank-Login.example."]);
    assert!(out.contains("BLOCKED (block-page)"), "{out}");
    assert!(out.contains("CFI-2026-0042") && out.contains("appeals@cmc.example"), "{out}");
    let j = env.json("x", &["policy", "check", "198.18.66.9", "--json"]);
    assert_eq!(j["verdict"], "blocked");
    assert_eq!(j["order"]["reference"], "CFI-2026-0042");
    assert_eq!(j["selector"], "198.18.66.0/24");
    assert_eq!(env.json("x", &["policy", "check", "bank-login.example.org", "--json"])["verdict"], "not-blocked");
    let err = env.fails("x", &["policy", "check", "bad..name"]);
    assert!(err.contains("empty label"), "{err}");

    // Publish, verify, and check against the bundle.
    env.ok("bob", &["policy", "publish"]);
    let bundle = newest_bundle(&env.path("data/bundles"));
    let v = env.json("x", &["policy", "verify", "--json", bundle.to_str().unwrap()]);
    assert_eq!(v["valid"], true);
    assert_eq!(v["rules"], 2);
    let out = env.ok("x", &["policy", "check", "--bundle", bundle.to_str().unwrap(), "bank-login.example"]);
    assert!(out.contains("BLOCKED"), "{out}");

    // A truncated or altered copy is refused with a clear error.
    let bytes = std::fs::read(&bundle).unwrap();
    let bad = env.path("bad.bundle");
    std::fs::write(&bad, &bytes[..bytes.len() - 10]).unwrap();
    let out = env.fails("x", &["policy", "verify", bad.to_str().unwrap()]);
    assert!(out.contains("INVALID") && out.contains("truncated"), "{out}");
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(&bad, &flipped).unwrap();
    let out = env.fails("x", &["policy", "verify", bad.to_str().unwrap()]);
    assert!(out.contains("INVALID"), "{out}");
    // A bundle signed by another key is refused.
    let other = env.path("other.pub");
    std::fs::write(&other, format!("{}\n", "11".repeat(32))).unwrap();
    let out = env.fails("x", &["policy", "verify", "--key", other.to_str().unwrap(), bundle.to_str().unwrap()]);
    assert!(out.contains("INVALID"), "{out}");

    // Revocation takes effect at the next compile.
    env.ok("carol", &["order", "revoke", &id, "--reason", "quashed on appeal"]);
    assert!(env.ok("x", &["policy", "check", "bank-login.example"]).contains("not blocked"));

    assert!(env.ok("x", &["audit", "verify"]).contains("audit log intact"));
    let audit = env.json("x", &["audit", "list", "--json"]);
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    // `init` created the first console user.
    assert_eq!(
        actions,
        ["user.create", "order.add", "rule.add", "rule.add", "order.approve", "bundle.publish", "order.revoke"]
    );
}

#[test]
fn guard_and_allowlist_from_the_command_line() {
    let env = Env::new();
    env.ok("admin", &["allow", "add", "exact:help.bank-login.example", "--reason", "real help page"]);
    let id = env.order("CFI-2026-0043");
    let err = env.fails("alice", &["rule", "add", "--order", &id, "--action", "drop", "198.18.0.0/16"]);
    assert!(err.contains("--force"), "{err}");
    let err = env.fails("alice", &["rule", "add", "--order", &id, "bank-login.example"]);
    assert!(err.contains("help.bank-login.example"), "{err}");
    env.ok(
        "alice",
        &["rule", "add", "--order", &id, "bank-login.example", "--force", "--reason", "court names the whole domain"],
    );
    env.ok("bob", &["order", "approve", &id]);
    let out = env.ok("x", &["policy", "check", "help.bank-login.example"]);
    assert!(out.contains("ALLOWED"), "{out}");
    assert!(env.ok("x", &["policy", "check", "www.bank-login.example"]).contains("BLOCKED"));
}

#[test]
fn audit_verify_fails_on_a_tampered_database() {
    let env = Env::new();
    let id = env.order("CFI-2026-0044");
    env.ok("alice", &["rule", "add", "--order", &id, "c2.example"]);
    env.ok("bob", &["order", "approve", &id]);
    let db = rusqlite::Connection::open(env.path("data/bawaba.db")).unwrap();
    db.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 3;").unwrap();
    drop(db);
    let out = env.run("x", &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("entry 3 was altered"), "{text}");
}

#[test]
fn import_reports_bad_lines_with_numbers() {
    let env = Env::new();
    let id = env.order("CFI-2026-0045");
    let list = env.path("list.txt");
    std::fs::write(
        &list,
        "# phishing\nsecure-login-bank.example\nnot a name\nsecure-login-bank.example\n*.x.example\n",
    )
    .unwrap();
    let report = env
        .json("alice", &["policy", "import", "--order", &id, "--format", "domains", "--json", list.to_str().unwrap()]);
    assert_eq!(report["added"], 2, "{report}");
    assert_eq!(report["duplicates"], 1, "{report}");
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{report}");
    assert_eq!(rejected[0]["line"], 3, "{report}");
    env.ok("bob", &["order", "approve", &id]);
    let rpz = env.ok("x", &["policy", "export"]);
    assert!(rpz.contains("secure-login-bank.example"), "{rpz}");
    assert!(rpz.contains("CFI-2026-0045"), "{rpz}");
}

#[test]
fn help_has_examples_and_bad_config_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_bawaba")).args(["rule", "add", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[policy]\nmax_order_dayz = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bawaba")).arg("--config").arg(&cfg).arg("init").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_order_dayz"));
}

/// A config for `bawaba serve` on loopback: DNS on a free port, the upstream a closed port (so
/// unknown names get SERVFAIL and nothing leaves the machine), reloads every second; `extra` is
/// appended.
fn serve_config(data: &Path, extra: &str) -> String {
    format!(
        "[store]\ndata_dir = {:?}\n[serve]\nreload_interval_secs = 1\nmetrics_listen = \"127.0.0.1:0\"\n\
         [dns]\nenabled = true\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"127.0.0.1:9\"]\nupstream_timeout_ms = 200\n{extra}",
        data.to_str().unwrap()
    )
}

/// Starts `bawaba serve` and returns its guard and the DNS address it printed. The read end of its
/// stdout is closed on return, on purpose: serve must keep serving when nobody reads its output.
fn start_serve(env: &Env) -> (ChildGuard, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bawaba"))
        .arg("--config")
        .arg(&env.config)
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = ChildGuard(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("dns listening on ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    (server, addr)
}

#[test]
fn serve_bootstraps_enforces_and_reloads_signed_bundles() {
    let env = Env::new();
    let data = env.path("data");
    // Loopback only: the upstream is a closed port, so unknown names get SERVFAIL, never the network.
    std::fs::write(&env.config, serve_config(&data, "")).unwrap();
    let id = env.order("CFI-2026-0050");
    env.ok("alice", &["rule", "add", "--order", &id, "--action", "nxdomain", "c2.example"]);
    env.ok("bob", &["order", "approve", &id]);

    // No bundle yet: serve publishes the store's policy, then answers.
    let (server, addr) = start_serve(&env);
    assert_eq!(bawaba_testkit::dns_rcode(addr, "www.c2.example"), Some(3), "NXDOMAIN for the blocked subtree");
    assert_eq!(bawaba_testkit::dns_rcode(addr, "unrelated.example"), Some(2), "SERVFAIL: the upstream is down");

    // A new order, published as v2, is picked up by the reload loop.
    let id2 = env.order("CFI-2026-0051");
    env.ok("alice", &["rule", "add", "--order", &id2, "--action", "nxdomain", "exact:phish.example"]);
    env.ok("bob", &["order", "approve", &id2]);
    env.ok("bob", &["policy", "publish"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while bawaba_testkit::dns_rcode(addr, "phish.example") != Some(3) {
        assert!(std::time::Instant::now() < deadline, "v2 not in force after 10 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // A damaged "newer" bundle is refused and the policy in force stays.
    std::fs::write(data.join("bundles/bawaba-policy-v00000003-0000000000000000.bundle"), b"not a bundle").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(bawaba_testkit::dns_rcode(addr, "phish.example"), Some(3));
    assert_eq!(bawaba_testkit::dns_rcode(addr, "www.c2.example"), Some(3));
    drop(server);
}

/// Asks `server` for the SOA of `zone` over UDP; returns (flags, rcode, serial of the answer).
fn soa_serial(server: std::net::SocketAddr, zone: &str) -> Option<(u16, u8, u32)> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    let mut q = vec![0x56, 0x78, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in zone.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 6, 0, 1]);
    socket.send_to(&q, server).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    // The answer is one SOA record, the last record: its RDATA ends with SERIAL and four more u32.
    let serial = u32::from_be_bytes(buf[n - 20..n - 16].try_into().unwrap());
    Some((u16::from_be_bytes([buf[2], buf[3]]), buf[3] & 0xf, serial))
}

#[test]
fn serve_transfers_the_policy_zone_and_notifies_after_a_reload() {
    let env = Env::new();
    let data = env.path("data");
    // A stand-in secondary: receives the NOTIFY and acknowledges it (RFC 1996 section 4.7).
    let secondary = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    secondary.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    let rpz = format!("[dns.rpz]\nenabled = true\nnotify = [\"{}\"]\n", secondary.local_addr().unwrap());
    std::fs::write(&env.config, serve_config(&data, &rpz)).unwrap();
    let id = env.order("CFI-2026-0060");
    env.ok("alice", &["rule", "add", "--order", &id, "--action", "nxdomain", "c2.example"]);
    env.ok("bob", &["order", "approve", &id]);
    let (server, addr) = start_serve(&env);
    // The SOA poll of a secondary: authoritative, serial = the policy version.
    let (flags, status, serial) = soa_serial(addr, "rpz.bawaba.invalid").expect("an SOA answer");
    assert_eq!((flags & 0x0400 != 0, status, serial), (true, 0, 1));

    let mut buf = [0u8; 1500];
    let ack = |buf: &mut [u8; 1500]| -> u32 {
        let (n, from) = secondary.recv_from(buf).expect("a NOTIFY within 15 s");
        // Opcode NOTIFY, QR clear, AA set; the SOA hint's serial ends the message.
        assert_eq!((buf[2] >> 3) & 0xf, 4, "opcode NOTIFY");
        assert!(buf[2] & 0x80 == 0 && buf[2] & 0x04 != 0);
        let serial = u32::from_be_bytes(buf[n - 20..n - 16].try_into().unwrap());
        let mut reply = buf[..12].to_vec();
        reply[2] |= 0x80;
        reply[4..12].fill(0);
        secondary.send_to(&reply, from).unwrap();
        serial
    };
    // At start (secondaries may hold an older version), then after the reload to v2.
    assert_eq!(ack(&mut buf), 1);
    let id2 = env.order("CFI-2026-0061");
    env.ok("alice", &["rule", "add", "--order", &id2, "--action", "nxdomain", "exact:phish.example"]);
    env.ok("bob", &["order", "approve", &id2]);
    env.ok("bob", &["policy", "publish"]);
    assert_eq!(ack(&mut buf), 2);
    assert_eq!(soa_serial(addr, "rpz.bawaba.invalid").map(|s| s.2), Some(2));
    assert_eq!(bawaba_testkit::dns_rcode(addr, "phish.example"), Some(3));
    drop(server);
}
