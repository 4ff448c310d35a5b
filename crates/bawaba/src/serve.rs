//! `bawaba serve`: loads the newest signed bundle, then starts every component the config
//! enables (the DNS server, the RPZ zone it serves to secondaries, the inline packet engine, and
//! the metrics endpoint), and swaps in newer bundles as they are published, sending NOTIFY to the
//! secondaries after each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arc_swap::ArcSwap;
use bawaba_bundle::{read_verifying_key, BundleError, BundleSlot, VerifiedBundle, VerifyingKey};
use bawaba_dns::metrics::DnsMetrics;
use bawaba_dns::xfr::{serial_of_version, WireZone, ZoneTransfer};
use bawaba_policy::{PolicySnapshot, Ruleset};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::commands::Ctx;
use crate::config::Config;

/// Runs until interrupted (SIGINT, SIGTERM) or a component fails.
pub fn serve(ctx: &Ctx) -> Result<i32> {
    // Before any thread: so that a reload's freed ruleset and scratch go back to the kernel.
    crate::memory::keep_large_blocks_mapped();
    let config = &ctx.config;
    let engine_on = config.engine.mode != bawaba_engine::config::Mode::Off;
    if !config.dns.enabled && !engine_on && !config.flow.enabled && !config.console.enabled {
        bail!(
            "nothing to serve: enable a component in the config ([dns] enabled = true, [engine] mode = \"nfqueue\", [flow] enabled = true, [console] enabled = true)"
        );
    }
    if config.console.enabled {
        config.console.check().map_err(|e| anyhow::anyhow!(e))?;
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
    // Only the header stays in the slot. Without an RPZ zone to serve, the bundle is compiled in
    // place (no snapshot at all); with one, the snapshot is decoded for the zone, compiled, then
    // dropped (it is larger than the compiled ruleset).
    let slot = BundleSlot::headers_only();
    let started = Instant::now();
    let with_zone = config.dns.rpz.enabled;
    let (version, compiled, snapshot) = slot
        .load_latest_in_dir_with(&dir, &key, |verified| decode_bundle(verified, with_zone))
        .with_context(|| format!("loading the newest bundle in {}", dir.display()))?
        .with_context(|| format!("no bundle in {}: publish one first with `bawaba policy publish`", dir.display()))?;
    let ruleset = Arc::new(ArcSwap::from_pointee(compiled));
    let stats = ruleset.load().stats();
    tracing::info!(
        version,
        rules = stats.domain_rules + stats.ipv4_rules + stats.ipv6_rules,
        allow = stats.allow_entries,
        ms = started.elapsed().as_millis() as u64,
        "policy loaded"
    );
    let metrics = Arc::new(DnsMetrics::default());
    metrics.policy_loaded(version);
    let xfr = if let Some(snapshot) = &snapshot {
        let zone = rpz_zone(config, snapshot)?;
        tracing::info!(origin = %config.served_rpz_origin(), serial = zone.serial(), "RPZ zone prepared for transfer");
        let mut xfr = ZoneTransfer::new(
            zone,
            config.dns.rpz.allow_transfer.clone(),
            config.dns.rpz.notify.clone(),
            config.dns.rpz.history,
        );
        if let Some(key) = &config.dns.rpz.tsig_key {
            xfr = xfr.with_tsig(key.key().context("in [dns.rpz.tsig_key]")?);
        }
        Some(Arc::new(xfr))
    } else {
        None
    };
    drop(snapshot);
    bawaba_policy::ruleset::release_freed_memory();

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.serve.threads > 0 {
        runtime.worker_threads(config.serve.threads);
    }
    let runtime = runtime.enable_all().build()?;
    // The inline engine runs on a thread of its own (a blocking queue loop), started before the
    // DNS server so that its rules are in place when `serve` says it is up.
    let engine_shared = Arc::new(bawaba_engine::nfqueue::Shared::default());
    let engine_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (engine_done_tx, engine_done_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let engine_thread = if engine_on {
        let (section, rs, shared, stop) =
            (config.engine.clone(), Arc::clone(&ruleset), Arc::clone(&engine_shared), Arc::clone(&engine_stop));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new().name("engine".into()).spawn(move || {
            let ready = move || {
                let _ = ready_tx.send(());
            };
            let result = match section.mode {
                bawaba_engine::config::Mode::Afpacket => {
                    bawaba_engine::afpacket::run(&section, rs, shared, stop, ready).map_err(|e| e.to_string())
                }
                _ => bawaba_engine::nfqueue::run(&section, rs, shared, stop, ready).map_err(|e| e.to_string()),
            };
            let _ = engine_done_tx.send(result);
        })?;
        if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = handle.join();
            let mut done = engine_done_rx;
            match done.try_recv() {
                Ok(Err(why)) => bail!("the inline engine did not start: {why}"),
                _ => bail!("the inline engine did not start"),
            }
        }
        match config.engine.mode {
            bawaba_engine::config::Mode::Afpacket => {
                say(format_args!("engine passive on {} (AF_PACKET)", config.engine.interface.as_deref().unwrap_or("?")))
            }
            _ => say(format_args!(
                "engine inline on NFQUEUE {} (fail-{})",
                config.engine.queue,
                if config.engine.fail_open { "open" } else { "closed" }
            )),
        }
        Some(handle)
    } else {
        drop(engine_done_tx);
        None
    };

    let outcome = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        // Attack defense: collector, detector, planner, BGP speaker.
        let defense = if config.flow.enabled {
            let log = config.store.data_dir.join("attacks.jsonl");
            // Attack records go to the store too (their own connection, on the collector's thread).
            let db = config.database();
            let mut attack_store = bawaba_store::Store::open(&db, config.store_config())
                .with_context(|| format!("opening {} for attack records", db.display()))?;
            let recorder: bawaba_defense::service::AttackRecorder = Box::new(move |attack, decisions| {
                let record = serde_json::to_value(attack).unwrap_or_default();
                if let Err(e) = attack_store.record_attack(&record, decisions) {
                    tracing::warn!(error = %e, "attack not recorded in the store");
                }
            });
            // Optionally the attack traffic is dropped in the inline engine too (passive mode
            // cannot drop, so it gets no rules).
            let inline = config.engine.mode == bawaba_engine::config::Mode::Nfqueue;
            let on_routes: Option<bawaba_defense::service::RoutesHook> = (config.ddos.mitigation.engine_drop && inline)
                .then(|| {
                    let shared = Arc::clone(&engine_shared);
                    Box::new(move |routes: &[bawaba_bgp::Route]| {
                        let drops = crate::gateway::engine_drops(routes);
                        tracing::info!(rules = drops.len(), "inline engine: mitigation drop rules in force");
                        shared.mitigations.store(Arc::new(drops));
                    }) as bawaba_defense::service::RoutesHook
                });
            let defense = bawaba_defense::service::Defense::start_with(
                &config.flow,
                &config.ddos,
                &config.bgp,
                Some(log),
                Some(recorder),
                on_routes,
            )
            .context("starting the flow collector")?;
            for addr in defense.local_addrs() {
                say(format_args!("flow collector on {addr} (udp: netflow v5/v9, ipfix, sflow)"));
            }
            if config.ddos.mitigation.dry_run {
                say(format_args!("ddos mitigation: dry run (nothing is announced)"));
            }
            say(format_args!("bgp: {} peer(s)", config.bgp.peers.len()));
            Some(defense)
        } else {
            None
        };
        let defense_metrics = defense.as_ref().map(|d| d.metrics());
        let defense_view = defense.as_ref().map(|d| d.view());
        let mut dns_listen = Vec::new();
        if config.dns.enabled {
            let server = bawaba_dns::server::bind_with_zone(
                &config.dns,
                Arc::clone(&ruleset),
                Arc::clone(&metrics),
                xfr.clone(),
            )
            .await
            .context("starting the DNS server")?;
            if let Some(xfr) = &xfr {
                say(format_args!(
                    "rpz zone {} (serial {}) served to {:?}",
                    config.served_rpz_origin(),
                    xfr.zone().serial(),
                    config.dns.rpz.allow_transfer.iter().map(ToString::to_string).collect::<Vec<_>>()
                ));
                // Secondaries may hold an older version from before a restart.
                tokio::spawn(notify(Arc::clone(xfr), Arc::clone(&metrics)));
            }
            dns_listen = server.local_addrs();
            for addr in server.local_addrs() {
                tracing::info!(%addr, "DNS listening (UDP and TCP)");
                say(format_args!("dns listening on {addr} (udp, tcp)"));
            }
            tasks.spawn(async move { server.run().await.context("running the DNS server") });
        }
        if engine_on {
            tasks.spawn(async move {
                match engine_done_rx.await {
                    Ok(Ok(())) | Err(_) => Ok(()),
                    Ok(Err(e)) => Err(anyhow::anyhow!("inline engine: {e}")),
                }
            });
        }
        if let Some(addr) = config.serve.metrics_listen {
            let listener =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics on {addr}"))?;
            say(format_args!("metrics on http://{}/metrics", listener.local_addr()?));
            let engine = engine_on.then(|| Arc::clone(&engine_shared));
            tasks.spawn(metrics_http(listener, Arc::clone(&metrics), engine, defense_metrics.clone()));
        }
        let reload_now = Arc::new(tokio::sync::Notify::new());
        let gateway = Arc::new(crate::gateway::ServeGateway {
            config: config.clone(),
            ruleset: Arc::clone(&ruleset),
            metrics: Arc::clone(&metrics),
            engine: engine_on.then(|| Arc::clone(&engine_shared)),
            defense: defense_metrics.clone(),
            defense_view: defense_view.clone(),
            reload: Arc::clone(&reload_now),
            dns_listen: dns_listen.clone(),
        });
        if config.console.enabled {
            start_console(config, Arc::clone(&gateway), &mut tasks).await?;
        }
        if let Some(to) = &config.serve.report_to {
            let token = config.serve.report_token.clone().context("[serve] report_to needs report_token")?;
            let client = bawaba_console::client::ApiClient::new(to, &token, config.serve.report_ca.as_deref())
                .context("[serve] report_to")?;
            say(format_args!("reporting enforcement points to {to} as site {}", config.serve.site));
            let every = Duration::from_secs(config.serve.report_interval_secs.max(1));
            tokio::spawn(report_loop(client, config.serve.site.clone(), gateway, every));
        }
        let interval = Duration::from_secs(config.serve.reload_interval_secs.max(1));
        let reload = Reload {
            now: reload_now,
            slot,
            key,
            dir,
            interval,
            config: config.clone(),
            ruleset: Arc::clone(&ruleset),
            metrics: Arc::clone(&metrics),
            xfr,
        };
        tasks.spawn(reload_loop(reload));
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let result = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted; shutting down");
                Ok(0)
            }
            _ = terminate.recv() => {
                tracing::info!("terminated; shutting down");
                Ok(0)
            }
            Some(result) = tasks.join_next() => {
                match result {
                    Ok(Ok(())) => Err(anyhow::anyhow!("a component stopped unexpectedly")),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(e.into()),
                }
            }
        };
        // Withdraw every mitigation route and close the BGP sessions before exiting.
        if let Some(defense) = defense {
            defense.shutdown().await;
        }
        result
    });
    // Stop the inline engine; it removes its iptables rules on the way out.
    engine_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(handle) = engine_thread {
        let _ = handle.join();
    }
    outcome
}

