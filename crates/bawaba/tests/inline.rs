//! `bawaba serve` with the inline packet engine (NFQUEUE) in a routed gateway namespace, between
//! real clients (curl, the aioquic client, dig) and real servers (nginx, an aioquic server, a
//! small DNS server), built by `scripts/netns/`. Blocked TLS, HTTP and QUIC names fail, the block
//! page redirect names the order, allowed names pass, counters match, and the iptables rules are
//! gone after a clean shutdown.
//!
//! Needs root (network namespaces, iptables). Under CI=true a missing tool fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bawaba_testkit::ChildGuard;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn venv_python() -> PathBuf {
    PathBuf::from(std::env::var("BAWABA_TEST_VENV").unwrap_or_else(|_| "/var/cache/bawaba-test-venv".into()))
        .join("bin/python")
}

/// The three namespaces and the servers in them; torn down on drop, also when a test fails.
struct Topology {
    pfx: String,
    work: tempfile::TempDir,
    server4: &'static str,
    server6: &'static str,
}

impl Topology {
    /// `route`: the gateway routes between 198.18.1.0/24 and 198.18.2.0/24 (server .2.2);
    /// `bridge`: it bridges one subnet 198.18.0.0/24 (server .0.3) in br0.
    fn up(mode: &str, tag: &str) -> Topology {
        let pfx = format!("b{tag}{}", std::process::id() % 100_000);
        let work = tempfile::tempdir().unwrap();
        let (server4, server6) =
            if mode == "bridge" { ("198.18.0.3", "2001:db8::3") } else { ("198.18.2.2", "2001:db8:2::2") };
        let topo = Topology { pfx, work, server4, server6 };
        let netns = repo().join("scripts/netns");
        let run = |script: &str, args: &[&str]| {
            let out = Command::new("bash")
                .arg(netns.join(script))
                .args(args)
                .env("PFX", &topo.pfx)
                .env("SRV4", server4)
                .env("SRV6", server6)
                .output()
                .unwrap();
            assert!(out.status.success(), "{script} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run("topology.sh", &["up", mode]);
        run("servers.sh", &["up", &topo.pfx, topo.work.path().to_str().unwrap()]);
        topo
    }

    fn ns(&self, side: &str) -> String {
        format!("{}-{side}", self.pfx)
    }

    /// Runs a command in a namespace.
    fn exec(&self, side: &str, cmd: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", &self.ns(side)]).args(cmd).output().unwrap()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let netns = repo().join("scripts/netns");
        let work = self.work.path().to_str().unwrap().to_string();
        let _ = Command::new("bash")
            .arg(netns.join("servers.sh"))
            .args(["down", &self.pfx, &work])
            .env("PFX", &self.pfx)
            .output();
        let _ = Command::new("bash").arg(netns.join("topology.sh")).arg("down").env("PFX", &self.pfx).output();
    }
}

fn bawaba(config: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_bawaba")).arg("--config").arg(config).args(args).output().unwrap();
    assert!(out.status.success(), "bawaba {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Whether the client gets an answer for dns.allowed.test from the server's resolver, asking
/// from client port `port` (one connection per port) and waiting `secs` seconds.
fn dig_from_port(topo: &Topology, port: u16, secs: u32) -> bool {
    let (bind, time) = (format!("0.0.0.0#{port}"), format!("+time={secs}"));
    let out =
        topo.exec("cli", &["dig", "@198.18.2.2", "-b", &bind, "+tries=1", &time, "+short", "dns.allowed.test", "A"]);
    out.status.success() && !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// Records an order as alice (its rules and bob's approval come after).
fn add_order(config: &Path, reference: &str, category: &str) {
    let court = "Court of First Instance, Baghdad";
    let details = ["--expires", "+30d", "--summary", "test", "--appeal-contact", "appeals@cmc.example"];
    let mut args = vec!["--actor", "alice", "order", "add", "--authority", court, "--reference", reference];
    args.extend(["--category", category]);
    args.extend(details);
    bawaba(config, &args);
}

/// curl from the client namespace; returns (exit code, stdout, seconds taken).
fn curl(topo: &Topology, url: &str, name: &str, addr: &str, extra: &[&str]) -> (i32, String, f64) {
    let port = if url.starts_with("https") { "443" } else { "80" };
    let resolve = format!("{name}:{port}:{addr}");
    let mut cmd = vec![
        "curl",
        "-sk",
        "--max-time",
        "6",
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
    ];
    cmd.extend_from_slice(extra);
    cmd.push(url);
    let started = Instant::now();
    let out = topo.exec("cli", &cmd);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string(), started.elapsed().as_secs_f64())
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Records the test policy (two orders, four rules), publishes it, and starts `bawaba serve` in
/// the gateway namespace with `engine` as its [engine] section; returns once `ready` is printed.
fn start_serve(topo: &Topology, engine: &str, metrics_port: u16, ready: &str) -> (ChildGuard, u32) {
    let dir = topo.work.path().join("bawaba");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bawaba.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\ndata_dir = \"{}\"\n[serve]\nreload_interval_secs = 1\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
             [dns]\nenabled = false\n{engine}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let c = config.as_path();
    bawaba(c, &["init"]);
    add_order(c, "CFI-2026-0042", "court-order");
    add_order(c, "CMC-2026-0007", "malware");
    bawaba(c, &["--actor", "alice", "rule", "add", "--order", "1", "--action", "reset", "blocked.test"]);
    bawaba(
        c,
        &["--actor", "alice", "rule", "add", "--order", "2", "--action", "block-page", "exact:page.allowed.test"],
    );
    bawaba(c, &["--actor", "alice", "rule", "add", "--order", "2", "--action", "drop", "quic-blocked.test"]);
    bawaba(c, &["--actor", "alice", "rule", "add", "--order", "1", "--action", "nxdomain", "dns-blocked.test"]);
    bawaba(c, &["--actor", "bob", "order", "approve", "1"]);
    bawaba(c, &["--actor", "bob", "order", "approve", "2"]);
    bawaba(c, &["--actor", "bob", "policy", "publish"]);

    let mut child = Command::new("ip")
        .args(["netns", "exec", &topo.ns("gw"), env!("CARGO_BIN_EXE_bawaba"), "--config"])
        .arg(c)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let serve = ChildGuard(child);
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    loop {
        let line = lines.next().expect("serve exited before the engine was up").unwrap();
        if line.contains(ready) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "engine not up");
    }
    // Keep reading stdout so serve never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (serve, pid)
}

/// Sends SIGTERM and waits for `serve` to exit.
fn stop_serve(serve: ChildGuard, pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut serve = serve;
    while serve.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The two tests share the CPU with their servers and clients; run one at a time, so a passive
/// sensor is not starved while the other test's download runs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn requirements(test: &str) -> bool {
    let tools = ["ip", "iptables", "ip6tables", "nginx", "curl", "dig"];
    if bawaba_testkit::require_tools(test, &tools).is_none() {
        return false;
    }
    if !venv_python().exists() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "no aioquic venv: run scripts/install-test-deps.sh");
        eprintln!("SKIPPED {test}: no aioquic venv; run scripts/install-test-deps.sh");
        return false;
    }
    true
}

fn quic(topo: &Topology, sni: &str, big: bool) -> bool {
    let python = venv_python();
    let quic_client = repo().join("scripts/netns/quic_client.py");
    let mut args = vec![python.to_str().unwrap(), quic_client.to_str().unwrap(), "--sni", sni, "--timeout", "3"];
    if big {
        args.push("--big");
    }
    args.push(topo.server4);
    topo.exec("cli", &args).status.success()
}

#[test]
fn inline_nfqueue_blocks_real_clients() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !requirements("inline NFQUEUE test") {
        return;
    }
    let topo = Topology::up("route", "il");
    let engine = "[engine]\nmode = \"nfqueue\"\nqueue = 7\nblock_page_url = \"http://198.18.2.2/blocked\"\n";
    let (serve, pid) = start_serve(&topo, engine, 9153, "engine inline on NFQUEUE 7");
    let rules = String::from_utf8_lossy(&topo.exec("gw", &["iptables", "-S"]).stdout).to_string();
    assert!(rules.contains("-A FORWARD -j BAWABA-Q7") && rules.contains("--queue-num 7"), "{rules}");

    // TLS: allowed passes, blocked (IPv4 and IPv6) is reset quickly rather than timing out.
    let (code, out, _) = curl(&topo, "https://t13.allowed.test/", "t13.allowed.test", "198.18.2.2", &["--tlsv1.3"]);
    assert_eq!((code, out.trim()), (0, "200"), "allowed TLS");
    for (name, addr) in [("www.blocked.test", "198.18.2.2"), ("v6.blocked.test", "[2001:db8:2::2]")] {
        let (code, _, secs) = curl(&topo, &format!("https://{name}/"), name, addr, &[]);
        assert!(code == 35 || code == 56 || code == 52, "blocked TLS {name}: curl exit {code}");
        assert!(secs < 3.0, "blocked TLS {name} took {secs:.1} s: reset expected, not a timeout");
    }
    // HTTP: the block-page rule redirects to the block page naming the order; a reset rule resets.
    let (code, out, _) = curl(&topo, "http://page.allowed.test/x", "page.allowed.test", "198.18.2.2", &[]);
    assert_eq!(code, 0);
    assert_eq!(out, "302 http://198.18.2.2/blocked?order=CMC-2026-0007&host=page.allowed.test");
    let (code, _, _) = curl(&topo, "http://www.blocked.test/", "www.blocked.test", "198.18.2.2", &[]);
    assert!(code == 56 || code == 52, "blocked HTTP: curl exit {code}");
    let (code, out, _) = curl(&topo, "http://h1.allowed.test/", "h1.allowed.test", "198.18.2.2", &[]);
    assert_eq!((code, out.trim()), (0, "200"), "allowed HTTP");

    // QUIC: allowed completes the handshake, a blocked SNI is dropped (the client times out).
    assert!(quic(&topo, "quic.allowed.test", false), "allowed QUIC");
    assert!(!quic(&topo, "www.quic-blocked.test", false), "blocked QUIC");
    assert!(!quic(&topo, "big.quic-blocked.test", true), "blocked QUIC, ClientHello over two Initials");

    // DNS to a resolver that is not the gateway's: the blocked name gets no answer.
    let dig = |name: &str| {
        let out = topo.exec("cli", &["dig", "@198.18.2.2", "+tries=1", "+time=2", "+short", name, "A"]);
        out.status.success() && !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    };
    assert!(dig("dns.allowed.test"), "allowed DNS");
    assert!(!dig("www.dns-blocked.test"), "blocked DNS");

    // Counters, as Prometheus sees them (published every half second).
    std::thread::sleep(Duration::from_millis(1200));
    let metrics = topo.exec("gw", &["curl", "-s", "http://127.0.0.1:9153/metrics"]);
    let text = String::from_utf8_lossy(&metrics.stdout).to_string();
    assert!(metric(&text, "bawaba_engine_flows_decided_total{action=\"reset\"}") >= 3, "{text}");
    assert_eq!(metric(&text, "bawaba_engine_flows_decided_total{action=\"redirect\"}"), 1, "{text}");
    assert!(metric(&text, "bawaba_engine_flows_decided_total{action=\"drop\"}") >= 2, "{text}");
    assert!(metric(&text, "bawaba_engine_dns_queries_blocked_total") >= 1, "{text}");
    assert!(metric(&text, "bawaba_engine_blocked_total{category=\"court-order\"}") >= 4, "{text}");
    assert!(metric(&text, "bawaba_engine_blocked_total{category=\"malware\"}") >= 3, "{text}");
    assert!(metric(&text, "bawaba_engine_injected_total") >= 6, "{text}");
    assert_eq!(metric(&text, "bawaba_engine_inject_failed_total"), 0, "{text}");
    // The loop found the queue's socket and sleeps in poll(2), not in 1 ms naps.
    assert_eq!(metric(&text, "bawaba_engine_queue_waits_in_poll"), 1, "{text}");

    // Hot swap: a long download allowed under the old policy is cut once a new order blocks its
    // name (the connection carries the allow connmark, so bawaba has it re-queued).
    let resolve = "later.allowed.test:80:198.18.2.2";
    let partial = topo.work.path().join("later.part");
    let mut download = Command::new("ip")
        .args(["netns", "exec", &topo.ns("cli"), "curl", "-s", "--limit-rate", "4M", "--max-time", "20"])
        .args(["--resolve", resolve, "-o"])
        .arg(&partial)
        .arg("http://later.allowed.test/big.bin")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(download.try_wait().unwrap().is_none(), "the download should still be running");
    let c = topo.work.path().join("bawaba/bawaba.toml");
    let c = c.as_path();
    add_order(c, "CFI-2026-0077", "court-order");
    bawaba(c, &["--actor", "alice", "rule", "add", "--order", "3", "--action", "reset", "later.allowed.test"]);
    bawaba(c, &["--actor", "bob", "order", "approve", "3"]);
    bawaba(c, &["--actor", "bob", "policy", "publish"]);
    // Enforced means no more bytes reach the client. Normally the resets end the transfer at
    // once (curl exit 56); if both ends refuse them (a sequence number that moved on between the
    // packet bawaba saw and the reset), the connection is dropped in the kernel and stalls.
    let published = Instant::now();
    let size = || std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    let mut last = (size(), Instant::now());
    let outcome = loop {
        if let Some(status) = download.try_wait().unwrap() {
            assert_eq!(status.code(), Some(56), "cut by a reset (curl 56), not finished or timed out");
            break "reset";
        }
        let now = size();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            let _ = download.kill();
            let _ = download.wait();
            break "stalled";
        }
        assert!(published.elapsed() < Duration::from_secs(15), "the download still runs after the new policy");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(size() < 64_000_000, "the download completed");
    eprintln!("mid-stream block: {outcome}");
    // The counters are published every half second: the reset may come before the next one.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let metrics = topo.exec("gw", &["curl", "-s", "http://127.0.0.1:9153/metrics"]);
        let text = String::from_utf8_lossy(&metrics.stdout).to_string();
        if metric(&text, "bawaba_engine_rejudged_changed_total") >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Lifting a block: an order blocks the server's address, so a DNS exchange to it from a fixed
    // client port is dropped and its connection carries the block connmark; once the order is
    // revoked, the same connection (same ports, still in conntrack) gets answers again, because
    // bawaba has the kernel queue it again instead of dropping it on its own.
    add_order(c, "CFI-2026-0078", "court-order");
    bawaba(c, &["--actor", "alice", "rule", "add", "--order", "4", "--action", "drop", "198.18.2.2/32"]);
    bawaba(c, &["--actor", "bob", "order", "approve", "4"]);
    bawaba(c, &["--actor", "bob", "policy", "publish"]);
    let dig_from = |port: u16| dig_from_port(&topo, port, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while dig_from(5400) {
        assert!(Instant::now() < deadline, "the server's address is still not blocked");
    }
    assert!(!dig_from(5400), "the blocked connection stays blocked");
    bawaba(c, &["--actor", "bob", "order", "revoke", "4", "--reason", "quashed on appeal"]);
    bawaba(c, &["--actor", "bob", "policy", "publish"]);
    // Each try from a port of its own: a connection made before the new policy was in force
    // would be blocked as 5400 is.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut port = 5401;
    while !dig_from(port) {
        assert!(Instant::now() < deadline, "a new connection is still blocked after the revocation");
        port += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dig_from(5400) {
        assert!(Instant::now() < deadline, "the connection blocked before the revocation stays blocked");
    }

    // A clean shutdown removes the rules.
    stop_serve(serve, pid);
    for tool in ["iptables", "ip6tables"] {
        let rules = String::from_utf8_lossy(&topo.exec("gw", &[tool, "-S"]).stdout).to_string();
        assert!(!rules.contains("BAWABA"), "{tool} rules left after shutdown:\n{rules}");
    }
}

#[test]
fn passive_afpacket_resets_blocked_tcp() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !requirements("passive AF_PACKET test") {
        return;
    }
    let topo = Topology::up("bridge", "ip");
    let (serve, pid) =
        start_serve(&topo, "[engine]\nmode = \"afpacket\"\ninterface = \"br0\"\n", 9154, "engine passive on br0");
    let (s4, s6) = (topo.server4, format!("[{}]", topo.server6));
    let (code, out, _) = curl(&topo, "https://t13.allowed.test/", "t13.allowed.test", s4, &["--tlsv1.3"]);
    assert_eq!((code, out.trim()), (0, "200"), "allowed TLS");
    let (code, out, _) = curl(&topo, "http://h1.allowed.test/big.bin", "h1.allowed.test", s4, &[]);
    assert_eq!((code, out.trim()), (0, "200"), "allowed HTTP download");
    // The sensor is not in the path: its resets race the server's answers.
    for (url, name, addr) in [
        ("https://www.blocked.test/big.bin", "www.blocked.test", s4),
        ("https://v6.blocked.test/big.bin", "v6.blocked.test", s6.as_str()),
        ("http://www.blocked.test/big.bin", "www.blocked.test", s4),
    ] {
        // Downloads, rate-limited, so that a slow machine cannot finish one before the resets
        // land: what is shown is that the sensor cuts the connection, not that it wins a race
        // against a server one veth away.
        let (code, out, secs) = curl(&topo, url, name, addr, &["--limit-rate", "20M"]);
        assert!(code != 0 && code != 28, "{url}: curl exit {code} ({out})");
        assert!(secs < 3.0, "{url} took {secs:.1} s: reset expected");
    }
    // QUIC cannot be stopped from a mirror port; the verdict is recorded.
    assert!(quic(&topo, "www.quic-blocked.test", false));
    std::thread::sleep(Duration::from_millis(1200));
    let metrics = topo.exec("gw", &["curl", "-s", "http://127.0.0.1:9154/metrics"]);
    let text = String::from_utf8_lossy(&metrics.stdout).to_string();
    assert!(metric(&text, "bawaba_engine_flows_decided_total{action=\"reset\"}") >= 3, "{text}");
    assert!(metric(&text, "bawaba_engine_flows_decided_total{action=\"drop\"}") >= 1, "{text}");
    assert!(metric(&text, "bawaba_engine_injected_total") >= 6, "{text}");
    assert_eq!(metric(&text, "bawaba_engine_inject_failed_total"), 0, "{text}");
    stop_serve(serve, pid);
}

#[test]
fn inline_engine_drops_attack_traffic_while_a_mitigation_is_in_force() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !requirements("inline mitigation drop test") {
        return;
    }
    let topo = Topology::up("route", "im");
    // Attack defense with the engine drop on, no routers (the drop alone), and the console for
    // the operator's manual mitigation.
    let sections = "[engine]\nmode = \"nfqueue\"\nqueue = 8\n\
        [flow]\nenabled = true\nlisten = [\"127.0.0.1:0\"]\n\
        [[ddos.detection.groups]]\nname = \"servers\"\nprefixes = [\"198.18.2.0/24\"]\n\
        [ddos.mitigation]\ndry_run = false\nengine_drop = true\n\
        [console]\nenabled = true\nlisten = \"127.0.0.1:8080\"\n";
    let (serve, pid) = start_serve(&topo, sections, 9153, "console on");
    let config = topo.work.path().join("bawaba/bawaba.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_bawaba"))
        .arg("--config")
        .arg(&config)
        .args(["--actor", "admin", "user", "token", "admin", "--label", "test"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token =
        String::from_utf8_lossy(&out.stdout).split(": ").nth(1).unwrap().lines().next().unwrap().trim().to_string();
    let api = |path: &str, body: &str| {
        let out = topo.exec(
            "gw",
            &[
                "curl",
                "-s",
                "-H",
                &format!("authorization: Bearer {token}"),
                "-H",
                "content-type: application/json",
                "-d",
                body,
                &format!("http://127.0.0.1:8080/api/v1{path}"),
            ],
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // DNS from a given client source port (a new connection for each port).
    let dig = |sport: u16| dig_from_port(&topo, sport, 2);
    assert!(dig(5353), "answered before any mitigation");

    // A DNS reflection toward the server is "mitigated": UDP from source port 53 to it.
    let rule =
        r#"{"prefix":"198.18.2.2","kind":"flowspec","protocol":"udp","source_port":53,"reason":"test reflection"}"#;
    let answer = api("/mitigations", rule);
    assert!(answer.contains("\"outcome\":\"announce\""), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while dig(53) {
        assert!(Instant::now() < deadline, "traffic from source port 53 still passes");
    }
    assert!(dig(5354), "other traffic to the same server still passes");
    let metrics = || {
        String::from_utf8_lossy(&topo.exec("gw", &["curl", "-s", "http://127.0.0.1:9153/metrics"]).stdout).to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&metrics(), "bawaba_engine_mitigation_drops_total") == 0 {
        assert!(Instant::now() < deadline, "no mitigation drop counted");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Exact lines: a failed fetch must not read as "no rules".
    let rules = |n: u64| metrics().lines().any(|l| l == format!("bawaba_engine_mitigation_rules {n}"));
    assert!(rules(1), "{}", metrics());
    let answer = api("/mitigations/withdraw", rule);
    assert!(answer.contains("\"outcome\":\"withdraw\""), "{answer}");
    // The drop rule goes with the route (connections it already blocked stay blocked in
    // conntrack until they expire).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rules(0) {
        assert!(Instant::now() < deadline, "the drop rule stayed after the withdrawal");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_serve(serve, pid);
}
