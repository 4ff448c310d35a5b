//! `bawaba_engine::conntrack` against the kernel: connections inserted with the `conntrack` tool
//! in a network namespace of the test's own get their marks set through ctnetlink, and read back
//! with the tool. Needs root, `ip` and `conntrack` (scripts/install-test-deps.sh).
#![allow(unsafe_code)] // setns(2), to open the ctnetlink socket inside the test's namespace
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::fd::AsRawFd;
use std::process::Command;

use bawaba_engine::conntrack::{Conntrack, Updated};
use bawaba_engine::engine::Connection;

/// A network namespace, deleted when dropped (also when the test fails).
struct Netns(String);

impl Netns {
    fn add(tag: &str) -> Netns {
        let name = format!("bwct-{tag}-{}", std::process::id());
        let out = Command::new("ip").args(["netns", "add", &name]).output().unwrap();
        assert!(out.status.success(), "ip netns add: {}", String::from_utf8_lossy(&out.stderr));
        Netns(name)
    }

    /// Inserts a connection from `src` to `dst` (address, port) for a minute, with mark 0x1100;
    /// a TCP one established.
    fn insert(&self, proto: &str, (src, sport): (&str, &str), (dst, dport): (&str, &str)) {
        let mut args = vec!["-I", "-p", proto, "-s", src, "-d", dst, "--sport", sport, "--dport", dport];
        args.extend(["-t", "60", "--mark", "0x1100"]);
        if proto == "tcp" {
            args.extend(["--state", "ESTABLISHED"]);
        }
        self.conntrack(&args);
    }

    fn conntrack(&self, args: &[&str]) -> String {
        let out = Command::new("ip").args(["netns", "exec", &self.0, "conntrack"]).args(args).output().unwrap();
        assert!(out.status.success(), "conntrack {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `f` on a thread that has entered this namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).unwrap();
                // SAFETY: setns(2) on a namespace file this thread holds open; it changes only the
                // calling thread's network namespace, and the thread ends with the scope.
                assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn connection(client: &str, cport: u16, server: &str, sport: u16, protocol: u8) -> Connection {
    Connection { client: (client.parse().unwrap(), cport), server: (server.parse().unwrap(), sport), protocol }
}

/// The `mark=` of the one entry of `listing` whose original source port is `sport`.
fn mark_of(listing: &str, sport: u16) -> u32 {
    let line = listing.lines().find(|l| l.contains(&format!(" sport={sport} "))).unwrap_or_else(|| panic!("{listing}"));
    let mark = line.split_whitespace().find_map(|w| w.strip_prefix("mark=")).unwrap();
    mark.parse().unwrap()
}

#[test]
fn marks_are_set_under_the_mask_on_tracked_connections_and_gone_ones_are_counted() {
    if bawaba_testkit::require_tools("conntrack::marks", &["ip", "conntrack"]).is_none() {
        return;
    }
    let ns = Netns::add("marks");
    let (v4, v6) =
        (connection("198.18.1.2", 5400, "198.18.2.2", 53, 17), connection("2001:db8::1", 40000, "2001:db8::2", 443, 6));
    ns.insert("udp", ("198.18.1.2", "5400"), ("198.18.2.2", "53"));
    ns.insert("tcp", ("2001:db8::1", "40000"), ("2001:db8::2", "443"));
    // Another connection, which is not asked for.
    ns.insert("tcp", ("198.18.1.3", "5401"), ("198.18.2.2", "80"));

    // The two tracked connections, one the kernel does not track, one of another protocol
    // (skipped), and 3,000 more untracked ones, so that the updates take several sends.
    let mut asked = vec![
        v4,
        v6,
        connection("198.18.1.9", 9, "198.18.2.2", 53, 17),
        connection("198.18.1.2", 0, "198.18.2.2", 0, 1),
    ];
    asked.extend((0..3000u16).map(|i| connection("198.18.7.1", 10_000 + i, "198.18.7.2", 443, 6)));
    let updated = ns.run(|| Conntrack::open().unwrap().set_marks(&asked, 0x300, 0xf00));
    assert_eq!(updated, Updated { marked: 2, gone: 3001, failed: 0, first_error: None });

    let v4_list = ns.conntrack(&["-L", "-f", "ipv4"]);
    let v6_list = ns.conntrack(&["-L", "-f", "ipv6"]);
    // (0x1100 & !0xf00) ^ 0x300: the bits under the mask replaced, the others kept.
    assert_eq!(mark_of(&v4_list, 5400), 0x1300, "{v4_list}");
    assert_eq!(mark_of(&v6_list, 40000), 0x1300, "{v6_list}");
    assert_eq!(mark_of(&v4_list, 5401), 0x1100, "a connection not asked for is left alone: {v4_list}");
}