/// The policy version and compiled policy of a verified bundle, and its snapshot when an RPZ zone
/// is made from it.
fn decode_bundle(
    verified: &VerifiedBundle<'_>,
    with_snapshot: bool,
) -> Result<(u64, Ruleset, Option<PolicySnapshot>), BundleError> {
    let version = verified.header().policy_version;
    if with_snapshot {
        let snapshot = verified.snapshot()?;
        Ok((version, snapshot.compile(), Some(snapshot)))
    } else {
        Ok((version, verified.compile()?, None))
    }
}

/// The zone `bawaba serve` transfers: exactly what `bawaba policy export` writes for the snapshot,
/// with the policy version as the SOA serial.
fn rpz_zone(config: &Config, snapshot: &PolicySnapshot) -> Result<WireZone> {
    let origin = config.served_rpz_origin();
    let options = config.rpz_export_options(origin.clone(), serial_of_version(snapshot.version));
    let records = bawaba_formats::rpz_records(snapshot, &options);
    for warning in &records.stats.warnings {
        tracing::warn!(%warning, "RPZ zone: rule not carried exactly");
    }
    WireZone::new(&origin, &records.records).context("preparing the RPZ zone for transfer")
}

/// Sends NOTIFY to every secondary and counts the outcomes.
async fn notify(xfr: Arc<ZoneTransfer>, metrics: Arc<DnsMetrics>) {
    for (peer, result) in xfr.notify_secondaries().await {
        metrics.notify(result.is_ok());
        match result {
            Ok(()) => tracing::info!(%peer, serial = xfr.zone().serial(), "NOTIFY acknowledged"),
            Err(err) => tracing::warn!(%peer, error = %err, "NOTIFY not acknowledged"),
        }
    }
}

