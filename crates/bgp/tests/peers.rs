//! The speaker against real BGP implementations on loopback: GoBGP (`gobgpd`) and BIRD 2. A
//! blackhole route with community 65535:666 and FlowSpec rules (IPv4 and IPv6) appear in the
//! peer's RIB, disappear when withdrawn, and everything disappears when the speaker shuts down.
//! Under CI=true a missing peer fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use bawaba_bgp::wire::{Afi, Safi};
use bawaba_bgp::{FlowAction, FlowSpec, NumericMatch, PeerConfig, Prefix, Route, Speaker, BLACKHOLE};
use bawaba_testkit::{free_port, ChildGuard};
use common::{eventually, output, wait_established};

fn blackhole(addr: &str) -> Route {
    let prefix = if addr.contains(':') { format!("{addr}/128") } else { format!("{addr}/32") };
    let next_hop = if addr.contains(':') { "2001:db8::66" } else { "198.18.0.66" };
    Route::Unicast {
        prefix: Prefix::parse(&prefix).unwrap(),
        next_hop: next_hop.parse().unwrap(),
        communities: vec![BLACKHOLE, (65000 << 16) | 9999],
    }
}

fn dns_amplification(dst: &str) -> Route {
    let len = if dst.contains(':') { 128 } else { 32 };
    Route::FlowSpec {
        rule: FlowSpec {
            destination: Prefix::parse(&format!("{dst}/{len}")).unwrap(),
            source: None,
            protocols: vec![17],
            source_ports: vec![NumericMatch::Eq(53), NumericMatch::Eq(123)],
            destination_ports: vec![],
            packet_lengths: vec![NumericMatch::Range(512, 1500)],
        },
        action: FlowAction::Discard,
        communities: vec![],
    }
}

