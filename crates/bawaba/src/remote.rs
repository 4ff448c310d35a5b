//! Commands that act on a running `bawaba serve` through its API (`[console] listen`): manual
//! mitigations and the exporter table live in that process, not in the store. They authenticate
//! with an API token (`bawaba user token NAME --label ...`) given as `--token` or `$BAWABA_TOKEN`.
//! Plain HTTP to the configured listener; with TLS configured, call the API with curl instead.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::{MitigationCommand, MitigationTarget};
use crate::commands::Ctx;

/// The API's address as a client reaches it (a wildcard listener is reached on loopback).
fn api_addr(ctx: &Ctx) -> Result<SocketAddr> {
    let c = &ctx.config.console;
    if !c.enabled {
        bail!("[console] is not enabled in the config: these commands talk to `bawaba serve` through its API");
    }
    if c.tls() {
        bail!("the console listens with TLS: call https://{}/api/v1 with curl and the token instead", c.listen);
    }
    let mut addr = c.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    Ok(addr)
}

/// One request; returns the status and the JSON body.
fn call(ctx: &Ctx, token: &str, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
    let addr = api_addr(ctx)?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to bawaba serve's API on {addr} (is it running?)"))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} /api/v1{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("the API's answer has no header end")?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status")?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    Ok((status, value))
}

/// Removes chunked transfer coding.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn token(given: Option<String>) -> Result<String> {
    given.or_else(|| std::env::var("BAWABA_TOKEN").ok()).filter(|t| !t.trim().is_empty()).context(
        "no API token: pass --token or set BAWABA_TOKEN (create one with `bawaba user token NAME --label ...`)",
    )
}

fn ok(status: u16, v: &Value) -> Result<()> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    bail!("{} (HTTP {status})", v["error"].as_str().map_or_else(|| v.to_string(), str::to_string))
}

fn body(t: &MitigationTarget) -> Value {
    json!({
        "prefix": t.prefix,
        "kind": t.kind,
        "protocol": t.protocol,
        "source_port": t.source_port,
        "reason": t.reason.clone().unwrap_or_default(),
    })
}

/// `bawaba mitigation ...`
pub fn mitigation(ctx: &Ctx, cmd: MitigationCommand) -> Result<i32> {
    match cmd {
        MitigationCommand::List { token: t, json: as_json } => {
            let (status, v) = call(ctx, &token(t)?, "GET", "/defense", None)?;
            ok(status, &v)?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            if v["enabled"] == false {
                println!("attack defense is not running ([flow] enabled = false)");
                return Ok(0);
            }
            if v["dry_run"] == true {
                println!("dry run: routes are planned, not announced");
            }
            let list = v["mitigations"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no mitigations in force");
            }
            for m in &list {
                println!("{} ({})", m["reason"].as_str().unwrap_or(""), m["origin"]["kind"].as_str().unwrap_or(""));
                for r in m["routes"].as_array().into_iter().flatten() {
                    println!("  {}", r.as_str().unwrap_or(""));
                }
            }
            for b in v["bgp"].as_array().into_iter().flatten() {
                println!(
                    "bgp {} {} ({} routes)",
                    b["address"].as_str().unwrap_or(""),
                    b["state"].as_str().unwrap_or(""),
                    b["announced"]
                );
            }
        }
        MitigationCommand::Announce(t) => {
            let (status, v) = call(ctx, &token(t.token.clone())?, "POST", "/mitigations", Some(&body(&t)))?;
            ok(status, &v)?;
            println!("{}", v["text"].as_str().unwrap_or(""));
        }
        MitigationCommand::Withdraw(t) => {
            let (status, v) = call(ctx, &token(t.token.clone())?, "POST", "/mitigations/withdraw", Some(&body(&t)))?;
            ok(status, &v)?;
            println!("{}", v["text"].as_str().unwrap_or(""));
        }
    }
    Ok(0)
}

/// `bawaba exporter list`
pub fn exporters(ctx: &Ctx, given: Option<String>, as_json: bool) -> Result<i32> {
    let (status, v) = call(ctx, &token(given)?, "GET", "/defense", None)?;
    ok(status, &v)?;
    let list = v["exporters"].as_array().cloned().unwrap_or_default();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if list.is_empty() {
        println!("no exporters seen");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            let seen = e["last_seen_ms"]
                .as_i64()
                .and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            vec![
                e["address"].as_str().unwrap_or("").to_string(),
                e["protocol"].as_str().unwrap_or("").to_string(),
                e["datagrams"].to_string(),
                e["records"].to_string(),
                seen,
            ]
        })
        .collect();
    crate::output::table(&["EXPORTER", "PROTOCOL", "DATAGRAMS", "RECORDS", "LAST SEEN"], &rows);
    Ok(0)
}