/// What the reload loop needs.
struct Reload {
    /// Notified to load a newer bundle at once (after a publication from the console).
    now: Arc<tokio::sync::Notify>,
    slot: BundleSlot,
    key: VerifyingKey,
    dir: std::path::PathBuf,
    interval: Duration,
    config: Config,
    ruleset: Arc<ArcSwap<Ruleset>>,
    metrics: Arc<DnsMetrics>,
    xfr: Option<Arc<ZoneTransfer>>,
}

/// Looks for a newer bundle every `interval`; verifies and compiles it (and prepares the RPZ
/// zone) off the async threads, then swaps it in and notifies the secondaries. A bad bundle is
/// logged and the policy in force stays.
async fn reload_loop(r: Reload) -> Result<()> {
    let slot = Arc::new(r.slot);
    let config = Arc::new(r.config);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(r.interval) => {}
            _ = r.now.notified() => {}
        }
        let (slot2, dir2, key, config2) = (Arc::clone(&slot), r.dir.clone(), r.key, Arc::clone(&config));
        let with_zone = r.xfr.is_some();
        let loaded = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let loaded = slot2.load_latest_in_dir_with(&dir2, &key, |verified| decode_bundle(verified, with_zone))?;
            let Some((version, compiled, snapshot)) = loaded else { return Ok(None) };
            let zone = snapshot.map(|snapshot| rpz_zone(&config2, &snapshot));
            Ok::<_, anyhow::Error>(Some((version, compiled, zone, started.elapsed())))
        })
        .await?;
        match loaded {
            Ok(Some((version, compiled, zone, took))) => {
                let previous = r.ruleset.swap(Arc::new(compiled));
                // The previous ruleset is freed, off the runtime, before the freed heap goes back to
                // the kernel, unless a reader (the engine, a query in flight) still holds it: then it
                // goes when that reader lets go. The decoded bundle is gone already.
                let trim = tokio::task::spawn_blocking(move || {
                    drop(previous);
                    bawaba_policy::ruleset::release_freed_memory();
                });
                drop(trim);
                r.metrics.policy_loaded(version);
                tracing::info!(version, ms = took.as_millis() as u64, "policy reloaded");
                match (zone, &r.xfr) {
                    (Some(Ok(zone)), Some(xfr)) => {
                        xfr.install(zone);
                        tokio::spawn(notify(Arc::clone(xfr), Arc::clone(&r.metrics)));
                    }
                    (Some(Err(err)), _) => tracing::warn!(error = %err, "RPZ zone not updated"),
                    _ => {}
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "newer bundle refused; the policy in force stays"),
        }
    }
}

