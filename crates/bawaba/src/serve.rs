//! `bawaba serve`: loads the newest signed bundle, then starts every component the config
//! enables (today: the DNS server and the metrics endpoint), and swaps in newer bundles as they
//! are published.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arc_swap::ArcSwap;
use bawaba_bundle::{read_verifying_key, BundleSlot, VerifyingKey};
use bawaba_dns::metrics::DnsMetrics;
use bawaba_policy::Ruleset;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::commands::Ctx;

/// Runs until interrupted (SIGINT/ctrl-c) or a listener fails.
pub fn serve(ctx: &Ctx) -> Result<i32> {
    let config = &ctx.config;
    if !config.dns.enabled {
        bail!("nothing to serve: enable a component in the config (e.g. [dns] enabled = true)");
    }
    let dir = config.bundle_dir();

    // First start of a single-box setup: no bundle yet. Initialise the data directory if needed and
    // publish the local store's policy (possibly empty: then nothing is blocked, and the log says so).
    if bawaba_bundle::latest_in_dir(&dir).ok().flatten().is_none() {
        tracing::warn!(dir = %dir.display(), "no bundle yet: publishing the local store's policy first");
        ctx.init()?;
        crate::policy_files::publish(ctx, false)?;
    }

    let key_paths = config.trusted_keys();
    let key_path = key_paths.first().context("no trusted key configured in [bundle] trusted_keys")?;
    let key = read_verifying_key(key_path).with_context(|| format!("reading trusted key {}", key_path.display()))?;

    // The policy is loaded before any socket is bound: no query is ever answered unfiltered.
    let slot = BundleSlot::new();
    let started = Instant::now();
    let snapshot = slot
        .load_latest_in_dir(&dir, &key)
        .with_context(|| format!("loading the newest bundle in {}", dir.display()))?
        .with_context(|| format!("no bundle in {}: publish one first with `bawaba policy publish`", dir.display()))?;
    let ruleset = Arc::new(ArcSwap::from_pointee(snapshot.compile()));
    let stats = ruleset.load().stats();
    tracing::info!(
        version = snapshot.version,
        rules = stats.domain_rules + stats.ipv4_rules + stats.ipv6_rules,
        allow = stats.allow_entries,
        ms = started.elapsed().as_millis() as u64,
        "policy loaded"
    );
    let metrics = Arc::new(DnsMetrics::default());
    metrics.policy_loaded(snapshot.version);

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.serve.threads > 0 {
        runtime.worker_threads(config.serve.threads);
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        let server = bawaba_dns::server::bind(&config.dns, Arc::clone(&ruleset), Arc::clone(&metrics))
            .await
            .context("starting the DNS server")?;
        for addr in server.local_addrs() {
            tracing::info!(%addr, "DNS listening (UDP and TCP)");
            println!("dns listening on {addr} (udp, tcp)");
        }
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            server.run().await;
            Ok::<(), anyhow::Error>(())
        });
        if let Some(addr) = config.serve.metrics_listen {
            let listener =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics on {addr}"))?;
            println!("metrics on http://{}/metrics", listener.local_addr()?);
            tasks.spawn(metrics_http(listener, Arc::clone(&metrics)));
        }
        let interval = Duration::from_secs(config.serve.reload_interval_secs.max(1));
        tasks.spawn(reload_loop(slot, key, dir, interval, Arc::clone(&ruleset), Arc::clone(&metrics)));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted; shutting down");
                Ok(0)
            }
            Some(result) = tasks.join_next() => {
                result??;
                bail!("a component stopped unexpectedly")
            }
        }
    })
}

/// Looks for a newer bundle every `interval`; verifies and compiles it off the async threads,
/// then swaps it in. A bad bundle is logged and the policy in force stays.
async fn reload_loop(
    slot: BundleSlot,
    key: VerifyingKey,
    dir: std::path::PathBuf,
    interval: Duration,
    ruleset: Arc<ArcSwap<Ruleset>>,
    metrics: Arc<DnsMetrics>,
) -> Result<()> {
    let slot = Arc::new(slot);
    loop {
        tokio::time::sleep(interval).await;
        let (slot2, dir2) = (Arc::clone(&slot), dir.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            slot2.load_latest_in_dir(&dir2, &key).map(|s| s.map(|s| (s.version, s.compile(), started.elapsed())))
        })
        .await?;
        match loaded {
            Ok(Some((version, compiled, took))) => {
                ruleset.store(Arc::new(compiled));
                metrics.policy_loaded(version);
                tracing::info!(version, ms = took.as_millis() as u64, "policy reloaded");
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "newer bundle refused; the policy in force stays"),
        }
    }
}

/// A minimal HTTP/1.1 responder for `GET /metrics`.
async fn metrics_http(listener: tokio::net::TcpListener, metrics: Arc<DnsMetrics>) -> Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if request.starts_with("GET /metrics") {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "only /metrics lives here\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
    }
}