fn peer(port: u16, remote_as: u32) -> PeerConfig {
    let families = [
        (Afi::IPV4, Safi::UNICAST),
        (Afi::IPV6, Safi::UNICAST),
        (Afi::IPV4, Safi::FLOWSPEC),
        (Afi::IPV6, Safi::FLOWSPEC),
    ];
    common::peer(port, remote_as, &families, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gobgp_sees_blackhole_and_flowspec_then_withdrawals() {
    let Some(tools) = bawaba_testkit::require_tools("BGP interop with GoBGP", &["gobgpd", "gobgp"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (bgp_port, api_port) = (free_port(), free_port());
    let conf = dir.path().join("gobgpd.toml");
    let text = bawaba_testkit::gobgpd_config(bgp_port, 65000);
    std::fs::write(&conf, text).unwrap();
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
        eventually(10, "gobgpd API up", || if g(&["global"]).contains("AS") { Ok(()) } else { Err(g(&["global"])) })
    })
    .await
    .unwrap();

    let speaker = Speaker::start(vec![peer(bgp_port, 65001)]);
    wait_established(&speaker).await;
    speaker.set_routes(vec![
        blackhole("198.18.5.5"),
        blackhole("2001:db8:5::5"),
        dns_amplification("198.18.5.6"),
        dns_amplification("2001:db8:5::6"),
    ]);
    let g = gobgp.clone();
    let rib = move |family: &str| g(&["global", "rib", "-a", family]);
    tokio::task::spawn_blocking(move || {
        eventually(10, "IPv4 blackhole in GoBGP's RIB", || {
            let r = rib("ipv4");
            // GoBGP names 65535:666 "blackhole" (RFC 7999).
            if r.contains("198.18.5.5/32") && r.contains("blackhole, 65000:9999") && r.contains("198.18.0.66") {
                Ok(())
            } else {
                Err(r)
            }
        });
        eventually(10, "IPv6 blackhole", || {
            let r = rib("ipv6");
            if r.contains("2001:db8:5::5/128") && r.contains("blackhole") {
                Ok(())
            } else {
                Err(r)
            }
        });
        eventually(10, "IPv4 FlowSpec", || {
            let r = rib("ipv4-flowspec");
            let ok = r.contains("[destination: 198.18.5.6/32]")
                && r.contains("[protocol: ==udp]")
                && r.contains("[source-port: ==53 ==123]")
                && r.contains("[packet-length: >=512&<=1500]")
                && r.contains("discard(as: 65000)");
            if ok {
                Ok(())
            } else {
                Err(r)
            }
        });
        eventually(10, "IPv6 FlowSpec", || {
            let r = rib("ipv6-flowspec");
            if r.contains("2001:db8:5::6/128") && r.contains("discard") {
                Ok(())
            } else {
                Err(r)
            }
        });
    })
    .await
    .unwrap();

    // The attack on .5.5 is over: only that route goes.
    speaker.set_routes(vec![
        blackhole("2001:db8:5::5"),
        dns_amplification("198.18.5.6"),
        dns_amplification("2001:db8:5::6"),
    ]);
    let gobgp2 = gobgp.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "IPv4 blackhole withdrawn", || {
            let r = gobgp2(&["global", "rib", "-a", "ipv4"]);
            if r.contains("198.18.5.5") {
                Err(r)
            } else {
                Ok(())
            }
        });
        assert!(gobgp2(&["global", "rib", "-a", "ipv6"]).contains("2001:db8:5::5/128"));
    })
    .await
    .unwrap();

    // Clean shutdown: everything withdrawn, Cease sent.
    speaker.shutdown(Duration::from_secs(5)).await;
    let gobgp3 = gobgp.clone();
    tokio::task::spawn_blocking(move || {
        for family in ["ipv4", "ipv6", "ipv4-flowspec", "ipv6-flowspec"] {
            eventually(10, "all withdrawn after shutdown", || {
                let r = gobgp3(&["global", "rib", "-a", family]);
                if r.contains("2001:db8:5") || r.contains("198.18.5") {
                    Err(r)
                } else {
                    Ok(())
                }
            });
        }
        // GoBGP 3 writes the state in capitals ("ESTABLISHED"), older versions in lower case.
        let n = gobgp3(&["neighbor", "127.0.0.1"]);
        assert!(n.contains("BGP state = ") && !n.to_lowercase().contains("bgp state = established"), "{n}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bird_sees_blackhole_and_flowspec_then_withdrawals() {
    let Some(tools) = bawaba_testkit::require_tools("BGP interop with BIRD", &["bird", "birdc"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
            "router id 198.18.0.3;\n\
             ipv4 table master4;\nipv6 table master6;\nflow4 table flowtab4;\nflow6 table flowtab6;\n\
             protocol device {{ }}\n\
             protocol bgp bawaba {{\n  local 127.0.0.1 port {port} as 65002;\n  neighbor 127.0.0.1 as 65000;\n  passive on;\n\
               multihop;\n  hold time 9;\n\
               ipv4 {{ import all; export none; }};\n  ipv6 {{ import all; export none; }};\n\
               flow4 {{ import all; export none; }};\n  flow6 {{ import all; export none; }};\n}}\n"
        );
    let (_bird, birdc) = common::start_bird(&tools, dir.path(), &config);
    let b = birdc.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "bird up", || {
            let r = b(&["show", "status"]);
            if r.contains("Daemon is up") {
                Ok(())
            } else {
                Err(r)
            }
        })
    })
    .await
    .unwrap();

    let speaker = Speaker::start(vec![peer(port, 65002)]);
    wait_established(&speaker).await;
    speaker.set_routes(vec![
        blackhole("198.18.7.7"),
        dns_amplification("198.18.7.8"),
        dns_amplification("2001:db8:7::8"),
    ]);
    let b = birdc.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "blackhole in BIRD", || {
            let r = b(&["show", "route", "all", "table", "master4"]);
            if r.contains("198.18.7.7/32") && r.contains("(65535,666)") {
                Ok(())
            } else {
                Err(r)
            }
        });
        eventually(10, "FlowSpec in BIRD", || {
            let r = b(&["show", "route", "all", "table", "flowtab4"]);
            let ok = r.contains("flow4 { dst 198.18.7.8/32; proto 17; sport 53,123; length 512..1500; }")
                // traffic-rate 0 from AS 65000 (0xfde8): discard.
                && r.contains("(generic, 0x8006fde8, 0x0)");
            if ok {
                Ok(())
            } else {
                Err(r)
            }
        });
        eventually(10, "IPv6 FlowSpec in BIRD", || {
            let r = b(&["show", "route", "all", "table", "flowtab6"]);
            if r.contains("dst 2001:db8:7::8/128") {
                Ok(())
            } else {
                Err(r)
            }
        });
    })
    .await
    .unwrap();

    speaker.shutdown(Duration::from_secs(5)).await;
    let b = birdc.clone();
    tokio::task::spawn_blocking(move || {
        eventually(10, "all withdrawn in BIRD after shutdown", || {
            let r = b(&["show", "route", "all"]) + &b(&["show", "route", "all", "table", "flowtab4"]);
            if r.contains("198.18.7.") || r.contains("2001:db8:7::") {
                Err(r)
            } else {
                Ok(())
            }
        });
        let p = b(&["show", "protocols", "all", "bawaba"]);
        assert!(p.contains("Administrative shutdown") || !p.contains("Established"), "{p}");
    })
    .await
    .unwrap();
}
