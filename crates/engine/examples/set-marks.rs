//! Sets a connmark on connections read from standard input, through ctnetlink, as the inline back
//! end does after a reload changes their verdict (`bawaba_engine::conntrack`).
//!
//! Each input line is `PROTOCOL CLIENT CLIENT_PORT SERVER SERVER_PORT` (protocol `tcp` or `udp`).
//! Prints what the kernel answered and how long it took. Used by `scripts/bench-requeue.sh`.
//!
//! ```text
//! echo "tcp 198.18.1.2 40000 198.18.2.2 443" |
//!     cargo run --release -p bawaba-engine --example set-marks -- 0x300 0xf00
//! ```

use std::io::BufRead;
use std::time::Instant;

use bawaba_engine::conntrack::Conntrack;
use bawaba_engine::engine::Connection;

fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `PROTOCOL CLIENT CLIENT_PORT SERVER SERVER_PORT`, or `None`.
fn parse_line(line: &str) -> Option<Connection> {
    let [proto, client, cport, server, sport] = line.split_whitespace().collect::<Vec<_>>()[..] else {
        return None;
    };
    let protocol = match proto {
        "tcp" => 6,
        "udp" => 17,
        _ => return None,
    };
    Some(Connection {
        client: (client.parse().ok()?, cport.parse().ok()?),
        server: (server.parse().ok()?, sport.parse().ok()?),
        protocol,
    })
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mark), Some(mask)) = (args.first().and_then(|a| number(a)), args.get(1).and_then(|a| number(a))) else {
        eprintln!("usage: set-marks MARK MASK < connections   (lines: tcp|udp CLIENT PORT SERVER PORT)");
        std::process::exit(2);
    };
    let mut connections = Vec::new();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        let parsed = parse_line(&line);
        match parsed {
            Some(c) => connections.push(c),
            None => {
                eprintln!("line {}: expected `tcp|udp CLIENT PORT SERVER PORT`: {line}", n + 1);
                std::process::exit(2);
            }
        }
    }
    let start = Instant::now();
    let done = Conntrack::open()?.set_marks(&connections, mark, mask);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    println!("marked {} gone {} failed {} in {ms:.1} ms", done.marked, done.gone, done.failed);
    Ok(())
}
