//! Commands that act on a running `bawaba serve` through its API (`[console] listen`): manual
//! mitigations and the exporter table live in that process, not in the store. They authenticate
//! with an API token (`bawaba user token NAME --label ...`) given as `--token` or `$BAWABA_TOKEN`.
//! Over HTTPS when the console is configured with TLS, trusting the CA certificate(s) in
//! `$BAWABA_CA` (a PEM file), else the console's own certificate file (a self-signed one).

use anyhow::{bail, Context, Result};
use bawaba_console::client::ApiClient;
use serde_json::{json, Value};

use crate::cli::{MitigationCommand, MitigationTarget};
use crate::commands::Ctx;

/// The running serve's API as the configuration says where it listens (a wildcard listener is
/// reached on loopback; with TLS, its own certificate file is what the client trusts).
fn client(ctx: &Ctx, token: &str) -> Result<ApiClient> {
    let c = &ctx.config.console;
    if !c.enabled {
        bail!("[console] is not enabled in the config: these commands talk to `bawaba serve` through its API");
    }
    let mut addr = c.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let base = format!("{}://{addr}", if c.tls() { "https" } else { "http" });
    let ca = std::env::var_os("BAWABA_CA").map(std::path::PathBuf::from).or_else(|| c.tls_cert.clone());
    ApiClient::new(&base, token, ca.as_deref()).with_context(|| format!("the API at {base}"))
}

/// One request; returns the status and the JSON body.
fn call(ctx: &Ctx, token: &str, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
    let client = client(ctx, token)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(client.request(method, path, body)).context("talking to bawaba serve's API (is it running?)")
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
