//! Helpers shared by the real-peer tests (`peers.rs`, `md5.rs`).
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use bawaba_bgp::{Speaker, State};

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