/// A minimal HTTP/1.1 responder for `GET /metrics`.
async fn metrics_http(
    listener: tokio::net::TcpListener,
    metrics: Arc<DnsMetrics>,
    engine: Option<Arc<bawaba_engine::nfqueue::Shared>>,
    defense: Option<bawaba_defense::service::DefenseMetrics>,
) -> Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let metrics = Arc::clone(&metrics);
        let engine = engine.clone();
        let defense = defense.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if request.starts_with("GET /metrics") {
                ("200 OK", crate::gateway::render_metrics(&metrics, engine.as_deref(), defense.as_ref()))
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

/// Reports this site's enforcement points to the central console every `every`; a failure is
/// logged and the next round tries again.
async fn report_loop(
    client: bawaba_console::client::ApiClient,
    site: String,
    gateway: Arc<crate::gateway::ServeGateway>,
    every: Duration,
) {
    use bawaba_console::Gateway;
    let mut tick = tokio::time::interval(every);
    let mut failing = false;
    loop {
        tick.tick().await;
        let body = serde_json::json!({ "site": site, "points": gateway.points() });
        match client.request("POST", "/points/report", Some(&body)).await {
            Ok((200, _)) => {
                if failing {
                    tracing::info!("enforcement points reported again");
                }
                failing = false;
            }
            Ok((status, answer)) => {
                if !failing {
                    tracing::warn!(status, answer = %answer, "the central console refused the report");
                }
                failing = true;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "enforcement points not reported");
                }
                failing = true;
            }
        }
    }
}

/// Opens the store, binds the console (and the block-page listener) and spawns them.
async fn start_console(
    config: &Config,
    gateway: Arc<crate::gateway::ServeGateway>,
    tasks: &mut tokio::task::JoinSet<Result<()>>,
) -> Result<()> {
    let c = &config.console;
    let db = config.database();
    let store =
        bawaba_store::Store::open(&db, config.store_config()).with_context(|| format!("opening {}", db.display()))?;
    if store.user_count()? == 0 {
        tracing::warn!("no console users yet: `bawaba user add NAME --role admin` (or `bawaba init`) creates one");
    }
    let tls = match (&c.tls_cert, &c.tls_key) {
        (Some(cert), Some(key)) => Some(bawaba_console::tls::acceptor(cert, key).context("[console] TLS")?),
        _ => None,
    };
    let app = bawaba_console::App::new(store, gateway, c.clone());
    let listener = tokio::net::TcpListener::bind(c.listen)
        .await
        .with_context(|| format!("binding the console on {}", c.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    say(format_args!("console on {scheme}://{}/ (api /api/v1, block page /blocked)", listener.local_addr()?));
    let console = app.clone();
    tasks.spawn(async move {
        bawaba_console::serve(console, listener, tls, std::future::pending()).await.context("console")
    });
    if let Some(addr) = c.block_page_listen {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the block page on {addr}"))?;
        say(format_args!("block page on http://{}/", listener.local_addr()?));
        tasks.spawn(async move {
            bawaba_console::serve_block_page(app, listener, std::future::pending()).await.context("block page")
        });
    }
    Ok(())
}

/// Prints a status line to standard output, ignoring errors: a server must keep serving when
/// whoever started it has closed its end of the pipe (`println!` would panic).
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
