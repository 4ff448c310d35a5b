//! TCP MD5 signatures (RFC 2385) against real peers on loopback, GoBGP (`gobgpd`) and BIRD 2,
//! each configured with a password for 127.0.0.1: a speaker with a wrong password or none never
//! gets a session (the peer's kernel drops its SYNs), and its status says so; with the right
//! password the session comes up and the blackhole route reaches the peer's RIB. Under CI=true
//! a missing peer fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bawaba_bgp::wire::{Afi, Safi};
use bawaba_bgp::{PeerConfig, PeerStatus, Prefix, Route, Speaker, State, BLACKHOLE};
use bawaba_testkit::{free_port, ChildGuard};
use common::{eventually, output, wait_established};

const PASSWORD: &str = "bawaba md5 test!";

fn blackhole(addr: &str) -> Route {
    Route::Unicast {
        prefix: Prefix::parse(&format!("{addr}/32")).unwrap(),
        next_hop: "198.18.0.66".parse().unwrap(),
        communities: vec![BLACKHOLE],
    }
}

fn peer(port: u16, remote_as: u32, md5_password: Option<&str>) -> PeerConfig {
    common::peer(port, remote_as, &[(Afi::IPV4, Safi::UNICAST)], md5_password)
}

/// Runs a speaker with a wrong password (peer 0) and one without (peer 1) until both have
/// failed a connection attempt (one connect timeout, 5 s), checking all along that neither
/// ever got a session; returns their final status.
async fn refused_without_the_password(port: u16, remote_as: u32) -> Vec<PeerStatus> {
    let speaker = Speaker::start(vec![peer(port, remote_as, Some("not the password")), peer(port, remote_as, None)]);
    speaker.set_routes(vec![blackhole("198.18.9.9")]);
    let deadline = Instant::now() + Duration::from_secs(12);
    let status = loop {
        let status = speaker.status();
        for s in &status {
            assert!(s.state != State::Established && s.established_count == 0, "got a session: {status:?}");
        }
        if status.iter().all(|s| s.last_error.is_some()) {
            break status;
        }
        assert!(Instant::now() < deadline, "no connection failure reported: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    speaker.shutdown(Duration::from_secs(2)).await;
    assert!(status[0].tcp_md5 && !status[1].tcp_md5, "{status:?}");
    let wrong = status[0].last_error.as_deref().unwrap();
    assert!(wrong.contains("connect timed out") && wrong.contains("TCP MD5"), "{wrong}");
    assert!(!format!("{status:?}").contains("not the password"));
    assert_eq!(status[1].last_error.as_deref(), Some("connect timed out"), "{status:?}");
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gobgp_with_md5_takes_only_the_right_password() {
    let Some(tools) = bawaba_testkit::require_tools("BGP TCP MD5 with GoBGP", &["gobgpd", "gobgp"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (bgp_port, api_port) = (free_port(), free_port());
    let conf = dir.path().join("gobgpd.toml");
    std::fs::write(&conf, bawaba_testkit::gobgpd_config_md5(bgp_port, 65000, PASSWORD)).unwrap();
    let _gobgpd = ChildGuard(
        Command::new(&tools[0])
            .arg("-f")
            .arg(&conf)
            .args(["--api-hosts", &format!("127.0.0.1:{api_port}"), "--pprof-disable", "-p"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let cli = tools[1].clone();
    let gobgp = move |args: &[&str]| output(Command::new(&cli).args(["-p", &api_port.to_string()]).args(args));
    let g = gobgp.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "gobgpd API up", || {
            // The neighbor is configured once GoBGP lists it.
            let n = g(&["neighbor"]);
            if n.contains("127.0.0.1") {
                Ok(())
            } else {
                Err(n)
            }
        })
    })
    .await
    .unwrap();

    refused_without_the_password(bgp_port, 65001).await;
    let g = gobgp.clone();
    tokio::task::spawn_blocking(move || {
        // GoBGP 3 writes the state in capitals, older versions in lower case.
        let n = g(&["neighbor", "127.0.0.1"]);
        assert!(n.contains("BGP state = ") && !n.to_lowercase().contains("bgp state = established"), "{n}");
        let r = g(&["global", "rib", "-a", "ipv4"]);
        assert!(!r.contains("198.18.9.9"), "{r}");
    })
    .await
    .unwrap();

    let speaker = Speaker::start(vec![peer(bgp_port, 65001, Some(PASSWORD))]);
    wait_established(&speaker).await;
    assert!(speaker.status()[0].tcp_md5);
    speaker.set_routes(vec![blackhole("198.18.9.9")]);
    let g = gobgp.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "blackhole in GoBGP's RIB over an MD5 session", || {
            let r = g(&["global", "rib", "-a", "ipv4"]);
            if r.contains("198.18.9.9/32") && r.contains("blackhole") {
                Ok(())
            } else {
                Err(r)
            }
        });
        let n = g(&["neighbor", "127.0.0.1"]);
        assert!(n.to_lowercase().contains("bgp state = established"), "{n}");
    })
    .await
    .unwrap();

    speaker.shutdown(Duration::from_secs(5)).await;
    let g = gobgp.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "withdrawn after shutdown", || {
            let r = g(&["global", "rib", "-a", "ipv4"]);
            if r.contains("198.18.9.9") {
                Err(r)
            } else {
                Ok(())
            }
        })
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bird_with_md5_takes_only_the_right_password() {
    let Some(tools) = bawaba_testkit::require_tools("BGP TCP MD5 with BIRD", &["bird", "birdc"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let password = PASSWORD;
    let config = format!(
            "router id 198.18.0.3;\n\
             protocol device {{ }}\n\
             protocol bgp bawaba {{\n  local 127.0.0.1 port {port} as 65002;\n  neighbor 127.0.0.1 as 65000;\n  passive on;\n\
               multihop;\n  hold time 9;\n  password \"{password}\";\n\
               ipv4 {{ import all; export none; }};\n}}\n"
        );
    let (_bird, birdc) = common::start_bird(&tools, dir.path(), &config);
    let b = birdc.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "bird up", || {
            let r = b(&["show", "protocols", "bawaba"]);
            if r.contains("bawaba") {
                Ok(())
            } else {
                Err(r)
            }
        })
    })
    .await
    .unwrap();

    refused_without_the_password(port, 65002).await;
    let b = birdc.clone();
    tokio::task::spawn_blocking(move || {
        let p = b(&["show", "protocols", "bawaba"]);
        assert!(!p.contains("Established"), "{p}");
        let r = b(&["show", "route", "all"]);
        assert!(!r.contains("198.18.9.9"), "{r}");
    })
    .await
    .unwrap();

    let speaker = Speaker::start(vec![peer(port, 65002, Some(PASSWORD))]);
    wait_established(&speaker).await;
    speaker.set_routes(vec![blackhole("198.18.9.9")]);
    let b = birdc.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "blackhole in BIRD over an MD5 session", || {
            let r = b(&["show", "route", "all"]);
            if r.contains("198.18.9.9/32") && r.contains("(65535,666)") {
                Ok(())
            } else {
                Err(r)
            }
        });
        let p = b(&["show", "protocols", "bawaba"]);
        assert!(p.contains("Established"), "{p}");
    })
    .await
    .unwrap();
    speaker.shutdown(Duration::from_secs(5)).await;
}

/// A key the kernel refuses (here an empty one; on a kernel without `CONFIG_TCP_MD5SIG`, any)
/// is a connection failure like another: reported in the status, retried with backoff, no
/// connection made without the signature.
#[tokio::test]
async fn a_key_the_kernel_refuses_is_reported_and_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let speaker = Speaker::start(vec![peer(port, 65001, Some(""))]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while speaker.status()[0].attempts < 3 {
        assert!(Instant::now() < deadline, "not retried: {:?}", speaker.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = speaker.status().remove(0);
    speaker.shutdown(Duration::from_secs(2)).await;
    let e = status.last_error.unwrap();
    assert!(e.contains("TCP MD5 password must be 1 to 80 bytes"), "{e}");
    assert_eq!(status.established_count, 0);
    // Nothing reached the listener unsigned.
    assert!(listener.accept().is_err());
}
