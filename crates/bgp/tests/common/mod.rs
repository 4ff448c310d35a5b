//! Helpers shared by the real-peer tests (`peers.rs`, `md5.rs`).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bawaba_bgp::wire::{Afi, Safi};
use bawaba_bgp::{PeerConfig, Speaker, State};

/// Polls `check` until it is true or `secs` pass.
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A command's standard output and error, together.
pub fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Waits (up to 20 s) until the speaker's first session is established.
pub async fn wait_established(speaker: &Speaker) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while speaker.status()[0].state != State::Established {
        assert!(Instant::now() < deadline, "never established: {:?}", speaker.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts BIRD (`tools[0]`, with `birdc` as `tools[1]`) in `dir` on `config`; returns its guard
/// and a `birdc` runner for its control socket.
pub fn start_bird(
    tools: &[PathBuf],
    dir: &Path,
    config: &str,
) -> (bawaba_testkit::ChildGuard, impl Fn(&[&str]) -> String + Clone + Send + 'static) {
    let socket = dir.join("bird.ctl");
    let conf = dir.join("bird.conf");
    std::fs::write(&conf, config).unwrap();
    let bird = bawaba_testkit::ChildGuard(
        Command::new(&tools[0])
            .args(["-f", "-c"])
            .arg(&conf)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let birdc_path = tools[1].clone();
    let birdc = move |args: &[&str]| output(Command::new(&birdc_path).arg("-s").arg(&socket).args(args));
    (bird, birdc)
}

/// A router session to 127.0.0.1:`port` from AS 65000, hold time 9 s, quick reconnects.
pub fn peer(port: u16, remote_as: u32, families: &[(Afi, Safi)], md5_password: Option<&str>) -> PeerConfig {
    PeerConfig {
        address: format!("127.0.0.1:{port}").parse().unwrap(),
        remote_as,
        local_as: 65000,
        router_id: "198.18.0.1".parse().unwrap(),
        hold_time: 9,
        families: families.to_vec(),
        backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        md5_password: md5_password.map(str::to_string),
    }
}
