//! Starting `bawaba serve` in the end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use bawaba_testkit::ChildGuard;

/// Starts `bawaba serve --config config` and hands each line it prints to `seen` until `seen`
/// returns true; then keeps reading its output in the background (serve must never block on a
/// full pipe) and returns the guard that kills it.
pub fn start_serve(config: &Path, mut seen: impl FnMut(&str) -> bool) -> ChildGuard {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bawaba"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if seen(&line) {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    guard
}
