//! The attack-defense loop end to end, through `bawaba serve`: background traffic plus a DNS
//! amplification flood toward one protected address arrive as IPFIX on loopback; bawaba detects
//! the attack, announces a blackhole (65535:666) and a FlowSpec rule to a real GoBGP, withdraws
//! both after the flood stops, and withdraws everything on shutdown. Under CI=true a missing
//! GoBGP fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bawaba_flow::export::{ExportFlow, IpfixExporter};
use bawaba_testkit::{free_port, ChildGuard};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn rib(gobgp: &std::path::Path, api: u16, family: &str) -> String {
    let out = Command::new(gobgp).args(["-p", &api.to_string(), "global", "rib", "-a", family]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Sends IPFIX from one exporter: `background` flows/s of small TCP to many hosts and, while
/// `flood` is set, 30 records/100 ms of DNS answers (source port 53) toward 198.18.5.5, each
/// standing for 400 packets (sampled 1:100, so 4 sampled packets a record).
fn exporter(to: std::net::SocketAddr, flood: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut ipfix = IpfixExporter::new(1, Some(100));
        let mut buf = Vec::new();
        let mut round = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let t = now_ms();
            if round.is_multiple_of(10) {
                buf.clear();
                ipfix.templates(&mut buf, (t / 1000) as u32);
                socket.send_to(&buf, to).unwrap();
            }
            let background: Vec<ExportFlow> = (0..20u32)
                .map(|i| ExportFlow {
                    src: format!("198.19.{}.{}", (round + i) % 200, i + 1).parse().unwrap(),
                    dst: format!("198.18.{}.{}", i % 8, (round + i) % 250 + 1).parse().unwrap(),
                    src_port: 40000 + (i as u16),
                    dst_port: 443,
                    protocol: 6,
                    tcp_flags: 0x18,
                    packets: 2,
                    bytes: 1500,
                    start_ms: t - 100,
                    end_ms: t,
                })
                .collect();
            buf.clear();
            ipfix.data(&mut buf, (t / 1000) as u32, &background);
            socket.send_to(&buf, to).unwrap();
            if flood.load(Ordering::Relaxed) {
                let attack: Vec<ExportFlow> = (0..30u32)
                    .map(|i| ExportFlow {
                        src: format!("198.19.200.{}", i + 1).parse().unwrap(),
                        dst: "198.18.5.5".parse().unwrap(),
                        src_port: 53,
                        dst_port: 1024 + (round % 1000) as u16,
                        protocol: 17,
                        tcp_flags: 0,
                        packets: 4,
                        bytes: 4 * 1400,
                        start_ms: t - 100,
                        end_ms: t,
                    })
                    .collect();
                buf.clear();
                ipfix.data(&mut buf, (t / 1000) as u32, &attack);
                socket.send_to(&buf, to).unwrap();
            }
            round += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[test]
fn flood_is_detected_mitigated_over_bgp_and_withdrawn() {
    let Some(tools) = bawaba_testkit::require_tools("attack defense end to end", &["gobgpd", "gobgp"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (bgp_port, api_port, flow_port, metrics_port) = (free_port(), free_port(), free_port(), free_port());
    let console_port = free_port();
    let conf = dir.path().join("gobgpd.toml");
    let text = bawaba_testkit::gobgpd_config(bgp_port, 65000);
    std::fs::write(&conf, text).unwrap();
    let _gobgpd = ChildGuard(
        Command::new(&tools[0])
            .arg("-f")
            .arg(&conf)
            .args(["--api-hosts", &format!("127.0.0.1:{api_port}"), "--pprof-disable"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let config = dir.path().join("bawaba.toml");
    std::fs::write(
        &config,
        format!(
            r#"[store]
data_dir = "{data}"
[serve]
metrics_listen = "127.0.0.1:{metrics_port}"
[dns]
enabled = false
[flow]
enabled = true
listen = ["127.0.0.1:{flow_port}"]
[ddos.detection]
window_ms = 1000
hold_down_ms = 2000
[ddos.detection.baseline]
enabled = false
[[ddos.detection.groups]]
name = "isp-a"
prefixes = ["198.18.0.0/16"]
thresholds = {{ udp_pps = 50000 }}
[ddos.mitigation]
mode = "both"
dry_run = false
next_hop_v4 = "198.18.0.66"
next_hop_v6 = "2001:db8::66"
[bgp]
local_as = 65000
router_id = "198.18.0.1"
peers = [{{ address = "127.0.0.1:{bgp_port}", remote_as = 65001, hold_time = 9 }}]
[console]
enabled = true
listen = "127.0.0.1:{console_port}"
"#,
            data = dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bawaba"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let serve = ChildGuard(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if line.contains("flow collector on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    // An operator with an API token, for the console's view and manual mitigations.
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bawaba"))
            .arg("--config")
            .arg(&config)
            .args(["--actor", "admin"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    cli(&["user", "add", "noc", "--role", "operator"]);
    let token = cli(&["user", "token", "noc", "--label", "test"]);
    let secret = token.split(": ").nth(1).unwrap().lines().next().unwrap().trim().to_string();
    let api = bawaba_testkit::http::Client::new(format!("127.0.0.1:{console_port}").parse().unwrap())
        .with_header("authorization", &format!("Bearer {secret}"));

    let flood = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = exporter(format!("127.0.0.1:{flow_port}").parse().unwrap(), Arc::clone(&flood), Arc::clone(&stop));
    // Background only: nothing is announced (and the BGP session comes up meanwhile).
    std::thread::sleep(Duration::from_secs(3));
    assert!(!rib(&tools[1], api_port, "ipv4").contains("198.18."), "{}", rib(&tools[1], api_port, "ipv4"));

    // The flood: 30 records x 400 packets every 100 ms = 120,000 pps toward 198.18.5.5.
    flood.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    loop {
        let v4 = rib(&tools[1], api_port, "ipv4");
        let fs = rib(&tools[1], api_port, "ipv4-flowspec");
        if v4.contains("198.18.5.5/32") && v4.contains("blackhole") && fs.contains("[source-port: ==53]") {
            assert!(v4.contains("198.18.0.66"), "{v4}");
            assert!(fs.contains("discard"), "{fs}");
            break;
        }
        assert!(Instant::now() < deadline, "no mitigation route:\n{v4}\n{fs}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let to_mitigate = started.elapsed();
    eprintln!("attack start to route in GoBGP's RIB: {} ms", to_mitigate.as_millis());

    // The console's view: the attack, the mitigation in force, the exporter, the BGP session.
    let view = api.get("/api/v1/defense").unwrap().json();
    assert_eq!(view["attacks"][0]["target"], "198.18.5.5", "{view}");
    assert!(
        view["mitigations"].as_array().unwrap().iter().any(|m| m["routes"].to_string().contains("198.18.5.5/32")),
        "{view}"
    );
    assert_eq!(view["exporters"][0]["protocol"], "ipfix", "{view}");
    assert_eq!(view["bgp"][0]["state"], "established", "{view}");
    // A manual blackhole, within the rails, reaches the router and is audited; one outside the
    // protected networks is refused (and audited too).
    let manual = serde_json::json!({ "prefix": "198.18.7.7", "kind": "blackhole", "reason": "NOC ticket 4711" });
    let r = api.post_json("/api/v1/mitigations", &manual).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outcome"], "announce");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rib(&tools[1], api_port, "ipv4").contains("198.18.7.7/32") {
        assert!(Instant::now() < deadline, "manual blackhole not in GoBGP");
        std::thread::sleep(Duration::from_millis(50));
    }
    let outside = serde_json::json!({ "prefix": "198.19.0.1", "kind": "blackhole", "reason": "typo" });
    let r = api.post_json("/api/v1/mitigations", &outside).unwrap();
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("outside"), "{}", r.text());
    // The same from the command line: the running serve's mitigations and exporters, and the
    // withdrawal.
    let with_token = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bawaba"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("BAWABA_TOKEN", &secret)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = with_token(&["mitigation", "list"]);
    assert!(listed.contains("NOC ticket 4711") && listed.contains("blackhole 198.18.7.7/32"), "{listed}");
    assert!(with_token(&["exporter", "list"]).contains("ipfix"));
    let out = with_token(&["mitigation", "withdraw", "198.18.7.7"]);
    assert!(out.contains("withdraw blackhole 198.18.7.7/32"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rib(&tools[1], api_port, "ipv4").contains("198.18.7.7/32") {
        assert!(Instant::now() < deadline, "manual blackhole not withdrawn");
        std::thread::sleep(Duration::from_millis(50));
    }
    let audit = cli(&["audit", "list", "--json"]);
    assert!(
        audit.contains("mitigation.announce")
            && audit.contains("mitigation.withdraw")
            && audit.contains("NOC ticket 4711"),
        "{audit}"
    );

    // The flood stops: withdrawn after the 2 s hold-down.
    flood.store(false, Ordering::Relaxed);
    let stopped = Instant::now();
    let deadline = stopped + Duration::from_secs(10);
    while rib(&tools[1], api_port, "ipv4").contains("198.18.5.5")
        || rib(&tools[1], api_port, "ipv4-flowspec").contains("198.18.5.5")
    {
        assert!(Instant::now() < deadline, "not withdrawn after the attack ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("attack end to withdrawal: {} ms", stopped.elapsed().as_millis());
    let metrics = bawaba_testkit::http::Client::new(format!("127.0.0.1:{metrics_port}").parse().unwrap());
    let text = metrics.get("/metrics").unwrap().text();
    assert!(text.contains("bawaba_ddos_decisions_total{kind=\"announce\"}"), "{text}");
    assert!(text.contains("bawaba_flow_socket_drops_total 0"), "{text}");
    let log = std::fs::read_to_string(dir.path().join("data/attacks.jsonl")).unwrap();
    assert!(log.lines().count() >= 2 && log.contains("198.18.5.5") && log.contains("dns"), "{log}");
    // Kept in the store, with the decisions.
    let stored = api.get("/api/v1/attacks").unwrap().json();
    assert_eq!(stored[0]["target"], "198.18.5.5", "{stored}");
    assert!(stored[0]["ended_ms"].is_i64(), "{stored}");
    assert!(stored[0]["decisions"].to_string().contains("announce blackhole"), "{stored}");
    let listed = Command::new(env!("CARGO_BIN_EXE_bawaba"))
        .arg("--config")
        .arg(&config)
        .args(["attack", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("attack 1: 198.18.5.5/32 (isp-a)") && listed.contains("announce blackhole"), "{listed}");

    // A new flood, then shutdown while it runs: the routes go away with the session.
    flood.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rib(&tools[1], api_port, "ipv4").contains("198.18.5.5/32") {
        assert!(Instant::now() < deadline, "second flood not mitigated");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let mut serve = serve;
    let deadline = Instant::now() + Duration::from_secs(10);
    while serve.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    assert!(!rib(&tools[1], api_port, "ipv4").contains("198.18.5.5"), "route left after shutdown");
    assert!(!rib(&tools[1], api_port, "ipv4-flowspec").contains("198.18.5.5"), "FlowSpec left after shutdown");
}
